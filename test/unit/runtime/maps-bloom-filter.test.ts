/**
 * BPF_MAP_TYPE_BLOOM_FILTER: no false negatives, a false positive rate near the design's,
 * the kernel's sizing from max_entries and map_extra, errno, and push/peek from BPF on both
 * engines.
 */
import { describe, expect, it } from 'vitest';
import { MAP_DESC } from '../../../src/abi.js';
import { assembleProgram } from '../../../src/asm/assembler.js';
import { bloomBits } from '../../../runtime/maps/bloom-filter.js';
import {
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_F_ZERO_SEED,
  BPF_MAP_TYPE_BLOOM_FILTER,
} from '../../../runtime/maps/map-type.js';
import { loadBoth, outcome } from '../../helpers/engines.js';
import { errno, mapVm, spec, u64 } from '../../helpers/maps.js';
import { createPrng } from '../../helpers/prng.js';

const bloom = (fields: { maxEntries?: number; valueSize?: number; mapExtra?: number } = {}) => {
  const vm = mapVm();
  const m = vm.createMap(
    spec({ name: 'bloom', type: BPF_MAP_TYPE_BLOOM_FILTER, keySize: 0, ...fields }),
  );
  const desc = (field: keyof typeof MAP_DESC): number =>
    vm.dataView().getUint32(m.addr + MAP_DESC[field], true);
  return { vm, m, desc };
};

describe('bloom filter maps', () => {
  it('never forget a pushed value, whatever its size', () => {
    for (const valueSize of [1, 3, 4, 8, 13, 64]) {
      const rng = createPrng(valueSize);
      const { m } = bloom({ maxEntries: 500, valueSize });
      const values = Array.from({ length: 500 }, () => rng.bytes(valueSize));
      for (const v of values) m.push(v);
      for (const v of values) expect(m.has(v)).toBe(true);
    }
  });

  it('answer false for most values never pushed (about 2% with 5 hashes)', () => {
    const rng = createPrng(99);
    const { m } = bloom({ maxEntries: 1000, valueSize: 8 });
    for (let k = 0; k < 1000; k++) m.push(u64(BigInt(rng.next32()) << 1n));
    let positives = 0;
    for (let k = 0; k < 10000; k++) if (m.has(u64((BigInt(rng.next32()) << 1n) | 1n))) positives++;
    expect(positives / 10000).toBeLessThan(0.05);
    const empty = bloom({ valueSize: 8 }).m;
    expect(empty.has(u64(1n))).toBe(false);
  });

  it('size the bit array and pick the hash count as the kernel does', () => {
    expect(bloomBits(1, 5)).toBe(64);
    expect(bloomBits(1000, 5)).toBe(8192); // 5000 / 5 * 7 = 7000, rounded up
    expect(bloomBits(100, 3)).toBe(512);
    expect(bloomBits(2 ** 24, 15)).toBe(2 ** 29);
    expect(bloomBits(2 ** 30, 15)).toBe(2 ** 32);
    const dflt = bloom({ maxEntries: 1000 });
    expect([dflt.desc('nHashFuncs'), dflt.desc('bitsetMask')]).toEqual([5, 8191]);
    const three = bloom({ maxEntries: 100, mapExtra: 3 });
    expect([three.desc('nHashFuncs'), three.desc('bitsetMask'), three.desc('mapExtra')]).toEqual([
      3, 511, 3,
    ]);
  });

  it('work with a single hash function and with fifteen', () => {
    for (const mapExtra of [1, 15]) {
      const { m } = bloom({ maxEntries: 50, mapExtra });
      for (let k = 0; k < 50; k++) m.push(u64(BigInt(k)));
      for (let k = 0; k < 50; k++) expect(m.has(u64(BigInt(k)))).toBe(true);
    }
  });

  it('answer with the kernel errno', () => {
    const { m } = bloom();
    const none = new Uint8Array(0);
    expect(errno(() => m.push(u64(1n), BPF_EXIST))).toBe('EINVAL');
    expect(errno(() => m.pop())).toBe('ENOTSUPP');
    expect(errno(() => m.delete(none))).toBe('ENOTSUPP');
    expect(errno(() => m.lookup(none))).toBe('EINVAL');
    expect(errno(() => m.peek())).toBe('EINVAL');
    expect(errno(() => m.nextKey())).toBe('EINVAL');
    expect(errno(() => m.has(new Uint8Array(4)))).toBe('EINVAL');
    m.update(none, u64(7n));
    expect(m.has(u64(7n))).toBe(true);
  });

  it('check key size, map_extra and flags at creation', () => {
    const vm = mapVm();
    const base = {
      name: 'b',
      type: BPF_MAP_TYPE_BLOOM_FILTER,
      keySize: 0,
      valueSize: 4,
      maxEntries: 8,
    };
    expect(errno(() => vm.createMap({ ...base, flags: BPF_F_ZERO_SEED }))).toBe('ok');
    expect(errno(() => vm.createMap({ ...base, keySize: 4 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, valueSize: 0 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, maxEntries: 0 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, mapExtra: 16 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, flags: BPF_F_NO_PREALLOC }))).toBe('EINVAL');
    const b = vm.createMap(base);
    expect(b.valueRegion.end - b.valueRegion.start).toBe(0);
  });
});

describe('bloom filter maps from BPF', () => {
  // input: op (u64: 0 push, 1 peek, 2 pop), value (u64)
  const prog = (fd: number): string => `
    ldxdw %r6, [%r1]
    ldxdw %r7, [%r1+8]
    stxdw [%r10-8], %r7
    lddw %r1, map_fd ${fd}
    mov %r2, %r10
    add %r2, -8
    jne %r6, 0, not_push
    mov %r3, 0
    call 87
    exit
  not_push:
    jne %r6, 1, not_peek
    call 89
    exit
  not_peek:
    call 88
    exit`;
  const input = (op: number, v: bigint): Uint8Array =>
    new Uint8Array([...u64(BigInt(op)), ...u64(v)]);

  it('adds and tests values the same way on both engines and agrees with the host', async () => {
    const vm = mapVm();
    const m = vm.createMap(
      spec({ name: 'b', type: BPF_MAP_TYPE_BLOOM_FILTER, keySize: 0, maxEntries: 64 }),
    );
    const { jit, interp } = await loadBoth(vm, assembleProgram(prog(m.id)));
    for (let k = 0n; k < 32n; k++) (k % 2n === 0n ? jit : interp).run(input(0, k * 1000n));
    m.push(u64(424242n));
    for (const p of [jit, interp]) {
      for (let k = 0n; k < 32n; k++) expect(outcome(() => p.run(input(1, k * 1000n)))).toBe('r0=0');
      expect(outcome(() => p.run(input(1, 424242n)))).toBe('r0=0');
      expect(outcome(() => p.run(input(2, 0n)))).toBe('r0=ffffffffffffffa1'); // -EOPNOTSUPP
    }
    expect(m.has(u64(31000n))).toBe(true);
    // the empty filter: -ENOENT for anything
    const e = vm.createMap(spec({ name: 'e', type: BPF_MAP_TYPE_BLOOM_FILTER, keySize: 0 }));
    const pe = await loadBoth(vm, assembleProgram(prog(e.id)));
    expect(outcome(() => pe.jit.run(input(1, 5n)))).toBe('r0=fffffffffffffffe');
    expect(outcome(() => pe.interp.run(input(1, 5n)))).toBe('r0=fffffffffffffffe');
  });
});
