// AssemblyScript: BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH, preallocated as
// the kernel's default htab: max_entries elements on a free list, n_buckets (a power of two)
// singly linked chains. An element is `header | key (rounded to 8) | value(s)`; percpu maps
// keep n_cpus value copies. LRU maps evict with a clock sweep over a referenced bit that
// lookups set (the kernel's LRU is also an approximation). A value's address stays valid until
// its element is deleted or evicted.
//
// Concurrency (rt-shared.wasm: several workers and the host on one memory; sync.ts):
// - Each bucket head word is `first element | LOCK_BIT`. Update, delete and eviction take the
//   bucket's lock bit (bounded spin and sleep, then -EBUSY) and change the chain only under it, so two
//   writers of one key are serialised: no duplicate keys, NOEXIST/EXIST exact, no lost unlink.
// - Lookups take no lock: they walk the chain with atomic loads. Chains end in a "nulls"
//   marker naming their bucket (`bucket << 2 | 2`, the kernel's hlist_nulls): an element that
//   was deleted and reused in another bucket while a lookup stood on it leads the walk to
//   another bucket's marker, and the lookup starts over.
// - A deleted element keeps its chain link (ELEM_NEXT) and goes onto the free list through
//   its own ELEM_FREE word (the kernel's htab_elem keeps hash_node.next beside its freelist
//   node for the same reason), so a lookup standing on it can walk on.
// - The free list is popped under the map's lock word (MAP_LOCK; one popper at a time, so a
//   popped head cannot come back under it: no ABA) and pushed with a CAS (lock-free).
// - MAP_COUNT changes with atomic add; MAP_LRU_HAND is claimed with atomic add; the LRU
//   referenced bit is set and cleared with atomic or/and. Eviction, holding its own bucket,
//   only try-locks the victim's bucket once and skips the victim when that fails (never waits
//   for a second lock: no lock-order deadlock).
// - Values are copied in place, as before: a lookup racing an update of the same element may
//   see a partly written value (the kernel's percpu and BPF_F_LOCK-less array values behave so).
//   As in the kernel's preallocated htab, a deleted element may be reused at once: a program
//   still holding its value pointer then reads or writes another key's value. Memory safety
//   does not depend on it (the pointer stays inside the element area, the verifier bounds the
//   access to one value).

import {
  BPF_EXIST, BPF_F_LOCK, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_HASH, BPF_NOEXIST, E2BIG, EBUSY, EEXIST, EINVAL, ENOENT, ELEM_FLAGS,
  ELEM_FREE, ELEM_HASH, ELEM_NEXT, ELEM_REF, ELEM_USED, HTAB_ELEM_HEADER, MAP_COUNT, MAP_DATA,
  MAP_ELEMS, MAP_ELEM_SIZE, MAP_FREE_LIST, MAP_KEY_SIZE, MAP_LOCK, MAP_LRU_HAND, MAP_MAX_ENTRIES,
  MAP_N_BUCKETS, MAP_N_CPUS, MAP_TYPE, MAP_VALUE_SIZE,
} from './abi';
import {
  LOCK_BIT, add32, cas32, clear32, ld32, lockBit, lockWord, or32, st32, unlockBit,
  unlockWord,
} from './sync';
import { bytesEqual, err, hashKey, round8 } from './util';

/** Bit 1 of a chain link: the end of a chain, carrying its bucket index above bit 2. */
const NULLS: u32 = 2;

/** Times a lookup starts over after ending in another bucket's chain. */
const FIND_RESTARTS: u32 = 1 << 16;

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

function bucketIdx(map: usize, hash: u32): u32 {
  return hash & (load<u32>(map, MAP_N_BUCKETS) - 1);
}

function bucketAt(map: usize, idx: u32): usize {
  return <usize>load<u32>(map, MAP_DATA) + (<usize>idx << 2);
}

function bucketOf(map: usize, hash: u32): usize {
  return bucketAt(map, bucketIdx(map, hash));
}

/** The end-of-chain marker of bucket `idx`. */
function nullsOf(idx: u32): u32 {
  return (idx << 2) | NULLS;
}

/** True for an element address, false for a chain end (a nulls marker, or 0 defensively). */
function isElem(link: u32): bool {
  return link != 0 && (link & NULLS) == 0;
}

/** The first link of the chain in bucket word `b` (the lock bit masked off). */
function headOf(b: usize): u32 {
  return ld32(b) & ~LOCK_BIT;
}

/** Host, once: threads every element onto the free list and empties the buckets. */
export function htabInit(map: usize): void {
  const n = load<u32>(map, MAP_MAX_ENTRIES);
  const size = load<u32>(map, MAP_ELEM_SIZE);
  const elems = load<u32>(map, MAP_ELEMS);
  const nb = load<u32>(map, MAP_N_BUCKETS);
  const buckets = <usize>load<u32>(map, MAP_DATA);
  for (let b: u32 = 0; b < nb; b++) store<u32>(buckets + (<usize>b << 2), nullsOf(b));
  memory.fill(elems, 0, n * size);
  for (let k: u32 = 0; k < n; k++) {
    store<u32>(elems + k * size, k + 1 < n ? elems + (k + 1) * size : 0, ELEM_FREE);
  }
  store<u32>(map, n > 0 ? elems : 0, MAP_FREE_LIST);
  store<u32>(map, 0, MAP_COUNT);
  store<u32>(map, 0, MAP_LOCK);
  store<u32>(map, 0, MAP_LRU_HAND);
}

/** The first element of the chain starting at link `e` holding `key`, or the chain's end. */
function walk(e: u32, key: usize, ks: u32, hash: u32): u32 {
  if (ks == 8) {
    const k = load<u64>(key);
    while (isElem(e) && load<u64>(e, HTAB_ELEM_HEADER) != k) e = ld32(e + ELEM_NEXT);
    return e;
  }
  if (ks == 4) {
    const k = load<u32>(key);
    while (isElem(e) && load<u32>(e, HTAB_ELEM_HEADER) != k) e = ld32(e + ELEM_NEXT);
    return e;
  }
  while (isElem(e)) {
    if (load<u32>(e, ELEM_HASH) == hash && bytesEqual(e + HTAB_ELEM_HEADER, key, ks)) return e;
    e = ld32(e + ELEM_NEXT);
  }
  return e;
}

/**
 * The element holding `key`, or 0. Lock-free: a walk that ends in another bucket's chain (it
 * stood on an element that was deleted and reused meanwhile) starts over. Under the bucket's
 * lock the chain cannot change and the first walk is exact.
 */
function find(map: usize, key: usize, hash: u32): usize {
  const ks = load<u32>(map, MAP_KEY_SIZE);
  const idx = bucketIdx(map, hash);
  const b = bucketAt(map, idx);
  for (let n: u32 = 0; n < FIND_RESTARTS; n++) {
    const e = walk(headOf(b), key, ks, hash);
    if (isElem(e)) return e;
    if (!RT_SHARED || e == nullsOf(idx)) return 0;
  }
  return 0;
}

/** Removes `e` from the chain of bucket word `b`, whose lock the caller holds. */
function unlinkLocked(b: usize, e: usize): void {
  const next = ld32(e + ELEM_NEXT);
  let cur = headOf(b);
  if (cur == <u32>e) {
    st32(b, next | LOCK_BIT);
    return;
  }
  while (isElem(cur)) {
    const after = ld32(cur + ELEM_NEXT);
    if (after == <u32>e) {
      st32(cur + ELEM_NEXT, next);
      return;
    }
    cur = after;
  }
}

/** Takes an element off the free list, or 0 (empty, or its lock stayed busy). */
function popFree(map: usize): usize {
  if (!lockWord(map + MAP_LOCK)) return 0;
  let e: u32 = 0;
  for (;;) {
    e = ld32(map + MAP_FREE_LIST);
    if (e == 0 || cas32(map + MAP_FREE_LIST, e, ld32(e + ELEM_FREE))) break;
  }
  unlockWord(map + MAP_LOCK);
  return e;
}

/** Puts `e` back on the free list (lock-free; only pops are serialised). */
function pushFree(map: usize, e: usize): void {
  for (;;) {
    const h = ld32(map + MAP_FREE_LIST);
    st32(e + ELEM_FREE, h);
    if (cas32(map + MAP_FREE_LIST, h, <u32>e)) return;
  }
}

/**
 * Clock sweep: the first used element without the referenced bit, unlinked and returned (not
 * on the free list: the caller owns it), or 0. The caller holds bucket word `held`; a victim in
 * another bucket is taken only if that bucket's lock is free at the first try.
 */
function evict(map: usize, held: usize): usize {
  const n = load<u32>(map, MAP_MAX_ENTRIES);
  const size = load<u32>(map, MAP_ELEM_SIZE);
  const elems = load<u32>(map, MAP_ELEMS);
  for (let step: u32 = 0; step < 2 * n + 1; step++) {
    let k: u32;
    if (RT_SHARED) k = atomic.add<u32>(map + MAP_LRU_HAND, 1) % n;
    else {
      k = load<u32>(map, MAP_LRU_HAND);
      store<u32>(map, k + 1 == n ? 0 : k + 1, MAP_LRU_HAND);
    }
    const e = elems + k * size;
    const f = ld32(e + ELEM_FLAGS);
    if ((f & ELEM_USED) == 0) continue;
    if ((f & ELEM_REF) != 0) {
      clear32(e + ELEM_FLAGS, ELEM_REF);
      continue;
    }
    const b = bucketOf(map, ld32(e + ELEM_HASH));
    if (b != held && !lockBit(b, false)) continue;
    // under b's lock: still used and still hashed to b means still on b's chain
    if ((ld32(e + ELEM_FLAGS) & ELEM_USED) != 0 && bucketOf(map, ld32(e + ELEM_HASH)) == b) {
      unlinkLocked(b, e);
      st32(e + ELEM_FLAGS, 0);
      if (b != held) unlockBit(b);
      add32(map + MAP_COUNT, <u32>-1);
      return e;
    }
    if (b != held) unlockBit(b);
  }
  return 0;
}

/** bpf_map_lookup_elem: the address of `cpu`'s value, or 0. Takes no lock. */
export function htabLookup(map: usize, key: usize, cpu: u32): usize {
  const e = find(map, key, hashKey(key, load<u32>(map, MAP_KEY_SIZE)));
  if (e == 0) return 0;
  if (isLru(map) && (ld32(e + ELEM_FLAGS) & ELEM_REF) == 0) or32(e + ELEM_FLAGS, ELEM_REF);
  const v = elemValue(map, e);
  return isPercpu(map) ? v + cpu * round8(load<u32>(map, MAP_VALUE_SIZE)) : v;
}

/** Copies `value` into element `e` (see htabUpdate for `allCpus`). */
function copyValue(map: usize, e: usize, value: usize, cpu: u32, allCpus: bool, ncpu: u32): void {
  const vs = load<u32>(map, MAP_VALUE_SIZE);
  const stride = round8(vs);
  const v = elemValue(map, e);
  if (ncpu == 1) memory.copy(v, value, vs);
  else if (allCpus) {
    for (let c: u32 = 0; c < ncpu; c++) memory.copy(v + c * stride, value + c * stride, vs);
  } else memory.copy(v + cpu * stride, value, vs);
}

/**
 * bpf_map_update_elem. `allCpus`: `value` holds every CPU's copy back to back (the host's
 * percpu layout); otherwise it is one value, written to `cpu`'s copy (other copies of a new
 * element start zeroed, as in the kernel). A new element is filled before it is linked, so a
 * lookup never finds it half made. -EBUSY when the bucket or free-list lock stayed busy.
 */
export function htabUpdate(map: usize, key: usize, value: usize, flags: u64, cpu: u32, allCpus: bool): u64 {
  const f = flags & ~BPF_F_LOCK;
  if (f > BPF_EXIST) return err(EINVAL);
  const ks = load<u32>(map, MAP_KEY_SIZE);
  const ncpu = isPercpu(map) ? load<u32>(map, MAP_N_CPUS) : 1;
  const hash = hashKey(key, ks);
  const b = bucketOf(map, hash);
  if (!lockBit(b, true)) return err(EBUSY);
  let e = find(map, key, hash);
  if (e != 0) {
    if (f == BPF_NOEXIST) {
      unlockBit(b);
      return err(EEXIST);
    }
    copyValue(map, e, value, cpu, allCpus, ncpu);
    unlockBit(b);
    return 0;
  }
  if (f == BPF_EXIST) {
    unlockBit(b);
    return err(ENOENT);
  }
  e = popFree(map);
  if (e == 0 && isLru(map)) e = evict(map, b);
  if (e == 0) {
    unlockBit(b);
    return err(E2BIG);
  }
  memory.copy(e + HTAB_ELEM_HEADER, key, ks);
  memory.fill(elemValue(map, e), 0, round8(load<u32>(map, MAP_VALUE_SIZE)) * ncpu);
  copyValue(map, e, value, cpu, allCpus, ncpu);
  st32(e + ELEM_HASH, hash);
  st32(e + ELEM_FLAGS, ELEM_USED);
  st32(e + ELEM_NEXT, headOf(b));
  st32(b, <u32>e | LOCK_BIT);
  add32(map + MAP_COUNT, 1);
  unlockBit(b);
  return 0;
}

/** bpf_map_delete_elem. -EBUSY when the bucket lock stayed busy. */
export function htabDelete(map: usize, key: usize): u64 {
  const hash = hashKey(key, load<u32>(map, MAP_KEY_SIZE));
  const b = bucketOf(map, hash);
  if (!lockBit(b, true)) return err(EBUSY);
  const e = find(map, key, hash);
  if (e == 0) {
    unlockBit(b);
    return err(ENOENT);
  }
  unlinkLocked(b, e);
  st32(e + ELEM_FLAGS, 0);
  unlockBit(b);
  add32(map + MAP_COUNT, <u32>-1);
  pushFree(map, e);
  return 0;
}

/**
 * Host: copies the key after `key` (the first key when `key` is 0 or absent) to `next`.
 * Lock-free and best effort while workers write the map, as the kernel's get_next_key.
 */
export function htabNextKey(map: usize, key: usize, next: usize): i32 {
  const ks = load<u32>(map, MAP_KEY_SIZE);
  const nb = load<u32>(map, MAP_N_BUCKETS);
  let b: u32 = 0;
  if (key != 0) {
    const hash = hashKey(key, ks);
    const e = find(map, key, hash);
    if (e != 0) {
      const after = ld32(e + ELEM_NEXT);
      if (isElem(after)) {
        memory.copy(next, after + HTAB_ELEM_HEADER, ks);
        return 0;
      }
      b = bucketIdx(map, hash) + 1;
    }
  }
  for (; b < nb; b++) {
    const e = headOf(bucketAt(map, b));
    if (isElem(e)) {
      memory.copy(next, e + HTAB_ELEM_HEADER, ks);
      return 0;
    }
  }
  return <i32>-ENOENT;
}
