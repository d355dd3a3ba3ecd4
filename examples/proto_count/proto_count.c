// proto_count: XDP packet counters per IP protocol.
//
// Ethernet -> IPv4 / IPv6 -> protocol byte (iph->protocol, ip6h->nexthdr). Every packet adds
// its length to a per-CPU byte total. Well-formed IP packets are counted under their protocol
// number (0-255) in a hash map and passed; other ethertypes are counted under KEY_NON_IP and
// passed; packets too short for their headers, or IPv4 headers with a bad version or IHL, are
// counted under KEY_MALFORMED and dropped.
//
// Build: make (clang --target=bpf -mcpu=v4 -O2 -g; see Makefile).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Keys outside the 0-255 protocol range. */
#define KEY_MALFORMED 0x100
#define KEY_NON_IP    0x200

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 512);
  __type(key, __u32);   /* IP protocol, KEY_MALFORMED or KEY_NON_IP */
  __type(value, __u64); /* packets */
} packets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64); /* bytes seen on this CPU */
} total_bytes SEC(".maps");

static __always_inline void count(__u32 key)
{
  __u64 one = 1, *val;

  val = bpf_map_lookup_elem(&packets, &key);
  if (val) {
    __sync_fetch_and_add(val, 1);
    return;
  }
  /* a concurrent first packet may have inserted it meanwhile: then add to that one */
  if (bpf_map_update_elem(&packets, &key, &one, BPF_NOEXIST) != 0) {
    val = bpf_map_lookup_elem(&packets, &key);
    if (val)
      __sync_fetch_and_add(val, 1);
  }
}

/* The IP protocol of the packet, or KEY_MALFORMED / KEY_NON_IP. */
static __always_inline __u32 classify(void *data, void *data_end)
{
  struct ethhdr *eth = data;

  if ((void *)(eth + 1) > data_end)
    return KEY_MALFORMED;
  if (eth->h_proto == bpf_htons(ETH_P_IP)) {
    struct iphdr *iph = (void *)(eth + 1);

    if ((void *)(iph + 1) > data_end || iph->version != 4 || iph->ihl < 5)
      return KEY_MALFORMED;
    if ((void *)iph + iph->ihl * 4 > data_end)
      return KEY_MALFORMED;
    return iph->protocol;
  }
  if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr *ip6h = (void *)(eth + 1);

    if ((void *)(ip6h + 1) > data_end || ip6h->version != 6)
      return KEY_MALFORMED;
    return ip6h->nexthdr;
  }
  return KEY_NON_IP;
}

SEC("xdp")
int proto_count(struct xdp_md *ctx)
{
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  __u32 zero = 0, key;
  __u64 *bytes;

  bytes = bpf_map_lookup_elem(&total_bytes, &zero);
  if (bytes)
    *bytes += data_end - data; /* per-CPU: no atomic needed */

  key = classify(data, data_end);
  count(key);
  return key == KEY_MALFORMED ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
