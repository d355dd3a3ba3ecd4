/**
 * Typed map views: a `BpfMap` seen through its BTF key and value types, so the host reads and
 * writes decoded values (numbers, bigints, objects by member name) instead of bytes. The
 * codec is src/loader/btf-value.ts; this file only pairs it with a map, and splits percpu
 * values into one decoded value per CPU (each CPU's copy rounded up to 8 bytes, as
 * `BpfMap.lookup` returns them).
 *
 * Called from: `LoadedObject.typedMap` (maps of an object with BTF) and host code that pairs
 * a map with BTF itself (`new TypedMap`). Invariants: the key and value types have exactly the
 * map's key and value sizes (checked at creation); every failure is a `UsageError` (bad
 * values, maps without BTF types) or the `MapError` of the underlying map operation.
 */

import { round8 } from '../src/abi.js';
import { UsageError } from '../src/errors.js';
import type { Btf } from '../src/loader/btf.js';
import {
  decodeBtf,
  encodeBtf,
  type BtfDecodeOptions,
  type BtfValue,
} from '../src/loader/btf-value.js';
import type { BpfMap } from './maps/map.js';
import { BPF_ANY, isPercpuType } from './maps/map-type.js';

/** What a typed view needs of a map (a `BpfMap`, or a stand-in in tests). */
export type TypedMapTarget = Pick<
  BpfMap,
  | 'name'
  | 'type'
  | 'typeName'
  | 'keySize'
  | 'valueSize'
  | 'hostValueSize'
  | 'lookup'
  | 'update'
  | 'delete'
  | 'keys'
>;

/** The BTF types of a map's key and value. */
export interface MapBtfTypes {
  readonly btf: Btf;
  readonly keyTypeId: number;
  readonly valueTypeId: number;
}

/**
 * A map whose keys and values are BTF-decoded values. `K` and `V` only name what the caller
 * expects (they are not checked against the BTF); `V` of a percpu map is the array of
 * per-CPU values `lookup` returns and `update` takes. Objects give them by map name
 * (`LoadedObject.typedMap`); for a map the host created, pair it with BTF types here (they
 * must have the map's key and value sizes).
 *
 * @example
 * ```ts
 * const counts = obj.typedMap<number, bigint>('pkt_count');
 * counts.update(1, 0n);
 * counts.lookup(1); // 0n
 * for (const [bucket, n] of counts.entries()) console.log(bucket, n);
 *
 * const m = vm.createMap({ name: 'flows', type: BPF_MAP_TYPE_HASH, keySize: 12, valueSize: 8, maxEntries: 64 });
 * const flows = new TypedMap(m, { btf, keyTypeId: flowKeyId, valueTypeId: u64Id });
 * flows.update({ saddr: 1, daddr: 2, sport: 80, dport: 443 }, 1n);
 * ```
 */
export class TypedMap<K = BtfValue, V = BtfValue> {
  readonly map: TypedMapTarget;
  readonly btf: Btf;
  readonly keyTypeId: number;
  readonly valueTypeId: number;
  /** CPUs a percpu value holds; 0 for other maps. */
  readonly nCpus: number;
  private readonly opts: BtfDecodeOptions;

  constructor(map: TypedMapTarget, types: MapBtfTypes, opts: BtfDecodeOptions = {}) {
    const { btf, keyTypeId, valueTypeId } = types;
    for (const [what, id, size] of [
      ['key', keyTypeId, map.keySize],
      ['value', valueTypeId, map.valueSize],
    ] as const) {
      const typeSize = btf.sizeOf(id);
      if (typeSize !== size) {
        throw new UsageError(
          `map '${map.name}': ${what} type [${id}] has ${typeSize} bytes, the map's ${what} ${size}`,
        );
      }
    }
    this.map = map;
    this.btf = btf;
    this.keyTypeId = keyTypeId;
    this.valueTypeId = valueTypeId;
    this.nCpus = isPercpuType(map.type) ? map.hostValueSize / round8(map.valueSize) : 0;
    this.opts = opts;
  }

  /** The value stored under `key` (per-CPU values for percpu maps); undefined when absent. */
  lookup(key: K): V | undefined {
    const v = this.map.lookup(this.encodeKey(key));
    return v === undefined ? undefined : this.decodeValue(v);
  }

  /** Inserts or replaces (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST), as `BpfMap.update`. */
  update(key: K, value: V, flags: number = BPF_ANY): void {
    this.map.update(this.encodeKey(key), this.encodeValue(value), flags);
  }

  /** Deletes `key` (`MapError` ENOENT when absent, as `BpfMap.delete`). */
  delete(key: K): void {
    this.map.delete(this.encodeKey(key));
  }

  /** Every key, decoded, in the map's iteration order. */
  *keys(): IterableIterator<K> {
    for (const k of this.map.keys()) yield this.decodeKey(k);
  }

  /** Every [key, value], decoded. */
  *entries(): IterableIterator<[K, V]> {
    for (const k of this.map.keys()) {
      const v = this.map.lookup(k);
      if (v !== undefined) yield [this.decodeKey(k), this.decodeValue(v)];
    }
  }

  private encodeKey(key: K): Uint8Array {
    return encodeBtf(this.btf, this.keyTypeId, key, { path: 'key' });
  }

  private decodeKey(bytes: Uint8Array): K {
    return decodeBtf(this.btf, this.keyTypeId, bytes, { ...this.opts, path: 'key' }) as K;
  }

  private decodeValue(bytes: Uint8Array): V {
    if (this.nCpus === 0) return decodeBtf(this.btf, this.valueTypeId, bytes, this.opts) as V;
    const stride = round8(this.map.valueSize);
    const out: BtfValue[] = [];
    for (let cpu = 0; cpu < this.nCpus; cpu++) {
      const one = bytes.subarray(cpu * stride, cpu * stride + this.map.valueSize);
      out.push(decodeBtf(this.btf, this.valueTypeId, one, { ...this.opts, path: `value[${cpu}]` }));
    }
    return out as V;
  }

  private encodeValue(value: V): Uint8Array {
    if (this.nCpus === 0) return encodeBtf(this.btf, this.valueTypeId, value);
    if (!Array.isArray(value) || value.length !== this.nCpus) {
      throw new UsageError(
        `map '${this.map.name}' is ${this.map.typeName}: the value is an array of ${this.nCpus} per-CPU values`,
      );
    }
    const stride = round8(this.map.valueSize);
    const out = new Uint8Array(this.map.hostValueSize);
    value.forEach((v: unknown, cpu) => {
      out.set(encodeBtf(this.btf, this.valueTypeId, v, { path: `value[${cpu}]` }), cpu * stride);
    });
    return out;
  }
}

/**
 * The BTF types of an object's map definition; a UsageError saying why when it has none
 * (global data, objects built without `-g`, `key_size` / `value_size` definitions, keyless
 * maps: queue, stack, bloom_filter, ringbuf).
 */
export function mapBtfTypes(
  name: string,
  def: {
    readonly keySize: number;
    readonly keyTypeId?: number;
    readonly valueTypeId?: number;
    readonly global?: unknown;
  },
  btf: Btf | undefined,
  typeName: string,
): MapBtfTypes {
  if (def.global !== undefined) {
    throw new UsageError(
      `map '${name}' holds global data: use obj.globals.get(name) / set(name, value)`,
    );
  }
  if (btf === undefined) {
    throw new UsageError(
      `map '${name}': the object has no BTF (build it with -g) to type its keys and values`,
    );
  }
  if (def.keySize === 0) {
    throw new UsageError(`map '${name}' (${typeName}) has no keys to look values up by`);
  }
  const { keyTypeId, valueTypeId } = def;
  if (keyTypeId === undefined || valueTypeId === undefined) {
    const missing = keyTypeId === undefined ? 'key' : 'value';
    throw new UsageError(
      `map '${name}' (${typeName}) has no BTF ${missing} type (declare it with __type(${missing}, ...))`,
    );
  }
  return { btf, keyTypeId, valueTypeId };
}
