/**
 * The live coroutine frames of a Vm, from its frame allocator, as a set-like view for tests:
 * `live.size` and `[...live]` are read at the moment they are asked.
 */

import { CORO_HDR_SIZE } from '../../src/abi.js';
import type { Vm } from '../../src/index.js';

/** Live coroutine frames (frame addresses) of `vm`. */
export interface LiveFrames extends Iterable<number> {
  readonly size: number;
}

/** A view of the live coroutine frames of `vm`. */
export function liveFrames(vm: Vm): LiveFrames {
  const now = (): number[] =>
    vm.allocator
      .liveObjects()
      .map((o) => o.addr + CORO_HDR_SIZE)
      .filter((f) => vm.allocator.isCoroFrame(f));
  return {
    get size() {
      return now().length;
    },
    [Symbol.iterator]: () => now()[Symbol.iterator](),
  };
}
