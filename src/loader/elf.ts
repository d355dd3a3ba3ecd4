/**
 * ELF64 little-endian reader for BPF relocatable objects (what `clang --target=bpf -c`
 * writes): the header checks (ELFCLASS64, ELFDATA2LSB, ET_REL, EM_BPF), the section header
 * table and its names, the symbol table and SHT_REL relocation sections.
 *
 * Called from: `loadObject` (object.ts). Invariants of the result: every section's `data`
 * lies inside the file (NOBITS sections have empty data and their `size` only), every symbol
 * name and section name was read from its string table, every symbol's `shndx` is either a
 * real section index or one of the special SHN_* values. Relocations are read on demand by
 * `readRelocations`, which checks symbol indexes and offsets. Every failed check throws
 * `ElfError` naming a section (or `ELF header` / `section headers`) and a file offset.
 */

import { ElfError } from '../errors.js';
import { ByteReader, hex } from './reader.js';

/** `e_machine` of BPF objects. */
export const EM_BPF = 247;
/** `e_type` of relocatable objects. */
export const ET_REL = 1;

/** Section types (`sh_type`). */
export const SHT_NULL = 0;
export const SHT_PROGBITS = 1;
export const SHT_SYMTAB = 2;
export const SHT_STRTAB = 3;
export const SHT_RELA = 4;
export const SHT_NOBITS = 8;
export const SHT_REL = 9;

/** Section flags (`sh_flags`). */
export const SHF_WRITE = 0x1;
export const SHF_ALLOC = 0x2;
export const SHF_EXECINSTR = 0x4;

/** Special section indexes (`st_shndx`). */
export const SHN_UNDEF = 0;
export const SHN_LORESERVE = 0xff00;
export const SHN_ABS = 0xfff1;
export const SHN_COMMON = 0xfff2;
export const SHN_XINDEX = 0xffff;

/** Symbol types (low nibble of `st_info`). */
export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_SECTION = 3;
export const STT_FILE = 4;

/** Symbol bindings (high nibble of `st_info`). */
export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

/** BPF relocation types (`ELF64_R_TYPE`), as in LLVM's `BPF.def`. */
export const R_BPF_NONE = 0;
/** ld_imm64: imm of both slots = S + A (A is the insn's own imm). */
export const R_BPF_64_64 = 1;
/** 64-bit data word = S + A. */
export const R_BPF_64_ABS64 = 2;
/** 32-bit data word = S + A. */
export const R_BPF_64_ABS32 = 3;
/** 32-bit data word, not applied by dynamic linkers (BTF, BTF.ext). */
export const R_BPF_64_NODYLD32 = 4;
/** call imm: (S + A) / 8 - 1, PC-relative. */
export const R_BPF_64_32 = 10;

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;

/** One section header with its name and contents. */
export interface ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: number;
  readonly flags: number;
  /** File offset of the contents. */
  readonly offset: number;
  /** Size in bytes (for NOBITS: the size in memory; `data` is empty). */
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly entsize: number;
  /** The contents (a view into the file); empty for NOBITS. */
  readonly data: Uint8Array;
}

/** One `Elf64_Sym`. */
export interface ElfSymbol {
  readonly index: number;
  readonly name: string;
  readonly value: number;
  readonly size: number;
  readonly type: number;
  readonly bind: number;
  /** Section index or SHN_UNDEF / SHN_ABS / SHN_COMMON. */
  readonly shndx: number;
}

/** One `Elf64_Rel`: `offset` is relative to the target section. */
export interface ElfRel {
  readonly offset: number;
  readonly type: number;
  readonly sym: ElfSymbol;
  /** File offset of the entry, for messages. */
  readonly fileOffset: number;
}

/** A parsed ELF object. */
export interface ElfFile {
  readonly bytes: Uint8Array;
  readonly sections: readonly ElfSection[];
  readonly symbols: readonly ElfSymbol[];
  /** The SHT_REL section relocating each section, by target section index. */
  readonly relSections: ReadonlyMap<number, ElfSection>;
}

/**
 * Parses the header, section headers, section names and symbol table of a BPF object.
 *
 * @example
 * ```ts
 * const elf = parseElf(readFileSync('xdp_count.o'));
 * elf.sections.map((s) => s.name); // ['', '.strtab', '.text', '.rel.text', 'xdp', ...]
 * ```
 */
export function parseElf(bytes: Uint8Array): ElfFile {
  const file = new ByteReader(bytes, (reason, off) => {
    throw new ElfError(reason, 'ELF header', off);
  });
  checkHeader(file);
  const shoff = file.u64(40);
  const shentsize = file.u16(58);
  const shnum = file.u16(60);
  const shstrndx = file.u16(62);
  if (shnum === 0)
    throw new ElfError('no section headers (or extended numbering)', 'ELF header', 60);
  if (shentsize !== SHDR_SIZE) {
    throw new ElfError(`e_shentsize ${shentsize} is not ${SHDR_SIZE}`, 'ELF header', 58);
  }
  if (!(shoff + shnum * SHDR_SIZE <= bytes.length)) {
    throw new ElfError(
      `truncated: ${shnum} section headers need 0x${hex(shnum * SHDR_SIZE)} bytes at 0x${hex(shoff)}, file has 0x${hex(bytes.length)}`,
      'section headers',
      shoff,
    );
  }
  if (shstrndx >= shnum) {
    throw new ElfError(`e_shstrndx ${shstrndx} out of range (${shnum} sections)`, 'ELF header', 62);
  }
  const raw = Array.from({ length: shnum }, (_, k) => readShdr(file, shoff + k * SHDR_SIZE, k));
  const shstr = raw[shstrndx] as RawSection;
  if (shstr.type !== SHT_STRTAB) {
    throw new ElfError('section name table is not SHT_STRTAB', `section ${shstrndx}`, shstr.hdrOff);
  }
  const names = stringTable(shstr, `section ${shstrndx}`);
  const sections: ElfSection[] = raw.map((s) => ({
    ...s,
    name: s.index === 0 ? '' : names.cstr(s.nameOff, 'section name'),
  }));
  const symbols = readSymbols(sections);
  const relSections = new Map<number, ElfSection>();
  for (const s of sections) {
    if (s.type === SHT_REL) {
      if (s.info >= shnum || s.info === 0) {
        throw new ElfError(`sh_info ${s.info} is not a section index`, s.name, s.offset);
      }
      relSections.set(s.info, s);
    }
  }
  return { bytes, sections, symbols, relSections };
}

function checkHeader(file: ByteReader): void {
  file.check(0, EHDR_SIZE, 'ELF header');
  const magic = file.u32(0);
  if (magic !== 0x464c457f) throw new ElfError('bad magic (not an ELF file)', 'ELF header', 0);
  if (file.u8(4) !== 2) throw new ElfError('not ELFCLASS64', 'ELF header', 4);
  if (file.u8(5) !== 1) throw new ElfError('not little-endian (ELFDATA2LSB)', 'ELF header', 5);
  if (file.u8(6) !== 1) throw new ElfError('bad EI_VERSION', 'ELF header', 6);
  const type = file.u16(16);
  if (type !== ET_REL) {
    throw new ElfError(`e_type ${type} is not ET_REL (a relocatable object)`, 'ELF header', 16);
  }
  const machine = file.u16(18);
  if (machine !== EM_BPF) {
    throw new ElfError(`e_machine ${machine} is not EM_BPF (${EM_BPF})`, 'ELF header', 18);
  }
}

interface RawSection extends Omit<ElfSection, 'name'> {
  readonly nameOff: number;
  readonly hdrOff: number;
}

function readShdr(file: ByteReader, off: number, index: number): RawSection {
  const type = file.u32(off + 4);
  const offset = file.u64(off + 24);
  const size = file.u64(off + 32);
  const where = `section ${index}`;
  let data: Uint8Array = new Uint8Array(0);
  if (type !== SHT_NOBITS && type !== SHT_NULL) {
    if (!(offset + size <= file.length)) {
      throw new ElfError(
        `contents (0x${hex(size)} bytes at 0x${hex(offset)}) extend past the end of the file (0x${hex(file.length)})`,
        where,
        off,
      );
    }
    data = file.bytes.subarray(offset, offset + size);
  }
  return {
    index,
    nameOff: file.u32(off),
    hdrOff: off,
    type,
    flags: file.u64(off + 8),
    offset,
    size,
    link: file.u32(off + 40),
    info: file.u32(off + 44),
    entsize: file.u64(off + 56),
    data,
  };
}

function stringTable(s: Pick<ElfSection, 'data' | 'offset'>, name: string): ByteReader {
  return new ByteReader(s.data, (reason, off) => {
    throw new ElfError(reason, name, s.offset + off);
  });
}

function readSymbols(sections: readonly ElfSection[]): ElfSymbol[] {
  const symtabs = sections.filter((s) => s.type === SHT_SYMTAB);
  if (symtabs.length === 0) return [];
  const symtab = symtabs[0] as ElfSection;
  if (symtabs.length > 1)
    throw new ElfError('more than one SHT_SYMTAB', symtab.name, symtab.offset);
  if (symtab.entsize !== SYM_SIZE || symtab.size % SYM_SIZE !== 0) {
    throw new ElfError(`bad symbol table entry size ${symtab.entsize}`, symtab.name, symtab.offset);
  }
  const strtab = sections[symtab.link];
  if (strtab?.type !== SHT_STRTAB) {
    throw new ElfError(`sh_link ${symtab.link} is not a string table`, symtab.name, symtab.offset);
  }
  const strs = stringTable(strtab, strtab.name);
  const r = new ByteReader(symtab.data, (reason, off) => {
    throw new ElfError(reason, symtab.name, symtab.offset + off);
  });
  const out: ElfSymbol[] = [];
  for (let k = 0; k < symtab.size / SYM_SIZE; k++) {
    const off = k * SYM_SIZE;
    const info = r.u8(off + 4);
    const shndx = r.u16(off + 6);
    if (shndx === SHN_XINDEX || (shndx >= sections.length && shndx < SHN_LORESERVE)) {
      throw new ElfError(
        `symbol ${k}: section index ${shndx} out of range`,
        symtab.name,
        symtab.offset + off,
      );
    }
    const name = strs.cstr(r.u32(off), 'symbol name');
    out.push({
      index: k,
      // Section symbols have no name of their own; readelf shows the section's, so do we.
      name: name === '' && (info & 0xf) === STT_SECTION ? (sections[shndx]?.name ?? '') : name,
      value: r.u64(off + 8),
      size: r.u64(off + 16),
      type: info & 0xf,
      bind: info >> 4,
      shndx,
    });
  }
  return out;
}

/**
 * Reads the SHT_REL section `rel`, which relocates `target`. Checks each entry's symbol index
 * and that `offset + width` lies inside the target section (`width` 1 when unknown).
 */
export function readRelocations(elf: ElfFile, rel: ElfSection, target: ElfSection): ElfRel[] {
  if ((rel.entsize !== REL_SIZE && rel.entsize !== 0) || rel.size % REL_SIZE !== 0) {
    throw new ElfError(`bad relocation entry size ${rel.entsize}`, rel.name, rel.offset);
  }
  const r = new ByteReader(rel.data, (reason, off) => {
    throw new ElfError(reason, rel.name, rel.offset + off);
  });
  const out: ElfRel[] = [];
  for (let off = 0; off < rel.size; off += REL_SIZE) {
    const fileOffset = rel.offset + off;
    const offset = r.u64(off);
    const type = r.u32(off + 8);
    const symIdx = r.u32(off + 12);
    const sym = elf.symbols[symIdx];
    if (sym === undefined || symIdx === 0) {
      throw new ElfError(`bad symbol index ${symIdx}`, rel.name, fileOffset);
    }
    const width = relocWidth(type);
    if (!(offset + width <= target.size)) {
      throw new ElfError(
        `relocation offset 0x${hex(offset)} outside the section ${target.name} (0x${hex(target.size)} bytes)`,
        rel.name,
        fileOffset,
      );
    }
    out.push({ offset, type, sym, fileOffset });
  }
  return out;
}

/** Bytes a relocation of `type` patches (1 for unknown types, which are rejected later). */
export function relocWidth(type: number): number {
  switch (type) {
    case R_BPF_64_64:
      return 16;
    case R_BPF_64_ABS64:
    case R_BPF_64_32:
      return 8;
    case R_BPF_64_ABS32:
    case R_BPF_64_NODYLD32:
      return 4;
    default:
      return 1;
  }
}

/** The section named `name`, if any (the first one). */
export function sectionByName(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

/** True for a section holding BPF instructions. */
export function isCodeSection(s: ElfSection): boolean {
  return s.type === SHT_PROGBITS && (s.flags & SHF_EXECINSTR) !== 0;
}
