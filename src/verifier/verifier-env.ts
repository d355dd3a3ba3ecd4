/**
 * The verifier environment (kernel `struct bpf_verifier_env`): the program and its options,
 * the log, the control-flow facts of check_cfg, static register liveness, the explored-state
 * store, the counters of the stats line, and the facts collected for the JIT (register classes
 * and constants per insn, stack depth per subprog).
 *
 * Called from: every `check*` of the main pass (do-check.ts, check-mem.ts, check-alu.ts,
 * check-jmp.ts, check-call.ts).
 *
 * Privileges: the model is a root loader's (`bpf_capable`, `perfmon_capable`: bounded loops,
 * bpf-to-bpf calls, variable stack offsets, 32-bit copies and differences of pointers as
 * scalars, partial overwrites of spilled pointers), which the code clang emits relies on,
 * except where an address or stale data would leave the program: no pointer is stored into
 * a map, the packet or the ctx, passed to a helper as a value or returned (`allowPtrLeaks`
 * false there), and no uninitialised stack is read (`allowUninitStack` false): a host that
 * runs BPF as a plug-in should not hand its addresses or old stack bytes out.
 */

import type { Insn } from '../isa/insn.js';
import type { OpInfo } from '../isa/table.js';
import type { ErrnoCode, VerifierError } from '../errors.js';
import type { Program, ProgType } from '../program.js';
import { PACKET_CAPACITY } from '../abi.js';
import type { CfgInfo } from './cfg.js';
import type { SuspendedFrame } from './check-coro.js';
import { VerifierLog } from './log.js';
import { ExploredStates, MAX_BPF_REG, type VerifierState } from './states.js';
import type { RegState } from './reg-state.js';
import {
  REG_CLASS_PTR,
  REG_CLASS_SCALAR,
  REG_CLASS_UNINIT,
  type InsnFacts,
} from './verified-program.js';
import type { KfuncSig, LdMap, VerifyOptions } from './verifier.js';

/** States kept per insn for pruning (`BPF_COMPLEXITY_LIMIT_STATES`). */
export const STATES_PER_INSN = 64;
/** Most distinct frame states suspended holding references one program may have. */
export const SUSPENDED_STATES_MAX = 64;

/** What a rejection carries before it becomes a `VerifierError`. */
export class VerifierReject extends Error {
  readonly err: VerifierError;
  constructor(err: VerifierError) {
    super(err.message);
    this.err = err;
  }
}

/** The verifier environment of one `verifyProgram` call. */
export class VerifierEnv {
  readonly prog: Program;
  readonly insns: readonly Insn[];
  readonly ops: readonly (OpInfo | undefined)[];
  readonly type: ProgType;
  readonly log: VerifierLog;
  readonly opts: VerifyOptions;
  /** Explored states, at most `STATES_PER_INSN` per insn (kernel: 64 for unprivileged). */
  readonly explored = new ExploredStates({ maxStatesPerInsn: STATES_PER_INSN });
  /** `env->allow_ptr_leaks`. */
  readonly allowPtrLeaks = false;
  /** `env->allow_uninit_stack`. */
  readonly allowUninitStack = false;
  /** Bytes of the `mem` program's input buffer. */
  readonly memSize: number;
  cfg!: CfgInfo;
  /** Registers live before each insn (bit r), from `computeLiveRegs`. */
  liveBefore!: Uint16Array;
  /** Registers precision backtracking follows through each insn, from `computeBacktrackRegs`. */
  backtrackRegs!: Int32Array;
  /** `mem` programs: the largest end offset of a proven access through the input (R1). */
  memInputMax = 0;
  /** `insn_processed`. */
  insnProcessed = 0;
  /** `jmps_processed`. */
  jmpsProcessed = 0;
  /** Bytes of stack each subprog uses. */
  readonly stackDepth: number[];
  /** Handle accesses: insn → bytes the handle must have (the run-time frame check). */
  readonly frameChecks = new Map<number, number>();
  /**
   * Loads from read-only map values (`BPF_F_RDONLY_PROG`: `.rodata`, jump tables): insn → ids
   * of the maps. Kept for the run-time check when the insn also loads through a handle, or
   * when the verifier could not bound the offset (`regionChecks`).
   */
  readonly rdonlyLoads = new Map<number, Set<number>>();
  /** Loads from a read-only map value at an offset the verifier could not bound. */
  readonly unboundedRdonlyLoads = new Set<number>();
  /** Subprogs whose token escaped into a frame or global data: verified as entry points. */
  readonly escapedFuncs = new Set<number>();
  /** Entry subprog → smallest frame whose +0 / +8 holds its token. */
  readonly funcFrameSize = new Map<number, number>();
  /** `bpf_obj_new_impl` calls: insn → object size (passed in r1 at run time). */
  readonly objNewSizes = new Map<number, number>();
  /** `bpf_coro_frame_alloc` calls whose size is the same constant on every path. */
  readonly frameAllocSizes = new Map<number, number>();
  /** `bpf_coro_frame_alloc` calls that got different sizes on different paths. */
  readonly frameAllocMixed = new Set<number>();
  /** `bpf_coro_frame_free` calls: whether every path so far passed a frame pointer. */
  readonly frameFreeLive = new Map<number, boolean>();
  /** `callx` insns whose target is a coroutine handle on some path (checked at run time). */
  readonly callxHandleInsns = new Set<number>();
  /** `callx` insn → the subprogs a function-token target named there. */
  readonly callxFuncTargets = new Map<number, Set<number>>();
  /**
   * Frames suspended holding references (check-coro.ts `suspendFrame`), in order; each distinct
   * state once (`SuspendedFrame.key` per subprog pair).
   */
  readonly suspendedFrames: SuspendedFrame[] = [];
  private readonly suspendedKeys = new Set<string>();
  /** `bpf_throw` calls (noreturn kfuncs). */
  readonly throwInsns = new Set<number>();
  /**
   * `bpf_loop` calls fit for inlining so far: insn → the callback subprog seen on every path,
   * with flags 0 (the kernel's `update_loop_inline_state`); -1 once a path disagreed.
   */
  readonly loopInline = new Map<number, number>();
  /**
   * The caller states of the sync callbacks being explored, outermost first: what a callback's
   * precision backtracking cannot resolve at its entry marks their paths (precision.ts).
   */
  readonly callbackCallers: VerifierState[] = [];
  /** Exploring an async (timer) callback, subprog `asyncSubprog`. */
  inAsyncCallback = false;
  asyncSubprog = 0;
  private readonly accessBase: number[] = [];
  private idGen = 0;
  private readonly regClass: (Uint8Array | undefined)[];
  /** Per slot, per register: the constant every state agreed on so far. */
  private readonly consts: ((bigint | undefined)[] | undefined)[];

  constructor(prog: Program, opts: VerifyOptions) {
    this.prog = prog;
    this.insns = prog.insns;
    this.ops = prog.ops;
    this.type = opts.type ?? prog.type;
    this.opts = opts;
    this.log = new VerifierLog({
      level: opts.logLevel ?? 0,
      ...(opts.logSize !== undefined ? { size: opts.logSize } : {}),
    });
    this.memSize = opts.memSize ?? PACKET_CAPACITY;
    this.stackDepth = prog.subprogs.map(() => 0);
    this.regClass = new Array<Uint8Array | undefined>(prog.insns.length);
    this.consts = new Array<(bigint | undefined)[] | undefined>(prog.insns.length);
  }

  /** A fresh id for a pointer, a reference or a scalar link (`++env->id_gen`). */
  newId(): number {
    return ++this.idGen;
  }

  /** Logs `reason` and returns the rejection to throw (`verbose` + `-EACCES`). */
  fail(insnIdx: number | null, reason: string, code?: ErrnoCode): VerifierReject {
    return new VerifierReject(this.log.fail(insnIdx, reason, code));
  }

  /** Logs a detail line that precedes a failure (`verbose`). */
  verbose(line: string): void {
    this.log.verbose(`${line}\n`);
  }

  /** The map an lddw at `idx` loads. */
  mapAt(idx: number): LdMap | undefined {
    return this.opts.maps?.get(idx);
  }

  /** The signature of the kfunc called at `idx`. */
  kfuncAt(idx: number): KfuncSig | undefined {
    return this.opts.kfuncs?.get(idx);
  }

  /** Function `subprog`'s token escaped (check-coro.ts): verify it as an entry point. */
  escapeFunc(subprog: number): void {
    this.escapedFuncs.add(subprog);
  }

  /** Function `subprog`'s token is stored at +0 / +8 of a frame of `size` bytes. */
  tieFuncToFrame(subprog: number, size: number): void {
    const prev = this.funcFrameSize.get(subprog);
    if (prev === undefined || size < prev) this.funcFrameSize.set(subprog, size);
  }

  /** Queues the resume and destroy functions of a suspended frame (once per state). */
  suspendFrame(f: SuspendedFrame): void {
    const key = `${f.resume}/${f.destroy}|${f.key}`;
    if (this.suspendedKeys.has(key)) return;
    if (this.suspendedKeys.size >= SUSPENDED_STATES_MAX) {
      throw this.fail(
        f.insn,
        `more than ${SUSPENDED_STATES_MAX} distinct frame states suspended holding references`,
        'E2BIG',
      );
    }
    this.suspendedKeys.add(key);
    this.suspendedFrames.push(f);
  }

  /** The access at `idx` goes through a handle that must be a frame of `bytes` bytes. */
  needFrameCheck(idx: number, bytes: number): void {
    const prev = this.frameChecks.get(idx) ?? 0;
    if (bytes > prev) this.frameChecks.set(idx, bytes);
  }

  /** The load at `idx` reads the value of read-only map `mapId` (`bounded`: proven in it). */
  noteRdonlyLoad(idx: number, mapId: number, bounded: boolean): void {
    const ids = this.rdonlyLoads.get(idx) ?? new Set<number>();
    this.rdonlyLoads.set(idx, ids.add(mapId));
    if (!bounded) this.unboundedRdonlyLoads.add(idx);
  }

  /**
   * The run-time region checks (`VerifiedProgram.regionChecks`): loads that may read a
   * read-only map value and either also go through a handle (the frame check accepts the
   * map value too) or read it at an offset the verifier could not bound.
   */
  regionChecks(): Map<number, readonly number[]> {
    const out = new Map<number, readonly number[]>();
    for (const [idx, ids] of this.rdonlyLoads) {
      if (this.frameChecks.has(idx) || this.unboundedRdonlyLoads.has(idx)) {
        out.set(
          idx,
          [...ids].sort((a, b) => a - b),
        );
      }
    }
    return out;
  }

  /**
   * Notes the kind of base register of the memory access at `idx`: a handle or a read-only
   * map value at an unbounded offset (both checked at run time), a frame, a read-only map
   * value at a proven offset (`rdonly`), or another pointer the verifier proved. The run-time
   * check is per insn and accepts only a live frame, a reserved ringbuf record (at its start) or
   * a read-only map value the insn loads from (`regionChecks`), so one insn may not see a
   * run-time checked base and another pointer.
   */
  noteAccessBase(
    idx: number,
    kind: 'handle' | 'frame' | 'rdonly' | 'pointer',
    regno: number,
  ): void {
    const bit = kind === 'handle' ? 1 : kind === 'pointer' ? 2 : 0;
    const seen = this.accessBase[idx] ?? 0;
    if ((seen | bit) === 3) {
      throw this.fail(
        idx,
        `R${regno} is a coroutine handle on one path and a verified pointer on another; the run-time frame check of insn ${idx} would refuse the pointer`,
      );
    }
    this.accessBase[idx] = seen | bit;
  }

  /** Notes the stack a subprog uses (`update_stack_depth`). */
  useStack(subprog: number, bytes: number): void {
    const d = this.stackDepth[subprog] ?? 0;
    if (bytes > d) this.stackDepth[subprog] = bytes;
  }

  /** Some state held a reference or a lock (VerifiedProgram.holdsResources). */
  holdsResources = false;

  /** Joins the registers of `st` (current frame) into the facts of `idx`. */
  recordFacts(idx: number, st: VerifierState): void {
    if (st.refs.length > 0 || st.activeLocks > 0) this.holdsResources = true;
    const f = st.frames[st.curframe];
    if (f === undefined) return;
    let cls = this.regClass[idx];
    let consts = this.consts[idx];
    if (cls === undefined) {
      this.regClass[idx] = cls = new Uint8Array(MAX_BPF_REG);
      this.consts[idx] = consts = new Array<bigint | undefined>(MAX_BPF_REG);
      for (let r = 0; r < MAX_BPF_REG; r++) {
        const reg = f.regs[r] as RegState;
        cls[r] = regClassOf(reg);
        consts[r] = constOf(reg);
      }
      return;
    }
    for (let r = 0; r < MAX_BPF_REG; r++) {
      const reg = f.regs[r] as RegState;
      cls[r] = (cls[r] as number) | regClassOf(reg);
      const c = (consts as (bigint | undefined)[])[r];
      if (c !== undefined && constOf(reg) !== c) (consts as (bigint | undefined)[])[r] = undefined;
    }
  }

  /** The facts per slot, for `VerifiedProgram`. */
  facts(): (InsnFacts | undefined)[] {
    return this.regClass.map((regClass, i) => {
      if (regClass === undefined) return undefined;
      const constants = new Map<number, bigint>();
      this.consts[i]?.forEach((c, r) => {
        if (c !== undefined) constants.set(r, c);
      });
      return { regClass, constants };
    });
  }
}

/** The constant a scalar register holds, if it is one. */
function constOf(reg: RegState): bigint | undefined {
  return reg.type === 'SCALAR_VALUE' && reg.scalar.varOff.mask === 0n
    ? reg.scalar.varOff.value
    : undefined;
}

/** The class bit of one register. */
function regClassOf(reg: RegState): number {
  if (reg.type === 'NOT_INIT') return REG_CLASS_UNINIT;
  if (reg.type === 'SCALAR_VALUE') return REG_CLASS_SCALAR;
  return REG_CLASS_PTR;
}
