/**
 * Builders for hand-made BPF objects in loader tests: `buildElf` lays out an ELF64 LE
 * relocatable object (sections, a symbol table, SHT_REL sections) and `BtfBuilder` writes a
 * `.BTF` section type by type. They write what clang writes, so the tests can also write what
 * clang never does (bad indexes, truncations, odd relocations).
 */

import { encodeInsns, type Insn } from '../../../../src/isa/insn.js';

/** A section to lay out. `data` for PROGBITS, `size` for NOBITS. */
export interface TestSection {
  readonly name: string;
  /** SHT_PROGBITS (1) by default. */
  readonly type?: number;
  /** SHF_ALLOC | SHF_EXECINSTR (6) when `insns` is given, else SHF_ALLOC | SHF_WRITE (3). */
  readonly flags?: number;
  readonly data?: Uint8Array;
  readonly insns?: readonly Insn[];
  readonly size?: number;
}

/** A symbol. No `section` means undefined (SHN_UNDEF). */
export interface TestSymbol {
  readonly name: string;
  readonly section?: string;
  readonly value?: number;
  readonly size?: number;
  /** STT_* (default STT_FUNC in code, STT_OBJECT elsewhere, STT_NOTYPE when undefined). */
  readonly type?: number;
  /** STB_* (default STB_GLOBAL). */
  readonly bind?: number;
}

/** A relocation of `section` at `offset` against `symbol` (a name or a raw index). */
export interface TestRel {
  readonly section: string;
  readonly offset: number;
  readonly type: number;
  readonly symbol: string | number;
}

/** What `buildElf` lays out. */
export interface TestObject {
  readonly sections: readonly TestSection[];
  readonly symbols?: readonly TestSymbol[];
  readonly relocs?: readonly TestRel[];
}

class StrTab {
  private readonly parts: number[] = [0];
  private readonly index = new Map<string, number>([['', 0]]);

  add(s: string): number {
    const old = this.index.get(s);
    if (old !== undefined) return old;
    const off = this.parts.length;
    this.parts.push(...new TextEncoder().encode(s), 0);
    this.index.set(s, off);
    return off;
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

interface Laid {
  name: string;
  type: number;
  flags: number;
  data: Uint8Array;
  size: number;
  link: number;
  info: number;
  entsize: number;
  align: number;
}

/** Lays out a BPF object: user sections, `.rel*` sections, `.symtab`, `.strtab`, `.shstrtab`. */
export function buildElf(obj: TestObject): Uint8Array {
  const laid: Laid[] = [
    {
      name: '',
      type: 0,
      flags: 0,
      data: new Uint8Array(0),
      size: 0,
      link: 0,
      info: 0,
      entsize: 0,
      align: 0,
    },
  ];
  const secIndex = new Map<string, number>();
  for (const s of obj.sections) {
    const data = s.insns !== undefined ? encodeInsns(s.insns) : (s.data ?? new Uint8Array(0));
    const type = s.type ?? 1;
    secIndex.set(s.name, laid.length);
    laid.push({
      name: s.name,
      type,
      flags: s.flags ?? (s.insns !== undefined ? 6 : 3),
      data: type === 8 ? new Uint8Array(0) : data,
      size: type === 8 ? (s.size ?? 0) : data.length,
      link: 0,
      info: 0,
      entsize: 0,
      align: 8,
    });
  }
  const symIdx = laid.length + (obj.relocs === undefined ? 0 : relTargets(obj).length);
  const strIdx = symIdx + 1;
  const strtab = new StrTab();
  const symtab = new Uint8Array(24 * (1 + (obj.symbols?.length ?? 0)));
  const sv = new DataView(symtab.buffer);
  const symNames = new Map<string, number>();
  (obj.symbols ?? []).forEach((sym, k) => {
    const off = 24 * (k + 1);
    const shndx = sym.section === undefined ? 0 : (secIndex.get(sym.section) ?? 0);
    const isCode =
      sym.section !== undefined && obj.sections.find((s) => s.name === sym.section)?.insns;
    const type = sym.type ?? (sym.section === undefined ? 0 : isCode !== undefined ? 2 : 1);
    sv.setUint32(off, strtab.add(sym.name), true);
    sv.setUint8(off + 4, ((sym.bind ?? 1) << 4) | type);
    sv.setUint16(off + 6, shndx, true);
    sv.setBigUint64(off + 8, BigInt(sym.value ?? 0), true);
    sv.setBigUint64(off + 16, BigInt(sym.size ?? 0), true);
    if (!symNames.has(sym.name)) symNames.set(sym.name, k + 1);
  });
  for (const target of obj.relocs === undefined ? [] : relTargets(obj)) {
    const rels = (obj.relocs ?? []).filter((r) => r.section === target);
    const data = new Uint8Array(16 * rels.length);
    const rv = new DataView(data.buffer);
    rels.forEach((r, k) => {
      const sym = typeof r.symbol === 'number' ? r.symbol : (symNames.get(r.symbol) ?? 0);
      rv.setBigUint64(16 * k, BigInt(r.offset), true);
      rv.setUint32(16 * k + 8, r.type, true);
      rv.setUint32(16 * k + 12, sym, true);
    });
    laid.push({
      name: `.rel${target}`,
      type: 9,
      flags: 0x40,
      data,
      size: data.length,
      link: symIdx,
      info: secIndex.get(target) ?? 0,
      entsize: 16,
      align: 8,
    });
  }
  laid.push({
    name: '.symtab',
    type: 2,
    flags: 0,
    data: symtab,
    size: symtab.length,
    link: strIdx,
    info: 1,
    entsize: 24,
    align: 8,
  });
  const strBytes = strtab.bytes();
  laid.push({
    name: '.strtab',
    type: 3,
    flags: 0,
    data: strBytes,
    size: strBytes.length,
    link: 0,
    info: 0,
    entsize: 0,
    align: 1,
  });
  const shstr = new StrTab();
  const nameOffs = laid.map((s) => shstr.add(s.name));
  const shstrOff = shstr.add('.shstrtab');
  const shstrBytes = shstr.bytes();
  laid.push({
    name: '.shstrtab',
    type: 3,
    flags: 0,
    data: shstrBytes,
    size: shstrBytes.length,
    link: 0,
    info: 0,
    entsize: 0,
    align: 1,
  });
  nameOffs.push(shstrOff);

  let off = 64;
  const offsets = laid.map((s) => {
    off = (off + 7) & ~7;
    const at = off;
    off += s.data.length;
    return at;
  });
  const shoff = (off + 7) & ~7;
  const out = new Uint8Array(shoff + 64 * laid.length);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  v.setUint16(16, 1, true);
  v.setUint16(18, 247, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(40, BigInt(shoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, laid.length, true);
  v.setUint16(62, laid.length - 1, true);
  laid.forEach((s, k) => {
    out.set(s.data, offsets[k] as number);
    const h = shoff + 64 * k;
    v.setUint32(h, nameOffs[k] as number, true);
    v.setUint32(h + 4, s.type, true);
    v.setBigUint64(h + 8, BigInt(s.flags), true);
    v.setBigUint64(h + 24, BigInt(k === 0 ? 0 : (offsets[k] as number)), true);
    v.setBigUint64(h + 32, BigInt(s.size), true);
    v.setUint32(h + 40, s.link, true);
    v.setUint32(h + 44, s.info, true);
    v.setBigUint64(h + 48, BigInt(s.align), true);
    v.setBigUint64(h + 56, BigInt(s.entsize), true);
  });
  return out;
}

function relTargets(obj: TestObject): string[] {
  return [...new Set((obj.relocs ?? []).map((r) => r.section))];
}

/** Little-endian u32 words as bytes. */
export function u32s(...words: number[]): Uint8Array {
  const out = new Uint8Array(4 * words.length);
  const v = new DataView(out.buffer);
  words.forEach((w, k) => v.setUint32(4 * k, w >>> 0, true));
  return out;
}

/** Writes a `.BTF` section; each method appends one type and returns its id. */
export class BtfBuilder {
  private readonly strs = new StrTab();
  private readonly words: number[] = [];
  private count = 0;

  private type(
    name: string,
    kind: number,
    vlen: number,
    sizeOrType: number,
    kindFlag = false,
  ): number {
    this.words.push(
      this.strs.add(name),
      ((kindFlag ? 1 : 0) << 31) | (kind << 24) | vlen,
      sizeOrType,
    );
    return ++this.count;
  }

  int(name: string, size: number, encoding = 0, bits = size * 8, bitOffset = 0): number {
    const id = this.type(name, 1, 0, size);
    this.words.push((encoding << 24) | (bitOffset << 16) | bits);
    return id;
  }

  ptr(type: number): number {
    return this.type('', 2, 0, type);
  }

  array(elem: number, index: number, nelems: number): number {
    const id = this.type('', 3, 0, 0);
    this.words.push(elem, index, nelems);
    return id;
  }

  /** `members`: [name, type, bitOffset, bitfieldSize]; a bitfield size sets kind_flag. */
  struct(
    name: string,
    size: number,
    members: readonly (readonly [string, number, number, number?])[],
    union = false,
  ): number {
    const kindFlag = members.some((m) => (m[3] ?? 0) > 0);
    const id = this.type(name, union ? 5 : 4, members.length, size, kindFlag);
    for (const [n, t, bitOff, bits] of members) {
      this.words.push(this.strs.add(n), t, kindFlag ? ((bits ?? 0) << 24) | bitOff : bitOff);
    }
    return id;
  }

  enum(
    name: string,
    size: number,
    values: readonly (readonly [string, number])[],
    signed = false,
  ): number {
    const id = this.type(name, 6, values.length, size, signed);
    for (const [n, v] of values) this.words.push(this.strs.add(n), v);
    return id;
  }

  enum64(name: string, values: readonly (readonly [string, bigint])[], signed = false): number {
    const id = this.type(name, 19, values.length, 8, signed);
    for (const [n, v] of values) {
      const u = BigInt.asUintN(64, v);
      this.words.push(this.strs.add(n), Number(u & 0xffffffffn), Number(u >> 32n));
    }
    return id;
  }

  fwd(name: string, union = false): number {
    return this.type(name, 7, 0, 0, union);
  }

  /** typedef 8, volatile 9, const 10, restrict 11, type_tag 18. */
  modifier(kind: 8 | 9 | 10 | 11 | 18, name: string, type: number): number {
    return this.type(name, kind, 0, type);
  }

  func(name: string, proto: number, linkage = 1): number {
    return this.type(name, 12, linkage, proto);
  }

  funcProto(ret: number, params: readonly (readonly [string, number])[]): number {
    const id = this.type('', 13, params.length, ret);
    for (const [n, t] of params) this.words.push(this.strs.add(n), t);
    return id;
  }

  variable(name: string, type: number, linkage = 1): number {
    const id = this.type(name, 14, 0, type);
    this.words.push(linkage);
    return id;
  }

  datasec(
    name: string,
    size: number,
    vars: readonly (readonly [number, number, number])[],
  ): number {
    const id = this.type(name, 15, vars.length, size);
    for (const v of vars) this.words.push(...v);
    return id;
  }

  float(name: string, size: number): number {
    return this.type(name, 16, 0, size);
  }

  declTag(name: string, type: number, componentIdx: number): number {
    const id = this.type(name, 17, 0, type);
    this.words.push(componentIdx);
    return id;
  }

  /** The section bytes: header, types, strings. */
  build(): Uint8Array {
    const types = u32s(...this.words);
    const strs = this.strs.bytes();
    const hdr = new Uint8Array(24);
    const v = new DataView(hdr.buffer);
    v.setUint16(0, 0xeb9f, true);
    v.setUint8(2, 1);
    v.setUint32(4, 24, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, types.length, true);
    v.setUint32(16, types.length, true);
    v.setUint32(20, strs.length, true);
    const out = new Uint8Array(24 + types.length + strs.length);
    out.set(hdr);
    out.set(types, 24);
    out.set(strs, 24 + types.length);
    return out;
  }
}
