/**
 * examples/timer_tick: a bpf_timer in an array map value whose callback counts ticks in the
 * same value and re-arms itself until `max_ticks`. Needs the timer helpers (169-172): without
 * bpf_timer_set_callback (#170) in the Vm the tests skip and say why.
 */
import { describe, expect, it } from 'vitest';
import { Vm } from '../../runtime/vm.js';
import { u32 } from '../helpers/maps.js';
import { XDP_PASS } from '../helpers/packets.js';
import {
  ENGINES,
  exampleObject,
  globalImage,
  le,
  loadExample,
  type LoadedExample,
} from './example.js';

const BPF_FUNC_timer_set_callback = 170;
const EBUSY = 16;

function timersAvailable(): boolean {
  const vm = Vm.create();
  try {
    return vm.helpers.has(BPF_FUNC_timer_set_callback);
  } finally {
    vm.close();
  }
}

const hasTimers = timersAvailable();
if (!hasTimers)
  console.log('skip examples/timer_tick: this Vm has no bpf_timer_set_callback helper (#170) yet');

/** struct ticker_value: timer (16 bytes), ticks (u64), arms (u64). */
function tickerValue(ex: LoadedExample): { ticks: bigint; arms: bigint } {
  const v = ex.obj.map('ticker').lookup(u32(0)) as Uint8Array;
  return { ticks: le(v.subarray(16, 24)), arms: le(v.subarray(24, 32)) };
}

/** Waits until `done()` holds, polling the event loop every ms, for at most `ms`. */
async function waitFor(done: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe('examples/timer_tick', () => {
  for (const engine of ENGINES) {
    it.skipIf(!hasTimers)(
      `arms a timer whose callback ticks in the same map value until max_ticks (${engine})`,
      async () => {
        const ex = await loadExample(exampleObject('timer_tick'), engine);
        try {
          const arm = ex.obj.program('arm');
          expect(arm.run(new Uint8Array(64))).toBe(BigInt(XDP_PASS));
          expect(ex.obj.globals.readUint('init_ret')).toBe(0n);
          expect(ex.obj.globals.readUint('callback_ret')).toBe(0n);
          expect(ex.obj.globals.readUint('start_ret')).toBe(0n);
          // the callback runs from the event loop, not during the program's run
          expect(tickerValue(ex)).toEqual({ ticks: 0n, arms: 1n });
          await waitFor(() => tickerValue(ex).ticks >= 3n, 5000);
          expect(tickerValue(ex).ticks).toBe(3n);
          // max_ticks reached: the callback did not re-arm
          await new Promise((resolve) => setTimeout(resolve, 20));
          expect(tickerValue(ex).ticks).toBe(3n);

          // a second run finds the timer initialised (-EBUSY) and starts it again
          expect(arm.run(new Uint8Array(64))).toBe(BigInt(XDP_PASS));
          expect(BigInt.asIntN(64, ex.obj.globals.readUint('init_ret'))).toBe(BigInt(-EBUSY));
          expect(ex.obj.globals.readUint('callback_ret')).toBe(0n);
          expect(ex.obj.globals.readUint('start_ret')).toBe(0n);
          await waitFor(() => tickerValue(ex).ticks >= 4n, 5000);
          expect(tickerValue(ex)).toEqual({ ticks: 4n, arms: 2n });
        } finally {
          ex.vm.close();
        }
      },
    );

    it.skipIf(!hasTimers)(
      `takes max_ticks and the interval from .rodata set before load (${engine})`,
      async () => {
        const bytes = exampleObject('timer_tick');
        const image = globalImage(bytes, '.rodata', { interval_ns: 2_000_000n, max_ticks: 5n });
        const ex = await loadExample(bytes, engine, { globals: { '.rodata': image } });
        try {
          expect(ex.obj.globals.readUint('interval_ns')).toBe(2_000_000n);
          expect(ex.obj.globals.readUint('max_ticks')).toBe(5n);
          ex.obj.program('arm').run(new Uint8Array(64));
          await waitFor(() => tickerValue(ex).ticks >= 5n, 5000);
          await new Promise((resolve) => setTimeout(resolve, 20));
          expect(tickerValue(ex).ticks).toBe(5n);
        } finally {
          ex.vm.close();
        }
      },
    );
  }

  it.skipIf(!hasTimers)('disarms pending timers when the Vm closes', async () => {
    const ex = await loadExample(exampleObject('timer_tick'), 'jit');
    ex.obj.program('arm').run(new Uint8Array(64));
    ex.vm.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(tickerValue(ex).ticks).toBe(0n);
  });
});
