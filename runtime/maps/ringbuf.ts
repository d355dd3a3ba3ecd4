/**
 * BPF_MAP_TYPE_RINGBUF, host side: storage layout and the consumer. Producers are BPF programs
 * (runtime/wasm/ringbuf.ts: reserve/submit/discard/output/query). The consumer reads committed
 * records in order from the consumer position, skips discarded ones (and the padding records
 * that stand in for the kernel's double mapping at the end of the ring), stops at the first
 * record still being written, and advances the consumer position, as libbpf's ring_buffer does.
 *
 * With workers (shared memory) producers run on other threads: positions and record headers are
 * read with atomic loads (a header a producer published before its producer position is then
 * visible), and the consumer position is stored atomically after the record has been copied
 * out, so a producer never reuses space still being read.
 */

import { MAP_DESC_SIZE } from '../../src/abi.js';
import { MapError } from '../../src/errors.js';
import type { MapHost, MapSpec, MapStorage } from './map.js';

const BUSY = 0x8000_0000;
const DISCARD = 0x4000_0000;
const HDR = 8;
/** Bytes before the data area: consumer position (u64) then producer position (u64). */
export const RINGBUF_POS_BYTES = 16;

/** Checks a ring buffer spec (max_entries: a power of two, at least a page) and sizes it. */
export function ringbufStorage(spec: MapSpec): MapStorage {
  const n = spec.maxEntries;
  if (spec.keySize !== 0 || spec.valueSize !== 0) {
    throw new MapError(spec.name, 'EINVAL', 'ring buffers take key_size 0 and value_size 0');
  }
  if (n < 4096 || (n & (n - 1)) !== 0) {
    throw new MapError(
      spec.name,
      'EINVAL',
      `ring buffer size ${n} is not a power of two of at least 4096`,
    );
  }
  return { elemSize: 0, nBuckets: 0, dataBytes: RINGBUF_POS_BYTES + n, elemsBytes: 0 };
}

/** Address of the data area of the ring buffer whose descriptor is at `addr`. */
export function ringbufData(addr: number): number {
  return addr + MAP_DESC_SIZE + RINGBUF_POS_BYTES;
}

/** Address of the consumer position (u64; the producer position follows). */
function positions(addr: number): number {
  return addr + MAP_DESC_SIZE;
}

/** Reads the records of one ring buffer. */
export class RingBufConsumer {
  private readonly host: MapHost;
  private readonly data: number;
  private readonly pos: number;
  private readonly size: number;
  /** The Vm has workers: its memory is shared (fixed for the Vm's life). */
  private readonly shared: boolean;
  private views: { readonly w32: Int32Array; readonly w64: BigInt64Array } | undefined;

  constructor(host: MapHost, addr: number, size: number) {
    this.host = host;
    this.data = ringbufData(addr);
    this.pos = positions(addr);
    this.size = size;
    this.shared = host.u8().buffer instanceof SharedArrayBuffer;
  }

  /** Bytes committed or reserved and not yet consumed. */
  get pending(): number {
    return Number(this.loadPos(8) - this.loadPos(0));
  }

  /** Calls `cb` with a copy of every committed record, in order; returns how many it saw. */
  consume(cb: (record: Uint8Array) => void): number {
    let seen = 0;
    for (;;) {
      const a = this.atomics();
      const v = this.host.dataView();
      const cons =
        a === undefined
          ? v.getBigUint64(this.pos, true)
          : BigInt.asUintN(64, Atomics.load(a.w64, this.pos / 8));
      const prod =
        a === undefined
          ? v.getBigUint64(this.pos + 8, true)
          : BigInt.asUintN(64, Atomics.load(a.w64, this.pos / 8 + 1));
      if (cons >= prod) return seen;
      const hdr = this.data + Number(cons & BigInt(this.size - 1));
      const word = a === undefined ? v.getUint32(hdr, true) : Atomics.load(a.w32, hdr / 4) >>> 0;
      if ((word & BUSY) !== 0) return seen;
      const len = word & ~(BUSY | DISCARD);
      if ((word & DISCARD) === 0) {
        cb(this.host.u8().slice(hdr + HDR, hdr + HDR + len));
        seen++;
      }
      const next = cons + BigInt((len + HDR + 7) & ~7);
      if (a === undefined) this.host.dataView().setBigUint64(this.pos, next, true);
      else Atomics.store(a.w64, this.pos / 8, BigInt.asIntN(64, next));
    }
  }

  /** Views for Atomics over the shared memory of a Vm with workers; undefined without. */
  private atomics(): { readonly w32: Int32Array; readonly w64: BigInt64Array } | undefined {
    if (!this.shared) return undefined;
    const buf = this.host.u8().buffer;
    if (this.views?.w32.buffer !== buf)
      this.views = { w32: new Int32Array(buf), w64: new BigInt64Array(buf) };
    return this.views;
  }

  /** The consumer (`at` 0) or producer (`at` 8) position. */
  private loadPos(at: number): bigint {
    const a = this.atomics();
    if (a === undefined) return this.host.dataView().getBigUint64(this.pos + at, true);
    return BigInt.asUintN(64, Atomics.load(a.w64, (this.pos + at) / 8));
  }

  /**
   * Yields records as producers commit them, polling every `intervalMs` while the ring is
   * empty, until `signal` aborts.
   */
  async *records(
    opts: { intervalMs?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Uint8Array> {
    const interval = opts.intervalMs ?? 1;
    while (opts.signal?.aborted !== true) {
      const batch: Uint8Array[] = [];
      this.consume((r) => batch.push(r));
      for (const r of batch) yield r;
      if (batch.length === 0) await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }
}
