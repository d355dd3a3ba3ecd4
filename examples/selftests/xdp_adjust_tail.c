// Our own programs for what the kernel selftests test_xdp_adjust_tail_shrink and
// test_xdp_adjust_tail_grow check (tools/testing/selftests/bpf/progs/, driven by
// prog_tests/xdp_adjust_tail.c): bpf_xdp_adjust_tail in a BPF_PROG_TEST_RUN, where the packet
// sits in one 4096-byte page with XDP_PACKET_HEADROOM (256) bytes of headroom and 320 bytes
// of tailroom (the skb_shared_info) reserved. The packet length picks the test case; a failed
// adjust returns XDP_DROP, a successful one XDP_TX.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int adjust_tail_shrink(struct xdp_md *xdp)
{
  __u32 len = xdp->data_end - xdp->data;
  /* 54 bytes (pkt_v4): shrinking by 256 would leave less than an Ethernet header */
  int shrink = len == 54 ? 256 : 20;

  if (bpf_xdp_adjust_tail(xdp, -shrink))
    return XDP_DROP;
  return XDP_TX;
}

SEC("xdp")
int adjust_tail_grow(struct xdp_md *xdp)
{
  __u32 len = xdp->data_end - xdp->data;
  int grow;

  switch (len) {
  case 54: /* pkt_v4: more than the page holds */
    grow = 4096;
    break;
  case 74: /* pkt_v6 */
    grow = 40;
    break;
  case 64:
    grow = 128;
    break;
  case 128: /* up to the end of the page: 4096 - 256 - 320 = 3520 bytes */
    grow = 4096 - 256 - 320 - 128;
    break;
  default:
    return XDP_ABORTED;
  }
  if (bpf_xdp_adjust_tail(xdp, grow))
    return XDP_DROP;
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
