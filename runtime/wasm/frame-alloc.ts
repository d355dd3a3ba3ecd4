// AssemblyScript: the frame allocator (DESIGN.md §5, notes/kmalloc-nolock.md §8), a
// kmalloc_nolock-style allocator in the Vm's linear memory. Coroutine frames, bpf_obj_new
// objects and host allocations come from it. Called from BPF (the kfuncs in rt.ts) and from the
// host (the `host_*`/`alloc_*` exports, runtime/frame-alloc.ts); never calls out, never waits,
// never traps: a request it cannot serve returns 0, a bad free is counted and ignored.
//
// Layout. The Vm makes at creation a state block (`alloc_init`): counters, the large-run free
// lists, per-owner accounts and one cache per worker; and, when a program that allocates is
// loaded or the host first allocates, the region [heapStart, heapEnd) aligned to SPAN_SIZE with
// its span table (one kind byte per span) (`alloc_set_region`). Spans are carved from the
// region with a bounded CAS on the bump pointer.
// - A small span serves one size class (16 B .. 4 KiB). Its header (span start, so that
//   `addr & ~(SPAN_SIZE-1)` finds it) holds a magic, the class, the worker that carves it, the
//   slot geometry and a per-slot owner table (u16: 0 free, else owner + 1) that doubles as the
//   allocated bitmap: a free clears its entry with an exchange, so a double free (or two
//   workers racing to free one object) is seen and counted, never corrupts.
// - A large request (up to FRAME_ALLOC_MAX) takes a run of whole spans; its object starts after
//   the header, its owner entry is a header word, the run's other spans are marked TAIL in the
//   span table so that no pointer into them validates. Freed runs go on a free list per length.
// - Per-worker cache, one per class: a free list (link in the object's first word) and the span
//   being carved, touched only by its worker with plain loads and stores. A free goes to the
//   freeing worker's cache (whichever worker's span the object came from), up to
//   CACHE_FOREIGN_BYTES of other workers' objects; beyond that it is CAS-pushed onto the remote
//   list of the span owner's cache for that class, which the owner takes whole with one
//   exchange when its cache runs empty (the kernel's llist: pushes only, so no ABA).
// - Depot (shared build): a cache list that grows past CACHE_SPILL_BYTES, or every list of a
//   worker that stops (`alloc_flush`), is CAS-pushed whole onto the class's depot list; a
//   worker whose cache and remote list are empty takes the depot list whole before it carves.
//   Without it, memory one worker freed would stay out of the others' reach.
// - Accounting: per owner one u64 word, objects << 32 | bytes (slot bytes), changed with one
//   atomic add per alloc and per free, so it is exact at every instant; caps (objects, bytes)
//   are checked against it. Owner = the running program's id (ctrl + CTRL_PROG).
// RT_SHARED=0 (single-threaded Vm) compiles every atomic to a plain load or store.

import {
  CORO_HDR_SIZE, CORO_MAGIC, CTRL_ALLOC_CACHE, CTRL_ALLOC_MAX_OWNERS, CTRL_ALLOC_OWNERS,
  CTRL_ALLOC_STATE, CTRL_ALLOC_WORKER, CTRL_PROG,
} from './abi';

// The numbers exported below are also read by generated code's inline fast paths
// (jit/inline-kfunc.ts, src/abi.ts FRAME_ALLOC; test/unit/runtime/rt-abi.test.ts checks them).

/** Bytes of a span; spans are aligned to it. */
export const SPAN_SHIFT: u32 = 16;
const SPAN_SIZE: u32 = 1 << SPAN_SHIFT;
const SPAN_MASK: u32 = SPAN_SIZE - 1;
/** Marks a span header ("SPAN"). */
const SPAN_MAGIC: u32 = 0x4e415053;
/** Bytes of a span header before the owner table (small) or the object (large). */
export const SPAN_HDR: u32 = 64;

// span header fields
const SP_MAGIC: u32 = 0;
export const SP_CLASS: u32 = 4;
export const SP_WORKER: u32 = 8;
export const SP_SIZE: u32 = 12;
export const SP_NSLOTS: u32 = 16;
export const SP_DATA: u32 = 20;
const SP_BUMP: u32 = 24;
const SP_PAGES: u32 = 28;
const SP_NEXT: u32 = 32;
/** Large runs: the owner entry (0 free, else owner + 1). */
const SP_OWNER: u32 = 36;
/** ceil(2^32 / slot size): slot index = offset * recip >> 32, exact for offsets < 2^16. */
export const SP_RECIP: u32 = 40;
const CLASS_LARGE: u32 = 0xff;

// span table kinds
const KIND_NONE: u8 = 0;
export const KIND_SMALL: u8 = 1;
const KIND_LARGE: u8 = 2;
const KIND_TAIL: u8 = 3;

/** Size classes (bytes). */
const N_CLASSES: u32 = 16;
export const MAX_SMALL: u32 = 4096;
/** Largest request served (from a run of whole spans). */
export const FRAME_ALLOC_MAX: u32 = 0x100000;
/** Longest run: FRAME_ALLOC_MAX plus the header, in spans. */
const MAX_RUN_PAGES: u32 = (FRAME_ALLOC_MAX + SPAN_HDR + SPAN_MASK) >> SPAN_SHIFT;

// state block fields
export const ST_HEAP_START: u32 = 0;
export const ST_HEAP_END: u32 = 4;
const ST_TOP: u32 = 8;
const ST_RUN_LOCK: u32 = 12;
export const ST_SEQ: u32 = 16;
const ST_REJECTED: u32 = 20;
export const ST_DOUBLE: u32 = 24;
const ST_FAILED: u32 = 28;
/** Frees sent home to the span owner's remote list. */
const ST_REMOTE: u32 = 32;
const ST_MAX_OWNERS: u32 = 36;
export const ST_SPAN_TABLE: u32 = 40;
const ST_OWNERS: u32 = 44;
const ST_CACHES: u32 = 48;
const ST_WORKERS: u32 = 52;
/** Free lists of large runs, by length in spans (1..MAX_RUN_PAGES). */
const ST_RUNS: u32 = 64;
/** The depot: per class, a list of free objects any worker may take whole (CAS-pushed batches). */
const ST_DEPOT: u32 = 144;
/** Bytes of the state block. */
export const ALLOC_STATE_SIZE: u32 = 256;

/** Bytes of one owner account: live (u64: objects << 32 | bytes), cap objects, cap bytes. */
export const OWNER_ACCT_SIZE: u32 = 16;
const OA_LIVE: u32 = 0;
export const OA_CAP_OBJECTS: u32 = 8;
export const OA_CAP_BYTES: u32 = 12;

/** Bytes of one class entry of a worker cache: head, count, remote head, current span. */
export const CE_SIZE: u32 = 16;
export const CE_HEAD: u32 = 0;
export const CE_COUNT: u32 = 4;
const CE_REMOTE: u32 = 8;
const CE_SPAN: u32 = 12;
/** Bytes of one worker's cache: N_CLASSES * CE_SIZE. */
export const ALLOC_CACHE_SIZE: u32 = 256;
/** Bytes of other workers' objects a cache keeps per class before it sends frees home. */
export const CACHE_FOREIGN_BYTES: u32 = 32768;
/** Bytes a worker's cache keeps per class before it hands its whole list to the depot. */
export const CACHE_SPILL_BYTES: u32 = 65536;
/** Most links a spill walks (a cache list is far shorter; this only bounds the loop). */
const SPILL_WALK_MAX: u32 = 1 << 20;
/** Attempts of a CAS loop before it falls back. */
const CAS_TRIES: u32 = 64;

// counters (alloc_counter)
const CNT_REJECTED: u32 = 0;
const CNT_DOUBLE: u32 = 1;
const CNT_FAILED: u32 = 2;
const CNT_REMOTE: u32 = 3;

/**
 * The size class of a request of 1..MAX_SMALL bytes: 16, 32, 48, 64, then two classes per
 * power of two, 3·2^(b-1) and 2^(b+1) (96, 128, 192, 256, ... 3072, 4096). Computed rather than
 * looked up: the module keeps no static data in the shared memory.
 */
// @ts-ignore: decorator
@inline function classOf(size: u32): u32 {
  if (size <= 64) return (size - 1) >> 4;
  const b = 31 - clz<u32>(size - 1);
  return 4 + ((b - 6) << 1) + (size > <u32>3 << (b - 1) ? 1 : 0);
}

/** Bytes of a slot of class `c`. */
// @ts-ignore: decorator
@inline function classSize(c: u32): u32 {
  if (c < 4) return (c + 1) << 4;
  const b = 6 + ((c - 4) >> 1);
  return (c & 1) != 0 ? <u32>2 << b : <u32>3 << (b - 1);
}

// ---- this instance (worker) ----
let aState: usize = 0;
let aHeapStart: usize = 0;
let aHeapLen: u32 = 0;
let aSpanTable: usize = 0;
let aOwners: usize = 0;
let aMaxOwners: u32 = 0;
let aCaches: usize = 0;
/** This worker's cache. */
let aCache: usize = 0;
let aWorker: u32 = 0;
let aCtrl: usize = 0;

// ---- memory ordering (plain in the single-threaded build) ----

// @ts-ignore: decorator
@inline function xchg16(p: usize, v: u16): u16 {
  if (RT_SHARED) return atomic.xchg<u16>(p, v);
  const old = load<u16>(p);
  store<u16>(p, v);
  return old;
}

// @ts-ignore: decorator
@inline function xchg32(p: usize, v: u32): u32 {
  if (RT_SHARED) return atomic.xchg<u32>(p, v);
  const old = load<u32>(p);
  store<u32>(p, v);
  return old;
}

/** Adds `d` to the u64 at `p`; returns the old value. */
// @ts-ignore: decorator
@inline function add64(p: usize, d: u64): u64 {
  if (RT_SHARED) return atomic.add<u64>(p, d);
  const old = load<u64>(p);
  store<u64>(p, old + d);
  return old;
}

// @ts-ignore: decorator
@inline function ld32(p: usize): u32 {
  return RT_SHARED ? atomic.load<u32>(p) : load<u32>(p);
}

// @ts-ignore: decorator
@inline function cas32(p: usize, expected: u32, v: u32): bool {
  if (!RT_SHARED) {
    if (load<u32>(p) != expected) return false;
    store<u32>(p, v);
    return true;
  }
  return atomic.cmpxchg<u32>(p, expected, v) == expected;
}

function count(which: u32): void {
  const p = aState + ST_REJECTED + which * 4;
  if (RT_SHARED) atomic.add<u32>(p, 1);
  else store<u32>(p, load<u32>(p) + 1);
}

/**
 * Zeroes `n` bytes (a multiple of 8) at `p` (8-aligned). Small objects are cleared with
 * inline stores: V8 compiles `memory.fill` to a call out of generated code, which costs more
 * than the whole allocation fast path.
 */
// @ts-ignore: decorator
@inline function zero(p: usize, n: u32): void {
  if (n <= 256) {
    for (let k: u32 = 0; k < n; k += 8) store<u64>(p + k, 0);
  } else memory.fill(p, 0, n);
}

// ---- set-up, from the host ----

/**
 * Host, once per Vm before any instance attaches: lays out the state block, without a region
 * (every allocation fails until `alloc_set_region`). The owner accounts have `maxOwners`
 * entries, the caches `workers` entries (every worker and the host).
 */
export function alloc_init(state: u32, owners: u32, maxOwners: u32, caches: u32, workers: u32): void {
  memory.fill(state, 0, ALLOC_STATE_SIZE);
  store<u32>(state, maxOwners, ST_MAX_OWNERS);
  store<u32>(state, owners, ST_OWNERS);
  store<u32>(state, caches, ST_CACHES);
  store<u32>(state, workers, ST_WORKERS);
  memory.fill(caches, 0, workers * ALLOC_CACHE_SIZE);
  for (let o: u32 = 0; o < maxOwners; o++) {
    const a = owners + o * OWNER_ACCT_SIZE;
    store<u64>(a, 0, OA_LIVE);
    store<u32>(a, 0xffffffff, OA_CAP_OBJECTS);
    store<u32>(a, 0xffffffff, OA_CAP_BYTES);
  }
}

/**
 * Host, once per Vm, while no program that allocates runs: gives the allocator its region
 * [heapStart, heapEnd) (SPAN_SIZE-aligned) and the span table (one byte per span). The Vm
 * makes the region when a program that calls the allocator is loaded, or at the first host
 * allocation, so that a Vm that never allocates pays nothing for it. False when set already.
 */
export function alloc_set_region(heapStart: u32, heapEnd: u32, spanTable: u32): bool {
  if (load<u32>(aState, ST_HEAP_END) != 0) return false;
  memory.fill(spanTable, 0, (heapEnd - heapStart) >> SPAN_SHIFT);
  store<u32>(aState, spanTable, ST_SPAN_TABLE);
  store<u32>(aState, heapStart, ST_TOP);
  store<u32>(aState, heapStart, ST_HEAP_START);
  if (RT_SHARED) atomic.store<u32>(aState + ST_HEAP_END, heapEnd);
  else store<u32>(aState, heapEnd, ST_HEAP_END);
  return refreshRegion();
}

/**
 * Reloads this instance's copy of the region from the state block (an instance that attached
 * before the region existed sees it at its first miss); true when there is one.
 */
function refreshRegion(): bool {
  const end = ld32(aState + ST_HEAP_END);
  if (end == 0) return false;
  aHeapStart = load<u32>(aState, ST_HEAP_START);
  aSpanTable = load<u32>(aState, ST_SPAN_TABLE);
  aHeapLen = end - <u32>aHeapStart;
  return true;
}

/** True when `p` lies in the region (refreshing this instance's view on a miss). */
// @ts-ignore: decorator
@inline function inRegion(p: usize): bool {
  if (p >= aHeapStart && <u32>(p - aHeapStart) < aHeapLen) return true;
  return aHeapLen == 0 && refreshRegion() && p >= aHeapStart && <u32>(p - aHeapStart) < aHeapLen;
}

/** Host, once per runtime instance: the state block, this instance's worker and control slot. */
export function alloc_attach(state: u32, worker: u32, ctrl: u32): void {
  aState = state;
  refreshRegion();
  aOwners = load<u32>(state, ST_OWNERS);
  aMaxOwners = load<u32>(state, ST_MAX_OWNERS);
  aCaches = load<u32>(state, ST_CACHES);
  aWorker = worker;
  aCache = aCaches + worker * ALLOC_CACHE_SIZE;
  aCtrl = ctrl;
  store<u32>(ctrl, <u32>aCache, CTRL_ALLOC_CACHE);
  // what generated code's inline fast paths read (jit/inline-kfunc.ts)
  store<u32>(ctrl, <u32>aOwners, CTRL_ALLOC_OWNERS);
  store<u32>(ctrl, aMaxOwners, CTRL_ALLOC_MAX_OWNERS);
  store<u32>(ctrl, state, CTRL_ALLOC_STATE);
  store<u32>(ctrl, worker, CTRL_ALLOC_WORKER);
}

// ---- accounting ----

/** Charges one object of `bytes` to `owner`; false (nothing charged) over a cap or a bad owner. */
function charge(owner: u32, bytes: u32): bool {
  if (owner >= aMaxOwners) return false;
  const a = aOwners + owner * OWNER_ACCT_SIZE;
  const d = (<u64>1 << 32) | <u64>bytes;
  const old = add64(a + OA_LIVE, d);
  const objs = <u32>(old >> 32) + 1;
  const total = <u64>(<u32>old) + <u64>bytes;
  if (objs > load<u32>(a, OA_CAP_OBJECTS) || total > <u64>load<u32>(a, OA_CAP_BYTES)) {
    add64(a + OA_LIVE, 0 - d);
    return false;
  }
  return true;
}

// @ts-ignore: decorator
@inline function uncharge(owner: u32, bytes: u32): void {
  add64(aOwners + owner * OWNER_ACCT_SIZE + OA_LIVE, 0 - ((<u64>1 << 32) | <u64>bytes));
}

// ---- spans ----

/** Takes `k` contiguous spans: a freed run of that length, else from the bump pointer; or 0. */
function takeSpans(k: u32): usize {
  const run = popRun(k);
  if (run != 0) return run;
  if (aHeapLen == 0 && !refreshRegion()) return 0;
  const topP = aState + ST_TOP;
  const end = <u64>aHeapStart + <u64>aHeapLen;
  for (let n: u32 = 0; n < CAS_TRIES; n++) {
    const top = ld32(topP);
    if (<u64>top + (<u64>k << SPAN_SHIFT) > end) return 0;
    if (cas32(topP, top, top + (k << SPAN_SHIFT))) return top;
  }
  return 0;
}

/** Takes the run lock (bounded, never waits); false when it stayed held. */
function runLock(): bool {
  if (!RT_SHARED) return true;
  const p = aState + ST_RUN_LOCK;
  for (let n: u32 = 0; n < 1024; n++) {
    if (atomic.load<u32>(p) == 0 && atomic.cmpxchg<u32>(p, 0, 1) == 0) return true;
  }
  return false;
}

// @ts-ignore: decorator
@inline function runUnlock(): void {
  if (RT_SHARED) atomic.store<u32>(aState + ST_RUN_LOCK, 0);
}

function popRun(k: u32): usize {
  const head = aState + ST_RUNS + k * 4;
  if (ld32(head) == 0 || !runLock()) return 0;
  const run = load<u32>(head);
  if (run != 0) store<u32>(head, load<u32>(run, SP_NEXT));
  runUnlock();
  return run;
}

/** Returns a freed run to its free list; false (the run leaks) only if the lock stayed held. */
function pushRun(run: usize, k: u32): bool {
  if (!runLock()) return false;
  const head = aState + ST_RUNS + k * 4;
  store<u32>(run, load<u32>(head), SP_NEXT);
  store<u32>(head, <u32>run);
  runUnlock();
  return true;
}

/** Sets the span-table kind of the span at `span`. */
// @ts-ignore: decorator
@inline function setKind(span: usize, kind: u8): void {
  const p = aSpanTable + ((span - aHeapStart) >> SPAN_SHIFT);
  if (RT_SHARED) atomic.store<u8>(p, kind);
  else store<u8>(p, kind);
}

/** A new span for class `c`, carved by this worker; 0 when the region is exhausted. */
function newSpan(c: u32): usize {
  const span = takeSpans(1);
  if (span == 0) return 0;
  const size = classSize(c);
  let n = (SPAN_SIZE - SPAN_HDR) / (size + 2);
  let data = (SPAN_HDR + n * 2 + 15) & ~15;
  while (data + n * size > SPAN_SIZE) {
    n--;
    data = (SPAN_HDR + n * 2 + 15) & ~15;
  }
  store<u32>(span, SPAN_MAGIC, SP_MAGIC);
  store<u32>(span, c, SP_CLASS);
  store<u32>(span, aWorker, SP_WORKER);
  store<u32>(span, size, SP_SIZE);
  store<u32>(span, n, SP_NSLOTS);
  store<u32>(span, data, SP_DATA);
  store<u32>(span, 0, SP_BUMP);
  store<u32>(span, 1, SP_PAGES);
  store<u32>(span, <u32>((<u64>0x100000000 + <u64>size - 1) / <u64>size), SP_RECIP);
  memory.fill(span + SPAN_HDR, 0, n * 2);
  setKind(span, KIND_SMALL);
  return span;
}

/**
 * The slot index of `p` in small span `span`, or 0xffffffff when `p` is not a slot start
 * (header, padding, interior pointer, past the last slot).
 */
// @ts-ignore: decorator
@inline function slotIndex(span: usize, p: usize): u32 {
  const off = <u32>(p - span) - load<u32>(span, SP_DATA);
  const idx = <u32>((<u64>off * <u64>load<u32>(span, SP_RECIP)) >> 32);
  if (idx >= load<u32>(span, SP_NSLOTS) || idx * load<u32>(span, SP_SIZE) != off) return 0xffffffff;
  return idx;
}

// ---- allocation ----

/** Refills class `c` of this worker's cache and returns one object, or 0. */
function refill(c: u32, ce: usize): usize {
  if (RT_SHARED) {
    // objects other workers sent home, then the depot, each taken whole with one exchange
    let p: usize = 0;
    if (ld32(ce + CE_REMOTE) != 0) p = <usize>xchg32(ce + CE_REMOTE, 0);
    const depot = aState + ST_DEPOT + c * 4;
    if (p == 0 && ld32(depot) != 0) p = <usize>xchg32(depot, 0);
    if (p != 0) {
      store<u32>(ce, load<u32>(p), CE_HEAD);
      store<u32>(ce, 0, CE_COUNT);
      return p;
    }
  }
  let span = <usize>load<u32>(ce, CE_SPAN);
  if (span == 0 || load<u32>(span, SP_BUMP) >= load<u32>(span, SP_NSLOTS)) {
    span = newSpan(c);
    if (span == 0) return 0;
    store<u32>(ce, <u32>span, CE_SPAN);
  }
  const b = load<u32>(span, SP_BUMP);
  store<u32>(span, b + 1, SP_BUMP);
  return span + load<u32>(span, SP_DATA) + b * load<u32>(span, SP_SIZE);
}

/** A run of whole spans for a request over MAX_SMALL bytes, charged to `owner`; or 0. */
function allocLarge(size: u32, owner: u32): usize {
  if (size > FRAME_ALLOC_MAX) return 0;
  const k = (size + SPAN_HDR + SPAN_MASK) >> SPAN_SHIFT;
  const bytes = (k << SPAN_SHIFT) - SPAN_HDR;
  if (!charge(owner, bytes)) return 0;
  const run = takeSpans(k);
  if (run == 0) {
    uncharge(owner, bytes);
    return 0;
  }
  store<u32>(run, SPAN_MAGIC, SP_MAGIC);
  store<u32>(run, CLASS_LARGE, SP_CLASS);
  store<u32>(run, aWorker, SP_WORKER);
  store<u32>(run, bytes, SP_SIZE);
  store<u32>(run, 1, SP_NSLOTS);
  store<u32>(run, SPAN_HDR, SP_DATA);
  store<u32>(run, k, SP_PAGES);
  for (let t: u32 = 1; t < k; t++) setKind(run + (t << SPAN_SHIFT), KIND_TAIL);
  setKind(run, KIND_LARGE);
  const p = run + SPAN_HDR;
  zero(p, (size + 7) & ~7);
  if (RT_SHARED) atomic.store<u32>(run + SP_OWNER, owner + 1);
  else store<u32>(run, owner + 1, SP_OWNER);
  return p;
}

/**
 * Allocates `size` zeroed bytes charged to `owner`: the object's address (8-byte aligned), or
 * 0 for size 0, over FRAME_ALLOC_MAX, over the owner's cap, or when the region is exhausted.
 * Called from BPF (through the kfuncs) and from the host.
 */
export function frameAlloc(size: u32, owner: u32): usize {
  if (size - 1 >= MAX_SMALL) {
    const p: usize = size == 0 ? 0 : allocLarge(size, owner);
    if (p == 0) count(CNT_FAILED);
    return p;
  }
  const c = classOf(size);
  const csize = classSize(c);
  if (!charge(owner, csize)) {
    count(CNT_FAILED);
    return 0;
  }
  const ce = aCache + c * CE_SIZE;
  let p = <usize>load<u32>(ce, CE_HEAD);
  if (p != 0) {
    store<u32>(ce, load<u32>(p), CE_HEAD);
    if (RT_SHARED) {
      // the count is a soft bound: a drained remote list is not counted, so stop at 0
      const n = load<u32>(ce, CE_COUNT);
      if (n != 0) store<u32>(ce, n - 1, CE_COUNT);
    }
  } else {
    p = refill(c, ce);
    if (p == 0) {
      uncharge(owner, csize);
      count(CNT_FAILED);
      return 0;
    }
  }
  const span = p & ~(<usize>SPAN_MASK);
  const off = <u32>(p - span) - load<u32>(span, SP_DATA);
  const idx = <u32>((<u64>off * <u64>load<u32>(span, SP_RECIP)) >> 32);
  store<u16>(span + SPAN_HDR + idx * 2, <u16>(owner + 1));
  zero(p, (size + 7) & ~7);
  return p;
}

// ---- free ----

/**
 * The slot size of the live object that starts at `p`, or 0 when `p` is not one (outside the
 * region, not a slot start, free). Never traps for any `p`.
 */
export function liveSize(p: usize): u32 {
  if (!inRegion(p)) return 0;
  const rel = <u32>(p - aHeapStart);
  const span = aHeapStart + (rel & ~SPAN_MASK);
  const kind = load<u8>(aSpanTable + (rel >> SPAN_SHIFT));
  if (kind == KIND_SMALL) {
    const idx = slotIndex(span, p);
    if (idx == 0xffffffff || load<u16>(span + SPAN_HDR + idx * 2) == 0) return 0;
    return load<u32>(span, SP_SIZE);
  }
  if (kind == KIND_LARGE && p == span + SPAN_HDR && ld32(span + SP_OWNER) != 0)
    return load<u32>(span, SP_SIZE);
  return 0;
}

/** Pushes `p` onto the remote list at `head` (bounded); false when the CAS kept failing. */
function remotePush(head: usize, p: usize): bool {
  for (let n: u32 = 0; n < CAS_TRIES; n++) {
    const h = ld32(head);
    store<u32>(p, h);
    if (cas32(head, h, <u32>p)) return true;
  }
  return false;
}

/** Frees a small-span object whose owner entry this worker just cleared. */
// @ts-ignore: decorator
@inline function cacheFree(span: usize, p: usize, size: u32): void {
  const c = load<u32>(span, SP_CLASS);
  const ce = aCache + c * CE_SIZE;
  if (RT_SHARED) {
    // the count only bounds other workers' objects kept here; one worker needs no bound
    const n = load<u32>(ce, CE_COUNT);
    const home = load<u32>(span, SP_WORKER);
    if (home != aWorker && n * size >= CACHE_FOREIGN_BYTES) {
      if (remotePush(aCaches + home * ALLOC_CACHE_SIZE + c * CE_SIZE + CE_REMOTE, p)) {
        count(CNT_REMOTE);
        return;
      }
    }
    if ((n + 1) * size > CACHE_SPILL_BYTES) spill(c, ce);
    store<u32>(ce, load<u32>(ce, CE_COUNT) + 1, CE_COUNT);
  }
  store<u32>(p, load<u32>(ce, CE_HEAD));
  store<u32>(ce, <u32>p, CE_HEAD);
}

/**
 * Hands the whole cache list of class `c` to the depot (one CAS-pushed batch), so that memory
 * a worker freed does not stay out of the other workers' reach. Shared build only.
 */
function spill(c: u32, ce: usize): void {
  const head = <usize>load<u32>(ce, CE_HEAD);
  if (head == 0) return;
  let tail = head;
  for (let n: u32 = 0; load<u32>(tail) != 0; n++) {
    if (n >= SPILL_WALK_MAX) return;
    tail = <usize>load<u32>(tail);
  }
  const depot = aState + ST_DEPOT + c * 4;
  for (let n: u32 = 0; n < CAS_TRIES; n++) {
    const h = ld32(depot);
    store<u32>(tail, h);
    if (cas32(depot, h, <u32>head)) {
      store<u32>(ce, 0, CE_HEAD);
      store<u32>(ce, 0, CE_COUNT);
      return;
    }
  }
  store<u32>(tail, 0);
}

/**
 * Host or worker, when this worker stops allocating (an orderly exit): hands every cached
 * object to the depot. The single-threaded build has no depot and keeps its cache.
 */
export function alloc_flush(): void {
  if (!RT_SHARED) return;
  for (let c: u32 = 0; c < N_CLASSES; c++) spill(c, aCache + c * CE_SIZE);
}

/**
 * Frees the object at `p`; true when it was live. A pointer that is not a live object's start
 * (0, outside the region, interior, already free) is counted and ignored. Called from BPF and
 * from the host.
 */
export function frameFree(p: usize): bool {
  return freeObject(p, false);
}

/**
 * A live coroutine frame's header check for `freeObject`: its magic is set (and then cleared);
 * false when `p` (a live object) is not a frame.
 */
// @ts-ignore: decorator
@inline function takeCoroMagic(p: usize, slot: u32): bool {
  // a frame's object holds the header and at least one byte: a smaller slot is no frame
  if (slot <= CORO_HDR_SIZE || load<u32>(p + CORO_HDR_SIZE - 4) != CORO_MAGIC) return false;
  store<u32>(p + CORO_HDR_SIZE - 4, 0);
  return true;
}

/** frameFree; with `coro`, only a live coroutine frame's object is freed (its magic cleared). */
// @ts-ignore: decorator
@inline function freeObject(p: usize, coro: bool): bool {
  if (!inRegion(p)) {
    count(CNT_REJECTED);
    return false;
  }
  const rel = <u32>(p - aHeapStart);
  const span = aHeapStart + (rel & ~SPAN_MASK);
  const kind = load<u8>(aSpanTable + (rel >> SPAN_SHIFT));
  if (kind == KIND_SMALL) {
    const idx = slotIndex(span, p);
    const entry = span + SPAN_HDR + idx * 2;
    if (
      idx == 0xffffffff ||
      (coro && (load<u16>(entry) == 0 || !takeCoroMagic(p, load<u32>(span, SP_SIZE))))
    ) {
      count(CNT_REJECTED);
      return false;
    }
    const old = <u32>xchg16(entry, 0);
    if (old == 0) {
      count(CNT_DOUBLE);
      return false;
    }
    const size = load<u32>(span, SP_SIZE);
    uncharge(old - 1, size);
    cacheFree(span, p, size);
    return true;
  }
  if (kind == KIND_LARGE && p == span + SPAN_HDR) {
    if (coro && (ld32(span + SP_OWNER) == 0 || !takeCoroMagic(p, load<u32>(span, SP_SIZE)))) {
      count(CNT_REJECTED);
      return false;
    }
    const old = xchg32(span + SP_OWNER, 0);
    if (old == 0) {
      count(CNT_DOUBLE);
      return false;
    }
    uncharge(old - 1, load<u32>(span, SP_SIZE));
    pushRun(span, load<u32>(span, SP_PAGES));
    return true;
  }
  count(CNT_REJECTED);
  return false;
}

// ---- coroutine frames ----

/** Id of the program running on this worker: the owner BPF allocations are charged to. */
// @ts-ignore: decorator
@inline export function runningOwner(): u32 {
  return load<u32>(aCtrl, CTRL_PROG);
}

/**
 * bpf_coro_frame_alloc: an object of CORO_HDR_SIZE + `size` bytes, zeroed, its header filled
 * (seq from a Vm-wide counter, never 0; owner; size; magic); the frame's address or 0.
 */
export function coroFrameAlloc(size: u64, owner: u32): usize {
  if (size == 0 || size > <u64>(FRAME_ALLOC_MAX - CORO_HDR_SIZE)) {
    count(CNT_FAILED);
    return 0;
  }
  const obj = frameAlloc(<u32>size + CORO_HDR_SIZE, owner);
  if (obj == 0) return 0;
  const f = obj + CORO_HDR_SIZE;
  const seqP = aState + ST_SEQ;
  let seq: u32;
  if (RT_SHARED) seq = atomic.add<u32>(seqP, 1) + 1;
  else {
    seq = load<u32>(seqP) + 1;
    store<u32>(seqP, seq);
  }
  if (seq == 0) {
    // wrapped: skip 0, which means "no frame"
    if (RT_SHARED) seq = atomic.add<u32>(seqP, 1) + 1;
    else {
      seq = 1;
      store<u32>(seqP, 1);
    }
  }
  // deadline, flags and next stay 0 (the object is zeroed)
  store<u32>(f - 24, seq);
  store<u32>(f - 16, owner);
  store<u32>(f - 8, <u32>size);
  store<u32>(f - 4, CORO_MAGIC);
  return f;
}

/**
 * 1 when `frame` is a live coroutine frame (a live object's start + CORO_HDR_SIZE, magic
 * set) of at least `need` bytes, else 0. Never traps, for any u32.
 */
export function coro_frame_check(frame: u32, need: u32): u32 {
  const obj = <usize>(frame - CORO_HDR_SIZE);
  if (frame < CORO_HDR_SIZE || liveSize(obj) <= CORO_HDR_SIZE) return 0;
  if (load<u32>(obj + CORO_HDR_SIZE - 4) != CORO_MAGIC) return 0;
  return load<u32>(obj + CORO_HDR_SIZE - 8) >= need ? 1 : 0;
}

/** bpf_coro_frame_free: frees a live frame (clearing its magic); false, counted, otherwise. */
export function coroFrameFree(frame: u64): bool {
  if (frame > 0xffffffff || frame < <u64>CORO_HDR_SIZE) {
    count(CNT_REJECTED);
    return false;
  }
  return freeObject(<usize>frame - CORO_HDR_SIZE, true);
}

// ---- host side ----

/** Host: allocates `size` zeroed bytes charged to `owner`; the address or 0. */
export function host_frame_alloc(size: u32, owner: u32): u32 {
  return <u32>frameAlloc(size, owner);
}

/** Host: frees `p`; 1 when it was a live object, 0 (counted) otherwise. */
export function host_frame_free(p: u32): u32 {
  return frameFree(p) ? 1 : 0;
}

/** Host: the slot size of the live object at `p`, or 0. */
export function alloc_obj_size(p: u32): u32 {
  return liveSize(p);
}

/** Host: the owner of the live object at `p`, or 0xffffffff. */
export function alloc_obj_owner(p: u32): u32 {
  if (liveSize(p) == 0) return 0xffffffff;
  const span = <usize>(p & ~SPAN_MASK);
  if (load<u32>(span, SP_CLASS) == CLASS_LARGE) return ld32(span + SP_OWNER) - 1;
  return <u32>load<u16>(span + SPAN_HDR + slotIndex(span, p) * 2) - 1;
}

/** Host: the first live object after `after` (0: from the start), or 0 when there is none. */
export function alloc_next_live(after: u32): u32 {
  if (aHeapLen == 0 && !refreshRegion()) return 0;
  const end = aHeapStart + aHeapLen;
  let span: usize = <usize>after < aHeapStart ? aHeapStart : <usize>(after & ~SPAN_MASK);
  for (; span < end; span += SPAN_SIZE) {
    const kind = load<u8>(aSpanTable + ((span - aHeapStart) >> SPAN_SHIFT));
    if (kind == KIND_LARGE) {
      const p = span + SPAN_HDR;
      if (p > after && ld32(span + SP_OWNER) != 0) return <u32>p;
    } else if (kind == KIND_SMALL) {
      const n = load<u32>(span, SP_NSLOTS);
      const size = load<u32>(span, SP_SIZE);
      const data = span + load<u32>(span, SP_DATA);
      // in the span of `after`, start at the slot after it
      const i0: u32 = <usize>after >= data ? <u32>((<usize>after - data) / size) : 0;
      for (let i = i0; i < n; i++) {
        const p = data + i * size;
        if (p > after && load<u16>(span + SPAN_HDR + i * 2) != 0) return <u32>p;
      }
    }
  }
  return 0;
}

/** Host: live objects (high 32 bits) and bytes (low) of `owner`. */
export function alloc_owner_live(owner: u32): u64 {
  if (owner >= aMaxOwners) return 0;
  const p = aOwners + owner * OWNER_ACCT_SIZE + OA_LIVE;
  return RT_SHARED ? atomic.load<u64>(p) : load<u64>(p);
}

/** Host: sets the caps of `owner` (0xffffffff: none); false for an owner out of range. */
export function alloc_set_cap(owner: u32, objects: u32, bytes: u32): bool {
  if (owner >= aMaxOwners) return false;
  const a = aOwners + owner * OWNER_ACCT_SIZE;
  store<u32>(a, objects, OA_CAP_OBJECTS);
  store<u32>(a, bytes, OA_CAP_BYTES);
  return true;
}

/** Host: a counter (0 rejected frees, 1 double frees, 2 failed allocations, 3 remote frees). */
export function alloc_counter(which: u32): u32 {
  return which > CNT_REMOTE ? 0 : ld32(aState + ST_REJECTED + which * 4);
}

/** Host: the bump pointer (the first byte never carved into spans). */
export function alloc_top(): u32 {
  return ld32(aState + ST_TOP);
}
