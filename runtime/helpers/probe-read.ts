/**
 * Bounded copies from anywhere in Vm memory: bpf_probe_read (4), bpf_probe_read_user (112),
 * bpf_probe_read_kernel (113) and the string forms bpf_probe_read_str (45),
 * bpf_probe_read_user_str (114), bpf_probe_read_kernel_str (115). The Vm has one address
 * space, so "user" and "kernel" behave alike; a "fault" is a source range that is not inside
 * the memory above the null guard.
 *
 * - probe_read*(dst, size, src): copies `size` bytes and returns 0; on a fault zeroes dst and
 *   returns -EFAULT (copy_from_kernel_nofault + memset, as the kernel).
 * - probe_read*_str(dst, size, src): copies the NUL-terminated string at `src`, at most `size`
 *   bytes: returns its length including the NUL, or `size` when it was cut (then the last byte
 *   written is a NUL); bytes of dst after the NUL are left as they were. On a fault (the string
 *   runs past the end of memory, or src is bad) zeroes dst and returns -EFAULT. size 0: 0.
 * A bad dst is -EFAULT with nothing written.
 *
 * Called from BPF.
 */

import {
  BPF_FUNC_probe_read,
  BPF_FUNC_probe_read_kernel,
  BPF_FUNC_probe_read_kernel_str,
  BPF_FUNC_probe_read_str,
  BPF_FUNC_probe_read_user,
  BPF_FUNC_probe_read_user_str,
  EFAULT,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto } from '../helpers.js';
import { argU32, memAddr, readCString, type MemHost } from './mem.js';

/** probe_read: copies `size` bytes from src to dst. */
export function probeRead(mem: MemHost, args: HelperArgs): bigint {
  const size = argU32(args[1]);
  const dst = memAddr(mem, args[0], size);
  if (dst < 0) return negErrno(EFAULT);
  if (size === 0) return 0n;
  const src = memAddr(mem, args[2], size);
  const u8 = mem.u8();
  if (src < 0) {
    u8.fill(0, dst, dst + size);
    return negErrno(EFAULT);
  }
  u8.copyWithin(dst, src, src + size);
  return 0n;
}

/** probe_read_str: copies the string at src into dst, at most `size` bytes. */
export function probeReadStr(mem: MemHost, args: HelperArgs): bigint {
  const size = argU32(args[1]);
  const dst = memAddr(mem, args[0], size);
  if (dst < 0) return negErrno(EFAULT);
  if (size === 0) return 0n;
  const src = memAddr(mem, args[2], 0);
  const u8 = mem.u8();
  const s = src < 0 ? undefined : readCString(mem, src, size);
  if (s === undefined || (!s.terminated && s.bytes.length < size)) {
    u8.fill(0, dst, dst + size);
    return negErrno(EFAULT);
  }
  if (s.terminated) {
    u8.set(s.bytes, dst);
    u8[dst + s.bytes.length] = 0;
    return BigInt(s.bytes.length + 1);
  }
  u8.set(s.bytes.subarray(0, size - 1), dst);
  u8[dst + size - 1] = 0;
  return BigInt(size);
}

/** The six probe_read helpers. */
export function probeReadHelpers(mem: MemHost): HelperProto[] {
  const copy = (id: number, name: string): HelperProto => ({
    id,
    name,
    fn: (args) => probeRead(mem, args),
  });
  const str = (id: number, name: string): HelperProto => ({
    id,
    name,
    fn: (args) => probeReadStr(mem, args),
  });
  return [
    copy(BPF_FUNC_probe_read, 'bpf_probe_read'),
    copy(BPF_FUNC_probe_read_user, 'bpf_probe_read_user'),
    copy(BPF_FUNC_probe_read_kernel, 'bpf_probe_read_kernel'),
    str(BPF_FUNC_probe_read_str, 'bpf_probe_read_str'),
    str(BPF_FUNC_probe_read_user_str, 'bpf_probe_read_user_str'),
    str(BPF_FUNC_probe_read_kernel_str, 'bpf_probe_read_kernel_str'),
  ];
}
