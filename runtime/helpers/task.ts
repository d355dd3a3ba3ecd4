/**
 * The current task: bpf_get_current_pid_tgid (14), bpf_get_current_uid_gid (15) and
 * bpf_get_current_comm (16) report the task the host says the program runs for
 * (VmOptions.task), by default this Node process.
 *
 * - pid_tgid = tgid << 32 | pid; uid_gid = gid << 32 | uid.
 * - get_current_comm(buf, size): the name, cut to TASK_COMM_LEN - 1 = 15 bytes and to
 *   size - 1, NUL terminated, the rest of the buffer zeroed (strscpy_pad); returns 0, or
 *   -EFAULT for a bad buffer.
 *
 * Called from BPF. Pure: fast-path termination keeps them.
 */

import {
  BPF_FUNC_get_current_comm,
  BPF_FUNC_get_current_pid_tgid,
  BPF_FUNC_get_current_uid_gid,
  EFAULT,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperProto } from '../helpers.js';
import { argU32, memAddr, type MemHost } from './mem.js';

/** TASK_COMM_LEN: bytes of a task name, its NUL included. */
export const TASK_COMM_LEN = 16;

/** The task a program runs for. */
export interface TaskInfo {
  /** Thread id (the kernel's pid). */
  readonly pid: number;
  /** Process id (the kernel's tgid). */
  readonly tgid: number;
  readonly uid: number;
  readonly gid: number;
  /** Task name; UTF-8, cut to 15 bytes. */
  readonly comm: string;
}

/** This Node process as a task. */
export function processTask(): TaskInfo {
  return {
    pid: process.pid,
    tgid: process.pid,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    comm: 'node',
  };
}

const encoder = new TextEncoder();

/** The task helpers over `task` (called at every helper call, so it may change between runs). */
export function taskHelpers(mem: MemHost, task: () => TaskInfo): HelperProto[] {
  const pair = (hi: number, lo: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  return [
    {
      id: BPF_FUNC_get_current_pid_tgid,
      name: 'bpf_get_current_pid_tgid',
      fn: () => {
        const t = task();
        return pair(t.tgid, t.pid);
      },
    },
    {
      id: BPF_FUNC_get_current_uid_gid,
      name: 'bpf_get_current_uid_gid',
      fn: () => {
        const t = task();
        return pair(t.gid, t.uid);
      },
    },
    {
      id: BPF_FUNC_get_current_comm,
      name: 'bpf_get_current_comm',
      fn: (args) => {
        const size = argU32(args[1]);
        if (size === 0) return 0n;
        const buf = memAddr(mem, args[0], size);
        if (buf < 0) return negErrno(EFAULT);
        const name = encoder.encode(task().comm).subarray(0, Math.min(TASK_COMM_LEN, size) - 1);
        const u8 = mem.u8();
        u8.fill(0, buf, buf + size);
        u8.set(name, buf);
        return 0n;
      },
    },
  ];
}
