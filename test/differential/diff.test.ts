/**
 * Interpreter vs JIT on 2,000 seeded random programs (test/fuzz/prog-gen.ts). A mismatch prints
 * the seed and the disassembly; `npm run fuzz:diff -- --seed S --count N` runs more.
 */
import { describe, expect, it } from 'vitest';
import { formatMismatch, runDifferential } from '../fuzz/diff-run.js';

const SEED = 0x5eed;
const COUNT = 2000;

describe('differential testing of the interpreter against the JIT', () => {
  it(`agrees on r0, errors, input and stack for ${COUNT} random programs (seed ${SEED})`, async () => {
    const s = await runDifferential(SEED, COUNT);
    const report = s.mismatches.slice(0, 3).map(formatMismatch).join('\n\n');
    expect(report).toBe('');
    expect(s.programs).toBe(COUNT);
    // the generator's deliberate faults must show up, or the error comparison tests nothing
    expect(s.errors).toBeGreaterThan(0);
  }, 300_000);
});
