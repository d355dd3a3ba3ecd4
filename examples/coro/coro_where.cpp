// Where a coroutine continues: an XDP program starts a coroutine that notes the CPU (worker) it
// runs on, parks itself in a queue, and when resumed counts the pair (start CPU, resume CPU)
// in an array map. Draining the queue on another worker moves the rest of the work there.
#include <bpf_coro.h>

BPF_CORO_QUEUE(work_q, 1024);

struct moves_map {  // moves[start * 4 + resume]: coroutines that started and resumed there
  __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
  __uint(max_entries, 16);
  __type(key, u32);
  __type(value, u64);
} moves SEC(".maps");

BPF_CORO_FN static bpf::Task<int> hop(void *ctx) {
  u32 start = bpf_get_smp_processor_id();
  if (co_await bpf::enqueue(&work_q)) co_return -1;  // queue full: not parked
  u32 now = bpf_get_smp_processor_id();
  u32 key = (start & 3) * 4 + (now & 3);
  u64 *n = (u64 *)bpf_map_lookup_elem(&moves, &key);
  if (n) __sync_fetch_and_add(n, 1);
  co_return 0;
}

extern "C" SEC("xdp") int start_hop(void *ctx) {
  auto t = hop(ctx);
  if (t.done()) return t.result() == 0 ? 2 : 1;  // XDP_PASS, or XDP_DROP when not parked
  t.detach();
  return 2;
}

char LICENSE[] SEC("license") = "GPL";
