// AssemblyScript: BPF_MAP_TYPE_LPM_TRIE (the kernel's lpm_trie.c). Keys are
// `struct bpf_lpm_trie_key { u32 prefixlen; u8 data[key_size - 4]; }`, data in network order:
// bit 0 is the most significant bit of data[0]. A binary (path-compressed) trie: every node
// holds a prefix; a child extends its parent's prefix by at least one bit, and the bit right
// after the parent's prefix picks the child. Intermediate nodes (LPM_IM) join two subtrees
// that diverge where no prefix is stored; they always have two children, so at most
// max_entries - 1 of them exist and the 2 * max_entries preallocated nodes (free list threaded
// through child[0]) always suffice.
//
// Lookups find the longest stored prefix of the key. Updates write the value in place, so a
// value's address stays valid until its prefix is deleted (stricter than the kernel, whose
// updates replace the node). next_key walks in postorder (more specific prefixes first), the
// kernel's order, using the node stack at MAP_AUX.
//
// Concurrency (rt-shared.wasm; sync.ts): update, delete and next_key run under the map's lock
// word (MAP_LOCK), so writers from several workers and the host are serialised (a taker that
// finds it held too long fails with -EBUSY and changes nothing). The free list, MAP_COUNT and
// MAP_ROOT change only under it. Lookups take no lock, as the kernel's RCU lookups: a writer
// fills a node completely before one atomic store of a child link publishes it, and changes
// links and flags only with atomic stores, so a lookup sees either the old or the new subtree.
// A node freed while a lookup stands on it stays inside the node area (its links then lead to
// other nodes or 0) and the walk is bounded by the key length, so a lookup racing a delete
// ends, memory-safe, with the old value, the new one or NULL (or, as in the kernel's
// preallocated htab, the value of a prefix that reused the node at once). A writer reads the
// key's prefixlen once, before the lock, and stores that checked value, so a key that another
// thread rewrites meanwhile cannot give a node a prefixlen beyond the key's data. In rt.wasm
// the lock calls compile to nothing and ld32/st32 are plain loads and stores.
//
// Two workers inserting and deleting one trie at once used to leave it inconsistent in some
// runs (a duplicate or misplaced node, a delete not finding its own insert). The trie code was
// right; the lock's sleep was not: `memory.atomic.wait32` zeroed an i32 local of the waiting
// function under V8's Liftoff (sync.ts), here the data size or prefixlen that lpmUpdate and
// lpmDelete computed before taking the lock. The sleep is now a host call;
// test/workers/concurrent-lpm-trie.test.ts checks the trie exactly after such runs.
//
// Called from BPF (lookup, update, delete) and from the host (all, plus next_key).

import {
  BPF_EXIST, BPF_NOEXIST, EEXIST, EINVAL, ENOENT, ENOMEM, ENOSPC, LPM_CHILD, LPM_FLAGS, LPM_IM,
  LPM_NODE_HEADER, LPM_PREFIXLEN, MAP_AUX, MAP_COUNT, MAP_ELEMS, MAP_ELEM_SIZE, MAP_FREE_LIST,
  MAP_KEY_SIZE, MAP_MAX_ENTRIES, MAP_ROOT, MAP_VALUE_SIZE, EBUSY, MAP_LOCK,
} from './abi';
import { ld32, lockWord, st32, unlockWord } from './sync';
import { err, round8 } from './util';

function dataSize(map: usize): u32 {
  return load<u32>(map, MAP_KEY_SIZE) - 4;
}

function prefixlen(n: usize): u32 {
  return load<u32>(n, LPM_PREFIXLEN);
}

function isIm(n: usize): bool {
  return (ld32(n + LPM_FLAGS) & LPM_IM) != 0;
}

function childSlot(n: usize, bit: u32): usize {
  return n + LPM_CHILD + (bit << 2);
}

function child(n: usize, bit: u32): usize {
  return ld32(childSlot(n, bit));
}

function nodeData(n: usize): usize {
  return n + LPM_NODE_HEADER;
}

function nodeValue(map: usize, n: usize): usize {
  return n + LPM_NODE_HEADER + round8(dataSize(map));
}

/** Bit `index` of `data`, counting from the most significant bit of data[0]. */
function extractBit(data: usize, index: u32): u32 {
  return (<u32>load<u8>(data + (index >>> 3)) >>> (7 - (index & 7))) & 1;
}

/** The kernel's longest_prefix_match: leading bits `node` and `key` share, capped at both prefix lengths. */
function matchLen(ds: u32, node: usize, key: usize): u32 {
  const limit = min<u32>(prefixlen(node), load<u32>(key));
  const a = nodeData(node);
  const b = key + 4;
  let len: u32 = 0;
  let i: u32 = 0;
  for (; i + 4 <= ds; i += 4) {
    const x = bswap<u32>(load<u32>(a + i) ^ load<u32>(b + i));
    len += clz<u32>(x);
    if (len >= limit) return limit;
    if (x != 0) return len;
  }
  for (; i < ds; i++) {
    const x = <u32>(load<u8>(a + i) ^ load<u8>(b + i));
    len += clz<u32>(x) - 24;
    if (len >= limit) return limit;
    if (x != 0) return len;
  }
  return len;
}

/** Host, once: threads the 2 * max_entries nodes onto the free list; the trie is empty. */
export function lpmInit(map: usize): void {
  const n = load<u32>(map, MAP_MAX_ENTRIES) * 2;
  const size = load<u32>(map, MAP_ELEM_SIZE);
  const elems = load<u32>(map, MAP_ELEMS);
  memory.fill(elems, 0, n * size);
  for (let k: u32 = 0; k + 1 < n; k++) store<u32>(elems + k * size, elems + (k + 1) * size, LPM_CHILD);
  store<u32>(map, elems, MAP_FREE_LIST);
  store<u32>(map, 0, MAP_ROOT);
  store<u32>(map, 0, MAP_COUNT);
  store<u32>(map, 0, MAP_LOCK);
}

function allocNode(map: usize): usize {
  const n = <usize>ld32(map + MAP_FREE_LIST);
  if (n != 0) {
    st32(map + MAP_FREE_LIST, ld32(n + LPM_CHILD));
    st32(n + LPM_CHILD, 0);
    st32(n + LPM_CHILD + 4, 0);
    st32(n + LPM_FLAGS, 0);
    store<u32>(n, 0, LPM_PREFIXLEN);
  }
  return n;
}

function freeNode(map: usize, n: usize): void {
  st32(n + LPM_FLAGS, 0);
  st32(n + LPM_CHILD + 4, 0);
  st32(n + LPM_CHILD, ld32(map + MAP_FREE_LIST));
  st32(map + MAP_FREE_LIST, <u32>n);
}

/** Writes a prefix node's key (prefixlen `len`, checked) and value; its children are left alone. */
function fillNode(map: usize, n: usize, key: usize, len: u32, value: usize): void {
  store<u32>(n, len, LPM_PREFIXLEN);
  memory.copy(nodeData(n), key + 4, dataSize(map));
  memory.copy(nodeValue(map, n), value, load<u32>(map, MAP_VALUE_SIZE));
  st32(n + LPM_FLAGS, 0);
}

/** The kernel's trie_check_add_elem: may one more prefix be stored? */
function checkAdd(map: usize, flags: u64): u64 {
  if (flags == BPF_EXIST) return err(ENOENT);
  const count = load<u32>(map, MAP_COUNT);
  if (count == load<u32>(map, MAP_MAX_ENTRIES)) return err(ENOSPC);
  store<u32>(map, count + 1, MAP_COUNT);
  return 0;
}

function undoAdd(map: usize): u64 {
  store<u32>(map, load<u32>(map, MAP_COUNT) - 1, MAP_COUNT);
  return err(ENOMEM);
}

/** bpf_map_lookup_elem: the value of the longest stored prefix of `key`, or 0. */
export function lpmLookup(map: usize, key: usize): usize {
  const ds = dataSize(map);
  const maxLen = ds << 3;
  let node = <usize>ld32(map + MAP_ROOT);
  let found: usize = 0;
  // a consistent trie is at most maxLen + 1 nodes deep; a walk racing writers may not be
  let steps = maxLen + 2;
  while (node != 0) {
    if (RT_SHARED && steps-- == 0) break;
    const m = matchLen(ds, node, key);
    if (m == maxLen) {
      found = node;
      break;
    }
    const p = prefixlen(node);
    if (m < p) break;
    if (!isIm(node)) found = node;
    node = child(node, extractBit(key + 4, p));
  }
  return found == 0 ? 0 : nodeValue(map, found);
}

/**
 * bpf_map_update_elem: stores `key`'s exact prefix (flags BPF_ANY, BPF_NOEXIST, BPF_EXIST);
 * -EBUSY when the map's lock stayed held.
 */
export function lpmUpdate(map: usize, key: usize, value: usize, flags: u64): u64 {
  if (flags > BPF_EXIST) return err(EINVAL);
  const ds = dataSize(map);
  const len = load<u32>(key);
  if (len > ds << 3) return err(EINVAL);
  if (!lockWord(map + MAP_LOCK)) return err(EBUSY);
  const r = updateLocked(map, key, value, flags, ds, len);
  unlockWord(map + MAP_LOCK);
  return r;
}

function updateLocked(map: usize, key: usize, value: usize, flags: u64, ds: u32, len: u32): u64 {
  let at: usize = map + MAP_ROOT;
  let node = <usize>ld32(at);
  let m: u32 = 0;
  while (node != 0) {
    m = matchLen(ds, node, key);
    const p = prefixlen(node);
    if (p != m || p == len) break;
    at = childSlot(node, extractBit(key + 4, p));
    node = ld32(at);
  }
  if (node == 0) {
    const r = checkAdd(map, flags);
    if (r != 0) return r;
    const n = allocNode(map);
    if (n == 0) return undoAdd(map);
    fillNode(map, n, key, len, value);
    st32(at, <u32>n);
    return 0;
  }
  if (prefixlen(node) == m) {
    // `node` holds exactly this prefix: replace its value, or make an intermediate node real
    if (!isIm(node)) {
      if (flags == BPF_NOEXIST) return err(EEXIST);
    } else {
      const r = checkAdd(map, flags);
      if (r != 0) return r;
    }
    fillNode(map, node, key, len, value);
    return 0;
  }
  const r = checkAdd(map, flags);
  if (r != 0) return r;
  const n = allocNode(map);
  if (n == 0) return undoAdd(map);
  fillNode(map, n, key, len, value);
  if (m == len) {
    // the new prefix is an ancestor of `node`
    st32(childSlot(n, extractBit(nodeData(node), m)), <u32>node);
    st32(at, <u32>n);
    return 0;
  }
  const im = allocNode(map);
  if (im == 0) {
    freeNode(map, n);
    return undoAdd(map);
  }
  store<u32>(im, m, LPM_PREFIXLEN);
  st32(im + LPM_FLAGS, LPM_IM);
  memory.copy(nodeData(im), nodeData(node), ds);
  const bit = extractBit(key + 4, m);
  st32(childSlot(im, bit), <u32>n);
  st32(childSlot(im, bit ^ 1), <u32>node);
  st32(at, <u32>im);
  return 0;
}

/** bpf_map_delete_elem: removes `key`'s exact prefix; -ENOENT when it is not stored, -EBUSY (lock). */
export function lpmDelete(map: usize, key: usize): u64 {
  const ds = dataSize(map);
  const len = load<u32>(key);
  if (len > ds << 3) return err(EINVAL);
  if (!lockWord(map + MAP_LOCK)) return err(EBUSY);
  const r = deleteLocked(map, key, ds, len);
  unlockWord(map + MAP_LOCK);
  return r;
}

function deleteLocked(map: usize, key: usize, ds: u32, len: u32): u64 {
  let at: usize = map + MAP_ROOT;
  let parentAt = at;
  let parent: usize = 0;
  let node = <usize>ld32(at);
  let m: u32 = 0;
  while (node != 0) {
    m = matchLen(ds, node, key);
    const p = prefixlen(node);
    if (p != m || p == len) break;
    parent = node;
    parentAt = at;
    at = childSlot(node, extractBit(key + 4, p));
    node = ld32(at);
  }
  if (node == 0 || prefixlen(node) != len || prefixlen(node) != m || isIm(node)) return err(ENOENT);
  store<u32>(map, load<u32>(map, MAP_COUNT) - 1, MAP_COUNT);
  const c0 = child(node, 0);
  const c1 = child(node, 1);
  if (c0 != 0 && c1 != 0) {
    // still needed to join its two subtrees
    st32(node + LPM_FLAGS, LPM_IM);
    return 0;
  }
  if (parent != 0 && isIm(parent) && c0 == 0 && c1 == 0) {
    // a leaf under an intermediate node: the sibling takes the intermediate node's place
    st32(parentAt, <u32>(child(parent, 0) == node ? child(parent, 1) : child(parent, 0)));
    freeNode(map, parent);
    freeNode(map, node);
    return 0;
  }
  st32(at, <u32>(c0 != 0 ? c0 : c1));
  freeNode(map, node);
  return 0;
}

/** The first prefix node in postorder under `root` (every intermediate node has two children). */
function leftmost(root: usize): usize {
  let found: usize = 0;
  let node = root;
  while (node != 0) {
    if (isIm(node)) {
      node = child(node, 0);
    } else {
      found = node;
      node = child(node, 0);
      if (node == 0) node = child(found, 1);
    }
  }
  return found;
}

/** The prefix node after `key`'s in postorder, 0 at the end, or 1 when `key` is not stored. */
function nextInPostorder(map: usize, key: usize): usize {
  const ds = dataSize(map);
  const len = load<u32>(key);
  const stack = <usize>load<u32>(map, MAP_AUX);
  let depth: u32 = 0;
  let node = <usize>ld32(map + MAP_ROOT);
  let m: u32 = 0;
  while (node != 0) {
    store<u32>(stack + (depth << 2), node);
    depth++;
    m = matchLen(ds, node, key);
    const p = prefixlen(node);
    if (p != m || p == len) break;
    node = child(node, extractBit(key + 4, p));
  }
  if (node == 0 || prefixlen(node) != m || isIm(node)) return 1;
  for (let sp = depth - 1; sp > 0; sp--) {
    const parent = <usize>load<u32>(stack + ((sp - 1) << 2));
    if (child(parent, 0) == node && child(parent, 1) != 0) return leftmost(child(parent, 1));
    if (!isIm(parent)) return parent;
    node = parent;
  }
  return 0;
}

/**
 * Host: copies the key after `key` in postorder to `next` (the first key when `key` is 0, has
 * a bad prefixlen or is not stored, as the kernel does); -ENOENT at the end, -EBUSY (lock).
 */
export function lpmNextKey(map: usize, key: usize, next: usize): i32 {
  if (!lockWord(map + MAP_LOCK)) return <i32>-EBUSY;
  const r = nextKeyLocked(map, key, next);
  unlockWord(map + MAP_LOCK);
  return r;
}

function nextKeyLocked(map: usize, key: usize, next: usize): i32 {
  const ds = dataSize(map);
  const root = <usize>ld32(map + MAP_ROOT);
  if (root == 0) return <i32>-ENOENT;
  let found: usize = 1;
  if (key != 0 && load<u32>(key) <= ds << 3) found = nextInPostorder(map, key);
  if (found == 1) found = leftmost(root);
  if (found == 0) return <i32>-ENOENT;
  store<u32>(next, prefixlen(found));
  memory.copy(next + 4, nodeData(found), ds);
  return 0;
}
