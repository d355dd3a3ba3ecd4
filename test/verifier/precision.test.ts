/**
 * Scalar precision tracking (src/verifier/precision.ts, kernel `mark_chain_precision`): a
 * scalar that never matters for safety does not keep otherwise equal states apart, so loops
 * whose states differ only in such a counter are pruned; a scalar that does matter is marked
 * precise back through fills, spills and parent checkpoints, so pruning never hides an unsafe
 * value (selftests verifier_precision.c, verifier_scalar_ids.c in spirit; the programs are ours).
 */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { createProgram } from '../../src/program.js';
import { verifyProgram } from '../../src/verifier/verifier.js';

/** Processed insns of an accepted `mem` program (16-byte input), or the rejection message. */
function verify(asm: string): number | string {
  const prog = createProgram(assemble(asm), { type: 'mem' });
  try {
    return verifyProgram(prog, { memSize: 16 }).processedInsns;
  } catch (e) {
    return (e as Error).message;
  }
}

/** A loop of up to `n` iterations that may stop at any one (an unknown input byte decides). */
function countLoop(label: string, n: number, counter: string): string {
  return `mov %r8, 0
    ${label}:
    ldxb %r3, [%r1+0]
    jeq %r3, 0, ${label}_done
    add ${counter}, 1
    add %r8, 1
    jlt %r8, ${n}, ${label}
    ${label}_done:
    mov %r9, 0`;
}

describe('precision tracking', () => {
  it('prunes loops whose states differ only in a count that never matters', () => {
    // Three loops in a row counting into r7, returned as is (no return range for `mem`): after
    // each loop up to 32 different counts reach the next one.
    const prog = `mov %r7, 0
      ${countLoop('a', 32, '%r7')}
      ${countLoop('b', 32, '%r7')}
      ${countLoop('c', 32, '%r7')}
      mov %r0, %r7
      exit`;
    const n = verify(prog);
    expect(typeof n).toBe('number');
    // Every count precise (the rule before precision tracking) explores the second loop once
    // per count and the third once per pair: 289,737 insns. With precision tracking: 695.
    expect(n).toBeLessThan(2000);
  });

  it('keeps a count used as a pointer offset precise through a spill and parent states', () => {
    // r7 counts up to 15 iterations, is spilled to fp-8 across a second loop, filled and used
    // as an offset into the 16-byte input: 15 - n is in bounds, 16 - n is not for n = 0. The
    // first path to reach the access has n = 15; later ones must not be pruned by it.
    const body = (k: number): string => `mov %r7, 0
      ${countLoop('a', 15, '%r7')}
      stxdw [%r10-8], %r7
      mov %r7, 0
      ${countLoop('b', 8, '%r9')}
      ldxdw %r7, [%r10-8]
      mov %r4, ${k}
      sub %r4, %r7
      mov %r0, %r1
      add %r0, %r4
      ldxb %r0, [%r0+0]
      exit`;
    const ok = verify(body(15));
    expect(typeof ok).toBe('number');
    expect(ok).toBeLessThan(2000);
    expect(verify(body(16))).toMatch(/invalid access to memory|outside of the allowed memory/);
  });

  it('rejects an index decided before a join point (pruning without marks would accept it)', () => {
    // The fall-through path (explored first) sets r6 = 0, the other r6 = 16: at the join both
    // states look alike but for r6, which is later an offset into the 16-byte input.
    const prog = (bad: number): string => `ldxb %r3, [%r1+0]
      mov %r2, 0
      mov %r4, 0
      mov %r5, 0
      jeq %r3, 0, other
      mov %r6, 0
      ja join
      other:
      mov %r6, ${bad}
      join:
      add %r2, 1
      add %r4, 1
      add %r5, 1
      add %r2, 1
      add %r4, 1
      add %r5, 1
      ldxb %r3, [%r1+1]
      jeq %r3, 0, next
      add %r2, 1
      next:
      mov %r0, %r1
      add %r0, %r6
      ldxb %r0, [%r0+0]
      exit`;
    expect(typeof verify(prog(15))).toBe('number');
    expect(verify(prog(16))).toMatch(/invalid access to memory|outside of the allowed memory/);
  });

  it('rejects an offset bounded only through a linked copy on the path explored first', () => {
    // r6 = r7 links them; the check on r6 bounds r7 too, and r7 becomes the offset. A state
    // where r6 and r7 are unrelated must not be pruned by one where they are linked. (Here
    // r7's own mark already keeps them apart; the id-linked marks are not isolated by it.)
    const prog = (limit: number): string => `ldxb %r7, [%r1+0]
      ldxb %r3, [%r1+1]
      jeq %r3, 0, other
      mov %r6, %r7
      ja join
      other:
      ldxb %r6, [%r1+2]
      join:
      mov %r2, 0
      add %r2, 1
      add %r2, 1
      add %r2, 1
      add %r2, 1
      add %r2, 1
      add %r2, 1
      add %r2, 1
      jgt %r6, ${limit}, out
      mov %r0, %r1
      add %r0, %r7
      ldxb %r0, [%r0+0]
      exit
      out:
      mov %r0, 0
      exit`;
    expect(verify(prog(15))).toMatch(
      /invalid access to memory|outside of the allowed memory|unbounded/,
    );
  });
});
