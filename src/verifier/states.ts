/**
 * The verifier's path state and state pruning (kernel `struct bpf_func_state`, `struct
 * bpf_verifier_state` and `states_equal` with `regsafe`, `stacksafe`, `refsafe`, `check_ids`,
 * verifier.c; the printer `print_verifier_state`, log.c): a stack of call frames with eleven
 * registers and a stack each, the acquired references and locks, and the store of explored
 * states per instruction (`explored_states`) with the counters of the stats line.
 *
 * Called from: `doCheck` (copy on branch, compare at prune points, print for the log).
 *
 * Invariants: `RegState` and `StackSlot` records are immutable and shared between copies;
 * a `FuncState`'s `regs` and `stack` arrays and a `VerifierState`'s arrays are owned by one
 * state, so `copyState` copies arrays only. `statesEqual(old, cur)` is true only when every
 * path from `cur` is covered by the already verified `old`: old must be at least as wide.
 * Register liveness is not propagated here; without `liveRegs` every register is compared
 * (sound, prunes less than the kernel).
 */

import { tnumIn } from './tnum.js';
import type { JmpHistoryEntry, PrecisionCheckpoint } from './precision.js';
import type { Scalar } from './bounds.js';
import {
  markRegKnownZero,
  REG_NOT_INIT,
  regPtr,
  regStr,
  regUnknownScalar,
  type RegState,
} from './reg-state.js';
import {
  allocatedStack,
  BPF_REG_SIZE,
  isSpilledScalarReg64,
  isStackAllMisc,
  newStack,
  stackSlot,
  stackStr,
  type Stack,
  type StackSlot,
} from './stack.js';

/** `MAX_BPF_REG`: R0–R10. */
export const MAX_BPF_REG = 11;
/** `BPF_REG_FP`. */
export const BPF_REG_FP = 10;
/** `MAX_CALL_FRAMES`. */
export const MAX_CALL_FRAMES = 8;
/** `BPF_COMPLEXITY_LIMIT_STATES`: states kept per insn for unprivileged programs. */
export const BPF_COMPLEXITY_LIMIT_STATES = 64;

/** One call frame (kernel `struct bpf_func_state`). */
export interface FuncState {
  /** R0–R10. */
  readonly regs: RegState[];
  readonly stack: Stack;
  /** Depth of this frame, 0 for the main program. */
  readonly frameno: number;
  /** Insn index of the call that created the frame (`BPF_MAIN_FUNC` = -1 for frame 0). */
  callsite: number;
  /** Subprog this frame runs. */
  subprogno: number;
  /** Frame runs a callback (`in_callback_fn`), printed as ` cb`. */
  inCallbackFn: boolean;
  /** Iterations of a callback verified so far (`callback_depth`). */
  callbackDepth: number;
}

/** Kinds of acquired references (kernel `enum ref_state_type`). */
export type RefType =
  | 'REF_TYPE_PTR'
  | 'REF_TYPE_LOCK'
  | 'REF_TYPE_IRQ'
  /** A bpf_res_spin_lock whose result is not checked yet (res-lock.ts); its id is r0's. */
  | 'REF_TYPE_RES_LOCK';

/** One acquired reference (kernel `struct bpf_reference_state`). */
export interface RefState {
  readonly type: RefType;
  /** The id held by the pointer's `ref_obj_id` (or the lock id). */
  readonly id: number;
  /** Insn that acquired it, for `Unreleased reference id=%d alloc_insn=%d`. */
  readonly insnIdx: number;
  /** Locks: identity of the locked object (map id); 0 otherwise. */
  readonly ptr: number;
}

/**
 * What a store left at a constant offset of an identified coroutine frame on this path
 * (check-coro.ts): a load of exactly `[off, off + size)` gives `reg` back. Never mutated.
 */
export interface CoroSlot {
  /** `RegState.frameId` of the frame. */
  readonly frameId: number;
  /** Offset from the start of the frame. */
  readonly off: number;
  /** 1, 2, 4 or 8 bytes; narrow slots hold scalars, truncated to the size. */
  readonly size: number;
  readonly reg: RegState;
}

/** One path state (kernel `struct bpf_verifier_state`). */
export interface VerifierState {
  /** Frames 0..curframe. */
  readonly frames: FuncState[];
  curframe: number;
  /** Acquired references and locks (`refs`, `acquired_refs`). */
  readonly refs: RefState[];
  /** Number of spin locks held (`active_locks`). */
  activeLocks: number;
  /** Id and object of the held spin lock, 0 when none (`active_lock_id`, `active_lock_ptr`). */
  activeLockId: number;
  activeLockPtr: number;
  /** `bpf_rcu_read_lock` nesting (`active_rcu_lock`). */
  activeRcuLocks: number;
  /** `bpf_preempt_disable` nesting (`active_preempt_locks`). */
  activePreemptLocks: number;
  /** `may_goto` nesting (`may_goto_depth`). */
  mayGotoDepth: number;
  /** Speculative-execution path (`speculative`). */
  speculative: boolean;
  /** Sleepable context (`in_sleepable`). */
  inSleepable: boolean;
  /** Paths still being explored from this state (`branches`). */
  branches: number;
  /** Insn of this state (`insn_idx`). */
  insnIdx: number;
  /** The state this one was derived from (`parent`). */
  parent: VerifierState | undefined;
  /** Recorded coroutine frame slots (check-coro.ts); the array is owned by this state. */
  coroSlots: CoroSlot[];
  /**
   * The checkpoint this state's history segment starts at (kernel `parent` for precision
   * backtracking, precision.ts): the last explored state of the path, or a checkpoint kept
   * for backtracking only where the explored list of its insn was full.
   */
  histParent: VerifierState | PrecisionCheckpoint | undefined;
  /** First insn of the history segment (kernel `first_insn_idx`). */
  firstInsnIdx: number;
  /** The insn executed before `insnIdx` (kernel `last_insn_idx`); -1 at an entry. */
  lastInsnIdx: number;
  /**
   * The segment's jumps, spills and fills, newest first (kernel `jmp_history`, precision.ts);
   * shared with copies, never mutated.
   */
  jmpHistory: JmpHistoryEntry | undefined;
  /** Entries in `jmpHistory` (kernel `insn_hist_end - insn_hist_start`). */
  jmpHistoryCnt: number;
  /** Some scalar of this state is marked precise (precision.ts); not copied. */
  hasPrecise: boolean;
  /** Every scalar of this state and its parents is precise (precision.ts); not copied. */
  allPrecise: boolean;
}

/** A fresh frame: all registers NOT_INIT, R10 = fp of the frame (kernel `init_func_state`). */
export function initFuncState(frameno: number, callsite: number, subprogno: number): FuncState {
  const regs = new Array<RegState>(MAX_BPF_REG).fill(REG_NOT_INIT);
  regs[BPF_REG_FP] = markRegKnownZero(regPtr('PTR_TO_STACK', { frameno }));
  return {
    regs,
    stack: newStack(),
    frameno,
    callsite,
    subprogno,
    inCallbackFn: false,
    callbackDepth: 0,
  };
}

/**
 * The entry state of the main program: R1 = ctx, R10 = fp0 (kernel `do_check_common`).
 *
 * @example
 * verifierStateStr(initVerifierState()) // ' R1=ctx() R10=fp0'
 */
export function initVerifierState(): VerifierState {
  const frame = initFuncState(0, -1, 0);
  frame.regs[1] = regPtr('PTR_TO_CTX');
  return {
    frames: [frame],
    curframe: 0,
    refs: [],
    activeLocks: 0,
    activeLockId: 0,
    activeLockPtr: 0,
    activeRcuLocks: 0,
    activePreemptLocks: 0,
    mayGotoDepth: 0,
    speculative: false,
    inSleepable: false,
    branches: 1,
    insnIdx: 0,
    parent: undefined,
    coroSlots: [],
    histParent: undefined,
    firstInsnIdx: 0,
    lastInsnIdx: -1,
    jmpHistory: undefined,
    jmpHistoryCnt: 0,
    hasPrecise: false,
    allPrecise: false,
  };
}

/**
 * A copy of a frame sharing its immutable registers and slots (kernel `copy_func_state`).
 * Built field by field, in `initFuncState`'s order (one shape; a spread copy costs an order
 * of magnitude more).
 */
export function copyFuncState(f: FuncState): FuncState {
  return {
    regs: f.regs.slice(),
    stack: f.stack.slice(),
    frameno: f.frameno,
    callsite: f.callsite,
    subprogno: f.subprogno,
    inCallbackFn: f.inCallbackFn,
    callbackDepth: f.callbackDepth,
  };
}

/**
 * A copy of a path state (kernel `copy_verifier_state`); `parent` and `branches` are kept.
 * Built field by field, in `initVerifierState`'s order, like `copyFuncState`.
 */
export function copyState(s: VerifierState): VerifierState {
  return {
    frames: s.frames.map(copyFuncState),
    curframe: s.curframe,
    refs: s.refs.slice(),
    activeLocks: s.activeLocks,
    activeLockId: s.activeLockId,
    activeLockPtr: s.activeLockPtr,
    activeRcuLocks: s.activeRcuLocks,
    activePreemptLocks: s.activePreemptLocks,
    mayGotoDepth: s.mayGotoDepth,
    speculative: s.speculative,
    inSleepable: s.inSleepable,
    branches: s.branches,
    insnIdx: s.insnIdx,
    parent: s.parent,
    coroSlots: s.coroSlots.slice(),
    histParent: s.histParent,
    firstInsnIdx: s.firstInsnIdx,
    lastInsnIdx: s.lastInsnIdx,
    jmpHistory: s.jmpHistory,
    jmpHistoryCnt: s.jmpHistoryCnt,
    hasPrecise: false,
    allPrecise: false,
  };
}

/** The running frame (kernel `cur_func`). */
export function curFunc(s: VerifierState): FuncState {
  const f = s.frames[s.curframe];
  if (f === undefined) throw new RangeError(`bug: no frame ${s.curframe}`);
  return f;
}

/**
 * Ends one path from `st` and its ancestors whose last path ended (kernel
 * `update_branch_counts`); a state with `branches` 0 is complete and can prune others.
 */
export function updateBranchCounts(st: VerifierState | undefined): void {
  for (let s = st; s !== undefined; s = s.parent) {
    s.branches--;
    if (s.branches > 0) break;
  }
}

/**
 * A frame as `print_verifier_state` prints it (print_all): ` frame1:` for inner frames, the
 * initialised registers, the used stack slots and ` cb`; with its leading space.
 */
export function funcStateStr(f: FuncState): string {
  let out = f.frameno !== 0 ? ` frame${f.frameno}:` : '';
  f.regs.forEach((r, i) => {
    if (r.type !== 'NOT_INIT') out += ` ${regStr(i, r, undefined, f.frameno)}`;
  });
  out += stackStr(f.stack, f.frameno);
  return out;
}

/**
 * A path state as `print_verifier_state` prints it for frame `frameno` (the current one by
 * default): registers, stack, ` refs=1,2`, ` cb`; with its leading space and no newline, as
 * `VerifierLog.insnState` takes it.
 *
 * @example
 * verifierStateStr(initVerifierState()) // ' R1=ctx() R10=fp0'
 */
export function verifierStateStr(s: VerifierState, frameno = s.curframe): string {
  const f = s.frames[frameno];
  if (f === undefined) return '';
  let out = funcStateStr(f);
  const ids = s.refs.map((r) => r.id).filter((id) => id !== 0);
  if (ids.length > 0 && s.refs[0]?.id !== 0) out += ` refs=${ids.join(',')}`;
  if (f.inCallbackFn) out += ' cb';
  return out;
}

/** How strictly states are compared (kernel `enum exact_level`). */
export type ExactLevel = 'NOT_EXACT' | 'EXACT' | 'RANGE_WITHIN' | 'PRECISE';

/**
 * Levels that prune as the kernel's NOT_EXACT: `PRECISE` is NOT_EXACT with every scalar
 * treated as precise (used for the values recorded in coroutine frame slots, which precision
 * backtracking does not follow).
 */
const loose = (e: ExactLevel): boolean => e === 'NOT_EXACT' || e === 'PRECISE';

/**
 * The old→cur id correspondence built during one comparison (kernel `struct bpf_idmap`).
 * Scalars without an id get fresh temporary ids; they are negative so they never meet real ids.
 */
export class IdMap {
  private readonly map = new Map<number, number>();
  private readonly curSeen = new Set<number>();
  private tmpIdGen = 0;

  /**
   * Whether `oldId` and `curId` are consistent with the pairs seen so far (kernel
   * `check_ids`): both zero, or both set and paired one-to-one.
   */
  checkIds(oldId: number, curId: number): boolean {
    if ((oldId === 0) !== (curId === 0)) return false;
    if (oldId === 0) return true;
    const seen = this.map.get(oldId);
    if (seen !== undefined) return seen === curId;
    if (this.curSeen.has(curId)) return false;
    this.map.set(oldId, curId);
    this.curSeen.add(curId);
    return true;
  }

  /** The cur id `oldId` is paired with so far, if any. */
  paired(oldId: number): number | undefined {
    return this.map.get(oldId);
  }

  /** `check_scalar_ids`: a scalar without an id is linked to no other register. */
  checkScalarIds(oldId: number, curId: number): boolean {
    return this.checkIds(
      oldId !== 0 ? oldId : --this.tmpIdGen,
      curId !== 0 ? curId : --this.tmpIdGen,
    );
  }
}

/** Whether cur's five ranges lie within old's (kernel `range_within`). */
export function rangeWithin(old: Scalar, cur: Scalar): boolean {
  return (
    old.umin <= cur.umin &&
    old.umax >= cur.umax &&
    old.smin <= cur.smin &&
    old.smax >= cur.smax &&
    old.u32Min <= cur.u32Min &&
    old.u32Max >= cur.u32Max &&
    old.s32Min <= cur.s32Min &&
    old.s32Max >= cur.s32Max
  );
}

function scalarEq(a: Scalar, b: Scalar): boolean {
  return (
    a.varOff.value === b.varOff.value &&
    a.varOff.mask === b.varOff.mask &&
    a.umin === b.umin &&
    a.umax === b.umax &&
    a.smin === b.smin &&
    a.smax === b.smax &&
    a.u32Min === b.u32Min &&
    a.u32Max === b.u32Max &&
    a.s32Min === b.s32Min &&
    a.s32Max === b.s32Max
  );
}

/** The fields the kernel compares with `memcmp` up to `var_off`: type, modifiers, off, union. */
function sameHead(a: RegState, b: RegState): boolean {
  return (
    a.type === b.type &&
    a.maybeNull === b.maybeNull &&
    a.memRdonly === b.memRdonly &&
    a.memRingbuf === b.memRingbuf &&
    a.memCoro === b.memCoro &&
    a.coroHandle === b.coroHandle &&
    a.off === b.off &&
    a.map?.id === b.map?.id &&
    a.range === b.range &&
    a.memSize === b.memSize &&
    a.subprog === b.subprog &&
    a.btfName === b.btfName
  );
}

/** Registers equal up to id renaming (kernel `regs_exact`). */
export function regsExact(old: RegState, cur: RegState, idmap: IdMap): boolean {
  return (
    sameHead(old, cur) &&
    scalarEq(old.scalar, cur.scalar) &&
    idmap.checkIds(old.id, cur.id) &&
    idmap.checkIds(old.refObjId, cur.refObjId) &&
    idmap.checkIds(old.frameId, cur.frameId)
  );
}

/**
 * Whether register `cur` is safe wherever `old` was (kernel `regsafe`): NOT_INIT in old
 * matches anything; types (with modifiers) must be equal; an imprecise old scalar matches any
 * scalar, a precise one must contain cur (`range_within` + `tnum_in`, ids consistent); map
 * values and memory need the same map/size and offset and a contained variable offset; packet
 * pointers at least old's range; stack pointers and the rest must be exact.
 */
export function regsafe(
  old: RegState,
  cur: RegState,
  idmap: IdMap,
  exact: ExactLevel = 'NOT_EXACT',
): boolean {
  // The same record without ids is trivially safe (records are shared between states).
  if (old === cur && old.id === 0 && old.refObjId === 0 && old.frameId === 0) return true;
  if (exact === 'EXACT') return regsExact(old, cur, idmap);
  if (old.type === 'NOT_INIT' && (loose(exact) || cur.type === 'NOT_INIT')) return true;
  if (
    old.type !== cur.type ||
    old.maybeNull !== cur.maybeNull ||
    old.memRdonly !== cur.memRdonly ||
    old.memRingbuf !== cur.memRingbuf ||
    old.memCoro !== cur.memCoro ||
    (old.coroHandle && !cur.coroHandle)
  ) {
    return false;
  }
  const contained = (): boolean =>
    rangeWithin(old.scalar, cur.scalar) && tnumIn(old.scalar.varOff, cur.scalar.varOff);
  switch (old.type) {
    case 'SCALAR_VALUE':
      if (!old.precise && exact === 'NOT_EXACT') return true;
      return contained() && idmap.checkScalarIds(old.id, cur.id);
    case 'PTR_TO_MAP_KEY':
    case 'PTR_TO_MAP_VALUE':
    case 'PTR_TO_MEM':
    case 'PTR_TO_BUF':
      return (
        sameHead(old, cur) &&
        contained() &&
        idmap.checkIds(old.id, cur.id) &&
        idmap.checkIds(old.refObjId, cur.refObjId) &&
        idmap.checkIds(old.frameId, cur.frameId)
      );
    case 'PTR_TO_PACKET_META':
    case 'PTR_TO_PACKET':
      if (old.range > cur.range || old.off !== cur.off) return false;
      return idmap.checkIds(old.id, cur.id) && contained();
    case 'PTR_TO_STACK':
      return regsExact(old, cur, idmap) && old.frameno === cur.frameno;
    case 'PTR_TO_ARENA':
      return true;
    case 'NOT_INIT':
    case 'PTR_TO_CTX':
    case 'CONST_PTR_TO_MAP':
    case 'PTR_TO_PACKET_END':
    case 'PTR_TO_FUNC':
    case 'PTR_TO_BTF_ID':
    case 'CONST_PTR_TO_DYNPTR':
      return regsExact(old, cur, idmap);
    default: {
      const never: never = old.type;
      return never;
    }
  }
}

/** An imprecise unknown scalar standing for an all-MISC slot (kernel `unbound_reg`). */
const UNBOUND_REG = regUnknownScalar();

/** The scalar a slot loads as, if any (kernel `scalar_reg_for_stack`). */
function scalarRegForStack(slot: StackSlot, allowUninit: boolean): RegState | undefined {
  if (isSpilledScalarReg64(slot)) return slot.spilledPtr;
  if (isStackAllMisc(slot, allowUninit)) return UNBOUND_REG;
  return undefined;
}

/** Options of the state comparison. */
export interface StatesEqualOptions {
  readonly exact?: ExactLevel;
  /** Bit mask of registers live before the insn (kernel `live_regs_before`); all by default. */
  readonly liveRegs?: number;
  /** `env->allow_uninit_stack`. */
  readonly allowUninitStack?: boolean;
}

/**
 * Whether cur's stack is safe wherever old's was (kernel `stacksafe`). Slots beyond old's
 * allocated stack are ignored; MISC in old accepts ZERO in cur; an 8-byte spilled scalar and
 * an all-MISC slot compare as scalars; spills compare with `regsafe`.
 */
export function stacksafe(
  old: FuncState,
  cur: FuncState,
  idmap: IdMap,
  opts: StatesEqualOptions = {},
): boolean {
  const exact = opts.exact ?? 'NOT_EXACT';
  const allowUninit = opts.allowUninitStack === true;
  const curAllocated = allocatedStack(cur.stack);
  for (let i = 0; i < allocatedStack(old.stack); i++) {
    const spi = Math.floor(i / BPF_REG_SIZE);
    const j = i % BPF_REG_SIZE;
    const os = stackSlot(old.stack, spi);
    const cs = stackSlot(cur.stack, spi);
    const sp = os.spilledPtr;
    if (j === 0 && os === cs && sp.id === 0 && sp.refObjId === 0 && sp.frameId === 0) {
      // The same slot record: equal bytes, and a spill without ids to pair.
      i += BPF_REG_SIZE - 1;
      continue;
    }
    const ot = os.slotType[j];
    const ct = cs.slotType[j];
    if (!loose(exact) && (i >= curAllocated || ot !== ct)) return false;
    if (ot === 'STACK_INVALID') continue;
    if (allowUninit && ot === 'STACK_MISC') continue;
    if (i >= curAllocated) return false;
    const oldReg = scalarRegForStack(os, allowUninit);
    const curReg = scalarRegForStack(cs, allowUninit);
    if (oldReg !== undefined && curReg !== undefined) {
      if (!regsafe(oldReg, curReg, idmap, exact)) return false;
      i += BPF_REG_SIZE - 1 - j;
      continue;
    }
    if (ot === 'STACK_MISC' && ct === 'STACK_ZERO') continue;
    if (ot !== ct) return false;
    if (j !== BPF_REG_SIZE - 1) continue;
    if (ot === 'STACK_SPILL' && !regsafe(os.spilledPtr, cs.spilledPtr, idmap, exact)) return false;
  }
  return true;
}

/** Whether the held references and locks correspond (kernel `refsafe`). */
export function refsafe(old: VerifierState, cur: VerifierState, idmap: IdMap): boolean {
  if (
    old.refs.length !== cur.refs.length ||
    old.activeLocks !== cur.activeLocks ||
    old.activePreemptLocks !== cur.activePreemptLocks ||
    old.activeRcuLocks !== cur.activeRcuLocks
  ) {
    return false;
  }
  if (
    !idmap.checkIds(old.activeLockId, cur.activeLockId) ||
    old.activeLockPtr !== cur.activeLockPtr
  ) {
    return false;
  }
  return old.refs.every((o, i) => {
    const c = cur.refs[i];
    if (c === undefined || o.type !== c.type || !idmap.checkIds(o.id, c.id)) return false;
    return o.type !== 'REF_TYPE_LOCK' || o.ptr === c.ptr;
  });
}

/** Whether frame `cur` is covered by frame `old` (kernel `func_states_equal`). */
export function funcStatesEqual(
  old: FuncState,
  cur: FuncState,
  idmap: IdMap,
  opts: StatesEqualOptions = {},
  liveRegs = opts.liveRegs ?? 0x7ff,
): boolean {
  if (old.callbackDepth > cur.callbackDepth) return false;
  for (let i = 0; i < MAX_BPF_REG; i++) {
    if ((liveRegs & (1 << i)) === 0) continue;
    if (!regsafe(old.regs[i] ?? REG_NOT_INIT, cur.regs[i] ?? REG_NOT_INIT, idmap, opts.exact)) {
      return false;
    }
  }
  return stacksafe(old, cur, idmap, opts);
}

/**
 * Whether every path from `cur` is covered by the verified `old` at the same insn (kernel
 * `states_equal`): same frames and callsites, no speculative state pruning a real one,
 * references alike, and each frame `func_states_equal` under one id map. `liveRegs` applies
 * to the current frame; outer frames compare all registers.
 *
 * @example
 * statesEqual(initVerifierState(), initVerifierState()) // true
 */
export function statesEqual(
  old: VerifierState,
  cur: VerifierState,
  opts: StatesEqualOptions = {},
): boolean {
  if (old.curframe !== cur.curframe) return false;
  if (old.speculative && !cur.speculative) return false;
  if (old.inSleepable !== cur.inSleepable) return false;
  const idmap = new IdMap();
  if (!refsafe(old, cur, idmap)) return false;
  for (let i = 0; i <= old.curframe; i++) {
    const o = old.frames[i];
    const c = cur.frames[i];
    if (o === undefined || c === undefined || o.callsite !== c.callsite) return false;
    const live = i === old.curframe ? (opts.liveRegs ?? 0x7ff) : 0x7ff;
    if (!funcStatesEqual(o, c, idmap, opts, live)) return false;
  }
  // Frame slot values are compared by value: backtracking does not follow them (precision.ts).
  const exact = opts.exact ?? 'NOT_EXACT';
  return coroSlotsSafe(old, cur, idmap, exact === 'NOT_EXACT' ? 'PRECISE' : exact);
}

/**
 * Whether cur's frame slots are safe wherever old's were: every slot old recorded for a frame
 * paired (by the registers and stack compared so far, or by a slot compared here) with one of
 * cur's must be recorded in cur at the same offset and size with a `regsafe` value. A slot of
 * old's frame that nothing of old pairs is unreachable on old's paths (its frame pointer is
 * only in dead registers): loads through handles never give slots back. Slots cur has and old
 * does not are fine (old assumed less).
 */
export function coroSlotsSafe(
  old: VerifierState,
  cur: VerifierState,
  idmap: IdMap,
  exact: ExactLevel,
): boolean {
  let todo = old.coroSlots;
  for (;;) {
    const later: CoroSlot[] = [];
    for (const o of todo) {
      const fid = idmap.paired(o.frameId);
      if (fid === undefined) {
        later.push(o);
        continue;
      }
      const c = cur.coroSlots.find((s) => s.frameId === fid && s.off === o.off);
      if (c === undefined || c.size !== o.size || !regsafe(o.reg, c.reg, idmap, exact)) {
        return false;
      }
    }
    // Comparing a slot that holds a frame pointer may pair more frames: go again.
    if (later.length === 0 || later.length === todo.length) return true;
    todo = later;
  }
}

/** One explored state with its hit/miss counts (kernel `struct bpf_verifier_state_list`). */
export interface ExploredEntry {
  readonly state: VerifierState;
  hitCnt: number;
  missCnt: number;
}

/** Options of `ExploredStates`. */
export interface ExploredStatesOptions {
  /** States kept per insn: `BPF_COMPLEXITY_LIMIT_STATES` for unprivileged, unlimited by default. */
  readonly maxStatesPerInsn?: number;
}

/**
 * The explored (verified or in progress) states per insn (kernel `explored_states`), with the
 * kernel's eviction of states that keep missing (`miss_cnt > hit_cnt * 3 + 3`) and the
 * counters of the stats line.
 *
 * @example
 * const explored = new ExploredStates();
 * if (explored.find(idx, cur) === undefined) explored.add(idx, copyState(cur));
 */
export class ExploredStates {
  /** `total_states`: states ever added. */
  totalStates = 0;
  /** `peak_states`: most states held at once. */
  peakStates = 0;
  /** `max_states_per_insn`: longest list compared against. */
  maxStatesPerInsn = 0;
  /** States held now (`explored_states_size`). */
  size = 0;
  private readonly lists = new Map<number, ExploredEntry[]>();
  private readonly cap: number;

  constructor(opts: ExploredStatesOptions = {}) {
    this.cap = opts.maxStatesPerInsn ?? Infinity;
  }

  /** The states kept for `insnIdx`. */
  get(insnIdx: number): readonly ExploredEntry[] {
    return this.lists.get(insnIdx) ?? [];
  }

  /**
   * A complete (`branches` 0) explored state at `insnIdx` that covers `cur`, counting hits and
   * misses and evicting states that rarely match (kernel `is_state_visited`'s search loop).
   * States still being explored (loops) are skipped; detecting infinite loops is the caller's.
   */
  find(
    insnIdx: number,
    cur: VerifierState,
    opts: StatesEqualOptions = {},
  ): VerifierState | undefined {
    const list = this.lists.get(insnIdx);
    if (list === undefined) return undefined;
    this.maxStatesPerInsn = Math.max(this.maxStatesPerInsn, list.length);
    for (let i = 0; i < list.length; i++) {
      const e = list[i] as ExploredEntry;
      if (e.state.branches > 0) continue;
      if (statesEqual(e.state, cur, opts)) {
        e.hitCnt++;
        return e.state;
      }
      e.missCnt++;
      if (e.missCnt > e.hitCnt * 3 + 3) {
        list.splice(i--, 1);
        this.size--;
      }
    }
    return undefined;
  }

  /**
   * Remembers `state` at `insnIdx`; at the per-insn cap a completed state that pruned least
   * makes room, and when every kept state is still being explored nothing is added (false).
   */
  add(insnIdx: number, state: VerifierState): boolean {
    let list = this.lists.get(insnIdx);
    if (list === undefined) this.lists.set(insnIdx, (list = []));
    if (list.length >= this.cap) {
      // Full: make room by dropping the completed state that pruned least, if any.
      let victim = -1;
      for (let i = 0; i < list.length; i++) {
        const e = list[i] as ExploredEntry;
        if (e.state.branches > 0) continue;
        if (victim < 0 || e.hitCnt < (list[victim] as ExploredEntry).hitCnt) victim = i;
      }
      if (victim < 0) return false;
      list.splice(victim, 1);
      this.size--;
    }
    list.push({ state, hitCnt: 0, missCnt: 0 });
    this.totalStates++;
    this.size++;
    this.peakStates = Math.max(this.peakStates, this.size);
    return true;
  }
}
