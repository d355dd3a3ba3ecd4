// Our own program for what the kernel selftest xdp_context_test_run checks
// (tools/testing/selftests/bpf/progs/test_xdp_context_test_run.c,
// prog_tests/xdp_context_test_run.c): a BPF_PROG_TEST_RUN xdp_md ctx_in whose `data` is the
// length of the metadata in front of the packet. The program returns the first u32 of the
// metadata as its verdict and gives the 4 bytes back with bpf_xdp_adjust_meta, so ctx_out
// shows data_meta == data; without 4 bytes of metadata it returns XDP_ABORTED.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_context(struct xdp_md *xdp)
{
  void *data = (void *)(long)xdp->data;
  __u32 *meta = (void *)(long)xdp->data_meta;
  __u32 verdict;

  if ((void *)(meta + 1) > data)
    return XDP_ABORTED;
  verdict = *meta;
  if (bpf_xdp_adjust_meta(xdp, sizeof(*meta)))
    return XDP_ABORTED;
  return verdict;
}

char LICENSE[] SEC("license") = "GPL";
