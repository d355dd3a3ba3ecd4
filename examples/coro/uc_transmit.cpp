// Use case (b) of the talk: transmit work deferred into per-class queues. The XDP program
// classifies each packet by its IPv4 DSCP (EF -> class 0, AF4x -> class 1, anything else ->
// class 2), starts a per-packet coroutine that parks itself in its class's queue
// (co_await bpf::enqueue) and returns at once. Whoever drains a queue resumes the coroutines,
// which then "transmit": count packets and bytes per class in tx_stats.
//
// Two ways to drain:
//  - the host: vm.coroutines.drain(obj.map('tx_q0'), { batch, budgetNs }) per class;
//  - tx_worker, the talk's worker() loop in BPF: per class, pops up to tx_cfg[c].batch handles
//    (bpf_map_pop_elem) and resumes each (bpf::resume_handle), stopping early once
//    tx_cfg[c].budget_ns have passed (bpf_ktime_get_ns); one run is one weighted round over
//    the three classes. It returns the handles it popped.
#include <bpf_coro.h>

#define N_CLASSES 3
#define QUEUE_CAP 4096
#define MAX_BATCH 256

#define XDP_DROP 1
#define XDP_PASS 2

struct xdp_md {
  u32 data;
  u32 data_end;
  u32 data_meta;
  u32 ingress_ifindex;
  u32 rx_queue_index;
  u32 egress_ifindex;
};

BPF_CORO_QUEUE(tx_q0, QUEUE_CAP);
BPF_CORO_QUEUE(tx_q1, QUEUE_CAP);
BPF_CORO_QUEUE(tx_q2, QUEUE_CAP);

// Per class: packets and bytes transmitted, packets dropped (queue full), packets transmitted
// out of arrival order (the sequence number went backwards), the last sequence number sent.
struct class_stats {
  u64 packets;
  u64 bytes;
  u64 dropped;
  u64 reordered;
  u64 last_seq;
};

struct tx_stats_map {
  __uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
  __uint(max_entries, N_CLASSES);
  __type(key, u32);
  __type(value, class_stats);
} tx_stats SEC(".maps");

// The worker's policy per class: most handles per round, CPU budget per round (0: none).
struct tx_class_cfg {
  u32 batch;
  u32 pad;
  u64 budget_ns;
};
tx_class_cfg tx_cfg[N_CLASSES] = {{4, 0, 0}, {2, 0, 0}, {1, 0, 0}};

// Packets seen (their sequence numbers), and stale handles the worker popped.
u64 arrivals = 0;
u64 worker_stale = 0;

static __always_inline void *class_queue(u32 cls) {
  if (cls == 0) return &tx_q0;
  if (cls == 1) return &tx_q1;
  return &tx_q2;
}

// DSCP of an IPv4 packet: EF (46) -> 0, AF41/42/43 (34/36/38) -> 1, else 2.
static __always_inline u32 classify_packet(const u8 *data, const u8 *end) {
  if (data + 16 > end) return 2;
  if (data[12] != 0x08 || data[13] != 0x00) return 2;
  u32 dscp = data[15] >> 2;
  if (dscp == 46) return 0;
  if (dscp == 34 || dscp == 36 || dscp == 38) return 1;
  return 2;
}

BPF_CORO_FN static bpf::Task<long> transmit(void *ctx, u32 cls, u32 len, u64 seq) {
  long err = co_await bpf::enqueue(class_queue(cls));
  class_stats *s = (class_stats *)bpf_map_lookup_elem(&tx_stats, &cls);
  if (!s) co_return -1;
  if (err) {
    __sync_fetch_and_add(&s->dropped, 1);
    co_return err;
  }
  // resumed by a drain: "transmit"
  s->packets += 1;
  s->bytes += len;
  if (seq < s->last_seq) s->reordered += 1;
  s->last_seq = seq;
  co_return 0;
}

extern "C" SEC("xdp") int classify(xdp_md *ctx) {
  const u8 *data = (const u8 *)(long)ctx->data;
  const u8 *end = (const u8 *)(long)ctx->data_end;
  u32 cls = classify_packet(data, end);
  u64 seq = __sync_fetch_and_add(&arrivals, 1) + 1;
  auto t = transmit(ctx, cls, (u32)(end - data), seq);
  if (t.done()) return XDP_DROP;  // the queue was full
  t.detach();
  return XDP_PASS;
}

// One class's turn: up to cfg.batch handles, until cfg.budget_ns have passed.
static __always_inline u32 drain_class(void *queue, const tx_class_cfg *cfg) {
  u64 t0 = bpf_ktime_get_ns();
  u32 n = 0;
  for (u32 k = 0; k < MAX_BATCH && k < cfg->batch; k++) {
    u64 handle;
    if (bpf_map_pop_elem(queue, &handle)) break;
    n++;
    if (!bpf::resume_handle(handle)) __sync_fetch_and_add(&worker_stale, 1);
    if (cfg->budget_ns && bpf_ktime_get_ns() - t0 >= cfg->budget_ns) break;
  }
  return n;
}

extern "C" SEC("perf_event") int tx_worker(void *ctx) {
  u32 n = drain_class(&tx_q0, &tx_cfg[0]);
  n += drain_class(&tx_q1, &tx_cfg[1]);
  n += drain_class(&tx_q2, &tx_cfg[2]);
  return n;
}

char LICENSE[] SEC("license") = "GPL";
