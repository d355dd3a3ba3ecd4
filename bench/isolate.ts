/**
 * Runs each measurement in a fresh worker thread (its own V8 isolate), one at a time. At ns
 * scale the figures depend on V8's type feedback: once `runU32` has seen other programs or a
 * `Uint8Array` argument, its call sites are polymorphic, and a zero-copy run of p1 measured
 * 30–100% slower after the other sections had run in the same process. A fresh isolate per
 * measurement makes every figure independent of what ran before it. The cost is a binaryen
 * import (≈0.5 s) per JIT worker. Even fresh processes differ (p1: 8.5–14 ns medians in five
 * otherwise identical runs), hence `measureIsolated` over several workers.
 *
 * This module is also the worker's entry: loaded in a worker with a job in `workerData`, it
 * runs `measureRun` and posts the outcome back.
 *
 * Called from the corpus and overhead sections.
 */

import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { WrongResultError } from './corpus.js';
import { measureRun, type RunJob, type RunMeasurement } from './measure.js';
import { mergeSamples } from './timing.js';

/** What a worker posts back. */
type Outcome =
  | { readonly ok: true; readonly value: RunMeasurement }
  | { readonly ok: false; readonly wrongResult: boolean; readonly message: string };

/** Marks `workerData` as a bench job. */
interface JobMessage {
  readonly bpfwasmBenchJob: RunJob;
}

/**
 * Runs `job` in a new worker and returns its measurement; rethrows a wrong result as
 * `WrongResultError` and any other failure as an Error.
 */
export function runIsolated(job: RunJob): Promise<RunMeasurement> {
  return new Promise((resolve, reject) => {
    const data: JobMessage = { bpfwasmBenchJob: job };
    const worker = new Worker(new URL(import.meta.url), { workerData: data });
    let settled = false;
    worker.once('message', (out: Outcome) => {
      settled = true;
      if (out.ok) resolve(out.value);
      else reject(out.wrongResult ? new WrongResultError(out.message) : new Error(out.message));
    });
    worker.once('error', (e) => {
      settled = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`bench worker exited with code ${code} before reporting`));
    });
  });
}

/**
 * Runs `job` in `isolates` fresh workers, one after the other, and merges their samples
 * (median of the per-isolate medians): state that differs between otherwise identical
 * processes moves ns-scale figures by up to ~50%.
 */
export async function measureIsolated(job: RunJob, isolates: number): Promise<RunMeasurement> {
  const runs: RunMeasurement[] = [];
  for (let k = 0; k < Math.max(1, isolates); k++) runs.push(await runIsolated(job));
  return {
    result: (runs[0] as RunMeasurement).result,
    sample: mergeSamples(runs.map((r) => r.sample)),
  };
}

function isJobMessage(x: unknown): x is JobMessage {
  return typeof x === 'object' && x !== null && 'bpfwasmBenchJob' in x;
}

async function workerMain(job: RunJob): Promise<void> {
  let out: Outcome;
  try {
    out = { ok: true, value: await measureRun(job) };
  } catch (e) {
    out = {
      ok: false,
      wrongResult: e instanceof WrongResultError,
      message:
        e instanceof WrongResultError
          ? e.message
          : e instanceof Error
            ? (e.stack ?? e.message)
            : String(e),
    };
  }
  parentPort?.postMessage(out);
}

if (!isMainThread && isJobMessage(workerData)) await workerMain(workerData.bpfwasmBenchJob);
