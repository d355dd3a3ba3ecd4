/**
 * Control-flow checks (src/verifier/cfg.ts): each kernel message of `check_subprogs` /
 * `check_cfg` with a minimal program (malformed ones built by hand, as `createProgram` would
 * refuse them), loops with and without `allowLoops`, callbacks reached through lddw func,
 * prune / jump / checkpoint marks, and a seeded check that nothing but `VerifierError` escapes.
 */

import { describe, expect, it } from 'vitest';
import { createPrng } from '../../../helpers/prng.js';
import { assembleProgram } from '../../../../src/asm/assembler.js';
import { isBpfError, isVerifierError, type VerifierError } from '../../../../src/errors.js';
import {
  BPF_EXIT_INSN,
  BPF_JMP_A,
  BPF_JMP_IMM,
  BPF_LD_IMM64,
  BPF_MOV64_IMM,
  BPF_RAW_INSN,
} from '../../../../src/isa/build.js';
import { checkInsns, type Insn } from '../../../../src/isa/insn.js';
import { BPF_JEQ } from '../../../../src/isa/opcodes.js';
import type { OpInfo } from '../../../../src/isa/table.js';
import type { Program } from '../../../../src/program.js';
import { checkCfg, type CfgInfo, type CfgOptions } from '../../../../src/verifier/cfg.js';
import { BPF_LOG_LEVEL1, VerifierLog } from '../../../../src/verifier/log.js';

/** A Program built by hand, bypassing createProgram's checks. */
function rawProgram(insns: readonly Insn[]): Program {
  let ops: (OpInfo | undefined)[];
  try {
    ops = checkInsns(insns);
  } catch {
    ops = insns.map(() => undefined);
  }
  return {
    name: 'raw',
    type: 'mem',
    insns,
    ops,
    subprogs: [{ start: 0, end: insns.length, name: 'raw' }],
    gotoxTargets: new Map(),
  };
}

function cfg(prog: Program, opts: CfgOptions = {}): CfgInfo {
  return checkCfg(prog, new VerifierLog({ level: BPF_LOG_LEVEL1 }), opts);
}

/** The VerifierError checkCfg throws. */
function reject(prog: Program, opts: CfgOptions = {}): VerifierError {
  try {
    cfg(prog, opts);
  } catch (e) {
    if (isVerifierError(e)) return e;
    throw e;
  }
  throw new Error('checkCfg accepted the program');
}

const indexes = (flags: readonly boolean[]): number[] => flags.flatMap((f, i) => (f ? [i] : []));

describe('checkCfg kernel messages', () => {
  it('rejects a jump out of range', () => {
    const err = reject(rawProgram([BPF_JMP_A(5), BPF_EXIT_INSN()]));
    expect(err.reason).toBe('jump out of range from insn 0 to 6');
    expect(err.insnIdx).toBe(0);
    expect(err.code).toBe('EINVAL');
    expect(err.log).toBe('jump out of range from insn 0 to 6\n');
  });

  it('rejects a backward jump before the first insn', () => {
    const err = reject(rawProgram([BPF_JMP_IMM(BPF_JEQ, 1, 0, -3), BPF_EXIT_INSN()]));
    expect(err.reason).toBe('jump out of range from insn 0 to -2');
  });

  it('rejects a jump from one function into another', () => {
    const prog = assembleProgram('call local fn\nexit\nfn:\nmov %r0, 0\nexit');
    const insns = [...prog.insns];
    insns[1] = BPF_JMP_A(0);
    const err = reject({ ...prog, insns });
    expect(err.reason).toBe('jump out of range from insn 1 to 2');
  });

  it('rejects a gotox target out of range', () => {
    const prog = assembleProgram('mov %r1, 0\ngotox %r1\nexit');
    const err = reject({ ...prog, gotoxTargets: new Map([[1, [9]]]) });
    expect(err.reason).toBe('jump out of range from insn 1 to 9');
  });

  it('rejects a program whose last insn is not an exit or jmp', () => {
    const err = reject(rawProgram([BPF_MOV64_IMM(0, 0), BPF_EXIT_INSN(), BPF_MOV64_IMM(0, 1)]));
    expect(err.reason).toBe('last insn is not an exit or jmp');
    expect(err.insnIdx).toBe(2);
  });

  it('rejects a function that falls through into the next one', () => {
    const prog = assembleProgram('call local fn\nexit\nfn:\nmov %r0, 0\nexit');
    const insns = [...prog.insns];
    insns[1] = BPF_MOV64_IMM(0, 0);
    expect(reject({ ...prog, insns }).reason).toBe('last insn is not an exit or jmp');
  });

  it('rejects code after exit as unreachable', () => {
    const err = reject(assembleProgram('mov %r0, 0\nexit\nmov %r0, 1\nexit'));
    expect(err.reason).toBe('unreachable insn 2');
    expect(err.insnIdx).toBe(2);
    expect(err.message).toBe('insn 2: unreachable insn 2');
  });

  it('rejects code skipped by an unconditional jump as unreachable', () => {
    const err = reject(assembleProgram('ja +1\nmov %r0, 1\nmov %r0, 0\nexit'));
    expect(err.reason).toBe('unreachable insn 1');
  });

  it('rejects a jump into the middle of an lddw', () => {
    const err = reject(
      rawProgram([BPF_JMP_IMM(BPF_JEQ, 1, 0, 1), ...BPF_LD_IMM64(0, 1n), BPF_EXIT_INSN()]),
    );
    expect(err.reason).toBe('jump into the middle of ldimm64 insn 1');
  });

  it('reports an unreachable lddw before a jump into its middle, as the kernel does', () => {
    const err = reject(rawProgram([BPF_JMP_A(1), ...BPF_LD_IMM64(0, 1n), BPF_EXIT_INSN()]));
    expect(err.reason).toBe('unreachable insn 1');
  });

  it('rejects a BPF_LD | BPF_IMM that is not a double word', () => {
    const err = reject(rawProgram([BPF_RAW_INSN(0x00, 0, 0, 0, 1), BPF_EXIT_INSN()]));
    expect(err.reason).toBe('invalid BPF_LD_IMM insn');
    expect(err.insnIdx).toBe(0);
  });

  it('rejects an lddw without its second slot', () => {
    const lddw = BPF_LD_IMM64(0, 1n)[0] as Insn;
    expect(reject(rawProgram([BPF_EXIT_INSN(), lddw])).reason).toBe('invalid bpf_ld_imm64 insn');
  });

  it('rejects a local call outside the program', () => {
    const err = reject(rawProgram([BPF_RAW_INSN(0x85, 0, 1, 0, 10), BPF_EXIT_INSN()]));
    expect(err.reason).toBe('call to invalid destination');
  });
});

describe('checkCfg loops', () => {
  const loop = 'mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 10, loop\nexit';

  it('accepts bounded-loop candidates by default and records the loop head', () => {
    const info = cfg(assembleProgram(loop));
    expect([...info.loopHeads]).toEqual([1]);
    expect(indexes(info.reachable)).toEqual([0, 1, 2, 3]);
  });

  it('rejects a back-edge when loops are not allowed', () => {
    const err = reject(assembleProgram(loop), { allowLoops: false });
    expect(err.reason).toBe('back-edge from insn 2 to 1');
    expect(err.insnIdx).toBe(2);
  });

  it('rejects an infinite ja loop the same way', () => {
    const err = reject(assembleProgram('mov %r0, 0\nja -1\nexit'), { allowLoops: false });
    expect(err.reason).toBe('back-edge from insn 1 to 1');
  });

  it('rejects recursion as a back-edge when loops are not allowed', () => {
    const prog = assembleProgram('call local fn\nexit\nfn:\ncall local fn\nexit');
    expect(reject(prog, { allowLoops: false }).reason).toBe('back-edge from insn 2 to 2');
  });

  it('accepts a diamond without loops', () => {
    const prog = assembleProgram('jeq %r1, 0, +2\nmov %r0, 1\nja +1\nmov %r0, 2\nexit');
    const info = cfg(prog, { allowLoops: false });
    expect(info.loopHeads.size).toBe(0);
    expect(info.postorder).toEqual([4, 2, 1, 3, 0]);
  });
});

describe('checkCfg calls and callbacks', () => {
  const withCallback = [
    'mov %r1, 10',
    'lddw %r2, func cb',
    'mov %r3, 0',
    'mov %r4, 0',
    'call 181',
    'exit',
    'cb:',
    'mov %r0, 0',
    'exit',
  ].join('\n');

  it('reaches a callback referenced by lddw func', () => {
    const info = cfg(assembleProgram(withCallback));
    expect(info.subprogStarts).toEqual([0, 7]);
    expect(info.reachable[7]).toBe(true);
    expect(info.reachable[8]).toBe(true);
    expect(info.reachable[2]).toBe(false);
  });

  it('marks the lddw func, its return point and the callback start as prune points', () => {
    const info = cfg(assembleProgram(withCallback));
    expect(info.prunePoint[1]).toBe(true);
    expect(info.prunePoint[3]).toBe(true);
    expect(info.prunePoint[7]).toBe(true);
  });

  it('marks bpf_loop as calling a callback, with a forced checkpoint', () => {
    const info = cfg(assembleProgram(withCallback));
    expect(indexes(info.callsCallback)).toEqual([5]);
    expect(indexes(info.forceCheckpoint)).toEqual([5]);
    expect(info.jmpPoint[5]).toBe(true);
  });

  it('finds a function nobody references unreachable', () => {
    const text = withCallback.replace('lddw %r2, func cb', 'lddw %r2, 0');
    expect(reject(assembleProgram(text)).reason).toBe('unreachable insn 7');
  });

  it('follows a local call into the callee and back', () => {
    const info = cfg(assembleProgram('call local fn\nexit\nfn:\nmov %r0, 0\nexit'));
    expect(indexes(info.reachable)).toEqual([0, 1, 2, 3]);
    expect(indexes(info.prunePoint)).toEqual([0, 1, 2]);
    expect(info.subprogStarts).toEqual([0, 2]);
  });

  it('walks extra entries such as an exception callback', () => {
    const prog = assembleProgram('mov %r0, 0\nexit\nmov %r0, 1\nexit');
    expect(indexes(cfg(prog, { entries: [2] }).reachable)).toEqual([0, 1, 2, 3]);
  });

  it('forces a checkpoint at an iterator next kfunc', () => {
    const prog = assembleProgram('call kfunc 5\nmov %r0, 0\nexit');
    const info = cfg(prog, { kfuncName: (id) => (id === 5 ? 'bpf_iter_num_next' : undefined) });
    expect(indexes(info.forceCheckpoint)).toEqual([0]);
    expect(info.prunePoint[0]).toBe(true);
  });
});

describe('checkCfg marks', () => {
  it('marks conditional jumps and jump targets as prune points', () => {
    const info = cfg(assembleProgram('jeq %r1, 0, +1\nmov %r0, 1\nmov %r0, 0\nexit'));
    expect(indexes(info.prunePoint)).toEqual([0, 2]);
    expect(indexes(info.jmpPoint)).toEqual([2]);
  });

  it('marks the target of an unconditional jump but not the jump', () => {
    const info = cfg(assembleProgram('ja +1\nexit\nmov %r0, 0\nja -3'));
    expect(indexes(info.prunePoint)).toEqual([1, 2]);
    expect(info.loopHeads.size).toBe(0);
  });

  it('takes both successors of may_goto and forces a checkpoint there', () => {
    const info = cfg(assembleProgram('mov %r0, 0\nmay_goto +1\nmov %r0, 1\nexit'));
    expect(indexes(info.reachable)).toEqual([0, 1, 2, 3]);
    expect(indexes(info.forceCheckpoint)).toEqual([1]);
    expect(indexes(info.prunePoint)).toEqual([1, 3]);
  });

  it('follows gotox to its jump-table targets only', () => {
    const text = 'mov %r1, 0\ngotox %r1\nmov %r0, 1\nexit\nmov %r0, 2\nexit';
    const all = assembleProgram(text, { gotoxTargets: new Map([[1, [2, 4]]]) });
    expect(indexes(cfg(all).reachable)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(indexes(cfg(all).prunePoint)).toEqual([1, 2, 4]);
    const one = assembleProgram(text, { gotoxTargets: new Map([[1, [2]]]) });
    expect(reject(one).reason).toBe('unreachable insn 4');
  });

  it('lets a gotox without a jump table reach every insn of its function', () => {
    const info = cfg(assembleProgram('mov %r1, 0\ngotox %r1\nmov %r0, 1\nexit\nmov %r0, 2\nexit'));
    expect(indexes(info.reachable)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(info.loopHeads.has(0)).toBe(true);
  });

  it('lists insns in postorder, exit first', () => {
    expect(cfg(assembleProgram('mov %r0, 0\nexit')).postorder).toEqual([1, 0]);
  });
});

describe('checkCfg robustness', () => {
  it('throws nothing but VerifierError on random programs (seed 1234)', () => {
    const rng = createPrng(1234);
    const codes = [0x05, 0x06, 0x0d, 0x15, 0x18, 0x00, 0x85, 0x95, 0xb7, 0xe5, 0x2d, 0x8d];
    for (let iter = 0; iter < 2000; iter++) {
      const n = 1 + rng.int(8);
      const insns: Insn[] = [];
      for (let k = 0; k < n; k++) {
        const code = rng.bool(0.8) ? rng.pick(codes) : rng.int(256);
        insns.push(BPF_RAW_INSN(code, rng.int(11), rng.int(5), rng.int(9) - 4, rng.int(9) - 4));
      }
      try {
        cfg(rawProgram(insns));
      } catch (e) {
        if (!isBpfError(e) || !isVerifierError(e)) {
          throw new Error(`seed 1234 iteration ${iter}: ${String(e)}`, { cause: e });
        }
      }
    }
  });
});
