// Use case (c) of the talk: a key-value store served by BPF, in which every request is a
// coroutine and the scheduler bounds service time. A request (struct kv_request: id, op
// get/put/scan, key, size = the number of store entries it touches, value) arrives as one run of
// kv_serve; its coroutine records the arrival, queues itself for service (co_await
// bpf::yield(): the Vm's ready queue, which the host scheduler drains) and returns at once.
// When served it works through its entries one step at a time:
//  - kv_mode 0 (FCFS): runs to completion once it has the CPU;
//  - kv_mode 1 (processor sharing): co_await bpf::yield() every kv_quantum steps, to the back
//    of the ready queue, so short requests overtake long ones.
// It records completion (time, order, result) in kv_reqs[id], from which the host computes
// latency.
#include <bpf_coro.h>

#define KV_ENTRIES 4096 /* a power of two */
#define MAX_REQS 8192

#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_TX 3

enum kv_op : u32 { OP_GET = 0, OP_PUT = 1, OP_SCAN = 2 };

struct xdp_md {
  u32 data;
  u32 data_end;
  u32 data_meta;
  u32 ingress_ifindex;
  u32 rx_queue_index;
  u32 egress_ifindex;
};

// A request as it arrives (the packet's first bytes).
struct kv_request {
  u32 id;
  u32 op;
  u32 key;
  u32 size;
  u64 value;
};

// What the store records per request id. result: put -> entries written, get -> sum of the
// values read, scan -> entries holding a non-zero value. order: 1 for the first completion.
struct req_record {
  u64 arrival_ns;
  u64 done_ns;
  u64 result;
  u32 order;
  u32 yields;
};

struct kv_store_map {
  __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
  __uint(max_entries, KV_ENTRIES);
  __type(key, u32);
  __type(value, u64);
} kv_store SEC(".maps");

struct kv_reqs_map {
  __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
  __uint(max_entries, MAX_REQS);
  __type(key, u32);
  __type(value, req_record);
} kv_reqs SEC(".maps");

u32 kv_mode = 0;      // 0: FCFS, 1: processor sharing
u32 kv_quantum = 16;  // processor sharing: steps between yields
u32 completions = 0;

BPF_CORO_FN static bpf::Task<long> serve(void *ctx, u32 id, u32 op, u32 key, u32 size,
                                         u64 value) {
  req_record *r = (req_record *)bpf_map_lookup_elem(&kv_reqs, &id);
  if (!r) co_return -1;
  r->arrival_ns = bpf_ktime_get_ns();
  co_await bpf::yield();  // wait for service
  u64 acc = 0;
  u32 since = 0;
  for (u32 i = 0; i < size && i < KV_ENTRIES; i++) {
    u32 k = (key + i) & (KV_ENTRIES - 1);
    u64 *slot = (u64 *)bpf_map_lookup_elem(&kv_store, &k);
    if (!slot) break;
    if (op == OP_PUT) *slot = value + i;
    else if (op == OP_GET) acc += *slot;
    else acc += *slot != 0;
    if (kv_mode == 1 && ++since >= kv_quantum && i + 1 < size) {
      since = 0;
      r->yields += 1;
      co_await bpf::yield();  // processor sharing: the back of the queue
    }
  }
  r->result = op == OP_PUT ? size : acc;
  r->done_ns = bpf_ktime_get_ns();
  r->order = __sync_fetch_and_add(&completions, 1) + 1;
  co_return 0;
}

extern "C" SEC("xdp") int kv_serve(xdp_md *ctx) {
  const kv_request *q = (const kv_request *)(long)ctx->data;
  if ((const u8 *)(q + 1) > (const u8 *)(long)ctx->data_end) return XDP_DROP;
  if (q->id >= MAX_REQS || q->op > OP_SCAN) return XDP_DROP;
  auto t = serve(ctx, q->id, q->op, q->key, q->size, q->value);
  if (t.done()) return t.result() == 0 ? XDP_TX : XDP_ABORTED;
  t.detach();
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
