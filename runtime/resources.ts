/**
 * What a Vm's programs hold right now, counted from the outside (`Vm.resources()`): ring-buffer
 * records reserved and neither submitted nor discarded, spin locks taken and not released, and
 * the frame allocator's live objects and bytes. Termination's guarantee (issue 8 §3) is checked
 * against it: after a terminated run every count is back where it was before the run.
 *
 * The counts come from sources, so that subsystems plug in without this file knowing them:
 * the ring buffers and spin locks are counted here; the frame allocator (or anything else that
 * hands out objects) adds a source with `Vm.addResourceSource`.
 *
 * Called from host (Vm.resources, the CLI's `run --json`, tests).
 */

import { MAP_DESC } from '../src/abi.js';
import type { MemHost } from './helpers/mem.js';

/** Outstanding resources, as `bpfwasm run --json` prints them (all 0 when nothing leaked). */
export interface ResourceCounts {
  /** Objects of the frame allocator not freed (bpf_obj_new objects, coroutine frames). */
  readonly live_objects: number;
  /** Their bytes. */
  readonly live_bytes: number;
  /** Ring-buffer records reserved and neither submitted nor discarded. */
  readonly reservations: number;
  /** Spin locks taken and not released. */
  readonly locks_held: number;
}

/** A source of counts; the Vm adds up what every source reports. */
export type ResourceSource = () => Partial<ResourceCounts>;

const BUSY = 0x8000_0000;
const LEN_MASK = 0x3fff_ffff;
const HDR = 8;
/** Bytes of positions (consumer, producer) before a ring buffer's data area. */
const POS_BYTES = 16;

/**
 * Records of the ring buffer whose descriptor is at `desc` (data area `size` bytes) that are
 * still reserved: walks the headers from the consumer to the producer position and counts
 * those with the BUSY bit (padding records are discarded, never busy).
 */
export function ringbufReservations(host: MemHost, desc: number, size: number): number {
  const v = host.dataView();
  const pos = v.getUint32(desc + MAP_DESC.data, true);
  const data = pos + POS_BYTES;
  const shared = host.memory.buffer instanceof SharedArrayBuffer;
  const w64 = shared ? new BigInt64Array(host.memory.buffer) : undefined;
  const w32 = shared ? new Int32Array(host.memory.buffer) : undefined;
  const load64 = (a: number): bigint =>
    w64 !== undefined ? BigInt.asUintN(64, Atomics.load(w64, a / 8)) : v.getBigUint64(a, true);
  let cons = load64(pos);
  const prod = load64(pos + 8);
  const mask = BigInt(size - 1);
  let busy = 0;
  while (cons < prod) {
    const hdr = data + Number(cons & mask);
    const len = w32 !== undefined ? Atomics.load(w32, hdr / 4) >>> 0 : v.getUint32(hdr, true);
    if ((len & BUSY) !== 0) busy++;
    cons += BigInt(((len & LEN_MASK) + HDR + 7) & ~7);
  }
  return busy;
}

/** Adds up `sources`. */
export function sumResources(sources: readonly ResourceSource[]): ResourceCounts {
  const out = { live_objects: 0, live_bytes: 0, reservations: 0, locks_held: 0 };
  for (const s of sources) {
    const c = s();
    out.live_objects += c.live_objects ?? 0;
    out.live_bytes += c.live_bytes ?? 0;
    out.reservations += c.reservations ?? 0;
    out.locks_held += c.locks_held ?? 0;
  }
  return out;
}
