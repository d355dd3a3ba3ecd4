// (e) Symmetric transfer: the final awaiter *returns* the handle to resume
// next (the awaiting parent, or std::noop_coroutine()). LLVM expresses this
// as a `musttail call` in IR; the BPF backend lowers it to a plain
// `callx` + `exit` (no tail call, the stack grows). std::noop_coroutine()
// makes LLVM emit a constant noop frame in .rodata whose two function
// pointers carry R_BPF_64_ABS64 relocations against .text.
#include <bpf_coro.h>

struct SymTask {
  struct promise_type : bpf::frame_alloc {
    int value = 0;
    std::coroutine_handle<> continuation;
    SymTask get_return_object() noexcept {
      return SymTask{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }  // lazy
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) const noexcept {
        std::coroutine_handle<> c = h.promise().continuation;
        return c ? c : std::noop_coroutine();  // symmetric transfer
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }
    void return_value(int v) noexcept { value = v; }
    void unhandled_exception() const noexcept {}
  };
  std::coroutine_handle<promise_type> h;

  // co_await child: start it (symmetric transfer into the child).
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> parent) const noexcept {
    h.promise().continuation = parent;
    return h;
  }
  int await_resume() const noexcept { return h.promise().value; }
};

BPF_CORO_FN static SymTask child(void *ctx) {
  co_await bpf::task_work_schedule();  // the runtime resumes the child later
  co_return 5;
}

BPF_CORO_FN static SymTask parent(void *ctx) {
  int v = co_await child(ctx);  // the child frame is leaked here: keep the example small
  co_return v + 1;
}

extern "C" SEC("perf_event") int on_sym(void *ctx) {
  SymTask t = parent(ctx);
  t.h.resume();  // lazy start
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
