/**
 * Part of the corpus section: what the verifier's facts buy the JIT (issue #5 §5). For each
 * corpus program (XDP entry), the JIT compiled with `verifyProgram(prog, { type: 'xdp' })`'s
 * facts (pointers in i32 locals, unreachable code dropped, no memory guards) against the JIT
 * compiled without them (every memory access guarded, as an unverified load), in the same run,
 * each in fresh workers, both called through the module's `run` export (bench/measure.ts
 * `JitVariant`). The workers of the two variants alternate, so that load drift on the machine
 * hits both sides of the ratio alike. Until the verifier lands, `verifyProgram` throws 'not yet implemented' and
 * the comparison is skipped with a line saying so: facts are never made up here.
 *
 * Called from bench/corpus.bench.ts.
 */

import { verifyProgram } from '../src/verifier/verifier.js';
import { loadCorpusProgram, type CorpusCpu, type CorpusName } from './corpus.js';
import { runIsolated } from './isolate.js';
import type { RunJob } from './measure.js';
import { fmtNs, fmtRatio, formatTable, medianWording } from './table.js';
import { mergeSamples, type NsSample, type TimingPlan } from './timing.js';

/** One program with and without facts. */
export interface FactsRow {
  readonly name: CorpusName;
  /** Without facts: every access guarded. */
  readonly guarded: NsSample;
  /** With the verifier's facts. */
  readonly facts: NsSample;
  /** Guarded ns over facts ns (above 1: the facts made it faster). */
  readonly speedup: number;
}

/** The comparison, or why it did not run. */
export interface FactsReport {
  /** Why nothing was measured (the verifier is not there yet), else undefined. */
  readonly skipped: string | undefined;
  readonly rows: readonly FactsRow[];
  /** Programs the verifier rejected or failed on, with its message. */
  readonly errors: readonly string[];
  readonly isolates: number;
}

/** What the comparison needs from the corpus section's input. */
export interface FactsBenchInput {
  readonly programs: readonly CorpusName[];
  readonly cpu: CorpusCpu;
  readonly jitPlan: TimingPlan;
  readonly isolates: number;
  readonly progress: (line: string) => void;
}

const NOT_YET = /not yet implemented/;

/** Why `verifyProgram` gives no facts for `name`, or undefined when it does. */
function verifierProblem(name: CorpusName, cpu: CorpusCpu): string | undefined {
  try {
    verifyProgram(loadCorpusProgram(name, 'xdp', cpu), { type: 'xdp' });
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Measures every program with and without the verifier's facts. */
export async function benchFacts(input: FactsBenchInput): Promise<FactsReport> {
  const rows: FactsRow[] = [];
  const errors: string[] = [];
  const base = { isolates: input.isolates, errors };
  for (const name of input.programs) {
    const problem = verifierProblem(name, input.cpu);
    if (problem !== undefined && NOT_YET.test(problem)) {
      const skipped = `verifyProgram(prog, { type: 'xdp' }) throws '${problem}'`;
      input.progress(`corpus: JIT with verifier facts skipped: ${skipped}`);
      return { ...base, skipped, rows: [] };
    }
    if (problem !== undefined) {
      errors.push(`${name}: ${problem}`);
      continue;
    }
    const job: RunJob = {
      name,
      entry: 'xdp',
      cpu: input.cpu,
      engine: 'jit',
      method: 'runU32',
      batchSize: 0,
      plan: input.jitPlan,
    };
    input.progress(`corpus ${name}: jit without and with facts`);
    const guarded: NsSample[] = [];
    const facts: NsSample[] = [];
    for (let k = 0; k < Math.max(1, input.isolates); k++) {
      guarded.push((await runIsolated({ ...job, variant: 'guarded' })).sample);
      facts.push((await runIsolated({ ...job, variant: 'facts' })).sample);
    }
    const g = mergeSamples(guarded);
    const f = mergeSamples(facts);
    rows.push({ name, guarded: g, facts: f, speedup: g.median / f.median });
  }
  return { ...base, skipped: undefined, rows };
}

/** The comparison as text: a note and a table, or the skip line. */
export function formatFacts(report: FactsReport): string {
  const title = 'JIT with verifier facts (i32 pointers, dead code dropped, no memory guards)';
  if (report.skipped !== undefined) {
    return `${title} vs without: SKIPPED, ${report.skipped} (no facts until the verifier lands)`;
  }
  const lines = [
    `${title} vs without facts (every access guarded): both compiled by the bench, run() called` +
      ` directly, same run; ns/run = ${medianWording(report.isolates)}`,
    '',
    formatTable(
      ['program', 'no facts ns/run', '(min–max)', 'facts ns/run', '(min–max)', 'no facts/facts'],
      report.rows.map((r) => [
        r.name,
        fmtNs(r.guarded.median),
        `${fmtNs(r.guarded.min)}–${fmtNs(r.guarded.max)}`,
        fmtNs(r.facts.median),
        `${fmtNs(r.facts.min)}–${fmtNs(r.facts.max)}`,
        fmtRatio(r.speedup),
      ]),
    ),
    ...report.errors.map((e) => `verifier error on ${e}`),
  ];
  return lines.join('\n');
}
