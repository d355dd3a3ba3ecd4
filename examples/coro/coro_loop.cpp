// (b) A loop with two suspension points per iteration; the loop counter and
// an accumulator live in the coroutine frame across suspensions. One of the
// awaits is a nested Task (child coroutine), whose completion resumes the
// parent through the continuation stored in its promise (callx).
#include <bpf_coro.h>

u64 total_iterations;       // .bss global, updated from the resumed coroutine

// Child coroutine: awaited by the parent. Suspends once (task_work).
BPF_CORO_FN static bpf::Task<u64> sample(void *ctx, u32 i) {
  u64 t = bpf_ktime_get_ns();
  co_await bpf::task_work_schedule();
  co_return (bpf_ktime_get_ns() - t) + i;
}

BPF_CORO_FN static bpf::Task<s64> poll_loop(void *ctx, u32 n) {
  s64 acc = 0;
  for (u32 i = 0; i < n && i < 16; i++) {      // bounded loop
    co_await bpf::sleep_for{1000 * (u64)(i + 1)};  // suspend point: sleep (host timer)
    acc += (s64)co_await sample(ctx, i);       // suspend point: nested task
    total_iterations++;
  }
  co_return acc;
}

extern "C" SEC("perf_event") int on_tick(void *ctx) {
  auto t = poll_loop(ctx, 4);
  if (t.done()) return (int)t.result();
  t.detach();
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
