/**
 * `BpfMap`: a map living in the Vm's linear memory (descriptor + storage, src/abi.ts) and its
 * host-side API in libbpf's spirit: lookup, update, delete, keys, entries on Uint8Array keys
 * and values, push/pop/peek for queues, stacks and bloom filters, with the kernel's errno as
 * `MapError`. Every operation runs the same Wasm code BPF programs call (runtime/wasm/), so
 * the host and BPF agree by construction.
 *
 * Storage is `descriptor | data | elems | aux`; each family (one file each, named after the
 * kernel's) checks its spec and sizes these parts.
 *
 * Percpu maps: the host sees all CPUs' values back to back, each rounded up to 8 bytes, as
 * libbpf's bpf_map_lookup_elem does. Map-in-map values are inner map ids (the kernel's fds
 * in, ids out); prog_array values are function tokens.
 */

import { MAP_DESC, MAP_DESC_SIZE, MAP_MAGIC, type ProgLinks, round8 } from '../../src/abi.js';
import { MapError, type ErrnoCode } from '../../src/errors.js';
import type { MemRegion } from '../../src/interp/env.js';
import type { HeapArena } from '../heap.js';
import type { RtExports } from '../rt.js';
import { arrayStorage } from './arraymap.js';
import { bloomFilterStorage } from './bloom-filter.js';
import { htabStorage } from './hashtab.js';
import { RingBufConsumer, ringbufStorage } from './ringbuf.js';
import { lpmTrieStorage } from './lpm-trie.js';
import { mapInMapStorage } from './map-in-map.js';
import {
  BPF_ANY,
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_ARRAY_OF_MAPS,
  BPF_MAP_TYPE_BLOOM_FILTER,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_HASH_OF_MAPS,
  BPF_MAP_TYPE_LPM_TRIE,
  BPF_MAP_TYPE_LRU_HASH,
  BPF_MAP_TYPE_LRU_PERCPU_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
  BPF_MAP_TYPE_PERCPU_HASH,
  BPF_MAP_TYPE_PROG_ARRAY,
  BPF_MAP_TYPE_RINGBUF,
  BPF_MAP_TYPE_QUEUE,
  BPF_MAP_TYPE_STACK,
  MAP_TYPE_NAMES,
  isMapInMapType,
  isPercpuType,
} from './map-type.js';
import { progArrayStorage } from './prog-array.js';
import { queueStackStorage } from './queue-stack.js';

/** What a map is created from (a BTF or legacy map definition, or the host). */
export interface MapSpec {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags?: number;
  /** bloom_filter: the number of hash functions in bits 0-3 (0: 5). */
  readonly mapExtra?: number;
  /**
   * array_of_maps / hash_of_maps: the template every inner map must match (the kernel's
   * inner_map_fd; libbpf's `__array(values, ...)`).
   */
  readonly innerMap?: MapSpec;
}

/** Descriptor fields by name. */
export type MapDescField = keyof typeof MAP_DESC;

/** Storage a family needs besides the descriptor: `data | elems | aux`, in that order. */
export interface MapStorage {
  readonly elemSize: number;
  readonly nBuckets: number;
  readonly dataBytes: number;
  readonly elemsBytes: number;
  /** Bytes after the elements, whose address the descriptor's `aux` field holds (default 0). */
  readonly auxBytes?: number;
  /**
   * Which part BPF programs address values in: 'data' (arrays; the default), 'elems' (hash
   * elements, trie nodes), or 'none' when values are only copied in and out or are not memory.
   */
  readonly values?: 'data' | 'elems' | 'none';
  /** Family-specific descriptor fields. */
  readonly desc?: Readonly<Partial<Record<MapDescField, number>>>;
}

/** What a map needs from its Vm. */
export interface MapHost {
  readonly heap: HeapArena;
  readonly rt: RtExports;
  readonly nCpus: number;
  u8(): Uint8Array;
  dataView(): DataView;
  /** The map with this id (map-in-map updates name inner maps by id). */
  mapById(id: number): BpfMap | undefined;
  /** The function behind a token (prog_array updates take entry tokens). */
  resolveToken(token: bigint): { readonly links: ProgLinks; readonly subprog: number } | undefined;
}

/** Largest key and value the host API copies through its scratch buffer at once. */
const MAX_KEY_SIZE = 512;
const MAX_VALUE_SIZE = 1 << 20;
const MAX_ENTRIES = 1 << 24;

const ERRNO: ReadonlyMap<bigint, ErrnoCode> = new Map([
  [-1n, 'EPERM'],
  [-2n, 'ENOENT'],
  [-7n, 'E2BIG'],
  [-12n, 'ENOMEM'],
  [-16n, 'EBUSY'],
  [-17n, 'EEXIST'],
  [-22n, 'EINVAL'],
  [-28n, 'ENOSPC'],
  [-95n, 'ENOTSUPP'],
]);

const u32Bytes = (n: number): Uint8Array => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

/** Checks `spec` and sizes its storage, by family. */
function mapStorage(spec: MapSpec, nCpus: number): MapStorage {
  const percpu = isPercpuType(spec.type);
  switch (spec.type) {
    case BPF_MAP_TYPE_ARRAY:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
      return arrayStorage(spec, nCpus, percpu);
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
      return htabStorage(spec, nCpus, percpu);
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK:
      return queueStackStorage(spec);
    case BPF_MAP_TYPE_BLOOM_FILTER:
      return bloomFilterStorage(spec);
    case BPF_MAP_TYPE_LPM_TRIE:
      return lpmTrieStorage(spec);
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      return mapInMapStorage(spec, (inner) => checkSpec(inner, nCpus));
    case BPF_MAP_TYPE_PROG_ARRAY:
      return progArrayStorage(spec);
    case BPF_MAP_TYPE_RINGBUF:
      return ringbufStorage(spec);
    default:
      throw new MapError(spec.name, 'EINVAL', `map type ${spec.type} is not supported yet`);
  }
}

/** Checks the sizes every family shares, then the family's own rules; returns its storage. */
function checkSpec(spec: MapSpec, nCpus: number): MapStorage {
  if (MAP_TYPE_NAMES.get(spec.type) === undefined)
    throw new MapError(spec.name, 'EINVAL', `map type ${spec.type} is not supported yet`);
  for (const [what, v, min, max] of [
    ['key size', spec.keySize, 0, MAX_KEY_SIZE],
    ['value size', spec.valueSize, spec.type === BPF_MAP_TYPE_RINGBUF ? 0 : 1, MAX_VALUE_SIZE],
    ['max_entries', spec.maxEntries, 1, spec.type === BPF_MAP_TYPE_RINGBUF ? 1 << 30 : MAX_ENTRIES],
  ] as const) {
    if (!Number.isInteger(v) || v < min || v > max)
      throw new MapError(spec.name, 'EINVAL', `${what} ${v} is outside ${min}..${max}`);
  }
  return mapStorage(spec, nCpus);
}

/** A map in a Vm. */
export class BpfMap {
  readonly name: string;
  readonly type: number;
  readonly typeName: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  /** map_extra (bloom_filter: hash functions). */
  readonly mapExtra: number;
  /** The inner map template of a map-in-map. */
  readonly innerMap: MapSpec | undefined;
  /** The map's number in its Vm: the fd that raw bytecode names with BPF_PSEUDO_MAP_FD. */
  readonly id: number;
  /** Address of the descriptor: what lddw with a map pseudo source loads. */
  readonly addr: number;
  /**
   * Where BPF programs may read and write this map's values: the value array of an array map,
   * the element area of a hash map or the node pool of an LPM trie (for unverified programs;
   * the verifier will bound accesses to the value itself). Empty for families whose values
   * BPF never points at (queue, stack, bloom_filter, map-in-map, prog_array).
   */
  readonly valueRegion: MemRegion;
  private readonly host: MapHost;
  private readonly scratch: number;
  private readonly percpu: boolean;

  constructor(host: MapHost, spec: MapSpec, id: number) {
    const st = checkSpec(spec, host.nCpus);
    this.name = spec.name;
    this.type = spec.type;
    this.typeName = MAP_TYPE_NAMES.get(spec.type) ?? String(spec.type);
    this.keySize = spec.keySize;
    this.valueSize = spec.valueSize;
    this.maxEntries = spec.maxEntries;
    this.flags = spec.flags ?? 0;
    this.mapExtra = spec.mapExtra ?? 0;
    this.innerMap = spec.innerMap;
    this.id = id;
    this.host = host;
    this.percpu = isPercpuType(spec.type);
    const data = MAP_DESC_SIZE;
    const elems = data + st.dataBytes;
    const aux = elems + st.elemsBytes;
    const auxBytes = st.auxBytes ?? 0;
    this.addr = host.heap.alloc(aux + auxBytes);
    const values = st.values ?? 'data';
    const [from, to] =
      values === 'data' ? [data, elems] : values === 'elems' ? [elems, aux] : [0, 0];
    this.valueRegion = {
      start: this.addr + from,
      end: this.addr + to,
      writable: true,
      name: `map ${spec.name}`,
    };
    this.scratch = host.heap.alloc(
      Math.max(16, round8(this.keySize) * 2 + round8(this.hostValueSize)),
    );
    this.writeDesc(this.addr, spec, {
      id,
      elemSize: st.elemSize,
      data: this.addr + data,
      nBuckets: st.nBuckets,
      elems: this.addr + elems,
      nCpus: host.nCpus,
      aux: auxBytes > 0 ? this.addr + aux : 0,
      magic: MAP_MAGIC,
      ...st.desc,
    });
    if (spec.innerMap !== undefined) this.writeDesc(this.addr + aux, spec.innerMap, {});
    host.rt.host_map_init(this.addr);
  }

  /**
   * Makes the map read-only for the host, as BPF_MAP_FREEZE (libbpf freezes `.rodata` after
   * load): later host updates and deletes fail with EPERM. BPF programs are unaffected.
   */
  freeze(): void {
    this.frozen = true;
  }

  /** True after `freeze`. */
  get isFrozen(): boolean {
    return this.frozen;
  }

  private frozen = false;

  private checkWritable(op: string): void {
    if (this.frozen) throw new MapError(this.name, 'EPERM', `${op} of a frozen map`);
  }

  /** False for families without keys to iterate (ring buffer, queue, stack, bloom filter). */
  get hasKeys(): boolean {
    return (
      this.type !== BPF_MAP_TYPE_RINGBUF &&
      this.type !== BPF_MAP_TYPE_QUEUE &&
      this.type !== BPF_MAP_TYPE_STACK &&
      this.type !== BPF_MAP_TYPE_BLOOM_FILTER
    );
  }

  /** Bytes of a value as the host sees it (all CPUs' copies for percpu maps). */
  get hostValueSize(): number {
    return this.percpu ? round8(this.valueSize) * this.host.nCpus : this.valueSize;
  }

  /**
   * Looks up `key`; undefined when absent. LPM tries: the longest stored prefix of `key`.
   * Queues and stacks (key of 0 bytes): the element `peek` returns. Map-in-map: the inner
   * map's id as a u32. prog_array: the function token as a u32.
   */
  lookup(key: Uint8Array): Uint8Array | undefined {
    if (this.type === BPF_MAP_TYPE_BLOOM_FILTER)
      throw new MapError(this.name, 'EINVAL', 'a bloom filter has no values to look up: use has()');
    const k = this.putKey(key);
    const at = this.host.rt.host_lookup(this.addr, k);
    if (at === 0) return undefined;
    if (isMapInMapType(this.type) || this.type === BPF_MAP_TYPE_PROG_ARRAY) {
      const v = this.host.dataView();
      const slot = v.getUint32(at, true);
      if (slot === 0) return undefined;
      return u32Bytes(isMapInMapType(this.type) ? v.getUint32(slot + MAP_DESC.id, true) : slot);
    }
    return this.host.u8().slice(at, at + this.hostValueSize);
  }

  /**
   * Inserts or replaces (flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST). Queues, stacks and bloom
   * filters push (key of 0 bytes). Map-in-map values are inner map ids; prog_array values are
   * entry function tokens (see `setProg`).
   */
  update(key: Uint8Array, value: Uint8Array, flags: number = BPF_ANY): void {
    this.checkWritable('update');
    this.checkValue(value);
    const k = this.putKey(key);
    const val = this.valueScratch;
    this.host.u8().set(value, val);
    if (isMapInMapType(this.type)) this.resolveInnerMap(val);
    if (this.type === BPF_MAP_TYPE_PROG_ARRAY) this.checkToken(val);
    this.check(this.host.rt.host_update(this.addr, k, val, BigInt(flags)), 'update');
  }

  /** Deletes `key`. */
  delete(key: Uint8Array): void {
    this.checkWritable('delete');
    this.check(this.host.rt.host_delete(this.addr, this.putKey(key)), 'delete');
  }

  /**
   * The key after `key` in iteration order (the first key without `key`); undefined at the
   * end. LPM tries iterate in postorder (more specific prefixes first) and restart from the
   * first key when `key` is not stored. Queues, stacks and bloom filters have no keys (EINVAL).
   */
  nextKey(key?: Uint8Array): Uint8Array | undefined {
    const k = key === undefined ? 0 : this.putKey(key);
    const next = this.scratch + round8(this.keySize);
    const r = this.host.rt.host_next_key(this.addr, k, next);
    if (r === -2) return undefined;
    this.check(BigInt(r), 'next key');
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

  /**
   * Queue, stack: pushes `value`; when full, BPF_EXIST drops the oldest element and BPF_ANY
   * fails with E2BIG. Bloom filter: adds `value` (BPF_ANY only).
   * @example
   * queue.push(new Uint8Array([1, 0, 0, 0]));
   */
  push(value: Uint8Array, flags: number = BPF_ANY): void {
    this.checkWritable('push');
    this.checkValue(value);
    this.host.u8().set(value, this.valueScratch);
    this.check(this.host.rt.host_push(this.addr, this.valueScratch, BigInt(flags)), 'push');
  }

  /** Queue, stack: removes and returns the front element (oldest / newest); undefined when empty. */
  pop(): Uint8Array | undefined {
    this.checkWritable('pop');
    return this.takeFront(this.host.rt.host_pop, 'pop');
  }

  /** Queue, stack: the front element without removing it; undefined when empty. */
  peek(): Uint8Array | undefined {
    if (this.type === BPF_MAP_TYPE_BLOOM_FILTER)
      throw new MapError(this.name, 'EINVAL', 'a bloom filter peeks at a given value: use has()');
    return this.takeFront(this.host.rt.host_peek, 'peek');
  }

  /**
   * Bloom filter: false when `value` was certainly never pushed, true when it may have been
   * (the kernel's peek: 0 or -ENOENT).
   */
  has(value: Uint8Array): boolean {
    if (this.type !== BPF_MAP_TYPE_BLOOM_FILTER)
      throw new MapError(this.name, 'EINVAL', 'has() tests bloom filter membership');
    this.checkValue(value);
    this.host.u8().set(value, this.valueScratch);
    const r = this.host.rt.host_peek(this.addr, this.valueScratch);
    if (r === -2n) return false;
    this.check(r, 'peek');
    return true;
  }

  /**
   * prog_array: puts `prog`'s entry function in slot `index` (the kernel's update with a
   * program fd); bpf_tail_call(ctx, map, index) then jumps there.
   * @example
   * jumps.setProg(0, await vm.load(handler, { verify: false }));
   */
  setProg(index: number, prog: { readonly links: ProgLinks }): void {
    this.checkWritable('update');
    if (this.type !== BPF_MAP_TYPE_PROG_ARRAY)
      throw new MapError(this.name, 'EINVAL', 'setProg() needs a prog_array');
    const token = prog.links.funcTokenBase;
    if (this.host.resolveToken(BigInt(token))?.links !== prog.links)
      throw new MapError(this.name, 'EINVAL', 'the program is not loaded in this Vm');
    this.update(u32Bytes(index), u32Bytes(token));
  }

  /** prog_array: the function token in slot `index`, or undefined when empty. */
  progToken(index: number): number | undefined {
    if (this.type !== BPF_MAP_TYPE_PROG_ARRAY)
      throw new MapError(this.name, 'EINVAL', 'progToken() needs a prog_array');
    const v = this.lookup(u32Bytes(index));
    return v === undefined ? undefined : new DataView(v.buffer).getUint32(0, true);
  }

  /**
   * The consumer of a ring buffer map: `consume(cb)` drains committed records in order;
   * `records()` is an async iterator over them.
   * @example
   * for await (const rec of obj.map('events').ringbuf().records({ signal })) handle(rec);
   */
  ringbuf(): RingBufConsumer {
    if (this.type !== BPF_MAP_TYPE_RINGBUF)
      throw new MapError(this.name, 'EINVAL', 'not a ring buffer');
    this.consumer ??= new RingBufConsumer(this.host, this.addr, this.maxEntries);
    return this.consumer;
  }

  private consumer: RingBufConsumer | undefined;

  /** Address of array element `index` (CPU 0), for direct value access (global data). */
  valueAddr(index: number): number {
    if (this.type !== BPF_MAP_TYPE_ARRAY)
      throw new MapError(this.name, 'EINVAL', 'direct value access needs an array map');
    if (index < 0 || index >= this.maxEntries)
      throw new MapError(this.name, 'E2BIG', `index ${index} is out of range`);
    return this.addr + MAP_DESC_SIZE + index * round8(this.valueSize);
  }

  private get valueScratch(): number {
    return this.scratch + 2 * round8(this.keySize);
  }

  private writeDesc(
    at: number,
    spec: MapSpec,
    fields: Partial<Record<MapDescField, number>>,
  ): void {
    const v = this.host.dataView();
    this.host.u8().fill(0, at, at + MAP_DESC_SIZE);
    const all: Partial<Record<MapDescField, number>> = {
      type: spec.type,
      keySize: spec.keySize,
      valueSize: spec.valueSize,
      maxEntries: spec.maxEntries,
      flags: spec.flags ?? 0,
      ...fields,
    };
    for (const [field, value] of Object.entries(all) as [MapDescField, number][])
      v.setUint32(at + MAP_DESC[field], value, true);
  }

  private takeFront(
    op: (map: number, value: number) => bigint,
    what: string,
  ): Uint8Array | undefined {
    const r = op(this.addr, this.valueScratch);
    if (r === -2n) return undefined;
    this.check(r, what);
    return this.host.u8().slice(this.valueScratch, this.valueScratch + this.valueSize);
  }

  /** Map-in-map: replaces the inner map id at `val` with the inner map's address. */
  private resolveInnerMap(val: number): void {
    const v = this.host.dataView();
    const id = v.getUint32(val, true);
    const inner = this.host.mapById(id);
    if (inner === undefined)
      throw new MapError(this.name, 'EINVAL', `update failed: no map with id ${id} (EBADF)`);
    v.setUint32(val, inner.addr, true);
  }

  /** prog_array: the token at `val` must be the entry of a program loaded in this Vm. */
  private checkToken(val: number): void {
    const token = this.host.dataView().getUint32(val, true);
    if (this.host.resolveToken(BigInt(token))?.subprog !== 0)
      throw new MapError(
        this.name,
        'EINVAL',
        `update failed: ${token} is not a program's entry token`,
      );
  }

  private checkValue(value: Uint8Array): void {
    if (value.length !== this.hostValueSize) {
      throw new MapError(
        this.name,
        'EINVAL',
        `value of ${value.length} bytes, the map takes ${this.hostValueSize}`,
      );
    }
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
  return MAP_TYPE_NAMES.has(type);
}
