/**
 * bpf_timer_init / _set_callback / _start / _cancel on a struct bpf_timer in a map value, the
 * kernel's return values, callbacks run from the host event loop on the engine that set them,
 * and Vm.close(). Expiry goes through an injected scheduler, except in the last test.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BpfError } from '../../../../src/errors.js';
import type { TimerScheduler } from '../../../../runtime/helpers/timer.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH } from '../../../../runtime/maps/map-type.js';
import type { BpfMap } from '../../../../runtime/maps/map.js';
import { ENGINES, closeVms, r0, runAsm, type RunOptions, type TestEngine } from './harness.js';

afterEach(closeVms);

/** Value: struct bpf_timer (16), counter u64 (16), key seen u32 (24), map low u32 (28). */
const ARRAY = {
  name: 'timers',
  type: BPF_MAP_TYPE_ARRAY,
  keySize: 4,
  valueSize: 32,
  maxEntries: 2,
};
const HASH = { name: 'htimers', type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 32, maxEntries: 4 };

const INIT = (clock = 1, map = 'map_fd 1', timer = '%r6'): string =>
  `mov %r1, ${timer}\nlddw %r2, ${map}\nmov %r3, ${clock}\ncall 169`;
const SETCB = 'mov %r1, %r6\nlddw %r2, func cb\ncall 170';
const START = (ns: number | bigint = 1000, flags = 0): string =>
  `mov %r1, %r6\nlddw %r2, ${ns}\nmov %r3, ${flags}\ncall 171`;
const CANCEL = 'mov %r1, %r6\ncall 172';

/** cb(map, key, value): value.counter++, value.key = *key, value.map = map. */
const COUNT_CB = `
    ldxdw %r4, [%r3+16]
    add %r4, 1
    stxdw [%r3+16], %r4
    ldxw %r4, [%r2+0]
    stxw [%r3+24], %r4
    stxw [%r3+28], %r1
    mov %r0, 0`;

/**
 * Looks up element `key` of map 1 into r6, runs `steps` (each a helper call) and returns the low
 * byte of each result, first step in the highest byte.
 */
function timerAsm(steps: readonly string[], cb = COUNT_CB, key = 0): string {
  const body = steps.map((s) => `${s}\nand %r0, 0xff\nlsh %r9, 8\nor %r9, %r0`).join('\n');
  return `
    stw [%r10-4], ${key}
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jne %r0, 0, +1
    exit
    mov %r6, %r0
    mov %r9, 0
    ${body}
    mov %r0, %r9
    exit
  cb:
    ${cb}
    exit`;
}

/** The r0 of timerAsm for step results `results`. */
const bytes = (...results: number[]): string =>
  r0(results.reduce((acc, v) => (acc << 8n) | BigInt(v & 0xff), 0n));

const EINVAL = -22;
const EBUSY = -16;
const EDEADLK = -35;

/** A scheduler the test fires by hand. */
function manual(): {
  armed: { ns: bigint; live: boolean; fire: () => void }[];
  fireAll: () => void;
  scheduleTimer: TimerScheduler;
} {
  const armed: { ns: bigint; live: boolean; fire: () => void }[] = [];
  return {
    armed,
    scheduleTimer: (fire, ns) => {
      const e = { ns, live: true, fire };
      armed.push(e);
      return () => {
        e.live = false;
      };
    },
    fireAll: () => {
      for (const e of armed.splice(0)) {
        if (!e.live) continue;
        e.live = false;
        e.fire();
      }
    },
  };
}

const field = (m: BpfMap | undefined, key: number, off: number, size: 4 | 8): bigint => {
  const v = m?.lookup(new Uint8Array(new Uint32Array([key]).buffer));
  if (v === undefined) return -1n;
  const dv = new DataView(v.buffer, v.byteOffset);
  return size === 8 ? dv.getBigUint64(off, true) : BigInt(dv.getUint32(off, true));
};

async function timers(
  engine: TestEngine,
  steps: readonly string[],
  opts: RunOptions & { cb?: string; key?: number } = {},
): Promise<Awaited<ReturnType<typeof runAsm>> & ReturnType<typeof manual>> {
  const m = manual();
  const run = await runAsm(engine, timerAsm(steps, opts.cb, opts.key), {
    maps: [ARRAY],
    ...opts,
    vm: { scheduleTimer: m.scheduleTimer, ...opts.vm },
  });
  return { ...run, ...m };
}

describe.each(ENGINES)('on the %s engine', (engine) => {
  it('arms a timer whose callback gets (map, key, value) when it expires', async () => {
    const t = await timers(engine, [INIT(), SETCB, START(1000)]);
    expect(t.out).toBe(bytes(0, 0, 0));
    expect(t.vm.services.timers.pending).toBe(1);
    expect(t.armed.map((e) => e.ns)).toEqual([1000n]);
    t.fireAll();
    const m = t.maps[0];
    expect(field(m, 0, 16, 8)).toBe(1n);
    expect(field(m, 0, 24, 4)).toBe(0n);
    expect(field(m, 0, 28, 4)).toBe(BigInt(m?.addr ?? 0));
    expect(t.vm.services.timers.pending).toBe(0);
  });

  it('refuses a second init with -EBUSY and re-arms on start', async () => {
    const t = await timers(engine, [INIT(), SETCB, START(1000)]);
    expect(t.prog.run()).toBe(BigInt.asUintN(24, BigInt(EBUSY) << 16n));
    expect(t.armed.map((e) => e.live)).toEqual([false, true]);
    t.fireAll();
    expect(field(t.maps[0], 0, 16, 8)).toBe(1n);
  });

  it('cancel returns 1 for a pending timer, 0 otherwise, and forgets the callback', async () => {
    const t = await timers(engine, [INIT(), SETCB, START(), CANCEL, CANCEL, START()]);
    expect(t.out).toBe(bytes(0, 0, 0, 1, 0, EINVAL));
    expect(t.vm.services.timers.pending).toBe(0);
    t.fireAll();
    expect(field(t.maps[0], 0, 16, 8)).toBe(0n);
  });

  it.each([
    ['an unknown clock', [INIT(2)], [EINVAL]],
    ['a clock id past MAX_CLOCKS', [INIT(17)], [EINVAL]],
    ['CLOCK_REALTIME and CLOCK_BOOTTIME', [INIT(0), CANCEL], [0, 0]],
    ['set_callback before init', [SETCB], [EINVAL]],
    ['start before set_callback', [INIT(), START()], [0, EINVAL]],
    ['start with unknown flags', [INIT(), SETCB, START(1, 4)], [0, 0, EINVAL]],
    ['cancel before init', [CANCEL], [EINVAL]],
    ['a timer on the stack', [INIT(1, 'map_fd 1', '%r10\nadd %r1, -16')], [EINVAL]],
    ['a map that does not hold the timer', [INIT(1, 'map_fd 2')], [EINVAL]],
    ['a misaligned timer', [INIT(1, 'map_fd 1', '%r6\nadd %r1, 4')], [EINVAL]],
  ])('answers %s with the kernel errno', async (_what, steps, results) => {
    const t = await timers(engine, steps, { maps: [ARRAY, ARRAY] });
    expect(t.out).toBe(bytes(...results));
  });

  it('returns -EDEADLK when a callback cancels its own timer', async () => {
    const cb = 'mov %r6, %r3\nmov %r1, %r6\ncall 172\nstxdw [%r6+16], %r0\nmov %r0, 0';
    const t = await timers(engine, [INIT(), SETCB, START()], { cb });
    t.fireAll();
    expect(field(t.maps[0], 0, 16, 8)).toBe(BigInt.asUintN(64, BigInt(EDEADLK)));
  });

  it('lets a callback re-arm its own timer', async () => {
    const cb = `${COUNT_CB}\n    mov %r1, %r3\n    mov %r2, 500\n    mov %r3, 0\n    call 171`;
    const t = await timers(engine, [INIT(), SETCB, START()], { cb });
    for (let k = 0; k < 3; k++) t.fireAll();
    expect(field(t.maps[0], 0, 16, 8)).toBe(3n);
    expect(t.armed.map((e) => e.ns)).toEqual([500n]);
  });

  it('starts at an absolute time of the Vm clock with BPF_F_TIMER_ABS', async () => {
    const t = await timers(engine, [INIT(), SETCB, START(8000, 1), START(10, 1)], {
      vm: { clock: () => 5000n },
    });
    expect(t.out).toBe(bytes(0, 0, 0, 0));
    expect(t.armed.map((e) => [e.ns, e.live])).toEqual([
      [3000n, false],
      [0n, true],
    ]);
  });

  it('passes the element key of a hash map', async () => {
    const key = new Uint8Array(new Uint32Array([7]).buffer);
    const t = await timers(engine, [INIT(), SETCB, START()], {
      maps: [HASH],
      key: 7,
      before: (_vm, [m]) => m?.update(key, new Uint8Array(32)),
    });
    expect(t.out).toBe(bytes(0, 0, 0));
    t.fireAll();
    expect(field(t.maps[0], 7, 16, 8)).toBe(1n);
    expect(field(t.maps[0], 7, 24, 4)).toBe(7n);
  });

  it('drops a timer whose value was overwritten before it expires', async () => {
    const t = await timers(engine, [INIT(), SETCB, START()]);
    t.maps[0]?.update(new Uint8Array(4), new Uint8Array(32));
    t.fireAll();
    expect(field(t.maps[0], 0, 16, 8)).toBe(0n);
    expect(t.prog.run()).toBe(0n);
  });

  it('reports a failing callback to onCallbackError and keeps the Vm usable', async () => {
    const errors: BpfError[] = [];
    const cb = 'mov %r1, 0\nldxdw %r0, [%r1+0]\nmov %r0, 0';
    const t = await timers(engine, [INIT(), SETCB, START()], {
      cb,
      vm: { onCallbackError: (e) => errors.push(e) },
    });
    t.fireAll();
    expect(errors.map((e) => e.name)).toEqual(['ExecError']);
    expect(t.prog.run()).toBe(BigInt.asUintN(24, BigInt(EBUSY) << 16n));
  });

  it('disarms every timer on Vm.close()', async () => {
    const t = await timers(engine, [INIT(), SETCB, START()]);
    t.vm.close();
    expect(t.armed[0]?.live).toBe(false);
  });
});

describe('the default scheduler', () => {
  it.each(ENGINES)('runs the callback from setTimeout on the %s engine', async (engine) => {
    const run = await runAsm(engine, timerAsm([INIT(), SETCB, START(1_000_000)]), {
      maps: [ARRAY],
    });
    expect(run.out).toBe(bytes(0, 0, 0));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(field(run.maps[0], 0, 16, 8)).toBe(1n);
  });
});
