/**
 * Section "overhead": what one run costs beyond the program's own work, on p1_pass (`return
 * XDP_PASS`, both entries) and p2_parse, JIT only, each figure from a fresh worker
 * (bench/isolate.ts). Four ways to run:
 * - `run(len)`: zero-copy, r0 read back as a bigint from the control slot;
 * - `runU32(len)`: zero-copy, the packet already in `prog.input`;
 * - `runU32(packet)`: the 1500-byte packet copied into Wasm memory on every run;
 * - `runBatch(batch)`: a batch of copies of the packet laid out once (`prepareBatch`), one
 *   JS→Wasm call for the whole batch, figure per run.
 * An empty JS loop calling a trivial function is the baseline of the harness itself.
 *
 * Targets (issue #3): zero-copy runU32 ≤ 10 ns on p1 and ≤ 25 ns on p2; runBatch ≤ 5 ns per
 * run on p1.
 *
 * Called from bench/main.ts.
 */

import type { CorpusCpu, CorpusEntry, CorpusName } from './corpus.js';
import { measureIsolated } from './isolate.js';
import type { RunMeasurement, RunMethod } from './measure.js';
import { fmtNs, formatTable, medianWording, verdict } from './table.js';
import { timeTask, type NsSample, type TimingPlan } from './timing.js';

/** Targets of the overhead section, ns per run. */
export const OVERHEAD_TARGETS = {
  p1ZeroCopy: 10,
  p2ZeroCopy: 25,
  p1Batch: 5,
} as const;

/** The programs measured. */
const CASES: readonly { readonly name: CorpusName; readonly entry: CorpusEntry }[] = [
  { name: 'p1_pass', entry: 'xdp' },
  { name: 'p1_pass', entry: 'mem' },
  { name: 'p2_parse', entry: 'xdp' },
];

/** One program's per-run costs, ns. */
export interface OverheadRow {
  readonly name: CorpusName;
  readonly entry: CorpusEntry;
  readonly result: number;
  readonly runBigint: NsSample;
  readonly runU32ZeroCopy: NsSample;
  readonly runU32Copy: NsSample;
  readonly runBatch: NsSample;
  readonly batchSize: number;
}

/** The overhead section's report. */
export interface OverheadReport {
  /** ns per iteration of an empty JS loop calling a trivial function. */
  readonly baseline: NsSample;
  readonly packetBytes: number;
  readonly isolates: number;
  readonly rows: readonly OverheadRow[];
  readonly targets: readonly {
    readonly what: string;
    readonly ns: number;
    readonly max: number;
    readonly ok: boolean;
  }[];
}

/** What the overhead section needs. */
export interface OverheadBenchInput {
  readonly cpu: CorpusCpu;
  readonly packetBytes: number;
  readonly plan: TimingPlan;
  readonly batchSize: number;
  /** Fresh workers per measurement. */
  readonly isolates: number;
  readonly progress: (line: string) => void;
}

/** Runs the overhead section. */
export async function benchOverhead(input: OverheadBenchInput): Promise<OverheadReport> {
  input.progress('overhead: baseline');
  const baseline = timeTask(emptyLoop, input.plan);
  const rows: OverheadRow[] = [];
  for (const c of CASES) rows.push(await benchCase(input, c.name, c.entry));
  const find = (name: CorpusName, entry: CorpusEntry): OverheadRow | undefined =>
    rows.find((r) => r.name === name && r.entry === entry);
  const targets: OverheadReport['targets'][number][] = [];
  const add = (what: string, s: NsSample | undefined, max: number): void => {
    if (s !== undefined) targets.push({ what, ns: s.median, max, ok: s.median <= max });
  };
  add(
    'p1 xdp runU32 zero-copy',
    find('p1_pass', 'xdp')?.runU32ZeroCopy,
    OVERHEAD_TARGETS.p1ZeroCopy,
  );
  add(
    'p1 mem runU32 zero-copy',
    find('p1_pass', 'mem')?.runU32ZeroCopy,
    OVERHEAD_TARGETS.p1ZeroCopy,
  );
  add(
    'p2 xdp runU32 zero-copy',
    find('p2_parse', 'xdp')?.runU32ZeroCopy,
    OVERHEAD_TARGETS.p2ZeroCopy,
  );
  add('p1 xdp runBatch per run', find('p1_pass', 'xdp')?.runBatch, OVERHEAD_TARGETS.p1Batch);
  add('p1 mem runBatch per run', find('p1_pass', 'mem')?.runBatch, OVERHEAD_TARGETS.p1Batch);
  return { baseline, packetBytes: input.packetBytes, isolates: input.isolates, rows, targets };
}

async function benchCase(
  input: OverheadBenchInput,
  name: CorpusName,
  entry: CorpusEntry,
): Promise<OverheadRow> {
  const job = {
    name,
    entry,
    cpu: input.cpu,
    engine: 'jit',
    plan: input.plan,
    batchSize: input.batchSize,
  } as const;
  const measure = async (method: RunMethod): Promise<RunMeasurement> => {
    input.progress(`overhead ${name} ${entry}: ${method}`);
    return measureIsolated({ ...job, method }, input.isolates);
  };
  const runU32ZeroCopy = await measure('runU32');
  const runBigint = await measure('run');
  const runU32Copy = await measure('runU32Copy');
  const runBatch = await measure('runBatch');
  return {
    name,
    entry,
    result: runU32ZeroCopy.result,
    runBigint: runBigint.sample,
    runU32ZeroCopy: runU32ZeroCopy.sample,
    runU32Copy: runU32Copy.sample,
    runBatch: runBatch.sample,
    batchSize: input.batchSize,
  };
}

function trivial(k: number): number {
  return k & 1;
}

function emptyLoop(n: number): number {
  let acc = 0;
  for (let k = 0; k < n; k++) acc = (acc + trivial(k)) | 0;
  return acc;
}

/** The section as text. */
export function formatOverhead(report: OverheadReport): string {
  const batchSize = report.rows[0]?.batchSize ?? 0;
  const table = formatTable(
    [
      'program',
      'run() bigint',
      'runU32(len) zero-copy',
      'runU32(packet) copy',
      `runBatch ×${batchSize} per run`,
    ],
    report.rows.map((r) => [
      `${r.name} ${r.entry}`,
      fmtNs(r.runBigint.median),
      fmtNs(r.runU32ZeroCopy.median),
      fmtNs(r.runU32Copy.median),
      fmtNs(r.runBatch.median),
    ]),
  );
  return [
    `JIT, ns per run, packet.bin (${report.packetBytes} bytes); ${medianWording(report.isolates)}`,
    `harness baseline: empty JS loop calling a trivial function = ${fmtNs(report.baseline.median)} ns/iteration (not subtracted)`,
    '',
    table,
    '',
    ...report.targets.map(
      (t) => `${t.what}: ${fmtNs(t.ns)} ns (target ≤ ${t.max} ns) ${verdict(t.ok)}`,
    ),
  ].join('\n');
}
