/**
 * BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH, LRU_PERCPU_HASH: storage layout (buckets, then
 * preallocated elements). The operations are Wasm (runtime/wasm/hashtab.ts).
 */

import { HTAB_ELEM_HEADER, round8 } from '../../src/abi.js';
import { MapError } from '../../src/errors.js';
import type { MapSpec, MapStorage } from './map.js';

/** Sizes a hash map's storage: n_buckets is max_entries rounded up to a power of two. */
export function htabStorage(spec: MapSpec, nCpus: number, percpu: boolean): MapStorage {
  if (spec.keySize < 1) throw new MapError(spec.name, 'EINVAL', 'hash maps need a key');
  const elemSize =
    HTAB_ELEM_HEADER + round8(spec.keySize) + round8(spec.valueSize) * (percpu ? nCpus : 1);
  let nBuckets = 1;
  while (nBuckets < spec.maxEntries) nBuckets *= 2;
  return {
    elemSize,
    nBuckets,
    dataBytes: nBuckets * 4,
    elemsBytes: spec.maxEntries * elemSize,
    auxBytes: 0,
    values: 'elems',
  };
}
