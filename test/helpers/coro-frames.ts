/**
 * The live coroutine frames of a Vm as a set-like view for tests: `live.size` and `[...live]`
 * are read (vm.coroutines.liveFrames) at the moment they are asked.
 */

import type { Vm } from '../../src/index.js';

/** Live coroutine frames (frame addresses) of `vm`. */
export interface LiveFrames extends Iterable<number> {
  readonly size: number;
}

/** A view of the live coroutine frames of `vm`. */
export function liveFrames(vm: Vm): LiveFrames {
  return {
    get size() {
      return vm.coroutines.liveFrames().length;
    },
    [Symbol.iterator]: () => vm.coroutines.liveFrames()[Symbol.iterator](),
  };
}
