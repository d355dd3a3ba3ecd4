/**
 * The AssemblyScript runtime module (runtime/wasm/, built by `npm run build:rt`): loads its
 * bytes once per process and instantiates it per worker over the Vm's memory. There are two
 * builds of the same source: `rt.wasm` imports a private memory, `rt-shared.wasm` a shared one
 * (a Vm with workers); Wasm requires the import to match the memory's `shared` flag. Its `bpf_*`
 * exports are helpers with the BPF calling convention that go straight into call-table slots;
 * its `host_*` exports serve the host-side map API.
 */

import { readFileSync } from 'node:fs';
import { STACK_OFF, type WorkerLayout } from '../src/abi.js';
import { InternalError } from '../src/errors.js';

/** The runtime module's exports. */
export interface RtExports {
  readonly set_cpu: (cpu: number) => void;
  readonly bpf_map_lookup_elem: (...args: bigint[]) => bigint;
  readonly bpf_map_update_elem: (...args: bigint[]) => bigint;
  readonly bpf_map_delete_elem: (...args: bigint[]) => bigint;
  readonly bpf_map_push_elem: (...args: bigint[]) => bigint;
  readonly bpf_map_pop_elem: (...args: bigint[]) => bigint;
  readonly bpf_map_peek_elem: (...args: bigint[]) => bigint;
  /** For bpf_tail_call: the token in slot `index` of a prog_array, 0 when empty or not one. */
  readonly prog_array_get: (map: number, index: number) => number;
  readonly host_map_init: (map: number) => void;
  readonly host_lookup: (map: number, key: number) => number;
  readonly host_update: (map: number, key: number, value: number, flags: bigint) => bigint;
  readonly host_delete: (map: number, key: number) => bigint;
  readonly host_next_key: (map: number, key: number, next: number) => number;
  readonly host_push: (map: number, value: number, flags: bigint) => bigint;
  readonly host_pop: (map: number, value: number) => bigint;
  readonly host_peek: (map: number, value: number) => bigint;
  readonly bpf_ringbuf_output: (...args: bigint[]) => bigint;
  readonly bpf_ringbuf_reserve: (...args: bigint[]) => bigint;
  readonly bpf_ringbuf_submit: (...args: bigint[]) => bigint;
  readonly bpf_ringbuf_discard: (...args: bigint[]) => bigint;
  readonly bpf_ringbuf_query: (...args: bigint[]) => bigint;
  readonly bpf_tail_call: (...args: bigint[]) => bigint;
  // coroutines (runtime/wasm/coro.ts)
  readonly bpf_coro_defer: (...args: bigint[]) => bigint;
  readonly bpf_coro_enqueue: (...args: bigint[]) => bigint;
  readonly bpf_coro_yield: (...args: bigint[]) => bigint;
  readonly bpf_coro_sleep_queued: (...args: bigint[]) => bigint;
  readonly bpf_coro_detach: (...args: bigint[]) => bigint;
  readonly bpf_task_acquire: (...args: bigint[]) => bigint;
  readonly bpf_task_release: (...args: bigint[]) => bigint;
  readonly bpf_coro_await: (...args: bigint[]) => bigint;
  readonly bpf_coro_done: (...args: bigint[]) => bigint;
  readonly bpf_coro_take_cancelled: (...args: bigint[]) => bigint;
  readonly bpf_coro_handle_frame: (...args: bigint[]) => bigint;
  readonly bpf_coro_reap: (...args: bigint[]) => bigint;
  readonly bpf_coro_drain: (...args: bigint[]) => bigint;
  readonly coro_set_worker: (ctrl: number, area: number) => void;
  /** Resumes frame `f` if its sequence number is still `seq`; 1 when it ran. */
  readonly coro_resume: (f: number, seq: number) => number;
  /** Calls the destroy token of frame `f` if its sequence number is still `seq`. */
  readonly coro_destroy: (f: number, seq: number) => number;
  /** Resumes up to `limit` frames deferred on this worker; returns how many ran. */
  readonly coro_drain_deferred: (limit: number) => number;
  /** Pops and resumes up to `batch` handles of queue map `q`; returns how many were popped. */
  readonly coro_drain_queue: (q: number, batch: number) => number;
  /** Sets and clears flag bits of frame `f`; returns the flags, or 0xffffffff for a bad frame. */
  readonly coro_frame_flags: (f: number, set: number, clear: number) => number;
  /** 1 when `token` is a verified token entry (the entry map, CORO_CTL.entryMap), else 0. */
  readonly coro_entry_check: (token: number) => number;
  // the frame allocator (runtime/wasm/frame-alloc.ts, runtime/frame-alloc.ts)
  /** Once per Vm: lays out the allocator's state block. */
  readonly alloc_init: (
    state: number,
    owners: number,
    maxOwners: number,
    caches: number,
    workers: number,
  ) => void;
  /** Once per Vm, while nothing allocates: the region spans are carved from, its span table. */
  readonly alloc_set_region: (heapStart: number, heapEnd: number, spanTable: number) => number;
  /** Once per instance: the state block, this instance's worker index and control slot. */
  readonly alloc_attach: (state: number, worker: number, ctrl: number) => void;
  /** When this instance's worker stops allocating: its cached objects go to the shared depot. */
  readonly alloc_flush: () => void;
  readonly bpf_coro_frame_alloc: (...args: bigint[]) => bigint;
  readonly bpf_coro_frame_free: (...args: bigint[]) => bigint;
  readonly bpf_obj_new_impl: (...args: bigint[]) => bigint;
  readonly bpf_obj_drop_impl: (...args: bigint[]) => bigint;
  /** 1 when `frame` is a live coroutine frame of at least `need` bytes, else 0. */
  readonly coro_frame_check: (frame: number, need: number) => number;
  readonly host_frame_alloc: (size: number, owner: number) => number;
  readonly host_frame_free: (addr: number) => number;
  readonly alloc_obj_size: (addr: number) => number;
  readonly alloc_obj_owner: (addr: number) => number;
  readonly alloc_next_live: (after: number) => number;
  readonly alloc_owner_live: (owner: number) => bigint;
  readonly alloc_set_cap: (owner: number, objects: number, bytes: number) => number;
  readonly alloc_counter: (which: number) => number;
  readonly alloc_top: () => number;
}

/** Host service the module calls for map families it does not implement. */
export type MapOpSlow = (
  op: number,
  map: number,
  key: number,
  value: number,
  flags: bigint,
) => bigint;

const compiled: { private?: WebAssembly.Module; shared?: WebAssembly.Module } = {};

/** The compiled runtime module for a private (`shared` false) or shared memory. */
export function rtModule(shared: boolean): WebAssembly.Module {
  const kind = shared ? 'shared' : 'private';
  let mod = compiled[kind];
  if (mod === undefined) {
    const file = shared ? 'rt-shared.wasm' : 'rt.wasm';
    let bytes: Buffer;
    try {
      bytes = readFileSync(new URL(`./wasm/${file}`, import.meta.url));
    } catch (e) {
      throw new InternalError(`runtime/wasm/${file} is missing: run \`npm run build\``, {
        cause: e,
      });
    }
    mod = new WebAssembly.Module(bytes);
    compiled[kind] = mod;
  }
  return mod;
}

/**
 * The runtime module's `env.lock_wait(addr, expected, ns)`: a lock taker's sleep
 * (runtime/wasm/sync.ts), `Atomics.wait` on the u32 at `addr` for up to `ns` nanoseconds. Not
 * the `memory.atomic.wait32` instruction: V8 11.3's Liftoff spills that instruction's address
 * into a slot too small for it and zeroes a live i32 local of the caller (sync.ts explains).
 * Only rt-shared.wasm calls it; Node allows `Atomics.wait` on the main thread too.
 */
function lockWait(
  memory: WebAssembly.Memory,
): (addr: number, expected: number, ns: number) => void {
  let words = new Int32Array(memory.buffer);
  return (addr, expected, ns) => {
    // a view made before memory.grow ends at the old size
    if (addr + 4 > words.byteLength) words = new Int32Array(memory.buffer);
    Atomics.wait(words, addr >>> 2, expected | 0, ns / 1e6);
  };
}

/**
 * Instantiates the runtime module for worker `cpu` over `memory`. `worker` gives the call table
 * coroutine resumes go through and the control slot and area of the thread that runs the
 * instance; without it (standalone uses such as allocator tests) the coroutine exports have no
 * worker to act for.
 */
export function instantiateRt(
  memory: WebAssembly.Memory,
  cpu: number,
  mapOpSlow: MapOpSlow,
  worker?: { readonly table: WebAssembly.Table; readonly layout: WorkerLayout },
): RtExports {
  const table = worker?.table ?? new WebAssembly.Table({ element: 'anyfunc', initial: 1 });
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const inst = new WebAssembly.Instance(rtModule(shared), {
    env: {
      memory,
      table,
      map_op_slow: mapOpSlow,
      lock_wait: lockWait(memory),
      abort: (): never => {
        throw new InternalError('the runtime module aborted');
      },
    },
  });
  const rt = inst.exports as unknown as RtExports;
  rt.set_cpu(cpu);
  if (worker !== undefined)
    rt.coro_set_worker(worker.layout.ctrl, worker.layout.stackBottom - STACK_OFF);
  return rt;
}
