// AssemblyScript: the runtime module, instantiated once per worker over the Vm's memory.
// Its `bpf_*` exports have the BPF calling convention `(i64 r1..r5) -> i64`, so the Vm puts
// them straight into a program's helper slots: a map lookup from BPF never leaves Wasm.
// Its `host_*` exports take i32 addresses and serve the host-side map API, so that the host
// and BPF share one implementation of every map operation.
//
// Map families not implemented here are served by the host through `env.map_op_slow`.

import {
  BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH, EINVAL, MAP_DATA, MAP_ELEM_SIZE,
  MAP_KEY_SIZE, MAP_MAX_ENTRIES, MAP_N_CPUS, MAP_TYPE, MAP_VALUE_SIZE,
} from './abi';
import { arrayLookup, arrayNextKey, arrayUpdate } from './arraymap';
import { htabDelete, htabInit, htabLookup, htabNextKey, htabUpdate } from './hashtab';
import { err, mapOk, ptrOk } from './util';

/** Operations forwarded to the host for map families without a Wasm implementation. */
const OP_LOOKUP: u32 = 1;
const OP_UPDATE: u32 = 2;
const OP_DELETE: u32 = 3;

@external("env", "map_op_slow")
declare function mapOpSlow(op: u32, map: u32, key: u32, value: u32, flags: u64): u64;

let cpu: u32 = 0;

/** Host, once per instance: the worker ("CPU") this instance runs on. */
export function set_cpu(c: u32): void {
  cpu = c;
}

function family(map: usize): u32 {
  const t = load<u32>(map, MAP_TYPE);
  if (t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY) return 1;
  if (t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_PERCPU_HASH || t == BPF_MAP_TYPE_LRU_HASH || t == BPF_MAP_TYPE_LRU_PERCPU_HASH) return 2;
  return 0;
}

// ---- helpers, called from BPF ----

/** BPF_FUNC_map_lookup_elem (1): the value's address or NULL. */
export function bpf_map_lookup_elem(map: u64, key: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map) || !ptrOk(key, load<u32>(<usize>map, MAP_KEY_SIZE))) return 0;
  const m = <usize>map;
  const f = family(m);
  if (f == 1) return arrayLookup(m, <usize>key, cpu);
  if (f == 2) return htabLookup(m, <usize>key, cpu);
  return mapOpSlow(OP_LOOKUP, <u32>m, <u32>key, 0, 0);
}

/** BPF_FUNC_map_update_elem (2): 0 or a negative errno. */
export function bpf_map_update_elem(map: u64, key: u64, value: u64, flags: u64, r5: u64): u64 {
  if (!mapOk(map)) return err(EINVAL);
  const m = <usize>map;
  if (!ptrOk(key, load<u32>(m, MAP_KEY_SIZE)) || !ptrOk(value, load<u32>(m, MAP_VALUE_SIZE))) return err(EINVAL);
  const f = family(m);
  if (f == 1) return arrayUpdate(m, <usize>key, <usize>value, flags, cpu);
  if (f == 2) return htabUpdate(m, <usize>key, <usize>value, flags, cpu, false);
  return mapOpSlow(OP_UPDATE, <u32>m, <u32>key, <u32>value, flags);
}

/** BPF_FUNC_map_delete_elem (3): 0 or a negative errno. */
export function bpf_map_delete_elem(map: u64, key: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map)) return err(EINVAL);
  const m = <usize>map;
  if (!ptrOk(key, load<u32>(m, MAP_KEY_SIZE))) return err(EINVAL);
  const f = family(m);
  if (f == 1) return err(EINVAL);
  if (f == 2) return htabDelete(m, <usize>key);
  return mapOpSlow(OP_DELETE, <u32>m, <u32>key, 0, 0);
}

// ---- host side: i32 addresses the host has already checked ----

/** Prepares a new map's storage (the host has filled the descriptor and allocated storage). */
export function host_map_init(map: u32): void {
  const f = family(map);
  if (f == 2) htabInit(map);
  else if (f == 1) {
    const t = load<u32>(map, MAP_TYPE);
    const copies = t == BPF_MAP_TYPE_PERCPU_ARRAY ? load<u32>(map, MAP_N_CPUS) : 1;
    memory.fill(load<u32>(map, MAP_DATA), 0, load<u32>(map, MAP_MAX_ENTRIES) * load<u32>(map, MAP_ELEM_SIZE) * copies);
  }
}

/** Address of the value (CPU 0's copy for percpu maps; the others follow), or 0. */
export function host_lookup(map: u32, key: u32): u32 {
  const f = family(map);
  if (f == 1) return <u32>arrayLookup(map, key, 0);
  if (f == 2) return <u32>htabLookup(map, key, 0);
  return 0;
}

/** Update with every CPU's value for percpu maps (`value` holds them back to back). */
export function host_update(map: u32, key: u32, value: u32, flags: u64): i64 {
  const f = family(map);
  if (f == 1) {
    const t = load<u32>(map, MAP_TYPE);
    if (t != BPF_MAP_TYPE_PERCPU_ARRAY) return <i64>arrayUpdate(map, key, value, flags, 0);
    const n = load<u32>(map, MAP_N_CPUS);
    const stride = load<u32>(map, MAP_ELEM_SIZE);
    for (let c: u32 = 0; c < n; c++) {
      const r = arrayUpdate(map, key, value + c * stride, flags, c);
      if (r != 0) return <i64>r;
    }
    return 0;
  }
  if (f == 2) return <i64>htabUpdate(map, key, value, flags, 0, true);
  return <i64>err(EINVAL);
}

/** Delete from the host. */
export function host_delete(map: u32, key: u32): i64 {
  const f = family(map);
  if (f == 1) return <i64>err(EINVAL);
  if (f == 2) return <i64>htabDelete(map, key);
  return <i64>err(EINVAL);
}

/** Next key after `key` (0: the first) into `next`; 0 or -ENOENT. */
export function host_next_key(map: u32, key: u32, next: u32): i32 {
  const f = family(map);
  if (f == 1) return arrayNextKey(map, key, next);
  if (f == 2) return htabNextKey(map, key, next);
  return <i32>-EINVAL;
}
