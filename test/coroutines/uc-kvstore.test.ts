/**
 * Use case (c) of the talk (examples/coro/uc_kvstore.cpp): a key-value store served by BPF in
 * which each request is a coroutine queued on the Vm's ready queue; the host scheduler
 * (`vm.coroutines.run()` / `drain(ready, { batch })`) serves them first come first served, or
 * by processor sharing (a yield every kv_quantum steps). The clock is a logical one (each read
 * is one tick later), so completion times and orders are exact.
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Vm } from '../../src/index.js';
import type { LoadedObject } from '../../runtime/object.js';
import { liveFrames } from '../helpers/coro-frames.js';

/** The -mcpu=v4 object and its -mcpu=v3 build (no store-immediates, no gotox). */
const BUILDS = [
  { name: 'v4', object: new URL('../../examples/coro/build/uc_kvstore.o', import.meta.url) },
  { name: 'v3', object: new URL('../../examples/coro/build/uc_kvstore.v3.o', import.meta.url) },
] as const;
const XDP_TX = 3n;
const OP = { get: 0, put: 1, scan: 2 } as const;

interface Request {
  readonly id: number;
  readonly op: keyof typeof OP;
  readonly key: number;
  readonly size: number;
  readonly value?: bigint;
}

/** `struct kv_request`. */
function encode(r: Request): Uint8Array {
  const b = new Uint8Array(24);
  const v = new DataView(b.buffer);
  v.setUint32(0, r.id, true);
  v.setUint32(4, OP[r.op], true);
  v.setUint32(8, r.key, true);
  v.setUint32(12, r.size, true);
  v.setBigUint64(16, r.value ?? 0n, true);
  return b;
}

/** `struct req_record`. */
interface ReqRecord {
  readonly arrival: bigint;
  readonly done: bigint;
  readonly result: bigint;
  readonly order: number;
  readonly yields: number;
}

/** `struct req_record` of request `id`. */
function record(obj: LoadedObject, id: number): ReqRecord {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, id, true);
  const v = new DataView(obj.map('kv_reqs').lookup(key)!.buffer);
  return {
    arrival: v.getBigUint64(0, true),
    done: v.getBigUint64(8, true),
    result: v.getBigUint64(16, true),
    order: v.getUint32(24, true),
    yields: v.getUint32(28, true),
  };
}

async function open(object: URL, mode: 'fcfs' | 'ps', quantum = 16) {
  let now = 0n;
  const vm = Vm.create({ clock: () => ++now, coroutines: { sweepIntervalMs: 0 } });
  const live = liveFrames(vm);
  const obj = await vm.loadObject(readFileSync(object), { verify: false });
  obj.globals.set('kv_mode', mode === 'fcfs' ? 0 : 1);
  obj.globals.set('kv_quantum', quantum);
  const serve = obj.program('kv_serve');
  const submit = (...reqs: Request[]): bigint[] => reqs.map((r) => serve.run(encode(r)));
  return { vm, obj, live, submit };
}

/** One long get (2048 entries) followed by three short ones (8 entries). */
const LONG_THEN_SHORT: Request[] = [
  { id: 10, op: 'get', key: 0, size: 2048 },
  { id: 11, op: 'get', key: 100, size: 8 },
  { id: 12, op: 'scan', key: 200, size: 8 },
  { id: 13, op: 'get', key: 300, size: 8 },
];

describe.each(BUILDS)('$name', ({ object }) => {
  describe('uc_kvstore: requests as coroutines', () => {
    for (const mode of ['fcfs', 'ps'] as const) {
      it(`${mode}: serves put, get and scan with the values written`, async () => {
        const { vm, obj, live, submit } = await open(object, mode);
        expect(submit({ id: 1, op: 'put', key: 4090, size: 64, value: 1000n })).toEqual([XDP_TX]);
        expect(record(obj, 1).order).toBe(0); // queued, not served yet
        expect(vm.coroutines.run()).toBeGreaterThan(0);
        submit(
          { id: 2, op: 'get', key: 4090, size: 64 },
          { id: 3, op: 'scan', key: 4000, size: 200 },
          { id: 4, op: 'get', key: 4095, size: 1 },
          { id: 5, op: 'scan', key: 50, size: 20 },
        );
        vm.coroutines.run();
        // the put wrapped around the store's end: keys 4090..4095, 0..57
        expect(record(obj, 1).result).toBe(64n);
        expect(record(obj, 2).result).toBe(64n * 1000n + (63n * 64n) / 2n);
        expect(record(obj, 3).result).toBe(64n); // 4000..4095 and 0..103 hold all 64 written
        expect(record(obj, 4).result).toBe(1005n);
        expect(record(obj, 5).result).toBe(8n); // 50..69 meets 50..57
        expect(live.size).toBe(0);
        expect(vm.coroutines.stats()).toMatchObject({ created: 5, completed: 5, live: 0 });
        await vm.close();
      });
    }

    it('fcfs: completes in arrival order, short requests wait behind the long one', async () => {
      const { vm, obj, submit } = await open(object, 'fcfs');
      submit(...LONG_THEN_SHORT);
      expect(vm.coroutines.run()).toBe(4);
      expect(LONG_THEN_SHORT.map((r) => record(obj, r.id).order)).toEqual([1, 2, 3, 4]);
      expect(LONG_THEN_SHORT.map((r) => record(obj, r.id).yields)).toEqual([0, 0, 0, 0]);
      // logical clock: arrivals at ticks 1..4, completions at 5..8
      expect(LONG_THEN_SHORT.map((r) => record(obj, r.id).done)).toEqual([5n, 6n, 7n, 8n]);
      expect(vm.coroutines.stats()).toMatchObject({ resumed: 4, live: 0 });
      await vm.close();
    });

    it('ps: short requests finish before the long one that arrived first', async () => {
      const { vm, obj, submit } = await open(object, 'ps', 16);
      submit(...LONG_THEN_SHORT);
      // one quantum of the long request, then it goes to the back of the queue
      expect(vm.coroutines.drain(vm.coroutines.ready, { batch: 1 })).toBe(1);
      expect(record(obj, 10)).toMatchObject({ order: 0, yields: 1 });
      expect(vm.coroutines.drain(vm.coroutines.ready, { batch: 3 })).toBe(3);
      expect([11, 12, 13].map((id) => record(obj, id).order)).toEqual([1, 2, 3]);
      vm.coroutines.run();
      expect(record(obj, 10)).toMatchObject({ order: 4, yields: 127, result: 0n });
      // 1 + 128 quanta of the long request, one for each short one
      expect(vm.coroutines.stats()).toMatchObject({ resumed: 131, completed: 4, live: 0 });
      await vm.close();
    });

    it('ps with a quantum larger than every request behaves as fcfs', async () => {
      const { vm, obj, submit } = await open(object, 'ps', 4096);
      submit(...LONG_THEN_SHORT);
      vm.coroutines.run();
      expect(LONG_THEN_SHORT.map((r) => record(obj, r.id).order)).toEqual([1, 2, 3, 4]);
      await vm.close();
    });
  });
});
