/**
 * Fast-path termination on the host thread of a Vm (DESIGN.md §5, notes/fast-path-termination.md
 * §10). A terminated run is not unwound: the program's helper slots in the call table are
 * swapped for their fast-path versions (runtime/fast-path.ts) and its may_goto budget is zeroed,
 * so it runs down its own verified paths to `exit`, releasing what it holds on the way; then
 * the slots are restored (invocation-kill) and the run is reported with a `TerminationError`.
 *
 * Only the thread running a program can swap its own table. On the host thread a request made
 * while the program runs can only come from code the program called (a helper, a kfunc, a
 * callback's helper) or from a checkpoint, so `request()` swaps at once. Checkpoints notice
 * the other triggers:
 *  - a watchdog deadline (`run(input, { deadlineNs })`): the may_goto checkpoint (every
 *    MAY_GOTO_CHECK_PERIOD-th may_goto, a call into TERM_CHECK_SLOT), an inlined bpf_loop
 *    (every 64th iteration while CTRL_TERM_DEADLINE is non-zero: `enter` sets it to 1 on this
 *    thread, where the deadline itself stays in JS), every runtime bpf_loop /
 *    for_each_map_elem iteration and every JS helper call poll the injected clock, but only
 *    while a deadline is armed (`watch`), every POLL_PERIOD-th poll; a run without a deadline
 *    reads no clock;
 *  - a request another thread stored in this thread's CTRL_TERMINATE (shared memory): read at
 *    run entry, at the may_goto checkpoint and by the iterator helpers.
 *
 * A program the verifier proved never to hold a reference or a lock (`TermProg.unwindable`)
 * is not run down: the checkpoint that acts throws a TerminationError that unwinds the Wasm and
 * JS frames of the run to its entry (≈ one exception, notes/wasm-platform.md §2), as bpf_throw
 * does; nothing can leak. `Vm.terminate` called from a helper of such a run therefore does not
 * return to its caller.
 *
 * Kfunc slots are Vm-wide, not per program; kfuncs run only on the host thread, and the host
 * thread runs one program at a time, so the kfunc slots the terminated program calls are
 * swapped for the rest of its run and restored with its helpers.
 *
 * Called from host: runtime/loaded-program.ts (enter/exit around every run), runtime/vm.ts
 * (`Vm.terminate`, the checkpoint slot, the JS helper adapters), runtime/helpers/loop.ts (poll).
 */

import {
  CTRL_MAY_GOTO,
  CTRL_PROG,
  CTRL_TERMINATE,
  CTRL_TERM_ACK,
  CTRL_TERM_BLOCK,
  CTRL_TERM_CHECKS,
  CTRL_TERM_DEADLINE,
  MAY_GOTO_CHECK_PERIOD,
  TERM_CHECK_SLOT,
  TERM_REASON_REQUEST,
  TERM_REASON_TIMEOUT,
  type WorkerLayout,
} from '../src/abi.js';
import { TerminationError, type TerminationReason } from '../src/errors.js';
import type { HelperArgs } from '../src/interp/env.js';
import type { KfuncSig } from '../src/verifier/verifier.js';
import { FastPathSet, fastPathFn, helperFastPath, kfuncFastPath } from './fast-path.js';
import type { MemHost } from './helpers/mem.js';

/** Checkpoints read the clock once per this many polls (iterator callbacks, JS helper calls). */
export const POLL_PERIOD = 16;

/** What termination needs from the Vm. */
export interface TerminationHost extends MemHost {
  readonly table: WebAssembly.Table;
  readonly worker: WorkerLayout;
  /** The Vm's injected monotonic clock (ns): deadlines are measured on it. */
  readonly clock: () => bigint;
}

/** A kfunc a program calls: its Vm-wide slot, name and signature. */
export interface TermKfunc {
  readonly slot: number;
  readonly name: string;
  readonly sig: KfuncSig | undefined;
}

/** The call-table slots of one loaded program that termination swaps. */
export interface TermProg {
  /** Table slot of helper id 0 of the program's block. */
  readonly helperBase: number;
  /** Helper ids the program can call (its static calls; every id when it uses callx). */
  readonly helperIds: readonly number[];
  readonly kfuncs: readonly TermKfunc[];
  /**
   * The verifier proved that the program never holds a reference or a lock: a terminated run
   * is abandoned at once (a throw unwinds to the entry, bpf_throw's precondition) instead of
   * running down with fast-path helpers.
   */
  readonly unwindable: boolean;
}

const REASONS: Readonly<Record<number, TerminationReason>> = {
  [TERM_REASON_REQUEST]: 'request',
  [TERM_REASON_TIMEOUT]: 'timeout',
};

/** The termination state of a Vm's host thread. */
export class Termination {
  /** The program running on the host thread, or undefined. */
  running: TermProg | undefined;
  private readonly byOwner = new Map<number, TermProg>();
  /** The running program's slots hold fast-path versions (until `exit`). */
  engaged = false;
  /** A deadline is armed: checkpoints poll the clock. */
  watch = false;
  /** Runs terminated since the Vm was created. */
  terminations = 0;
  private reason = TERM_REASON_REQUEST;
  private deadline = 0n;
  private polls = 0;
  private warmed = false;
  private saved: [number, WebAssembly.ExportValue][] = [];
  private readonly swaps = new WeakMap<TermProg, (readonly [number, WebAssembly.ExportValue])[]>();
  private set: FastPathSet | undefined;
  private readonly host: TerminationHost;
  /** The Vm has workers (shared memory): other threads may store requests for this thread. */
  readonly shared: boolean;
  /** Thrown to abandon an unwindable run (made once: a stack trace costs microseconds). */
  private readonly unwind = terminatedRun('request');

  constructor(host: TerminationHost) {
    this.host = host;
    this.shared = host.memory.buffer instanceof SharedArrayBuffer;
  }

  /** The fast-path functions of this thread, built on first use (a few µs, no binaryen). */
  private stubs(): FastPathSet {
    this.set ??= new FastPathSet(this.host, [(base, budget) => this.checkpoint(base, budget)]);
    return this.set;
  }

  /** Whether `e` is what `engage` threw to abandon a run (the run's entry then reports it). */
  isUnwind(e: unknown): boolean {
    return e === this.unwind && this.engaged;
  }

  /** The Wasm function a program block's TERM_CHECK_SLOT holds. */
  checkpointFn(): WebAssembly.ExportValue {
    return this.stubs().extra[0] as WebAssembly.ExportValue;
  }

  /**
   * Marks `prog` as running on the host thread (with a deadline `deadlineNs` from now when
   * given); returns what ran before, for `exit`. On shared memory, a request already in
   * CTRL_TERMINATE (stored by another thread) terminates this run from its entry. Called on
   * every run: without workers it reads no memory.
   */
  enter(prog: TermProg, deadlineNs: number | bigint | undefined): TermProg | undefined {
    const prev = this.running;
    this.running = prog;
    if (deadlineNs !== undefined) {
      this.deadline = this.host.clock() + BigInt(deadlineNs);
      this.watch = true;
      this.polls = 0;
      // armed, for generated code (an inlined bpf_loop polls the checkpoint while it is set)
      this.host.dataView().setBigUint64(this.host.worker.ctrl + CTRL_TERM_DEADLINE, 1n, true);
    }
    // only another thread can have stored a request before the run: shared memory only
    if (this.shared && this.requested() !== 0) this.engage(this.requested());
    return prev;
  }

  /**
   * Ends the run `enter` started: restores the slots if it was terminated and returns why
   * (undefined for a normal run).
   */
  exit(prev: TermProg | undefined): TerminationReason | undefined {
    this.running = prev;
    if (prev === undefined && this.watch) {
      this.watch = false;
      this.deadline = 0n;
      this.host.dataView().setBigUint64(this.host.worker.ctrl + CTRL_TERM_DEADLINE, 0n, true);
    }
    if (!this.engaged) return undefined;
    this.restore();
    return REASONS[this.reason] ?? 'request';
  }

  /**
   * Terminates the run of `helperBase` (any run when undefined) now, if it is running on this
   * thread; returns whether it was.
   */
  request(helperBase?: number): boolean {
    const r = this.current();
    if (r === undefined || (helperBase !== undefined && r.helperBase !== helperBase)) return false;
    this.engage(TERM_REASON_REQUEST);
    return true;
  }

  /** Makes `prog` findable by its owner id while it runs without `enter` (see `current`). */
  register(owner: number, prog: TermProg): void {
    this.byOwner.set(owner, prog);
    if (!this.warmed) this.warm();
    if (!prog.unwindable) this.rehearse(prog);
  }

  /**
   * Runs the termination path once where it has no effect (no run is active at load), so V8
   * has compiled its functions before the first real request: a cold path costs a few hundred
   * µs of lazy compilation, a warm one a few µs (bench/termination.bench.ts "first").
   */
  private warm(): void {
    this.warmed = true;
    if (this.running !== undefined || this.engaged || this.current() !== undefined) return;
    this.request();
    this.engage(TERM_REASON_REQUEST);
    this.exit(undefined);
    this.isUnwind(this.unwind);
    terminatedRun('request');
  }

  /**
   * Swaps `prog`'s slots for their fast paths and back at once, at load, where no run is
   * active: works out its swap list, and makes V8 create the JS objects `table.get` returns for
   * the functions in its slots and compile the paths of `engage` and `restore` that a swap
   * takes. Without it the first request to a program spent ≈ 60 µs in `Vm.terminate`.
   */
  private rehearse(prog: TermProg): void {
    if (this.running !== undefined || this.engaged || this.current() !== undefined) return;
    const v = this.host.dataView();
    const budget = v.getBigUint64(this.host.worker.ctrl + CTRL_MAY_GOTO, true);
    this.running = prog;
    this.engage(TERM_REASON_REQUEST);
    const engaged = this.engaged;
    this.exit(undefined);
    v.setBigUint64(this.host.worker.ctrl + CTRL_MAY_GOTO, budget, true);
    if (engaged) this.terminations--;
  }

  /**
   * The program running on this thread: the one `enter` marked, or else the one whose run's
   * entry stored its owner at ctrl + CTRL_PROG (0 when no run is active). A run without a
   * deadline is not marked from JS at all: its bookkeeping is that one store in Wasm.
   */
  private current(): TermProg | undefined {
    if (this.running !== undefined) return this.running;
    const owner = this.host.dataView().getUint32(this.host.worker.ctrl + CTRL_PROG, true);
    return owner === 0 ? undefined : this.byOwner.get(owner);
  }

  /**
   * Checkpoint of iterators and JS helper adapters: acts on a request or an expired deadline
   * and returns whether the run is being terminated. Called from BPF (helpers).
   */
  poll(): boolean {
    if (this.engaged) return true;
    const req = this.requested();
    if (req !== 0) {
      this.engage(req);
      return true;
    }
    if (this.watch && ++this.polls % POLL_PERIOD === 0 && this.host.clock() >= this.deadline) {
      this.engage(TERM_REASON_TIMEOUT);
      return true;
    }
    return false;
  }

  /**
   * The may_goto checkpoint (TERM_CHECK_SLOT): returns the budget, or 0 once the run is being
   * terminated. Called from BPF (generated code, every MAY_GOTO_CHECK_PERIOD-th may_goto).
   */
  private checkpoint(_base: bigint, budget: bigint): bigint {
    const v = this.host.dataView();
    const ctrl = this.host.worker.ctrl;
    v.setUint32(ctrl + CTRL_TERM_CHECKS, v.getUint32(ctrl + CTRL_TERM_CHECKS, true) + 1, true);
    if (this.engaged) return 0n;
    const req = this.requested();
    if (req !== 0) this.engage(req);
    else if (this.watch && this.host.clock() >= this.deadline) this.engage(TERM_REASON_TIMEOUT);
    return this.engaged ? 0n : budget;
  }

  /**
   * The interpreter's may_goto checkpoint (ExecEnv.mayGotoCheck), at every may_goto with
   * budget left: 0 once the run is being terminated (as `engage` zeroes the JIT's budget
   * word), else the budget, after asking `checkpoint` at the same may_gotos the JIT does.
   */
  interpMayGoto(budget: number): number {
    if (this.engaged) return 0;
    if ((budget & (MAY_GOTO_CHECK_PERIOD - 1)) !== 1) return budget;
    return Number(this.checkpoint(0n, BigInt(budget)));
  }

  /** The request another thread stored in this thread's CTRL_TERMINATE (0: none). */
  private requested(): number {
    return this.host.dataView().getUint32(this.host.worker.ctrl + CTRL_TERMINATE, true);
  }

  /**
   * Swaps the running program's slots for their fast paths and zeroes its may_goto budget; or,
   * for an unwindable program, throws to abandon the run at once.
   */
  private engage(reason: number): void {
    const prog = this.current();
    if (this.engaged || prog === undefined) return;
    if (prog.unwindable) {
      this.engaged = true;
      this.reason = reason;
      this.terminations++;
      this.host.dataView().setUint32(this.host.worker.ctrl + CTRL_TERM_ACK, reason, true);
      // the run's exit (LoadedProgram) reports the public TerminationError
      throw this.unwind;
    }
    const table = this.host.table;
    this.saved = [];
    for (const [slot, stub] of this.swapsOf(prog)) {
      this.saved.push([slot, table.get(slot) as WebAssembly.ExportValue]);
      table.set(slot, stub);
    }
    this.engaged = true;
    this.reason = reason;
    this.terminations++;
    const v = this.host.dataView();
    const ctrl = this.host.worker.ctrl;
    v.setUint32(ctrl + CTRL_TERMINATE, reason, true);
    v.setUint32(ctrl + CTRL_TERM_ACK, reason, true);
    v.setUint32(ctrl + CTRL_TERM_BLOCK, prog.helperBase + 1, true);
    v.setBigUint64(ctrl + CTRL_MAY_GOTO, 0n, true);
  }

  /** The slots `engage` swaps for `prog` and their fast paths (worked out once per program). */
  private swapsOf(prog: TermProg): readonly (readonly [number, WebAssembly.ExportValue])[] {
    let swaps = this.swaps.get(prog);
    if (swaps === undefined) {
      const set = this.stubs();
      swaps = [];
      for (const id of prog.helperIds) {
        const stub = set.helper(id);
        if (stub !== undefined) swaps.push([prog.helperBase + id, stub]);
      }
      for (const k of prog.kfuncs) {
        const stub = set.kfunc(k.name, k.sig);
        if (stub !== undefined) swaps.push([k.slot, stub]);
      }
      this.swaps.set(prog, swaps);
    }
    return swaps;
  }

  /** Puts the original functions back and clears the request (invocation-kill). */
  private restore(): void {
    for (let k = this.saved.length - 1; k >= 0; k--) {
      const [slot, fn] = this.saved[k] as [number, WebAssembly.ExportValue];
      this.host.table.set(slot, fn);
    }
    this.saved = [];
    this.engaged = false;
    const v = this.host.dataView();
    const ctrl = this.host.worker.ctrl;
    v.setUint32(ctrl + CTRL_TERMINATE, 0, true);
    v.setUint32(ctrl + CTRL_TERM_ACK, 0, true);
    v.setUint32(ctrl + CTRL_TERM_BLOCK, 0, true);
  }

  /**
   * For the interpreter, which calls helpers by id: the fast path of helper `id` while the run
   * is terminated, undefined otherwise (call the original).
   */
  interpHelper(id: number): ((args: HelperArgs) => bigint) | undefined {
    return this.engaged ? fastPathFn(this.host, helperFastPath(id)) : undefined;
  }

  /** As `interpHelper`, for a kfunc. */
  interpKfunc(name: string, sig: KfuncSig | undefined): ((args: HelperArgs) => bigint) | undefined {
    return this.engaged ? fastPathFn(this.host, kfuncFastPath(name, sig)) : undefined;
  }

  /**
   * Wraps a JS helper for its adapter: while a deadline is armed each call is a checkpoint,
   * and a call that finds the run terminated runs the fast path `fast` instead.
   */
  watched(
    fn: (args: HelperArgs) => bigint,
    fast: ((args: HelperArgs) => bigint) | undefined,
  ): (args: HelperArgs) => bigint {
    return (args) => {
      if (this.watch && this.poll() && fast !== undefined) return fast(args);
      return fn(args);
    };
  }
}

/**
 * The TerminationError a terminated run throws. It is an outcome, not a bug: no stack trace is
 * captured (that costs microseconds, a large share of the request-to-exit latency).
 */
export function terminatedRun(reason: TerminationReason): TerminationError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new TerminationError(reason);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The slot of the checkpoint in the block at `helperBase`. */
export function checkpointSlot(helperBase: number): number {
  return helperBase + TERM_CHECK_SLOT;
}
