/**
 * The frame allocator (issue #7 item 1): ns per allocation + free pair. From BPF on the JIT,
 * single-threaded Vm: each run makes PAIRS pairs in a bounded loop, `bpf_obj_new_impl(64)` +
 * `bpf_obj_drop_impl`, and `bpf_coro_frame_alloc(64)` + `bpf_coro_frame_free`; the same loop
 * without the calls is the baseline subtracted. For comparison, the host path
 * (`vm.allocator.alloc` + `free`, one JS→Wasm call each), on the single-threaded build and on
 * the shared-memory build that a Vm with workers runs (atomic accounts and owner entries).
 * Target: ≤ 10 ns per pair on the JIT path.
 */

import { assembleProgram } from '../src/asm/assembler.js';
import { heapBase, WASM_PAGE, workerLayout } from '../src/abi.js';
import { initFrameAlloc, type FrameAllocator } from '../runtime/frame-alloc.js';
import { instantiateRt } from '../runtime/rt.js';
import { Vm } from '../runtime/vm.js';
import { fmtNs, formatTable, verdict } from './table.js';
import { timeTask, type NsSample, type TimingPlan } from './timing.js';

const PAIRS = 1000;
/**
 * Pairs per run of the verified loops: the verifier walks a loop iteration by iteration, and
 * a few dozen iterations keep that quick; the per-run cost is the baseline's, subtracted.
 */
const VERIFIED_PAIRS = 32;
const SIZE = 64;

/** Target in ns per alloc+free pair from BPF. */
export const ALLOC_TARGET_NS = 10;

/** The section's figures. */
export interface AllocReport {
  readonly pairsPerRun: number;
  readonly size: number;
  readonly baseline: NsSample;
  readonly objNew: NsSample;
  readonly coroFrame: NsSample;
  /** Two calls of an empty runtime-module function, per iteration. */
  readonly calls: NsSample;
  /** ns per pair, baseline subtracted. */
  readonly objNewNs: number;
  readonly coroFrameNs: number;
  /**
   * The same from verified programs (the default way to load), VERIFIED_PAIRS pairs a run: the
   * JIT knows the constant size and works out the size class when it compiles.
   */
  readonly objNewVerifiedNs: number;
  readonly coroFrameVerifiedNs: number;
  readonly callsNs: number;
  /** Host path, ns per pair (single-threaded build, shared-memory build). */
  readonly hostNs: number;
  readonly hostSharedNs: number;
}

function loop(body: string, pairs = PAIRS): string {
  return `
    mov %r6, 0
    mov %r7, 0
  loop:
    ${body}
    add %r6, 1
    jlt %r6, ${pairs}, loop
    mov %r0, %r7
    exit`;
}

/** Loop bodies and the insn index of each kfunc call in the whole program. */
const BODIES = {
  baseline: { text: 'mov %r1, 64\nmov %r2, 0\nadd %r7, 1', calls: [] as [number, string][] },
  objNew: {
    text: `mov %r1, ${SIZE}\nmov %r2, 0\ncall kfunc 0\njeq %r0, 0, +4\nadd %r7, 1\nmov %r1, %r0\nmov %r2, 0\ncall kfunc 0`,
    calls: [
      [4, 'bpf_obj_new_impl'],
      [9, 'bpf_obj_drop_impl'],
    ] as [number, string][],
  },
  /** Two calls of a runtime-module function that returns at once: the cost of the calls alone. */
  calls: {
    text: `mov %r1, ${SIZE}\nmov %r2, 0\ncall kfunc 0\njne %r0, 0, +4\nadd %r7, 1\nmov %r1, %r0\nmov %r2, 0\ncall kfunc 0`,
    calls: [
      [4, 'bench_nop'],
      [9, 'bench_nop'],
    ] as [number, string][],
  },
  coroFrame: {
    text: `mov %r1, ${SIZE}\nmov %r2, 0\ncall kfunc 0\njeq %r0, 0, +4\nadd %r7, 1\nmov %r1, %r0\nmov %r2, 0\ncall kfunc 0`,
    calls: [
      [4, 'bpf_coro_frame_alloc'],
      [9, 'bpf_coro_frame_free'],
    ] as [number, string][],
  },
};

function hostPairs(a: FrameAllocator, plan: TimingPlan): NsSample {
  return timeTask((n) => {
    let x = 0;
    for (let k = 0; k < n; k++) {
      const p = a.alloc(SIZE);
      x += p;
      a.free(p);
    }
    return x;
  }, plan);
}

/** The host path on the shared-memory build of the runtime module. */
function sharedAllocator(): FrameAllocator {
  const memory = new WebAssembly.Memory({ initial: 160, maximum: 160, shared: true });
  let top = heapBase(2);
  const rt = instantiateRt(memory, 0, () => -22n);
  const alloc = (bytes: number): number => {
    const p = top;
    top += Math.ceil(bytes / 16) * 16;
    if (top > 160 * WASM_PAGE) throw new Error('alloc bench: memory too small');
    return p;
  };
  return initFrameAlloc(rt, { alloc, frameHeap: 4 << 20 }, 2, 0, workerLayout(0).ctrl);
}

/** Measures alloc+free pairs. */
export async function benchAlloc(
  plan: TimingPlan,
  progress: (line: string) => void,
): Promise<AllocReport> {
  const vm = Vm.create();
  // bpf_tail_call's resolver with map 0 returns 0 after one compare: a stand-in for an empty kfunc
  vm.registerKfunc({ name: 'bench_nop', fn: () => 0n, wasm: vm.rt.bpf_tail_call });
  const time = async (name: keyof typeof BODIES, verify = false): Promise<NsSample> => {
    progress(`alloc: ${name}${verify ? ', verified' : ''}`);
    const body = BODIES[name];
    const pairs = verify ? VERIFIED_PAIRS : PAIRS;
    // verified: no count of successes (the verifier would walk every count at every iteration);
    // the allocator's own counters check the pairs below
    const text = verify ? body.text.replace('add %r7, 1', 'ja +0') : body.text;
    const want = verify ? 0 : pairs;
    const failed = vm.allocator.stats().failedAllocs;
    const created = vm.coroutines.stats().created;
    const p = await vm.load(assembleProgram(loop(text, pairs)), {
      verify,
      kfuncs: new Map(body.calls.map(([idx, n]) => [idx, { name: n, weak: false }])),
      // bpf_obj_new_impl's r1 is a BTF type id: id SIZE names a SIZE-byte type
      btfTypeSize: (id) => (id === SIZE ? SIZE : undefined),
    });
    if (p.runU32(0) !== want)
      throw new Error(`alloc bench: ${name} made ${p.runU32(0)} pairs, not ${want}`);
    const frames = vm.coroutines.stats().created - created;
    if (
      vm.allocator.stats().failedAllocs !== failed ||
      vm.allocator.stats().liveObjects !== 0 ||
      (name === 'coroFrame' && frames !== pairs)
    )
      throw new Error(`alloc bench: ${name} did not allocate and free ${pairs} times a run`);
    return timeTask((n) => {
      let x = 0;
      for (let k = 0; k < n; k++) x += p.runU32(0);
      return x;
    }, plan);
  };
  const baseline = await time('baseline');
  const objNew = await time('objNew');
  const coroFrame = await time('coroFrame');
  const calls = await time('calls');
  const vBaseline = await time('baseline', true);
  const vObjNew = await time('objNew', true);
  const vCoroFrame = await time('coroFrame', true);
  progress('alloc: host path');
  const host = hostPairs(vm.allocator, plan);
  const hostShared = hostPairs(sharedAllocator(), plan);
  if (vm.allocator.stats().liveObjects !== 0) throw new Error('alloc bench: objects leaked');
  await vm.close();
  const per = (s: NsSample): number => Math.max(0, (s.median - baseline.median) / PAIRS);
  const perV = (s: NsSample): number => Math.max(0, (s.median - vBaseline.median) / VERIFIED_PAIRS);
  return {
    pairsPerRun: PAIRS,
    size: SIZE,
    baseline,
    objNew,
    coroFrame,
    calls,
    objNewNs: per(objNew),
    coroFrameNs: per(coroFrame),
    objNewVerifiedNs: perV(vObjNew),
    coroFrameVerifiedNs: perV(vCoroFrame),
    callsNs: per(calls),
    hostNs: host.median,
    hostSharedNs: hostShared.median,
  };
}

/** The section as text. */
export function formatAlloc(r: AllocReport): string {
  const rows = [
    ['bpf_obj_new_impl + bpf_obj_drop_impl (JIT)', fmtNs(r.objNewNs), `≤ ${ALLOC_TARGET_NS}`],
    [
      'bpf_coro_frame_alloc + bpf_coro_frame_free (JIT)',
      fmtNs(r.coroFrameNs),
      `≤ ${ALLOC_TARGET_NS}`,
    ],
    [
      `bpf_obj_new_impl + bpf_obj_drop_impl (JIT, verified, ${VERIFIED_PAIRS} a run)`,
      fmtNs(r.objNewVerifiedNs),
      `≤ ${ALLOC_TARGET_NS}`,
    ],
    [
      `bpf_coro_frame_alloc + bpf_coro_frame_free (JIT, verified, ${VERIFIED_PAIRS} a run)`,
      fmtNs(r.coroFrameVerifiedNs),
      `≤ ${ALLOC_TARGET_NS}`,
    ],
    ['two calls of an empty kfunc (JIT, the calls alone)', fmtNs(r.callsNs), ''],
    ['host alloc + free (rt.wasm)', fmtNs(r.hostNs), ''],
    ['host alloc + free (rt-shared.wasm, atomics)', fmtNs(r.hostSharedNs), ''],
  ];
  return [
    `${r.size}-byte objects; JIT: ${r.pairsPerRun} pairs per run in a BPF loop, baseline loop ${fmtNs(r.baseline.median / r.pairsPerRun)} ns/iteration subtracted`,
    '',
    formatTable(['path', 'ns/pair', 'target'], rows),
    '',
    `alloc+free from BPF (target ≤ ${ALLOC_TARGET_NS} ns), verified programs (the default): bpf_obj_new_impl ${fmtNs(r.objNewVerifiedNs)} ns ${verdict(r.objNewVerifiedNs <= ALLOC_TARGET_NS)}, coroutine frame ${fmtNs(r.coroFrameVerifiedNs)} ns ${verdict(r.coroFrameVerifiedNs <= ALLOC_TARGET_NS)}; unverified: ${fmtNs(r.objNewNs)} ns ${verdict(r.objNewNs <= ALLOC_TARGET_NS)}, ${fmtNs(r.coroFrameNs)} ns ${verdict(r.coroFrameNs <= ALLOC_TARGET_NS)}`,
  ].join('\n');
}
