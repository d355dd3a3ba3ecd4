/**
 * Static register liveness (src/verifier/liveness.ts): which registers each insn may read
 * before they are written, on some path to the end of its function. Pruning compares only
 * these, so a register reported dead must really be unread.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../../src/asm/assembler.js';
import { computeLiveRegs } from '../../../../src/verifier/liveness.js';

/** The live registers before each insn, as lists (R10 omitted: it is always live). */
function live(asm: string): number[][] {
  return [...computeLiveRegs(assembleProgram(asm))].map((mask) =>
    [...Array(10).keys()].filter((r) => (mask & (1 << r)) !== 0),
  );
}

describe('computeLiveRegs', () => {
  it('follows a straight line: a write kills, a read revives', () => {
    expect(live('mov %r2, %r1\nmov %r0, %r2\nexit')).toEqual([[1], [2], [0]]);
  });

  it('joins both sides of a branch', () => {
    expect(live('jeq %r1, 0, +1\nmov %r0, %r3\nmov %r0, %r4\nexit')).toEqual([
      [1, 3, 4],
      [3, 4],
      [4],
      [0],
    ]);
  });

  it('keeps loop-carried registers live around the loop', () => {
    const l = live('mov %r0, 0\nadd %r0, %r2\nsub %r2, 1\njne %r2, 0, -3\nexit');
    expect(l[1]).toEqual([0, 2]);
    expect(l[3]).toEqual([0, 2]);
  });

  it('reads only the arguments of a helper prototype and clobbers R0-R5', () => {
    // bpf_ktime_get_ns takes no argument: R1 is dead at the call, R6 lives across it.
    expect(live('mov %r1, 5\ncall 5\nmov %r0, %r6\nexit')).toEqual([[6], [6], [6], [0]]);
    // bpf_map_lookup_elem reads R1 and R2.
    expect(live('call 1\nexit')[0]).toEqual([1, 2]);
  });

  it('gives a local call R1-R5 and its callee its own liveness', () => {
    const l = live('call local f\nexit\nf:\nmov %r0, %r1\nexit');
    expect(l[0]).toEqual([1, 2, 3, 4, 5]);
    expect(l[2]).toEqual([1]);
  });
});
