/**
 * bpf_loop and bpf_for_each_map_elem: callbacks into BPF on both engines (callBpf), their
 * return values and errors, stack and depth of callback frames, the shared interpreter budget
 * and the termination checkpoint.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CTRL_R0,
  CTRL_TERMINATE,
  CTRL_TERM_CHECKS,
  CTRL_TERM_DEADLINE,
} from '../../../../src/abi.js';
import type { HelperProto } from '../../../../runtime/helpers.js';
import {
  BPF_MAP_TYPE_ARRAY,
  BPF_MAP_TYPE_HASH,
  BPF_MAP_TYPE_PERCPU_ARRAY,
} from '../../../../runtime/maps/map-type.js';
import type { Vm } from '../../../../runtime/vm.js';
import { ENGINES, closeVms, loadAsm, r0, runAsm } from './harness.js';
import { assembleProgram } from '../../../../src/asm/assembler.js';
import { BPF_FUNC_loop } from '../../../../src/helper-protos.js';
import { instantiateFastPath } from '../../../../jit/stubs.js';
import { makeTestVm, outcome } from '../../../helpers/engines.js';
import { ringbufMap } from '../../../helpers/maps.js';

afterEach(closeVms);

const EINVAL = -22;
const E2BIG = -7;

/**
 * bpf_loop(nr, cb, &sum on the stack, flags); r0 = iterations << 32 | sum. `cb` adds its
 * index to the sum and returns 1 at index `stopAt`.
 */
function loopAsm(nr: string, stopAt = -1, flags = 0, cb = 'func cb'): string {
  return `
    stdw [%r10-8], 0
    lddw %r1, ${nr}
    lddw %r2, ${cb}
    mov %r3, %r10
    add %r3, -8
    mov %r4, ${flags}
    call 181
    ldxdw %r1, [%r10-8]
    lsh %r0, 32
    or %r0, %r1
    exit
  cb:
    ldxdw %r3, [%r2]
    add %r3, %r1
    stxdw [%r2], %r3
    mov %r0, 0
    jne %r1, ${stopAt}, +1
    mov %r0, 1
    exit`;
}

const packed = (iterations: number, sum: number): string =>
  r0((BigInt(iterations) << 32n) | BigInt(sum));

/** What loopAsm / forEachAsm return when the helper fails with `errno` (nothing summed). */
const failed = (errno: number): string => r0(BigInt.asUintN(64, BigInt(errno) << 32n));

/** A host helper (#250) that requests termination of the running program. */
function terminator(vm: () => Vm): HelperProto {
  return {
    id: 250,
    name: 'test_terminate',
    fn: () => {
      const v = vm();
      v.dataView().setUint32(v.worker.ctrl + CTRL_TERMINATE, 1, true);
      return 0n;
    },
  };
}

describe.each(ENGINES)('bpf_loop on the %s engine', (engine) => {
  it('calls the callback nr times with its index and ctx and returns nr', async () => {
    expect((await runAsm(engine, loopAsm('10'))).out).toBe(packed(10, 45));
  });

  it('stops after the call that returns 1 and counts it', async () => {
    expect((await runAsm(engine, loopAsm('10', 3))).out).toBe(packed(4, 6));
  });

  it('returns 0 without calling for nr 0, and reads nr as a u32', async () => {
    expect((await runAsm(engine, loopAsm('0'))).out).toBe(packed(0, 0));
    expect((await runAsm(engine, loopAsm('0x100000003'))).out).toBe(packed(3, 3));
  });

  it('refuses flags with -EINVAL and more than 1 << 23 loops with -E2BIG', async () => {
    expect((await runAsm(engine, loopAsm('2', -1, 1))).out).toBe(failed(EINVAL));
    expect((await runAsm(engine, loopAsm(String((1 << 23) + 1)))).out).toBe(failed(E2BIG));
  });

  it('refuses a callback that is not a function token with -EINVAL', async () => {
    expect((await runAsm(engine, loopAsm('3', -1, 0, '12345'))).out).toBe(failed(EINVAL));
  });

  it('runs nested loops, each callback one frame deeper', async () => {
    const asm = `
      stdw [%r10-8], 0
      mov %r1, 4
      lddw %r2, func outer
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      ldxdw %r0, [%r10-8]
      exit
    outer:
      mov %r3, %r2
      mov %r1, 8
      lddw %r2, func inner
      mov %r4, 0
      call 181
      mov %r0, 0
      exit
    inner:
      ldxdw %r3, [%r2]
      add %r3, 1
      stxdw [%r2], %r3
      mov %r0, 0
      exit`;
    expect((await runAsm(engine, asm)).out).toBe(r0(32));
  });

  it('gives the callback a frame of its own below the caller', async () => {
    const asm = `
      stdw [%r10-8], 7
      mov %r1, 1
      lddw %r2, func cb
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      ldxdw %r0, [%r10-8]
      exit
    cb:
      stdw [%r10-8], 100
      ldxdw %r0, [%r10-8]
      ldxdw %r3, [%r2]
      add %r3, %r0
      stxdw [%r2], %r3
      mov %r0, 0
      exit`;
    expect((await runAsm(engine, asm)).out).toBe(r0(107));
  });

  it('fails with call-depth when callbacks nest deeper than the stack', async () => {
    const asm = `
      mov %r1, 1
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
    cb:
      stdw [%r10-8], 0
      mov %r1, 1
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit`;
    expect((await runAsm(engine, asm)).out).toMatch(/^error call-depth at insn/);
  });

  it('reports a fault in a callback at the callback insn', async () => {
    const asm = `
      mov %r1, 2
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
    cb:
      mov %r1, 0
      ldxdw %r0, [%r1+0]
      exit`;
    expect((await runAsm(engine, asm)).out).toBe('error mem at insn 8');
  });

  it('stops before the next callback once termination is requested, and reports it', async () => {
    let vm: Vm | undefined;
    const asm = `
      stdw [%r10-8], 0
      mov %r1, 10
      lddw %r2, func cb
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      exit
    cb:
      jne %r1, 2, +1
      call 250
      mov %r0, 0
      exit`;
    const run = await runAsm(engine, asm, {
      vm: { helpers: [terminator(() => vm as Vm)] },
      before: (v) => {
        vm = v;
      },
    });
    // the run is reported as terminated; r0 (bpf_loop's count) is what the program returned
    expect(run.out).toBe('error TerminationError: terminated: request');
    expect(run.vm.dataView().getBigUint64(run.vm.worker.ctrl + CTRL_R0, true)).toBe(3n);
    expect(run.vm.dataView().getUint32(run.vm.worker.ctrl + CTRL_TERMINATE, true)).toBe(0);
  });
});

describe('bpf_loop inlined by the JIT (verified programs)', () => {
  /** Runs `asm` verified on both engines; the JIT's output must match the interpreter's. */
  async function both(asm: string): Promise<{ out: string; inlined: number }> {
    const jit = await runAsm('jit', asm, { verify: true });
    const interp = await runAsm('interp', asm, { verify: true });
    expect(jit.out).toBe(interp.out);
    return { out: jit.out, inlined: jit.prog.links.loopInlines?.size ?? 0 };
  }

  it('keeps the helper semantics: count, early stop, nr as a u32, -E2BIG', async () => {
    expect(await both(loopAsm('10'))).toEqual({ out: packed(10, 45), inlined: 1 });
    expect(await both(loopAsm('10', 3))).toEqual({ out: packed(4, 6), inlined: 1 });
    expect(await both(loopAsm('0'))).toEqual({ out: packed(0, 0), inlined: 1 });
    expect(await both(loopAsm('0x100000005'))).toEqual({ out: packed(5, 10), inlined: 1 });
    expect(await both(loopAsm(`${(1 << 23) + 1}`))).toEqual({ out: failed(E2BIG), inlined: 1 });
    expect(await both(loopAsm(`${1 << 23}`, 7))).toEqual({ out: packed(8, 28), inlined: 1 });
  });

  it('calls no helper: the loop works with the bpf_loop slot holding a trap', async () => {
    const { vm, prog } = await loadAsm('jit', loopAsm('10'), { verify: true });
    const trap = instantiateFastPath(
      [],
      [
        () => {
          throw new Error('bpf_loop helper called');
        },
      ],
    ).js[0] as WebAssembly.ExportValue;
    vm.table.set(prog.links.helperBase + BPF_FUNC_loop, trap);
    expect(outcome(() => prog.run())).toBe(packed(10, 45));
  });

  it('does not inline flags other than 0, nor a callback that differs between paths', async () => {
    expect(await both(loopAsm('10', -1, 1))).toEqual({ out: failed(EINVAL), inlined: 0 });
    const twoCallbacks = `
      stdw [%r10-8], 0
      ldxw %r6, [%r1+0]
      lddw %r2, func cb
      jeq %r6, 0, +2
      lddw %r2, func cb2
      mov %r1, 4
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      ldxdw %r0, [%r10-8]
      exit
    cb:
      ldxdw %r3, [%r2]
      add %r3, 1
      stxdw [%r2], %r3
      mov %r0, 0
      exit
    cb2:
      ldxdw %r3, [%r2]
      add %r3, 100
      stxdw [%r2], %r3
      mov %r0, 0
      exit`;
    for (const [byte, sum] of [
      [0, 4],
      [1, 400],
    ] as const) {
      const input = new Uint8Array([byte, 0, 0, 0]);
      const jit = await runAsm('jit', twoCallbacks, { verify: true, input });
      expect(jit.out).toBe(r0(sum));
      expect(jit.prog.links.loopInlines?.size ?? 0).toBe(0);
    }
  });

  it('runs nested inlined loops, each callback one frame deeper', async () => {
    const asm = `
      stdw [%r10-8], 0
      mov %r1, 3
      lddw %r2, func outer
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      ldxdw %r0, [%r10-8]
      exit
    outer:
      stdw [%r10-8], 0
      mov %r1, 4
      lddw %r2, func inner
      mov %r3, %r10
      add %r3, -8
      mov %r4, 0
      call 181
      mov %r0, 0
      exit
    inner:
      ldxdw %r3, [%r2]
      add %r3, 1
      stxdw [%r2], %r3
      mov %r0, 0
      exit`;
    // each outer callback counts its 4 inner calls in its own frame; the caller's stays 0
    expect(await both(asm)).toEqual({ out: r0(0), inlined: 2 });
  });

  it('stops at a request, runs down and releases what the program holds', async () => {
    // reserve a record, bpf_loop(10) whose callback asks for termination at index 2, discard
    const asm = `
      lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, out
      mov %r6, %r0
      mov %r1, 10
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      mov %r7, %r0
      mov %r1, %r6
      mov %r2, 0
      call 133
      mov %r0, %r7
      exit
    out:
      mov %r0, 0
      exit
    cb:
      jne %r1, 2, +1
      call kfunc 0
      mov %r0, 0
      exit`;
    for (const engine of ENGINES) {
      const vm = makeTestVm();
      const ring = ringbufMap(vm);
      vm.registerKfunc({ name: 'test_stop', fn: () => (vm.terminate(), 0n) });
      const prog = assembleProgram(asm.replace('map_fd 1', `map_fd ${ring.id}`), { type: 'mem' });
      const kfuncs = new Map([
        [
          prog.insns.findIndex((i) => i.code === 0x85 && i.src === 2),
          { name: 'test_stop', weak: false },
        ],
      ]);
      const loaded = await vm.load(prog, { engine, kfuncs });
      expect(loaded.links.loopInlines?.size).toBe(1);
      expect(outcome(() => loaded.run())).toBe('error TerminationError: terminated: request');
      // bpf_loop returned the 3 calls made; the record was discarded on the way out
      expect(vm.dataView().getBigUint64(vm.worker.ctrl + CTRL_R0, true)).toBe(3n);
      expect(vm.resources()).toEqual({
        live_objects: 0,
        live_bytes: 0,
        reservations: 0,
        locks_held: 0,
      });
      expect(vm.termination.engaged).toBe(false);
      expect(outcome(() => loaded.run())).toBe('error TerminationError: terminated: request');
      await vm.close();
    }
  });

  it('polls the checkpoint every 64 calls only while a deadline is armed', async () => {
    let now = 0n;
    const vm = makeTestVm({ clock: () => (now += 1_000n) });
    // a callback that calls nothing: only the inlined loop can notice the deadline
    const prog = await vm.load(assembleProgram(loopAsm(`${1 << 23}`), { type: 'mem' }), {
      engine: 'jit',
    });
    expect(prog.links.loopInlines?.size).toBe(1);
    const checks = (): number => vm.dataView().getUint32(vm.worker.ctrl + CTRL_TERM_CHECKS, true);
    expect(outcome(() => prog.run())).toBe(packed(1 << 23, ((1 << 23) * ((1 << 23) - 1)) / 2));
    expect(checks()).toBe(0);
    // 1 µs per clock read: a 10 µs deadline passes at the 10th checkpoint, after 640 calls
    expect(outcome(() => prog.run(undefined, { deadlineNs: 10_000 }))).toBe(
      'error TerminationError: terminated: timeout',
    );
    expect(checks()).toBe(10);
    expect(vm.dataView().getBigUint64(vm.worker.ctrl + CTRL_TERM_DEADLINE, true)).toBe(0n);
    await vm.close();
  });
});

describe('bpf_loop budgets', () => {
  it('shares the interpreter insn budget with the callbacks; the JIT has none', async () => {
    const asm = loopAsm('600000');
    expect((await runAsm('interp', asm)).out).toMatch(/^error insn-budget/);
    expect((await runAsm('jit', asm)).out).toBe(packed(600000, (600000 * 599999) / 2));
  });
});

/** for_each_map_elem(map 1, cb, &acc, flags); r0 = visited << 32 | acc. */
function forEachAsm(cbBody: string, flags = 0, map = 'map_fd 1', cb = 'func cb'): string {
  return `
    stdw [%r10-8], 0
    lddw %r1, ${map}
    lddw %r2, ${cb}
    mov %r3, %r10
    add %r3, -8
    mov %r4, ${flags}
    call 164
    ldxdw %r1, [%r10-8]
    lsh %r0, 32
    or %r0, %r1
    exit
  cb:
    ${cbBody}
    exit`;
}

/** cb(map, key, value, ctx): *ctx += *value * 256 + *key; 0. */
const SUM_CB = `
    ldxdw %r6, [%r3]
    lsh %r6, 8
    ldxw %r7, [%r2]
    add %r6, %r7
    ldxdw %r7, [%r4]
    add %r7, %r6
    stxdw [%r4], %r7
    mov %r0, 0`;

const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const u64 = (n: bigint): Uint8Array => new Uint8Array(new BigUint64Array([n]).buffer);
const ARRAY = { name: 'arr', type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize: 8, maxEntries: 4 };
const HASH = { name: 'h', type: BPF_MAP_TYPE_HASH, keySize: 4, valueSize: 8, maxEntries: 8 };

describe.each(ENGINES)('bpf_for_each_map_elem on the %s engine', (engine) => {
  it('visits every array element with its index as the key', async () => {
    const run = await runAsm(engine, forEachAsm(SUM_CB), {
      maps: [ARRAY],
      before: (_vm, [m]) => [1n, 2n, 3n, 4n].forEach((v, k) => m?.update(u32(k), u64(v))),
    });
    // sum of value*256 + key = (1+2+3+4)*256 + (0+1+2+3)
    expect(run.out).toBe(packed(4, 10 * 256 + 6));
  });

  it('stops after the element whose callback returns 1, counting it', async () => {
    const cb = `${SUM_CB}\n    jne %r7, 0, +1\n    mov %r0, 0\n    ldxw %r7, [%r2]\n    jne %r7, 1, +1\n    mov %r0, 1`;
    const run = await runAsm(engine, forEachAsm(cb), { maps: [ARRAY] });
    expect(run.out).toBe(packed(2, 1));
  });

  it('visits the present elements of a hash map, the key inside the element', async () => {
    const run = await runAsm(engine, forEachAsm(SUM_CB), {
      maps: [HASH],
      before: (_vm, [m]) => {
        m?.update(u32(5), u64(1n));
        m?.update(u32(9), u64(2n));
        m?.update(u32(11), u64(3n));
      },
    });
    expect(run.out).toBe(packed(3, 6 * 256 + 25));
  });

  it('lets the callback write values and delete elements', async () => {
    const cb = `
    ldxdw %r6, [%r3]
    add %r6, 100
    stxdw [%r3], %r6
    lddw %r1, map_fd 1
    stw [%r10-4], 9
    mov %r2, %r10
    add %r2, -4
    call 3
    mov %r0, 0`;
    const run = await runAsm(engine, forEachAsm(cb), {
      maps: [HASH],
      before: (_vm, [m]) => {
        m?.update(u32(5), u64(1n));
        m?.update(u32(9), u64(2n));
      },
    });
    const m = run.maps[0];
    const left = [...(m?.entries() ?? [])].map(([k, v]) => [k[0], v[0]]);
    // whichever came first was visited and bumped; key 9 is gone either way
    expect(left).toEqual([[5, 101]]);
    expect(['r0=100000000', 'r0=200000000']).toContain(run.out);
  });

  it("gives a percpu map's callback this worker's value", async () => {
    const spec = { ...ARRAY, type: BPF_MAP_TYPE_PERCPU_ARRAY, maxEntries: 2 };
    const run = await runAsm(engine, forEachAsm(SUM_CB), {
      maps: [spec],
      before: (_vm, [m]) => m?.update(u32(1), u64(3n)),
    });
    expect(run.out).toBe(packed(2, 3 * 256 + 1));
  });

  it('refuses flags, a non-map and a bad callback with -EINVAL', async () => {
    const einval = failed(EINVAL);
    expect((await runAsm(engine, forEachAsm(SUM_CB, 1), { maps: [ARRAY] })).out).toBe(einval);
    expect((await runAsm(engine, forEachAsm(SUM_CB, 0, '0x20000'), { maps: [ARRAY] })).out).toBe(
      einval,
    );
    expect(
      (await runAsm(engine, forEachAsm(SUM_CB, 0, 'map_fd 1', '7'), { maps: [ARRAY] })).out,
    ).toBe(einval);
  });
});
