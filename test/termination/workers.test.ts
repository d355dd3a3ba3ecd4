/**
 * Termination of a run on a worker thread: only that worker can swap its table, so requests
 * go through its control slot (CTRL_TERMINATE, CTRL_TERM_DEADLINE) and the worker acts at its
 * checkpoints (run entry, every 65,536th may_goto, every JS helper call). Requests from the
 * host (`vm.terminate(…, { worker })`), from a deadline (`runOn(…, { deadlineNs })`) and from
 * another thread that writes the shared control block all stop the run; its slots are restored
 * for the next run. A verified program that holds nothing is abandoned, as on the host thread.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CTRL_R0,
  CTRL_TERMINATE,
  CTRL_TERM_ACK,
  CTRL_TERM_CHECKS,
  TERM_REASON_REQUEST,
  workerLayout,
} from '../../src/abi.js';
import { assembleProgram } from '../../src/asm/assembler.js';
import { TerminationError } from '../../src/errors.js';
import { BPF_MAP_TYPE_ARRAY } from '../../runtime/maps/map-type.js';
import type { BpfMap } from '../../runtime/maps/map.js';
import { Vm } from '../../runtime/vm.js';
import { withMapFds } from './programs.js';
import { ringbufMap } from '../helpers/maps.js';

const vms: Vm[] = [];
afterAll(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

/**
 * A may_goto loop (8M iterations) that looks up key 0 of map 1 in every iteration and counts
 * the hits in the value; r0 = hits. After termination the lookup's fast path returns NULL.
 */
const LOOKUP_LOOP = `
    mov %r6, 0
  top:
    may_goto +12
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, top
    ldxdw %r1, [%r0+0]
    add %r1, 1
    stxdw [%r0+0], %r1
    add %r6, 1
    ja top
    mov %r0, %r6
    exit`;

let shared: Promise<{ vm: Vm; map: BpfMap; run: (o?: object) => Promise<bigint> }> | undefined;

/** One Vm with one worker for every test (a worker thread from source starts in seconds). */
async function setup(): Promise<{ vm: Vm; map: BpfMap; run: (o?: object) => Promise<bigint> }> {
  shared ??= (async () => {
    const vm = Vm.create({ workers: 1 });
    vms.push(vm);
    const map = vm.createMap({
      name: 'hits',
      type: BPF_MAP_TYPE_ARRAY,
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    // unverified: our verifier does not widen counters in may_goto loops as the kernel does
    const prog = await vm.load(assembleProgram(withMapFds(LOOKUP_LOOP, [map])), { verify: false });
    await vm.workers?.ready();
    return { vm, map, run: (o?: object) => prog.runOn(0, undefined, o) };
  })();
  const s = await shared;
  s.vm.dataView().setBigUint64(s.map.valueAddr(0), 0n, true);
  return s;
}

/** The hit counter in the map's value. */
function hits(vm: Vm, map: BpfMap): bigint {
  return vm.dataView().getBigUint64(map.valueAddr(0), true);
}

async function reason(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'finished';
  } catch (e) {
    if (e instanceof TerminationError) return e.reason;
    throw e;
  }
}

describe('termination on a worker thread', () => {
  it('stops a run at its deadline and restores the slots for the next run', async () => {
    const { vm, map, run } = await setup();
    expect(await reason(run({ deadlineNs: 2_000_000 }))).toBe('timeout');
    const stopped = hits(vm, map);
    expect(stopped).toBeGreaterThan(0n);
    expect(stopped).toBeLessThan(8_388_608n);
    const ctrl = workerLayout(0).ctrl;
    expect(vm.dataView().getUint32(ctrl + CTRL_TERM_ACK, true)).toBe(0);
    expect(vm.dataView().getUint32(ctrl + CTRL_TERMINATE, true)).toBe(0);
    // the next run is whole: every lookup hits again
    expect(await run()).toBe(8_388_608n);
    expect(hits(vm, map)).toBe(stopped + 8_388_608n);
  });

  it('stops a run the host asks to stop with vm.terminate(undefined, { worker })', async () => {
    const { vm, map, run } = await setup();
    const checks = (): number =>
      vm.dataView().getUint32(workerLayout(0).ctrl + CTRL_TERM_CHECKS, true);
    const before = checks();
    const pending = run();
    // wait until the run has passed a checkpoint, then ask
    while (checks() === before) await new Promise((r) => setTimeout(r, 1));
    expect(vm.terminate(undefined, { worker: 0 })).toBe(true);
    expect(await reason(pending)).toBe('request');
    expect(hits(vm, map)).toBeLessThan(8_388_608n);
    expect(await run()).toBe(8_388_608n);
  });

  it('stops a run that another thread asks to stop through the shared control block', async () => {
    const { vm, run } = await setup();
    const ctrl = workerLayout(0).ctrl;
    const before = vm.dataView().getUint32(ctrl + CTRL_TERM_CHECKS, true);
    // another thread: it sees the memory, not the Vm, and follows the protocol of src/abi.ts
    const other = new Worker(
      `const { workerData: d } = require('node:worker_threads');
       const w = new Int32Array(d.memory.buffer);
       while (Atomics.load(w, (d.ctrl + d.checks) / 4) === d.before);
       Atomics.store(w, (d.ctrl + d.terminate) / 4, d.reason);`,
      {
        eval: true,
        workerData: {
          memory: vm.memory,
          ctrl,
          checks: CTRL_TERM_CHECKS,
          terminate: CTRL_TERMINATE,
          reason: TERM_REASON_REQUEST,
          before,
        },
      },
    );
    const exited = new Promise((r) => other.once('exit', r));
    // the run starts once the other thread runs (a thread starts in tens of ms under load, as
    // long as the whole run): it then waits for the run's first checkpoint
    await new Promise((r) => other.once('online', r));
    expect(await reason(run())).toBe('request');
    await exited;
  });

  it('terminates a run from its entry when the request came first', async () => {
    const { vm, map, run } = await setup();
    vm.terminate(undefined, { worker: 0 });
    expect(await reason(run())).toBe('request');
    // the entry swapped the lookup before the first iteration: nothing was counted
    expect(hits(vm, map)).toBe(0n);
  });
});

describe('termination on a worker thread, abandoning', () => {
  /**
   * CALLS calls of bpf_ktime_get_ns (a JS helper in workers), then r6 = CALLS stored in the
   * array's value; verified, it holds nothing, so a terminated run is abandoned at once.
   */
  const CALLS = 5000;
  const CHAIN = `mov %r6, 0
    ${'call 5\nadd %r6, 1\n'.repeat(CALLS)}
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out
    stxdw [%r0+0], %r6
  out:
    mov %r0, 0
    exit`;

  it('abandons a program that holds nothing at a JS helper call past its deadline', async () => {
    const vm = Vm.create({ workers: 1 });
    vms.push(vm);
    const map = vm.createMap({
      name: 'done',
      type: BPF_MAP_TYPE_ARRAY,
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    const prog = await vm.load(assembleProgram(withMapFds(CHAIN, [map]), { type: 'mem' }));
    expect(await prog.runOn(0)).toBe(0n);
    expect(hits(vm, map)).toBe(BigInt(CALLS));
    vm.dataView().setBigUint64(map.valueAddr(0), 0n, true);
    // 5000 JS helper calls take far longer than 50 µs: a poll in an adapter sees the deadline
    expect(await reason(prog.runOn(0, undefined, { deadlineNs: 50_000 }))).toBe('timeout');
    // abandoned: the store at the end never ran, nor did any checkpoint of may_goto
    expect(hits(vm, map)).toBe(0n);
    expect(vm.dataView().getUint32(workerLayout(0).ctrl + CTRL_TERM_ACK, true)).toBe(0);
    // a request stored before the run abandons it at its entry
    vm.terminate(undefined, { worker: 0 });
    expect(await reason(prog.runOn(0))).toBe('request');
    expect(hits(vm, map)).toBe(0n);
    // and the next run is whole
    expect(await prog.runOn(0)).toBe(0n);
    expect(hits(vm, map)).toBe(BigInt(CALLS));
  });
});

describe('termination on a worker thread, running down', () => {
  it("stubs the runtime module's kfuncs: an allocation after the stop returns NULL", async () => {
    const vm = Vm.create({ workers: 1 });
    vms.push(vm);
    const ring = ringbufMap(vm);
    // holds a record across a may_goto loop (8M iterations), then allocates a frame:
    // r0 = 1 when the allocation returned NULL, 0 when it succeeded (and was freed)
    const asm = `
      lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, out
      mov %r6, %r0
    top:
      may_goto +1
      ja top
      mov %r1, 64
      mov %r2, 0
      call kfunc 0
      mov %r8, 1
      jeq %r0, 0, release
      mov %r1, %r0
      call kfunc 1
      mov %r8, 0
    release:
      mov %r1, %r6
      mov %r2, 0
      call 133
      mov %r0, %r8
      exit
    out:
      mov %r0, 2
      exit`;
    const prog = assembleProgram(withMapFds(asm, [ring]), { type: 'mem' });
    const names = ['bpf_coro_frame_alloc', 'bpf_coro_frame_free'];
    const kfuncs = new Map(
      prog.insns.flatMap((i, idx) =>
        i.code === 0x85 && i.src === 2
          ? [[idx, { name: names[i.imm] as string, weak: false }] as const]
          : [],
      ),
    );
    const loaded = await vm.load(prog, { verify: false, kfuncs });
    await vm.workers?.ready();
    expect(await loaded.runOn(0)).toBe(0n);
    expect(await reason(loaded.runOn(0, undefined, { deadlineNs: 1_000_000 }))).toBe('timeout');
    expect(vm.dataView().getBigUint64(workerLayout(0).ctrl + CTRL_R0, true)).toBe(1n);
    expect(vm.resources()).toEqual({
      live_objects: 0,
      live_bytes: 0,
      reservations: 0,
      locks_held: 0,
    });
    // restored for the next run
    expect(await loaded.runOn(0)).toBe(0n);
  });
});
