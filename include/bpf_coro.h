// bpf_coro.h - C++20 coroutines for BPF programs that run on bpfwasm.
//
// Freestanding (no libc++): the std:: names a coroutine needs (coroutine_traits,
// coroutine_handle, suspend_always/never, noop_coroutine) on clang's __builtin_coro_*,
// bpf::Task<T> whose frames come from the runtime's frame allocator, the awaitables that
// hand a suspended frame to the runtime, and the kfunc declarations.
//
// Build (clang 22; see README "Coroutines"):
//   clang-22 --target=bpf -mcpu=v4 -O2 -std=c++20 -fno-exceptions -fno-rtti -ffreestanding \
//            -nostdinc++ -Wno-always-inline-coroutine -I <bpfwasm>/include -c prog.cpp -o prog.o
// Add -g for BTF (needed for BTF-defined maps such as queues): coroutines must then be
// marked BPF_CORO_FN (nodebug), because clang 22 crashes emitting BTF for a coroutine clone
// whose type mentions a class with member functions.
//
// Frame ABI (LLVM switch-resume lowering): +0x00 resume token (0 once done), +0x08 destroy
// token, +0x10 the promise (Task: value, then the awaiting coroutine), then spills and the
// suspend index. The runtime keeps 32 bytes of its own before the frame (owner, deadline).
//
// Who owns a frame: the Task that holds it, until `detach()` (or an awaitable that hands it
// to the runtime and is never resumed by its holder); a detached frame belongs to the
// runtime, which destroys it when it is done, or when it is not resumed before its deadline.
#pragma once

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed int s32;
typedef signed long long s64;

#ifndef __ksym
#define __ksym __attribute__((section(".ksyms")))
#endif
#ifndef SEC
#define SEC(name) __attribute__((section(name), used))
#endif
#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

// ---------------------------------------------------------------------------
// kfuncs (extern "C": the symbol is the kfunc's name). Handles are frame addresses.
// ---------------------------------------------------------------------------
extern "C" {
// Frame of `size` bytes from the frame allocator, zeroed, charged to the calling program;
// NULL when memory or the program's cap runs out.
void *bpf_coro_frame_alloc(unsigned long size, void *ctx) __ksym;
void bpf_coro_frame_free(void *frame) __ksym;
// Resume `frame` at the end of the current run, on the same worker (task_work).
void bpf_coro_defer(void *frame) __ksym;
// Push `frame` into a queue map (BPF_MAP_TYPE_QUEUE of u64 handles): a host or BPF worker
// decides where and when it continues. 0, or -errno (queue full: the frame is not parked).
long bpf_coro_enqueue(void *queue_map, void *frame) __ksym;
// Push `frame` to the back of the Vm's ready queue (vm.coroutines.run / drain resume it).
long bpf_coro_yield(void *frame) __ksym;
// Resume `frame` after `ns` nanoseconds (a host timer). 0, or -errno.
long bpf_coro_sleep(void *frame, u64 ns) __ksym;
// The runtime owns `frame` from now on: it destroys it once done.
void bpf_coro_detach(void *frame) __ksym;
// A Task's final suspend: the runtime frees `frame` if it was detached and nobody awaits it.
void bpf_coro_done(void *frame) __ksym;
// `child` is awaited by `parent`: the runtime leaves its lifetime to the parent.
void bpf_coro_await(void *child, void *parent) __ksym;
// The frame of a handle popped from a queue, or NULL when the handle is stale (its frame was
// destroyed since it was queued). Queues carry handles, not frame addresses.
void *bpf_coro_handle_frame(u64 handle) __ksym;
// After resuming a handle: destroys its frame if it is done and awaited by nobody (1), else 0.
long bpf_coro_reap(u64 handle) __ksym;
// A frame the runtime cancelled, to destroy here (callx its destroy token), or NULL.
void *bpf_coro_take_cancelled(void *ctx) __ksym;
// Unwinds to the program's entry; the run returns `cookie`. Holding a reference is refused.
void bpf_throw(u64 cookie) __ksym __attribute__((noreturn));
}

#define BPF_CORO_ENOMEM_COOKIE 12

// Coroutines must be always_inline (the ramp returns a class: the BPF backend cannot return
// aggregates) and nodebug (the clang 22 BTF crash, above).
#ifndef BPF_CORO_FN
#define BPF_CORO_FN __attribute__((nodebug, always_inline))
#endif

// ---------------------------------------------------------------------------
// helpers: libbpf's bpf_helper_defs.h is C only ((void *)N does not convert to a function
// pointer in C++), so the ones coroutine code commonly uses are declared here.
// ---------------------------------------------------------------------------
#define BPF_CXX_HELPER(ret, name, id, ...) \
  static ret (*const name)(__VA_ARGS__) = reinterpret_cast<ret (*)(__VA_ARGS__)>(id)

BPF_CXX_HELPER(void *, bpf_map_lookup_elem, 1, void *map, const void *key);
BPF_CXX_HELPER(long, bpf_map_update_elem, 2, void *map, const void *key, const void *value, u64 flags);
BPF_CXX_HELPER(long, bpf_map_delete_elem, 3, void *map, const void *key);
BPF_CXX_HELPER(u64, bpf_ktime_get_ns, 5);
BPF_CXX_HELPER(u32, bpf_get_smp_processor_id, 8);
BPF_CXX_HELPER(u64, bpf_get_current_pid_tgid, 14);
BPF_CXX_HELPER(long, bpf_get_stack, 67, void *ctx, void *buf, u32 size, u64 flags);
struct task_struct;
BPF_CXX_HELPER(long, bpf_get_task_stack, 141, struct task_struct *task, void *buf, u32 size,
               u64 flags);
BPF_CXX_HELPER(struct task_struct *, bpf_get_current_task_btf, 158);
BPF_CXX_HELPER(long, bpf_map_push_elem, 87, void *map, const void *value, u64 flags);
BPF_CXX_HELPER(long, bpf_map_pop_elem, 88, void *map, void *value);
BPF_CXX_HELPER(long, bpf_ringbuf_output, 130, void *ringbuf, void *data, u64 size, u64 flags);
BPF_CXX_HELPER(void *, bpf_ringbuf_reserve, 131, void *ringbuf, u64 size, u64 flags);
BPF_CXX_HELPER(void, bpf_ringbuf_submit, 132, void *data, u64 flags);
BPF_CXX_HELPER(void, bpf_ringbuf_discard, 133, void *data, u64 flags);
BPF_CXX_HELPER(long, bpf_loop, 181, u32 nr_loops, void *callback_fn, void *callback_ctx, u64 flags);

#ifndef BPF_F_USER_STACK
#define BPF_F_USER_STACK (1ULL << 8)
#endif

// BTF-defined maps (libbpf's __uint/__type). Give map types a name: an anonymous struct
// type gets internal linkage in C++, which BTF-defined maps cannot have.
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name

// A queue of coroutine handles: BPF_MAP_TYPE_QUEUE with u64 values.
#define BPF_CORO_QUEUE(name, capacity)   \
  struct name##_queue_def {              \
    __uint(type, 22);                    \
    __uint(max_entries, capacity);       \
    __type(value, u64);                  \
  } name SEC(".maps")

// ---------------------------------------------------------------------------
// namespace std: what clang's Sema looks up for co_await / co_return.
// ---------------------------------------------------------------------------
namespace std {
using size_t = decltype(sizeof(0));
using nullptr_t = decltype(nullptr);

template <class R, class... Args>
struct coroutine_traits {
  using promise_type = typename R::promise_type;
};

template <class Promise = void>
struct coroutine_handle;

template <>
struct coroutine_handle<void> {
  constexpr coroutine_handle() noexcept : ptr_(nullptr) {}
  constexpr coroutine_handle(nullptr_t) noexcept : ptr_(nullptr) {}
  static constexpr coroutine_handle from_address(void *a) noexcept {
    coroutine_handle h;
    h.ptr_ = a;
    return h;
  }
  constexpr void *address() const noexcept { return ptr_; }
  constexpr explicit operator bool() const noexcept { return ptr_ != nullptr; }
  // llvm.coro.done: loads frame+0 (resume fn ptr) and compares with NULL.
  bool done() const noexcept { return __builtin_coro_done(ptr_); }
  // llvm.coro.resume / llvm.coro.destroy: load frame+0 / frame+8 and callx.
  void resume() const { __builtin_coro_resume(ptr_); }
  void operator()() const { resume(); }
  void destroy() const { __builtin_coro_destroy(ptr_); }

 protected:
  void *ptr_;
};

template <class Promise>
struct coroutine_handle : coroutine_handle<> {
  constexpr coroutine_handle() noexcept = default;
  constexpr coroutine_handle(nullptr_t) noexcept {}
  static coroutine_handle from_promise(Promise &p) noexcept {
    coroutine_handle h;
    h.ptr_ = __builtin_coro_promise(&p, alignof(Promise), true);
    return h;
  }
  static constexpr coroutine_handle from_address(void *a) noexcept {
    coroutine_handle h;
    h.ptr_ = a;
    return h;
  }
  Promise &promise() const noexcept {
    return *static_cast<Promise *>(__builtin_coro_promise(ptr_, alignof(Promise), false));
  }
};

struct suspend_always {
  constexpr bool await_ready() const noexcept { return false; }
  constexpr void await_suspend(coroutine_handle<>) const noexcept {}
  constexpr void await_resume() const noexcept {}
};

struct suspend_never {
  constexpr bool await_ready() const noexcept { return true; }
  constexpr void await_suspend(coroutine_handle<>) const noexcept {}
  constexpr void await_resume() const noexcept {}
};

// For symmetric transfer (await_suspend returning a handle). LLVM materialises
// the noop frame as a .rodata object holding two function pointers
// (R_BPF_64_ABS64 relocations against .text) to an empty function.
inline coroutine_handle<> noop_coroutine() noexcept {
  return coroutine_handle<>::from_address(__builtin_coro_noop());
}
}  // namespace std

// ---------------------------------------------------------------------------
// bpf::Task<T> and the awaitables
// ---------------------------------------------------------------------------
namespace bpf {

// Frame allocation through kfuncs. C++20 looks for operator new(size, <coroutine params>...)
// first, so a coroutine whose first parameter is a pointer (the ctx) passes it along.
struct frame_alloc {
  template <class C, class... A>
  static void *operator new(std::size_t size, C *ctx, A &...) noexcept {
    void *p = bpf_coro_frame_alloc(size, (void *)ctx);
    if (!p) bpf_throw(BPF_CORO_ENOMEM_COOKIE);
    return p;
  }
  static void *operator new(std::size_t size) noexcept {
    void *p = bpf_coro_frame_alloc(size, nullptr);
    if (!p) bpf_throw(BPF_CORO_ENOMEM_COOKIE);
    return p;
  }
  static void operator delete(void *p, std::size_t) noexcept { bpf_coro_frame_free(p); }
};

// An eager coroutine returning T (T of at most 8 bytes). Its frame: value at +0x10, the
// awaiting coroutine at +0x18.
template <class T>
class [[nodiscard]] Task {
 public:
  struct promise_type;
  using handle_type = std::coroutine_handle<promise_type>;

  // At the end, stay suspended (resume token 0: done) and resume the awaiting coroutine; with
  // none, tell the runtime, which frees the frame if the Task was detached.
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    void await_suspend(handle_type h) const noexcept {
      std::coroutine_handle<> c = h.promise().continuation;
      if (c) c.resume();
      else bpf_coro_done(h.address());
    }
    void await_resume() const noexcept {}
  };

  struct promise_type : frame_alloc {
    T value{};
    std::coroutine_handle<> continuation;

    Task get_return_object() noexcept { return Task(handle_type::from_promise(*this)); }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    final_awaiter final_suspend() const noexcept { return {}; }
    void return_value(T v) noexcept { value = v; }
    void unhandled_exception() const noexcept {}
  };

  Task(Task &&o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  Task(const Task &) = delete;
  Task &operator=(const Task &) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool done() const noexcept { return h_.done(); }
  T result() const noexcept { return h_.promise().value; }
  // Hands the frame to the runtime, which destroys it once it is done.
  void *detach() noexcept {
    void *a = h_.address();
    bpf_coro_detach(a);
    h_ = nullptr;
    return a;
  }
  void *address() const noexcept { return h_.address(); }

  // co_await task: the awaiting coroutine continues when this one completes.
  bool await_ready() const noexcept { return h_.done(); }
  void await_suspend(std::coroutine_handle<> awaiting) const noexcept {
    h_.promise().continuation = awaiting;
    bpf_coro_await(h_.address(), awaiting.address());
  }
  T await_resume() const noexcept { return h_.promise().value; }

 private:
  explicit Task(handle_type h) noexcept : h_(h) {}
  handle_type h_;
};

// co_await bpf::task_work_schedule(): continue at the end of this run, on this worker.
struct task_work_schedule {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { bpf_coro_defer(h.address()); }
  void await_resume() const noexcept {}
};

// co_await bpf::enqueue(&queue): park in a queue map; the result is 0, or -errno when the
// queue was full (then the coroutine did not suspend).
struct enqueue {
  void *queue;
  mutable long err = 0;
  explicit enqueue(void *q) : queue(q) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) const noexcept {
    // after a successful hand-over another worker may already run the frame: no store here
    long r = bpf_coro_enqueue(queue, h.address());
    if (r == 0) return true;
    err = r;
    return false;
  }
  long await_resume() const noexcept { return err; }
};

// co_await bpf::sleep_for{ns}: continue after ns nanoseconds (host timer); 0 or -errno.
struct sleep_for {
  u64 ns;
  mutable long err = 0;
  bool await_ready() const noexcept { return ns == 0; }
  bool await_suspend(std::coroutine_handle<> h) const noexcept {
    // after a successful hand-over another worker may already run the frame: no store here
    long r = bpf_coro_sleep(h.address(), ns);
    if (r == 0) return true;
    err = r;
    return false;
  }
  long await_resume() const noexcept { return err; }
};

// co_await bpf::yield(): to the back of the Vm's ready queue; 0 or -errno.
struct yield {
  mutable long err = 0;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) const noexcept {
    // after a successful hand-over another worker may already run the frame: no store here
    long r = bpf_coro_yield(h.address());
    if (r == 0) return true;
    err = r;
    return false;
  }
  long await_resume() const noexcept { return err; }
};

// Resumes a handle popped from a queue (the talk's worker loop); a frame that is done
// afterwards and awaited by nobody is destroyed. Returns false for a stale handle.
static __always_inline bool resume_handle(u64 handle) {
  void *frame = bpf_coro_handle_frame(handle);
  if (!frame) return false;
  std::coroutine_handle<> h = std::coroutine_handle<>::from_address(frame);
  h.resume();
  bpf_coro_reap(handle);
  return true;
}

}  // namespace bpf
