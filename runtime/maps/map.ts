/**
 * `BpfMap`: a map living in the Vm's linear memory (descriptor + storage, src/abi.ts) and its
 * host-side API in libbpf's spirit: lookup, update, delete, keys, entries on Uint8Array keys
 * and values, with the kernel's errno as `MapError`. Every operation runs the same Wasm code
 * BPF programs call (runtime/wasm/), so the host and BPF agree by construction.
 *
 * Percpu maps: the host sees all CPUs' values back to back, each rounded up to 8 bytes, as
 * libbpf's bpf_map_lookup_elem does.
 */

import { MAP_DESC, MAP_DESC_SIZE, MAP_MAGIC } from '../../src/abi.js';
import { MapError, type ErrnoCode } from '../../src/errors.js';
import type { MemRegion } from '../../src/interp/env.js';
import type { HeapArena } from '../heap.js';
import type { RtExports } from '../rt.js';
import { arrayStorage } from './arraymap.js';
import { htabStorage } from './hashtab.js';
import {
  BPF_ANY,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_PERCPU_HASH,
  MAP_TYPE_NAMES,
  isPercpuType,
} from './map-type.js';

/** What a map is created from (a BTF or legacy map definition, or the host). */
export interface MapSpec {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
}

/** Storage a family needs besides the descriptor. */
export interface MapStorage {
  readonly elemSize: number;
  readonly nBuckets: number;
  readonly dataBytes: number;
  readonly elemsBytes: number;
}

/** What a map needs from its Vm. */
export interface MapHost {
  readonly heap: HeapArena;
  readonly rt: RtExports;
  readonly nCpus: number;
  u8(): Uint8Array;
  dataView(): DataView;
}

/** Largest key and value the host API copies through its scratch buffer at once. */
const MAX_KEY_SIZE = 512;
const MAX_VALUE_SIZE = 1 << 20;

const ERRNO: ReadonlyMap<bigint, ErrnoCode> = new Map([
  [-1n, 'EPERM'],
  [-2n, 'ENOENT'],
  [-7n, 'E2BIG'],
  [-12n, 'ENOMEM'],
  [-16n, 'EBUSY'],
  [-17n, 'EEXIST'],
  [-22n, 'EINVAL'],
]);

const round8 = (n: number): number => (n + 7) & ~7;

/** A map in a Vm. */
export class BpfMap {
  readonly name: string;
  readonly type: number;
  readonly typeName: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** The map's number in its Vm: the fd that raw bytecode names with BPF_PSEUDO_MAP_FD. */
  readonly id: number;
  /** Address of the descriptor: what lddw with a map pseudo source loads. */
  readonly addr: number;
  /**
   * Where BPF programs may read and write this map's values: the value array of an array map,
   * the element area of a hash map (for unverified programs; the verifier will bound accesses
   * to the value itself).
   */
  readonly valueRegion: MemRegion;
  private readonly host: MapHost;
  private readonly scratch: number;
  private readonly percpu: boolean;

  constructor(host: MapHost, spec: MapSpec, id: number) {
    const typeName = MAP_TYPE_NAMES.get(spec.type);
    if (typeName === undefined)
      throw new MapError(spec.name, 'EINVAL', `map type ${spec.type} is not supported yet`);
    for (const [what, v, max] of [
      ['key size', spec.keySize, MAX_KEY_SIZE],
      ['value size', spec.valueSize, MAX_VALUE_SIZE],
      ['max_entries', spec.maxEntries, 1 << 24],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > max)
        throw new MapError(spec.name, 'EINVAL', `${what} ${v} is outside 1..${max}`);
    }
    this.name = spec.name;
    this.type = spec.type;
    this.typeName = typeName;
    this.keySize = spec.keySize;
    this.valueSize = spec.valueSize;
    this.maxEntries = spec.maxEntries;
    this.flags = spec.flags ?? 0;
    this.id = id;
    this.host = host;
    this.percpu = isPercpuType(spec.type);
    const isArray = spec.type === BPF_MAP_TYPE_ARRAY || spec.type === BPF_MAP_TYPE_PERCPU_ARRAY;
    const st = isArray
      ? arrayStorage(spec, host.nCpus, this.percpu)
      : htabStorage(spec, host.nCpus, this.percpu);
    this.addr = host.heap.alloc(MAP_DESC_SIZE + st.dataBytes + st.elemsBytes);
    const start = this.addr + MAP_DESC_SIZE + (isArray ? 0 : st.dataBytes);
    this.valueRegion = {
      start,
      end: start + (isArray ? st.dataBytes : st.elemsBytes),
      writable: true,
      name: `map ${spec.name}`,
    };
    this.scratch = host.heap.alloc(round8(this.keySize) * 2 + this.hostValueSize);
    const v = host.dataView();
    const put = (field: keyof typeof MAP_DESC, value: number): void =>
      v.setUint32(this.addr + MAP_DESC[field], value, true);
    host.u8().fill(0, this.addr, this.addr + MAP_DESC_SIZE);
    put('type', spec.type);
    put('keySize', spec.keySize);
    put('valueSize', spec.valueSize);
    put('maxEntries', spec.maxEntries);
    put('flags', this.flags);
    put('id', id);
    put('elemSize', st.elemSize);
    put('data', this.addr + MAP_DESC_SIZE);
    put('nBuckets', st.nBuckets);
    put('elems', this.addr + MAP_DESC_SIZE + st.dataBytes);
    put('nCpus', host.nCpus);
    put('magic', MAP_MAGIC);
    host.rt.host_map_init(this.addr);
  }

  /** Bytes of a value as the host sees it (all CPUs' copies for percpu maps). */
  get hostValueSize(): number {
    return this.percpu ? round8(this.valueSize) * this.host.nCpus : this.valueSize;
  }

  /** Looks up `key`; undefined when absent. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    const k = this.putKey(key);
    const at = this.host.rt.host_lookup(this.addr, k);
    if (at === 0) return undefined;
    return this.host.u8().slice(at, at + this.hostValueSize);
  }

  /** Inserts or replaces (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST). */
  update(key: Uint8Array, value: Uint8Array, flags: number = BPF_ANY): void {
    if (value.length !== this.hostValueSize) {
      throw new MapError(
        this.name,
        'EINVAL',
        `value of ${value.length} bytes, the map takes ${this.hostValueSize}`,
      );
    }
    const k = this.putKey(key);
    const val = this.scratch + 2 * round8(this.keySize);
    this.host.u8().set(value, val);
    this.check(this.host.rt.host_update(this.addr, k, val, BigInt(flags)), 'update');
  }

  /** Deletes `key`. */
  delete(key: Uint8Array): void {
    this.check(this.host.rt.host_delete(this.addr, this.putKey(key)), 'delete');
  }

  /** The key after `key` in iteration order (the first key without `key`); undefined at the end. */
  nextKey(key?: Uint8Array): Uint8Array | undefined {
    const k = key === undefined ? 0 : this.putKey(key);
    const next = this.scratch + round8(this.keySize);
    if (this.host.rt.host_next_key(this.addr, k, next) !== 0) return undefined;
    return this.host.u8().slice(next, next + this.keySize);
  }

  /** Every key, as bpf_map_get_next_key iteration finds them. */
  *keys(): IterableIterator<Uint8Array> {
    let k = this.nextKey();
    for (let n = 0; k !== undefined && n <= this.maxEntries; n++) {
      yield k;
      k = this.nextKey(k);
    }
  }

  /** Every [key, value]. */
  *entries(): IterableIterator<[Uint8Array, Uint8Array]> {
    for (const k of this.keys()) {
      const v = this.lookup(k);
      if (v !== undefined) yield [k, v];
    }
  }

  /** Address of array element `index` (CPU 0), for direct value access (global data). */
  valueAddr(index: number): number {
    if (this.type !== BPF_MAP_TYPE_ARRAY)
      throw new MapError(this.name, 'EINVAL', 'direct value access needs an array map');
    if (index < 0 || index >= this.maxEntries)
      throw new MapError(this.name, 'E2BIG', `index ${index} is out of range`);
    return this.addr + MAP_DESC_SIZE + index * round8(this.valueSize);
  }

  private putKey(key: Uint8Array): number {
    if (key.length !== this.keySize) {
      throw new MapError(
        this.name,
        'EINVAL',
        `key of ${key.length} bytes, the map takes ${this.keySize}`,
      );
    }
    this.host.u8().set(key, this.scratch);
    return this.scratch;
  }

  private check(r: bigint, op: string): void {
    if (r === 0n) return;
    const code = ERRNO.get(r) ?? 'EINVAL';
    throw new MapError(this.name, code, `${op} failed`);
  }
}

/** True when `type` is one the runtime implements. */
export function isSupportedMapType(type: number): boolean {
  return [
    BPF_MAP_TYPE_HASH,
    BPF_MAP_TYPE_ARRAY,
    BPF_MAP_TYPE_PERCPU_HASH,
    BPF_MAP_TYPE_PERCPU_ARRAY,
    BPF_MAP_TYPE_LRU_HASH,
    BPF_MAP_TYPE_LRU_PERCPU_HASH,
  ].includes(type);
}
