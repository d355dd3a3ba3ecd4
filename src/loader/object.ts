/**
 * `loadObject`: an ELF object from clang (`--target=bpf -c`) → a `BpfObject` (types.ts), the
 * plain data the runtime links: programs with their relocations applied and listed, map
 * definitions, global data, extern names, BTF.
 *
 * Steps: parse the ELF (elf.ts) and BTF / BTF.ext (btf.ts, btf-ext.ts); split every code
 * section into functions at its FUNC symbols; read the maps (maps.ts) and global data
 * sections, with the function pointers stored in them; then link one program per FUNC symbol
 * of each code section other than `.text` / `.text.*` (link.ts), typed by its section name
 * (sections.ts). Relocations in `.BTF`, `.BTF.ext` and `.debug_*` are ignored; relocations
 * in data sections other than function pointers are ignored, as libbpf does.
 *
 * Errors are `ElfError` / `BtfError` naming a section and offset; decoding errors of the
 * instruction bytes themselves surface later, from `createProgram`.
 *
 * Called from: the public API, the CLI, tests.
 */

import { ElfError } from '../errors.js';
import { decodeInsns, type Insn } from '../isa/insn.js';
import { parseBtf, type Btf } from './btf.js';
import { parseBtfExt, type BtfExt } from './btf-ext.js';
import {
  isCodeSection,
  parseElf,
  readRelocations,
  R_BPF_64_ABS32,
  R_BPF_64_ABS64,
  sectionByName,
  STB_GLOBAL,
  STT_FUNC,
  STT_SECTION,
  type ElfFile,
  type ElfRel,
  type ElfSection,
  type ElfSymbol,
} from './elf.js';
import {
  funcAt,
  linkProgram,
  type CodeSection,
  type DataFuncPtr,
  type Func,
  type LinkEnv,
} from './link.js';
import {
  BPF_F_MMAPABLE,
  BPF_F_RDONLY_PROG,
  BPF_MAP_TYPE_ARRAY,
  globalVars,
  isGlobalDataSection,
  isReadonlySection,
  mapTypeName,
  readBtfMaps,
  readLegacyMaps,
  type MapEntry,
} from './maps.js';
import { ByteReader, hex } from './reader.js';
import { sectionDef } from './sections.js';
import type { BpfObject, FuncPtr, MapDef, ObjProgram } from './types.js';

/** The kernel's limit on an array map's value size (4 MiB), hence on a global data section. */
export const KMALLOC_MAX_SIZE = 4 << 20;

/**
 * Loads a BPF ELF object.
 *
 * @example
 * ```ts
 * const obj = loadObject(readFileSync('xdp_count.o'));
 * const prog = obj.programs[0];
 * createProgram(prog.insns, { name: prog.name, type: prog.type, funcNames: prog.funcNames,
 *   gotoxTargets: prog.gotoxTargets });
 * ```
 */
export function loadObject(bytes: Uint8Array): BpfObject {
  const elf = parseElf(bytes);
  const { btf, btfExt } = readBtf(elf);
  const code = new Map<number, CodeSection>();
  for (const s of elf.sections) {
    if (isCodeSection(s) && s.size > 0) code.set(s.index, codeSection(elf, s));
  }
  const mapEntries = readMapEntries(elf, btf);
  const globals = globalSections(elf);
  const env: Omit<LinkEnv, 'jumpTableMap'> = {
    sections: elf.sections,
    code,
    mapEntries,
    globalMaps: new Map(globals.map((s, k) => [s.index, mapEntries.length + k])),
    funcPtrs: new Map(globals.map((s) => [s.index, dataFuncPtrs(elf, s, code)])),
    jumpTables: sectionByName(elf, '.jumptables'),
    symbols: elf.symbols,
    externs: [],
    btf,
    btfExt,
  };
  const { programs, jtMaps, ptrTargets } = linkPrograms(
    elf,
    env,
    mapEntries.length + globals.length,
  );
  const globalDefs = globals.map((s) =>
    globalMap(elf, s, btf, env.funcPtrs.get(s.index) ?? [], ptrTargets.get(s.index) ?? []),
  );
  const version = readVersion(elf);
  return {
    license: readLicense(elf),
    ...(version === undefined ? {} : { version }),
    programs,
    maps: [...mapEntries.map((e) => e.def), ...globalDefs, ...jtMaps],
    externs: env.externs,
    ...(btf === undefined ? {} : { btf }),
  };
}

/** BTF-defined (`.maps`) and legacy (`maps`) maps, in section order. */
function readMapEntries(elf: ElfFile, btf: Btf | undefined): MapEntry[] {
  const out: MapEntry[] = [];
  for (const s of elf.sections) {
    const entries =
      s.name === '.maps'
        ? readBtfMaps(elf, s, btf)
        : s.name === 'maps'
          ? readLegacyMaps(elf, s)
          : [];
    for (const e of entries) out.push(e);
  }
  return out;
}

/** Non-empty global data sections, each small enough for an array map value. */
function globalSections(elf: ElfFile): ElfSection[] {
  const globals = elf.sections.filter((s) => isGlobalDataSection(s) && s.size > 0);
  for (const s of globals) {
    if (s.size > KMALLOC_MAX_SIZE) {
      throw new ElfError(`0x${hex(s.size)} bytes exceed the map value limit`, s.name, s.offset);
    }
  }
  return globals;
}

type PtrTargets = Map<number, { program: number; insnIdx: number }[][]>;

/**
 * Links one program per entry function of every code section other than `.text*`; collects
 * the jump-table maps (numbered from `firstJtMap`) and, per global data section, the slots of
 * its function pointers' targets in each program.
 */
function linkPrograms(
  elf: ElfFile,
  env: Omit<LinkEnv, 'jumpTableMap'>,
  firstJtMap: number,
): { programs: ObjProgram[]; jtMaps: MapDef[]; ptrTargets: PtrTargets } {
  const programs: ObjProgram[] = [];
  const jtMaps: MapDef[] = [];
  const ptrTargets: PtrTargets = new Map();
  for (const c of env.code.values()) {
    if (c.sec.name === '.text' || c.sec.name.startsWith('.text.')) continue;
    const def = sectionDef(c.sec.name);
    const type = def.type;
    if (type === undefined) {
      const reason = `program type '${def.kernelType}' is not supported`;
      throw new ElfError(reason, c.sec.name, c.sec.offset);
    }
    const hasSyms = c.funcs.some((f) => f.sym !== undefined);
    for (const entry of c.funcs.filter((f) => !hasSyms || f.sym !== undefined)) {
      const linked = linkProgram({ ...env, jumpTableMap: firstJtMap + jtMaps.length }, entry);
      for (const [shndx, slots] of linked.funcPtrSlots) {
        const per = ptrTargets.get(shndx) ?? [];
        slots.forEach((insnIdx, k) => (per[k] ??= []).push({ program: programs.length, insnIdx }));
        ptrTargets.set(shndx, per);
      }
      if (linked.jumpTableBytes !== undefined && env.jumpTables !== undefined) {
        jtMaps.push(jumpTableMap(elf, entry.name, env.jumpTables, linked.jumpTableBytes));
      }
      programs.push({
        name: entry.name,
        section: c.sec.name,
        type,
        kernelType: def.kernelType,
        ...(def.attachTo === undefined ? {} : { attachTo: def.attachTo }),
        sleepable: def.sleepable,
        custom: def.custom,
        insns: linked.insns,
        funcNames: linked.funcNames,
        gotoxTargets: linked.gotoxTargets,
        relocs: linked.relocs,
        funcInfo: linked.funcInfo,
        lineInfo: linked.lineInfo,
      });
    }
  }
  return { programs, jtMaps, ptrTargets };
}

function readBtf(elf: ElfFile): { btf: Btf | undefined; btfExt: BtfExt | undefined } {
  const s = sectionByName(elf, '.BTF');
  if (s === undefined) return { btf: undefined, btfExt: undefined };
  const btf = parseBtf(s.data, s.name, s.offset);
  const e = sectionByName(elf, '.BTF.ext');
  return { btf, btfExt: e === undefined ? undefined : parseBtfExt(e.data, btf, e.name, e.offset) };
}

/** Decodes a code section, splits it into functions and indexes its relocations by slot. */
function codeSection(elf: ElfFile, sec: ElfSection): CodeSection {
  if (sec.size % 8 !== 0) {
    throw new ElfError(`size 0x${hex(sec.size)} is not a multiple of 8`, sec.name, sec.offset);
  }
  const insns: Insn[] = decodeInsns(sec.data);
  const rel = elf.relSections.get(sec.index);
  const relocs = new Map<number, ElfRel>();
  for (const r of rel === undefined ? [] : readRelocations(elf, rel, sec)) {
    if (r.offset % 8 !== 0 || relocs.has(r.offset / 8)) {
      const why = r.offset % 8 !== 0 ? 'is not at an insn' : 'is a duplicate';
      throw new ElfError(`relocation at 0x${hex(r.offset)} ${why}`, rel?.name, r.fileOffset);
    }
    relocs.set(r.offset / 8, r);
  }
  const starts = new Map<number, ElfSymbol>();
  for (const sym of elf.symbols) {
    if (sym.shndx !== sec.index || sym.type !== STT_FUNC) continue;
    if (sym.value % 8 !== 0 || sym.value >= sec.size) {
      throw new ElfError(
        `function '${sym.name}' at 0x${hex(sym.value)} is not an insn`,
        sec.name,
        sec.offset + Math.min(sym.value, sec.size),
      );
    }
    const old = starts.get(sym.value / 8);
    if (old === undefined || (old.bind !== STB_GLOBAL && sym.bind === STB_GLOBAL)) {
      starts.set(sym.value / 8, sym);
    }
  }
  const sorted = [...new Set([0, ...starts.keys()])].sort((a, b) => a - b);
  const funcs: Func[] = [];
  const cs: CodeSection = { sec, insns, funcs, relocs, relName: rel?.name ?? sec.name };
  sorted.forEach((start, k) => {
    const sym = starts.get(start);
    const end = sorted[k + 1] ?? insns.length;
    funcs.push({ code: cs, start, end, name: sym?.name ?? sec.name, sym });
  });
  return cs;
}

/** Function pointers (`R_BPF_64_ABS64` / `ABS32` against code) in a global data section. */
function dataFuncPtrs(
  elf: ElfFile,
  sec: ElfSection,
  code: ReadonlyMap<number, CodeSection>,
): DataFuncPtr[] {
  const rel = elf.relSections.get(sec.index);
  if (rel === undefined || sec.data.length === 0) return [];
  const r = new ByteReader(sec.data, (reason, off) => {
    throw new ElfError(reason, sec.name, sec.offset + off);
  });
  const out: DataFuncPtr[] = [];
  for (const x of readRelocations(elf, rel, sec)) {
    const c = code.get(x.sym.shndx);
    if (c === undefined || (x.type !== R_BPF_64_ABS64 && x.type !== R_BPF_64_ABS32)) continue;
    const size = x.type === R_BPF_64_ABS64 ? 8 : 4;
    const byte = x.sym.value + (size === 8 ? r.u64(x.offset) : r.u32(x.offset));
    const target = funcAt(c, byte / 8);
    if (target?.start !== byte / 8) {
      throw new ElfError(
        `function pointer to 0x${hex(byte)} of ${c.sec.name} is not a function start`,
        rel.name,
        x.fileOffset,
      );
    }
    out.push({ offset: x.offset, size, target });
  }
  return out;
}

function globalMap(
  elf: ElfFile,
  sec: ElfSection,
  btf: Btf | undefined,
  ptrs: readonly DataFuncPtr[],
  targets: readonly { program: number; insnIdx: number }[][],
): MapDef {
  const readonly = isReadonlySection(sec);
  const bytes = new Uint8Array(sec.size);
  bytes.set(sec.data);
  const funcPtrs: FuncPtr[] = ptrs.map((p, k) => {
    bytes.fill(0, p.offset, p.offset + p.size);
    return { offset: p.offset, size: p.size, func: p.target.name, targets: targets[k] ?? [] };
  });
  return {
    name: sec.name,
    type: BPF_MAP_TYPE_ARRAY,
    typeName: mapTypeName(BPF_MAP_TYPE_ARRAY),
    keySize: 4,
    valueSize: sec.size,
    maxEntries: 1,
    flags: readonly ? BPF_F_RDONLY_PROG | BPF_F_MMAPABLE : BPF_F_MMAPABLE,
    global: { section: sec.name, bytes, readonly, vars: globalVars(elf, sec, btf), funcPtrs },
  };
}

/** The read-only copy of `.jumptables` holding a program's absolute target slots. */
function jumpTableMap(elf: ElfFile, prog: string, sec: ElfSection, bytes: Uint8Array): MapDef {
  const vars = elf.symbols
    .filter((s) => s.shndx === sec.index && s.type !== STT_SECTION && s.size > 0)
    .map((s) => ({ name: s.name, offset: s.value, size: s.size }))
    .sort((a, b) => a.offset - b.offset);
  return {
    name: `${sec.name}.${prog}`,
    type: BPF_MAP_TYPE_ARRAY,
    typeName: mapTypeName(BPF_MAP_TYPE_ARRAY),
    keySize: 4,
    valueSize: sec.size,
    maxEntries: 1,
    flags: BPF_F_RDONLY_PROG,
    global: { section: sec.name, bytes, readonly: true, vars, funcPtrs: [] },
  };
}

function readLicense(elf: ElfFile): string {
  const s = sectionByName(elf, 'license');
  if (s === undefined) return '';
  const end = s.data.indexOf(0);
  return new TextDecoder().decode(s.data.subarray(0, end < 0 ? s.data.length : end));
}

function readVersion(elf: ElfFile): number | undefined {
  const s = sectionByName(elf, 'version');
  if (s === undefined) return undefined;
  const r = new ByteReader(s.data, (reason, off) => {
    throw new ElfError(reason, s.name, s.offset + off);
  });
  return r.u32(0, 'version');
}
