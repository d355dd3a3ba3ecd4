/**
 * bpf_spin_lock / bpf_spin_unlock: the lock word in a map value (owner = worker + 1), lock
 * breaking for a lock left held, argument checks, and the Atomics path on shared memory.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NULL_GUARD_END, workerLayout } from '../../../../src/abi.js';
import { SPIN_LIMIT, spinLock, spinUnlock } from '../../../../runtime/helpers/spinlock.js';
import { BPF_MAP_TYPE_ARRAY } from '../../../../runtime/maps/map-type.js';
import { ENGINES, closeVms, r0, runAsm } from './harness.js';

afterEach(closeVms);

const MAP = { name: 'locked', type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 16, maxEntries: 1 };

/** value = lookup(0); lock(value); value[8] += 1; r8 = lock word; unlock; r9 = lock word. */
const COUNTER = `
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jne %r0, 0, +1
    exit
    mov %r6, %r0
    mov %r1, %r6
    call 93
    mov %r7, %r0
    ldxdw %r1, [%r6+8]
    add %r1, 1
    stxdw [%r6+8], %r1
    ldxw %r8, [%r6+0]
    mov %r1, %r6
    call 94
    ldxw %r9, [%r6+0]
    ldxdw %r1, [%r6+8]
    mov %r0, %r8
    lsh %r0, 16
    or %r0, %r9
    lsh %r0, 16
    or %r0, %r1
    lsh %r7, 48
    or %r0, %r7
    exit`;

describe.each(ENGINES)('on the %s engine', (engine) => {
  it('holds the lock word at worker + 1 inside the section and 0 after', async () => {
    const run = await runAsm(engine, COUNTER, { maps: [MAP] });
    expect(run.out).toBe(r0((1n << 32n) | (0n << 16n) | 1n));
    expect(run.vm.services.spinLocks.breaks).toBe(0);
    expect(run.prog.run()).toBe((1n << 32n) | 2n);
  });

  it('takes over a lock a trapped run left held, and counts the break', async () => {
    const run = await runAsm(engine, COUNTER, {
      maps: [MAP],
      before: (vm, [m]) => {
        vm.dataView().setUint32(m?.valueAddr(0) ?? 0, 1, true);
      },
    });
    expect(run.out).toBe(r0((1n << 32n) | 1n));
    expect(run.vm.services.spinLocks.breaks).toBe(1);
  });

  it('returns -EINVAL for a lock outside memory or not 4-byte aligned', async () => {
    expect((await runAsm(engine, 'mov %r1, 8\ncall 93\nexit')).out).toBe(r0(-22));
    expect((await runAsm(engine, 'mov %r1, %r10\nadd %r1, -7\ncall 93\nexit')).out).toBe(r0(-22));
    expect((await runAsm(engine, 'mov %r1, 8\ncall 94\nexit')).out).toBe(r0(-22));
  });
});

describe('on shared memory', () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 2, shared: true });
  const host = {
    memory,
    worker: workerLayout(0),
    u8: () => new Uint8Array(memory.buffer),
    dataView: () => new DataView(memory.buffer),
  };
  const LOCK = BigInt(NULL_GUARD_END + 64);
  const word = (): number => Atomics.load(new Int32Array(memory.buffer), (NULL_GUARD_END + 64) / 4);

  it('locks and unlocks with Atomics', () => {
    const stats = { breaks: 0, held: 0 };
    expect(spinLock(host, LOCK, stats)).toBe(0n);
    expect(word()).toBe(1);
    expect(spinUnlock(host, LOCK)).toBe(0n);
    expect(word()).toBe(0);
    expect(stats.breaks).toBe(0);
  });

  it(`breaks a lock another worker holds after ${SPIN_LIMIT} tries`, () => {
    const stats = { breaks: 0, held: 0 };
    Atomics.store(new Int32Array(memory.buffer), (NULL_GUARD_END + 64) / 4, 5);
    expect(spinLock(host, LOCK, stats)).toBe(0n);
    expect(word()).toBe(1);
    expect(stats.breaks).toBe(1);
  });
});
