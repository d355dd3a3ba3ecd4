/**
 * The reference interpreter, control side: BPF-to-BPF calls (registers, frames, depth),
 * callx to helper ids and function tokens (also of another program), helper calls (result,
 * arguments, errors, memory growth), kfunc calls, gotox, may_goto and the legacy packet
 * loads ld_abs / ld_ind.
 */

import { describe, expect, it } from 'vitest';
import { FUNC_TOKEN_BASE, type ProgLinks } from '../../../../src/abi.js';
import { ExecError, LinkError, TerminationError } from '../../../../src/errors.js';
import type { ExecEnv } from '../../../../src/interp/env.js';
import { interpret } from '../../../../src/interp/interpreter.js';
import {
  BPF_ALU64_IMM,
  BPF_ALU64_REG,
  BPF_CALLX,
  BPF_CALL_REL,
  BPF_EMIT_CALL,
  BPF_EXIT_INSN,
  BPF_GOTOX,
  BPF_JMP_A,
  BPF_JMP_IMM,
  BPF_LDX_MEM,
  BPF_LD_ABS,
  BPF_LD_IMM64,
  BPF_LD_IMM64_RAW,
  BPF_LD_IND,
  BPF_LD_MAP_FD,
  BPF_MAY_GOTO,
  BPF_MOV64_IMM,
  BPF_MOV64_REG,
  BPF_RAW_INSN,
  BPF_STX_MEM,
  BPF_ST_MEM,
} from '../../../../src/isa/build.js';
import type { Insn } from '../../../../src/isa/insn.js';
import {
  BPF_ADD,
  BPF_B,
  BPF_DW,
  BPF_H,
  BPF_JEQ,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_REG_0,
  BPF_REG_1,
  BPF_REG_10,
  BPF_REG_2,
  BPF_REG_3,
  BPF_REG_4,
  BPF_REG_5,
  BPF_REG_6,
  BPF_REG_7,
  BPF_REG_8,
  BPF_REG_9,
  BPF_SUB,
  BPF_W,
  CALL,
  CALLX,
} from '../../../../src/isa/opcodes.js';
import { createProgram } from '../../../../src/program.js';
import {
  PROBE_HELPER,
  makeExecEnv,
  probeHelpers,
  runInsns,
  thrown,
  type RunOptions,
  type TestHelper,
} from '../../../helpers/exec-env.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const TOKEN = BigInt(FUNC_TOKEN_BASE);

function probe(insns: readonly Insn[], opts: RunOptions = {}): { seen: bigint[][]; r0: bigint } {
  const p = probeHelpers(opts.helpers);
  const { r0 } = runInsns(insns, { ...opts, helpers: p.helpers });
  return { seen: p.seen.map((a) => [...a]), r0 };
}

function execError(f: () => unknown, kind: ExecError['kind'], insnIdx: number): ExecError {
  const e = thrown(f);
  expect(e).toBeInstanceOf(ExecError);
  const x = e as ExecError;
  expect([x.kind, x.insnIdx]).toEqual([kind, insnIdx]);
  return x;
}

const movs = (pairs: readonly [number, number][]): Insn[] =>
  pairs.map(([r, v]) => BPF_MOV64_IMM(r, v));

describe('local calls', () => {
  it('passes r1-r5, returns r0 and preserves the caller r6-r9', () => {
    const { seen } = probe([
      ...movs([
        [0, 0],
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
        [5, 5],
        [6, 6],
        [7, 7],
        [8, 8],
        [9, 9],
      ]),
      BPF_CALL_REL(7),
      BPF_MOV64_REG(BPF_REG_1, BPF_REG_0),
      BPF_MOV64_REG(BPF_REG_2, BPF_REG_6),
      BPF_MOV64_REG(BPF_REG_3, BPF_REG_7),
      BPF_MOV64_REG(BPF_REG_4, BPF_REG_8),
      BPF_MOV64_REG(BPF_REG_5, BPF_REG_9),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_EXIT_INSN(),
      BPF_MOV64_IMM(BPF_REG_0, 0),
      ...[1, 2, 3, 4, 5].map((r) => BPF_ALU64_REG(BPF_ADD, BPF_REG_0, r)),
      ...movs([
        [6, 0],
        [7, 0],
        [8, 0],
        [9, 0],
      ]),
      BPF_EXIT_INSN(),
    ]);
    expect(seen[0]).toEqual([15n, 6n, 7n, 8n, 9n]);
  });

  it('starts the callee with r0 and r6-r9 zero, as the JIT does (the kernel leaves them undefined)', () => {
    const insns = [
      ...movs([
        [0, 100],
        [6, 6],
        [7, 7],
      ]),
      BPF_CALL_REL(1),
      BPF_EXIT_INSN(),
      BPF_ALU64_REG(BPF_ADD, BPF_REG_0, BPF_REG_6),
      BPF_ALU64_REG(BPF_ADD, BPF_REG_0, BPF_REG_7),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns).r0).toBe(0n);
  });

  it("restores the caller's r1-r5 when the callee returns (only r0 changes)", () => {
    const { seen, r0 } = probe([
      ...movs([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4],
        [5, 5],
      ]),
      BPF_CALL_REL(4),
      BPF_MOV64_REG(BPF_REG_6, BPF_REG_0),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_MOV64_REG(BPF_REG_0, BPF_REG_6),
      BPF_EXIT_INSN(),
      ...movs([
        [1, 11],
        [2, 12],
        [3, 13],
        [4, 14],
        [5, 15],
        [0, 7],
      ]),
      BPF_EXIT_INSN(),
    ]);
    expect(seen[0]).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(r0).toBe(7n);
  });

  it('gives the callee a fresh frame 512 bytes below the caller', () => {
    const { seen, r0 } = probe([
      BPF_MOV64_IMM(BPF_REG_1, 0x1111),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -8),
      BPF_CALL_REL(6),
      BPF_LDX_MEM(BPF_DW, BPF_REG_1, BPF_REG_10, -8),
      BPF_MOV64_REG(BPF_REG_2, BPF_REG_0),
      BPF_MOV64_REG(BPF_REG_3, BPF_REG_10),
      BPF_EMIT_CALL(PROBE_HELPER),
      BPF_MOV64_IMM(BPF_REG_0, 0),
      BPF_EXIT_INSN(),
      BPF_MOV64_IMM(BPF_REG_1, 0x2222),
      BPF_STX_MEM(BPF_DW, BPF_REG_10, BPF_REG_1, -8),
      BPF_MOV64_REG(BPF_REG_0, BPF_REG_10),
      BPF_EXIT_INSN(),
    ]);
    const top = BigInt(makeExecEnv().layout.stackTop);
    expect(seen[0]?.slice(0, 3)).toEqual([0x1111n, top - 512n, top]);
    expect(r0).toBe(0n);
  });

  it("lets the callee use a pointer into the caller's frame", () => {
    const insns = [
      BPF_ST_MEM(BPF_DW, BPF_REG_10, -8, 0x1234),
      BPF_MOV64_REG(BPF_REG_1, BPF_REG_10),
      BPF_ALU64_IMM(BPF_ADD, BPF_REG_1, -8),
      BPF_CALL_REL(1),
      BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_DW, BPF_REG_0, BPF_REG_1, 0),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns).r0).toBe(0x1234n);
  });

  it('keeps the callee inside its own frame and the caller out of it after the return', () => {
    const callee = [
      BPF_CALL_REL(1),
      BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_10, -513),
      BPF_EXIT_INSN(),
    ];
    execError(() => runInsns(callee), 'mem', 2);
    const after = [
      BPF_CALL_REL(2),
      BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_10, -513),
      BPF_EXIT_INSN(),
      BPF_LDX_MEM(BPF_B, BPF_REG_0, BPF_REG_10, -512),
      BPF_EXIT_INSN(),
    ];
    execError(() => runInsns(after), 'mem', 1);
  });

  /** Entry calls f(k); f(n) = n == 0 ? 0 : f(n - 1) + 1. k + 2 frames in all. */
  function recursion(k: number): Insn[] {
    return [
      BPF_MOV64_IMM(BPF_REG_1, k),
      BPF_CALL_REL(1),
      BPF_EXIT_INSN(),
      BPF_MOV64_IMM(BPF_REG_0, 0),
      BPF_JMP_IMM(BPF_JEQ, BPF_REG_1, 0, 3),
      BPF_ALU64_IMM(BPF_SUB, BPF_REG_1, 1),
      BPF_CALL_REL(-4),
      BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1),
      BPF_EXIT_INSN(),
    ];
  }

  it('allows 8 frames including the entry', () => {
    expect(runInsns(recursion(6)).r0).toBe(6n);
  });

  it('fails the 9th nested frame with call-depth at the call instruction', () => {
    const e = execError(() => runInsns(recursion(7)), 'call-depth', 6);
    expect(e.message).toContain('9 frames');
  });
});

describe('callx', () => {
  const addOne: ReadonlyMap<number, TestHelper> = new Map([[5, (a) => a[0] + 1n]]);

  it('calls the helper whose id is in the register', () => {
    const insns = [
      ...movs([
        [1, 41],
        [2, 5],
      ]),
      BPF_CALLX(BPF_REG_2),
      BPF_EXIT_INSN(),
    ];
    const { r0, env } = runInsns(insns, { helpers: addOne });
    expect(r0).toBe(42n);
    expect(env.calls).toEqual([5]);
  });

  it('accepts the legacy encoding with the register in imm', () => {
    const insns = [
      ...movs([
        [1, 41],
        [2, 5],
      ]),
      BPF_RAW_INSN(CALLX, 0, 0, 0, 2),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns, { helpers: addOne }).r0).toBe(42n);
  });

  it('calls the function behind a function token', () => {
    const insns = [
      ...BPF_LD_IMM64_RAW(BPF_REG_2, BPF_PSEUDO_FUNC, 4n),
      BPF_MOV64_IMM(BPF_REG_1, 20),
      BPF_CALLX(BPF_REG_2),
      BPF_EXIT_INSN(),
      BPF_MOV64_REG(BPF_REG_0, BPF_REG_1),
      BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1),
      BPF_EXIT_INSN(),
    ];
    const { r0, prog } = runInsns(insns, { ldImm64: new Map([[0, TOKEN + 1n]]) });
    expect(prog.subprogs.map((s) => s.start)).toEqual([0, 5]);
    expect(r0).toBe(21n);
  });

  it('runs a function of another program with that program’s links', () => {
    const other = createProgram([...BPF_LD_MAP_FD(BPF_REG_0, 1), BPF_EXIT_INSN()]);
    const otherLinks: ProgLinks = {
      helperBase: 0x100,
      funcTokenBase: FUNC_TOKEN_BASE + 0x100,
      ldImm64: new Map([[0, 0xabcn]]),
      kfuncSlots: new Map(),
    };
    const main = createProgram([
      ...BPF_LD_IMM64(BPF_REG_2, TOKEN + 0x100n),
      BPF_CALLX(BPF_REG_2),
      BPF_MOV64_REG(BPF_REG_6, BPF_REG_0),
      ...BPF_LD_MAP_FD(BPF_REG_0, 1),
      BPF_ALU64_REG(BPF_ADD, BPF_REG_0, BPF_REG_6),
      BPF_EXIT_INSN(),
    ]);
    const base = makeExecEnv({ prog: main, ldImm64: new Map([[4, 0x123n]]) });
    const env: ExecEnv = {
      ...base,
      resolveToken: (t) =>
        t === TOKEN + 0x100n ? { prog: other, links: otherLinks, subprog: 0 } : undefined,
    };
    expect(interpret(main, env, 0n, 0n)).toBe(0xabcn + 0x123n);
  });

  it('applies the call-depth limit to callx', () => {
    const insns = [...BPF_LD_IMM64(BPF_REG_2, TOKEN), BPF_CALLX(BPF_REG_2), BPF_EXIT_INSN()];
    execError(() => runInsns(insns), 'call-depth', 2);
  });

  it.each([
    ['a value that is no function token', 0x1234_5678n, 'not a helper id or a function token'],
    ['a token past the last function', TOKEN + 5n, 'not a helper id or a function token'],
    ['an unknown helper id', 999n, 'unknown helper #999'],
    ['a value with the upper half set', U64_MAX, 'not a helper id or a function token'],
  ])('fails with call for %s', (_title, v, text) => {
    const insns = [...BPF_LD_IMM64(BPF_REG_2, v), BPF_CALLX(BPF_REG_2), BPF_EXIT_INSN()];
    const e = execError(() => runInsns(insns), 'call', 2);
    expect(e.message).toContain(text);
  });
});

describe('helper calls', () => {
  it('passes r1-r5, puts the result in r0 and leaves r1-r5 alone', () => {
    const got: bigint[][] = [];
    const sum: TestHelper = (a) => {
      got.push([...a]);
      return (a[0] + a[1] + a[2] + a[3] + a[4]) * 10n;
    };
    const { seen, r0 } = probe(
      [
        ...movs([
          [1, 1],
          [2, 2],
          [3, 3],
          [4, 4],
          [5, 5],
        ]),
        BPF_EMIT_CALL(7),
        BPF_MOV64_REG(BPF_REG_6, BPF_REG_0),
        BPF_EMIT_CALL(PROBE_HELPER),
        BPF_MOV64_REG(BPF_REG_0, BPF_REG_6),
        BPF_EXIT_INSN(),
      ],
      { helpers: new Map([[7, sum]]) },
    );
    expect(got).toEqual([[1n, 2n, 3n, 4n, 5n]]);
    expect(seen[0]).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(r0).toBe(150n);
  });

  it('wraps a negative helper result (an errno) to u64', () => {
    const insns = [BPF_EMIT_CALL(7), BPF_EXIT_INSN()];
    expect(runInsns(insns, { helpers: new Map([[7, () => -2n]]) }).r0).toBe(U64_MAX - 1n);
  });

  it('fails with call, at the call, for an unknown helper', () => {
    execError(
      () => runInsns([BPF_MOV64_IMM(BPF_REG_0, 0), BPF_EMIT_CALL(99), BPF_EXIT_INSN()]),
      'call',
      1,
    );
  });

  it('turns an exception thrown by a helper into an ExecError of kind helper', () => {
    const boom = new Error('boom');
    const helpers = new Map([
      [
        7,
        (): bigint => {
          throw boom;
        },
      ],
    ]);
    const e = execError(
      () => runInsns([BPF_EMIT_CALL(7), BPF_EXIT_INSN()], { helpers }),
      'helper',
      0,
    );
    expect(e.message).toContain('boom');
    expect(e.cause).toBe(boom);
  });

  it('lets a BpfError thrown by a helper through unchanged', () => {
    const stop = new TerminationError('request');
    const helpers = new Map([
      [
        7,
        (): bigint => {
          throw stop;
        },
      ],
    ]);
    expect(thrown(() => runInsns([BPF_EMIT_CALL(7), BPF_EXIT_INSN()], { helpers }))).toBe(stop);
  });

  it('re-fetches the memory after a helper call', () => {
    const prog = createProgram([
      BPF_EMIT_CALL(9),
      BPF_MOV64_IMM(BPF_REG_1, 0x55),
      BPF_STX_MEM(BPF_B, BPF_REG_10, BPF_REG_1, -1),
      BPF_EXIT_INSN(),
    ]);
    const base = makeExecEnv({ prog });
    let cur = base.mem;
    const env: ExecEnv = {
      ...base,
      memory: () => cur,
      callHelper: () => {
        const next = new Uint8Array(cur.length * 2);
        next.set(cur);
        cur = next;
        return 0n;
      },
    };
    interpret(prog, env, 0n, 0n);
    const top = base.layout.stackTop;
    expect(cur.length).toBe(2 * base.mem.length);
    expect([cur[top - 1], base.mem[top - 1]]).toEqual([0x55, 0]);
  });

  it('throws LinkError for a kfunc call', () => {
    const insns = [BPF_RAW_INSN(CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 1234), BPF_EXIT_INSN()];
    const e = thrown(() => runInsns(insns));
    expect(e).toBeInstanceOf(LinkError);
    expect((e as LinkError).symbol).toBe('kfunc#1234');
  });
});

describe('gotox', () => {
  /** r1 = target; gotox r1; slot 2 returns 1, slot 4 returns 2. */
  const table = (target: number): Insn[] => [
    BPF_MOV64_IMM(BPF_REG_1, target),
    BPF_GOTOX(BPF_REG_1),
    BPF_MOV64_IMM(BPF_REG_0, 1),
    BPF_EXIT_INSN(),
    BPF_MOV64_IMM(BPF_REG_0, 2),
    BPF_EXIT_INSN(),
  ];

  it('jumps to the absolute slot index in the register', () => {
    expect(runInsns(table(4)).r0).toBe(2n);
    expect(runInsns(table(2)).r0).toBe(1n);
  });

  it('accepts only the listed targets when the jump has a table', () => {
    const program = { gotoxTargets: new Map([[1, [4]]]) };
    expect(runInsns(table(4), { program }).r0).toBe(2n);
    execError(() => runInsns(table(2), { program }), 'jump', 1);
  });

  it.each([
    ['past the end of the program', 6],
    ['to a negative value', -1],
  ])('fails with jump %s', (_title, target) => {
    execError(() => runInsns(table(target)), 'jump', 1);
  });

  it('fails with jump for a target in another function', () => {
    const insns = [
      BPF_MOV64_IMM(BPF_REG_1, 4),
      BPF_GOTOX(BPF_REG_1),
      BPF_CALL_REL(1),
      BPF_EXIT_INSN(),
      BPF_MOV64_IMM(BPF_REG_0, 1),
      BPF_EXIT_INSN(),
    ];
    execError(() => runInsns(insns), 'jump', 1);
  });

  it('fails with jump for the second slot of an lddw', () => {
    const lddw = (t: number): Insn[] => [
      BPF_MOV64_IMM(BPF_REG_1, t),
      BPF_GOTOX(BPF_REG_1),
      ...BPF_LD_IMM64(BPF_REG_0, 5n),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(lddw(2)).r0).toBe(5n);
    execError(() => runInsns(lddw(3)), 'jump', 1);
  });
});

describe('may_goto', () => {
  /** Counts loop iterations until may_goto jumps out. */
  const loop = [
    BPF_MOV64_IMM(BPF_REG_0, 0),
    BPF_MAY_GOTO(2),
    BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1),
    BPF_JMP_A(-3),
    BPF_EXIT_INSN(),
  ];

  it('falls through while budget remains and jumps once it is spent', () => {
    expect(runInsns(loop, { mayGotoBudget: 5 }).r0).toBe(5n);
    expect(runInsns(loop, { mayGotoBudget: 0 }).r0).toBe(0n);
  });

  it('starts every run with the full budget', () => {
    const prog = createProgram(loop);
    const env = makeExecEnv({ prog, mayGotoBudget: 3 });
    expect(interpret(prog, env, 0n, 0n)).toBe(3n);
    expect(interpret(prog, env, 0n, 0n)).toBe(3n);
  });

  it('shares one budget between the functions of a run', () => {
    const insns = [
      BPF_CALL_REL(2),
      BPF_CALL_REL(1),
      BPF_EXIT_INSN(),
      BPF_MOV64_IMM(BPF_REG_0, 0),
      BPF_MAY_GOTO(2),
      BPF_ALU64_IMM(BPF_ADD, BPF_REG_0, 1),
      BPF_JMP_A(-3),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns, { mayGotoBudget: 4 }).r0).toBe(0n);
  });
});

describe('ld_abs and ld_ind', () => {
  const PKT = Uint8Array.from([0x12, 0x34, 0x56, 0x78, 0x9a]);

  it('read big-endian values at packet offsets', () => {
    const { seen } = probe(
      [
        BPF_LD_ABS(BPF_B, 0),
        BPF_MOV64_REG(BPF_REG_6, BPF_REG_0),
        BPF_LD_ABS(BPF_H, 1),
        BPF_MOV64_REG(BPF_REG_7, BPF_REG_0),
        BPF_LD_ABS(BPF_W, 1),
        BPF_MOV64_REG(BPF_REG_8, BPF_REG_0),
        BPF_MOV64_IMM(BPF_REG_2, 1),
        BPF_LD_IND(BPF_H, BPF_REG_2, 2),
        BPF_MOV64_REG(BPF_REG_9, BPF_REG_0),
        BPF_LD_IND(BPF_B, BPF_REG_2, -1),
        ...[6, 7, 8, 9].map((r, k) => BPF_MOV64_REG(k + 1, r)),
        BPF_MOV64_REG(BPF_REG_5, BPF_REG_0),
        BPF_EMIT_CALL(PROBE_HELPER),
        BPF_EXIT_INSN(),
      ],
      { input: PKT },
    );
    expect(seen[0]).toEqual([0x12n, 0x3456n, 0x3456_789an, 0x789an, 0x12n]);
  });

  it.each([
    ['past the end', [BPF_LD_ABS(BPF_W, 2)]],
    ['past the end with ld_ind', [BPF_MOV64_IMM(BPF_REG_2, 4), BPF_LD_IND(BPF_H, BPF_REG_2, 0)]],
    ['at a negative offset', [BPF_MOV64_IMM(BPF_REG_2, -10), BPF_LD_IND(BPF_B, BPF_REG_2, 0)]],
  ])('end the program with r0 = 0 when reading %s', (_title, load) => {
    const insns = [
      BPF_MOV64_IMM(BPF_REG_0, 99),
      ...load,
      BPF_MOV64_IMM(BPF_REG_0, 7),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns, { input: PKT }).r0).toBe(0n);
  });

  it('use the low 32 bits of src + imm as a signed offset', () => {
    const insns = [
      ...BPF_LD_IMM64(BPF_REG_2, 0x1_0000_0001n),
      BPF_LD_IND(BPF_B, BPF_REG_2, 0),
      BPF_EXIT_INSN(),
    ];
    expect(runInsns(insns, { input: PKT }).r0).toBe(0x34n);
  });

  it('end the program with r0 = 0 when there is no packet', () => {
    const insns = [BPF_MOV64_IMM(BPF_REG_0, 99), BPF_LD_ABS(BPF_B, 0), BPF_EXIT_INSN()];
    expect(runInsns(insns).r0).toBe(0n);
  });

  it('end the whole run, not just the function, when out of bounds in a callee', () => {
    // createProgram refuses ld_abs next to local calls (as the kernel does); a function of
    // another program reached through callx can still hold one.
    const other = createProgram([BPF_LD_ABS(BPF_B, 100), BPF_EXIT_INSN()]);
    const main = createProgram([
      BPF_MOV64_IMM(BPF_REG_0, 5),
      ...BPF_LD_IMM64(BPF_REG_2, TOKEN + 0x100n),
      BPF_CALLX(BPF_REG_2),
      BPF_MOV64_IMM(BPF_REG_0, 6),
      BPF_EXIT_INSN(),
    ]);
    const base = makeExecEnv({ prog: main, input: PKT });
    const env: ExecEnv = {
      ...base,
      resolveToken: (t) =>
        t === TOKEN + 0x100n ? { prog: other, links: base.links, subprog: 0 } : undefined,
    };
    expect(interpret(main, env, 0n, 0n)).toBe(0n);
  });
});
