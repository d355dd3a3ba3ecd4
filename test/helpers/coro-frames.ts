/**
 * A stand-in frame allocator for coroutine tests, in JS over the Vm's host heap: fills the
 * runtime's frame header (src/abi.ts CORO_HDR) and counters the way the Wasm allocator does.
 */

import {
  CORO_CTL,
  CORO_CTL_OFF,
  CORO_HDR,
  CORO_HDR_SIZE,
  CORO_MAGIC,
  CTRL_BASE,
} from '../../src/abi.js';
import type { Vm } from '../../src/index.js';

/** Registers bpf_coro_frame_alloc/free on `vm`; returns the set of live frames. */
export function useTestFrames(vm: Vm): Set<number> {
  const live = new Set<number>();
  let seq = 0;
  const ctl = CTRL_BASE + CORO_CTL_OFF;
  const bump = (field: number): void => {
    const v = vm.dataView();
    v.setBigUint64(ctl + field, v.getBigUint64(ctl + field, true) + 1n, true);
  };
  vm.registerKfunc({
    name: 'bpf_coro_frame_alloc',
    fn: (a) => {
      const size = Number(a[0]);
      if (size <= 0 || size > 4096) return 0n;
      const obj = vm.heap.alloc(CORO_HDR_SIZE + size);
      vm.u8().fill(0, obj, obj + CORO_HDR_SIZE + size);
      const f = obj + CORO_HDR_SIZE;
      const v = vm.dataView();
      v.setUint32(f + CORO_HDR.seq, ++seq, true);
      v.setUint32(f + CORO_HDR.size, size, true);
      v.setUint32(f + CORO_HDR.magic, CORO_MAGIC, true);
      live.add(f);
      bump(CORO_CTL.created);
      return BigInt(f);
    },
  });
  vm.registerKfunc({
    name: 'bpf_coro_frame_free',
    fn: (a) => {
      const f = Number(a[0]);
      if (!live.has(f)) return 0n;
      const v = vm.dataView();
      bump(v.getBigUint64(f, true) === 0n ? CORO_CTL.completed : CORO_CTL.destroyed);
      v.setUint32(f + CORO_HDR.magic, 0, true);
      live.delete(f);
      vm.heap.release(f - CORO_HDR_SIZE);
      return 0n;
    },
  });
  if (vm.kfuncSlot('bpf_throw') === undefined)
    vm.registerKfunc({
      name: 'bpf_throw',
      fn: (a) => {
        throw new Error(`bpf_throw(${a[0]})`);
      },
    });
  vm.frameSource = () => [...live];
  return live;
}
