/**
 * Where a coroutine continues (examples/coro/coro_where.cpp): it parks itself in a queue map
 * and continues wherever the queue is drained: on the host thread, or on another worker thread
 * than the one that started it.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Vm } from '../../src/index.js';
import type { LoadedObject } from '../../runtime/object.js';

const OBJECT = readFileSync(new URL('../../examples/coro/build/coro_where.o', import.meta.url));

/** moves[start * 4 + resume] for every (start, resume) pair with a count. */
function moves(obj: LoadedObject): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const m = obj.map('moves');
  for (let k = 0; k < 16; k++) {
    const key = new Uint8Array(new Uint32Array([k]).buffer);
    const n = new DataView(m.lookup(key)!.buffer).getBigUint64(0, true);
    if (n > 0n) out.set(`${k >> 2}->${k & 3}`, n);
  }
  return out;
}

describe('coro_where', () => {
  it('continues on the host thread when the host drains its queue', async () => {
    const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 } });
    const obj = await vm.loadObject(OBJECT);
    const prog = obj.program('start_hop');
    for (let k = 0; k < 5; k++) expect(prog.run(new Uint8Array(64))).toBe(2n);
    expect(moves(obj).size).toBe(0);
    expect(vm.coroutines.stats().live).toBe(5);
    expect(vm.coroutines.drain(obj.map('work_q'), { batch: 3 })).toBe(3);
    expect(moves(obj)).toEqual(new Map([['0->0', 3n]]));
    expect(vm.coroutines.drain(obj.map('work_q'))).toBe(2);
    expect(moves(obj)).toEqual(new Map([['0->0', 5n]]));
    expect(vm.coroutines.stats()).toMatchObject({ created: 5, completed: 5, live: 0 });
    await vm.close();
  });

  it('continues on worker 1 what worker 0 started', async () => {
    const vm = Vm.create({ workers: 2, coroutines: { sweepIntervalMs: 0 } });
    try {
      const obj = await vm.loadObject(OBJECT);
      const prog = obj.program('start_hop');
      for (let k = 0; k < 8; k++) expect(await prog.runOn(0, new Uint8Array(64))).toBe(2n);
      expect(vm.coroutines.stats().live).toBe(8);
      expect(await vm.coroutines.drainOn(1, obj.map('work_q'))).toBe(8);
      expect(moves(obj)).toEqual(new Map([['0->1', 8n]]));
      expect(vm.coroutines.stats()).toMatchObject({ created: 8, completed: 8, live: 0 });
    } finally {
      await vm.close();
    }
  });

  it('drains on a worker with drain({ worker }), a batch and a CPU budget', async () => {
    const vm = Vm.create({ workers: 2, coroutines: { sweepIntervalMs: 0 } });
    try {
      const obj = await vm.loadObject(OBJECT);
      const prog = obj.program('start_hop');
      for (let k = 0; k < 40; k++) await prog.runOn(0, new Uint8Array(64));
      const q = obj.map('work_q');
      expect(await vm.coroutines.drain(q, { worker: 1, batch: 5 })).toBe(5);
      // a budget that is over at once: one step of 16 (bpf_coro_drain's batch) is popped
      expect(await vm.coroutines.drain(q, { worker: 1, budgetNs: 1 })).toBe(16);
      // a budget of a second: the rest, in steps
      expect(await vm.coroutines.drain(q, { worker: 1, budgetNs: 1e9 })).toBe(19);
      expect(moves(obj)).toEqual(new Map([['0->1', 40n]]));
      expect(vm.coroutines.stats()).toMatchObject({ created: 40, completed: 40, live: 0 });
      await expect(vm.coroutines.drain(q, { worker: 1, budgetNs: -1 })).rejects.toThrow(
        /budgetNs must be a non-negative integer/,
      );
    } finally {
      await vm.close();
    }
  });
});
