/**
 * Tristate numbers (src/verifier/tnum.ts): hand-checked examples taken from kernel/bpf/tnum.c
 * and its commit messages, and seeded property tests that every operation contains the
 * concrete results of all members of its operands.
 */

import { describe, expect, it } from 'vitest';
import { createPrng, type Prng } from '../../../helpers/prng.js';
import {
  fls64,
  TNUM_UNKNOWN,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumBswap16,
  tnumBswap32,
  tnumBswap64,
  tnumCast,
  tnumClearSubreg,
  tnumConst,
  tnumConstSubreg,
  tnumContains,
  tnumEquals,
  tnumEqualsConst,
  tnumIn,
  tnumIntersect,
  tnumIsAligned,
  tnumIsConst,
  tnumIsUnknown,
  tnumLshift,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumOverlap,
  tnumRange,
  tnumRshift,
  tnumStep,
  tnumStr,
  tnumSub,
  tnumSubreg,
  tnumSubregIsConst,
  tnumUnion,
  tnumWithSubreg,
  tnumXor,
  type Tnum,
} from '../../../../src/verifier/tnum.js';
import { rand64, randValue } from './scalar-gen.js';

const SEED = Number(process.env['BPF_VERIFIER_SEED'] ?? 0x7e57);
const U64_MAX = 0xffff_ffff_ffff_ffffn;
const U = (x: bigint): bigint => BigInt.asUintN(64, x);
const t = (value: bigint, mask: bigint): Tnum => ({ value, mask });

describe('tnum constructors and predicates', () => {
  it('builds constants, reducing them mod 2^64', () => {
    expect(tnumConst(5n)).toEqual(t(5n, 0n));
    expect(tnumConst(-1n)).toEqual(t(U64_MAX, 0n));
    expect(tnumIsConst(tnumConst(9n))).toBe(true);
    expect(tnumEqualsConst(tnumConst(9n), 9n)).toBe(true);
    expect(tnumIsUnknown(TNUM_UNKNOWN)).toBe(true);
  });

  it('covers a range with the kernel tnum_range, which may add values', () => {
    expect(tnumRange(0n, 255n)).toEqual(t(0n, 0xffn));
    expect(tnumRange(0x10n, 0x1fn)).toEqual(t(0x10n, 0xfn));
    expect(tnumRange(7n, 7n)).toEqual(tnumConst(7n));
    // {0, 1, 2} is represented as {0, 1, 2, 3}.
    expect(tnumRange(0n, 2n)).toEqual(t(0n, 3n));
    expect(tnumContains(tnumRange(0n, 2n), 3n)).toBe(true);
    expect(tnumRange(0n, U64_MAX)).toBe(TNUM_UNKNOWN);
    expect(tnumRange(1n, 1n << 63n)).toBe(TNUM_UNKNOWN);
  });

  it('finds the highest set bit like fls64', () => {
    expect([0n, 1n, 0x80n, 0x1_0000_0000n, U64_MAX].map(fls64)).toEqual([0, 1, 8, 33, 64]);
  });

  it('tests alignment, containment and equality', () => {
    expect(tnumIsAligned(t(0x10n, 0x30n), 8)).toBe(true);
    expect(tnumIsAligned(t(0x10n, 0x34n), 8)).toBe(false);
    expect(tnumIsAligned(TNUM_UNKNOWN, 0)).toBe(true);
    expect(tnumIn(tnumRange(0n, 255n), tnumConst(7n))).toBe(true);
    expect(tnumIn(tnumRange(0n, 255n), tnumRange(0n, 511n))).toBe(false);
    expect(tnumIn(tnumRange(0n, 2n), tnumConst(3n))).toBe(true);
    expect(tnumEquals(tnumRange(0n, 3n), t(0n, 3n))).toBe(true);
    expect(tnumEquals(tnumRange(0n, 3n), t(0n, 7n))).toBe(false);
  });
});

describe('tnum arithmetic', () => {
  it('shifts by a fixed amount, arithmetic shifts at 32 and 64 bits', () => {
    expect(tnumLshift(t(1n, 2n), 4)).toEqual(t(0x10n, 0x20n));
    expect(tnumLshift(t(1n << 63n, 0n), 1)).toEqual(t(0n, 0n));
    expect(tnumRshift(t(0x10n, 0x20n), 4)).toEqual(t(1n, 2n));
    expect(tnumArshift(t(1n << 63n, 0x10n), 4, 64)).toEqual(t(0xf800_0000_0000_0000n, 1n));
    expect(tnumArshift(t(0n, 0xffff_ffffn), 31, 32)).toEqual(t(0n, 0xffff_ffffn));
    expect(tnumArshift(t(0x8000_0000n, 1n), 4, 32)).toEqual(t(0xf800_0000n, 0n));
  });

  it('adds and subtracts with carries into the unknown bits', () => {
    expect(tnumAdd(t(0n, 3n), tnumConst(4n))).toEqual(t(4n, 3n));
    // {1, 3} + 1 = {2, 4} within {0, 2, 4, 6}.
    expect(tnumAdd(t(1n, 2n), tnumConst(1n))).toEqual(t(0n, 6n));
    expect(tnumAdd(tnumConst(U64_MAX), tnumConst(2n))).toEqual(tnumConst(1n));
    expect(tnumSub(tnumConst(10n), tnumConst(3n))).toEqual(tnumConst(7n));
    expect(tnumSub(tnumConst(0n), tnumConst(1n))).toEqual(tnumConst(U64_MAX));
    expect(tnumNeg(tnumConst(1n))).toEqual(tnumConst(U64_MAX));
  });

  it('combines bits with and, or and xor', () => {
    expect(tnumAnd(TNUM_UNKNOWN, tnumConst(0xffn))).toEqual(t(0n, 0xffn));
    expect(tnumOr(t(0n, 0xffn), tnumConst(0x100n))).toEqual(t(0x100n, 0xffn));
    expect(tnumOr(t(0n, 0xffn), tnumConst(0x0fn))).toEqual(t(0x0fn, 0xf0n));
    expect(tnumXor(t(0n, 0x0fn), tnumConst(0xffn))).toEqual(t(0xf0n, 0x0fn));
  });

  it('multiplies with the union of partial products (kernel example 11 * x1 = x0x1)', () => {
    expect(tnumMul(t(1n, 2n), tnumConst(3n))).toEqual(t(1n, 0xan));
    expect(tnumMul(tnumConst(3n), t(0n, 1n))).toEqual(t(0n, 3n));
    expect(tnumMul(tnumConst(6n), tnumConst(7n))).toEqual(tnumConst(42n));
    expect(tnumMul(tnumConst(1n << 63n), tnumConst(2n))).toEqual(tnumConst(0n));
  });

  it('intersects, unites and detects disjoint tnums', () => {
    expect(tnumIntersect(t(0n, 0xffn), t(0x10n, 0xf00n))).toEqual(t(0x10n, 0n));
    expect(tnumUnion(tnumConst(3n), tnumConst(9n))).toEqual(t(1n, 0xan));
    expect(tnumOverlap(t(1n, 0xan), tnumConst(9n))).toBe(true);
    expect(tnumOverlap(t(1n, 0xan), tnumConst(4n))).toBe(false);
    // Disjoint masks can still overlap: x0 and 0x share 00.
    expect(tnumOverlap(t(0n, 2n), t(0n, 1n))).toBe(true);
  });
});

describe('tnum subregisters, casts and byte swaps', () => {
  it('splits and joins the 32-bit halves', () => {
    const a = t(0x1200_0000_5600n, 0xff_0000_00ffn);
    expect(tnumSubreg(a)).toEqual(t(0x5600n, 0xffn));
    expect(tnumClearSubreg(a)).toEqual(t(0x1200_0000_0000n, 0xff_0000_0000n));
    expect(tnumWithSubreg(a, tnumConst(0xdead_beef_0000_0001n))).toEqual(
      t(0x1200_0000_0001n, 0xff_0000_0000n),
    );
    expect(tnumConstSubreg(TNUM_UNKNOWN, 7)).toEqual(t(7n, 0xffff_ffff_0000_0000n));
    expect(tnumSubregIsConst(t(0x5n << 32n, 0xffn << 32n))).toBe(true);
    expect(tnumCast(a, 1)).toEqual(t(0n, 0xffn));
    expect(tnumCast(a, 8)).toBe(a);
  });

  it('byte-swaps 16, 32 and 64 bits, zero-extending the narrow forms', () => {
    expect(tnumBswap16(t(0xff_1200n, 0x34n))).toEqual(t(0x0012n, 0x3400n));
    expect(tnumBswap32(tnumConst(0x1122_3344n))).toEqual(tnumConst(0x4433_2211n));
    expect(tnumBswap64(t(0x0102_0304_0506_0700n, 0xffn))).toEqual(
      t(0x0007_0605_0403_0201n, 0xff00_0000_0000_0000n),
    );
  });

  it('prints like the kernel log: hex pair, or the constant', () => {
    expect(tnumStr(tnumRange(0n, 255n))).toBe('(0x0; 0xff)');
    expect(tnumStr(TNUM_UNKNOWN)).toBe('(0x0; 0xffffffffffffffff)');
    expect(tnumStr(t(0x8000_0000n, 0x7fff_ff7an))).toBe('(0x80000000; 0x7fffff7a)');
    expect(tnumStr(tnumConst(7n))).toBe('7');
    expect(tnumStr(tnumConst(0xffffn))).toBe('65535');
    expect(tnumStr(tnumConst(0x10000n))).toBe('0x10000');
  });
});

describe('tnum_step', () => {
  it('returns the next member above z (kernel commit examples)', () => {
    expect(tnumStep(t(0b0111_0000n, 0b1000_0010n), 241n)).toBe(242n);
    expect(tnumStep(t(0b0011_0000n, 0b1100_1010n), 189n)).toBe(240n);
    expect(tnumStep(t(0b1010_0000n, 0b0101_0111n), 180n)).toBe(181n);
    expect(tnumStep(t(0b0000_1001n, 0b1000_0010n), 130n)).toBe(137n);
  });

  it('clamps to the smallest and largest member', () => {
    expect(tnumStep(t(0x10n, 0x3n), 0n)).toBe(0x10n);
    expect(tnumStep(t(0x10n, 0x3n), 0x13n)).toBe(0x13n);
    expect(tnumStep(t(0x10n, 0x3n), U64_MAX)).toBe(0x13n);
  });

  it('agrees with enumeration of all members (3,000 cases)', () => {
    const rng = createPrng(SEED);
    for (let i = 0; i < 3_000; i++) {
      let mask = 0n;
      for (let k = rng.int(8); k >= 0; k--) mask |= 1n << BigInt(rng.int(64));
      const a = t(rand64(rng) & ~mask, mask);
      const members: bigint[] = [];
      for (let s = mask; ; s = (s - 1n) & mask) {
        members.push(a.value | s);
        if (s === 0n) break;
      }
      members.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
      const tmax = members[members.length - 1] as bigint;
      const z = rng.bool() ? rng.pick(members) + BigInt(rng.int(3)) - 1n : randValue(rng);
      const zz = U(z);
      const want = zz >= tmax ? tmax : (members.find((m) => m > zz) as bigint);
      if (tnumStep(a, zz) !== want) {
        throw new Error(`seed ${SEED}: tnumStep((${a.value}; ${a.mask}), ${zz}) != ${want}`);
      }
    }
  });
});

/** A random tnum and a member of it. */
function randTnum(rng: Prng): { t: Tnum; v: bigint } {
  const v = randValue(rng);
  let mask: bigint;
  switch (rng.int(5)) {
    case 0:
      mask = 0n;
      break;
    case 1:
      mask = (1n << BigInt(rng.int(65))) - 1n;
      break;
    case 2:
      mask = rand64(rng) & rand64(rng);
      break;
    case 3:
      mask = 0xffn << BigInt(rng.int(57));
      break;
    default:
      mask = rand64(rng);
  }
  const tn = t(v & ~mask, mask);
  return { t: tn, v: rng.bool(0.3) ? v : tn.value | (rand64(rng) & mask) };
}

type BinOp = [string, (a: Tnum, b: Tnum) => Tnum, (x: bigint, y: bigint) => bigint];

const BIN_OPS: readonly BinOp[] = [
  ['add', tnumAdd, (x, y) => U(x + y)],
  ['sub', tnumSub, (x, y) => U(x - y)],
  ['mul', tnumMul, (x, y) => U(x * y)],
  ['and', tnumAnd, (x, y) => x & y],
  ['or', tnumOr, (x, y) => x | y],
  ['xor', tnumXor, (x, y) => x ^ y],
];

describe('tnum soundness', () => {
  it('contains x OP y for members x, y of the operands (30,000 cases)', () => {
    const rng = createPrng(SEED + 1);
    for (let i = 0; i < 30_000; i++) {
      const [name, abs, conc] = BIN_OPS[i % BIN_OPS.length] as BinOp;
      const a = randTnum(rng);
      const b = randTnum(rng);
      const r = abs(a.t, b.t);
      if ((r.value & r.mask) !== 0n || !tnumContains(r, conc(a.v, b.v))) {
        throw new Error(
          `seed ${SEED}: tnum ${name} (${a.t.value}; ${a.t.mask}) (${b.t.value}; ${b.t.mask}) ` +
            `= (${r.value}; ${r.mask}) misses ${conc(a.v, b.v)} from ${a.v}, ${b.v}`,
        );
      }
    }
  });

  it('keeps members through unary ops, unions, intersections and ranges (20,000 cases)', () => {
    const rng = createPrng(SEED + 2);
    for (let i = 0; i < 20_000; i++) {
      const a = randTnum(rng);
      const b = randTnum(rng);
      const k = rng.int(64);
      const checks: [string, boolean][] = [
        ['neg', tnumContains(tnumNeg(a.t), U(-a.v))],
        ['lsh', tnumContains(tnumLshift(a.t, k), U(a.v << BigInt(k)))],
        ['rsh', tnumContains(tnumRshift(a.t, k), a.v >> BigInt(k))],
        ['arsh', tnumContains(tnumArshift(a.t, k, 64), U(BigInt.asIntN(64, a.v) >> BigInt(k)))],
        ['union', tnumContains(tnumUnion(a.t, b.t), a.v)],
        ['overlap', !tnumContains(b.t, a.v) || tnumOverlap(a.t, b.t)],
        ['intersect', !tnumContains(b.t, a.v) || tnumContains(tnumIntersect(a.t, b.t), a.v)],
        ['in', !tnumIn(b.t, a.t) || tnumContains(b.t, a.v)],
        ['bswap64', tnumContains(tnumBswap64(a.t), BigInt.asUintN(64, swab(a.v, 8)))],
      ];
      const lo = a.v < b.v ? a.v : b.v;
      const hi = a.v < b.v ? b.v : a.v;
      checks.push(['range', tnumContains(tnumRange(lo, hi), lo + ((hi - lo) >> 1n))]);
      for (const [name, ok] of checks) {
        if (!ok) throw new Error(`seed ${SEED}: tnum ${name} loses a member at case ${i}`);
      }
    }
  });
});

function swab(x: bigint, bytes: number): bigint {
  let r = 0n;
  for (let i = 0; i < bytes; i++) r = (r << 8n) | ((x >> BigInt(8 * i)) & 0xffn);
  return r;
}
