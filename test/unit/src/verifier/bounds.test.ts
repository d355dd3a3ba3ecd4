/**
 * The scalar register state (src/verifier/bounds.ts): constructors, the kernel's bounds
 * synchronisation (`__update_reg_bounds`, `__reg_deduce_bounds`, `__reg_bound_offset`) on the
 * examples from the comments in kernel/bpf/verifier.c, the 32↔64-bit conversions, the
 * invariant check, membership and the kernel log format.
 */

import { describe, expect, it } from 'vitest';
import {
  coerceRegToSize,
  coerceRegToSizeSx,
  coerceSubregToSizeSx,
  markReg32Known,
  markRegUnknown,
  rangeBoundsViolation,
  regBoundsSanityCheck,
  regBoundsSync,
  S64_MAX,
  S64_MIN,
  SCALAR_UNKNOWN,
  scalarByteSwap,
  scalarCoerce,
  scalarCoerceSx,
  scalarContains,
  scalarCopy,
  scalarIsConst,
  scalarKnown,
  scalarMovsx,
  scalarStr,
  U64_MAX,
  updateRegBounds,
  zext32To64,
  type RegBounds,
} from '../../../../src/verifier/bounds.js';
import { TNUM_UNKNOWN, tnumConst, tnumRange } from '../../../../src/verifier/tnum.js';

/** An unknown scalar with some fields set, not synced. */
const mk = (fields: Partial<RegBounds>): RegBounds => ({
  ...scalarCopy(SCALAR_UNKNOWN),
  ...fields,
});

/** `mk` followed by the kernel's reg_bounds_sync. */
function synced(fields: Partial<RegBounds>): RegBounds {
  const r = mk(fields);
  regBoundsSync(r);
  return r;
}

const ranges = (r: RegBounds): unknown => ({
  u64: [r.umin, r.umax],
  s64: [r.smin, r.smax],
  u32: [r.u32Min, r.u32Max],
  s32: [r.s32Min, r.s32Max],
});

describe('scalar constructors', () => {
  it('marks a register known with every view of the value', () => {
    expect(scalarKnown(-1n)).toEqual({
      varOff: tnumConst(U64_MAX),
      smin: -1n,
      smax: -1n,
      umin: U64_MAX,
      umax: U64_MAX,
      s32Min: -1,
      s32Max: -1,
      u32Min: 0xffff_ffff,
      u32Max: 0xffff_ffff,
    });
    const k = scalarKnown(0x1_8000_0000n);
    expect([k.smin, k.s32Min, k.u32Min]).toEqual([0x1_8000_0000n, -0x8000_0000, 0x8000_0000]);
    expect(scalarIsConst(k)).toBe(true);
  });

  it('marks only the subregister known with __mark_reg32_known', () => {
    const r = scalarCopy(SCALAR_UNKNOWN);
    markReg32Known(r, 7n);
    expect(r.varOff).toEqual({ value: 7n, mask: 0xffff_ffff_0000_0000n });
    expect([r.u32Min, r.u32Max, r.s32Min, r.s32Max, r.umax]).toEqual([7, 7, 7, 7, U64_MAX]);
    markRegUnknown(r);
    expect(r).toEqual(SCALAR_UNKNOWN);
  });
});

describe('reg_bounds_sync', () => {
  it('takes the ranges from the tnum', () => {
    const r = mk({ varOff: { value: 0x10n, mask: 0x0fn } });
    updateRegBounds(r);
    expect(ranges(r)).toEqual({
      u64: [0x10n, 0x1fn],
      s64: [0x10n, 0x1fn],
      u32: [0x10, 0x1f],
      s32: [0x10, 0x1f],
    });
    const s = mk({ varOff: { value: 0n, mask: 0x8000_0000_0000_00ffn } });
    updateRegBounds(s);
    expect([s.smin, s.smax, s.umax]).toEqual([S64_MIN, 0xffn, 0x8000_0000_0000_00ffn]);
  });

  it('turns a u64 range and a tnum that share one value into a constant (tnum_step)', () => {
    // Overlap only in umin: [8, 20] and {8, 24}.
    expect(synced({ umin: 8n, umax: 20n, varOff: { value: 8n, mask: 0x10n } })).toEqual(
      scalarKnown(8n),
    );
    // Overlap only in the largest tnum member: [3, 9] and {0, 8}.
    expect(synced({ umin: 3n, umax: 9n, varOff: { value: 0n, mask: 8n } })).toEqual(
      scalarKnown(8n),
    );
    // Overlap only strictly inside: [2, 16] and {0, 1, 16, 17, 32, ...}.
    expect(synced({ umin: 2n, umax: 16n, varOff: { value: 0n, mask: 0x31n } })).toEqual(
      scalarKnown(16n),
    );
  });

  it('derives u32/s32 bounds when the upper 32 bits are fixed (verifier.c example)', () => {
    const r = synced({ umin: 0x1_0000_000an, umax: 0x1_0000_000fn });
    expect([r.u32Min, r.u32Max, r.s32Min, r.s32Max]).toEqual([10, 15, 10, 15]);
    expect(r.varOff).toEqual({ value: 0x1_0000_0008n, mask: 7n });
  });

  it('derives s32 bounds from an s64 range across two upper halves (verifier.c examples)', () => {
    const a = synced({ smin: -1n, smax: 1n });
    expect([a.s32Min, a.s32Max]).toEqual([-1, 1]);
    const b = synced({
      smin: BigInt.asIntN(64, 0xffff_fff0_ffff_fff0n),
      smax: BigInt.asIntN(64, 0xffff_fff1_0000_0010n),
    });
    expect([b.s32Min, b.s32Max]).toEqual([-16, 16]);
  });

  it('tightens 64-bit bounds with 32-bit ones (verifier.c example)', () => {
    const r = synced({
      umin: 0x1_0000_0000n,
      umax: 0x3_8000_0000n,
      s32Min: 1,
      s32Max: 0x7fff_ffff,
    });
    expect([r.umin, r.umax]).toEqual([0x1_0000_0001n, 0x3_7fff_ffffn]);
    expect([r.smin, r.smax]).toEqual([0x1_0000_0001n, 0x3_7fff_ffffn]);
  });

  it('drops all-ones upper bits after a sign-extending load with a non-negative low half', () => {
    const r = synced({ smin: -(2n ** 31n), smax: 0x7fff_ffffn, s32Min: 0, s32Max: 100 });
    expect(ranges(r)).toEqual({ u64: [0n, 100n], s64: [0n, 100n], u32: [0, 100], s32: [0, 100] });
    expect(r.varOff).toEqual(tnumRange(0n, 100n));
  });

  it('uses the part of a sign-crossing s64 range that the u64 range overlaps', () => {
    const r = synced({ smin: -5n, smax: 100n, umin: 3n, umax: 0x8000_0000_0000_0010n });
    expect([r.smin, r.smax, r.umin, r.umax]).toEqual([3n, 100n, 3n, 100n]);
  });

  it('learns tnum bits from the ranges and ranges from them again (verifier.c example)', () => {
    const r = synced({ umax: S64_MAX, varOff: { value: 0n, mask: 0xffff_ffff_ffff_fffcn } });
    expect(r.varOff).toEqual({ value: 0n, mask: 0x7fff_ffff_ffff_fffcn });
    expect(r.umax).toBe(0x7fff_ffff_ffff_fffcn);
  });
});

describe('conversions between widths', () => {
  it('zero-extends a 32-bit result, keeping non-negative s32 bounds', () => {
    const a = mk({ s32Min: -1, s32Max: 0 });
    zext32To64(a);
    expect([a.umin, a.umax, a.smin, a.smax]).toEqual([0n, 0xffff_ffffn, 0n, 0xffff_ffffn]);
    expect(a.varOff).toEqual({ value: 0n, mask: 0xffff_ffffn });
    const b = mk({ u32Min: 5, u32Max: 10, s32Min: 5, s32Max: 10 });
    zext32To64(b);
    expect([b.umin, b.umax, b.smin, b.smax]).toEqual([5n, 10n, 5n, 10n]);
  });

  it('truncates to a narrower size (coerce_reg_to_size)', () => {
    const a = mk({ umin: 0x1_0000_0010n, umax: 0x1_0000_0020n });
    coerceRegToSize(a, 1);
    expect([a.umin, a.umax, a.smin, a.smax]).toEqual([0x10n, 0x20n, 0x10n, 0x20n]);
    const b = mk({ umin: 0xffn, umax: 0x100n });
    coerceRegToSize(b, 1);
    expect([b.umin, b.umax, b.u32Max]).toEqual([0n, 0xffn, 0xff]);
    expect(scalarCoerce(scalarKnown(0x1234_5678n), 2)).toEqual(scalarKnown(0x5678n));
  });

  it('sign-extends a narrow value to 64 bits (coerce_reg_to_size_sx)', () => {
    const c = scalarCopy(scalarKnown(0x80n));
    coerceRegToSizeSx(c, 1);
    expect(c).toEqual(scalarKnown(-128n));
    const inHalf = synced({ umin: 0x10n, umax: 0x20n });
    coerceRegToSizeSx(inHalf, 1);
    expect([inHalf.smin, inHalf.smax, inHalf.varOff]).toEqual([16n, 32n, tnumRange(16n, 32n)]);
    const neg = synced({ umin: 0x1_0000_0080n, umax: 0x1_0000_00ffn });
    coerceRegToSizeSx(neg, 1);
    expect([neg.smin, neg.smax, neg.umin, neg.umax]).toEqual([
      -128n,
      -1n,
      2n ** 64n - 128n,
      U64_MAX,
    ]);
    const crossing = synced({ umin: 0x70n, umax: 0x90n });
    coerceRegToSizeSx(crossing, 1);
    expect(crossing).toEqual({
      ...SCALAR_UNKNOWN,
      smin: -128n,
      smax: 127n,
      s32Min: -128,
      s32Max: 127,
    });
    expect(scalarCoerceSx(scalarKnown(0xffff_fffen), 4)).toEqual(scalarKnown(-2n));
  });

  it('sign-extends within the subregister (coerce_subreg_to_size_sx)', () => {
    const r = mk({ s32Min: 0x80, s32Max: 0xff });
    coerceSubregToSizeSx(r, 1);
    expect([r.s32Min, r.s32Max, r.u32Min, r.u32Max]).toEqual([-128, -1, 0xffff_ff80, 0xffff_ffff]);
    expect(r.varOff).toEqual({ value: 0xffff_ff80n, mask: 0x7fn });
  });

  it('computes movsx at both widths', () => {
    expect(scalarMovsx(scalarKnown(0xffn), 64, 8)).toEqual(scalarKnown(-1n));
    expect(scalarMovsx(scalarKnown(0x80n), 32, 8)).toEqual(scalarKnown(0xffff_ff80n));
    expect(scalarMovsx(scalarKnown(0x1_8000_0000n), 64, 32)).toEqual(scalarKnown(-(2n ** 31n)));
    const small = scalarMovsx(synced({ umax: 0x7fn }), 64, 8);
    expect([small.smin, small.smax, small.umax]).toEqual([0n, 127n, 127n]);
  });

  it('swaps bytes through the tnum (scalar_byte_swap)', () => {
    expect(scalarByteSwap(scalarKnown(0x1234n), 'be', 16)).toEqual(scalarKnown(0x3412n));
    expect(scalarByteSwap(scalarKnown(0x1_0000_1234n), 'le', 16)).toEqual(scalarKnown(0x1234n));
    expect(scalarByteSwap(scalarKnown(0x0102_0304_0506_0708n), 'swap', 64)).toEqual(
      scalarKnown(0x0807_0605_0403_0201n),
    );
    const be32 = scalarByteSwap(synced({ umax: 0xffn }), 'be', 32);
    expect(be32.varOff).toEqual({ value: 0n, mask: 0xff00_0000n });
    expect([be32.umin, be32.umax]).toEqual([0n, 0xff00_0000n]);
    const le64 = synced({ umax: 0xffn });
    expect(scalarByteSwap(le64, 'le', 64)).toEqual(le64);
  });
});

describe('invariants and membership', () => {
  it('reports the kernel REG INVARIANTS VIOLATION reasons', () => {
    expect(rangeBoundsViolation(mk({ umin: 5n, umax: 4n }))).toBe(true);
    expect(regBoundsSanityCheck(mk({ s32Min: 1, s32Max: 0 }))).toBe('range bounds violation');
    expect(regBoundsSanityCheck(mk({ varOff: tnumConst(5n) }))).toBe(
      'const tnum out of sync with range bounds',
    );
    expect(regBoundsSanityCheck(mk({ varOff: { value: 5n, mask: 0xffff_ffff_0000_0000n } }))).toBe(
      'const subreg tnum out of sync with range bounds',
    );
    expect(regBoundsSanityCheck(scalarKnown(5n))).toBeUndefined();
    expect(regBoundsSanityCheck(SCALAR_UNKNOWN)).toBeUndefined();
  });

  it('contains exactly the values allowed by every bound and the tnum', () => {
    expect(scalarContains(scalarKnown(5n), 5n)).toBe(true);
    expect(scalarContains(scalarKnown(5n), 6n)).toBe(false);
    expect(scalarContains(SCALAR_UNKNOWN, U64_MAX)).toBe(true);
    const r = mk({ varOff: { value: 0n, mask: 0xffn }, u32Min: 10, u32Max: 20 });
    expect([15n, 25n, 0x10fn, 0x8n].map((v) => scalarContains(r, v))).toEqual([
      true,
      false,
      false,
      false,
    ]);
    expect(scalarContains(mk({ smin: -5n, smax: -1n }), U64_MAX)).toBe(true);
    expect(scalarContains(mk({ s32Min: -5, s32Max: -1 }), 0xffff_ffffn)).toBe(true);
    expect(scalarContains(mk({ s32Min: -5, s32Max: -1 }), U64_MAX - 0x1_0000_0000n)).toBe(true);
  });
});

describe('the kernel log format', () => {
  it('prints constants as signed decimals, or hex beyond 16 bits', () => {
    expect(scalarStr(scalarKnown(5n))).toBe('5');
    expect(scalarStr(scalarKnown(-1n))).toBe('-1');
    expect(scalarStr(scalarKnown(-32768n))).toBe('-32768');
    expect(scalarStr(scalarKnown(0x10000n))).toBe('0x10000');
    expect(scalarStr(scalarKnown(0xffff_ff78n))).toBe('0xffffff78');
    expect(scalarStr(scalarKnown(-40000n))).toBe('0xffffffffffff63c0');
    expect(scalarStr(scalarKnown(7n), true)).toBe('P7');
  });

  it('prints only the bounds that say something, merging equal ones', () => {
    expect(scalarStr(SCALAR_UNKNOWN)).toBe('scalar()');
    expect(scalarStr(synced({ umax: 255n }))).toBe(
      'scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))',
    );
    expect(scalarStr(synced({ umax: 0xffff_ffffn }))).toBe(
      'scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))',
    );
    expect(scalarStr(synced({ smin: -5n, smax: 5n }))).toBe('scalar(smin=smin32=-5,smax=smax32=5)');
    // smin32 is printed in hex without sign extension, so it merges with umin32, not smin.
    expect(scalarStr(synced({ smin: -100_000n, smax: -1n }), true)).toBe(
      'Pscalar(smin=0xfffffffffffe7960,smax=smax32=-1,umin=0xfffffffffffe7960,' +
        'smin32=umin32=0xfffe7960,var_off=(0xfffffffffffe0000; 0x1ffff))',
    );
  });

  it('does not merge a negative signed bound with an equal unsigned one', () => {
    // smax=-1 and umax=U64_MAX have the same bits but different signs.
    const r = synced({ smin: -3n, smax: -1n });
    expect(scalarStr(r)).toBe(
      'scalar(smin=smin32=-3,smax=smax32=-1,umin=0xfffffffffffffffd,umin32=0xfffffffd,' +
        'var_off=(0xfffffffffffffffc; 0x3))',
    );
  });
});

it('keeps TNUM_UNKNOWN shared by the unknown scalar', () => {
  expect(SCALAR_UNKNOWN.varOff).toBe(TNUM_UNKNOWN);
});
