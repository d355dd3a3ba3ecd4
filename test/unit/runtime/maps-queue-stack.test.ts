/**
 * BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK: ring order, wraparound, the kernel's push flags
 * and errno, the generic map API, and push/pop/peek from BPF on both engines.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_NO_PREALLOC,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY_PROG,
  BPF_MAP_TYPE_QUEUE,
  BPF_MAP_TYPE_STACK,
  BPF_NOEXIST,
} from '../../../runtime/maps/map-type.js';
import { loadBoth, outcome } from '../../helpers/engines.js';
import { asU64, errno, mapVm, spec, u64 } from '../../helpers/maps.js';
import { createPrng } from '../../helpers/prng.js';

const none = new Uint8Array(0);
const ring = (type: number, maxEntries = 4) =>
  mapVm().createMap(spec({ name: 'q', type, keySize: 0, valueSize: 8, maxEntries }));
const drain = (m: ReturnType<typeof ring>): bigint[] => {
  const out: bigint[] = [];
  for (let v = m.pop(); v !== undefined; v = m.pop()) out.push(asU64(v) ?? -1n);
  return out;
};

describe('queue and stack maps', () => {
  it('pop a queue oldest first and a stack newest first', () => {
    const q = ring(BPF_MAP_TYPE_QUEUE);
    const s = ring(BPF_MAP_TYPE_STACK);
    for (const m of [q, s]) for (const v of [1n, 2n, 3n]) m.push(u64(v));
    expect(asU64(q.peek())).toBe(1n);
    expect(asU64(s.peek())).toBe(3n);
    expect(drain(q)).toEqual([1n, 2n, 3n]);
    expect(drain(s)).toEqual([3n, 2n, 1n]);
    expect(q.pop()).toBeUndefined();
    expect(s.peek()).toBeUndefined();
  });

  it('refuse to push into a full ring with BPF_ANY (E2BIG)', () => {
    for (const type of [BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK]) {
      const m = ring(type, 3);
      for (const v of [1n, 2n, 3n]) m.push(u64(v));
      expect(errno(() => m.push(u64(4n)))).toBe('E2BIG');
      expect(errno(() => m.push(u64(4n), BPF_ANY))).toBe('E2BIG');
    }
  });

  it('drop the oldest element to make room with BPF_EXIST, for a stack too', () => {
    const q = ring(BPF_MAP_TYPE_QUEUE, 3);
    const s = ring(BPF_MAP_TYPE_STACK, 3);
    for (const m of [q, s]) {
      for (const v of [1n, 2n, 3n]) m.push(u64(v));
      m.push(u64(4n), BPF_EXIST);
      m.push(u64(5n), BPF_EXIST);
    }
    expect(drain(q)).toEqual([3n, 4n, 5n]);
    expect(drain(s)).toEqual([5n, 4n, 3n]);
  });

  it('reject BPF_NOEXIST and unknown push flags with EINVAL', () => {
    const m = ring(BPF_MAP_TYPE_QUEUE);
    expect(errno(() => m.push(u64(1n), BPF_NOEXIST))).toBe('EINVAL');
    expect(errno(() => m.push(u64(1n), BPF_EXIST | BPF_NOEXIST))).toBe('EINVAL');
    expect(errno(() => m.push(u64(1n), 4))).toBe('EINVAL');
    expect(m.peek()).toBeUndefined();
  });

  it('keep FIFO and LIFO order across many wraparounds of the ring', () => {
    const rng = createPrng(7);
    for (const type of [BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK]) {
      const m = ring(type, 5);
      const model: bigint[] = [];
      for (let step = 0; step < 2000; step++) {
        const op = rng.int(3);
        if (op === 0 || (op === 1 && model.length < 5)) {
          const v = BigInt(step);
          const flags = rng.bool() ? BPF_EXIST : BPF_ANY;
          const expected = model.length === 5 && flags === BPF_ANY ? 'E2BIG' : 'ok';
          expect(errno(() => m.push(u64(v), flags))).toBe(expected);
          if (expected === 'ok') {
            if (model.length === 5) model.shift();
            model.push(v);
          }
        } else if (rng.bool()) {
          expect(asU64(m.peek())).toBe(type === BPF_MAP_TYPE_QUEUE ? model[0] : model.at(-1));
        } else {
          expect(asU64(m.pop())).toBe(type === BPF_MAP_TYPE_QUEUE ? model.shift() : model.pop());
        }
      }
    }
  });

  it('push on update, peek on lookup and refuse delete and iteration, as the syscalls do', () => {
    const m = ring(BPF_MAP_TYPE_QUEUE);
    m.update(none, u64(9n));
    m.update(none, u64(10n), BPF_ANY);
    expect(asU64(m.lookup(none))).toBe(9n);
    expect(errno(() => m.update(none, u64(1n), BPF_NOEXIST))).toBe('EINVAL');
    expect(errno(() => m.delete(none))).toBe('EINVAL');
    expect(errno(() => m.nextKey())).toBe('EINVAL');
    expect(errno(() => [...m.keys()])).toBe('EINVAL');
    expect(errno(() => m.lookup(new Uint8Array(4)))).toBe('EINVAL');
    expect(drain(m)).toEqual([9n, 10n]);
  });

  it('check key size, value size, max_entries and flags at creation', () => {
    const vm = mapVm();
    const base = { name: 'q', type: BPF_MAP_TYPE_QUEUE, keySize: 0, valueSize: 8, maxEntries: 4 };
    expect(errno(() => vm.createMap(base))).toBe('ok');
    expect(errno(() => vm.createMap({ ...base, keySize: 4 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, valueSize: 0 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, maxEntries: 0 }))).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, flags: BPF_F_NO_PREALLOC }))).toBe('EINVAL');
    expect(
      errno(() => vm.createMap({ ...base, flags: BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG })),
    ).toBe('EINVAL');
    expect(errno(() => vm.createMap({ ...base, type: BPF_MAP_TYPE_STACK, keySize: 1 }))).toBe(
      'EINVAL',
    );
  });

  it('give BPF programs no value region to point into', () => {
    const m = ring(BPF_MAP_TYPE_STACK);
    expect(m.valueRegion.end - m.valueRegion.start).toBe(0);
  });
});

describe('queue and stack maps from BPF', () => {
  // input: op (u64: 0 push, 1 pop, 2 peek, 3 lookup, 4 update, 5 delete), then a u64 value
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
    jne %r6, 1, not_pop
    call 88
    ja value
  not_pop:
    jne %r6, 2, not_peek
    call 89
    ja value
  not_peek:
    jne %r6, 3, not_lookup
    call 1
    exit
  not_lookup:
    jne %r6, 4, not_update
    mov %r2, 0
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 2
    exit
  not_update:
    mov %r2, 0
    call 3
    exit
  value:
    jne %r0, 0, fail
    ldxdw %r0, [%r10-8]
    exit
  fail:
    ldxdw %r1, [%r10-8]
    lsh %r0, 32
    or %r0, %r1
    exit`;
  const input = (op: number, v = 0n): Uint8Array => new Uint8Array([...u64(BigInt(op)), ...u64(v)]);

  for (const type of [BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK]) {
    const kind = type === BPF_MAP_TYPE_QUEUE ? 'queue' : 'stack';
    it(`push and pop a ${kind} the same way on both engines`, async () => {
      const vm = mapVm();
      const m = vm.createMap(spec({ name: kind, type, keySize: 0, valueSize: 8, maxEntries: 3 }));
      const { jit, interp } = await loadBoth(vm, assembleProgram(prog(m.id)));
      expect(outcome(() => jit.run(input(0, 11n)))).toBe('r0=0');
      expect(outcome(() => interp.run(input(0, 22n)))).toBe('r0=0');
      expect(outcome(() => jit.run(input(0, 33n)))).toBe('r0=0');
      expect(outcome(() => interp.run(input(0, 44n)))).toBe('r0=fffffffffffffff9'); // -E2BIG
      const first = type === BPF_MAP_TYPE_QUEUE ? 11n : 33n;
      expect(outcome(() => interp.run(input(2)))).toBe(`r0=${first.toString(16)}`);
      expect(outcome(() => jit.run(input(1)))).toBe(`r0=${first.toString(16)}`);
      expect(outcome(() => interp.run(input(1)))).toBe('r0=16'); // 22 either way
      expect(asU64(m.pop())).toBe(type === BPF_MAP_TYPE_QUEUE ? 33n : 11n);
      // empty: -ENOENT, and the value buffer zeroed (low half of r0 is the buffer's low half)
      for (const p of [jit, interp]) {
        expect(outcome(() => p.run(input(1, 0xffffffffn)))).toBe('r0=fffffffe00000000');
        expect(outcome(() => p.run(input(2, 0xffffffffn)))).toBe('r0=fffffffe00000000');
      }
    });
  }

  it('answers lookup with NULL and update and delete with -EINVAL, as the kernel ops do', async () => {
    const vm = mapVm();
    const m = vm.createMap(spec({ type: BPF_MAP_TYPE_QUEUE, keySize: 0, valueSize: 8 }));
    m.push(u64(5n));
    const { jit, interp } = await loadBoth(vm, assembleProgram(prog(m.id)));
    for (const p of [jit, interp]) {
      expect(outcome(() => p.run(input(3)))).toBe('r0=0');
      expect(outcome(() => p.run(input(4, 1n)))).toBe('r0=ffffffffffffffea');
      expect(outcome(() => p.run(input(5)))).toBe('r0=ffffffffffffffea');
    }
    expect(asU64(m.peek())).toBe(5n);
  });
});
