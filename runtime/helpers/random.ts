/**
 * bpf_get_prandom_u32 (7): a u32 from the Vm's injected random source (VmOptions.random, by
 * default a seeded xorshift), so runs are reproducible.
 *
 * Called from BPF. Pure: fast-path termination keeps it.
 */

import { BPF_FUNC_get_prandom_u32 } from '../../src/helper-protos.js';
import type { HelperProto } from '../helpers.js';

/** bpf_get_prandom_u32 over `random` (any number; its low 32 bits are used). */
export function randomHelpers(random: () => number): HelperProto[] {
  return [
    {
      id: BPF_FUNC_get_prandom_u32,
      name: 'bpf_get_prandom_u32',
      fn: () => BigInt(random() >>> 0),
    },
  ];
}
