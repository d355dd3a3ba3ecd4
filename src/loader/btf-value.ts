/**
 * BTF-driven values: the bytes of a map key, map value or global variable decoded into plain
 * JavaScript values by the variable's BTF type, and encoded back. The layout is the one BTF
 * describes (little-endian, as the BPF target): struct and union members by bit offset,
 * bitfields (kind_flag member sizes and the older INT-encoded ones), arrays, typedefs and
 * modifiers resolved.
 *
 * | BTF                              | value                                                  |
 * | -------------------------------- | ------------------------------------------------------ |
 * | INT of up to 32 bits             | `number`, signed per BTF_INT_SIGNED                     |
 * | INT of more than 32 bits         | `bigint`                                               |
 * | INT with BTF_INT_BOOL            | `boolean`                                              |
 * | ENUM / ENUM64 of up to 4 bytes   | `number` (`enumName` gives the enumerator)             |
 * | ENUM / ENUM64 of 8 bytes         | `bigint`                                               |
 * | FLOAT (4 or 8 bytes)             | `number`                                               |
 * | PTR                              | `bigint` (an address in the Vm's memory)               |
 * | ARRAY                            | an array; `char[]` as a string with `asString`         |
 * | STRUCT / UNION                   | an object by member name (anonymous members flattened) |
 * | TYPEDEF, CONST, VOLATILE, ...    | the type they wrap                                     |
 *
 * A bitfield takes its representation from its declared type (a `u64 x : 3` is a bigint).
 *
 * Called from: runtime/btf-view.ts (typed maps) and runtime/object.ts (typed globals), on the
 * host only. Invariants: decoding never reads outside the type's `sizeOf` bytes and encoding
 * writes exactly `sizeOf` bytes (padding zero); a value that does not fit its field is a
 * `UsageError` naming the member path; a malformed layout (a member outside its struct,
 * nesting deeper than `MAX_VALUE_NESTING`) is a `BtfError`.
 */

import { BtfError, UsageError } from '../errors.js';
import { BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED, type Btf, type BtfType } from './btf.js';

/** Bound on struct/union/array nesting while decoding or encoding (malformed BTF may cycle). */
export const MAX_VALUE_NESTING = 64;

/** A decoded value: see the table at the top of the file. */
export type BtfValue = number | bigint | boolean | string | BtfValue[] | BtfStruct;

/** A decoded struct or union: its members by name. */
export interface BtfStruct {
  [member: string]: BtfValue;
}

/** Options of `decodeBtf`. */
export interface BtfDecodeOptions {
  /** Decode arrays of `char` (or BTF_INT_CHAR ints) as strings up to the first NUL (UTF-8). */
  readonly asString?: boolean;
  /** What to call the value in errors (default `value`). */
  readonly path?: string;
}

/** Options of `encodeBtf`. */
export interface BtfEncodeOptions {
  /** What to call the value in errors (default `value`): `value.hdr.len: ...`. */
  readonly path?: string;
}

/** An integer-like field: where its bits are and how to read them. */
interface IntField {
  /** Bit position from the start of the buffer. */
  readonly pos: number;
  readonly width: number;
  readonly signed: boolean;
  /** `bigint` when wider than 32 bits (ints) or 4 bytes (enums). */
  readonly wide: boolean;
}

type StructType = Extract<BtfType, { kind: 'struct' | 'union' }>;
type ArrayType = Extract<BtfType, { kind: 'array' }>;
type IntType = Extract<BtfType, { kind: 'int' }>;
type EnumType = Extract<BtfType, { kind: 'enum' | 'enum64' }>;

/**
 * Decodes `bytes` (at least `btf.sizeOf(typeId)` of them; the rest is ignored) as BTF type
 * `typeId`.
 *
 * @example
 * ```ts
 * const obj = loadObject(bytes);
 * const def = obj.maps[0];
 * decodeBtf(obj.btf, def.valueTypeId, new Uint8Array(8)); // 0n for a __u64
 * ```
 */
export function decodeBtf(
  btf: Btf,
  typeId: number,
  bytes: Uint8Array,
  opts: BtfDecodeOptions = {},
): BtfValue {
  const path = opts.path ?? 'value';
  const size = btf.sizeOf(typeId);
  if (bytes.length < size) {
    throw new UsageError(`${path}: ${bytes.length} bytes, ${typeName(btf, typeId)} takes ${size}`);
  }
  return new Decoder(btf, bytes, opts.asString ?? false).value(typeId, 0, path, 0, 0);
}

/**
 * Encodes `value` as BTF type `typeId` into a new buffer of `btf.sizeOf(typeId)` bytes.
 * Accepts what `decodeBtf` returns, and also: a `bigint` or a `number` for any integer or
 * pointer, an enumerator name for an enum, a string for an array of chars, an array shorter
 * than the type's (the rest is zero) and objects without some members (zero). Unknown
 * members, values of the wrong shape and integers that do not fit throw a `UsageError`
 * naming the path, e.g. `value.hdr.len: 70000 does not fit u16`. A union writes every member
 * given, in declaration order.
 *
 * @example
 * ```ts
 * encodeBtf(btf, flowKeyId, { saddr: 0x0a000001, dport: 443, proto: 'IPPROTO_TCP' });
 * ```
 */
export function encodeBtf(
  btf: Btf,
  typeId: number,
  value: unknown,
  opts: BtfEncodeOptions = {},
): Uint8Array {
  const out = new Uint8Array(btf.sizeOf(typeId));
  new Encoder(btf, out).value(typeId, 0, value, opts.path ?? 'value', 0, 0);
  return out;
}

/**
 * The name of the first enumerator of enum `typeId` whose value is `value`; undefined when
 * none has it.
 *
 * @example
 * ```ts
 * enumName(btf, protoId, 6); // 'IPPROTO_TCP'
 * ```
 */
export function enumName(btf: Btf, typeId: number, value: number | bigint): string | undefined {
  const t = btf.resolve(typeId);
  if (t.kind !== 'enum' && t.kind !== 'enum64') {
    throw new UsageError(`${typeName(btf, typeId)} is not an enum`);
  }
  const v = BigInt(value);
  const asSigned = BigInt.asIntN(t.size * 8, v);
  const asUnsigned = BigInt.asUintN(t.size * 8, v);
  for (const e of t.values) {
    const ev = BigInt(e.value);
    if (ev === v || ev === asSigned || ev === asUnsigned) return e.name;
  }
  return undefined;
}

/** `struct foo`, `__u32`, `type [7] (array)`: a type as errors name it. */
function typeName(btf: Btf, typeId: number): string {
  const t = btf.typeById(typeId);
  if (t.name === '') return `type [${typeId}] (${t.kind})`;
  return t.kind === 'struct' || t.kind === 'union' || t.kind === 'enum' || t.kind === 'enum64'
    ? `${t.kind === 'enum64' ? 'enum' : t.kind} ${t.name}`
    : t.name;
}

/** True for the element type of a C string: `char` or an int with BTF_INT_CHAR. */
function isCharType(t: BtfType): boolean {
  return (
    t.kind === 'int' && t.size === 1 && (t.name === 'char' || (t.encoding & BTF_INT_CHAR) !== 0)
  );
}

/** The int or enum field of type `t` at bit `pos` (`bitfield` bits wide when non-zero). */
function intField(t: IntType | EnumType, pos: number, bitfield: number): IntField {
  if (t.kind === 'int') {
    return {
      pos: bitfield > 0 ? pos : pos + t.bitOffset,
      width: bitfield > 0 ? bitfield : t.bits,
      signed: (t.encoding & BTF_INT_SIGNED) !== 0,
      wide: t.bits > 32,
    };
  }
  return { pos, width: bitfield > 0 ? bitfield : t.size * 8, signed: t.signed, wide: t.size > 4 };
}

/** `u16`, `s32`, `u3`: the C-ish name of an integer field. */
function intLabel(f: IntField): string {
  return `${f.signed ? 's' : 'u'}${f.width}`;
}

/** Throws unless a member of `bits` bits at `bitOffset` lies inside struct `t`. */
function checkMember(t: StructType, name: string, bitOffset: number, bits: number): void {
  if (bitOffset + bits > t.size * 8) {
    throw new BtfError(
      `member '${name}' (${bits} bits at bit ${bitOffset}) outside ${t.kind} ${t.name || `[${t.id}]`} of ${t.size} bytes`,
      '.BTF',
    );
  }
}

function tooDeep(path: string): never {
  throw new BtfError(`${path}: nesting deeper than ${MAX_VALUE_NESTING}`, '.BTF');
}

/**
 * Bits a member occupies from its bit offset: its bitfield size, the bits of an INT (which
 * encode the width of a kind_flag-0 bitfield), else its type's size.
 */
function memberBits(btf: Btf, m: { readonly type: number; readonly bitfieldSize: number }): number {
  if (m.bitfieldSize > 0) return m.bitfieldSize;
  const t = btf.resolve(m.type);
  return t.kind === 'int' ? t.bitOffset + t.bits : btf.sizeOf(m.type) * 8;
}

/** Assigns `obj[name]` (also when a C member is called `__proto__`). */
function setMember(obj: BtfStruct, name: string, v: BtfValue): void {
  Object.defineProperty(obj, name, {
    value: v,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

/** Reads `width` bits at bit `pos` of `bytes`, little-endian, unsigned. */
function readBits(bytes: Uint8Array, pos: number, width: number): bigint {
  if (width === 0) return 0n;
  let v = 0n;
  for (let k = (pos + width - 1) >>> 3; k >= pos >>> 3; k--) v = (v << 8n) | BigInt(bytes[k] ?? 0);
  return (v >> BigInt(pos & 7)) & ((1n << BigInt(width)) - 1n);
}

/** Writes the low `width` bits of `v` at bit `pos` of `bytes`, leaving the other bits. */
function writeBits(bytes: Uint8Array, pos: number, width: number, v: bigint): void {
  for (let bit = 0; bit < width;) {
    const at = pos + bit;
    const shift = at & 7;
    const n = Math.min(8 - shift, width - bit);
    const mask = ((1 << n) - 1) << shift;
    const part = Number((v >> BigInt(bit)) & BigInt((1 << n) - 1)) << shift;
    const k = at >>> 3;
    bytes[k] = ((bytes[k] ?? 0) & ~mask) | part;
    bit += n;
  }
}

/** Walks a type over a buffer, building the value. */
class Decoder {
  private readonly btf: Btf;
  private readonly bytes: Uint8Array;
  private readonly asString: boolean;
  private readonly view: DataView;

  constructor(btf: Btf, bytes: Uint8Array, asString: boolean) {
    this.btf = btf;
    this.bytes = bytes;
    this.asString = asString;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** The value of type `typeId` at bit `pos` (a bitfield of `bitfield` bits when non-zero). */
  value(typeId: number, pos: number, path: string, depth: number, bitfield: number): BtfValue {
    if (depth > MAX_VALUE_NESTING) tooDeep(path);
    const t = this.btf.resolve(typeId);
    switch (t.kind) {
      case 'int':
      case 'enum':
      case 'enum64': {
        const f = intField(t, pos, bitfield);
        const raw = readBits(this.bytes, f.pos, f.width);
        if (t.kind === 'int' && (t.encoding & BTF_INT_BOOL) !== 0) return raw !== 0n;
        const v = f.signed && f.width > 0 ? BigInt.asIntN(f.width, raw) : raw;
        return f.wide ? v : Number(v);
      }
      case 'ptr':
        return readBits(this.bytes, pos, 64);
      case 'float':
        return this.float(t.size, pos >>> 3, path);
      case 'array':
        return this.array(t, pos, path, depth);
      case 'struct':
      case 'union':
        return this.struct(t, pos, path, depth);
      default:
        throw new UsageError(`${path}: ${typeName(this.btf, typeId)} has no value layout`);
    }
  }

  private float(size: number, off: number, path: string): number {
    if (size === 4) return this.view.getFloat32(off, true);
    if (size === 8) return this.view.getFloat64(off, true);
    throw new UsageError(`${path}: ${size}-byte floats are not supported`);
  }

  private array(t: ArrayType, pos: number, path: string, depth: number): BtfValue {
    const elem = this.btf.resolve(t.type);
    if (this.asString && isCharType(elem)) {
      const from = pos >>> 3;
      const bytes = this.bytes.subarray(from, from + t.nelems);
      const nul = bytes.indexOf(0);
      return new TextDecoder().decode(nul < 0 ? bytes : bytes.subarray(0, nul));
    }
    const stride = this.btf.sizeOf(t.type) * 8;
    const out: BtfValue[] = [];
    for (let k = 0; k < t.nelems; k++) {
      out.push(this.value(t.type, pos + k * stride, `${path}[${k}]`, depth + 1, 0));
    }
    return out;
  }

  private struct(t: StructType, pos: number, path: string, depth: number): BtfStruct {
    if (depth > MAX_VALUE_NESTING) tooDeep(path);
    const out: BtfStruct = {};
    for (const m of t.members) {
      checkMember(t, m.name, m.bitOffset, memberBits(this.btf, m));
      const at = pos + m.bitOffset;
      if (m.name === '') {
        const inner = this.btf.resolve(m.type);
        if (inner.kind !== 'struct' && inner.kind !== 'union') continue;
        const flat = this.struct(inner, at, path, depth + 1);
        for (const [k, v] of Object.entries(flat)) setMember(out, k, v);
        continue;
      }
      setMember(
        out,
        m.name,
        this.value(m.type, at, `${path}.${m.name}`, depth + 1, m.bitfieldSize),
      );
    }
    return out;
  }
}

/** Describes a JavaScript value for an error: `a string`, `an array`, `1.5`. */
function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `a string '${v}'`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return `a ${typeof v}`;
}

/** True for a plain object (a struct's value), not an array or null. */
function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/** Walks a type over a zeroed buffer, writing a value. */
class Encoder {
  private readonly btf: Btf;
  private readonly out: Uint8Array;
  private readonly view: DataView;

  constructor(btf: Btf, out: Uint8Array) {
    this.btf = btf;
    this.out = out;
    this.view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  }

  /** Writes `v` as type `typeId` at bit `pos` (a bitfield of `bitfield` bits when non-zero). */
  value(
    typeId: number,
    pos: number,
    v: unknown,
    path: string,
    depth: number,
    bitfield: number,
  ): void {
    if (depth > MAX_VALUE_NESTING) tooDeep(path);
    const t = this.btf.resolve(typeId);
    switch (t.kind) {
      case 'int':
        return this.int(t, pos, bitfield, v, path);
      case 'enum':
      case 'enum64':
        return this.enum(t, pos, bitfield, v, path);
      case 'ptr': {
        const f: IntField = { pos, width: 64, signed: false, wide: true };
        return writeBits(this.out, pos, 64, this.integer(f, v, path, 'an address'));
      }
      case 'float':
        return this.float(t.size, pos >>> 3, v, path);
      case 'array':
        return this.array(t, pos, v, path, depth);
      case 'struct':
      case 'union':
        if (!isRecord(v)) {
          throw new UsageError(
            `${path}: expected an object for ${typeName(this.btf, typeId)}, got ${describe(v)}`,
          );
        }
        this.checkKeys(t, v, path);
        return this.struct(t, pos, v, path, depth);
      default:
        throw new UsageError(`${path}: ${typeName(this.btf, typeId)} has no value layout`);
    }
  }

  private int(t: IntType, pos: number, bitfield: number, v: unknown, path: string): void {
    const f = intField(t, pos, bitfield);
    if ((t.encoding & BTF_INT_BOOL) !== 0 && typeof v === 'boolean') {
      return writeBits(this.out, f.pos, f.width, v ? 1n : 0n);
    }
    writeBits(this.out, f.pos, f.width, this.integer(f, v, path, 'an integer'));
  }

  private enum(t: EnumType, pos: number, bitfield: number, v: unknown, path: string): void {
    const f = intField(t, pos, bitfield);
    if (typeof v === 'string') {
      const e = t.values.find((x) => x.name === v);
      if (e === undefined) {
        throw new UsageError(`${path}: '${v}' is not an enumerator of ${typeName(this.btf, t.id)}`);
      }
      return writeBits(this.out, f.pos, f.width, this.integer(f, BigInt(e.value), path, ''));
    }
    writeBits(this.out, f.pos, f.width, this.integer(f, v, path, 'an integer or enumerator name'));
  }

  /** `v` as the unsigned bits of field `f`; throws when it is not an integer that fits. */
  private integer(f: IntField, v: unknown, path: string, expected: string): bigint {
    let n: bigint;
    if (typeof v === 'bigint') n = v;
    else if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
    else throw new UsageError(`${path}: expected ${expected}, got ${describe(v)}`);
    const w = BigInt(f.width);
    const [min, max] =
      f.signed && w > 0n ? [-(1n << (w - 1n)), (1n << (w - 1n)) - 1n] : [0n, (1n << w) - 1n];
    if (n < min || n > max) {
      throw new UsageError(`${path}: ${String(v)} does not fit ${intLabel(f)}`);
    }
    return BigInt.asUintN(f.width, n);
  }

  private float(size: number, off: number, v: unknown, path: string): void {
    if (typeof v !== 'number')
      throw new UsageError(`${path}: expected a number, got ${describe(v)}`);
    if (size === 4) this.view.setFloat32(off, v, true);
    else if (size === 8) this.view.setFloat64(off, v, true);
    else throw new UsageError(`${path}: ${size}-byte floats are not supported`);
  }

  private array(t: ArrayType, pos: number, v: unknown, path: string, depth: number): void {
    const elem = this.btf.resolve(t.type);
    if (typeof v === 'string' && isCharType(elem)) {
      const bytes = new TextEncoder().encode(v);
      if (bytes.length > t.nelems) {
        throw new UsageError(
          `${path}: string of ${bytes.length} bytes does not fit char[${t.nelems}]`,
        );
      }
      return this.out.set(bytes, pos >>> 3);
    }
    if (!Array.isArray(v)) {
      throw new UsageError(
        `${path}: expected an array of up to ${t.nelems} elements, got ${describe(v)}`,
      );
    }
    if (v.length > t.nelems) {
      throw new UsageError(`${path}: ${v.length} elements do not fit [${t.nelems}]`);
    }
    const stride = this.btf.sizeOf(t.type) * 8;
    v.forEach((e: unknown, k) => {
      if (e !== undefined) this.value(t.type, pos + k * stride, e, `${path}[${k}]`, depth + 1, 0);
    });
  }

  /** Writes the members `v` gives (anonymous struct/union members take theirs from `v`). */
  private struct(
    t: StructType,
    pos: number,
    v: Readonly<Record<string, unknown>>,
    path: string,
    depth: number,
  ): void {
    if (depth > MAX_VALUE_NESTING) tooDeep(path);
    for (const m of t.members) {
      checkMember(t, m.name, m.bitOffset, memberBits(this.btf, m));
      const at = pos + m.bitOffset;
      if (m.name === '') {
        const inner = this.btf.resolve(m.type);
        if (inner.kind === 'struct' || inner.kind === 'union')
          this.struct(inner, at, v, path, depth + 1);
        continue;
      }
      const mv = Object.prototype.hasOwnProperty.call(v, m.name) ? v[m.name] : undefined;
      if (mv !== undefined)
        this.value(m.type, at, mv, `${path}.${m.name}`, depth + 1, m.bitfieldSize);
    }
  }

  /** Throws on a key that names no member (typos would otherwise be silently zero). */
  private checkKeys(t: StructType, v: Readonly<Record<string, unknown>>, path: string): void {
    const names = new Set<string>();
    this.memberNames(t, names, 0);
    for (const k of Object.keys(v)) {
      if (!names.has(k)) {
        throw new UsageError(
          `${path}: ${typeName(this.btf, t.id)} has no member '${k}' (have: ${[...names].join(', ')})`,
        );
      }
    }
  }

  private memberNames(t: StructType, into: Set<string>, depth: number): void {
    if (depth > MAX_VALUE_NESTING) tooDeep(t.name);
    for (const m of t.members) {
      if (m.name !== '') into.add(m.name);
      else {
        const inner = this.btf.resolve(m.type);
        if (inner.kind === 'struct' || inner.kind === 'union')
          this.memberNames(inner, into, depth + 1);
      }
    }
  }
}
