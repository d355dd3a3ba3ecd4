/**
 * The frame allocator across threads. (1) A randomized stress: worker threads instantiate the
 * runtime module over one shared memory, each as its own allocator worker, and run seeded
 * random allocations, frees and hand-offs (objects freed by another thread than the one that
 * allocated them); tags in every word catch overlapping or doubly handed-out objects, and at
 * the end the owner tables and the per-owner accounts must be back to zero. (2) A Vm with
 * workers runs the allocator's kfuncs on its worker threads.
 */
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { CORO_HDR_SIZE, heapBase, WASM_PAGE, workerLayout } from '../../src/abi.js';
import { assemble } from '../../src/asm/assembler.js';
import { createProgram } from '../../src/program.js';
import { initFrameAlloc } from '../../runtime/frame-alloc.js';
import { instantiateRt } from '../../runtime/rt.js';
import { Vm } from '../../runtime/vm.js';
import type { StressInit, StressReport } from './frame-alloc-stress-worker.js';

const THREADS = 3;
const SEED = 0x5eed;
const OPS = 20_000;
const MAILBOXES = 16;

function runThread(init: StressInit): Promise<StressReport> {
  const w = new Worker(new URL('./frame-alloc-stress-worker.ts', import.meta.url), {
    workerData: init,
    execArgv: ['--import', new URL('../../runtime/dev/ts-register.mjs', import.meta.url).href],
  });
  return new Promise((resolve, reject) => {
    w.once('message', (m: StressReport) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`stress thread exited with ${code}`)));
  });
}

describe('frame allocator under several threads', () => {
  it('keeps live objects disjoint and the accounts exact through random cross-thread frees', async () => {
    const memory = new WebAssembly.Memory({ initial: 256, maximum: 256, shared: true });
    let top = heapBase(THREADS + 1);
    const bump = (bytes: number): number => {
      const p = top;
      top += Math.ceil(bytes / 16) * 16;
      if (top > 256 * WASM_PAGE) throw new Error('test memory too small');
      return p;
    };
    const rt = instantiateRt(memory, 0, () => -22n);
    const host = initFrameAlloc(
      rt,
      { alloc: bump, frameHeap: 8 << 20 },
      THREADS + 1,
      THREADS,
      workerLayout(THREADS).ctrl,
    );
    host.ensureRegion();
    const layout = host.layout;
    const mailbox = bump(MAILBOXES * 4);
    const go = bump(4);
    const i32 = new Int32Array(memory.buffer);
    const reports = Promise.all(
      Array.from({ length: THREADS }, (_, index) =>
        runThread({
          memory,
          state: layout.state,
          index,
          seed: SEED + index,
          ops: OPS,
          mailbox,
          mailboxes: MAILBOXES,
          go,
        }),
      ),
    );
    // let every thread reach its wait, then start them together
    await new Promise((r) => setTimeout(r, 300));
    Atomics.store(i32, go >>> 2, 1);
    Atomics.notify(i32, go >>> 2);
    const done = await reports;
    const errors = done.flatMap((d) => d.errors);
    expect(errors, `seed ${SEED}`).toEqual([]);
    // what is left in the mailboxes is freed by the host, a fourth allocator worker
    let left = 0;
    for (let k = 0; k < MAILBOXES; k++) {
      const p = Atomics.exchange(i32, (mailbox >>> 2) + k, 0) >>> 0;
      if (p === 0) continue;
      left++;
      const frame = ((new Uint32Array(memory.buffer)[p >>> 2] as number) & 0x80000000) !== 0;
      expect(frame ? host.free(p - CORO_HDR_SIZE) : host.free(p)).toBe(true);
    }
    const allocs = done.reduce((n, d) => n + d.allocs, 0);
    const frees = done.reduce((n, d) => n + d.frees, 0);
    expect(frees + left).toBe(allocs);
    expect(done.reduce((n, d) => n + d.given, 0)).toBeGreaterThan(1000);
    // coroutine frames took distinct sequence numbers from the Vm-wide counter
    const seqs = done.flatMap((d) => d.seqs);
    expect(seqs.length).toBeGreaterThan(1000);
    expect(new Set(seqs).size).toBe(seqs.length);
    const stats = host.stats();
    expect(stats).toMatchObject({
      liveObjects: 0,
      liveBytes: 0,
      byOwner: new Map(),
      rejectedFrees: 0,
      doubleFrees: 0,
    });
    expect(stats.remoteFrees).toBeGreaterThan(0);
    expect(host.liveObjects()).toEqual([]);
    // and the memory is reusable: every thread's cached objects are still sound
    const again = Array.from({ length: 100 }, () => host.alloc(4000, 1));
    expect(again.every((p) => p !== 0)).toBe(true);
    expect(new Set(again).size).toBe(100);
  });
});

describe('frame allocator across workers of one shared memory', () => {
  /** Two runtime instances (allocator workers 0 and 1) over one shared memory, in this thread. */
  function twoWorkers(frameHeap: number) {
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 64, shared: true });
    let top = heapBase(2);
    const bump = (bytes: number): number => {
      const p = top;
      top += Math.ceil(bytes / 16) * 16;
      return p;
    };
    const rt0 = instantiateRt(memory, 0, () => -22n);
    const a0 = initFrameAlloc(rt0, { alloc: bump, frameHeap }, 2, 0, workerLayout(0).ctrl);
    a0.ensureRegion();
    const rt1 = instantiateRt(memory, 1, () => -22n);
    rt1.alloc_attach(a0.layout.state, 1, workerLayout(1).ctrl);
    return { a0, rt0, rt1 };
  }

  it('hands a cache over 64 KiB to the depot, where another worker finds it', () => {
    const { a0, rt0, rt1 } = twoWorkers(2 * 0x10000);
    // worker 0 takes 17 slots of 4 KiB (15 per span: both spans) and frees them; the 17th
    // free finds 16 objects (64 KiB) cached and hands them to the depot first
    const ps = Array.from({ length: 17 }, () => rt0.host_frame_alloc(4096, 1) >>> 0);
    expect(ps.every((p) => p !== 0)).toBe(true);
    expect(a0.carvedBytes).toBe(2 * 0x10000);
    for (const p of ps) expect(rt0.host_frame_free(p)).toBe(1);
    // the region is exhausted, yet worker 1 gets those 16 back from the depot, and no more
    const got = Array.from({ length: 16 }, () => rt1.host_frame_alloc(4000, 2) >>> 0);
    expect(new Set(got)).toEqual(new Set(ps.slice(0, 16)));
    expect(rt1.host_frame_alloc(4000, 2)).toBe(0);
    expect(rt0.host_frame_alloc(4000, 2)).toBe(ps[16]); // worker 0 kept the last one
    expect(a0.usage(2)).toEqual({ objects: 17, bytes: 17 * 4096 });
  });

  it('lets a worker that stops hand its cache to the others (alloc_flush)', () => {
    const { a0, rt0, rt1 } = twoWorkers(0x10000);
    const ps = Array.from({ length: 10 }, () => rt0.host_frame_alloc(1000, 0) >>> 0);
    for (const p of ps) rt0.host_frame_free(p);
    // worker 1 would need a new span for class 1024: there is none
    expect(rt1.host_frame_alloc(1000, 0)).toBe(0);
    rt0.alloc_flush();
    const got = Array.from({ length: 10 }, () => rt1.host_frame_alloc(1000, 0) >>> 0);
    expect(new Set(got)).toEqual(new Set(ps));
    expect(a0.stats()).toMatchObject({ liveObjects: 10, failedAllocs: 1 });
  });
});

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((vm) => vm.close()));
});

function u64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

describe('frame allocator kfuncs on worker threads', () => {
  it('allocate on one worker, free on another, and leave the accounts at zero', async () => {
    const vm = Vm.create({ workers: 2 });
    vms.push(vm);
    await vm.workers?.ready();
    const kf = (idx: number, name: string) => new Map([[idx, { name, weak: false }]]);
    const newObj = await vm.load(
      createProgram(assemble('mov %r1, 200\nmov %r2, 0\ncall kfunc 0\nexit')),
      { verify: false, kfuncs: kf(2, 'bpf_obj_new_impl') },
    );
    const newFrame = await vm.load(
      createProgram(assemble('mov %r1, 64\nmov %r2, 0\ncall kfunc 0\nexit')),
      { verify: false, kfuncs: kf(2, 'bpf_coro_frame_alloc') },
    );
    const drop = await vm.load(
      createProgram(assemble('ldxdw %r1, [%r1]\nmov %r2, 0\ncall kfunc 0\nexit')),
      { verify: false, kfuncs: kf(2, 'bpf_obj_drop_impl') },
    );
    const freeFrame = await vm.load(
      createProgram(assemble('ldxdw %r1, [%r1]\nmov %r2, 0\ncall kfunc 0\nexit')),
      { verify: false, kfuncs: kf(2, 'bpf_coro_frame_free') },
    );
    const objs: number[] = [];
    const frames: number[] = [];
    for (let k = 0; k < 20; k++) {
      objs.push(Number(await newObj.runOn(k % 2)));
      frames.push(Number(await newFrame.runOn(k % 2)));
    }
    expect(objs.every((p) => p !== 0) && frames.every((f) => f !== 0)).toBe(true);
    expect(new Set([...objs, ...frames]).size).toBe(40);
    expect(frames.every((f) => vm.allocator.isCoroFrame(f, 64))).toBe(true);
    expect(vm.allocator.stats()).toMatchObject({ liveObjects: 40, liveBytes: 20 * 256 + 20 * 96 });
    for (let k = 0; k < 20; k++) {
      await drop.runOn((k + 1) % 2, u64(objs[k] as number));
      await freeFrame.runOn((k + 1) % 2, u64(frames[k] as number));
    }
    await drop.runOn(0, u64(objs[0] as number)); // a double free, from a worker
    expect(vm.allocator.stats()).toMatchObject({
      liveObjects: 0,
      liveBytes: 0,
      doubleFrees: 1,
      rejectedFrees: 0,
    });
    expect(vm.allocator.liveObjects()).toEqual([]);
  });

  it('still refuses a host kfunc, and a replaced built-in one, in a worker Vm', async () => {
    const vm = Vm.create({ workers: 1 });
    vms.push(vm);
    vm.registerKfunc({ name: 'bpf_host_only', fn: () => 1n });
    vm.registerKfunc({ name: 'bpf_obj_new_impl', fn: () => 2n });
    const prog = createProgram(assemble('mov %r1, 8\ncall kfunc 0\nexit'));
    for (const name of ['bpf_host_only', 'bpf_obj_new_impl']) {
      await expect(
        vm.load(prog, { verify: false, kfuncs: new Map([[1, { name, weak: false }]]) }),
      ).rejects.toThrow(/cannot run in a worker thread/);
    }
  });
});
