/**
 * Unit tests of src/loader/maps.ts through `loadObject`: the map type table, BTF-defined maps
 * (sizes from key/value types, prog_array and map-in-map `values` filled by relocations),
 * legacy `maps` definitions, maps of objects without BTF, and bad definitions.
 */

import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPES, mapTypeName } from '../../../../src/loader/maps.js';
import { loadObject } from '../../../../src/loader/object.js';
import { R_BPF_64_64, R_BPF_64_ABS64, STT_SECTION } from '../../../../src/loader/elf.js';
import { insn } from '../../../../src/isa/insn.js';
import { BtfBuilder, buildElf, u32s, type TestObject } from './elf-builder.js';
import { expectLoaderError, readFixture } from './fixtures.js';

const EXIT = insn(0x95, 0, 0, 0, 0);
const MOV_R0_0 = insn(0xb7, 0, 0, 0, 0);

describe('map type table', () => {
  it.each([
    [1, 'hash'],
    [2, 'array'],
    [3, 'prog_array'],
    [4, 'perf_event_array'],
    [5, 'percpu_hash'],
    [6, 'percpu_array'],
    [7, 'stack_trace'],
    [8, 'cgroup_array'],
    [9, 'lru_hash'],
    [10, 'lru_percpu_hash'],
    [11, 'lpm_trie'],
    [12, 'array_of_maps'],
    [13, 'hash_of_maps'],
    [22, 'queue'],
    [23, 'stack'],
    [27, 'ringbuf'],
    [30, 'bloom_filter'],
    [31, 'user_ringbuf'],
    [34, 'insn_array'],
  ] as const)('names BPF_MAP_TYPE %i %s', (id, name) => {
    expect(mapTypeName(id)).toBe(name);
    expect(BPF_MAP_TYPES.indexOf(name)).toBe(id);
  });

  it('names ids beyond the table', () => {
    expect(mapTypeName(99)).toBe('unknown#99');
  });
});

describe('maps of real objects', () => {
  it('reads a BTF-defined hash map with sizes from its key and value types', () => {
    const obj = loadObject(readFixture('xdp/xdp_count.o'));
    const m = obj.maps[0];
    expect(m).toMatchObject({
      name: 'pkt_count',
      type: 1,
      typeName: 'hash',
      keySize: 4,
      valueSize: 8,
      maxEntries: 256,
      flags: 0,
    });
    expect(obj.btf?.resolve(m?.keyTypeId ?? 0).name).toBe('unsigned int');
    expect(obj.btf?.resolve(m?.valueTypeId ?? 0).name).toBe('unsigned long long');
  });

  it('reads a ring buffer map', () => {
    const obj = loadObject(readFixture('coro/coro_destroy.g.o'));
    expect(obj.maps[0]).toMatchObject({ name: 'events', typeName: 'ringbuf', maxEntries: 4096 });
  });

  it('gives a .maps entry of an object without BTF the unspec type', () => {
    const obj = loadObject(readFixture('coro/coro_perf_event.o'));
    expect(obj.btf).toBeUndefined();
    expect(obj.maps[0]).toMatchObject({ name: 'counts', type: 0, typeName: 'unspec' });
  });
});

/** An object with a prog_array and an array_of_maps whose `values` are initialised. */
function mapsObject(extraMember?: readonly [string, number, number]): TestObject {
  const b = new BtfBuilder();
  const int = b.int('int', 4, 1);
  const arrInt = (n: number): number => b.ptr(b.array(int, int, n));
  const proto = b.funcProto(int, [['ctx', b.ptr(0)]]);
  const progStruct = b.struct('progs', 24, [
    ['type', arrInt(3), 0],
    ['max_entries', arrInt(4), 64],
    ['key_size', arrInt(4), 128],
    ['values', b.array(b.ptr(proto), int, 0), 192],
    ...(extraMember === undefined ? [] : [extraMember]),
  ]);
  const innerStruct = b.struct('inner', 32, [
    ['type', arrInt(2), 0],
    ['max_entries', arrInt(1), 64],
    ['key', b.ptr(int), 128],
    ['value', b.ptr(int), 192],
  ]);
  const outerStruct = b.struct('outer', 16, [
    ['type', arrInt(12), 0],
    ['max_entries', arrInt(2), 64],
    ['values', b.array(b.ptr(innerStruct), int, 0), 128],
  ]);
  const vProgs = b.variable('jmp_table', progStruct);
  const vInner = b.variable('inner_a', innerStruct);
  const vOuter = b.variable('outer', outerStruct);
  b.datasec('.maps', 0, [
    [vProgs, 0, 48],
    [vInner, 0, 32],
    [vOuter, 0, 40],
  ]);
  const prog = [MOV_R0_0, EXIT];
  return {
    sections: [
      { name: 'xdp', insns: [...prog, ...prog] },
      { name: '.maps', data: new Uint8Array(120) },
      { name: '.BTF', data: b.build(), flags: 0 },
    ],
    symbols: [
      { name: 'entry', section: 'xdp', value: 0 },
      { name: 'tail', section: 'xdp', value: 16 },
      { name: 'jmp_table', section: '.maps', value: 0, size: 48 },
      { name: 'inner_a', section: '.maps', value: 48, size: 32 },
      { name: 'outer', section: '.maps', value: 80, size: 40 },
    ],
    relocs: [
      { section: '.maps', offset: 24 + 8, type: R_BPF_64_ABS64, symbol: 'tail' },
      { section: '.maps', offset: 80 + 16, type: R_BPF_64_ABS64, symbol: 'inner_a' },
    ],
  };
}

describe('BTF-defined maps with values', () => {
  const obj = loadObject(buildElf(mapsObject()));

  it('reads a prog_array and its initial program slots', () => {
    expect(obj.maps[0]).toMatchObject({
      name: 'jmp_table',
      typeName: 'prog_array',
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
      initialValues: [{ index: 1, symbol: 'tail' }],
    });
  });

  it('reads an array_of_maps with its inner map definition and initial map slots', () => {
    expect(obj.maps[1]).toMatchObject({ name: 'inner_a', typeName: 'array', keySize: 4 });
    expect(obj.maps[2]).toMatchObject({
      name: 'outer',
      typeName: 'array_of_maps',
      valueSize: 4,
      maxEntries: 2,
      innerMap: { typeName: 'array', keySize: 4, valueSize: 4, maxEntries: 1 },
      initialValues: [{ index: 0, symbol: 'inner_a' }],
    });
  });

  it('rejects an unknown field in a map definition', () => {
    const bad = buildElf(mapsObject(['color', 1, 256]));
    expectLoaderError(() => loadObject(bad), {
      name: 'ElfError',
      section: '.maps',
      reason: /map 'jmp_table': unknown field 'color'/,
    });
  });
});

describe('legacy maps section', () => {
  it('reads struct bpf_map_def entries by symbol', () => {
    const bytes = buildElf({
      sections: [
        { name: 'socket', insns: [MOV_R0_0, EXIT] },
        { name: 'maps', data: u32s(1, 4, 8, 128, 0, 2, 4, 16, 1, 0x400) },
      ],
      symbols: [
        { name: 'prog', section: 'socket' },
        { name: 'counter', section: 'maps', value: 0, size: 20 },
        { name: 'table', section: 'maps', value: 20, size: 20 },
      ],
    });
    const obj = loadObject(bytes);
    expect(obj.maps).toEqual([
      {
        name: 'counter',
        type: 1,
        typeName: 'hash',
        keySize: 4,
        valueSize: 8,
        maxEntries: 128,
        flags: 0,
      },
      {
        name: 'table',
        type: 2,
        typeName: 'array',
        keySize: 4,
        valueSize: 16,
        maxEntries: 1,
        flags: 0x400,
      },
    ]);
    expect(obj.programs[0]?.type).toBe('socket_filter');
  });
});

describe('relocations against section symbols (static maps and variables)', () => {
  it('finds the map and the variable offset from the section symbol plus the lddw imm', () => {
    const lddw = (imm: number): ReturnType<typeof insn>[] => [
      insn(0x18, 1, 0, 0, imm),
      insn(0, 0, 0, 0, 0),
    ];
    const bytes = buildElf({
      sections: [
        { name: 'socket', insns: [...lddw(20), ...lddw(12), MOV_R0_0, EXIT] },
        { name: 'maps', data: u32s(1, 4, 8, 128, 0, 2, 4, 16, 1, 0) },
        { name: '.data', data: new Uint8Array(16) },
      ],
      symbols: [
        { name: 'prog', section: 'socket' },
        { name: 'maps', section: 'maps', type: STT_SECTION, bind: 0 },
        { name: '.data', section: '.data', type: STT_SECTION, bind: 0 },
        { name: 'a', section: 'maps', value: 0, size: 20 },
        { name: 'b', section: 'maps', value: 20, size: 20 },
      ],
      relocs: [
        { section: 'socket', offset: 0, type: R_BPF_64_64, symbol: 'maps' },
        { section: 'socket', offset: 16, type: R_BPF_64_64, symbol: '.data' },
      ],
    });
    const obj = loadObject(bytes);
    expect(obj.maps.map((m) => m.name)).toEqual(['a', 'b', '.data']);
    expect(obj.programs[0]?.relocs).toEqual([
      { insnIdx: 0, kind: 'map', map: 1 },
      { insnIdx: 2, kind: 'map_value', map: 2, offset: 12 },
    ]);
    expect(obj.programs[0]?.insns[3]?.imm).toBe(12);
  });
});
