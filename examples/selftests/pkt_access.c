// Our own program for what the kernel selftest test_pkt_access checks
// (tools/testing/selftests/bpf/progs/test_pkt_access.c, prog_tests/pkt_access.c): direct packet
// access in a tc program through Ethernet -> IPv4/IPv6 -> TCP, static and global subprograms
// that read __sk_buff fields (one with a large stack frame), a global subprogram that writes to
// the packet, and the verdict TC_ACT_OK (0) when the TCP urgent pointer of the selftests' pkt_v4
// / pkt_v6 (123, stored as a raw u16) is found. Anything unexpected returns TC_ACT_SHOT.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

static __attribute__((noinline)) int len_times(volatile struct __sk_buff *skb, int k)
{
  return skb->len * k;
}

/* global subprogram with a 400-byte frame: the caller's frame must not overlap it */
__attribute__((noinline)) int ifindex_times(struct __sk_buff *skb, int a, int b)
{
  volatile char pad[400] = {};

  pad[a] = (char)b;
  return skb->ifindex * a * b + pad[a] - (char)b;
}

/* global subprogram writing to the packet: bumps the TCP checksum field at `off` */
__attribute__((noinline)) int bump_tcp_check(struct __sk_buff *skb, __u32 off)
{
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct tcphdr *tcp;

  if (off > sizeof(struct ethhdr) + sizeof(struct ipv6hdr))
    return -1;
  tcp = data + off;
  if ((void *)(tcp + 1) > data_end)
    return -1;
  tcp->check++;
  return 0;
}

SEC("tc")
int pkt_access(struct __sk_buff *skb)
{
  void *data = (void *)(long)skb->data;
  void *data_end = (void *)(long)skb->data_end;
  struct ethhdr *eth = data;
  struct tcphdr *tcp = 0;
  __u8 proto = 0;

  if ((void *)(eth + 1) > data_end)
    return TC_ACT_SHOT;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *iph = (void *)(eth + 1);

    if ((void *)(iph + 1) > data_end)
      return TC_ACT_SHOT;
    proto = iph->protocol;
    tcp = (void *)iph + iph->ihl * 4;
  } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6h = (void *)(eth + 1);

    if ((void *)(ip6h + 1) > data_end)
      return TC_ACT_SHOT;
    proto = ip6h->nexthdr;
    tcp = (void *)(ip6h + 1);
  }

  if (len_times(skb, 2) != skb->len * 2)
    return TC_ACT_SHOT;
  if (ifindex_times(skb, 3, 5) != skb->ifindex * 15)
    return TC_ACT_SHOT;
  if (!tcp)
    return TC_ACT_UNSPEC;
  if (bump_tcp_check(skb, (void *)tcp - data))
    return TC_ACT_SHOT;
  if ((void *)tcp + sizeof(*tcp) > data_end || proto != IPPROTO_TCP)
    return TC_ACT_SHOT;
  return tcp->urg_ptr == 123 ? TC_ACT_OK : TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
