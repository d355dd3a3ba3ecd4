/**
 * Task references: bpf_get_current_task_btf (helper 158) and the kfuncs bpf_task_acquire /
 * bpf_task_release. The Vm keeps one `task_struct` for the task programs run for (VmOptions.task)
 * in its memory: pid (u32 at 0), tgid (u32 at 4), comm (16 bytes at 8). Acquire takes a
 * reference on it (NULL for any other pointer), release drops one; `held` counts references
 * not yet released, so tests and termination can check that nothing leaked.
 *
 * The kfuncs are the runtime module's (runtime/wasm/task-ref.ts): the struct's address and the
 * counts are Vm-wide words of the control block (CORO_CTL.task*), so worker threads run them
 * too and a reference taken on one thread may be released on another. Worker threads have
 * bpf_get_current_task_btf when the task is fixed data (`workerTaskHelper`): the struct is
 * then written once, when the Vm starts its workers.
 *
 * Called from BPF (helper and kfuncs) and from host (the counts).
 */

import { BPF_FUNC_get_current_task_btf } from '../../src/helper-protos.js';
import { CORO_CTL, CORO_CTL_OFF, CTRL_BASE } from '../../src/abi.js';
import { nativeKfunc } from '../maps/helpers.js';
import type { HelperProto, KfuncProto } from '../helpers.js';
import type { RtExports } from '../rt.js';
import type { TaskInfo } from './task.js';

/** Bytes of the Vm's task_struct. */
export const TASK_STRUCT_SIZE = 64;

/** Address of Vm-wide task word `field` (CORO_CTL). */
const word = (field: number): number => CTRL_BASE + CORO_CTL_OFF + field;

/** What TaskRefs needs of the Vm. */
export interface TaskRefsHost {
  readonly rt: RtExports;
  dataView(): DataView;
  /** Bytes for the task_struct (once). */
  alloc(bytes: number): number;
  write(addr: number, t: TaskInfo): void;
  readonly task: () => TaskInfo;
}

/** The Vm's task_struct and its references. */
export class TaskRefs {
  private readonly host: TaskRefsHost;

  constructor(host: TaskRefsHost) {
    this.host = host;
  }

  private u32(field: number): number {
    return this.host.dataView().getUint32(word(field), true);
  }

  /** References taken with bpf_task_acquire and not yet released. */
  get held(): number {
    return this.u32(CORO_CTL.taskHeld);
  }

  /** Releases of a pointer that held no reference (ignored). */
  get badReleases(): number {
    return this.u32(CORO_CTL.taskBadReleases);
  }

  /** The task_struct's address (0 until bpf_get_current_task_btf first ran). */
  get address(): bigint {
    return BigInt(this.u32(CORO_CTL.taskStruct));
  }

  /** The task_struct's address, written with the current task. */
  current(): number {
    let addr = this.u32(CORO_CTL.taskStruct);
    if (addr === 0) {
      addr = this.host.alloc(TASK_STRUCT_SIZE);
      this.host.dataView().setUint32(word(CORO_CTL.taskStruct), addr, true);
    }
    this.host.write(addr, this.host.task());
    return addr;
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

  /** The kfuncs as the runtime module implements them (the JIT's call table holds the export). */
  kfuncs(): KfuncProto[] {
    return (['bpf_task_acquire', 'bpf_task_release'] as const).map((name) =>
      nativeKfunc(name, this.host.rt[name]),
    );
  }
}

/**
 * bpf_get_current_task_btf on a worker thread, for a Vm whose task is fixed data: the
 * task_struct the host wrote when it started the workers (0 if it did not).
 */
export function workerTaskHelper(view: () => DataView): HelperProto {
  return {
    id: BPF_FUNC_get_current_task_btf,
    name: 'bpf_get_current_task_btf',
    fn: () => BigInt(view().getUint32(word(CORO_CTL.taskStruct), true)),
  };
}
