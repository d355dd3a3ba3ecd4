/**
 * Task references: bpf_get_current_task_btf (helper 158) and the kfuncs bpf_task_acquire /
 * bpf_task_release. The Vm keeps one `task_struct` for the task programs run for (VmOptions.task)
 * in its memory: pid (u32 at 0), tgid (u32 at 4), comm (16 bytes at 8). Acquire takes a
 * reference on it (NULL for any other pointer), release drops one; `held` counts references
 * not yet released, so tests and termination can check that nothing leaked.
 *
 * Called from BPF (helper and kfuncs, host thread only).
 */

import { BPF_FUNC_get_current_task_btf } from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto, KfuncProto } from '../helpers.js';
import type { TaskInfo } from './task.js';

/** Bytes of the Vm's task_struct. */
export const TASK_STRUCT_SIZE = 64;

/** The Vm's task_struct and its references. */
export class TaskRefs {
  /** References taken with bpf_task_acquire and not yet released. */
  held = 0;
  /** Releases of a pointer that held no reference (ignored). */
  badReleases = 0;
  private addr = 0;
  private readonly alloc: () => number;
  private readonly write: (addr: number, t: TaskInfo) => void;
  private readonly task: () => TaskInfo;

  constructor(
    alloc: () => number,
    write: (addr: number, t: TaskInfo) => void,
    task: () => TaskInfo,
  ) {
    this.alloc = alloc;
    this.write = write;
    this.task = task;
  }

  /** The task_struct's address (0 until bpf_get_current_task_btf first ran). */
  get address(): bigint {
    return BigInt(this.addr);
  }

  /** The task_struct's address, written with the current task. */
  current(): number {
    if (this.addr === 0) this.addr = this.alloc();
    this.write(this.addr, this.task());
    return this.addr;
  }

  helpers(): HelperProto[] {
    return [
      {
        id: BPF_FUNC_get_current_task_btf,
        name: 'bpf_get_current_task_btf',
        fn: () => BigInt(this.current()),
      },
    ];
  }

  kfuncs(): KfuncProto[] {
    return [
      {
        name: 'bpf_task_acquire',
        fn: (a: HelperArgs) => {
          if (this.addr === 0 || a[0] !== BigInt(this.addr)) return 0n;
          this.held++;
          return a[0];
        },
      },
      {
        name: 'bpf_task_release',
        fn: (a: HelperArgs) => {
          if (this.addr !== 0 && a[0] === BigInt(this.addr) && this.held > 0) this.held--;
          else this.badReleases++;
          return 0n;
        },
      },
    ];
  }
}
