// tail_chain: an XDP dispatcher that tail-calls per-protocol handlers.
//
// `dispatch` reads the ethertype and bpf_tail_call()s slot SLOT_IPV4, SLOT_IPV6 or SLOT_OTHER
// of the prog_array `handlers`, whose slots libbpf (and vm.loadObject) fill at load time from
// the `__array(values, ...)` initialiser below. Each handler counts the packet in `stats`
// (packets and bytes per slot) and returns its own verdict: ipv4 XDP_PASS, ipv6 XDP_TX,
// other XDP_DROP. When a slot is empty the tail call falls through: the dispatcher counts the
// packet under SLOT_MISS and returns XDP_ABORTED. Frames shorter than an Ethernet header go
// to the `other` handler.
//
// `chain` tail-calls itself through `self_table` slot 0 and counts its runs in .bss `hops`:
// the kernel allows 33 tail calls per run (MAX_TAIL_CALL_CNT), so one run of `chain` makes
// 34 hops and the 34th bpf_tail_call returns, letting the program exit with XDP_PASS.
//
// Build: make (clang --target=bpf -mcpu=v4 -O2 -g; see Makefile).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum slot {
  SLOT_IPV4 = 0,
  SLOT_IPV6 = 1,
  SLOT_OTHER = 2,
  SLOT_MISS = 3, /* stats only: the tail call found no program */
  SLOT_COUNT = 4,
};

struct slot_stats {
  __u64 packets;
  __u64 bytes;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, SLOT_COUNT);
  __type(key, __u32);
  __type(value, struct slot_stats);
} stats SEC(".maps");

int handle_ipv4(struct xdp_md *ctx);
int handle_ipv6(struct xdp_md *ctx);
int handle_other(struct xdp_md *ctx);
int chain(struct xdp_md *ctx);

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, SLOT_COUNT);
  __uint(key_size, sizeof(__u32));
  __array(values, int(struct xdp_md *));
} handlers SEC(".maps") = {
  .values = {
    [SLOT_IPV4] = (void *)&handle_ipv4,
    [SLOT_IPV6] = (void *)&handle_ipv6,
    [SLOT_OTHER] = (void *)&handle_other,
  },
};

struct {
  __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
  __uint(max_entries, 1);
  __uint(key_size, sizeof(__u32));
  __array(values, int(struct xdp_md *));
} self_table SEC(".maps") = {
  .values = { [0] = (void *)&chain },
};

__u64 hops = 0; /* .bss: runs of `chain` */

static __always_inline void account(struct xdp_md *ctx, __u32 slot)
{
  struct slot_stats *s = bpf_map_lookup_elem(&stats, &slot);

  if (s) {
    __sync_fetch_and_add(&s->packets, 1);
    __sync_fetch_and_add(&s->bytes, ctx->data_end - ctx->data);
  }
}

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  __u32 slot = SLOT_OTHER;

  if ((void *)(eth + 1) <= data_end) {
    if (eth->h_proto == bpf_htons(ETH_P_IP))
      slot = SLOT_IPV4;
    else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
      slot = SLOT_IPV6;
  }
  bpf_tail_call(ctx, &handlers, slot);
  /* reached only when the slot is empty */
  account(ctx, SLOT_MISS);
  return XDP_ABORTED;
}

SEC("xdp")
int handle_ipv4(struct xdp_md *ctx)
{
  account(ctx, SLOT_IPV4);
  return XDP_PASS;
}

SEC("xdp")
int handle_ipv6(struct xdp_md *ctx)
{
  account(ctx, SLOT_IPV6);
  return XDP_TX;
}

SEC("xdp")
int handle_other(struct xdp_md *ctx)
{
  account(ctx, SLOT_OTHER);
  return XDP_DROP;
}

SEC("xdp")
int chain(struct xdp_md *ctx)
{
  __sync_fetch_and_add(&hops, 1);
  bpf_tail_call(ctx, &self_table, 0);
  return XDP_PASS; /* the tail call limit was reached */
}

char LICENSE[] SEC("license") = "GPL";
