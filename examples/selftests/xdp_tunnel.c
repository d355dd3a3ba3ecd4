// Our own program for what the kernel selftest test_xdp checks
// (tools/testing/selftests/bpf/progs/test_xdp.c, prog_tests/xdp.c): an XDP IP-in-IP
// encapsulator. The virtual IP (protocol, family, destination address and port) of a TCP/UDP
// packet is looked up in `vip2tnl`; with a tunnel of the same family the program makes room
// with bpf_xdp_adjust_head, writes the outer Ethernet header (source = old destination MAC,
// destination = the tunnel's MAC) and the outer IPv4 (IPPROTO_IPIP, with checksum) or IPv6
// (next header IPPROTO_IPV6) header, counts the inner protocol in the per-CPU `rxcnt` and
// returns XDP_TX. No tunnel: XDP_PASS; truncated or other frames: XDP_DROP.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10

/* 24 bytes; the host builds keys with the same layout */
struct vip_key {
  __u32 daddr[4]; /* IPv4: daddr[0] */
  __u16 dport;    /* network byte order */
  __u16 family;
  __u8 protocol;
  __u8 pad[3];
};

/* 40 bytes */
struct tunnel {
  __u32 saddr[4];
  __u32 daddr[4];
  __u16 family;
  __u8 dmac[ETH_ALEN];
};

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} rxcnt SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, struct vip_key);
  __type(value, struct tunnel);
} vip2tnl SEC(".maps");

static __always_inline int dport_of(void *l4, void *data_end, __u8 protocol)
{
  if (protocol == IPPROTO_TCP) {
    struct tcphdr *th = l4;

    if ((void *)(th + 1) > data_end)
      return -1;
    return th->dest;
  }
  if (protocol == IPPROTO_UDP) {
    struct udphdr *uh = l4;

    if ((void *)(uh + 1) > data_end)
      return -1;
    return uh->dest;
  }
  return 0;
}

static __always_inline void count(__u32 protocol)
{
  __u64 *n = bpf_map_lookup_elem(&rxcnt, &protocol);

  if (n)
    *n += 1;
}

static __always_inline void outer_eth(struct ethhdr *neth, const struct ethhdr *oeth,
                                      const struct tunnel *t, __u16 proto)
{
  __builtin_memcpy(neth->h_source, oeth->h_dest, ETH_ALEN);
  __builtin_memcpy(neth->h_dest, t->dmac, ETH_ALEN);
  neth->h_proto = bpf_htons(proto);
}

static __always_inline int encap_ipv4(struct xdp_md *xdp)
{
  void *data = (void *)(long)xdp->data;
  void *data_end = (void *)(long)xdp->data_end;
  struct iphdr *iph = data + sizeof(struct ethhdr);
  struct vip_key vip = {};
  struct tunnel *t;
  struct ethhdr *neth, *oeth;
  __u16 inner_len, *w;
  __u32 csum = 0;
  int dport;

  if ((void *)(iph + 1) > data_end)
    return XDP_DROP;
  dport = dport_of(iph + 1, data_end, iph->protocol);
  if (dport == -1)
    return XDP_DROP;
  vip.protocol = iph->protocol;
  vip.family = AF_INET;
  vip.daddr[0] = iph->daddr;
  vip.dport = dport;
  inner_len = bpf_ntohs(iph->tot_len);

  t = bpf_map_lookup_elem(&vip2tnl, &vip);
  if (!t || t->family != AF_INET)
    return XDP_PASS;
  if (bpf_xdp_adjust_head(xdp, -(int)sizeof(struct iphdr)))
    return XDP_DROP;

  data = (void *)(long)xdp->data;
  data_end = (void *)(long)xdp->data_end;
  neth = data;
  iph = data + sizeof(*neth);
  oeth = data + sizeof(*iph);
  if ((void *)(neth + 1) > data_end || (void *)(oeth + 1) > data_end ||
      (void *)(iph + 1) > data_end)
    return XDP_DROP;

  outer_eth(neth, oeth, t, ETH_P_IP);
  iph->version = 4;
  iph->ihl = sizeof(*iph) >> 2;
  iph->tos = 0;
  iph->tot_len = bpf_htons(inner_len + sizeof(*iph));
  iph->id = 0;
  iph->frag_off = 0;
  iph->ttl = 8;
  iph->protocol = IPPROTO_IPIP;
  iph->check = 0;
  iph->saddr = t->saddr[0];
  iph->daddr = t->daddr[0];
  w = (__u16 *)iph;
#pragma unroll
  for (int i = 0; i < (int)sizeof(*iph) / 2; i++)
    csum += w[i];
  csum = (csum & 0xffff) + (csum >> 16);
  iph->check = ~((csum & 0xffff) + (csum >> 16));

  count(vip.protocol);
  return XDP_TX;
}

static __always_inline int encap_ipv6(struct xdp_md *xdp)
{
  void *data = (void *)(long)xdp->data;
  void *data_end = (void *)(long)xdp->data_end;
  struct ipv6hdr *ip6h = data + sizeof(struct ethhdr);
  struct vip_key vip = {};
  struct tunnel *t;
  struct ethhdr *neth, *oeth;
  __u16 inner_payload;
  int dport;

  if ((void *)(ip6h + 1) > data_end)
    return XDP_DROP;
  dport = dport_of(ip6h + 1, data_end, ip6h->nexthdr);
  if (dport == -1)
    return XDP_DROP;
  vip.protocol = ip6h->nexthdr;
  vip.family = AF_INET6;
  __builtin_memcpy(vip.daddr, &ip6h->daddr, sizeof(vip.daddr));
  vip.dport = dport;
  inner_payload = bpf_ntohs(ip6h->payload_len);

  t = bpf_map_lookup_elem(&vip2tnl, &vip);
  if (!t || t->family != AF_INET6)
    return XDP_PASS;
  if (bpf_xdp_adjust_head(xdp, -(int)sizeof(struct ipv6hdr)))
    return XDP_DROP;

  data = (void *)(long)xdp->data;
  data_end = (void *)(long)xdp->data_end;
  neth = data;
  ip6h = data + sizeof(*neth);
  oeth = data + sizeof(*ip6h);
  if ((void *)(neth + 1) > data_end || (void *)(oeth + 1) > data_end ||
      (void *)(ip6h + 1) > data_end)
    return XDP_DROP;

  outer_eth(neth, oeth, t, ETH_P_IPV6);
  ip6h->version = 6;
  ip6h->priority = 0;
  __builtin_memset(ip6h->flow_lbl, 0, sizeof(ip6h->flow_lbl));
  ip6h->payload_len = bpf_htons(inner_payload + sizeof(*ip6h));
  ip6h->nexthdr = IPPROTO_IPV6;
  ip6h->hop_limit = 8;
  __builtin_memcpy(&ip6h->saddr, t->saddr, sizeof(t->saddr));
  __builtin_memcpy(&ip6h->daddr, t->daddr, sizeof(t->daddr));

  count(vip.protocol);
  return XDP_TX;
}

SEC("xdp")
int xdp_tunnel(struct xdp_md *xdp)
{
  void *data = (void *)(long)xdp->data;
  void *data_end = (void *)(long)xdp->data_end;
  struct ethhdr *eth = data;

  if ((void *)(eth + 1) > data_end)
    return XDP_DROP;
  if (eth->h_proto == bpf_htons(ETH_P_IP))
    return encap_ipv4(xdp);
  if (eth->h_proto == bpf_htons(ETH_P_IPV6))
    return encap_ipv6(xdp);
  return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
