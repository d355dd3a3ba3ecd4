/**
 * Section "corpus": each benchmark program's XDP entry on packet.bin, on the JIT and on the
 * interpreter (each in a fresh worker, bench/isolate.ts), with the kernel JIT's figure from the
 * same run beside it where the kernel anchor works. The packet is written once into the
 * program's `input` (Wasm memory) and every run is `runU32(packet.length)`: one JS→Wasm call,
 * no copy. A result that differs from expected.tsv aborts the bench: a fast wrong answer is not
 * a benchmark result.
 *
 * Targets (issue #3): geometric mean over p2–p6 ≤ 1.2× the kernel's, none above 2×; the JIT at
 * least 20× faster than the interpreter on every program.
 *
 * Then the JIT with the verifier's facts against the JIT without them (corpus-facts.ts), or a
 * line saying why that comparison was skipped.
 *
 * Called from bench/main.ts.
 */

import {
  REFERENCE_FIGURES,
  corpusBinPath,
  type CorpusCpu,
  type CorpusName,
  type ReferenceFigures,
} from './corpus.js';
import { benchFacts, formatFacts, type FactsReport } from './corpus-facts.js';
import {
  mergeKernelRuns,
  type KernelAnchorState,
  type KernelPlan,
  type KernelRun,
} from './kernel-anchor.js';
import { measureIsolated } from './isolate.js';
import { fmtHex, fmtNs, fmtRatio, formatTable, medianWording, verdict } from './table.js';
import { geomean, type NsSample, type TimingPlan } from './timing.js';

/** Targets of the corpus section. */
export const CORPUS_TARGETS = {
  /** Geometric mean of our ns/run over the kernel's, p2–p6. */
  geomeanRatioMax: 1.2,
  /** No program (p2–p6) slower than this multiple of the kernel. */
  ratioMax: 2,
  /** JIT speed-up over the interpreter, every program. */
  speedupMin: 20,
} as const;

/** Programs the kernel comparison is summarised over (p1 measures test-run overhead only). */
const GEOMEAN_PROGRAMS: readonly CorpusName[] = [
  'p2_parse',
  'p3_sum',
  'p4_fnv',
  'p5_crc32',
  'p6_sort',
];

/** One program's figures. */
export interface CorpusRow {
  readonly name: CorpusName;
  readonly result: number;
  readonly jit: NsSample;
  readonly interp: NsSample;
  /** Interpreter ns over JIT ns. */
  readonly speedup: number;
  /** The kernel JIT measured now (before and after our JIT run, merged), or why not. */
  readonly kernel: KernelRun | undefined;
  /** The kernel's median ns/run just before and just after our JIT run. */
  readonly kernelBeforeAfterNs: readonly [number, number] | undefined;
  readonly kernelError: string | undefined;
  /** Our JIT ns over the kernel's measured ns. */
  readonly ratioToKernel: number | undefined;
  readonly reference: ReferenceFigures;
}

/** Summary against the targets. */
export interface CorpusSummary {
  /** Programs the geomean covers (those of p2–p6 that ran, with a kernel figure if measured). */
  readonly programs: readonly CorpusName[];
  readonly geomeanRatioToKernel: number | undefined;
  readonly maxRatioToKernel: number | undefined;
  /** Against the README's kernel figures (another machine), when the anchor is unavailable. */
  readonly geomeanRatioToReferenceKernel: number | undefined;
  readonly minSpeedup: number;
  readonly meetsKernelTargets: boolean | undefined;
  readonly meetsSpeedupTarget: boolean;
}

/** The corpus section's report. */
export interface CorpusReport {
  readonly cpu: CorpusCpu;
  readonly entry: 'xdp';
  readonly packetBytes: number;
  /** Fresh workers per JIT figure. */
  readonly isolates: number;
  readonly kernelAnchor: { readonly available: boolean; readonly reason: string | undefined };
  readonly rows: readonly CorpusRow[];
  readonly summary: CorpusSummary;
  /** The JIT with verifier facts against the JIT without, or why it was skipped. */
  readonly facts: FactsReport;
}

/** What the corpus section needs. */
export interface CorpusBenchInput {
  readonly programs: readonly CorpusName[];
  readonly cpu: CorpusCpu;
  readonly packetBytes: number;
  readonly packetPath: string;
  readonly expected: ReadonlyMap<CorpusName, number>;
  readonly jitPlan: TimingPlan;
  readonly interpPlan: TimingPlan;
  /** Fresh workers per JIT measurement. */
  readonly isolates: number;
  readonly kernel: KernelAnchorState;
  readonly kernelPlan: KernelPlan;
  /** Progress lines (stderr). */
  readonly progress: (line: string) => void;
}

/** Runs the corpus section. */
export async function benchCorpus(input: CorpusBenchInput): Promise<CorpusReport> {
  const rows: CorpusRow[] = [];
  for (const name of input.programs) rows.push(await benchProgram(input, name));
  const facts = await benchFacts(input);
  return {
    cpu: input.cpu,
    entry: 'xdp',
    packetBytes: input.packetBytes,
    isolates: input.isolates,
    kernelAnchor: {
      available: input.kernel.ok,
      reason: input.kernel.ok ? undefined : input.kernel.reason,
    },
    rows,
    summary: summarise(rows),
    facts,
  };
}

async function benchProgram(input: CorpusBenchInput, name: CorpusName): Promise<CorpusRow> {
  const job = { name, entry: 'xdp', cpu: input.cpu, method: 'runU32', batchSize: 0 } as const;
  // The kernel runs just before and just after our JIT, half of its test runs each time, so
  // that drift on the machine hits both sides of the ratio alike.
  const before = kernelRun(input, name, 'before');
  input.progress(`corpus ${name}: jit`);
  const jit = await measureIsolated({ ...job, engine: 'jit', plan: input.jitPlan }, input.isolates);
  const after = kernelRun(input, name, 'after');
  input.progress(`corpus ${name}: interp`);
  const interp = await measureIsolated({ ...job, engine: 'interp', plan: input.interpPlan }, 1);
  const kernelError = before.error ?? after.error;
  const kernel =
    before.run !== undefined && after.run !== undefined
      ? mergeKernelRuns(before.run, after.run)
      : undefined;
  return {
    name,
    result: jit.result,
    jit: jit.sample,
    interp: interp.sample,
    speedup: interp.sample.median / jit.sample.median,
    kernel,
    kernelBeforeAfterNs:
      kernel === undefined ? undefined : [before.run?.nsPerRun ?? 0, after.run?.nsPerRun ?? 0],
    kernelError,
    ratioToKernel: kernel === undefined ? undefined : jit.sample.median / kernel.nsPerRun,
    reference: REFERENCE_FIGURES[name],
  };
}

/** Half of the kernel's test runs for `name`, or the reason there is no figure. */
function kernelRun(
  input: CorpusBenchInput,
  name: CorpusName,
  when: string,
): { run?: KernelRun; error?: string } {
  if (!input.kernel.ok) return {};
  input.progress(`corpus ${name}: kernel (${when})`);
  const expected = input.expected.get(name) as number;
  const plan = {
    repeat: input.kernelPlan.repeat,
    reps: Math.max(1, Math.ceil(input.kernelPlan.reps / 2)),
  };
  try {
    const run = input.kernel.anchor.run(
      corpusBinPath(name, 'xdp', input.cpu),
      input.packetPath,
      plan,
    );
    if (run.retval === expected) return { run };
    return { error: `kernel returned ${fmtHex(run.retval)}, expected ${fmtHex(expected)}` };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

function summarise(rows: readonly CorpusRow[]): CorpusSummary {
  const covered = rows.filter((r) => GEOMEAN_PROGRAMS.includes(r.name));
  const ratios = covered.map((r) => r.ratioToKernel);
  const haveKernel = covered.length > 0 && ratios.every((x) => x !== undefined);
  const measured = ratios.filter((x): x is number => x !== undefined);
  const geo = haveKernel ? geomean(measured) : undefined;
  const maxRatio = haveKernel ? Math.max(...measured) : undefined;
  const minSpeedup = Math.min(...rows.map((r) => r.speedup));
  return {
    programs: covered.map((r) => r.name),
    geomeanRatioToKernel: geo,
    maxRatioToKernel: maxRatio,
    geomeanRatioToReferenceKernel:
      covered.length > 0
        ? geomean(covered.map((r) => r.jit.median / r.reference.kernelJit))
        : undefined,
    minSpeedup,
    meetsKernelTargets:
      geo === undefined || maxRatio === undefined
        ? undefined
        : geo <= CORPUS_TARGETS.geomeanRatioMax && maxRatio <= CORPUS_TARGETS.ratioMax,
    meetsSpeedupTarget: minSpeedup >= CORPUS_TARGETS.speedupMin,
  };
}

/** The section as text: measured table, summary lines, then the README's reference figures. */
export function formatCorpus(report: CorpusReport): string {
  const lines = [
    `entry xdp, -mcpu=${report.cpu}, packet ${report.packetBytes} bytes written once into prog.input,` +
      ` runU32(len) per run; ns/run = ${medianWording(report.isolates)}; interp: 1 worker`,
    report.kernelAnchor.available
      ? 'kernel: BPF_PROG_TEST_RUN duration (kernel JIT) measured in this run, just before and after' +
        ' our JIT (mean of the two medians)'
      : `kernel anchor unavailable: ${report.kernelAnchor.reason ?? 'unknown'}`,
    '',
    measuredTable(report.rows),
    ...report.rows
      .filter((r) => r.kernelError !== undefined)
      .map((r) => `kernel error on ${r.name}: ${r.kernelError ?? ''}`),
    '',
    ...summaryLines(report.summary),
    '',
    formatFacts(report.facts),
    '',
    'Reference figures from bench/corpus/README.md (another run, another machine; NOT measured here), ns/run:',
    '',
    referenceTable(report.rows),
  ];
  return lines.join('\n');
}

function measuredTable(rows: readonly CorpusRow[]): string {
  return formatTable(
    [
      'program',
      'result',
      'jit ns/run',
      '(min–max)',
      'interp ns/run',
      'jit speed-up',
      'kernel ns/run',
      '(before/after)',
      'jit/kernel',
    ],
    rows.map((r) => [
      r.name,
      fmtHex(r.result),
      fmtNs(r.jit.median),
      `${fmtNs(r.jit.min)}–${fmtNs(r.jit.max)}`,
      fmtNs(r.interp.median),
      fmtRatio(r.speedup),
      r.kernel !== undefined
        ? fmtNs(r.kernel.nsPerRun)
        : r.kernelError !== undefined
          ? 'error'
          : 'n/a',
      r.kernelBeforeAfterNs?.map((x) => fmtNs(x)).join('/') ?? '-',
      fmtRatio(r.ratioToKernel),
    ]),
  );
}

function referenceTable(rows: readonly CorpusRow[]): string {
  return formatTable(
    ['program', 'kernel JIT', 'uBPF JIT', 'uBPF interp', 'wasm32 (C)', 'our jit/ref kernel'],
    rows.map((r) => [
      r.name,
      fmtNs(r.reference.kernelJit),
      fmtNs(r.reference.ubpfJit),
      fmtNs(r.reference.ubpfInterp),
      fmtNs(r.reference.wasm32),
      fmtRatio(r.jit.median / r.reference.kernelJit),
    ]),
  );
}

function summaryLines(s: CorpusSummary): string[] {
  const over = s.programs.join(', ') || 'none';
  const out: string[] = [];
  if (s.geomeanRatioToKernel !== undefined && s.maxRatioToKernel !== undefined) {
    const geoOk = s.geomeanRatioToKernel <= CORPUS_TARGETS.geomeanRatioMax;
    const maxOk = s.maxRatioToKernel <= CORPUS_TARGETS.ratioMax;
    out.push(
      `geomean jit/kernel over ${over}: ${fmtRatio(s.geomeanRatioToKernel)} ` +
        `(target ≤ ${CORPUS_TARGETS.geomeanRatioMax}×) ${verdict(geoOk)}`,
      `worst jit/kernel: ${fmtRatio(s.maxRatioToKernel)} (target ≤ ${CORPUS_TARGETS.ratioMax}×) ${verdict(maxOk)}`,
    );
  } else if (s.programs.length === 0) {
    out.push('geomean jit/kernel: none of p2–p6 was run');
  } else {
    out.push(`geomean jit/kernel: not measured (no kernel figure for every program of ${over})`);
  }
  if (s.geomeanRatioToReferenceKernel !== undefined) {
    out.push(
      `geomean jit/reference-kernel over ${over}: ${fmtRatio(s.geomeanRatioToReferenceKernel)} ` +
        '(README figures from another run: context only)',
    );
  }
  out.push(
    `slowest jit speed-up over interp: ${fmtRatio(s.minSpeedup)} ` +
      `(target ≥ ${CORPUS_TARGETS.speedupMin}× on every program) ${verdict(s.meetsSpeedupTarget)}`,
  );
  return out;
}
