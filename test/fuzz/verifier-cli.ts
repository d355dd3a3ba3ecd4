/**
 * `npm run fuzz:verifier -- --seed S --count N`: a long verifier soundness run
 * (test/fuzz/verifier-soundness.ts). Prints every violation (seed, near misses, shrunk
 * disassembly, level-2 verifier log) and the totals: the accept ratio and the most frequent
 * rejection reasons. Exit status 1 when there is a violation, 2 for bad arguments or while
 * `verifyProgram` is not implemented.
 *
 * Options: `--inputs K` runs each program on K inputs (default 4); `--no-minimize` reports
 * violations unshrunk; `--unverified` runs every program without the verifier and counts the
 * runs the checked interpreter faults on (a view of the generator's mix).
 */
import { parseArgs } from 'node:util';
import {
  formatSummary,
  formatViolation,
  runSoundness,
  VERIFIER_UNAVAILABLE,
  verifierAvailable,
} from './verifier-soundness.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    count: { type: 'string' },
    inputs: { type: 'string' },
    unverified: { type: 'boolean' },
    'no-minimize': { type: 'boolean' },
  },
});
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const count = Number(values.count ?? 2_000);
const inputs = Number(values.inputs ?? 4);
if (![seed, count, inputs].every(Number.isInteger) || count < 1 || inputs < 1) {
  console.error(
    'usage: npm run fuzz:verifier -- --seed S --count N [--inputs K] [--unverified] [--no-minimize]',
  );
  process.exit(2);
}
const mode = values.unverified === true ? 'unverified' : 'verified';
if (mode === 'verified' && !verifierAvailable()) {
  console.error(VERIFIER_UNAVAILABLE);
  process.exit(2);
}
const t0 = performance.now();
const s = await runSoundness(seed, count, {
  mode,
  inputs,
  minimize: values['no-minimize'] !== true,
});
for (const v of s.violations) console.log(formatViolation(v) + '\n');
console.log(formatSummary(seed, s));
console.log(`(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
process.exit(s.violations.length > 0 ? 1 : 0);
