/**
 * Unit tests of src/asm/assembler.ts: every mnemonic of the opcode table against hand-written
 * bytes, aliases, number and offset rules, labels, and errors with their exact line/column.
 */

import { describe, expect, it } from 'vitest';
import { assemble, assembleProgram } from '../../../../src/asm/assembler.js';
import { AsmError, isBpfError } from '../../../../src/errors.js';
import { encodeInsns } from '../../../../src/isa/insn.js';
import { lookupOp, OP_TABLE, type OpInfo } from '../../../../src/isa/table.js';

/** Bytes as `b7 00 00 00 01 00 00 00`, slots joined by a space. */
function hex(text: string): string {
  return [...encodeInsns(assemble(text))].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Every mnemonic, with the bytes written out by hand from the ISA spec. */
const ENCODINGS: readonly (readonly [string, string])[] = [
  // ALU64
  ['add %r1, 5', '07 01 00 00 05 00 00 00'],
  ['add %r1, %r2', '0f 21 00 00 00 00 00 00'],
  ['sub %r3, -2', '17 03 00 00 fe ff ff ff'],
  ['sub %r3, %r4', '1f 43 00 00 00 00 00 00'],
  ['mul %r5, 0x10', '27 05 00 00 10 00 00 00'],
  ['mul %r5, %r6', '2f 65 00 00 00 00 00 00'],
  ['div %r7, 3', '37 07 00 00 03 00 00 00'],
  ['div %r7, %r8', '3f 87 00 00 00 00 00 00'],
  ['sdiv %r7, 3', '37 07 01 00 03 00 00 00'],
  ['sdiv %r7, %r8', '3f 87 01 00 00 00 00 00'],
  ['or %r9, 0x7fffffff', '47 09 00 00 ff ff ff 7f'],
  ['or %r9, %r10', '4f a9 00 00 00 00 00 00'],
  ['and %r0, 0xffffffff', '57 00 00 00 ff ff ff ff'],
  ['and %r0, %r1', '5f 10 00 00 00 00 00 00'],
  ['lsh %r1, 63', '67 01 00 00 3f 00 00 00'],
  ['lsh %r1, %r2', '6f 21 00 00 00 00 00 00'],
  ['rsh %r2, 1', '77 02 00 00 01 00 00 00'],
  ['rsh %r2, %r3', '7f 32 00 00 00 00 00 00'],
  ['neg %r4', '87 04 00 00 00 00 00 00'],
  ['mod %r5, 7', '97 05 00 00 07 00 00 00'],
  ['mod %r5, %r6', '9f 65 00 00 00 00 00 00'],
  ['smod %r5, -7', '97 05 01 00 f9 ff ff ff'],
  ['smod %r5, %r6', '9f 65 01 00 00 00 00 00'],
  ['xor %r6, 0x80000000', 'a7 06 00 00 00 00 00 80'],
  ['xor %r6, %r7', 'af 76 00 00 00 00 00 00'],
  ['mov %r0, -1', 'b7 00 00 00 ff ff ff ff'],
  ['mov %r0, %r10', 'bf a0 00 00 00 00 00 00'],
  ['arsh %r8, 4', 'c7 08 00 00 04 00 00 00'],
  ['arsh %r8, %r9', 'cf 98 00 00 00 00 00 00'],
  // ALU32
  ['add32 %r1, 5', '04 01 00 00 05 00 00 00'],
  ['add32 %r1, %r2', '0c 21 00 00 00 00 00 00'],
  ['sub32 %r1, 1', '14 01 00 00 01 00 00 00'],
  ['sub32 %r1, %r2', '1c 21 00 00 00 00 00 00'],
  ['mul32 %r1, 2', '24 01 00 00 02 00 00 00'],
  ['mul32 %r1, %r2', '2c 21 00 00 00 00 00 00'],
  ['div32 %r1, 2', '34 01 00 00 02 00 00 00'],
  ['div32 %r1, %r2', '3c 21 00 00 00 00 00 00'],
  ['sdiv32 %r1, -2', '34 01 01 00 fe ff ff ff'],
  ['sdiv32 %r1, %r2', '3c 21 01 00 00 00 00 00'],
  ['or32 %r1, 2', '44 01 00 00 02 00 00 00'],
  ['or32 %r1, %r2', '4c 21 00 00 00 00 00 00'],
  ['and32 %r1, 2', '54 01 00 00 02 00 00 00'],
  ['and32 %r1, %r2', '5c 21 00 00 00 00 00 00'],
  ['lsh32 %r1, 2', '64 01 00 00 02 00 00 00'],
  ['lsh32 %r1, %r2', '6c 21 00 00 00 00 00 00'],
  ['rsh32 %r1, 2', '74 01 00 00 02 00 00 00'],
  ['rsh32 %r1, %r2', '7c 21 00 00 00 00 00 00'],
  ['neg32 %r1', '84 01 00 00 00 00 00 00'],
  ['mod32 %r1, 2', '94 01 00 00 02 00 00 00'],
  ['mod32 %r1, %r2', '9c 21 00 00 00 00 00 00'],
  ['smod32 %r1, 2', '94 01 01 00 02 00 00 00'],
  ['smod32 %r1, %r2', '9c 21 01 00 00 00 00 00'],
  ['xor32 %r1, 2', 'a4 01 00 00 02 00 00 00'],
  ['xor32 %r1, %r2', 'ac 21 00 00 00 00 00 00'],
  ['mov32 %r1, 2', 'b4 01 00 00 02 00 00 00'],
  ['mov32 %r1, %r2', 'bc 21 00 00 00 00 00 00'],
  ['arsh32 %r1, 2', 'c4 01 00 00 02 00 00 00'],
  ['arsh32 %r1, %r2', 'cc 21 00 00 00 00 00 00'],
  // sign-extending moves (width of the source in off)
  ['movsx864 %r1, %r2', 'bf 21 08 00 00 00 00 00'],
  ['movsx1664 %r1, %r2', 'bf 21 10 00 00 00 00 00'],
  ['movsx3264 %r1, %r2', 'bf 21 20 00 00 00 00 00'],
  ['movsx832 %r1, %r2', 'bc 21 08 00 00 00 00 00'],
  ['movsx1632 %r1, %r2', 'bc 21 10 00 00 00 00 00'],
  // byte order (width in imm)
  ['le16 %r1', 'd4 01 00 00 10 00 00 00'],
  ['le32 %r1', 'd4 01 00 00 20 00 00 00'],
  ['le64 %r1', 'd4 01 00 00 40 00 00 00'],
  ['be16 %r2', 'dc 02 00 00 10 00 00 00'],
  ['be32 %r2', 'dc 02 00 00 20 00 00 00'],
  ['be64 %r2', 'dc 02 00 00 40 00 00 00'],
  ['bswap16 %r3', 'd7 03 00 00 10 00 00 00'],
  ['bswap32 %r3', 'd7 03 00 00 20 00 00 00'],
  ['bswap64 %r3', 'd7 03 00 00 40 00 00 00'],
  // lddw: two slots, the second holds the upper 32 bits
  ['lddw %r1, 0x1122334455667788', '18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11'],
  // legacy packet loads
  ['ldabsb 4', '30 00 00 00 04 00 00 00'],
  ['ldabsh 4', '28 00 00 00 04 00 00 00'],
  ['ldabsw 4', '20 00 00 00 04 00 00 00'],
  ['ldindb %r2, 4', '50 20 00 00 04 00 00 00'],
  ['ldindh %r2, -4', '48 20 00 00 fc ff ff ff'],
  ['ldindw %r2, 4', '40 20 00 00 04 00 00 00'],
  // loads
  ['ldxb %r0, [%r1+2]', '71 10 02 00 00 00 00 00'],
  ['ldxh %r0, [%r1-2]', '69 10 fe ff 00 00 00 00'],
  ['ldxw %r0, [%r1]', '61 10 00 00 00 00 00 00'],
  ['ldxdw %r0, [%r10-8]', '79 a0 f8 ff 00 00 00 00'],
  ['ldxsb %r0, [%r1+0x10]', '91 10 10 00 00 00 00 00'],
  ['ldxsh %r0, [%r1+32767]', '89 10 ff 7f 00 00 00 00'],
  ['ldxsw %r0, [%r1-32768]', '81 10 00 80 00 00 00 00'],
  // stores
  ['stb [%r1+1], 0x7f', '72 01 01 00 7f 00 00 00'],
  ['sth [%r1+2], -1', '6a 01 02 00 ff ff ff ff'],
  ['stw [%r10-4], 0x80000000', '62 0a fc ff 00 00 00 80'],
  ['stdw [%r10-8], 1', '7a 0a f8 ff 01 00 00 00'],
  ['stxb [%r1+1], %r2', '73 21 01 00 00 00 00 00'],
  ['stxh [%r1+1], %r2', '6b 21 01 00 00 00 00 00'],
  ['stxw [%r1+1], %r2', '63 21 01 00 00 00 00 00'],
  ['stxdw [%r10-8], %r2', '7b 2a f8 ff 00 00 00 00'],
  // atomics (op in imm)
  ['lock add [%r10-8], %r1', 'db 1a f8 ff 00 00 00 00'],
  ['lock fetch add [%r10-8], %r1', 'db 1a f8 ff 01 00 00 00'],
  ['lock or [%r10-8], %r1', 'db 1a f8 ff 40 00 00 00'],
  ['lock fetch or [%r10-8], %r1', 'db 1a f8 ff 41 00 00 00'],
  ['lock and [%r10-8], %r1', 'db 1a f8 ff 50 00 00 00'],
  ['lock fetch and [%r10-8], %r1', 'db 1a f8 ff 51 00 00 00'],
  ['lock xor [%r10-8], %r1', 'db 1a f8 ff a0 00 00 00'],
  ['lock fetch xor [%r10-8], %r1', 'db 1a f8 ff a1 00 00 00'],
  ['lock xchg [%r10-8], %r1', 'db 1a f8 ff e1 00 00 00'],
  ['lock cmpxchg [%r10-8], %r1', 'db 1a f8 ff f1 00 00 00'],
  ['lock add32 [%r2+4], %r3', 'c3 32 04 00 00 00 00 00'],
  ['lock fetch add32 [%r2+4], %r3', 'c3 32 04 00 01 00 00 00'],
  ['lock or32 [%r2+4], %r3', 'c3 32 04 00 40 00 00 00'],
  ['lock fetch or32 [%r2+4], %r3', 'c3 32 04 00 41 00 00 00'],
  ['lock and32 [%r2+4], %r3', 'c3 32 04 00 50 00 00 00'],
  ['lock fetch and32 [%r2+4], %r3', 'c3 32 04 00 51 00 00 00'],
  ['lock xor32 [%r2+4], %r3', 'c3 32 04 00 a0 00 00 00'],
  ['lock fetch xor32 [%r2+4], %r3', 'c3 32 04 00 a1 00 00 00'],
  ['lock xchg32 [%r2+4], %r3', 'c3 32 04 00 e1 00 00 00'],
  ['lock cmpxchg32 [%r2+4], %r3', 'c3 32 04 00 f1 00 00 00'],
  // JMP
  ['jeq %r1, 5, +2', '15 01 02 00 05 00 00 00'],
  ['jeq %r1, %r2, +2', '1d 21 02 00 00 00 00 00'],
  ['jgt %r1, 5, +2', '25 01 02 00 05 00 00 00'],
  ['jgt %r1, %r2, +2', '2d 21 02 00 00 00 00 00'],
  ['jge %r1, 5, +2', '35 01 02 00 05 00 00 00'],
  ['jge %r1, %r2, +2', '3d 21 02 00 00 00 00 00'],
  ['jset %r1, 5, +2', '45 01 02 00 05 00 00 00'],
  ['jset %r1, %r2, +2', '4d 21 02 00 00 00 00 00'],
  ['jne %r1, 0x80000000, -1', '55 01 ff ff 00 00 00 80'],
  ['jne %r1, %r2, +2', '5d 21 02 00 00 00 00 00'],
  ['jsgt %r1, -5, +2', '65 01 02 00 fb ff ff ff'],
  ['jsgt %r1, %r2, +2', '6d 21 02 00 00 00 00 00'],
  ['jsge %r1, 5, +2', '75 01 02 00 05 00 00 00'],
  ['jsge %r1, %r2, +2', '7d 21 02 00 00 00 00 00'],
  ['jlt %r1, 5, +2', 'a5 01 02 00 05 00 00 00'],
  ['jlt %r1, %r2, +2', 'ad 21 02 00 00 00 00 00'],
  ['jle %r1, 5, +2', 'b5 01 02 00 05 00 00 00'],
  ['jle %r1, %r2, +2', 'bd 21 02 00 00 00 00 00'],
  ['jslt %r1, 5, +2', 'c5 01 02 00 05 00 00 00'],
  ['jslt %r1, %r2, +2', 'cd 21 02 00 00 00 00 00'],
  ['jsle %r1, 5, +2', 'd5 01 02 00 05 00 00 00'],
  ['jsle %r1, %r2, +2', 'dd 21 02 00 00 00 00 00'],
  // JMP32
  ['jeq32 %r1, 5, +2', '16 01 02 00 05 00 00 00'],
  ['jeq32 %r1, %r2, +2', '1e 21 02 00 00 00 00 00'],
  ['jgt32 %r1, 5, +2', '26 01 02 00 05 00 00 00'],
  ['jgt32 %r1, %r2, +2', '2e 21 02 00 00 00 00 00'],
  ['jge32 %r1, 5, +2', '36 01 02 00 05 00 00 00'],
  ['jge32 %r1, %r2, +2', '3e 21 02 00 00 00 00 00'],
  ['jset32 %r1, 5, +2', '46 01 02 00 05 00 00 00'],
  ['jset32 %r1, %r2, +2', '4e 21 02 00 00 00 00 00'],
  ['jne32 %r1, 5, +2', '56 01 02 00 05 00 00 00'],
  ['jne32 %r1, %r2, +2', '5e 21 02 00 00 00 00 00'],
  ['jsgt32 %r1, 5, +2', '66 01 02 00 05 00 00 00'],
  ['jsgt32 %r1, %r2, +2', '6e 21 02 00 00 00 00 00'],
  ['jsge32 %r1, 5, +2', '76 01 02 00 05 00 00 00'],
  ['jsge32 %r1, %r2, +2', '7e 21 02 00 00 00 00 00'],
  ['jlt32 %r1, 5, +2', 'a6 01 02 00 05 00 00 00'],
  ['jlt32 %r1, %r2, +2', 'ae 21 02 00 00 00 00 00'],
  ['jle32 %r1, 5, +2', 'b6 01 02 00 05 00 00 00'],
  ['jle32 %r1, %r2, +2', 'be 21 02 00 00 00 00 00'],
  ['jslt32 %r1, 5, +2', 'c6 01 02 00 05 00 00 00'],
  ['jslt32 %r1, %r2, +2', 'ce 21 02 00 00 00 00 00'],
  ['jsle32 %r1, 5, +2', 'd6 01 02 00 05 00 00 00'],
  ['jsle32 %r1, %r2, +2', 'de 21 02 00 00 00 00 00'],
  // unconditional control flow, calls, exit
  ['ja +1', '05 00 01 00 00 00 00 00'],
  ['ja -1', '05 00 ff ff 00 00 00 00'],
  ['ja32 +3', '06 00 00 00 03 00 00 00'],
  ['ja32 -3', '06 00 00 00 fd ff ff ff'],
  ['gotox %r3', '0d 03 00 00 00 00 00 00'],
  ['may_goto +4', 'e5 00 04 00 00 00 00 00'],
  ['call 5', '85 00 00 00 05 00 00 00'],
  ['call local +2', '85 10 00 00 02 00 00 00'],
  ['call kfunc 7, 1', '85 20 01 00 07 00 00 00'],
  ['callx %r3', '8d 03 00 00 00 00 00 00'],
  ['exit', '95 00 00 00 00 00 00 00'],
];

describe('assemble: encodings', () => {
  it.each(ENCODINGS)('encodes "%s" as %s', (text, bytes) => {
    expect(hex(text)).toBe(bytes);
  });

  it('covers every entry of the opcode table', () => {
    const seen = new Set<OpInfo>();
    for (const [text] of ENCODINGS) {
      const i = assemble(text)[0];
      const info = i === undefined ? undefined : lookupOp(i.code, i.off, i.imm);
      if (info !== undefined) seen.add(info);
    }
    const missing = OP_TABLE.filter((info) => !seen.has(info)).map((info) => info.mnemonic);
    expect(missing).toEqual([]);
  });

  it('reads the 64-bit aliases and the swap spelling as the table mnemonics', () => {
    expect(hex('add64 %r1, 5')).toBe(hex('add %r1, 5'));
    expect(hex('mov64 %r1, %r2')).toBe(hex('mov %r1, %r2'));
    expect(hex('neg64 %r1')).toBe(hex('neg %r1'));
    expect(hex('sdiv64 %r1, 3')).toBe(hex('sdiv %r1, 3'));
    expect(hex('swap16 %r1')).toBe(hex('bswap16 %r1'));
    expect(hex('swap64 %r1')).toBe(hex('bswap64 %r1'));
    expect(hex('lock add64 [%r1], %r2')).toBe(hex('lock add [%r1], %r2'));
    expect(hex('lock fetch xor64 [%r1], %r2')).toBe(hex('lock fetch xor [%r1], %r2'));
  });

  it('takes mnemonics and registers in any case', () => {
    expect(hex('MOV %R1, 1')).toBe(hex('mov %r1, 1'));
    expect(hex('LOCK FETCH ADD [%r1], %r2')).toBe(hex('lock fetch add [%r1], %r2'));
  });

  it('encodes call %rN as callx with the register in dst', () => {
    expect(hex('call %r2')).toBe('8d 02 00 00 00 00 00 00');
    expect(hex('call helper 5')).toBe(hex('call 5'));
    expect(hex('call runtime 7')).toBe('85 20 00 00 07 00 00 00');
  });

  it('encodes lddw values above 2^63, negative values and pseudo sources', () => {
    expect(hex('lddw %r0, 0xfedcba9876543210')).toBe(
      '18 00 00 00 10 32 54 76 00 00 00 00 98 ba dc fe',
    );
    expect(hex('lddw %r0, 0xffffffffffffffff')).toBe(
      '18 00 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff',
    );
    expect(hex('lddw %r2, -1')).toBe('18 02 00 00 ff ff ff ff 00 00 00 00 ff ff ff ff');
    expect(hex('lddw %r0, 2147483648')).toBe('18 00 00 00 00 00 00 80 00 00 00 00 00 00 00 00');
    expect(hex('lddw %r0, -9223372036854775808')).toBe(
      '18 00 00 00 00 00 00 00 00 00 00 00 00 00 00 80',
    );
    expect(hex('lddw %r1, map_fd 3')).toBe('18 11 00 00 03 00 00 00 00 00 00 00 00 00 00 00');
    expect(hex('lddw %r1, map_value 3, 16')).toBe(
      '18 21 00 00 03 00 00 00 00 00 00 00 10 00 00 00',
    );
    expect(hex('lddw %r1, btf_id 9')).toBe('18 31 00 00 09 00 00 00 00 00 00 00 00 00 00 00');
    expect(hex('lddw %r1, map_idx 0')).toBe('18 51 00 00 00 00 00 00 00 00 00 00 00 00 00 00');
    expect(hex('lddw %r1, map_idx_value 1, -4')).toBe(
      '18 61 00 00 01 00 00 00 00 00 00 00 fc ff ff ff',
    );
    expect(hex('lddw %r1, func f\nexit\nf: exit')).toBe(
      '18 41 00 00 02 00 00 00 00 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00',
    );
  });

  it('wraps 32-bit immediates from 0x80000000 to 0xffffffff to their two s complement', () => {
    expect(assemble('mov %r0, 0x80000000')[0]?.imm).toBe(-2147483648);
    expect(assemble('mov %r0, 0xffffffff')[0]?.imm).toBe(-1);
    expect(assemble('mov %r0, 4294967295')[0]?.imm).toBe(-1);
    expect(assemble('mov %r0, -2147483648')[0]?.imm).toBe(-2147483648);
    expect(assemble('mov %r0, -0x1')[0]?.imm).toBe(-1);
  });

  it('accepts memory operands with spaces and hex offsets', () => {
    expect(hex('ldxw %r0, [ %r1 + 0x10 ]')).toBe('61 10 10 00 00 00 00 00');
    expect(hex('ldxw %r0, [%r10 - 8]')).toBe('61 a0 f8 ff 00 00 00 00');
    expect(hex('stxdw [%r10-0x8], %r1')).toBe('7b 1a f8 ff 00 00 00 00');
  });

  it('assembles .raw and .invalid slots from their little-endian u64', () => {
    expect(hex('.raw 0x5566778800000018\n.raw 0x1122334400000000')).toBe(
      '18 00 00 00 88 77 66 55 00 00 00 00 44 33 22 11',
    );
    expect(hex('.invalid 0x00000000000000ff')).toBe('ff 00 00 00 00 00 00 00');
  });
});

describe('assemble: labels and comments', () => {
  it('resolves forward and backward labels counting lddw as two slots', () => {
    const insns = assemble(
      ['start:', 'lddw %r1, 0x100000000', 'jeq %r1, 0, done', 'ja start', 'done:', 'exit'].join(
        '\n',
      ),
    );
    expect(insns.map((i) => i.off)).toEqual([0, 0, 1, -4, 0]);
  });

  it('defines exit implicitly at the first exit instruction', () => {
    const insns = assemble('jeq %r1, 0, exit\nmov %r0, 1\nexit\nexit');
    expect(insns[0]?.off).toBe(1);
  });

  it('prefers an explicit exit label over the implicit one', () => {
    const insns = assemble('ja exit\nexit\nexit:\nexit');
    expect(insns[0]?.off).toBe(1);
  });

  it('accepts a label in front of an instruction and several labels on a line', () => {
    const insns = assemble('ja b\na: b: mov %r0, 1\nja a\nexit');
    expect(insns.map((i) => i.off)).toEqual([0, 0, -2, 0]);
  });

  it('puts ja32 and call local targets in imm', () => {
    const insns = assemble('ja32 L\nmov %r0, 0\nL:\ncall local f\nexit\nf:\nexit');
    expect(insns[0]).toMatchObject({ code: 0x06, imm: 1, off: 0 });
    expect(insns[2]).toMatchObject({ code: 0x85, src: 1, imm: 1 });
  });

  it('strips #, ; and // comments and ignores blank lines', () => {
    const text = '# header\n\n  mov %r0, 1 # one\n; note\nadd %r0, 2 ; two\n// c++\nexit // done\n';
    expect(hex(text)).toBe(hex('mov %r0, 1\nadd %r0, 2\nexit'));
  });
});

describe('assemble: errors', () => {
  /** The AsmError that assembling `text` throws, as [line, column, reason]. */
  function asmError(text: string): [number, number, string] {
    try {
      assemble(text);
    } catch (e) {
      if (e instanceof AsmError) return [e.line, e.column, e.reason];
      throw e;
    }
    throw new Error(`no error for ${JSON.stringify(text)}`);
  }

  it.each([
    ['mov %r0, 1\nad %r0, 1', 2, 1, "unknown mnemonic 'ad'"],
    ['lock sub [%r1], %r2', 1, 6, "unknown mnemonic 'lock sub'"],
    ['lock', 1, 1, "expected an atomic operation after 'lock'"],
    ['  add %r11, 1', 1, 7, "invalid register '%r11'"],
    ['mov %rx, 1', 1, 5, "invalid register '%rx'"],
    ['mov 1, %r1', 1, 5, "expected a register, got '1'"],
    ['add %r1', 1, 1, "'add' takes 2 operands, got 1"],
    ['add %r1, 1, 2', 1, 13, "'add' takes 2 operands, got 3"],
    ['exit %r0', 1, 6, "'exit' takes 0 operands, got 1"],
    ['add %r1,, 2', 1, 9, 'missing operand before ,'],
    ['ja nowhere', 1, 4, "undefined label 'nowhere'"],
    ['a:\nexit\n  a:', 3, 3, "duplicate label 'a'"],
    ['mov %r0, 0x100000000', 1, 10, 'immediate 0x100000000 out of range'],
    ['mov %r0, -2147483649', 1, 10, 'immediate -2147483649 out of range'],
    ['mov %r0, 12ab', 1, 10, "invalid number '12ab'"],
    ['mov %r0, @', 1, 10, 'unexpected character "@"'],
    ['ldxw %r0, [%r1+32768]', 1, 15, 'offset 32768 out of range'],
    ['ldxw %r0, [%r1-32769]', 1, 15, 'offset -32769 out of range'],
    ['ldxw %r0, %r1', 1, 11, "expected a memory operand like [%r1+8], got '%r1'"],
    ['ldxw %r0, [%r1+4', 1, 15, "expected ']'"],
    ['jeq %r1, 1, +32768', 1, 13, 'jump offset +32768 out of range'],
    ['jeq %r1, 1, 3', 1, 13, "expected a label or a signed offset such as +2, got '3'"],
    ['lddw %r0, 0x10000000000000000', 1, 11, 'immediate 0x10000000000000000 out of range'],
    ['lddw %r0, -9223372036854775809', 1, 11, 'immediate -9223372036854775809 out of range'],
    ['lddw %r0, 1, 2', 1, 14, "'lddw' takes 2 operands, got 3"],
    ['lddw %r0, map 1', 1, 11, expect.stringContaining("unknown lddw source 'map'")],
    ['call far 1', 1, 6, expect.stringContaining("unknown call kind 'far'")],
    ['call 5, 1', 1, 9, "'call' takes 1 operand, got 2"],
    ['.raw -1', 1, 6, 'slot value -1 out of range'],
    ['1: exit', 1, 1, "expected a mnemonic or a label, got '1'"],
  ] as const)('rejects %j at %i:%i', (text, line, column, reason) => {
    expect(asmError(text)).toEqual([line, column, reason]);
  });

  it('rejects a label whose jump offset does not fit 16 bits', () => {
    const text = `ja far\n${'mov %r0, 0\n'.repeat(32768)}far: exit`;
    expect(asmError(text)).toEqual([1, 4, "jump offset 32768 to 'far' out of range"]);
  });

  it('formats the message as asm: line:col: reason and uses EINVAL', () => {
    try {
      assemble('\n   foo');
      expect.unreachable();
    } catch (e) {
      expect(isBpfError(e)).toBe(true);
      expect((e as AsmError).message).toBe("asm: 2:4: unknown mnemonic 'foo'");
      expect((e as AsmError).code).toBe('EINVAL');
    }
  });
});

describe('assembleProgram', () => {
  it('returns a checked program whose functions are named by their labels', () => {
    const prog = assembleProgram('call local f\nexit\nf:\nmov %r0, 2\nexit', { name: 'demo' });
    expect(prog.subprogs.map((s) => [s.start, s.name])).toEqual([
      [0, 'demo'],
      [2, 'f'],
    ]);
  });

  it('lets structural errors through as DecodeError', () => {
    expect(() => assembleProgram('mov %r0, 1')).toThrow(/last insn is not an exit or jmp/);
    try {
      assembleProgram('ja +5\nexit');
    } catch (e) {
      expect(isBpfError(e) && e.name).toBe('DecodeError');
    }
  });
});
