// ringbuf_events: one event per packet through a BPF ring buffer.
//
// For every packet an XDP program reserves a `struct event` in the ring buffer, fills it
// (sequence number, length, ethertype, IP protocol, the first 16 bytes after the Ethernet
// header) and submits it; for packets shorter than MIN_LEN bytes it discards the reservation
// instead. ARP packets take the other producer API: the event is built on the stack and
// copied in with bpf_ringbuf_output. Counters live in .bss: `seq` numbers every packet (so
// discarded events leave gaps in the sequence), `discarded` and `ring_full` count the rest.
//
// Build: make (clang --target=bpf -mcpu=v4 -O2 -g; see Makefile).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MIN_LEN 60
#define PAYLOAD_LEN 16

enum event_kind {
  EVENT_RESERVED = 1, /* bpf_ringbuf_reserve + bpf_ringbuf_submit */
  EVENT_OUTPUT = 2,   /* bpf_ringbuf_output (ARP) */
};

/* 32 bytes, no padding: the host decodes it at fixed offsets. */
struct event {
  __u64 seq;                  /* 0: value of `seq` for this packet (1, 2, ...) */
  __u32 len;                  /* 8: packet length */
  __u16 eth_proto;            /* 12: ethertype, host byte order; 0 below 14 bytes */
  __u8 ip_proto;              /* 14: IPv4 protocol / IPv6 next header, else 0 */
  __u8 kind;                  /* 15: enum event_kind */
  __u8 payload[PAYLOAD_LEN];  /* 16: bytes after the Ethernet header, zero-padded */
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 * 1024);
} events SEC(".maps");

__u64 seq = 0;       /* .bss */
__u64 discarded = 0; /* .bss */
__u64 ring_full = 0; /* .bss */

static __always_inline void fill(struct event *e, void *data, void *data_end, __u64 n)
{
  struct ethhdr *eth = data;
  __u8 *p = data + sizeof(*eth);

  e->seq = n;
  e->len = data_end - data;
  e->eth_proto = 0;
  e->ip_proto = 0;
  __builtin_memset(e->payload, 0, sizeof(e->payload));
  if ((void *)(eth + 1) > data_end)
    return;
  e->eth_proto = bpf_ntohs(eth->h_proto);
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *iph = (void *)(eth + 1);

    if ((void *)(iph + 1) <= data_end)
      e->ip_proto = iph->protocol;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6h = (void *)(eth + 1);

    if ((void *)(ip6h + 1) <= data_end)
      e->ip_proto = ip6h->nexthdr;
  }
#pragma unroll
  for (int i = 0; i < PAYLOAD_LEN; i++) {
    if ((void *)(p + i + 1) > data_end)
      break;
    e->payload[i] = p[i];
  }
}

SEC("xdp")
int ringbuf_events(struct xdp_md *ctx)
{
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  __u64 n = __sync_add_and_fetch(&seq, 1);
  struct event *e;

  if ((void *)(eth + 1) <= data_end && eth->h_proto == bpf_htons(ETH_P_ARP)) {
    struct event ev;

    fill(&ev, data, data_end, n);
    ev.kind = EVENT_OUTPUT;
    if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0) != 0)
      __sync_fetch_and_add(&ring_full, 1);
    return XDP_PASS;
  }

  e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
  if (!e) {
    __sync_fetch_and_add(&ring_full, 1);
    return XDP_PASS;
  }
  fill(e, data, data_end, n);
  e->kind = EVENT_RESERVED;
  if (e->len < MIN_LEN) {
    bpf_ringbuf_discard(e, 0);
    __sync_fetch_and_add(&discarded, 1);
    return XDP_PASS;
  }
  bpf_ringbuf_submit(e, 0);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
