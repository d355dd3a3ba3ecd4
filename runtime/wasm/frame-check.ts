// AssemblyScript: is an address a live coroutine frame? The frame allocator owns the answer
// (runtime/wasm/frame-alloc.ts); until it is linked in, the check reads the frame header:
// inside memory, magic set, frame size large enough.

import { CORO_HDR_MAGIC, CORO_HDR_SIZE, CORO_HDR_SIZE_FIELD, CORO_MAGIC, NULL_GUARD_END } from './abi';

/** 1 when `frame` is a live coroutine frame of at least `need` bytes; never traps. */
export function coroFrameCheck(frame: u32, need: u32): u32 {
  if (frame < NULL_GUARD_END + CORO_HDR_SIZE || (frame & 7) != 0) return 0;
  const end = <u64>memory.size() << 16;
  if (<u64>frame + <u64>need > end) return 0;
  const f = <usize>frame;
  if (load<u32>(f + CORO_HDR_MAGIC) != CORO_MAGIC) return 0;
  return load<u32>(f + CORO_HDR_SIZE_FIELD) >= need ? 1 : 0;
}
