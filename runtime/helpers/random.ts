/**
 * bpf_get_prandom_u32 (7): a u32 from the Vm's injected random source (VmOptions.random, by
 * default a seeded xorshift), so runs are reproducible.
 *
 * Called from BPF. Pure: fast-path termination keeps it.
 */

import { BPF_FUNC_get_prandom_u32 } from '../../src/helper-protos.js';
import type { HelperProto } from '../helpers.js';

/**
 * A xorshift32 generator seeded with `seed` (0 is replaced, xorshift never leaves 0): the
 * default random source of a Vm and of each of its workers.
 */
export function xorshift32(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

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
