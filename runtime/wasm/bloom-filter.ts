// AssemblyScript: BPF_MAP_TYPE_BLOOM_FILTER (the kernel's bloom_filter.c). MAP_DATA is a bit
// array of MAP_BITSET_MASK + 1 bits (a power of two, sized by the host as the kernel does);
// each value sets MAP_N_HASH_FUNCS bits, one per seeded hash. Push adds a value, peek answers
// "maybe present" (0) or "certainly absent" (-ENOENT): there are false positives, never false
// negatives. Elements cannot be removed or looked up.
//
// Concurrency (rt-shared.wasm): push sets each bit with an atomic or of its byte and peek loads
// bytes atomically, so pushes from several workers never lose a bit, and once a push returned,
// every peek (from any worker or the host) sees all its bits. No lock: bits are only ever set.
//
// The seed is fixed (the kernel's BPF_F_ZERO_SEED behaviour), so runs are reproducible.
// Called from BPF (bpf_map_push_elem / bpf_map_peek_elem) and from the host.

import {
  BPF_ANY, EINVAL, ENOENT, MAP_BITSET_MASK, MAP_DATA, MAP_N_HASH_FUNCS, MAP_VALUE_SIZE,
} from './abi';
import { err, hashKeySeeded } from './util';

/** Host, once: clears every bit. */
export function bloomInit(map: usize): void {
  memory.fill(load<u32>(map, MAP_DATA), 0, (load<u32>(map, MAP_BITSET_MASK) >>> 3) + 1);
}

/** Bit number of hash function `index` for `value`. */
function bitOf(map: usize, value: usize, index: u32): u32 {
  return hashKeySeeded(value, load<u32>(map, MAP_VALUE_SIZE), index) & load<u32>(map, MAP_BITSET_MASK);
}

/** map_push_elem: adds `value`; flags other than BPF_ANY are -EINVAL. */
export function bloomPush(map: usize, value: usize, flags: u64): u64 {
  if (flags != BPF_ANY) return err(EINVAL);
  const data = load<u32>(map, MAP_DATA);
  const k = load<u32>(map, MAP_N_HASH_FUNCS);
  for (let i: u32 = 0; i < k; i++) {
    const bit = bitOf(map, value, i);
    const at = data + (bit >>> 3);
    const m = <u8>(<u32>1 << (bit & 7));
    if (RT_SHARED) atomic.or<u8>(at, m);
    else store<u8>(at, load<u8>(at) | m);
  }
  return 0;
}

/** map_peek_elem: 0 when `value` may have been pushed, -ENOENT when it certainly was not. */
export function bloomPeek(map: usize, value: usize): u64 {
  const data = load<u32>(map, MAP_DATA);
  const k = load<u32>(map, MAP_N_HASH_FUNCS);
  for (let i: u32 = 0; i < k; i++) {
    const bit = bitOf(map, value, i);
    const at = data + (bit >>> 3);
    const b: u32 = RT_SHARED ? <u32>atomic.load<u8>(at) : <u32>load<u8>(at);
    if ((b & (<u32>1 << (bit & 7))) == 0) return err(ENOENT);
  }
  return 0;
}
