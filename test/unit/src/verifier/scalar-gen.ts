/**
 * Random abstract scalars for the verifier's soundness property tests, built around a
 * concrete value so that every generated scalar contains at least that value: constants,
 * unknowns, tnums, u64/s64/u32/s32 ranges (alone and intersected), zero-extended 32-bit
 * values and states reached by short chains of abstract ALU operations. Values are biased
 * towards the edges where bounds code goes wrong: around 0, ±2^31, 2^32, ±2^63, 2^64 - 1.
 */

import type { Prng } from '../../../helpers/prng.js';
import { aluOp } from '../../../../src/interp/alu.js';
import type { AluOp, Width } from '../../../../src/isa/table.js';
import {
  regBoundsSanityCheck,
  regBoundsSync,
  SCALAR_UNKNOWN,
  scalarContains,
  scalarCopy,
  scalarKnown,
  type Scalar,
} from '../../../../src/verifier/bounds.js';
import { adjustScalarMinMaxVals } from '../../../../src/verifier/scalar.js';
import { tnumStep } from '../../../../src/verifier/tnum.js';

const U64 = (x: bigint): bigint => BigInt.asUintN(64, x);
const S64 = (x: bigint): bigint => BigInt.asIntN(64, x);
const M32 = 0xffff_ffffn;

/** Values where range arithmetic changes behaviour. */
export const EDGES: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  7n,
  8n,
  0x7fn,
  0x80n,
  0xffn,
  0x100n,
  0x7fffn,
  0x8000n,
  0xffffn,
  0x7fff_ffffn,
  0x8000_0000n,
  0x8000_0001n,
  0xffff_fffen,
  0xffff_ffffn,
  0x1_0000_0000n,
  0x1_0000_0001n,
  0x1_7fff_ffffn,
  0x1_8000_0000n,
  0x7fff_ffff_ffff_fffen,
  0x7fff_ffff_ffff_ffffn,
  0x8000_0000_0000_0000n,
  0x8000_0000_0000_0001n,
  0xffff_ffff_0000_0000n,
  0xffff_ffff_7fff_ffffn,
  0xffff_ffff_8000_0000n,
  0xffff_ffff_ffff_ff80n,
  0xffff_ffff_ffff_fffen,
  0xffff_ffff_ffff_ffffn,
];

/** A uniformly random u64. */
export function rand64(rng: Prng): bigint {
  return (BigInt(rng.next32()) << 32n) | BigInt(rng.next32());
}

/** A u64 biased towards edge values, small numbers and small negatives. */
export function randValue(rng: Prng): bigint {
  switch (rng.int(8)) {
    case 0:
    case 1:
      return rng.pick(EDGES);
    case 2:
      return U64(rng.pick(EDGES) + BigInt(rng.int(9) - 4));
    case 3:
      return BigInt(rng.int(300));
    case 4:
      return U64(-BigInt(rng.int(300)));
    case 5:
      return BigInt(rng.next32());
    case 6:
      return U64(BigInt(rng.next32() | 0));
    default:
      return rand64(rng);
  }
}

/** A random distance: 0, small, a power of two with noise, or huge. */
function randDelta(rng: Prng): bigint {
  switch (rng.int(6)) {
    case 0:
      return 0n;
    case 1:
      return BigInt(rng.int(16));
    case 2:
      return BigInt(rng.int(1 << 16));
    case 3:
      return (1n << BigInt(rng.int(64))) + BigInt(rng.int(3)) - 1n;
    case 4:
      return BigInt(rng.next32());
    default:
      return rand64(rng);
  }
}

/** A random mask of unknown bits: low bits, a byte, a few bits, random bits or upper half. */
function randMask(rng: Prng): bigint {
  switch (rng.int(7)) {
    case 0:
      return (1n << BigInt(rng.int(65))) - 1n;
    case 1:
      return 0xffn << BigInt(8 * rng.int(8));
    case 2: {
      let m = 0n;
      for (let i = rng.int(4); i >= 0; i--) m |= 1n << BigInt(rng.int(64));
      return m;
    }
    case 3:
      return rand64(rng);
    case 4:
      return rand64(rng) & rand64(rng);
    case 5:
      return 0xffff_ffff_0000_0000n;
    default:
      return ((1n << BigInt(rng.int(65))) - 1n) & ~((1n << BigInt(rng.int(64))) - 1n);
  }
}

const clampU = (x: bigint): bigint =>
  x < 0n ? 0n : x > 0xffff_ffff_ffff_ffffn ? 0xffff_ffff_ffff_ffffn : x;
const clampS = (x: bigint): bigint => {
  const lo = -(1n << 63n);
  const hi = (1n << 63n) - 1n;
  return x < lo ? lo : x > hi ? hi : x;
};

/** Adds random constraints, each containing `v`, to `r`. */
function constrain(rng: Prng, r: ReturnType<typeof scalarCopy>, v: bigint): void {
  const picks = rng.int(32);
  if (picks & 1) {
    const mask = randMask(rng);
    r.varOff = { value: v & ~mask, mask };
  }
  if (picks & 2) {
    r.umin = clampU(v - randDelta(rng));
    r.umax = clampU(v + randDelta(rng));
  }
  if (picks & 4) {
    const sv = S64(v);
    r.smin = clampS(sv - randDelta(rng));
    r.smax = clampS(sv + randDelta(rng));
  }
  if (picks & 8) {
    const u = Number(v & M32);
    r.u32Min = Math.max(0, u - Number(randDelta(rng) & M32));
    r.u32Max = Math.min(0xffff_ffff, u + Number(randDelta(rng) & M32));
  }
  if (picks & 16) {
    const s = Number(v & M32) | 0;
    r.s32Min = Math.max(-0x8000_0000, s - Number(randDelta(rng) & M32));
    r.s32Max = Math.min(0x7fff_ffff, s + Number(randDelta(rng) & M32));
  }
}

const CHAIN_OPS: readonly AluOp[] = [
  'add',
  'sub',
  'mul',
  'and',
  'or',
  'xor',
  'lsh',
  'rsh',
  'arsh',
  'neg',
  'div',
  'mod',
  'sdiv',
  'smod',
  'mov',
];

/** A random abstract scalar paired with a concrete value it contains. */
export interface Sample {
  readonly s: Scalar;
  readonly v: bigint;
}

/** A random abstract scalar containing `v`, built from constraints on `v` alone. */
export function randScalarAround(rng: Prng, v: bigint): Scalar {
  switch (rng.int(6)) {
    case 0:
      return scalarKnown(v);
    case 1:
      return SCALAR_UNKNOWN;
    case 2: {
      // A zero-extended 32-bit value: upper half known 0.
      if (v > M32) return scalarKnown(v);
      const r = scalarCopy(SCALAR_UNKNOWN);
      constrain(rng, r, v);
      r.varOff = { value: r.varOff.value & M32, mask: r.varOff.mask & M32 };
      r.umax = r.umax < M32 ? r.umax : M32;
      regBoundsSync(r);
      return r;
    }
    default: {
      const r = scalarCopy(SCALAR_UNKNOWN);
      constrain(rng, r, v);
      // Unsynced states are valid inputs too, as long as they keep the kernel's invariants.
      if (rng.bool(0.75) || regBoundsSanityCheck(r) !== undefined) regBoundsSync(r);
      return r;
    }
  }
}

/** A random member of `s` other than (usually) `seed`, or `seed` itself. */
export function randMember(rng: Prng, s: Scalar, seed: bigint): bigint {
  for (let i = 0; i < 6; i++) {
    let c: bigint;
    switch (rng.int(6)) {
      case 0:
        c = s.varOff.value | (rand64(rng) & s.varOff.mask);
        break;
      case 1:
        c = rng.pick([s.umin, s.umax, U64(s.smin), U64(s.smax)]);
        break;
      case 2: {
        const span = s.umax >= s.umin ? s.umax - s.umin + 1n : 1n;
        c = tnumStep(s.varOff, U64(s.umin + (rand64(rng) % span) - 1n));
        break;
      }
      case 3:
        c =
          (s.varOff.value & ~M32) |
          BigInt(rng.pick([s.u32Min, s.u32Max, s.s32Min >>> 0, s.s32Max >>> 0]));
        break;
      case 4:
        c = U64(seed + BigInt(rng.int(5) - 2));
        break;
      default:
        c = s.varOff.value | (randValue(rng) & s.varOff.mask);
    }
    if (scalarContains(s, c)) return c;
  }
  return seed;
}

/**
 * A random abstract scalar and one of its members. With `depth > 0` it is sometimes the
 * result of an abstract ALU operation on two random samples (a state the verifier reaches).
 */
export function randSample(rng: Prng, depth = 2): Sample {
  if (depth > 0 && rng.bool(0.35)) {
    const a = randSample(rng, depth - 1);
    const b = randSample(rng, depth - 1);
    const op = rng.pick(CHAIN_OPS);
    const width: Width = rng.bool() ? 64 : 32;
    const s = adjustScalarMinMaxVals(a.s, b.s, op, width);
    const c = aluOp(op, width, a.v, b.v);
    // An unsound chain is reported by the ALU property test; keep the generator going.
    if (!scalarContains(s, c)) return { s: scalarKnown(c), v: c };
    return { s, v: rng.bool(0.3) ? c : randMember(rng, s, c) };
  }
  const seed = randValue(rng);
  const s = randScalarAround(rng, seed);
  return { s, v: rng.bool(0.3) ? seed : randMember(rng, s, seed) };
}
