/**
 * Watchdog termination (`run(input, { deadlineNs })`, notes/fast-path-termination.md §10.4): the
 * kernel selftest's nested bpf_loop program (4 × 1024 levels, ≈10¹² callbacks) and an open
 * may_goto loop stop at a deadline, report a TerminationError, and leave the program's helper
 * slots as they were.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CTRL_TERM_CHECKS, TERM_CHECK_SLOT } from '../../src/abi.js';
import { assembleProgram } from '../../src/asm/assembler.js';
import { TerminationError } from '../../src/errors.js';
import { BPF_FUNC_loop } from '../../src/helper-protos.js';
import { Vm } from '../../runtime/vm.js';
import { MAY_GOTO_LOOP, NESTED_LOOPS } from './programs.js';

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
