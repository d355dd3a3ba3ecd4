// lpm_router: an XDP IPv4 router over a longest-prefix-match trie.
//
// `routes` (BPF_MAP_TYPE_LPM_TRIE, BPF_F_NO_PREALLOC as the kernel requires) maps an IPv4
// destination prefix to the ifindex of the next hop; `next_hops` (hash) maps that ifindex to
// the MAC addresses to put in the Ethernet header. For an IPv4 packet the program looks up
// the destination address:
//   - no route, or no next hop for the route's ifindex: XDP_DROP;
//   - TTL 0 or 1: XDP_PASS (the stack sends the ICMP time-exceeded);
//   - otherwise it rewrites h_dest / h_source from the next hop, decrements the TTL with an
//     incremental checksum update (RFC 1624, the kernel's ip_decrease_ttl) and returns XDP_TX.
// Non-IPv4 frames are passed, truncated IPv4 headers dropped. `last_ifindex` (.bss) keeps the
// ifindex of the last route taken, so the host can observe each longest-prefix decision.
//
// Build: make (clang --target=bpf -mcpu=v4 -O2 -g; see Makefile).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct route_key {
  __u32 prefixlen; /* host byte order, 0-32 */
  __u32 daddr;     /* network byte order */
};

struct next_hop {
  __u8 dmac[ETH_ALEN];
  __u8 smac[ETH_ALEN];
};

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 256);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct route_key);
  __type(value, __u32); /* ifindex */
} routes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32); /* ifindex */
  __type(value, struct next_hop);
} next_hops SEC(".maps");

__u32 last_ifindex = 0; /* .bss */

static __always_inline void decrease_ttl(struct iphdr *iph)
{
  __u32 check = iph->check;

  check += bpf_htons(0x0100);
  iph->check = (__u16)(check + (check >= 0xffff));
  iph->ttl--;
}

SEC("xdp")
int lpm_router(struct xdp_md *ctx)
{
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  struct iphdr *iph = (void *)(eth + 1);
  struct route_key key = { .prefixlen = 32 };
  struct next_hop *hop;
  __u32 *ifindex;

  if ((void *)(eth + 1) > data_end)
    return XDP_DROP;
  if (eth->h_proto != bpf_htons(ETH_P_IP))
    return XDP_PASS;
  if ((void *)(iph + 1) > data_end)
    return XDP_DROP;

  key.daddr = iph->daddr;
  ifindex = bpf_map_lookup_elem(&routes, &key);
  if (!ifindex)
    return XDP_DROP;
  last_ifindex = *ifindex;
  hop = bpf_map_lookup_elem(&next_hops, ifindex);
  if (!hop)
    return XDP_DROP;
  if (iph->ttl <= 1)
    return XDP_PASS;

  __builtin_memcpy(eth->h_dest, hop->dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, hop->smac, ETH_ALEN);
  decrease_ttl(iph);
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
