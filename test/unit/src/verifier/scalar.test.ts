/**
 * Abstract ALU operations and conditional jumps (src/verifier/scalar.ts): a register trace
 * from a kernel verifier log (bpf_wiregard, commit "bpf: Recognize special arithmetic shift in
 * the verifier"), hand-checked results for every operation and condition, and the precision
 * the verifier relies on (constants stay constants, masks bound values, ranges add exactly,
 * branches narrow ranges).
 */

import { describe, expect, it } from 'vitest';
import { createPrng } from '../../../helpers/prng.js';
import { aluOp, immU64 } from '../../../../src/interp/alu.js';
import type { AluOp, JmpCond, Width } from '../../../../src/isa/table.js';
import { ALU_OP_NAMES } from '../../../../src/isa/table.js';
import {
  regBoundsSync,
  S64_MAX,
  S64_MIN,
  SCALAR_UNKNOWN,
  scalarCopy,
  scalarKnown,
  scalarStr,
  U64_MAX,
  type RegBounds,
  type Scalar,
} from '../../../../src/verifier/bounds.js';
import {
  adjustScalarMinMaxVals,
  isRegConst,
  maybeForkScalars,
  regConstValue,
} from '../../../../src/verifier/scalar.js';
import { isBranchTaken, regSetMinMax } from '../../../../src/verifier/cond.js';
import { tnumRange } from '../../../../src/verifier/tnum.js';
import { EDGES, randValue } from './scalar-gen.js';

/** A synced scalar with some fields set. */
function sc(fields: Partial<RegBounds>): Scalar {
  const r = { ...scalarCopy(SCALAR_UNKNOWN), ...fields };
  regBoundsSync(r);
  return r;
}

const k = (v: bigint): Scalar => scalarKnown(v);
const alu = (d: Scalar, s: Scalar, op: AluOp, w: Width = 64): Scalar =>
  adjustScalarMinMaxVals(d, s, op, w);
const sameScalar = (a: Scalar, b: Scalar): boolean =>
  (Object.keys(a) as (keyof Scalar)[]).every((f) =>
    f === 'varOff'
      ? a.varOff.value === b.varOff.value && a.varOff.mask === b.varOff.mask
      : a[f] === b[f],
  );
const u64 = (s: Scalar): [bigint, bigint] => [s.umin, s.umax];
const s64 = (s: Scalar): [bigint, bigint] => [s.smin, s.smax];

describe('a kernel verifier log, register by register', () => {
  // 227: call bpf_skb_store_bytes  R0=scalar()
  const r0 = SCALAR_UNKNOWN;
  // 228: (bc) w2 = w0
  const w2mov = alu(SCALAR_UNKNOWN, r0, 'mov', 32);
  // 229: (c4) w2 s>>= 31
  const w2arsh = alu(w2mov, k(31n), 'arsh', 32);
  // 230: (54) w2 &= -134
  const w2and = alu(w2arsh, k(immU64(-134)), 'and', 32);

  it('prints each state exactly as the kernel did', () => {
    expect(scalarStr(r0)).toBe('scalar()');
    expect(scalarStr(w2mov)).toBe('scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))');
    expect(scalarStr(w2arsh)).toBe(
      'scalar(smin=0,smax=umax=0xffffffff,smin32=-1,smax32=0,var_off=(0x0; 0xffffffff))',
    );
    expect(scalarStr(w2and)).toBe(
      'scalar(smin=0,smax=umax=umax32=0xffffff7a,smax32=0x7fffff7a,var_off=(0x0; 0xffffff7a))',
    );
  });

  it('refines the fall-through of "if w2 s> 0xffffffff" and of "if w2 != 0xffffff78"', () => {
    // 232: (66) if w2 s> 0xffffffff goto pc+125
    const at232 = regSetMinMax(w2and, k(immU64(-1)), 'sgt', 32).falseDst;
    expect(scalarStr(at232)).toBe(
      'scalar(smin=umin=umin32=0x80000000,smax=umax=umax32=0xffffff7a,smax32=-134,' +
        'var_off=(0x80000000; 0x7fffff7a))',
    );
    // 239: (56) if w2 != 0xffffff78 goto pc+210
    expect(isBranchTaken(at232, k(immU64(-136)), 'ne', 32)).toBe(-1);
    expect(scalarStr(regSetMinMax(at232, k(immU64(-136)), 'ne', 32).falseDst)).toBe('0xffffff78');
  });

  it('forks the [-1, 0] subregister before the "and" into 0 and -1 (maybe_fork_scalars)', () => {
    const pair = maybeForkScalars(w2arsh);
    expect(pair).toBeDefined();
    const [zero, minusOne] = pair as readonly [Scalar, Scalar];
    expect(scalarStr(alu(zero, k(immU64(-134)), 'and', 32))).toBe('0');
    expect(scalarStr(alu(minusOne, k(immU64(-134)), 'and', 32))).toBe('0xffffff7a');
    expect(maybeForkScalars(sc({ smin: -1n, smax: 0n }))?.map((x) => scalarStr(x))).toEqual([
      '0',
      '-1',
    ]);
    expect(maybeForkScalars(sc({ umax: 5n }))).toBeUndefined();
  });
});

describe('adjust_scalar_min_max_vals, operation by operation', () => {
  it('adds ranges, wrapping only when all or none of the sums overflow', () => {
    expect(u64(alu(sc({ umax: 10n }), k(5n), 'add'))).toEqual([5n, 15n]);
    expect(u64(alu(sc({ umin: U64_MAX - 1n }), k(2n), 'add'))).toEqual([0n, 1n]);
    const some = alu(sc({ umin: U64_MAX - 1n }), sc({ umax: 2n }), 'add');
    expect([u64(some), s64(some)]).toEqual([
      [0n, U64_MAX],
      [-2n, 1n],
    ]);
    const w = alu(sc({ umin: 0x1_0000_0000n, umax: 0x1_0000_0005n }), k(1n), 'add', 32);
    expect(u64(w)).toEqual([1n, 6n]);
  });

  it('subtracts ranges', () => {
    expect(u64(alu(sc({ umin: 10n, umax: 20n }), sc({ umin: 1n, umax: 5n }), 'sub'))).toEqual([
      5n,
      19n,
    ]);
    const under = alu(sc({ umax: 10n }), k(1n), 'sub');
    expect([u64(under), s64(under)]).toEqual([
      [0n, U64_MAX],
      [-1n, 9n],
    ]);
  });

  it('negates, as 0 - x', () => {
    expect(alu(k(5n), SCALAR_UNKNOWN, 'neg')).toEqual(k(-5n));
    const n = alu(sc({ umin: 1n, umax: 10n }), SCALAR_UNKNOWN, 'neg');
    expect([s64(n), u64(n)]).toEqual([
      [-10n, -1n],
      [U64_MAX - 9n, U64_MAX],
    ]);
    expect(alu(k(5n), SCALAR_UNKNOWN, 'neg', 32)).toEqual(k(0xffff_fffbn));
  });

  it('multiplies unsigned and signed ranges', () => {
    expect(u64(alu(sc({ umin: 2n, umax: 3n }), sc({ umin: 4n, umax: 5n }), 'mul'))).toEqual([
      8n,
      15n,
    ]);
    expect(s64(alu(sc({ smin: -3n, smax: 2n }), k(-2n), 'mul'))).toEqual([-4n, 6n]);
    expect(alu(sc({ umin: 1n << 40n }), sc({ umin: 1n << 30n }), 'mul')).toEqual(SCALAR_UNKNOWN);
  });

  it('divides by a constant, unsigned and signed, with BPF division by zero', () => {
    expect(u64(alu(sc({ umin: 10n, umax: 20n }), k(3n), 'div'))).toEqual([3n, 6n]);
    expect(s64(alu(sc({ smin: -20n, smax: -10n }), k(3n), 'sdiv'))).toEqual([-6n, -3n]);
    expect(s64(alu(sc({ smin: -20n, smax: -10n }), k(-3n), 'sdiv'))).toEqual([3n, 6n]);
    expect(alu(k(S64_MIN), k(-1n), 'sdiv')).toEqual(k(S64_MIN));
    expect(s64(alu(sc({ smin: S64_MIN, smax: S64_MIN + 10n }), k(-1n), 'sdiv'))).toEqual([
      S64_MIN,
      S64_MAX,
    ]);
    expect(alu(SCALAR_UNKNOWN, k(0n), 'div')).toEqual(k(0n));
    expect(alu(SCALAR_UNKNOWN, k(0n), 'sdiv', 32)).toEqual(k(0n));
    expect(alu(sc({ umax: 10n }), sc({ umax: 3n }), 'div')).toEqual(SCALAR_UNKNOWN);
  });

  it('takes a remainder by a constant, keeping x when |x| < |c|', () => {
    expect(u64(alu(sc({ umin: 2n, umax: 5n }), k(10n), 'mod'))).toEqual([2n, 5n]);
    expect(u64(alu(sc({ umax: 100n }), k(10n), 'mod'))).toEqual([0n, 9n]);
    expect(s64(alu(sc({ smin: -20n, smax: 20n }), k(7n), 'smod'))).toEqual([-6n, 6n]);
    expect(s64(alu(sc({ smin: 5n, smax: 20n }), k(-7n), 'smod'))).toEqual([0n, 6n]);
    expect(s64(alu(sc({ smin: -20n, smax: -5n }), k(7n), 'smod'))).toEqual([-6n, 0n]);
    const x = sc({ umin: 5n, umax: 10n });
    expect(alu(x, k(0n), 'mod')).toEqual(x);
    expect(alu(k(0x1_0000_0005n), k(0n), 'mod', 32)).toEqual(k(5n));
    // Folded to the constant (the kernel keeps [0, 2]).
    expect(alu(k(10n), k(3n), 'mod')).toEqual(k(1n));
  });

  it('bounds and, or and xor by the tnum and the operands', () => {
    const and = alu(SCALAR_UNKNOWN, k(0xffn), 'and');
    expect([u64(and), and.varOff]).toEqual([[0n, 255n], tnumRange(0n, 255n)]);
    expect(u64(alu(sc({ umax: 0xfn }), k(0x100n), 'or'))).toEqual([0x100n, 0x10fn]);
    expect(alu(k(0xf0n), k(0xffn), 'xor')).toEqual(k(0x0fn));
    expect(alu(k(0x1_0000_00f0n), k(0xffn), 'xor', 32)).toEqual(k(0x0fn));
  });

  it('shifts by a constant and forgets everything for other shift amounts', () => {
    expect(u64(alu(sc({ umin: 1n, umax: 3n }), k(2n), 'lsh'))).toEqual([4n, 12n]);
    expect(u64(alu(sc({ umin: 1n, umax: 3n }), k(2n), 'lsh', 32))).toEqual([4n, 12n]);
    // <<32 keeps the s32 bounds (the "<<32 s>>32" sign-extension idiom).
    const l32 = alu(sc({ s32Min: -5, s32Max: 5 }), k(32n), 'lsh');
    expect(s64(l32)).toEqual([-(5n << 32n), 5n << 32n]);
    expect(s64(alu(l32, k(32n), 'arsh'))).toEqual([-5n, 5n]);
    expect(scalarStr(alu(SCALAR_UNKNOWN, k(32n), 'rsh'))).toBe(
      'scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))',
    );
    expect(s64(alu(sc({ smin: -16n, smax: 15n }), k(2n), 'arsh'))).toEqual([-4n, 3n]);
    expect(alu(k(1n), sc({ umax: 3n }), 'lsh')).toEqual(SCALAR_UNKNOWN);
    expect(alu(k(1n), k(64n), 'lsh')).toEqual(SCALAR_UNKNOWN);
    expect(alu(k(1n), k(32n), 'rsh', 32)).toEqual(SCALAR_UNKNOWN);
  });

  it('moves 64 bits unchanged and 32 bits zero-extended', () => {
    const x = sc({ umin: 3n, umax: 0x1_0000_0000n });
    expect(alu(SCALAR_UNKNOWN, x, 'mov')).toBe(x);
    expect(alu(SCALAR_UNKNOWN, k(0x1_0000_0005n), 'mov', 32)).toEqual(k(5n));
    expect(alu(SCALAR_UNKNOWN, k(immU64(-1)), 'mov', 32)).toEqual(k(0xffff_ffffn));
  });
});

describe('precision the verifier relies on', () => {
  const OPS: readonly AluOp[] = ALU_OP_NAMES;

  it('keeps constants constant through every operation (6,000 cases)', () => {
    const rng = createPrng(0xc057);
    for (let i = 0; i < 6_000; i++) {
      const op = OPS[i % OPS.length] as AluOp;
      const width: Width = rng.bool() ? 64 : 32;
      const x = randValue(rng);
      const isShift = op === 'lsh' || op === 'rsh' || op === 'arsh';
      const y = isShift ? BigInt(rng.int(width)) : randValue(rng);
      const r = alu(k(x), k(y), op, width);
      const want = k(aluOp(op, width, x, y));
      if (!sameScalar(r, want)) {
        throw new Error(`${op}${width} ${x} ${y}: ${scalarStr(r)} is not ${scalarStr(want)}`);
      }
    }
  });

  it('bounds x & 0xff by 255 whatever x is', () => {
    for (const x of [SCALAR_UNKNOWN, sc({ smin: -5n, smax: 5n }), sc({ umin: 1n << 40n })]) {
      expect(alu(x, k(0xffn), 'and').umax).toBeLessThanOrEqual(255n);
      expect(alu(x, k(0xffn), 'and', 32).umax).toBeLessThanOrEqual(255n);
    }
  });

  it('adds non-overflowing ranges exactly (2,000 cases)', () => {
    const rng = createPrng(0xadd);
    for (let i = 0; i < 2_000; i++) {
      const r64 = (): bigint => BigInt(rng.next32()) << BigInt(rng.int(31));
      const [a, b, c, d] = [r64(), r64(), r64(), r64()];
      const x = sc({ umin: a < b ? a : b, umax: a < b ? b : a });
      const y = sc({ umin: c < d ? c : d, umax: c < d ? d : c });
      const r = alu(x, y, 'add');
      expect([r.umin, r.umax]).toEqual([x.umin + y.umin, x.umax + y.umax]);
      expect([r.smin, r.smax]).toEqual([x.smin + y.smin, x.smax + y.smax]);
    }
  });

  it('refines "if r1 < 10" to umax 9 when taken and umin 10 when not', () => {
    const { trueDst, falseDst } = regSetMinMax(SCALAR_UNKNOWN, k(10n), 'lt', 64);
    expect([trueDst.umin, trueDst.umax, trueDst.varOff]).toEqual([0n, 9n, tnumRange(0n, 15n)]);
    expect([falseDst.umin, falseDst.umax]).toEqual([10n, U64_MAX]);
    const w = regSetMinMax(SCALAR_UNKNOWN, k(10n), 'lt', 32).trueDst;
    expect([w.u32Min, w.u32Max, w.s32Min, w.s32Max]).toEqual([0, 9, 0, 9]);
  });
});

describe('is_branch_taken', () => {
  const CONDS: readonly JmpCond[] = [
    'eq',
    'ne',
    'gt',
    'ge',
    'lt',
    'le',
    'sgt',
    'sge',
    'slt',
    'sle',
    'set',
  ];

  it('decides every condition on two constants', () => {
    const taken = CONDS.map((c) => isBranchTaken(k(3n), k(10n), c, 64));
    expect(taken).toEqual([0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1]);
    const neg = CONDS.map((c) => isBranchTaken(k(-3n), k(10n), c, 64));
    expect(neg).toEqual([0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1]);
    expect(isBranchTaken(k(0x1_0000_0005n), k(5n), 'eq', 32)).toBe(1);
    expect(isBranchTaken(k(0x1_0000_0005n), k(5n), 'eq', 64)).toBe(0);
    expect(isBranchTaken(k(0x8000_0000n), k(0n), 'slt', 32)).toBe(1);
  });

  it('decides from ranges, tnums and the 32-bit view', () => {
    expect(isBranchTaken(sc({ umax: 5n }), k(10n), 'lt', 64)).toBe(1);
    expect(isBranchTaken(sc({ umin: 10n, umax: 20n }), k(10n), 'lt', 64)).toBe(0);
    expect(isBranchTaken(sc({ umin: 5n, umax: 15n }), k(10n), 'lt', 64)).toBe(-1);
    expect(isBranchTaken(sc({ smin: -5n, smax: -1n }), k(0n), 'slt', 64)).toBe(1);
    expect(isBranchTaken(sc({ smin: -5n, smax: -1n }), k(0n), 'sgt', 64)).toBe(0);
    expect(isBranchTaken(sc({ varOff: { value: 1n, mask: 2n } }), k(4n), 'eq', 64)).toBe(0);
    expect(isBranchTaken(sc({ varOff: { value: 1n, mask: 2n } }), k(4n), 'ne', 64)).toBe(1);
    expect(isBranchTaken(sc({ u32Max: 5 }), k(0x1_0000_0010n), 'eq', 64)).toBe(0);
  });

  it('decides set from known bits of one constant operand', () => {
    expect(isBranchTaken(sc({ varOff: { value: 4n, mask: 3n } }), k(4n), 'set', 64)).toBe(1);
    expect(isBranchTaken(sc({ varOff: { value: 0n, mask: 3n } }), k(4n), 'set', 64)).toBe(0);
    expect(isBranchTaken(k(4n), sc({ varOff: { value: 0n, mask: 3n } }), 'set', 64)).toBe(0);
    expect(isBranchTaken(sc({ umax: 7n }), k(4n), 'set', 64)).toBe(-1);
    expect(isBranchTaken(sc({ umax: 7n }), sc({ umax: 7n }), 'set', 64)).toBe(-1);
    expect(isBranchTaken(k(0x1_0000_0000n), k(0x1_0000_0000n), 'set', 32)).toBe(0);
  });

  it('compares a register with itself', () => {
    const x = sc({ umax: 5n });
    const same = CONDS.map((c) => isBranchTaken(x, x, c, 64, true));
    expect(same).toEqual([1, 0, 0, 1, 0, 1, 0, 1, 0, 1, -1]);
    expect(isBranchTaken(sc({ umin: 1n, umax: 5n }), SCALAR_UNKNOWN, 'set', 64, true)).toBe(1);
    expect(isBranchTaken(k(0n), k(0n), 'set', 64, true)).toBe(0);
  });

  it('finds a dead branch by refining both sides (simulate_both_branches_taken)', () => {
    // Unsynced: the tnum says the low half is < 0x100 but the u32 range does not know it yet.
    const x: Scalar = { ...SCALAR_UNKNOWN, varOff: { value: 0n, mask: 0xffff_ffff_0000_00ffn } };
    expect(isBranchTaken(x, k(0x100n), 'lt', 32)).toBe(1);
    expect(isBranchTaken(x, k(0x100n), 'ge', 32)).toBe(0);
  });

  it('misses the 64-bit dead branch the way the kernel does (tnum_step makes it a constant)', () => {
    // umin = 0x100 > tmax = 0xff: __update_reg64_bounds marks the register known 0xff.
    const x: Scalar = { ...SCALAR_UNKNOWN, varOff: tnumRange(0n, 0xffn) };
    expect(isBranchTaken(x, k(0x100n), 'lt', 64)).toBe(-1);
    expect(regSetMinMax(x, k(0x100n), 'lt', 64).falseDst).toEqual(k(0xffn));
  });
});

describe('reg_set_min_max', () => {
  it('refines eq and ne against a constant, and ne at a range edge', () => {
    const x = sc({ umax: 10n });
    const eq = regSetMinMax(x, k(7n), 'eq', 64);
    expect([eq.trueDst, u64(eq.falseDst)]).toEqual([k(7n), [0n, 10n]]);
    const ne = regSetMinMax(x, k(0n), 'ne', 64);
    expect([u64(ne.trueDst), ne.falseDst]).toEqual([[1n, 10n], k(0n)]);
    const ne32 = regSetMinMax(sc({ u32Min: 3, u32Max: 9 }), k(9n), 'ne', 32).trueDst;
    expect([ne32.u32Min, ne32.u32Max]).toEqual([3, 8]);
  });

  it('refines both registers of a register-register comparison', () => {
    const a = sc({ umax: 100n });
    const b = sc({ umin: 50n, umax: 60n });
    const gt = regSetMinMax(a, b, 'sgt', 64);
    expect([s64(gt.trueDst), s64(gt.trueSrc)]).toEqual([
      [51n, 100n],
      [50n, 60n],
    ]);
    expect([s64(gt.falseDst), s64(gt.falseSrc)]).toEqual([
      [0n, 60n],
      [50n, 60n],
    ]);
    const lt = regSetMinMax(b, a, 'lt', 64);
    expect([u64(lt.trueDst), u64(lt.trueSrc)]).toEqual([
      [50n, 60n],
      [51n, 100n],
    ]);
    const eq = regSetMinMax(a, b, 'eq', 64);
    expect([u64(eq.trueDst), u64(eq.trueSrc)]).toEqual([
      [50n, 60n],
      [50n, 60n],
    ]);
  });

  it('sets or clears a single bit for set and its negation', () => {
    const { trueDst, falseDst } = regSetMinMax(SCALAR_UNKNOWN, k(8n), 'set', 64);
    expect(trueDst.varOff).toEqual({ value: 8n, mask: U64_MAX ^ 8n });
    expect(falseDst.varOff).toEqual({ value: 0n, mask: U64_MAX ^ 8n });
    const multi = regSetMinMax(SCALAR_UNKNOWN, k(12n), 'set', 64);
    expect(multi.trueDst).toEqual(SCALAR_UNKNOWN);
    expect(multi.falseDst.varOff).toEqual({ value: 0n, mask: U64_MAX ^ 12n });
    const w = regSetMinMax(SCALAR_UNKNOWN, k(0x1_0000_0001n), 'set', 32).trueDst;
    expect(w.varOff).toEqual({ value: 1n, mask: U64_MAX ^ 1n });
  });

  it('refines the subregister for 32-bit comparisons', () => {
    const le = regSetMinMax(SCALAR_UNKNOWN, k(5n), 'le', 32).trueDst;
    expect([le.u32Min, le.u32Max, le.s32Min, le.s32Max]).toEqual([0, 5, 0, 5]);
    const sge = regSetMinMax(SCALAR_UNKNOWN, k(immU64(-3)), 'sge', 32).trueDst;
    expect([sge.s32Min, sge.s32Max]).toEqual([-3, 0x7fff_ffff]);
  });

  it('learns nothing from a register compared with itself', () => {
    const x = sc({ umax: 5n });
    const r = regSetMinMax(x, x, 'lt', 64, true);
    expect([r.trueDst, r.trueSrc, r.falseDst, r.falseSrc]).toEqual([x, x, x, x]);
  });
});

describe('constant registers', () => {
  it('reads a constant at 64 or 32 bits (is_reg_const, reg_const_value)', () => {
    const upperUnknown = sc({ varOff: { value: 7n, mask: 0xffff_ffff_0000_0000n } });
    expect([isRegConst(upperUnknown, 64), isRegConst(upperUnknown, 32)]).toEqual([false, true]);
    expect(regConstValue(upperUnknown, 32)).toBe(7n);
    expect(regConstValue(k(0x1_0000_0007n), 64)).toBe(0x1_0000_0007n);
    expect(EDGES.every((v) => isRegConst(k(v), 64))).toBe(true);
  });
});
