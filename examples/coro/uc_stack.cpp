// Use case (a) of the talk: a stack trace in two halves. A perf_event fires in atomic context,
// where the kernel stack is at hand but the user stack is not (walking it may fault pages in).
// The coroutine takes the kernel stack at event time, suspends until the deferred point (the
// end of the run, task context: bpf::task_work_schedule), takes the user stack there, and emits
// ONE ring buffer event holding both halves and the pid/tgid of the event.
//
// on_sample_plain is the same logic without a coroutine: its user stack is asked for at event
// time and comes back as -EFAULT.
#include <bpf_coro.h>

#define MAX_FRAMES 8

struct events_map {  // named: an anonymous struct type would give the map internal linkage
  __uint(type, 27 /* BPF_MAP_TYPE_RINGBUF */);
  __uint(max_entries, 1 << 14);
} events SEC(".maps");

// One event: both halves of the stack. *_len: bytes bpf_get_stack copied, or -errno.
struct stack_event {
  u64 pid_tgid;
  s64 kernel_len;
  s64 user_len;
  u64 kernel[MAX_FRAMES];
  u64 user[MAX_FRAMES];
};

// Events lost because the ring buffer was full.
u64 dropped = 0;

BPF_CORO_FN static bpf::Task<int> sample_stack(void *ctx) {
  // event time (atomic): the kernel half and who was running, kept in the frame
  u64 kstack[MAX_FRAMES];
  u64 pid_tgid = bpf_get_current_pid_tgid();
  long klen = bpf_get_stack(ctx, kstack, sizeof(kstack), 0);
  co_await bpf::task_work_schedule();
  // deferred point (task context): the user half, then one event
  stack_event *e = (stack_event *)bpf_ringbuf_reserve(&events, sizeof(stack_event), 0);
  if (!e) {
    __sync_fetch_and_add(&dropped, 1);
    co_return -1;
  }
  e->pid_tgid = pid_tgid;
  e->kernel_len = klen;
  __builtin_memcpy(e->kernel, kstack, sizeof(kstack));
  // the event's ctx is gone here: the current task's stack (bpf_get_task_stack)
  e->user_len =
      bpf_get_task_stack(bpf_get_current_task_btf(), e->user, sizeof(e->user), BPF_F_USER_STACK);
  bpf_ringbuf_submit(e, 0);
  co_return 0;
}

extern "C" SEC("perf_event") int on_sample(void *ctx) {
  auto t = sample_stack(ctx);
  if (t.done()) return t.result();
  t.detach();  // the runtime resumes it at the end of the run and frees it when done
  return 0;
}

// The same event without a coroutine: both halves at event time.
extern "C" SEC("perf_event") int on_sample_plain(void *ctx) {
  stack_event *e = (stack_event *)bpf_ringbuf_reserve(&events, sizeof(stack_event), 0);
  if (!e) {
    __sync_fetch_and_add(&dropped, 1);
    return -1;
  }
  e->pid_tgid = bpf_get_current_pid_tgid();
  e->kernel_len = bpf_get_stack(ctx, e->kernel, sizeof(e->kernel), 0);
  // the event's ctx is gone here: the current task's stack (bpf_get_task_stack)
  e->user_len =
      bpf_get_task_stack(bpf_get_current_task_btf(), e->user, sizeof(e->user), BPF_F_USER_STACK);
  bpf_ringbuf_submit(e, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
