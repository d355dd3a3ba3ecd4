/**
 * Clock helpers: bpf_ktime_get_ns (5) and bpf_ktime_get_boot_ns (125) read the Vm's injected
 * monotonic clock (VmOptions.clock), so runs are reproducible. The Vm does not suspend, so
 * boot time and monotonic time are the same clock.
 *
 * Called from BPF. Pure: fast-path termination keeps them.
 */

import { BPF_FUNC_ktime_get_boot_ns, BPF_FUNC_ktime_get_ns } from '../../src/helper-protos.js';
import type { HelperProto } from '../helpers.js';

/** The clock helpers over `clock` (ns). */
export function timeHelpers(clock: () => bigint): HelperProto[] {
  const now = (): bigint => BigInt.asUintN(64, clock());
  return [
    { id: BPF_FUNC_ktime_get_ns, name: 'bpf_ktime_get_ns', fn: now },
    { id: BPF_FUNC_ktime_get_boot_ns, name: 'bpf_ktime_get_boot_ns', fn: now },
  ];
}
