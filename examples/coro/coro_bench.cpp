// Benchmark programs for bench/coroutines.bench.ts (npm run bench -- --only coroutines):
//
//  - roundtrip_defer / roundtrip_yield: one coroutine that suspends and is resumed `rounds`
//    times in one run, through the deferred ring (task_work_schedule, resumed at the end of the
//    run) or the Vm's ready queue (yield, resumed by vm.coroutines.run());
//  - halves_coro / halves_callback / halves_plain: the same logic three ways: half of the work
//    at event time, half at a deferred point (the end of the run). As a coroutine (state in the
//    frame), with an explicit state struct and a continuation called through a function
//    pointer (callback style), and with no deferral at all; halves_coro_lean is the coroutine
//    with a Task whose final suspend does not hand the done frame back to the runtime;
//  - alloc_free: `rounds` bpf_coro_frame_alloc + bpf_coro_frame_free pairs, to tell the frame
//    allocator's share of halves_coro.
#include <bpf_coro.h>

#define WORK 8 /* array updates per half */

struct counts_map {
  __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
  __uint(max_entries, 64);
  __type(key, u32);
  __type(value, u64);
} counts SEC(".maps");

u32 rounds = 1000;
u32 next_base = 0;
u64 sink = 0;

// ---------------------------------------------------------------------------------------------
// suspend + resume round trips

BPF_CORO_FN static bpf::Task<int> bounce_defer(void *ctx, u32 n) {
  for (u32 i = 0; i < n; i++) co_await bpf::task_work_schedule();
  co_return 0;
}

extern "C" SEC("perf_event") int roundtrip_defer(void *ctx) {
  auto t = bounce_defer(ctx, rounds);
  if (t.done()) return t.result();
  t.detach();
  return 0;
}

BPF_CORO_FN static bpf::Task<int> bounce_yield(void *ctx, u32 n) {
  for (u32 i = 0; i < n; i++) co_await bpf::yield();
  co_return 0;
}

extern "C" SEC("perf_event") int roundtrip_yield(void *ctx) {
  auto t = bounce_yield(ctx, rounds);
  if (t.done()) return t.result();
  t.detach();
  return 0;
}

// ---------------------------------------------------------------------------------------------
// the same logic as a coroutine, with a callback, and straight

static __always_inline u64 work(u32 base) {
  u64 acc = 0;
  for (u32 i = 0; i < WORK; i++) {
    u32 k = (base + i) & 63;
    u64 *v = (u64 *)bpf_map_lookup_elem(&counts, &k);
    if (v) {
      *v += 1;
      acc += *v;
    }
  }
  return acc;
}

BPF_CORO_FN static bpf::Task<int> two_halves(void *ctx, u32 base) {
  u64 a = work(base);
  co_await bpf::task_work_schedule();
  u64 b = work(base + WORK);
  sink += a + b;
  co_return 0;
}

extern "C" SEC("perf_event") int halves_coro(void *ctx) {
  auto t = two_halves(ctx, next_base++);
  if (t.done()) return t.result();
  t.detach();
  return 0;
}

// The same coroutine with a lean Task: its final suspend leaves the done frame in place instead
// of handing it to the runtime once more (bpf::Task's final_awaiter defers it), and the
// runtime's resume loop, which finds it done, destroys it. Only right for coroutines that the
// runtime (or bpf::resume_handle) resumes last; bpf::Task is the general form.
struct LeanTask {
  struct promise_type : bpf::frame_alloc {
    LeanTask get_return_object() noexcept {
      return LeanTask{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() const noexcept {}
  };
  std::coroutine_handle<promise_type> h;
};

BPF_CORO_FN static LeanTask two_halves_lean(void *ctx, u32 base) {
  u64 a = work(base);
  co_await bpf::task_work_schedule();
  u64 b = work(base + WORK);
  sink += a + b;
}

extern "C" SEC("perf_event") int halves_coro_lean(void *ctx) {
  LeanTask t = two_halves_lean(ctx, next_base++);
  if (t.h.done()) t.h.destroy();
  else bpf_coro_detach(t.h.address());
  return 0;
}

// Callback style: the state a continuation needs, kept explicitly, and the continuation.
struct halves_state {
  u32 base;
  u64 a;
};
typedef void (*halves_cont)(halves_state *);

halves_state state;
halves_cont pending;

static __attribute__((noinline)) void second_half(halves_state *s) {
  u64 b = work(s->base + WORK);
  sink += s->a + b;
}

extern "C" SEC("perf_event") int halves_callback(void *ctx) {
  u32 base = next_base++;
  state.base = base;
  state.a = work(base);
  *(volatile halves_cont *)&pending = second_half;  // "schedule" the continuation
  // the deferred point: the end of the run calls what was scheduled
  halves_cont f = *(volatile halves_cont *)&pending;
  if (f) {
    pending = nullptr;
    f(&state);
  }
  return 0;
}

extern "C" SEC("perf_event") int halves_plain(void *ctx) {
  u32 base = next_base++;
  u64 a = work(base);
  u64 b = work(base + WORK);
  sink += a + b;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// the frame allocator's share

extern "C" SEC("perf_event") int alloc_free(void *ctx) {
  u32 n = rounds;
  for (u32 i = 0; i < n && i < 100000; i++) {
    void *p = bpf_coro_frame_alloc(0x40, ctx);
    if (!p) return -1;
    bpf_coro_frame_free(p);
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
