/**
 * BPF_MAP_TYPE_BLOOM_FILTER: spec checks and bit array sizing, as the kernel's bloom_filter.c.
 * The operations are Wasm (runtime/wasm/bloom-filter.ts).
 *
 * map_extra bits 0-3 give the number of hash functions k (0 means 5). The bit array holds
 * max_entries * k / ln 2 bits (7/5 approximating 1/ln 2), rounded up to a power of two and to
 * at least 64 bits; past 2^31 bits it is 2^32 bits.
 */

import { MapError } from '../../src/errors.js';
import type { MapSpec, MapStorage } from './map.js';
import { BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, BPF_F_ZERO_SEED, checkMapFlags } from './map-type.js';

/** Hash functions when map_extra leaves it to the kernel. */
export const BLOOM_DEFAULT_HASH_FUNCS = 5;

const U32_MAX = 0xffffffff;

/** Bits in the bit array of a filter with `maxEntries` entries and `k` hash functions. */
export function bloomBits(maxEntries: number, k: number): number {
  const wanted = maxEntries * k;
  const scaled = Math.floor(wanted / 5) * 7;
  if (wanted > U32_MAX || scaled > U32_MAX || scaled > 2 ** 31) return 2 ** 32;
  if (scaled <= 64) return 64;
  return 2 ** Math.ceil(Math.log2(scaled));
}

/** Checks a bloom filter spec and sizes its bit array. */
export function bloomFilterStorage(spec: MapSpec): MapStorage {
  if (spec.keySize !== 0) {
    throw new MapError(spec.name, 'EINVAL', `bloom filters take no key, not ${spec.keySize} bytes`);
  }
  checkMapFlags(spec, BPF_F_ZERO_SEED | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK);
  const extra = spec.mapExtra ?? 0;
  if (!Number.isInteger(extra) || extra < 0 || extra > 0xf) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `map_extra ${extra}: only bits 0-3 (hash functions) are defined`,
    );
  }
  const k = extra === 0 ? BLOOM_DEFAULT_HASH_FUNCS : extra;
  const bits = bloomBits(spec.maxEntries, k);
  return {
    elemSize: 0,
    nBuckets: 0,
    dataBytes: bits / 8,
    elemsBytes: 0,
    auxBytes: 0,
    values: 'none',
    desc: { mapExtra: extra, nHashFuncs: k, bitsetMask: (bits - 1) >>> 0 },
  };
}
