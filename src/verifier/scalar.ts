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
import type { AluOp, Width } from '../isa/table.js';
import {
  markReg32Known,
  markReg32Unbounded,
  markReg64Unbounded,
  markRegKnown,
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
  tnumIsConst,
  tnumLshift,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumRshift,
  tnumSub,
  tnumSubreg,
  tnumSubregIsConst,
  tnumXor,
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
  // Constants fold exactly (the common case in unrolled loops); shifts out of range aside.
  if (isRegConst(dst, width) && (op === 'neg' || isRegConst(src, width))) {
    const b = op === 'neg' ? 0n : regConstValue(src, width);
    const shift = op === 'lsh' || op === 'rsh' || op === 'arsh';
    if (!shift || b < BigInt(width)) {
      return scalarKnown(aluOp(op, width, regConstValue(dst, width), b));
    }
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

/** Whether `s` is a constant at `width` (kernel `is_reg_const`). */
export function isRegConst(s: Scalar, width: Width): boolean {
  return width === 32 ? tnumSubregIsConst(s.varOff) : tnumIsConst(s.varOff);
}

/** The constant value of `s` at `width` (kernel `reg_const_value`). */
export function regConstValue(s: Scalar, width: Width): bigint {
  return width === 32 ? tnumSubreg(s.varOff).value : s.varOff.value;
}
