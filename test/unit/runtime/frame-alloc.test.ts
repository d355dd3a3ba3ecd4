/**
 * The frame allocator (runtime/wasm/frame-alloc.ts, runtime/frame-alloc.ts) on a
 * single-threaded Vm: size classes and page runs, NULL over the maximum, at a cap and when the
 * region is exhausted (and recovery after frees), bad frees counted and harmless, a seeded
 * random sequence checked against a model, and the four kfuncs from BPF on both engines.
 */
import { describe, expect, it } from 'vitest';
import { CORO_HDR, CORO_HDR_SIZE, CORO_MAGIC } from '../../../src/abi.js';
import { assemble } from '../../../src/asm/assembler.js';
import { createProgram } from '../../../src/program.js';
import {
  FRAME_ALLOC_MAX,
  FRAME_SIZE_CLASSES,
  FRAME_SPAN_SIZE,
} from '../../../runtime/frame-alloc.js';
import type { Engine } from '../../../runtime/loaded-program.js';
import { Vm } from '../../../runtime/vm.js';
import { createPrng } from '../../helpers/prng.js';

/** The slot a request of `size` bytes takes. */
function slotSize(size: number): number {
  const c = FRAME_SIZE_CLASSES.find((s) => s >= size);
  if (c !== undefined) return c;
  return Math.ceil((size + 64) / FRAME_SPAN_SIZE) * FRAME_SPAN_SIZE - 64;
}

describe('frame allocator: size classes', () => {
  it('serves every size from 1 to 4096 B from its class, 8-aligned and zeroed', () => {
    const vm = Vm.create();
    const a = vm.allocator;
    expect(a.layout.heapEnd).toBe(0); // a Vm makes the region only when something allocates
    a.ensureRegion();
    expect(a.layout.heapEnd - a.layout.heapStart).toBe(8 << 20);
    const u8 = vm.u8();
    const got: number[] = [];
    for (let size = 1; size <= 4096; size += size < 200 ? 1 : 37) {
      const p = a.alloc(size, 1);
      expect(p % 16).toBe(0);
      expect(u8.subarray(p, p + size).every((b) => b === 0)).toBe(true);
      u8.fill(0xa5, p, p + size); // dirty it: the next user must get zeroes again
      expect([size, vm.allocator.liveObjects(1).find((o) => o.addr === p)?.size]).toEqual([
        size,
        slotSize(size),
      ]);
      got.push(p);
    }
    for (const p of got) expect(a.free(p)).toBe(true);
    // the same slots again come back zeroed
    for (let k = 0; k < 50; k++) {
      const p = a.alloc(100, 1);
      expect(
        vm
          .u8()
          .subarray(p, p + 100)
          .every((b) => b === 0),
      ).toBe(true);
    }
  });

  it('takes whole 64 KiB spans above 4 KiB, up to FRAME_ALLOC_MAX', () => {
    const vm = Vm.create();
    const a = vm.allocator;
    const cases = [4097, 65472, 65473, 200_000, FRAME_ALLOC_MAX];
    const ps = cases.map((s) => a.alloc(s, 2));
    for (const p of ps) expect(p % FRAME_SPAN_SIZE).toBe(64);
    expect(a.liveObjects().map((o) => o.size)).toEqual(cases.map(slotSize));
    expect(a.usage(2)).toEqual({
      objects: cases.length,
      bytes: cases.map(slotSize).reduce((x, y) => x + y),
    });
    ps.forEach((p) => expect(a.free(p)).toBe(true));
    expect(a.usage(2)).toEqual({ objects: 0, bytes: 0 });
    // a freed run is reused for a request of the same length
    expect(a.alloc(200_000, 2)).toBe(ps[3]);
  });

  it('returns 0 for size 0 and over the maximum, and counts the failures', () => {
    const a = Vm.create().allocator;
    expect(a.alloc(0)).toBe(0);
    expect(a.alloc(FRAME_ALLOC_MAX + 1)).toBe(0);
    expect(a.alloc(0xffffffff)).toBe(0);
    expect(a.stats()).toMatchObject({ liveObjects: 0, failedAllocs: 3 });
  });
});

describe('frame allocator: caps and exhaustion', () => {
  it('returns 0 at an owner cap (objects, then bytes) and serves again after a free', () => {
    const a = Vm.create().allocator;
    a.setCap(5, { objects: 3 });
    const ps = [a.alloc(64, 5), a.alloc(64, 5), a.alloc(64, 5)];
    expect(ps.every((p) => p !== 0)).toBe(true);
    expect(a.alloc(16, 5)).toBe(0);
    expect(a.alloc(16, 6)).not.toBe(0); // another owner is not capped
    expect(a.free(ps[0] as number)).toBe(true);
    expect(a.alloc(16, 5)).not.toBe(0);
    a.setCap(7, { bytes: 1000 });
    expect(a.alloc(1000, 7)).toBe(0); // its slot is 1024 bytes
    expect(a.alloc(768, 7)).not.toBe(0);
    expect(a.alloc(256, 7)).toBe(0); // 768 + 256 > 1000
    expect(a.alloc(190, 7)).not.toBe(0); // 768 + 192
    expect(a.usage(7)).toEqual({ objects: 2, bytes: 960 });
    expect(a.stats().failedAllocs).toBe(3);
  });

  it('returns 0 when the region is exhausted and recovers after frees', () => {
    const vm = Vm.create({ frameHeap: 4 * FRAME_SPAN_SIZE });
    const a = vm.allocator;
    const ps: number[] = [];
    for (let p = a.alloc(4096); p !== 0; p = a.alloc(4096)) ps.push(p);
    expect(ps.length).toBe(4 * 15); // 15 slots of 4 KiB per span
    expect(new Set(ps).size).toBe(ps.length);
    expect(a.alloc(5000)).toBe(0); // no span left for a run either
    expect(a.carvedBytes).toBe(4 * FRAME_SPAN_SIZE);
    for (const p of ps.splice(0, 10)) a.free(p);
    const again: number[] = [];
    for (let p = a.alloc(4000); p !== 0; p = a.alloc(4000)) again.push(p);
    expect(again.length).toBe(10);
    expect(a.stats()).toMatchObject({ liveObjects: 60, liveBytes: 60 * 4096 });
  });
});

describe('frame allocator: bad frees', () => {
  it('rejects foreign, interior and header pointers and counts double frees, never corrupting', () => {
    const vm = Vm.create();
    const a = vm.allocator;
    const p = a.alloc(64, 1);
    const q = a.alloc(64, 1);
    const big = a.alloc(10_000, 1);
    const bad = [0, 8, 0x10000, p + 8, p + 1, p - 64, p & ~0xffff, big + 64, big - 64, 0xfffffff0];
    for (const x of bad) expect([x, a.free(x)]).toEqual([x, false]);
    expect(a.free(q)).toBe(true);
    expect(a.free(q)).toBe(false);
    expect(a.free(big)).toBe(true);
    expect(a.free(big)).toBe(false);
    expect(a.stats()).toMatchObject({
      liveObjects: 1,
      rejectedFrees: bad.length,
      doubleFrees: 2,
    });
    // q was freed once: it is handed out once, and p stays live and distinct
    const r1 = a.alloc(64, 1);
    const r2 = a.alloc(64, 1);
    expect(r1).toBe(q);
    expect(r2).not.toBe(q);
    expect(r2).not.toBe(p);
    expect(a.liveObjects().map((o) => o.addr)).toEqual([p, q, r2].sort((x, y) => x - y));
  });

  it('ignores any random pointer given to free, the free kfuncs or the frame check', () => {
    const rng = createPrng(0xbad);
    const vm = Vm.create({ frameHeap: 1 << 20 });
    const a = vm.allocator;
    const live = [a.alloc(24), a.alloc(4000), a.alloc(70_000), a.alloc(300)];
    const before = a.liveObjects();
    const starts = new Set(live);
    const { heapStart, heapEnd } = a.layout;
    let bad = 0;
    for (let k = 0; k < 20_000; k++) {
      const base = rng.pick([0, heapStart, heapEnd, rng.pick(live), rng.next32()]);
      const x = (base + rng.int(200) - 100) >>> 0;
      if (starts.has(x) || starts.has(x + 32)) continue;
      bad++;
      expect(a.free(x)).toBe(false);
      expect(a.isCoroFrame(x)).toBe(false);
      const hi = BigInt(rng.next32()) << 32n;
      vm.rt.bpf_obj_drop_impl(BigInt(x) | (rng.bool(0.1) ? hi : 0n), 0n, 0n, 0n, 0n);
      vm.rt.bpf_coro_frame_free(BigInt(x) | (rng.bool(0.1) ? hi : 0n), 0n, 0n, 0n, 0n);
    }
    expect(bad).toBeGreaterThan(19_000);
    expect(a.liveObjects()).toEqual(before);
    // a free slot's start counts as a double free, anything else as rejected
    const st = a.stats();
    expect([st.liveObjects, st.rejectedFrees + st.doubleFrees]).toEqual([4, 3 * bad]);
    expect(st.doubleFrees).toBeLessThan(bad / 10);
  });

  it('never lets a random sequence hand out overlapping or doubly live objects (model check)', () => {
    const rng = createPrng(0xf4a11);
    const vm = Vm.create({ frameHeap: 2 << 20 });
    const a = vm.allocator;
    const live = new Map<number, { size: number; owner: number }>();
    const model = new Map<number, { objects: number; bytes: number }>();
    const account = (owner: number, d: number, bytes: number): void => {
      const u = model.get(owner) ?? { objects: 0, bytes: 0 };
      u.objects += d;
      u.bytes += d * bytes;
      if (u.objects === 0) model.delete(owner);
      else model.set(owner, u);
    };
    for (let op = 0; op < 6000; op++) {
      if (live.size === 0 || rng.bool(0.55)) {
        const size = rng.bool(0.03) ? 4097 + rng.int(150_000) : 1 + rng.int(4096);
        const owner = rng.int(4);
        const p = a.alloc(size, owner);
        if (p === 0) continue; // the region can run out: that is an answer, not an error
        expect(live.has(p)).toBe(false);
        live.set(p, { size: slotSize(size), owner });
        account(owner, 1, slotSize(size));
      } else {
        const addrs = [...live.keys()];
        const p = addrs[rng.int(addrs.length)] as number;
        const o = live.get(p) as { size: number; owner: number };
        expect(a.free(p)).toBe(true);
        live.delete(p);
        account(o.owner, -1, o.size);
      }
    }
    const sorted = [...live.entries()].sort((x, y) => x[0] - y[0]);
    for (let k = 1; k < sorted.length; k++) {
      const [prev, o] = sorted[k - 1] as [number, { size: number }];
      expect(prev + o.size).toBeLessThanOrEqual((sorted[k] as [number, unknown])[0]);
    }
    expect(a.liveObjects()).toEqual(sorted.map(([addr, o]) => ({ addr, ...o })));
    expect(a.stats().byOwner).toEqual(model);
    for (const p of live.keys()) a.free(p);
    expect(a.stats()).toMatchObject({
      liveObjects: 0,
      liveBytes: 0,
      byOwner: new Map(),
      rejectedFrees: 0,
      doubleFrees: 0,
    });
    expect(a.liveObjects()).toEqual([]);
  });
});

const names = (...list: [number, string][]) =>
  new Map(list.map(([idx, name]) => [idx, { name, weak: false }]));

function u64(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}

describe.each<Engine>(['jit', 'interp'])('frame allocator kfuncs from BPF (%s)', (engine) => {
  async function load(vm: Vm, text: string, kfuncs: [number, string][]) {
    const prog = createProgram(assemble(text));
    const jit = await vm.load(prog, { verify: false, kfuncs: names(...kfuncs) });
    return engine === 'jit' ? jit : jit.withEngine('interp');
  }

  it('bpf_coro_frame_alloc fills the header; bpf_coro_frame_free frees only live frames', async () => {
    const vm = Vm.create();
    const alloc = await load(vm, 'mov %r1, 100\nmov %r2, 0\ncall kfunc 0\nexit', [
      [2, 'bpf_coro_frame_alloc'],
    ]);
    const free = await load(vm, 'ldxdw %r1, [%r1]\ncall kfunc 0\nmov %r0, 7\nexit', [
      [1, 'bpf_coro_frame_free'],
    ]);
    // the run's entry charges the program: owner = its id + 1
    const owner = alloc.owner;
    expect(owner).toBe(1);
    const f1 = Number(alloc.run());
    const f2 = Number(alloc.run());
    const dv = vm.dataView();
    expect(f1 % 16).toBe(CORO_HDR_SIZE % 16);
    expect(dv.getUint32(f1 + CORO_HDR.magic, true)).toBe(CORO_MAGIC);
    expect(dv.getUint32(f1 + CORO_HDR.size, true)).toBe(100);
    expect(dv.getUint32(f1 + CORO_HDR.owner, true)).toBe(owner);
    expect(dv.getBigUint64(f1 + CORO_HDR.deadline, true)).toBe(0n);
    expect(dv.getUint32(f1 + CORO_HDR.flags, true)).toBe(0);
    expect(dv.getUint32(f1 + CORO_HDR.parent, true)).toBe(0);
    const seq1 = dv.getUint32(f1 + CORO_HDR.seq, true);
    expect(seq1).not.toBe(0);
    expect(dv.getUint32(f2 + CORO_HDR.seq, true)).toBe(seq1 + 1);
    expect(vm.allocator.usage(owner)).toEqual({ objects: 2, bytes: 2 * 192 }); // 32 + 100 bytes: class 192
    expect(vm.allocator.isCoroFrame(f1, 100)).toBe(true);
    expect(vm.allocator.isCoroFrame(f1, 101)).toBe(false);
    expect(vm.allocator.isCoroFrame(f1 - CORO_HDR_SIZE)).toBe(false);
    expect(vm.allocator.isCoroFrame(f1 + 8)).toBe(false);
    const plain = vm.allocator.alloc(64);
    expect(vm.allocator.isCoroFrame(plain + CORO_HDR_SIZE)).toBe(false);
    // a 16-byte object whose neighbour carries the magic where a header would have it
    const small = vm.allocator.alloc(16);
    const next = vm.allocator.alloc(16);
    expect(next).toBe(small + 16);
    vm.dataView().setUint32(small + CORO_HDR_SIZE + CORO_HDR.magic, CORO_MAGIC, true);
    expect(vm.allocator.isCoroFrame(small + CORO_HDR_SIZE)).toBe(false);
    free.run(u64(small + CORO_HDR_SIZE));
    expect(vm.allocator.free(small) && vm.allocator.free(next)).toBe(true);

    expect(free.run(u64(f1))).toBe(7n);
    expect(dv.getUint32(f1 + CORO_HDR.magic, true)).toBe(0);
    expect(vm.allocator.isCoroFrame(f1)).toBe(false);
    free.run(u64(f1)); // twice
    free.run(u64(plain + CORO_HDR_SIZE)); // not a frame: rejected, the object stays live
    free.run(u64(f2 + 1));
    expect(vm.allocator.stats()).toMatchObject({ liveObjects: 2, rejectedFrees: 4 });
    expect(vm.allocator.liveObjects().map((o) => o.addr)).toEqual(
      [f2 - CORO_HDR_SIZE, plain].sort((x, y) => x - y),
    );
    free.run(u64(f2));
    expect(vm.allocator.usage(owner)).toEqual({ objects: 0, bytes: 0 });
  });

  it('bpf_coro_frame_alloc returns NULL for size 0, too big, and at a cap', async () => {
    const vm = Vm.create();
    const prog = await load(vm, 'ldxdw %r1, [%r1]\nmov %r2, 0\ncall kfunc 0\nexit', [
      [2, 'bpf_coro_frame_alloc'],
    ]);
    expect(prog.run(u64(0))).toBe(0n);
    expect(prog.run(u64(FRAME_ALLOC_MAX))).toBe(0n);
    vm.allocator.setCap(prog.owner, { objects: 1 });
    expect(prog.run(u64(16))).not.toBe(0n);
    expect(prog.run(u64(16))).toBe(0n);
    expect(vm.allocator.stats()).toMatchObject({ liveObjects: 1, failedAllocs: 3 });
  });

  it('bpf_obj_new_impl gives zeroed objects and bpf_obj_drop_impl frees them, in a loop', async () => {
    const vm = Vm.create();
    // r7 = sum over 300 rounds of (obj_new(24) != 0) + first word; each object is dirtied then dropped
    const loop = await load(
      vm,
      `mov %r6, 300
       mov %r7, 0
       mov %r1, 24
       mov %r2, 0
       call kfunc 0
       jeq %r0, 0, +7
       ldxdw %r3, [%r0+16]
       add %r7, %r3
       add %r7, 1
       stdw [%r0+16], 99
       mov %r1, %r0
       mov %r2, 0
       call kfunc 0
       sub %r6, 1
       jne %r6, 0, -13
       mov %r0, %r7
       exit`,
      [
        [4, 'bpf_obj_new_impl'],
        [12, 'bpf_obj_drop_impl'],
      ],
    );
    expect(loop.run()).toBe(300n);
    expect(vm.allocator.stats()).toMatchObject({ liveObjects: 0, doubleFrees: 0 });
    expect(vm.allocator.carvedBytes).toBe(FRAME_SPAN_SIZE);
    const drop = await load(vm, 'ldxdw %r1, [%r1]\nmov %r2, 0\ncall kfunc 0\nexit', [
      [2, 'bpf_obj_drop_impl'],
    ]);
    const p = vm.allocator.alloc(40, 3);
    drop.run(u64(p + 4));
    drop.run(u64(0));
    expect(vm.allocator.usage(3)).toEqual({ objects: 1, bytes: 48 });
    drop.run(u64(p));
    drop.run(u64(p));
    expect(vm.allocator.stats()).toMatchObject({
      liveObjects: 0,
      rejectedFrees: 2,
      doubleFrees: 1,
    });
  });
});
