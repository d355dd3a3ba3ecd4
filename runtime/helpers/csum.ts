/**
 * bpf_csum_diff (28): the Internet checksum difference of two buffers, exactly as
 * net/core/filter.c computes it since Linux 6.13 (the result folded to 16 bits on every
 * architecture):
 *
 *   from and to: csum_from32to16(csum_sub(csum_partial(to, seed), csum_partial(from, 0)))
 *   to only:     csum_from32to16(csum_partial(to, seed))           (pushing data)
 *   from only:   csum_from32to16(~csum_partial(from, ~seed))       (pulling data)
 *   neither:     seed
 *
 * csum_partial is the generic lib/checksum.c one: the 16-bit one's-complement sum of the
 * buffer read as little-endian 16-bit words from its start (an odd last byte is a low byte),
 * added to the 32-bit seed with end-around carry. Sizes need not be multiples of 4 (kernels
 * before 6.13 returned -EINVAL for those and for more than 512 bytes, and did not fold).
 * A size above 0 with a bad pointer is -EFAULT.
 *
 * Called from BPF. Pure: fast-path termination keeps it.
 */

import { BPF_FUNC_csum_diff, EFAULT, negErrno } from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto } from '../helpers.js';
import { argU32, memAddr, type MemHost } from './mem.js';

/** do_csum: the folded 16-bit one's-complement sum of `len` bytes at `addr` (0 for none). */
function doCsum(u8: Uint8Array, addr: number, len: number): number {
  let sum = 0;
  for (let k = 0; k < len; k++) sum += (u8[addr + k] as number) << ((k & 1) * 8);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** csum_partial: adds the buffer's sum to the 32-bit `wsum`, with end-around carry. */
export function csumPartial(u8: Uint8Array, addr: number, len: number, wsum: number): number {
  let r = (doCsum(u8, addr, len) + wsum) >>> 0;
  if (wsum >>> 0 > r) r = (r + 1) >>> 0;
  return r;
}

/** csum_sub: a - b in one's complement (csum_add(a, ~b)). */
function csumSub(a: number, b: number): number {
  const nb = ~b >>> 0;
  let r = (a + nb) >>> 0;
  if (r < nb) r = (r + 1) >>> 0;
  return r;
}

/** csum_from32to16: folds a 32-bit sum to 16 bits (without complementing it). */
export function csumFrom32to16(sum: number): number {
  const s = (sum + (((sum >>> 16) | (sum << 16)) >>> 0)) >>> 0;
  return s >>> 16;
}

/** bpf_csum_diff(from, from_size, to, to_size, seed). */
export function csumDiff(mem: MemHost, args: HelperArgs): bigint {
  const fromSize = argU32(args[1]);
  const toSize = argU32(args[3]);
  const seed = argU32(args[4]);
  const from = fromSize === 0 ? 0 : memAddr(mem, args[0], fromSize);
  const to = toSize === 0 ? 0 : memAddr(mem, args[2], toSize);
  if (from < 0 || to < 0) return negErrno(EFAULT);
  const u8 = mem.u8();
  if (fromSize > 0 && toSize > 0) {
    const d = csumSub(csumPartial(u8, to, toSize, seed), csumPartial(u8, from, fromSize, 0));
    return BigInt(csumFrom32to16(d));
  }
  if (toSize > 0) return BigInt(csumFrom32to16(csumPartial(u8, to, toSize, seed)));
  if (fromSize > 0) {
    return BigInt(csumFrom32to16(~csumPartial(u8, from, fromSize, ~seed >>> 0) >>> 0));
  }
  return BigInt(seed);
}

/** bpf_csum_diff. */
export function csumHelpers(mem: MemHost): HelperProto[] {
  return [{ id: BPF_FUNC_csum_diff, name: 'bpf_csum_diff', fn: (args) => csumDiff(mem, args) }];
}
