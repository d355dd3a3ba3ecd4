/**
 * The helpers a worker thread of a Vm runs itself (runtime/worker-main.ts). A JS helper cannot
 * cross threads, so each worker builds its own set from the helper factories, over its own view
 * of the shared memory and its own worker layout. Only helpers that need no host state qualify:
 * clocks (`process.hrtime`), random (a xorshift per worker, seeded with the Vm seed and the
 * worker index), the CPU id (the worker index), pointer-only helpers (probe_read*, strings,
 * csum_diff, snprintf, the XDP adjust helpers), bpf_spin_lock/unlock (Atomics on the shared
 * lock word, owner = worker index + 1; the lock held and the lock breaks are recorded in the
 * worker's control slot, where the pool reads them) and the task helpers, with
 * bpf_get_current_task_btf, when the task is fixed data.
 * The map and ringbuf helpers are Wasm functions of the worker's runtime-module instance
 * (runtime/maps/helpers.ts) and are added by the worker.
 *
 * The Vm uses `workerHelperIds` at load time to refuse a program that calls anything else
 * (bpf_trace_printk, timers, bpf_loop and other callbacks, host-registered helpers, kfuncs).
 *
 * Called from a worker thread (startup) and from host (Vm.load's check).
 */

import { BPF_FUNC_trace_printk } from '../src/helper-protos.js';
import type { HelperProto } from './helpers.js';
import { cpuHelpers } from './helpers/cpu.js';
import { csumHelpers } from './helpers/csum.js';
import { printkHelpers, TraceLog } from './helpers/printk.js';
import { probeReadHelpers } from './helpers/probe-read.js';
import { randomHelpers, xorshift32 } from './helpers/random.js';
import { spinLockHelpers, type SpinLockStats } from './helpers/spinlock.js';
import { stringHelpers } from './helpers/strings.js';
import { taskHelpers, type TaskInfo } from './helpers/task.js';
import { workerTaskHelper } from './helpers/task-ref.js';
import { timeHelpers } from './helpers/time.js';
import { xdpHelpers, type XdpHost } from './helpers/xdp.js';

/** What a worker's helpers are built from; all of it crosses threads as plain data. */
export interface WorkerHelperConfig {
  /** The Vm's seed; worker `cpu` seeds its generator with `seed ^ golden * (cpu + 1)`. */
  readonly seed: number;
  /** The fixed task, or undefined when the Vm's task is a function (task helpers refused). */
  readonly task: TaskInfo | undefined;
}

/** The seed of worker `cpu`'s random source. */
export function workerSeed(seed: number, cpu: number): number {
  return (seed ^ Math.imul(0x9e3779b9, cpu + 1)) >>> 0;
}

/**
 * The JS helpers worker `cpu` runs, in a fixed order (the order of the shared adapter module's
 * functions): `host` is the worker's view of the Vm memory and its layout.
 */
export function workerHelpers(host: XdpHost, cpu: number, cfg: WorkerHelperConfig): HelperProto[] {
  const task = cfg.task;
  const lockStats: SpinLockStats = { breaks: 0, held: 0 };
  return [
    ...timeHelpers(() => process.hrtime.bigint()),
    ...randomHelpers(xorshift32(workerSeed(cfg.seed, cpu))),
    ...cpuHelpers(() => cpu),
    ...probeReadHelpers(host),
    ...stringHelpers(host),
    ...csumHelpers(host),
    ...xdpHelpers(host),
    ...spinLockHelpers(host, lockStats),
    // snprintf writes into BPF memory only; trace_printk needs the host's trace log
    ...printkHelpers(host, new TraceLog()).filter((h) => h.id !== BPF_FUNC_trace_printk),
    ...(task === undefined
      ? []
      : [...taskHelpers(host, () => task), workerTaskHelper(() => host.dataView())]),
  ].sort((a, b) => a.id - b.id);
}
