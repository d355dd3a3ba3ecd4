/**
 * Maps with kernel semantics: host API per family, BPF-side access on both engines, errno.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import { MapError } from '../../../src/errors.js';
import { Vm } from '../../../runtime/vm.js';
import {
  BPF_EXIST,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_PERCPU_HASH,
  BPF_NOEXIST,
} from '../../../runtime/maps/map-type.js';
import { loadBoth, outcome } from '../../helpers/engines.js';

const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: bigint): Uint8Array => new Uint8Array(new BigUint64Array([n]).buffer);
const asU64 = (b: Uint8Array | undefined): bigint | undefined =>
  b === undefined ? undefined : new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
const errno = (f: () => unknown): string => {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof MapError) return e.code;
    throw e;
  }
};

describe('array maps', () => {
  const vm = Vm.create();
  const m = vm.createMap({
    name: 'arr',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
  });

  it('start zeroed and keep what is written', () => {
    expect(asU64(m.lookup(u32(3)))).toBe(0n);
    m.update(u32(3), u64(42n));
    expect(asU64(m.lookup(u32(3)))).toBe(42n);
    expect(m.lookup(u32(4))).toBeUndefined();
  });

  it('answer with the kernel errno', () => {
    expect(errno(() => m.update(u32(4), u64(1n)))).toBe('E2BIG');
    expect(errno(() => m.update(u32(0), u64(1n), BPF_NOEXIST))).toBe('EEXIST');
    expect(errno(() => m.update(u32(0), u64(1n), 99))).toBe('EINVAL');
    expect(errno(() => m.delete(u32(0)))).toBe('EINVAL');
    expect(errno(() => m.update(new Uint8Array(3), u64(1n)))).toBe('EINVAL');
    expect(errno(() => m.update(u32(0), new Uint8Array(7)))).toBe('EINVAL');
  });

  it('iterate over every index', () => {
    expect([...m.keys()].map((k) => k[0])).toEqual([0, 1, 2, 3]);
  });

  it('refuse a key size other than 4', () => {
    expect(
      errno(() =>
        vm.createMap({
          name: 'bad',
          type: BPF_MAP_TYPE_ARRAY,
          keySize: 8,
          valueSize: 8,
          maxEntries: 1,
        }),
      ),
    ).toBe('EINVAL');
  });
});

describe('hash maps', () => {
  it('follow BPF_ANY, BPF_NOEXIST and BPF_EXIST', () => {
    const vm = Vm.create();
    const m = vm.createMap({
      name: 'h',
      type: BPF_MAP_TYPE_HASH,
      keySize: 8,
      valueSize: 8,
      maxEntries: 3,
    });
    expect(errno(() => m.update(u64(1n), u64(10n), BPF_EXIST))).toBe('ENOENT');
    m.update(u64(1n), u64(10n), BPF_NOEXIST);
    expect(errno(() => m.update(u64(1n), u64(11n), BPF_NOEXIST))).toBe('EEXIST');
    m.update(u64(1n), u64(12n), BPF_EXIST);
    expect(asU64(m.lookup(u64(1n)))).toBe(12n);
    m.update(u64(2n), u64(20n));
    m.update(u64(3n), u64(30n));
    expect(errno(() => m.update(u64(4n), u64(40n)))).toBe('E2BIG');
    m.delete(u64(2n));
    expect(errno(() => m.delete(u64(2n)))).toBe('ENOENT');
    m.update(u64(4n), u64(40n));
    expect([...m.entries()].map(([k, v]) => [asU64(k), asU64(v)]).sort()).toEqual(
      [
        [1n, 12n],
        [3n, 30n],
        [4n, 40n],
      ].sort(),
    );
  });

  it('can be emptied while iterating, deleting each key after reading the next', () => {
    const vm = Vm.create();
    const m = vm.createMap({
      name: 'h',
      type: BPF_MAP_TYPE_HASH,
      keySize: 4,
      valueSize: 4,
      maxEntries: 100,
    });
    for (let k = 0; k < 100; k++) m.update(u32(k * 7919), u32(k));
    let seen = 0;
    let key = m.nextKey();
    while (key !== undefined) {
      const next = m.nextKey(key);
      m.delete(key);
      seen++;
      key = next;
    }
    expect(seen).toBe(100);
    expect(m.nextKey()).toBeUndefined();
  });

  it('keep a looked-up value at a stable address while other keys come and go', () => {
    const vm = Vm.create();
    const m = vm.createMap({
      name: 'h',
      type: BPF_MAP_TYPE_HASH,
      keySize: 4,
      valueSize: 8,
      maxEntries: 8,
    });
    m.update(u32(5), u64(1n));
    const key = vm.heap.alloc(16);
    vm.u8().set(u32(5), key);
    const addr = vm.rt.host_lookup(m.addr, key);
    for (let k = 10; k < 15; k++) m.update(u32(k), u64(BigInt(k)));
    m.delete(u32(12));
    m.update(u32(5), u64(2n));
    expect(vm.rt.host_lookup(m.addr, key)).toBe(addr);
    expect(vm.dataView().getBigUint64(addr, true)).toBe(2n);
  });
});

describe('LRU hash maps', () => {
  it('evict an element that was not used recently when full', () => {
    const vm = Vm.create();
    const m = vm.createMap({
      name: 'lru',
      type: BPF_MAP_TYPE_LRU_HASH,
      keySize: 4,
      valueSize: 4,
      maxEntries: 4,
    });
    for (let k = 0; k < 4; k++) m.update(u32(k), u32(k));
    // the clock sweep clears reference bits; keys touched since survive the next evictions
    m.update(u32(100), u32(100));
    expect([...m.keys()].length).toBe(4);
    expect(m.lookup(u32(100))).toBeDefined();
    for (let k = 200; k < 210; k++) {
      m.lookup(u32(100));
      m.update(u32(k), u32(k));
    }
    expect(m.lookup(u32(100))).toBeDefined();
    expect([...m.keys()].length).toBe(4);
  });
});

describe('percpu maps', () => {
  it('show the host every CPU value, each rounded to 8 bytes', () => {
    const vm = Vm.create();
    const a = vm.createMap({
      name: 'pa',
      type: BPF_MAP_TYPE_PERCPU_ARRAY,
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
    });
    expect(a.hostValueSize).toBe(8 * vm.nCpus);
    a.update(u32(1), new Uint8Array(8 * vm.nCpus).fill(9));
    expect(a.lookup(u32(1))?.[0]).toBe(9);
    const h = vm.createMap({
      name: 'ph',
      type: BPF_MAP_TYPE_PERCPU_HASH,
      keySize: 4,
      valueSize: 12,
      maxEntries: 2,
    });
    h.update(u32(1), new Uint8Array(16 * vm.nCpus).fill(3));
    expect(h.lookup(u32(1))?.slice(0, 12)).toEqual(new Uint8Array(12).fill(3));
  });
});

describe('maps from BPF', () => {
  // key = input byte 0; count[key] += 1 via lookup; when absent insert 1.
  const counter = (fd: number): string => `
    ldxb %r2, [%r1]
    stxw [%r10-4], %r2
    lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, insert
    ldxdw %r3, [%r0]
    add %r3, 1
    stxdw [%r0], %r3
    mov %r0, %r3
    exit
  insert:
    stdw [%r10-16], 1
    lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -4
    mov %r3, %r10
    add %r3, -16
    mov %r4, 0
    call 2
    exit`;

  for (const type of [BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY]) {
    it(`count into a ${type === BPF_MAP_TYPE_HASH ? 'hash' : 'array'} map the same way on both engines`, async () => {
      const vm = Vm.create();
      const m = vm.createMap({ name: 'c', type, keySize: 4, valueSize: 8, maxEntries: 8 });
      const { jit, interp } = await loadBoth(vm, assembleProgram(counter(m.id)));
      for (const [p, key] of [
        [jit, 1],
        [interp, 1],
        [jit, 2],
        [jit, 1],
        [interp, 2],
      ] as const) {
        p.run(new Uint8Array([key]));
      }
      // hash: the first run inserts 1; array: the element exists (0) and is incremented
      expect(asU64(m.lookup(u32(1)))).toBe(3n);
      expect(asU64(m.lookup(u32(2)))).toBe(2n);
    });
  }

  it('returns NULL or -EINVAL for pointers that are not maps or keys', async () => {
    const vm = Vm.create();
    const m = vm.createMap({
      name: 'h',
      type: BPF_MAP_TYPE_HASH,
      keySize: 4,
      valueSize: 8,
      maxEntries: 8,
    });
    const { jit, interp } = await loadBoth(
      vm,
      assembleProgram(`
        mov %r1, %r10
        add %r1, -64
        mov %r2, %r10
        call 1
        mov %r6, %r0
        lddw %r1, map_fd ${m.id}
        mov %r2, 16
        call 1
        add %r6, %r0
        lddw %r1, map_fd ${m.id}
        mov %r2, 0
        mov %r3, 0
        call 2
        add %r0, %r6
        exit`),
    );
    expect(outcome(() => jit.run())).toBe('r0=ffffffffffffffea');
    expect(outcome(() => interp.run())).toBe('r0=ffffffffffffffea');
  });

  it('fails to link a program naming a map fd the Vm does not have', async () => {
    const vm = Vm.create();
    await expect(
      vm.load(assembleProgram('lddw %r1, map_fd 7\nmov %r0, 0\nexit'), { verify: false }),
    ).rejects.toThrow(/fd 7 is not a map of this Vm/);
  });
});
