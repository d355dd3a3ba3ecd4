/**
 * Tristate numbers ("tnums", the kernel's kernel/bpf/tnum.c): what the verifier knows about
 * the individual bits of a 64-bit value. A bit is known 0, known 1, or unknown; `value` holds
 * the known-1 bits and `mask` the unknown ones. The tnum stands for every u64 `x` with
 * `(x & ~mask) === value`.
 *
 * Called from the verifier's scalar tracking (src/verifier/bounds.ts, src/verifier/scalar.ts)
 * once or more per instruction per path, so everything here is a small pure function.
 *
 * Invariants: `value` and `mask` are u64 bigints (in `[0, 2^64)`) and `value & mask === 0n`.
 * Every operation is sound: if `x ∈ a` and `y ∈ b` then `x OP y ∈ tnumOp(a, b)`. Tnums are
 * immutable values; functions return new objects and never change their arguments.
 */

/** A tracked number: known-1 bits in `value`, unknown bits in `mask` (kernel `struct tnum`). */
export interface Tnum {
  readonly value: bigint;
  readonly mask: bigint;
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const U32_MAX = 0xffff_ffffn;
const u64 = (x: bigint): bigint => BigInt.asUintN(64, x);

/** A completely unknown value (kernel `tnum_unknown`). */
export const TNUM_UNKNOWN: Tnum = Object.freeze({ value: 0n, mask: U64_MAX });

const TNUM_ZERO: Tnum = Object.freeze({ value: 0n, mask: 0n });

/**
 * The number of the highest set bit, counting from 1; 0 for 0 (kernel `fls64`).
 *
 * @example
 * fls64(0n) // 0
 * fls64(0x80n) // 8
 */
export function fls64(x: bigint): number {
  const hi = Number(x >> 32n);
  if (hi !== 0) return 64 - Math.clz32(hi);
  return 32 - Math.clz32(Number(x & U32_MAX));
}

/**
 * The tnum of a known constant (kernel `tnum_const`); `value` is reduced mod 2^64.
 *
 * @example
 * tnumConst(5n) // { value: 5n, mask: 0n }
 */
export function tnumConst(value: bigint): Tnum {
  return { value: u64(value), mask: 0n };
}

/**
 * A tnum containing every value of `[min, max]` (kernel `tnum_range`); it may contain more,
 * e.g. `tnumRange(0n, 2n)` also contains 3.
 *
 * @example
 * tnumStr(tnumRange(0n, 255n)) // '(0x0; 0xff)'
 */
export function tnumRange(min: bigint, max: bigint): Tnum {
  const bits = fls64(min ^ max);
  if (bits > 63) return TNUM_UNKNOWN;
  const delta = (1n << BigInt(bits)) - 1n;
  return { value: min & ~delta, mask: delta };
}

/** `a << shift` for a fixed shift in `[0, 63]` (kernel `tnum_lshift`). */
export function tnumLshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: u64(a.value << s), mask: u64(a.mask << s) };
}

/** `a >> shift` (logical) for a fixed shift in `[0, 63]` (kernel `tnum_rshift`). */
export function tnumRshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: a.value >> s, mask: a.mask >> s };
}

/**
 * `a s>> minShift` at `bitness` 32 or 64 (kernel `tnum_arshift`). For 32, `a` must be a
 * subregister tnum (upper half zero) and the result is one too.
 */
export function tnumArshift(a: Tnum, minShift: number, bitness: 32 | 64): Tnum {
  const s = BigInt(minShift);
  return {
    value: BigInt.asUintN(bitness, BigInt.asIntN(bitness, a.value) >> s),
    mask: BigInt.asUintN(bitness, BigInt.asIntN(bitness, a.mask) >> s),
  };
}

/**
 * `a + b` mod 2^64 (kernel `tnum_add`).
 *
 * @example
 * tnumStr(tnumAdd(tnumRange(0n, 3n), tnumConst(4n))) // '(0x4; 0x3)'
 */
export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sm = u64(a.mask + b.mask);
  const sv = u64(a.value + b.value);
  const sigma = u64(sm + sv);
  const chi = sigma ^ sv;
  const mu = chi | a.mask | b.mask;
  return { value: sv & ~mu, mask: mu };
}

/** `a - b` mod 2^64 (kernel `tnum_sub`). */
export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = u64(a.value - b.value);
  const alpha = u64(dv + a.mask);
  const beta = u64(dv - b.mask);
  const chi = alpha ^ beta;
  const mu = chi | a.mask | b.mask;
  return { value: dv & ~mu, mask: mu };
}

/** `-a` mod 2^64 (kernel `tnum_neg`). */
export function tnumNeg(a: Tnum): Tnum {
  return tnumSub(TNUM_ZERO, a);
}

/** `a & b` (kernel `tnum_and`). */
export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask;
  const beta = b.value | b.mask;
  const v = a.value & b.value;
  return { value: v, mask: alpha & beta & ~v };
}

/** `a | b` (kernel `tnum_or`). */
export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask | b.mask;
  return { value: v, mask: mu & ~v };
}

/** `a ^ b` (kernel `tnum_xor`). */
export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value;
  const mu = a.mask | b.mask;
  return { value: v & ~mu, mask: mu };
}

/**
 * `a * b` mod 2^64 by long multiplication over the bits of `a`, taking the union of both
 * partial products where a bit of `a` is unknown (kernel `tnum_mul`, the precise version
 * from 6.18).
 *
 * @example
 * tnumStr(tnumMul(tnumConst(3n), tnumRange(0n, 1n))) // '(0x0; 0x3)'
 */
export function tnumMul(a: Tnum, b: Tnum): Tnum {
  let acc: Tnum = TNUM_ZERO;
  let av = a.value;
  let am = a.mask;
  let bv = b.value;
  let bm = b.mask;
  while (av !== 0n || am !== 0n) {
    if ((av & 1n) !== 0n) {
      acc = tnumAdd(acc, { value: bv, mask: bm });
    } else if ((am & 1n) !== 0n) {
      acc = tnumUnion(acc, tnumAdd(acc, { value: bv, mask: bm }));
    }
    av >>= 1n;
    am >>= 1n;
    bv = u64(bv << 1n);
    bm = u64(bm << 1n);
  }
  return acc;
}

/**
 * Whether the known bits of `a` and `b` agree, i.e. whether they may share a member
 * (kernel `tnum_overlap`). `false` proves `a` and `b` have no value in common.
 */
export function tnumOverlap(a: Tnum, b: Tnum): boolean {
  const mu = ~a.mask & ~b.mask;
  return (a.value & mu) === (b.value & mu);
}

/**
 * The values in both `a` and `b` (kernel `tnum_intersect`). Where the two disagree on a
 * known bit the result has it known 1 (the intersection is empty then).
 */
export function tnumIntersect(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask & b.mask;
  return { value: v & ~mu, mask: mu };
}

/** The smallest tnum containing every value of `a` and of `b` (kernel `tnum_union`). */
export function tnumUnion(a: Tnum, b: Tnum): Tnum {
  const v = a.value & b.value;
  const mu = (a.value ^ b.value) | a.mask | b.mask;
  return { value: v & ~mu, mask: mu };
}

/** `a` truncated to its low `size` bytes (kernel `tnum_cast`); `size` 8 keeps `a`. */
export function tnumCast(a: Tnum, size: number): Tnum {
  if (size >= 8) return a;
  const m = (1n << BigInt(size * 8)) - 1n;
  return { value: a.value & m, mask: a.mask & m };
}

/** Whether every member of `a` is a multiple of `size`, a power of two (kernel `tnum_is_aligned`). */
export function tnumIsAligned(a: Tnum, size: bigint | number): boolean {
  const sz = BigInt(size);
  if (sz === 0n) return true;
  return ((a.value | a.mask) & (sz - 1n)) === 0n;
}

/**
 * Whether `b` is a subset of `a` (kernel `tnum_in`).
 *
 * @example
 * tnumIn(tnumRange(0n, 255n), tnumConst(7n)) // true
 */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  if ((b.mask & ~a.mask) !== 0n) return false;
  return (b.value & ~a.mask) === a.value;
}

/** Whether `v` (a u64) is a member of `a`. */
export function tnumContains(a: Tnum, v: bigint): boolean {
  return (v & ~a.mask) === a.value;
}

/** Whether `a` is a known constant (kernel `tnum_is_const`). */
export function tnumIsConst(a: Tnum): boolean {
  return a.mask === 0n;
}

/** Whether `a` is the constant `b` (kernel `tnum_equals_const`). */
export function tnumEqualsConst(a: Tnum, b: bigint): boolean {
  return a.mask === 0n && a.value === b;
}

/** Whether `a` knows nothing (kernel `tnum_is_unknown`). */
export function tnumIsUnknown(a: Tnum): boolean {
  return a.mask === U64_MAX;
}

/** Whether `a` and `b` are the same tnum. */
export function tnumEquals(a: Tnum, b: Tnum): boolean {
  return a.value === b.value && a.mask === b.mask;
}

/** The low 32 bits of `a`, zero-extended (kernel `tnum_subreg`). */
export function tnumSubreg(a: Tnum): Tnum {
  return { value: a.value & U32_MAX, mask: a.mask & U32_MAX };
}

/** `a` with its low 32 bits known zero (kernel `tnum_clear_subreg`). */
export function tnumClearSubreg(a: Tnum): Tnum {
  return { value: a.value & ~U32_MAX, mask: a.mask & ~U32_MAX };
}

/** The upper half of `reg` with the lower half of `subreg` (kernel `tnum_with_subreg`). */
export function tnumWithSubreg(reg: Tnum, subreg: Tnum): Tnum {
  return tnumOr(tnumClearSubreg(reg), tnumSubreg(subreg));
}

/** `a` with its low 32 bits set to the constant `value` (kernel `tnum_const_subreg`). */
export function tnumConstSubreg(a: Tnum, value: bigint | number): Tnum {
  return tnumWithSubreg(a, tnumConst(BigInt(value)));
}

/** Whether the low 32 bits of `a` are known (kernel `tnum_subreg_is_const`). */
export function tnumSubregIsConst(a: Tnum): boolean {
  return (a.mask & U32_MAX) === 0n;
}

function swab(x: bigint, bytes: number): bigint {
  let r = 0n;
  for (let i = 0; i < bytes; i++) r = (r << 8n) | ((x >> BigInt(8 * i)) & 0xffn);
  return r;
}

/** The low 16 bits of `a` byte-swapped, zero-extended (kernel `tnum_bswap16`). */
export function tnumBswap16(a: Tnum): Tnum {
  return { value: swab(a.value, 2), mask: swab(a.mask, 2) };
}

/** The low 32 bits of `a` byte-swapped, zero-extended (kernel `tnum_bswap32`). */
export function tnumBswap32(a: Tnum): Tnum {
  return { value: swab(a.value, 4), mask: swab(a.mask, 4) };
}

/** `a` byte-swapped (kernel `tnum_bswap64`). */
export function tnumBswap64(a: Tnum): Tnum {
  return { value: swab(a.value, 8), mask: swab(a.mask, 8) };
}

/**
 * The smallest member of `t` greater than `z` (kernel `tnum_step`). Returns the largest
 * member when `z` is at or above it and the smallest when `z` is below it.
 *
 * @example
 * tnumStep({ value: 0b0111_0000n, mask: 0b1000_0010n }, 241n) // 242n (0b1111_0010)
 */
export function tnumStep(t: Tnum, z: bigint): bigint {
  const tmax = t.value | t.mask;
  if (z >= tmax) return tmax;
  if (z < t.value) return t.value;
  // Members are t.value + s for submasks s of t.mask: find the smallest s > d by
  // incrementing d "within the mask" (every non-mask position filled with 1s).
  const d = z - t.value;
  const carryMask = (1n << BigInt(fls64(d & ~t.mask))) - 1n;
  const filled = d | carryMask | (t.mask ^ U64_MAX);
  const inc = u64(filled + 1n) & t.mask;
  return t.value | inc;
}

/** `n` as the kernel's `%#llx`: `0x` and lower-case hex digits (`0x0` for zero). */
export function hex(n: bigint | number): string {
  return '0x' + n.toString(16);
}

/**
 * The kernel log form of a tnum (kernel `tnum_strn` in kernel/bpf/log.c): `(value; mask)` in
 * hex, or the constant itself when fully known (decimal up to 65535, hex above).
 *
 * @example
 * tnumStr(tnumRange(0n, 255n)) // '(0x0; 0xff)'
 * tnumStr(tnumConst(7n)) // '7'
 */
export function tnumStr(a: Tnum): string {
  if (a.mask === 0n) return a.value <= 0xffffn ? a.value.toString() : hex(a.value);
  return `(${hex(a.value)}; ${hex(a.mask)})`;
}
