/**
 * Fast-path termination on a worker thread of a Vm (notes/fast-path-termination.md §10.1). A
 * worker's call table cannot be reached from another thread, so the host (or any other thread
 * holding the shared memory) requests termination by storing a TERM_REASON_* in the worker's
 * CTRL_TERMINATE word, or arms a deadline in CTRL_TERM_DEADLINE (process.hrtime ns); the worker
 * itself acts at its checkpoints:
 *  - run entry (`beforeRun`): a request already there terminates the run from its start;
 *  - may_goto: every MAY_GOTO_CHECK_PERIOD-th may_goto calls the checkpoint in the program's
 *    TERM_CHECK_SLOT, which reads the request word and the clock;
 *  - an inlined bpf_loop (jit/compile.ts inlineLoop): before each callback it reads the request
 *    word, and every 64th callback while CTRL_TERM_DEADLINE is set it calls the checkpoint;
 *  - every call of a JS helper (its adapter polls first, runtime/worker-main.ts): a request at
 *    once, the clock every POLL_PERIOD-th call while a deadline is armed.
 * Acting means: swap the running program's helper slots and the runtime module's kfunc slots
 * in this worker's table for their fast-path versions, zero the may_goto budget, and store the
 * reason in CTRL_TERMINATE (for generated code that reads it) and CTRL_TERM_ACK; or,
 * for a program the verifier proved to hold nothing (`WorkerProgram.unwindable`), store the
 * reason and throw, abandoning the run at once as the host thread does. After
 * the run (`afterRun`) the slots are restored and the request cleared; the ack stays for the
 * host, which reports the run as terminated (LoadedProgram.runOn) and clears it.
 *
 * Workers run no iterator helpers (a bpf_loop the JIT did not inline, for_each_map_elem and
 * other callbacks are refused there), so those checkpoints are host-only.
 *
 * Called from a worker thread (runtime/worker-main.ts).
 */

import {
  CTRL_HEARTBEAT,
  CTRL_MAY_GOTO,
  CTRL_TERMINATE,
  CTRL_TERM_ACK,
  CTRL_TERM_BLOCK,
  CTRL_TERM_CHECKS,
  CTRL_TERM_DEADLINE,
  TERM_CHECK_SLOT,
  TERM_REASON_TIMEOUT,
  type WorkerLayout,
} from '../src/abi.js';
import type { HelperArgs } from '../src/interp/env.js';
import { FastPathSet } from './fast-path.js';
import { POLL_PERIOD } from './termination.js';
import type { MemHost } from './helpers/mem.js';

/** The termination state of one worker thread. */
export class WorkerTermination {
  private readonly table: WebAssembly.Table;
  private readonly ctrl32: Int32Array;
  private readonly ctrl64: BigInt64Array;
  private readonly set: FastPathSet;
  /** Helper ids the worker fills in every block (the ones a swap may replace). */
  private readonly helperIds: readonly number[];
  /** The runtime module's kfuncs in this worker's table (Vm-wide slots), and their stubs. */
  private readonly kfuncStubs: readonly (readonly [number, WebAssembly.ExportValue])[];
  private base = -1;
  /** The running program may be abandoned (`WorkerProgram.unwindable`). */
  private unwindable = false;
  private saved: [number, WebAssembly.ExportValue][] = [];
  private polls = 0;
  /** Thrown to abandon an unwindable run; `serve` (worker-main.ts) catches it. */
  readonly unwind: unknown = Object.freeze({ abandoned: true });

  constructor(
    host: MemHost & { readonly worker: WorkerLayout },
    table: WebAssembly.Table,
    helperIds: readonly number[],
    kfuncs: readonly { readonly name: string; readonly slot: number }[],
  ) {
    this.table = table;
    this.helperIds = helperIds;
    const buf = host.memory.buffer;
    this.ctrl32 = new Int32Array(buf, host.worker.ctrl, 64);
    this.ctrl64 = new BigInt64Array(buf, host.worker.ctrl, 32);
    this.set = new FastPathSet(host, [(_base, budget) => (this.checkpoint() ? 0n : budget)]);
    this.kfuncStubs = kfuncs.flatMap((k) => {
      const stub = this.set.kfunc(k.name, undefined);
      return stub === undefined ? [] : [[k.slot, stub] as const];
    });
  }

  /** Puts the checkpoint into the block of a program loaded at `helperBase`. */
  install(helperBase: number): void {
    this.table.set(helperBase + TERM_CHECK_SLOT, this.set.extra[0] as WebAssembly.ExportValue);
  }

  /** Run entry: `helperBase` starts running; a pending request terminates it at once. */
  beforeRun(helperBase: number, unwindable: boolean): void {
    this.base = helperBase;
    this.unwindable = unwindable;
    this.polls = 0;
    const req = Atomics.load(this.ctrl32, CTRL_TERMINATE / 4);
    if (req !== 0) this.engage(req);
  }

  /** Run exit: restores the slots and clears the request (the ack stays for the host). */
  afterRun(): void {
    for (let k = this.saved.length - 1; k >= 0; k--) {
      const [slot, fn] = this.saved[k] as [number, WebAssembly.ExportValue];
      this.table.set(slot, fn);
    }
    this.saved = [];
    this.base = -1;
    Atomics.store(this.ctrl32, CTRL_TERM_BLOCK / 4, 0);
    Atomics.store(this.ctrl32, CTRL_TERMINATE / 4, 0);
  }

  /**
   * The may_goto checkpoint: true once the run is being terminated (the generated code then
   * takes a budget of 0). Called from BPF.
   */
  private checkpoint(): boolean {
    Atomics.add(this.ctrl32, CTRL_TERM_CHECKS / 4, 1);
    // progress: the pool's hang watch (workerTimeoutMs) sees a run that passes checkpoints
    // as alive
    Atomics.add(this.ctrl32, CTRL_HEARTBEAT / 4, 1);
    return this.poll(1);
  }

  /**
   * Acts on a request or an expired deadline (the clock read every `clockEvery`-th poll) and
   * returns whether the run is being terminated. The JS helper adapters poll before every
   * call (`POLL_PERIOD`), as the host's do while a deadline is armed; an unwindable run is
   * abandoned from here (a throw).
   */
  poll(clockEvery = POLL_PERIOD): boolean {
    if (this.saved.length > 0 || Atomics.load(this.ctrl32, CTRL_TERM_ACK / 4) !== 0) return true;
    const req = Atomics.load(this.ctrl32, CTRL_TERMINATE / 4);
    if (req !== 0) {
      this.engage(req);
      return true;
    }
    const deadline = Atomics.load(this.ctrl64, CTRL_TERM_DEADLINE / 8);
    if (deadline !== 0n && ++this.polls % clockEvery === 0 && process.hrtime.bigint() >= deadline) {
      this.engage(TERM_REASON_TIMEOUT);
      return true;
    }
    return false;
  }

  /**
   * Wraps a JS helper for its adapter (as Termination.watched on the host thread): each call
   * polls first, and a call that finds the run terminated runs the fast path `fast` instead.
   */
  watched(
    fn: (args: HelperArgs) => bigint,
    fast: ((args: HelperArgs) => bigint) | undefined,
  ): (args: HelperArgs) => bigint {
    return (args) => (this.poll() && fast !== undefined ? fast(args) : fn(args));
  }

  /**
   * Swaps the running program's helper slots for their fast paths and zeroes its may_goto
   * budget; an unwindable program is abandoned instead (the ack is stored, then a throw ends
   * the run: nothing it holds can leak).
   */
  private engage(reason: number): void {
    if (this.base < 0 || Atomics.load(this.ctrl32, CTRL_TERM_ACK / 4) !== 0) return;
    if (this.unwindable) {
      Atomics.store(this.ctrl32, CTRL_TERM_ACK / 4, reason);
      throw this.unwind;
    }
    const swap = (slot: number, stub: WebAssembly.ExportValue): void => {
      this.saved.push([slot, this.table.get(slot) as WebAssembly.ExportValue]);
      this.table.set(slot, stub);
    };
    for (const id of this.helperIds) {
      const stub = this.set.helper(id);
      if (stub !== undefined) swap(this.base + id, stub);
    }
    // the kfunc slots are Vm-wide, but this thread runs one program at a time: swapped for
    // the rest of this run, as on the host thread
    for (const [slot, stub] of this.kfuncStubs) swap(slot, stub);
    // as on the host thread: generated code that reads the request word (an inlined bpf_loop,
    // the inline allocator fast paths) sees the run as terminated; afterRun clears it
    Atomics.store(this.ctrl32, CTRL_TERMINATE / 4, reason);
    Atomics.store(this.ctrl64, CTRL_MAY_GOTO / 8, 0n);
    Atomics.store(this.ctrl32, CTRL_TERM_BLOCK / 4, this.base + 1);
    Atomics.store(this.ctrl32, CTRL_TERM_ACK / 4, reason);
  }
}
