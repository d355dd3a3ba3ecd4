/**
 * Unit tests of src/loader/btf.ts: every type kind written by a hand-made BTF section, the
 * queries (resolve, sizeOf, findMember, findByName) on it and on xdp_count.o's BTF, and
 * malformed sections giving a `BtfError` with section and offset.
 */

import { describe, expect, it } from 'vitest';
import { parseBtf, type BtfType } from '../../../../src/loader/btf.js';
import { parseElf, sectionByName } from '../../../../src/loader/elf.js';
import { BtfBuilder, u32s } from './elf-builder.js';
import { expectLoaderError, readFixture } from './fixtures.js';

/** One of each kind, with the ids the tests refer to. */
function everyKind(): { bytes: Uint8Array; ids: Record<string, number> } {
  const b = new BtfBuilder();
  const ids: Record<string, number> = {};
  ids['int'] = b.int('int', 4, 1);
  ids['u8'] = b.int('unsigned char', 1, 2, 8);
  ids['ptr'] = b.ptr(ids['int']);
  ids['arr'] = b.array(ids['int'], ids['int'], 16);
  ids['struct'] = b.struct('pair', 8, [
    ['a', ids['int'], 0],
    ['b', ids['int'], 32],
  ]);
  ids['bits'] = b.struct('flags', 4, [
    ['lo', ids['int'], 0, 3],
    ['hi', ids['int'], 3, 29],
  ]);
  ids['union'] = b.struct('u', 4, [['x', ids['int'], 0]], true);
  ids['enum'] = b.enum(
    'e',
    4,
    [
      ['A', 1],
      ['B', -2],
    ],
    true,
  );
  ids['enum64'] = b.enum64(
    'e64',
    [
      ['BIG', 0x1_0000_0001n],
      ['NEG', -1n],
    ],
    true,
  );
  ids['fwd'] = b.fwd('later', true);
  ids['typedef'] = b.modifier(8, 'myint', ids['int']);
  ids['volatile'] = b.modifier(9, '', ids['typedef']);
  ids['const'] = b.modifier(10, '', ids['volatile']);
  ids['restrict'] = b.modifier(11, '', ids['ptr']);
  ids['tag'] = b.modifier(18, 'user', ids['const']);
  ids['proto'] = b.funcProto(ids['int'], [
    ['x', ids['int']],
    ['p', ids['ptr']],
  ]);
  ids['func'] = b.func('f', ids['proto'], 1);
  ids['var'] = b.variable('g', ids['arr'], 1);
  ids['datasec'] = b.datasec('.data', 64, [[ids['var'], 0, 64]]);
  ids['float'] = b.float('double', 8);
  ids['decl'] = b.declTag('hot', ids['func'], -1);
  return { bytes: b.build(), ids };
}

describe('parseBtf', () => {
  const { bytes, ids } = everyKind();
  const btf = parseBtf(bytes);
  const t = (k: string): BtfType => btf.typeById(ids[k] as number);

  it('reads every type kind with its fields', () => {
    expect(btf.types[0]).toEqual({ kind: 'void', id: 0, name: '' });
    expect(t('int')).toMatchObject({ kind: 'int', name: 'int', size: 4, encoding: 1, bits: 32 });
    expect(t('u8')).toMatchObject({ kind: 'int', encoding: 2, bits: 8 });
    expect(t('ptr')).toMatchObject({ kind: 'ptr', type: ids['int'] });
    expect(t('arr')).toMatchObject({ kind: 'array', type: ids['int'], nelems: 16 });
    expect(t('struct')).toMatchObject({
      kind: 'struct',
      name: 'pair',
      size: 8,
      members: [
        { name: 'a', type: ids['int'], bitOffset: 0, bitfieldSize: 0 },
        { name: 'b', type: ids['int'], bitOffset: 32, bitfieldSize: 0 },
      ],
    });
    expect(t('union')).toMatchObject({ kind: 'union', name: 'u', size: 4 });
    expect(t('enum')).toMatchObject({
      kind: 'enum',
      signed: true,
      values: [
        { name: 'A', value: 1 },
        { name: 'B', value: -2 },
      ],
    });
    expect(t('enum64')).toMatchObject({
      kind: 'enum64',
      size: 8,
      values: [
        { name: 'BIG', value: 0x1_0000_0001n },
        { name: 'NEG', value: -1n },
      ],
    });
    expect(t('fwd')).toMatchObject({ kind: 'fwd', name: 'later', isUnion: true });
    expect(t('typedef')).toMatchObject({ kind: 'typedef', name: 'myint' });
    expect(t('volatile').kind).toBe('volatile');
    expect(t('const').kind).toBe('const');
    expect(t('restrict').kind).toBe('restrict');
    expect(t('tag')).toMatchObject({ kind: 'type_tag', name: 'user' });
    expect(t('proto')).toMatchObject({
      kind: 'func_proto',
      returnType: ids['int'],
      params: [
        { name: 'x', type: ids['int'] },
        { name: 'p', type: ids['ptr'] },
      ],
    });
    expect(t('func')).toMatchObject({ kind: 'func', name: 'f', type: ids['proto'], linkage: 1 });
    expect(t('var')).toMatchObject({ kind: 'var', name: 'g', linkage: 1 });
    expect(t('datasec')).toMatchObject({
      kind: 'datasec',
      name: '.data',
      vars: [{ type: ids['var'], offset: 0, size: 64 }],
    });
    expect(t('float')).toMatchObject({ kind: 'float', size: 8 });
    expect(t('decl')).toMatchObject({ kind: 'decl_tag', type: ids['func'], componentIdx: -1 });
  });

  it('reads bitfield members of a struct with kind_flag set', () => {
    expect(t('bits')).toMatchObject({
      members: [
        { name: 'lo', bitOffset: 0, bitfieldSize: 3 },
        { name: 'hi', bitOffset: 3, bitfieldSize: 29 },
      ],
    });
  });

  it('resolves typedefs and modifiers to the underlying type', () => {
    expect(btf.resolve(ids['tag'] as number).id).toBe(ids['int']);
    expect(btf.resolve(ids['restrict'] as number).kind).toBe('ptr');
    expect(btf.resolve(ids['struct'] as number).id).toBe(ids['struct']);
  });

  it('computes sizes of ints, pointers, arrays, structs, enums and floats', () => {
    expect(btf.sizeOf(ids['tag'] as number)).toBe(4);
    expect(btf.sizeOf(ids['ptr'] as number)).toBe(8);
    expect(btf.sizeOf(ids['arr'] as number)).toBe(64);
    expect(btf.sizeOf(ids['struct'] as number)).toBe(8);
    expect(btf.sizeOf(ids['enum64'] as number)).toBe(8);
    expect(btf.sizeOf(ids['float'] as number)).toBe(8);
    expectLoaderError(() => btf.sizeOf(ids['func'] as number), {
      name: 'BtfError',
      section: '.BTF',
      reason: /\(func\) has no size/,
    });
  });

  it('looks up members and types by name', () => {
    expect(btf.findMember(ids['struct'] as number, 'b')?.bitOffset).toBe(32);
    expect(btf.findMember(ids['struct'] as number, 'c')).toBeUndefined();
    expect(btf.findMember(ids['int'] as number, 'a')).toBeUndefined();
    expect(btf.findByName('datasec', '.data')?.id).toBe(ids['datasec']);
    expect(btf.findByName('struct', 'nope')).toBeUndefined();
  });
});

describe('BTF of xdp_count.o', () => {
  const elf = parseElf(readFixture('xdp/xdp_count.o'));
  const sec = sectionByName(elf, '.BTF');
  const btf = parseBtf(sec?.data ?? new Uint8Array(), '.BTF', sec?.offset);

  it('holds the .maps DATASEC and the map struct with pointer-to-array fields', () => {
    const maps = btf.findByName('datasec', '.maps');
    expect(maps?.vars).toHaveLength(1);
    const v = btf.typeById(maps?.vars[0]?.type ?? 0);
    expect(v).toMatchObject({ kind: 'var', name: 'pkt_count' });
    const st = btf.resolve(v.kind === 'var' ? v.type : 0);
    expect(st.kind === 'struct' && st.members.map((m) => m.name)).toEqual([
      'type',
      'max_entries',
      'key',
      'value',
    ]);
  });

  it('names every function of the program', () => {
    const funcs = btf.types.filter((x) => x.kind === 'func').map((x) => x.name);
    expect(funcs.sort()).toEqual([
      'bucket_of',
      'mix',
      'should_sample',
      'sum_bytes_cb',
      'xdp_count',
    ]);
  });
});

describe('malformed BTF', () => {
  function withHeader(types: Uint8Array, strs: Uint8Array): Uint8Array {
    const hdr = u32s(0x0001eb9f, 24, 0, types.length, types.length, strs.length);
    const out = new Uint8Array(24 + types.length + strs.length);
    out.set(hdr);
    out.set(types, 24);
    out.set(strs, 24 + types.length);
    return out;
  }
  const NUL = new Uint8Array([0, 0x41, 0]);

  it('rejects a bad magic', () => {
    const bytes = everyKind().bytes.slice();
    bytes[0] = 0;
    expectLoaderError(() => parseBtf(bytes, '.BTF', 0x100), {
      name: 'BtfError',
      section: '.BTF',
      offset: 0x100,
      reason: /bad magic/,
    });
  });

  it('rejects a type section outside the BTF section', () => {
    const bytes = withHeader(new Uint8Array(0), NUL).slice();
    new DataView(bytes.buffer).setUint32(12, 0x1000, true);
    expectLoaderError(() => parseBtf(bytes), {
      name: 'BtfError',
      section: '.BTF',
      offset: 24,
      reason: /type section: 4096 bytes at 0x18 outside/,
    });
  });

  it('rejects a type id out of range', () => {
    const bytes = withHeader(u32s(0, 2 << 24, 99), NUL);
    expectLoaderError(() => parseBtf(bytes), {
      name: 'BtfError',
      section: '.BTF',
      offset: 24,
      reason: /type id 99 out of range \(2 types\)/,
    });
  });

  it('rejects a string offset out of range', () => {
    const bytes = withHeader(u32s(0x50, 1 << 24, 4, 32), NUL);
    expectLoaderError(() => parseBtf(bytes), {
      name: 'BtfError',
      section: '.BTF',
      offset: 24 + 16 + 0x50,
      reason: /type name: offset 0x50 outside 0x3 bytes/,
    });
  });

  it('rejects members past the end of the type section', () => {
    const bytes = withHeader(u32s(0, (4 << 24) | 100, 8), NUL);
    expectLoaderError(() => parseBtf(bytes), {
      name: 'BtfError',
      section: '.BTF',
      offset: 24,
      reason: /type \[1\]: 1200 bytes of data past the type section/,
    });
  });

  it('rejects an unknown kind', () => {
    const bytes = withHeader(u32s(0, 25 << 24, 0), NUL);
    expectLoaderError(() => parseBtf(bytes), {
      name: 'BtfError',
      section: '.BTF',
      offset: 24,
      reason: /unknown kind 25/,
    });
  });

  it('bounds a typedef cycle instead of looping', () => {
    const bytes = withHeader(u32s(0, 8 << 24, 2, 0, 8 << 24, 1), NUL);
    const btf = parseBtf(bytes);
    expectLoaderError(() => btf.resolve(1), {
      name: 'BtfError',
      section: '.BTF',
      offset: 24,
      reason: /chain longer than 32/,
    });
  });
});
