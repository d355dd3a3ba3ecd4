// (c) A coroutine destroyed before completion. It holds two resources across
// its suspension point: a ring buffer reservation (helper-acquired) and a
// task_struct reference (kfunc-acquired, bpf_task_acquire). If the Task is
// destroyed while suspended, the .destroy clone runs the RAII destructors of
// the objects live at that suspension index: bpf_ringbuf_discard and
// bpf_task_release, then bpf_coro_frame_free.
#include <bpf_coro.h>

struct task_struct;
extern "C" {
struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
// Runtime hands back a frame it decided to cancel (or NULL).
void *bpf_coro_take_cancelled(void *ctx) __ksym;
}

struct events_map {  // named: an anonymous struct type would give the map internal
                    // linkage in C++ (BTF VAR linkage=static), which libbpf rejects
  __uint(type, 27 /* BPF_MAP_TYPE_RINGBUF */);
  __uint(max_entries, 4096);
} events SEC(".maps");

struct event {
  u64 pid_tgid;
  u64 ts;
};

// RAII guards: their destructors are what .destroy must run.
struct ringbuf_slot {
  event *e;
  explicit ringbuf_slot(void *rb) : e((event *)bpf_ringbuf_reserve(rb, sizeof(event), 0)) {}
  ~ringbuf_slot() {
    if (e) bpf_ringbuf_discard(e, 0);
  }
  void submit() {
    bpf_ringbuf_submit(e, 0);
    e = nullptr;
  }
};

struct task_ref {
  struct task_struct *t;
  ~task_ref() {
    if (t) bpf_task_release(t);
  }
};

BPF_CORO_FN static bpf::Task<int> reserve_then_wait(void *ctx) {
  task_ref task{bpf_task_acquire(bpf_get_current_task_btf())};
  if (!task.t) co_return -1;
  ringbuf_slot slot(&events);
  if (!slot.e) co_return -2;
  co_await bpf::task_work_schedule();  // may never be resumed
  slot.e->pid_tgid = bpf_get_current_pid_tgid();
  slot.e->ts = bpf_ktime_get_ns();
  slot.submit();
  co_return 0;
}

// Entry 1: start the coroutine and hand it to the runtime. The runtime either
// resumes it (frame+0) or cancels it by calling frame+8 (the .destroy clone),
// which discards the reservation and releases the task reference.
extern "C" SEC("perf_event") int on_sample(void *ctx) {
  auto t = reserve_then_wait(ctx);
  if (t.done()) return t.result();
  t.detach();
  return 1;
}

// Entry 2: BPF-side cancellation of a frame the runtime hands back. The
// destroy function is only known at run time: load frame+8 and callx.
extern "C" SEC("perf_event") int on_cancel(void *ctx) {
  void *frame = bpf_coro_take_cancelled(ctx);
  if (!frame) return 0;
  std::coroutine_handle<>::from_address(frame).destroy();
  return 1;
}

// Entry 3: destroyed before completion inside the same program. Nobody can
// resume it (suspend_always hands the handle to no one), and ~Task destroys
// it at the end of the scope. Because the frame provably does not escape,
// LLVM's CoroElide places the frame on the BPF stack (no frame_alloc/free)
// and inlines the .cleanup clone.
BPF_CORO_FN static bpf::Task<int> reserve_then_park(void *ctx) {
  ringbuf_slot slot(&events);
  if (!slot.e) co_return -2;
  co_await std::suspend_always{};  // parked forever
  slot.submit();
  co_return 0;
}

extern "C" SEC("perf_event") int on_scoped(void *ctx) {
  auto t = reserve_then_park(ctx);
  return t.done() ? t.result() : 2;  // not done: ~Task -> destroy -> discard
}

char LICENSE[] SEC("license") = "GPL";
