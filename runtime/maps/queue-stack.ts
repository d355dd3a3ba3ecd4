/**
 * BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK: spec checks and storage layout (a ring of
 * max_entries + 1 slots, as the kernel's queue_stack_maps.c). The operations are Wasm
 * (runtime/wasm/queue-stack.ts); values are copied in and out, so BPF has no pointer into the
 * ring.
 */

import { round8 } from '../../src/abi.js';
import { MapError } from '../../src/errors.js';
import type { MapSpec, MapStorage } from './map.js';
import { BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, checkMapFlags } from './map-type.js';

/** Checks a queue or stack spec (no key, any flags but access and NUMA ones refused) and sizes its ring. */
export function queueStackStorage(spec: MapSpec): MapStorage {
  if (spec.keySize !== 0) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `queue and stack maps take no key, not ${spec.keySize} bytes`,
    );
  }
  checkMapFlags(spec, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK);
  const elemSize = round8(spec.valueSize);
  return {
    elemSize,
    nBuckets: 0,
    dataBytes: (spec.maxEntries + 1) * elemSize,
    elemsBytes: 0,
    auxBytes: 0,
    values: 'none',
  };
}
