// (d) A coroutine with 14 suspension points. At -mcpu=v4 -O2, clang-22
// lowers the resume/destroy dispatch "switch (index)" to a jump table:
// a .jumptables section + symbol BPF.JT.<fn>.<n>, loaded with ld_imm64
// (R_BPF_64_64) and dispatched with gotox (opcode 0x0d, register in dst_reg).
// At -mcpu=v3 (or with -mllvm -disable-gotox) it is a compare tree instead.
// Linux 6.18 rejects 0x0d ("unknown opcode 0d").
#include <bpf_coro.h>

u64 progress;  // .bss

BPF_CORO_FN static bpf::Task<int> many_steps(void *ctx) {
  progress += 1; co_await bpf::task_work_schedule();
  progress += 2; co_await bpf::task_work_schedule();
  progress += 3; co_await bpf::task_work_schedule();
  progress += 4; co_await bpf::task_work_schedule();
  progress += 5; co_await bpf::task_work_schedule();
  progress += 6; co_await bpf::task_work_schedule();
  progress += 7; co_await bpf::task_work_schedule();
  progress += 8; co_await bpf::task_work_schedule();
  progress += 9; co_await bpf::task_work_schedule();
  progress += 10; co_await bpf::task_work_schedule();
  progress += 11; co_await bpf::task_work_schedule();
  progress += 12; co_await bpf::task_work_schedule();
  progress += 13; co_await bpf::task_work_schedule();
  progress += 14; co_await bpf::task_work_schedule();
  co_return 1;
}

extern "C" SEC("perf_event") int on_many(void *ctx) {
  auto t = many_steps(ctx);
  if (t.done()) return t.result();
  t.detach();
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
