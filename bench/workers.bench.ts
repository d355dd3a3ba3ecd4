/**
 * Workers (issue #6 item 7): packets per second of corpus XDP programs over a stream of packets
 * on 1 and on 2 worker threads of one Vm, and their ratio (target: 2 workers ≥ 1.8× of 1 where
 * the machine has two free cores); and the rate of hash map updates from BPF when 1 and 2
 * workers update the same 8 keys.
 *
 * Dispatch is what the runtime offers: each worker gets its own stream (PACKETS distinct
 * packet buffers, copies of packet.bin, replayed by `prepareRepeatBatch` to about REQUEST_MS of
 * work) and runs it as one request (`runBatchOn`): the loop over packets is inside Wasm and the
 * verdicts land in shared memory, so a request costs one doorbell and one wake-up however many
 * packets it carries. A round
 * queues enough requests on each worker to last about 10 × `roundMs` (at least 100 ms) on one
 * worker; 1- and 2-worker rounds
 * alternate so that both see the same machine load, and the medians are reported.
 */

import { assembleProgram } from '../src/asm/assembler.js';
import type { Batch, LoadedProgram } from '../runtime/loaded-program.js';
import { BPF_MAP_TYPE_HASH } from '../runtime/maps/map-type.js';
import { Vm } from '../runtime/vm.js';
import { loadCorpusProgram, loadExpected, loadPacket, type CorpusName } from './corpus.js';
import { fmtNs, fmtRatio, formatTable, verdict } from './table.js';
import { median, type TimingPlan } from './timing.js';

/** Distinct packet buffers in each worker's stream. */
const PACKETS = 1024;
/** What one request should last on one worker (ms): long enough to hide the wake-up. */
const REQUEST_MS = 5;
/** Updates one run of the update program makes. */
const UPDATES = 1000;
/** Target ratio of 2-worker to 1-worker throughput. */
export const WORKERS_TARGET = 1.8;
/** The corpus programs measured (XDP entry, -mcpu=v3). */
const PROGRAMS: readonly CorpusName[] = ['p2_parse', 'p3_sum'];

/** Rates of one workload on 1 and 2 workers (per second, medians over rounds). */
export interface ScalingFigures {
  readonly name: string;
  /** What is counted: packets or map updates. */
  readonly unit: string;
  readonly perRequest: number;
  readonly one: number;
  readonly two: number;
  /** two / one (medians). */
  readonly ratio: number;
  readonly rounds: number;
  readonly oneRange: readonly [number, number];
  readonly twoRange: readonly [number, number];
  /**
   * Cores the process got during the rounds (CPU time of all its threads / wall time,
   * medians): on a busy machine, with Linux's autogroup fairness, a second thread need not
   * bring a second core, and this says whether it did.
   */
  readonly coresOne: number;
  readonly coresTwo: number;
}

/** The section's figures. */
export interface WorkersReport {
  readonly programs: readonly ScalingFigures[];
  readonly updates: ScalingFigures;
}

/**
 * Times `rounds` alternating rounds of `requests` requests per worker on 1 and on 2 workers;
 * `count` is what one request does (packets, updates). `batches[w]` is worker w's.
 */
async function scaling(
  name: string,
  unit: string,
  prog: LoadedProgram,
  batches: readonly Batch[],
  count: number,
  plan: TimingPlan,
): Promise<ScalingFigures> {
  // rounds of at least 100 ms: a request's wake-up costs tens of µs on a loaded machine
  const roundMs = Math.max(100, plan.roundMs * 10);
  const cores: Record<1 | 2, number[]> = { 1: [], 2: [] };
  const round = async (workers: 1 | 2, requests: number): Promise<number> => {
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await Promise.all(
      batches
        .slice(0, workers)
        .flatMap((b, w) => Array.from({ length: requests }, () => prog.runBatchOn(w, b))),
    );
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(cpu0);
    cores[workers].push(((cpu.user + cpu.system) * 1000) / ns);
    return ns;
  };
  // warm up both workers, then size a round to plan.roundMs on one worker
  const warmEnd = performance.now() + plan.warmupMs;
  while (performance.now() < warmEnd) await round(2, 1);
  const perRequest = (await round(1, 4)) / 4;
  const requests = Math.max(2, Math.round((roundMs * 1e6) / perRequest));
  cores[1].length = 0;
  cores[2].length = 0;
  const one: number[] = [];
  const two: number[] = [];
  for (let r = 0; r < plan.rounds; r++) {
    one.push((requests * count * 1e9) / (await round(1, requests)));
    two.push((2 * requests * count * 1e9) / (await round(2, requests)));
  }
  const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
  return {
    name,
    unit,
    perRequest: count,
    one: median(one),
    two: median(two),
    ratio: median(two) / median(one),
    rounds: plan.rounds,
    oneRange: range(one),
    twoRange: range(two),
    coresOne: median(cores[1]),
    coresTwo: median(cores[2]),
  };
}

/** One corpus program over PACKETS copies of packet.bin per worker; checks every verdict. */
async function benchProgram(
  vm: Vm,
  name: CorpusName,
  plan: TimingPlan,
  expected: number,
): Promise<ScalingFigures> {
  const prog = await vm.load(loadCorpusProgram(name, 'xdp', 'v3'));
  const packet = loadPacket();
  // size a request from the host thread's speed
  const probe = prog.prepareRepeatBatch(packet, 256);
  prog.runBatch(probe);
  const t0 = process.hrtime.bigint();
  prog.runBatch(probe);
  const nsPerPacket = Number(process.hrtime.bigint() - t0) / 256;
  prog.releaseBatch(probe);
  const count = Math.max(PACKETS, Math.round((REQUEST_MS * 1e6) / nsPerPacket));
  const stream = Array.from({ length: PACKETS }, () => packet.slice());
  const batches = [0, 1].map(() => prog.prepareRepeatBatch(stream, count));
  try {
    for (const [w, b] of batches.entries()) {
      const r0 = await prog.runBatchOn(w, b);
      const wrong = r0.findIndex((r) => r !== expected);
      if (wrong >= 0)
        throw new Error(`workers bench: ${name} packet ${wrong} on worker ${w} gave ${r0[wrong]}`);
    }
    return await scaling(name, 'packets', prog, batches, count, plan);
  } finally {
    for (const b of batches) prog.releaseBatch(b);
  }
}

/** bpf_map_update_elem(BPF_ANY) of keys i & 7 into one 8-key hash map, UPDATES per run. */
async function benchUpdates(vm: Vm, plan: TimingPlan): Promise<ScalingFigures> {
  const m = vm.createMap({
    name: 'hot',
    type: BPF_MAP_TYPE_HASH,
    keySize: 8,
    valueSize: 8,
    maxEntries: 64,
  });
  const prog = await vm.load(
    assembleProgram(`
      mov %r6, 0
      mov %r7, 0
    loop:
      mov %r1, %r6
      and %r1, 7
      stxdw [%r10-8], %r1
      stxdw [%r10-16], %r6
      lddw %r1, map_fd ${m.id}
      mov %r2, %r10
      add %r2, -8
      mov %r3, %r10
      add %r3, -16
      mov %r4, 0
      call 2
      jne %r0, 0, +1
      add %r7, 1
      add %r6, 1
      jlt %r6, ${UPDATES}, loop
      mov %r0, %r7
      exit`),
    { verify: false },
  );
  const runs = 64;
  const batches = [0, 1].map(() => prog.prepareRepeatBatch(new Uint8Array(8), runs));
  try {
    const r0 = await prog.runBatchOn(0, batches[0] as Batch);
    if (r0.some((r) => r !== UPDATES))
      throw new Error(`workers bench: an update failed (${r0.find((r) => r !== UPDATES)} ok)`);
    return await scaling(
      'hash update, 8 shared keys',
      'updates',
      prog,
      batches,
      runs * UPDATES,
      plan,
    );
  } finally {
    for (const b of batches) prog.releaseBatch(b);
  }
}

/** Measures the section on a Vm with 2 workers. */
export async function benchWorkers(
  plan: TimingPlan,
  progress: (line: string) => void,
): Promise<WorkersReport> {
  const vm = Vm.create({ workers: 2 });
  try {
    await vm.workers?.ready();
    const expected = loadExpected();
    const programs: ScalingFigures[] = [];
    for (const name of PROGRAMS) {
      progress(`workers: ${name}`);
      programs.push(await benchProgram(vm, name, plan, expected.get(name) ?? -1));
    }
    progress('workers: hash updates');
    return { programs, updates: await benchUpdates(vm, plan) };
  } finally {
    await vm.close();
  }
}

function perSec(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

/** The section as text. */
export function formatWorkers(r: WorkersReport): string {
  const row = (f: ScalingFigures): string[] => [
    f.name,
    `${perSec(f.one)}/s`,
    `${perSec(f.two)}/s`,
    fmtRatio(f.ratio),
    `${perSec(f.oneRange[0])}–${perSec(f.oneRange[1])}`,
    `${perSec(f.twoRange[0])}–${perSec(f.twoRange[1])}`,
    fmtNs(1e9 / f.one),
    `${f.coresOne.toFixed(2)} / ${f.coresTwo.toFixed(2)}`,
  ];
  const all = [...r.programs, r.updates];
  const rounds = r.updates.rounds;
  return [
    `JIT, one Vm with 2 worker threads; per request: a stream of ${PACKETS} packets (copies of packet.bin, xdp entry) replayed to ~${REQUEST_MS} ms (${r.programs.map((f) => `${f.name} ${f.perRequest}`).join(', ')} packets), or 64 runs of ${UPDATES} updates; medians of ${rounds} alternating 1-/2-worker rounds`,
    '',
    formatTable(
      [
        'workload',
        '1 worker',
        '2 workers',
        '2/1',
        '1w range',
        '2w range',
        'ns/item (1w)',
        'cores got (1w / 2w)',
      ],
      all.map(row),
    ),
    '',
    ...r.programs.map(
      (f) =>
        `${f.name}: 2 workers ${fmtRatio(f.ratio)} of 1 (target ≥ ${WORKERS_TARGET}×) ${verdict(f.ratio >= WORKERS_TARGET)}`,
    ),
    `hash updates under contention: ${perSec(r.updates.one)}/s on 1 worker, ${perSec(r.updates.two)}/s on 2 (${fmtRatio(r.updates.ratio)})`,
    'cores got: CPU time of the process (all threads, the host included) per wall second in those rounds; 2 workers can only beat 1 when the second figure is near 2',
  ].join('\n');
}
