/**
 * `callBpf`: how a helper calls a BPF function (bpf_loop and for_each_map_elem callbacks, timer
 * callbacks) on whichever engine is running, given the function's token (DESIGN.md §3: a token
 * is the function's call-table slot, Vm-wide).
 *
 * - Inside an interpreter run (the helper was called by `interpret`): the interpreter runs the
 *   function as a nested run one frame below the calling function's frame
 *   (`interpretCallback`), sharing the run's insn and may_goto budgets.
 * - Otherwise, when the token's slot holds a compiled function (the JIT): the slot's Wasm
 *   function `(i64 r1..r5) -> i64` is called directly. Its prologue takes its frame at the
 *   worker's stack pointer, i.e. right below the frame of the BPF function that called the
 *   helper, as a local call would.
 * - Otherwise (the host event loop runs a timer of an interpreted program, or a JIT program
 *   passes a token of an interpreted-only program): a fresh interpreter run at the worker's
 *   stack pointer over the Vm's maps.
 *
 * Stack. A callback is one more frame on the calling program's stack and counts towards
 * MAX_CALL_FRAMES, as the kernel's verifier counts it; when the frame would fall below the
 * program stack (`worker.progStackLimit`) the call fails with ExecError 'call-depth' (on the
 * JIT without an insn index). Timer callbacks start at the top of the stack. The callback area
 * below `progStackLimit` (src/abi.ts) is not used by callbacks.
 *
 * Called from BPF (helpers). Errors of the callback propagate (ExecError, TerminationError);
 * a Wasm trap becomes the ExecError it recorded (runtime/trap.ts).
 */

import { DEFAULT_INSN_BUDGET, type ExecEnv, type HelperArgs } from '../../src/interp/env.js';
import type { MemRegion, TokenTarget } from '../../src/interp/env.js';
import {
  hasActiveHelperCall,
  interpretCallback,
  interpretFunction,
} from '../../src/interp/interpreter.js';
import { BPF_MAX_LOOPS, MAX_BPF_STACK } from '../../src/isa/opcodes.js';
import type { WorkerLayout } from '../../src/abi.js';
import { ExecError } from '../../src/errors.js';
import type { Engine } from '../loaded-program.js';
import { trapToError } from '../trap.js';
import type { MemHost } from './mem.js';

/** What calling BPF needs from the Vm. */
export interface CallHost extends MemHost {
  readonly table: WebAssembly.Table;
  readonly worker: WorkerLayout;
  readonly globals: { readonly sp: WebAssembly.Global };
  resolveToken(token: bigint): TokenTarget | undefined;
  mapRegions(): MemRegion[];
  callHelper(id: number, args: HelperArgs): bigint;
  callKfunc(slot: number, args: HelperArgs): bigint;
  coroFrameCheck(frame: number, need: number): boolean;
  isCoroEntry(token: bigint): boolean;
}

/** Options of `callBpf`. */
export interface CallBpfOptions {
  /**
   * Engine to use when no interpreter run is active: 'interp' forces the interpreter (a timer
   * armed by an interpreted program); default: the JIT when the token has a compiled function.
   */
  readonly engine?: Engine;
  /** Memory the function may touch besides the stack and the maps (interpreter checks). */
  readonly regions?: readonly MemRegion[];
}

type WasmFn = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint;

/** True when `token` names a BPF function of this Vm. */
export function isFuncToken(vm: CallHost, token: bigint): boolean {
  return vm.resolveToken(token) !== undefined;
}

/**
 * Calls the BPF function behind `token` with r1..r5 = `args` (missing ones 0) and returns r0
 * as a u64. Throws ExecError 'call' when `token` is not a function token of this Vm.
 */
export function callBpf(
  vm: CallHost,
  token: bigint,
  args: readonly bigint[],
  opts: CallBpfOptions = {},
): bigint {
  const target = vm.resolveToken(token);
  if (target === undefined) {
    throw new ExecError(null, 'call', `callback 0x${token.toString(16)} is not a function token`);
  }
  const a: HelperArgs = [args[0] ?? 0n, args[1] ?? 0n, args[2] ?? 0n, args[3] ?? 0n, args[4] ?? 0n];
  if (hasActiveHelperCall()) return interpretCallback(target, a, opts.regions);
  const fn = opts.engine === 'interp' ? null : vm.table.get(Number(token));
  const sp = Number(vm.globals.sp.value);
  if (sp - MAX_BPF_STACK < vm.worker.progStackLimit) {
    throw new ExecError(null, 'call-depth', 'no stack frame left for the callback');
  }
  if (typeof fn === 'function') {
    try {
      return BigInt.asUintN(64, (fn as WasmFn)(a[0], a[1], a[2], a[3], a[4]));
    } catch (e) {
      // a trap of the callback: the error its $fail recorded, as LoadedProgram reports it
      throw trapToError(e, vm.dataView(), vm.worker.ctrl);
    }
  }
  const env: ExecEnv = {
    memory: () => vm.u8(),
    // the stack of a JIT program that is running (when a callback runs at its sp)
    regions: [
      ...vm.mapRegions(),
      ...(opts.regions ?? []),
      { start: sp, end: vm.worker.stackTop, writable: true, name: 'stack' },
    ],
    stackTop: sp,
    stackLimit: vm.worker.progStackLimit,
    links: target.links,
    callHelper: (id, args) => vm.callHelper(id, args),
    callKfunc: (slot, args) => vm.callKfunc(slot, args),
    resolveToken: (t) => vm.resolveToken(t),
    coroFrameCheck: (frame, need) => vm.coroFrameCheck(frame, need),
    isCoroEntry: (token) => vm.isCoroEntry(token),
    insnBudget: DEFAULT_INSN_BUDGET,
    mayGotoBudget: BPF_MAX_LOOPS,
    packet: undefined,
  };
  return interpretFunction(target, env, a);
}
