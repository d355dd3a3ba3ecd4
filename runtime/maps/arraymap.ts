/**
 * BPF_MAP_TYPE_ARRAY and PERCPU_ARRAY: storage layout. The operations themselves are Wasm
 * (runtime/wasm/arraymap.ts), shared by BPF programs and the host.
 */

import { round8 } from '../../src/abi.js';
import { MapError } from '../../src/errors.js';
import type { MapSpec, MapStorage } from './map.js';

/** Checks an array map's spec and sizes its storage. */
export function arrayStorage(spec: MapSpec, nCpus: number, percpu: boolean): MapStorage {
  if (spec.keySize !== 4)
    throw new MapError(spec.name, 'EINVAL', `array maps take 4-byte keys, not ${spec.keySize}`);
  const elemSize = round8(spec.valueSize);
  return {
    elemSize,
    nBuckets: 0,
    dataBytes: spec.maxEntries * elemSize * (percpu ? nCpus : 1),
    elemsBytes: 0,
    auxBytes: 0,
    values: 'data',
  };
}
