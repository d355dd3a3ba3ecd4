// AssemblyScript: BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS (the kernel's
// map_in_map.c). The outer map is an array or a hash map whose 4-byte values are addresses of
// inner map descriptors (0: empty). MAP_AUX points to the inner map template, a descriptor
// without MAP_MAGIC written by the host from the spec; an inner map must match it as the
// kernel's map_meta_equal says: same type, key size, value size and flags, and for arrays the
// same max_entries unless the template has BPF_F_INNER_MAP.
//
// BPF programs only look up: they get the inner map's address, which they pass to the map
// helpers. The host updates with an inner map (its address, resolved from the id the host API
// takes) and reads back ids.

import {
  BPF_F_INNER_MAP, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_PERCPU_ARRAY,
  EINVAL, MAP_AUX, MAP_FLAGS, MAP_KEY_SIZE, MAP_MAX_ENTRIES, MAP_TYPE, MAP_VALUE_SIZE,
} from './abi';
import { arrayElem, arrayLookup, fdArrayCheck } from './arraymap';
import { htabLookup, htabUpdate } from './hashtab';
import { err, mapOk } from './util';

function sameField(a: usize, b: usize, field: u32): bool {
  return load<u32>(a + field) == load<u32>(b + field);
}

/** True when `inner` is a live map that matches the template of `map`. */
export function innerMapOk(map: usize, inner: u32): bool {
  if (!mapOk(<u64>inner)) return false;
  const meta = <usize>load<u32>(map, MAP_AUX);
  const i = <usize>inner;
  if (!sameField(meta, i, MAP_TYPE) || !sameField(meta, i, MAP_KEY_SIZE)) return false;
  if (!sameField(meta, i, MAP_VALUE_SIZE) || !sameField(meta, i, MAP_FLAGS)) return false;
  const t = load<u32>(meta, MAP_TYPE);
  const isArray = t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY;
  if (!isArray || (load<u32>(meta, MAP_FLAGS) & BPF_F_INNER_MAP) != 0) return true;
  return sameField(meta, i, MAP_MAX_ENTRIES);
}

function isArrayOfMaps(map: usize): bool {
  return load<u32>(map, MAP_TYPE) == BPF_MAP_TYPE_ARRAY_OF_MAPS;
}

/** The address of the slot holding `key`'s inner map address, or 0. */
export function mapInMapSlot(map: usize, key: usize): usize {
  return isArrayOfMaps(map) ? arrayLookup(map, key, 0) : htabLookup(map, key, 0);
}

/** bpf_map_lookup_elem: the inner map's descriptor address, or 0. */
export function mapInMapLookup(map: usize, key: usize): usize {
  const at = mapInMapSlot(map, key);
  return at == 0 ? 0 : <usize>load<u32>(at);
}

/**
 * Host: stores the inner map whose address is the u32 at `value`. Arrays take BPF_ANY only;
 * hashes follow BPF_ANY / BPF_NOEXIST / BPF_EXIST. -EINVAL when the inner map does not match.
 */
export function mapInMapUpdate(map: usize, key: usize, value: usize, flags: u64): u64 {
  if (isArrayOfMaps(map)) {
    const r = fdArrayCheck(map, key, flags);
    if (r != 0) return r;
    if (!innerMapOk(map, load<u32>(value))) return err(EINVAL);
    store<u32>(arrayElem(map, load<u32>(key), 0), load<u32>(value));
    return 0;
  }
  if (!innerMapOk(map, load<u32>(value))) return err(EINVAL);
  return htabUpdate(map, key, value, flags, 0, false);
}
