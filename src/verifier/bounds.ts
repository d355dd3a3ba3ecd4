/**
 * The numeric part of the kernel's `struct bpf_reg_state` for a SCALAR_VALUE register: a tnum
 * plus unsigned and signed ranges in 64 and 32 bits, and the kernel's algorithms that keep
 * the five views consistent (`reg_bounds_sync` and its helpers, verifier.c), move between the
 * 32- and 64-bit views (`zext_32_to_64`, `coerce_reg_to_size`, the sign-extending coercions)
 * and print a scalar the way the kernel log does (`print_scalar_ranges`, log.c).
 *
 * The verifier keeps `Scalar` values immutable. The kernel's algorithms mutate a register in
 * place, so the helpers here take a `RegBounds` (a mutable copy made with `scalarCopy`) and
 * change it; the `scalar*` functions (`scalarMovsx`, `scalarCoerce`, `scalarByteSwap`, …) and
 * src/verifier/scalar.ts (ALU ops and branches) are the pure API over `Scalar`.
 *
 * Invariants of a scalar that holds at least one value: `umin <= umax`, `smin <= smax`,
 * `u32Min <= u32Max`, `s32Min <= s32Max`, and the tnum has a member in all four ranges. A
 * scalar describes the set of u64 values `v` that satisfy all five (`scalarContains`).
 * After a refinement on an impossible branch the ranges may cross (`rangeBoundsViolation`).
 *
 * Representation: 64-bit fields are bigints (`umin`/`umax` in `[0, 2^64)`, `smin`/`smax` in
 * `[-2^63, 2^63)`); 32-bit fields are numbers (`u32Min`/`u32Max` in `[0, 2^32)`,
 * `s32Min`/`s32Max` in `[-2^31, 2^31)`).
 */

import type { Width } from '../isa/table.js';
import {
  hex,
  TNUM_UNKNOWN,
  tnumBswap16,
  tnumBswap32,
  tnumBswap64,
  tnumCast,
  tnumClearSubreg,
  tnumConst,
  tnumConstSubreg,
  tnumContains,
  tnumIntersect,
  tnumIsConst,
  tnumIsUnknown,
  tnumOr,
  tnumRange,
  tnumStep,
  tnumStr,
  tnumSubreg,
  tnumSubregIsConst,
  type Tnum,
} from './tnum.js';

/** The numeric state of a scalar register (kernel `struct bpf_reg_state`, scalar fields). */
export interface Scalar {
  /** Known and unknown bits (kernel `var_off`). */
  readonly varOff: Tnum;
  readonly smin: bigint;
  readonly smax: bigint;
  readonly umin: bigint;
  readonly umax: bigint;
  readonly s32Min: number;
  readonly s32Max: number;
  readonly u32Min: number;
  readonly u32Max: number;
}

/** A scalar being updated in place by the kernel-style helpers of this file. */
export type RegBounds = { -readonly [K in keyof Scalar]: Scalar[K] };

/** The kernel's `S64_MIN`, as the bigint the 64-bit signed fields hold. */
export const S64_MIN = -(1n << 63n);
/** The kernel's `S64_MAX`. */
export const S64_MAX = (1n << 63n) - 1n;
/** The kernel's `U64_MAX`. */
export const U64_MAX = (1n << 64n) - 1n;
/** The kernel's `S32_MIN`, as the number the 32-bit signed fields hold. */
export const S32_MIN = -0x8000_0000;
/** The kernel's `S32_MAX`. */
export const S32_MAX = 0x7fff_ffff;
/** The kernel's `U32_MAX`. */
export const U32_MAX = 0xffff_ffff;

const M32 = 0xffff_ffffn;
const HI32 = U64_MAX ^ M32;

/** `(u64)x` in C. */
export const toU64 = (x: bigint): bigint => BigInt.asUintN(64, x);
/** `(s64)x` in C. */
export const toS64 = (x: bigint): bigint => BigInt.asIntN(64, x);
/** `(u32)x` in C, for a 64-bit `x`. */
export const lowU32 = (x: bigint): number => Number(x & M32);
/** `(s32)x` in C, for a 64-bit `x`. */
export const lowS32 = (x: bigint): number => Number(x & M32) | 0;

const maxB = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const minB = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** A mutable copy of `s`. */
export function scalarCopy(s: Scalar): RegBounds {
  return {
    varOff: s.varOff,
    smin: s.smin,
    smax: s.smax,
    umin: s.umin,
    umax: s.umax,
    s32Min: s.s32Min,
    s32Max: s.s32Max,
    u32Min: s.u32Min,
    u32Max: s.u32Max,
  };
}

/**
 * The scalar holding exactly `imm` (kernel `__mark_reg_known` on a fresh register); `imm` is
 * reduced mod 2^64.
 *
 * @example
 * scalarStr(scalarKnown(-1n)) // '-1'
 */
export function scalarKnown(imm: bigint): Scalar {
  const v = toU64(imm);
  if (v < SMALL_KNOWN_COUNT) {
    const i = Number(v);
    let c = SMALL_KNOWN[i];
    if (c === undefined) {
      const r = scalarCopy(SCALAR_UNKNOWN);
      markRegKnown(r, v);
      SMALL_KNOWN[i] = c = Object.freeze(r);
    }
    return c;
  }
  const r = scalarCopy(SCALAR_UNKNOWN);
  markRegKnown(r, v);
  return r;
}

/** Shared records of the small constants (loop counters, offsets, flags): fewer allocations. */
const SMALL_KNOWN_COUNT = 1024n;
const SMALL_KNOWN: (Scalar | undefined)[] = [];

/** A scalar that may hold any value (kernel `__mark_reg_unknown`). */
export const SCALAR_UNKNOWN: Scalar = Object.freeze({
  varOff: TNUM_UNKNOWN,
  smin: S64_MIN,
  smax: S64_MAX,
  umin: 0n,
  umax: U64_MAX,
  s32Min: S32_MIN,
  s32Max: S32_MAX,
  u32Min: 0,
  u32Max: U32_MAX,
});

/** Sets `r` to exactly `imm` (kernel `___mark_reg_known` / `__mark_reg_known`). */
export function markRegKnown(r: RegBounds, imm: bigint): void {
  const v = toU64(imm);
  r.varOff = tnumConst(v);
  r.smin = r.smax = toS64(v);
  r.umin = r.umax = v;
  r.s32Min = r.s32Max = lowS32(v);
  r.u32Min = r.u32Max = lowU32(v);
}

/** Sets the low 32 bits of `r` to `imm`, leaving the 64-bit ranges (kernel `__mark_reg32_known`). */
export function markReg32Known(r: RegBounds, imm: bigint): void {
  r.varOff = tnumConstSubreg(r.varOff, imm & M32);
  r.s32Min = r.s32Max = lowS32(imm);
  r.u32Min = r.u32Max = lowU32(imm);
}

/** Forgets the 64-bit ranges of `r` (kernel `__mark_reg64_unbounded`). */
export function markReg64Unbounded(r: RegBounds): void {
  r.smin = S64_MIN;
  r.smax = S64_MAX;
  r.umin = 0n;
  r.umax = U64_MAX;
}

/** Forgets the 32-bit ranges of `r` (kernel `__mark_reg32_unbounded`). */
export function markReg32Unbounded(r: RegBounds): void {
  r.s32Min = S32_MIN;
  r.s32Max = S32_MAX;
  r.u32Min = 0;
  r.u32Max = U32_MAX;
}

/** Forgets all ranges of `r` but keeps its tnum (kernel `__mark_reg_unbounded`). */
export function markRegUnbounded(r: RegBounds): void {
  markReg64Unbounded(r);
  markReg32Unbounded(r);
}

/** Forgets everything about `r` (kernel `__mark_reg_unknown`, numeric part). */
export function markRegUnknown(r: RegBounds): void {
  r.varOff = TNUM_UNKNOWN;
  markRegUnbounded(r);
}

/** Forgets the 64-bit ranges and the tnum (kernel `reset_reg64_and_tnum`). */
export function resetReg64AndTnum(r: RegBounds): void {
  markReg64Unbounded(r);
  r.varOff = TNUM_UNKNOWN;
}

/** Forgets the 32-bit ranges and the tnum (kernel `reset_reg32_and_tnum`). */
export function resetReg32AndTnum(r: RegBounds): void {
  markReg32Unbounded(r);
  r.varOff = TNUM_UNKNOWN;
}

/** Tightens the 32-bit ranges from the tnum (kernel `__update_reg32_bounds`). */
export function updateReg32Bounds(r: RegBounds): void {
  const v = Number(r.varOff.value & M32);
  const m = Number(r.varOff.mask & M32);
  // min signed is max(sign bit) | min(other bits); max signed the other way round.
  r.s32Min = Math.max(r.s32Min, v | (m & 0x8000_0000) | 0);
  r.s32Max = Math.min(r.s32Max, v | (m & 0x7fff_ffff) | 0);
  r.u32Min = Math.max(r.u32Min, v);
  r.u32Max = Math.min(r.u32Max, (v | m) >>> 0);
}

/**
 * Tightens the 64-bit ranges from the tnum (kernel `__update_reg64_bounds`), and makes `r` a
 * constant when the u64 range and the tnum share exactly one value (`tnum_step`, 2026).
 */
export function updateReg64Bounds(r: RegBounds): void {
  const { value, mask } = r.varOff;
  r.smin = maxB(r.smin, toS64(value | (mask & (1n << 63n))));
  r.smax = minB(r.smax, toS64(value | (mask & S64_MAX)));
  r.umin = maxB(r.umin, value);
  const tmax = value | mask;
  r.umax = minB(r.umax, tmax);

  const next = tnumStep(r.varOff, r.umin);
  const uminInTnum = tnumContains(r.varOff, r.umin);
  if (uminInTnum && next > r.umax) {
    // The u64 range and the tnum overlap only in umin.
    markRegKnown(r, r.umin);
  } else if (!uminInTnum && next === tmax) {
    // They overlap only in the largest member of the tnum.
    markRegKnown(r, tmax);
  } else if (!uminInTnum && next <= r.umax && tnumStep(r.varOff, next) > r.umax) {
    // They overlap only in one member strictly between umin and umax.
    markRegKnown(r, next);
  }
}

/** Tightens all ranges from the tnum (kernel `__update_reg_bounds`). */
export function updateRegBounds(r: RegBounds): void {
  updateReg32Bounds(r);
  updateReg64Bounds(r);
}

/**
 * Learns 32-bit ranges from the 64-bit ones and s32 from u32 and back (kernel
 * `__reg32_deduce_bounds`).
 */
export function reg32DeduceBounds(r: RegBounds): void {
  // If the upper 32 bits are the same across the u64 (s64) range, the low halves form a range.
  if (r.umin >> 32n === r.umax >> 32n) {
    r.u32Min = Math.max(r.u32Min, lowU32(r.umin));
    r.u32Max = Math.min(r.u32Max, lowU32(r.umax));
    if (lowS32(r.umin) <= lowS32(r.umax)) {
      r.s32Min = Math.max(r.s32Min, lowS32(r.umin));
      r.s32Max = Math.min(r.s32Max, lowS32(r.umax));
    }
  }
  if (r.smin >> 32n === r.smax >> 32n) {
    if (lowU32(r.smin) <= lowU32(r.smax)) {
      r.u32Min = Math.max(r.u32Min, lowU32(r.smin));
      r.u32Max = Math.min(r.u32Max, lowU32(r.smax));
    }
    if (lowS32(r.smin) <= lowS32(r.smax)) {
      r.s32Min = Math.max(r.s32Min, lowS32(r.smin));
      r.s32Max = Math.min(r.s32Max, lowS32(r.smax));
    }
  }
  // Upper halves are two consecutive numbers while the low halves go from negative to
  // positive: the low halves still form an s32 range, e.g. s64 [-1, 1].
  if (
    (lowU32(r.umin >> 32n) + 1) >>> 0 === lowU32(r.umax >> 32n) &&
    lowS32(r.umin) < 0 &&
    lowS32(r.umax) >= 0
  ) {
    r.s32Min = Math.max(r.s32Min, lowS32(r.umin));
    r.s32Max = Math.min(r.s32Max, lowS32(r.umax));
  }
  if (
    (lowU32(r.smin >> 32n) + 1) >>> 0 === lowU32(r.smax >> 32n) &&
    lowS32(r.smin) < 0 &&
    lowS32(r.smax) >= 0
  ) {
    r.s32Min = Math.max(r.s32Min, lowS32(r.smin));
    r.s32Max = Math.min(r.s32Max, lowS32(r.smax));
  }
  // A u32 range that does not cross the sign boundary is an s32 range too.
  if ((r.u32Min | 0) <= (r.u32Max | 0)) {
    r.s32Min = Math.max(r.s32Min, r.u32Min | 0);
    r.s32Max = Math.min(r.s32Max, r.u32Max | 0);
  }
  // And an s32 range that does not cross it is a u32 range.
  if (r.s32Min >>> 0 <= r.s32Max >>> 0) {
    r.u32Min = Math.max(r.u32Min, r.s32Min >>> 0);
    r.u32Max = Math.min(r.u32Max, r.s32Max >>> 0);
  } else if (r.u32Max < r.s32Min >>> 0) {
    // The u32 range overlaps only the non-negative part of the s32 range.
    r.s32Min = r.u32Min | 0;
    r.u32Max = Math.min(r.u32Max, r.s32Max >>> 0);
  } else if (r.s32Max >>> 0 < r.u32Min) {
    // The u32 range overlaps only the negative part of the s32 range.
    r.s32Max = r.u32Max | 0;
    r.u32Min = Math.max(r.u32Min, r.s32Min >>> 0);
  }
}

/** Learns s64 from u64 and back (kernel `__reg64_deduce_bounds`). */
export function reg64DeduceBounds(r: RegBounds): void {
  if (toS64(r.umin) <= toS64(r.umax)) {
    r.smin = maxB(r.smin, toS64(r.umin));
    r.smax = minB(r.smax, toS64(r.umax));
  }
  const sminU = toU64(r.smin);
  const smaxU = toU64(r.smax);
  if (sminU <= smaxU) {
    r.umin = maxB(r.umin, sminU);
    r.umax = minB(r.umax, smaxU);
  } else if (r.umax < sminU) {
    // The u64 range overlaps only the non-negative part of the s64 range.
    r.smin = toS64(r.umin);
    r.umax = minB(r.umax, smaxU);
  } else if (smaxU < r.umin) {
    // The u64 range overlaps only the negative part of the s64 range.
    r.smax = toS64(r.umax);
    r.umin = maxB(r.umin, sminU);
  }
}

/** Tightens the 64-bit ranges with the 32-bit ones (kernel `__reg_deduce_mixed_bounds`). */
export function regDeduceMixedBounds(r: RegBounds): void {
  const u32Min = BigInt(r.u32Min);
  const u32Max = BigInt(r.u32Max);
  r.umin = maxB(r.umin, (r.umin & HI32) | u32Min);
  r.umax = minB(r.umax, (r.umax & HI32) | u32Max);
  r.smin = maxB(r.smin, toS64((toU64(r.smin) & HI32) | u32Min));
  r.smax = minB(r.smax, toS64((toU64(r.smax) & HI32) | u32Max));
  // In [S32_MIN, S32_MAX] as s64 with a non-negative low half, the upper half must be 0.
  if (r.s32Min >= 0 && r.smin >= BigInt(S32_MIN) && r.smax <= BigInt(S32_MAX)) {
    r.smin = r.umin = BigInt(r.s32Min);
    r.smax = r.umax = BigInt(r.s32Max);
    r.varOff = tnumIntersect(r.varOff, tnumRange(r.umin, r.umax));
  }
}

/** Exchanges knowledge between the four ranges (kernel `__reg_deduce_bounds`). */
export function regDeduceBounds(r: RegBounds): void {
  reg32DeduceBounds(r);
  reg64DeduceBounds(r);
  regDeduceMixedBounds(r);
}

/** Learns tnum bits from the unsigned ranges (kernel `__reg_bound_offset`). */
export function regBoundOffset(r: RegBounds): void {
  const var64 = tnumIntersect(r.varOff, tnumRange(r.umin, r.umax));
  const var32 = tnumIntersect(tnumSubreg(var64), tnumRange(BigInt(r.u32Min), BigInt(r.u32Max)));
  r.varOff = tnumOr(tnumClearSubreg(var64), var32);
}

/**
 * Makes the tnum and the four ranges agree as far as the kernel can (kernel
 * `reg_bounds_sync`): ranges from the tnum, three rounds of range deduction, tnum from the
 * ranges, ranges from the tnum again.
 */
export function regBoundsSync(r: RegBounds): void {
  if (r.varOff.mask === 0n) {
    const v = r.varOff.value;
    const sv = toS64(v);
    const lo = lowU32(v);
    const slo = lowS32(v);
    if (
      r.umin <= v &&
      v <= r.umax &&
      r.smin <= sv &&
      sv <= r.smax &&
      r.u32Min <= lo &&
      lo <= r.u32Max &&
      r.s32Min <= slo &&
      slo <= r.s32Max
    ) {
      // A constant inside its ranges: every range is the value, as the full sync finds.
      markRegKnown(r, v);
      return;
    }
  }
  updateRegBounds(r);
  // The kernel runs three rounds; a round that changes nothing makes the rest no-ops.
  for (let round = 0; round < 3; round++) {
    const { umin, umax, smin, smax, u32Min, u32Max, s32Min, s32Max, varOff } = r;
    regDeduceBounds(r);
    if (
      r.umin === umin &&
      r.umax === umax &&
      r.smin === smin &&
      r.smax === smax &&
      r.u32Min === u32Min &&
      r.u32Max === u32Max &&
      r.s32Min === s32Min &&
      r.s32Max === s32Max &&
      r.varOff === varOff
    ) {
      break;
    }
  }
  regBoundOffset(r);
  updateRegBounds(r);
}

/** Copies the 32-bit ranges into the 64-bit ones (kernel `__reg_assign_32_into_64`). */
export function regAssign32Into64(r: RegBounds): void {
  r.umin = BigInt(r.u32Min);
  r.umax = BigInt(r.u32Max);
  // Pull the s32 range only if it is non-negative; the tnum refines it later otherwise.
  if (r.s32Min >= 0 && r.s32Max >= 0) {
    r.smin = BigInt(r.s32Min);
    r.smax = BigInt(r.s32Max);
  } else {
    r.smin = 0n;
    r.smax = BigInt(U32_MAX);
  }
}

/** The result of an ALU32 operation zero-extended to 64 bits (kernel `zext_32_to_64`). */
export function zext32To64(r: RegBounds): void {
  r.varOff = tnumSubreg(r.varOff);
  regAssign32Into64(r);
}

/**
 * Truncates `r` to its low `size` bytes, zero-extended (kernel `coerce_reg_to_size`), as a
 * narrow load or a 16/32-bit byte swap does. `size` is 1, 2 or 4.
 */
export function coerceRegToSize(r: RegBounds, size: number): void {
  r.varOff = tnumCast(r.varOff, size);
  const mask = (1n << BigInt(size * 8)) - 1n;
  if ((r.umin & ~mask) === (r.umax & ~mask)) {
    r.umin &= mask;
    r.umax &= mask;
  } else {
    r.umin = 0n;
    r.umax = mask;
  }
  r.smin = r.umin;
  r.smax = r.umax;
  // Below 32 bits the subregister is truncated too: take it from the 64-bit bounds.
  if (size < 4) markReg32Unbounded(r);
  regBoundsSync(r);
}

const sext = (bits: number, v: bigint): bigint => BigInt.asIntN(bits, v);

/** Sign-extension of `size` bytes with unknown bounds (kernel `set_sext64_default_val`). */
function setSext64DefaultVal(r: RegBounds, size: number): void {
  const half = 2 ** (size * 8 - 1);
  r.smin = BigInt(-half);
  r.s32Min = -half | 0;
  r.smax = BigInt(half - 1);
  r.s32Max = (half - 1) | 0;
  r.umin = 0n;
  r.u32Min = 0;
  r.umax = U64_MAX;
  r.u32Max = U32_MAX;
  r.varOff = TNUM_UNKNOWN;
}

/**
 * Replaces `r` by its low `size` bytes sign-extended to 64 bits (kernel
 * `coerce_reg_to_size_sx`), as `movsx` to 64 bits and `ldsx` do. `size` is 1, 2 or 4.
 */
export function coerceRegToSizeSx(r: RegBounds, size: number): void {
  const bits = size * 8;
  if (tnumIsConst(r.varOff)) {
    markRegKnown(r, sext(bits, r.varOff.value));
    return;
  }
  const b = BigInt(bits);
  if (toU64(r.smax) >> b !== toU64(r.smin) >> b) {
    setSext64DefaultVal(r, size);
    return;
  }
  const initMax = sext(bits, r.smax);
  const initMin = sext(bits, r.smin);
  const smax = maxB(initMax, initMin);
  const smin = minB(initMax, initMin);
  if (smax >= 0n !== smin >= 0n) {
    setSext64DefaultVal(r, size);
    return;
  }
  r.smin = smin;
  r.smax = smax;
  r.s32Min = lowS32(smin);
  r.s32Max = lowS32(smax);
  r.umin = toU64(smin);
  r.umax = toU64(smax);
  r.u32Min = lowU32(smin);
  r.u32Max = lowU32(smax);
  r.varOff = tnumRange(r.umin, r.umax);
}

/** Sign-extension of `size` bytes within 32 bits (kernel `set_sext32_default_val`). */
function setSext32DefaultVal(r: RegBounds, size: number): void {
  const half = 1 << (size * 8 - 1);
  r.s32Min = -half;
  r.s32Max = half - 1;
  r.u32Min = 0;
  r.u32Max = U32_MAX;
  r.varOff = tnumSubreg(TNUM_UNKNOWN);
}

/**
 * Replaces the low 32 bits of `r` by its low `size` bytes sign-extended to 32 bits (kernel
 * `coerce_subreg_to_size_sx`), as 32-bit `movsx` does before zero extension. `size` is 1 or 2.
 * The 64-bit ranges are left for `zext32To64` to replace.
 */
export function coerceSubregToSizeSx(r: RegBounds, size: number): void {
  const bits = size * 8;
  if (tnumIsConst(r.varOff)) {
    const v = sext(bits, r.varOff.value);
    r.varOff = tnumConst(v);
    r.s32Min = r.s32Max = lowS32(v);
    r.u32Min = r.u32Max = lowU32(v);
    return;
  }
  if (r.s32Max >>> bits !== r.s32Min >>> bits) {
    setSext32DefaultVal(r, size);
    return;
  }
  const shift = 32 - bits;
  const initMax = (r.s32Max << shift) >> shift;
  const initMin = (r.s32Min << shift) >> shift;
  const smax = Math.max(initMax, initMin);
  const smin = Math.min(initMax, initMin);
  if (smin >= 0 !== smax >= 0) {
    setSext32DefaultVal(r, size);
    return;
  }
  r.s32Min = smin;
  r.s32Max = smax;
  r.u32Min = smin >>> 0;
  r.u32Max = smax >>> 0;
  r.varOff = tnumSubreg(tnumRange(toU64(BigInt(smin)), toU64(BigInt(smax))));
}

/**
 * `movsx`: the low `bits` of `src` sign-extended, to 64 bits for width 64 (kernel
 * `coerce_reg_to_size_sx`), to 32 bits and then zero-extended for width 32 (kernel
 * `coerce_subreg_to_size_sx`, `zext_32_to_64`, `reg_bounds_sync`).
 *
 * @example
 * scalarStr(scalarMovsx(scalarKnown(0xffn), 64, 8)) // '-1'
 */
export function scalarMovsx(src: Scalar, width: Width, bits: 8 | 16 | 32): Scalar {
  const r = scalarCopy(src);
  if (width === 64) {
    coerceRegToSizeSx(r, bits / 8);
    return r;
  }
  if (bits !== 32) coerceSubregToSizeSx(r, bits / 8);
  zext32To64(r);
  regBoundsSync(r);
  return r;
}

/**
 * `ldsx` of a scalar: the low `size` bytes sign-extended to 64 bits (kernel
 * `coerce_reg_to_size_sx`). `size` is 1, 2 or 4.
 */
export function scalarCoerceSx(s: Scalar, size: 1 | 2 | 4): Scalar {
  const r = scalarCopy(s);
  coerceRegToSizeSx(r, size);
  return r;
}

/** The low `size` bytes of `s`, zero-extended (kernel `coerce_reg_to_size`). */
export function scalarCoerce(s: Scalar, size: 1 | 2 | 4): Scalar {
  const r = scalarCopy(s);
  coerceRegToSize(r, size);
  return r;
}

/**
 * BPF_END on a little-endian host (kernel `scalar_byte_swap` + `reg_bounds_sync`): `le`
 * truncates to `bits`, `be` and `swap` byte-swap the low `bits` through the tnum and
 * re-derive the ranges from it.
 */
export function scalarByteSwap(
  dst: Scalar,
  order: 'le' | 'be' | 'swap',
  bits: 16 | 32 | 64,
): Scalar {
  const r = scalarCopy(dst);
  if (order !== 'le') {
    r.varOff = (bits === 16 ? tnumBswap16 : bits === 32 ? tnumBswap32 : tnumBswap64)(r.varOff);
    markRegUnbounded(r);
  }
  if (bits !== 64) coerceRegToSize(r, bits / 8);
  regBoundsSync(r);
  return r;
}

/**
 * Whether some range of `s` is empty (kernel `range_bounds_violation`): `s` holds no value,
 * which after a branch refinement means the branch cannot be taken.
 */
export function rangeBoundsViolation(s: Scalar): boolean {
  return s.umin > s.umax || s.smin > s.smax || s.u32Min > s.u32Max || s.s32Min > s.s32Max;
}

/**
 * Why `s` breaks the verifier's invariants, or `undefined` when it does not (kernel
 * `reg_bounds_sanity_check`, the message part).
 */
export function regBoundsSanityCheck(s: Scalar): string | undefined {
  if (rangeBoundsViolation(s)) return 'range bounds violation';
  if (tnumIsConst(s.varOff)) {
    const u = s.varOff.value;
    const v = toS64(u);
    if (s.umin !== u || s.umax !== u || s.smin !== v || s.smax !== v) {
      return 'const tnum out of sync with range bounds';
    }
  }
  if (tnumSubregIsConst(s.varOff)) {
    const u = lowU32(s.varOff.value);
    const v = u | 0;
    if (s.u32Min !== u || s.u32Max !== u || s.s32Min !== v || s.s32Max !== v) {
      return 'const subreg tnum out of sync with range bounds';
    }
  }
  return undefined;
}

/**
 * Whether the u64 value `v` satisfies every bound and the tnum of `s`: the concretisation
 * of the abstract scalar.
 *
 * @example
 * scalarContains(scalarKnown(5n), 5n) // true
 */
export function scalarContains(s: Scalar, v: bigint): boolean {
  if (v < s.umin || v > s.umax) return false;
  const sv = toS64(v);
  if (sv < s.smin || sv > s.smax) return false;
  const u32 = lowU32(v);
  if (u32 < s.u32Min || u32 > s.u32Max) return false;
  const s32 = u32 | 0;
  if (s32 < s.s32Min || s32 > s.s32Max) return false;
  return tnumContains(s.varOff, v);
}

/** Whether `s` is a known constant (kernel `tnum_is_const(reg->var_off)`). */
export function scalarIsConst(s: Scalar): boolean {
  return tnumIsConst(s.varOff);
}

const isSnumDecimal = (n: bigint): boolean => n >= -32768n && n <= 32767n;

/** A u64 the way the kernel log prints an unsigned number (kernel `verbose_unum`). */
function unumStr(n: bigint): string {
  return n <= 0xffffn ? n.toString() : hex(n);
}

/** A u64 the way the kernel log prints a signed number (kernel `verbose_snum`). */
function snumStr(n: bigint): string {
  const s = toS64(n);
  return isSnumDecimal(s) ? s.toString() : hex(toU64(n));
}

interface MinMax {
  readonly name: string;
  readonly val: bigint;
  omit: boolean;
}

function signed32ForLog(v: number): bigint {
  // Sign-extend only when printed in decimal (kernel print_scalar_ranges).
  return isSnumDecimal(BigInt(v)) ? toU64(BigInt(v)) : BigInt(v >>> 0);
}

/** The ranges part of a scalar in the kernel log (kernel `print_scalar_ranges`). */
function scalarRangesStr(s: Scalar): string[] {
  const mm: MinMax[] = [
    { name: 'smin', val: toU64(s.smin), omit: s.smin === S64_MIN },
    { name: 'smax', val: toU64(s.smax), omit: s.smax === S64_MAX },
    { name: 'umin', val: s.umin, omit: s.umin === 0n },
    { name: 'umax', val: s.umax, omit: s.umax === U64_MAX },
    { name: 'smin32', val: signed32ForLog(s.s32Min), omit: s.s32Min === S32_MIN },
    { name: 'smax32', val: signed32ForLog(s.s32Max), omit: s.s32Max === S32_MAX },
    { name: 'umin32', val: BigInt(s.u32Min), omit: s.u32Min === 0 },
    { name: 'umax32', val: BigInt(s.u32Max), omit: s.u32Max === U32_MAX },
  ];
  const isNeg = (m: MinMax): boolean => m.name.startsWith('s') && toS64(m.val) < 0n;
  const out: string[] = [];
  for (let i = 0; i < mm.length; i++) {
    const m1 = mm[i] as MinMax;
    if (m1.omit) continue;
    let item = `${m1.name}=`;
    for (let j = i + 2; j < mm.length; j += 2) {
      const m2 = mm[j] as MinMax;
      if (m2.omit || m2.val !== m1.val || isNeg(m2) !== isNeg(m1)) continue;
      m2.omit = true;
      item += `${m2.name}=`;
    }
    item += m1.name.startsWith('s') ? snumStr(m1.val) : unumStr(m1.val);
    out.push(item);
  }
  return out;
}

/**
 * A scalar register's value as the kernel log prints it (kernel `print_reg_state` for a
 * SCALAR_VALUE): the constant for a known value, `scalar(...)` with the ranges that say
 * something and the tnum otherwise. `precise` prefixes the kernel's `P` mark.
 *
 * @example
 * scalarStr(scalarKnown(5n)) // '5'
 * scalarStr(SCALAR_UNKNOWN) // 'scalar()'
 */
export function scalarStr(s: Scalar, precise = false): string {
  const p = precise ? 'P' : '';
  if (tnumIsConst(s.varOff)) return p + snumStr(s.varOff.value);
  const parts = scalarRangesStr(s);
  if (!tnumIsUnknown(s.varOff)) parts.push(`var_off=${tnumStr(s.varOff)}`);
  return `${p}scalar(${parts.join(',')})`;
}
