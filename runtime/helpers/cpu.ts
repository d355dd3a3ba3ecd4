/**
 * Where the program runs: bpf_get_smp_processor_id (8) is the worker index (the Vm's injected
 * `cpu`, 0 for a single-threaded Vm; percpu maps keep one value per worker) and
 * bpf_get_numa_node_id (42) is 0 (one memory node).
 *
 * Called from BPF. Pure: fast-path termination keeps them.
 */

import {
  BPF_FUNC_get_numa_node_id,
  BPF_FUNC_get_smp_processor_id,
} from '../../src/helper-protos.js';
import type { HelperProto } from '../helpers.js';

/** The CPU helpers over `cpu` (the running worker's index). */
export function cpuHelpers(cpu: () => number): HelperProto[] {
  return [
    {
      id: BPF_FUNC_get_smp_processor_id,
      name: 'bpf_get_smp_processor_id',
      fn: () => BigInt(cpu() >>> 0),
    },
    { id: BPF_FUNC_get_numa_node_id, name: 'bpf_get_numa_node_id', fn: () => 0n },
  ];
}
