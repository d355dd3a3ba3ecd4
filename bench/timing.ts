/**
 * Timing for ns-scale work: a task runs `n` iterations per call and returns a checksum; the
 * harness calibrates `n` so that one round takes about `roundMs`, warms up for at least
 * `warmupMs` (so that V8 has tiered the Wasm and the JS up to TurboFan, notes/wasm-platform.md
 * §7.8), then times `rounds` rounds with `process.hrtime.bigint()` and reports the median of the
 * per-round ns/iteration figures.
 *
 * Called from the bench sections. The clock is injectable for tests of the statistics.
 */

/** A task: runs `n` iterations and returns something that depends on every result. */
export type Task = (n: number) => number;

/** How long to warm up and how many rounds to time. */
export interface TimingPlan {
  /** Minimum warm-up time in ms before the first timed round. */
  readonly warmupMs: number;
  /** Number of timed rounds (the median is taken over these). */
  readonly rounds: number;
  /** Target duration of one round in ms; `n` is calibrated to it. */
  readonly roundMs: number;
}

/** The result of timing one task: ns per iteration. */
export interface NsSample {
  /** Median over rounds of ns per iteration. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Rounds timed. */
  readonly rounds: number;
  /** Iterations per round. */
  readonly iterations: number;
  /** When merged from several isolates (`mergeSamples`): each one's median. */
  readonly perIsolateMedians?: readonly number[];
}

/** A monotonic clock in ns. */
export type Clock = () => bigint;

const hrtime: Clock = () => process.hrtime.bigint();

/** Sink for checksums (a module variable V8 must keep), so the timed work cannot be dropped. */
let sink = 0;

/** Median of a non-empty list (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1
    ? (s[mid] as number)
    : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Geometric mean of positive numbers. */
export function geomean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return Math.exp(xs.reduce((acc, x) => acc + Math.log(x), 0) / xs.length);
}

/**
 * Times `task` per `plan` and returns ns per iteration (median over rounds).
 * @example
 * const s = timeTask((n) => { let a = 0; for (let i = 0; i < n; i++) a += prog.runU32(len); return a; },
 *   { warmupMs: 100, rounds: 15, roundMs: 20 });
 */
export function timeTask(task: Task, plan: TimingPlan, clock: Clock = hrtime): NsSample {
  const roundNs = plan.roundMs * 1e6;
  let n = 1;
  let spent = 0;
  // Calibrate while warming up: double n until a call takes a tenth of a round, then keep
  // running until the warm-up time is used up, re-estimating n from the latest call.
  for (;;) {
    const t0 = clock();
    sink = (sink + task(n)) | 0;
    const dt = Number(clock() - t0);
    spent += dt;
    if (dt < roundNs / 10 && n < 2 ** 30) {
      n *= 2;
      continue;
    }
    n = Math.max(1, Math.round((n * roundNs) / Math.max(dt, 1)));
    if (spent >= plan.warmupMs * 1e6) break;
  }
  const perIter: number[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    const t0 = clock();
    sink = (sink + task(n)) | 0;
    perIter.push(Number(clock() - t0) / n);
  }
  return {
    median: median(perIter),
    min: Math.min(...perIter),
    max: Math.max(...perIter),
    rounds: plan.rounds,
    iterations: n,
  };
}

/**
 * Samples of the same measurement from several isolates as one: the median of their medians
 * (robust to one isolate that landed in a slow state), the extremes of all rounds.
 */
export function mergeSamples(samples: readonly NsSample[]): NsSample {
  const first = samples[0];
  if (first === undefined) throw new RangeError('no samples to merge');
  if (samples.length === 1) return first;
  return {
    median: median(samples.map((s) => s.median)),
    min: Math.min(...samples.map((s) => s.min)),
    max: Math.max(...samples.map((s) => s.max)),
    rounds: samples.reduce((n, s) => n + s.rounds, 0),
    iterations: first.iterations,
    perIsolateMedians: samples.map((s) => s.median),
  };
}
