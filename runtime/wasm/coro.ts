// AssemblyScript: the coroutine kfuncs and the deferred-frame drain (notes/coroutines.md,
// DESIGN.md §5). A coroutine frame has the resume token at +0 (0 once done), the destroy token
// at +8, and the runtime's header before it (src/abi.ts CORO_HDR). Everything here runs on the
// worker that calls it and never enters JavaScript:
//
//  - bpf_coro_defer(frame): onto this worker's deferred ring; the run's entry drains the ring
//    when the program returns (task_work), so the frame continues on the same worker before
//    the run ends. A full ring, or a Vm configured so, yields to the ready queue instead.
//  - bpf_coro_enqueue(queue, frame) / bpf_coro_yield(frame): push the handle into a queue map
//    (BPF_MAP_TYPE_QUEUE of u64); a host scheduler or a BPF worker program pops and resumes it,
//    on any worker.
//  - bpf_coro_detach(frame), bpf_coro_await(child, parent): ownership, for the reaper below.
//  - bpf_coro_take_cancelled(ctx): pops a frame the host cancelled, for BPF to destroy.
//  - bpf_coro_handle_frame(handle): the frame of a handle a BPF worker popped, NULL if stale.
//
// Queues carry tagged handles, `seq << 32 | frame` (the header's allocation sequence number),
// so a handle that outlived its frame is recognised even if the memory was reused.
//
// A frame the runtime resumes and finds done afterwards is destroyed through its destroy token
// ("reaped") unless another coroutine awaits it (header `parent`): that one destroys it. The
// header's `seq` tells a frame from a later one at the same address, so a frame freed during
// its own resume (a parent destroyed it) is left alone.
//
// Handles are checked (`frameOk`) before use: bad ones are counted and ignored, never trusted.

import {
  BPF_MAP_TYPE_QUEUE, CORO_CTL_BAD, CORO_CTL_CANCEL_QUEUE, CORO_CTL_DEFERRED,
  CORO_CTL_DEFER_TO_READY, CORO_CTL_QUEUED, CORO_CTL_READY_QUEUE, CORO_CTL_REAPED,
  CORO_CTL_RESUMED, CORO_CTL_TOKEN_LIMIT, CORO_F_DETACHED, CORO_F_QUEUED,
  CORO_HDR_DEADLINE, CORO_HDR_FLAGS, CORO_HDR_PARENT, CORO_HDR_SEQ, CORO_HDR_SIZE, CORO_HDR_MAGIC, CORO_MAGIC, CTRL_BASE, CORO_CTL_OFF, CTRL_CORO_DEPTH, CTRL_CORO_CURRENT, CTRL_CORO_SCRATCH, CTRL_DEFER_HEAD, CTRL_DEFER_RING, CORO_CTL_ENTRY_MAP,
  CORO_CTL_SLEEP_QUEUE, CORO_F_SLEEPING, CTRL_CORO_SLEEP, CORO_F_DYING,
  CTRL_DEFER_TAIL, CTRL_PROG, CORO_HDR_OWNER, DEFER_RING_CAP, DEFER_RING_OFF, EINVAL, ENOENT, FUNC_TOKEN_BASE, MAP_TYPE,
  MAP_VALUE_SIZE, NULL_GUARD_END,
} from './abi';
import { coro_frame_check as coroFrameCheck } from './frame-alloc';
import { bpf_map_pop_elem, bpf_map_push_elem } from './rt';
import { mapOk } from './util';

const CTL: usize = CTRL_BASE + CORO_CTL_OFF;

/** This instance's control slot and worker area (set by the host once per instance). */
let ctrlSlot: usize = 0;
let deferRing: usize = 0;

/** Host, once per instance: the control slot and worker area of the worker it runs on. */
export function coro_set_worker(ctrl: u32, area: u32): void {
  ctrlSlot = ctrl;
  deferRing = <usize>area + DEFER_RING_OFF;
  // generated code's inline bpf_coro_defer pushes onto the same ring (jit/inline-kfunc.ts)
  store<u32>(ctrl + CTRL_DEFER_RING, <u32>deferRing);
}

/**
 * 1 when function token `token` is a verified token entry (a resume / destroy function: the
 * entry map at CORO_CTL_ENTRY_MAP, kept by the host), else 0. Generated code calls it through
 * CORO_ENTRY_CHECK_SLOT before a checked `callx`. Never traps, for any u32.
 */
export function coro_entry_check(token: u32): u32 {
  const map = <usize>load<u32>(CTL + CORO_CTL_ENTRY_MAP);
  const i = token - <u32>FUNC_TOKEN_BASE;
  if (map == 0 || token < <u32>FUNC_TOKEN_BASE || i >= load<u32>(map)) return 0;
  return (<u32>load<u8>(map + 4 + (i >> 3)) >> (i & 7)) & 1;
}

// @ts-ignore: decorator
@inline function count(field: usize): void {
  if (RT_SHARED) atomic.add<u64>(CTL + field, 1);
  else store<u64>(CTL + field, load<u64>(CTL + field) + 1);
}

/** Bumps Vm-wide coroutine counter `field` (CORO_CTL_*): frames created, completed, destroyed. */
export function coroCount(field: u32): void {
  count(<usize>field);
}

// @ts-ignore: decorator
@inline function setFlags(f: usize, m: u32): void {
  if (RT_SHARED) atomic.or<u32>(f + CORO_HDR_FLAGS, m);
  else store<u32>(f + CORO_HDR_FLAGS, load<u32>(f + CORO_HDR_FLAGS) | m);
}

// @ts-ignore: decorator
@inline function clearFlags(f: usize, m: u32): void {
  if (RT_SHARED) atomic.and<u32>(f + CORO_HDR_FLAGS, ~m);
  else store<u32>(f + CORO_HDR_FLAGS, load<u32>(f + CORO_HDR_FLAGS) & ~m);
}

/** A live coroutine frame of at least the 16 bytes of resume and destroy tokens. */
function frameOk(frame: u64): bool {
  if (frame > 0xffffffff || <u32>frame < NULL_GUARD_END + CORO_HDR_SIZE) return false;
  return coroFrameCheck(<u32>frame, 16) != 0;
}

function bad(): u64 {
  count(CORO_CTL_BAD);
  return 0;
}

/** The frame at `f` is still the one whose sequence number was `seq`. */
function sameFrame(f: usize, seq: u32): bool {
  return coroFrameCheck(<u32>f, 16) != 0 && load<u32>(f + CORO_HDR_SEQ) == seq;
}

/**
 * `sameFrame` for a frame the runtime validated when it was handed over (the deferred ring,
 * the host's resume): inside memory, the header's magic and sequence number unchanged. A free
 * clears the magic and a later allocation gets a new sequence number; what a forged header
 * could reach is a function token whose entry checks its frame again (jit: coro_frame_check).
 */
/** Inside memory with a coroutine header's magic (no allocator walk). */
// @ts-ignore: decorator
@inline function headerOk(frame: u64): bool {
  return (
    frame >= <u64>(NULL_GUARD_END + CORO_HDR_SIZE) &&
    frame + 16 <= (<u64>memory.size() << 16) &&
    load<u32>(<usize>frame + CORO_HDR_MAGIC) == CORO_MAGIC
  );
}

// @ts-ignore: decorator
@inline function stillFrame(f: usize, seq: u32): bool {
  return (
    f >= <usize>(NULL_GUARD_END + CORO_HDR_SIZE) &&
    <u64>f + 16 <= (<u64>memory.size() << 16) &&
    load<u32>(f + CORO_HDR_MAGIC) == CORO_MAGIC &&
    load<u32>(f + CORO_HDR_SEQ) == seq
  );
}

/** A token the call table can hold: a function token below the Vm's limit. */
function tokenOk(t: u64): bool {
  return t >= FUNC_TOKEN_BASE && t < <u64>load<u32>(CTL + CORO_CTL_TOKEN_LIMIT);
}

/** Pushes handle `f` into queue map `q`: 0 or -errno. */
function pushHandle(q: usize, f: usize): u64 {
  if (q == 0) return <u64>-ENOENT;
  const scratch = ctrlSlot + CTRL_CORO_SCRATCH;
  store<u64>(scratch, tagged(f));
  store<u64>(f + CORO_HDR_DEADLINE, 0);
  setFlags(f, CORO_F_QUEUED);
  const r = bpf_map_push_elem(<u64>q, <u64>scratch, 0, 0, 0);
  if (r != 0) clearFlags(f, CORO_F_QUEUED);
  else count(CORO_CTL_QUEUED);
  return r;
}

/** The tagged handle of frame `f` that queues carry: `seq << 32 | frame`. */
function tagged(f: usize): u64 {
  return (<u64>load<u32>(f + CORO_HDR_SEQ) << 32) | <u64>f;
}

/** The frame of a tagged handle (or plain frame address) when it is still live, else 0. */
function untag(h: u64): usize {
  const f = <u32>h;
  const seq = <u32>(h >> 32);
  if (!frameOk(<u64>f)) return 0;
  if (seq != 0 && load<u32>(<usize>f + CORO_HDR_SEQ) != seq) return 0;
  return <usize>f;
}

/**
 * kfunc `void *bpf_coro_handle_frame(u64 handle)`: the frame of a handle popped from a queue,
 * or NULL when it is stale (the frame was destroyed since it was queued, or the host's sweep
 * is destroying it: CORO_F_DYING). The frame counts as resumed from here (its deadline is
 * cleared, it is no longer queued): the caller resumes it with `callx`.
 */
export function bpf_coro_handle_frame(h: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  const f = untag(h);
  if (f == 0 || (load<u32>(f + CORO_HDR_FLAGS) & CORO_F_DYING) != 0) return bad();
  store<u64>(f + CORO_HDR_DEADLINE, 0);
  if ((load<u32>(f + CORO_HDR_FLAGS) & CORO_F_QUEUED) != 0) clearFlags(f, CORO_F_QUEUED);
  return <u64>f;
}

/**
 * kfunc `long bpf_coro_reap(u64 handle)`: after a BPF worker resumed a handle, destroys its
 * frame if it is done and no coroutine awaits it; 1 when it did, 0 otherwise.
 */
export function bpf_coro_reap(h: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  const f = untag(h);
  if (f == 0 || load<u64>(f) != 0 || load<u32>(f + CORO_HDR_PARENT) != 0) return 0;
  coroReap(f);
  return 1;
}

/** A queue map of 8-byte values. */
function isHandleQueue(q: u64): bool {
  return mapOk(q) && load<u32>(<usize>q, MAP_TYPE) == BPF_MAP_TYPE_QUEUE && load<u32>(<usize>q, MAP_VALUE_SIZE) == 8;
}

/** kfunc `void bpf_coro_defer(void *frame)`. */
export function bpf_coro_defer(frame: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  // only the ring is written here; the drain checks the frame again (magic and sequence
  // number) before it resumes it, and a verified resume function checks its frame at entry,
  // so a header check suffices (no walk of the allocator's span tables on this hot path)
  if (!headerOk(frame)) return bad();
  const f = <usize>frame;
  const head = load<u32>(ctrlSlot + CTRL_DEFER_HEAD);
  const tail = load<u32>(ctrlSlot + CTRL_DEFER_TAIL);
  if (load<u32>(CTL + CORO_CTL_DEFER_TO_READY) != 0 || tail - head >= DEFER_RING_CAP) {
    pushHandle(load<u32>(CTL + CORO_CTL_READY_QUEUE), f);
    return 0;
  }
  const e = deferRing + ((tail & (DEFER_RING_CAP - 1)) << 3);
  store<u32>(e, <u32>f);
  store<u32>(e + 4, load<u32>(f + CORO_HDR_SEQ));
  store<u32>(ctrlSlot + CTRL_DEFER_TAIL, tail + 1);
  count(CORO_CTL_DEFERRED);
  return 0;
}

/** kfunc `long bpf_coro_enqueue(void *queue_map, void *frame)`. */
export function bpf_coro_enqueue(queue: u64, frame: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!isHandleQueue(queue)) return <u64>-EINVAL;
  if (!frameOk(frame)) {
    bad();
    return <u64>-EINVAL;
  }
  return pushHandle(<usize>queue, <usize>frame);
}

/** kfunc `long bpf_coro_yield(void *frame)`: to the back of the Vm's ready queue. */
export function bpf_coro_yield(frame: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!frameOk(frame)) {
    bad();
    return <u64>-EINVAL;
  }
  return pushHandle(load<u32>(CTL + CORO_CTL_READY_QUEUE), <usize>frame);
}

/**
 * kfunc `long bpf_coro_sleep(void *frame, u64 ns)` on a worker thread (the host thread's is JS,
 * runtime/coroutines.ts): timers live on the host's event loop, so the frame, marked sleeping,
 * goes with its delay into the Vm's sleep queue, and the host sets the timer when this worker's
 * request completes. 0, or -errno with nothing changed: -EINVAL for a bad frame, -ENOENT in a
 * Vm without a sleep queue, the queue's error (-E2BIG when full).
 */
export function bpf_coro_sleep_queued(frame: u64, ns: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!frameOk(frame)) {
    bad();
    return <u64>-EINVAL;
  }
  const q = load<u32>(CTL + CORO_CTL_SLEEP_QUEUE);
  if (q == 0) return <u64>-ENOENT;
  const f = <usize>frame;
  const value = ctrlSlot + CTRL_CORO_SLEEP;
  store<u64>(value, tagged(f));
  store<u64>(value + 8, ns);
  store<u64>(f + CORO_HDR_DEADLINE, 0);
  setFlags(f, CORO_F_SLEEPING);
  const r = bpf_map_push_elem(<u64>q, <u64>value, 0, 0, 0);
  if (r != 0) clearFlags(f, CORO_F_SLEEPING);
  return r;
}

/** kfunc `void bpf_coro_detach(void *frame)`: the runtime owns the frame. */
export function bpf_coro_detach(frame: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!frameOk(frame)) return bad();
  setFlags(<usize>frame, CORO_F_DETACHED);
  return 0;
}

/**
 * kfunc `void bpf_coro_done(void *frame)`: called by a Task's final suspend. A detached frame
 * that no coroutine awaits is freed: by the resume loop that is running it (it checks after
 * the call), or else from the deferred ring at the end of the run.
 */
export function bpf_coro_done(frame: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  // a frame CoroElide placed on the BPF stack is no allocator frame: nothing to do
  if (!frameOk(frame)) return 0;
  const f = <usize>frame;
  if (<u32>f == load<u32>(ctrlSlot + CTRL_CORO_CURRENT)) return 0;
  if ((load<u32>(f + CORO_HDR_FLAGS) & CORO_F_DETACHED) == 0) return 0;
  if (load<u32>(f + CORO_HDR_PARENT) != 0) return 0;
  return bpf_coro_defer(frame, 0, 0, 0, 0);
}

/** kfunc `void bpf_coro_await(void *child, void *parent)`: the parent owns the child. */
export function bpf_coro_await(child: u64, parent: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!frameOk(child) || !frameOk(parent)) return bad();
  store<u32>(<usize>child + CORO_HDR_PARENT, <u32>parent);
  return 0;
}

/** kfunc `void *bpf_coro_take_cancelled(void *ctx)`: a cancelled frame, or NULL. */
export function bpf_coro_take_cancelled(ctx: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  const q = load<u32>(CTL + CORO_CTL_CANCEL_QUEUE);
  if (q == 0) return 0;
  const scratch = ctrlSlot + CTRL_CORO_SCRATCH;
  for (let k = 0; k < 64; k++) {
    if (bpf_map_pop_elem(<u64>q, <u64>scratch, 0, 0, 0) != 0) return 0;
    const f = untag(load<u64>(scratch));
    if (f != 0) {
      clearFlags(f, CORO_F_QUEUED);
      return <u64>f;
    }
    bad();
  }
  return 0;
}

/** Calls token `t` with r1 = frame. */
// @ts-ignore: decorator
@inline function callToken(t: u64, f: usize): void {
  call_indirect<u64>(<u32>t, <u64>f, <u64>0, <u64>0, <u64>0, <u64>0);
}

/**
 * Resumes frame `f` (sequence `seq`) and reaps it if it is done afterwards and nobody awaits
 * it. Returns 1 when it ran, 0 when the handle was stale or its token bad.
 */
export function coro_resume(f: u32, seq: u32): u32 {
  const p = <usize>f;
  if (!stillFrame(p, seq)) return 0;
  const flags = load<u32>(p + CORO_HDR_FLAGS);
  // the host's sweep is destroying it: stale
  if ((flags & CORO_F_DYING) != 0) return 0;
  if ((flags & CORO_F_QUEUED) != 0) clearFlags(p, CORO_F_QUEUED);
  store<u64>(p + CORO_HDR_DEADLINE, 0);
  const t = load<u64>(p);
  if (t == 0) {
    // handed over already done (Task's final suspend): reap it if its Task let it go
    if ((flags & CORO_F_DETACHED) != 0 && load<u32>(p + CORO_HDR_PARENT) == 0) coroReap(p);
    return 1;
  }
  if (!tokenOk(t)) {
    bad();
    return 0;
  }
  count(CORO_CTL_RESUMED);
  // the resumed code runs at a deferred point (task context: bpf_get_stack's user stack)
  const depth = ctrlSlot + CTRL_CORO_DEPTH;
  const current = ctrlSlot + CTRL_CORO_CURRENT;
  const outer = load<u32>(current);
  // the resumed code runs as, and allocates for, the program that made the frame
  const prog = ctrlSlot + CTRL_PROG;
  const outerProg = load<u32>(prog);
  store<u32>(depth, load<u32>(depth) + 1);
  store<u32>(current, f);
  store<u32>(prog, load<u32>(p + CORO_HDR_OWNER));
  callToken(t, p);
  store<u32>(prog, outerProg);
  store<u32>(current, outer);
  store<u32>(depth, load<u32>(depth) - 1);
  // done now, and no coroutine awaits it: the runtime, which resumed it, owns it (p was inside
  // memory before the call and memory never shrinks: the token is read first, the cheap test)
  if (load<u64>(p) == 0 && stillFrame(p, seq) && load<u32>(p + CORO_HDR_PARENT) == 0) coroReap(p);
  return 1;
}

/** Destroys frame `f` through its destroy token; returns 1 when the token was called. */
export function coro_destroy(f: u32, seq: u32): u32 {
  const p = <usize>f;
  if (!sameFrame(p, seq)) return 0;
  const d = load<u64>(p + 8);
  if (!tokenOk(d)) {
    bad();
    return 0;
  }
  clearFlags(p, CORO_F_QUEUED);
  callToken(d, p);
  return 1;
}

function coroReap(p: usize): void {
  const d = load<u64>(p + 8);
  if (!tokenOk(d)) {
    bad();
    return;
  }
  count(CORO_CTL_REAPED);
  callToken(d, p);
}

/**
 * The run's entry calls this when the program returns with frames deferred: resumes them in
 * order, including frames they defer in turn, up to `limit`; the rest stay for the next drain.
 * Returns the frames resumed.
 *
 * Same effect as `coro_resume` for each frame, but the resume context (depth, current frame,
 * running program: see coro_resume) is entered once for a run of frames and left only to reap,
 * for a frame coro_resume must handle (stale, done already, bad token) and at the end: between
 * two frames nothing runs that could see it. This is the task_work round trip's hot loop.
 */
export function coro_drain_deferred(limit: u32): u32 {
  const depth = ctrlSlot + CTRL_CORO_DEPTH;
  const current = ctrlSlot + CTRL_CORO_CURRENT;
  const prog = ctrlSlot + CTRL_PROG;
  const outerDepth = load<u32>(depth);
  const outer = load<u32>(current);
  const outerProg = load<u32>(prog);
  let entered = false;
  let n: u32 = 0;
  while (n < limit) {
    const head = load<u32>(ctrlSlot + CTRL_DEFER_HEAD);
    if (head == load<u32>(ctrlSlot + CTRL_DEFER_TAIL)) break;
    const e = deferRing + ((head & (DEFER_RING_CAP - 1)) << 3);
    const f = load<u32>(e);
    const seq = load<u32>(e + 4);
    store<u32>(ctrlSlot + CTRL_DEFER_HEAD, head + 1);
    const p = <usize>f;
    const t: u64 = stillFrame(p, seq) ? load<u64>(p) : 0;
    if (t == 0 || !tokenOk(t) || (load<u32>(p + CORO_HDR_FLAGS) & CORO_F_DYING) != 0) {
      // stale, done already, a bad token or being destroyed by the host's sweep: coro_resume
      // decides, outside the context
      if (entered) {
        store<u32>(prog, outerProg);
        store<u32>(current, outer);
        store<u32>(depth, outerDepth);
        entered = false;
      }
      n += coro_resume(f, seq);
      continue;
    }
    if ((load<u32>(p + CORO_HDR_FLAGS) & CORO_F_QUEUED) != 0) clearFlags(p, CORO_F_QUEUED);
    store<u64>(p + CORO_HDR_DEADLINE, 0);
    count(CORO_CTL_RESUMED);
    if (!entered) {
      store<u32>(depth, outerDepth + 1);
      entered = true;
    }
    store<u32>(current, f);
    store<u32>(prog, load<u32>(p + CORO_HDR_OWNER));
    callToken(t, p);
    n++;
    // done now, and no coroutine awaits it: reaped as coro_resume does, outside the context
    // (the token first, as there)
    if (load<u64>(p) == 0 && stillFrame(p, seq) && load<u32>(p + CORO_HDR_PARENT) == 0) {
      store<u32>(prog, outerProg);
      store<u32>(current, outer);
      store<u32>(depth, outerDepth);
      entered = false;
      coroReap(p);
    }
  }
  if (entered) {
    store<u32>(prog, outerProg);
    store<u32>(current, outer);
    store<u32>(depth, outerDepth);
  }
  return n;
}

/**
 * Pops up to `batch` handles from queue map `q` and resumes each; returns the number popped
 * (stale handles included), so that 0 means the queue was empty.
 */
export function coro_drain_queue(q: u32, batch: u32): u32 {
  if (!isHandleQueue(<u64>q)) return 0;
  const scratch = ctrlSlot + CTRL_CORO_SCRATCH;
  let n: u32 = 0;
  while (n < batch) {
    if (bpf_map_pop_elem(<u64>q, <u64>scratch, 0, 0, 0) != 0) break;
    n++;
    const f = untag(load<u64>(scratch));
    if (f == 0) {
      bad();
      continue;
    }
    coro_resume(<u32>f, load<u32>(f + CORO_HDR_SEQ));
    coro_drain_deferred(0xffffffff);
  }
  return n;
}

/** Sets the runtime-owned `bits` of frame `f`'s flags (host: cancel, sleep bookkeeping). */
export function coro_frame_flags(f: u32, set: u32, clear: u32): u32 {
  if (coroFrameCheck(f, 16) == 0) return 0xffffffff;
  if (set != 0) setFlags(<usize>f, set);
  if (clear != 0) clearFlags(<usize>f, clear);
  return load<u32>(<usize>f + CORO_HDR_FLAGS);
}

/**
 * kfunc `long bpf_coro_drain(void *queue_map, u32 batch)`: pops up to `batch` handles of a
 * handle queue and resumes each on this worker; returns the number popped. The host's
 * `vm.coroutines.drainOn(worker, queue)` runs it on a worker thread.
 */
export function bpf_coro_drain(q: u64, batch: u64, r3: u64, r4: u64, r5: u64): u64 {
  if (!isHandleQueue(q)) return <u64>-EINVAL;
  return <u64>coro_drain_queue(<u32>q, batch > 0xffffffff ? 0xffffffff : <u32>batch);
}
