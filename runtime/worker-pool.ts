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
  /** Called when a worker thread died and was replaced. */
  readonly onWorkerExit?: (e: WorkerError) => void;
  /** The frame allocator each worker's runtime instance attaches to, and its kfunc slots. */
  readonly alloc: WorkerAllocInit;
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
  /** Threads that died and were replaced since the pool started. */
  replacements = 0;
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
    this.queues[i] = run.catch(() => undefined);
    return run;
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
    this.opts.onWorkerExit?.(err);
    if (!slot.started) return; // its requests fail on `ready`
    // queued requests wait for the fresh thread (exec reads the current slot)
    this.slots[i] = this.spawn(i);
    this.replacements++;
  }
}
