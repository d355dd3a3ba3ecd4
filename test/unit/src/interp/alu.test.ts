/**
 * The exact ALU, byte-order, movsx and jump-condition semantics of src/interp/alu.ts:
 * hand-written expectations at the edge values, a full edge-value matrix against independent
 * reference models (Number arithmetic for 32 bits, modular arithmetic for 64), and the
 * K-source (imm) and X-source (reg) forms of every operation run through the interpreter.
 */

import { describe, expect, it } from 'vitest';
import { aluOp, bswap, endian, immU64, jmpCond, movsx } from '../../../../src/interp/alu.js';
import {
  BPF_ALU32_IMM_OFF,
  BPF_ALU32_REG_OFF,
  BPF_ALU64_IMM_OFF,
  BPF_ALU64_REG_OFF,
  BPF_BSWAP,
  BPF_ENDIAN,
  BPF_EXIT_INSN,
  BPF_JMP32_IMM,
  BPF_JMP32_REG,
  BPF_JMP_IMM,
  BPF_JMP_REG,
  BPF_LD_IMM64,
  BPF_MOV64_IMM,
  BPF_MOVSX32_REG,
  BPF_MOVSX64_REG,
} from '../../../../src/isa/build.js';
import {
  BPF_ADD,
  BPF_AND,
  BPF_ARSH,
  BPF_DIV,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LSH,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_REG_0,
  BPF_REG_1,
  BPF_REG_2,
  BPF_RSH,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_XOR,
} from '../../../../src/isa/opcodes.js';
import type { AluOp, JmpCond, Width } from '../../../../src/isa/table.js';
import { ALU_OP_NAMES, JMP_COND_NAMES } from '../../../../src/isa/table.js';
import { interpret } from '../../../../src/interp/interpreter.js';
import type { Insn } from '../../../../src/isa/insn.js';
import { createProgram } from '../../../../src/program.js';
import { makeExecEnv } from '../../../helpers/exec-env.js';

/** One env for all the register-only programs here (a fresh 1 MiB env per run is slow). */
const ENV = makeExecEnv();

/** r0 after running `insns`, which must not touch memory. */
function run(insns: readonly Insn[]): bigint {
  return interpret(createProgram(insns), ENV, 0n, 0n);
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = 0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;
const U32_MAX = 0xffff_ffffn;
const I32_MIN = 0x8000_0000n;
const I32_MAX = 0x7fff_ffffn;
const TWO32 = 0x1_0000_0000n;

const ALU_OPS: readonly AluOp[] = ALU_OP_NAMES;

const CONDS: readonly JmpCond[] = JMP_COND_NAMES;

/** Edge values as u64 (negative numbers are written as their two's complement). */
const EDGES: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  7n,
  10n,
  31n,
  32n,
  63n,
  64n,
  0x7fn,
  0x80n,
  0xffn,
  0xffffn,
  I32_MAX,
  I32_MIN,
  U32_MAX,
  TWO32,
  TWO32 + 1n,
  I64_MAX,
  I64_MIN,
  U64_MAX,
  U64_MAX - 1n,
  BigInt.asUintN(64, -10n),
  0xdead_beef_cafe_baben,
  0xffff_ffff_8000_0000n,
];

/** s32 immediates worth trying. */
const IMMS: readonly number[] = [0, 1, -1, 3, -10, 31, 32, 63, 64, -2147483648, 2147483647, 0x1234];

// [op, width, dst, src, expected]; dst and src may be negative (aluOp reduces them mod 2^64).
const CASES: readonly [AluOp, Width, bigint, bigint, bigint][] = [
  ['add', 64, 1n, 2n, 3n],
  ['add', 64, U64_MAX, 1n, 0n],
  ['add', 64, I64_MAX, 1n, I64_MIN],
  ['add', 64, I64_MIN, I64_MIN, 0n],
  ['add', 32, 1n, 2n, 3n],
  ['add', 32, U32_MAX, 1n, 0n],
  ['add', 32, TWO32 + 5n, 2n * TWO32 + 3n, 8n],
  ['add', 32, I32_MAX, 1n, I32_MIN],
  ['add', 32, U64_MAX, 0n, U32_MAX],
  ['sub', 64, 3n, 5n, U64_MAX - 1n],
  ['sub', 64, 0n, 1n, U64_MAX],
  ['sub', 64, I64_MIN, 1n, I64_MAX],
  ['sub', 32, 3n, 5n, 0xffff_fffen],
  ['sub', 32, TWO32, 1n, U32_MAX],
  ['sub', 32, 0n, I32_MIN, I32_MIN],
  ['mul', 64, 3n, 7n, 21n],
  ['mul', 64, U64_MAX, U64_MAX, 1n],
  ['mul', 64, I64_MIN, -1n, I64_MIN],
  ['mul', 64, TWO32, TWO32, 0n],
  ['mul', 32, 3n, 7n, 21n],
  ['mul', 32, U32_MAX, U32_MAX, 1n],
  ['mul', 32, I32_MIN, -1n, I32_MIN],
  ['mul', 32, TWO32 + 2n, 3n, 6n],
  ['mul', 32, 0x10000n, 0x10000n, 0n],
  ['div', 64, 10n, 3n, 3n],
  ['div', 64, 10n, 0n, 0n],
  ['div', 64, U64_MAX, 2n, I64_MAX],
  ['div', 64, U64_MAX, -10n, 1n],
  ['div', 64, I64_MIN, -1n, 0n],
  ['div', 32, 10n, 3n, 3n],
  ['div', 32, 10n, 0n, 0n],
  ['div', 32, 10n, TWO32, 0n],
  ['div', 32, U64_MAX, 2n, I32_MAX],
  ['div', 32, TWO32 + 16n, 4n, 4n],
  ['sdiv', 64, 10n, 3n, 3n],
  ['sdiv', 64, -10n, 3n, BigInt.asUintN(64, -3n)],
  ['sdiv', 64, 10n, -3n, BigInt.asUintN(64, -3n)],
  ['sdiv', 64, -10n, -3n, 3n],
  ['sdiv', 64, I64_MIN, -1n, I64_MIN],
  ['sdiv', 64, 5n, 0n, 0n],
  ['sdiv', 64, -7n, 0n, 0n],
  ['sdiv', 32, 0xffff_fff6n, 3n, 0xffff_fffdn],
  ['sdiv', 32, I32_MIN, U32_MAX, I32_MIN],
  ['sdiv', 32, I32_MIN, -1n, I32_MIN],
  ['sdiv', 32, 5n, 0n, 0n],
  ['sdiv', 32, TWO32 + 10n, TWO32, 0n],
  ['sdiv', 32, -1n, 1n, U32_MAX],
  ['or', 64, 0xf0n, 0x0fn, 0xffn],
  ['or', 64, I64_MIN, 1n, I64_MIN + 1n],
  ['or', 32, TWO32 + 0xf0n, 0x0fn, 0xffn],
  ['or', 32, 0n, U64_MAX, U32_MAX],
  ['and', 64, U64_MAX, I64_MIN, I64_MIN],
  ['and', 64, 0xff00n, 0x0ff0n, 0x0f00n],
  ['and', 32, U64_MAX, U64_MAX, U32_MAX],
  ['and', 32, TWO32 + 3n, U64_MAX, 3n],
  ['lsh', 64, 1n, 0n, 1n],
  ['lsh', 64, 1n, 63n, I64_MIN],
  ['lsh', 64, 1n, 64n, 1n],
  ['lsh', 64, 1n, -1n, I64_MIN],
  ['lsh', 64, 3n, 63n, I64_MIN],
  ['lsh', 64, U64_MAX, 32n, 0xffff_ffff_0000_0000n],
  ['lsh', 32, 1n, 31n, I32_MIN],
  ['lsh', 32, 1n, 32n, 1n],
  ['lsh', 32, 1n, -1n, I32_MIN],
  ['lsh', 32, TWO32 + 1n, 0n, 1n],
  ['lsh', 32, 0x11n, -4n, 0x1000_0000n],
  ['rsh', 64, I64_MIN, 63n, 1n],
  ['rsh', 64, U64_MAX, 64n, U64_MAX],
  ['rsh', 64, U64_MAX, -1n, 1n],
  ['rsh', 64, U64_MAX, 0n, U64_MAX],
  ['rsh', 32, U64_MAX, 0n, U32_MAX],
  ['rsh', 32, I32_MIN, 31n, 1n],
  ['rsh', 32, I32_MIN, 32n, I32_MIN],
  ['rsh', 32, U64_MAX, -1n, 1n],
  ['arsh', 64, I64_MIN, 63n, U64_MAX],
  ['arsh', 64, I64_MIN, 64n, I64_MIN],
  ['arsh', 64, I64_MAX, 62n, 1n],
  ['arsh', 64, -16n, 2n, BigInt.asUintN(64, -4n)],
  ['arsh', 64, -1n, -1n, U64_MAX],
  ['arsh', 32, I32_MIN, 31n, U32_MAX],
  ['arsh', 32, I32_MIN, 48n, 0xffff_8000n],
  ['arsh', 32, TWO32 + I32_MAX, 4n, 0x07ff_ffffn],
  ['arsh', 32, U64_MAX, 0n, U32_MAX],
  ['arsh', 32, -1n, -1n, U32_MAX],
  ['neg', 64, 0n, 0n, 0n],
  ['neg', 64, 1n, 0n, U64_MAX],
  ['neg', 64, I64_MIN, 0n, I64_MIN],
  ['neg', 64, U64_MAX, 0n, 1n],
  ['neg', 32, 1n, 0n, U32_MAX],
  ['neg', 32, I32_MIN, 0n, I32_MIN],
  ['neg', 32, TWO32, 0n, 0n],
  ['neg', 32, U64_MAX, 0n, 1n],
  ['mod', 64, 10n, 3n, 1n],
  ['mod', 64, 10n, 0n, 10n],
  ['mod', 64, U64_MAX, 0n, U64_MAX],
  ['mod', 64, U64_MAX, 10n, 5n],
  ['mod', 64, I64_MIN, -1n, I64_MIN],
  ['mod', 32, TWO32 + 3n, 3n, 0n],
  ['mod', 32, TWO32 + 7n, 0n, 7n],
  ['mod', 32, U64_MAX, 0n, U32_MAX],
  ['mod', 32, 10n, TWO32, 10n],
  ['mod', 32, U32_MAX, 10n, 5n],
  ['smod', 64, -13n, 3n, U64_MAX],
  ['smod', 64, 13n, -3n, 1n],
  ['smod', 64, -13n, -3n, U64_MAX],
  ['smod', 64, -13n, 0n, BigInt.asUintN(64, -13n)],
  ['smod', 64, I64_MIN, -1n, 0n],
  ['smod', 64, 7n, 0n, 7n],
  ['smod', 32, 0xffff_fff3n, 3n, U32_MAX],
  ['smod', 32, 0xffff_fff3n, 0n, 0xffff_fff3n],
  ['smod', 32, -13n, 0n, 0xffff_fff3n],
  ['smod', 32, I32_MIN, U32_MAX, 0n],
  ['smod', 32, 13n, -3n, 1n],
  ['smod', 32, -13n, -3n, U32_MAX],
  ['xor', 64, U64_MAX, I64_MAX, I64_MIN],
  ['xor', 64, 5n, 5n, 0n],
  ['xor', 32, U64_MAX, 0n, U32_MAX],
  ['xor', 32, TWO32 + 1n, 1n, 0n],
  ['mov', 64, 5n, U64_MAX, U64_MAX],
  ['mov', 64, 5n, I64_MIN, I64_MIN],
  ['mov', 32, 5n, U64_MAX, U32_MAX],
  ['mov', 32, 5n, 0x1_2345_6789n, 0x2345_6789n],
];

/** Hex for test titles; negative inputs stay as written. */
function hex(v: bigint): string {
  return v < 0n ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}

/** `sdiv64(-0xa, 0x3) = 0xfffffffffffffffd`. */
function title([op, w, a, b, r]: readonly [AluOp, Width, bigint, bigint, bigint]): string {
  return `${op}${w}(${hex(a)}, ${hex(b)}) = ${hex(r)}`;
}

/** Independent 32-bit model in Number arithmetic; a and b are u32, so is the result. */
function ref32(op: AluOp, a: number, b: number): number {
  const sa = a | 0;
  const sb = b | 0;
  switch (op) {
    case 'add':
      return (a + b) >>> 0;
    case 'sub':
      return (a - b) >>> 0;
    case 'mul':
      return Math.imul(a, b) >>> 0;
    case 'div':
      return b === 0 ? 0 : Math.floor(a / b);
    case 'sdiv':
      if (sb === 0) return 0;
      return sa === -0x8000_0000 && sb === -1 ? a : Math.trunc(sa / sb) >>> 0;
    case 'or':
      return (a | b) >>> 0;
    case 'and':
      return (a & b) >>> 0;
    case 'lsh':
      return (a << (b & 31)) >>> 0;
    case 'rsh':
      return a >>> (b & 31);
    case 'neg':
      return -a >>> 0;
    case 'mod':
      return b === 0 ? a : a % b;
    case 'smod':
      return sb === 0 ? a : (sa % sb) >>> 0;
    case 'xor':
      return (a ^ b) >>> 0;
    case 'mov':
      return b;
    case 'arsh':
      return (a >> (b & 31)) >>> 0;
  }
}

const M64 = 1n << 64n;
const wrap64 = (x: bigint): bigint => ((x % M64) + M64) % M64;
const signed64 = (x: bigint): bigint => (x >= M64 / 2n ? x - M64 : x);

/** Independent 64-bit model in modular arithmetic; a and b are u64, so is the result. */
function ref64(op: AluOp, a: bigint, b: bigint): bigint {
  const sa = signed64(a);
  const sb = signed64(b);
  const pow = 2n ** (b % 64n);
  switch (op) {
    case 'add':
      return wrap64(a + b);
    case 'sub':
      return wrap64(a - b);
    case 'mul':
      return wrap64(a * b);
    case 'div':
      return b === 0n ? 0n : a / b;
    case 'sdiv':
      return sb === 0n ? 0n : wrap64(sa / sb);
    case 'or':
      return a | b;
    case 'and':
      return a & b;
    case 'lsh':
      return wrap64(a * pow);
    case 'rsh':
      return a / pow;
    case 'neg':
      return wrap64(-a);
    case 'mod':
      return b === 0n ? a : a - (a / b) * b;
    case 'smod':
      return sb === 0n ? a : wrap64(sa - (sa / sb) * sb);
    case 'xor':
      return a ^ b;
    case 'mov':
      return b;
    case 'arsh': {
      let q = sa / pow;
      if (sa < 0n && q * pow !== sa) q -= 1n;
      return wrap64(q);
    }
  }
}

/** Independent jump-condition model. */
function refCond(cond: JmpCond, width: Width, a: bigint, b: bigint): boolean {
  const ua = width === 32 ? a % TWO32 : a;
  const ub = width === 32 ? b % TWO32 : b;
  const half = width === 32 ? I32_MIN : I64_MIN;
  const sa = ua >= half ? ua - 2n * half : ua;
  const sb = ub >= half ? ub - 2n * half : ub;
  switch (cond) {
    case 'eq':
      return ua === ub;
    case 'ne':
      return ua !== ub;
    case 'gt':
      return ua > ub;
    case 'ge':
      return ua >= ub;
    case 'lt':
      return ua < ub;
    case 'le':
      return ua <= ub;
    case 'set':
      return (ua & ub) !== 0n;
    case 'sgt':
      return sa > sb;
    case 'sge':
      return sa >= sb;
    case 'slt':
      return sa < sb;
    case 'sle':
      return sa <= sb;
  }
}

describe('aluOp', () => {
  it.each(CASES.map((c) => [title(c), c] as const))('%s', (_title, [op, w, a, b, r]) => {
    expect(aluOp(op, w, a, b)).toBe(r);
  });

  it('covers every operation in both widths with hand-written cases', () => {
    for (const op of ALU_OPS) {
      for (const w of [32, 64] as const) {
        expect(
          CASES.some(([o, wd]) => o === op && wd === w),
          `${op}${w}`,
        ).toBe(true);
      }
    }
  });

  it('agrees with the 32-bit reference model on every pair of edge values', () => {
    const bad: string[] = [];
    for (const op of ALU_OPS) {
      for (const a of EDGES) {
        for (const b of EDGES) {
          const want = BigInt(ref32(op, Number(a & 0xffff_ffffn), Number(b & 0xffff_ffffn)));
          const got = aluOp(op, 32, a, b);
          if (got !== want) bad.push(`${op}32(${a}, ${b}) = ${got}, want ${want}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('agrees with the 64-bit reference model on every pair of edge values', () => {
    const bad: string[] = [];
    for (const op of ALU_OPS) {
      for (const a of EDGES) {
        for (const b of EDGES) {
          const want = ref64(op, a, b);
          const got = aluOp(op, 64, a, b);
          if (got !== want) bad.push(`${op}64(${a}, ${b}) = ${got}, want ${want}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('zero-extends every 32-bit result', () => {
    for (const op of ALU_OPS) {
      for (const a of EDGES) {
        for (const b of EDGES) expect(aluOp(op, 32, a, b) <= U32_MAX).toBe(true);
      }
    }
  });

  it('sign-extends s32 immediates to 64 bits', () => {
    expect(immU64(-1)).toBe(U64_MAX);
    expect(immU64(-2147483648)).toBe(0xffff_ffff_8000_0000n);
    expect(immU64(2147483647)).toBe(I32_MAX);
    expect(immU64(0)).toBe(0n);
    expect(immU64(0xffff_ffff)).toBe(U64_MAX);
  });
});

const BSWAP_CASES: readonly [16 | 32 | 64, bigint, bigint][] = [
  [16, 0x1122_3344_5566_7788n, 0x8877n],
  [32, 0x1122_3344_5566_7788n, 0x8877_6655n],
  [64, 0x1122_3344_5566_7788n, 0x8877_6655_4433_2211n],
  [16, 0xffn, 0xff00n],
  [32, 0x80n, 0x8000_0000n],
  [64, 1n, 0x0100_0000_0000_0000n],
  [64, U64_MAX, U64_MAX],
  [16, 0n, 0n],
];

describe('endian', () => {
  it.each(BSWAP_CASES)('bswap%s of %s is %s', (bits, v, r) => {
    expect(bswap(bits, v)).toBe(r);
    expect(endian('swap', bits, v)).toBe(r);
    expect(endian('be', bits, v)).toBe(r);
  });

  it('le keeps the low bits, zero-extended; le64 is a no-op', () => {
    const v = 0x1122_3344_5566_7788n;
    expect(endian('le', 16, v)).toBe(0x7788n);
    expect(endian('le', 32, v)).toBe(0x5566_7788n);
    expect(endian('le', 64, v)).toBe(v);
    expect(endian('le', 16, U64_MAX)).toBe(0xffffn);
  });

  it.each([
    ['le', BPF_ENDIAN(BPF_TO_LE, BPF_REG_0, 16), 0x7788n],
    ['le', BPF_ENDIAN(BPF_TO_LE, BPF_REG_0, 32), 0x5566_7788n],
    ['le', BPF_ENDIAN(BPF_TO_LE, BPF_REG_0, 64), 0x1122_3344_5566_7788n],
    ['be', BPF_ENDIAN(BPF_TO_BE, BPF_REG_0, 16), 0x8877n],
    ['be', BPF_ENDIAN(BPF_TO_BE, BPF_REG_0, 32), 0x8877_6655n],
    ['be', BPF_ENDIAN(BPF_TO_BE, BPF_REG_0, 64), 0x8877_6655_4433_2211n],
    ['bswap', BPF_BSWAP(BPF_REG_0, 16), 0x8877n],
    ['bswap', BPF_BSWAP(BPF_REG_0, 32), 0x8877_6655n],
    ['bswap', BPF_BSWAP(BPF_REG_0, 64), 0x8877_6655_4433_2211n],
  ])('the interpreter runs %s (imm %#) as defined', (_name, i, r) => {
    const insns = [...BPF_LD_IMM64(BPF_REG_0, 0x1122_3344_5566_7788n), i, BPF_EXIT_INSN()];
    expect(run(insns)).toBe(r);
  });
});

describe('movsx', () => {
  it.each([
    [64, 8, 0x80n, 0xffff_ffff_ffff_ff80n],
    [64, 8, 0x17fn, 0x7fn],
    [64, 16, 0x8000n, 0xffff_ffff_ffff_8000n],
    [64, 16, 0x1_7fffn, 0x7fffn],
    [64, 32, I32_MIN, 0xffff_ffff_8000_0000n],
    [64, 32, TWO32 + I32_MAX, I32_MAX],
    [32, 8, 0x80n, 0xffff_ff80n],
    [32, 8, U64_MAX - 0x80n, 0x7fn],
    [32, 16, 0x8000n, 0xffff_8000n],
    [32, 16, 0xffff_0001n, 1n],
  ] as const)('movsx%s%s of %s is %s', (width, bits, v, r) => {
    expect(movsx(width, bits, v)).toBe(r);
    const i =
      width === 64
        ? BPF_MOVSX64_REG(BPF_REG_0, BPF_REG_1, bits)
        : BPF_MOVSX32_REG(BPF_REG_0, BPF_REG_1, bits);
    const insns = [...BPF_LD_IMM64(BPF_REG_0, U64_MAX), ...BPF_LD_IMM64(BPF_REG_1, v), i];
    expect(run([...insns, BPF_EXIT_INSN()])).toBe(r);
  });
});

const OP_CODE: Readonly<Record<AluOp, readonly [number, number]>> = {
  add: [BPF_ADD, 0],
  sub: [BPF_SUB, 0],
  mul: [BPF_MUL, 0],
  div: [BPF_DIV, 0],
  sdiv: [BPF_DIV, 1],
  or: [BPF_OR, 0],
  and: [BPF_AND, 0],
  lsh: [BPF_LSH, 0],
  rsh: [BPF_RSH, 0],
  neg: [BPF_NEG, 0],
  mod: [BPF_MOD, 0],
  smod: [BPF_MOD, 1],
  xor: [BPF_XOR, 0],
  mov: [BPF_MOV, 0],
  arsh: [BPF_ARSH, 0],
};

describe('ALU instructions in the interpreter', () => {
  const DSTS: readonly bigint[] = [0n, 1n, 10n, I32_MIN, U32_MAX, TWO32 + 7n, I64_MIN, U64_MAX];

  function runAlu(op: AluOp, w: Width, dst: bigint, imm: number, form: 'imm' | 'reg'): bigint {
    const [code, off] = OP_CODE[op];
    const neg = op === 'neg';
    let i;
    if (form === 'imm' || neg) {
      const k = neg ? 0 : imm;
      i = w === 64 ? BPF_ALU64_IMM_OFF(code, 0, k, off) : BPF_ALU32_IMM_OFF(code, 0, k, off);
    } else {
      i = w === 64 ? BPF_ALU64_REG_OFF(code, 0, 1, off) : BPF_ALU32_REG_OFF(code, 0, 1, off);
    }
    const pre = [...BPF_LD_IMM64(BPF_REG_0, dst), ...BPF_LD_IMM64(BPF_REG_1, immU64(imm))];
    return run([...pre, i, BPF_EXIT_INSN()]);
  }

  for (const op of ALU_OPS) {
    for (const w of [32, 64] as const) {
      it(`${op}${w} gives aluOp's result in its imm and reg forms`, () => {
        const bad: string[] = [];
        for (const dst of DSTS) {
          for (const imm of IMMS) {
            const want = aluOp(op, w, dst, op === 'neg' ? 0n : immU64(imm));
            for (const form of ['imm', 'reg'] as const) {
              const got = runAlu(op, w, dst, imm, form);
              if (got !== want) bad.push(`${form} ${op}${w} ${dst}, ${imm}: ${got} != ${want}`);
            }
          }
        }
        expect(bad).toEqual([]);
      });
    }
  }

  it('mov with a negative imm sign-extends in 64 bits and zero-extends in 32 bits', () => {
    expect(runAlu('mov', 64, 0n, -1, 'imm')).toBe(U64_MAX);
    expect(runAlu('mov', 32, U64_MAX, -1, 'imm')).toBe(U32_MAX);
    expect(runAlu('mov', 32, U64_MAX, -2147483648, 'imm')).toBe(I32_MIN);
  });

  it('64-bit K-source ops see the sign-extended imm', () => {
    expect(runAlu('add', 64, 0n, -1, 'imm')).toBe(U64_MAX);
    expect(runAlu('and', 64, U64_MAX, -2147483648, 'imm')).toBe(0xffff_ffff_8000_0000n);
    expect(runAlu('or', 64, 0n, -2147483648, 'imm')).toBe(0xffff_ffff_8000_0000n);
    expect(runAlu('div', 64, U64_MAX, -10, 'imm')).toBe(1n);
    expect(runAlu('and', 32, U64_MAX, -2147483648, 'imm')).toBe(I32_MIN);
  });

  it('division by a zero imm gives 0 and modulo by a zero imm keeps dst', () => {
    expect(runAlu('div', 64, 7n, 0, 'imm')).toBe(0n);
    expect(runAlu('mod', 64, U64_MAX, 0, 'imm')).toBe(U64_MAX);
    expect(runAlu('mod', 32, U64_MAX, 0, 'imm')).toBe(U32_MAX);
    expect(runAlu('smod', 32, BigInt.asUintN(64, -10n), 0, 'reg')).toBe(0xffff_fff6n);
  });

  it('INT_MIN / -1 is INT_MIN and INT_MIN % -1 is 0 in both widths', () => {
    expect(runAlu('sdiv', 64, I64_MIN, -1, 'imm')).toBe(I64_MIN);
    expect(runAlu('smod', 64, I64_MIN, -1, 'reg')).toBe(0n);
    expect(runAlu('sdiv', 32, I32_MIN, -1, 'reg')).toBe(I32_MIN);
    expect(runAlu('smod', 32, I32_MIN, -1, 'imm')).toBe(0n);
  });
});

const JMP_CASES: readonly [JmpCond, Width, bigint, bigint, boolean][] = [
  ['eq', 64, 5n, 5n, true],
  ['eq', 64, 5n, 6n, false],
  ['eq', 64, U64_MAX, -1n, true],
  ['eq', 64, TWO32 + 5n, 5n, false],
  ['ne', 64, 5n, 6n, true],
  ['ne', 64, U64_MAX, -1n, false],
  ['gt', 64, U64_MAX, 1n, true],
  ['gt', 64, 1n, 2n, false],
  ['gt', 64, 2n, 2n, false],
  ['ge', 64, 2n, 2n, true],
  ['ge', 64, 1n, 2n, false],
  ['ge', 64, I64_MIN, I64_MAX, true],
  ['lt', 64, 1n, U64_MAX, true],
  ['lt', 64, 2n, 2n, false],
  ['le', 64, 2n, 2n, true],
  ['le', 64, U64_MAX, 0n, false],
  ['set', 64, 6n, 2n, true],
  ['set', 64, 6n, 1n, false],
  ['set', 64, I64_MIN, I64_MIN, true],
  ['sgt', 64, 1n, -1n, true],
  ['sgt', 64, -1n, 1n, false],
  ['sgt', 64, I64_MAX, I64_MIN, true],
  ['sge', 64, -1n, -1n, true],
  ['sge', 64, I64_MIN, I64_MAX, false],
  ['slt', 64, I64_MIN, 0n, true],
  ['slt', 64, 0n, I64_MIN, false],
  ['sle', 64, -1n, 0n, true],
  ['sle', 64, 0n, -1n, false],
  ['eq', 32, TWO32 + 5n, 5n, true],
  ['eq', 32, 5n, 6n, false],
  ['ne', 32, TWO32 + 5n, 5n, false],
  ['ne', 32, 5n, 6n, true],
  ['gt', 32, U32_MAX, 1n, true],
  ['gt', 32, TWO32, 1n, false],
  ['ge', 32, 2n * TWO32 + 1n, TWO32 + 1n, true],
  ['ge', 32, 0n, 1n, false],
  ['lt', 32, TWO32, 1n, true],
  ['lt', 32, U32_MAX, 1n, false],
  ['le', 32, 5n, TWO32 + 5n, true],
  ['le', 32, 6n, 5n, false],
  ['set', 32, TWO32, TWO32, false],
  ['set', 32, 3n, TWO32 + 2n, true],
  ['sgt', 32, 0n, U32_MAX, true],
  ['sgt', 32, I32_MIN, I32_MAX, false],
  ['sge', 32, I32_MIN, I32_MIN, true],
  ['sge', 32, I32_MIN, 0n, false],
  ['slt', 32, I32_MIN, 0n, true],
  ['slt', 32, TWO32, 1n, true],
  ['slt', 32, I32_MAX, U32_MAX, false],
  ['sle', 32, U32_MAX, 0n, true],
  ['sle', 32, 1n, TWO32, false],
];

const COND_CODE: Readonly<Record<JmpCond, number>> = {
  eq: BPF_JEQ,
  ne: BPF_JNE,
  gt: BPF_JGT,
  ge: BPF_JGE,
  lt: BPF_JLT,
  le: BPF_JLE,
  set: BPF_JSET,
  sgt: BPF_JSGT,
  sge: BPF_JSGE,
  slt: BPF_JSLT,
  sle: BPF_JSLE,
};

describe('jmpCond', () => {
  it.each(
    JMP_CASES.map((c) => [`j${c[0]}${c[1]}(${hex(c[2])}, ${hex(c[3])}) is ${c[4]}`, c] as const),
  )('%s', (_title, [cond, w, a, b, r]) => {
    expect(jmpCond(cond, w, a, b)).toBe(r);
  });

  it('has hand-written cases for every condition in both widths', () => {
    for (const c of CONDS) {
      for (const w of [32, 64] as const) {
        expect(
          JMP_CASES.some(([cc, ww]) => cc === c && ww === w),
          `j${c}${w}`,
        ).toBe(true);
      }
    }
  });

  it('agrees with the reference model on every pair of edge values', () => {
    const bad: string[] = [];
    for (const c of CONDS) {
      for (const w of [32, 64] as const) {
        for (const a of EDGES) {
          for (const b of EDGES) {
            if (jmpCond(c, w, a, b) !== refCond(c, w, a, b)) bad.push(`j${c}${w}(${a}, ${b})`);
          }
        }
      }
    }
    expect(bad).toEqual([]);
  });
});

describe('jump instructions in the interpreter', () => {
  function taken(c: JmpCond, w: Width, a: bigint, imm: number, form: 'imm' | 'reg'): boolean {
    const code = COND_CODE[c];
    let j;
    if (form === 'imm')
      j = w === 64 ? BPF_JMP_IMM(code, 1, imm, 1) : BPF_JMP32_IMM(code, 1, imm, 1);
    else j = w === 64 ? BPF_JMP_REG(code, 1, 2, 1) : BPF_JMP32_REG(code, 1, 2, 1);
    const insns = [
      ...BPF_LD_IMM64(BPF_REG_1, a),
      ...BPF_LD_IMM64(BPF_REG_2, immU64(imm)),
      BPF_MOV64_IMM(BPF_REG_0, 1),
      j,
      BPF_MOV64_IMM(BPF_REG_0, 0),
      BPF_EXIT_INSN(),
    ];
    return run(insns) === 1n;
  }

  for (const c of CONDS) {
    for (const w of [32, 64] as const) {
      it(`j${c}${w} decides as jmpCond in its imm and reg forms`, () => {
        const bad: string[] = [];
        for (const a of EDGES) {
          for (const imm of IMMS) {
            const want = jmpCond(c, w, a, immU64(imm));
            for (const form of ['imm', 'reg'] as const) {
              if (taken(c, w, a, imm, form) !== want) bad.push(`${form} ${a}, ${imm}`);
            }
          }
        }
        expect(bad).toEqual([]);
      });
    }
  }

  it('compares a 64-bit register with the sign-extended imm and jmp32 with its low half', () => {
    expect(taken('eq', 64, U64_MAX, -1, 'imm')).toBe(true);
    expect(taken('eq', 64, U32_MAX, -1, 'imm')).toBe(false);
    expect(taken('eq', 32, U32_MAX, -1, 'imm')).toBe(true);
    expect(taken('eq', 32, 0x1_ffff_ffffn, -1, 'imm')).toBe(true);
    expect(taken('sgt', 32, TWO32, -1, 'imm')).toBe(true);
  });
});
