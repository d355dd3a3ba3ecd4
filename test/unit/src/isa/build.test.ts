/**
 * The kernel-style insn macros of src/isa/build.ts: each one encodes to the bytes the kernel's
 * macro of the same name produces, and decodes back to the intended opcode table entry.
 */

import { describe, expect, it } from 'vitest';
import {
  BPF_ALU32_IMM,
  BPF_ALU32_IMM_OFF,
  BPF_ALU32_REG,
  BPF_ALU32_REG_OFF,
  BPF_ALU64_IMM,
  BPF_ALU64_IMM_OFF,
  BPF_ALU64_REG,
  BPF_ALU64_REG_OFF,
  BPF_ATOMIC_OP,
  BPF_BSWAP,
  BPF_CALLX,
  BPF_CALL_REL,
  BPF_EMIT_CALL,
  BPF_ENDIAN,
  BPF_EXIT_INSN,
  BPF_GOTOX,
  BPF_JMP32_A,
  BPF_JMP32_IMM,
  BPF_JMP32_REG,
  BPF_JMP_A,
  BPF_JMP_IMM,
  BPF_JMP_REG,
  BPF_LDX_MEM,
  BPF_LDX_MEMSX,
  BPF_LD_ABS,
  BPF_LD_IMM64,
  BPF_LD_IMM64_RAW,
  BPF_LD_IND,
  BPF_LD_MAP_FD,
  BPF_MAY_GOTO,
  BPF_MOV32_IMM,
  BPF_MOV32_REG,
  BPF_MOV64_IMM,
  BPF_MOV64_REG,
  BPF_MOVSX32_REG,
  BPF_MOVSX64_REG,
  BPF_RAW_INSN,
  BPF_STX_MEM,
  BPF_ST_MEM,
} from '../../../../src/isa/build.js';
import { checkInsns, encodeInsns, ldImm64Value, type Insn } from '../../../../src/isa/insn.js';
import {
  BPF_ADD,
  BPF_ARSH,
  BPF_B,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_FETCH,
  BPF_H,
  BPF_JEQ,
  BPF_JLT,
  BPF_JSET,
  BPF_JSGT,
  BPF_MOD,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_FD,
  BPF_SUB,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_XCHG,
  BPF_XOR,
  EXIT,
} from '../../../../src/isa/opcodes.js';

/** [macro call as text, its slots, their bytes as hex, mnemonic of the first slot] */
const CASES: readonly (readonly [string, Insn | Insn[], string, string])[] = [
  ['BPF_MOV64_IMM(0, 1)', BPF_MOV64_IMM(0, 1), 'b700000001000000', 'mov'],
  ['BPF_MOV64_REG(0, 1)', BPF_MOV64_REG(0, 1), 'bf10000000000000', 'mov'],
  ['BPF_MOV32_IMM(0, -1)', BPF_MOV32_IMM(0, -1), 'b4000000ffffffff', 'mov32'],
  ['BPF_MOV32_REG(0, 1)', BPF_MOV32_REG(0, 1), 'bc10000000000000', 'mov32'],
  ['BPF_ALU64_REG(BPF_ADD, 1, 2)', BPF_ALU64_REG(BPF_ADD, 1, 2), '0f21000000000000', 'add'],
  ['BPF_ALU64_IMM(BPF_ARSH, 1, 3)', BPF_ALU64_IMM(BPF_ARSH, 1, 3), 'c701000003000000', 'arsh'],
  ['BPF_ALU32_IMM(BPF_SUB, 3, -1)', BPF_ALU32_IMM(BPF_SUB, 3, -1), '14030000ffffffff', 'sub32'],
  ['BPF_ALU32_REG(BPF_XOR, 1, 2)', BPF_ALU32_REG(BPF_XOR, 1, 2), 'ac21000000000000', 'xor32'],
  [
    'BPF_ALU64_IMM_OFF(BPF_DIV, 1, 3, 1)',
    BPF_ALU64_IMM_OFF(BPF_DIV, 1, 3, 1),
    '3701010003000000',
    'sdiv',
  ],
  [
    'BPF_ALU64_REG_OFF(BPF_MOD, 1, 2, 1)',
    BPF_ALU64_REG_OFF(BPF_MOD, 1, 2, 1),
    '9f21010000000000',
    'smod',
  ],
  [
    'BPF_ALU32_IMM_OFF(BPF_DIV, 1, 3, 1)',
    BPF_ALU32_IMM_OFF(BPF_DIV, 1, 3, 1),
    '3401010003000000',
    'sdiv32',
  ],
  [
    'BPF_ALU32_REG_OFF(BPF_MOD, 1, 2, 1)',
    BPF_ALU32_REG_OFF(BPF_MOD, 1, 2, 1),
    '9c21010000000000',
    'smod32',
  ],
  ['BPF_MOVSX64_REG(0, 1, 8)', BPF_MOVSX64_REG(0, 1, 8), 'bf10080000000000', 'movsx864'],
  ['BPF_MOVSX64_REG(0, 1, 32)', BPF_MOVSX64_REG(0, 1, 32), 'bf10200000000000', 'movsx3264'],
  ['BPF_MOVSX32_REG(0, 1, 16)', BPF_MOVSX32_REG(0, 1, 16), 'bc10100000000000', 'movsx1632'],
  ['BPF_ENDIAN(BPF_TO_LE, 1, 32)', BPF_ENDIAN(BPF_TO_LE, 1, 32), 'd401000020000000', 'le32'],
  ['BPF_ENDIAN(BPF_TO_BE, 1, 16)', BPF_ENDIAN(BPF_TO_BE, 1, 16), 'dc01000010000000', 'be16'],
  ['BPF_BSWAP(1, 64)', BPF_BSWAP(1, 64), 'd701000040000000', 'bswap64'],
  [
    'BPF_LD_IMM64(1, 0x1122334455667788n)',
    BPF_LD_IMM64(1, 0x1122_3344_5566_7788n),
    '18010000887766550000000044332211',
    'lddw',
  ],
  ['BPF_LD_IMM64(0, -1n)', BPF_LD_IMM64(0, -1n), '18000000ffffffff00000000ffffffff', 'lddw'],
  [
    'BPF_LD_IMM64_RAW(1, BPF_PSEUDO_FUNC, 3n)',
    BPF_LD_IMM64_RAW(1, BPF_PSEUDO_FUNC, 3n),
    '18410000030000000000000000000000',
    'lddw',
  ],
  ['BPF_LD_MAP_FD(1, 7)', BPF_LD_MAP_FD(1, 7), '18110000070000000000000000000000', 'lddw'],
  ['BPF_LD_ABS(BPF_H, 12)', BPF_LD_ABS(BPF_H, 12), '280000000c000000', 'ldabsh'],
  ['BPF_LD_IND(BPF_B, 2, 14)', BPF_LD_IND(BPF_B, 2, 14), '502000000e000000', 'ldindb'],
  ['BPF_LDX_MEM(BPF_DW, 0, 10, -8)', BPF_LDX_MEM(BPF_DW, 0, 10, -8), '79a0f8ff00000000', 'ldxdw'],
  ['BPF_LDX_MEMSX(BPF_B, 0, 1, 2)', BPF_LDX_MEMSX(BPF_B, 0, 1, 2), '9110020000000000', 'ldxsb'],
  ['BPF_STX_MEM(BPF_W, 10, 1, -4)', BPF_STX_MEM(BPF_W, 10, 1, -4), '631afcff00000000', 'stxw'],
  [
    'BPF_ST_MEM(BPF_H, 10, -2, 0x1234)',
    BPF_ST_MEM(BPF_H, 10, -2, 0x1234),
    '6a0afeff34120000',
    'sth',
  ],
  [
    'BPF_ATOMIC_OP(BPF_DW, BPF_ADD | BPF_FETCH, 10, 1, -8)',
    BPF_ATOMIC_OP(BPF_DW, BPF_ADD | BPF_FETCH, 10, 1, -8),
    'db1af8ff01000000',
    'lock fetch add',
  ],
  [
    'BPF_ATOMIC_OP(BPF_W, BPF_CMPXCHG, 1, 2, 0)',
    BPF_ATOMIC_OP(BPF_W, BPF_CMPXCHG, 1, 2, 0),
    'c3210000f1000000',
    'lock cmpxchg32',
  ],
  [
    'BPF_ATOMIC_OP(BPF_DW, BPF_XCHG, 1, 2, 8)',
    BPF_ATOMIC_OP(BPF_DW, BPF_XCHG, 1, 2, 8),
    'db210800e1000000',
    'lock xchg',
  ],
  ['BPF_JMP_IMM(BPF_JEQ, 1, 5, 3)', BPF_JMP_IMM(BPF_JEQ, 1, 5, 3), '1501030005000000', 'jeq'],
  ['BPF_JMP_REG(BPF_JSGT, 1, 2, -1)', BPF_JMP_REG(BPF_JSGT, 1, 2, -1), '6d21ffff00000000', 'jsgt'],
  ['BPF_JMP32_IMM(BPF_JLT, 1, 5, 2)', BPF_JMP32_IMM(BPF_JLT, 1, 5, 2), 'a601020005000000', 'jlt32'],
  [
    'BPF_JMP32_REG(BPF_JSET, 1, 2, 2)',
    BPF_JMP32_REG(BPF_JSET, 1, 2, 2),
    '4e21020000000000',
    'jset32',
  ],
  ['BPF_JMP_A(-1)', BPF_JMP_A(-1), '0500ffff00000000', 'ja'],
  ['BPF_JMP32_A(100)', BPF_JMP32_A(100), '0600000064000000', 'ja32'],
  ['BPF_GOTOX(3)', BPF_GOTOX(3), '0d03000000000000', 'gotox'],
  ['BPF_MAY_GOTO(2)', BPF_MAY_GOTO(2), 'e500020000000000', 'may_goto'],
  ['BPF_CALL_REL(5)', BPF_CALL_REL(5), '8510000005000000', 'call'],
  ['BPF_EMIT_CALL(1)', BPF_EMIT_CALL(1), '8500000001000000', 'call'],
  ['BPF_CALLX(2)', BPF_CALLX(2), '8d02000000000000', 'callx'],
  ['BPF_EXIT_INSN()', BPF_EXIT_INSN(), '9500000000000000', 'exit'],
  ['BPF_RAW_INSN(EXIT, 0, 0, 0, 0)', BPF_RAW_INSN(EXIT, 0, 0, 0, 0), '9500000000000000', 'exit'],
];

describe('insn macros', () => {
  it.each(CASES)('%s encodes as the kernel macro does', (_text, slots, hex, mnemonic) => {
    const insns = Array.isArray(slots) ? slots : [slots];
    expect(Buffer.from(encodeInsns(insns)).toString('hex')).toBe(hex);
    expect(checkInsns(insns)[0]?.mnemonic).toBe(mnemonic);
  });

  it('normalises off to s16 and imm to s32', () => {
    expect(BPF_JMP_A(0xffff).off).toBe(-1);
    expect(BPF_MOV64_IMM(0, 0xffff_ffff).imm).toBe(-1);
  });

  it('splits a 64-bit immediate over the two lddw slots and joins it back', () => {
    for (const v of [0n, 1n, 0x8000_0000n, 0xffff_ffff_0000_0000n, 0x1122_3344_5566_7788n]) {
      expect(ldImm64Value(BPF_LD_IMM64(0, v), 0)).toBe(v);
    }
    expect(BPF_LD_IMM64_RAW(2, BPF_PSEUDO_MAP_FD, 9n)[0]?.src).toBe(BPF_PSEUDO_MAP_FD);
  });

  it('uses the size constants for loads and stores', () => {
    const sizes = [BPF_B, BPF_H, BPF_W, BPF_DW].map((s) => BPF_LDX_MEM(s, 0, 1, 0).code);
    expect(sizes).toEqual([0x71, 0x69, 0x61, 0x79]);
  });
});
