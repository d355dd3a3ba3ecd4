// AssemblyScript: BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH, preallocated as
// the kernel's default htab: max_entries elements on a free list, n_buckets (a power of two)
// singly linked chains. An element is `header | key (rounded to 8) | value(s)`; percpu maps
// keep n_cpus value copies. LRU maps evict with a clock sweep over a referenced bit that
// lookups set (the kernel's LRU is also an approximation). A value's address stays valid until
// its element is deleted or evicted.
//
// Single writer for now: the workers issue adds the writer lock (MAP_LOCK) for concurrent updates.

import {
  BPF_EXIST, BPF_F_LOCK, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_HASH, BPF_NOEXIST, E2BIG, EEXIST, EINVAL, ENOENT, ELEM_FLAGS, ELEM_HASH,
  ELEM_NEXT, ELEM_REF, ELEM_USED, HTAB_ELEM_HEADER, MAP_COUNT, MAP_DATA, MAP_ELEMS, MAP_ELEM_SIZE,
  MAP_FREE_LIST, MAP_KEY_SIZE, MAP_LRU_HAND, MAP_MAX_ENTRIES, MAP_N_BUCKETS, MAP_N_CPUS, MAP_TYPE,
  MAP_VALUE_SIZE,
} from './abi';
import { bytesEqual, err, hashKey, round8 } from './util';

function isPercpu(map: usize): bool {
  const t = load<u32>(map, MAP_TYPE);
  return t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

function isLru(map: usize): bool {
  const t = load<u32>(map, MAP_TYPE);
  return t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/** Address of the first value of element `e`. */
export function elemValue(map: usize, e: usize): usize {
  return e + HTAB_ELEM_HEADER + round8(load<u32>(map, MAP_KEY_SIZE));
}

function bucketOf(map: usize, hash: u32): usize {
  return load<u32>(map, MAP_DATA) + ((hash & (load<u32>(map, MAP_N_BUCKETS) - 1)) << 2);
}

/** Host, once: threads every element onto the free list and empties the buckets. */
export function htabInit(map: usize): void {
  const n = load<u32>(map, MAP_MAX_ENTRIES);
  const size = load<u32>(map, MAP_ELEM_SIZE);
  const elems = load<u32>(map, MAP_ELEMS);
  memory.fill(load<u32>(map, MAP_DATA), 0, load<u32>(map, MAP_N_BUCKETS) << 2);
  memory.fill(elems, 0, n * size);
  for (let k: u32 = 0; k < n; k++) {
    store<u32>(elems + k * size, k + 1 < n ? elems + (k + 1) * size : 0, ELEM_NEXT);
  }
  store<u32>(map, n > 0 ? elems : 0, MAP_FREE_LIST);
  store<u32>(map, 0, MAP_COUNT);
  store<u32>(map, 0, MAP_LRU_HAND);
}

/** The element holding `key`, or 0. */
function find(map: usize, key: usize, hash: u32): usize {
  const ks = load<u32>(map, MAP_KEY_SIZE);
  let e = load<u32>(bucketOf(map, hash));
  if (ks == 8) {
    const k = load<u64>(key);
    while (e != 0 && load<u64>(e, HTAB_ELEM_HEADER) != k) e = load<u32>(e, ELEM_NEXT);
    return e;
  }
  if (ks == 4) {
    const k = load<u32>(key);
    while (e != 0 && load<u32>(e, HTAB_ELEM_HEADER) != k) e = load<u32>(e, ELEM_NEXT);
    return e;
  }
  while (e != 0) {
    if (load<u32>(e, ELEM_HASH) == hash && bytesEqual(e + HTAB_ELEM_HEADER, key, ks)) return e;
    e = load<u32>(e, ELEM_NEXT);
  }
  return 0;
}

/** Removes `e` from its bucket chain. */
function unlink(map: usize, e: usize): void {
  let at = bucketOf(map, load<u32>(e, ELEM_HASH));
  let cur = <usize>load<u32>(at);
  while (cur != 0 && cur != e) {
    at = cur + ELEM_NEXT;
    cur = <usize>load<u32>(at);
  }
  if (cur == e) store<u32>(at, load<u32>(e, ELEM_NEXT));
}

/** Clock sweep: the first used element without the referenced bit, which is unlinked. */
function evict(map: usize): usize {
  const n = load<u32>(map, MAP_MAX_ENTRIES);
  const size = load<u32>(map, MAP_ELEM_SIZE);
  const elems = load<u32>(map, MAP_ELEMS);
  let hand = load<u32>(map, MAP_LRU_HAND);
  for (let step: u32 = 0; step < 2 * n + 1; step++) {
    const e = elems + hand * size;
    hand = hand + 1 == n ? 0 : hand + 1;
    const f = load<u32>(e, ELEM_FLAGS);
    if ((f & ELEM_USED) == 0) continue;
    if ((f & ELEM_REF) != 0) {
      store<u32>(e, f & ~ELEM_REF, ELEM_FLAGS);
      continue;
    }
    store<u32>(map, hand, MAP_LRU_HAND);
    unlink(map, e);
    store<u32>(map, load<u32>(map, MAP_COUNT) - 1, MAP_COUNT);
    return e;
  }
  store<u32>(map, hand, MAP_LRU_HAND);
  return 0;
}

/** bpf_map_lookup_elem: the address of `cpu`'s value, or 0. */
export function htabLookup(map: usize, key: usize, cpu: u32): usize {
  const e = find(map, key, hashKey(key, load<u32>(map, MAP_KEY_SIZE)));
  if (e == 0) return 0;
  if (isLru(map)) store<u32>(e, load<u32>(e, ELEM_FLAGS) | ELEM_REF, ELEM_FLAGS);
  const v = elemValue(map, e);
  return isPercpu(map) ? v + cpu * round8(load<u32>(map, MAP_VALUE_SIZE)) : v;
}

/**
 * bpf_map_update_elem. `allCpus`: `value` holds every CPU's copy back to back (the host's
 * percpu layout); otherwise it is one value, written to `cpu`'s copy (other copies of a new
 * element start zeroed, as in the kernel).
 */
export function htabUpdate(map: usize, key: usize, value: usize, flags: u64, cpu: u32, allCpus: bool): u64 {
  const f = flags & ~BPF_F_LOCK;
  if (f > BPF_EXIST) return err(EINVAL);
  const ks = load<u32>(map, MAP_KEY_SIZE);
  const vs = load<u32>(map, MAP_VALUE_SIZE);
  const stride = round8(vs);
  const ncpu = isPercpu(map) ? load<u32>(map, MAP_N_CPUS) : 1;
  const hash = hashKey(key, ks);
  let e = find(map, key, hash);
  if (e != 0) {
    if (f == BPF_NOEXIST) return err(EEXIST);
  } else {
    if (f == BPF_EXIST) return err(ENOENT);
    e = load<u32>(map, MAP_FREE_LIST);
    if (e != 0) store<u32>(map, load<u32>(e, ELEM_NEXT), MAP_FREE_LIST);
    else if (isLru(map)) e = evict(map);
    if (e == 0) return err(E2BIG);
    memory.copy(e + HTAB_ELEM_HEADER, key, ks);
    memory.fill(elemValue(map, e), 0, stride * ncpu);
    store<u32>(e, hash, ELEM_HASH);
    store<u32>(e, ELEM_USED, ELEM_FLAGS);
    const b = bucketOf(map, hash);
    store<u32>(e, load<u32>(b), ELEM_NEXT);
    store<u32>(b, e);
    store<u32>(map, load<u32>(map, MAP_COUNT) + 1, MAP_COUNT);
  }
  const v = elemValue(map, e);
  if (ncpu == 1) memory.copy(v, value, vs);
  else if (allCpus) {
    for (let c: u32 = 0; c < ncpu; c++) memory.copy(v + c * stride, value + c * stride, vs);
  } else memory.copy(v + cpu * stride, value, vs);
  return 0;
}

/** bpf_map_delete_elem. */
export function htabDelete(map: usize, key: usize): u64 {
  const e = find(map, key, hashKey(key, load<u32>(map, MAP_KEY_SIZE)));
  if (e == 0) return err(ENOENT);
  unlink(map, e);
  store<u32>(e, 0, ELEM_FLAGS);
  store<u32>(e, load<u32>(map, MAP_FREE_LIST), ELEM_NEXT);
  store<u32>(map, e, MAP_FREE_LIST);
  store<u32>(map, load<u32>(map, MAP_COUNT) - 1, MAP_COUNT);
  return 0;
}

/** Host: copies the key after `key` (the first key when `key` is 0 or absent) to `next`. */
export function htabNextKey(map: usize, key: usize, next: usize): i32 {
  const ks = load<u32>(map, MAP_KEY_SIZE);
  const nb = load<u32>(map, MAP_N_BUCKETS);
  let b: u32 = 0;
  if (key != 0) {
    const hash = hashKey(key, ks);
    const e = find(map, key, hash);
    if (e != 0) {
      const after = load<u32>(e, ELEM_NEXT);
      if (after != 0) {
        memory.copy(next, after + HTAB_ELEM_HEADER, ks);
        return 0;
      }
      b = (hash & (nb - 1)) + 1;
    }
  }
  const buckets = load<u32>(map, MAP_DATA);
  for (; b < nb; b++) {
    const e = load<u32>(buckets + (b << 2));
    if (e != 0) {
      memory.copy(next, e + HTAB_ELEM_HEADER, ks);
      return 0;
    }
  }
  return <i32>-ENOENT;
}
