/**
 * BTF, the BPF Type Format (`.BTF` section): the header, the string section and every type
 * kind the kernel defines (INT .. ENUM64), plus the queries the loader and later the verifier
 * need: type by id, modifier/typedef resolution, sizes, struct member lookup.
 *
 * Called from: `loadObject` (maps, global data, func_info names), BTF.ext parsing (strings).
 * Invariants: after `parseBtf`, every type id a type refers to is in range (id 0 is `void`),
 * every name was read from the string section, and resolution loops are bounded
 * (`MAX_RESOLVE_DEPTH`, as the kernel's), so a cyclic type graph gives a `BtfError`, never a
 * hang or a stack overflow.
 */

import { BtfError } from '../errors.js';
import { ByteReader, hex } from './reader.js';

/** `btf_header.magic`. */
export const BTF_MAGIC = 0xeb9f;
/** The kernel's bound on modifier/typedef/array chains. */
export const MAX_RESOLVE_DEPTH = 32;

/** `BTF_KIND_*` numbers. */
export const BTF_KIND_INT = 1;
export const BTF_KIND_PTR = 2;
export const BTF_KIND_ARRAY = 3;
export const BTF_KIND_STRUCT = 4;
export const BTF_KIND_UNION = 5;
export const BTF_KIND_ENUM = 6;
export const BTF_KIND_FWD = 7;
export const BTF_KIND_TYPEDEF = 8;
export const BTF_KIND_VOLATILE = 9;
export const BTF_KIND_CONST = 10;
export const BTF_KIND_RESTRICT = 11;
export const BTF_KIND_FUNC = 12;
export const BTF_KIND_FUNC_PROTO = 13;
export const BTF_KIND_VAR = 14;
export const BTF_KIND_DATASEC = 15;
export const BTF_KIND_FLOAT = 16;
export const BTF_KIND_DECL_TAG = 17;
export const BTF_KIND_TYPE_TAG = 18;
export const BTF_KIND_ENUM64 = 19;

/** `BTF_INT_ENCODING` bits. */
export const BTF_INT_SIGNED = 1;
export const BTF_INT_CHAR = 2;
export const BTF_INT_BOOL = 4;

/** A struct/union member. `bitOffset` from the start; `bitfieldSize` 0 unless a bitfield. */
export interface BtfMember {
  readonly name: string;
  readonly type: number;
  readonly bitOffset: number;
  readonly bitfieldSize: number;
}

/** A FUNC_PROTO parameter (name empty in prototypes clang emits for pointers). */
export interface BtfParam {
  readonly name: string;
  readonly type: number;
}

/** A DATASEC entry: a VAR (or FUNC for `.ksyms`) at `offset` of `size` bytes. */
export interface BtfVarSecinfo {
  readonly type: number;
  readonly offset: number;
  readonly size: number;
}

/** Modifier kinds that only wrap another type. */
export type BtfModifierKind = 'typedef' | 'volatile' | 'const' | 'restrict' | 'type_tag';

/** One BTF type. `id` is its type id; `name` is '' when anonymous. */
export type BtfType =
  | { readonly kind: 'void'; readonly id: 0; readonly name: '' }
  | {
      readonly kind: 'int';
      readonly id: number;
      readonly name: string;
      readonly size: number;
      /** BTF_INT_SIGNED | BTF_INT_CHAR | BTF_INT_BOOL. */
      readonly encoding: number;
      readonly bitOffset: number;
      readonly bits: number;
    }
  | { readonly kind: 'ptr'; readonly id: number; readonly name: string; readonly type: number }
  | {
      readonly kind: 'array';
      readonly id: number;
      readonly name: string;
      readonly type: number;
      readonly indexType: number;
      readonly nelems: number;
    }
  | {
      readonly kind: 'struct' | 'union';
      readonly id: number;
      readonly name: string;
      readonly size: number;
      readonly members: readonly BtfMember[];
    }
  | {
      readonly kind: 'enum';
      readonly id: number;
      readonly name: string;
      readonly size: number;
      readonly signed: boolean;
      readonly values: readonly { readonly name: string; readonly value: number }[];
    }
  | {
      readonly kind: 'enum64';
      readonly id: number;
      readonly name: string;
      readonly size: number;
      readonly signed: boolean;
      readonly values: readonly { readonly name: string; readonly value: bigint }[];
    }
  | { readonly kind: 'fwd'; readonly id: number; readonly name: string; readonly isUnion: boolean }
  | {
      readonly kind: BtfModifierKind;
      readonly id: number;
      readonly name: string;
      readonly type: number;
    }
  | {
      readonly kind: 'func';
      readonly id: number;
      readonly name: string;
      readonly type: number;
      /** BTF_FUNC_STATIC 0, GLOBAL 1, EXTERN 2. */
      readonly linkage: number;
    }
  | {
      readonly kind: 'func_proto';
      readonly id: number;
      readonly name: string;
      readonly returnType: number;
      readonly params: readonly BtfParam[];
    }
  | {
      readonly kind: 'var';
      readonly id: number;
      readonly name: string;
      readonly type: number;
      /** BTF_VAR_STATIC 0, GLOBAL_ALLOCATED 1, GLOBAL_EXTERN 2. */
      readonly linkage: number;
    }
  | {
      readonly kind: 'datasec';
      readonly id: number;
      readonly name: string;
      readonly size: number;
      readonly vars: readonly BtfVarSecinfo[];
    }
  | { readonly kind: 'float'; readonly id: number; readonly name: string; readonly size: number }
  | {
      readonly kind: 'decl_tag';
      readonly id: number;
      readonly name: string;
      readonly type: number;
      /** -1 for the type itself, else the member/parameter index. */
      readonly componentIdx: number;
    };

/** The kind string of each type. */
export type BtfKind = BtfType['kind'];

/** Parsed `.BTF`: the type table (index = type id, 0 = void) and the string section. */
export class Btf {
  readonly types: readonly BtfType[];
  private readonly strings: ByteReader;
  private readonly section: string;
  /** File offset of each type record, for errors. */
  private readonly offsets: readonly number[];

  constructor(
    types: readonly BtfType[],
    strings: ByteReader,
    section: string,
    offsets: readonly number[] = [],
  ) {
    this.types = types;
    this.strings = strings;
    this.section = section;
    this.offsets = offsets;
  }

  /** The string at `off` of the string section. */
  str(off: number): string {
    return this.strings.cstr(off, 'string');
  }

  /** The type with id `id`; throws `BtfError` when out of range. */
  typeById(id: number): BtfType {
    const t = this.types[id];
    if (t === undefined) {
      throw new BtfError(
        `type id ${id} out of range (${this.types.length} types)`,
        this.section,
        0,
      );
    }
    return t;
  }

  /** Skips typedefs and modifiers (const, volatile, restrict, type_tag). */
  resolve(id: number): BtfType {
    let t = this.typeById(id);
    for (let depth = 0; isModifier(t); depth++) {
      if (depth >= MAX_RESOLVE_DEPTH) this.tooDeep(id);
      t = this.typeById(t.type);
    }
    return t;
  }

  /** Size in bytes of a type (the kernel's `btf_type_size` after resolution). */
  sizeOf(id: number): number {
    let t = this.resolve(id);
    let mult = 1;
    for (let depth = 0; t.kind === 'array'; depth++) {
      if (depth >= MAX_RESOLVE_DEPTH) this.tooDeep(id);
      mult *= t.nelems;
      t = this.resolve(t.type);
    }
    switch (t.kind) {
      case 'int':
      case 'struct':
      case 'union':
      case 'enum':
      case 'enum64':
      case 'float':
      case 'datasec':
        return mult * t.size;
      case 'ptr':
        return mult * 8;
      default:
        throw new BtfError(
          `type [${id}] (${t.kind}) has no size`,
          this.section,
          this.offsets[t.id] ?? 0,
        );
    }
  }

  /** The member `name` of the struct or union `id` (after resolution), if any. */
  findMember(id: number, name: string): BtfMember | undefined {
    const t = this.resolve(id);
    if (t.kind !== 'struct' && t.kind !== 'union') return undefined;
    return t.members.find((m) => m.name === name);
  }

  /** The first type of `kind` named `name`. */
  findByName<K extends BtfKind>(kind: K, name: string): Extract<BtfType, { kind: K }> | undefined {
    return this.types.find(
      (t): t is Extract<BtfType, { kind: K }> => t.kind === kind && t.name === name,
    );
  }

  private tooDeep(id: number): never {
    throw new BtfError(
      `type [${id}]: chain longer than ${MAX_RESOLVE_DEPTH}`,
      this.section,
      this.offsets[id] ?? 0,
    );
  }
}

/** True for typedef and the modifiers. */
export function isModifier(t: BtfType): t is Extract<BtfType, { kind: BtfModifierKind }> {
  return (
    t.kind === 'typedef' ||
    t.kind === 'volatile' ||
    t.kind === 'const' ||
    t.kind === 'restrict' ||
    t.kind === 'type_tag'
  );
}

/**
 * Parses a `.BTF` section. `fileOffset` (of the section in the file) makes error offsets
 * file offsets; `section` names the section in errors.
 *
 * @example
 * ```ts
 * const btf = parseBtf(section.data, '.BTF', section.offset);
 * btf.findByName('datasec', '.maps');
 * ```
 */
export function parseBtf(bytes: Uint8Array, section = '.BTF', fileOffset = 0): Btf {
  const fail = (reason: string, off: number): never => {
    throw new BtfError(reason, section, fileOffset + off);
  };
  const r = new ByteReader(bytes, fail);
  const magic = r.u16(0, 'header');
  if (magic !== BTF_MAGIC) fail(`bad magic 0x${hex(magic)}`, 0);
  if (r.u8(2, 'header') !== 1) fail(`unsupported version ${r.u8(2)}`, 2);
  const hdrLen = r.u32(4, 'header');
  if (hdrLen < 24) fail(`header length ${hdrLen} < 24`, 4);
  const typeOff = hdrLen + r.u32(8, 'header');
  const typeLen = r.u32(12, 'header');
  const strOff = hdrLen + r.u32(16, 'header');
  const strLen = r.u32(20, 'header');
  r.check(typeOff, typeLen, 'type section');
  r.check(strOff, strLen, 'string section');
  const strBytes = bytes.subarray(strOff, strOff + strLen);
  if (strLen > 0 && strBytes[0] !== 0) fail('string section does not start with NUL', strOff);
  const strings = new ByteReader(strBytes, (reason, off) => fail(reason, strOff + off));
  const offsets: number[] = [typeOff];
  const types = readTypes(r, typeOff, typeLen, strings, fail, offsets);
  return new Btf(
    types,
    strings,
    section,
    offsets.map((o) => o + fileOffset),
  );
}

type Fail = (reason: string, off: number) => never;

function readTypes(
  r: ByteReader,
  start: number,
  len: number,
  strings: ByteReader,
  fail: Fail,
  offsets: number[],
): BtfType[] {
  const types: BtfType[] = [{ kind: 'void', id: 0, name: '' }];
  const refs: { id: number; off: number }[] = [];
  const end = start + len;
  let off = start;
  while (off < end) {
    const id = types.length;
    const at = off;
    offsets[id] = at;
    const ref = (typeId: number): number => {
      refs.push({ id: typeId, off: at });
      return typeId;
    };
    const name = strings.cstr(r.u32(off, 'btf_type'), 'type name');
    const info = r.u32(off + 4, 'btf_type');
    const sizeOrType = r.u32(off + 8, 'btf_type');
    const vlen = info & 0xffff;
    const kind = (info >>> 24) & 0x1f;
    const kindFlag = info >>> 31 === 1;
    off += 12;
    const need = (n: number): void => {
      if (off + n > end) fail(`type [${id}]: ${n} bytes of data past the type section`, at);
    };
    switch (kind) {
      case BTF_KIND_INT: {
        need(4);
        const v = r.u32(off);
        off += 4;
        types.push({
          kind: 'int',
          id,
          name,
          size: sizeOrType,
          encoding: (v >>> 24) & 0xf,
          bitOffset: (v >>> 16) & 0xff,
          bits: v & 0xff,
        });
        break;
      }
      case BTF_KIND_PTR:
        types.push({ kind: 'ptr', id, name, type: ref(sizeOrType) });
        break;
      case BTF_KIND_ARRAY:
        need(12);
        types.push({
          kind: 'array',
          id,
          name,
          type: ref(r.u32(off)),
          indexType: ref(r.u32(off + 4)),
          nelems: r.u32(off + 8),
        });
        off += 12;
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: {
        need(vlen * 12);
        const members: BtfMember[] = [];
        for (let k = 0; k < vlen; k++, off += 12) {
          const o = r.u32(off + 8);
          members.push({
            name: strings.cstr(r.u32(off), 'member name'),
            type: ref(r.u32(off + 4)),
            bitOffset: kindFlag ? o & 0xffffff : o,
            bitfieldSize: kindFlag ? o >>> 24 : 0,
          });
        }
        const k = kind === BTF_KIND_STRUCT ? 'struct' : 'union';
        types.push({ kind: k, id, name, size: sizeOrType, members });
        break;
      }
      case BTF_KIND_ENUM: {
        need(vlen * 8);
        const values: { name: string; value: number }[] = [];
        for (let k = 0; k < vlen; k++, off += 8) {
          const v = kindFlag ? r.i32(off + 4) : r.u32(off + 4);
          values.push({ name: strings.cstr(r.u32(off), 'enum name'), value: v });
        }
        types.push({ kind: 'enum', id, name, size: sizeOrType, signed: kindFlag, values });
        break;
      }
      case BTF_KIND_ENUM64: {
        need(vlen * 12);
        const values: { name: string; value: bigint }[] = [];
        for (let k = 0; k < vlen; k++, off += 12) {
          const u = (BigInt(r.u32(off + 8)) << 32n) | BigInt(r.u32(off + 4));
          values.push({
            name: strings.cstr(r.u32(off), 'enum name'),
            value: kindFlag ? BigInt.asIntN(64, u) : u,
          });
        }
        types.push({ kind: 'enum64', id, name, size: sizeOrType, signed: kindFlag, values });
        break;
      }
      case BTF_KIND_FWD:
        types.push({ kind: 'fwd', id, name, isUnion: kindFlag });
        break;
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG:
        types.push({ kind: modifierKind(kind), id, name, type: ref(sizeOrType) });
        break;
      case BTF_KIND_FUNC:
        types.push({ kind: 'func', id, name, type: ref(sizeOrType), linkage: vlen });
        break;
      case BTF_KIND_FUNC_PROTO: {
        need(vlen * 8);
        const params: BtfParam[] = [];
        for (let k = 0; k < vlen; k++, off += 8) {
          params.push({
            name: strings.cstr(r.u32(off), 'param name'),
            type: ref(r.u32(off + 4)),
          });
        }
        types.push({ kind: 'func_proto', id, name, returnType: ref(sizeOrType), params });
        break;
      }
      case BTF_KIND_VAR:
        need(4);
        types.push({ kind: 'var', id, name, type: ref(sizeOrType), linkage: r.u32(off) });
        off += 4;
        break;
      case BTF_KIND_DATASEC: {
        need(vlen * 12);
        const vars: BtfVarSecinfo[] = [];
        for (let k = 0; k < vlen; k++, off += 12) {
          vars.push({ type: ref(r.u32(off)), offset: r.u32(off + 4), size: r.u32(off + 8) });
        }
        types.push({ kind: 'datasec', id, name, size: sizeOrType, vars });
        break;
      }
      case BTF_KIND_FLOAT:
        types.push({ kind: 'float', id, name, size: sizeOrType });
        break;
      case BTF_KIND_DECL_TAG:
        need(4);
        types.push({ kind: 'decl_tag', id, name, type: ref(sizeOrType), componentIdx: r.i32(off) });
        off += 4;
        break;
      default:
        fail(`type [${id}]: unknown kind ${kind}`, at);
    }
  }
  for (const { id, off } of refs) {
    if (id >= types.length) fail(`type id ${id} out of range (${types.length} types)`, off);
  }
  return types;
}

function modifierKind(kind: number): BtfModifierKind {
  switch (kind) {
    case BTF_KIND_TYPEDEF:
      return 'typedef';
    case BTF_KIND_VOLATILE:
      return 'volatile';
    case BTF_KIND_CONST:
      return 'const';
    case BTF_KIND_RESTRICT:
      return 'restrict';
    default:
      return 'type_tag';
  }
}
