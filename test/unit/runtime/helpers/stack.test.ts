/**
 * bpf_get_stack (67) and bpf_get_task_stack (141) with the kernel's buffer semantics over host-supplied call chains
 * (VmOptions.stacks): bytes copied, rest zeroed, skip, the depth cap, -EINVAL for bad flags and
 * sizes, and the user stack only in task context (runtime/helpers/stack.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CTRL_CORO_DEPTH } from '../../../../src/abi.js';
import type { Vm } from '../../../../runtime/vm.js';
import { ENGINES, closeVms, r0, runAsm } from './harness.js';

afterEach(closeVms);

const KERNEL = [0x1111n, 0x2222n, 0x3333n];
const USER = [0xaaaan, 0xbbbbn];
const stacks = { kernel: () => KERNEL, user: () => USER };
const EINVAL = 22;
const EFAULT = 14;

/** bpf_get_stack(ctx = 0, buf = input, size, flags). */
const getStackAsm = (size: number, flags: number): string =>
  `mov %r2, %r1\nmov %r1, 0\nmov %r3, ${size}\nmov %r4, ${flags}\ncall 67\nexit`;

/** The input buffer's u64 words. */
const words = (b: Uint8Array, n: number): bigint[] => {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: n }, (_, k) => v.getBigUint64(8 * k, true));
};

/** Pretends the run is inside a runtime resume (task context). */
const inTask = (vm: Vm): void => vm.dataView().setUint32(vm.worker.ctrl + CTRL_CORO_DEPTH, 1, true);

describe.each(ENGINES)('bpf_get_stack on the %s engine', (engine) => {
  const input = (): Uint8Array => new Uint8Array(48).fill(0xee);

  it('copies the kernel stack and zeroes the rest of the buffer', async () => {
    const run = await runAsm(engine, getStackAsm(40, 0), { vm: { stacks }, input: input() });
    expect(run.out).toBe(r0(24));
    expect(words(run.prog.input, 6)).toEqual([...KERNEL, 0n, 0n, 0xeeeeeeeeeeeeeeeen]);
  });

  it('skips frames (flags & 0xff) and stops at the buffer size', async () => {
    const skip1 = await runAsm(engine, getStackAsm(8, 1), { vm: { stacks }, input: input() });
    expect(skip1.out).toBe(r0(8));
    expect(words(skip1.prog.input, 2)).toEqual([0x2222n, 0xeeeeeeeeeeeeeeeen]);
    const tooMany = await runAsm(engine, getStackAsm(16, 4), { vm: { stacks }, input: input() });
    expect(tooMany.out).toBe(r0(-EFAULT));
    expect(words(tooMany.prog.input, 3)).toEqual([0n, 0n, 0xeeeeeeeeeeeeeeeen]);
  });

  it('caps a call chain at 127 frames, skipped ones included', async () => {
    const deep = Array.from({ length: 200 }, (_, k) => BigInt(k + 1));
    const run = await runAsm(engine, getStackAsm(8, 127), {
      vm: { stacks: { kernel: () => deep, user: () => [] } },
      input: input(),
    });
    expect(run.out).toBe(r0(0)); // 127 frames, 127 skipped: none left, none copied
    expect(words(run.prog.input, 2)).toEqual([0n, 0xeeeeeeeeeeeeeeeen]);
    const ok = await runAsm(engine, getStackAsm(16, 126), {
      vm: { stacks: { kernel: () => deep, user: () => [] } },
      input: input(),
    });
    expect(ok.out).toBe(r0(8));
    expect(words(ok.prog.input, 2)).toEqual([127n, 0n]);
  });

  it('refuses unknown flags, build ids of the kernel stack and odd sizes with -EINVAL', async () => {
    for (const [size, flags] of [
      [16, 1 << 9],
      [32, 1 << 11],
      [12, 0],
    ] as const) {
      const run = await runAsm(engine, getStackAsm(size, flags), {
        vm: { stacks },
        input: input(),
      });
      expect([size, flags, run.out]).toEqual([size, flags, r0(-EINVAL)]);
      expect(run.prog.input[0]).toBe(0);
    }
  });

  it('gives the user stack only in task context: -EFAULT at event time', async () => {
    const atEvent = await runAsm(engine, getStackAsm(16, 0x100), {
      vm: { stacks },
      input: input(),
    });
    expect(atEvent.out).toBe(r0(-EFAULT));
    expect(words(atEvent.prog.input, 3)).toEqual([0n, 0n, 0xeeeeeeeeeeeeeeeen]);
    const inTaskRun = await runAsm(engine, getStackAsm(24, 0x100), {
      vm: { stacks },
      input: input(),
      before: inTask,
    });
    expect(inTaskRun.out).toBe(r0(16));
    expect(words(inTaskRun.prog.input, 3)).toEqual([...USER, 0n]);
  });

  it('writes build-id records holding the ip (BPF_STACK_BUILD_ID_IP) for user stacks', async () => {
    const run = await runAsm(engine, getStackAsm(32, 0x100 | 0x800), {
      vm: { stacks },
      input: new Uint8Array(40).fill(0xee),
      before: inTask,
    });
    expect(run.out).toBe(r0(32));
    const v = new DataView(run.prog.input.buffer, run.prog.input.byteOffset, 40);
    expect(v.getInt32(0, true)).toBe(2);
    expect(run.prog.input.slice(4, 24).every((b) => b === 0)).toBe(true);
    expect(v.getBigUint64(24, true)).toBe(0xaaaan);
    expect(v.getBigUint64(32, true)).toBe(0xeeeeeeeeeeeeeeeen);
  });

  it('has empty stacks by default', async () => {
    const run = await runAsm(engine, getStackAsm(16, 0), { input: input() });
    expect(run.out).toBe(r0(0));
    expect(words(run.prog.input, 2)).toEqual([0n, 0n]);
  });
});

/** bpf_get_task_stack(bpf_get_current_task_btf(), buf = input, size, flags). */
const getTaskStackAsm = (size: number, flags: number): string =>
  `mov %r6, %r1\ncall 158\nmov %r1, %r0\nmov %r2, %r6\nmov %r3, ${size}\nmov %r4, ${flags}\ncall 141\nexit`;

describe.each(ENGINES)('bpf_get_task_stack on the %s engine', (engine) => {
  const input = (): Uint8Array => new Uint8Array(48).fill(0xee);

  it("copies the current task's stacks as bpf_get_stack does, verified", async () => {
    const kernel = await runAsm(engine, getTaskStackAsm(32, 0), {
      vm: { stacks },
      input: input(),
      verify: true,
    });
    expect(kernel.out).toBe(r0(24));
    expect(words(kernel.prog.input, 5)).toEqual([...KERNEL, 0n, 0xeeeeeeeeeeeeeeeen]);
    const atEvent = await runAsm(engine, getTaskStackAsm(16, 0x100), {
      vm: { stacks },
      input: input(),
      verify: true,
    });
    expect(atEvent.out).toBe(r0(-EFAULT));
    const inTaskRun = await runAsm(engine, getTaskStackAsm(24, 0x100), {
      vm: { stacks },
      input: input(),
      before: inTask,
      verify: true,
    });
    expect(inTaskRun.out).toBe(r0(16));
    expect(words(inTaskRun.prog.input, 3)).toEqual([...USER, 0n]);
  });

  it('gives -EFAULT and a zeroed buffer for a pointer that is not the task (unverified)', async () => {
    const run = await runAsm(
      engine,
      `mov %r2, %r1\nmov %r1, 0x20000\nmov %r3, 16\nmov %r4, 0\ncall 141\nexit`,
      { vm: { stacks }, input: input() },
    );
    expect(run.out).toBe(r0(-EFAULT));
    expect(words(run.prog.input, 3)).toEqual([0n, 0n, 0xeeeeeeeeeeeeeeeen]);
  });

  it('is refused by the verifier with anything but a task_struct pointer (here the input)', async () => {
    const mem = await runAsm(
      engine,
      `mov %r2, %r10\nadd %r2, -16\nmov %r3, 16\nmov %r4, 0\ncall 141\nexit`,
      { vm: { stacks }, input: input(), verify: true },
    ).catch((e: Error) => e.message);
    expect(mem).toMatch(/R1 type=mem expected=ptr_task_struct/);
  });
});
