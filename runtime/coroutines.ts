/**
 * The host side of coroutines (`vm.coroutines`, DESIGN.md §5, notes/coroutines.md): where and
 * when a suspended BPF coroutine continues, and how long it may stay suspended.
 *
 * A program suspends a frame by handing it to the runtime with a kfunc; the frame then waits
 * in one of these places until something resumes it (calls its resume token, frame +0):
 *
 * | kfunc                          | place                       | who resumes it                      |
 * | ------------------------------ | --------------------------- | ----------------------------------- |
 * | `bpf_coro_defer(frame)`        | the worker's deferred ring  | the run's entry, when it returns    |
 * | `bpf_coro_enqueue(q, frame)`   | queue map `q` (u64 handles) | `drain(q)` or a BPF worker program  |
 * | `bpf_coro_yield(frame)`        | the Vm's ready queue        | `run()` / `drain(ready)`            |
 * | `bpf_coro_sleep(frame, ns)`    | a host timer                | the timer, on the host thread       |
 *
 * On a worker thread `bpf_coro_sleep` is the runtime module's `bpf_coro_sleep_queued`: the frame
 * and its delay go into the Vm's sleep queue, and the host sets the timer when that worker's
 * request completes (`takeWorkerSleepers`, from the worker pool).
 *
 * The hot kfuncs and the resume loops are Wasm (runtime/wasm/coro.ts); this class holds the
 * queues, the timers and the policies. Queue entries are *tagged handles*, `seq << 32 | frame`,
 * so that a handle outliving its frame (destroyed, then its memory reused) is recognised as
 * stale instead of resuming a stranger.
 *
 * Temporal safety: every frame is charged to the program that allocated it (the allocator's
 * owner), and `sweep()` (run every `sweepIntervalMs` on the host, or by hand) gives each frame a
 * deadline the first time it sees it untouched and destroys, through its destroy token, the
 * frames still untouched when their deadline passes: a frame that is resumed or handed to the
 * runtime again in between gets a fresh deadline. Frames awaited by another coroutine are left
 * to it (its destroy path destroys them). Destroying runs the frame's destructors, so what it
 * holds (ring buffer reservations, task references, child frames) is released.
 *
 * In a Vm with workers a worker may be resuming a frame the sweep finds due (it popped the
 * handle, or the frame is on its deferred ring). The sweep then marks the frame dying
 * (CORO_F_DYING), after which no resume path takes it (coro_resume, both deferred drains,
 * bpf_coro_handle_frame: a stale handle), and destroys it once every request the workers had
 * queued or in flight has completed, unless its deadline was cleared meanwhile (a resume that
 * started before the mark), in which case the mark is taken back. A BPF program that resumes
 * a frame by `callx` on a handle it did not get from bpf_coro_handle_frame (say, one it kept in
 * a map) is outside this protocol: such a resume does not clear the deadline.
 */

import {
  CORO_CTL,
  CORO_CTL_OFF,
  CORO_DRAIN_LIMIT,
  CORO_F_CANCELLED,
  CORO_F_DETACHED,
  CORO_F_DYING,
  CORO_F_QUEUED,
  CORO_F_SLEEPING,
  CORO_HDR,
  CORO_MAGIC,
  CTRL_BASE,
  CTRL_DEFER_HEAD,
  CTRL_DEFER_TAIL,
  DEFER_RING_CAP,
  DEFER_RING_OFF,
  FUNC_TOKEN_BASE,
} from '../src/abi.js';
import { UsageError } from '../src/errors.js';
import type { HelperArgs } from '../src/interp/env.js';
import { assemble } from '../src/asm/assembler.js';
import { createProgram, type Program } from '../src/program.js';
import type { KfuncProto } from './helpers.js';
import { nativeKfunc } from './maps/helpers.js';
import type { LoadedProgram } from './loaded-program.js';
import type { TimerScheduler } from './helpers/timer.js';
import type { BpfMap, MapSpec } from './maps/map.js';
import type { RtExports } from './rt.js';

/**
 * The worker-thread version (a runtime-module export) of each kfunc `hostKfuncs` implements
 * in JS on the host thread.
 */
export const WORKER_KFUNC_EXPORTS: Readonly<Record<string, string>> = {
  bpf_coro_sleep: 'bpf_coro_sleep_queued',
};

/** BPF_MAP_TYPE_QUEUE. */
const BPF_MAP_TYPE_QUEUE = 22;
const EINVAL = 22n;
const ENOSPC = 28n;

/** Coroutine policies of a Vm (`VmOptions.coroutines`). */
export interface CoroutineOptions {
  /**
   * Frames left untouched (not resumed, not handed to the runtime) between two sweeps at least
   * this far apart are destroyed. Default 10 s; 0 disables the deadline.
   */
  readonly ttlNs?: number;
  /** Period of the automatic sweep; 0: only `sweep()` by hand. Default 1000 ms. */
  readonly sweepIntervalMs?: number;
  /** Capacity of the ready and cancelled queues (handles). Default 4096. */
  readonly queueCapacity?: number;
  /**
   * Where `bpf_coro_defer` sends a frame: `'end-of-run'` (default: resumed before the run
   * returns, on the same worker, like task_work) or `'ready-queue'` (resumed by the scheduler).
   */
  readonly defer?: 'end-of-run' | 'ready-queue';
  /** Called by `vm.close()` when coroutines are still suspended (default: none). */
  readonly onUndrained?: (report: UndrainedReport) => void;
}

/** What was still waiting when the Vm closed, or when `undrained()` was asked. */
export interface UndrainedReport {
  readonly queues: readonly { readonly name: string; readonly handles: number }[];
  readonly sleeping: number;
  readonly liveFrames: number;
}

/** Counters of `vm.coroutines.stats()`. */
export interface CoroutineStats {
  /** Frames allocated, completed (freed once done), destroyed (freed before done), live. */
  readonly created: number;
  readonly completed: number;
  readonly destroyed: number;
  readonly live: number;
  /** Resumes made by the runtime, defers, queue pushes, frames reaped once done. */
  readonly resumed: number;
  readonly deferred: number;
  readonly queued: number;
  readonly reaped: number;
  /** Frames destroyed by the sweep for missing their deadline. */
  readonly expired: number;
  readonly sleeping: number;
  /** Bad handles passed to coroutine kfuncs (ignored). */
  readonly badHandles: number;
}

/** Options of `drain`. */
export interface DrainOptions {
  /** Most handles to pop (default: all). */
  readonly batch?: number;
  /** Stop starting new resumes after this much time (ns). */
  readonly budgetNs?: number;
  /**
   * Drain on this worker thread of a Vm with workers (`drain` then returns a Promise): the
   * coroutines continue there, whichever worker suspended them.
   */
  readonly worker?: number;
}

/** The drainer a worker runs (`drainOn`): bpf_coro_drain in steps of 16 within a budget. */
const DRAINER_ASM = `
    mov %r6, %r1
    ldxdw %r9, [%r6+16]
    jne %r9, 0, budgeted
    ldxdw %r1, [%r6]
    ldxdw %r2, [%r6+8]
    call kfunc 0
    exit
  budgeted:
    call 5
    add %r9, %r0
    ldxdw %r7, [%r6+8]
    mov %r8, 0
  next:
    mov %r2, %r7
    jle %r2, 16, +1
    mov %r2, 16
    stxdw [%r10-8], %r2
    ldxdw %r1, [%r6]
    call kfunc 0
    add %r8, %r0
    sub %r7, %r0
    ldxdw %r2, [%r10-8]
    jlt %r0, %r2, done
    jeq %r7, 0, done
    call 5
    jge %r0, %r9, done
    ja next
  done:
    mov %r0, %r8
    exit`;

/** What the Vm gives the scheduler. */
export interface CoroutineHost {
  readonly rt: RtExports;
  dataView(): DataView;
  createMap(spec: MapSpec): BpfMap;
  /** The Vm's maps. */
  allMaps(): readonly BpfMap[];
  /** Addresses of live coroutine frames (from the frame allocator). */
  liveFrames(): Iterable<number>;
  /** One past the highest function token. */
  tokenLimit(): number;
  /** Loads `prog` unverified, its kfunc calls named by insn index (the worker drainer). */
  loadInternal(
    prog: Program,
    kfuncs: ReadonlyMap<number, { readonly name: string; readonly weak: boolean }>,
  ): Promise<LoadedProgram>;
  readonly clock: () => bigint;
  readonly scheduleTimer: TimerScheduler | undefined;
  /**
   * In a Vm with workers: resolves once every request the workers have queued or in flight
   * now has completed. Undefined without workers (nothing runs beside the host thread).
   */
  readonly workersIdle?: () => Promise<void> | undefined;
  /**
   * Runs `run`, which enters BPF code on the host thread (a resume, a destroy, a drain): a trap
   * of generated code leaves it as the typed error (ExecError) the run recorded.
   */
  enter<T>(run: () => T): T;
}

/** A sleeping frame. */
interface Sleeper {
  readonly seq: number;
  readonly cancel: () => void;
}

/** The coroutine scheduler of one Vm. */
export class Coroutines {
  private readyQueue: BpfMap | undefined;
  private cancelledQueue: BpfMap | undefined;
  private sleepQueue: BpfMap | undefined;
  private readonly capacity: number;
  private readonly host: CoroutineHost;
  private readonly ttlNs: bigint;
  private readonly onUndrained: ((r: UndrainedReport) => void) | undefined;
  private readonly named = new Map<string, BpfMap>();
  private readonly sleepers = new Map<number, Sleeper>();
  private readonly sweepTimer: ReturnType<typeof setInterval> | undefined;
  private expired = 0;
  /** The destruction a sweep left for after the workers' requests in flight (`swept`). */
  private sweeping: Promise<number> = Promise.resolve(0);
  private drainer: Promise<LoadedProgram> | undefined;
  private closed = false;

  constructor(host: CoroutineHost, opts: CoroutineOptions = {}) {
    this.host = host;
    const ttl = opts.ttlNs ?? 10e9;
    if (!(ttl >= 0)) throw new UsageError(`coroutines.ttlNs must be >= 0, not ${ttl}`);
    this.ttlNs = BigInt(Math.round(ttl));
    this.onUndrained = opts.onUndrained;
    this.capacity = opts.queueCapacity ?? 4096;
    if (!Number.isInteger(this.capacity) || this.capacity < 1)
      throw new UsageError(
        `coroutines.queueCapacity must be a positive integer, not ${this.capacity}`,
      );
    const v = host.dataView();
    v.setUint32(
      CTRL_BASE + CORO_CTL_OFF + CORO_CTL.deferToReady,
      opts.defer === 'ready-queue' ? 1 : 0,
      true,
    );
    this.updateTokenLimit();
    const every = opts.sweepIntervalMs ?? 1000;
    if (every > 0 && this.ttlNs > 0n) {
      this.sweepTimer = setInterval(() => this.sweep(), every);
      this.sweepTimer.unref();
    }
  }

  /**
   * The Vm's ready queue (bpf_coro_yield; bpf_coro_defer in 'ready-queue' mode). Made on first
   * use, or when a program that calls coroutine kfuncs is loaded, so that a Vm without
   * coroutines has no extra maps (map ids stay the fds its programs expect).
   */
  get ready(): BpfMap {
    this.readyQueue ??= this.publish('coro_ready', CORO_CTL.readyQueue);
    return this.readyQueue;
  }

  /** Frames the host cancelled, for BPF to destroy (bpf_coro_take_cancelled). */
  get cancelled(): BpfMap {
    this.cancelledQueue ??= this.publish('coro_cancelled', CORO_CTL.cancelQueue);
    return this.cancelledQueue;
  }

  /** Makes both runtime queues (called when a program that calls coroutine kfuncs loads). */
  prepare(): void {
    void this.ready;
    void this.cancelled;
  }

  private publish(name: string, field: number): BpfMap {
    const q = this.makeQueue(name, this.capacity);
    this.host.dataView().setUint32(CTRL_BASE + CORO_CTL_OFF + field, q.addr, true);
    return q;
  }

  /** Tells the Wasm side how far function tokens go (after every load). */
  updateTokenLimit(): void {
    this.host
      .dataView()
      .setUint32(CTRL_BASE + CORO_CTL_OFF + CORO_CTL.tokenLimit, this.host.tokenLimit(), true);
  }

  private makeQueue(name: string, capacity: number, valueSize = 8): BpfMap {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new UsageError(`queue capacity must be a positive integer, not ${capacity}`);
    return this.host.createMap({
      type: BPF_MAP_TYPE_QUEUE,
      keySize: 0,
      valueSize,
      maxEntries: capacity,
      name,
    });
  }

  /**
   * A named queue of coroutine handles that programs push to with `bpf_coro_enqueue` (pass
   * its map, e.g. through a map-in-map or by loading it into an object) and `drain` empties.
   */
  queue(name: string, capacity = 1024): BpfMap {
    let q = this.named.get(name);
    if (q === undefined) {
      q = this.makeQueue(name, capacity);
      this.named.set(name, q);
    }
    return q;
  }

  /** The kfuncs implemented on the host thread: bpf_coro_sleep. */
  hostKfuncs(): KfuncProto[] {
    return [{ name: 'bpf_coro_sleep', fn: (a) => this.sleep(a) }];
  }

  /** The kfuncs implemented by the runtime module (any worker). */
  static rtKfuncs(rt: RtExports): KfuncProto[] {
    return [
      nativeKfunc('bpf_coro_defer', rt.bpf_coro_defer),
      nativeKfunc('bpf_coro_enqueue', rt.bpf_coro_enqueue),
      nativeKfunc('bpf_coro_yield', rt.bpf_coro_yield),
      nativeKfunc('bpf_coro_detach', rt.bpf_coro_detach),
      nativeKfunc('bpf_coro_await', rt.bpf_coro_await),
      nativeKfunc('bpf_coro_done', rt.bpf_coro_done),
      nativeKfunc('bpf_coro_take_cancelled', rt.bpf_coro_take_cancelled),
      nativeKfunc('bpf_coro_handle_frame', rt.bpf_coro_handle_frame),
      nativeKfunc('bpf_coro_reap', rt.bpf_coro_reap),
      nativeKfunc('bpf_coro_drain', rt.bpf_coro_drain),
    ];
  }

  /** `long bpf_coro_sleep(void *frame, u64 ns)`: resumes the frame on the host after `ns`. */
  private sleep(a: HelperArgs): bigint {
    const f = frameOf(a[0]);
    if (f === undefined || this.host.rt.coro_frame_flags(f, CORO_F_SLEEPING, 0) === 0xffffffff)
      return BigInt.asUintN(64, -EINVAL);
    if (this.closed) return BigInt.asUintN(64, -ENOSPC);
    this.setDeadline(f, 0n);
    this.sleepUntil(f, this.seqOf(f), a[1]);
    return 0n;
  }

  /**
   * The sleep queue that bpf_coro_sleep on a worker thread pushes to (16-byte values: a tagged
   * handle, the delay in ns; runtime/wasm/coro.ts `bpf_coro_sleep_queued`). Made when a Vm with
   * workers loads a program that calls bpf_coro_sleep.
   */
  prepareSleepQueue(): void {
    if (this.sleepQueue !== undefined) return;
    this.sleepQueue = this.makeQueue('coro_sleep', this.capacity, 16);
    this.host
      .dataView()
      .setUint32(CTRL_BASE + CORO_CTL_OFF + CORO_CTL.sleepQueue, this.sleepQueue.addr, true);
  }

  /**
   * Sets the host timers of the frames worker threads put to sleep (the sleep queue); called
   * when a worker's request completes, and by `settle`. Returns how many it took. A handle
   * whose frame is gone (destroyed since) is dropped.
   */
  takeWorkerSleepers(): number {
    const q = this.sleepQueue;
    if (q === undefined) return 0;
    let n = 0;
    for (let v = q.pop(); v !== undefined; v = q.pop()) {
      const d = new DataView(v.buffer, v.byteOffset, 16);
      const { frame, seq } = this.decode(d.getBigUint64(0, true));
      n++;
      if (seq === undefined || this.closed) continue;
      this.sleepUntil(frame, seq, d.getBigUint64(8, true));
    }
    return n;
  }

  /** Resumes sleeping frame `f` (still `seq`) on the host after `ns`. */
  private sleepUntil(f: number, seq: number, ns: bigint): void {
    const fire = (): void => {
      this.sleepers.delete(f);
      if (this.seqOf(f) !== seq) return;
      this.host.rt.coro_frame_flags(f, 0, CORO_F_SLEEPING);
      this.resumeFrame(f, seq);
    };
    const schedule = this.host.scheduleTimer ?? defaultSchedule;
    this.sleepers.get(f)?.cancel();
    this.sleepers.set(f, { seq, cancel: schedule(fire, ns) });
  }

  /**
   * Resumes a suspended coroutine on the host thread: `handle` is a frame address or a tagged
   * handle from a queue. Then resumes what it deferred. Returns false when the handle is stale.
   * @example
   * vm.coroutines.resume(handle);
   */
  resume(handle: bigint | number): boolean {
    const { frame, seq } = this.decode(handle);
    if (seq === undefined) return false;
    this.sleepers.get(frame)?.cancel();
    this.sleepers.delete(frame);
    return this.resumeFrame(frame, seq);
  }

  private resumeFrame(frame: number, seq: number): boolean {
    return this.enterFrame(() => this.host.rt.coro_resume(frame, seq));
  }

  /**
   * Runs `call` (the runtime module resuming or destroying a frame: 1 when it ran), then what
   * the frame deferred, trapping into typed errors (`CoroutineHost.enter`).
   */
  private enterFrame(call: () => number): boolean {
    return this.host.enter(() => {
      const ran = call() === 1;
      this.host.rt.coro_drain_deferred(CORO_DRAIN_LIMIT);
      return ran;
    });
  }

  /**
   * The end-of-run drain for runs on the interpreter: what runtime/wasm/coro.ts's
   * `coro_drain_deferred` does for the JIT, with each resume and destroy made by `call` (the
   * interpreter, through `vm.callBpf`). Returns the frames resumed.
   */
  drainDeferredWith(
    ctrl: number,
    area: number,
    call: (token: bigint, frame: number) => void,
  ): number {
    const v = this.host.dataView();
    const ring = area + DEFER_RING_OFF;
    const ctl = CTRL_BASE + CORO_CTL_OFF;
    const bump = (field: number): void =>
      v.setBigUint64(ctl + field, v.getBigUint64(ctl + field, true) + 1n, true);
    const limit = BigInt(this.host.tokenLimit());
    const reap = (f: number): void => {
      const d = v.getBigUint64(f + 8, true);
      if (d < BigInt(FUNC_TOKEN_BASE) || d >= limit) return bump(CORO_CTL.badHandles);
      bump(CORO_CTL.reaped);
      call(d, f);
    };
    const same = (f: number, seq: number): boolean => this.isFrame(f) && this.seqOf(f) === seq;
    let n = 0;
    while (n < CORO_DRAIN_LIMIT) {
      const head = v.getUint32(ctrl + CTRL_DEFER_HEAD, true);
      if (head === v.getUint32(ctrl + CTRL_DEFER_TAIL, true)) break;
      const e = ring + (head & (DEFER_RING_CAP - 1)) * 8;
      const f = v.getUint32(e, true);
      const seq = v.getUint32(e + 4, true);
      v.setUint32(ctrl + CTRL_DEFER_HEAD, (head + 1) >>> 0, true);
      if (!same(f, seq)) continue;
      this.host.rt.coro_frame_flags(f, 0, CORO_F_QUEUED);
      this.setDeadline(f, 0n);
      n++;
      const t = v.getBigUint64(f, true);
      const parent = (): number => this.u32(f + CORO_HDR.parent);
      if (t === 0n) {
        if ((this.flagsOf(f) & CORO_F_DETACHED) !== 0 && parent() === 0) reap(f);
        continue;
      }
      if (t < BigInt(FUNC_TOKEN_BASE) || t >= limit) {
        bump(CORO_CTL.badHandles);
        continue;
      }
      bump(CORO_CTL.resumed);
      call(t, f);
      if (same(f, seq) && v.getBigUint64(f, true) === 0n && parent() === 0) reap(f);
    }
    return n;
  }

  /** Destroys a suspended coroutine through its destroy token. False when the handle is stale. */
  destroy(handle: bigint | number): boolean {
    const { frame, seq } = this.decode(handle);
    if (seq === undefined) return false;
    this.forget(frame);
    return this.enterFrame(() => this.host.rt.coro_destroy(frame, seq));
  }

  /**
   * Cancels a suspended coroutine: takes it out of the runtime's queues and timers and hands it
   * to BPF through `bpf_coro_take_cancelled`, whose caller destroys it.
   */
  cancel(handle: bigint | number): boolean {
    const { frame, seq } = this.decode(handle);
    if (seq === undefined) return false;
    this.forget(frame);
    this.host.rt.coro_frame_flags(frame, CORO_F_CANCELLED, 0);
    try {
      this.cancelled.push(u64le(tag(frame, seq)));
      return true;
    } catch {
      return false;
    }
  }

  /** Removes `frame` from the sleepers and from every handle queue the runtime drains. */
  private forget(frame: number): void {
    this.sleepers.get(frame)?.cancel();
    this.sleepers.delete(frame);
    if ((this.flagsOf(frame) & CORO_F_QUEUED) !== 0) {
      for (const q of this.handleQueues()) this.filterQueue(q, (f) => f !== frame);
    }
  }

  /**
   * Pops handles from `queue` and resumes each on the host thread (with what they defer), up
   * to `batch` handles or until `budgetNs` has passed; returns how many were popped. With
   * `worker`, on that worker thread instead (`drainOn`), and the result is a Promise.
   * @example
   * vm.coroutines.drain(obj.map('tx_queue'), { batch: 32, budgetNs: 50_000 });
   * await vm.coroutines.drain(obj.map('tx_queue'), { batch: 32, worker: 1 });
   */
  drain(queue?: BpfMap | string, opts?: DrainOptions & { readonly worker?: undefined }): number;
  drain(queue: BpfMap | string, opts: DrainOptions & { readonly worker: number }): Promise<number>;
  drain(queue: BpfMap | string = this.ready, opts: DrainOptions = {}): number | Promise<number> {
    if (opts.worker !== undefined) return this.drainOn(opts.worker, queue, opts);
    const q = typeof queue === 'string' ? this.queue(queue) : queue;
    checkHandleQueue(q);
    const batch = opts.batch ?? Infinity;
    const deadline =
      opts.budgetNs === undefined ? undefined : this.host.clock() + BigInt(opts.budgetNs);
    let n = 0;
    while (n < batch) {
      const step = Math.min(batch - n, deadline === undefined ? 1024 : 16);
      const got = this.host.enter(() => this.host.rt.coro_drain_queue(q.addr, step));
      n += got;
      if (got < step) break;
      if (deadline !== undefined && this.host.clock() >= deadline) break;
    }
    return n;
  }

  /**
   * Like `drain`, on worker thread `worker` of a Vm with workers (a small mem program that calls
   * the `bpf_coro_drain` kfunc there, in steps of 16 while `budgetNs` lasts, by the worker's
   * clock): the coroutines continue on that worker, whichever worker suspended them. Resolves
   * with the number of handles popped.
   * @example
   * await vm.coroutines.drainOn(1, vm.coroutines.ready, { batch: 64 });
   */
  async drainOn(
    worker: number,
    queue: BpfMap | string = this.ready,
    opts: Pick<DrainOptions, 'batch' | 'budgetNs'> = {},
  ): Promise<number> {
    const q = typeof queue === 'string' ? this.queue(queue) : queue;
    checkHandleQueue(q);
    const batch = opts.batch ?? 0xffffffff;
    if (!Number.isInteger(batch) || batch < 1)
      throw new UsageError(`batch must be a positive integer, not ${batch}`);
    const budget = opts.budgetNs ?? 0;
    if (!Number.isInteger(budget) || budget < 0)
      throw new UsageError(`budgetNs must be a non-negative integer, not ${budget}`);
    if (this.drainer === undefined) {
      const prog = createProgram(assemble(DRAINER_ASM), { name: 'coro_drain', type: 'mem' });
      const calls = prog.insns.flatMap((i, idx) => (i.code === 0x85 && i.src === 2 ? [idx] : []));
      this.drainer = this.host.loadInternal(
        prog,
        new Map(calls.map((idx) => [idx, { name: 'bpf_coro_drain', weak: false }])),
      );
    }
    const drainer = await this.drainer;
    const args = new Uint8Array(24);
    const v = new DataView(args.buffer);
    v.setBigUint64(0, BigInt(q.addr), true);
    v.setBigUint64(8, BigInt(Math.min(batch, 0xffffffff)), true);
    // budget 0 means none; a budget of 0 ns asked for still pops one step
    v.setBigUint64(16, BigInt(opts.budgetNs === undefined ? 0 : Math.max(budget, 1)), true);
    return Number(await drainer.runOn(worker, args));
  }

  /**
   * Runs the default scheduler until nothing is ready: drains the ready queue (and what the
   * resumed coroutines defer or yield). Sleeping coroutines continue on their timers; await
   * `settle()` to wait for them too. Returns the handles popped.
   */
  run(opts: Omit<DrainOptions, 'worker'> = {}): number {
    return this.drain(this.ready, opts);
  }

  /** Runs the ready queue and waits for sleeping coroutines until none is left. */
  async settle(opts: { timeoutMs?: number } = {}): Promise<void> {
    const until = Date.now() + (opts.timeoutMs ?? 10_000);
    for (;;) {
      const popped = this.takeWorkerSleepers() + this.run();
      if (this.sleepers.size === 0 && popped === 0) return;
      if (Date.now() > until)
        throw new UsageError(
          `coroutines did not settle within ${opts.timeoutMs ?? 10_000} ms (${this.sleepers.size} sleeping)`,
        );
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /**
   * Destroys frames not touched since their deadline (see the module comment) and stamps a
   * deadline on frames seen untouched for the first time. Returns the frames destroyed.
   */
  sweep(now: bigint = this.host.clock()): number {
    if (this.ttlNs === 0n || this.closed) return 0;
    const due: { frame: number; seq: number }[] = [];
    for (const frame of this.liveFrames()) {
      if (!this.isFrame(frame) || (this.flagsOf(frame) & CORO_F_DYING) !== 0) continue;
      const parent = this.u32(frame + CORO_HDR.parent);
      if (parent !== 0 && this.isFrame(parent)) continue;
      const deadline = this.host.dataView().getBigUint64(frame + CORO_HDR.deadline, true);
      if (deadline === 0n) {
        this.setDeadline(frame, now + this.ttlNs);
        continue;
      }
      if (deadline > now) continue;
      due.push({ frame, seq: this.seqOf(frame) });
    }
    const idle = due.length === 0 ? undefined : this.host.workersIdle?.();
    if (idle === undefined) {
      const destroyed = due.filter(({ frame, seq }) => this.destroy(tag(frame, seq))).length;
      this.expired += destroyed;
      return destroyed;
    }
    // Worker threads may be resuming these frames right now (a handle popped from a queue, a
    // deferred ring): mark them dying, after which no resume path takes them, and destroy them
    // once every request the workers had in flight has completed, unless one was resumed
    // before the mark (its deadline then reads 0).
    for (const { frame } of due) this.host.rt.coro_frame_flags(frame, CORO_F_DYING, 0);
    const later = idle.then(() => {
      let destroyed = 0;
      for (const { frame, seq } of due) {
        if (!this.isFrame(frame) || this.seqOf(frame) !== seq) continue;
        const deadline = this.host.dataView().getBigUint64(frame + CORO_HDR.deadline, true);
        if (!this.closed && deadline !== 0n && deadline <= now) {
          if (this.destroy(tag(frame, seq))) destroyed++;
        } else this.host.rt.coro_frame_flags(frame, 0, CORO_F_DYING);
      }
      this.expired += destroyed;
      return destroyed;
    });
    const before = this.sweeping;
    this.sweeping = Promise.all([before, later]).then(([a, b]) => a + b);
    return 0;
  }

  /**
   * In a Vm with workers, `sweep` destroys the frames it found due once the requests the
   * workers had in flight have completed: resolves, when that is done, with how many the
   * sweeps since the last call destroyed that way.
   * @example
   * vm.coroutines.sweep();
   * const n = await vm.coroutines.swept();
   */
  async swept(): Promise<number> {
    const p = this.sweeping;
    this.sweeping = Promise.resolve(0);
    return p;
  }

  /** Addresses of the live coroutine frames (from the frame allocator). */
  liveFrames(): number[] {
    return [...this.host.liveFrames()];
  }

  /** Counters; `live` counts frames allocated and not yet freed. */
  stats(): CoroutineStats {
    const v = this.host.dataView();
    const ctl = CTRL_BASE + CORO_CTL_OFF;
    const n = (off: number): number => Number(v.getBigUint64(ctl + off, true));
    const created = n(CORO_CTL.created);
    const completed = n(CORO_CTL.completed);
    const destroyed = n(CORO_CTL.destroyed);
    return {
      created,
      completed,
      destroyed,
      live: created - completed - destroyed,
      resumed: n(CORO_CTL.resumed),
      deferred: n(CORO_CTL.deferred),
      queued: n(CORO_CTL.queued),
      reaped: n(CORO_CTL.reaped),
      expired: this.expired,
      sleeping: this.sleepers.size,
      badHandles: n(CORO_CTL.badHandles),
    };
  }

  /** What is still waiting: handles in queues, sleepers, live frames. */
  undrained(): UndrainedReport {
    const queues = this.handleQueues()
      .map((q) => {
        let handles = 0;
        this.filterQueue(q, () => {
          handles++;
          return true;
        });
        return { name: q.name, handles };
      })
      .filter((q) => q.handles > 0);
    return { queues, sleeping: this.sleepers.size, liveFrames: this.liveFrames().length };
  }

  /** Stops the timers; reports what was left suspended. Called by `vm.close()`. */
  close(): void {
    if (this.closed) return;
    if (this.onUndrained !== undefined) {
      const r = this.undrained();
      if (r.queues.length > 0 || r.sleeping > 0 || r.liveFrames > 0) this.onUndrained(r);
    }
    this.closed = true;
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    for (const s of this.sleepers.values()) s.cancel();
    this.sleepers.clear();
  }

  /** Every queue map of u64 values: the runtime's and the programs'. */
  private handleQueues(): BpfMap[] {
    return this.host.allMaps().filter((m) => m.type === BPF_MAP_TYPE_QUEUE && m.valueSize === 8);
  }

  /** Keeps the handles of `q` whose frame passes `keep` (pops all, pushes the kept back). */
  private filterQueue(q: BpfMap, keep: (frame: number) => boolean): void {
    const all: Uint8Array[] = [];
    for (let h = q.pop(); h !== undefined; h = q.pop()) all.push(h);
    for (const h of all) {
      const frame = new DataView(h.buffer, h.byteOffset, 8).getUint32(0, true);
      if (keep(frame)) q.push(h);
    }
  }

  private decode(handle: bigint | number): { frame: number; seq: number | undefined } {
    const h = BigInt(handle);
    const frame = Number(h & 0xffffffffn);
    if (!this.isFrame(frame)) return { frame, seq: undefined };
    const seq = this.seqOf(frame);
    const want = Number(h >> 32n);
    return { frame, seq: want === 0 || want === seq ? seq : undefined };
  }

  private isFrame(f: number): boolean {
    return (
      f >= 0x10000 + 32 &&
      f + 16 <= this.host.dataView().byteLength &&
      this.u32(f + CORO_HDR.magic) === CORO_MAGIC
    );
  }

  private u32(addr: number): number {
    return this.host.dataView().getUint32(addr, true);
  }

  private seqOf(f: number): number {
    return this.u32(f + CORO_HDR.seq);
  }

  private flagsOf(f: number): number {
    return this.u32(f + CORO_HDR.flags);
  }

  private setDeadline(f: number, ns: bigint): void {
    this.host.dataView().setBigUint64(f + CORO_HDR.deadline, ns, true);
  }
}

/** A tagged handle: `seq << 32 | frame`. */
export function tag(frame: number, seq: number): bigint {
  return (BigInt(seq >>> 0) << 32n) | BigInt(frame >>> 0);
}

function frameOf(v: bigint): number | undefined {
  return v > 0n && v <= 0xffffffffn ? Number(v) : undefined;
}

function u64le(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

function checkHandleQueue(q: BpfMap): void {
  if (q.type !== BPF_MAP_TYPE_QUEUE || q.valueSize !== 8)
    throw new UsageError(`map '${q.name}' is not a queue of coroutine handles (u64 values)`);
}

const defaultSchedule: TimerScheduler = (fire, delayNs) => {
  const h = setTimeout(fire, Number(delayNs) / 1e6);
  return () => clearTimeout(h);
};
