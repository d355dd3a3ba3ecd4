// AssemblyScript: the runtime module, instantiated once per worker over the Vm's memory.
// Its `bpf_*` exports have the BPF calling convention `(i64 r1..r5) -> i64`, so the Vm puts
// them straight into a program's helper slots: a map lookup from BPF never leaves Wasm.
// Its `host_*` exports take i32 addresses and serve the host-side map API, so that the host
// and BPF share one implementation of every map operation.
//
// Every operation dispatches on the map's family (one file per family, named after the
// kernel's). Operations a family does not have answer as the kernel's ops do (NULL, -EINVAL,
// -EOPNOTSUPP). Map families not implemented here are served by the host through
// `env.map_op_slow`. The frame allocator's kfuncs are here too; its host exports are re-exported
// from frame-alloc.ts.

import {
  BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_BLOOM_FILTER, BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_HASH_OF_MAPS, BPF_MAP_TYPE_LPM_TRIE, BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_LRU_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY, BPF_MAP_TYPE_PERCPU_HASH,
  BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_QUEUE, BPF_MAP_TYPE_STACK, EINVAL, EOPNOTSUPP, MAP_DATA,
  MAP_ELEM_SIZE, MAP_KEY_SIZE, MAP_MAX_ENTRIES, MAP_N_CPUS, MAP_TYPE, MAP_VALUE_SIZE,
  BPF_MAP_TYPE_RINGBUF, MAP_DESC_SIZE, MAP_LOCK, CORO_CTL_COMPLETED, CORO_CTL_CREATED,
  CORO_CTL_DESTROYED, CORO_CHECK_RECORD,
} from './abi';
import { arrayLookup, arrayNextKey, arrayUpdate, fdArrayDelete } from './arraymap';
import { bloomInit, bloomPeek, bloomPush } from './bloom-filter';
import { htabDelete, htabInit, htabLookup, htabNextKey, htabUpdate } from './hashtab';
import { lpmDelete, lpmInit, lpmLookup, lpmNextKey, lpmUpdate } from './lpm-trie';
import { mapInMapLookup, mapInMapSlot, mapInMapUpdate } from './map-in-map';
import { progArrayGet, progArrayUpdate } from './prog-array';
import { qsFront, qsGet, qsInit, qsPush } from './queue-stack';
import { err, mapOk, ptrOk } from './util';
import { coro_frame_check as frameCheck, coroFrameAlloc, coroFrameFree, frameAlloc, frameFree, runningOwner } from './frame-alloc';
import { coroCount } from './coro';
import { RINGBUF_HDR, RINGBUF_POS_BYTES, ringOfRecord, ringbufCommit, ringbufOutput, ringbufQuery, ringbufRecordLive, ringbufReserve } from './ringbuf';

export {
  alloc_attach, alloc_counter, alloc_flush, alloc_init, alloc_next_live, alloc_set_region, alloc_obj_owner, alloc_obj_size,
  alloc_owner_live, alloc_set_cap, alloc_top, host_frame_alloc, host_frame_free,
} from './frame-alloc';

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

// Map families: the implementation a map type dispatches to.
const FAM_SLOW: u32 = 0;
const FAM_ARRAY: u32 = 1;
const FAM_HTAB: u32 = 2;
const FAM_QUEUE_STACK: u32 = 3;
const FAM_BLOOM: u32 = 4;
const FAM_LPM: u32 = 5;
const FAM_ARRAY_OF_MAPS: u32 = 6;
const FAM_HASH_OF_MAPS: u32 = 7;
const FAM_PROG_ARRAY: u32 = 8;

/** Ring buffers: the generic lookup/update/delete are refused (slow path errors). */
const FAM_RINGBUF: u32 = 100;

function family(map: usize): u32 {
  switch (load<u32>(map, MAP_TYPE)) {
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
      return FAM_ARRAY;
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      return FAM_HTAB;
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK:
      return FAM_QUEUE_STACK;
    case BPF_MAP_TYPE_BLOOM_FILTER:
      return FAM_BLOOM;
    case BPF_MAP_TYPE_LPM_TRIE:
      return FAM_LPM;
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
      return FAM_ARRAY_OF_MAPS;
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      return FAM_HASH_OF_MAPS;
    case BPF_MAP_TYPE_PROG_ARRAY:
      return FAM_PROG_ARRAY;
    case BPF_MAP_TYPE_RINGBUF:
      return FAM_RINGBUF;
    default:
      return FAM_SLOW;
  }
}

// ---- the operations, shared by BPF and the host ----

/** map_push_elem: queue, stack and bloom_filter. */
function pushElem(m: usize, value: usize, flags: u64): u64 {
  const f = family(m);
  if (f == FAM_QUEUE_STACK) return qsPush(m, value, flags);
  if (f == FAM_BLOOM) return bloomPush(m, value, flags);
  return err(EINVAL);
}

/** map_pop_elem: queue and stack; a bloom filter cannot give values back. */
function popElem(m: usize, value: usize): u64 {
  const f = family(m);
  if (f == FAM_QUEUE_STACK) return qsGet(m, value, true);
  if (f == FAM_BLOOM) return err(EOPNOTSUPP);
  return err(EINVAL);
}

/** map_peek_elem: the front of a queue or stack, or bloom filter membership of `value`. */
function peekElem(m: usize, value: usize): u64 {
  const f = family(m);
  if (f == FAM_QUEUE_STACK) return qsGet(m, value, false);
  if (f == FAM_BLOOM) return bloomPeek(m, value);
  return err(EINVAL);
}

// ---- helpers, called from BPF ----

/** BPF_FUNC_map_lookup_elem (1): the value's address or NULL (an inner map for map-in-map). */
export function bpf_map_lookup_elem(map: u64, key: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map) || !ptrOk(key, load<u32>(<usize>map, MAP_KEY_SIZE))) return 0;
  const m = <usize>map;
  switch (family(m)) {
    case FAM_ARRAY:
      return arrayLookup(m, <usize>key, cpu);
    case FAM_HTAB:
      return htabLookup(m, <usize>key, cpu);
    case FAM_LPM:
      return lpmLookup(m, <usize>key);
    case FAM_ARRAY_OF_MAPS:
    case FAM_HASH_OF_MAPS:
      return mapInMapLookup(m, <usize>key);
    case FAM_SLOW:
      return mapOpSlow(OP_LOOKUP, <u32>m, <u32>key, 0, 0);
    default:
      return 0; // queue, stack, bloom_filter, prog_array: nothing to point at
  }
}

/** BPF_FUNC_map_update_elem (2): 0 or a negative errno. */
export function bpf_map_update_elem(map: u64, key: u64, value: u64, flags: u64, r5: u64): u64 {
  if (!mapOk(map)) return err(EINVAL);
  const m = <usize>map;
  if (!ptrOk(key, load<u32>(m, MAP_KEY_SIZE)) || !ptrOk(value, load<u32>(m, MAP_VALUE_SIZE))) return err(EINVAL);
  switch (family(m)) {
    case FAM_ARRAY:
      return arrayUpdate(m, <usize>key, <usize>value, flags, cpu);
    case FAM_HTAB:
      return htabUpdate(m, <usize>key, <usize>value, flags, cpu, false);
    case FAM_LPM:
      return lpmUpdate(m, <usize>key, <usize>value, flags);
    case FAM_SLOW:
      return mapOpSlow(OP_UPDATE, <u32>m, <u32>key, <u32>value, flags);
    default:
      return err(EINVAL); // queue/stack/bloom push instead; fd maps are written by the host
  }
}

/** BPF_FUNC_map_delete_elem (3): 0 or a negative errno. */
export function bpf_map_delete_elem(map: u64, key: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map)) return err(EINVAL);
  const m = <usize>map;
  if (!ptrOk(key, load<u32>(m, MAP_KEY_SIZE))) return err(EINVAL);
  switch (family(m)) {
    case FAM_HTAB:
      return htabDelete(m, <usize>key);
    case FAM_LPM:
      return lpmDelete(m, <usize>key);
    case FAM_BLOOM:
      return err(EOPNOTSUPP);
    case FAM_SLOW:
      return mapOpSlow(OP_DELETE, <u32>m, <u32>key, 0, 0);
    default:
      return err(EINVAL);
  }
}

/** BPF_FUNC_map_push_elem (87): `(map, value, flags)`; 0 or a negative errno. */
export function bpf_map_push_elem(map: u64, value: u64, flags: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map) || !ptrOk(value, load<u32>(<usize>map, MAP_VALUE_SIZE))) return err(EINVAL);
  return pushElem(<usize>map, <usize>value, flags);
}

/** BPF_FUNC_map_pop_elem (88): `(map, value)`; copies out and removes the front element. */
export function bpf_map_pop_elem(map: u64, value: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map) || !ptrOk(value, load<u32>(<usize>map, MAP_VALUE_SIZE))) return err(EINVAL);
  return popElem(<usize>map, <usize>value);
}

/** BPF_FUNC_map_peek_elem (89): `(map, value)`; copies out the front element (bloom: tests `value`). */
export function bpf_map_peek_elem(map: u64, value: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map) || !ptrOk(value, load<u32>(<usize>map, MAP_VALUE_SIZE))) return err(EINVAL);
  return peekElem(<usize>map, <usize>value);
}

/**
 * For bpf_tail_call: the function token in slot `index` of prog_array `map`, or 0 when `map`
 * is not a prog_array, the index is out of range or the slot is empty.
 */
export function prog_array_get(map: u32, index: u32): u32 {
  if (!mapOk(<u64>map) || load<u32>(map, MAP_TYPE) != BPF_MAP_TYPE_PROG_ARRAY) return 0;
  return progArrayGet(map, index);
}

// ---- host side: i32 addresses the host has already checked ----

/** Prepares a new map's storage (the host has filled the descriptor and allocated storage). */
export function host_map_init(map: u32): void {
  switch (family(map)) {
    case FAM_ARRAY:
    case FAM_ARRAY_OF_MAPS:
    case FAM_PROG_ARRAY: {
      const t = load<u32>(map, MAP_TYPE);
      const copies = t == BPF_MAP_TYPE_PERCPU_ARRAY ? load<u32>(map, MAP_N_CPUS) : 1;
      memory.fill(load<u32>(map, MAP_DATA), 0, load<u32>(map, MAP_MAX_ENTRIES) * load<u32>(map, MAP_ELEM_SIZE) * copies);
      break;
    }
    case FAM_HTAB:
    case FAM_HASH_OF_MAPS:
      htabInit(map);
      break;
    case FAM_QUEUE_STACK:
      qsInit(map);
      break;
    case FAM_BLOOM:
      bloomInit(map);
      break;
    case FAM_LPM:
      lpmInit(map);
      break;
    case FAM_RINGBUF:
      memory.fill(load<u32>(map, MAP_DATA), 0, RINGBUF_POS_BYTES);
      store<u32>(map, 0, MAP_LOCK);
      break;
    default:
  }
}

/**
 * Address of the value (CPU 0's copy for percpu maps; the others follow), or 0. Map-in-map
 * and prog_array: the slot (holding a descriptor address or a token). Queue and stack: the
 * element peek would return.
 */
export function host_lookup(map: u32, key: u32): u32 {
  switch (family(map)) {
    case FAM_ARRAY:
    case FAM_PROG_ARRAY:
      return <u32>arrayLookup(map, key, 0);
    case FAM_HTAB:
      return <u32>htabLookup(map, key, 0);
    case FAM_LPM:
      return <u32>lpmLookup(map, key);
    case FAM_ARRAY_OF_MAPS:
    case FAM_HASH_OF_MAPS:
      return <u32>mapInMapSlot(map, key);
    case FAM_QUEUE_STACK:
      return <u32>qsFront(map);
    default:
      return 0;
  }
}

/** Percpu array update from the host: `value` holds every CPU's copy. */
function percpuArrayUpdate(map: u32, key: u32, value: u32, flags: u64): u64 {
  const n = load<u32>(map, MAP_N_CPUS);
  const stride = load<u32>(map, MAP_ELEM_SIZE);
  for (let c: u32 = 0; c < n; c++) {
    const r = arrayUpdate(map, key, value + c * stride, flags, c);
    if (r != 0) return r;
  }
  return 0;
}

/**
 * Update with every CPU's value for percpu maps (`value` holds them back to back). Queue,
 * stack and bloom_filter push, as the kernel's BPF_MAP_UPDATE_ELEM does.
 */
export function host_update(map: u32, key: u32, value: u32, flags: u64): i64 {
  switch (family(map)) {
    case FAM_ARRAY:
      if (load<u32>(map, MAP_TYPE) == BPF_MAP_TYPE_PERCPU_ARRAY) return <i64>percpuArrayUpdate(map, key, value, flags);
      return <i64>arrayUpdate(map, key, value, flags, 0);
    case FAM_HTAB:
      return <i64>htabUpdate(map, key, value, flags, 0, true);
    case FAM_LPM:
      return <i64>lpmUpdate(map, key, value, flags);
    case FAM_QUEUE_STACK:
    case FAM_BLOOM:
      return <i64>pushElem(map, value, flags);
    case FAM_ARRAY_OF_MAPS:
    case FAM_HASH_OF_MAPS:
      return <i64>mapInMapUpdate(map, key, value, flags);
    case FAM_PROG_ARRAY:
      return <i64>progArrayUpdate(map, key, value, flags);
    default:
      return <i64>err(EINVAL);
  }
}

/** Delete from the host. */
export function host_delete(map: u32, key: u32): i64 {
  switch (family(map)) {
    case FAM_HTAB:
    case FAM_HASH_OF_MAPS:
      return <i64>htabDelete(map, key);
    case FAM_LPM:
      return <i64>lpmDelete(map, key);
    case FAM_ARRAY_OF_MAPS:
    case FAM_PROG_ARRAY:
      return <i64>fdArrayDelete(map, key);
    case FAM_BLOOM:
      return <i64>err(EOPNOTSUPP);
    default:
      return <i64>err(EINVAL);
  }
}

/** Next key after `key` (0: the first) into `next`; 0, -ENOENT at the end, or -EINVAL. */
export function host_next_key(map: u32, key: u32, next: u32): i32 {
  switch (family(map)) {
    case FAM_ARRAY:
    case FAM_ARRAY_OF_MAPS:
    case FAM_PROG_ARRAY:
      return arrayNextKey(map, key, next);
    case FAM_HTAB:
    case FAM_HASH_OF_MAPS:
      return htabNextKey(map, key, next);
    case FAM_LPM:
      return lpmNextKey(map, key, next);
    default:
      return <i32>-EINVAL;
  }
}

/** map_push_elem from the host. */
export function host_push(map: u32, value: u32, flags: u64): i64 {
  return <i64>pushElem(map, value, flags);
}

/** map_pop_elem from the host (BPF_MAP_LOOKUP_AND_DELETE_ELEM): the element goes to `value`. */
export function host_pop(map: u32, value: u32): i64 {
  return <i64>popElem(map, value);
}

/** map_peek_elem from the host: the front element to `value`, or bloom membership of `value`. */
export function host_peek(map: u32, value: u32): i64 {
  return <i64>peekElem(map, value);
}

// ---- ring buffers, called from BPF ----

function isRingbuf(map: u64): bool {
  return mapOk(map) && load<u32>(<usize>map, MAP_TYPE) == BPF_MAP_TYPE_RINGBUF;
}

/** The live ring buffer record at `p`, or 0 (the ring buffer found from the record's header). */
function recordRing(p: u64): usize {
  if (!ptrOk(p, 1) || !ptrOk(p - RINGBUF_HDR, RINGBUF_HDR)) return 0;
  const ring = ringOfRecord(<usize>p, MAP_DESC_SIZE);
  return ring != 0 && isRingbuf(<u64>ring) ? ring : 0;
}

/**
 * The call table's CORO_FRAME_CHECK_SLOT (src/abi.ts): 1 when `frame` is a live coroutine
 * frame of at least `need` bytes. With CORO_CHECK_RECORD in `need` (an access through a
 * coroutine handle), the data of a reserved ring buffer record of at least that many bytes
 * passes too: a resume function reaches the record it kept in its frame that way on the paths
 * the verifier could not type (src/verifier/check-coro.ts). Never traps, for any u32.
 */
export function coro_frame_check(frame: u32, need: u32): u32 {
  if ((need & CORO_CHECK_RECORD) == 0) return frameCheck(frame, need);
  const bytes = need & ~CORO_CHECK_RECORD;
  if (frameCheck(frame, bytes) != 0) return 1;
  const ring = recordRing(<u64>frame);
  return ring != 0 && ringbufRecordLive(ring, <usize>frame, bytes) ? 1 : 0;
}

/** BPF_FUNC_ringbuf_output (130). */
export function bpf_ringbuf_output(map: u64, data: u64, size: u64, flags: u64, r5: u64): u64 {
  if (!isRingbuf(map) || size > 0x3fffffff || !ptrOk(data, <u32>size)) return err(EINVAL);
  return ringbufOutput(<usize>map, <usize>data, size, flags);
}

/** BPF_FUNC_ringbuf_reserve (131): the record's address or NULL. */
export function bpf_ringbuf_reserve(map: u64, size: u64, flags: u64, r4: u64, r5: u64): u64 {
  if (!isRingbuf(map)) return 0;
  return <u64>ringbufReserve(<usize>map, size, flags);
}

/** BPF_FUNC_ringbuf_submit (132). */
export function bpf_ringbuf_submit(data: u64, flags: u64, r3: u64, r4: u64, r5: u64): u64 {
  const ring = recordRing(data);
  return ring == 0 ? err(EINVAL) : ringbufCommit(ring, <usize>data, false);
}

/** BPF_FUNC_ringbuf_discard (133). */
export function bpf_ringbuf_discard(data: u64, flags: u64, r3: u64, r4: u64, r5: u64): u64 {
  const ring = recordRing(data);
  return ring == 0 ? err(EINVAL) : ringbufCommit(ring, <usize>data, true);
}

/** BPF_FUNC_ringbuf_query (134). */
export function bpf_ringbuf_query(map: u64, flags: u64, r3: u64, r4: u64, r5: u64): u64 {
  return isRingbuf(map) ? ringbufQuery(<usize>map, flags) : 0;
}

/** BPF_FUNC_tail_call (12), resolver half: the target's function token, or 0. */
export function bpf_tail_call(ctx: u64, map: u64, index: u64, r4: u64, r5: u64): u64 {
  if (!mapOk(map) || index > 0xffffffff) return 0;
  return <u64>prog_array_get(<u32>map, <u32>index);
}

// Coroutine kfuncs and the deferred-frame drain (runtime/wasm/coro.ts).
export { bpf_task_acquire, bpf_task_release } from './task-ref';
export {
  bpf_coro_defer, bpf_coro_enqueue, bpf_coro_yield, bpf_coro_sleep_queued, bpf_coro_detach,
  bpf_coro_await, bpf_coro_done,
  bpf_coro_take_cancelled, bpf_coro_handle_frame, bpf_coro_reap, bpf_coro_drain, coro_set_worker, coro_resume, coro_destroy, coro_drain_deferred,
  coro_drain_queue, coro_frame_flags, coro_entry_check,
} from './coro';

// ---- the frame allocator's kfuncs, called from BPF (runtime/wasm/frame-alloc.ts) ----

/** bpf_coro_frame_alloc(size, ctx): a zeroed coroutine frame with its header filled, or NULL. */
export function bpf_coro_frame_alloc(size: u64, ctx: u64, r3: u64, r4: u64, r5: u64): u64 {
  const f = coroFrameAlloc(size, runningOwner());
  if (f != 0) coroCount(CORO_CTL_CREATED);
  return <u64>f;
}

/** bpf_coro_frame_free(frame): frees a live frame; anything else is counted and ignored. */
export function bpf_coro_frame_free(frame: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  // the resume token (frame + 0) is not touched by the free: done or destroyed early?
  if (coroFrameFree(frame)) coroCount(load<u64>(<usize>frame) == 0 ? CORO_CTL_COMPLETED : CORO_CTL_DESTROYED);
  return 0;
}

/**
 * bpf_obj_new_impl(size, meta): a zeroed object or NULL. The verifier's fixup has replaced the
 * BTF type id in r1 by the object's size, as the kernel's does.
 */
export function bpf_obj_new_impl(size: u64, meta: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (size > 0xffffffff) return 0;
  return <u64>frameAlloc(<u32>size, runningOwner());
}

/** bpf_obj_drop_impl(p, meta): frees an object; a bad pointer is counted and ignored. */
export function bpf_obj_drop_impl(p: u64, meta: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (p <= 0xffffffff) frameFree(<usize>p);
  else frameFree(0);
  return 0;
}
