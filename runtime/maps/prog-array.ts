/**
 * BPF_MAP_TYPE_PROG_ARRAY: spec checks and storage (an array of 4-byte function tokens, 0 when
 * empty). The operations are Wasm (runtime/wasm/prog-array.ts); bpf_tail_call reads slots
 * with the runtime module's `prog_array_get`.
 */

import { MapError } from '../../src/errors.js';
import { arrayStorage } from './arraymap.js';
import type { MapSpec, MapStorage } from './map.js';
import { BPF_F_ACCESS_MASK, BPF_F_NUMA_NODE, checkMapFlags } from './map-type.js';

/** Checks a prog_array spec (4-byte keys and values) and sizes it. */
export function progArrayStorage(spec: MapSpec): MapStorage {
  if (spec.valueSize !== 4) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `prog_array values are 4-byte program ids, not ${spec.valueSize} bytes`,
    );
  }
  checkMapFlags(spec, BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK);
  return { ...arrayStorage(spec, 1, false), values: 'none' };
}
