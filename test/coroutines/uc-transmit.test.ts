/**
 * Use case (b) of the talk (examples/coro/uc_transmit.cpp): an XDP program parks one coroutine
 * per packet in its class's queue; the host (`vm.coroutines.drain` per class, a weighted
 * policy) or a BPF worker program (`tx_worker`: bpf_map_pop_elem + bpf::resume_handle with a
 * batch and a CPU budget per class) resumes them, and they "transmit" (count per class).
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Vm, type VmOptions } from '../../src/index.js';
import type { BpfMap } from '../../runtime/maps/map.js';
import type { LoadedObject } from '../../runtime/object.js';
import { liveFrames, type LiveFrames } from '../helpers/coro-frames.js';

/** The -mcpu=v4 object and its -mcpu=v3 build (no store-immediates, no gotox). */
const BUILDS = [
  { name: 'v4', object: new URL('../../examples/coro/build/uc_transmit.o', import.meta.url) },
  { name: 'v3', object: new URL('../../examples/coro/build/uc_transmit.v3.o', import.meta.url) },
] as const;
const XDP_DROP = 1n;
const XDP_PASS = 2n;
const DSCP = { ef: 46, af41: 34, af42: 36, be: 0 } as const;

/** An Ethernet + IPv4 frame of `len` bytes with DSCP `dscp`. */
function packet(dscp: number, len: number): Uint8Array {
  const p = new Uint8Array(len);
  p.set([0x08, 0x00, 0x45, dscp << 2], 12);
  return p;
}

/** `struct class_stats`. */
interface ClassStats {
  readonly packets: bigint;
  readonly bytes: bigint;
  readonly dropped: bigint;
  readonly reordered: bigint;
  readonly lastSeq: bigint;
}

/** `struct class_stats` of class `cls`. */
function classStats(obj: LoadedObject, cls: number): ClassStats {
  const key = new Uint8Array(4);
  new DataView(key.buffer).setUint32(0, cls, true);
  const v = new DataView(obj.map('tx_stats').lookup(key)!.buffer);
  const f = (k: number): bigint => v.getBigUint64(8 * k, true);
  return { packets: f(0), bytes: f(1), dropped: f(2), reordered: f(3), lastSeq: f(4) };
}

const sent = (obj: LoadedObject): bigint[] => [0, 1, 2].map((c) => classStats(obj, c).packets);

async function open(
  object: URL,
  opts: VmOptions = {},
): Promise<{ vm: Vm; obj: LoadedObject; live: LiveFrames; queues: BpfMap[] }> {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 }, ...opts });
  const live = liveFrames(vm);
  // verified: classify and tx_worker (its three drain loops verify with precision tracking)
  const obj = await vm.loadObject(readFileSync(object));
  const queues = ['tx_q0', 'tx_q1', 'tx_q2'].map((n) => obj.map(n));
  return { vm, obj, live, queues };
}

/** 10 EF packets of 100 bytes, 12 AF4x of 200, 7 best effort of 300 and an ARP frame, interleaved. */
function traffic(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < 12; k++) {
    if (k < 10) out.push(packet(DSCP.ef, 100));
    out.push(packet(k % 2 === 0 ? DSCP.af41 : DSCP.af42, 200));
    if (k < 7) out.push(packet(DSCP.be, 300));
  }
  const arp = new Uint8Array(300);
  arp.set([0x08, 0x06], 12);
  out.push(arp); // not IPv4: best effort
  return out;
}

function classifyAll(obj: LoadedObject, pkts: readonly Uint8Array[]): bigint[] {
  const prog = obj.program('classify');
  return pkts.map((p) => prog.run(p));
}

describe.each(BUILDS)('$name', ({ object }) => {
  describe('uc_transmit: per-class transmit queues', () => {
    it('parks every packet in its class queue and returns at once', async () => {
      const { vm, obj, live, queues } = await open(object);
      expect(classifyAll(obj, traffic())).toEqual(Array<bigint>(30).fill(XDP_PASS));
      expect(
        queues.map((q) => vm.coroutines.undrained().queues.find((u) => u.name === q.name)),
      ).toEqual([
        { name: 'tx_q0', handles: 10 },
        { name: 'tx_q1', handles: 12 },
        { name: 'tx_q2', handles: 8 },
      ]);
      expect(sent(obj)).toEqual([0n, 0n, 0n]);
      expect(live.size).toBe(30);
      expect(vm.coroutines.stats()).toMatchObject({ created: 30, queued: 30, live: 30 });
      await vm.close();
    });

    it('host drain: a weighted round (4:2:1) then the rest; exact counts, in order', async () => {
      const { vm, obj, live, queues } = await open(object);
      classifyAll(obj, traffic());
      const weights = [4, 2, 1];
      const round = (): number =>
        queues.reduce((n, q, c) => n + vm.coroutines.drain(q, { batch: weights[c]! }), 0);
      expect(round()).toBe(7);
      expect(sent(obj)).toEqual([4n, 2n, 1n]);
      let rounds = 1;
      while (round() > 0) rounds++;
      // class 2 (8 handles at 1 a round) is the last to empty
      expect(rounds).toBe(8);
      expect(sent(obj)).toEqual([10n, 12n, 8n]);
      expect([0, 1, 2].map((c) => classStats(obj, c))).toEqual([
        { packets: 10n, bytes: 1000n, dropped: 0n, reordered: 0n, lastSeq: 26n },
        { packets: 12n, bytes: 2400n, dropped: 0n, reordered: 0n, lastSeq: 29n },
        { packets: 8n, bytes: 2400n, dropped: 0n, reordered: 0n, lastSeq: 30n },
      ]);
      expect(live.size).toBe(0);
      expect(vm.coroutines.stats()).toMatchObject({
        created: 30,
        completed: 30,
        destroyed: 0,
        live: 0,
        resumed: 30,
        queued: 30,
      });
      await vm.close();
    });

    it('host drain with a CPU budget stops after the first step of 16 once the budget is spent', async () => {
      let now = 0n;
      const { vm, obj, queues } = await open(object, { clock: () => (now += 1000n) });
      const prog = obj.program('classify');
      for (let k = 0; k < 40; k++) prog.run(packet(DSCP.be, 64));
      expect(vm.coroutines.drain(queues[2]!, { budgetNs: 500 })).toBe(16);
      expect(vm.coroutines.drain(queues[2]!, { budgetNs: 50_000 })).toBe(24);
      expect(sent(obj)).toEqual([0n, 0n, 40n]);
      expect(vm.coroutines.stats().live).toBe(0);
      await vm.close();
    });

    it('BPF worker: one run is one weighted round; runs until empty give exact counts', async () => {
      const { vm, obj, live } = await open(object);
      classifyAll(obj, traffic());
      const worker = obj.program('tx_worker');
      expect(worker.run(new Uint8Array(8))).toBe(7n);
      expect(sent(obj)).toEqual([4n, 2n, 1n]);
      const popped: bigint[] = [];
      for (let r = worker.run(new Uint8Array(8)); r > 0n; r = worker.run(new Uint8Array(8)))
        popped.push(r);
      // class 0 empties after 3 rounds, class 1 after 6, class 2 after 8
      expect(popped).toEqual([7n, 5n, 3n, 3n, 3n, 1n, 1n]);
      expect(sent(obj)).toEqual([10n, 12n, 8n]);
      expect([0, 1, 2].map((c) => classStats(obj, c).reordered)).toEqual([0n, 0n, 0n]);
      expect(obj.globals.readUint('worker_stale')).toBe(0n);
      expect(live.size).toBe(0);
      expect(vm.coroutines.stats()).toMatchObject({ created: 30, completed: 30, live: 0 });
      // resumed by BPF (callx), not by the runtime: nothing counted as a runtime resume
      expect(vm.coroutines.stats().resumed).toBe(0);
      await vm.close();
    });

    it('BPF worker: the per-class CPU budget cuts a turn short (deterministic clock)', async () => {
      let now = 0n;
      // every bpf_ktime_get_ns call advances the clock by 100 ns
      const { vm, obj } = await open(object, { clock: () => (now += 100n) });
      const prog = obj.program('classify');
      for (let k = 0; k < 20; k++) prog.run(packet(DSCP.ef, 64));
      // batch 16, budget 250 ns: the clock reads 100, 200, 300 ns after the start -> 3 handles
      obj.globals.set('tx_cfg', [
        { batch: 16, pad: 0, budget_ns: 250n },
        { batch: 0, pad: 0, budget_ns: 0n },
        { batch: 0, pad: 0, budget_ns: 0n },
      ]);
      const worker = obj.program('tx_worker');
      expect(worker.run(new Uint8Array(8))).toBe(3n);
      expect(sent(obj)).toEqual([3n, 0n, 0n]);
      obj.globals.set('tx_cfg', [
        { batch: 16, pad: 0, budget_ns: 0n },
        { batch: 0, pad: 0, budget_ns: 0n },
        { batch: 0, pad: 0, budget_ns: 0n },
      ]);
      expect(worker.run(new Uint8Array(8))).toBe(16n);
      expect(worker.run(new Uint8Array(8))).toBe(1n);
      expect(sent(obj)).toEqual([20n, 0n, 0n]);
      expect(vm.coroutines.stats().live).toBe(0);
      await vm.close();
    });

    it('skips a stale handle (its frame destroyed, the memory reused) on both drains', async () => {
      for (const drainer of ['host', 'bpf'] as const) {
        const { vm, obj, live, queues } = await open(object);
        const prog = obj.program('classify');
        prog.run(packet(DSCP.ef, 100));
        const q0 = queues[0]!;
        const stale = q0.pop()!;
        q0.push(stale);
        const frame = new DataView(stale.buffer).getUint32(0, true);
        expect(vm.coroutines.destroy(frame)).toBe(true); // also takes it out of the queue
        expect(live.size).toBe(0);
        prog.run(packet(DSCP.ef, 150));
        expect([...live]).toEqual([frame]); // a new frame at the same address, a new seq
        q0.push(stale); // a handle that outlived its frame
        if (drainer === 'host') expect(vm.coroutines.drain(q0)).toBe(2);
        else expect(obj.program('tx_worker').run(new Uint8Array(8))).toBe(2n);
        // only the new packet was transmitted, once
        expect(classStats(obj, 0)).toMatchObject({ packets: 1n, bytes: 150n });
        if (drainer === 'bpf') expect(obj.globals.readUint('worker_stale')).toBe(1n);
        expect(vm.coroutines.stats()).toMatchObject({
          created: 2,
          completed: 1,
          destroyed: 1,
          live: 0,
          badHandles: 1,
        });
        await vm.close();
      }
    });

    it('drops a packet when its class queue is full: the coroutine completes at once', async () => {
      const { vm, obj, queues } = await open(object);
      const prog = obj.program('classify');
      const filler = new Uint8Array(8);
      for (let k = 0; k < 4096; k++) queues[1]!.push(filler);
      expect(prog.run(packet(DSCP.af41, 100))).toBe(XDP_DROP);
      expect(classStats(obj, 1)).toMatchObject({ packets: 0n, dropped: 1n });
      expect(vm.coroutines.stats()).toMatchObject({ created: 1, live: 0 });
      await vm.close();
    });
  });
});
