/**
 * Fast-path termination (issue 8 §6, notes/fast-path-termination.md):
 *
 * 1. Overhead when nothing is terminated. Terminable helper calls against direct calls of the
 *    same helpers (`helperCalls: 'direct'`), on a helper-heavy program (1000 map lookups per
 *    run) and on the corpus: 'patchable' (`call_indirect` through the program's block, which a
 *    termination swaps) and 'flag-check', the default (the same, plus a check of the thread's
 *    engaged block before each call of a helper with a constant fast path); plus the per-run
 *    bookkeeping termination adds to every run without a deadline (runU32's common path: the
 *    running program set and cleared, the engaged flag read). Target ≤ 2 %.
 * 2. Latency from the request to the end of the run: a program in bpf_loop(1 << 23, …) asked to
 *    stop from inside a callback and by a deadline, and a chain of 2000 helper calls asked to
 *    stop after the first. Target ≤ 10 µs.
 * 3. The two alternatives the talk weighs, side by side with the fast path: a flag check before
 *    every helper call (its cost when nothing is terminated is 'flag-check' in 1., which we
 *    made the default: in V8 it costs ≈ 1 % over direct calls and halves a run-down through
 *    many call sites; the chain in 2. is timed both ways), and a kill that abandons the program (a
 *    kfunc throws out of the run): its latency, and the resources it leaks where the fast path
 *    leaks none.
 */

import { assembleProgram } from '../src/asm/assembler.js';
import { TerminationError } from '../src/errors.js';
import type { HelperCallMode } from '../jit/compile.js';
import type { LoadedProgram } from '../runtime/loaded-program.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_RINGBUF } from '../runtime/maps/map-type.js';
import type { ResourceCounts } from '../runtime/resources.js';
import { Vm } from '../runtime/vm.js';
import { CORPUS_PROGRAMS, loadCorpusProgram, loadPacket, type CorpusCpu } from './corpus.js';
import { fmtNs, formatTable, verdict } from './table.js';
import { median, timeTask, type TimingPlan } from './timing.js';

/** Targets of issue 8 §6. */
export const TERMINATION_TARGETS = { overheadPct: 2, latencyUs: 10 } as const;

const LOOKUPS = 1000;
const CHAIN = 2000;

/** One row of the overhead table. */
export interface OverheadRow {
  readonly name: string;
  readonly direct: number;
  readonly patchable: number;
  readonly flagCheck: number | undefined;
}

/**
 * One latency figure, in ns: the first request of a fresh program (cold code: V8 has not
 * optimised the termination path yet), then median and range over samples taken after
 * LATENCY_WARMUP untimed ones.
 */
export interface Latency {
  readonly name: string;
  readonly first: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** Untimed terminations before the samples of a latency figure, and the least time they take. */
const LATENCY_WARMUP = 100;
const LATENCY_WARMUP_MS = 150;

/** One way of stopping a resource-holding program, and what it leaves behind. */
export interface StopRow {
  readonly name: string;
  readonly latency: number;
  readonly reportedAs: string;
  readonly after: ResourceCounts;
}

/** The section's figures. */
export interface TerminationReport {
  readonly overhead: readonly OverheadRow[];
  /** ns the enter/exit bookkeeping of termination adds to one run. */
  readonly bookkeepingNs: number;
  /** ns per bpf_loop callback: inlined by the JIT, and through the runtime helper. */
  readonly bpfLoop: { readonly inlined: number; readonly helper: number };
  readonly latency: readonly Latency[];
  readonly stops: readonly StopRow[];
}

/** 1000 lookups of array key (i & 63) per run (loaded unverified: its hit counter makes 1000 states). */
const LOOKUP_LOOP = `
    mov %r6, 0
    mov %r7, 0
  loop:
    mov %r1, %r6
    and %r1, 63
    stxw [%r10-4], %r1
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, +1
    add %r7, 1
    add %r6, 1
    jlt %r6, ${LOOKUPS}, loop
    mov %r0, %r7
    exit`;

/** Callbacks per run of SUM_LOOP. */
const SUM_LOOP_N = 4096;

/** bpf_loop(SUM_LOOP_N, cb, &sum): the callback adds its index to a sum on the caller's stack. */
const SUM_LOOP = `
    stdw [%r10-8], 0
    mov %r1, ${SUM_LOOP_N}
    lddw %r2, func cb
    mov %r3, %r10
    add %r3, -8
    mov %r4, 0
    call 181
    ldxdw %r0, [%r10-8]
    exit
  cb:
    ldxdw %r3, [%r2]
    add %r3, %r1
    stxdw [%r2], %r3
    mov %r0, 0
    exit`;

/** bpf_loop(1 << 23, cb): the callback calls kfunc#0 (test_stop) and returns 0. */
const BIG_LOOP = `
    mov %r1, 8388608
    lddw %r2, func cb
    mov %r3, 0
    mov %r4, 0
    call 181
    exit
  cb:
    call kfunc 0
    mov %r0, 0
    exit`;

/**
 * kfunc#0 (test_stop), then CHAIN map lookups; with `hold`, a ring-buffer record is held across
 * them (the program must then run down instead of being abandoned).
 */
function chain(hold: boolean): string {
  const one = `stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1`;
  const body = `call kfunc 0\n${Array.from({ length: CHAIN }, () => one).join('\n')}`;
  if (!hold) return `${body}\nmov %r0, 0\nexit`;
  return `lddw %r1, map_fd 2
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r8, %r0
    ${body}
    mov %r1, %r8
    mov %r2, 0
    call 133
  out:
    mov %r0, 0
    exit`;
}

/**
 * Reserve two ring-buffer records, take and release a checked lock around a counter, call
 * kfunc#0 (test_stop) holding the records, release them.
 */
const HOLDER = `
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    mov %r9, %r0
    lddw %r1, map_fd 2
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r7, %r0
    lddw %r1, map_fd 2
    mov %r2, 16
    mov %r3, 0
    call 131
    jeq %r0, 0, drop7
    mov %r8, %r0
    mov %r1, %r9
    call kfunc 1
    jne %r0, 0, unlocked
    ldxdw %r1, [%r9+8]
    add %r1, 1
    stxdw [%r9+8], %r1
    mov %r1, %r9
    call kfunc 2
  unlocked:
    call kfunc 0
    mov %r1, %r8
    mov %r2, 0
    call 132
  drop7:
    mov %r1, %r7
    mov %r2, 0
    call 133
  out:
    mov %r0, 0
    exit`;

/** The test's maps, by the number its programs write in `map_fd N` (1-based). */
const benchMaps = new WeakMap<Vm, readonly { readonly id: number }[]>();

/**
 * A Vm with an array map (`map_fd 1`) and a ring buffer (`map_fd 2`), and the kfunc test_stop
 * calling `stop`.
 */
function makeVm(stop: () => void): Vm {
  const vm = Vm.create();
  const arr = vm.createMap({
    name: 'arr',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 16,
    maxEntries: 64,
  });
  const rb = vm.createMap({
    name: 'rb',
    type: BPF_MAP_TYPE_RINGBUF,
    keySize: 0,
    valueSize: 0,
    // never consumed: every record a run reserves (and discards) stays until the Vm closes
    maxEntries: 1 << 20,
  });
  vm.registerKfunc({ name: 'test_stop', fn: () => (stop(), 0n) });
  benchMaps.set(vm, [arr, rb]);
  return vm;
}

/** The kfunc names of `asm`'s `call kfunc N` insns: 0 test_stop, 1/2 the checked lock. */
function kfuncNames(prog: ReturnType<typeof assembleProgram>) {
  const names = ['test_stop', 'bpf_res_spin_lock', 'bpf_res_spin_unlock'];
  const out = new Map<number, { name: string; weak: boolean }>();
  prog.insns.forEach((i, idx) => {
    if (prog.ops[idx]?.kind === 'call' && i.src === 2)
      out.set(idx, { name: names[i.imm] ?? 'test_stop', weak: false });
  });
  return out;
}

async function load(
  vm: Vm,
  asm: string,
  mode: HelperCallMode = 'flag-check',
  verify = true,
): Promise<LoadedProgram> {
  // the Vm's own maps (coroutine queues) come first: `map_fd N` is the bench's N-th map
  const maps = benchMaps.get(vm) ?? [];
  const prog = assembleProgram(
    asm.replace(/map_fd (\d+)/g, (_, n: string) => `map_fd ${maps[Number(n) - 1]?.id ?? n}`),
  );
  return vm.load(prog, { helperCalls: mode, kfuncs: kfuncNames(prog), verify });
}

/**
 * Median ns per iteration of each task, timed in interleaved rounds (A B C A B C ...) with the
 * same iteration count, so that the machine's load drifts over all of them alike.
 */
function interleaved(tasks: readonly ((n: number) => number)[], plan: TimingPlan): number[] {
  const n = timeTask(tasks[0] as (n: number) => number, plan).iterations;
  for (const t of tasks.slice(1)) timeTask(t, { ...plan, rounds: 1 });
  const per: number[][] = tasks.map(() => []);
  let sink = 0;
  for (let r = 0; r < plan.rounds * 2; r++) {
    tasks.forEach((t, k) => {
      const t0 = process.hrtime.bigint();
      sink += t(n);
      (per[k] as number[]).push(Number(process.hrtime.bigint() - t0) / n);
    });
  }
  if (sink === -1) throw new Error('unreachable');
  return per.map((xs) => median(xs));
}

function runsOf(p: LoadedProgram, len = 0) {
  return (n: number): number => {
    let x = 0;
    for (let k = 0; k < n; k++) x += p.runU32(len);
    return x;
  };
}

async function overhead(plan: TimingPlan, cpu: CorpusCpu, progress: (l: string) => void) {
  const rows: OverheadRow[] = [];
  const vm = makeVm(() => undefined);
  progress('termination: helper-heavy program, three call modes');
  const modes = ['direct', 'patchable', 'flag-check'] as const;
  const progs = await Promise.all(modes.map((mode) => load(vm, LOOKUP_LOOP, mode, false)));
  const [d, p, f] = interleaved(
    progs.map((q) => runsOf(q)),
    plan,
  ).map((x) => x / LOOKUPS);
  rows.push({
    name: `${LOOKUPS} map lookups (ns/lookup)`,
    direct: d ?? NaN,
    patchable: p ?? NaN,
    flagCheck: f,
  });
  const packet = loadPacket();
  for (const name of CORPUS_PROGRAMS) {
    progress(`termination: corpus ${name}`);
    const trio = await Promise.all(
      modes.map((mode) => vm.load(loadCorpusProgram(name, 'xdp', cpu), { helperCalls: mode })),
    );
    for (const q of trio) q.input.set(packet);
    const [nd, np, nf] = interleaved(
      trio.map((q) => runsOf(q, packet.length)),
      plan,
    );
    rows.push({ name, direct: nd ?? NaN, patchable: np ?? NaN, flagCheck: nf });
  }
  // the bookkeeping every run without a deadline pays: LoadedProgram.runU32 (its termination
  // checks around the run; the entry's store of the running program is inside both) against
  // the same run without them, on a program that does nothing
  const nop = await vm.load(assembleProgram('mov %r0, 0\nexit'), { verify: false });
  const bare = (nop as unknown as { runOnce: (input: number) => number }).runOnce.bind(nop);
  const loop =
    (run: (input: number) => number) =>
    (n: number): number => {
      let x = 0;
      for (let k = 0; k < n; k++) x += run(0);
      return x;
    };
  const withChecks: number[] = [];
  const without: number[] = [];
  for (let pass = 0; pass < 3; pass++) {
    withChecks.push(
      timeTask(
        loop((i) => nop.runU32(i)),
        plan,
      ).median,
    );
    without.push(timeTask(loop(bare), plan).median);
  }
  const book = { median: Math.max(0, median(withChecks) - median(without)) };
  // bpf_loop: inlined by the JIT (a verified program; the termination flag read before every
  // callback) against the runtime helper (the same program unverified: JS calls each callback)
  progress('termination: bpf_loop inlined against the helper');
  const loops = await Promise.all(
    [true, false].map((verify) => vm.load(assembleProgram(SUM_LOOP, { type: 'mem' }), { verify })),
  );
  const [inlined, helper] = interleaved(
    loops.map((q) => runsOf(q)),
    { ...plan, rounds: Math.max(3, plan.rounds >> 1) },
  ).map((x) => x / SUM_LOOP_N);
  await vm.close();
  return {
    rows,
    bookkeepingNs: book.median,
    bpfLoop: { inlined: inlined ?? NaN, helper: helper ?? NaN },
  };
}

/**
 * The first run of `one` (each returns ns), then median, min and max of `samples` runs after
 * `warmup` untimed ones, and at least LATENCY_WARMUP_MS of them (notes/wasm-platform.md §7:
 * V8 replaces Liftoff code with TurboFan code after about 100 ms of hot calls; a figure taken
 * before that measures the baseline compiler, 2–3.5× slower).
 */
function sampleNs(
  name: string,
  samples: number,
  one: () => number,
  warmup = LATENCY_WARMUP,
): Latency {
  const first = one();
  warmFor(one, warmup);
  const xs = Array.from({ length: samples }, one);
  return { name, first, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

/** Runs `one` at least `times` times and, when `times` is LATENCY_WARMUP, LATENCY_WARMUP_MS. */
function warmFor(one: () => unknown, times: number): void {
  const until = Date.now() + (times >= LATENCY_WARMUP ? LATENCY_WARMUP_MS : 0);
  for (let k = 0; k < times || Date.now() < until; k++) one();
}

async function latency(samples: number, progress: (l: string) => void): Promise<Latency[]> {
  const out: Latency[] = [];
  let t0 = 0n;
  let calls = 0;
  let stopAt = 1000;
  const vm = makeVm(() => {
    if (++calls === stopAt) {
      t0 = process.hrtime.bigint();
      vm.terminate();
    }
  });
  const stopped = (p: LoadedProgram, opts?: { deadlineNs: number }): bigint => {
    try {
      p.run(undefined, opts);
    } catch (e) {
      if (e instanceof TerminationError) return process.hrtime.bigint();
      throw e;
    }
    throw new Error('termination bench: the run was not terminated');
  };
  progress('termination: latency, bpf_loop(1 << 23) stopped from a callback');
  const big = await load(vm, BIG_LOOP);
  out.push(
    sampleNs('bpf_loop(1 << 23): request in callback 1000 → run returns', samples, () => {
      calls = 0;
      return Number(stopped(big) - t0);
    }),
  );
  progress('termination: latency, bpf_loop(1 << 23) at a deadline');
  stopAt = -1;
  out.push(
    sampleNs(
      'bpf_loop(1 << 23): deadline 2 ms → run returns (overshoot)',
      samples,
      () => {
        const start = process.hrtime.bigint();
        return Number(stopped(big, { deadlineNs: 2_000_000 }) - start) - 2_000_000;
      },
      10,
    ),
  );
  progress('termination: latency, a chain of helper calls');
  stopAt = 1;
  for (const [hold, mode] of [
    [false, 'flag-check'],
    [true, 'flag-check'],
    [true, 'patchable'],
  ] as const) {
    const p = await load(vm, chain(hold), mode);
    const what = hold ? 'holding a record: runs down' : 'holding nothing: abandoned';
    // the chain's own run time, for comparison (test_stop does nothing), warm as the samples
    stopAt = -1;
    const whole = (): number => {
      const t = process.hrtime.bigint();
      p.run();
      return Number(process.hrtime.bigint() - t);
    };
    warmFor(whole, LATENCY_WARMUP);
    const wholeNs = median(Array.from({ length: samples }, whole));
    stopAt = 1;
    out.push(
      sampleNs(`${CHAIN} lookups, ${what} (${mode}; whole run ${fmtNs(wholeNs)})`, samples, () => {
        calls = 0;
        return Number(stopped(p) - t0);
      }),
    );
  }
  await vm.close();
  return out;
}

/** Stops HOLDER inside its critical section's neighbourhood, three ways. */
async function stops(samples: number, progress: (l: string) => void): Promise<StopRow[]> {
  progress('termination: fast path against abandoning the program');
  const rows: StopRow[] = [];
  for (const how of ['fast path', 'abandon (kill)'] as const) {
    let t0 = 0n;
    let first = true;
    const vm = makeVm(() => {
      if (!first) return;
      first = false;
      t0 = process.hrtime.bigint();
      if (how === 'fast path') vm.terminate();
      else throw new Error('killed');
    });
    const p = await load(vm, HOLDER);
    const xs: number[] = [];
    let reportedAs = '';
    let after: ResourceCounts | undefined;
    for (let s = 0; s < samples; s++) {
      first = true;
      try {
        p.run();
        reportedAs = 'r0 (not stopped)';
      } catch (e) {
        xs.push(Number(process.hrtime.bigint() - t0));
        reportedAs =
          e instanceof TerminationError ? `TerminationError (${e.reason})` : `${(e as Error).name}`;
      }
      after ??= vm.resources();
    }
    rows.push({ name: how, latency: median(xs), reportedAs, after: after ?? vm.resources() });
    // what `samples` runs left behind in total
    rows.push({
      name: `${how}, after ${samples} runs`,
      latency: NaN,
      reportedAs: '',
      after: vm.resources(),
    });
    await vm.close();
  }
  return rows;
}

/** Runs the section. */
export async function benchTermination(
  plan: TimingPlan,
  cpu: CorpusCpu,
  quick: boolean,
  progress: (line: string) => void,
): Promise<TerminationReport> {
  const samples = quick ? 7 : 21;
  const o = await overhead(plan, cpu, progress);
  return {
    overhead: o.rows,
    bookkeepingNs: o.bookkeepingNs,
    bpfLoop: o.bpfLoop,
    latency: await latency(samples, progress),
    stops: await stops(samples, progress),
  };
}

const pct = (a: number, b: number): string => `${(((b - a) / a) * 100).toFixed(1)} %`;

/** The section as text. */
export function formatTermination(r: TerminationReport): string {
  const lookups = r.overhead[0];
  const corpus = r.overhead.slice(1);
  const over = (x: number | undefined): number =>
    lookups === undefined || x === undefined ? NaN : ((x - lookups.direct) / lookups.direct) * 100;
  const flagPct = over(lookups?.flagCheck);
  const patchPct = over(lookups?.patchable);
  const requests = r.latency.filter((l) => !l.name.includes('deadline'));
  const worstLatency = Math.max(...requests.map((l) => l.median));
  const worstFirst = Math.max(...requests.map((l) => l.first));
  const res = (c: ResourceCounts): string =>
    `${c.reservations} reservations, ${c.locks_held} locks, ${c.live_objects} objects`;
  return [
    "Overhead when nothing is terminated (JIT, ns/run unless noted): direct helper calls (not terminable) vs patchable (call_indirect through the program's block, which termination swaps) vs flag-check, the default (the same calls, and before each call of a helper with a constant fast path a check of the thread's engaged block)",
    '',
    formatTable(
      ['program', 'direct', 'patchable', 'overhead', 'flag-check (default)', 'overhead'],
      r.overhead.map((o) => [
        o.name,
        fmtNs(o.direct),
        fmtNs(o.patchable),
        pct(o.direct, o.patchable),
        fmtNs(o.flagCheck),
        o.flagCheck === undefined ? '-' : pct(o.direct, o.flagCheck),
      ]),
    ),
    '',
    `per-run bookkeeping of termination (runU32 against the bare run, nop program): ${fmtNs(r.bookkeepingNs)} ns, ${corpus.map((c) => `${c.name} ${((r.bookkeepingNs / c.patchable) * 100).toFixed(1)} %`).join(', ')}`,
    `bpf_loop per callback (a trivial one): inlined by the JIT ${fmtNs(r.bpfLoop.inlined)} ns (the termination flag read before each), through the runtime helper ${fmtNs(r.bpfLoop.helper)} ns`,
    `terminable calls on the helper-heavy program against direct calls: flag-check (default) ${flagPct.toFixed(1)} % ${verdict(flagPct <= TERMINATION_TARGETS.overheadPct)}, patchable ${patchPct.toFixed(1)} % ${verdict(patchPct <= TERMINATION_TARGETS.overheadPct)} (target ≤ ${TERMINATION_TARGETS.overheadPct} %)`,
    '',
    `Latency from the request to the run returning (ns): "first" is the first request to a fresh program (cold code); median, min and max are over the samples taken after ${LATENCY_WARMUP} untimed requests and at least ${LATENCY_WARMUP_MS} ms of them (10 requests for the deadline)`,
    '',
    formatTable(
      ['what', 'first', 'median', 'min', 'max'],
      r.latency.map((l) => [l.name, fmtNs(l.first), fmtNs(l.median), fmtNs(l.min), fmtNs(l.max)]),
    ),
    '',
    `worst median request → exit: ${fmtNs(worstLatency)} ns (target ≤ ${TERMINATION_TARGETS.latencyUs} µs) ${verdict(worstLatency <= TERMINATION_TARGETS.latencyUs * 1000)}; worst first request (cold): ${fmtNs(worstFirst)} ns`,
    '',
    'Stopping a program that holds 2 ringbuf records, side by side (a kill from a kfunc cannot land inside a lock section: the verifier forbids calls there)',
    '',
    formatTable(
      ['how', 'latency ns', 'reported as', 'left behind'],
      r.stops.map((s) => [s.name, fmtNs(s.latency), s.reportedAs, res(s.after)]),
    ),
  ].join('\n');
}
