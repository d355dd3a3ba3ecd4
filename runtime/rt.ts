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
  readonly bpf_coro_detach: (...args: bigint[]) => bigint;
  readonly bpf_coro_await: (...args: bigint[]) => bigint;
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
 * Instantiates the runtime module for worker `cpu` over `memory` and that worker's call
 * `table` (coroutine resumes call through it); `worker` is the control slot and area of the
 * thread that runs the instance.
 */
export function instantiateRt(
  memory: WebAssembly.Memory,
  table: WebAssembly.Table,
  cpu: number,
  worker: WorkerLayout,
  mapOpSlow: MapOpSlow,
): RtExports {
  const shared = memory.buffer instanceof SharedArrayBuffer;
  const inst = new WebAssembly.Instance(rtModule(shared), {
    env: {
      memory,
      table,
      map_op_slow: mapOpSlow,
      abort: (): never => {
        throw new InternalError('the runtime module aborted');
      },
    },
  });
  const rt = inst.exports as unknown as RtExports;
  rt.set_cpu(cpu);
  rt.coro_set_worker(worker.ctrl, worker.stackBottom - STACK_OFF);
  return rt;
}
