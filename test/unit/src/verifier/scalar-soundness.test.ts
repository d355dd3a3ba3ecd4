/**
 * Soundness of the verifier's scalar domain against the exact BPF semantics of
 * src/interp/alu.ts: random abstract scalars (scalar-gen.ts) and random concrete members go
 * through every abstract ALU operation, conversion and branch function and the concrete
 * result must stay inside the abstract one. A failure prints the seed; rerun with
 * `BPF_VERIFIER_SEED=<seed>` to reproduce it.
 */

import { describe, it } from 'vitest';
import { createPrng, type Prng } from '../../../helpers/prng.js';
import { aluOp, endian, immU64, jmpCond, movsx } from '../../../../src/interp/alu.js';
import type { AluOp, JmpCond, Width } from '../../../../src/isa/table.js';
import { ALU_OP_NAMES, JMP_COND_NAMES } from '../../../../src/isa/table.js';
import {
  regBoundsSanityCheck,
  scalarByteSwap,
  scalarCoerce,
  scalarCoerceSx,
  scalarContains,
  scalarKnown,
  scalarMovsx,
  type Scalar,
} from '../../../../src/verifier/bounds.js';
import { adjustScalarMinMaxVals, maybeForkScalars } from '../../../../src/verifier/scalar.js';
import { isBranchTaken, regSetMinMax } from '../../../../src/verifier/cond.js';
import { randSample, type Sample } from './scalar-gen.js';

const SEED = Number(process.env['BPF_VERIFIER_SEED'] ?? 0x5ca1ab1e);

const ALU_OPS: readonly AluOp[] = ALU_OP_NAMES;

const CONDS: readonly JmpCond[] = JMP_COND_NAMES;

const IMMS: readonly number[] = [
  0, 1, 2, 3, 7, 8, 16, 31, 32, 33, 63, 64, 0xff, 0x7fff, -1, -2, -8, -128, -0x8000_0000,
  0x7fff_ffff,
];

function hexOf(x: bigint): string {
  return x < 0n ? '-0x' + (-x).toString(16) : '0x' + x.toString(16);
}

function fmt(s: Scalar): string {
  return (
    `{var_off=(${hexOf(s.varOff.value)}; ${hexOf(s.varOff.mask)}) ` +
    `u64=[${hexOf(s.umin)}, ${hexOf(s.umax)}] s64=[${s.smin}, ${s.smax}] ` +
    `u32=[${s.u32Min}, ${s.u32Max}] s32=[${s.s32Min}, ${s.s32Max}]}`
  );
}

function fail(what: string, parts: Record<string, string>): never {
  const lines = Object.entries(parts).map(([k, v]) => `  ${k}: ${v}`);
  throw new Error(`seed ${SEED}: ${what}\n${lines.join('\n')}`);
}

/** A K-source operand: the sign-extended imm as a known scalar. */
function immSample(rng: Prng): Sample {
  const imm = rng.bool(0.6) ? rng.pick(IMMS) : rng.next32() | 0;
  const v = immU64(imm);
  return { s: scalarKnown(v), v };
}

function operand(rng: Prng): Sample {
  return rng.bool(0.35) ? immSample(rng) : randSample(rng);
}

describe('the scalar domain is sound against the interpreter', () => {
  it('keeps the concrete result of every ALU op in the abstract result (60,000 cases)', () => {
    const rng = createPrng(SEED);
    for (let i = 0; i < 60_000; i++) {
      const op = ALU_OPS[i % ALU_OPS.length] as AluOp;
      const width: Width = rng.bool() ? 64 : 32;
      const dst = randSample(rng);
      const src = operand(rng);
      const r = adjustScalarMinMaxVals(dst.s, src.s, op, width);
      const c = aluOp(op, width, dst.v, src.v);
      const insane = regBoundsSanityCheck(r);
      if (!scalarContains(r, c) || insane !== undefined) {
        fail(`case ${i}: ${op}${width === 32 ? '32' : ''} is unsound`, {
          dst: `${fmt(dst.s)} holding ${hexOf(dst.v)}`,
          src: `${fmt(src.s)} holding ${hexOf(src.v)}`,
          result: `${fmt(r)}${insane ? ` (${insane})` : ''}`,
          concrete: hexOf(c),
        });
      }
    }
  });

  it('predicts branches correctly and refines the taken side soundly (40,000 cases)', () => {
    const rng = createPrng(SEED + 1);
    for (let i = 0; i < 40_000; i++) {
      const cond = CONDS[i % CONDS.length] as JmpCond;
      const width: Width = rng.bool() ? 64 : 32;
      const dst = randSample(rng);
      const sameReg = rng.bool(0.05);
      const src = sameReg ? dst : operand(rng);
      const taken = jmpCond(cond, width, dst.v, src.v);
      const predicted = isBranchTaken(dst.s, src.s, cond, width, sameReg);
      const states = regSetMinMax(dst.s, src.s, cond, width, sameReg);
      const [d, s] = taken ? [states.trueDst, states.trueSrc] : [states.falseDst, states.falseSrc];
      const wrongPrediction = (predicted === 1 && !taken) || (predicted === 0 && taken);
      if (wrongPrediction || !scalarContains(d, dst.v) || !scalarContains(s, src.v)) {
        fail(`case ${i}: if ${cond}${width === 32 ? '32' : ''} is unsound`, {
          dst: `${fmt(dst.s)} holding ${hexOf(dst.v)}`,
          src: `${fmt(src.s)} holding ${hexOf(src.v)}${sameReg ? ' (same register)' : ''}`,
          taken: `${taken}, predicted ${predicted}`,
          refinedDst: fmt(d),
          refinedSrc: fmt(s),
        });
      }
    }
  });

  it('keeps movsx, ldsx, narrowing and byte swaps sound (16,000 cases)', () => {
    const rng = createPrng(SEED + 2);
    for (let i = 0; i < 16_000; i++) {
      const x = randSample(rng);
      const kind = i % 4;
      let r: Scalar;
      let c: bigint;
      let what: string;
      if (kind === 0) {
        const width: Width = rng.bool() ? 64 : 32;
        const bits = rng.pick(width === 64 ? ([8, 16, 32] as const) : ([8, 16] as const));
        r = scalarMovsx(x.s, width, bits);
        c = movsx(width, bits, x.v);
        what = `movsx${width} from ${bits} bits`;
      } else if (kind === 1) {
        const size = rng.pick([1, 2, 4] as const);
        r = scalarCoerceSx(x.s, size);
        c = BigInt.asUintN(64, BigInt.asIntN(size * 8, x.v));
        what = `ldsx of ${size} bytes`;
      } else if (kind === 2) {
        const size = rng.pick([1, 2, 4] as const);
        r = scalarCoerce(x.s, size);
        c = BigInt.asUintN(size * 8, x.v);
        what = `narrowing to ${size} bytes`;
      } else {
        const order = rng.pick(['le', 'be', 'swap'] as const);
        const bits = rng.pick([16, 32, 64] as const);
        r = scalarByteSwap(x.s, order, bits);
        c = endian(order, bits, x.v);
        what = `${order}${bits}`;
      }
      if (!scalarContains(r, c)) {
        fail(`case ${i}: ${what} is unsound`, {
          src: `${fmt(x.s)} holding ${hexOf(x.v)}`,
          result: fmt(r),
          concrete: hexOf(c),
        });
      }
    }
  });

  it('forks a [-1, 0] scalar into two states that cover its members (4,000 cases)', () => {
    const rng = createPrng(SEED + 3);
    let forked = 0;
    for (let i = 0; i < 4_000; i++) {
      // Arithmetic shift right by 63 (or 31) is how [-1, 0] values arise.
      const x = randSample(rng);
      const width: Width = rng.bool() ? 64 : 32;
      const k = scalarKnown(width === 64 ? 63n : 31n);
      const s = adjustScalarMinMaxVals(x.s, k, 'arsh', width);
      const v = aluOp('arsh', width, x.v, width === 64 ? 63n : 31n);
      const pair = maybeForkScalars(s);
      if (pair === undefined) continue;
      forked++;
      if (!scalarContains(pair[0], v) && !scalarContains(pair[1], v)) {
        fail(`case ${i}: fork loses ${hexOf(v)}`, {
          state: fmt(s),
          zero: fmt(pair[0]),
          minusOne: fmt(pair[1]),
        });
      }
    }
    if (forked < 1_000) fail('too few forks exercised', { forked: String(forked) });
  });
});
