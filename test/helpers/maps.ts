/**
 * Shared pieces of the map tests: byte encoders, errno capture, and a Vm that has the
 * queue/stack/bloom helpers (bpf_map_push/pop/peek_elem) registered.
 */
import { MapError } from '../../src/errors.js';
import { runtimeModuleHelpers } from '../../runtime/maps/helpers.js';
import type { BpfMap, MapSpec } from '../../runtime/maps/map.js';
import { BPF_MAP_TYPE_RINGBUF } from '../../runtime/maps/map-type.js';
import type { Vm } from '../../runtime/vm.js';
import { makeTestVm } from './engines.js';

/** Little-endian u32 bytes. */
export const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
/** Little-endian u64 bytes. */
export const u64 = (n: bigint): Uint8Array => new Uint8Array(new BigUint64Array([n]).buffer);
/** The u32 at the start of `b`. */
export const asU32 = (b: Uint8Array | undefined): number | undefined =>
  b === undefined ? undefined : new DataView(b.buffer, b.byteOffset).getUint32(0, true);
/** The u64 at the start of `b`. */
export const asU64 = (b: Uint8Array | undefined): bigint | undefined =>
  b === undefined ? undefined : new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);

/** 'ok', or the code of the MapError `f` throws. */
export function errno(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof MapError) return e.code;
    throw e;
  }
}

/** A Vm (JIT output validated by wabt) with the map family helpers registered. */
export function mapVm(): Vm {
  const vm = makeTestVm();
  for (const h of runtimeModuleHelpers(vm.rt)) if (!vm.helpers.has(h.id)) vm.registerHelper(h);
  return vm;
}

/** A spec with defaults for the fields a test does not care about. */
export function spec(fields: Partial<MapSpec> & Pick<MapSpec, 'type'>): MapSpec {
  return { name: 'm', keySize: 4, valueSize: 8, maxEntries: 8, ...fields };
}

/** A ring buffer map 'rb' of `bytes` data bytes (a power of two) in `vm`. */
export function ringbufMap(vm: Vm, bytes = 4096): BpfMap {
  return vm.createMap({
    name: 'rb',
    type: BPF_MAP_TYPE_RINGBUF,
    keySize: 0,
    valueSize: 0,
    maxEntries: bytes,
  });
}
