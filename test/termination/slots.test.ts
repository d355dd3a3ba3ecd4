/**
 * What a termination swaps and for how long: only the terminated program's block (another
 * program's helpers stay as they were), the kfunc slots it calls only for the rest of its run,
 * and everything is restored when the run exits (invocation-kill) so that the next run is
 * normal; a program killed for good ('program' mode) refuses later runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { assemble, assembleProgram } from '../../src/asm/assembler.js';
import { CTRL_R0, CTRL_TERMINATE, TERM_REASON_REQUEST } from '../../src/abi.js';
import { TerminationError } from '../../src/errors.js';
import {
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_ringbuf_discard,
  BPF_FUNC_ringbuf_reserve,
} from '../../src/helper-protos.js';
import { createProgram } from '../../src/program.js';
import { BPF_MAP_TYPE_ARRAY } from '../../runtime/maps/map-type.js';
import type { LoadedProgram } from '../../runtime/loaded-program.js';
import { Vm } from '../../runtime/vm.js';
import { withMapFds } from './programs.js';
import { ringbufMap } from '../helpers/maps.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

/**
 * Holds a ring-buffer record across kfunc#0 (test_stop), between two lookups of key 0 of map 1;
 * r0 = 2 if the first lookup found the value, | 1 if the second did.
 */
const LOOKUPS = `
    lddw %r1, map_fd 2
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, out
    mov %r8, %r0
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r6, %r0
    call kfunc 0
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r7, 0
    jeq %r0, 0, +1
    mov %r7, 1
    mov %r9, %r7
    jeq %r6, 0, +1
    or %r9, 2
    mov %r1, %r8
    mov %r2, 0
    call 133
    mov %r0, %r9
    exit
  out:
    mov %r0, 0
    exit`;

/** The same without the record: it holds nothing, so a terminated run is abandoned at once. */
const BARE = `
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r6, %r0
    call kfunc 0
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    mov %r0, 5
    exit`;

/** The table entries of a program's helper block, for the ids it calls. */
function block(vm: Vm, p: LoadedProgram, ids: readonly number[]): unknown[] {
  return ids.map((id) => vm.table.get(p.links.helperBase + id));
}

const IDS = [BPF_FUNC_map_lookup_elem, BPF_FUNC_ringbuf_reserve, BPF_FUNC_ringbuf_discard];

/** A Vm (closed after the test) with map 1, an array of one u64, and map 2, a ring buffer. */
function vmWithMaps() {
  const vm = Vm.create();
  vms.push(vm);
  const a = vm.createMap({
    name: 'a',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  const rb = ringbufMap(vm);
  return { vm, a, rb };
}

async function setup(engine: 'jit' | 'interp'): Promise<{
  vm: Vm;
  p: LoadedProgram;
  q: LoadedProgram;
  during: unknown[][];
}> {
  const { vm, a, rb } = vmWithMaps();
  const during: unknown[][] = [];
  const progs: { p?: LoadedProgram; q?: LoadedProgram } = {};
  vm.registerKfunc({
    name: 'test_stop',
    fn: () => {
      const { p, q } = progs as { p: LoadedProgram; q: LoadedProgram };
      vm.terminate(p);
      during.push(block(vm, p, IDS), block(vm, q, IDS));
      return 0n;
    },
    sig: { name: 'test_stop', args: [], ret: { kind: 'scalar' } },
  });
  const kfuncs = new Map([[14, { name: 'test_stop', weak: false }]]);
  const p = await vm.load(assembleProgram(withMapFds(LOOKUPS, [a, rb])), { engine, kfuncs });
  const q = await vm.load(assembleProgram(withMapFds(LOOKUPS, [a, rb])), { engine, kfuncs });
  progs.p = p;
  progs.q = q;
  return { vm, p, q, during };
}

describe.each(['jit', 'interp'] as const)('on the %s engine', (engine) => {
  it("swaps the terminated program's block only, and restores it when the run exits", async () => {
    const { vm, p, q, during } = await setup(engine);
    const pBefore = block(vm, p, IDS);
    const qBefore = block(vm, q, IDS);
    // P's run: the first lookup finds the value, the second (after test_stop) gets NULL
    expect(() => p.run()).toThrow(TerminationError);
    expect(vm.dataView().getBigUint64(vm.worker.ctrl + 0x18, true)).toBe(2n);
    const [pDuring, qDuring] = during as [unknown[], unknown[]];
    if (engine === 'jit') {
      // lookup and reserve swapped for their NULL stubs, discard (a release) kept
      expect(pDuring[0]).not.toBe(pBefore[0]);
      expect(pDuring[1]).not.toBe(pBefore[1]);
      expect(pDuring[2]).toBe(pBefore[2]);
    }
    expect(qDuring).toEqual(qBefore);
    expect(block(vm, p, IDS)).toEqual(pBefore);
  });

  it('lets another program run normally, and the next run of the program start whole', async () => {
    const { vm, p, q } = await setup(engine);
    expect(() => p.run()).toThrow(TerminationError);
    // test_stop names P: Q's run is not P's, so nothing is stopped and both lookups succeed
    expect(q.run()).toBe(3n);
    // P's first lookup works again: its block was restored
    expect(() => p.run()).toThrow(TerminationError);
    expect(vm.dataView().getBigUint64(vm.worker.ctrl + 0x18, true)).toBe(2n);
    expect(vm.termination.terminations).toBe(2);
  });
});

describe.each(['jit', 'interp'] as const)('a program that holds nothing (%s)', (engine) => {
  it('is abandoned at once: vm.terminate unwinds the run to its entry', async () => {
    const vm = Vm.create();
    vms.push(vm);
    const a = vm.createMap({
      name: 'a',
      type: BPF_MAP_TYPE_ARRAY,
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
    });
    let after = 0;
    let lookups = 0;
    const orig = vm.helpers.get(BPF_FUNC_map_lookup_elem);
    vm.registerHelper({
      id: BPF_FUNC_map_lookup_elem,
      name: 'bpf_map_lookup_elem',
      fn: (args) => (lookups++, orig?.fn(args) ?? 0n),
    });
    vm.registerKfunc({
      name: 'test_stop',
      fn: () => {
        vm.terminate();
        after++;
        return 0n;
      },
      sig: { name: 'test_stop', args: [], ret: { kind: 'scalar' } },
    });
    const kfuncs = new Map([[7, { name: 'test_stop', weak: false }]]);
    const p = await vm.load(assembleProgram(withMapFds(BARE, [a])), { engine, kfuncs });
    expect(p.verified?.holdsResources).toBe(false);
    expect(() => p.run()).toThrow(TerminationError);
    // nothing ran after the request: not the rest of the kfunc, not the second lookup
    expect(after).toBe(0);
    expect(lookups).toBe(1);
    expect(vm.termination.engaged).toBe(false);
    expect(vm.globals.sp.value).toBe(vm.worker.stackTop);
  });
});

describe('kfuncs and program-kill', () => {
  /** get = acquire (nullable memory), put = release, stop = terminate. */
  const KF = createProgram(
    assemble(`
      call kfunc 0
      jeq %r0, 0, none
      mov %r1, %r0
      call kfunc 1
      call kfunc 2
      call kfunc 0
      jeq %r0, 0, stubbed
      mov %r1, %r0
      call kfunc 1
      mov %r0, 2
      exit
    stubbed:
      mov %r0, 1
      exit
    none:
      mov %r0, 0
      exit`),
  );
  const names = new Map([
    [0, { name: 'test_get', weak: false }],
    [3, { name: 'test_put', weak: false }],
    [4, { name: 'test_stop', weak: false }],
    [5, { name: 'test_get', weak: false }],
    [8, { name: 'test_put', weak: false }],
  ]);

  it.each(['jit', 'interp'] as const)(
    'gives an acquiring kfunc its NULL fast path for the rest of the run only (%s)',
    async (engine) => {
      const vm = Vm.create();
      vms.push(vm);
      const obj = vm.heap.alloc(8);
      let live = 0;
      let stop = true;
      vm.addResourceSource(() => ({ live_objects: live, live_bytes: live * 8 }));
      vm.registerKfunc({
        name: 'test_get',
        fn: () => (live++, BigInt(obj)),
        sig: { name: 'test_get', args: [], ret: { kind: 'mem', size: 8, acquire: true } },
      });
      vm.registerKfunc({
        name: 'test_put',
        fn: () => (live--, 0n),
        sig: { name: 'test_put', args: [{ kind: 'release' }], ret: { kind: 'void' } },
      });
      vm.registerKfunc({
        name: 'test_stop',
        fn: () => (stop && vm.terminate(), 0n),
        sig: { name: 'test_stop', args: [], ret: { kind: 'scalar' } },
      });
      const prog = await vm.load(KF, { engine, kfuncs: names });
      const slot = vm.kfuncSlot('test_get') as number;
      const before = vm.table.get(slot);
      expect(() => prog.run()).toThrow(TerminationError);
      expect(vm.dataView().getBigUint64(vm.worker.ctrl + 0x18, true)).toBe(1n);
      expect(vm.resources()).toEqual({
        live_objects: 0,
        live_bytes: 0,
        reservations: 0,
        locks_held: 0,
      });
      expect(vm.table.get(slot)).toBe(before);
      stop = false;
      expect(prog.run()).toBe(2n);
      expect(live).toBe(0);
    },
  );

  it('refuses every later run of a program killed for good', async () => {
    const vm = Vm.create();
    vms.push(vm);
    let calls = 0;
    vm.registerKfunc({ name: 'test_get', fn: () => (calls++, 0n) });
    vm.registerKfunc({ name: 'test_put', fn: () => 0n });
    vm.registerKfunc({ name: 'test_stop', fn: () => 0n });
    const prog = await vm.load(KF, { verify: false, kfuncs: names });
    expect(prog.run()).toBe(0n);
    vm.terminate(prog, { mode: 'program' });
    expect(prog.isKilled).toBe(true);
    const e = (() => {
      try {
        prog.run();
      } catch (err) {
        return err;
      }
      return undefined;
    })();
    expect(e).toBeInstanceOf(TerminationError);
    expect((e as TerminationError).reason).toBe('request');
    expect(calls).toBe(1);
    expect(() => vm.terminate(undefined, { mode: 'program' })).toThrow(/needs the program/);
  });
});

describe.each(['flag-check', 'patchable'] as const)("JIT helper calls '%s'", (helperCalls) => {
  async function load(): Promise<{ vm: Vm; p: LoadedProgram; stop: { on: boolean } }> {
    const { vm, a, rb } = vmWithMaps();
    const stop = { on: true };
    vm.registerKfunc({
      name: 'test_stop',
      fn: () => (stop.on && vm.terminate(), 0n),
      sig: { name: 'test_stop', args: [], ret: { kind: 'scalar' } },
    });
    const kfuncs = new Map([[14, { name: 'test_stop', weak: false }]]);
    const p = await vm.load(assembleProgram(withMapFds(LOOKUPS, [a, rb])), {
      kfuncs,
      helperCalls,
    });
    return { vm, p, stop };
  }

  it('gives a terminated run the fast path (NULL) from the request on, and the next run all', async () => {
    const { vm, p, stop } = await load();
    expect(() => p.run()).toThrow(TerminationError);
    expect(vm.dataView().getBigUint64(vm.worker.ctrl + CTRL_R0, true)).toBe(2n);
    expect(vm.resources().reservations).toBe(0);
    stop.on = false;
    expect(p.run()).toBe(3n);
  });

  it('leaves helper results alone while a request is only stored, not acted on', async () => {
    // a request word another thread could store; nothing on this thread has engaged it
    const { vm, p, stop } = await load();
    stop.on = false;
    vm.dataView().setUint32(vm.worker.ctrl + CTRL_TERMINATE, TERM_REASON_REQUEST, true);
    expect(p.run()).toBe(3n);
    vm.dataView().setUint32(vm.worker.ctrl + CTRL_TERMINATE, 0, true);
  });
});
