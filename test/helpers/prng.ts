/**
 * A small seeded PRNG for fuzzers and generated tests (mulberry32: 32-bit state, full period,
 * fast, good enough for test generation). Every fuzzer takes its randomness from here, never
 * from `Math.random()`, so that a printed seed reproduces a failure exactly.
 */

/** A deterministic random source. */
export interface Prng {
  /** The seed it was created with. */
  readonly seed: number;
  /** A uniform unsigned 32-bit integer. */
  next32(): number;
  /** A uniform integer in [0, n) for 1 <= n <= 2^32. */
  int(n: number): number;
  /** True with probability `p` (default 1/2). */
  bool(p?: number): boolean;
  /** A uniformly chosen element of a non-empty array. */
  pick<T>(arr: readonly T[]): T;
  /** `n` uniform random bytes. */
  bytes(n: number): Uint8Array;
}

/**
 * Creates a PRNG from a seed (any number; it is reduced to 32 bits).
 *
 * @example
 * ```ts
 * const rng = createPrng(42);
 * rng.int(10); // the same number on every run
 * ```
 */
export function createPrng(seed: number): Prng {
  let state = seed >>> 0;
  const next32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const int = (n: number): number => {
    if (!(n >= 1 && n <= 2 ** 32)) throw new RangeError(`int(${n}): n must be in [1, 2^32]`);
    return Math.floor((next32() / 2 ** 32) * n);
  };
  return {
    seed,
    next32,
    int,
    bool: (p = 0.5) => next32() / 2 ** 32 < p,
    pick: <T>(arr: readonly T[]): T => {
      if (arr.length === 0) throw new RangeError('pick from an empty array');
      return arr[int(arr.length)] as T;
    },
    bytes: (n: number) => {
      const out = new Uint8Array(n);
      for (let k = 0; k < n; k++) out[k] = next32() & 0xff;
      return out;
    },
  };
}
