/**
 * The kernel's BPF printf: the format subset `bpf_bprintf_prepare` accepts
 * (kernel/bpf/helpers.c) and the output `bstr_printf` produces for it, used by
 * bpf_trace_printk and bpf_snprintf.
 *
 * Accepted: `%%`; flags `0 + - space` and a width; `%d %i %u %x %X` with `l`/`ll` (64-bit; without
 * them the argument's low 32 bits, signed for d/i); `%c`; `%s`, `%pks`, `%pus` (a string read
 * from Vm memory, empty when the pointer is bad); `%p %pK %px` (the pointer as 16 hex digits:
 * there is nothing to hide); `%ps %pS %pB` (no symbols: `0x` and hex); `%pi4 %pI4 %pi6 %pI6`.
 * Everything else (precision, `#`, `h`, `%o`, `%n`, ...) is -EINVAL, as are bytes that are not
 * printable ASCII or space, more conversions than arguments, and `%s` followed by a letter or
 * digit. Strings and numbers share the kernel's 512-byte argument buffer: when it runs out,
 * strings are truncated and other conversions fail with -ENOSPC.
 *
 * Called from BPF (printk.ts).
 */

import { EINVAL, ENOSPC } from '../../src/helper-protos.js';
import { memAddr, readCString, type MemHost } from './mem.js';

/** MAX_BPRINTF_BIN_ARGS: bytes of the buffer that holds the prepared arguments. */
const MAX_BPRINTF_BIN_ARGS = 512;

/** The formatted bytes (no NUL), or the errno that bpf_bprintf_prepare returns. */
export type BprintfResult = { readonly out: Uint8Array } | { readonly errno: number };

const isPrint = (c: number): boolean => c >= 0x20 && c <= 0x7e;
const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isAlnum = (c: number): boolean =>
  isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isPunct = (c: number): boolean => isPrint(c) && c !== 0x20 && !isAlnum(c);
const ch = (s: string): number => s.charCodeAt(0);

/** A conversion's flags and width. */
interface Spec {
  left: boolean;
  zero: boolean;
  plus: boolean;
  space: boolean;
  /** -1 when none was given. */
  width: number;
}

function pad(body: number[], spec: Spec, zeroOk: boolean, sign: number[] = []): number[] {
  const n = body.length + sign.length;
  const fill = Math.max(0, spec.width - n);
  if (spec.left) return [...sign, ...body, ...new Array<number>(fill).fill(0x20)];
  if (spec.zero && zeroOk) return [...sign, ...new Array<number>(fill).fill(0x30), ...body];
  return [...new Array<number>(fill).fill(0x20), ...sign, ...body];
}

function ascii(s: string): number[] {
  return [...s].map(ch);
}

function formatInt(v: bigint, conv: number, size: 4 | 8, spec: Spec): number[] {
  const signed = conv === ch('d') || conv === ch('i');
  const bits = size * 8;
  let x = signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
  let sign: number[] = [];
  if (signed && x < 0n) {
    sign = [ch('-')];
    x = -x;
  } else if (signed && spec.plus) sign = [ch('+')];
  else if (signed && spec.space) sign = [0x20];
  let digits = x.toString(conv === ch('x') || conv === ch('X') ? 16 : 10);
  if (conv === ch('X')) digits = digits.toUpperCase();
  return pad(ascii(digits), spec, true, sign);
}

function formatPointer(v: bigint, spec: Spec): number[] {
  const hex = ascii(BigInt.asUintN(64, v).toString(16));
  if (spec.width === -1) return pad(hex, { ...spec, width: 16, zero: true }, true);
  return pad(hex, spec, true);
}

function formatIp(bytes: Uint8Array, kind: number, version: number): string {
  const b = [...bytes];
  if (version === 4) {
    return b.map((x) => (kind === ch('i') ? String(x).padStart(3, '0') : String(x))).join('.');
  }
  const hex = b.map((x) => x.toString(16).padStart(2, '0'));
  if (kind === ch('i')) return hex.join('');
  const groups: string[] = [];
  for (let k = 0; k < 16; k += 2) groups.push(`${hex[k]}${hex[k + 1]}`);
  return groups.join(':');
}

/** State of one formatting pass. */
class Pass {
  readonly fmt: Uint8Array;
  readonly args: readonly bigint[];
  readonly mem: MemHost;
  readonly out: number[] = [];
  /** Bytes of the kernel's argument buffer still free. */
  bin = MAX_BPRINTF_BIN_ARGS;

  constructor(fmt: Uint8Array, args: readonly bigint[], mem: MemHost) {
    this.fmt = fmt;
    this.args = args;
    this.mem = mem;
  }

  at(k: number): number {
    return this.fmt[k] ?? 0;
  }

  /** Takes `size` bytes, 4-aligned, from the argument buffer; false when they do not fit. */
  takeAligned(size: number): boolean {
    const used = Math.ceil((MAX_BPRINTF_BIN_ARGS - this.bin) / 4) * 4;
    if (MAX_BPRINTF_BIN_ARGS - used < size) return false;
    this.bin = MAX_BPRINTF_BIN_ARGS - used - size;
    return true;
  }

  /** A string argument, as strncpy_from_kernel_nofault copies it into the argument buffer. */
  takeString(ptr: bigint): number[] {
    const a = memAddr(this.mem, ptr, 0);
    if (a < 0) {
      this.bin -= 1;
      return [];
    }
    const { bytes, terminated } = readCString(this.mem, a, this.bin);
    if (terminated) {
      this.bin -= bytes.length + 1;
      return [...bytes];
    }
    if (bytes.length === this.bin) {
      // truncated by the buffer: its last byte becomes the NUL
      const s = [...bytes.subarray(0, this.bin - 1)];
      this.bin = 0;
      return s;
    }
    // ran off the end of memory: a fault, and the string is empty
    this.bin -= 1;
    return [];
  }
}

/** Parses flags and width at `i`; returns the spec and the index after them. */
function parseSpec(p: Pass, i: number): [Spec, number] {
  const spec: Spec = { left: false, zero: false, plus: false, space: false, width: -1 };
  for (;;) {
    const c = p.at(i);
    if (c === ch('0')) spec.zero = true;
    else if (c === ch('+')) spec.plus = true;
    else if (c === ch('-')) spec.left = true;
    else if (c === 0x20) spec.space = true;
    else break;
    i++;
  }
  if (p.at(i) >= ch('1') && p.at(i) <= ch('9')) {
    let w = 0;
    while (isDigit(p.at(i))) w = w * 10 + (p.at(i++) - ch('0'));
    spec.width = w;
  }
  if (spec.left) spec.zero = false;
  return [spec, i];
}

/** `%p...` at `i` (the 'p'): appends the output; returns the last index used or an errno. */
function convPointer(p: Pass, i: number, arg: bigint, spec: Spec): number | { errno: number } {
  const n1 = p.at(i + 1);
  const n2 = p.at(i + 2);
  if ((n1 === ch('k') || n1 === ch('u')) && n2 === ch('s')) return convString(p, i + 2, arg, spec);
  if (n1 === 0 || isSpace(n1) || isPunct(n1) || n1 === ch('K') || n1 === ch('x')) {
    if (!p.takeAligned(8)) return { errno: ENOSPC };
    p.out.push(...formatPointer(arg, spec));
    return n1 === ch('K') || n1 === ch('x') ? i + 1 : i;
  }
  if (n1 === ch('s') || n1 === ch('S') || n1 === ch('B')) {
    const text = ascii(`0x${BigInt.asUintN(64, arg).toString(16)}`);
    if (n1 === ch('B')) p.bin -= Math.min(p.bin, text.length + 1);
    else if (!p.takeAligned(8)) return { errno: ENOSPC };
    p.out.push(...pad(text, spec, false));
    return i + 1;
  }
  if ((n1 !== ch('i') && n1 !== ch('I')) || (n2 !== ch('4') && n2 !== ch('6'))) {
    return { errno: EINVAL };
  }
  const size = n2 === ch('4') ? 4 : 16;
  if (p.bin < size) return { errno: ENOSPC };
  const a = memAddr(p.mem, arg, size);
  const bytes = a < 0 ? new Uint8Array(size) : p.mem.u8().slice(a, a + size);
  const text = ascii(formatIp(bytes, n1, size === 4 ? 4 : 6));
  p.bin -= Math.min(p.bin, text.length + 1);
  p.out.push(...pad(text, spec, false));
  return i + 2;
}

/** `%s` (or `%pks`/`%pus`) whose last letter is at `i`. */
function convString(p: Pass, i: number, arg: bigint, spec: Spec): number | { errno: number } {
  const next = p.at(i + 1);
  if (next !== 0 && !isSpace(next) && !isPunct(next)) return { errno: EINVAL };
  if (p.bin === 0) return { errno: ENOSPC };
  p.out.push(...pad(p.takeString(arg), spec, false));
  return i;
}

/** One conversion starting after the '%' at `i`; returns the last index used or an errno. */
function conversion(p: Pass, start: number, arg: bigint): number | { errno: number } {
  const [spec, i] = parseSpec(p, start);
  const c = p.at(i);
  if (c === ch('p')) return convPointer(p, i, arg, spec);
  if (c === ch('s')) return convString(p, i, arg, spec);
  if (c === ch('c')) {
    if (p.bin === 0) return { errno: ENOSPC };
    p.bin -= 1;
    p.out.push(...pad([Number(arg & 0xffn)], spec, false));
    return i;
  }
  let k = i;
  let size: 4 | 8 = 4;
  if (p.at(k) === ch('l')) {
    size = 8;
    k++;
  }
  if (p.at(k) === ch('l')) k++;
  const conv = p.at(k);
  if (![ch('i'), ch('d'), ch('u'), ch('x'), ch('X')].includes(conv)) return { errno: EINVAL };
  if (!p.takeAligned(size)) return { errno: ENOSPC };
  p.out.push(...formatInt(arg, conv, size, spec));
  return k;
}

/**
 * Validates `fmt` (the format's bytes before its NUL) against `args` (the u64 values the
 * program passed) and formats it.
 * @example
 * bprintf(new TextEncoder().encode('n=%d'), [5n], vm); // { out: bytes of 'n=5' }
 */
export function bprintf(fmt: Uint8Array, args: readonly bigint[], mem: MemHost): BprintfResult {
  const p = new Pass(fmt, args, mem);
  let spec = 0;
  for (let i = 0; i < fmt.length; i++) {
    const c = p.at(i);
    if (!isPrint(c) && !isSpace(c)) return { errno: EINVAL };
    if (c !== ch('%')) {
      p.out.push(c);
      continue;
    }
    if (p.at(i + 1) === ch('%')) {
      p.out.push(c);
      i++;
      continue;
    }
    if (spec >= args.length) return { errno: EINVAL };
    const r = conversion(p, i + 1, args[spec] as bigint);
    if (typeof r !== 'number') return r;
    i = r;
    spec++;
  }
  return { out: Uint8Array.from(p.out) };
}
