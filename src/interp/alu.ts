/**
 * The exact BPF ALU and jump-condition semantics on u64 values held in bigints (RFC 9669 and
 * the kernel's `___bpf_prog_run`). The reference interpreter uses these directly; the
 * verifier's constant folding and the JIT's tests can use them as the definition.
 *
 * Values are u64: every input and every result lies in `[0, 2^64)`. 32-bit forms look only at
 * the low 32 bits of their operands and zero-extend their result. The instruction's imm is an
 * s32; `immU64` gives the operand a K-source instruction uses (sign-extended to 64 bits, of
 * which 32-bit forms then use the low half).
 *
 * Division follows BPF, not C: x/0 = 0, x%0 = x, INT_MIN/-1 = INT_MIN, INT_MIN%-1 = 0, signed
 * division truncates toward zero (so smod takes the dividend's sign). Shift counts are masked
 * to width - 1.
 */

import type { AluOp, JmpCond, Width } from '../isa/table.js';

/** A binary ALU operation on u64 values: `(dst, src) => result`. */
export type AluFn = (dst: bigint, src: bigint) => bigint;

/** A jump condition on u64 values: `(dst, src) => taken`. */
export type CondFn = (dst: bigint, src: bigint) => boolean;

const U = BigInt.asUintN;
const S = BigInt.asIntN;
const M32 = 0xffffffffn;

const ALU64: Readonly<Record<AluOp, AluFn>> = {
  add: (a, b) => U(64, a + b),
  sub: (a, b) => U(64, a - b),
  mul: (a, b) => U(64, a * b),
  div: (a, b) => (b === 0n ? 0n : a / b),
  sdiv: (a, b) => {
    const d = S(64, b);
    return d === 0n ? 0n : U(64, S(64, a) / d);
  },
  or: (a, b) => a | b,
  and: (a, b) => a & b,
  lsh: (a, b) => U(64, a << (b & 63n)),
  rsh: (a, b) => a >> (b & 63n),
  neg: (a) => U(64, -a),
  mod: (a, b) => (b === 0n ? a : a % b),
  smod: (a, b) => {
    const d = S(64, b);
    return d === 0n ? a : U(64, S(64, a) % d);
  },
  xor: (a, b) => a ^ b,
  mov: (_a, b) => b,
  arsh: (a, b) => U(64, S(64, a) >> (b & 63n)),
};

const ALU32: Readonly<Record<AluOp, AluFn>> = {
  add: (a, b) => U(32, a + b),
  sub: (a, b) => U(32, a - b),
  mul: (a, b) => U(32, (a & M32) * (b & M32)),
  div: (a, b) => {
    const d = b & M32;
    return d === 0n ? 0n : (a & M32) / d;
  },
  sdiv: (a, b) => {
    const d = S(32, b);
    return d === 0n ? 0n : U(32, S(32, a) / d);
  },
  or: (a, b) => (a | b) & M32,
  and: (a, b) => a & b & M32,
  lsh: (a, b) => U(32, a << (b & 31n)),
  rsh: (a, b) => (a & M32) >> (b & 31n),
  neg: (a) => U(32, -a),
  mod: (a, b) => {
    const d = b & M32;
    return d === 0n ? a & M32 : (a & M32) % d;
  },
  smod: (a, b) => {
    const d = S(32, b);
    return d === 0n ? a & M32 : U(32, S(32, a) % d);
  },
  xor: (a, b) => (a ^ b) & M32,
  mov: (_a, b) => b & M32,
  arsh: (a, b) => U(32, S(32, a) >> (b & 31n)),
};

/**
 * The function computing `op` at `width`. Inputs must be u64; `neg` ignores src, `mov`
 * ignores dst. Called once per instruction when the interpreter predecodes a program.
 */
export function aluFn(op: AluOp, width: Width): AluFn {
  return width === 64 ? ALU64[op] : ALU32[op];
}

/**
 * `dst OP src` at `width`, as BPF defines it. Inputs are reduced mod 2^64 first (so `-1n`
 * means UINT64_MAX); the result is u64, zero-extended from 32 bits for 32-bit ops.
 *
 * @example
 * aluOp('sdiv', 64, -(2n ** 63n), -1n) // 0x8000000000000000n (INT64_MIN / -1 = INT64_MIN)
 * aluOp('mod', 32, 0x1_0000_0007n, 0n)  // 7n (x % 0 = x, low 32 bits)
 */
export function aluOp(op: AluOp, width: Width, dst: bigint, src: bigint): bigint {
  return aluFn(op, width)(U(64, dst), U(64, src));
}

/** The operand of a K-source instruction: its s32 `imm` sign-extended to 64 bits, as u64. */
export function immU64(imm: number): bigint {
  return U(64, BigInt(imm | 0));
}

/**
 * `movsx`: the low `bits` of `v` sign-extended; to 64 bits for width 64, to 32 bits and then
 * zero-extended for width 32.
 */
export function movsx(width: Width, bits: 8 | 16 | 32, v: bigint): bigint {
  return U(width, S(bits, v));
}

function bswap32(v: bigint): bigint {
  const x = Number(v & M32);
  return BigInt(
    (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24)) >>> 0,
  );
}

/** The low `bits` of `v` with their bytes reversed, zero-extended. */
export function bswap(bits: 16 | 32 | 64, v: bigint): bigint {
  switch (bits) {
    case 16:
      return ((v & 0xffn) << 8n) | ((v >> 8n) & 0xffn);
    case 32:
      return bswap32(v);
    case 64:
      return (bswap32(v) << 32n) | bswap32(v >> 32n);
  }
}

/**
 * BPF_END on a little-endian host: `le` keeps the low `bits` (zero-extended; le64 is a
 * no-op), `be` and `swap` (bswap) reverse the bytes of the low `bits`.
 */
export function endian(order: 'le' | 'be' | 'swap', bits: 16 | 32 | 64, v: bigint): bigint {
  return order === 'le' ? U(bits, v) : bswap(bits, U(64, v));
}

const COND64: Readonly<Record<JmpCond, CondFn>> = {
  eq: (a, b) => a === b,
  ne: (a, b) => a !== b,
  gt: (a, b) => a > b,
  ge: (a, b) => a >= b,
  lt: (a, b) => a < b,
  le: (a, b) => a <= b,
  set: (a, b) => (a & b) !== 0n,
  sgt: (a, b) => S(64, a) > S(64, b),
  sge: (a, b) => S(64, a) >= S(64, b),
  slt: (a, b) => S(64, a) < S(64, b),
  sle: (a, b) => S(64, a) <= S(64, b),
};

const COND32: Readonly<Record<JmpCond, CondFn>> = {
  eq: (a, b) => (a & M32) === (b & M32),
  ne: (a, b) => (a & M32) !== (b & M32),
  gt: (a, b) => (a & M32) > (b & M32),
  ge: (a, b) => (a & M32) >= (b & M32),
  lt: (a, b) => (a & M32) < (b & M32),
  le: (a, b) => (a & M32) <= (b & M32),
  set: (a, b) => (a & b & M32) !== 0n,
  sgt: (a, b) => S(32, a) > S(32, b),
  sge: (a, b) => S(32, a) >= S(32, b),
  slt: (a, b) => S(32, a) < S(32, b),
  sle: (a, b) => S(32, a) <= S(32, b),
};

/** The function deciding `cond` at `width` on u64 inputs (predecode form of `jmpCond`). */
export function condFn(cond: JmpCond, width: Width): CondFn {
  return width === 64 ? COND64[cond] : COND32[cond];
}

/**
 * Whether a conditional jump is taken: `a COND b` at `width`. 32-bit forms compare the low 32
 * bits; `s*` conditions compare signed. Inputs are reduced mod 2^64 first.
 *
 * @example
 * jmpCond('sgt', 32, 0x1_0000_0000n, 0xffff_ffffn) // true: 0 > -1 on the low halves
 */
export function jmpCond(cond: JmpCond, width: Width, a: bigint, b: bigint): boolean {
  return condFn(cond, width)(U(64, a), U(64, b));
}
