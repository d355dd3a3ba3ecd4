/**
 * The per-Vm state behind the built-in helpers: the trace log bpf_trace_printk writes to, the
 * current task, the timers, spin-lock statistics, and `callBpf` (call-bpf.ts), the service that
 * lets a helper call a BPF function on the engine that runs the program. The Vm creates one
 * (`new HelperServices(vm, host, opts)`), registers `allHelpers(services)` and calls `close()`
 * from `Vm.close()`.
 *
 * Called from host (Vm construction and close) and from BPF (the helpers).
 */

import { InternalError, isBpfError, type BpfError } from '../../src/errors.js';
import type { HeapArena } from '../heap.js';
import type { HelperHost } from '../helpers.js';
import type { RtExports } from '../rt.js';
import { callBpf, type CallBpfOptions, type CallHost } from './call-bpf.js';
import type { MapHost } from './map-ptr.js';
import { TraceLog } from './printk.js';
import type { SpinLockStats } from './spinlock.js';
import { EMPTY_STACKS, type StackSource } from './stack.js';
import { processTask, type TaskInfo } from './task.js';
import { TimerTable, defaultTimerScheduler, type TimerScheduler } from './timer.js';

/** What the built-in helpers need from their Vm (the Vm class provides all of it). */
export interface HelperVm extends CallHost, MapHost {
  readonly heap: HeapArena;
  readonly rt: RtExports;
  /** Resets the worker's stack pointer and error slot after a failed JIT call. */
  resetWorker(): void;
}

/** Vm options the built-in helpers read (part of VmOptions). */
export interface HelperOptions {
  /** Receives every bpf_trace_printk text (they are also kept in `vm.traceLog`). */
  readonly onTrace?: (text: string) => void;
  /**
   * The task programs run for (bpf_get_current_pid_tgid, _uid_gid, _comm): fixed values
   * (missing fields from this process) or a function asked at each call. Default: this process.
   */
  readonly task?: Partial<TaskInfo> | (() => TaskInfo);
  /** Schedules timer expiry (default: setTimeout); tests inject a manual one. */
  readonly scheduleTimer?: TimerScheduler;
  /**
   * The call chains bpf_get_stack copies (runtime/helpers/stack.ts); the user one only in task
   * context (a coroutine the runtime resumed). Default: empty stacks.
   */
  readonly stacks?: StackSource;
  /** Receives errors of BPF callbacks that the host event loop runs (timer callbacks). */
  readonly onCallbackError?: (e: BpfError) => void;
}

/** State of the built-in helpers of one Vm. */
export class HelperServices {
  readonly vm: HelperVm;
  readonly host: HelperHost;
  readonly trace: TraceLog;
  readonly timers: TimerTable;
  readonly spinLocks: SpinLockStats = { breaks: 0, held: 0 };
  /** The last error of a callback run by the event loop, when no onCallbackError was given. */
  lastCallbackError: BpfError | undefined;
  /** The current task. */
  readonly task: () => TaskInfo;
  /** Where bpf_get_stack's call chains come from. */
  readonly stacks: StackSource;
  private readonly onCallbackError: ((e: BpfError) => void) | undefined;

  constructor(vm: HelperVm, host: HelperHost, opts: HelperOptions = {}) {
    this.vm = vm;
    this.host = host;
    this.trace = new TraceLog(opts.onTrace);
    const t = opts.task;
    if (typeof t === 'function') this.task = t;
    else {
      const fixed: TaskInfo = { ...processTask(), ...t };
      this.task = () => fixed;
    }
    this.stacks = opts.stacks ?? EMPTY_STACKS;
    this.onCallbackError = opts.onCallbackError;
    this.timers = new TimerTable(
      vm,
      host.clock,
      opts.scheduleTimer ?? defaultTimerScheduler,
      (token, args, o) => this.callBpf(token, args, o),
      (e) => this.reportCallbackError(e),
    );
  }

  /**
   * Calls the BPF function behind `token` with r1..r5 = `args` on the engine running the
   * program (see call-bpf.ts) and returns r0. Called from BPF (helpers).
   */
  callBpf(token: bigint, args: readonly bigint[], opts?: CallBpfOptions): bigint {
    return callBpf(this.vm, token, args, opts);
  }

  /** Disarms the timers. Called from Vm.close(). */
  close(): void {
    this.timers.close();
  }

  private reportCallbackError(e: unknown): void {
    this.vm.resetWorker();
    const err = isBpfError(e)
      ? e
      : new InternalError(`a BPF callback threw: ${e instanceof Error ? e.message : String(e)}`, {
          cause: e,
        });
    if (this.onCallbackError === undefined) this.lastCallbackError = err;
    else this.onCallbackError(err);
  }
}
