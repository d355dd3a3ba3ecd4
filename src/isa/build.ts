/**
 * Instruction macros, spelled as the kernel's `include/linux/filter.h` spells them
 * (`BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1)`, `BPF_EXIT_INSN()`, ...), so that programs from
 * kernel selftests and the kernel's own rewrites can be carried over as written. Each returns
 * an `Insn` (lddw returns its two slots); fields are normalised by `insn()` (off to s16,
 * imm to s32).
 *
 * Called from: tests, fuzz generators, and code that emits BPF (rewrites, trampolines).
 * Nothing here checks validity: feed the result to `createProgram`, which does.
 */

import { insn, type Insn, type Reg } from './insn.js';
import {
  BPF_ABS,
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_HELPER_CALL,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOV,
  BPF_OP,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_SIZE,
  BPF_SRC,
  BPF_ST,
  BPF_STX,
  BPF_TO_LE,
  BPF_X,
} from './opcodes.js';

/** Any instruction from its five fields (`BPF_RAW_INSN`). */
export function BPF_RAW_INSN(code: number, dst: Reg, src: Reg, off: number, imm: number): Insn {
  return insn(code, dst, src, off, imm);
}

// ALU

/** `dst = dst OP src` on 64 bits, with `off` (1 selects sdiv/smod). */
export function BPF_ALU64_REG_OFF(op: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_ALU64 | BPF_OP(op) | BPF_X, dst, src, off, 0);
}

/** `dst = dst OP src` on 64 bits. */
export function BPF_ALU64_REG(op: number, dst: Reg, src: Reg): Insn {
  return BPF_ALU64_REG_OFF(op, dst, src, 0);
}

/** `dst = (u32)(dst OP src)` with `off` (1 selects sdiv/smod). */
export function BPF_ALU32_REG_OFF(op: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_ALU | BPF_OP(op) | BPF_X, dst, src, off, 0);
}

/** `dst = (u32)(dst OP src)`. */
export function BPF_ALU32_REG(op: number, dst: Reg, src: Reg): Insn {
  return BPF_ALU32_REG_OFF(op, dst, src, 0);
}

/** `dst = dst OP imm` on 64 bits (imm sign-extended), with `off` (1 selects sdiv/smod). */
export function BPF_ALU64_IMM_OFF(op: number, dst: Reg, imm: number, off: number): Insn {
  return insn(BPF_ALU64 | BPF_OP(op) | BPF_K, dst, 0, off, imm);
}

/** `dst = dst OP imm` on 64 bits (imm sign-extended). */
export function BPF_ALU64_IMM(op: number, dst: Reg, imm: number): Insn {
  return BPF_ALU64_IMM_OFF(op, dst, imm, 0);
}

/** `dst = (u32)(dst OP imm)` with `off` (1 selects sdiv/smod). */
export function BPF_ALU32_IMM_OFF(op: number, dst: Reg, imm: number, off: number): Insn {
  return insn(BPF_ALU | BPF_OP(op) | BPF_K, dst, 0, off, imm);
}

/** `dst = (u32)(dst OP imm)`. */
export function BPF_ALU32_IMM(op: number, dst: Reg, imm: number): Insn {
  return BPF_ALU32_IMM_OFF(op, dst, imm, 0);
}

/** Byte-order conversion: `type` is BPF_TO_LE or BPF_TO_BE, `len` 16, 32 or 64. */
export function BPF_ENDIAN(type: number, dst: Reg, len: number): Insn {
  return insn(BPF_ALU | BPF_END | BPF_SRC(type), dst, 0, 0, len);
}

/** Unconditional byte swap of the low `len` bits (16, 32 or 64). */
export function BPF_BSWAP(dst: Reg, len: number): Insn {
  return insn(BPF_ALU64 | BPF_END | BPF_SRC(BPF_TO_LE), dst, 0, 0, len);
}

/** `dst = src`. */
export function BPF_MOV64_REG(dst: Reg, src: Reg): Insn {
  return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}

/** `dst = (u32)src`. */
export function BPF_MOV32_REG(dst: Reg, src: Reg): Insn {
  return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0);
}

/** `dst = imm` sign-extended to 64 bits. */
export function BPF_MOV64_IMM(dst: Reg, imm: number): Insn {
  return insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

/** `dst = (u32)imm`. */
export function BPF_MOV32_IMM(dst: Reg, imm: number): Insn {
  return insn(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm);
}

/** `dst = (s64)(s<bits>)src`, bits 8, 16 or 32. */
export function BPF_MOVSX64_REG(dst: Reg, src: Reg, bits: number): Insn {
  return insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, bits, 0);
}

/** `dst = (u32)(s32)(s<bits>)src`, bits 8 or 16. */
export function BPF_MOVSX32_REG(dst: Reg, src: Reg, bits: number): Insn {
  return insn(BPF_ALU | BPF_MOV | BPF_X, dst, src, bits, 0);
}

// Loads and stores

/** `lddw dst, imm` with a pseudo source `src`: two slots, imm split into low and high halves. */
export function BPF_LD_IMM64_RAW(dst: Reg, src: Reg, imm: bigint): Insn[] {
  const v = BigInt.asUintN(64, imm);
  return [
    insn(BPF_LD | BPF_DW | BPF_IMM, dst, src, 0, Number(v & 0xffffffffn)),
    insn(0, 0, 0, 0, Number(v >> 32n)),
  ];
}

/** `lddw dst, imm`: the 64-bit immediate, in two slots. */
export function BPF_LD_IMM64(dst: Reg, imm: bigint): Insn[] {
  return BPF_LD_IMM64_RAW(dst, 0, imm);
}

/** `lddw dst, map_fd`: the address of map `fd` once linked (src = BPF_PSEUDO_MAP_FD). */
export function BPF_LD_MAP_FD(dst: Reg, fd: number): Insn[] {
  return BPF_LD_IMM64_RAW(dst, BPF_PSEUDO_MAP_FD, BigInt(fd >>> 0));
}

/** Legacy packet load: `r0 = ntoh(*(size *)(pkt + imm))`. */
export function BPF_LD_ABS(size: number, imm: number): Insn {
  return insn(BPF_LD | BPF_SIZE(size) | BPF_ABS, 0, 0, 0, imm);
}

/** Legacy packet load: `r0 = ntoh(*(size *)(pkt + src + imm))`. */
export function BPF_LD_IND(size: number, src: Reg, imm: number): Insn {
  return insn(BPF_LD | BPF_SIZE(size) | BPF_IND, 0, src, 0, imm);
}

/** `dst = *(size *)(src + off)`, zero-extended. */
export function BPF_LDX_MEM(size: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_LDX | BPF_SIZE(size) | BPF_MEM, dst, src, off, 0);
}

/** `dst = *(s<size> *)(src + off)`, sign-extended to 64 bits. */
export function BPF_LDX_MEMSX(size: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_LDX | BPF_SIZE(size) | BPF_MEMSX, dst, src, off, 0);
}

/** `*(size *)(dst + off) = src`. */
export function BPF_STX_MEM(size: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_STX | BPF_SIZE(size) | BPF_MEM, dst, src, off, 0);
}

/** `*(size *)(dst + off) = imm`. */
export function BPF_ST_MEM(size: number, dst: Reg, off: number, imm: number): Insn {
  return insn(BPF_ST | BPF_SIZE(size) | BPF_MEM, dst, 0, off, imm);
}

/**
 * Atomic read-modify-write of `*(size *)(dst + off)` with `src`; `op` is BPF_ADD, BPF_OR,
 * BPF_AND or BPF_XOR (optionally `| BPF_FETCH`), BPF_XCHG or BPF_CMPXCHG.
 */
export function BPF_ATOMIC_OP(size: number, op: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_STX | BPF_SIZE(size) | BPF_ATOMIC, dst, src, off, op);
}

// Jumps and calls

/** `if (dst OP src) goto pc + off` on 64 bits. */
export function BPF_JMP_REG(op: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_JMP | BPF_OP(op) | BPF_X, dst, src, off, 0);
}

/** `if (dst OP imm) goto pc + off` on 64 bits (imm sign-extended). */
export function BPF_JMP_IMM(op: number, dst: Reg, imm: number, off: number): Insn {
  return insn(BPF_JMP | BPF_OP(op) | BPF_K, dst, 0, off, imm);
}

/** `if ((u32)dst OP (u32)src) goto pc + off`. */
export function BPF_JMP32_REG(op: number, dst: Reg, src: Reg, off: number): Insn {
  return insn(BPF_JMP32 | BPF_OP(op) | BPF_X, dst, src, off, 0);
}

/** `if ((u32)dst OP (u32)imm) goto pc + off`. */
export function BPF_JMP32_IMM(op: number, dst: Reg, imm: number, off: number): Insn {
  return insn(BPF_JMP32 | BPF_OP(op) | BPF_K, dst, 0, off, imm);
}

/** `goto pc + off` (ja). */
export function BPF_JMP_A(off: number): Insn {
  return insn(BPF_JMP | BPF_JA, 0, 0, off, 0);
}

/** `gotol pc + imm` (ja32): unconditional jump with a 32-bit offset. */
export function BPF_JMP32_A(imm: number): Insn {
  return insn(BPF_JMP32 | BPF_JA, 0, 0, 0, imm);
}

/** `gotox reg`: indirect jump to the slot index held in `reg`. */
export function BPF_GOTOX(reg: Reg): Insn {
  return insn(BPF_JMP | BPF_JA | BPF_X, reg, 0, 0, 0);
}

/**
 * `may_goto off`: jump when the may_goto budget is spent, else spend one and fall through.
 * Note: opcodes.ts exports the constant `BPF_MAY_GOTO` (the src value, 0) under the same name;
 * import one of them under an alias when both are needed.
 */
export function BPF_MAY_GOTO(off: number): Insn {
  return insn(BPF_JMP | BPF_JCOND, 0, 0, off, 0);
}

/** `call pc + imm`: BPF-to-BPF call to the function starting at slot `idx + imm + 1`. */
export function BPF_CALL_REL(imm: number): Insn {
  return insn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, imm);
}

/** `call helperId`: helper call by kernel helper id. */
export function BPF_EMIT_CALL(helperId: number): Insn {
  return insn(BPF_JMP | BPF_CALL, 0, BPF_HELPER_CALL, 0, helperId);
}

/** `callx reg`: indirect call (helper id or function token in `reg`), clang's encoding. */
export function BPF_CALLX(reg: Reg): Insn {
  return insn(BPF_JMP | BPF_CALL | BPF_X, reg, 0, 0, 0);
}

/** `exit`: return r0 to the caller. */
export function BPF_EXIT_INSN(): Insn {
  return insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}
