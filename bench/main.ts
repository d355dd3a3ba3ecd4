/**
 * `npm run bench`: the performance report of issue #3 item 8. Sections (each optional with
 * `--only`): the benchmark corpus on the JIT, the interpreter and (where it works) the kernel
 * JIT; the per-run overhead of the run methods; map lookups from BPF; frame allocator alloc+free
 * pairs; coroutines (issue #7: suspend cost and the talk's use cases); compile latency per phase;
 * fast-path termination (issue #8: overhead, latency, the alternatives). Tables go to
 * stdout, progress to stderr, and `--json FILE` writes the same figures as JSON.
 *
 * Every ns figure is a median over timed rounds after a warm-up of at least 100 ms (V8 must
 * have tiered up to TurboFan, notes/wasm-platform.md); the machine is noisy, so the report
 * prints the load average and the ranges.
 *
 * Run: `npm run bench -- [--quick] [--only p3_sum,overhead] [--json out.json]`.
 */

import { writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vm } from '../runtime/vm.js';
import {
  benchCompile,
  formatCompile,
  type ColdStart,
  type CompileReport,
} from './compile.bench.js';
import { benchCorpus, formatCorpus, type CorpusReport } from './corpus.bench.js';
import { benchCoroutines, formatCoroutines, type CoroutinesReport } from './coroutines.bench.js';
import { benchVerify, formatVerify, type VerifyReport } from './verify.bench.js';
import {
  corpusBinPath,
  loadCorpusProgram,
  loadExpected,
  loadPacket,
  packetPath,
  WrongResultError,
  type CorpusCpu,
} from './corpus.js';
import { openKernelAnchor, type KernelAnchorState } from './kernel-anchor.js';
import { benchPlans, parseOptions, USAGE, type BenchOptions, type BenchPlans } from './options.js';
import { benchOverhead, formatOverhead, type OverheadReport } from './overhead.bench.js';
import { heading } from './table.js';
import { benchMaps, formatMaps, type MapsReport } from './maps.bench.js';
import { benchAlloc, formatAlloc, type AllocReport } from './alloc.bench.js';
import {
  benchTermination,
  formatTermination,
  type TerminationReport,
} from './termination.bench.js';
import { benchWorkers, formatWorkers, type WorkersReport } from './workers.bench.js';

/** Where and how the bench ran. */
interface MachineInfo {
  readonly node: string;
  readonly v8: string;
  readonly kernel: string;
  readonly cpu: string;
  readonly cores: number;
  readonly loadavgStart: readonly number[];
  loadavgEnd: readonly number[];
}

/** The whole report, as written by `--json`. */
interface BenchReport {
  readonly date: string;
  readonly machine: MachineInfo;
  readonly options: {
    readonly quick: boolean;
    readonly sections: readonly string[];
    readonly programs: readonly string[];
    readonly cpu: CorpusCpu;
  };
  readonly plans: BenchPlans;
  readonly coldStart: ColdStart;
  corpus?: CorpusReport;
  overhead?: OverheadReport;
  maps?: MapsReport;
  coroutines?: CoroutinesReport;
  alloc?: AllocReport;
  workers?: WorkersReport;
  compile?: CompileReport;
  verify?: VerifyReport;
  termination?: TerminationReport;
}

function progress(line: string): void {
  process.stderr.write(`  … ${line}\n`);
}

function machineInfo(): MachineInfo {
  return {
    node: process.version,
    v8: process.versions.v8,
    kernel: release(),
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    loadavgStart: loadavg(),
    loadavgEnd: [],
  };
}

/** The first JIT load of the process: binaryen is imported here. */
async function coldStart(vm: Vm, cpu: CorpusCpu): Promise<ColdStart> {
  const prog = await vm.load(loadCorpusProgram('p1_pass', 'mem', cpu), {
    engine: 'jit',
    verify: false,
  });
  const t0 = performance.now();
  prog.runU32();
  const firstCall = performance.now() - t0;
  const tm = prog.timings ?? { load: Number.NaN, build: Number.NaN, emit: Number.NaN };
  return {
    binaryenLoad: tm.load,
    build: tm.build,
    emit: tm.emit,
    compileMs: prog.compileMs,
    firstCall,
  };
}

function kernelAnchor(opts: BenchOptions): KernelAnchorState {
  if (!opts.kernel) return { ok: false, reason: 'disabled (--no-kernel)' };
  return openKernelAnchor(corpusBinPath('p1_pass', 'xdp', opts.cpu), packetPath());
}

function header(m: MachineInfo, opts: BenchOptions): string {
  const la = m.loadavgStart.map((x) => x.toFixed(2)).join(' ');
  return [
    '# bpfwasm bench',
    '',
    `node ${m.node} (V8 ${m.v8}), Linux ${m.kernel}, ${m.cores} × ${m.cpu}`,
    `load average at start: ${la}${opts.quick ? '   [--quick: few short rounds, rough figures]' : ''}`,
    'A shared, noisy machine: treat differences under ~30% as noise; compare ratios measured in the same run.',
    ...busyWarning(m.loadavgStart, m.cores),
  ].join('\n');
}

/** A warning line when other processes compete for every core. */
function busyWarning(load: readonly number[], cores: number): string[] {
  const now = load[0] ?? 0;
  return now >= cores
    ? [`WARNING: load average ${now.toFixed(2)} ≥ ${cores} cores: figures are likely inflated.`]
    : [];
}

async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const plans = benchPlans(opts.quick);
  const machine = machineInfo();
  process.stdout.write(`${header(machine, opts)}\n`);
  const vm = Vm.create();
  const report: BenchReport = {
    date: new Date().toISOString(),
    machine,
    options: {
      quick: opts.quick,
      sections: [...opts.sections],
      programs: opts.programs,
      cpu: opts.cpu,
    },
    plans,
    coldStart: await coldStart(vm, opts.cpu),
  };
  vm.close();
  if (opts.sections.has('corpus')) {
    report.corpus = await runCorpusSection(opts, plans);
    process.stdout.write(`${heading('Corpus: ns per run')}\n${formatCorpus(report.corpus)}\n`);
  }
  if (opts.sections.has('overhead')) {
    report.overhead = await benchOverhead({
      cpu: opts.cpu,
      packetBytes: loadPacket().length,
      plan: plans.jit,
      batchSize: plans.batchSize,
      isolates: plans.isolates,
      progress,
    });
    process.stdout.write(
      `${heading('Per-run overhead (JIT)')}\n${formatOverhead(report.overhead)}\n`,
    );
  }
  if (opts.sections.has('maps')) {
    report.maps = await benchMaps(plans.jit, progress);
    process.stdout.write(`${heading('Map lookups from BPF')}\n${formatMaps(report.maps)}\n`);
  }
  if (opts.sections.has('coroutines')) {
    report.coroutines = await benchCoroutines(plans.jit, opts.quick, progress);
    process.stdout.write(
      `${heading('Coroutines (issue #7)')}\n${formatCoroutines(report.coroutines)}\n`,
    );
  }
  if (opts.sections.has('alloc')) {
    report.alloc = await benchAlloc(plans.jit, progress);
    process.stdout.write(
      `${heading('Frame allocator: alloc + free')}\n${formatAlloc(report.alloc)}\n`,
    );
  }
  if (opts.sections.has('workers')) {
    report.workers = await benchWorkers(plans.jit, progress);
    process.stdout.write(
      `${heading('Workers: throughput on 1 and 2 threads')}\n${formatWorkers(report.workers)}\n`,
    );
  }
  if (opts.sections.has('compile')) {
    report.compile = await benchCompile({
      coldStart: report.coldStart,
      samples: plans.compiles,
      progress,
    });
    process.stdout.write(`${heading('Compile latency')}\n${formatCompile(report.compile)}\n`);
  }
  if (opts.sections.has('verify')) {
    const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
    report.verify = benchVerify(root, opts.cpu, opts.quick ? 3 : 9, progress);
    process.stdout.write(`${heading('Verification time')}\n${formatVerify(report.verify)}\n`);
  }
  if (opts.sections.has('termination')) {
    report.termination = await benchTermination(plans.jit, opts.cpu, opts.quick, progress);
    process.stdout.write(
      `${heading('Fast-path termination')}\n${formatTermination(report.termination)}\n`,
    );
  }
  machine.loadavgEnd = loadavg();
  const end = [
    `load average at end: ${machine.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`,
    ...busyWarning(machine.loadavgEnd, machine.cores),
  ];
  process.stdout.write(`\n${end.join('\n')}\n`);
  return report;
}

async function runCorpusSection(opts: BenchOptions, plans: BenchPlans): Promise<CorpusReport> {
  const kernel = kernelAnchor(opts);
  if (!kernel.ok) process.stderr.write(`kernel anchor unavailable: ${kernel.reason}\n`);
  return benchCorpus({
    programs: opts.programs,
    cpu: opts.cpu,
    packetBytes: loadPacket().length,
    packetPath: packetPath(),
    expected: loadExpected(),
    jitPlan: plans.jit,
    interpPlan: plans.interp,
    isolates: plans.isolates,
    kernel,
    kernelPlan: plans.kernel,
    progress,
  });
}

async function main(argv: readonly string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseOptions(argv);
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const report = await runBench(opts);
    if (opts.jsonPath !== undefined) {
      writeFileSync(opts.jsonPath, `${JSON.stringify(report, null, 2)}\n`);
      process.stdout.write(`figures written to ${opts.jsonPath}\n`);
    }
    return 0;
  } catch (e) {
    if (e instanceof WrongResultError) {
      process.stderr.write(`\n*** BENCH ABORTED: ${e.message} ***\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv.slice(2));
