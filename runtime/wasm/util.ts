// AssemblyScript: pointer checks, byte copies and key hashing shared by the map families.
// Called from BPF (through the helpers in rt.ts) and from the host; never traps on bad input.

import { MAP_DESC_SIZE, MAP_MAGIC, MAP_MAGIC_FIELD, NULL_GUARD_END } from './abi';

/** True when [p, p + n) lies in linear memory above the null guard. */
export function ptrOk(p: u64, n: u32): bool {
  const end = p + <u64>n;
  return p >= <u64>NULL_GUARD_END && end <= (<u64>memory.size() << 16) && end >= p;
}

/** True when `map` points at a live map descriptor. */
export function mapOk(map: u64): bool {
  return ptrOk(map, MAP_DESC_SIZE) && load<u32>(<usize>map, MAP_MAGIC_FIELD) == MAP_MAGIC;
}

/** Byte equality of two ranges of `n` bytes. */
export function bytesEqual(a: usize, b: usize, n: u32): bool {
  let k: u32 = 0;
  for (; k + 8 <= n; k += 8) {
    if (load<u64>(a + k) != load<u64>(b + k)) return false;
  }
  for (; k < n; k++) {
    if (load<u8>(a + k) != load<u8>(b + k)) return false;
  }
  return true;
}

/**
 * A 32-bit hash of `n` key bytes: murmur3-style mixing, with one-step fast paths for the
 * common 4- and 8-byte keys (the same function for the host and BPF, so any choice is
 * consistent; only its quality matters).
 */
export function hashKey(p: usize, n: u32): u32 {
  if (n == 8) {
    let x = load<u64>(p);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccd;
    x ^= x >> 33;
    return <u32>x ^ <u32>(x >> 32);
  }
  if (n == 4) {
    let x = load<u32>(p);
    x ^= x >>> 16;
    x *= 0x85ebca6b;
    x ^= x >>> 13;
    x *= 0xc2b2ae35;
    return x ^ (x >>> 16);
  }
  return hashKeySeeded(p, n, 0);
}

/** `hashKey` with a seed: distinct seeds give independent hash functions (bloom filters). */
export function hashKeySeeded(p: usize, n: u32, seed: u32): u32 {
  let h: u32 = (0x9747b28c + seed) ^ n;
  let k: u32 = 0;
  for (; k + 4 <= n; k += 4) {
    let c = load<u32>(p + k);
    c *= 0xcc9e2d51;
    c = rotl<u32>(c, 15);
    c *= 0x1b873593;
    h ^= c;
    h = rotl<u32>(h, 13) * 5 + 0xe6546b64;
  }
  let tail: u32 = 0;
  for (let s: u32 = 0; k < n; k++, s += 8) tail |= <u32>load<u8>(p + k) << s;
  if (tail != 0 || (n & 3) != 0) {
    tail *= 0xcc9e2d51;
    tail = rotl<u32>(tail, 15);
    tail *= 0x1b873593;
    h ^= tail;
  }
  h ^= h >>> 16;
  h *= 0x85ebca6b;
  h ^= h >>> 13;
  h *= 0xc2b2ae35;
  h ^= h >>> 16;
  return h;
}

/** Rounds up to a multiple of 8. */
export function round8(n: u32): u32 {
  return (n + 7) & ~7;
}

/** Negative errno as the u64 a helper returns. */
export function err(e: i64): u64 {
  return <u64>(-e);
}
