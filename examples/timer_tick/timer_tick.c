// timer_tick: a bpf_timer in a map value whose callback counts ticks in the same value.
//
// `arm` (XDP) looks up element 0 of the array `ticker`, initialises the timer on
// CLOCK_MONOTONIC (only the first run succeeds; later runs get -EBUSY, which is fine), sets
// the callback and starts the timer `interval_ns` from now. The callback `tick` increments
// `ticks` in the same map value and re-arms the timer until `max_ticks` (.rodata, set before
// load) is reached. The return codes of the last run's three helper calls are kept in .bss
// for the host to check.
//
// Build: make (clang --target=bpf -mcpu=v4 -O2 -g; see Makefile).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define CLOCK_MONOTONIC 1

struct ticker_value {
  struct bpf_timer timer; /* 16 bytes at offset 0 */
  __u64 ticks;            /* offset 16: callback runs */
  __u64 arms;             /* offset 24: runs of `arm` */
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct ticker_value);
} ticker SEC(".maps");

const volatile __u64 interval_ns = 1000000; /* .rodata: 1 ms */
const volatile __u64 max_ticks = 3;         /* .rodata */

long init_ret = 0;     /* .bss */
long callback_ret = 0; /* .bss */
long start_ret = 0;    /* .bss */

static int tick(void *map, __u32 *key, struct ticker_value *val)
{
  __u64 n = __sync_add_and_fetch(&val->ticks, 1);

  if (n < max_ticks)
    bpf_timer_start(&val->timer, interval_ns, 0);
  return 0;
}

SEC("xdp")
int arm(struct xdp_md *ctx)
{
  __u32 key = 0;
  struct ticker_value *val = bpf_map_lookup_elem(&ticker, &key);

  if (!val)
    return XDP_ABORTED;
  __sync_fetch_and_add(&val->arms, 1);
  init_ret = bpf_timer_init(&val->timer, &ticker, CLOCK_MONOTONIC);
  callback_ret = bpf_timer_set_callback(&val->timer, tick);
  start_ret = bpf_timer_start(&val->timer, interval_ns, 0);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
