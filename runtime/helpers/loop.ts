/**
 * Iterator helpers: bpf_loop (181) and bpf_for_each_map_elem (164) call a BPF function (a
 * function token, `lddw rX, func label`) through `callBpf` (call-bpf.ts), on the engine
 * that runs the program.
 *
 * - loop(nr, callback, ctx, flags): flags != 0 is -EINVAL, nr > BPF_MAX_LOOPS (1 << 23) is
 *   -E2BIG; calls callback(i, ctx) for i = 0..nr-1 until it returns non-zero (the verifier
 *   allows 0 = continue, 1 = stop) and returns the number of calls made.
 * - for_each_map_elem(map, callback, ctx, flags): flags != 0 is -EINVAL; calls
 *   callback(map, key, value, ctx) for each element (arrays: every index, the key a u32 the
 *   helper provides; hash maps: the elements present when the helper starts, in next_key
 *   order, the key inside the element; percpu maps: this worker's value) until it returns
 *   non-zero; returns the number of elements visited, the last one included. Elements the
 *   callback deletes before they are reached are skipped. Looking elements up marks them
 *   referenced in LRU maps.
 * - A callback that is not a function token of this Vm is -EINVAL, and so is a map pointer
 *   that is not a map of a type with elements to visit (array, hash and their percpu and LRU
 *   forms).
 * - Termination checkpoint (notes/fast-path-termination.md §10.1): before each callback the
 *   Vm's termination checkpoint is polled (a request, or a deadline on the injected clock);
 *   when the run is being terminated the helper stops and returns the count so far, which is
 *   also what its fast-path version does (it makes no call at all).
 *
 * Called from BPF.
 */

import { CTRL_TERMINATE, type WorkerLayout } from '../../src/abi.js';
import {
  BPF_FUNC_for_each_map_elem,
  BPF_FUNC_loop,
  E2BIG,
  EINVAL,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import { BPF_MAX_LOOPS } from '../../src/isa/opcodes.js';
import type { HeapArena } from '../heap.js';
import type { HelperProto } from '../helpers.js';
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_PERCPU_HASH,
  isPercpuType,
} from '../maps/map-type.js';
import type { RtExports } from '../rt.js';
import type { CallBpfOptions, CallHost } from './call-bpf.js';
import { mapFromPtr, type MapHost } from './map-ptr.js';
import { round8 } from '../../src/abi.js';
import { argU32 } from './mem.js';

/** What the iterator helpers need from the Vm. */
export interface LoopHost extends CallHost, MapHost {
  readonly worker: WorkerLayout;
  readonly heap: HeapArena;
  readonly rt: RtExports;
  /**
   * The termination checkpoint: acts on a request or an expired deadline and returns whether
   * the running program is being terminated.
   */
  pollTermination?(): boolean;
}

/** Calls a BPF function (HelperServices.callBpf). */
export type BpfCaller = (token: bigint, args: readonly bigint[], opts?: CallBpfOptions) => bigint;

/**
 * True when the running program is being terminated (checked between callbacks): the Vm's
 * checkpoint (runtime/termination.ts) when it has one, else the worker's CTRL_TERMINATE word.
 */
function terminating(vm: LoopHost): boolean {
  if (vm.pollTermination !== undefined) return vm.pollTermination();
  return vm.dataView().getUint32(vm.worker.ctrl + CTRL_TERMINATE, true) !== 0;
}

/** bpf_loop(nr_loops, callback_fn, callback_ctx, flags). */
export function bpfLoop(vm: LoopHost, call: BpfCaller, args: HelperArgs): bigint {
  if (args[3] !== 0n) return negErrno(EINVAL);
  const nr = argU32(args[0]);
  if (nr > BPF_MAX_LOOPS) return negErrno(E2BIG);
  if (nr === 0) return 0n;
  if (vm.resolveToken(args[1]) === undefined) return negErrno(EINVAL);
  for (let i = 0; i < nr; i++) {
    if (terminating(vm)) return BigInt(i);
    if (call(args[1], [BigInt(i), args[2]]) !== 0n) return BigInt(i + 1);
  }
  return BigInt(nr);
}

/** The keys for_each visits: every index of an array, the present keys of a hash map. */
function keysOf(map: NonNullable<ReturnType<typeof mapFromPtr>>): Iterable<Uint8Array> {
  if (map.type !== BPF_MAP_TYPE_ARRAY && map.type !== BPF_MAP_TYPE_PERCPU_ARRAY) {
    return [...map.keys()];
  }
  const n = map.maxEntries;
  return (function* () {
    for (let i = 0; i < n; i++) yield new Uint8Array(new Uint32Array([i]).buffer);
  })();
}

/** Map types whose elements for_each_map_elem visits (map_for_each_callback in the kernel). */
const FOR_EACH_TYPES: ReadonlySet<number> = new Set([
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_HASH,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
]);

/** bpf_for_each_map_elem(map, callback_fn, callback_ctx, flags). */
export function forEachMapElem(vm: LoopHost, call: BpfCaller, args: HelperArgs): bigint {
  const map = mapFromPtr(vm, args[0]);
  if (map === undefined || !FOR_EACH_TYPES.has(map.type) || args[3] !== 0n) {
    return negErrno(EINVAL);
  }
  if (vm.resolveToken(args[1]) === undefined) return negErrno(EINVAL);
  const isArray = map.type === BPF_MAP_TYPE_ARRAY || map.type === BPF_MAP_TYPE_PERCPU_ARRAY;
  const cpuOff = isPercpuType(map.type) ? vm.worker.index * round8(map.valueSize) : 0;
  const keyBuf = vm.heap.alloc(round8(map.keySize));
  const regions = [{ start: keyBuf, end: keyBuf + map.keySize, writable: false, name: 'key' }];
  let visited = 0;
  try {
    for (const key of keysOf(map)) {
      if (terminating(vm)) break;
      vm.u8().set(key, keyBuf);
      const value = vm.rt.host_lookup(map.addr, keyBuf);
      if (value === 0) continue;
      const keyPtr = isArray ? keyBuf : value - round8(map.keySize);
      visited++;
      const r = call(args[1], [BigInt(map.addr), BigInt(keyPtr), BigInt(value + cpuOff), args[2]], {
        regions,
      });
      if (r !== 0n) break;
    }
  } finally {
    vm.heap.release(keyBuf);
  }
  return BigInt(visited);
}

/** The iterator helpers; callbacks go through `call`. */
export function loopHelpers(vm: LoopHost, call: BpfCaller): HelperProto[] {
  return [
    { id: BPF_FUNC_loop, name: 'bpf_loop', fn: (args) => bpfLoop(vm, call, args) },
    {
      id: BPF_FUNC_for_each_map_elem,
      name: 'bpf_for_each_map_elem',
      fn: (args) => forEachMapElem(vm, call, args),
    },
  ];
}
