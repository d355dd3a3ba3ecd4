/**
 * `--repeat M [--workers N]` of `bpfwasm run`: how fast a loaded program runs one input over
 * and over. On the host thread (no workers) it is the median ns per run of several rounds after
 * a warm-up, as before. With workers the M runs are split into one batch per worker
 * (`prepareRepeatBatch`: one request per worker, its results in shared memory, no per-run
 * round trip), run in parallel after a warm-up batch on each, and timed from the first request
 * to the last answer.
 *
 * Called from src/cli/main.ts.
 */

import { UsageError } from '../errors.js';
import type { Batch, LoadedProgram } from '../../runtime/loaded-program.js';

/** What `--repeat` measured. */
export interface RepeatRate {
  /** ns per run: the median on the host thread, wall time / runs with workers. */
  readonly nsPerRun: number;
  /** Runs per second (all workers together). */
  readonly runsPerSec: number;
}

/** Runs of the warm-up batch each worker gets before the timed one. */
const WARMUP_RUNS = 1000;

/** `--workers N`: 0 (the default) runs on the host thread. */
export function workersOf(text: unknown): number {
  if (text === undefined) return 0;
  const n = Number(text);
  if (typeof text !== 'string' || !Number.isInteger(n) || n < 1)
    throw new UsageError('--workers takes a whole number of at least 1');
  return n;
}

/** Median ns per run on the host thread over up to 15 rounds of `repeat` runs, after a warm-up. */
export function hostRate(run: () => number, repeat: number): RepeatRate {
  const rounds = Math.min(15, Math.max(3, Math.ceil(repeat / 1000)));
  const per = Math.max(1, Math.floor(repeat / rounds));
  const warmEnd = performance.now() + 100;
  while (performance.now() < warmEnd) run();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < per; k++) run();
    samples.push(Number(process.hrtime.bigint() - t0) / per);
  }
  samples.sort((a, b) => a - b);
  const ns = samples[samples.length >> 1] as number;
  return { nsPerRun: ns, runsPerSec: 1e9 / ns };
}

/**
 * `repeat` runs of `input` spread over `workers` worker threads (the first ones get one run
 * more when it does not divide). The Vm of `prog` must have that many workers.
 */
export async function workersRate(
  prog: LoadedProgram,
  input: Uint8Array,
  repeat: number,
  workers: number,
): Promise<RepeatRate> {
  const used = Math.min(workers, repeat);
  const shares = Array.from(
    { length: used },
    (_, i) => Math.floor(repeat / used) + (i < repeat % used ? 1 : 0),
  );
  const batches: Batch[] = [];
  try {
    const warm = shares.map((s) => prog.prepareRepeatBatch(input, Math.min(s, WARMUP_RUNS)));
    batches.push(...warm);
    await Promise.all(warm.map((b, i) => prog.runBatchOn(i, b)));
    const timed = shares.map((s) => prog.prepareRepeatBatch(input, s));
    batches.push(...timed);
    const t0 = process.hrtime.bigint();
    await Promise.all(timed.map((b, i) => prog.runBatchOn(i, b)));
    const ns = Number(process.hrtime.bigint() - t0);
    return { nsPerRun: ns / repeat, runsPerSec: (repeat * 1e9) / ns };
  } finally {
    for (const b of batches) prog.releaseBatch(b);
  }
}
