/**
 * A minimal frame allocator in Wasm for the coroutines bench, until the runtime's own
 * (runtime/wasm/frame-alloc.ts) lands: the tests' stand-in (test/helpers/coro-frames.ts) is JS
 * behind a BigInt adapter and costs hundreds of ns per frame, which would drown what the bench
 * measures. One size class of SLOT bytes in a region taken from the Vm heap, a LIFO free list,
 * and the runtime's frame header (src/abi.ts CORO_HDR: seq, size, magic) and counters
 * (CORO_CTL created / completed / destroyed) filled the way the stand-in fills them. Never
 * throws; NULL when the request is too large or the region is full.
 *
 * Called from BPF (bpf_coro_frame_alloc / bpf_coro_frame_free kfuncs, as Wasm functions in the
 * call table); set up from the host by the bench.
 */

import {
  CORO_CTL,
  CORO_CTL_OFF,
  CORO_HDR,
  CORO_HDR_SIZE,
  CORO_MAGIC,
  CTRL_BASE,
} from '../src/abi.js';
import { loadWabt } from '../jit/wat.js';
import type { Vm } from '../runtime/vm.js';

/** Bytes of one object: the header and a frame of up to SLOT - CORO_HDR_SIZE bytes. */
const SLOT = 512;

type BpfFn = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint;

/** The allocator's text; `base`/`limit` bound the region it carves. */
function allocatorWat(base: number, limit: number): string {
  const ctl = CTRL_BASE + CORO_CTL_OFF;
  const bump = (off: number): string =>
    `(i64.store (i32.const ${ctl + off}) (i64.add (i64.load (i32.const ${ctl + off})) (i64.const 1)))`;
  const hdr = (field: number): string => `(i32.add (local.get $f) (i32.const ${field}))`;
  return `(module
  (import "env" "memory" (memory 1 65536))
  (global $top (mut i32) (i32.const ${base}))
  (global $free (mut i32) (i32.const 0))
  (global $seq (mut i32) (i32.const 0))
  (func (export "alloc") (param $size i64) (param i64 i64 i64 i64) (result i64)
    (local $obj i32) (local $f i32)
    (if (i32.or (i64.eqz (local.get $size))
                (i64.gt_u (local.get $size) (i64.const ${SLOT - CORO_HDR_SIZE})))
      (then (return (i64.const 0))))
    (local.set $obj (global.get $free))
    (if (local.get $obj)
      (then (global.set $free (i32.load (local.get $obj))))
      (else
        (if (i32.gt_u (i32.add (global.get $top) (i32.const ${SLOT})) (i32.const ${limit}))
          (then (return (i64.const 0))))
        (local.set $obj (global.get $top))
        (global.set $top (i32.add (global.get $top) (i32.const ${SLOT})))))
    (memory.fill (local.get $obj) (i32.const 0)
      (i32.add (i32.const ${CORO_HDR_SIZE}) (i32.wrap_i64 (local.get $size))))
    (local.set $f (i32.add (local.get $obj) (i32.const ${CORO_HDR_SIZE})))
    (global.set $seq (i32.add (global.get $seq) (i32.const 1)))
    (i32.store ${hdr(CORO_HDR.seq)} (global.get $seq))
    (i32.store ${hdr(CORO_HDR.size)} (i32.wrap_i64 (local.get $size)))
    (i32.store ${hdr(CORO_HDR.magic)} (i32.const ${CORO_MAGIC}))
    ${bump(CORO_CTL.created)}
    (i64.extend_i32_u (local.get $f)))
  (func (export "free") (param $p i64) (param i64 i64 i64 i64) (result i64)
    (local $f i32)
    (if (i32.or (i64.lt_u (local.get $p) (i64.const ${base + CORO_HDR_SIZE}))
                (i64.ge_u (local.get $p) (i64.const ${limit})))
      (then (return (i64.const 0))))
    (local.set $f (i32.wrap_i64 (local.get $p)))
    (if (i32.ne (i32.load ${hdr(CORO_HDR.magic)}) (i32.const ${CORO_MAGIC}))
      (then (return (i64.const 0))))
    (if (i64.eqz (i64.load (local.get $f)))
      (then ${bump(CORO_CTL.completed)})
      (else ${bump(CORO_CTL.destroyed)}))
    (i32.store ${hdr(CORO_HDR.magic)} (i32.const 0))
    (i32.store (i32.sub (local.get $f) (i32.const ${CORO_HDR_SIZE})) (global.get $free))
    (global.set $free (i32.sub (local.get $f) (i32.const ${CORO_HDR_SIZE})))
    (i64.const 0)))`;
}

/**
 * Registers bpf_coro_frame_alloc/free on `vm` as Wasm functions over a region of `frames`
 * slots taken from its heap (and a bpf_throw that throws, when the Vm has none).
 */
export async function useWasmFrames(vm: Vm, frames = 8192): Promise<void> {
  const base = vm.heap.alloc(frames * SLOT);
  const wabt = await loadWabt();
  const mod = wabt.parseWat('bench-frames.wat', allocatorWat(base, base + frames * SLOT), {
    bulk_memory: true,
  });
  let bytes: Uint8Array;
  try {
    bytes = mod.toBinary({}).buffer;
  } finally {
    mod.destroy();
  }
  const instance = await WebAssembly.instantiate(await WebAssembly.compile(bytes), {
    env: { memory: vm.memory },
  });
  const fn = (name: string): BpfFn => instance.exports[name] as BpfFn;
  const alloc = fn('alloc');
  const free = fn('free');
  vm.registerKfunc({
    name: 'bpf_coro_frame_alloc',
    fn: (a) => alloc(a[0], a[1], a[2], a[3], a[4]),
    wasm: alloc,
  });
  vm.registerKfunc({
    name: 'bpf_coro_frame_free',
    fn: (a) => free(a[0], a[1], a[2], a[3], a[4]),
    wasm: free,
  });
  if (vm.kfuncSlot('bpf_throw') === undefined)
    vm.registerKfunc({
      name: 'bpf_throw',
      fn: (a) => {
        throw new Error(`bpf_throw(${a[0]})`);
      },
    });
}
