/**
 * The verifier soundness fuzz (test/fuzz/verifier-soundness.ts) on a fixed seed: generated
 * programs the verifier accepts never fault in the checked interpreter, never trap in Wasm and
 * run the same on both engines. A failure prints the totals, then the first violations with
 * their seed, shrunk disassembly and verifier log; `npm run fuzz:verifier -- --seed S --count N`
 * runs more. Fails with VERIFIER_UNAVAILABLE while verifyProgram is not implemented.
 */
import { describe, expect, it } from 'vitest';
import { formatSummary, formatViolation, runSoundness } from './verifier-soundness.js';

const SEED = 0x50f7;
/** About 8 s on one core with the verifier of this writing. */
const COUNT = 800;

describe('verifier soundness', () => {
  it(`accepts no generated program that faults, traps or splits the engines (${COUNT} programs, seed ${SEED})`, async () => {
    const s = await runSoundness(SEED, COUNT, { fullReports: 3 });
    const totals = formatSummary(SEED, s);
    expect(s.violations.slice(0, 3).map(formatViolation).join('\n\n'), totals).toBe('');
    expect(s.programs).toBe(COUNT);
    // a useful mix: the verifier both accepts and rejects generated programs
    expect(s.accepted, totals).toBeGreaterThan(0);
    expect(s.rejected, totals).toBeGreaterThan(0);
  }, 180_000);
});
