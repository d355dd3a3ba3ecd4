/**
 * Helpers implemented by the runtime module's Wasm functions (runtime/wasm/rt.ts), which the
 * JIT's call table holds directly; the interpreter calls the same functions through `fn`:
 * map lookup/update/delete and push/pop/peek, the ring buffer helpers, and the resolver half
 * of bpf_tail_call (the JIT and interpreter do the jump itself).
 */

import {
  BPF_FUNC_map_delete_elem,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_map_peek_elem,
  BPF_FUNC_map_pop_elem,
  BPF_FUNC_map_push_elem,
  BPF_FUNC_map_update_elem,
  BPF_FUNC_ringbuf_discard,
  BPF_FUNC_ringbuf_output,
  BPF_FUNC_ringbuf_query,
  BPF_FUNC_ringbuf_reserve,
  BPF_FUNC_ringbuf_submit,
  BPF_FUNC_tail_call,
} from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto, KfuncProto } from '../helpers.js';
import type { RtExports } from '../rt.js';

/** A helper whose implementation is Wasm function `f` with the BPF calling convention. */
export function nativeHelper(id: number, name: string, f: (...a: bigint[]) => bigint): HelperProto {
  return {
    id,
    name,
    fn: (args: HelperArgs): bigint =>
      BigInt.asUintN(64, f(...args.map((v) => BigInt.asIntN(64, v)))),
    wasm: f,
  };
}

/** A kfunc whose implementation is Wasm function `f` with the BPF calling convention. */
export function nativeKfunc(name: string, f: (...a: bigint[]) => bigint): KfuncProto {
  return {
    name,
    fn: (args: HelperArgs): bigint =>
      BigInt.asUintN(64, f(...args.map((v) => BigInt.asIntN(64, v)))),
    wasm: f,
  };
}

/** The helpers runtime module instance `rt` implements. */
export function runtimeModuleHelpers(rt: RtExports): HelperProto[] {
  return [
    nativeHelper(BPF_FUNC_map_lookup_elem, 'bpf_map_lookup_elem', rt.bpf_map_lookup_elem),
    nativeHelper(BPF_FUNC_map_update_elem, 'bpf_map_update_elem', rt.bpf_map_update_elem),
    nativeHelper(BPF_FUNC_map_delete_elem, 'bpf_map_delete_elem', rt.bpf_map_delete_elem),
    nativeHelper(BPF_FUNC_tail_call, 'bpf_tail_call', rt.bpf_tail_call),
    nativeHelper(BPF_FUNC_map_push_elem, 'bpf_map_push_elem', rt.bpf_map_push_elem),
    nativeHelper(BPF_FUNC_map_pop_elem, 'bpf_map_pop_elem', rt.bpf_map_pop_elem),
    nativeHelper(BPF_FUNC_map_peek_elem, 'bpf_map_peek_elem', rt.bpf_map_peek_elem),
    nativeHelper(BPF_FUNC_ringbuf_output, 'bpf_ringbuf_output', rt.bpf_ringbuf_output),
    nativeHelper(BPF_FUNC_ringbuf_reserve, 'bpf_ringbuf_reserve', rt.bpf_ringbuf_reserve),
    nativeHelper(BPF_FUNC_ringbuf_submit, 'bpf_ringbuf_submit', rt.bpf_ringbuf_submit),
    nativeHelper(BPF_FUNC_ringbuf_discard, 'bpf_ringbuf_discard', rt.bpf_ringbuf_discard),
    nativeHelper(BPF_FUNC_ringbuf_query, 'bpf_ringbuf_query', rt.bpf_ringbuf_query),
  ];
}
