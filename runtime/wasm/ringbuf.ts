// AssemblyScript: BPF_MAP_TYPE_RINGBUF. The data area is max_entries bytes (a power of two);
// records are an 8-byte header { u32 len | BUSY | DISCARD, u32 pg_off } and their data rounded
// up to 8, as the kernel's. The kernel maps the data pages twice so a record never wraps; one
// linear memory cannot, so a record that would straddle the end is preceded by a discarded
// padding record filling the tail, which consumers skip.
//
// Storage at MAP_DATA: consumer position (u64), producer position (u64), then the data area.
//
// Concurrency (rt-shared.wasm: producers on several workers, the host consuming; sync.ts): as
// in the kernel, reserve runs under the ring's lock word (MAP_LOCK): it reads both positions,
// writes the BUSY header (and any padding record) and only then publishes the new producer
// position with an atomic store, so a consumer that sees a position also sees the headers
// before it. A reserve that finds the lock busy too long (sync.ts) returns NULL (the kernel
// fails a contended reserve from NMI the same way). Submit and discard are one atomic store of
// the header that clears BUSY, after the record's data; the host consumer
// (runtime/maps/ringbuf.ts) loads headers and positions atomically and stores the consumer
// position after it has copied the record out.

import { E2BIG, EINVAL, MAP_DATA, MAP_LOCK, MAP_MAX_ENTRIES } from './abi';
import { ld64, lockWord, st32, st64, unlockWord } from './sync';
import { err } from './util';

export const RINGBUF_BUSY: u32 = 1 << 31;
export const RINGBUF_DISCARD: u32 = 1 << 30;
export const RINGBUF_HDR: u32 = 8;

const BPF_RB_NO_WAKEUP: u64 = 1;
const BPF_RB_FORCE_WAKEUP: u64 = 2;
const BPF_RB_AVAIL_DATA: u64 = 0;
const BPF_RB_RING_SIZE: u64 = 1;
const BPF_RB_CONS_POS: u64 = 2;
const BPF_RB_PROD_POS: u64 = 3;

/** Bytes of positions before the data area. */
export const RINGBUF_POS_BYTES: u32 = 16;

/** The data area of ring buffer `map`. */
export function ringData(map: usize): usize {
  return <usize>load<u32>(map, MAP_DATA) + RINGBUF_POS_BYTES;
}

function consPos(map: usize): u64 {
  return ld64(<usize>load<u32>(map, MAP_DATA));
}

function prodPos(map: usize): u64 {
  return ld64(<usize>load<u32>(map, MAP_DATA) + 8);
}

/** bpf_ringbuf_reserve: the address of `size` writable bytes, or 0 when the ring is full. */
export function ringbufReserve(map: usize, size: u64, flags: u64): usize {
  if (flags != 0) return 0;
  const mask = <u64>load<u32>(map, MAP_MAX_ENTRIES) - 1;
  const ringSize = mask + 1;
  if (size == 0 || size > ringSize - RINGBUF_HDR || size > 0x3fffffff) return 0;
  const total = (size + RINGBUF_HDR + 7) & ~7;
  const data = ringData(map);
  if (!lockWord(map + MAP_LOCK)) return 0;
  let prod = prodPos(map);
  const cons = consPos(map);
  let off = prod & mask;
  let pad: u64 = 0;
  if (off + total > ringSize) pad = ringSize - off;
  if (prod + pad + total - cons > ringSize) {
    unlockWord(map + MAP_LOCK);
    return 0;
  }
  if (pad != 0) {
    // fill the tail with a discarded record so that the record starts at offset 0
    store<u32>(data + <usize>off, 0, 4);
    st32(data + <usize>off, (<u32>(pad - RINGBUF_HDR)) | RINGBUF_DISCARD);
    prod += pad;
    off = 0;
  }
  const hdr = data + <usize>off;
  store<u32>(hdr, <u32>off, 4);
  st32(hdr, <u32>size | RINGBUF_BUSY);
  st64(<usize>load<u32>(map, MAP_DATA) + 8, prod + total);
  unlockWord(map + MAP_LOCK);
  return hdr + RINGBUF_HDR;
}

/** The header of the record whose data is at `p`, or 0 when `p` is not a busy record of `map`. */
function headerOf(map: usize, p: usize): usize {
  const data = ringData(map);
  const size = <usize>load<u32>(map, MAP_MAX_ENTRIES);
  if (p < data + RINGBUF_HDR || p >= data + size) return 0;
  const hdr = p - RINGBUF_HDR;
  if (((hdr - data) & 7) != 0) return 0;
  const len = load<u32>(hdr);
  if ((len & RINGBUF_BUSY) == 0 || load<u32>(hdr, 4) != <u32>(hdr - data)) return 0;
  // a header the program wrote into its own record's data must not reach past the data area
  const bytes = <usize>(len & ~(RINGBUF_BUSY | RINGBUF_DISCARD));
  if (bytes > size || hdr - data + RINGBUF_HDR + bytes > size) return 0;
  return hdr;
}

/**
 * Whether `p` is the data of a busy (reserved, not yet committed) record of `map` with at
 * least `need` bytes: what an access through a coroutine handle may also reach.
 */
export function ringbufRecordLive(map: usize, p: usize, need: u32): bool {
  const hdr = headerOf(map, p);
  return hdr != 0 && (load<u32>(hdr) & ~(RINGBUF_BUSY | RINGBUF_DISCARD)) >= need;
}

/** bpf_ringbuf_submit / discard: commits (or drops) a reserved record. */
export function ringbufCommit(map: usize, p: usize, discard: bool): u64 {
  const hdr = headerOf(map, p);
  if (hdr == 0) return err(EINVAL);
  let len = load<u32>(hdr) & ~RINGBUF_BUSY;
  if (discard) len |= RINGBUF_DISCARD;
  atomic.store<u32>(hdr, len);
  return 0;
}

/** bpf_ringbuf_output: reserve, copy `size` bytes from `src`, submit. */
export function ringbufOutput(map: usize, src: usize, size: u64, flags: u64): u64 {
  if ((flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) != 0) return err(EINVAL);
  const p = ringbufReserve(map, size, 0);
  if (p == 0) return err(E2BIG);
  memory.copy(p, src, <usize>size);
  return ringbufCommit(map, p, false);
}

/** bpf_ringbuf_query. */
export function ringbufQuery(map: usize, flags: u64): u64 {
  if (flags == BPF_RB_AVAIL_DATA) return prodPos(map) - consPos(map);
  if (flags == BPF_RB_RING_SIZE) return <u64>load<u32>(map, MAP_MAX_ENTRIES);
  if (flags == BPF_RB_CONS_POS) return consPos(map);
  if (flags == BPF_RB_PROD_POS) return prodPos(map);
  return 0;
}

/** The ring buffer a record pointer belongs to (from its header's page offset), or 0. */
export function ringOfRecord(p: usize, descSize: u32): usize {
  if (p < RINGBUF_HDR + RINGBUF_POS_BYTES + descSize) return 0;
  const hdr = p - RINGBUF_HDR;
  const data = hdr - <usize>load<u32>(hdr, 4);
  return data - RINGBUF_POS_BYTES - descSize;
}
