// AssemblyScript: BPF_MAP_TYPE_PROG_ARRAY (the kernel keeps it in arraymap.c). Slots hold the
// function token of a program's entry (its call-table slot), 0 when empty. BPF programs reach
// it only through bpf_tail_call, which reads it with prog_array_get; lookups from BPF get NULL.
// The host validates tokens before it stores them.

import { MAP_MAX_ENTRIES } from './abi';
import { arrayElem, fdArrayCheck } from './arraymap';

/** The token in slot `index`, or 0 when the slot is empty or out of range. */
export function progArrayGet(map: usize, index: u32): u32 {
  if (index >= load<u32>(map, MAP_MAX_ENTRIES)) return 0;
  return load<u32>(arrayElem(map, index, 0));
}

/** Host: stores the token at `value` in slot `key` (BPF_ANY only; -E2BIG out of range). */
export function progArrayUpdate(map: usize, key: usize, value: usize, flags: u64): u64 {
  const r = fdArrayCheck(map, key, flags);
  if (r != 0) return r;
  store<u32>(arrayElem(map, load<u32>(key), 0), load<u32>(value));
  return 0;
}
