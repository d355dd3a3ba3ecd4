/**
 * The helper registry: kernel-numbered helpers (`BPF_FUNC_*` ids) and their implementations.
 * Each implementation sits beside the kernel's prototype of the same id (src/helper-protos.ts,
 * the `bpf_func_proto` data the verifier reads), in the spirit of `BPF_CALL_n` +
 * `bpf_func_proto`; runtime/helpers/ holds the implementations, one concept per file. Hosts
 * register their own. Both engines call the same implementation: the interpreter directly, the
 * JIT through an adapter in the call table.
 *
 * Implementations take r1..r5 as u64 bigints and return r0 as a bigint; they report errors
 * to the program as negative errno values, never by throwing (a callback's own failure, e.g.
 * ExecError, propagates).
 */

import type { KfuncSig } from '../src/verifier/verifier.js';
import { TERM_CHECK_SLOT } from '../src/abi.js';
import { UsageError } from '../src/errors.js';
import type { HelperArgs } from '../src/interp/env.js';
import { cpuHelpers } from './helpers/cpu.js';
import { csumHelpers } from './helpers/csum.js';
import { loopHelpers } from './helpers/loop.js';
import { printkHelpers } from './helpers/printk.js';
import { probeReadHelpers } from './helpers/probe-read.js';
import { randomHelpers } from './helpers/random.js';
import type { HelperServices } from './helpers/services.js';
import { spinLockHelpers } from './helpers/spinlock.js';
import { stackHelpers } from './helpers/stack.js';
import { stringHelpers } from './helpers/strings.js';
import { taskHelpers } from './helpers/task.js';
import { timeHelpers } from './helpers/time.js';
import { timerHelpers } from './helpers/timer.js';
import { xdpHelpers } from './helpers/xdp.js';

export {
  BPF_FUNC_get_prandom_u32,
  BPF_FUNC_get_smp_processor_id,
  BPF_FUNC_ktime_get_boot_ns,
  BPF_FUNC_ktime_get_ns,
  BPF_FUNC_map_delete_elem,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_map_update_elem,
} from '../src/helper-protos.js';
export { HelperServices, type HelperOptions, type HelperVm } from './helpers/services.js';

/** Host services helpers may use; injected so that runs are reproducible. */
export interface HelperHost {
  /** Monotonic clock in nanoseconds. */
  readonly clock: () => bigint;
  /** A uniformly distributed u32. */
  readonly random: () => number;
  /** The running worker ("CPU") index. */
  readonly cpu: () => number;
}

/** A kfunc the host provides: called by name from BPF objects (`extern ... __ksym`). */
export interface KfuncProto {
  readonly name: string;
  /** The implementation, as the interpreter calls it: r1..r5 in, r0 out. */
  readonly fn: (args: HelperArgs) => bigint;
  /** A Wasm function with the BPF calling convention implementing it (the JIT calls it directly). */
  readonly wasm?: (...args: bigint[]) => bigint;
  /**
   * What the verifier checks at its calls; without it every argument must be initialised and
   * r0 is an unknown scalar.
   */
  readonly sig?: KfuncSig;
}

/** A helper: its kernel id and name, and its implementation. */
export interface HelperProto {
  readonly id: number;
  readonly name: string;
  /** The implementation, as the interpreter calls it. */
  readonly fn: (args: HelperArgs) => bigint;
  /**
   * A Wasm function with the BPF calling convention implementing the same helper: when
   * present the JIT's call table holds it directly (no JS on the call path).
   */
  readonly wasm?: (...args: bigint[]) => bigint;
}

/** The helpers that need only the injected host services: clocks, random, CPU id. */
export function baseHelpers(host: HelperHost): HelperProto[] {
  return [...timeHelpers(host.clock), ...randomHelpers(host.random), ...cpuHelpers(host.cpu)];
}

/**
 * Every built-in helper implemented in JS (the map helpers 1-3 come from the runtime module,
 * `runtimeModuleHelpers` in runtime/maps/helpers.ts).
 * @example
 * const services = new HelperServices(vm, host, opts);
 * for (const h of allHelpers(services)) registry.register(h);
 */
export function allHelpers(s: HelperServices): HelperProto[] {
  const vm = s.vm;
  return [
    ...baseHelpers(s.host),
    ...taskHelpers(vm, s.task),
    ...printkHelpers(vm, s.trace),
    ...probeReadHelpers(vm),
    ...stringHelpers(vm),
    ...csumHelpers(vm),
    ...xdpHelpers(vm),
    ...spinLockHelpers(vm, s.spinLocks),
    ...loopHelpers(vm, (token, args, opts) => s.callBpf(token, args, opts)),
    ...timerHelpers(s.timers),
    ...stackHelpers(vm, s.stacks),
  ].sort((a, b) => a.id - b.id);
}

/** Helpers by id. */
export class HelperRegistry {
  private readonly byId = new Map<number, HelperProto>();

  /** Adds or replaces a helper. Ids are the kernel's, below TERM_CHECK_SLOT (255). */
  register(proto: HelperProto): void {
    // the block's last slot holds the termination checkpoint (src/abi.ts TERM_CHECK_SLOT)
    if (!Number.isInteger(proto.id) || proto.id < 1 || proto.id >= TERM_CHECK_SLOT) {
      throw new UsageError(`helper id ${proto.id} is out of range 1..${TERM_CHECK_SLOT - 1}`);
    }
    this.byId.set(proto.id, proto);
  }

  get(id: number): HelperProto | undefined {
    return this.byId.get(id);
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /** The kernel-style name of helper `id`, as the disassembler and verifier log print it. */
  name(id: number): string | undefined {
    return this.byId.get(id)?.name;
  }

  all(): HelperProto[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }
}
