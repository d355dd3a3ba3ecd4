/**
 * Watchdog termination (`run(input, { deadlineNs })`, notes/fast-path-termination.md §10.4): the
 * kernel selftest's nested bpf_loop program (4 × 1024 levels, ≈10¹² callbacks) and an open
 * may_goto loop stop at a deadline, report a TerminationError, and leave the program's helper
 * slots as they were.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CTRL_R0, CTRL_TERM_CHECKS, TERM_CHECK_SLOT } from '../../src/abi.js';
import { assembleProgram } from '../../src/asm/assembler.js';
import { TerminationError } from '../../src/errors.js';
import { BPF_FUNC_loop } from '../../src/helper-protos.js';
import { Vm } from '../../runtime/vm.js';
import { MAY_GOTO_LOOP, NESTED_LOOPS } from './programs.js';
import { ringbufMap } from '../helpers/maps.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

/** The error a run throws, or undefined. */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe.each(['jit', 'interp'] as const)('a deadline on the %s engine', (engine) => {
  it('stops the nested bpf_loop program and reports the run as terminated', async () => {
    const vm = Vm.create();
    vms.push(vm);
    const prog = await vm.load(assembleProgram(NESTED_LOOPS), {
      engine,
      insnBudget: 2_000_000_000,
    });
    const slot = prog.links.helperBase + BPF_FUNC_loop;
    const before = vm.table.get(slot);
    const t0 = performance.now();
    const e = thrown(() => prog.run(undefined, { deadlineNs: 20_000_000 }));
    const ms = performance.now() - t0;
    expect(e).toBeInstanceOf(TerminationError);
    expect((e as TerminationError).reason).toBe('timeout');
    expect(ms).toBeGreaterThanOrEqual(19);
    expect(ms).toBeLessThan(5000);
    expect(vm.table.get(slot)).toBe(before);
    expect(vm.termination.engaged).toBe(false);
    expect(vm.resources()).toEqual({
      live_objects: 0,
      live_bytes: 0,
      reservations: 0,
      locks_held: 0,
    });
  });
});

describe('a deadline on may_goto', () => {
  it('does not touch a run that ends in time, and reads no clock without a deadline', async () => {
    let reads = 0;
    const vm = Vm.create({ clock: () => BigInt(++reads) });
    vms.push(vm);
    const prog = await vm.load(assembleProgram(MAY_GOTO_LOOP), { verify: false });
    expect(prog.run()).toBe(8_388_608n);
    expect(reads).toBe(0);
    // 128 checkpoints: at budget ≡ 1 (mod 65536), 0x7f0001 down to 1, not at the first may_goto
    expect(vm.dataView().getUint32(vm.worker.ctrl + CTRL_TERM_CHECKS, true)).toBe(128);
    expect(prog.run(undefined, { deadlineNs: 1_000_000_000n })).toBe(8_388_608n);
  });

  it('stops the loop at the first checkpoint past the deadline', async () => {
    let now = 0n;
    // the clock advances 1 ms per read: the deadline of 5 ms passes at the 6th read
    const vm = Vm.create({ clock: () => (now += 1_000_000n) });
    vms.push(vm);
    const prog = await vm.load(assembleProgram(MAY_GOTO_LOOP), { verify: false });
    const e = thrown(() => prog.run(undefined, { deadlineNs: 5_000_000 }));
    expect((e as TerminationError).reason).toBe('timeout');
    expect(vm.table.get(prog.links.helperBase + TERM_CHECK_SLOT)).toBe(
      vm.termination.checkpointFn(),
    );
    expect(prog.run()).toBe(8_388_608n);
  });
});

describe('may_goto when the run is terminated, on both engines', () => {
  it('asks the checkpoint at the same may_gotos and stops at the same one past a deadline', async () => {
    const checks: number[] = [];
    for (const engine of ['jit', 'interp'] as const) {
      let now = 0n;
      // 1 ms per clock read: the deadline of 5 ms passes at the 5th checkpoint
      const vm = Vm.create({ clock: () => (now += 1_000_000n) });
      vms.push(vm);
      const prog = await vm.load(assembleProgram(MAY_GOTO_LOOP), {
        engine,
        verify: false,
        insnBudget: 2_000_000_000,
      });
      const e = thrown(() => prog.run(undefined, { deadlineNs: 5_000_000 }));
      expect((e as TerminationError).reason, engine).toBe('timeout');
      checks.push(vm.dataView().getUint32(vm.worker.ctrl + CTRL_TERM_CHECKS, true));
    }
    expect(checks).toEqual([5, 5]);
  });

  it('zeroes the budget at a request: the loop ends at its next may_goto', async () => {
    // a record held across a may_goto loop that calls kfunc test_stop every iteration; the
    // 5th call requests termination; the program discards the record and returns the count
    const asm = `
      lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, out
      mov %r6, %r0
      mov %r7, 0
    top:
      may_goto +3
      call kfunc 0
      add %r7, 1
      ja top
      mov %r1, %r6
      mov %r2, 0
      call 133
      mov %r0, %r7
      exit
    out:
      mov %r0, 0
      exit`;
    for (const engine of ['jit', 'interp'] as const) {
      const vm = Vm.create();
      vms.push(vm);
      const ring = ringbufMap(vm);
      let calls = 0;
      vm.registerKfunc({
        name: 'test_stop',
        fn: () => {
          if (++calls === 5) vm.terminate();
          return 0n;
        },
      });
      const prog = assembleProgram(asm.replace('map_fd 1', `map_fd ${ring.id}`));
      const kfunc = prog.insns.findIndex((i) => i.code === 0x85 && i.src === 2);
      const loaded = await vm.load(prog, {
        engine,
        verify: false,
        insnBudget: 100_000_000,
        kfuncs: new Map([[kfunc, { name: 'test_stop', weak: false }]]),
      });
      const e = thrown(() => loaded.run());
      expect((e as TerminationError).reason, engine).toBe('request');
      expect(calls, engine).toBe(5);
      expect(vm.dataView().getBigUint64(vm.worker.ctrl + CTRL_R0, true), engine).toBe(5n);
      expect(vm.resources()).toEqual({
        live_objects: 0,
        live_bytes: 0,
        reservations: 0,
        locks_held: 0,
      });
    }
  });
});
