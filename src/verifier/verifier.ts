/**
 * The verifier's entry point (kernel `bpf_check`): checks the control flow (cfg.ts), then
 * explores every path of the program (do-check.ts) and returns the `VerifiedProgram` with the
 * facts the JIT uses, or throws a `VerifierError` carrying the kernel-format log.
 *
 * Called from: the Vm's `load` (runtime/vm.ts, on by default), the CLI's `verify` command and
 * the tests.
 */

import { isBpfError, VerifierError } from '../errors.js';
import type { Program, ProgType } from '../program.js';
import { checkCfg } from './cfg.js';
import { DoCheck } from './do-check.js';
import { computeLiveRegs } from './liveness.js';
import { computeBacktrackRegs } from './precision.js';
import { VerifierEnv, VerifierReject } from './verifier-env.js';
import type { MapInfo } from './reg-state.js';
import type { VerifiedProgram } from './verified-program.js';

/** The map (or map value) an lddw with a map pseudo source loads (kernel `insn_aux_data`). */
export interface LdMap {
  readonly map: MapInfo;
  /** BPF_PSEUDO_MAP_VALUE / _IDX_VALUE: the register gets a map value pointer at `off`. */
  readonly value: boolean;
  readonly off: number;
}

/** A kfunc's signature as the verifier sees it (from BTF or from the host's registration). */
export interface KfuncSig {
  readonly name: string;
  /**
   * Argument kinds of r1.. : a scalar, any initialised value, memory of `size` bytes the kfunc
   * reads or writes, or a reference it releases (`KF_RELEASE`).
   */
  readonly args: readonly KfuncArg[];
  /** What r0 holds after the call. */
  readonly ret: KfuncRet;
  /** The Vm has no kfunc of this name: calls to it are rejected. */
  readonly missing?: boolean;
  /**
   * `bpf_throw`: never returns (the path ends at the call), and is rejected while a reference
   * or a lock is held and inside callbacks (kernel `KF_...` exception kfunc).
   */
  readonly noreturn?: boolean;
  /**
   * The call may free a coroutine frame or hand it to another worker (`bpf_coro_frame_free`,
   * `_detach`, `_yield`, `_sleep`, `_enqueue`): every frame pointer becomes a handle, whose
   * accesses are checked at run time (src/verifier/check-coro.ts).
   */
  readonly mayFreeFrames?: boolean;
  /**
   * With `mayFreeFrames`: the kfunc frees or hands off nothing when it returns non-zero
   * (`bpf_coro_yield`, `_sleep`, `_enqueue`: the frame was not scheduled, the runtime left it
   * untouched). The verifier explores r0 == 0 (frames demoted) and r0 != 0 (frames and their
   * recorded slots kept) as two paths.
   */
  readonly handsOffOnZero?: boolean;
  /**
   * The kfunc writes no frame's user area (from +0) and nothing it keeps of a frame runs
   * before the program returns (`bpf_coro_defer`, `_await`, `_handle_frame`, the task and
   * object kfuncs): the frame slots the verifier recorded stay (check-coro.ts). Without it a
   * call forgets every recorded slot, and the frames passed to it are no longer tracked.
   */
  readonly keepsFrameData?: boolean;
  /**
   * The frame argument is suspended: code outside this path runs its resume or destroy
   * function later (`bpf_coro_defer`, `_detach`; `_yield`, `_sleep`, `_enqueue` when they
   * return 0). The
   * references the path keeps in the frame's slots move into the frame, and its resume and
   * destroy functions are verified holding them (check-coro.ts `suspendFrame`).
   */
  readonly suspends?: boolean;
}

/** One kfunc argument. */
export type KfuncArg =
  | { readonly kind: 'scalar' }
  | { readonly kind: 'any' }
  | { readonly kind: 'mem'; readonly size: number }
  /**
   * `handleOk`: the runtime validates the pointer (bpf_task_release ignores one that holds no
   * reference), so a `coro_handle` (a reference a frame kept across a suspension, reloaded
   * where the verifier does not know the frame's contents, check-coro.ts) is accepted too; it
   * releases nothing the path holds.
   */
  | {
      readonly kind: 'release';
      readonly handleOk?: boolean;
      /** The reference must be a `PTR_TO_BTF_ID` of this struct (KF_RELEASE's BTF type). */
      readonly btfName?: string;
      /** The reference must be an object a kfunc returning `obj` made (`bpf_obj_new_impl`). */
      readonly obj?: boolean;
    }
  /**
   * A `struct bpf_res_spin_lock` in a map value (constant offset): `res_spin_lock` takes it
   * and its result must be checked (res-lock.ts); `res_spin_unlock` releases it.
   */
  | { readonly kind: 'res_spin_lock' }
  | { readonly kind: 'res_spin_unlock' }
  /** A frame size: a known constant, at least the 16-byte header (`bpf_coro_frame_alloc`). */
  | { readonly kind: 'frame_size' }
  /** A coroutine frame (`coro_mem` at offset 0, or a non-NULL `coro_handle`); never the stack. */
  | { readonly kind: 'frame' }
  /** A map of type `mapType` whose values are `valueSize` bytes (`bpf_coro_enqueue`'s queue). */
  | { readonly kind: 'map'; readonly mapType: number; readonly valueSize: number }
  /** A trusted, non-NULL `PTR_TO_BTF_ID` of struct `btfName` (`bpf_task_acquire`). */
  | { readonly kind: 'btf_id'; readonly btfName: string }
  /** A program BTF type id, a known constant (`bpf_obj_new_impl`'s `local_type_id`). */
  | { readonly kind: 'obj_type' };

/** A kfunc's return value. */
export type KfuncRet =
  | { readonly kind: 'void' }
  | { readonly kind: 'scalar' }
  /** Memory of `size` bytes, maybe NULL; `acquire` makes it a reference to release. */
  | { readonly kind: 'mem'; readonly size: number; readonly acquire: boolean }
  /** A coroutine frame of the size in r1 (`coro_mem_or_null`), not a reference. */
  | { readonly kind: 'frame' }
  /** A word that may be a frame handle, maybe NULL (`coro_handle_or_null`). */
  | { readonly kind: 'handle' }
  /** A `PTR_TO_BTF_ID` of struct `btfName`, maybe NULL; `acquire` makes it a reference. */
  | { readonly kind: 'btf_id'; readonly btfName: string; readonly acquire: boolean }
  /** A zeroed object of the size of the `obj_type` argument's BTF type, acquired, maybe NULL. */
  | { readonly kind: 'obj' };

/** Options of `verifyProgram`. */
export interface VerifyOptions {
  /** Program type (ctx layout, helpers, return range); `prog.type` by default. */
  readonly type?: ProgType;
  /** `BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2 | BPF_LOG_STATS` bits (log.ts); 0 by default. */
  readonly logLevel?: number;
  /** Log buffer size, as the kernel's `log_size`. */
  readonly logSize?: number;
  /** The map each map-loading lddw slot refers to, by slot index. */
  readonly maps?: ReadonlyMap<number, LdMap>;
  /** Whether a helper id is available at run time (all helpers with a prototype by default). */
  readonly hasHelper?: (id: number) => boolean;
  /** Kfunc signatures by the insn index of the kfunc call. */
  readonly kfuncs?: ReadonlyMap<number, KfuncSig>;
  /** `mem` programs: bytes R1 points to (R2 holds the length); the packet capacity by default. */
  readonly memSize?: number;
  /**
   * Processed-insn limit (`BPF_COMPLEXITY_LIMIT_INSNS`, 1,000,000 by default); tools and fuzz
   * tests lower it to bound their time.
   */
  readonly insnLimit?: number;
  /**
   * Size in bytes of type `id` of the program's BTF (`bpf_obj_new_impl`); undefined when the
   * object has no BTF or no such sized type.
   */
  readonly btfTypeSize?: (id: number) => number | undefined;
  /** The C source line of a slot, from BTF.ext line info, printed as `; line` in the log. */
  readonly lineInfo?: (insnIdx: number) => string | undefined;
}

/**
 * Verifies `prog` and returns it with its facts; throws `VerifierError` when it is unsafe.
 *
 * @example
 * const v = verifyProgram(createProgram(assemble('mov %r0, 0\nexit'), { type: 'xdp' }));
 * v.processedInsns // 2
 */
export function verifyProgram(prog: Program, opts: VerifyOptions = {}): VerifiedProgram {
  const t0 = performance.now();
  const env = new VerifierEnv(prog, opts);
  let check: DoCheck | undefined;
  try {
    try {
      // Functions reached only through tokens in global data are entries of the walk too.
      env.cfg = checkCfg(prog, env.log, { entries: prog.dataFuncs ?? [] });
    } catch (e) {
      if (isBpfError(e) && e instanceof VerifierError) throw new VerifierReject(e);
      throw e;
    }
    env.liveBefore = computeLiveRegs(prog);
    env.backtrackRegs = computeBacktrackRegs(prog);
    check = new DoCheck(env);
    check.run();
  } catch (e) {
    if (e instanceof VerifierReject) {
      printStats(env, t0);
      throw env.log.withLog(e.err);
    }
    throw e;
  }
  printStats(env, t0);
  return {
    prog,
    type: env.type,
    // Array.from: slots never explored are holes in the facts array
    reachable: Array.from(env.facts(), (f) => f !== undefined),
    facts: env.facts(),
    memInputSize: env.memInputMax,
    frameChecks: env.frameChecks,
    regionChecks: env.regionChecks(),
    coroEntries: check?.coroEntries ?? new Map(),
    objNewSizes: env.objNewSizes,
    frameAllocSizes: env.frameAllocSizes,
    liveFrameFrees: new Set([...env.frameFreeLive].filter(([, live]) => live).map(([i]) => i)),
    callxChecks: env.callxHandleInsns,
    throwInsns: env.throwInsns,
    loopInlines: new Map([...env.loopInline].filter(([, subprog]) => subprog >= 0)),
    holdsResources: env.holdsResources,
    stackDepth: env.stackDepth.slice(),
    processedInsns: env.insnProcessed,
    totalStates: env.explored.totalStates,
    maxStatesPerInsn: env.explored.maxStatesPerInsn,
    log: env.log.text(),
    verifyMs: performance.now() - t0,
  };
}

/** The final stats line (`print_verification_stats`). */
function printStats(env: VerifierEnv, t0: number): void {
  env.log.stats({
    insnProcessed: env.insnProcessed,
    maxStatesPerInsn: env.explored.maxStatesPerInsn,
    totalStates: env.explored.totalStates,
    peakStates: env.explored.peakStates,
    markRead: 0,
    verificationTimeUsec: (performance.now() - t0) * 1000,
    stackDepths: env.stackDepth,
  });
}
