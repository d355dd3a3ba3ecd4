/**
 * The worker threads of a Vm (DESIGN.md §2-3): starts them, loads programs into them, rings
 * their doorbells and waits for the answers, and replaces a thread that dies. A request never
 * copies through a message: its arguments, its input and its result live in the shared memory
 * (worker-protocol.ts), and the host waits with `Atomics.waitAsync`, so every request is a
 * Promise. Requests to one worker run one after another, in the order they were made.
 *
 * A thread that exits while the pool is open (terminated, or an exception escaped it) fails its
 * pending request with a `WorkerError`, is reported to `onWorkerExit`, and a fresh thread with
 * the same index takes its place: it instantiates every program loaded so far, then serves the
 * queued requests. `close()` terminates every thread.
 *
 * Hung workers (the hard fallback; issue #8's soft termination runs first when it is there):
 * with `requestTimeoutMs`, a request that has not finished after that long while the worker's
 * heartbeat has not moved either fails with a `WorkerError` naming the worker and the program,
 * and the thread is terminated (`worker.terminate()`) and replaced the same way. A dead or hung
 * worker may have held a bpf_spin_lock (its CTRL_LOCK_HELD word): the pool releases it once
 * the thread is gone and counts it in `locksReleased`.
 *
 * Called from host: runtime/vm.ts (Vm.create, Vm.load, Vm.close) and runtime/loaded-program.ts
 * (runOn, runBatchOn, runBatchParallel).
 */

import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import {
  CTRL_ARG0,
  CTRL_ARG1,
  CTRL_ARG2,
  CTRL_CMD,
  CTRL_CMD_PROG,
  CTRL_DONE,
  CTRL_DOORBELL,
  CTRL_ERR_LEN,
  CTRL_HEARTBEAT,
  CTRL_LOCK_BREAKS,
  CTRL_LOCK_HELD,
  CTRL_STATUS,
  WORKER_STATUS_OK,
  workerLayout,
  type WorkerLayout,
} from '../src/abi.js';
import { ExecError, UsageError, WorkerError, type ExecErrorKind } from '../src/errors.js';
import type { WorkerHelperConfig } from './worker-helpers.js';
import {
  WORKER_CMD_LOAD,
  type WorkerFailure,
  type WorkerAllocInit,
  type WorkerInit,
  type WorkerProgram,
} from './worker-protocol.js';

/** Options of a `WorkerPool`. */
export interface WorkerPoolOptions {
  readonly memory: WebAssembly.Memory;
  readonly count: number;
  /** The adapter module of the workers' JS helpers; the threads start once it is compiled. */
  readonly adapter: Promise<WebAssembly.Module>;
  readonly helpers: WorkerHelperConfig;
  /** How often (ms) an idle worker bumps its heartbeat (default 100). */
  readonly heartbeatMs?: number;
  /** Called when a worker thread died or hung and was replaced. */
  readonly onWorkerExit?: (e: WorkerError) => void;
  /**
   * Called on the host thread when a request to worker `i` has completed (ok or failed),
   * before its promise settles: the Vm sets the timers of the coroutines it put to sleep.
   */
  readonly onRequestDone?: (i: number) => void;
  /** The frame allocator each worker's runtime instance attaches to, and its kfunc slots. */
  readonly alloc: WorkerAllocInit;
  /**
   * A request still running after this many ms, on a worker whose heartbeat has not moved in
   * that time, is hung: it fails and the thread is replaced. Undefined: no limit.
   */
  readonly requestTimeoutMs?: number;
}

/** One request to a worker. */
export interface WorkerRequest<T> {
  readonly cmd: number;
  readonly prog: number;
  readonly args?: readonly [number, number, number];
  /** Runs when the worker is free for this request, before the doorbell (write the input). */
  readonly before?: () => void;
  /** Runs when the worker answered OK, before the next request starts (read the result). */
  readonly after: () => T;
}

interface Pending {
  readonly reject: (e: Error) => void;
}

interface WorkerSlot {
  thread: Worker;
  port: MessagePort;
  ready: Promise<void>;
  pending: Pending | undefined;
  lastError: unknown;
  /** The thread said it was ready (a thread that dies before is not replaced: it would again). */
  started: boolean;
}

/** `Atomics.waitAsync` (V8 has it; the es2022 lib does not declare it). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      a: Int32Array,
      index: number,
      value: number,
    ):
      | { readonly async: false; readonly value: string }
      | { readonly async: true; readonly value: Promise<string> };
  }
).waitAsync;

const fromSource = import.meta.url.endsWith('.ts');
const ENTRY = new URL(fromSource ? './worker-main.ts' : './worker-main.js', import.meta.url);
const EXEC_ARGV = fromSource
  ? ['--import', new URL('./dev/ts-register.mjs', import.meta.url).href]
  : [];

/** The worker threads of one Vm. */
export class WorkerPool {
  readonly count: number;
  /** Threads that died or hung and were replaced since the pool started. */
  replacements = 0;
  /** bpf_spin_locks a replaced thread held, released by the pool. */
  locksReleased = 0;
  private readonly opts: WorkerPoolOptions;
  private readonly slots: WorkerSlot[] = [];
  /** The tail of each worker's request queue (it outlives a replaced thread). */
  private readonly queues: Promise<unknown>[];
  private readonly started: Promise<void>;
  private adapter: WebAssembly.Module | undefined;
  private readonly layouts: WorkerLayout[];
  private readonly programs: WorkerProgram[] = [];
  private readonly ctrl32: Int32Array;
  private closed = false;
  /** Requests queued or in flight, on all workers. */
  private outstanding = 0;

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    this.count = opts.count;
    this.ctrl32 = new Int32Array(opts.memory.buffer);
    this.layouts = Array.from({ length: opts.count }, (_, i) => workerLayout(i));
    this.queues = this.layouts.map(() => Promise.resolve());
    this.started = opts.adapter.then((mod) => {
      this.adapter = mod;
      if (this.closed) return;
      for (let i = 0; i < opts.count; i++) this.slots.push(this.spawn(i));
    });
    this.started.catch(() => undefined);
  }

  /** Resolves when every worker thread has started. */
  async ready(): Promise<void> {
    await this.started;
    await Promise.all(this.slots.map((s) => s.ready));
  }

  /** The thread of worker `i` (tests terminate it to check replacement); after `ready()`. */
  thread(i: number): Worker {
    return this.slot(i).thread;
  }

  /** Worker `i`'s heartbeat: bumped at each request and each idle wake-up. */
  heartbeat(i: number): number {
    return Atomics.load(this.ctrl32, this.word(i, CTRL_HEARTBEAT));
  }

  /** Locks worker `i`'s bpf_spin_lock took over from an owner that never released them. */
  lockBreaks(i: number): number {
    return Atomics.load(this.ctrl32, this.word(i, CTRL_LOCK_BREAKS));
  }

  /** Instantiates `p` in every worker (and in every replacement started later). */
  async load(p: WorkerProgram): Promise<void> {
    this.programs.push(p);
    await Promise.all(
      this.layouts.map((_, i) =>
        this.request(i, {
          cmd: WORKER_CMD_LOAD,
          prog: p.id,
          before: () => this.slot(i).port.postMessage(p),
          after: () => undefined,
        }),
      ),
    );
  }

  /** Queues `req` on worker `i`; resolves with `req.after()` once the worker answered. */
  request<T>(i: number, req: WorkerRequest<T>): Promise<T> {
    const queue = this.queues[i];
    if (queue === undefined) throw new UsageError(`no worker ${i} (the Vm has ${this.count})`);
    const run = queue.then(() => this.exec(i, req));
    this.outstanding++;
    this.queues[i] = run.then(
      () => void this.outstanding--,
      () => void this.outstanding--,
    );
    return run;
  }

  /**
   * Resolves once every request queued or in flight now, on every worker, has completed;
   * undefined when there is none.
   */
  whenIdle(): Promise<void> | undefined {
    if (this.outstanding === 0) return undefined;
    return Promise.all(this.queues.slice()).then(() => undefined);
  }

  /** Terminates every thread; pending and later requests fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.started.catch(() => undefined);
    const threads = this.slots.map((s) => {
      s.pending?.reject(new WorkerError(this.slots.indexOf(s), 'the Vm was closed'));
      s.pending = undefined;
      s.port.close();
      return s.thread.terminate();
    });
    await Promise.allSettled(threads);
  }

  private slot(i: number): WorkerSlot {
    const s = this.slots[i];
    if (s === undefined)
      throw new UsageError(
        i >= 0 && i < this.count
          ? `worker ${i} has not started yet (await vm.workers.ready())`
          : `no worker ${i} (the Vm has ${this.count})`,
      );
    return s;
  }

  private word(i: number, off: number): number {
    return ((this.layouts[i] as WorkerLayout).ctrl + off) >> 2;
  }

  private async exec<T>(i: number, req: WorkerRequest<T>): Promise<T> {
    if (this.closed) throw new UsageError('the Vm is closed');
    await this.started;
    await this.slot(i).ready;
    if (this.closed) throw new UsageError('the Vm is closed');
    const slot = this.slot(i);
    const c = this.ctrl32;
    req.before?.();
    const [a0, a1, a2] = req.args ?? [0, 0, 0];
    c[this.word(i, CTRL_CMD)] = req.cmd;
    c[this.word(i, CTRL_CMD_PROG)] = req.prog;
    c[this.word(i, CTRL_ARG0)] = a0;
    c[this.word(i, CTRL_ARG1)] = a1;
    c[this.word(i, CTRL_ARG2)] = a2;
    const bell = this.word(i, CTRL_DOORBELL);
    const done = this.word(i, CTRL_DONE);
    const seq = (Atomics.load(c, bell) + 1) | 0;
    Atomics.store(c, bell, seq);
    Atomics.notify(c, bell, 1);
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { reject };
      slot.pending = pending;
      this.watchForHang(i, slot, pending, req.prog);
      const check = (): void => {
        if (slot.pending !== pending) return; // the thread died or the pool closed
        const now = Atomics.load(c, done);
        if (now !== seq) {
          const w = waitAsync(c, done, now);
          if (w.async) void w.value.then(check);
          else check();
          return;
        }
        slot.pending = undefined;
        try {
          this.opts.onRequestDone?.(i);
        } catch (e) {
          reject(e as Error);
          return;
        }
        if (Atomics.load(c, this.word(i, CTRL_STATUS)) === WORKER_STATUS_OK) {
          try {
            resolve(req.after());
          } catch (e) {
            reject(e as Error);
          }
        } else reject(this.failure(i));
      };
      check();
    });
  }

  /** The error worker `i` encoded for its last request. */
  private failure(i: number): Error {
    const len = Atomics.load(this.ctrl32, this.word(i, CTRL_ERR_LEN));
    const at = (this.layouts[i] as WorkerLayout).scratch;
    const bytes = new Uint8Array(this.opts.memory.buffer, at, len).slice();
    let f: WorkerFailure;
    try {
      f = JSON.parse(new TextDecoder().decode(bytes)) as WorkerFailure;
    } catch {
      f = { name: 'Error', message: 'the worker left no readable error' };
    }
    if (f.name === 'ExecError' && f.kind !== undefined && f.reason !== undefined)
      return new ExecError(f.insnIdx ?? null, f.kind as ExecErrorKind, f.reason);
    return new ExecError(null, 'helper', `${f.name}: ${f.message}`);
  }

  private spawn(i: number): WorkerSlot {
    // a fresh thread starts from the doorbell's current value: a request rung for a dead
    // thread is never served twice
    const c = this.ctrl32;
    Atomics.store(c, this.word(i, CTRL_DONE), Atomics.load(c, this.word(i, CTRL_DOORBELL)));
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = {
      index: i,
      memory: this.opts.memory,
      adapter: this.adapter,
      helpers: this.opts.helpers,
      programs: [...this.programs],
      port: port2,
      heartbeatMs: this.opts.heartbeatMs ?? 100,
      alloc: this.opts.alloc,
    };
    const thread = new Worker(ENTRY, {
      workerData: init,
      transferList: [port2],
      execArgv: EXEC_ARGV,
    });
    const slot: WorkerSlot = {
      thread,
      port: port1,
      ready: Promise.resolve(),
      pending: undefined,
      lastError: undefined,
      started: false,
    };
    slot.ready = new Promise<void>((resolve, reject) => {
      thread.once('message', () => {
        slot.started = true;
        resolve();
      });
      thread.once('exit', (code) =>
        reject(
          new WorkerError(i, `the thread exited (code ${code}) before it was ready`, {
            cause: slot.lastError,
          }),
        ),
      );
    });
    slot.ready.catch(() => undefined);
    thread.on('error', (e) => {
      slot.lastError = e;
    });
    thread.on('exit', (code) => this.onExit(i, slot, code));
    return slot;
  }

  private onExit(i: number, slot: WorkerSlot, code: number): void {
    if (this.closed || this.slots[i] !== slot) return;
    const detail = slot.lastError instanceof Error ? `: ${slot.lastError.message}` : '';
    const err = new WorkerError(i, `the thread exited (code ${code})${detail}`, {
      cause: slot.lastError,
    });
    slot.pending?.reject(err);
    slot.pending = undefined;
    slot.port.close();
    this.releaseLockOf(i);
    this.opts.onWorkerExit?.(err);
    if (!slot.started) return; // its requests fail on `ready`
    // queued requests wait for the fresh thread (exec reads the current slot)
    this.slots[i] = this.spawn(i);
    this.replacements++;
  }

  /**
   * With `requestTimeoutMs`: checks the request `pending` of worker `i` every limit ms; while
   * the heartbeat moves (soft termination, helpers that bump it) it waits on, once it has not
   * moved for a whole limit the worker is hung.
   */
  private watchForHang(i: number, slot: WorkerSlot, pending: Pending, prog: number): void {
    const limit = this.opts.requestTimeoutMs;
    if (limit === undefined) return;
    let beat = this.heartbeat(i);
    const check = (): void => {
      if (this.closed || slot.pending !== pending) return;
      const now = this.heartbeat(i);
      if (now !== beat) {
        beat = now;
        setTimeout(check, limit).unref();
        return;
      }
      this.replaceHungWorker(i, slot, prog, limit);
    };
    setTimeout(check, limit).unref();
  }

  /**
   * Fails worker `i`'s hung request, terminates its thread and starts a fresh one in its place
   * (queued requests go to the fresh thread); a lock it held is released once it is gone.
   */
  private replaceHungWorker(i: number, slot: WorkerSlot, prog: number, limit: number): void {
    const name = this.programs.find((p) => p.id === prog)?.name ?? `#${prog}`;
    const held = this.heldLock(i);
    const err = new WorkerError(
      i,
      `program '${name}' did not finish within ${limit} ms and the worker's heartbeat stopped: ` +
        `the thread was terminated and replaced` +
        (held === 0 ? '' : ` (it held the bpf_spin_lock at 0x${held.toString(16)}, now released)`),
    );
    slot.pending?.reject(err);
    slot.pending = undefined;
    slot.port.close();
    // terminate first: V8 stops the looping thread at its next back-edge, long before the
    // fresh thread has instantiated its programs
    const gone = slot.thread.terminate();
    this.slots[i] = this.spawn(i);
    this.replacements++;
    void gone.then(
      () => this.releaseLockOf(i, held),
      () => this.releaseLockOf(i, held),
    );
    this.opts.onWorkerExit?.(err);
  }

  /** The bpf_spin_lock worker `i` holds (its CTRL_LOCK_HELD word, still owned by it), or 0. */
  private heldLock(i: number): number {
    const at = Atomics.load(this.ctrl32, this.word(i, CTRL_LOCK_HELD)) >>> 0;
    if (at === 0 || at % 4 !== 0 || at + 4 > this.opts.memory.buffer.byteLength) return 0;
    const words = new Int32Array(this.opts.memory.buffer);
    return Atomics.load(words, at / 4) === i + 1 ? at : 0;
  }

  /** Releases the bpf_spin_lock a gone worker `i` held (`at`, or its CTRL_LOCK_HELD word). */
  private releaseLockOf(i: number, at = this.heldLock(i)): void {
    if (at === 0) return;
    Atomics.compareExchange(this.ctrl32, this.word(i, CTRL_LOCK_HELD), at, 0);
    const words = new Int32Array(this.opts.memory.buffer);
    if (Atomics.compareExchange(words, at / 4, i + 1, 0) === i + 1) this.locksReleased++;
  }
}
