/**
 * Synthetic programs for the compile-latency benchmark: straight-line, branchy ALU code of an
 * exact instruction count, shaped like compiled C. After a prologue that sets r0 and r2–r9 and
 * zeroes eight stack slots, the body is blocks of 20 instructions: 64- and 32-bit ALU ops with
 * immediate or register operands, 10% loads from and 5% stores to those stack slots, and in 60%
 * of the blocks a conditional forward jump to the start of one of the next three blocks. An
 * epilogue folds every register into r0 and exits. r1 (the `mem` input) is never touched.
 *
 * The code is structurally valid (`createProgram` accepts it) and deterministic per seed;
 * different seeds give different bytes, so V8 cannot serve a compile from its module cache.
 *
 * Called from bench/compile.bench.ts.
 */

import { insn, type Insn } from '../src/isa/insn.js';
import {
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_DW,
  BPF_EXIT,
  BPF_JEQ,
  BPF_JGT,
  BPF_JMP,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGT,
  BPF_K,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MOV,
  BPF_MUL,
  BPF_OR,
  BPF_REG_FP,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_X,
  BPF_XOR,
} from '../src/isa/opcodes.js';
import { createProgram, type Program } from '../src/program.js';

/** Instructions per block. */
const BLOCK_INSNS = 20;
/** Registers the generated code reads and writes (r1 holds the input and is left alone). */
const REGS = [0, 2, 3, 4, 5, 6, 7, 8, 9] as const;
/** Stack slots used, each 8 bytes below r10. */
const STACK_SLOTS = 8;
const ALU_OPS = [
  BPF_ADD,
  BPF_SUB,
  BPF_MUL,
  BPF_OR,
  BPF_AND,
  BPF_XOR,
  BPF_LSH,
  BPF_RSH,
  BPF_ARSH,
  BPF_MOV,
];
const JMP_OPS = [BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JSGT, BPF_JSET];
const SHIFT_OPS: readonly number[] = [BPF_LSH, BPF_RSH, BPF_ARSH];

/** A seeded xorshift32 source (STYLE.md: randomness is injected and reproducible). */
class Xorshift32 {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0 || 0x2545f491;
  }

  next(): number {
    let s = this.s;
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    this.s = s >>> 0;
    return this.s;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return this.next() % n;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.below(xs.length)] as T;
  }
}

/** Instructions outside the blocks: prologue (9 movs + 8 stores) and epilogue (8 xors + exit). */
const FIXED_INSNS = REGS.length + STACK_SLOTS + (REGS.length - 1) + 1;

/**
 * A `mem` program of exactly `insnCnt` instructions, different for each seed.
 * @example
 * const prog = synthProgram(1000, 1);
 * const loaded = await vm.load(prog, { verify: false });
 */
export function synthProgram(insnCnt: number, seed: number): Program {
  return createProgram(synthInsns(insnCnt, seed), { name: `synth${insnCnt}_${seed}`, type: 'mem' });
}

/** The instructions of `synthProgram`. */
export function synthInsns(insnCnt: number, seed: number): Insn[] {
  if (!Number.isInteger(insnCnt) || insnCnt < FIXED_INSNS) {
    throw new RangeError(`a synthetic program needs at least ${FIXED_INSNS} instructions`);
  }
  const rng = new Xorshift32(seed);
  const out: Insn[] = [];
  for (const r of REGS) out.push(insn(BPF_ALU64 | BPF_K | BPF_MOV, r, 0, 0, rng.next() | 0));
  for (let k = 1; k <= STACK_SLOTS; k++)
    out.push(insn(BPF_ST | BPF_MEM | BPF_DW, BPF_REG_FP, 0, -8 * k, 0));
  const blocks = Math.floor((insnCnt - FIXED_INSNS) / BLOCK_INSNS);
  const bodyStart = out.length;
  const tailStart = bodyStart + blocks * BLOCK_INSNS;
  for (let b = 0; b < blocks; b++) {
    for (let k = 0; k < BLOCK_INSNS - 1; k++) out.push(bodyInsn(rng));
    const here = out.length;
    if (rng.below(10) < 6) {
      const target = Math.min(bodyStart + (b + 1 + rng.below(3)) * BLOCK_INSNS, tailStart);
      const cond = BPF_JMP | BPF_K | rng.pick(JMP_OPS);
      out.push(insn(cond, rng.pick(REGS), 0, target - (here + 1), rng.below(256)));
    } else {
      out.push(bodyInsn(rng));
    }
  }
  while (out.length < insnCnt - (REGS.length - 1) - 1) out.push(aluInsn(rng));
  for (const r of REGS.slice(1)) out.push(insn(BPF_ALU64 | BPF_X | BPF_XOR, 0, r, 0, 0));
  out.push(insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return out;
}

/** One body instruction: 10% stack load, 5% stack store, else ALU. */
function bodyInsn(rng: Xorshift32): Insn {
  const roll = rng.below(100);
  const slotOff = -8 * (1 + rng.below(STACK_SLOTS));
  if (roll < 10) return insn(BPF_LDX | BPF_MEM | BPF_DW, rng.pick(REGS), BPF_REG_FP, slotOff, 0);
  if (roll < 15) return insn(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_FP, rng.pick(REGS), slotOff, 0);
  return aluInsn(rng);
}

/** An ALU op: 75% 64-bit, half with an immediate; shift immediates stay in range. */
function aluInsn(rng: Xorshift32): Insn {
  const cls = rng.below(4) < 3 ? BPF_ALU64 : BPF_ALU;
  const op = rng.pick(ALU_OPS);
  const dst = rng.pick(REGS);
  if (rng.below(2) === 0) return insn(cls | BPF_X | op, dst, rng.pick(REGS), 0, 0);
  const bits = cls === BPF_ALU64 ? 64 : 32;
  const imm = SHIFT_OPS.includes(op) ? rng.below(bits) : (rng.next() | 0) >> rng.below(24);
  return insn(cls | BPF_K | op, dst, 0, 0, imm);
}
