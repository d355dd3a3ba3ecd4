/**
 * Unit tests of src/asm/disassembler.ts: each table kind in the three syntaxes, the options,
 * the round trip through the assembler for every table entry, and garbage input.
 */

import { describe, expect, it } from 'vitest';
import { assemble } from '../../../../src/asm/assembler.js';
import {
  disasmInsn,
  disassemble,
  disassembleBytes,
  type DisasmSyntax,
} from '../../../../src/asm/disassembler.js';
import { encodeInsns, insn, type Insn } from '../../../../src/isa/insn.js';
import { OP_TABLE } from '../../../../src/isa/table.js';

/** [input asm, 'asm' output, 'llvm' output, 'kernel' output]. */
const LINES: readonly (readonly [string, string, string, string])[] = [
  ['add %r1, 5', 'add %r1, 5', 'r1 += 0x5', '(07) r1 += 5'],
  ['add32 %r1, %r2', 'add32 %r1, %r2', 'w1 += w2', '(0c) w1 += w2'],
  ['add %r10, -8', 'add %r10, -8', 'r10 += -0x8', '(07) r10 += -8'],
  ['mov %r1, %r10', 'mov %r1, %r10', 'r1 = r10', '(bf) r1 = r10'],
  ['mov %r1, 0', 'mov %r1, 0', 'r1 = 0x0', '(b7) r1 = 0'],
  ['sdiv32 %r1, -3', 'sdiv32 %r1, -3', 'w1 s/= -0x3', '(34) w1 s/= -3'],
  ['smod %r1, %r2', 'smod %r1, %r2', 'r1 s%= r2', '(9f) r1 s%= r2'],
  ['arsh %r3, 2', 'arsh %r3, 2', 'r3 s>>= 0x2', '(c7) r3 s>>= 2'],
  ['neg %r0', 'neg %r0', 'r0 = -r0', '(87) r0 = -r0'],
  ['neg32 %r0', 'neg32 %r0', 'w0 = -w0', '(84) w0 = -w0'],
  ['movsx864 %r0, %r1', 'movsx864 %r0, %r1', 'r0 = (s8)r1', '(bf) r0 = (s8)r1'],
  ['movsx1632 %r0, %r1', 'movsx1632 %r0, %r1', 'w0 = (s16)w1', '(bc) w0 = (s16)w1'],
  ['be16 %r0', 'be16 %r0', 'r0 = be16 r0', '(dc) r0 = be16 r0'],
  ['le64 %r0', 'le64 %r0', 'r0 = le64 r0', '(d4) r0 = le64 r0'],
  ['swap32 %r0', 'bswap32 %r0', 'r0 = bswap32 r0', '(d7) r0 = bswap32 r0'],
  ['lddw %r1, 0x1234', 'lddw %r1, 0x1234', 'r1 = 0x1234 ll', '(18) r1 = 0x1234'],
  [
    'lddw %r1, 0xffffffffffffffff',
    'lddw %r1, 0xffffffffffffffff',
    'r1 = -0x1 ll',
    '(18) r1 = 0xffffffffffffffff',
  ],
  ['lddw %r1, map_fd 3', 'lddw %r1, map_fd 3', 'ld_pseudo r1, 0x1, 0x3', '(18) r1 = 0x3'],
  [
    'lddw %r1, map_value 3, 8',
    'lddw %r1, map_value 3, 8',
    'ld_pseudo r1, 0x2, 0x800000003',
    '(18) r1 = 0x800000003',
  ],
  ['ldabsh 12', 'ldabsh 12', 'r0 = *(u16 *)skb[0xc]', '(28) r0 = *(u16 *)skb[12]'],
  ['ldindb %r2, 0', 'ldindb %r2, 0', 'r0 = *(u8 *)skb[r2]', '(50) r0 = *(u8 *)skb[r2 + 0]'],
  ['ldindw %r2, 4', 'ldindw %r2, 4', 'r0 = *(u32 *)skb[r2 + 0x4]', '(40) r0 = *(u32 *)skb[r2 + 4]'],
  [
    'ldxw %r0, [%r1+4]',
    'ldxw %r0, [%r1+4]',
    'r0 = *(u32 *)(r1 + 0x4)',
    '(61) r0 = *(u32 *)(r1 +4)',
  ],
  ['ldxdw %r0, [%r1]', 'ldxdw %r0, [%r1]', 'r0 = *(u64 *)(r1 + 0x0)', '(79) r0 = *(u64 *)(r1 +0)'],
  [
    'ldxsh %r0, [%r10-2]',
    'ldxsh %r0, [%r10-2]',
    'r0 = *(s16 *)(r10 - 0x2)',
    '(89) r0 = *(s16 *)(r10 -2)',
  ],
  ['stw [%r10-4], 7', 'stw [%r10-4], 7', '*(u32 *)(r10 - 0x4) = 0x7', '(62) *(u32 *)(r10 -4) = 7'],
  [
    'stxw [%r10-4], %r1',
    'stxw [%r10-4], %r1',
    '*(u32 *)(r10 - 0x4) = r1',
    '(63) *(u32 *)(r10 -4) = r1',
  ],
  [
    'stxb [%r1+0x10], %r2',
    'stxb [%r1+16], %r2',
    '*(u8 *)(r1 + 0x10) = r2',
    '(73) *(u8 *)(r1 +16) = r2',
  ],
  [
    'lock add [%r10-8], %r1',
    'lock add [%r10-8], %r1',
    'lock *(u64 *)(r10 - 0x8) += r1',
    '(db) lock *(u64 *)(r10 -8) += r1',
  ],
  [
    'lock xor32 [%r10-8], %r1',
    'lock xor32 [%r10-8], %r1',
    'lock *(u32 *)(r10 - 0x8) ^= w1',
    '(c3) lock *(u32 *)(r10 -8) ^= r1',
  ],
  [
    'lock fetch add [%r10-8], %r0',
    'lock fetch add [%r10-8], %r0',
    'r0 = atomic_fetch_add((u64 *)(r10 - 0x8), r0)',
    '(db) r0 = atomic64_fetch_add((u64 *)(r10 -8), r0)',
  ],
  [
    'lock fetch or32 [%r1], %r2',
    'lock fetch or32 [%r1], %r2',
    'w2 = atomic_fetch_or((u32 *)(r1 + 0x0), w2)',
    '(c3) r2 = atomic_fetch_or((u32 *)(r1 +0), r2)',
  ],
  [
    'lock xchg [%r10-8], %r1',
    'lock xchg [%r10-8], %r1',
    'r1 = xchg_64(r10 - 0x8, r1)',
    '(db) r1 = atomic64_xchg((u64 *)(r10 -8), r1)',
  ],
  [
    'lock cmpxchg32 [%r10-8], %r1',
    'lock cmpxchg32 [%r10-8], %r1',
    'w0 = cmpxchg32_32(r10 - 0x8, w0, w1)',
    '(c3) r0 = atomic_cmpxchg((u32 *)(r10 -8), r0, r1)',
  ],
  ['jeq %r1, 0, +2', 'jeq %r1, 0, +2', 'if r1 == 0x0 goto +0x2', '(15) if r1 == 0x0 goto pc+2'],
  [
    'jsgt %r1, -1, -3',
    'jsgt %r1, -1, -3',
    'if r1 s> -0x1 goto -0x3',
    '(65) if r1 s> 0xffffffff goto pc-3',
  ],
  ['jset %r1, %r2, +0', 'jset %r1, %r2, +0', 'if r1 & r2 goto +0x0', '(4d) if r1 & r2 goto pc+0'],
  ['jlt32 %r1, 5, +1', 'jlt32 %r1, 5, +1', 'if w1 < 0x5 goto +0x1', '(a6) if w1 < 0x5 goto pc+1'],
  [
    'jsle32 %r1, %r9, +1',
    'jsle32 %r1, %r9, +1',
    'if w1 s<= w9 goto +0x1',
    '(de) if w1 s<= w9 goto pc+1',
  ],
  ['ja +3', 'ja +3', 'goto +0x3', '(05) goto pc+3'],
  ['ja32 -2', 'ja32 -2', 'gotol -0x2', '(06) gotol pc-2'],
  ['may_goto +1', 'may_goto +1', 'may_goto +0x1', '(e5) may_goto pc+1'],
  ['gotox %r4', 'gotox %r4', 'gotox r4', '(0d) gotox r4'],
  ['call 5', 'call 5', 'call 0x5', '(85) call unknown#5'],
  ['call local +3', 'call local +3', 'call 0x3', '(85) call pc+3'],
  ['call kfunc 12', 'call kfunc 12', 'call 0xc', '(85) call kernel-function#12'],
  ['callx %r2', 'call %r2', 'callx r2', '(8d) callx r2'],
  ['exit', 'exit', 'exit', '(95) exit'],
];

describe('disasmInsn', () => {
  it.each(LINES)('prints "%s" as "%s" | "%s" | "%s"', (text, asm, llvm, kernel) => {
    const insns = assemble(text);
    expect(disasmInsn(insns, 0, 'asm')).toBe(asm);
    expect(disasmInsn(insns, 0, 'llvm')).toBe(llvm);
    expect(disasmInsn(insns, 0, 'kernel')).toBe(kernel);
  });

  it('names helpers and kfuncs through the callbacks, as the verifier log does', () => {
    const insns = assemble('call 1\ncall kfunc 7');
    const opts = {
      helperName: (id: number) => (id === 1 ? 'bpf_map_lookup_elem' : undefined),
      kfuncName: (id: number) => (id === 7 ? 'bpf_throw' : undefined),
    };
    expect(disasmInsn(insns, 0, 'kernel', opts)).toBe('(85) call bpf_map_lookup_elem#1');
    expect(disasmInsn(insns, 1, 'kernel', opts)).toBe('(85) call bpf_throw#7');
    expect(disasmInsn(assemble('call 2'), 0, 'kernel', opts)).toBe('(85) call unknown#2');
  });

  it('prints undecodable slots as .invalid with the little-endian u64', () => {
    const bad: Insn = insn(0xff, 1, 2, 3, 4);
    expect(disasmInsn([bad], 0, 'asm')).toBe('.invalid 0x00000004000321ff');
    expect(disasmInsn([bad], 0, 'kernel')).toBe('.invalid 0x00000004000321ff');
    const reserved = insn(0x07, 1, 2, 0, 5); // add imm with src set
    expect(disasmInsn([reserved], 0, 'llvm')).toBe('.invalid 0x0000000500002107');
    const halfLddw = assemble('lddw %r1, 1').slice(0, 1);
    expect(disasmInsn(halfLddw, 0, 'asm')).toBe('.invalid 0x0000000100000118');
    expect(disasmInsn(halfLddw, 5, 'asm')).toBe('.invalid');
  });

  it('prints the old callx encoding with the register in imm as a .raw slot in asm', () => {
    const old = [insn(0x8d, 0, 0, 0, 3)];
    expect(disasmInsn(old, 0, 'asm')).toBe('.raw 0x000000030000008d # callx %r3');
    expect(disasmInsn(old, 0, 'kernel')).toBe('(8d) callx r3');
    expect(assemble(disasmInsn(old, 0, 'asm'))).toEqual(old);
  });
});

describe('disassemble', () => {
  const program = 'mov %r0, 1\nlddw %r1, 0x100000000\njeq %r1, 0, +1\nexit\nexit';

  it('prints one line per instruction with kernel-style indexes', () => {
    expect(disassemble(assemble(program), { syntax: 'kernel' })).toBe(
      [
        '0: (b7) r0 = 1',
        '1: (18) r1 = 0x100000000',
        '3: (15) if r1 == 0x0 goto pc+1',
        '4: (95) exit',
        '5: (95) exit',
        '',
      ].join('\n'),
    );
  });

  it('prints llvm-objdump style indexes and bytes', () => {
    const out = disassemble(assemble('mov %r0, 1\nexit'), { syntax: 'llvm', showBytes: true });
    expect(out).toBe(
      '       0:\tb7 00 00 00 01 00 00 00\tr0 = 0x1\n       1:\t95 00 00 00 00 00 00 00\texit\n',
    );
  });

  it('prints asm without indexes by default and as comments when asked', () => {
    expect(disassemble(assemble('mov %r0, 1\nexit'))).toBe('mov %r0, 1\nexit\n');
    expect(disassemble(assemble('mov %r0, 1\nexit'), { showIndex: true, showBytes: true })).toBe(
      'mov %r0, 1 # 0: b7 00 00 00 01 00 00 00\nexit # 1: 95 00 00 00 00 00 00 00\n',
    );
  });

  it('prints labels for jump and call targets when asked', () => {
    const insns = assemble(program);
    expect(disassemble(insns, { labels: true })).toBe(
      'mov %r0, 1\nlddw %r1, 0x100000000\njeq %r1, 0, L5\nexit\nL5:\nexit\n',
    );
  });

  it('round-trips every opcode table entry through the asm syntax', () => {
    for (const info of OP_TABLE) {
      const insns = assemble(disassemble(assemble(sampleOf(info.mnemonic, info.kind))));
      const text = disassemble(insns);
      expect(encodeInsns(assemble(text))).toEqual(encodeInsns(insns));
      expect(encodeInsns(assemble(disassemble(insns, { labels: true })))).toEqual(
        encodeInsns(insns),
      );
    }
  });

  it('never throws and keeps .invalid slots in place', () => {
    const insns = [insn(0xff, 0, 0, 0, 0), ...assemble('exit')];
    for (const syntax of ['asm', 'llvm', 'kernel'] as const satisfies readonly DisasmSyntax[]) {
      expect(disassemble(insns, { syntax, showIndex: false })).toBe(
        `.invalid 0x00000000000000ff\n${disasmInsn(insns, 1, syntax)}\n`,
      );
    }
  });
});

describe('disassembleBytes', () => {
  it('decodes slot by slot and reports trailing bytes', () => {
    const bytes = new Uint8Array([
      ...encodeInsns(assemble('mov %r0, 1')),
      0xee,
      0x01,
      0x02,
      0x03,
      0x04,
      0x05,
      0x06,
      0x07,
      0xaa,
      0xbb,
      0xcc,
    ]);
    expect(disassembleBytes(bytes)).toBe(
      'mov %r0, 1\n.invalid 0x07060504030201ee\n.invalid 0xccbbaa # 3 trailing bytes\n',
    );
  });

  it('re-assembles to the same bytes even when slots are garbage', () => {
    const bytes = new Uint8Array([
      ...encodeInsns(assemble('lddw %r1, 5')).subarray(0, 8),
      ...[0x18, 0, 0, 0, 0, 0, 0, 0],
      ...encodeInsns(assemble('ja -3\nexit')),
    ]);
    const text = disassembleBytes(bytes);
    expect(text).toBe('.invalid 0x0000000500000118\n.invalid 0x0000000000000018\nja -3\nexit\n');
    expect(encodeInsns(assemble(text))).toEqual(bytes);
  });

  it('prints nothing for no bytes', () => {
    expect(disassembleBytes(new Uint8Array(0))).toBe('');
  });
});

/** A sample instruction for a table entry, written from its mnemonic and kind. */
function sampleOf(mnemonic: string, kind: string): string {
  switch (kind) {
    case 'alu':
      return mnemonic.startsWith('neg')
        ? `${mnemonic} %r1`
        : `${mnemonic} %r1, %r2\n${mnemonic} %r1, -7`;
    case 'movsx':
      return `${mnemonic} %r1, %r2`;
    case 'end':
    case 'gotox':
    case 'callx':
      return `${mnemonic} %r3`;
    case 'lddw':
      return 'lddw %r1, 0x8000000000000001\nlddw %r2, map_value 1, 2\nlddw %r3, func -1\nlddw %r4, btf_id 4, 5';
    case 'ldabs':
      return `${mnemonic} 16`;
    case 'ldind':
      return `${mnemonic} %r1, -16`;
    case 'ldx':
    case 'ldxsx':
      return `${mnemonic} %r1, [%r2-32768]`;
    case 'st':
      return `${mnemonic} [%r2+32767], -1`;
    case 'stx':
    case 'atomic':
      return `${mnemonic} [%r10-8], %r1`;
    case 'jmp':
      return `${mnemonic} %r1, %r2, -1\n${mnemonic} %r1, 0x80000000, +0`;
    case 'ja':
    case 'ja32':
    case 'may_goto':
      return `${mnemonic} -1`;
    case 'call':
      return 'call 1\ncall local -1\ncall kfunc 3, -2';
    default:
      return mnemonic;
  }
}
