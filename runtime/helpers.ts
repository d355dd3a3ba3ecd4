/**
 * The helper registry: kernel-numbered helpers (`BPF_FUNC_*` ids) with their implementation
 * beside their signature, in the spirit of the kernel's `BPF_CALL_n` + `bpf_func_proto`.
 * Hosts register their own. Both engines call the same implementation: the interpreter
 * directly, the JIT through an adapter in the call table.
 *
 * Implementations take r1..r5 as u64 bigints and return r0 as a bigint; they report errors
 * to the program as negative errno values, never by throwing.
 */

import { HELPER_BLOCK_SIZE } from '../src/abi.js';
import { UsageError } from '../src/errors.js';
import type { HelperArgs } from '../src/interp/env.js';

/** Kernel helper ids used here (uapi `enum bpf_func_id`). */
export const BPF_FUNC_ktime_get_ns = 5;
export const BPF_FUNC_get_prandom_u32 = 7;
export const BPF_FUNC_get_smp_processor_id = 8;
export const BPF_FUNC_ktime_get_boot_ns = 125;

/** Host services helpers may use; injected so that runs are reproducible. */
export interface HelperHost {
  /** Monotonic clock in nanoseconds. */
  readonly clock: () => bigint;
  /** A uniformly distributed u32. */
  readonly random: () => number;
  /** The running worker ("CPU") index. */
  readonly cpu: () => number;
}

/** A helper: its kernel id and name, and its implementation. */
export interface HelperProto {
  readonly id: number;
  readonly name: string;
  /** The implementation, as the interpreter calls it. */
  readonly fn: (args: HelperArgs) => bigint;
  /**
   * A Wasm function with the BPF calling convention implementing the same helper: when
   * present the JIT's call table holds it directly (no JS on the call path).
   */
  readonly wasm?: (...args: bigint[]) => bigint;
}

/** Kernel helper ids of the map helpers the runtime module implements. */
export const BPF_FUNC_map_lookup_elem = 1;
export const BPF_FUNC_map_update_elem = 2;
export const BPF_FUNC_map_delete_elem = 3;

/** Helpers implemented by Wasm functions with the BPF calling convention. */
export function nativeHelpers(rt: {
  readonly bpf_map_lookup_elem: (...a: bigint[]) => bigint;
  readonly bpf_map_update_elem: (...a: bigint[]) => bigint;
  readonly bpf_map_delete_elem: (...a: bigint[]) => bigint;
}): HelperProto[] {
  const wrap =
    (f: (...a: bigint[]) => bigint) =>
    (args: HelperArgs): bigint =>
      BigInt.asUintN(64, f(...args.map((v) => BigInt.asIntN(64, v))));
  return [
    {
      id: BPF_FUNC_map_lookup_elem,
      name: 'bpf_map_lookup_elem',
      fn: wrap(rt.bpf_map_lookup_elem),
      wasm: rt.bpf_map_lookup_elem,
    },
    {
      id: BPF_FUNC_map_update_elem,
      name: 'bpf_map_update_elem',
      fn: wrap(rt.bpf_map_update_elem),
      wasm: rt.bpf_map_update_elem,
    },
    {
      id: BPF_FUNC_map_delete_elem,
      name: 'bpf_map_delete_elem',
      fn: wrap(rt.bpf_map_delete_elem),
      wasm: rt.bpf_map_delete_elem,
    },
  ];
}

/** The helpers every Vm has. Later issues extend this table (maps, ringbuf, ...). */
export function baseHelpers(host: HelperHost): HelperProto[] {
  return [
    { id: BPF_FUNC_ktime_get_ns, name: 'bpf_ktime_get_ns', fn: () => host.clock() },
    { id: BPF_FUNC_ktime_get_boot_ns, name: 'bpf_ktime_get_boot_ns', fn: () => host.clock() },
    {
      id: BPF_FUNC_get_prandom_u32,
      name: 'bpf_get_prandom_u32',
      fn: () => BigInt(host.random() >>> 0),
    },
    {
      id: BPF_FUNC_get_smp_processor_id,
      name: 'bpf_get_smp_processor_id',
      fn: () => BigInt(host.cpu()),
    },
  ];
}

/** Helpers by id. */
export class HelperRegistry {
  private readonly byId = new Map<number, HelperProto>();

  /** Adds or replaces a helper. Ids are the kernel's, below HELPER_BLOCK_SIZE. */
  register(proto: HelperProto): void {
    if (!Number.isInteger(proto.id) || proto.id < 1 || proto.id >= HELPER_BLOCK_SIZE) {
      throw new UsageError(`helper id ${proto.id} is out of range 1..${HELPER_BLOCK_SIZE - 1}`);
    }
    this.byId.set(proto.id, proto);
  }

  get(id: number): HelperProto | undefined {
    return this.byId.get(id);
  }

  has(id: number): boolean {
    return this.byId.has(id);
  }

  /** The kernel-style name of helper `id`, as the disassembler and verifier log print it. */
  name(id: number): string | undefined {
    return this.byId.get(id)?.name;
  }

  all(): HelperProto[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }
}
