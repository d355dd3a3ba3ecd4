// (a) The talk's perf_event-style example: do some work in the (atomic)
// program, co_await task_work_schedule() to hand the rest to the runtime,
// do more work when resumed, co_return a value.
#include <bpf_coro.h>

struct counts_map {  // named: an anonymous struct type would give the map internal
                    // linkage in C++ (BTF VAR linkage=static), which libbpf rejects
  __uint(type, 1 /* BPF_MAP_TYPE_HASH */);
  __uint(max_entries, 1024);
  __type(key, u32);
  __type(value, u64);
} counts SEC(".maps");

BPF_CORO_FN static bpf::Task<int> handle_event(void *ctx) {
  u32 cpu = bpf_get_smp_processor_id();          // work before the suspension
  u64 t0 = bpf_ktime_get_ns();
  co_await bpf::task_work_schedule();           // suspend point #1 (index 1)
  u64 dt = bpf_ktime_get_ns() - t0;             // cpu, t0 live across -> frame
  u64 *slot = (u64 *)bpf_map_lookup_elem(&counts, &cpu);
  if (slot) *slot += dt;
  else bpf_map_update_elem(&counts, &cpu, &dt, 0);
  co_return (int)(dt & 0x7fffffff);
}

extern "C" SEC("perf_event") int on_perf_event(void *ctx) {
  auto t = handle_event(ctx);
  if (t.done()) return t.result();  // completed synchronously
  t.detach();                       // runtime owns the frame now
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
