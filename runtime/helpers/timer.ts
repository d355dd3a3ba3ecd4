/**
 * BPF timers: bpf_timer_init (169), bpf_timer_set_callback (170), bpf_timer_start (171) and
 * bpf_timer_cancel (172) on a `struct bpf_timer` (16 bytes, 8-aligned) inside a map value, with
 * the kernel's semantics (kernel/bpf/helpers.c):
 *
 * - init(timer, map, flags): flags is a clock id (CLOCK_REALTIME, CLOCK_MONOTONIC or
 *   CLOCK_BOOTTIME; anything else -EINVAL); the timer must lie in a value of `map` (an array,
 *   hash or lru_hash map; else -EINVAL); -EBUSY when already initialised.
 * - set_callback(timer, fn): -EINVAL before init or when fn is not a function token.
 * - start(timer, nsecs, flags): flags BPF_F_TIMER_ABS (nsecs is a time of the Vm clock) and
 *   BPF_F_TIMER_CPU_PIN (no effect here), others -EINVAL; -EINVAL before init or without a
 *   callback. Re-arms a timer that is already pending.
 * - cancel(timer): -EINVAL before init, -EDEADLK from the timer's own callback; otherwise
 *   disarms it and forgets its callback (set_callback is needed before the next start);
 *   returns 1 when it was pending, else 0.
 * - When a timer expires, the host event loop runs callback(map, key, value) on the engine of
 *   the program that set the callback (callBpf: a JIT program's function through the call
 *   table, an interpreted program's through a fresh interpreter run); the key of an array
 *   element is a u32 the Vm provides. Errors of the callback go to VmOptions.onCallbackError.
 *
 * Representation: the timer's first u32 holds the id of its host-side state (0 = not
 * initialised). Map element deletion does not cancel timers yet; a timer whose word no longer
 * holds its id (the value was overwritten or deleted) is dropped when it expires. Vm.close()
 * disarms every timer. Expiry is scheduled with `TimerScheduler` (default: setTimeout).
 *
 * Called from BPF (helpers) and from the host event loop (expiry).
 */

import {
  BPF_FUNC_timer_cancel,
  BPF_FUNC_timer_init,
  BPF_FUNC_timer_set_callback,
  BPF_FUNC_timer_start,
  EBUSY,
  EDEADLK,
  EINVAL,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperArgs, TokenTarget } from '../../src/interp/env.js';
import { hasActiveHelperCall } from '../../src/interp/interpreter.js';
import type { HeapArena } from '../heap.js';
import type { HelperProto } from '../helpers.js';
import type { Engine } from '../loaded-program.js';
import type { BpfMap } from '../maps/map.js';
import type { BpfCaller } from './loop.js';
import { mapFromPtr, valueHolding, type MapHost, type ValueSlot } from './map-ptr.js';
import { memAddr } from './mem.js';

/** sizeof(struct bpf_timer). */
export const BPF_TIMER_SIZE = 16;
/** bpf_timer_start flag: nsecs is an absolute time. */
export const BPF_F_TIMER_ABS = 1n;
/** bpf_timer_start flag: keep the timer on the CPU that started it. */
export const BPF_F_TIMER_CPU_PIN = 2n;
/** Clock ids a timer may use (include/uapi/linux/time.h). */
export const CLOCK_REALTIME = 0;
/** The Vm clock (VmOptions.clock); the other clock ids use it too. */
export const CLOCK_MONOTONIC = 1;
/** Monotonic including suspend: the Vm clock. */
export const CLOCK_BOOTTIME = 7;
/** MAX_CLOCKS: clock ids are below this. */
const MAX_CLOCKS = 16n;

/** Runs `fire` after `delayNs` nanoseconds; returns a function that disarms it. */
export type TimerScheduler = (fire: () => void, delayNs: bigint) => () => void;

const MAX_TIMEOUT_MS = 0x7fffffff;

/** setTimeout, in steps of at most 24.8 days (setTimeout's limit). */
export const defaultTimerScheduler: TimerScheduler = (fire, delayNs) => {
  let remaining = Number(delayNs) / 1e6;
  let handle: ReturnType<typeof setTimeout> | undefined;
  const arm = (): void => {
    const ms = Math.min(remaining, MAX_TIMEOUT_MS);
    remaining -= ms;
    handle = setTimeout(remaining > 0 ? arm : fire, ms);
  };
  arm();
  return () => clearTimeout(handle);
};

/** What the timer helpers need from the Vm. */
export interface TimerHost extends MapHost {
  readonly heap: HeapArena;
  resolveToken(token: bigint): TokenTarget | undefined;
}

/** Host-side state of one initialised timer. */
interface BpfTimer {
  readonly id: number;
  readonly addr: number;
  readonly map: BpfMap;
  readonly slot: ValueSlot;
  /** Address of the u32 key of an array element, or -1. */
  readonly keyBuf: number;
  callback: bigint | undefined;
  engine: Engine;
  /** Disarms the pending expiry; undefined when not pending. */
  disarm: (() => void) | undefined;
  running: boolean;
}

/** The timers of one Vm. */
export class TimerTable {
  private readonly vm: TimerHost;
  private readonly clock: () => bigint;
  private readonly schedule: TimerScheduler;
  private readonly call: BpfCaller;
  private readonly onError: (e: unknown) => void;
  private readonly byId = new Map<number, BpfTimer>();
  private nextId = 1;
  private closed = false;

  constructor(
    vm: TimerHost,
    clock: () => bigint,
    schedule: TimerScheduler,
    call: BpfCaller,
    onError: (e: unknown) => void,
  ) {
    this.vm = vm;
    this.clock = clock;
    this.schedule = schedule;
    this.call = call;
    this.onError = onError;
  }

  /** Timers waiting to expire. */
  get pending(): number {
    let n = 0;
    for (const t of this.byId.values()) if (t.disarm !== undefined) n++;
    return n;
  }

  /** bpf_timer_init(timer, map, flags). */
  init(args: HelperArgs): bigint {
    const clockid = Number(args[2] & 0xfn);
    if (
      args[2] >= MAX_CLOCKS ||
      ![CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME].includes(clockid)
    ) {
      return negErrno(EINVAL);
    }
    const addr = this.timerAddr(args[0]);
    const map = mapFromPtr(this.vm, args[1]);
    const slot =
      addr < 0 || map === undefined ? undefined : valueHolding(this.vm, map, addr, BPF_TIMER_SIZE);
    if (map === undefined || slot === undefined) return negErrno(EINVAL);
    if (this.timerAt(args[0]) !== undefined) return negErrno(EBUSY);
    const id = this.nextId++;
    const keyBuf = slot.index >= 0 ? this.vm.heap.alloc(8) : -1;
    if (keyBuf >= 0) this.vm.dataView().setUint32(keyBuf, slot.index, true);
    this.byId.set(id, {
      id,
      addr,
      map,
      slot,
      keyBuf,
      callback: undefined,
      engine: 'jit',
      disarm: undefined,
      running: false,
    });
    const v = this.vm.dataView();
    v.setUint32(addr, id, true);
    v.setUint32(addr + 4, 0, true);
    return 0n;
  }

  /** bpf_timer_set_callback(timer, callback_fn). */
  setCallback(args: HelperArgs): bigint {
    const t = this.timerAt(args[0]);
    if (t === undefined || this.vm.resolveToken(args[1]) === undefined) return negErrno(EINVAL);
    t.callback = args[1];
    t.engine = hasActiveHelperCall() ? 'interp' : 'jit';
    return 0n;
  }

  /** bpf_timer_start(timer, nsecs, flags). */
  start(args: HelperArgs): bigint {
    if ((args[2] & ~(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN)) !== 0n) return negErrno(EINVAL);
    const t = this.timerAt(args[0]);
    if (t === undefined || t.callback === undefined) return negErrno(EINVAL);
    let delay = BigInt.asIntN(64, args[1]);
    if ((args[2] & BPF_F_TIMER_ABS) !== 0n) delay -= this.clock();
    t.disarm?.();
    t.disarm = this.schedule(() => this.expire(t), delay > 0n ? delay : 0n);
    return 0n;
  }

  /** bpf_timer_cancel(timer). */
  cancel(args: HelperArgs): bigint {
    const t = this.timerAt(args[0]);
    if (t === undefined) return negErrno(EINVAL);
    if (t.running) return negErrno(EDEADLK);
    t.callback = undefined;
    const wasPending = t.disarm !== undefined;
    t.disarm?.();
    t.disarm = undefined;
    return wasPending ? 1n : 0n;
  }

  /** Disarms every timer and forgets them (Vm.close). */
  close(): void {
    this.closed = true;
    for (const t of [...this.byId.values()]) this.drop(t);
  }

  /** Called from the host event loop when `t` expires. */
  private expire(t: BpfTimer): void {
    t.disarm = undefined;
    if (this.closed) return;
    if (this.vm.dataView().getUint32(t.addr, true) !== t.id) {
      this.drop(t);
      return;
    }
    if (t.callback === undefined) return;
    const key = t.keyBuf >= 0 ? t.keyBuf : t.slot.key;
    const regions =
      t.keyBuf >= 0 ? [{ start: t.keyBuf, end: t.keyBuf + 4, writable: false, name: 'key' }] : [];
    t.running = true;
    try {
      this.call(t.callback, [BigInt(t.map.addr), BigInt(key), BigInt(t.slot.value)], {
        engine: t.engine,
        regions,
      });
    } catch (e) {
      this.onError(e);
    } finally {
      t.running = false;
    }
  }

  private drop(t: BpfTimer): void {
    t.disarm?.();
    t.disarm = undefined;
    if (t.keyBuf >= 0) this.vm.heap.release(t.keyBuf);
    this.byId.delete(t.id);
  }

  /** The address of a struct bpf_timer argument, or -1. */
  private timerAddr(ptr: bigint): number {
    const a = memAddr(this.vm, ptr, BPF_TIMER_SIZE);
    return a < 0 || a % 8 !== 0 ? -1 : a;
  }

  /** The initialised timer at `ptr`, or undefined. */
  private timerAt(ptr: bigint): BpfTimer | undefined {
    const a = this.timerAddr(ptr);
    if (a < 0) return undefined;
    const t = this.byId.get(this.vm.dataView().getUint32(a, true));
    return t !== undefined && t.addr === a ? t : undefined;
  }
}

/** The timer helpers over `timers`. */
export function timerHelpers(timers: TimerTable): HelperProto[] {
  return [
    { id: BPF_FUNC_timer_init, name: 'bpf_timer_init', fn: (args) => timers.init(args) },
    {
      id: BPF_FUNC_timer_set_callback,
      name: 'bpf_timer_set_callback',
      fn: (args) => timers.setCallback(args),
    },
    { id: BPF_FUNC_timer_start, name: 'bpf_timer_start', fn: (args) => timers.start(args) },
    { id: BPF_FUNC_timer_cancel, name: 'bpf_timer_cancel', fn: (args) => timers.cancel(args) },
  ];
}
