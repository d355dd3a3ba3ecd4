/**
 * String helpers: bpf_strtol (105), bpf_strtoul (106) and bpf_strncmp (182), with the
 * kernel's semantics (kernel/bpf/helpers.c, lib/kstrtox.c, lib/string.c).
 *
 * strtol/strtoul(buf, buf_len, flags, res):
 * - flags is the base: 0 (auto: `0x` + hex digit → 16, a leading `0` → 8, else 10), 8, 10 or
 *   16; any other value or any other flag bit is -EINVAL.
 * - Leading white space is skipped, then one `-`; nothing left is -EINVAL. At most 63 of the
 *   remaining bytes are parsed (the kernel copies them to a 64-byte string); a `0x` prefix is
 *   skipped in base 16. No digit is -EINVAL; a value beyond u64 is -ERANGE.
 * - strtol: the value must fit s64 (-ERANGE); strtoul: a `-` is -EINVAL.
 * - `*res` is set to 0 first and to the value on success; the result is the number of bytes
 *   consumed (spaces, sign, prefix and digits).
 * strncmp(s1, s1_sz, s2): compares at most s1_sz bytes as unsigned chars, stopping after a
 * NUL; returns -1, 0 or 1 (lib/string.c strncmp).
 * Bad pointers give -EFAULT.
 *
 * Called from BPF. Pure: fast-path termination keeps them.
 */

import {
  BPF_FUNC_strncmp,
  BPF_FUNC_strtol,
  BPF_FUNC_strtoul,
  EFAULT,
  EINVAL,
  ERANGE,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto } from '../helpers.js';
import { argU32, memAddr, readCString, type MemHost } from './mem.js';

/** BPF_STRTOX_BASE_MASK: the flag bits that hold the base. */
export const BPF_STRTOX_BASE_MASK = 0x1f;

const U64_MAX = (1n << 64n) - 1n;
const MINUS_ONE = U64_MAX;

/** The kernel's isspace (lib/ctype.c): \t \n \v \f \r, space and Latin-1 NBSP. */
const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0;
const isXDigit = (c: number): boolean => digitValue(c) < 16;

function digitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lc = c | 0x20;
  if (lc >= 0x61 && lc <= 0x66) return lc - 0x61 + 10;
  return 99;
}

/** __bpf_strtoull: the value, its sign and the bytes consumed, or an errno. */
function strtoull(
  buf: Uint8Array,
  flags: bigint,
): { value: bigint; negative: boolean; consumed: number } | { errno: number } {
  let base = Number(flags & BigInt(BPF_STRTOX_BASE_MASK));
  if (buf.length === 0) return { errno: EINVAL };
  if (base !== 0 && base !== 8 && base !== 10 && base !== 16) return { errno: EINVAL };
  if ((flags & ~BigInt(BPF_STRTOX_BASE_MASK)) !== 0n) return { errno: EINVAL };
  let cur = 0;
  while (cur < buf.length && isSpace(buf[cur] as number)) cur++;
  const negative = cur < buf.length && buf[cur] === 0x2d;
  if (negative) cur++;
  if (cur === buf.length) return { errno: EINVAL };
  const consumed = cur;
  const str = buf.subarray(cur, cur + Math.min(buf.length - cur, 63));
  const at = (k: number): number => str[k] ?? 0;
  let s = 0;
  if (base === 0) {
    if (at(0) === 0x30) base = (at(1) | 0x20) === 0x78 && isXDigit(at(2)) ? 16 : 8;
    else base = 10;
  }
  if (base === 16 && at(0) === 0x30 && (at(1) | 0x20) === 0x78) s = 2;
  let value = 0n;
  let digits = 0;
  let overflow = false;
  const b = BigInt(base);
  for (; ; s++, digits++) {
    const v = digitValue(at(s));
    if (v >= base) break;
    if (value > (U64_MAX - BigInt(v)) / b) overflow = true;
    value = BigInt.asUintN(64, value * b + BigInt(v));
  }
  if (overflow) return { errno: ERANGE };
  if (digits === 0) return { errno: EINVAL };
  return { value, negative, consumed: consumed + s };
}

/** Reads the buffer and checks `res`; returns both addresses or an errno. */
function strtoxArgs(mem: MemHost, args: HelperArgs): { buf: Uint8Array; res: number } | bigint {
  const len = argU32(args[1]);
  if (args[0] === 0n || len === 0) return negErrno(EINVAL);
  const buf = memAddr(mem, args[0], len);
  const res = memAddr(mem, args[3], 8);
  if (buf < 0 || res < 0) return negErrno(EFAULT);
  mem.dataView().setBigUint64(res, 0n, true);
  return { buf: mem.u8().slice(buf, buf + len), res };
}

/** bpf_strtol. */
export function bpfStrtol(mem: MemHost, args: HelperArgs): bigint {
  const a = strtoxArgs(mem, args);
  if (typeof a === 'bigint') return a;
  const r = strtoull(a.buf, args[2]);
  if ('errno' in r) return negErrno(r.errno);
  let v: bigint;
  if (r.negative) {
    if (BigInt.asIntN(64, -r.value) > 0n) return negErrno(ERANGE);
    v = BigInt.asUintN(64, -r.value);
  } else {
    if (BigInt.asIntN(64, r.value) < 0n) return negErrno(ERANGE);
    v = r.value;
  }
  mem.dataView().setBigUint64(a.res, v, true);
  return BigInt(r.consumed);
}

/** bpf_strtoul. */
export function bpfStrtoul(mem: MemHost, args: HelperArgs): bigint {
  const a = strtoxArgs(mem, args);
  if (typeof a === 'bigint') return a;
  const r = strtoull(a.buf, args[2]);
  if ('errno' in r) return negErrno(r.errno);
  if (r.negative) return negErrno(EINVAL);
  mem.dataView().setBigUint64(a.res, r.value, true);
  return BigInt(r.consumed);
}

/** bpf_strncmp. */
export function bpfStrncmp(mem: MemHost, args: HelperArgs): bigint {
  const n = argU32(args[1]);
  const s1 = memAddr(mem, args[0], n);
  const s2 = memAddr(mem, args[2], 0);
  if (s1 < 0 || s2 < 0) return negErrno(EFAULT);
  const t = readCString(mem, s2, n);
  if (!t.terminated && t.bytes.length < n) return negErrno(EFAULT);
  const u8 = mem.u8();
  for (let k = 0; k < n; k++) {
    const c1 = u8[s1 + k] as number;
    const c2 = k < t.bytes.length ? (t.bytes[k] as number) : 0;
    if (c1 !== c2) return c1 < c2 ? MINUS_ONE : 1n;
    if (c1 === 0) break;
  }
  return 0n;
}

/** The string helpers. */
export function stringHelpers(mem: MemHost): HelperProto[] {
  return [
    { id: BPF_FUNC_strtol, name: 'bpf_strtol', fn: (args) => bpfStrtol(mem, args) },
    { id: BPF_FUNC_strtoul, name: 'bpf_strtoul', fn: (args) => bpfStrtoul(mem, args) },
    { id: BPF_FUNC_strncmp, name: 'bpf_strncmp', fn: (args) => bpfStrncmp(mem, args) },
  ];
}
