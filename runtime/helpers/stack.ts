/**
 * Stack traces: bpf_get_stack (67) and bpf_get_task_stack (141) copy a "kernel" or "user" call chain that the host supplies
 * (VmOptions.stacks; default: empty stacks) into a BPF buffer, with the kernel's semantics
 * (kernel/bpf/stackmap.c `__bpf_get_stack`):
 *
 * - flags: the low 8 bits (BPF_F_SKIP_FIELD_MASK) are frames to skip, BPF_F_USER_STACK asks for
 *   the user stack, BPF_F_USER_BUILD_ID for (build id, offset) records of 32 bytes instead of
 *   ips (user stacks only); any other bit, build ids without the user stack, or a size that is
 *   not a multiple of the record size: -EINVAL.
 * - at most `size / record` frames after the skipped ones, and at most
 *   PERF_MAX_STACK_DEPTH (the default `kernel.perf_event_max_stack`, 127) frames counting the
 *   skipped ones; fewer frames than `skip`: -EFAULT.
 * - returns the bytes copied and zeroes the rest of the buffer; on error the whole buffer is
 *   zeroed.
 *
 * The user stack is only there in *task context*: the kernel walks it (page faults, sframe) at
 * a deferred point, on the way back to user space, not in the event's own atomic run. Here task
 * context is a coroutine the runtime resumed (control slot CTRL_CORO_DEPTH > 0, kept by
 * runtime/wasm/coro.ts `coro_resume`); anywhere else BPF_F_USER_STACK fails with -EFAULT, the
 * kernel's answer when it has no user call chain. Build ids are never known here, so each
 * record carries status BPF_STACK_BUILD_ID_IP and the ip, as the kernel's fallback does.
 * `ctx` is not read: the stacks come from the host.
 *
 * Called from BPF (host thread only: the stack sources are host functions).
 */

import { CTRL_CORO_DEPTH } from '../../src/abi.js';
import {
  BPF_FUNC_get_stack,
  BPF_FUNC_get_task_stack,
  EFAULT,
  EINVAL,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperProto } from '../helpers.js';
import { argU32, memAddr, type MemHost } from './mem.js';

/** BPF_F_SKIP_FIELD_MASK: frames to skip. */
export const BPF_F_SKIP_FIELD_MASK = 0xffn;
/** Collect the user stack instead of the kernel stack. */
export const BPF_F_USER_STACK = 1n << 8n;
/** Collect (build id, offset) records instead of ips (user stacks only). */
export const BPF_F_USER_BUILD_ID = 1n << 11n;
/** The default `kernel.perf_event_max_stack` sysctl: frames of one call chain, skipped included. */
export const PERF_MAX_STACK_DEPTH = 127;
/** `struct bpf_stack_build_id`: s32 status, u8 build_id[20], u64 offset or ip (at 24). */
const BUILD_ID_RECORD = 32;
/** `BPF_STACK_BUILD_ID_IP`: the build id is unknown, the record holds the ip. */
const BPF_STACK_BUILD_ID_IP = 2;

/** Where the call chains come from (VmOptions.stacks), asked at each bpf_get_stack call. */
export interface StackSource {
  /** The kernel call chain, innermost frame first. */
  kernel(): readonly bigint[];
  /** The user call chain, innermost frame first (asked in task context only). */
  user(): readonly bigint[];
}

/** Empty call chains. */
export const EMPTY_STACKS: StackSource = { kernel: () => [], user: () => [] };

/** What bpf_get_stack needs from the Vm: its memory and the running worker's control slot. */
export interface StackHost extends MemHost {
  readonly worker: { readonly ctrl: number };
}

/** True while a coroutine the runtime resumed runs on the host worker (task context). */
export function inTaskContext(vm: StackHost): boolean {
  return vm.dataView().getUint32(vm.worker.ctrl + CTRL_CORO_DEPTH, true) !== 0;
}

/** The stack helpers over `stacks`. */
export function stackHelpers(vm: StackHost, stacks: StackSource): HelperProto[] {
  return [
    {
      id: BPF_FUNC_get_stack,
      name: 'bpf_get_stack',
      fn: (args) => getStack(vm, stacks, args[1], argU32(args[2]), args[3]),
    },
  ];
}

/**
 * `long bpf_get_task_stack(struct task_struct *task, void *buf, u32 size, u64 flags)`: as
 * bpf_get_stack, for `task`, which must be the Vm's one task (`isTask`: the address
 * bpf_get_current_task_btf returns); its user stack, too, only in task context. Any other
 * pointer gets -EFAULT and a zeroed buffer (the verifier admits only task_struct pointers).
 * The helper a resumed coroutine calls at a deferred point, where the event's ctx is gone.
 */
export function taskStackHelper(
  vm: StackHost,
  stacks: StackSource,
  isTask: (task: bigint) => boolean,
): HelperProto {
  return {
    id: BPF_FUNC_get_task_stack,
    name: 'bpf_get_task_stack',
    fn: (args) => {
      if (isTask(args[0])) return getStack(vm, stacks, args[1], argU32(args[2]), args[3]);
      const size = argU32(args[2]);
      const buf = memAddr(vm, args[1], size);
      if (buf >= 0) vm.u8().fill(0, buf, buf + size);
      return negErrno(EFAULT);
    },
  };
}

/** `long bpf_get_stack(void *ctx, void *buf, u32 size, u64 flags)`. */
function getStack(
  vm: StackHost,
  stacks: StackSource,
  bufPtr: bigint,
  size: number,
  flags: bigint,
): bigint {
  const buf = memAddr(vm, bufPtr, size);
  if (buf < 0) return negErrno(EFAULT);
  const u8 = vm.u8();
  const fail = (errno: number): bigint => {
    u8.fill(0, buf, buf + size);
    return negErrno(errno);
  };
  const user = (flags & BPF_F_USER_STACK) !== 0n;
  const buildId = (flags & BPF_F_USER_BUILD_ID) !== 0n;
  if ((flags & ~(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)) !== 0n)
    return fail(EINVAL);
  if (!user && buildId) return fail(EINVAL);
  const record = buildId ? BUILD_ID_RECORD : 8;
  if (size % record !== 0) return fail(EINVAL);
  if (user && !inTaskContext(vm)) return fail(EFAULT);
  const skip = Number(flags & BPF_F_SKIP_FIELD_MASK);
  const records = size / record;
  const trace = (user ? stacks.user() : stacks.kernel()).slice(
    0,
    Math.min(records + skip, PERF_MAX_STACK_DEPTH),
  );
  if (trace.length < skip) return fail(EFAULT);
  const n = Math.min(trace.length - skip, records);
  u8.fill(0, buf, buf + size);
  const v = vm.dataView();
  for (let k = 0; k < n; k++) {
    const ip = BigInt.asUintN(64, trace[skip + k]!);
    if (buildId) {
      v.setInt32(buf + k * record, BPF_STACK_BUILD_ID_IP, true);
      v.setBigUint64(buf + k * record + 24, ip, true);
    } else v.setBigUint64(buf + k * 8, ip, true);
  }
  return BigInt(n * record);
}
