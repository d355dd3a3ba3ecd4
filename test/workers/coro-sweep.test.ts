/**
 * The host's sweep against worker threads that may be resuming the frames it finds due: it
 * marks them dying (CORO_F_DYING), after which no resume path takes them (coro_resume, the
 * deferred drains, bpf_coro_handle_frame), and destroys them once every request the workers
 * had in flight has completed, unless one was resumed before the mark (runtime/coroutines.ts
 * `sweep`, `swept`).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { CORO_F_DYING, CORO_HDR } from '../../src/abi.js';
import type { Program } from '../../src/program.js';
import type { LoadedProgram } from '../../runtime/loaded-program.js';
import { Vm } from '../../runtime/vm.js';
import { detachedFrameAsm, kfuncCalls } from '../helpers/coro-asm.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

const TTL = 1_000_000_000n;
const KFUNCS = [
  'bpf_coro_frame_alloc',
  'bpf_coro_detach',
  'bpf_coro_enqueue',
  'bpf_coro_frame_free',
  'bpf_coro_handle_frame',
];

const kfuncsOf = (prog: Program) => kfuncCalls(prog, KFUNCS);

/** A Vm with `workers` workers, a handle queue, and its three programs. */
async function setup(workers = 1): Promise<{
  vm: Vm;
  /** Queues one detached frame (resume: done; destroy: free). */
  producer: LoadedProgram;
  /** Pops a handle and returns bpf_coro_handle_frame's answer (1 << 40: the queue was empty). */
  consumer: LoadedProgram;
  /** Keeps its worker busy for a while (bpf_loop(1 << 23), inlined). */
  spinner: LoadedProgram;
}> {
  const vm = Vm.create({ workers, coroutines: { sweepIntervalMs: 0, ttlNs: Number(TTL) } });
  vms.push(vm);
  const q = vm.coroutines.queue('q');
  const load = (asm: string): Promise<LoadedProgram> => {
    const prog = assembleProgram(asm);
    return vm.load(prog, { kfuncs: kfuncsOf(prog), type: 'mem' });
  };
  const producer = await load(
    detachedFrameAsm(`lddw %r1, map_fd ${q.id}\nmov %r2, %r7\ncall kfunc 2`, 3),
  );
  const consumer = await load(`
    lddw %r1, map_fd ${q.id}
    mov %r2, %r10
    add %r2, -8
    call 88
    jne %r0, 0, empty
    ldxdw %r1, [%r10-8]
    call kfunc 4
    exit
  empty:
    lddw %r0, 0x10000000000
    exit`);
  const spinner = await load(`
    mov %r1, 8388608
    lddw %r2, func cb
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 0
    exit
  cb:
    mov %r0, 0
    exit`);
  return { vm, producer, consumer, spinner };
}

const flags = (vm: Vm, frame: number): number =>
  vm.dataView().getUint32(frame + CORO_HDR.flags, true);

describe('the sweep in a Vm with workers', () => {
  it('destroys a due frame after the requests in flight, and nothing resumes it meanwhile', async () => {
    const { vm, producer, spinner } = await setup();
    expect(await producer.runOn(0, new Uint8Array(32))).toBe(0n);
    const [frame] = vm.coroutines.liveFrames() as [number];
    expect(vm.coroutines.sweep(0n)).toBe(0); // stamps the deadline
    const busy = spinner.runOn(0);
    expect(vm.coroutines.sweep(TTL + 1n)).toBe(0); // due, but a request is in flight
    expect(flags(vm, frame) & CORO_F_DYING).not.toBe(0);
    // the host pops its handle meanwhile: not resumed
    expect(vm.coroutines.drain(vm.coroutines.queue('q'))).toBe(1);
    expect(vm.coroutines.stats()).toMatchObject({ resumed: 0, live: 1 });
    expect(await busy).toBe(0n);
    expect(await vm.coroutines.swept()).toBe(1);
    expect(vm.coroutines.stats()).toMatchObject({ resumed: 0, live: 0, expired: 1 });
    expect(vm.resources()).toMatchObject({ live_objects: 0, live_bytes: 0 });
  });

  it('gives a BPF worker NULL for the handle of a dying frame', async () => {
    const { vm, producer, consumer, spinner } = await setup(2);
    await producer.runOn(0, new Uint8Array(32));
    vm.coroutines.sweep(0n);
    let spun = false;
    const busy = spinner.runOn(0).then(() => (spun = true));
    vm.coroutines.sweep(TTL + 1n);
    // worker 1 pops the handle while worker 0 still spins (the frame is dying, not destroyed)
    const got = await consumer.runOn(1);
    if (!spun) expect(got).toBe(0n);
    else expect([0n, 1n << 40n]).toContain(got); // destroyed (and dequeued) first: empty
    await busy;
    expect(await vm.coroutines.swept()).toBe(1);
    expect(vm.coroutines.stats()).toMatchObject({ resumed: 0, live: 0 });
  });

  it('spares a frame resumed before the mark, and lets it be resumed', async () => {
    const { vm, producer, spinner } = await setup();
    await producer.runOn(0, new Uint8Array(32));
    const [frame] = vm.coroutines.liveFrames() as [number];
    vm.coroutines.sweep(0n);
    const busy = spinner.runOn(0);
    vm.coroutines.sweep(TTL + 1n);
    // what a resume on a worker before the mark leaves: the deadline cleared
    vm.dataView().setBigUint64(frame + CORO_HDR.deadline, 0n, true);
    await busy;
    expect(await vm.coroutines.swept()).toBe(0);
    expect(flags(vm, frame) & CORO_F_DYING).toBe(0);
    expect(vm.coroutines.drain(vm.coroutines.queue('q'))).toBe(1);
    expect(vm.coroutines.stats()).toMatchObject({ resumed: 1, completed: 1, live: 0 });
  });

  it('destroys at once when no worker has a request', async () => {
    const { vm, producer } = await setup();
    await producer.runOn(0, new Uint8Array(32));
    vm.coroutines.sweep(0n);
    expect(vm.coroutines.sweep(TTL + 1n)).toBe(1);
    expect(vm.coroutines.stats()).toMatchObject({ live: 0, expired: 1 });
  });
});
