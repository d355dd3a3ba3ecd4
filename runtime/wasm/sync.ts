// AssemblyScript: the memory-ordering primitives the map families use where several workers
// (and the host) share one memory. `RT_SHARED` is a compile-time constant given by
// `asc --use RT_SHARED=0|1` (package.json `build:rt`): rt-shared.wasm, which a Vm with workers
// runs, gets atomic (sequentially consistent) loads, stores and read-modify-writes and real lock
// words; rt.wasm, which a single-threaded Vm runs, gets plain loads and stores and locks that
// always succeed at once, so the single-threaded build pays nothing for concurrency.
//
// Locks never block for long. Critical sections are short and call out to nothing, but the
// thread holding a lock can be preempted by the OS (workers and the host may outnumber the
// cores, and nothing here can disable preemption as the kernel does). A taker therefore spins
// LOCK_SPIN times, then sleeps LOCK_WAIT_NS at a time (giving the holder a core) up to
// LOCK_WAITS times, about 0.1 s in all, and then gives up: the caller fails the operation
// (-EBUSY, as the kernel's htab does when a bucket lock is contended from NMI; NULL for a ring
// buffer reserve). A lock stays held that long only if its worker thread was killed inside a
// critical section.
//
// The sleep is the host's `env.lock_wait` (runtime/rt.ts: JS `Atomics.wait`), not the
// `memory.atomic.wait32` instruction. V8's baseline compiler (Liftoff) in Node 20 (V8 11.3)
// spills the instruction's address operand as 8 bytes into a 4-byte stack slot, so the upper
// half (zero) overwrites the i32 local in the neighbouring slot: a lock taker that slept came
// back with a local of its caller set to 0. Liftoff runs every function until V8 tiers it up
// (the host's instance, which runs few map operations, stays there longest), and the lpm trie
// kept its key's prefixlen and data size in such locals across lockWord: an update that had
// slept walked past its own prefix (prefixlen 0) or matched nothing (data size 0) and linked a
// duplicate or a misplaced node (any lock taker's caller was exposed the same way). An import
// call is an ordinary call, which both tiers compile correctly.
// test/workers/concurrent-lpm-trie.test.ts fails on the old sleep, in most runs with
// `--execArgv=--liftoff-only`.

/** Attempts a lock taker spins before it starts sleeping between attempts. */
const LOCK_SPIN: u32 = 1 << 12;
/** Sleeps (each up to LOCK_WAIT_NS) before a lock taker gives up. */
const LOCK_WAITS: u32 = 2000;
const LOCK_WAIT_NS: u32 = 50_000;

/** The lock bit of a word that also holds an 8-aligned address (hash bucket heads). */
export const LOCK_BIT: u32 = RT_SHARED ? 1 : 0;

/** Loads a u32 another worker may be writing. */
// @ts-ignore: decorator
@inline export function ld32(p: usize): u32 {
  return RT_SHARED ? atomic.load<u32>(p) : load<u32>(p);
}

/** Stores a u32 another worker may be reading (a release: earlier writes are visible first). */
// @ts-ignore: decorator
@inline export function st32(p: usize, v: u32): void {
  if (RT_SHARED) atomic.store<u32>(p, v);
  else store<u32>(p, v);
}

/** Loads a u64 another worker may be writing. */
// @ts-ignore: decorator
@inline export function ld64(p: usize): u64 {
  return RT_SHARED ? atomic.load<u64>(p) : load<u64>(p);
}

/** Stores a u64 another worker may be reading. */
// @ts-ignore: decorator
@inline export function st64(p: usize, v: u64): void {
  if (RT_SHARED) atomic.store<u64>(p, v);
  else store<u64>(p, v);
}

/** Adds `d` (two's complement: subtracts with -d) to the u32 at `p`. */
// @ts-ignore: decorator
@inline export function add32(p: usize, d: u32): void {
  if (RT_SHARED) atomic.add<u32>(p, d);
  else store<u32>(p, load<u32>(p) + d);
}

/** Sets bits `m` of the u32 at `p`. */
// @ts-ignore: decorator
@inline export function or32(p: usize, m: u32): void {
  if (RT_SHARED) atomic.or<u32>(p, m);
  else store<u32>(p, load<u32>(p) | m);
}

/** Clears bits `m` of the u32 at `p`. */
// @ts-ignore: decorator
@inline export function clear32(p: usize, m: u32): void {
  if (RT_SHARED) atomic.and<u32>(p, ~m);
  else store<u32>(p, load<u32>(p) & ~m);
}

/** Compare-and-swap of the u32 at `p`; true when it held `expected` and now holds `v`. */
// @ts-ignore: decorator
@inline export function cas32(p: usize, expected: u32, v: u32): bool {
  if (!RT_SHARED) {
    if (load<u32>(p) != expected) return false;
    store<u32>(p, v);
    return true;
  }
  return atomic.cmpxchg<u32>(p, expected, v) == expected;
}

/**
 * Host: sleeps up to `ns` nanoseconds while the u32 at `p` reads `v` (JS `Atomics.wait`; never
 * `memory.atomic.wait32`, see above).
 */
@external("env", "lock_wait")
declare function lockWait(p: usize, v: u32, ns: u32): void;

/** Attempt `n` of a lock taker: spin at first, then sleep while the word still reads `v`. */
function backoff(p: usize, v: u32, n: u32): void {
  if (n >= LOCK_SPIN) lockWait(p, v, LOCK_WAIT_NS);
}

/**
 * Takes LOCK_BIT of the word at `p` (the rest of the word is data that holders change and
 * readers load without the lock). `wait` false: one attempt only. False when it stayed held.
 */
export function lockBit(p: usize, wait: bool): bool {
  if (!RT_SHARED) return true;
  const tries = wait ? LOCK_SPIN + LOCK_WAITS : 1;
  for (let n: u32 = 0; n < tries; n++) {
    const v = atomic.load<u32>(p);
    if ((v & 1) == 0) {
      if (atomic.cmpxchg<u32>(p, v, v | 1) == v) return true;
    } else backoff(p, v, n);
  }
  return false;
}

/** Releases LOCK_BIT of the word at `p`, keeping the data bits. */
// @ts-ignore: decorator
@inline export function unlockBit(p: usize): void {
  if (RT_SHARED) atomic.and<u32>(p, ~1);
}

/** Takes the lock word at `p` (0 free, 1 held); false when it stayed held (see above). */
export function lockWord(p: usize): bool {
  if (!RT_SHARED) return true;
  for (let n: u32 = 0; n < LOCK_SPIN + LOCK_WAITS; n++) {
    if (atomic.load<u32>(p) == 0) {
      if (atomic.cmpxchg<u32>(p, 0, 1) == 0) return true;
    } else backoff(p, 1, n);
  }
  return false;
}

/** Releases the lock word at `p`. */
// @ts-ignore: decorator
@inline export function unlockWord(p: usize): void {
  if (RT_SHARED) atomic.store<u32>(p, 0);
}
