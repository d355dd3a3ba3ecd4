/**
 * Coroutines (issue #7 items 7 and 9): what suspending costs, and the talk's use cases under
 * load. JIT only; the programs are C++ against include/bpf_coro.h, built in examples/coro/build.
 *
 * - Suspend + resume round trip: one coroutine suspends and is resumed `rounds` times in one run
 *   (coro_bench.o roundtrip_defer: task_work_schedule, the deferred ring; roundtrip_yield:
 *   yield, the ready queue drained by vm.coroutines.run()); the run with rounds = 0 is the
 *   baseline subtracted. Target ≤ 15 ns.
 * - Coroutine vs callback: the same logic (8 array updates at event time, 8 at the deferred
 *   point) as a coroutine, in callback style (explicit state + a continuation called through a
 *   function pointer at the end of the run), and straight. Target: coroutine ≤ 1.2× callback.
 *   halves_coro_lean is the coroutine with a Task whose final suspend leaves the done frame to
 *   the runtime's resume loop instead of handing it over once more (bpf::Task's final_awaiter).
 *   alloc_free gives the frame allocator's share (runtime/wasm/frame-alloc.ts).
 * - (b) uc_transmit: packets classified and transmitted per second through the three class
 *   queues, drained by the host (vm.coroutines.drain per queue) or by the BPF worker tx_worker.
 * - (c) uc_kvstore: bursts of 16 requests (15 short ones of SHORT entries, one long one of LONG
 *   entries at a seeded random place), served by vm.coroutines.run() after each burst; latency
 *   (completion − arrival, from bpf_ktime_get_ns in BPF, real time) percentiles of the short and
 *   the long requests, FCFS against processor sharing (a yield every QUANTUM steps).
 *
 * Every ns figure is a median over timed rounds (bench/timing.ts) of *process CPU time*
 * (`process.cpuUsage`, user + system), not wall time: on the shared 2-core machine wall time
 * mostly measures how long other processes held the cores. The latencies of (c) are real time,
 * as a client would see them, and include such preemption.
 */

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Vm } from '../runtime/vm.js';
import type { LoadedObject } from '../runtime/object.js';
import { fmtNs, fmtRatio, formatTable, verdict } from './table.js';
import {
  median,
  mergeSamples,
  timeTask,
  type Clock,
  type NsSample,
  type TimingPlan,
} from './timing.js';

/** Targets of issue #7 item 9. */
export const CORO_TARGETS = { roundTripNs: 15, ratio: 1.2, frameAllocNs: 10 } as const;

const ROUNDS = 1000;
const SHORT = 16;
const LONG = 4096;
const BURST = 16;
const QUANTUM = 16;
/** Packets classified between two drains (well under the queues' 4096 handles). */
const CHUNK = 768;

/** Latency percentiles in ns. */
export interface LatencyFigures {
  readonly shortP50: number;
  readonly shortP99: number;
  readonly longP50: number;
  readonly longP99: number;
}

/** The section's figures. */
export interface CoroutinesReport {
  readonly roundTripDeferNs: number;
  readonly roundTripYieldNs: number;
  readonly halves: {
    readonly coro: NsSample;
    /** The coroutine with a Task whose final suspend keeps the done frame (coro_bench.cpp). */
    readonly lean: NsSample;
    readonly callback: NsSample;
    readonly plain: NsSample;
  };
  readonly allocFreeNs: number;
  readonly transmit: {
    readonly hostNsPerPacket: number;
    readonly bpfNsPerPacket: number;
    readonly classifyNsPerPacket: number;
    readonly hostDrainNsPerPacket: number;
    readonly bpfDrainNsPerPacket: number;
  };
  readonly kv: {
    readonly bursts: number;
    readonly fcfs: LatencyFigures;
    readonly ps: LatencyFigures;
  };
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const objectBytes = (name: string): Uint8Array =>
  readFileSync(resolve(root, 'examples', 'coro', 'build', `${name}.o`));

/**
 * A Vm with an example object loaded; `verify` for the objects whose every program the verifier
 * accepts (uc_transmit), the others unverified (test/verifier/objects.test.ts BUNDLED_REJECTS).
 */
async function open(
  name: string,
  opts: Parameters<typeof Vm.create>[0] = {},
  verify = false,
): Promise<{ vm: Vm; obj: LoadedObject }> {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 }, ...opts });
  const obj = await vm.loadObject(objectBytes(name), { verify });
  return { vm, obj };
}

const CTX = new Uint8Array(8);

/** Process CPU time in ns (µs resolution). */
const cpuClock: Clock = () => {
  const u = process.cpuUsage();
  return BigInt(u.user + u.system) * 1000n;
};

/** ns of CPU time per iteration of `task`. */
const timeCpu = (task: (n: number) => number, plan: TimingPlan): NsSample =>
  timeTask(task, plan, cpuClock);

/** ns of CPU time per call of `run`. */
function timeRuns(run: () => number, plan: TimingPlan): NsSample {
  return timeCpu((k) => {
    let x = 0;
    for (let i = 0; i < k; i++) x += run();
    return x;
  }, plan);
}

/**
 * Times each of `tasks` in turn, `passes` times over, and merges each one's samples: the
 * alternation spreads the load other processes put on the machine evenly over the tasks
 * compared.
 */
function alternate(tasks: readonly (() => NsSample)[], passes: number): NsSample[] {
  const all = tasks.map((): NsSample[] => []);
  for (let p = 0; p < passes; p++) tasks.forEach((t, k) => all[k]!.push(t()));
  return all.map((s) => mergeSamples(s));
}

/** ns per suspend + resume round trip through `run` (rounds = ROUNDS minus rounds = 0). */
function roundTrip(obj: LoadedObject, run: () => number, plan: TimingPlan, passes: number): number {
  const rounds = (n: number) => (): NsSample => {
    obj.globals.set('rounds', n);
    return timeRuns(run, plan);
  };
  const [full, base] = alternate([rounds(ROUNDS), rounds(0)], passes);
  return Math.max(0, (full!.median - base!.median) / ROUNDS);
}

async function benchSuspend(
  plan: TimingPlan,
  passes: number,
  progress: (line: string) => void,
): Promise<Omit<CoroutinesReport, 'transmit' | 'kv'>> {
  const { vm, obj } = await open('coro_bench');
  const live = (): number => vm.coroutines.stats().live;
  progress('coroutines: round trip (task_work_schedule)');
  const defer = obj.program('roundtrip_defer');
  const roundTripDeferNs = roundTrip(obj, () => defer.runU32(CTX), plan, passes);
  progress('coroutines: round trip (yield + run)');
  const yieldProg = obj.program('roundtrip_yield');
  const roundTripYieldNs = roundTrip(
    obj,
    () => yieldProg.runU32(CTX) + vm.coroutines.run(),
    plan,
    passes,
  );
  progress('coroutines: coroutine vs callback');
  const time = (name: string) => (): NsSample => {
    const p = obj.program(name);
    return timeRuns(() => p.runU32(CTX), plan);
  };
  const [coro, lean, callback, plain] = alternate(
    [time('halves_coro'), time('halves_coro_lean'), time('halves_callback'), time('halves_plain')],
    passes,
  );
  const halves = { coro: coro!, lean: lean!, callback: callback!, plain: plain! };
  progress('coroutines: frame alloc + free');
  const allocFree = obj.program('alloc_free');
  const allocFreeNs = roundTrip(obj, () => allocFree.runU32(CTX), plan, passes);
  if (live() !== 0) throw new Error(`coroutines bench: ${live()} frames left live`);
  await vm.close();
  return {
    roundTripDeferNs,
    roundTripYieldNs,
    halves,
    allocFreeNs,
  };
}

/** An Ethernet + IPv4 frame of 64 bytes with DSCP `dscp`. */
function packet(dscp: number): Uint8Array {
  const p = new Uint8Array(64);
  p.set([0x08, 0x00, 0x45, dscp << 2], 12);
  return p;
}

async function benchTransmit(
  plan: TimingPlan,
  progress: (line: string) => void,
): Promise<CoroutinesReport['transmit']> {
  const { vm, obj } = await open('uc_transmit', {}, true);
  const pkts = [packet(46), packet(34), packet(0)];
  const classify = obj.program('classify');
  const worker = obj.program('tx_worker');
  const queues = ['tx_q0', 'tx_q1', 'tx_q2'].map((n) => obj.map(n));
  obj.globals.set(
    'tx_cfg',
    [0, 1, 2].map(() => ({ batch: 256, pad: 0, budget_ns: 0n })),
  );
  const hostDrain = (): number => queues.reduce((n, q) => n + vm.coroutines.drain(q), 0);
  const bpfDrain = (): number => {
    let n = 0;
    for (let r = worker.runU32(CTX); r > 0; r = worker.runU32(CTX)) n += r;
    return n;
  };
  const through =
    (drain: () => number) =>
    (n: number): number => {
      let x = 0;
      for (let i = 0; i < n; i++) {
        x += classify.runU32(pkts[i % 3]);
        if ((i + 1) % CHUNK === 0) x += drain();
      }
      return x + drain();
    };
  progress('coroutines: uc_transmit, host drain');
  const host = timeCpu(through(hostDrain), plan);
  progress('coroutines: uc_transmit, BPF worker drain');
  const bpf = timeCpu(through(bpfDrain), plan);
  // where the time goes: classify a chunk, then drain it
  const split = (drain: () => number): { classify: number; drain: number } => {
    const c: number[] = [];
    const d: number[] = [];
    for (let r = 0; r < 31; r++) {
      const t0 = cpuClock();
      for (let i = 0; i < CHUNK; i++) classify.runU32(pkts[i % 3]);
      const t1 = cpuClock();
      drain();
      const t2 = cpuClock();
      c.push(Number(t1 - t0) / CHUNK);
      d.push(Number(t2 - t1) / CHUNK);
    }
    return { classify: median(c), drain: median(d) };
  };
  const hostSplit = split(hostDrain);
  const bpfSplit = split(bpfDrain);
  if (vm.coroutines.stats().live !== 0) throw new Error('coroutines bench: transmit frames left');
  await vm.close();
  return {
    hostNsPerPacket: host.median,
    bpfNsPerPacket: bpf.median,
    classifyNsPerPacket: median([hostSplit.classify, bpfSplit.classify]),
    hostDrainNsPerPacket: hostSplit.drain,
    bpfDrainNsPerPacket: bpfSplit.drain,
  };
}

/** `struct kv_request`: a get (even ids) or a put (odd ids) of `size` entries. */
function kvRequest(id: number, size: number): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(0, id, true);
  v.setUint32(4, id % 2, true);
  v.setUint32(8, (id * 64) % 4096, true);
  v.setUint32(12, size, true);
  v.setBigUint64(16, BigInt(id), true);
  return b;
}

/** The q-quantile of ascending `xs` (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  return xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))] ?? Number.NaN;
}

/** Latency percentiles of `bursts` bursts served in `mode`. */
async function kvLatency(mode: 0 | 1, bursts: number, seed: number): Promise<LatencyFigures> {
  const { vm, obj } = await open('uc_kvstore');
  obj.globals.set('kv_mode', mode);
  obj.globals.set('kv_quantum', QUANTUM);
  const serve = obj.program('kv_serve');
  const records = obj.map('kv_reqs');
  let s = seed >>> 0 || 1;
  const rand = (n: number): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) % n;
  };
  const isLong: boolean[] = [];
  const burst = (first: number): void => {
    const long = rand(BURST);
    for (let k = 0; k < BURST; k++) {
      isLong[first + k] = k === long;
      serve.runU32(kvRequest(first + k, k === long ? LONG : SHORT));
    }
    vm.coroutines.run();
  };
  for (let b = 0; b < 8; b++) burst(b * BURST); // warm-up, overwritten below
  for (let b = 0; b < bursts; b++) burst(b * BURST);
  const short: number[] = [];
  const longs: number[] = [];
  const key = new Uint8Array(4);
  for (let id = 0; id < bursts * BURST; id++) {
    new DataView(key.buffer).setUint32(0, id, true);
    const v = new DataView(records.lookup(key)!.buffer);
    const ns = Number(v.getBigUint64(8, true) - v.getBigUint64(0, true));
    (isLong[id] === true ? longs : short).push(ns);
  }
  await vm.close();
  short.sort((a, b) => a - b);
  longs.sort((a, b) => a - b);
  return {
    shortP50: quantile(short, 0.5),
    shortP99: quantile(short, 0.99),
    longP50: quantile(longs, 0.5),
    longP99: quantile(longs, 0.99),
  };
}

async function benchKv(
  quick: boolean,
  progress: (line: string) => void,
): Promise<CoroutinesReport['kv']> {
  const bursts = quick ? 64 : 256;
  const reps = quick ? 1 : 5;
  const runs = async (mode: 0 | 1): Promise<LatencyFigures> => {
    const all: LatencyFigures[] = [];
    for (let r = 0; r < reps; r++) all.push(await kvLatency(mode, bursts, 0x9e3779b9 + r));
    const pick = (f: keyof LatencyFigures): number => median(all.map((x) => x[f]));
    return {
      shortP50: pick('shortP50'),
      shortP99: pick('shortP99'),
      longP50: pick('longP50'),
      longP99: pick('longP99'),
    };
  };
  progress('coroutines: uc_kvstore FCFS');
  const fcfs = await runs(0);
  progress('coroutines: uc_kvstore processor sharing');
  const ps = await runs(1);
  return { bursts, fcfs, ps };
}

/** Runs the section. */
export async function benchCoroutines(
  plan: TimingPlan,
  quick: boolean,
  progress: (line: string) => void,
): Promise<CoroutinesReport> {
  const suspend = await benchSuspend(plan, quick ? 1 : 3, progress);
  const transmit = await benchTransmit(plan, progress);
  const kv = await benchKv(quick, progress);
  return { ...suspend, transmit, kv };
}

const us = (ns: number): string => (ns / 1000).toFixed(ns < 10_000 ? 2 : 1);
const mpps = (nsPerPacket: number): string => (1000 / nsPerPacket).toFixed(2);

/** The section as text. */
export function formatCoroutines(r: CoroutinesReport): string {
  const h = r.halves;
  const ratio = h.coro.median / h.callback.median;
  const projected = (h.coro.median - r.allocFreeNs + CORO_TARGETS.frameAllocNs) / h.callback.median;
  const slowAlloc = r.allocFreeNs > CORO_TARGETS.frameAllocNs;
  const lines = [
    `JIT, unverified: the verifier refuses some of coro_bench's programs (halves_callback stores a pointer into a map, the loops are unbounded to it; test/verifier/objects.test.ts), so every program of a comparison runs the same way; CPU time; frame allocator: runtime`,
    '',
    formatTable(
      ['suspend + resume round trip', 'ns', 'target'],
      [
        [
          'task_work_schedule (deferred ring)',
          fmtNs(r.roundTripDeferNs),
          `≤ ${CORO_TARGETS.roundTripNs}`,
        ],
        ['yield + vm.coroutines.run()', fmtNs(r.roundTripYieldNs), '-'],
      ],
    ),
    '',
    formatTable(
      ['same logic, 2 × 8 array updates', 'ns/run', 'vs callback'],
      [
        ['coroutine (frame, suspend, resume)', fmtNs(h.coro.median), fmtRatio(ratio)],
        [
          'coroutine, lean final suspend',
          fmtNs(h.lean.median),
          fmtRatio(h.lean.median / h.callback.median),
        ],
        ['callback (state struct + callx)', fmtNs(h.callback.median), fmtRatio(1)],
        [
          'straight (no deferral)',
          fmtNs(h.plain.median),
          fmtRatio(h.plain.median / h.callback.median),
        ],
        ['frame alloc + free', fmtNs(r.allocFreeNs), '-'],
      ],
    ),
    '',
    `round trip: ${fmtNs(r.roundTripDeferNs)} ns (target ≤ ${CORO_TARGETS.roundTripNs} ns) ${verdict(r.roundTripDeferNs <= CORO_TARGETS.roundTripNs)}`,
    `coroutine / callback: ${fmtRatio(ratio)} (target ≤ ${CORO_TARGETS.ratio}×) ${verdict(ratio <= CORO_TARGETS.ratio)}`,
    ...(slowAlloc
      ? [
          `  with alloc + free at the ${CORO_TARGETS.frameAllocNs} ns frame allocator target instead of the ${fmtNs(r.allocFreeNs)} ns measured: ${fmtRatio(projected)} (projected)`,
        ]
      : []),
    '',
    formatTable(
      ['(b) uc_transmit (verified), 3 classes', 'ns/packet', 'Mpps', 'classify', 'drain'],
      [
        [
          'host drain',
          fmtNs(r.transmit.hostNsPerPacket),
          mpps(r.transmit.hostNsPerPacket),
          fmtNs(r.transmit.classifyNsPerPacket),
          fmtNs(r.transmit.hostDrainNsPerPacket),
        ],
        [
          'BPF worker (tx_worker)',
          fmtNs(r.transmit.bpfNsPerPacket),
          mpps(r.transmit.bpfNsPerPacket),
          fmtNs(r.transmit.classifyNsPerPacket),
          fmtNs(r.transmit.bpfDrainNsPerPacket),
        ],
      ],
    ),
    '',
    `(c) uc_kvstore: ${r.kv.bursts} bursts of ${BURST} requests (${BURST - 1} × ${SHORT} entries, 1 × ${LONG}), latency in µs, real time`,
    '(on a loaded machine the p99 columns include the time slices other processes took)',
    formatTable(
      ['scheduler', 'short p50', 'short p99', 'long p50', 'long p99'],
      [
        [
          'FCFS',
          us(r.kv.fcfs.shortP50),
          us(r.kv.fcfs.shortP99),
          us(r.kv.fcfs.longP50),
          us(r.kv.fcfs.longP99),
        ],
        [
          `processor sharing (${QUANTUM} steps)`,
          us(r.kv.ps.shortP50),
          us(r.kv.ps.shortP99),
          us(r.kv.ps.longP50),
          us(r.kv.ps.longP99),
        ],
      ],
    ),
  ];
  return lines.join('\n');
}
