/**
 * The reference interpreter, data side: loads and stores of every size, sign-extending loads,
 * ST with an immediate, every atomic in both widths (on plain and on shared memory), the
 * memory checks ('mem', 'align'), lddw with plain and linked values, the instruction budget,
 * falling off a function, and the entry registers. Calls, indirect jumps, may_goto and
 * ld_abs/ld_ind are in interpreter-calls.test.ts.
 */

import { describe, expect, it } from 'vitest';
import { ExecError, LinkError } from '../../../../src/errors.js';
import { interpret } from '../../../../src/interp/interpreter.js';
import {
  BPF_ALU64_IMM,
  BPF_ATOMIC_OP,
  BPF_EMIT_CALL,
  BPF_EXIT_INSN,
  BPF_JMP_A,
  BPF_LDX_MEM,
  BPF_LDX_MEMSX,
  BPF_LD_IMM64,
  BPF_LD_MAP_FD,
  BPF_MOV64_IMM,
  BPF_MOV64_REG,
  BPF_STX_MEM,
  BPF_ST_MEM,
} from '../../../../src/isa/build.js';
import type { Insn } from '../../../../src/isa/insn.js';
import {
  BPF_ADD,
  BPF_AND,
  BPF_B,
  BPF_CMPXCHG,
  BPF_DW,
  BPF_FETCH,
  BPF_H,
  BPF_OR,
  BPF_REG_0,
  BPF_REG_1,
  BPF_REG_10,
  BPF_REG_2,
  BPF_REG_3,
  BPF_REG_4,
  BPF_REG_5,
  BPF_W,
  BPF_XCHG,
  BPF_XOR,
} from '../../../../src/isa/opcodes.js';
import { createProgram, type Program } from '../../../../src/program.js';
import {
  PROBE_HELPER,
  makeExecEnv,
  probeHelpers,
  runInsns,
  thrown,
  type RunOptions,
} from '../../../helpers/exec-env.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const INPUT8 = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);

/** Runs `insns` with a probe helper; returns the r1..r5 of each probe call and r0. */
function probe(insns: readonly Insn[], opts: RunOptions = {}): { seen: bigint[][]; r0: bigint } {
  const p = probeHelpers();
  const { r0 } = runInsns(insns, { ...opts, helpers: p.helpers });
  return { seen: p.seen.map((a) => [...a]), r0 };
}

/** The ExecError `f` throws (fails the test when it throws anything else). */
function execError(f: () => unknown): ExecError {
  const e = thrown(f);
  expect(e).toBeInstanceOf(ExecError);
  return e as ExecError;
}

function expectMem(f: () => unknown, insnIdx: number, text?: string): void {
  const e = execError(f);
  expect(e.kind).toBe('mem');
  expect(e.insnIdx).toBe(insnIdx);
  expect(e.code).toBe('EFAULT');
  if (text !== undefined) expect(e.message).toContain(text);
}

describe('loads and stores', () => {
  it('stores and loads every size little-endian at negative offsets from r10', () => {
    const { seen } = probe([
      ...BPF_LD_IMM64(BPF_REG_1, 0x8877_6655_4433_2211n),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -8),
      BPF_LDX_MEM(BPF_B, BPF_REG_2, BPF_REG_10, -8),
      BPF_LDX_MEM(BPF_H, BPF_REG_3, BPF_REG_10, -8),
      BPF_LDX_MEM(BPF_W, BPF_REG_4, BPF_REG_10, -8),
      BPF_LDX_MEM(BPF_DW, BPF_REG_5, BPF_REG_10, -8),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_LDX_MEM(BPF_H, BPF_REG_1, BPF_REG_10, -7),
      BPF_LDX_MEM(BPF_W, BPF_REG_2, BPF_REG_10, -5),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_EXIT_INSN(),
    ]);
    expect(seen[0]).toEqual([
      0x8877_6655_4433_2211n,
      0x11n,
      0x2211n,
      0x4433_2211n,
      0x8877_6655_4433_2211n,
    ]);
    expect(seen[1]?.slice(0, 2)).toEqual([0x3322n, 0x7766_5544n]);
  });

  it('lays the bytes out little-endian in memory', () => {
    const { env } = runInsns([
      ...BPF_LD_IMM64(BPF_REG_1, 0x8877_6655_4433_2211n),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -8),
      BPF_EXIT_INSN(),
    ]);
    const top = env.layout.stackTop;
    expect([...env.mem.subarray(top - 8, top)]).toEqual([
      0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
    ]);
  });

  it('sign-extends ldxsb, ldxsh and ldxsw to 64 bits', () => {
    const { seen } = probe([
      ...BPF_LD_IMM64(BPF_REG_0, 0x8000_0000_8000_7f80n),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_0, -8),
      BPF_LDX_MEMSX(BPF_B, BPF_REG_1, BPF_REG_10, -8),
      BPF_LDX_MEMSX(BPF_B, BPF_REG_2, BPF_REG_10, -7),
      BPF_LDX_MEMSX(BPF_H, BPF_REG_3, BPF_REG_10, -6),
      BPF_LDX_MEMSX(BPF_W, BPF_REG_4, BPF_REG_10, -4),
      BPF_LDX_MEMSX(BPF_W, BPF_REG_5, BPF_REG_10, -8),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_LDX_MEMSX(BPF_H, BPF_REG_1, BPF_REG_10, -7),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_EXIT_INSN(),
    ]);
    expect(seen[0]).toEqual([
      0xffff_ffff_ffff_ff80n,
      0x7fn,
      0xffff_ffff_ffff_8000n,
      0xffff_ffff_8000_0000n,
      0xffff_ffff_8000_7f80n,
    ]);
    expect(seen[1]?.[0]).toBe(0x7fn);
  });

  it('ST stores the sign-extended imm truncated to the access size', () => {
    const { seen } = probe([
      ...BPF_LD_IMM64(BPF_REG_1, 0xaaaa_aaaa_aaaa_aaaan),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -8),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -16),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -24),
      BPF_ST_MEM(BPF_DW, BPF_REG_10, -8, -2),
      BPF_ST_MEM(BPF_W, BPF_REG_10, -16, -2),
      BPF_ST_MEM(BPF_H, BPF_REG_10, -24, 0x1234_5678),
      BPF_ST_MEM(BPF_B, BPF_REG_10, -22, 0x1234),
      BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, -8),
      BPF_LDX_MEM(BPF_DW, BPF_REG_2, BPF_REG_10, -16),
      BPF_LDX_MEM(BPF_DW, BPF_REG_3, BPF_REG_10, -24),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_EXIT_INSN(),
    ]);
    expect(seen[0]?.slice(0, 3)).toEqual([
      0xffff_ffff_ffff_fffen,
      0xaaaa_aaaa_ffff_fffen,
      0xaaaa_aaaa_aa34_5678n,
    ]);
  });

  it('STX stores only the low bytes of the register', () => {
    const { seen } = probe([
      ...BPF_LD_IMM64(BPF_REG_1, 0x1122_3344_5566_7788n),
      BPF_STX_MEM(BPF_W, BPF_REG_10, BPF_REG_1, -8),
      BPF_STX_MEM(BPF_H, BPF_REG_10, BPF_REG_1, -16),
      BPF_STX_MEM(BPF_B, BPF_REG_10, BPF_REG_1, -24),
      BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, -8),
      BPF_LDX_MEM(BPF_DW, BPF_REG_2, BPF_REG_10, -16),
      BPF_LDX_MEM(BPF_DW, BPF_REG_3, BPF_REG_10, -24),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_EXIT_INSN(),
    ]);
    expect(seen[0]?.slice(0, 3)).toEqual([0x5566_7788n, 0x7788n, 0x88n]);
  });

  it('reads and writes the input region through r1', () => {
    const { r0, env } = runInsns(
      [
        BPF_LDX_MEM(BPF_W, BPF_REG_0, BPF_REG_1, 4),
        BPF_ST_MEM(BPF_B, BPF_REG_1, 0, 0xee),
        BPF_STX_MEM(BPF_H, BPF_REG_1, BPF_REG_2, 6),
        BPF_EXIT_INSN(),
      ],
      { input: INPUT8 },
    );
    expect(r0).toBe(0x0706_0504n);
    expect([...env.mem.subarray(env.input.addr, env.input.addr + 8)]).toEqual([
      0xee, 1, 2, 3, 4, 5, 8, 0,
    ]);
  });

  it('reads a read-only region and refuses to write it', () => {
    const regions = [{ start: 0x80000, end: 0x80010, writable: false, name: 'ro' }];
    const load = [
      ...BPF_LD_IMM64(BPF_REG_1, 0x80000n),
      BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 8),
    ];
    expect(runInsns([...load, BPF_EXIT_INSN()], { regions }).r0).toBe(0n);
    const store = [...load, BPF_ST_MEM(BPF_W, BPF_REG_1, 12, 1), BPF_EXIT_INSN()];
    expectMem(() => runInsns(store, { regions }), 3, 'invalid write of 4 bytes at 0x8000c');
  });
});

describe('memory checks', () => {
  it('allows the whole 512-byte frame and nothing below it', () => {
    const ok = [BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_10, -512), BPF_EXIT_INSN()];
    expect(runInsns(ok).r0).toBe(0n);
    const below = [BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_10, -513), BPF_EXIT_INSN()];
    expectMem(() => runInsns(below), 0, 'invalid read of 1 bytes at 0x23dff');
    const straddle = [BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_10, -516), BPF_EXIT_INSN()];
    expectMem(() => runInsns(straddle), 0);
  });

  it('refuses accesses at or across the top of the stack', () => {
    expectMem(() => runInsns([BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_10, 0), BPF_EXIT_INSN()]), 0);
    const across = [BPF_MOV64_IMM(BPF_REG_1, 7), BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -4)];
    expectMem(() => runInsns([...across, BPF_EXIT_INSN()]), 1, 'invalid write of 8 bytes');
  });

  it('refuses reads past the end of the input and before its start', () => {
    const opts = { input: INPUT8 };
    const at =
      (i: Insn): (() => unknown) =>
      () =>
        runInsns([i, BPF_EXIT_INSN()], opts);
    expect(runInsns([BPF_LDX_MEM(BPF_W, BPF_REG_0, BPF_REG_1, 4), BPF_EXIT_INSN()], opts).r0).toBe(
      0x0706_0504n,
    );
    expectMem(at(BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 4)), 0, 'at 0x26104');
    expectMem(at(BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_1, 8)), 0, 'at 0x26108');
    expectMem(at(BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_1, -1)), 0, 'at 0x260ff');
  });

  it('refuses NULL and small offsets from it', () => {
    const insns = [
      BPF_MOV64_IMM(BPF_REG_1, 0),
      BPF_MOV64_IMM(BPF_REG_0, 0),
      BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 16),
      BPF_EXIT_INSN(),
    ];
    expectMem(() => runInsns(insns), 2, 'invalid read of 8 bytes at 0x10');
    const write = [
      BPF_MOV64_IMM(BPF_REG_1, 0),
      BPF_ST_MEM(BPF_B, BPF_REG_1, 0, 1),
      BPF_EXIT_INSN(),
    ];
    expectMem(() => runInsns(write), 1, 'invalid write of 1 bytes at 0x0');
  });

  it('refuses addresses with the upper half set, even when the low half is valid', () => {
    const env = makeExecEnv({ input: INPUT8 });
    const addr = 0x1_0000_0000n + BigInt(env.input.addr);
    const insns = [...BPF_LD_IMM64(BPF_REG_1, addr), BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_1, 0)];
    expectMem(() => runInsns([...insns, BPF_EXIT_INSN()], { input: INPUT8 }), 2, 'at 0x100026100');
  });

  it('reports an address that wraps around 2^64 at its wrapped value', () => {
    const insns = [
      ...BPF_LD_IMM64(BPF_REG_1, U64_MAX),
      BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_1, 1),
    ];
    expectMem(() => runInsns([...insns, BPF_EXIT_INSN()]), 2, 'at 0x0');
  });

  it('refuses every kind of write to a read-only input', () => {
    const opts = { input: INPUT8, inputWritable: false };
    const body = (i: Insn): Insn[] => [
      BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_1, 0),
      i,
      BPF_EXIT_INSN(),
    ];
    expect(runInsns([BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 0), BPF_EXIT_INSN()], opts).r0).toBe(
      0x0706_0504_0302_0100n,
    );
    expectMem(() => runInsns(body(BPF_STX_MEM(BPF_B, BPF_REG_1, BPF_REG_0, 0)), opts), 1, 'write');
    expectMem(() => runInsns(body(BPF_ST_MEM(BPF_W, BPF_REG_1, 4, 0)), opts), 1, 'write');
    const atomic = BPF_ATOMIC_OP(BPF_W, BPF_ADD, BPF_REG_1, BPF_REG_0, 0);
    expectMem(() => runInsns(body(atomic), opts), 1, 'invalid write of 4 bytes');
  });

  it('fails with mem, not a RangeError, for a region that extends past the memory', () => {
    const regions = [{ start: 0xff000, end: 0x200000, writable: true, name: 'bogus' }];
    const insns = [
      ...BPF_LD_IMM64(BPF_REG_1, 0xffffcn),
      BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 0),
      BPF_EXIT_INSN(),
    ];
    expectMem(() => runInsns(insns, { regions }), 2);
  });
});

/** [title, size, atomic imm, initial memory, src, initial r0, memory after, src after, r0 after] */
type AtomicCase = readonly [string, 4 | 8, number, bigint, bigint, bigint, bigint, bigint, bigint];

const I64 = 0x1_0000_000cn;
const I32 = 0xaaaa_aaaa_0000_000cn;
const S32 = 0xffff_ffff_0000_0005n;
const ATOMIC_CASES: readonly AtomicCase[] = [
  ['add', 8, BPF_ADD, I64, 5n, 0x77n, 0x1_0000_0011n, 5n, 0x77n],
  ['fetch add', 8, BPF_ADD | BPF_FETCH, I64, 5n, 0x77n, 0x1_0000_0011n, I64, 0x77n],
  ['add wrapping', 8, BPF_ADD, U64_MAX, 2n, 0n, 1n, 2n, 0n],
  ['or', 8, BPF_OR, I64, 5n, 0x77n, 0x1_0000_000dn, 5n, 0x77n],
  ['fetch or', 8, BPF_OR | BPF_FETCH, I64, 5n, 0x77n, 0x1_0000_000dn, I64, 0x77n],
  ['and', 8, BPF_AND, I64, 5n, 0x77n, 4n, 5n, 0x77n],
  ['fetch and', 8, BPF_AND | BPF_FETCH, I64, 5n, 0x77n, 4n, I64, 0x77n],
  ['xor', 8, BPF_XOR, I64, 5n, 0x77n, 0x1_0000_0009n, 5n, 0x77n],
  ['fetch xor', 8, BPF_XOR | BPF_FETCH, I64, 5n, 0x77n, 0x1_0000_0009n, I64, 0x77n],
  ['xchg', 8, BPF_XCHG, I64, 5n, 0x77n, 5n, I64, 0x77n],
  ['cmpxchg (match)', 8, BPF_CMPXCHG, I64, 5n, I64, 5n, 5n, I64],
  ['cmpxchg (mismatch)', 8, BPF_CMPXCHG, I64, 5n, 0xcn, I64, 5n, I64],
  ['add32', 4, BPF_ADD, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0011n, S32, 0x77n],
  ['fetch add32', 4, BPF_ADD | BPF_FETCH, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0011n, 0xcn, 0x77n],
  ['add32 wrapping', 4, BPF_ADD, 0xaaaa_aaaa_ffff_ffffn, 2n, 0n, 0xaaaa_aaaa_0000_0001n, 2n, 0n],
  ['or32', 4, BPF_OR, I32, S32, 0x77n, 0xaaaa_aaaa_0000_000dn, S32, 0x77n],
  ['fetch or32', 4, BPF_OR | BPF_FETCH, I32, S32, 0x77n, 0xaaaa_aaaa_0000_000dn, 0xcn, 0x77n],
  ['and32', 4, BPF_AND, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0004n, S32, 0x77n],
  ['fetch and32', 4, BPF_AND | BPF_FETCH, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0004n, 0xcn, 0x77n],
  ['xor32', 4, BPF_XOR, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0009n, S32, 0x77n],
  ['fetch xor32', 4, BPF_XOR | BPF_FETCH, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0009n, 0xcn, 0x77n],
  ['xchg32', 4, BPF_XCHG, I32, S32, 0x77n, 0xaaaa_aaaa_0000_0005n, 0xcn, 0x77n],
  [
    'cmpxchg32 (match)',
    4,
    BPF_CMPXCHG,
    I32,
    S32,
    0xffff_ffff_0000_000cn,
    0xaaaa_aaaa_0000_0005n,
    S32,
    0xcn,
  ],
  ['cmpxchg32 (mismatch)', 4, BPF_CMPXCHG, I32, S32, 0xdn, I32, S32, 0xcn],
];

describe('atomics', () => {
  for (const shared of [false, true]) {
    const memKind = shared ? 'shared' : 'plain';
    it.each(ATOMIC_CASES)(
      `%s on ${memKind} memory`,
      (_title, size, op, init, src, r0, memAfter, srcAfter, r0After) => {
        const { seen } = probe(
          [
            ...BPF_LD_IMM64(BPF_REG_1, init),
            BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -8),
            ...BPF_LD_IMM64(BPF_REG_2, src),
            ...BPF_LD_IMM64(BPF_REG_0, r0),
            BPF_ATOMIC_OP(size === 8 ? BPF_DW : BPF_W, op, BPF_REG_10, BPF_REG_2, -8),
            BPF_LDX_MEM(BPF_DW, BPF_REG_3, BPF_REG_10, -8),
            BPF_MOV64_REG(BPF_REG_1, BPF_REG_0),
            BPF_EMIT_CALL(PROBE_HELPER),
            BPF_EXIT_INSN(),
          ],
          { shared },
        );
        expect(seen[0]?.slice(0, 3)).toEqual([r0After, srcAfter, memAfter]);
      },
    );
  }

  it.each([
    ['an 8-byte atomic at fp-20', BPF_DW, -20],
    ['an 8-byte atomic at fp-12', BPF_DW, -12],
    ['a 4-byte atomic at fp-6', BPF_W, -6],
    ['a 4-byte atomic at fp-5', BPF_W, -5],
  ])('refuses %s as misaligned', (_title, size, off) => {
    const insns = [
      BPF_MOV64_IMM(BPF_REG_1, 1),
      BPF_ATOMIC_OP(size, BPF_ADD, BPF_REG_10, BPF_REG_1, off),
      BPF_EXIT_INSN(),
    ];
    const e = execError(() => runInsns(insns));
    expect(e.kind).toBe('align');
    expect(e.insnIdx).toBe(1);
  });

  it('accepts an aligned 4-byte atomic that is not 8-aligned, and misaligned plain loads', () => {
    const insns = [
      BPF_MOV64_IMM(BPF_REG_1, 1),
      BPF_ATOMIC_OP(BPF_W, BPF_ADD, BPF_REG_10, BPF_REG_1, -4),
      BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_10, -9),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns).r0).toBe(0x100_0000_0000n);
  });

  it('checks alignment of the linear address in other regions too', () => {
    const insns = [BPF_ATOMIC_OP(BPF_W, BPF_ADD, BPF_REG_1, BPF_REG_2, 2), BPF_EXIT_INSN()];
    const e = execError(() => runInsns(insns, { input: INPUT8 }));
    expect(e.kind).toBe('align');
    expect(e.message).toContain('0x26102');
  });

  it('reports an out-of-bounds misaligned atomic as mem', () => {
    const insns = [BPF_ATOMIC_OP(BPF_DW, BPF_ADD, BPF_REG_10, BPF_REG_1, -516), BPF_EXIT_INSN()];
    expectMem(() => runInsns(insns), 0);
  });
});

describe('lddw', () => {
  it('loads the 64-bit immediate of both slots', () => {
    const run = (v: bigint): bigint =>
      runInsns([...BPF_LD_IMM64(BPF_REG_0, v), BPF_EXIT_INSN()]).r0;
    expect(run(0x1122_3344_5566_7788n)).toBe(0x1122_3344_5566_7788n);
    expect(run(-1n)).toBe(U64_MAX);
    expect(run(0x8000_0000n)).toBe(0x8000_0000n);
  });

  it('loads the linked value of a pseudo lddw', () => {
    const insns = [BPF_MOV64_IMM(BPF_REG_0, 0), ...BPF_LD_MAP_FD(BPF_REG_0, 3), BPF_EXIT_INSN()];
    expect(runInsns(insns, { ldImm64: new Map([[1, 0x9_0000n]]) }).r0).toBe(0x9_0000n);
  });

  it('throws LinkError naming the slot when a pseudo lddw has no linked value', () => {
    const insns = [BPF_MOV64_IMM(BPF_REG_0, 0), ...BPF_LD_MAP_FD(BPF_REG_0, 3), BPF_EXIT_INSN()];
    const e = thrown(() => runInsns(insns, { ldImm64: new Map([[0, 1n]]) }));
    expect(e).toBeInstanceOf(LinkError);
    expect((e as LinkError).message).toContain('insn 1');
  });
});

describe('instruction budget', () => {
  const three = [BPF_MOV64_IMM(BPF_REG_0, 1), BPF_MOV64_IMM(BPF_REG_0, 2), BPF_EXIT_INSN()];

  it('runs exactly insnBudget instructions', () => {
    expect(runInsns(three, { insnBudget: 3 }).r0).toBe(2n);
    const e = execError(() => runInsns(three, { insnBudget: 2 }));
    expect(e.kind).toBe('insn-budget');
    expect(e.insnIdx).toBe(2);
    expect(e.code).toBe('E2BIG');
  });

  it('counts lddw as one instruction', () => {
    const insns = [...BPF_LD_IMM64(BPF_REG_0, 5n), BPF_EXIT_INSN()];
    expect(runInsns(insns, { insnBudget: 2 }).r0).toBe(5n);
  });

  it('stops an endless loop', () => {
    const insns = [
      BPF_MOV64_IMM(BPF_REG_0, 0),
      BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1),
      BPF_JMP_A(-2),
    ];
    const e = execError(() => runInsns(insns, { insnBudget: 1000 }));
    expect(e.kind).toBe('insn-budget');
    expect([1, 2]).toContain(e.insnIdx);
  });
});

describe('entry and exit', () => {
  it('passes r1 and r2, zeroes r3 to r5, sets r10 and returns r0 as u64', () => {
    const p = probeHelpers();
    const prog = createProgram([
      BPF_MOV64_REG(BPF_REG_5, BPF_REG_10),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_MOV64_IMM(BPF_REG_0, -1),
      BPF_EXIT_INSN(),
    ]);
    const env = makeExecEnv({ prog, helpers: p.helpers });
    expect(interpret(prog, env, -1n, 2n ** 64n + 7n)).toBe(U64_MAX);
    expect(p.seen[0]).toEqual([U64_MAX, 7n, 0n, 0n, BigInt(env.layout.stackTop)]);
  });

  it('fails with fall-off when a function runs past its last instruction', () => {
    const good = createProgram([BPF_MOV64_IMM(BPF_REG_0, 1), BPF_EXIT_INSN()]);
    const bad: Program = {
      ...good,
      insns: good.insns.slice(0, 1),
      ops: good.ops.slice(0, 1),
      subprogs: [{ start: 0, end: 1, name: 'f' }],
    };
    const e = execError(() => interpret(bad, makeExecEnv({ prog: bad }), 0n, 0n));
    expect(e.kind).toBe('fall-off');
    expect(e.insnIdx).toBe(0);
  });

  it('caches the predecoded program and runs it again with the same result', () => {
    const prog = createProgram([BPF_MOV64_REG(BPF_REG_0, BPF_REG_1), BPF_EXIT_INSN()]);
    const env = makeExecEnv({ prog });
    expect(interpret(prog, env, 1n, 0n)).toBe(1n);
    expect(interpret(prog, env, 2n, 0n)).toBe(2n);
  });
});
