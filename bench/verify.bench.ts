/**
 * Section "verify": how long the verifier takes on every bundled example object and every
 * benchmark-corpus program (XDP build), with the instructions it processed. Each file is
 * verified `samples` times in this process (`verifyFile`, as `bpfwasm verify` does: maps
 * created, kfuncs and line info resolved); the first run is reported apart, since it includes
 * V8's warm-up of the verifier's own code, and the median of the rest is compared with the
 * target.
 *
 * Target (issue #5): every example and corpus object verifies in under 100 ms.
 *
 * Called from bench/main.ts.
 */

import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { verifyFile } from '../src/cli/verify.js';
import { corpusBinPath, CORPUS_PROGRAMS, type CorpusCpu } from './corpus.js';
import { fmtMs, formatTable, verdict } from './table.js';
import { median } from './timing.js';

/** Target: ms per verification (median). */
export const VERIFY_TARGET_MS = 100;

/** One verified program. */
export interface VerifyRow {
  readonly file: string;
  readonly program: string;
  readonly accepted: boolean;
  readonly processedInsns: number | null;
  readonly firstMs: number;
  readonly medianMs: number;
}

/** The verify section's report. */
export interface VerifyReport {
  readonly rows: readonly VerifyRow[];
  readonly worstMs: number;
  readonly ok: boolean;
}

/** Example objects under examples/<name>/build/ (repository root relative). */
function exampleObjects(root: string): string[] {
  const out: string[] = [];
  for (const dir of readdirSync(join(root, 'examples'), { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const build = join(root, 'examples', dir.name, 'build');
    let files: string[];
    try {
      files = readdirSync(build);
    } catch {
      continue;
    }
    for (const f of files) if (f.endsWith('.o')) out.push(join(build, f));
  }
  return out.sort();
}

/** Runs the verify section. */
export function benchVerify(
  root: string,
  cpu: CorpusCpu,
  samples: number,
  progress: (line: string) => void,
): VerifyReport {
  const files = [
    ...exampleObjects(root),
    ...CORPUS_PROGRAMS.map((p) => corpusBinPath(p, 'xdp', cpu)),
  ];
  const rows: VerifyRow[] = [];
  for (const file of files) {
    progress(`verify ${file}`);
    const runs = new Map<string, number[]>();
    const opts = file.endsWith('.bin') ? { type: 'xdp' as const } : {};
    let last = verifyFile(file, opts);
    for (let i = 0; i < samples; i++) {
      if (i > 0) last = verifyFile(file, opts);
      for (const v of last) {
        const key = v.program ?? '-';
        const list = runs.get(key) ?? [];
        list.push(v.verifyMs ?? Number.NaN);
        runs.set(key, list);
      }
    }
    for (const v of last) {
      const ms = runs.get(v.program ?? '-') ?? [];
      rows.push({
        file: relative(root, file),
        program: v.program ?? '-',
        accepted: v.accepted,
        processedInsns: v.processedInsns,
        firstMs: ms[0] ?? Number.NaN,
        medianMs: median(ms.slice(1)),
      });
    }
  }
  const worstMs = Math.max(...rows.map((r) => r.medianMs));
  return { rows, worstMs, ok: rows.every((r) => r.accepted) && worstMs < VERIFY_TARGET_MS };
}

/** The section as text. */
export function formatVerify(r: VerifyReport): string {
  const table = formatTable(
    ['file', 'program', 'verdict', 'insns processed', 'first run', 'median'],
    r.rows.map((x) => [
      x.file,
      x.program,
      x.accepted ? 'accept' : 'REJECT',
      String(x.processedInsns ?? '-'),
      fmtMs(x.firstMs),
      fmtMs(x.medianMs),
    ]),
  );
  const line = `slowest median ${fmtMs(r.worstMs)} ms (target < ${VERIFY_TARGET_MS} ms, every program accepted)`;
  return `${table}\n${verdict(r.ok)}: ${line}\n`;
}
