// AssemblyScript: is an address a live coroutine frame? The frame allocator knows
// (runtime/wasm/frame-alloc.ts `coro_frame_check`: a live object, the header's magic, its size).

import { coro_frame_check } from './frame-alloc';

/** 1 when `frame` is a live coroutine frame of at least `need` bytes; never traps. */
// @ts-ignore: decorator
@inline export function coroFrameCheck(frame: u32, need: u32): u32 {
  return coro_frame_check(frame, need);
}
