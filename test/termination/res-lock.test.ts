/**
 * The checked spin lock (`bpf_res_spin_lock` / `bpf_res_spin_unlock` kfuncs): the verifier
 * requires a branch on its result before the critical section, it fails with -EDEADLK on a lock
 * the worker holds already, and its fast path makes a terminated run take its error path
 * without the lock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { TerminationError, VerifierError } from '../../src/errors.js';
import { createProgram } from '../../src/program.js';
import { BPF_MAP_TYPE_ARRAY } from '../../runtime/maps/map-type.js';
import type { BpfMap } from '../../runtime/maps/map.js';
import { Vm } from '../../runtime/vm.js';
import { withMapFds } from './programs.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

/** value = lookup(0); test_stop(); r0 = res_lock(value); if r0 != 0 return it; counter++; unlock. */
const CHECKED = `
    stw [%r10-4], 0
    lddw %r1, map_fd 1
    mov %r2, %r10
    add %r2, -4
    call 1
    jeq %r0, 0, out0
    mov %r6, %r0
    call kfunc 0
    mov %r1, %r6
    call kfunc 1
    jne %r0, 0, failed
    ldxdw %r1, [%r6+8]
    add %r1, 1
    stxdw [%r6+8], %r1
    mov %r1, %r6
    call kfunc 2
    mov %r0, 0
    exit
  failed:
    exit
  out0:
    mov %r0, 1
    exit`;

const KFUNCS = new Map([
  [8, { name: 'test_stop', weak: false }],
  [10, { name: 'bpf_res_spin_lock', weak: false }],
  [16, { name: 'bpf_res_spin_unlock', weak: false }],
]);

async function setup(
  asm: string,
  engine: 'jit' | 'interp' = 'jit',
): Promise<{ vm: Vm; map: BpfMap; run: () => bigint; stop: { on: boolean } }> {
  const vm = Vm.create();
  vms.push(vm);
  const map = vm.createMap({
    name: 'locked',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 16,
    maxEntries: 1,
  });
  const stop = { on: false };
  vm.registerKfunc({
    name: 'test_stop',
    fn: () => (stop.on && vm.terminate(), 0n),
    sig: { name: 'test_stop', args: [], ret: { kind: 'scalar' } },
  });
  const prog = await vm.load(createProgram(assemble(withMapFds(asm, [map]))), {
    engine,
    kfuncs: KFUNCS,
  });
  return { vm, map, run: () => prog.run(), stop };
}

describe('the verifier', () => {
  it('accepts a program that branches on the result before its critical section', async () => {
    await expect(setup(CHECKED)).resolves.toBeDefined();
  });

  it('rejects a critical section entered without checking the result', async () => {
    const unchecked = CHECKED.replace('jne %r0, 0, failed', 'jeq %r6, 0, failed');
    await expect(setup(unchecked)).rejects.toThrow(
      /insn 12: the result of bpf_res_spin_lock at insn 10 must be checked/,
    );
  });

  it('rejects a path that keeps the lock, and an unlock on the error path', async () => {
    const kept = CHECKED.replace('call kfunc 2', 'mov %r1, 0');
    await expect(setup(kept)).rejects.toThrow(/bpf_spin_unlock is missing/);
    const wrong = CHECKED.replace('jne %r0, 0, failed', 'jeq %r0, 0, failed');
    const e = await setup(wrong).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(VerifierError);
  });
});

describe.each(['jit', 'interp'] as const)('bpf_res_spin_lock on the %s engine', (engine) => {
  it('takes and releases the lock, and fails with -EDEADLK on a lock already held', async () => {
    const { vm, map, run } = await setup(CHECKED, engine);
    expect(run()).toBe(0n);
    expect(vm.dataView().getBigUint64(map.valueAddr(0) + 8, true)).toBe(1n);
    expect(vm.dataView().getUint32(map.valueAddr(0), true)).toBe(0);
    vm.dataView().setUint32(map.valueAddr(0), 1, true);
    expect(run()).toBe(BigInt.asUintN(64, -35n));
    expect(vm.dataView().getBigUint64(map.valueAddr(0) + 8, true)).toBe(1n);
  });

  it('fails with -ETIMEDOUT in a terminated run, which takes its error path', async () => {
    const { vm, map, run, stop } = await setup(CHECKED, engine);
    stop.on = true;
    expect(run).toThrow(TerminationError);
    expect(vm.dataView().getBigUint64(vm.worker.ctrl + 0x18, true)).toBe(BigInt.asUintN(64, -110n));
    expect(vm.dataView().getBigUint64(map.valueAddr(0) + 8, true)).toBe(0n);
    expect(vm.resources().locks_held).toBe(0);
    stop.on = false;
    expect(run()).toBe(0n);
    expect(vm.resources().locks_held).toBe(0);
  });
});
