/**
 * BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS: inner maps by id on the host, the
 * kernel's compatibility check against the inner map template, fd-array and hash flags and
 * errno, iteration, and lookups from BPF that return inner maps usable with the map helpers
 * on both engines.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import type { MapSpec } from '../../../runtime/maps/map.js';
import {
  BPF_EXIST,
  BPF_F_INNER_MAP,
  BPF_F_NO_PREALLOC,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_ARRAY_OF_MAPS,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_HASH_OF_MAPS,
  BPF_MAP_TYPE_PROG_ARRAY,
  BPF_MAP_TYPE_QUEUE,
  BPF_NOEXIST,
} from '../../../runtime/maps/map-type.js';
import { loadBoth, outcome } from '../../helpers/engines.js';
import { asU32, asU64, errno, mapVm, u32 } from '../../helpers/maps.js';

const innerArray: MapSpec = {
  name: 'inner',
  type: BPF_MAP_TYPE_ARRAY,
  keySize: 4,
  valueSize: 8,
  maxEntries: 4,
};
const outerSpec = (type: number, innerMap: MapSpec = innerArray): MapSpec => ({
  name: 'outer',
  type,
  keySize: 4,
  valueSize: 4,
  maxEntries: 4,
  innerMap,
});

describe('array_of_maps', () => {
  it('stores inner maps by id and gives their ids back', () => {
    const vm = mapVm();
    const outer = vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS));
    const a = vm.createMap(innerArray);
    const b = vm.createMap(innerArray);
    outer.update(u32(0), u32(a.id));
    outer.update(u32(3), u32(b.id));
    expect(asU32(outer.lookup(u32(0)))).toBe(a.id);
    expect(asU32(outer.lookup(u32(3)))).toBe(b.id);
    expect(outer.lookup(u32(1))).toBeUndefined();
    expect(outer.lookup(u32(9))).toBeUndefined();
    outer.update(u32(0), u32(b.id));
    expect(asU32(outer.lookup(u32(0)))).toBe(b.id);
    expect([...outer.keys()].map(asU32)).toEqual([0, 1, 2, 3]);
    expect([...outer.entries()].map(([k, v]) => [asU32(k), asU32(v)])).toEqual([
      [0, b.id],
      [3, b.id],
    ]);
  });

  it('follows the fd array rules: BPF_ANY only, E2BIG past the end, ENOENT for empty slots', () => {
    const vm = mapVm();
    const outer = vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS));
    const a = vm.createMap(innerArray);
    expect(errno(() => outer.update(u32(0), u32(a.id), BPF_NOEXIST))).toBe('EINVAL');
    expect(errno(() => outer.update(u32(0), u32(a.id), BPF_EXIST))).toBe('EINVAL');
    expect(errno(() => outer.update(u32(4), u32(a.id)))).toBe('E2BIG');
    expect(errno(() => outer.update(u32(0), u32(999)))).toBe('EINVAL');
    expect(errno(() => outer.update(u32(0), u32(0)))).toBe('EINVAL');
    expect(errno(() => outer.delete(u32(0)))).toBe('ENOENT');
    expect(errno(() => outer.delete(u32(4)))).toBe('E2BIG');
    outer.update(u32(1), u32(a.id));
    outer.delete(u32(1));
    expect(outer.lookup(u32(1))).toBeUndefined();
  });

  it('accepts only inner maps that match the template, as map_meta_equal does', () => {
    const vm = mapVm();
    const outer = vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS));
    const bad: [string, Partial<MapSpec>][] = [
      ['type', { type: BPF_MAP_TYPE_HASH }],
      ['value size', { valueSize: 16 }],
      ['max_entries of an array', { maxEntries: 5 }],
      ['flags', { flags: BPF_F_INNER_MAP }],
    ];
    for (const [what, change] of bad) {
      const m = vm.createMap({ ...innerArray, ...change });
      expect([what, errno(() => outer.update(u32(0), u32(m.id)))]).toEqual([what, 'EINVAL']);
    }
    expect(errno(() => outer.update(u32(0), u32(outer.id)))).toBe('EINVAL');
    expect(outer.lookup(u32(0))).toBeUndefined();
  });

  it('lets arrays of any size in when the template has BPF_F_INNER_MAP', () => {
    const vm = mapVm();
    const tmpl = { ...innerArray, flags: BPF_F_INNER_MAP };
    const outer = vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS, tmpl));
    const big = vm.createMap({ ...tmpl, maxEntries: 100 });
    outer.update(u32(2), u32(big.id));
    expect(asU32(outer.lookup(u32(2)))).toBe(big.id);
  });

  it('checks the outer value size and the template at creation', () => {
    const vm = mapVm();
    const base = outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS);
    const noInner: MapSpec = {
      name: 'o',
      type: BPF_MAP_TYPE_ARRAY_OF_MAPS,
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
    };
    expect(errno(() => vm.createMap(noInner))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, valueSize: 8 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, keySize: 8 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS, base)))).toBe('EINVAL');
    expect(
      errno(() =>
        vm.createMap(
          outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS, {
            ...innerArray,
            type: BPF_MAP_TYPE_PROG_ARRAY,
            valueSize: 4,
          }),
        ),
      ),
    ).toBe('ENOTSUPP');
    expect(
      errno(() =>
        vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS, { ...innerArray, keySize: 8 })),
      ),
    ).toBe('EINVAL');
    expect(
      errno(() =>
        vm.createMap(
          outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS, {
            ...innerArray,
            type: BPF_MAP_TYPE_QUEUE,
            keySize: 0,
          }),
        ),
      ),
    ).toBe('ok');
    const outer = vm.createMap(base);
    expect(outer.valueRegion.end - outer.valueRegion.start).toBe(0);
  });
});

describe('hash_of_maps', () => {
  const innerHash: MapSpec = { ...innerArray, type: BPF_MAP_TYPE_HASH, maxEntries: 16 };

  it('follows BPF_ANY, BPF_NOEXIST and BPF_EXIST and lets hash inner maps differ in size', () => {
    const vm = mapVm();
    const outer = vm.createMap(outerSpec(BPF_MAP_TYPE_HASH_OF_MAPS, innerHash));
    const a = vm.createMap(innerHash);
    const b = vm.createMap({ ...innerHash, maxEntries: 1000 });
    expect(errno(() => outer.update(u32(7), u32(a.id), BPF_EXIST))).toBe('ENOENT');
    outer.update(u32(7), u32(a.id), BPF_NOEXIST);
    expect(errno(() => outer.update(u32(7), u32(b.id), BPF_NOEXIST))).toBe('EEXIST');
    outer.update(u32(7), u32(b.id), BPF_EXIST);
    outer.update(u32(8), u32(a.id));
    expect(asU32(outer.lookup(u32(7)))).toBe(b.id);
    expect([...outer.entries()].map(([k, v]) => [asU32(k), asU32(v)]).sort()).toEqual([
      [7, b.id],
      [8, a.id],
    ]);
    const other = vm.createMap({ ...innerHash, keySize: 8 });
    expect(errno(() => outer.update(u32(9), u32(other.id)))).toBe('EINVAL');
    outer.delete(u32(7));
    expect(errno(() => outer.delete(u32(7)))).toBe('ENOENT');
    expect(outer.lookup(u32(7))).toBeUndefined();
  });

  it('can be emptied while iterating, deleting each key after reading the next', () => {
    const vm = mapVm();
    const outer = vm.createMap({
      ...outerSpec(BPF_MAP_TYPE_HASH_OF_MAPS, innerHash),
      maxEntries: 50,
    });
    const a = vm.createMap(innerHash);
    for (let k = 0; k < 50; k++) outer.update(u32(k * 31), u32(a.id));
    let seen = 0;
    for (let key = outer.nextKey(); key !== undefined; seen++) {
      const next = outer.nextKey(key);
      outer.delete(key);
      key = next;
    }
    expect(seen).toBe(50);
    expect(outer.nextKey()).toBeUndefined();
  });

  it('takes the hash flags, not the array ones', () => {
    const vm = mapVm();
    const spec = { ...outerSpec(BPF_MAP_TYPE_HASH_OF_MAPS, innerHash), flags: BPF_F_NO_PREALLOC };
    expect(errno(() => vm.createMap(spec))).toBe('ok');
    expect(errno(() => vm.createMap({ ...spec, flags: BPF_F_INNER_MAP }))).toBe('EINVAL');
  });
});

describe('map-in-map from BPF', () => {
  // input: outer key (u32), inner key (u32). Looks up the inner map, adds 1 to its value and
  // returns the new value; 0xdead when the outer slot is empty, 0xbeef when the inner key is.
  const prog = (fd: number): string => `
    ldxw %r6, [%r1+4]
    ldxw %r2, [%r1]
    stxw [%r10-4], %r2
    stxw [%r10-8], %r6
    lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, no_map
    mov %r1, %r0
    mov %r2, %r10
    add %r2, -8
    call 1
    jeq %r0, 0, no_value
    ldxdw %r1, [%r0]
    add %r1, 1
    stxdw [%r0], %r1
    mov %r0, %r1
    exit
  no_map:
    mov %r0, 0xdead
    exit
  no_value:
    mov %r0, 0xbeef
    exit`;
  const input = (outer: number, inner: number) => new Uint8Array([...u32(outer), ...u32(inner)]);

  for (const type of [BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_HASH_OF_MAPS]) {
    const kind = type === BPF_MAP_TYPE_ARRAY_OF_MAPS ? 'array_of_maps' : 'hash_of_maps';
    it(`reaches inner maps through ${kind} the same way on both engines`, async () => {
      const vm = mapVm();
      const outer = vm.createMap(outerSpec(type));
      const a = vm.createMap(innerArray);
      const b = vm.createMap(innerArray);
      outer.update(u32(0), u32(a.id));
      outer.update(u32(1), u32(b.id));
      const { jit, interp } = await loadBoth(vm, assembleProgram(prog(outer.id)));
      expect(outcome(() => jit.run(input(0, 2)))).toBe('r0=1');
      expect(outcome(() => interp.run(input(0, 2)))).toBe('r0=2');
      expect(outcome(() => interp.run(input(1, 3)))).toBe('r0=1');
      expect(outcome(() => jit.run(input(2, 0)))).toBe('r0=dead');
      expect(outcome(() => interp.run(input(1, 4)))).toBe('r0=beef');
      expect(asU64(a.lookup(u32(2)))).toBe(2n);
      expect(asU64(b.lookup(u32(3)))).toBe(1n);
      outer.delete(u32(1));
      expect(outcome(() => jit.run(input(1, 3)))).toBe('r0=dead');
    });
  }

  it('cannot update or delete the outer map from BPF (-EINVAL)', async () => {
    const vm = mapVm();
    const outer = vm.createMap(outerSpec(BPF_MAP_TYPE_ARRAY_OF_MAPS));
    const a = vm.createMap(innerArray);
    const { jit, interp } = await loadBoth(
      vm,
      assembleProgram(`
        stw [%r10-4], 0
        stw [%r10-8], ${a.addr}
        lddw %r1, map_fd ${outer.id}
        mov %r2, %r10
        add %r2, -4
        mov %r3, %r10
        add %r3, -8
        mov %r4, 0
        call 2
        mov %r6, %r0
        lddw %r1, map_fd ${outer.id}
        mov %r2, %r10
        add %r2, -4
        call 3
        add %r0, %r6
        exit`),
    );
    expect(outcome(() => jit.run())).toBe('r0=ffffffffffffffd4');
    expect(outcome(() => interp.run())).toBe('r0=ffffffffffffffd4');
    expect(outer.lookup(u32(0))).toBeUndefined();
  });
});
