// AssemblyScript: BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (the kernel's queue_stack_maps.c).
// A ring of max_entries + 1 slots of elem_size bytes at MAP_DATA. MAP_HEAD is the slot the next
// push writes, MAP_TAIL the oldest element; head == tail means empty, so a full ring keeps one
// slot free. Both push at head; a queue pops at tail (FIFO), a stack at head - 1 (LIFO).
// Values are copied in and out: no element address is ever handed out, so BPF programs have
// no pointer into the ring.
//
// Concurrency (rt-shared.wasm; sync.ts): push, pop and peek run under the map's lock word
// (MAP_LOCK), positions and the value copy included, as the kernel's queue_stack_maps.c does
// under its raw spinlock. The section is a few loads and one copy of value_size bytes and calls
// nothing, so every element pushed is popped exactly once however many workers and the host
// push and pop at once (queues carry coroutine handles between workers). A taker that finds
// the lock held too long fails with -EBUSY (the kernel's trylock from NMI does the same). In
// rt.wasm the lock calls compile to nothing.
//
// Called from BPF (bpf_map_push/pop/peek_elem in rt.ts) and from the host (host_push/...).

import {
  BPF_EXIST, BPF_MAP_TYPE_QUEUE, BPF_NOEXIST, E2BIG, EINVAL, ENOENT, MAP_DATA, MAP_ELEM_SIZE,
  MAP_HEAD, MAP_MAX_ENTRIES, MAP_TAIL, MAP_TYPE, MAP_VALUE_SIZE,
  EBUSY, MAP_LOCK,
} from './abi';
import { ld32, lockWord, st32, unlockWord } from './sync';
import { err } from './util';

/** The ring slot after `i`. */
function ringNext(map: usize, i: u32): u32 {
  return i == load<u32>(map, MAP_MAX_ENTRIES) ? 0 : i + 1;
}

/** The ring slot before `i`. */
function ringPrev(map: usize, i: u32): u32 {
  return i == 0 ? load<u32>(map, MAP_MAX_ENTRIES) : i - 1;
}

function slot(map: usize, i: u32): usize {
  return load<u32>(map, MAP_DATA) + i * load<u32>(map, MAP_ELEM_SIZE);
}

/** Host, once: empties the ring. */
export function qsInit(map: usize): void {
  store<u32>(map, 0, MAP_HEAD);
  store<u32>(map, 0, MAP_TAIL);
  store<u32>(map, 0, MAP_LOCK);
}

/**
 * map_push_elem: BPF_ANY pushes or fails with -E2BIG when full; BPF_EXIST makes room by
 * dropping the oldest element (for a stack too, as the kernel does); BPF_NOEXIST is -EINVAL.
 */
export function qsPush(map: usize, value: usize, flags: u64): u64 {
  if ((flags & BPF_NOEXIST) != 0 || flags > BPF_EXIST) return err(EINVAL);
  if (!lockWord(map + MAP_LOCK)) return err(EBUSY);
  const r = qsPushLocked(map, value, flags);
  unlockWord(map + MAP_LOCK);
  return r;
}

function qsPushLocked(map: usize, value: usize, flags: u64): u64 {
  const head = ld32(map + MAP_HEAD);
  const next = ringNext(map, head);
  const tail = ld32(map + MAP_TAIL);
  if (next == tail) {
    if ((flags & BPF_EXIST) == 0) return err(E2BIG);
    st32(map + MAP_TAIL, ringNext(map, tail));
  }
  memory.copy(slot(map, head), value, load<u32>(map, MAP_VALUE_SIZE));
  st32(map + MAP_HEAD, next);
  return 0;
}

/**
 * The slot pop and peek read (the oldest for a queue, the newest for a stack), or 0 when empty.
 * Host lookups use it unlocked: with workers the element may be popped and overwritten meanwhile.
 */
export function qsFront(map: usize): usize {
  const head = ld32(map + MAP_HEAD);
  const tail = ld32(map + MAP_TAIL);
  if (head == tail) return 0;
  if (load<u32>(map, MAP_TYPE) == BPF_MAP_TYPE_QUEUE) return slot(map, tail);
  return slot(map, ringPrev(map, head));
}

/**
 * map_pop_elem (`remove`) and map_peek_elem: copies the front element to `value`. When empty
 * `value` is zeroed and the result is -ENOENT, as in the kernel (-EBUSY: the lock stayed held).
 */
export function qsGet(map: usize, value: usize, remove: bool): u64 {
  if (!lockWord(map + MAP_LOCK)) {
    memory.fill(value, 0, load<u32>(map, MAP_VALUE_SIZE));
    return err(EBUSY);
  }
  const r = qsGetLocked(map, value, remove);
  unlockWord(map + MAP_LOCK);
  return r;
}

function qsGetLocked(map: usize, value: usize, remove: bool): u64 {
  const vs = load<u32>(map, MAP_VALUE_SIZE);
  const at = qsFront(map);
  if (at == 0) {
    memory.fill(value, 0, vs);
    return err(ENOENT);
  }
  memory.copy(value, at, vs);
  if (remove) {
    if (load<u32>(map, MAP_TYPE) == BPF_MAP_TYPE_QUEUE) {
      st32(map + MAP_TAIL, ringNext(map, ld32(map + MAP_TAIL)));
    } else {
      st32(map + MAP_HEAD, ringPrev(map, ld32(map + MAP_HEAD)));
    }
  }
  return 0;
}
