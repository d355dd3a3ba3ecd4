/**
 * `npm run fuzz:diff -- --seed S --count N`: a long differential run (interpreter vs JIT).
 * Prints every mismatch with its seed and disassembly; exit status 1 when there is one.
 */
import { parseArgs } from 'node:util';
import { formatMismatch, runDifferential } from './diff-run.js';

const { values } = parseArgs({ options: { seed: { type: 'string' }, count: { type: 'string' } } });
const seed = Number(values.seed ?? Date.now() % 1_000_000);
const count = Number(values.count ?? 10_000);
if (!Number.isInteger(seed) || !Number.isInteger(count) || count < 1) {
  console.error('usage: npm run fuzz:diff -- --seed S --count N');
  process.exit(2);
}
const t0 = performance.now();
const s = await runDifferential(seed, count);
for (const m of s.mismatches) console.log(formatMismatch(m) + '\n');
console.log(
  `seed ${seed}: ${s.programs} programs, ${s.errors} ended in errors, ${s.mismatches.length} mismatches (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);
process.exit(s.mismatches.length > 0 ? 1 : 0);
