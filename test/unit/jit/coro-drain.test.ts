/**
 * The end-of-run drain the JIT emits in the run's entry (jit/coro-drain.ts) against the
 * interpreter's: frames resumed and reaped, a stale frame, a frame deferred done, a bad resume
 * token and a frame deferred twice (stale the second time) must give the same counters,
 * allocations and effects on both engines.
 */
import { describe, expect, it } from 'vitest';
import { BPF_MAP_TYPE_ARRAY } from '../../../runtime/maps/map-type.js';
import { assembleProgram } from '../../../src/asm/assembler.js';
import type { Engine } from '../../../runtime/loaded-program.js';
import { Vm } from '../../../runtime/vm.js';

const KFUNCS = ['bpf_coro_frame_alloc', 'bpf_coro_defer', 'bpf_coro_frame_free', 'bpf_coro_detach'];

/** A frame of 32 bytes in r6..r9 style: alloc into `reg`, tokens `resume` / `destroy`. */
const frame = (reg: string, resume: string, destroy: string): string => `
    mov %r1, 32
    mov %r2, 0
    call kfunc 0
    jeq %r0, 0, fail
    mov %${reg}, %r0
    ${resume}
    stxdw [%${reg}+0], %r1
    lddw %r1, func ${destroy}
    stxdw [%${reg}+8], %r1
    mov %r1, %${reg}
    call kfunc 3`;

const defer = (reg: string): string => `
    mov %r1, %${reg}
    call kfunc 1`;

/** `mapId`'s element 0 counts resumes; destroy frees the frame. */
const program = (mapId: number): string => `
    ${frame('r6', 'lddw %r1, func resume', 'destroy')}
    ${defer('r6')}
    ${frame('r7', 'lddw %r1, func resume', 'destroy')}
    ${defer('r7')}
    mov %r1, %r7
    call kfunc 2
    ${frame('r8', 'mov %r1, 0', 'destroy')}
    ${defer('r8')}
    ${frame('r9', 'mov %r1, 5', 'destroy')}
    ${defer('r9')}
    ${defer('r6')}
    mov %r0, 0
    exit
  fail:
    mov %r0, 1
    exit
  resume:
    lddw %r2, map_value ${mapId}, 0
    ldxdw %r3, [%r2+0]
    add %r3, 1
    stxdw [%r2+0], %r3
    stdw [%r1+0], 0
    mov %r0, 0
    exit
  destroy:
    call kfunc 2
    mov %r0, 0
    exit`;

async function runOn(engine: Engine) {
  const vm = Vm.create({ coroutines: { sweepIntervalMs: 0 } });
  const map = vm.createMap({
    name: 'resumes',
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 8,
    maxEntries: 1,
  });
  const prog = assembleProgram(program(map.id));
  const kfuncs = new Map<number, { name: string; weak: boolean }>();
  prog.insns.forEach((i, idx) => {
    if (prog.ops[idx]?.kind === 'call' && i.src === 2)
      kfuncs.set(idx, { name: KFUNCS[i.imm] ?? '?', weak: false });
  });
  const p = await vm.load(prog, { verify: false, kfuncs, maps: [map] });
  const run = engine === 'jit' ? p : await p.withEngine('interp');
  const r0 = [run.run(), run.run()];
  const v = new DataView(map.lookup(new Uint8Array(4))?.buffer ?? new ArrayBuffer(8));
  const out = {
    r0,
    resumes: v.getBigUint64(0, true),
    coro: vm.coroutines.stats(),
    live: vm.allocator.stats().liveObjects,
  };
  await vm.close();
  return out;
}

describe('the JIT end-of-run drain', () => {
  it('resumes, reaps and skips deferred frames as the interpreter does', async () => {
    const jit = await runOn('jit');
    expect(jit.resumes).toBe(2n);
    expect(jit.live).toBe(2); // the frame with a bad token, once per run
    expect(jit).toEqual(await runOn('interp'));
  });
});
