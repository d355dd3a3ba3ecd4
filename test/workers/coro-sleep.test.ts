/**
 * bpf_coro_sleep on a worker thread: the runtime module's version puts the frame and its delay
 * into the Vm's sleep queue, and the host sets the timer when the worker's request completes;
 * the timer resumes the frame on the host thread (runtime/coroutines.ts takeWorkerSleepers).
 */

import { afterEach, describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { CORO_F_SLEEPING, CORO_HDR } from '../../src/abi.js';
import type { Program } from '../../src/program.js';
import { Vm } from '../../runtime/vm.js';
import { detachedFrameAsm, kfuncCalls } from '../helpers/coro-asm.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

const KFUNCS = ['bpf_coro_frame_alloc', 'bpf_coro_detach', 'bpf_coro_sleep', 'bpf_coro_frame_free'];

/** A detached frame put to sleep for `ns`; r0 = bpf_coro_sleep's result. */
function sleeper(ns: number): Program {
  return assembleProgram(detachedFrameAsm(`mov %r1, %r7\nmov %r2, ${ns}\ncall kfunc 2`, 3));
}

const kfuncsOf = (prog: Program) => kfuncCalls(prog, KFUNCS);

describe('bpf_coro_sleep in a worker thread', () => {
  it('sleeps the frame on a host timer, which resumes it and the runtime reaps it', async () => {
    const fired: (() => void)[] = [];
    const delays: bigint[] = [];
    const vm = Vm.create({
      workers: 1,
      coroutines: { sweepIntervalMs: 0 },
      scheduleTimer: (fire, ns) => {
        fired.push(fire);
        delays.push(ns);
        return () => undefined;
      },
    });
    vms.push(vm);
    const prog = sleeper(1_500_000);
    const p = await vm.load(prog, { kfuncs: kfuncsOf(prog), type: 'mem' });
    const input = new Uint8Array(64);
    expect(await p.runOn(0, input)).toBe(0n);
    // the request's completion set the timer: the frame sleeps, marked so
    expect(vm.coroutines.stats()).toMatchObject({ created: 1, live: 1, sleeping: 1 });
    expect(delays).toEqual([1_500_000n]);
    const frame = vm.coroutines.liveFrames()[0] as number;
    expect(vm.dataView().getUint32(frame + CORO_HDR.flags, true) & CORO_F_SLEEPING).not.toBe(0);
    // the timer fires on the host thread: resumed, done, reaped through its destroy token
    (fired[0] as () => void)();
    expect(vm.coroutines.stats()).toMatchObject({
      created: 1,
      completed: 1,
      live: 0,
      sleeping: 0,
      resumed: 1,
    });
  });

  it('waits for worker sleepers in settle(), on the real timers', async () => {
    const vm = Vm.create({ workers: 2, coroutines: { sweepIntervalMs: 0 } });
    vms.push(vm);
    const prog = sleeper(1_000_000);
    const p = await vm.load(prog, { kfuncs: kfuncsOf(prog), type: 'mem' });
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, k) => p.runOn(k % 2, new Uint8Array(64))),
    );
    expect(runs).toEqual(new Array<bigint>(6).fill(0n));
    // each asleep on a host timer by now, or (1 ms timers) already resumed and reaped
    const s = vm.coroutines.stats();
    expect([s.created, s.sleeping + s.completed]).toEqual([6, 6]);
    await vm.coroutines.settle({ timeoutMs: 5000 });
    expect(vm.coroutines.stats()).toMatchObject({ created: 6, completed: 6, live: 0 });
    expect(vm.resources()).toMatchObject({ live_objects: 0, live_bytes: 0 });
  });

  it('refuses a bad frame with -EINVAL and leaves the queue empty', async () => {
    const vm = Vm.create({ workers: 1, coroutines: { sweepIntervalMs: 0 } });
    vms.push(vm);
    const prog = assembleProgram(`
      mov %r1, 0x20000
      mov %r2, 1000
      call kfunc 2
      exit`);
    const p = await vm.load(prog, { kfuncs: kfuncsOf(prog), type: 'mem', verify: false });
    expect(await p.runOn(0, new Uint8Array(8))).toBe(BigInt.asUintN(64, -22n));
    expect(vm.coroutines.stats()).toMatchObject({ sleeping: 0, badHandles: 1 });
  });
});
