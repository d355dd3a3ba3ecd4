/**
 * The five C++20 coroutine examples (test/fixtures/elf/coro, built from
 * ../shared/examples/coro with clang 22) run on the runtime: the frames they suspend are
 * resumed where the kfunc they called says (end of run, timer, queue), completed frames are
 * reaped, and cancelled or expired ones are destroyed through their destroy token, releasing
 * what they hold.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Vm, type VmOptions } from '../../src/index.js';
import type { LoadedObject } from '../../runtime/object.js';
import { liveFrames, type LiveFrames } from '../helpers/coro-frames.js';

/**
 * Two builds of the examples: the shared objects (test/fixtures/elf/coro, built against the
 * examples' own bpf_coro.h, whose Task::detach tells the runtime nothing) and ours
 * (examples/coro/build, built against include/bpf_coro.h: detach and co_await are kfuncs).
 */
const SHARED = (name: string): string => `../fixtures/elf/coro/${name}.g.o`;
const OURS = (name: string): string => `../../examples/coro/build/${name}.o`;
const fixture = (path: string): Uint8Array => readFileSync(new URL(path, import.meta.url));

/** A timer scheduler the test fires by hand. */
function manualTimers(): {
  schedule: NonNullable<VmOptions['scheduleTimer']>;
  fireAll: () => number;
  pending: () => number;
} {
  let timers: { fire: () => void; ns: bigint; live: boolean }[] = [];
  return {
    schedule: (fire, ns) => {
      const t = { fire, ns, live: true };
      timers.push(t);
      return () => {
        t.live = false;
      };
    },
    fireAll: () => {
      const due = timers.filter((t) => t.live);
      timers = [];
      for (const t of due) t.fire();
      return due.length;
    },
    pending: () => timers.filter((t) => t.live).length,
  };
}

/**
 * The objects the verifier accepts (test/verifier/objects.test.ts): they run verified, so the
 * engines also run the verifier's run-time checks. The others load with `verify: false`.
 */
const VERIFIED: ReadonlySet<string> = new Set([
  SHARED('coro_perf_event'),
  SHARED('coro_loop'),
  SHARED('coro_destroy'),
  OURS('coro_destroy'),
  '../../examples/coro/build/coro_destroy.v3.o',
  SHARED('coro_many_suspends'),
  '../fixtures/elf/coro/coro_many_suspends.v3.o',
  SHARED('coro_symmetric'),
  OURS('coro_perf_event'),
  OURS('coro_many_suspends'),
  '../../examples/coro/build/coro_many_suspends.v3.o',
  OURS('coro_symmetric'),
]);

async function open(
  path: string,
  opts: VmOptions = {},
): Promise<{ vm: Vm; obj: LoadedObject; live: LiveFrames }> {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 }, ...opts });
  const live = liveFrames(vm);
  const obj = await vm.loadObject(fixture(path), { verify: VERIFIED.has(path) });
  return { vm, obj, live };
}

interface Build {
  readonly name: string;
  /** The object of example `name`, its -mcpu=v3 build with `v3`. */
  readonly path: (name: string, v3?: boolean) => string;
  /** Its Task::detach and co_await tell the runtime (include/bpf_coro.h). */
  readonly ownsByKfunc: boolean;
}

const BUILDS: readonly Build[] = [
  {
    name: 'shared examples',
    path: (n, v3) => (v3 ? `../fixtures/elf/coro/${n}.v3.o` : SHARED(n)),
    ownsByKfunc: false,
  },
  {
    name: 'include/bpf_coro.h',
    path: (n, v3) => (v3 ? `../../examples/coro/build/${n}.v3.o` : OURS(n)),
    ownsByKfunc: true,
  },
];

describe.each(BUILDS)('$name', (build) => {
  describe('coro_perf_event: work, task_work_schedule, more work', () => {
    it('finishes the coroutine at the end of the run and frees its frame', async () => {
      let now = 1000n;
      const { vm, obj, live } = await open(build.path('coro_perf_event'), {
        clock: () => (now += 250n),
      });
      const prog = obj.program('on_perf_event');
      expect(prog.run(new Uint8Array(8))).toBe(0n);
      // the resumed half added dt (two clock reads apart) to counts[cpu 0]
      const counts = obj.map('counts');
      const key = new Uint8Array(4);
      const dt = new DataView(counts.lookup(key)!.buffer).getBigUint64(0, true);
      expect(dt).toBe(250n);
      expect(live.size).toBe(0);
      const s = vm.coroutines.stats();
      expect(s).toMatchObject({ created: 1, completed: 1, destroyed: 0, live: 0 });
      expect(s.deferred).toBe(1);
      expect(s.resumed).toBe(1);
      expect(s.reaped).toBe(1);
      // a second run adds to the same slot
      prog.run(new Uint8Array(8));
      expect(new DataView(counts.lookup(key)!.buffer).getBigUint64(0, true)).toBe(500n);
      expect(vm.coroutines.stats().live).toBe(0);
      await vm.close();
    });
  });

  describe('coro_loop: sleep and a nested task, 4 iterations', () => {
    it('runs every iteration on timers and the deferred ring, then frees both frames', async () => {
      const timers = manualTimers();
      const { vm, obj, live } = await open(build.path('coro_loop'), {
        scheduleTimer: timers.schedule,
      });
      expect(obj.program('on_tick').run(new Uint8Array(8))).toBe(0n);
      expect(obj.globals.readUint('total_iterations')).toBe(0n);
      // each timer resumes poll_loop, which starts sample(), deferred to the end of that resume
      for (let k = 1; k <= 4; k++) {
        expect(timers.fireAll()).toBe(1);
        expect(obj.globals.readUint('total_iterations')).toBe(BigInt(k));
      }
      expect(timers.pending()).toBe(0);
      if (build.ownsByKfunc) {
        // detached, poll_loop handed its done frame to the runtime at its final suspend
        expect(live.size).toBe(0);
        expect(vm.coroutines.stats()).toMatchObject({ created: 5, completed: 5, live: 0 });
        await vm.close();
        return;
      }
      // the four children were destroyed by their parent; poll_loop itself completed inside a
      // child's resume (continuation), so the runtime never saw it finish: with this example's
      // header (no bpf_coro_detach) it waits for the sweep
      expect(live.size).toBe(1);
      const [frame] = [...live];
      expect(vm.dataView().getBigUint64(frame!, true)).toBe(0n);
      expect(vm.coroutines.stats()).toMatchObject({ created: 5, completed: 4, sleeping: 0 });
      expect(vm.coroutines.sweep(0n)).toBe(0);
      expect(vm.coroutines.sweep(10n ** 12n)).toBe(1);
      expect(vm.coroutines.stats()).toMatchObject({ created: 5, completed: 5, live: 0 });
      await vm.close();
    });
  });

  describe('coro_many_suspends: 14 suspension points', () => {
    for (const v3 of [false, true]) {
      it(`${v3 ? 'v3 (compare tree)' : 'v4 (gotox jump table)'}: resumes through every index`, async () => {
        const { vm, obj, live } = await open(build.path('coro_many_suspends', v3));
        expect(obj.program('on_many').run(new Uint8Array(8))).toBe(0n);
        expect(obj.globals.readUint('progress')).toBe(105n);
        expect(live.size).toBe(0);
        expect(vm.coroutines.stats()).toMatchObject({ created: 1, completed: 1, resumed: 14 });
        await vm.close();
      });
    }
  });

  describe('coro_symmetric: symmetric transfer through .rodata function pointers', () => {
    it('completes parent and child; the leaked parent frame expires', async () => {
      let now = 0n;
      const { vm, obj, live } = await open(build.path('coro_symmetric'), {
        clock: () => now,
        coroutines: { sweepIntervalMs: 0, ttlNs: 1000 },
      });
      expect(obj.program('on_sym').run(new Uint8Array(8))).toBe(0n);
      // the child was reaped after the runtime resumed it; the parent (never detached) leaked
      expect(live.size).toBe(1);
      const parent = [...live][0]!;
      expect(vm.dataView().getBigUint64(parent, true)).toBe(0n); // done
      expect(vm.dataView().getInt32(parent + 0x10, true)).toBe(6); // child's 5, plus one
      expect(vm.coroutines.sweep()).toBe(0); // first sight: a deadline
      now = 999n;
      expect(vm.coroutines.sweep()).toBe(0);
      now = 1000n;
      expect(vm.coroutines.sweep()).toBe(1);
      expect(live.size).toBe(0);
      expect(vm.coroutines.stats()).toMatchObject({ created: 2, live: 0, expired: 1 });
      await vm.close();
    });
  });

  describe('coro_destroy: a frame holding a ring buffer reservation and a task reference', () => {
    const readyMode = { coroutines: { sweepIntervalMs: 0, defer: 'ready-queue' as const } };

    it('completes at the end of the run: the record is submitted, the reference released', async () => {
      const { vm, obj, live } = await open(build.path('coro_destroy'));
      expect(obj.program('on_sample').run(new Uint8Array(8))).toBe(1n);
      const records: Uint8Array[] = [];
      obj
        .map('events')
        .ringbuf()
        .consume((r) => records.push(r.slice()));
      expect(records).toHaveLength(1);
      const pidTgid = new DataView(records[0]!.buffer).getBigUint64(0, true);
      expect(pidTgid).toBe((BigInt(process.pid) << 32n) | BigInt(process.pid));
      expect(vm.taskRefs.held).toBe(0);
      expect(live.size).toBe(0);
      await vm.close();
    });

    it('destroyed by the host while suspended: discards the record, releases the task', async () => {
      const { vm, obj, live } = await open(build.path('coro_destroy'), readyMode);
      expect(obj.program('on_sample').run(new Uint8Array(8))).toBe(1n);
      expect(vm.taskRefs.held).toBe(1);
      const [frame] = [...live];
      expect(vm.coroutines.destroy(frame!)).toBe(true);
      expect(vm.taskRefs.held).toBe(0);
      expect(
        obj
          .map('events')
          .ringbuf()
          .consume(() => {}),
      ).toBe(0);
      expect(live.size).toBe(0);
      expect(vm.coroutines.stats()).toMatchObject({ created: 1, destroyed: 1, live: 0 });
      // the ready queue's handle is stale now: draining it resumes nothing
      expect(vm.coroutines.run()).toBe(0);
      await vm.close();
    });

    it('cancelled by the host and destroyed by BPF (on_cancel: callx frame+8)', async () => {
      const { vm, obj, live } = await open(build.path('coro_destroy'), readyMode);
      obj.program('on_sample').run(new Uint8Array(8));
      const [frame] = [...live];
      expect(vm.coroutines.cancel(frame!)).toBe(true);
      const onCancel = obj.program('on_cancel');
      expect(onCancel.run(new Uint8Array(8))).toBe(1n);
      expect(onCancel.run(new Uint8Array(8))).toBe(0n); // nothing left to cancel
      expect(vm.taskRefs.held).toBe(0);
      expect(live.size).toBe(0);
      expect(vm.coroutines.run()).toBe(0); // taken out of the ready queue
      await vm.close();
    });

    it('resumed later from the ready queue by the scheduler', async () => {
      const { vm, obj, live } = await open(build.path('coro_destroy'), readyMode);
      obj.program('on_sample').run(new Uint8Array(8));
      expect(vm.coroutines.run()).toBe(1);
      expect(
        obj
          .map('events')
          .ringbuf()
          .consume(() => {}),
      ).toBe(1);
      expect(vm.taskRefs.held).toBe(0);
      expect(live.size).toBe(0);
      await vm.close();
    });

    it('not resumed before its deadline: the sweep destroys it and what it holds', async () => {
      let now = 0n;
      const { vm, obj, live } = await open(build.path('coro_destroy'), {
        clock: () => now,
        coroutines: { ...readyMode.coroutines, ttlNs: 5000 },
      });
      obj.program('on_sample').run(new Uint8Array(8));
      expect(vm.coroutines.sweep()).toBe(0);
      now = 5000n;
      expect(vm.coroutines.sweep()).toBe(1);
      expect(vm.taskRefs.held).toBe(0);
      expect(
        obj
          .map('events')
          .ringbuf()
          .consume(() => {}),
      ).toBe(0);
      expect(live.size).toBe(0);
      expect(vm.coroutines.run()).toBe(0);
      await vm.close();
    });

    it('on_scoped: the frame is elided onto the stack and destroyed in the same run', async () => {
      const { vm, obj, live } = await open(build.path('coro_destroy'));
      expect(obj.program('on_scoped').run(new Uint8Array(8))).toBe(2n);
      expect(
        obj
          .map('events')
          .ringbuf()
          .consume(() => {}),
      ).toBe(0);
      expect(live.size).toBe(0);
      await vm.close();
    });
  });
});
