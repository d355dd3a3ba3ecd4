/**
 * The JIT's inline fast paths of the allocator and coroutine kfuncs (jit/inline-kfunc.ts)
 * against the interpreter, which calls the runtime module: a seeded random sequence of
 * allocations (every size class, 0, large, too big), frees, detach and done (live, double,
 * interior, foreign, header, NULL, above 4 GiB) and caps, run on both engines in two Vms, must return the same r0
 * every time and leave the same objects, contents, accounts and counters.
 */
import { describe, expect, it } from 'vitest';
import { CORO_HDR_SIZE } from '../../../src/abi.js';
import { assemble } from '../../../src/asm/assembler.js';
import { createProgram } from '../../../src/program.js';
import type { Engine } from '../../../runtime/loaded-program.js';
import { TerminationError } from '../../../src/errors.js';
import { FRAME_SIZE_CLASSES } from '../../../runtime/frame-alloc.js';
import { Vm } from '../../../runtime/vm.js';
import { createPrng } from '../../helpers/prng.js';

const KFUNCS = [
  'bpf_obj_new_impl',
  'bpf_obj_drop_impl',
  'bpf_coro_frame_alloc',
  'bpf_coro_frame_free',
  'bpf_coro_detach',
  'bpf_coro_done',
] as const;

function u64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
}

/** A Vm with one program per kfunc (`ldxdw r1, [r1]; call kfunc; exit`) on `engine`. */
async function open(engine: Engine) {
  const vm = Vm.create();
  const progs = [];
  for (const name of KFUNCS) {
    const prog = createProgram(assemble('ldxdw %r1, [%r1]\nmov %r2, 0\ncall kfunc 0\nexit'));
    const p = await vm.load(prog, {
      verify: false,
      kfuncs: new Map([[2, { name, weak: false }]]),
    });
    progs.push(engine === 'jit' ? p : await p.withEngine('interp'));
  }
  return { vm, progs };
}

describe('inline allocator kfuncs (JIT) against the runtime module (interpreter)', () => {
  it('return the same values and leave the same state over a random sequence', async () => {
    const jit = await open('jit');
    const interp = await open('interp');
    const rng = createPrng(0x5eed_a110c);
    const live: bigint[] = [];
    const dead: bigint[] = [];
    const pick = (xs: bigint[]): bigint =>
      xs.length === 0 ? 0n : (xs[rng.int(xs.length)] as bigint);
    const size = (): bigint => {
      const r = rng.int(20);
      if (r === 0) return 0n;
      if (r === 1) return BigInt(4000 + rng.int(200)); // around the largest class
      if (r === 2) return BigInt(5000 + rng.int(70000)); // whole spans
      if (r === 3) return 1n << BigInt(20 + rng.int(13)); // too big
      return BigInt(1 + rng.int(r < 10 ? 64 : 1024));
    };
    for (let step = 0; step < 3000; step++) {
      const op = rng.int(6);
      let arg: bigint;
      if (op === 0 || op === 2) arg = size();
      else {
        const r = rng.int(10);
        const base = op >= 3 ? BigInt(CORO_HDR_SIZE) : 0n;
        if (r < 5 && live.length > 0) arg = pick(live);
        else if (r === 5) arg = pick(dead);
        else if (r === 6) arg = pick(live) + BigInt(8 * (1 + rng.int(4)));
        else if (r === 7) arg = pick(live) - base;
        else if (r === 8) arg = BigInt(rng.int(0x800000));
        else arg = (1n << 32n) + pick(live);
      }
      if (rng.int(200) === 0) {
        const cap = { objects: 1 + rng.int(40), bytes: 64 + rng.int(100000) };
        for (const v of [jit, interp]) v.vm.allocator.setCap(v.progs[op]!.owner, cap);
      }
      // a frame's resume token decides completed/destroyed when it is freed
      if (op === 3 && rng.int(2) === 0 && live.includes(arg)) {
        for (const v of [jit, interp]) v.vm.dataView().setBigUint64(Number(arg), 5n, true);
      }
      const a = jit.progs[op]!.run(u64(arg));
      const b = interp.progs[op]!.run(u64(arg));
      expect([step, op, arg, a]).toEqual([step, op, arg, b]);
      if ((op === 0 || op === 2) && a !== 0n) {
        live.push(a);
        // dirty it: a later allocation of the slot must come back zeroed
        const n = Number(arg > 64n ? 64n : arg);
        for (const v of [jit, interp]) v.vm.u8().fill(0xa5, Number(a), Number(a) + n);
      }
      if ((op === 1 || op === 3) && live.includes(arg)) {
        const obj = Number(arg) - (op === 3 ? CORO_HDR_SIZE : 0);
        if (!jit.vm.allocator.liveObjects().some((o) => o.addr === obj)) {
          live.splice(live.indexOf(arg), 1);
          dead.push(arg);
        }
      }
    }
    const state = (v: Awaited<ReturnType<typeof open>>) => {
      const objs = v.vm.allocator.liveObjects();
      return {
        stats: v.vm.allocator.stats(),
        objs,
        bytes: objs.map((o) => [...v.vm.u8().subarray(o.addr, o.addr + o.size)]),
        coro: v.vm.coroutines.stats(),
      };
    };
    expect(state(jit)).toEqual(state(interp));
    await jit.vm.close();
    await interp.vm.close();
  });
});

describe('inline allocation kfuncs under termination', () => {
  it.each(['bpf_obj_new_impl', 'bpf_coro_frame_alloc'])(
    '%s returns NULL once the run is terminated (the slot holds the fast path)',
    async (name) => {
      const vm = Vm.create();
      vm.registerKfunc({
        name: 'test_stop',
        fn: () => (vm.terminate(), 0n),
        sig: { name: 'test_stop', args: [], ret: { kind: 'scalar' } },
      });
      // r0 = 1 + (first allocation != 0) + (second allocation != 0), objects kept (not freed)
      const prog = createProgram(
        assemble(`mov %r1, 16
          mov %r2, 0
          call kfunc 0
          mov %r6, 1
          jeq %r0, 0, +1
          add %r6, 1
          call kfunc 1
          mov %r1, 16
          mov %r2, 0
          call kfunc 0
          jeq %r0, 0, +1
          add %r6, 1
          mov %r0, %r6
          exit`),
      );
      const p = await vm.load(prog, {
        verify: false,
        kfuncs: new Map([
          [2, { name, weak: false }],
          [6, { name: 'test_stop', weak: false }],
          [9, { name, weak: false }],
        ]),
      });
      // objects of the class in this thread's cache: the fast path could serve them
      const warm = [1, 2, 3].map(() => vm.allocator.alloc(name === 'bpf_obj_new_impl' ? 16 : 48));
      for (const o of warm) vm.allocator.free(o);
      expect(() => p.run()).toThrow(TerminationError);
      // the first allocation was served, the second (after the request) was not
      expect(vm.allocator.stats().liveObjects).toBe(1);
      await vm.close();
    },
  );
});

describe('inline frame kfuncs in verified programs (constant size class, live-frame frees)', () => {
  /** Allocates a frame of `size` bytes; frees it unless `keep`; r0 = 1 when it got one. */
  const program = (size: number, keep: boolean) =>
    createProgram(
      assemble(`
        mov %r6, %r1
        mov %r1, ${size}
        mov %r2, %r6
        call kfunc 0
        jeq %r0, 0, out
        mov %r7, %r0
        mov %r1, %r7
        ${keep ? 'mov %r2, 0' : 'call kfunc 1'}
        mov %r0, 1
        exit
      out:
        mov %r0, 0
        exit`),
      { type: 'perf_event' },
    );
  const kfuncs = (keep: boolean) =>
    new Map([
      [3, { name: 'bpf_coro_frame_alloc', weak: false }],
      ...(keep ? [] : [[7, { name: 'bpf_coro_frame_free', weak: false }] as const]),
    ]);

  it('serve every size from the class the runtime module picks, on both engines', async () => {
    const sizes = [16, 17, 32, 33, 48, 64, 65, 96, 100, 1000, 2048, 4064, 4065, 10000];
    const state = async (engine: Engine) => {
      const vm = Vm.create();
      const out: unknown[] = [];
      const run = async (size: number, keep: boolean) => {
        const loaded = await vm.load(program(size, keep), { kfuncs: kfuncs(keep) });
        expect(loaded.verified?.frameAllocSizes?.get(3)).toBe(size);
        if (!keep) expect(loaded.verified?.liveFrameFrees?.has(7)).toBe(true);
        const p = engine === 'jit' ? loaded : await loaded.withEngine('interp');
        out.push([size, keep, p.run(new Uint8Array(8))]);
      };
      // every class's cache gets a slot (the frees), then each size is served from a cache:
      // the fast path with the class worked out at compile time
      for (const size of sizes) await run(size, false);
      for (const size of sizes) await run(size, true);
      const r = {
        out,
        objs: vm.allocator.liveObjects().map((o) => o.size),
        stats: vm.allocator.stats(),
        coro: vm.coroutines.stats(),
      };
      await vm.close();
      return r;
    };
    const jit = await state('jit');
    expect(jit).toEqual(await state('interp'));
    expect(jit.out.every((o) => (o as unknown[])[2] === 1n)).toBe(true);
    // small frames: the smallest class that holds the header and the frame
    const slot = (n: number) => FRAME_SIZE_CLASSES.find((c) => c >= n + CORO_HDR_SIZE);
    expect(jit.objs.slice(0, 12)).toEqual(sizes.slice(0, 12).map(slot));
    expect(jit.objs).toHaveLength(sizes.length);
    expect(jit.coro).toMatchObject({ created: 2 * sizes.length, live: sizes.length });
  });
});
