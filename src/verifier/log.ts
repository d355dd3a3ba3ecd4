/**
 * The verifier log (kernel/bpf/log.c): a kernel-format text log with the kernel's levels,
 * a size limit that keeps the tail (the rotating log of kernels >= 6.4; `fixed: true` keeps
 * the head as BPF_LOG_FIXED does), `pos()` / `reset(pos)` to discard the output of a pruned
 * path, instruction lines printed by the one disassembler (`12: (85) call
 * bpf_map_lookup_elem#1`), the `; R1_w=0` state comment aligned as `print_insn_state` does,
 * and the final `processed N insns ...` line of `print_verification_stats`.
 *
 * Called from: every verifier pass (`checkCfg`, `doCheck`, ...), which write through
 * `verbose` and fail through `fail`.
 *
 * Invariants: positions are logical, as the kernel's `start_pos` / `end_pos`: `pos()` counts
 * every character ever written since the last reset, also those the size limit dropped, so a
 * position taken before a branch stays valid after truncation. At level 0 nothing is stored.
 */

import { disasmInsn } from '../asm/disassembler.js';
import { UsageError, VerifierError, type ErrnoCode } from '../errors.js';
import { helperName } from '../helper-protos.js';
import type { Insn } from '../isa/insn.js';

/** Log level bit: the trace of the failing path (`BPF_LOG_LEVEL1`). */
export const BPF_LOG_LEVEL1 = 1;
/** Log level bit: every processed insn with its state (`BPF_LOG_LEVEL2`). */
export const BPF_LOG_LEVEL2 = 2;
/** Either trace level (`BPF_LOG_LEVEL`). */
export const BPF_LOG_LEVEL = BPF_LOG_LEVEL1 | BPF_LOG_LEVEL2;
/** Log level bit: verification statistics (`BPF_LOG_STATS`). */
export const BPF_LOG_STATS = 4;
/** The limit printed in the stats line (`BPF_COMPLEXITY_LIMIT_INSNS`). */
export const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;
/**
 * Default log size: `UINT32_MAX >> 8` (16 MiB - 1), the kernel's maximum before 5.2 and
 * libbpf's `BPF_LOG_BUF_SIZE`. Like the kernel's `log_size` it counts the terminating NUL,
 * so at most `size - 1` characters are kept.
 */
export const BPF_LOG_DEFAULT_SIZE = 0xffffffff >>> 8;
/** Smallest size the kernel accepts for a log buffer. */
export const BPF_LOG_MIN_SIZE = 128;

const BPF_LOG_MIN_ALIGNMENT = 8;
const BPF_LOG_ALIGNMENT = 40;

/** Options of `VerifierLog`. */
export interface VerifierLogOptions {
  /** Bit set of `BPF_LOG_LEVEL1`, `BPF_LOG_LEVEL2`, `BPF_LOG_STATS`; 0 (off) by default. */
  readonly level?: number;
  /** Buffer size including the NUL, as the kernel's `log_size`; `BPF_LOG_DEFAULT_SIZE`. */
  readonly size?: number;
  /** Keep the head instead of the tail when the log overflows (`BPF_LOG_FIXED`). */
  readonly fixed?: boolean;
  /** Helper names for `call` lines; `helperName` from helper-protos by default. */
  readonly helperName?: (id: number) => string | undefined;
  /** Kfunc names for `call` lines (`kernel-function#id` when unknown). */
  readonly kfuncName?: (id: number) => string | undefined;
}

/** The counters of the final stats line (the kernel's `bpf_verifier_env` fields). */
export interface VerifierStats {
  /** `insn_processed`. */
  readonly insnProcessed: number;
  /** `max_states_per_insn`. */
  readonly maxStatesPerInsn: number;
  /** `total_states`. */
  readonly totalStates: number;
  /** `peak_states`. */
  readonly peakStates: number;
  /** `longest_mark_read_walk`, printed as `mark_read`. */
  readonly markRead: number;
  /** Level `BPF_LOG_STATS` only: `verification time N usec` (injected, for determinism). */
  readonly verificationTimeUsec?: number;
  /** Level `BPF_LOG_STATS` only: `stack depth 8+0+16`, one entry per subprog. */
  readonly stackDepths?: readonly number[];
}

/** `bpf_vlog_alignment`: padding that puts the `;` of a state comment in column 40, 48, ... */
function vlogAlignment(pos: number): number {
  const min = Math.max(pos + BPF_LOG_MIN_ALIGNMENT / 2, BPF_LOG_ALIGNMENT);
  return Math.ceil(min / BPF_LOG_MIN_ALIGNMENT) * BPF_LOG_MIN_ALIGNMENT - pos - 1;
}

/**
 * The verifier log (`struct bpf_verifier_log`).
 *
 * @example
 * ```ts
 * const log = new VerifierLog({ level: BPF_LOG_LEVEL1 });
 * log.insn(0, assemble('mov %r0, 0\nexit'));   // '0: (b7) r0 = 0\n'
 * throw log.fail(1, 'R0 !read_ok');            // VerifierError with log text
 * ```
 */
export class VerifierLog {
  /** Bit set of `BPF_LOG_*`; 0 is off. */
  readonly level: number;
  /** Buffer size including the NUL; at most `size - 1` characters are kept. */
  readonly size: number;
  /** True when the head is kept (`BPF_LOG_FIXED`), false for the kernel's rotating log. */
  readonly fixed: boolean;
  private readonly helperName: (id: number) => string | undefined;
  private readonly kfuncName: ((id: number) => string | undefined) | undefined;
  /** Retained text, starting at logical position `bufStart` (<= `start`). */
  private buf = '';
  private bufStart = 0;
  /** The kernel's `start_pos` / `end_pos`. */
  private start = 0;
  private end = 0;
  /** `prev_log_pos` / `prev_insn_print_pos` of `bpf_verifier_env`. */
  private prevLogPos = 0;
  private prevInsnPrintPos = 0;

  constructor(opts: VerifierLogOptions = {}) {
    const size = opts.size ?? BPF_LOG_DEFAULT_SIZE;
    if (!Number.isInteger(size) || size < BPF_LOG_MIN_SIZE || size > 0xffffffff >>> 2) {
      throw new UsageError(
        `verifier log size ${size} out of range [${BPF_LOG_MIN_SIZE}, ${0xffffffff >>> 2}]`,
      );
    }
    this.level = opts.level ?? 0;
    this.size = size;
    this.fixed = opts.fixed ?? false;
    this.helperName = opts.helperName ?? helperName;
    this.kfuncName = opts.kfuncName;
  }

  /** True when anything is logged (`bpf_verifier_log_needed`). */
  get enabled(): boolean {
    return this.level !== 0;
  }

  /** True when the size limit dropped text (the kernel then reports -ENOSPC). */
  get truncated(): boolean {
    return this.end > this.size - 1;
  }

  /** Size the whole log would need, NUL included (`log_true_size`). */
  get trueSize(): number {
    return this.end + 1;
  }

  /** Appends text as `verbose(env, ...)` does (callers format it; lines end in `\n`). */
  verbose(text: string): void {
    if (this.level === 0 || text === '') return;
    this.buf += text;
    this.end += text.length;
    const cap = this.size - 1;
    if (this.end - this.start <= cap) return;
    if (this.fixed) {
      // Keep the head: drop what does not fit, but count it in end (log_true_size).
      const keep = Math.max(0, this.start + cap - this.bufStart);
      if (this.buf.length > keep) this.buf = this.buf.slice(0, keep);
      return;
    }
    this.start = this.end - cap;
    // Trim lazily so that appending stays amortised O(length).
    if (this.buf.length > 2 * cap) {
      this.buf = this.buf.slice(this.start - this.bufStart);
      this.bufStart = this.start;
    }
  }

  /**
   * Logs an instruction line at level 1 or 2: `12: (85) call bpf_map_lookup_elem#1`, the
   * kernel's `"%d: "` plus `print_bpf_insn`, and remembers where it ends for `insnState`.
   */
  insn(idx: number, insns: readonly Insn[]): void {
    if ((this.level & BPF_LOG_LEVEL) === 0) return;
    this.prevLogPos = this.end;
    const opts =
      this.kfuncName === undefined
        ? { helperName: this.helperName }
        : { helperName: this.helperName, kfuncName: this.kfuncName };
    this.verbose(`${idx}: ${disasmInsn(insns, idx, 'kernel', opts)}\n`);
    this.prevInsnPrintPos = this.end - this.prevLogPos;
    this.prevLogPos = this.end;
  }

  /**
   * Logs a register state as `print_insn_state` does: right after the insn line, as a comment
   * aligned at column 40 (`0: (b7) r1 = 0   ...   ; R1_w=0`); otherwise on a line of its own
   * (`5: R1=ctx() R10=fp0`). `state` is what `print_verifier_state` prints, with its leading
   * space and without the newline.
   */
  insnState(idx: number, state: string): void {
    if (this.level === 0) return;
    if (this.prevLogPos !== 0 && this.prevLogPos === this.end) {
      this.reset(this.prevLogPos - 1);
      this.verbose(`${' '.repeat(vlogAlignment(this.prevInsnPrintPos))};${state}\n`);
    } else {
      this.verbose(`${idx}:${state}\n`);
    }
  }

  /** The current logical end (`log->end_pos`), to pass to `reset` later. */
  pos(): number {
    return this.end;
  }

  /** Discards everything written after `pos` (`bpf_vlog_reset`), e.g. a pruned path. */
  reset(pos: number): void {
    if (this.level === 0 || pos > this.end || pos < 0) return;
    this.end = pos;
    if (this.end < this.start) this.start = this.end;
    if (this.end < this.bufStart) {
      this.buf = '';
      this.bufStart = this.end;
    } else {
      this.buf = this.buf.slice(0, this.end - this.bufStart);
    }
  }

  /** The log text as the user's buffer would hold it (without the NUL). */
  text(): string {
    return this.buf.slice(this.start - this.bufStart, this.start - this.bufStart + this.size - 1);
  }

  /**
   * Prints the final statistics as `print_verification_stats` does: at level
   * `BPF_LOG_STATS` first `verification time N usec` and `stack depth A+B`, then always
   * `processed N insns (limit 1000000) max_states_per_insn A total_states B peak_states C
   * mark_read D`.
   */
  stats(s: VerifierStats): void {
    if ((this.level & BPF_LOG_STATS) !== 0) {
      this.verbose(`verification time ${Math.trunc(s.verificationTimeUsec ?? 0)} usec\n`);
      this.verbose(`stack depth ${(s.stackDepths ?? [0]).join('+')}\n`);
    }
    this.verbose(
      `processed ${s.insnProcessed} insns (limit ${BPF_COMPLEXITY_LIMIT_INSNS}) ` +
        `max_states_per_insn ${s.maxStatesPerInsn} total_states ${s.totalStates} ` +
        `peak_states ${s.peakStates} mark_read ${s.markRead}\n`,
    );
  }

  /**
   * Logs `reason` as the final line and returns (does not throw) the `VerifierError` that
   * carries the log text. `code` follows the kernel's errno: EACCES (default) for unsafe
   * programs, EINVAL for malformed ones, E2BIG for too complex ones.
   */
  fail(insnIdx: number | null, reason: string, code?: ErrnoCode, hint?: string): VerifierError {
    this.verbose(`${reason}\n`);
    return new VerifierError(insnIdx, reason, this.text(), code, hint);
  }

  /** The same error with the current log text, e.g. after `stats` was printed. */
  withLog(err: VerifierError): VerifierError {
    return new VerifierError(err.insnIdx, err.reason, this.text(), err.code, err.hint);
  }
}
