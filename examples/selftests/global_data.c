// Our own program for what the kernel selftest test_global_data checks
// (tools/testing/selftests/bpf/progs/test_global_data.c, prog_tests/global_data.c): loads from
// and stores to static variables in .bss, .data and .rodata (numbers, strings, structs, a
// function-local static const) are relocated to the right global-data maps. The program copies
// each variable into one of three result arrays, writing some variables between copies.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct foo {
  __u8 a;
  __u32 b;
  __u64 c;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 11);
  __type(key, __u32);
  __type(value, __u64);
} result_number SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 5);
  __type(key, __u32);
  __type(value, char[32]);
} result_string SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 5);
  __type(key, __u32);
  __type(value, struct foo);
} result_struct SEC(".maps");

static __u64 n_bss;                  /* .bss */
static __u64 n_data = 42;            /* .data */
static const __u64 n_ro = 24;        /* .rodata */
static __u64 n_bss2 = 0;             /* .bss */
static __u64 n_data2 = 0xffeeff;     /* .data */
static const __u64 n_ro2 = 0xabab;   /* .rodata */
static const __u64 n_ro3 = 0xab;     /* .rodata */

static const char s_ro[32] = "abcdefghijklmnopqrstuvwxyz";
static char s_data[32] = "abcdefghijklmnopqrstuvwxyz";
static char s_bss[32];

static const struct foo f_ro = { .a = 42, .b = 0xfefeefef, .c = 0x1111111111111111ULL };
static struct foo f_bss;
static const struct foo f_ro_zero;
static struct foo f_data = { .a = 41, .b = 0xeeeeefef, .c = 0x2111111111111111ULL };

#define SAVE(map, idx, ptr)                                                                    \
  do {                                                                                         \
    __u32 k = (idx);                                                                           \
    bpf_map_update_elem(&result_##map, &k, (ptr), BPF_ANY);                                    \
  } while (0)

SEC("tc")
int global_data(struct __sk_buff *skb)
{
  static const __u64 all_ones = ~0ULL;

  SAVE(number, 0, &n_bss);
  SAVE(number, 1, &n_data);
  SAVE(number, 2, &n_ro);
  SAVE(number, 3, &n_bss2);
  SAVE(number, 4, &n_data2);
  SAVE(number, 5, &n_ro2);
  n_data2 = 1234;
  SAVE(number, 6, &n_data2);
  SAVE(number, 7, &n_bss);
  SAVE(number, 8, &n_ro3);

  SAVE(string, 0, s_ro);
  SAVE(string, 1, s_data);
  SAVE(string, 2, s_bss);
  s_data[5] = 'x';
  SAVE(string, 3, s_data);
  __builtin_memcpy(&s_bss[2], "hello", sizeof("hello"));
  SAVE(string, 4, s_bss);

  SAVE(struct, 0, &f_ro);
  SAVE(struct, 1, &f_bss);
  SAVE(struct, 2, &f_ro_zero);
  SAVE(struct, 3, &f_data);

  SAVE(number, 9, &f_ro.c);
  SAVE(number, 10, &all_ones);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
