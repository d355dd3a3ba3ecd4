/**
 * Hung and dead workers (issue #6 item 5, the hard fallback): a request that outlives the Vm's
 * `workerTimeoutMs` while the worker's heartbeat stands still (a run bumps it at each termination
 * checkpoint) fails with a WorkerError naming
 * the worker and the program, and the thread is terminated and replaced without losing the Vm;
 * bpf_spin_locks record their owner (worker index + 1) and the lock the running program holds,
 * so a lock held by a worker that hung or was terminated is released by the pool, and one held
 * by an owner that never comes back is taken over by the next taker after a bounded wait.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CTRL_LOCK_HELD, workerLayout } from '../../src/abi.js';
import { assembleProgram } from '../../src/asm/assembler.js';
import { UsageError, WorkerError } from '../../src/errors.js';
import type { BpfMap } from '../../runtime/maps/map.js';
import { BPF_MAP_TYPE_ARRAY } from '../../runtime/maps/map-type.js';
import { Vm } from '../../runtime/vm.js';
import { createProgram } from '../../src/program.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((vm) => vm.close()));
});

async function make(timeoutMs: number, exits: WorkerError[]): Promise<Vm> {
  const vm = Vm.create({
    workers: 2,
    workerTimeoutMs: timeoutMs,
    onWorkerExit: (e) => exits.push(e),
  });
  vms.push(vm);
  await vm.workers?.ready();
  return vm;
}

/** A map of one 16-byte value: a bpf_spin_lock at 0, a counter at 8. */
function lockedMap(vm: Vm): BpfMap {
  return vm.createMap({
    name: 'locked',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 16,
    maxEntries: 1,
  });
}

/** value = lookup(0); lock(value); then `body` with r6 = value. */
function withLock(m: BpfMap, body: string): string {
  return `
    stw [%r10-4], 0
    lddw %r1, map_fd ${m.id}
    mov %r2, %r10
    add %r2, -4
    call 1
    jne %r0, 0, +1
    exit
    mov %r6, %r0
    mov %r1, %r6
    call 93
    ${body}`;
}

/** Locks, adds 1 to the counter, unlocks; r0 = 0. */
function incrementProg(m: BpfMap): string {
  return withLock(
    m,
    `ldxdw %r7, [%r6+8]
    add %r7, 1
    stxdw [%r6+8], %r7
    mov %r1, %r6
    call 94
    mov %r0, 0
    exit`,
  );
}

function lockWord(vm: Vm, m: BpfMap): number {
  return vm.dataView().getUint32(m.valueAddr(0), true);
}

function counter(m: BpfMap): bigint {
  const v = m.lookup(new Uint8Array(4)) as Uint8Array;
  return new DataView(v.buffer, v.byteOffset).getBigUint64(8, true);
}

describe('a worker that hangs', () => {
  it('fails the run with a WorkerError naming worker and program, and is replaced', async () => {
    const exits: WorkerError[] = [];
    const vm = await make(300, exits);
    const spin = await vm.load(
      createProgram(assembleProgram('ja -1\nexit').insns, { name: 'forever', type: 'mem' }),
      { type: 'mem', verify: false },
    );
    const echo = await vm.load(assembleProgram('ldxw %r0, [%r1]\nexit'), {
      type: 'mem',
      verify: false,
    });
    const hung = spin.runOn(0);
    const queued = echo.runOn(0, new Uint8Array([5, 0, 0, 0]));
    const err = await hung.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
    expect((err as WorkerError).worker).toBe(0);
    expect((err as Error).message).toBe(
      "worker 0: program 'forever' did not finish within 300 ms and the worker's heartbeat stopped: the thread was terminated and replaced",
    );
    expect(exits).toEqual([err]);
    // the Vm goes on: the queued run and later ones run on the fresh thread, worker 1 untouched
    expect(await queued).toBe(5n);
    expect(await echo.runOn(0, new Uint8Array([7, 0, 0, 0]))).toBe(7n);
    expect(await echo.runOn(1, new Uint8Array([9, 0, 0, 0]))).toBe(9n);
    expect(vm.workers?.replacements).toBe(1);
  });

  it('lets a run that finishes within the limit through', async () => {
    const exits: WorkerError[] = [];
    const vm = await make(2000, exits);
    // about 10^7 iterations: well under 2 s even on a loaded machine
    const count = await vm.load(
      assembleProgram(`
        mov %r0, 0
      loop:
        add %r0, 1
        jlt %r0, 10000000, loop
        exit`),
      { type: 'mem', verify: false },
    );
    expect(await count.runOn(1)).toBe(10000000n);
    expect(exits).toEqual([]);
    expect(vm.workers?.replacements).toBe(0);
  });

  it('lets a long run through while its checkpoints move the heartbeat', async () => {
    const exits: WorkerError[] = [];
    const vm = await make(200, exits);
    // 8M may_goto iterations of 100 adds each (about 2.5·10⁹ insns): far longer than 200 ms;
    // every 65,536th may_goto is a termination checkpoint, which bumps the heartbeat
    const long = await vm.load(
      assembleProgram(`
        mov %r0, 0
      top:
        may_goto +5
        mov %r1, 0
      inner:
        add %r0, 1
        add %r1, 1
        jlt %r1, 100, inner
        ja top
        exit`),
      { type: 'mem', verify: false },
    );
    const t0 = performance.now();
    expect(await long.runOn(0)).toBe(8_388_608n * 100n);
    expect(performance.now() - t0).toBeGreaterThan(400);
    expect(exits).toEqual([]);
    expect(vm.workers?.replacements).toBe(0);
  });

  it('refuses a limit that is not a positive number of ms', () => {
    expect(() => Vm.create({ workers: 1, workerTimeoutMs: 0 })).toThrow(UsageError);
  });
});

describe('bpf_spin_lock held by a worker that is gone', () => {
  it('is released by the pool when it replaces a worker that hung inside the section', async () => {
    const exits: WorkerError[] = [];
    const vm = await make(300, exits);
    const m = lockedMap(vm);
    const stuck = await vm.load(
      createProgram(assembleProgram(withLock(m, 'ja -1\nexit')).insns, {
        name: 'stuck_in_lock',
        type: 'mem',
      }),
      { type: 'mem', verify: false },
    );
    const inc = await vm.load(assembleProgram(incrementProg(m)), { type: 'mem', verify: false });
    const err = await stuck.runOn(0).catch((e: unknown) => e);
    expect((err as Error).message).toBe(
      `worker 0: program 'stuck_in_lock' did not finish within 300 ms and the worker's heartbeat stopped: the thread was terminated and replaced (it held the bpf_spin_lock at 0x${m.valueAddr(0).toString(16)}, now released)`,
    );
    await vm.workers?.ready();
    expect(lockWord(vm, m)).toBe(0);
    expect(vm.workers?.locksReleased).toBe(1);
    // both workers lock it again without a break
    expect(await Promise.all([inc.runOn(0), inc.runOn(1)])).toEqual([0n, 0n]);
    expect(counter(m)).toBe(2n);
    expect([vm.workers?.lockBreaks(0), vm.workers?.lockBreaks(1)]).toEqual([0, 0]);
    expect(vm.dataView().getUint32(workerLayout(1).ctrl + CTRL_LOCK_HELD, true)).toBe(0);
  });

  it('is released when the thread holding it is terminated from outside', async () => {
    const exits: WorkerError[] = [];
    const vm = await make(60_000, exits);
    const m = lockedMap(vm);
    const stuck = await vm.load(assembleProgram(withLock(m, 'ja -1\nexit')), {
      type: 'mem',
      verify: false,
    });
    const inc = await vm.load(assembleProgram(incrementProg(m)), { type: 'mem', verify: false });
    const run = stuck.runOn(1).catch((e: unknown) => e);
    while (lockWord(vm, m) !== 2) await new Promise((r) => setTimeout(r, 5));
    await vm.workers?.thread(1).terminate();
    expect(await run).toBeInstanceOf(WorkerError);
    expect(lockWord(vm, m)).toBe(0);
    expect(vm.workers?.locksReleased).toBe(1);
    expect(await inc.runOn(0)).toBe(0n);
    expect(counter(m)).toBe(1n);
  });

  it('is taken over, and reported, by the next taker after a bounded wait', async () => {
    const vm = await make(60_000, []);
    const m = lockedMap(vm);
    const inc = await vm.load(assembleProgram(incrementProg(m)), { type: 'mem', verify: false });
    // an owner that is not running anywhere: worker 5 of a Vm with 2
    vm.dataView().setUint32(m.valueAddr(0), 6, true);
    expect(await inc.runOn(1)).toBe(0n);
    expect(counter(m)).toBe(1n);
    expect(lockWord(vm, m)).toBe(0);
    expect([vm.workers?.lockBreaks(0), vm.workers?.lockBreaks(1)]).toEqual([0, 1]);
  });
});
