/**
 * Conditional jumps on scalars, as the kernel's verifier: `is_branch_taken` (which side of a
 * branch can run) and `reg_set_min_max` (what each side learns about both registers), for every
 * condition in 32 and 64 bits, register or immediate. Split from scalar.ts (ALU transfer).
 *
 * Called from: the verifier's conditional-jump check; tested for soundness against the
 * interpreter's `jmpCond`.
 */

import type { JmpCond, Width } from '../isa/table.js';
import {
  markRegUnbounded,
  rangeBoundsViolation,
  regBoundsSync,
  scalarCopy,
  toS64,
  toU64,
  U64_MAX,
  type RegBounds,
  type Scalar,
} from './bounds.js';
import {
  tnumAnd,
  tnumConst,
  tnumIntersect,
  tnumIsConst,
  tnumOr,
  tnumOverlap,
  tnumSubreg,
  tnumWithSubreg,
  type Tnum,
} from './tnum.js';
import { isRegConst, regConstValue } from './scalar.js';

const maxB = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);

// ---------------------------------------------------------------------------------------------
// Conditional jumps

/** A branch prediction: taken, not taken, or either (kernel `is_branch_taken` result). */
export type BranchTaken = 1 | 0 | -1;

/** A condition or the negation of `set` (the kernel's `BPF_JSET | BPF_X`). */
type CondOp = JmpCond | 'nset';

/** The condition of the fall-through branch (kernel `rev_opcode`). */
const REV: Readonly<Record<CondOp, CondOp>> = {
  eq: 'ne',
  ne: 'eq',
  set: 'nset',
  nset: 'set',
  ge: 'lt',
  gt: 'le',
  le: 'gt',
  lt: 'ge',
  sge: 'slt',
  sgt: 'sle',
  sle: 'sgt',
  slt: 'sge',
};

/** `a OP b` as `b OP' a` (kernel `flip_opcode`). */
const FLIP: Readonly<Record<CondOp, CondOp>> = {
  eq: 'eq',
  ne: 'ne',
  set: 'set',
  nset: 'nset',
  ge: 'le',
  gt: 'lt',
  le: 'ge',
  lt: 'gt',
  sge: 'sle',
  sgt: 'slt',
  sle: 'sge',
  slt: 'sgt',
};

function sameRegBranchTaken(cond: JmpCond, t1: Tnum, smin1: bigint, smax1: bigint): BranchTaken {
  switch (cond) {
    case 'ge':
    case 'le':
    case 'sge':
    case 'sle':
    case 'eq':
      return 1;
    case 'gt':
    case 'lt':
    case 'sgt':
    case 'slt':
    case 'ne':
      return 0;
    case 'set':
      if (tnumIsConst(t1)) return t1.value !== 0n ? 1 : 0;
      return smin1 <= 0n && smax1 >= 0n ? -1 : 1;
  }
}

/** Whether `a == b` at `width` is always (1), never (0) or maybe (-1) true. */
function eqBranchTaken(a: Scalar, b: Scalar, width: Width): BranchTaken {
  const t1 = width === 32 ? tnumSubreg(a.varOff) : a.varOff;
  const t2 = width === 32 ? tnumSubreg(b.varOff) : b.varOff;
  if (tnumIsConst(t1) && tnumIsConst(t2)) return t1.value === t2.value ? 1 : 0;
  return provablyDifferent(a, b, t1, t2, width) ? 0 : -1;
}

/** Whether the values of `a` and `b` (tnums `t1`, `t2` at `width`) cannot be equal. */
function provablyDifferent(a: Scalar, b: Scalar, t1: Tnum, t2: Tnum, width: Width): boolean {
  if (!tnumOverlap(t1, t2)) return true;
  if (width === 64) {
    if (a.umin > b.umax || a.umax < b.umin) return true;
    if (a.smin > b.smax || a.smax < b.smin) return true;
  }
  // For 64-bit jumps the 32-bit ranges may still tell the values apart.
  if (a.u32Min > b.u32Max || a.u32Max < b.u32Min) return true;
  return a.s32Min > b.s32Max || a.s32Max < b.s32Min;
}

/** Everything `is_scalar_branch_taken` decides before simulating both branches. */
function scalarBranchTakenByBounds(a: Scalar, b: Scalar, cond: JmpCond, width: Width): BranchTaken {
  const w32 = width === 32;
  const umin1 = w32 ? BigInt(a.u32Min) : a.umin;
  const umax1 = w32 ? BigInt(a.u32Max) : a.umax;
  const smin1 = w32 ? BigInt(a.s32Min) : a.smin;
  const smax1 = w32 ? BigInt(a.s32Max) : a.smax;
  const umin2 = w32 ? BigInt(b.u32Min) : b.umin;
  const umax2 = w32 ? BigInt(b.u32Max) : b.umax;
  const smin2 = w32 ? BigInt(b.s32Min) : b.smin;
  const smax2 = w32 ? BigInt(b.s32Max) : b.smax;
  switch (cond) {
    case 'eq':
      return eqBranchTaken(a, b, width);
    case 'ne': {
      const eq = eqBranchTaken(a, b, width);
      return eq === -1 ? -1 : eq === 1 ? 0 : 1;
    }
    case 'set': {
      let [x, c] = [a, b];
      if (!isRegConst(c, width)) [x, c] = [b, a];
      if (!isRegConst(c, width)) return -1;
      const t1 = w32 ? tnumSubreg(x.varOff) : x.varOff;
      const val = regConstValue(c, width);
      if ((t1.value & val) !== 0n) return 1;
      return ((t1.mask | t1.value) & val) === 0n ? 0 : -1;
    }
    case 'gt':
      return umin1 > umax2 ? 1 : umax1 <= umin2 ? 0 : -1;
    case 'sgt':
      return smin1 > smax2 ? 1 : smax1 <= smin2 ? 0 : -1;
    case 'lt':
      return umax1 < umin2 ? 1 : umin1 >= umax2 ? 0 : -1;
    case 'slt':
      return smax1 < smin2 ? 1 : smin1 >= smax2 ? 0 : -1;
    case 'ge':
      return umin1 >= umax2 ? 1 : umax1 < umin2 ? 0 : -1;
    case 'sge':
      return smin1 >= smax2 ? 1 : smax1 < smin2 ? 0 : -1;
    case 'le':
      return umax1 <= umin2 ? 1 : umin1 > umax2 ? 0 : -1;
    case 'sle':
      return smax1 <= smin2 ? 1 : smin1 > smax2 ? 0 : -1;
  }
}

/**
 * Whether `if (dst COND src) goto` at `width` is always taken (1), never taken (0) or either
 * (-1) (kernel `is_branch_taken` / `is_scalar_branch_taken` for two scalars). When the
 * ranges do not decide it, both branches are refined as `regSetMinMax` would and a branch
 * whose refined ranges are empty is dead (kernel `simulate_both_branches_taken`). Pass
 * `sameReg` when `dst` and `src` are the same register (`if r1 > r1`).
 *
 * @example
 * isBranchTaken(scalarKnown(3n), scalarKnown(10n), 'lt', 64) // 1
 */
export function isBranchTaken(
  dst: Scalar,
  src: Scalar,
  cond: JmpCond,
  width: Width,
  sameReg = false,
): BranchTaken {
  if (sameReg) {
    const t1 = width === 32 ? tnumSubreg(dst.varOff) : dst.varOff;
    const smin1 = width === 32 ? BigInt(dst.s32Min) : dst.smin;
    const smax1 = width === 32 ? BigInt(dst.s32Max) : dst.smax;
    return sameRegBranchTaken(cond, t1, smin1, smax1);
  }
  const byBounds = scalarBranchTakenByBounds(dst, src, cond, width);
  if (byBounds !== -1) return byBounds;
  // The kernel gives up on set without a constant operand before simulating.
  if (cond === 'set' && !isRegConst(dst, width) && !isRegConst(src, width)) return -1;
  const [falseDst, falseSrc] = refinedPair(dst, src, REV[cond], width);
  if (rangeBoundsViolation(falseDst) || rangeBoundsViolation(falseSrc)) return 1;
  const [trueDst, trueSrc] = refinedPair(dst, src, cond, width);
  if (rangeBoundsViolation(trueDst) || rangeBoundsViolation(trueSrc)) return 0;
  return -1;
}

/** `dst` and `src` refined by `dst OP src` and synced. */
function refinedPair(dst: Scalar, src: Scalar, op: CondOp, width: Width): [RegBounds, RegBounds] {
  const r1 = scalarCopy(dst);
  const r2 = scalarCopy(src);
  regsRefineCondOp(r1, r2, op, width === 32);
  regBoundsSync(r1);
  regBoundsSync(r2);
  return [r1, r2];
}

/** Refines for `a == b`. */
function refineEq(a: RegBounds, b: RegBounds, is32: boolean): void {
  if (is32) {
    a.u32Min = b.u32Min = Math.max(a.u32Min, b.u32Min);
    a.u32Max = b.u32Max = Math.min(a.u32Max, b.u32Max);
    a.s32Min = b.s32Min = Math.max(a.s32Min, b.s32Min);
    a.s32Max = b.s32Max = Math.min(a.s32Max, b.s32Max);
    const t = tnumIntersect(tnumSubreg(a.varOff), tnumSubreg(b.varOff));
    a.varOff = tnumWithSubreg(a.varOff, t);
    b.varOff = tnumWithSubreg(b.varOff, t);
  } else {
    a.umin = b.umin = maxB(a.umin, b.umin);
    a.umax = b.umax = minB(a.umax, b.umax);
    a.smin = b.smin = maxB(a.smin, b.smin);
    a.smax = b.smax = minB(a.smax, b.smax);
    a.varOff = b.varOff = tnumIntersect(a.varOff, b.varOff);
  }
}

/** Refines `a` for `a != val` when `val` is at one of its edges. */
function refineNe(a: RegBounds, val: bigint, is32: boolean): void {
  if (is32) {
    const u = Number(val);
    const sv = u | 0;
    if (a.u32Min === u) a.u32Min = (a.u32Min + 1) >>> 0;
    if (a.u32Max === u) a.u32Max = (a.u32Max - 1) >>> 0;
    if (a.s32Min === sv) a.s32Min = (a.s32Min + 1) | 0;
    if (a.s32Max === sv) a.s32Max = (a.s32Max - 1) | 0;
  } else {
    const sv = toS64(val);
    if (a.umin === val) a.umin = toU64(a.umin + 1n);
    if (a.umax === val) a.umax = toU64(a.umax - 1n);
    if (a.smin === sv) a.smin = toS64(a.smin + 1n);
    if (a.smax === sv) a.smax = toS64(a.smax - 1n);
  }
}

/** Refines `a` for `a & val` (set) or `!(a & val)` (nset). */
function refineSet(a: RegBounds, val: bigint, set: boolean, is32: boolean): void {
  if (set) {
    // Only a single bit tells which bit is set.
    if (val === 0n || (val & (val - 1n)) !== 0n) return;
    a.varOff = is32
      ? tnumWithSubreg(a.varOff, tnumOr(tnumSubreg(a.varOff), tnumConst(val)))
      : tnumOr(a.varOff, tnumConst(val));
    return;
  }
  // Forget the ranges before narrowing the tnum, in case this branch is dead.
  markRegUnbounded(a);
  const notVal = tnumConst(val ^ U64_MAX);
  a.varOff = is32
    ? tnumWithSubreg(a.varOff, tnumAnd(tnumSubreg(a.varOff), notVal))
    : tnumAnd(a.varOff, notVal);
}

/** Refines for `a <= b` (`strict`: `a < b`), unsigned or signed. */
function refineLe(
  a: RegBounds,
  b: RegBounds,
  strict: boolean,
  signed: boolean,
  is32: boolean,
): void {
  if (is32 && signed) {
    const d = strict ? 1 : 0;
    a.s32Max = Math.min(a.s32Max, (b.s32Max - d) | 0);
    b.s32Min = Math.max((a.s32Min + d) | 0, b.s32Min);
  } else if (is32) {
    const d = strict ? 1 : 0;
    a.u32Max = Math.min(a.u32Max, (b.u32Max - d) >>> 0);
    b.u32Min = Math.max((a.u32Min + d) >>> 0, b.u32Min);
  } else if (signed) {
    const d = strict ? 1n : 0n;
    a.smax = minB(a.smax, toS64(b.smax - d));
    b.smin = maxB(toS64(a.smin + d), b.smin);
  } else {
    const d = strict ? 1n : 0n;
    a.umax = minB(a.umax, toU64(b.umax - d));
    b.umin = maxB(toU64(a.umin + d), b.umin);
  }
}

/** Kernel `regs_refine_cond_op`: narrows `reg1` and `reg2` in place for `reg1 OP reg2`. */
function regsRefineCondOp(reg1: RegBounds, reg2: RegBounds, op: CondOp, is32: boolean): void {
  let [a, b] = [reg1, reg2];
  // GE/GT/SGE/SGT reuse the LE/LT/SLE/SLT logic with the operands swapped.
  if (op === 'ge' || op === 'gt' || op === 'sge' || op === 'sgt') {
    op = FLIP[op];
    [a, b] = [b, a];
  }
  const width: Width = is32 ? 32 : 64;
  switch (op) {
    case 'eq':
      refineEq(a, b, is32);
      return;
    case 'ne':
    case 'set':
    case 'nset':
      if (!isRegConst(b, width)) [a, b] = [b, a];
      if (!isRegConst(b, width)) return;
      if (op === 'ne') refineNe(a, regConstValue(b, width), is32);
      else refineSet(a, regConstValue(b, width), op === 'set', is32);
      return;
    case 'le':
    case 'lt':
    case 'sle':
    case 'slt':
      refineLe(a, b, op === 'lt' || op === 'slt', op === 'sle' || op === 'slt', is32);
      return;
    default:
      return;
  }
}

/** The states of both registers on both sides of a conditional jump. */
export interface BranchStates {
  /** `dst` and `src` where the jump is taken. */
  readonly trueDst: Scalar;
  readonly trueSrc: Scalar;
  /** `dst` and `src` where it falls through. */
  readonly falseDst: Scalar;
  readonly falseSrc: Scalar;
}

/**
 * The ranges of `dst` and `src` on the taken and the fall-through side of
 * `if (dst COND src) goto` at `width` (kernel `reg_set_min_max`: `regs_refine_cond_op` on
 * each side, then `reg_bounds_sync`). A side that cannot be taken may come back with crossed
 * ranges (`rangeBoundsViolation`); `isBranchTaken` reports such a side as dead first. With
 * `sameReg` nothing is learned and the inputs come back unchanged.
 *
 * @example
 * const { trueDst } = regSetMinMax(SCALAR_UNKNOWN, scalarKnown(10n), 'lt', 64);
 * trueDst.umax // 9n
 */
export function regSetMinMax(
  dst: Scalar,
  src: Scalar,
  cond: JmpCond,
  width: Width,
  sameReg = false,
): BranchStates {
  if (sameReg) return { trueDst: dst, trueSrc: src, falseDst: dst, falseSrc: src };
  const [falseDst, falseSrc] = refinedPair(dst, src, REV[cond], width);
  const [trueDst, trueSrc] = refinedPair(dst, src, cond, width);
  return { trueDst, trueSrc, falseDst, falseSrc };
}

/**
 * `isBranchTaken` and `regSetMinMax` in one pass, for the verifier's conditional jumps: the
 * refined ranges of both sides are computed once and a side whose ranges cross is dead.
 */
export function condJmpOutcome(
  dst: Scalar,
  src: Scalar,
  cond: JmpCond,
  width: Width,
  sameReg = false,
): { readonly taken: BranchTaken; readonly states: BranchStates | undefined } {
  if (sameReg) {
    return { taken: isBranchTaken(dst, src, cond, width, true), states: undefined };
  }
  const byBounds = scalarBranchTakenByBounds(dst, src, cond, width);
  if (byBounds !== -1) return { taken: byBounds, states: undefined };
  const [falseDst, falseSrc] = refinedPair(dst, src, REV[cond], width);
  const [trueDst, trueSrc] = refinedPair(dst, src, cond, width);
  const states = { trueDst, trueSrc, falseDst, falseSrc };
  // The kernel gives up on set without a constant operand before simulating.
  if (cond === 'set' && !isRegConst(dst, width) && !isRegConst(src, width)) {
    return { taken: -1, states };
  }
  if (rangeBoundsViolation(falseDst) || rangeBoundsViolation(falseSrc)) {
    return { taken: 1, states: undefined };
  }
  if (rangeBoundsViolation(trueDst) || rangeBoundsViolation(trueSrc)) {
    return { taken: 0, states: undefined };
  }
  return { taken: -1, states };
}
