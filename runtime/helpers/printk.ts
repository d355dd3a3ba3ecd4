/**
 * bpf_trace_printk (6) and bpf_snprintf (165): the kernel's BPF printf (bprintf.ts) into the
 * host's trace log, or into a buffer in Vm memory.
 *
 * - trace_printk(fmt, fmt_size, a1, a2, a3): `fmt` must hold a NUL within `fmt_size` bytes
 *   (else -EINVAL); at most three conversions. The text (cut to MAX_BPRINTF_BUF - 1 = 1023
 *   bytes, as trace_pipe shows it) goes to the Vm's trace log; returns the length of the whole
 *   text, as bstr_printf counts it.
 * - snprintf(str, str_size, fmt, data, data_len): `data` holds `data_len / 8` u64 arguments
 *   (a multiple of 8, at most 12 of them, else -EINVAL); writes at most `str_size` bytes, NUL
 *   terminated, and returns the length of the whole text plus one (the NUL), so a result above
 *   `str_size` means it was cut.
 * Bad pointers give -EFAULT; format errors give bprintf's errno.
 *
 * Called from BPF. The log is `TraceLog`, kept by the Vm (`vm.traceLog`).
 */

import {
  BPF_FUNC_snprintf,
  BPF_FUNC_trace_printk,
  EFAULT,
  EINVAL,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto } from '../helpers.js';
import { bprintf } from './bprintf.js';
import { argU32, memAddr, readCString, type MemHost } from './mem.js';

/** MAX_BPRINTF_BUF: bytes of trace_printk's output buffer (the NUL included). */
export const MAX_BPRINTF_BUF = 1024;
/** MAX_BPRINTF_VARARGS: most arguments bpf_snprintf takes. */
export const MAX_BPRINTF_VARARGS = 12;
/** Lines the trace log keeps before it drops the oldest. */
export const TRACE_LOG_LIMIT = 10_000;

/** Where bpf_trace_printk writes: the last TRACE_LOG_LIMIT texts, and an optional host sink. */
export class TraceLog {
  /** Texts in call order, each exactly as formatted (a `\n` the format ends with is kept). */
  readonly lines: string[] = [];
  private readonly sink: ((text: string) => void) | undefined;

  constructor(sink?: (text: string) => void) {
    this.sink = sink;
  }

  /** Records one text. Called from BPF (trace_printk). */
  write(text: string): void {
    if (this.lines.length >= TRACE_LOG_LIMIT) this.lines.shift();
    this.lines.push(text);
    this.sink?.(text);
  }

  /** Forgets every recorded text. */
  clear(): void {
    this.lines.length = 0;
  }
}

const decoder = new TextDecoder('utf-8', { fatal: false });

/** bpf_trace_printk: formats into the trace log. */
export function tracePrintk(mem: MemHost, log: TraceLog, args: HelperArgs): bigint {
  const size = argU32(args[1]);
  const fmt = memAddr(mem, args[0], size);
  if (fmt < 0) return negErrno(EFAULT);
  const { bytes, terminated } = readCString(mem, fmt, size);
  if (!terminated) return negErrno(EINVAL);
  const r = bprintf(bytes, [args[2], args[3], args[4]], mem);
  if ('errno' in r) return negErrno(r.errno);
  log.write(decoder.decode(r.out.subarray(0, MAX_BPRINTF_BUF - 1)));
  return BigInt(r.out.length);
}

/** bpf_snprintf: formats into `str`. */
export function bpfSnprintf(mem: MemHost, args: HelperArgs): bigint {
  const strSize = argU32(args[1]);
  const dataLen = argU32(args[4]);
  if (dataLen % 8 !== 0 || dataLen > MAX_BPRINTF_VARARGS * 8 || (dataLen > 0 && args[3] === 0n)) {
    return negErrno(EINVAL);
  }
  const str = strSize === 0 ? 0 : memAddr(mem, args[0], strSize);
  const data = dataLen === 0 ? 0 : memAddr(mem, args[3], dataLen);
  const fmt = memAddr(mem, args[2], 0);
  if (str < 0 || data < 0 || fmt < 0) return negErrno(EFAULT);
  const { bytes, terminated } = readCString(mem, fmt, mem.u8().length - fmt);
  if (!terminated) return negErrno(EINVAL);
  const view = mem.dataView();
  const values: bigint[] = [];
  for (let k = 0; k < dataLen; k += 8) values.push(view.getBigUint64(data + k, true));
  const r = bprintf(bytes, values, mem);
  if ('errno' in r) return negErrno(r.errno);
  if (strSize > 0) {
    const n = Math.min(r.out.length, strSize - 1);
    const u8 = mem.u8();
    u8.set(r.out.subarray(0, n), str);
    u8[str + n] = 0;
  }
  return BigInt(r.out.length + 1);
}

/** The printk helpers of a Vm whose trace log is `log`. */
export function printkHelpers(mem: MemHost, log: TraceLog): HelperProto[] {
  return [
    {
      id: BPF_FUNC_trace_printk,
      name: 'bpf_trace_printk',
      fn: (args) => tracePrintk(mem, log, args),
    },
    { id: BPF_FUNC_snprintf, name: 'bpf_snprintf', fn: (args) => bpfSnprintf(mem, args) },
  ];
}
