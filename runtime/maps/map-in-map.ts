/**
 * BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS: spec checks and storage, as the
 * kernel's map_in_map.c. The outer map is laid out as an array or a hash map with 4-byte
 * values (inner map descriptor addresses); the aux area holds the inner map template, a
 * descriptor without MAP_MAGIC that the Wasm side (runtime/wasm/map-in-map.ts) compares
 * candidates with.
 *
 * The template comes from `MapSpec.innerMap` (the kernel takes an existing map's fd, libbpf a
 * BTF `__array(values, ...)` definition). An inner map cannot itself hold maps (EINVAL) or
 * programs (ENOTSUPP: prog_array has no map_meta_equal).
 */

import { MAP_DESC_SIZE } from '../../src/abi.js';
import { MapError } from '../../src/errors.js';
import { arrayStorage } from './arraymap.js';
import { htabStorage } from './hashtab.js';
import type { MapSpec, MapStorage } from './map.js';
import {
  BPF_F_ACCESS_MASK,
  BPF_F_INNER_MAP,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  BPF_F_ZERO_SEED,
  BPF_MAP_TYPE_ARRAY_OF_MAPS,
  BPF_MAP_TYPE_PROG_ARRAY,
  checkMapFlags,
  isMapInMapType,
} from './map-type.js';

/**
 * Checks an array_of_maps or hash_of_maps spec and sizes it. `checkInner` validates the
 * template as a map of its own (the kernel's template is a map that exists).
 */
export function mapInMapStorage(spec: MapSpec, checkInner: (inner: MapSpec) => void): MapStorage {
  if (spec.valueSize !== 4) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `map-in-map values are 4-byte map ids, not ${spec.valueSize} bytes`,
    );
  }
  const inner = spec.innerMap;
  if (inner === undefined)
    throw new MapError(spec.name, 'EINVAL', 'map-in-map needs an inner map template (innerMap)');
  if (isMapInMapType(inner.type))
    throw new MapError(spec.name, 'EINVAL', 'an inner map cannot hold maps itself');
  if (inner.type === BPF_MAP_TYPE_PROG_ARRAY)
    throw new MapError(spec.name, 'ENOTSUPP', 'a prog_array cannot be an inner map');
  checkInner(inner);
  const isArray = spec.type === BPF_MAP_TYPE_ARRAY_OF_MAPS;
  checkMapFlags(
    spec,
    BPF_F_NUMA_NODE |
      BPF_F_ACCESS_MASK |
      (isArray ? BPF_F_INNER_MAP : BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_ZERO_SEED),
  );
  const outer = isArray ? arrayStorage(spec, 1, false) : htabStorage(spec, 1, false);
  return { ...outer, auxBytes: MAP_DESC_SIZE, values: 'none' };
}
