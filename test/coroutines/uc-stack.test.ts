/**
 * Use case (a) of the talk (examples/coro/uc_stack.cpp): the kernel half of a stack trace is
 * taken at event time, the user half at the deferred point a coroutine reaches after
 * `co_await bpf::task_work_schedule()`, and one ring buffer event carries both. The same logic
 * without a coroutine asks for the user stack at event time and gets -EFAULT.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CTRL_CORO_DEPTH } from '../../src/abi.js';
import { Vm, type VmOptions } from '../../src/index.js';
import type { LoadedObject } from '../../runtime/object.js';
import { liveFrames, type LiveFrames } from '../helpers/coro-frames.js';

/** The -mcpu=v4 object and its -mcpu=v3 build (no store-immediates, no gotox). */
const BUILDS = [
  { name: 'v4', object: new URL('../../examples/coro/build/uc_stack.o', import.meta.url) },
  { name: 'v3', object: new URL('../../examples/coro/build/uc_stack.v3.o', import.meta.url) },
] as const;
const EFAULT = 14n;
const FRAMES = 8;

const KERNEL = [0xffffffff81001000n, 0xffffffff81002000n, 0xffffffff81003000n];
const USER = [0x401000n, 0x402000n, 0x403000n, 0x404000n, 0x405000n];

/** One `struct stack_event`. */
interface StackEvent {
  readonly pidTgid: bigint;
  readonly kernelLen: bigint;
  readonly userLen: bigint;
  readonly kernel: bigint[];
  readonly user: bigint[];
}

function parseEvent(r: Uint8Array): StackEvent {
  const v = new DataView(r.buffer, r.byteOffset, r.byteLength);
  const ips = (off: number): bigint[] =>
    Array.from({ length: FRAMES }, (_, k) => v.getBigUint64(off + 8 * k, true));
  return {
    pidTgid: v.getBigUint64(0, true),
    kernelLen: v.getBigInt64(8, true),
    userLen: v.getBigInt64(16, true),
    kernel: ips(24),
    user: ips(24 + 8 * FRAMES),
  };
}

/** `ips` padded with zeroes to FRAMES entries. */
const padded = (ips: readonly bigint[]): bigint[] =>
  [...ips, ...Array<bigint>(FRAMES).fill(0n)].slice(0, FRAMES);

async function open(
  object: URL,
  opts: VmOptions,
): Promise<{ vm: Vm; obj: LoadedObject; live: LiveFrames }> {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 }, ...opts });
  const live = liveFrames(vm);
  // verified: the deferred half asks for the current task's stack (bpf_get_task_stack)
  const obj = await vm.loadObject(readFileSync(object));
  return { vm, obj, live };
}

function events(obj: LoadedObject): StackEvent[] {
  const out: StackEvent[] = [];
  obj
    .map('events')
    .ringbuf()
    .consume((r) => out.push(parseEvent(r)));
  return out;
}

describe.each(BUILDS)('$name', ({ object }) => {
  describe('uc_stack: a stack trace in two halves', () => {
    it('emits one event: the kernel stack of event time, the user stack of the deferred point', async () => {
      const asked: string[] = [];
      const at: { vm?: Vm } = {};
      const inTask = (): string =>
        at.vm!.dataView().getUint32(at.vm!.worker.ctrl + CTRL_CORO_DEPTH, true) === 0
          ? 'event'
          : 'task';
      const opened = await open(object, {
        task: { pid: 4321, tgid: 1234 },
        stacks: {
          kernel: () => {
            asked.push(`kernel@${inTask()}`);
            return KERNEL;
          },
          user: () => {
            asked.push(`user@${inTask()}`);
            return USER;
          },
        },
      });
      const { vm, obj, live } = opened;
      at.vm = vm;
      expect(obj.program('on_sample').run(new Uint8Array(8))).toBe(0n);
      expect(asked).toEqual(['kernel@event', 'user@task']);
      const got = events(obj);
      expect(got).toEqual([
        {
          pidTgid: (1234n << 32n) | 4321n,
          kernelLen: 24n,
          userLen: 40n,
          kernel: padded(KERNEL),
          user: padded(USER),
        },
      ]);
      expect(live.size).toBe(0);
      expect(vm.coroutines.stats()).toMatchObject({ created: 1, completed: 1, live: 0 });
      expect(obj.globals.readUint('dropped')).toBe(0n);
      // the depth counter is back to 0 after the run
      expect(vm.dataView().getUint32(vm.worker.ctrl + CTRL_CORO_DEPTH, true)).toBe(0);
      await vm.close();
    });

    it('the plain program asks for the user stack at event time and gets -EFAULT', async () => {
      const { vm, obj } = await open(object, {
        stacks: { kernel: () => KERNEL, user: () => USER },
      });
      expect(obj.program('on_sample_plain').run(new Uint8Array(8))).toBe(0n);
      const [e, ...rest] = events(obj);
      expect(rest).toEqual([]);
      expect(e).toMatchObject({ kernelLen: 24n, userLen: -EFAULT, kernel: padded(KERNEL) });
      expect(e!.user).toEqual(padded([]));
      await vm.close();
    });

    it('keeps a long stack to the buffer, eight frames', async () => {
      const deep = Array.from({ length: 20 }, (_, k) => 0x500000n + BigInt(k));
      const { vm, obj } = await open(object, { stacks: { kernel: () => deep, user: () => deep } });
      obj.program('on_sample').run(new Uint8Array(8));
      const [e] = events(obj);
      expect(e).toMatchObject({ kernelLen: 64n, userLen: 64n });
      expect(e!.kernel).toEqual(deep.slice(0, 8));
      expect(e!.user).toEqual(deep.slice(0, 8));
      await vm.close();
    });

    it('defaults to empty stacks: zero bytes, zeroed halves', async () => {
      const { vm, obj } = await open(object, {});
      obj.program('on_sample').run(new Uint8Array(8));
      expect(events(obj)).toMatchObject([{ kernelLen: 0n, userLen: 0n, user: padded([]) }]);
      await vm.close();
    });

    it('in ready-queue mode the user half is taken when the scheduler resumes it', async () => {
      const { vm, obj, live } = await open(object, {
        stacks: { kernel: () => KERNEL, user: () => USER },
        coroutines: { sweepIntervalMs: 0, defer: 'ready-queue' },
      });
      obj.program('on_sample').run(new Uint8Array(8));
      expect(events(obj)).toEqual([]);
      expect(live.size).toBe(1);
      expect(vm.coroutines.run()).toBe(1); // the resume; the runtime frees the done frame at once
      expect(events(obj)).toMatchObject([{ kernelLen: 24n, userLen: 40n, user: padded(USER) }]);
      expect(live.size).toBe(0);
      await vm.close();
    });
  });
});
