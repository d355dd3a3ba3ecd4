/**
 * Map types as the kernel's uapi `enum bpf_map_type` numbers them, the update flags and the
 * map_flags the runtime understands.
 */

import { MapError } from '../../src/errors.js';

export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PROG_ARRAY = 3;
export const BPF_MAP_TYPE_RINGBUF = 27;
export const BPF_MAP_TYPE_PERCPU_HASH = 5;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_HASH = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10;
export const BPF_MAP_TYPE_LPM_TRIE = 11;
export const BPF_MAP_TYPE_ARRAY_OF_MAPS = 12;
export const BPF_MAP_TYPE_HASH_OF_MAPS = 13;
export const BPF_MAP_TYPE_QUEUE = 22;
export const BPF_MAP_TYPE_STACK = 23;
export const BPF_MAP_TYPE_BLOOM_FILTER = 30;

/** Update flags of bpf_map_update_elem. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

/** map_flags of BPF_MAP_CREATE (uapi). */
export const BPF_F_NO_PREALLOC = 1 << 0;
export const BPF_F_NO_COMMON_LRU = 1 << 1;
export const BPF_F_NUMA_NODE = 1 << 2;
export const BPF_F_RDONLY = 1 << 3;
export const BPF_F_WRONLY = 1 << 4;
export const BPF_F_ZERO_SEED = 1 << 6;
export const BPF_F_RDONLY_PROG = 1 << 7;
export const BPF_F_WRONLY_PROG = 1 << 8;
export const BPF_F_MMAPABLE = 1 << 10;
export const BPF_F_INNER_MAP = 1 << 12;
/** The access flags every map type accepts (the kernel's BPF_F_ACCESS_MASK). */
export const BPF_F_ACCESS_MASK =
  BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;

/** Names of the map types this runtime implements, by id. */
export const MAP_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [BPF_MAP_TYPE_HASH, 'hash'],
  [BPF_MAP_TYPE_ARRAY, 'array'],
  [BPF_MAP_TYPE_PROG_ARRAY, 'prog_array'],
  [BPF_MAP_TYPE_PERCPU_HASH, 'percpu_hash'],
  [BPF_MAP_TYPE_PERCPU_ARRAY, 'percpu_array'],
  [BPF_MAP_TYPE_LRU_HASH, 'lru_hash'],
  [BPF_MAP_TYPE_LRU_PERCPU_HASH, 'lru_percpu_hash'],
  [BPF_MAP_TYPE_LPM_TRIE, 'lpm_trie'],
  [BPF_MAP_TYPE_ARRAY_OF_MAPS, 'array_of_maps'],
  [BPF_MAP_TYPE_HASH_OF_MAPS, 'hash_of_maps'],
  [BPF_MAP_TYPE_QUEUE, 'queue'],
  [BPF_MAP_TYPE_STACK, 'stack'],
  [BPF_MAP_TYPE_BLOOM_FILTER, 'bloom_filter'],
  [BPF_MAP_TYPE_RINGBUF, 'ringbuf'],
]);

/** True for maps that keep one value per CPU (worker). */
export function isPercpuType(type: number): boolean {
  return (
    type === BPF_MAP_TYPE_PERCPU_ARRAY ||
    type === BPF_MAP_TYPE_PERCPU_HASH ||
    type === BPF_MAP_TYPE_LRU_PERCPU_HASH
  );
}

/** True for array_of_maps and hash_of_maps, whose values are inner maps. */
export function isMapInMapType(type: number): boolean {
  return type === BPF_MAP_TYPE_ARRAY_OF_MAPS || type === BPF_MAP_TYPE_HASH_OF_MAPS;
}

/**
 * Refuses map_flags outside `allowed`, and BPF_F_RDONLY_PROG with BPF_F_WRONLY_PROG (the
 * kernel's bpf_map_flags_access_ok), with MapError EINVAL.
 */
export function checkMapFlags(
  spec: { readonly name: string; readonly flags?: number },
  allowed: number,
): void {
  const f = spec.flags ?? 0;
  const both = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  if ((f & ~allowed) !== 0 || (f & both) === both) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `map_flags 0x${f.toString(16)} are not valid for this map type`,
    );
  }
}
