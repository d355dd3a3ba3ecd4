/**
 * Map types as the kernel's uapi `enum bpf_map_type` numbers them, and the update flags.
 */

export const BPF_MAP_TYPE_HASH = 1;
export const BPF_MAP_TYPE_ARRAY = 2;
export const BPF_MAP_TYPE_PERCPU_HASH = 5;
export const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
export const BPF_MAP_TYPE_LRU_HASH = 9;
export const BPF_MAP_TYPE_LRU_PERCPU_HASH = 10;

/** Update flags of bpf_map_update_elem. */
export const BPF_ANY = 0;
export const BPF_NOEXIST = 1;
export const BPF_EXIST = 2;
export const BPF_F_LOCK = 4;

/** Names of the map types this runtime implements, by id. */
export const MAP_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [BPF_MAP_TYPE_HASH, 'hash'],
  [BPF_MAP_TYPE_ARRAY, 'array'],
  [BPF_MAP_TYPE_PERCPU_HASH, 'percpu_hash'],
  [BPF_MAP_TYPE_PERCPU_ARRAY, 'percpu_array'],
  [BPF_MAP_TYPE_LRU_HASH, 'lru_hash'],
  [BPF_MAP_TYPE_LRU_PERCPU_HASH, 'lru_percpu_hash'],
]);

/** True for maps that keep one value per CPU (worker). */
export function isPercpuType(type: number): boolean {
  return (
    type === BPF_MAP_TYPE_PERCPU_ARRAY ||
    type === BPF_MAP_TYPE_PERCPU_HASH ||
    type === BPF_MAP_TYPE_LRU_PERCPU_HASH
  );
}
