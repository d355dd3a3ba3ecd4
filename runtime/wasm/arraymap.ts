// AssemblyScript: BPF_MAP_TYPE_ARRAY and BPF_MAP_TYPE_PERCPU_ARRAY. Values are preallocated,
// elem_size bytes each (value_size rounded to 8); percpu maps keep n_cpus copies per index,
// CPU-major within an index. Elements always exist: delete is -EINVAL, NOEXIST is -EEXIST.
// The fd arrays (prog_array, array_of_maps) share the layout: each slot holds a u32 (a function
// token, a map descriptor address) or 0 when empty.

import {
  BPF_ANY, BPF_EXIST, BPF_F_LOCK, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT,
  MAP_DATA, MAP_ELEM_SIZE, MAP_MAX_ENTRIES, MAP_N_CPUS, MAP_TYPE, MAP_VALUE_SIZE,
} from './abi';
import { err } from './util';

/** Address of `cpu`'s value at index `idx`, or 0 when out of range. */
export function arrayElem(map: usize, idx: u32, cpu: u32): usize {
  if (idx >= load<u32>(map, MAP_MAX_ENTRIES)) return 0;
  const size = load<u32>(map, MAP_ELEM_SIZE);
  const data = load<u32>(map, MAP_DATA);
  if (load<u32>(map, MAP_TYPE) == BPF_MAP_TYPE_PERCPU_ARRAY) {
    return data + (idx * load<u32>(map, MAP_N_CPUS) + cpu) * size;
  }
  return data + idx * size;
}

/** bpf_map_lookup_elem on an array: the value's address or 0. */
export function arrayLookup(map: usize, key: usize, cpu: u32): usize {
  return arrayElem(map, load<u32>(key), cpu);
}

/** bpf_map_update_elem on an array (this CPU's copy for percpu arrays). */
export function arrayUpdate(map: usize, key: usize, value: usize, flags: u64, cpu: u32): u64 {
  if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return err(EINVAL);
  const idx = load<u32>(key);
  if (idx >= load<u32>(map, MAP_MAX_ENTRIES)) return err(E2BIG);
  if ((flags & ~BPF_F_LOCK) == BPF_NOEXIST) return err(EEXIST);
  memory.copy(arrayElem(map, idx, cpu), value, load<u32>(map, MAP_VALUE_SIZE));
  return 0;
}

/** Host: next key after `key` (or the first when `key` is 0); -ENOENT at the end. */
export function arrayNextKey(map: usize, key: usize, next: usize): i32 {
  const max = load<u32>(map, MAP_MAX_ENTRIES);
  let idx: u32 = 0;
  if (key != 0) {
    const k = load<u32>(key);
    idx = k >= max ? 0 : k + 1;
  }
  if (idx >= max) return <i32>-ENOENT;
  store<u32>(next, idx);
  return 0;
}

/**
 * Host: the checks of an update of an fd array (prog_array, array_of_maps) before its value is
 * resolved: only BPF_ANY, and the index must be in range.
 */
export function fdArrayCheck(map: usize, key: usize, flags: u64): u64 {
  if (flags != BPF_ANY) return err(EINVAL);
  if (load<u32>(key) >= load<u32>(map, MAP_MAX_ENTRIES)) return err(E2BIG);
  return 0;
}

/** Host: empties a slot of an fd array; -ENOENT when it is empty already. */
export function fdArrayDelete(map: usize, key: usize): u64 {
  const idx = load<u32>(key);
  if (idx >= load<u32>(map, MAP_MAX_ENTRIES)) return err(E2BIG);
  const at = arrayElem(map, idx, 0);
  if (load<u32>(at) == 0) return err(ENOENT);
  store<u32>(at, 0);
  return 0;
}
