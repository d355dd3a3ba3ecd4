/**
 * Map definitions from an ELF object: the `BPF_MAP_TYPE_*` table, BTF-defined maps (the
 * `.maps` section, described only by BTF: `__uint(type, N)` is `int (*type)[N]`, `__type(key,
 * T)` is `T *key`, `__array(values, T)` a zero-length array of `T *` whose slots are filled by
 * relocations in `.rel.maps`), legacy `struct bpf_map_def` maps (the `maps` section) and the
 * variables of global data sections (libbpf's internal `.data` / `.rodata` / `.bss` maps).
 *
 * Called from: `loadObject`. Each `.maps` / `maps` entry is located by its symbol; relocations
 * against a map are resolved with `mapAtOffset`.
 */

import { ElfError } from '../errors.js';
import type { Btf, BtfType } from './btf.js';
import {
  readRelocations,
  SHT_NOBITS,
  SHT_PROGBITS,
  STT_SECTION,
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
} from './elf.js';
import { ByteReader, hex } from './reader.js';
import type { GlobalVar, MapDef } from './types.js';

/** `BPF_MAP_TYPE_*` names, indexed by id (uapi `enum bpf_map_type`). */
export const BPF_MAP_TYPES: readonly string[] = [
  'unspec',
  'hash',
  'array',
  'prog_array',
  'perf_event_array',
  'percpu_hash',
  'percpu_array',
  'stack_trace',
  'cgroup_array',
  'lru_hash',
  'lru_percpu_hash',
  'lpm_trie',
  'array_of_maps',
  'hash_of_maps',
  'devmap',
  'sockmap',
  'cpumap',
  'xskmap',
  'sockhash',
  'cgroup_storage',
  'reuseport_sockarray',
  'percpu_cgroup_storage',
  'queue',
  'stack',
  'sk_storage',
  'devmap_hash',
  'struct_ops',
  'ringbuf',
  'inode_storage',
  'task_storage',
  'bloom_filter',
  'user_ringbuf',
  'cgrp_storage',
  'arena',
  'insn_array',
];

/** `BPF_MAP_TYPE_ARRAY`, the type of global data maps. */
export const BPF_MAP_TYPE_ARRAY = 2;
/** `BPF_MAP_TYPE_PROG_ARRAY`. */
export const BPF_MAP_TYPE_PROG_ARRAY = 3;
/** `BPF_MAP_TYPE_ARRAY_OF_MAPS`. */
export const BPF_MAP_TYPE_ARRAY_OF_MAPS = 12;
/** `BPF_MAP_TYPE_HASH_OF_MAPS`. */
export const BPF_MAP_TYPE_HASH_OF_MAPS = 13;
/** Map flag: the program may not write the map (libbpf sets it on `.rodata`). */
export const BPF_F_RDONLY_PROG = 0x80;
/** Map flag: the map can be mmap()ed (libbpf sets it on global data maps). */
export const BPF_F_MMAPABLE = 0x400;

/** The name of map type `id` (`unknown#N` beyond the table). */
export function mapTypeName(id: number): string {
  return BPF_MAP_TYPES[id] ?? `unknown#${id}`;
}

/** A map read from `.maps` or `maps`: its definition and where its symbol sits. */
export interface MapEntry {
  readonly def: MapDef;
  readonly section: number;
  readonly offset: number;
  readonly size: number;
  /** The BTF type of the map's struct (BTF-defined maps). */
  readonly typeId?: number;
}

/** Where relocation `sym + addend` in the maps section `shndx` points: the map index, if any. */
export function mapAtOffset(
  entries: readonly MapEntry[],
  shndx: number,
  sym: ElfSymbol,
  addend: number,
): number | undefined {
  const at = sym.type === STT_SECTION ? sym.value + addend : sym.value;
  const k = entries.findIndex(
    (e) => e.section === shndx && at >= e.offset && (at < e.offset + e.size || at === e.offset),
  );
  return k < 0 ? undefined : k;
}

/**
 * Reads the BTF-defined maps of `sec` (`.maps`). Without BTF, each map symbol gives a map of
 * type 0 (`unspec`): the parameters only exist in BTF.
 */
export function readBtfMaps(elf: ElfFile, sec: ElfSection, btf: Btf | undefined): MapEntry[] {
  const syms = mapSymbols(elf, sec);
  const datasec = btf?.findByName('datasec', sec.name);
  if (btf === undefined || datasec === undefined) {
    return syms.map((s) => ({
      def: unknownDef(s.name),
      section: sec.index,
      offset: s.value,
      size: s.size,
    }));
  }
  const out: MapEntry[] = [];
  for (const vi of datasec.vars) {
    const v = btf.typeById(vi.type);
    const sym = syms.find((s) => s.name === v.name);
    const offset = sym?.value ?? vi.offset;
    if (v.kind !== 'var') {
      throw new ElfError(`DATASEC entry [${vi.type}] is not a VAR`, sec.name, sec.offset + offset);
    }
    const size = sym?.size || vi.size;
    const def = parseMapDef(btf, v.name, v.type, sec.name, sec.offset + offset, 0);
    out.push({ def, section: sec.index, offset, size, typeId: v.type });
  }
  out.sort((a, b) => a.offset - b.offset);
  return addInitialValues(elf, sec, btf, out);
}

function mapSymbols(elf: ElfFile, sec: ElfSection): ElfSymbol[] {
  return elf.symbols
    .filter((s) => s.shndx === sec.index && s.type !== STT_SECTION && s.name !== '')
    .sort((a, b) => a.value - b.value);
}

function unknownDef(name: string): MapDef {
  return { name, type: 0, typeName: 'unspec', keySize: 0, valueSize: 0, maxEntries: 0, flags: 0 };
}

type MutableMapDef = { -readonly [K in keyof MapDef]: MapDef[K] };

/** libbpf's `parse_btf_map_def`: one map (or inner map, `depth` 1) from its struct type. */
function parseMapDef(
  btf: Btf,
  name: string,
  typeId: number,
  sec: string,
  at: number,
  depth: number,
): MapDef {
  const fail = (reason: string): never => {
    throw new ElfError(`map '${name}': ${reason}`, sec, at);
  };
  const st = btf.resolve(typeId);
  if (st.kind !== 'struct') return fail(`type [${typeId}] is ${st.kind}, not a struct`);
  const def: MutableMapDef = unknownDef(name);
  for (const m of st.members) {
    switch (m.name) {
      case 'type':
        def.type = fieldInt(btf, m.type, fail, m.name);
        def.typeName = mapTypeName(def.type);
        break;
      case 'max_entries':
        def.maxEntries = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'map_flags':
        def.flags = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'numa_node':
        def.numaNode = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'pinning':
        def.pinning = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'map_extra':
        def.mapExtra = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'key_size':
        def.keySize = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'value_size':
        def.valueSize = fieldInt(btf, m.type, fail, m.name);
        break;
      case 'key':
        def.keyTypeId = pointee(btf, m.type, fail, m.name);
        def.keySize = btf.sizeOf(def.keyTypeId);
        break;
      case 'value':
        def.valueTypeId = pointee(btf, m.type, fail, m.name);
        def.valueSize = btf.sizeOf(def.valueTypeId);
        break;
      case 'values': {
        if (depth > 0) fail('inner map definition cannot have values');
        const arr = btf.resolve(m.type);
        if (arr.kind !== 'array' || arr.nelems !== 0) fail("'values' is not a zero-length array");
        const elem = pointee(btf, (arr as { type: number }).type, fail, m.name);
        const target = btf.resolve(elem);
        if (target.kind === 'struct') {
          def.innerMap = parseMapDef(btf, `${name}.inner`, elem, sec, at, depth + 1);
        } else if (target.kind !== 'func_proto') {
          fail(`'values' points to ${target.kind}, not a map or a program`);
        }
        def.valueSize = 4;
        def.initialValues = [];
        break;
      }
      default:
        fail(`unknown field '${m.name}'`);
    }
  }
  return def;
}

/** `int (*name)[N]` → N. */
function fieldInt(btf: Btf, typeId: number, fail: (r: string) => never, field: string): number {
  const arr = btf.resolve(pointee(btf, typeId, fail, field));
  if (arr.kind !== 'array') return fail(`'${field}' is not a pointer to an array`);
  return arr.nelems;
}

function pointee(btf: Btf, typeId: number, fail: (r: string) => never, field: string): number {
  const p: BtfType = btf.resolve(typeId);
  if (p.kind !== 'ptr') return fail(`'${field}' is ${p.kind}, not a pointer`);
  return p.type;
}

/** Fills `initialValues` from `.rel.maps`: each 8-byte slot of `values` names a map or program. */
function addInitialValues(elf: ElfFile, sec: ElfSection, btf: Btf, maps: MapEntry[]): MapEntry[] {
  const rel = elf.relSections.get(sec.index);
  if (rel === undefined) return maps;
  const out = maps.map((e) => ({ ...e, def: { ...e.def } as MutableMapDef }));
  for (const r of readRelocations(elf, rel, sec)) {
    const e = out.find((m) => r.offset >= m.offset && r.offset + 8 <= m.offset + m.size);
    if (e === undefined) {
      throw new ElfError(
        `relocation at 0x${hex(r.offset)} is not inside a map`,
        rel.name,
        r.fileOffset,
      );
    }
    const st = btf.resolve(e.typeId ?? 0);
    const member = st.kind === 'struct' ? st.members.find((m) => m.name === 'values') : undefined;
    const moff = r.offset - e.offset - (member?.bitOffset ?? 0) / 8;
    if (member === undefined || e.def.initialValues === undefined || moff < 0 || moff % 8 !== 0) {
      throw new ElfError(
        `relocation at 0x${hex(r.offset)} is not a 'values' slot of map '${e.def.name}'`,
        rel.name,
        r.fileOffset,
      );
    }
    e.def.initialValues = [...e.def.initialValues, { index: moff / 8, symbol: r.sym.name }];
  }
  return out;
}

/** Reads legacy `struct bpf_map_def { type, key_size, value_size, max_entries, map_flags }`. */
export function readLegacyMaps(elf: ElfFile, sec: ElfSection): MapEntry[] {
  const syms = mapSymbols(elf, sec);
  if (syms.length === 0) return [];
  const defSize = Math.floor(sec.size / syms.length);
  if (defSize < 16)
    throw new ElfError(`map definitions of ${defSize} bytes are too small`, sec.name, sec.offset);
  const r = new ByteReader(sec.data, (reason, off) => {
    throw new ElfError(reason, sec.name, sec.offset + off);
  });
  return syms.map((s) => {
    const at = s.value;
    const type = r.u32(at, 'bpf_map_def');
    return {
      def: {
        name: s.name,
        type,
        typeName: mapTypeName(type),
        keySize: r.u32(at + 4, 'bpf_map_def'),
        valueSize: r.u32(at + 8, 'bpf_map_def'),
        maxEntries: r.u32(at + 12, 'bpf_map_def'),
        flags: defSize >= 20 ? r.u32(at + 16, 'bpf_map_def') : 0,
      },
      section: sec.index,
      offset: at,
      size: defSize,
    };
  });
}

/** True for a section libbpf turns into a global data map (`.data*`, `.rodata*`, `.bss*`). */
export function isGlobalDataSection(s: ElfSection): boolean {
  if (s.type !== SHT_PROGBITS && s.type !== SHT_NOBITS) return false;
  return ['.data', '.rodata', '.bss'].some((b) => s.name === b || s.name.startsWith(`${b}.`));
}

/** True for `.rodata*`. */
export function isReadonlySection(s: ElfSection): boolean {
  return s.name === '.rodata' || s.name.startsWith('.rodata.');
}

/**
 * The variables of a global data section: from its BTF DATASEC when there is one (offsets from
 * the symbols, which clang leaves to relocations in `.BTF`), else from its OBJECT symbols.
 */
export function globalVars(elf: ElfFile, sec: ElfSection, btf: Btf | undefined): GlobalVar[] {
  const syms = mapSymbols(elf, sec);
  const datasec = btf?.findByName('datasec', sec.name);
  let vars: GlobalVar[];
  if (btf !== undefined && datasec !== undefined) {
    vars = datasec.vars.map((vi) => {
      const v = btf.typeById(vi.type);
      const name = v.name;
      const sym = syms.find((s) => s.name === name);
      return {
        name,
        offset: sym?.value ?? vi.offset,
        size: vi.size,
        ...(v.kind === 'var' ? { typeId: v.type } : {}),
      };
    });
  } else {
    vars = syms.map((s) => ({ name: s.name, offset: s.value, size: s.size }));
  }
  for (const v of vars) {
    if (!(v.offset + v.size <= sec.size)) {
      throw new ElfError(
        `variable '${v.name}' (0x${hex(v.size)} bytes at 0x${hex(v.offset)}) outside the section`,
        sec.name,
        sec.offset,
      );
    }
  }
  return vars.sort((a, b) => a.offset - b.offset);
}
