// AssemblyScript: task references, the kfuncs bpf_task_acquire / bpf_task_release
// (runtime/helpers/task-ref.ts is the host's view). The Vm keeps one task_struct for the task
// programs run for; its address and the count of references held are Vm-wide words of the
// control block header (CORO_CTL_TASK_*), so the host thread and every worker thread share them:
// a reference taken on one worker may be released on another (a coroutine resumed elsewhere).

import { CORO_CTL_OFF, CORO_CTL_TASK_BAD_RELEASES, CORO_CTL_TASK_HELD, CORO_CTL_TASK_STRUCT, CTRL_BASE } from './abi';

const CTL: usize = CTRL_BASE + CORO_CTL_OFF;

/** The Vm's task_struct, or 0 before bpf_get_current_task_btf made it. */
@inline function taskStruct(): u64 {
  return <u64>atomic.load<u32>(CTL + CORO_CTL_TASK_STRUCT);
}

/** kfunc `struct task_struct *bpf_task_acquire(struct task_struct *p)`: p with a reference, or NULL. */
export function bpf_task_acquire(p: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  const t = taskStruct();
  if (t == 0 || p != t) return 0;
  atomic.add<u32>(CTL + CORO_CTL_TASK_HELD, 1);
  return p;
}

/**
 * kfunc `void bpf_task_release(struct task_struct *p)`: drops a reference. A pointer that holds
 * none (not the task, or no reference left: a handle reloaded from a frame) is counted and
 * ignored.
 */
export function bpf_task_release(p: u64, r2: u64, r3: u64, r4: u64, r5: u64): u64 {
  const t = taskStruct();
  if (t != 0 && p == t) {
    const held: usize = CTL + CORO_CTL_TASK_HELD;
    let n = atomic.load<u32>(held);
    while (n != 0) {
      const seen = atomic.cmpxchg<u32>(held, n, n - 1);
      if (seen == n) return 0;
      n = seen;
    }
  }
  atomic.add<u32>(CTL + CORO_CTL_TASK_BAD_RELEASES, 1);
  return 0;
}
