/**
 * Joining and widening verifier states, for callbacks that run an unknown number of times
 * (bpf_loop, bpf_for_each_map_elem): the caller's state after the helper must cover the
 * caller's state after 0, 1, 2, ... runs of the callback. do-check.ts computes it as a
 * fixpoint: run the callback from the entry state, join its exit states into the entry, widen
 * what changed, and repeat until the entry covers every exit.
 *
 * Called from: do-check.ts (`verifySyncCallback`).
 *
 * Invariants: the join over-approximates both inputs (every concrete state of either is in
 * it): scalars take the union of their ranges (widened to unknown when `widen`), pointers that
 * differ in kind, offset, object or id become NOT_INIT (unusable), stack bytes that differ
 * become MISC when both are initialised data and INVALID otherwise.
 */

import { regBoundsSync, scalarCopy, SCALAR_UNKNOWN, type Scalar } from './bounds.js';
import { tnumUnion } from './tnum.js';
import { REG_NOT_INIT, regScalar, regWith, type RegState } from './reg-state.js';
import { rangeWithin, type FuncState, type VerifierState } from './states.js';
import { BPF_REG_SIZE, stackSlot, type SlotType, type StackSlot } from './stack.js';
import { tnumIn } from './tnum.js';

const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const maxB = (a: bigint, b: bigint): bigint => (a > b ? a : b);

/** The union of two scalars' ranges. */
function scalarUnion(a: Scalar, b: Scalar): Scalar {
  const r = scalarCopy(a);
  r.umin = minB(a.umin, b.umin);
  r.umax = maxB(a.umax, b.umax);
  r.smin = minB(a.smin, b.smin);
  r.smax = maxB(a.smax, b.smax);
  r.u32Min = Math.min(a.u32Min, b.u32Min);
  r.u32Max = Math.max(a.u32Max, b.u32Max);
  r.s32Min = Math.min(a.s32Min, b.s32Min);
  r.s32Max = Math.max(a.s32Max, b.s32Max);
  r.varOff = tnumUnion(a.varOff, b.varOff);
  regBoundsSync(r);
  return r;
}

/** Whether `a` contains `b`. */
function scalarContainsAll(a: Scalar, b: Scalar): boolean {
  return rangeWithin(a, b) && tnumIn(a.varOff, b.varOff);
}

/** The join of two registers (`widen`: scalars that grew become unknown). */
export function joinReg(a: RegState, b: RegState, widen: boolean): RegState {
  if (a === b) return a;
  if (a.type === 'NOT_INIT' || b.type === 'NOT_INIT') return REG_NOT_INIT;
  if (a.type === 'SCALAR_VALUE' && b.type === 'SCALAR_VALUE') {
    // A coroutine handle only when both are (check-coro.ts).
    const coroHandle = a.coroHandle && b.coroHandle;
    if (scalarContainsAll(a.scalar, b.scalar) && (a.id === b.id || a.id === 0)) {
      const r = a.id === b.id ? a : regWith(a, { id: 0 });
      return r.coroHandle === coroHandle ? r : regWith(r, { coroHandle });
    }
    const r = regScalar(widen ? SCALAR_UNKNOWN : scalarUnion(a.scalar, b.scalar));
    return coroHandle ? regWith(r, { coroHandle }) : r;
  }
  const same =
    a.type === b.type &&
    a.maybeNull === b.maybeNull &&
    a.memRdonly === b.memRdonly &&
    a.memRingbuf === b.memRingbuf &&
    a.memCoro === b.memCoro &&
    a.off === b.off &&
    a.map?.id === b.map?.id &&
    a.memSize === b.memSize &&
    a.frameno === b.frameno &&
    a.subprog === b.subprog &&
    a.btfName === b.btfName &&
    a.id === b.id &&
    a.refObjId === b.refObjId &&
    a.frameId === b.frameId;
  if (!same) return REG_NOT_INIT;
  const range = Math.min(a.range, b.range);
  if (scalarContainsAll(a.scalar, b.scalar)) return range === a.range ? a : regWith(a, { range });
  if (widen) return REG_NOT_INIT;
  return regWith(a, { range, scalar: scalarUnion(a.scalar, b.scalar) });
}

const INVALID_TYPES: readonly SlotType[] = new Array<SlotType>(BPF_REG_SIZE).fill('STACK_INVALID');

/** The join of two stack slots. */
function joinSlot(a: StackSlot, b: StackSlot, widen: boolean): StackSlot {
  if (a === b) return a;
  const aSpill = a.slotType.every((t) => t === 'STACK_SPILL');
  const bSpill = b.slotType.every((t) => t === 'STACK_SPILL');
  if (aSpill && bSpill) {
    const r = joinReg(a.spilledPtr, b.spilledPtr, widen);
    if (r === a.spilledPtr) return a;
    if (r.type !== 'NOT_INIT') return Object.freeze({ slotType: a.slotType, spilledPtr: r });
    return Object.freeze({
      slotType: Object.freeze(INVALID_TYPES.slice()),
      spilledPtr: REG_NOT_INIT,
    });
  }
  const scalarBytes = (s: StackSlot): boolean =>
    !s.slotType.includes('STACK_SPILL') || s.spilledPtr.type === 'SCALAR_VALUE';
  const types = a.slotType.map((ta, j) => {
    const tb = b.slotType[j] as SlotType;
    if (ta === 'STACK_INVALID' || tb === 'STACK_INVALID') return 'STACK_INVALID';
    if (ta === tb && ta !== 'STACK_SPILL') return ta;
    return scalarBytes(a) && scalarBytes(b) ? 'STACK_MISC' : 'STACK_INVALID';
  });
  return Object.freeze({ slotType: Object.freeze(types), spilledPtr: REG_NOT_INIT });
}

/** The join of two frames of the same function and call site. */
function joinFrame(a: FuncState, b: FuncState, widen: boolean): FuncState {
  const regs = a.regs.map((r, i) => joinReg(r, b.regs[i] ?? REG_NOT_INIT, widen));
  const n = Math.max(a.stack.length, b.stack.length);
  const stack: StackSlot[] = [];
  for (let spi = 0; spi < n; spi++) {
    stack.push(joinSlot(stackSlot(a.stack, spi), stackSlot(b.stack, spi), widen));
  }
  return { ...a, regs, stack };
}

/**
 * The join of two states at the same insn with the same frames (callsites), references and
 * locks; undefined when those differ (the caller rejects the program).
 */
export function joinStates(
  a: VerifierState,
  b: VerifierState,
  widen: boolean,
): VerifierState | undefined {
  if (a.curframe !== b.curframe || a.activeLocks !== b.activeLocks) return undefined;
  if (a.refs.length !== b.refs.length || a.refs.some((r, i) => r.id !== b.refs[i]?.id)) {
    return undefined;
  }
  const frames: FuncState[] = [];
  for (let i = 0; i <= a.curframe; i++) {
    const fa = a.frames[i];
    const fb = b.frames[i];
    if (fa === undefined || fb === undefined || fa.callsite !== fb.callsite) return undefined;
    frames.push(joinFrame(fa, fb, widen));
  }
  // Frame slots are not joined: callbacks start and end without them (do-check.ts).
  return { ...a, frames, refs: a.refs.slice(), coroSlots: [] };
}
