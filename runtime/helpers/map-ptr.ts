/**
 * Map pointers as helpers receive them: the address of a map descriptor (what
 * `lddw rX, map_fd N` loads) resolved back to its `BpfMap`, and the map value that holds a
 * given address (for `struct bpf_timer` and `struct bpf_spin_lock` fields, whose helpers get a
 * pointer into a value and must know the element).
 *
 * Called from BPF (helpers). Nothing here throws: a pointer that is not a live map of this Vm
 * resolves to undefined and the helper returns its errno.
 */

import { HTAB_ELEM_HEADER, MAP_DESC, MAP_DESC_SIZE, MAP_MAGIC } from '../../src/abi.js';
import type { BpfMap } from '../maps/map.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH } from '../maps/map-type.js';
import { round8 } from '../../src/abi.js';
import { memAddr, type MemHost } from './mem.js';

/** What map resolution needs from the Vm. */
export interface MapHost extends MemHost {
  mapById(id: number): BpfMap | undefined;
}

/** The map whose descriptor is at `ptr`, or undefined when `ptr` is not a live map of this Vm. */
export function mapFromPtr(vm: MapHost, ptr: bigint): BpfMap | undefined {
  const a = memAddr(vm, ptr, MAP_DESC_SIZE);
  if (a < 0) return undefined;
  const v = vm.dataView();
  if (v.getUint32(a + MAP_DESC.magic, true) !== MAP_MAGIC) return undefined;
  const map = vm.mapById(v.getUint32(a + MAP_DESC.id, true));
  return map !== undefined && map.addr === a ? map : undefined;
}

/** A map value that holds an address: the element's value and key addresses. */
export interface ValueSlot {
  /** Address of the value (of CPU 0 for percpu maps). */
  readonly value: number;
  /** Address of the key for hash maps (inside the element); -1 for arrays. */
  readonly key: number;
  /** The array index for arrays; -1 for hash maps. */
  readonly index: number;
}

/**
 * The value of `map` that holds the `size` bytes at `addr`, for the map types that may hold
 * timers and locks (array, hash, lru_hash); undefined when no value holds them all.
 */
export function valueHolding(
  vm: MapHost,
  map: BpfMap,
  addr: number,
  size: number,
): ValueSlot | undefined {
  const v = vm.dataView();
  const elemSize = v.getUint32(map.addr + MAP_DESC.elemSize, true);
  if (map.type === BPF_MAP_TYPE_ARRAY) {
    const start = v.getUint32(map.addr + MAP_DESC.data, true);
    const index = Math.floor((addr - start) / elemSize);
    if (addr < start || index >= map.maxEntries) return undefined;
    const value = start + index * elemSize;
    return addr + size <= value + map.valueSize ? { value, key: -1, index } : undefined;
  }
  if (map.type === BPF_MAP_TYPE_HASH || map.type === BPF_MAP_TYPE_LRU_HASH) {
    const elems = v.getUint32(map.addr + MAP_DESC.elems, true);
    const n = Math.floor((addr - elems) / elemSize);
    if (addr < elems || n >= map.maxEntries) return undefined;
    const key = elems + n * elemSize + HTAB_ELEM_HEADER;
    const value = key + round8(map.keySize);
    return addr >= value && addr + size <= value + map.valueSize
      ? { value, key, index: -1 }
      : undefined;
  }
  return undefined;
}
