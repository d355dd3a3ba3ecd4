/**
 * One measurement: one corpus program, one engine, one way of running it, timed per
 * bench/timing.ts. The result is checked against expected.tsv before anything is timed, and
 * a wrong one throws `WrongResultError`.
 *
 * Ways of running (all on packet.bin):
 * - `runU32`: zero-copy, the packet written once into `prog.input`, `runU32(len)` per run;
 * - `run`: the same, r0 read back as a bigint (`run(len)`);
 * - `runU32Copy`: `runU32(packet)`, the packet copied into Wasm memory on every run;
 * - `runBatch`: `batchSize` copies laid out once with `prepareBatch`, one `runBatch` call per
 *   batch, reported per run.
 *
 * A job with a JIT `variant` times a module the bench compiles itself, with or without the
 * verifier's facts (`verifyProgram`), called through its `run` export directly: the two
 * variants differ in nothing but the compile options (corpus-facts.ts compares them).
 *
 * Called inside a fresh worker (bench/isolate.ts), so that V8's type feedback for the run
 * methods comes from this measurement alone.
 */

import {
  EXPORT_RUN,
  IMPORT_CTRL,
  IMPORT_CTX,
  IMPORT_MEMORY,
  IMPORT_MODULE,
  IMPORT_SP,
  IMPORT_STACK_LIMIT,
  IMPORT_TABLE,
} from '../src/abi.js';
import { verifyProgram } from '../src/verifier/verifier.js';
import { compileProgram } from '../jit/compile.js';
import type { Engine, LoadedProgram } from '../runtime/loaded-program.js';
import { Vm } from '../runtime/vm.js';
import {
  checkResult,
  loadCorpusProgram,
  loadExpected,
  loadPacket,
  type CorpusCpu,
  type CorpusEntry,
  type CorpusName,
} from './corpus.js';
import { timeTask, type NsSample, type Task, type TimingPlan } from './timing.js';

/** How each run is started. */
export type RunMethod = 'runU32' | 'run' | 'runU32Copy' | 'runBatch';

/**
 * A JIT module compiled by the bench: `guarded` without facts (every memory access checked,
 * as for an unverified load), `facts` with `verifyProgram`'s facts (pointers in i32 locals,
 * unreachable code dropped, no memory guards).
 */
export type JitVariant = 'guarded' | 'facts';

/** What to measure. */
export interface RunJob {
  readonly name: CorpusName;
  readonly entry: CorpusEntry;
  readonly cpu: CorpusCpu;
  readonly engine: Engine;
  readonly method: RunMethod;
  readonly plan: TimingPlan;
  /** Inputs per batch, for `runBatch`. */
  readonly batchSize: number;
  /** Time this JIT variant through `run` (engine 'jit'; `method` is then ignored). */
  readonly variant?: JitVariant;
}

/** What was measured: the program's result and ns per run. */
export interface RunMeasurement {
  readonly result: number;
  readonly sample: NsSample;
}

/** Loads the program into a new Vm, checks its result and times `job.method`. */
export async function measureRun(job: RunJob): Promise<RunMeasurement> {
  if (job.variant !== undefined) return measureJitVariant(job, job.variant);
  const vm = Vm.create();
  try {
    const packet = loadPacket();
    const expected = loadExpected().get(job.name) as number;
    // Loaded as users load it: verified, so the JIT compiles with the verifier's facts.
    const prog = await vm.load(loadCorpusProgram(job.name, job.entry, job.cpu), {
      engine: job.engine,
    });
    prog.input.set(packet);
    const what = `${job.name} (${job.entry}) on the ${job.engine === 'jit' ? 'JIT' : 'interpreter'}`;
    const result = checkResult(what, prog.runU32(packet.length), expected);
    if (job.method !== 'runBatch') {
      const task = runTask(prog, job.method, packet);
      checkResult(`${what}, ${job.method}`, task(1), expected);
      return { result, sample: timeTask(task, job.plan) };
    }
    const batch = prog.prepareBatch(new Array<Uint8Array>(job.batchSize).fill(packet));
    try {
      for (const r of prog.runBatch(batch)) checkResult(`${what}, runBatch`, r, expected);
      const perBatch = timeTask((n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc = (acc + (prog.runBatch(batch)[0] as number)) | 0;
        return acc;
      }, job.plan);
      return { result, sample: scaleSample(perBatch, 1 / job.batchSize) };
    } finally {
      prog.releaseBatch(batch);
    }
  } finally {
    vm.close();
  }
}

/**
 * Links the program into a new Vm (which fills its helper slots and function tokens), then
 * compiles the `variant` module itself with the same links and instantiates it on the Vm's
 * memory, table and globals. Function tokens keep naming the Vm's own (guarded) module.
 */
async function measureJitVariant(job: RunJob, variant: JitVariant): Promise<RunMeasurement> {
  const vm = Vm.create();
  try {
    const packet = loadPacket();
    const expected = loadExpected().get(job.name) as number;
    const prog = loadCorpusProgram(job.name, job.entry, job.cpu);
    const linked = await vm.load(prog, { engine: 'jit', verify: false });
    const verified = variant === 'facts' ? verifyProgram(prog, { type: job.entry }) : undefined;
    const compiled = await compileProgram(prog, {
      links: linked.links,
      memory: { initial: 1, maximum: 65536, shared: false },
      memCheck: verified === undefined,
      entry: job.entry,
      hasHelper: (h) => vm.helpers.has(h),
      ...(verified === undefined ? {} : { verified }),
    });
    const instance = await WebAssembly.instantiate(await WebAssembly.compile(compiled.wasm), {
      [IMPORT_MODULE]: {
        [IMPORT_MEMORY]: vm.memory,
        [IMPORT_TABLE]: vm.table,
        [IMPORT_SP]: vm.globals.sp,
        [IMPORT_STACK_LIMIT]: vm.globals.stackLimit,
        [IMPORT_CTRL]: vm.globals.ctrl,
        [IMPORT_CTX]: vm.globals.ctx,
      },
    });
    const run = instance.exports[EXPORT_RUN] as (a: number, b: number) => number;
    linked.input.set(packet);
    const addr = vm.worker.packet;
    const len = packet.length;
    const task: Task = (n) => {
      let acc = 0;
      for (let k = 0; k < n; k++) acc = (acc + run(addr, len)) | 0;
      return acc >>> 0;
    };
    const facts = variant === 'facts' ? 'with' : 'without';
    const what = `${job.name} (${job.entry}) on the JIT ${facts} verifier facts`;
    const result = checkResult(what, task(1), expected);
    return { result, sample: timeTask(task, job.plan) };
  } finally {
    vm.close();
  }
}

/** A task of `n` runs by `method`; with n = 1 it returns the run's result. */
function runTask(
  prog: LoadedProgram,
  method: Exclude<RunMethod, 'runBatch'>,
  packet: Uint8Array,
): Task {
  const len = packet.length;
  switch (method) {
    case 'runU32':
      return (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc = (acc + prog.runU32(len)) | 0;
        return acc >>> 0;
      };
    case 'run':
      return (n) => {
        let acc = 0n;
        for (let k = 0; k < n; k++) acc += prog.run(len);
        return Number(BigInt.asUintN(32, acc));
      };
    case 'runU32Copy':
      return (n) => {
        let acc = 0;
        for (let k = 0; k < n; k++) acc = (acc + prog.runU32(packet)) | 0;
        return acc >>> 0;
      };
    default: {
      const never: never = method;
      throw new Error(`unknown run method ${String(never)}`);
    }
  }
}

/** A sample with every figure multiplied by `f` (per batch → per run). */
function scaleSample(s: NsSample, f: number): NsSample {
  return { ...s, median: s.median * f, min: s.min * f, max: s.max * f };
}
