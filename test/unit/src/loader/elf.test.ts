/**
 * Unit tests of src/loader/elf.ts: the header checks, sections, symbols and relocations of a
 * real clang object, and every malformed input a hand-built object can express giving an
 * `ElfError` that names the section and file offset.
 */

import { describe, expect, it } from 'vitest';
import {
  parseElf,
  readRelocations,
  R_BPF_64_32,
  R_BPF_64_64,
  sectionByName,
  STB_GLOBAL,
  STB_LOCAL,
  STT_FUNC,
  STT_SECTION,
  type ElfFile,
  type ElfSection,
} from '../../../../src/loader/elf.js';
import { loadObject } from '../../../../src/loader/object.js';
import { insn } from '../../../../src/isa/insn.js';
import { buildElf, type TestObject } from './elf-builder.js';
import { expectLoaderError, readFixture } from './fixtures.js';

const EXIT = insn(0x95, 0, 0, 0, 0);
const MOV_R0_0 = insn(0xb7, 0, 0, 0, 0);
const KFUNC_CALL = insn(0x85, 0, 1, 0, -1);

/** A minimal valid object: one xdp program calling an extern (a kfunc). */
const MINIMAL: TestObject = {
  sections: [{ name: 'xdp', insns: [KFUNC_CALL, MOV_R0_0, EXIT] }],
  symbols: [{ name: 'prog', section: 'xdp', size: 24 }, { name: 'bpf_kfunc' }],
  relocs: [{ section: 'xdp', offset: 0, type: R_BPF_64_32, symbol: 'bpf_kfunc' }],
};

function section(elf: ElfFile, name: string): ElfSection {
  const s = sectionByName(elf, name);
  if (s === undefined) throw new Error(`no section ${name}`);
  return s;
}

function patchU16(bytes: Uint8Array, off: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint16(off, v, true);
  return out;
}

function patchU32(bytes: Uint8Array, off: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setUint32(off, v, true);
  return out;
}

function shoffOf(bytes: Uint8Array): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true));
}

describe('parseElf on xdp_count.o', () => {
  const elf = parseElf(readFixture('xdp/xdp_count.o'));

  it('reads the section headers and their names', () => {
    expect(elf.sections.map((s) => s.name).slice(0, 11)).toEqual([
      '',
      '.strtab',
      '.text',
      '.rel.text',
      'xdp',
      '.relxdp',
      '.bss',
      '.data',
      '.rodata',
      '.maps',
      'license',
    ]);
    expect(elf.sections).toHaveLength(32);
    const xdp = section(elf, 'xdp');
    expect(xdp.size).toBe(0x170);
    expect(xdp.data).toHaveLength(0x170);
    expect(section(elf, '.bss').data).toHaveLength(0);
    expect(section(elf, '.bss').size).toBe(8);
  });

  it('reads the symbols with their types, bindings and sections', () => {
    expect(elf.symbols).toHaveLength(23);
    const prog = elf.symbols.find((s) => s.name === 'xdp_count');
    expect(prog).toMatchObject({ type: STT_FUNC, bind: STB_GLOBAL, value: 0, size: 368 });
    expect(prog?.shndx).toBe(section(elf, 'xdp').index);
    const cb = elf.symbols.find((s) => s.name === 'sum_bytes_cb');
    expect(cb).toMatchObject({ type: STT_FUNC, bind: STB_LOCAL, value: 0xc0, size: 120 });
  });

  it('indexes relocation sections by the section they relocate and reads their entries', () => {
    const xdp = section(elf, 'xdp');
    const rel = elf.relSections.get(xdp.index);
    expect(rel?.name).toBe('.relxdp');
    const rels = readRelocations(elf, rel as ElfSection, xdp);
    expect(rels.map((r) => [r.offset, r.type, r.sym.name])).toEqual([
      [0x20, R_BPF_64_32, '.text'],
      [0x48, R_BPF_64_64, 'pkt_count'],
      [0xa0, R_BPF_64_64, 'pkt_count'],
      [0xc0, R_BPF_64_64, 'total_packets'],
      [0xe8, R_BPF_64_32, 'should_sample'],
      [0x128, R_BPF_64_64, '.text'],
    ]);
    expect(rels[0]?.sym.type).toBe(STT_SECTION);
  });
});

describe('parseElf header checks', () => {
  const good = buildElf(MINIMAL);

  it('accepts the hand-built minimal object', () => {
    const obj = loadObject(good);
    expect(obj.programs.map((p) => p.name)).toEqual(['prog']);
    expect(obj.externs).toEqual(['bpf_kfunc']);
  });

  it('rejects a file that does not start with the ELF magic', () => {
    const bad = good.slice();
    bad[0] = 0;
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 0,
      reason: /bad magic/,
    });
  });

  it('rejects a file shorter than the ELF header', () => {
    expectLoaderError(() => parseElf(good.subarray(0, 20)), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 0,
      reason: /64 bytes at 0x0 outside 0x14 bytes/,
    });
  });

  it('rejects ELFCLASS32, big-endian and a bad EI_VERSION', () => {
    const c32 = good.slice();
    c32[4] = 1;
    expectLoaderError(() => parseElf(c32), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 4,
      reason: /ELFCLASS64/,
    });
    const be = good.slice();
    be[5] = 2;
    expectLoaderError(() => parseElf(be), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 5,
      reason: /little-endian/,
    });
    const ver = good.slice();
    ver[6] = 0;
    expectLoaderError(() => parseElf(ver), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 6,
      reason: /EI_VERSION/,
    });
  });

  it('rejects an object for another machine', () => {
    expectLoaderError(() => parseElf(patchU16(good, 18, 62)), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 18,
      reason: /e_machine 62 is not EM_BPF \(247\)/,
    });
  });

  it('rejects an executable (not ET_REL)', () => {
    expectLoaderError(() => parseElf(patchU16(good, 16, 2)), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 16,
      reason: /not ET_REL/,
    });
  });

  it('rejects a truncated section header table', () => {
    expectLoaderError(() => parseElf(good.subarray(0, good.length - 10)), {
      name: 'ElfError',
      section: 'section headers',
      offset: shoffOf(good),
      reason: /truncated: \d+ section headers/,
    });
  });

  it('rejects a bad section header entry size and an out-of-range e_shstrndx', () => {
    expectLoaderError(() => parseElf(patchU16(good, 58, 40)), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 58,
      reason: /e_shentsize 40/,
    });
    expectLoaderError(() => parseElf(patchU16(good, 62, 200)), {
      name: 'ElfError',
      section: 'ELF header',
      offset: 62,
      reason: /e_shstrndx 200 out of range/,
    });
  });

  it('rejects section contents that extend past the end of the file', () => {
    const hdr = shoffOf(good) + 64; // section 1 (xdp)
    const bad = patchU32(good, hdr + 32, 0x10000);
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: 'section 1',
      offset: hdr,
      reason: /extend past the end of the file/,
    });
  });
});

describe('string, symbol and relocation checks', () => {
  const good = buildElf(MINIMAL);
  const elf = parseElf(good);
  const symtab = section(elf, '.symtab');
  const strtab = section(elf, '.strtab');
  const shstrtab = section(elf, '.shstrtab');

  it('rejects a section name offset outside the section name table', () => {
    const hdr = shoffOf(good) + 64;
    const bad = patchU32(good, hdr, 0x7000);
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: `section ${shstrtab.index}`,
      offset: shstrtab.offset + 0x7000,
      reason: /section name: offset 0x7000 outside/,
    });
  });

  it('rejects a symbol name offset outside the string table', () => {
    const bad = patchU32(good, symtab.offset + 24, 0x9999);
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: '.strtab',
      offset: strtab.offset + 0x9999,
      reason: /symbol name: offset 0x9999 outside/,
    });
  });

  it('rejects a string that is not NUL-terminated', () => {
    const bad = good.slice();
    bad[strtab.offset + strtab.size - 1] = 0x41;
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: '.strtab',
      reason: /not NUL-terminated/,
    });
  });

  it('rejects a symbol whose section index is out of range', () => {
    const bad = patchU16(good, symtab.offset + 24 + 6, 300);
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: '.symtab',
      offset: symtab.offset + 24,
      reason: /symbol 1: section index 300 out of range/,
    });
  });

  it('rejects a relocation whose symbol index is out of range', () => {
    const bad = buildElf({
      ...MINIMAL,
      relocs: [{ section: 'xdp', offset: 0, type: 10, symbol: 99 }],
    });
    const rel = section(parseElf(bad), '.relxdp');
    expectLoaderError(() => loadObject(bad), {
      name: 'ElfError',
      section: '.relxdp',
      offset: rel.offset,
      reason: /^bad symbol index 99$/,
    });
  });

  it('rejects a relocation offset outside the section', () => {
    const bad = buildElf({
      ...MINIMAL,
      relocs: [{ section: 'xdp', offset: 0x100, type: 10, symbol: 'bpf_kfunc' }],
    });
    const rel = section(parseElf(bad), '.relxdp');
    expectLoaderError(() => loadObject(bad), {
      name: 'ElfError',
      section: '.relxdp',
      offset: rel.offset,
      reason: /relocation offset 0x100 outside the section xdp \(0x18 bytes\)/,
    });
  });

  it('rejects a relocation that does not start at an instruction', () => {
    const bad = buildElf({
      ...MINIMAL,
      relocs: [{ section: 'xdp', offset: 4, type: 10, symbol: 'bpf_kfunc' }],
    });
    expectLoaderError(() => loadObject(bad), {
      name: 'ElfError',
      section: '.relxdp',
      reason: /relocation at 0x4 is not at an insn/,
    });
  });

  it('rejects a relocation section whose target is not a section', () => {
    const rel = section(elf, '.relxdp');
    const hdr = shoffOf(good) + 64 * rel.index;
    const bad = patchU32(good, hdr + 44, 77);
    expectLoaderError(() => parseElf(bad), {
      name: 'ElfError',
      section: '.relxdp',
      offset: rel.offset,
      reason: /sh_info 77 is not a section index/,
    });
  });
});
