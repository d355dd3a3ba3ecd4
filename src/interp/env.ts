/**
 * What the reference interpreter needs from the machine it runs on. The runtime's Vm builds
 * one `ExecEnv` per run over its own linear memory, so the interpreter and the JIT see
 * identical state (DESIGN.md §1); tests can build one over a plain buffer.
 */

import type { ProgLinks } from '../abi.js';
import type { Program } from '../program.js';

/** A range of linear memory a program may touch besides its stack. `[start, end)`. */
export interface MemRegion {
  readonly start: number;
  readonly end: number;
  readonly writable: boolean;
  /** Shown in errors: 'input', 'ctx', 'packet', a map name, ... */
  readonly name: string;
}

/** The five argument registers r1..r5 of a helper call. */
export type HelperArgs = readonly [bigint, bigint, bigint, bigint, bigint];

/** A function reachable through a function token. */
export interface TokenTarget {
  readonly prog: Program;
  readonly links: ProgLinks;
  /** Index into `prog.subprogs`. */
  readonly subprog: number;
}

/** The machine state and services one interpreter run uses. */
export interface ExecEnv {
  /**
   * The whole linear memory. Called again after every helper call, because a helper may
   * grow the memory (which detaches the previous buffer).
   */
  readonly memory: () => Uint8Array;
  /** Regions the program may touch besides its active stack frames. */
  readonly regions: readonly MemRegion[];
  /** r10 of the entry function; callee frames lie below it, 512 bytes each. */
  readonly stackTop: number;
  /** Lowest address a frame may reach: stackTop - 8 * 512. */
  readonly stackLimit: number;
  readonly links: ProgLinks;
  /**
   * Calls helper `id` (a kernel helper id) with r1..r5 and returns r0. Throws `ExecError`
   * (or `LinkError`) when no such helper exists.
   */
  readonly callHelper: (id: number, args: HelperArgs) => bigint;
  /**
   * Calls the kfunc in call-table slot `slot` (from `links.kfuncSlots`) with r1..r5 and
   * returns r0. Absent: kfunc calls fail to link.
   */
  readonly callKfunc?: (slot: number, args: HelperArgs) => bigint;
  /**
   * The runtime's `coro_frame_check`: whether `frame` is a live coroutine frame of at least
   * `need` bytes (accesses through coroutine handles, resume functions' r1). Absent: never.
   */
  readonly coroFrameCheck?: (frame: number, need: number) => boolean;
  /**
   * Whether `token` names a function verified as a token entry (coroutine resume / destroy),
   * which a checked `callx` (`ProgLinks.callxChecks`) may call. Absent: none is.
   */
  readonly isCoroEntry?: (token: bigint) => boolean;
  /** The function behind a token, or undefined when the value is not a function token. */
  readonly resolveToken: (token: bigint) => TokenTarget | undefined;
  /** Most instructions one run may execute before it fails with 'insn-budget'. */
  readonly insnBudget: number;
  /** may_goto iterations allowed in this run. */
  readonly mayGotoBudget: number;
  /**
   * Termination's may_goto checkpoint, called at every may_goto with budget left: the budget
   * to go on with, 0 once the run is being terminated (the JIT's budget word is zeroed then,
   * and its generated code asks the checkpoint every MAY_GOTO_CHECK_PERIOD-th may_goto).
   * Absent: the budget alone bounds the loop.
   */
  readonly mayGotoCheck?: (budget: number) => number;
  /** The packet legacy ld_abs / ld_ind read, or undefined when the program has none. */
  readonly packet: { readonly addr: number; readonly len: number } | undefined;
}

/** Default instruction budget of an interpreter run. */
export const DEFAULT_INSN_BUDGET = 1_000_000;
