/**
 * Abstract ALU and conditional-jump semantics on scalars: the kernel's
 * `adjust_scalar_min_max_vals` with every `scalar{32,}_min_max_*` helper and the scalar MOV
 * case of `check_alu_op`, `maybe_fork_scalars`, `is_branch_taken` (including the 2026
 * `simulate_both_branches_taken` dead-branch detection) and `reg_set_min_max` /
 * `regs_refine_cond_op` (verifier.c). MOVSX, narrowing loads and BPF_END live next to the
 * coercions they use, in src/verifier/bounds.ts.
 *
 * Called from the verifier once per ALU or JMP instruction per path. All functions are pure:
 * they take `Scalar` values and return new ones (or an argument unchanged) and never throw.
 *
 * Soundness contract (checked by test/unit/src/verifier/scalar-soundness.test.ts against
 * src/interp/alu.ts): if `scalarContains(dst, x)` and `scalarContains(src, y)` then
 * `scalarContains(adjustScalarMinMaxVals(dst, src, op, w), aluOp(op, w, x, y))`; a branch
 * prediction of 1 or 0 agrees with `jmpCond`; and the refined states of the branch that
 * `jmpCond` takes contain `x` and `y`.
 */

import { aluOp } from '../interp/alu.js';
import type { AluOp, JmpCond, Width } from '../isa/table.js';
import {
  markReg32Known,
  markReg32Unbounded,
  markReg64Unbounded,
  markRegKnown,
  markRegUnbounded,
  rangeBoundsViolation,
  regBoundsSync,
  resetReg32AndTnum,
  resetReg64AndTnum,
  S32_MAX,
  S32_MIN,
  S64_MAX,
  S64_MIN,
  SCALAR_UNKNOWN,
  scalarCopy,
  scalarKnown,
  toS64,
  toU64,
  U32_MAX,
  U64_MAX,
  updateReg32Bounds,
  updateRegBounds,
  zext32To64,
  type RegBounds,
  type Scalar,
} from './bounds.js';
import {
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumConst,
  tnumIntersect,
  tnumIsConst,
  tnumLshift,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumOverlap,
  tnumRshift,
  tnumSub,
  tnumSubreg,
  tnumSubregIsConst,
  tnumWithSubreg,
  tnumXor,
  type Tnum,
} from './tnum.js';

const maxB = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);
const isS64 = (x: bigint): boolean => x >= S64_MIN && x <= S64_MAX;
const isS32 = (x: number): boolean => x >= S32_MIN && x <= S32_MAX;

// ---------------------------------------------------------------------------------------------
// add, sub, mul

function scalar32MinMaxAdd(d: RegBounds, s: Scalar): void {
  const smin = d.s32Min + s.s32Min;
  const smax = d.s32Max + s.s32Max;
  [d.s32Min, d.s32Max] = isS32(smin) && isS32(smax) ? [smin, smax] : [S32_MIN, S32_MAX];
  // Either all additions overflow or none: then the wrapped bounds are still a range.
  const umin = d.u32Min + s.u32Min;
  const umax = d.u32Max + s.u32Max;
  if (umin <= U32_MAX && umax > U32_MAX) {
    d.u32Min = 0;
    d.u32Max = U32_MAX;
  } else {
    d.u32Min = umin >>> 0;
    d.u32Max = umax >>> 0;
  }
}

function scalarMinMaxAdd(d: RegBounds, s: Scalar): void {
  const smin = d.smin + s.smin;
  const smax = d.smax + s.smax;
  [d.smin, d.smax] = isS64(smin) && isS64(smax) ? [smin, smax] : [S64_MIN, S64_MAX];
  const umin = d.umin + s.umin;
  const umax = d.umax + s.umax;
  if (umin <= U64_MAX && umax > U64_MAX) {
    d.umin = 0n;
    d.umax = U64_MAX;
  } else {
    d.umin = toU64(umin);
    d.umax = toU64(umax);
  }
}

function scalar32MinMaxSub(d: RegBounds, s: Scalar): void {
  const smin = d.s32Min - s.s32Max;
  const smax = d.s32Max - s.s32Min;
  [d.s32Min, d.s32Max] = isS32(smin) && isS32(smax) ? [smin, smax] : [S32_MIN, S32_MAX];
  // Either all subtractions underflow or none: then the wrapped bounds are still a range.
  const umin = d.u32Min - s.u32Max;
  const umax = d.u32Max - s.u32Min;
  if (umin < 0 && umax >= 0) {
    d.u32Min = 0;
    d.u32Max = U32_MAX;
  } else {
    d.u32Min = umin >>> 0;
    d.u32Max = umax >>> 0;
  }
}

function scalarMinMaxSub(d: RegBounds, s: Scalar): void {
  const smin = d.smin - s.smax;
  const smax = d.smax - s.smin;
  [d.smin, d.smax] = isS64(smin) && isS64(smax) ? [smin, smax] : [S64_MIN, S64_MAX];
  const umin = d.umin - s.umax;
  const umax = d.umax - s.umin;
  if (umin < 0n && umax >= 0n) {
    d.umin = 0n;
    d.umax = U64_MAX;
  } else {
    d.umin = toU64(umin);
    d.umax = toU64(umax);
  }
}

function scalar32MinMaxMul(d: RegBounds, s: Scalar): void {
  // Products of u32/s32 values are exact in doubles up to 2^53 and compare exactly
  // against the 32-bit limits, so these overflow checks are exact.
  const umax = d.u32Max * s.u32Max;
  const umin = d.u32Min * s.u32Min;
  if (umax > U32_MAX || umin > U32_MAX) {
    d.u32Min = 0;
    d.u32Max = U32_MAX;
  } else {
    d.u32Min = umin;
    d.u32Max = umax;
  }
  const p = [d.s32Min * s.s32Min, d.s32Min * s.s32Max, d.s32Max * s.s32Min, d.s32Max * s.s32Max];
  if (p.every(isS32)) {
    d.s32Min = Math.min(...p);
    d.s32Max = Math.max(...p);
  } else {
    d.s32Min = S32_MIN;
    d.s32Max = S32_MAX;
  }
}

function scalarMinMaxMul(d: RegBounds, s: Scalar): void {
  const umax = d.umax * s.umax;
  const umin = d.umin * s.umin;
  if (umax > U64_MAX || umin > U64_MAX) {
    d.umin = 0n;
    d.umax = U64_MAX;
  } else {
    d.umin = umin;
    d.umax = umax;
  }
  const p0 = d.smin * s.smin;
  const p1 = d.smin * s.smax;
  const p2 = d.smax * s.smin;
  const p3 = d.smax * s.smax;
  if (isS64(p0) && isS64(p1) && isS64(p2) && isS64(p3)) {
    d.smin = minB(minB(p0, p1), minB(p2, p3));
    d.smax = maxB(maxB(p0, p1), maxB(p2, p3));
  } else {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
  }
}

// ---------------------------------------------------------------------------------------------
// div, mod (only reached with a constant, non-zero divisor)

function scalar32MinMaxUdiv(d: RegBounds, s: Scalar): void {
  const c = s.u32Min;
  d.u32Min = Math.floor(d.u32Min / c);
  d.u32Max = Math.floor(d.u32Max / c);
  d.s32Min = S32_MIN;
  d.s32Max = S32_MAX;
  resetReg64AndTnum(d);
}

function scalarMinMaxUdiv(d: RegBounds, s: Scalar): void {
  const c = s.umin;
  d.umin /= c;
  d.umax /= c;
  d.smin = S64_MIN;
  d.smax = S64_MAX;
  resetReg32AndTnum(d);
}

function scalar32MinMaxSdiv(d: RegBounds, s: Scalar): void {
  const c = s.s32Min;
  if (d.s32Min === S32_MIN && c === -1) {
    // S32_MIN / -1 = S32_MIN; anything else in the range makes it unbounded.
    if (d.s32Max !== S32_MIN) {
      d.s32Min = S32_MIN;
      d.s32Max = S32_MAX;
    }
  } else {
    const r1 = Math.trunc(d.s32Min / c);
    const r2 = Math.trunc(d.s32Max / c);
    d.s32Min = Math.min(r1, r2);
    d.s32Max = Math.max(r1, r2);
  }
  d.u32Min = 0;
  d.u32Max = U32_MAX;
  resetReg64AndTnum(d);
}

function scalarMinMaxSdiv(d: RegBounds, s: Scalar): void {
  const c = s.smin;
  if (d.smin === S64_MIN && c === -1n) {
    if (d.smax !== S64_MIN) {
      d.smin = S64_MIN;
      d.smax = S64_MAX;
    }
  } else {
    const r1 = d.smin / c;
    const r2 = d.smax / c;
    d.smin = minB(r1, r2);
    d.smax = maxB(r1, r2);
  }
  d.umin = 0n;
  d.umax = U64_MAX;
  resetReg32AndTnum(d);
}

/** Returns false when the dividend is already below the divisor (result = dividend). */
function scalar32MinMaxUmod(d: RegBounds, s: Scalar): boolean {
  const resMax = s.u32Min - 1;
  if (d.u32Max <= resMax) return false;
  d.u32Min = 0;
  d.u32Max = Math.min(d.u32Max, resMax);
  d.s32Min = S32_MIN;
  d.s32Max = S32_MAX;
  resetReg64AndTnum(d);
  return true;
}

function scalarMinMaxUmod(d: RegBounds, s: Scalar): boolean {
  const resMax = s.umin - 1n;
  if (d.umax <= resMax) return false;
  d.umin = 0n;
  d.umax = minB(d.umax, resMax);
  d.smin = S64_MIN;
  d.smax = S64_MAX;
  resetReg32AndTnum(d);
  return true;
}

function scalar32MinMaxSmod(d: RegBounds, s: Scalar): boolean {
  // |result| < |divisor| and the result takes the dividend's sign.
  const resMaxAbs = Math.abs(s.s32Min) - 1;
  if (d.s32Min >= -resMaxAbs && d.s32Max <= resMaxAbs) return false;
  if (d.s32Min >= 0) {
    d.s32Min = 0;
    d.s32Max = Math.min(d.s32Max, resMaxAbs);
  } else if (d.s32Max <= 0) {
    d.s32Max = 0;
    d.s32Min = Math.max(d.s32Min, -resMaxAbs);
  } else {
    d.s32Min = -resMaxAbs;
    d.s32Max = resMaxAbs;
  }
  d.u32Min = 0;
  d.u32Max = U32_MAX;
  resetReg64AndTnum(d);
  return true;
}

function scalarMinMaxSmod(d: RegBounds, s: Scalar): boolean {
  const c = s.smin;
  const resMaxAbs = (c > 0n ? c : -c) - 1n;
  if (d.smin >= -resMaxAbs && d.smax <= resMaxAbs) return false;
  if (d.smin >= 0n) {
    d.smin = 0n;
    d.smax = minB(d.smax, resMaxAbs);
  } else if (d.smax <= 0n) {
    d.smax = 0n;
    d.smin = maxB(d.smin, -resMaxAbs);
  } else {
    d.smin = -resMaxAbs;
    d.smax = resMaxAbs;
  }
  d.umin = 0n;
  d.umax = U64_MAX;
  resetReg32AndTnum(d);
  return true;
}

// ---------------------------------------------------------------------------------------------
// and, or, xor (the tnum has already been computed into d.varOff)

function s32FromU32(d: RegBounds): void {
  // The u32 range is an s32 range when it does not cross the sign boundary.
  if ((d.u32Min | 0) <= (d.u32Max | 0)) {
    d.s32Min = d.u32Min | 0;
    d.s32Max = d.u32Max | 0;
  } else {
    d.s32Min = S32_MIN;
    d.s32Max = S32_MAX;
  }
}

function s64FromU64(d: RegBounds): void {
  if (toS64(d.umin) <= toS64(d.umax)) {
    d.smin = toS64(d.umin);
    d.smax = toS64(d.umax);
  } else {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
  }
}

type Bitwise = 'and' | 'or' | 'xor';

function scalar32MinMaxBitwise(d: RegBounds, s: Scalar, op: Bitwise): void {
  const v32 = tnumSubreg(d.varOff);
  if (tnumSubregIsConst(s.varOff) && tnumSubregIsConst(d.varOff)) {
    markReg32Known(d, v32.value);
    return;
  }
  const lo = Number(v32.value);
  const hi = Number(v32.value | v32.mask);
  if (op === 'and') {
    d.u32Min = lo;
    d.u32Max = Math.min(d.u32Max, s.u32Max);
  } else if (op === 'or') {
    d.u32Min = Math.max(d.u32Min, s.u32Min);
    d.u32Max = hi;
  } else {
    d.u32Min = lo;
    d.u32Max = hi;
  }
  s32FromU32(d);
}

function scalarMinMaxBitwise(d: RegBounds, s: Scalar, op: Bitwise): void {
  if (tnumIsConst(s.varOff) && tnumIsConst(d.varOff)) {
    markRegKnown(d, d.varOff.value);
    return;
  }
  const hi = d.varOff.value | d.varOff.mask;
  if (op === 'and') {
    d.umin = d.varOff.value;
    d.umax = minB(d.umax, s.umax);
  } else if (op === 'or') {
    d.umin = maxB(d.umin, s.umin);
    d.umax = hi;
  } else {
    d.umin = d.varOff.value;
    d.umax = hi;
  }
  s64FromU64(d);
  updateRegBounds(d);
}

// ---------------------------------------------------------------------------------------------
// lsh, rsh, arsh (only reached with a constant shift below the width)

function scalar32MinMaxLshBounds(d: RegBounds, uminVal: number, umaxVal: number): void {
  d.s32Min = S32_MIN;
  d.s32Max = S32_MAX;
  // If the top bit might be shifted out, we know nothing.
  if (umaxVal > 31 || d.u32Max > 2 ** (31 - umaxVal)) {
    d.u32Min = 0;
    d.u32Max = U32_MAX;
  } else {
    d.u32Min = (d.u32Min * 2 ** uminVal) >>> 0;
    d.u32Max = (d.u32Max * 2 ** umaxVal) >>> 0;
  }
}

function scalar64MinMaxLshBounds(d: RegBounds, uminVal: number, umaxVal: number): void {
  // <<32 keeps the s32 bounds' signs: the compiler's "<<32 s>>32" sign-extension idiom.
  if (uminVal === 32 && umaxVal === 32) {
    d.smax = BigInt(d.s32Max) << 32n;
    d.smin = BigInt(d.s32Min) << 32n;
  } else {
    d.smax = S64_MAX;
    d.smin = S64_MIN;
  }
  if (d.umax > 1n << BigInt(63 - umaxVal)) {
    d.umin = 0n;
    d.umax = U64_MAX;
  } else {
    d.umin = toU64(d.umin << BigInt(uminVal));
    d.umax = toU64(d.umax << BigInt(umaxVal));
  }
}

function scalarShift(d: RegBounds, s: Scalar, op: 'lsh' | 'rsh' | 'arsh', alu32: boolean): void {
  const k = alu32 ? s.u32Min : Number(s.umin);
  const kMax = alu32 ? s.u32Max : Number(s.umax);
  if (alu32) {
    const sub = tnumSubreg(d.varOff);
    if (op === 'lsh') {
      scalar32MinMaxLshBounds(d, k, kMax);
      d.varOff = tnumSubreg(tnumLshift(sub, k));
    } else if (op === 'rsh') {
      d.s32Min = S32_MIN;
      d.s32Max = S32_MAX;
      d.varOff = tnumRshift(sub, k);
      d.u32Min = Math.floor(d.u32Min / 2 ** kMax);
      d.u32Max = Math.floor(d.u32Max / 2 ** k);
    } else {
      d.s32Min >>= k;
      d.s32Max >>= k;
      d.varOff = tnumArshift(sub, k, 32);
      d.u32Min = 0;
      d.u32Max = U32_MAX;
    }
    markReg64Unbounded(d);
    updateReg32Bounds(d);
    return;
  }
  if (op === 'lsh') {
    // The 64-bit part reads the unshifted s32 bounds, so it goes first.
    scalar64MinMaxLshBounds(d, k, kMax);
    scalar32MinMaxLshBounds(d, k, kMax);
    d.varOff = tnumLshift(d.varOff, k);
  } else if (op === 'rsh') {
    d.smin = S64_MIN;
    d.smax = S64_MAX;
    d.varOff = tnumRshift(d.varOff, k);
    d.umin >>= BigInt(kMax);
    d.umax >>= BigInt(k);
    markReg32Unbounded(d);
  } else {
    d.smin >>= BigInt(k);
    d.smax >>= BigInt(k);
    d.varOff = tnumArshift(d.varOff, k, 64);
    d.umin = 0n;
    d.umax = U64_MAX;
    markReg32Unbounded(d);
  }
  updateRegBounds(d);
}

// ---------------------------------------------------------------------------------------------
// adjust_scalar_min_max_vals

/**
 * Whether `src` is a known constant at `width`, with bounds that agree (the kernel's check in
 * `is_safe_to_compute_dst_reg_range`).
 */
function srcIsConst(s: Scalar, width: Width): boolean {
  if (width === 32) {
    return tnumSubregIsConst(s.varOff) && s.s32Min === s.s32Max && s.u32Min === s.u32Max;
  }
  return tnumIsConst(s.varOff) && s.smin === s.smax && s.umin === s.umax;
}

/** Kernel `is_safe_to_compute_dst_reg_range`: ops whose result range can be tracked. */
function isSafeToComputeDstRegRange(op: AluOp, width: Width, src: Scalar): boolean {
  switch (op) {
    case 'add':
    case 'sub':
    case 'neg':
    case 'and':
    case 'xor':
    case 'or':
    case 'mul':
    case 'mov':
      return true;
    case 'div':
    case 'sdiv':
    case 'mod':
    case 'smod':
      return srcIsConst(src, width);
    case 'lsh':
    case 'rsh':
    case 'arsh':
      return srcIsConst(src, width) && src.umax < BigInt(width);
    default: {
      const never: never = op;
      return never;
    }
  }
}

function adjustDiv(d: RegBounds, s: Scalar, signed: boolean, alu32: boolean): void {
  // BPF: x / 0 = 0.
  if (alu32 ? s.u32Min === 0 : s.umin === 0n) {
    markRegKnown(d, 0n);
  } else if (alu32) {
    (signed ? scalar32MinMaxSdiv : scalar32MinMaxUdiv)(d, s);
  } else {
    (signed ? scalarMinMaxSdiv : scalarMinMaxUdiv)(d, s);
  }
}

function adjustMod(d: RegBounds, s: Scalar, signed: boolean, alu32: boolean): void {
  // BPF: x % 0 = x.
  if (alu32 ? s.u32Min === 0 : s.umin === 0n) return;
  if (alu32) (signed ? scalar32MinMaxSmod : scalar32MinMaxUmod)(d, s);
  else (signed ? scalarMinMaxSmod : scalarMinMaxUmod)(d, s);
}

/** The op-specific part of `adjust_scalar_min_max_vals`, in place on `d`. */
function adjustScalar(d: RegBounds, s: Scalar, op: Exclude<AluOp, 'mov'>, alu32: boolean): void {
  switch (op) {
    case 'add':
      scalar32MinMaxAdd(d, s);
      scalarMinMaxAdd(d, s);
      d.varOff = tnumAdd(d.varOff, s.varOff);
      return;
    case 'sub':
      scalar32MinMaxSub(d, s);
      scalarMinMaxSub(d, s);
      d.varOff = tnumSub(d.varOff, s.varOff);
      return;
    case 'neg': {
      const old: Scalar = scalarCopy(d);
      markRegKnown(d, 0n);
      scalar32MinMaxSub(d, old);
      scalarMinMaxSub(d, old);
      d.varOff = tnumNeg(old.varOff);
      return;
    }
    case 'mul':
      d.varOff = tnumMul(d.varOff, s.varOff);
      scalar32MinMaxMul(d, s);
      scalarMinMaxMul(d, s);
      return;
    case 'div':
    case 'sdiv':
      adjustDiv(d, s, op === 'sdiv', alu32);
      return;
    case 'mod':
    case 'smod':
      adjustMod(d, s, op === 'smod', alu32);
      return;
    case 'and':
    case 'or':
    case 'xor':
      d.varOff = (op === 'and' ? tnumAnd : op === 'or' ? tnumOr : tnumXor)(d.varOff, s.varOff);
      scalar32MinMaxBitwise(d, s, op);
      scalarMinMaxBitwise(d, s, op);
      return;
    case 'lsh':
    case 'rsh':
    case 'arsh':
      scalarShift(d, s, op, alu32);
      return;
    default: {
      const never: never = op;
      return never;
    }
  }
}

/**
 * The scalar `dst OP src` at `width` (kernel `adjust_scalar_min_max_vals`, plus the scalar
 * MOV cases of `check_alu_op`). `neg` ignores `src`; `mov` ignores `dst`. For a K-source
 * instruction pass `scalarKnown(immU64(imm))` as `src`. Division, modulo and shifts are only
 * tracked with a constant operand (shifts: below the width); otherwise the result is unknown,
 * as in the kernel.
 *
 * Deviations from the kernel: a constant `mod`/`smod` a constant folds to the constant (the
 * kernel keeps a range); the state is not forked for `and`/`or` of a `[-1, 0]` value (see
 * `maybeForkScalars`); scalar ids (linked registers) are left to the caller.
 *
 * @example
 * const x = adjustScalarMinMaxVals(SCALAR_UNKNOWN, scalarKnown(0xffn), 'and', 64);
 * scalarStr(x) // 'scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))'
 */
export function adjustScalarMinMaxVals(dst: Scalar, src: Scalar, op: AluOp, width: Width): Scalar {
  const alu32 = width === 32;
  if (op === 'mov') {
    if (!alu32) return src;
    const r = scalarCopy(src);
    zext32To64(r);
    regBoundsSync(r);
    return r;
  }
  if (!isSafeToComputeDstRegRange(op, width, src)) return SCALAR_UNKNOWN;
  if ((op === 'mod' || op === 'smod') && isRegConst(dst, width)) {
    // Deviation: the kernel keeps only [0, c-1] for const % const; we fold it.
    const v = aluOp(op, width, regConstValue(dst, width), regConstValue(src, width));
    return scalarKnown(v);
  }
  const d = scalarCopy(dst);
  adjustScalar(d, src, op, alu32);
  // ALU32 results are zero-extended into the 64-bit register.
  if (alu32) zext32To64(d);
  regBoundsSync(d);
  return d;
}

/**
 * The kernel's `maybe_fork_scalars` split, for `and`/`or` with a constant: when `dst` is the
 * 64-bit (or else 32-bit) range `[-1, 0]`, the two states to explore, `[zero, minusOne]`
 * (the kernel pushes the first as a new branch and continues with the second); otherwise
 * `undefined`.
 */
export function maybeForkScalars(dst: Scalar): readonly [Scalar, Scalar] | undefined {
  let alu32: boolean;
  if (dst.smin === -1n && dst.smax === 0n) alu32 = false;
  else if (dst.s32Min === -1 && dst.s32Max === 0) alu32 = true;
  else return undefined;
  const zero = scalarCopy(dst);
  const minusOne = scalarCopy(dst);
  (alu32 ? markReg32Known : markRegKnown)(zero, 0n);
  (alu32 ? markReg32Known : markRegKnown)(minusOne, U64_MAX);
  return [zero, minusOne];
}

// ---------------------------------------------------------------------------------------------
// Conditional jumps

/** A branch prediction: taken, not taken, or either (kernel `is_branch_taken` result). */
export type BranchTaken = 1 | 0 | -1;

/** Whether `s` is a constant at `width` (kernel `is_reg_const`). */
export function isRegConst(s: Scalar, width: Width): boolean {
  return width === 32 ? tnumSubregIsConst(s.varOff) : tnumIsConst(s.varOff);
}

/** The constant value of `s` at `width` (kernel `reg_const_value`). */
export function regConstValue(s: Scalar, width: Width): bigint {
  return width === 32 ? tnumSubreg(s.varOff).value : s.varOff.value;
}

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
