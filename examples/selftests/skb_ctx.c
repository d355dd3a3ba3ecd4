// Our own program for what the kernel selftest test_skb_ctx checks
// (tools/testing/selftests/bpf/progs/test_skb_ctx.c, prog_tests/skb_ctx.c): the __sk_buff
// fields a BPF_PROG_TEST_RUN ctx_in may set reach the program, and what the program writes to
// cb[], priority, tstamp and mark comes back in ctx_out. Returns 0 when every input field has
// the value prog_tests/skb_ctx.c gives it, else the 1-based number of the first wrong check.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int skb_ctx(struct __sk_buff *skb)
{
#pragma unroll
  for (int i = 0; i < 5; i++) {
    if (skb->cb[i] != (__u32)i + 1)
      return 1;
    skb->cb[i] += 1;
  }
  skb->priority += 1;
  skb->tstamp += 1;
  skb->mark += 1;

  if (skb->wire_len != 100)
    return 2;
  if (skb->gso_segs != 8)
    return 3;
  if (skb->gso_size != 10)
    return 4;
  if (skb->ingress_ifindex != 11)
    return 5;
  if (skb->ifindex != 1)
    return 6;
  if (skb->hwtstamp != 11)
    return 7;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
