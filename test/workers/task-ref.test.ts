/**
 * Task references on worker threads: bpf_get_current_task_btf, bpf_task_acquire and
 * bpf_task_release run there (runtime/wasm/task-ref.ts; the counts are Vm-wide words), so a
 * coroutine that takes a reference on one worker and keeps it in its frame across a yield
 * (the verifier's destroy path) may release it on another thread.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { Vm } from '../../runtime/vm.js';
import { allocFrameAsm, kfuncCalls, TOKENS_ASM } from '../helpers/coro-asm.js';

const vms: Vm[] = [];
afterEach(async () => {
  await Promise.all(vms.splice(0).map((v) => v.close()));
});

const KFUNCS = [
  'bpf_coro_frame_alloc',
  'bpf_task_acquire',
  'bpf_coro_frame_free',
  'bpf_coro_yield',
  'bpf_task_release',
  'bpf_coro_detach',
];

/**
 * A frame holding a task reference at +16 across bpf_coro_yield (then detached); the resume
 * function releases it and marks the frame done, the destroy function releases it unless done.
 * r0: 0 suspended, 98 no reference, 97 the yield failed (released), 99 no frame.
 */
const HOLDER = `${allocFrameAsm(32, 99)}
    ${TOKENS_ASM}
    call 158
    mov %r1, %r0
    call kfunc 1
    jne %r0, 0, +4
    mov %r1, %r6
    call kfunc 2
    mov %r0, 98
    exit
    stxdw [%r6+16], %r0
    mov %r7, %r0
    mov %r1, %r6
    call kfunc 3
    jne %r0, 0, failed
    mov %r1, %r6
    call kfunc 5
    mov %r0, 0
    exit
  failed:
    mov %r1, %r7
    call kfunc 4
    mov %r1, %r6
    call kfunc 2
    mov %r0, 97
    exit
  resume:
    mov %r6, %r1
    ldxdw %r1, [%r6+16]
    call kfunc 4
    stdw [%r6], 0
    mov %r0, 0
    exit
  destroy:
    mov %r6, %r1
    ldxdw %r1, [%r6]
    jeq %r1, 0, +2
    ldxdw %r1, [%r6+16]
    call kfunc 4
    mov %r1, %r6
    call kfunc 2
    mov %r0, 0
    exit`;

async function setup() {
  const vm = Vm.create({ workers: 2, coroutines: { sweepIntervalMs: 0 } });
  vms.push(vm);
  const prog = assembleProgram(HOLDER);
  const p = await vm.load(prog, { kfuncs: kfuncCalls(prog, KFUNCS), type: 'mem' });
  return { vm, p };
}

describe('task references on worker threads', () => {
  it('are taken on one worker and released where the frame resumes', async () => {
    const { vm, p } = await setup();
    expect(await p.runOn(0, new Uint8Array(8))).toBe(0n);
    expect(vm.taskRefs.held).toBe(1);
    expect(vm.taskRefs.address).not.toBe(0n);
    // resumed on the other worker: the reference is released there
    expect(await vm.coroutines.drainOn(1, vm.coroutines.ready, { batch: 8 })).toBe(1);
    expect(vm.taskRefs.held).toBe(0);
    expect(vm.taskRefs.badReleases).toBe(0);
    expect(vm.coroutines.stats()).toMatchObject({ created: 1, live: 0 });
  });

  it('are released by the destroy function when the frame never resumes', async () => {
    const { vm, p } = await setup();
    await Promise.all([p.runOn(0, new Uint8Array(8)), p.runOn(1, new Uint8Array(8))]);
    expect(vm.taskRefs.held).toBe(2);
    for (const f of vm.coroutines.liveFrames()) expect(vm.coroutines.destroy(f)).toBe(true);
    expect(vm.taskRefs.held).toBe(0);
    expect(vm.coroutines.stats()).toMatchObject({ created: 2, destroyed: 2, live: 0 });
  });

  it('count a release of a pointer that holds none and change nothing', async () => {
    const { vm, p } = await setup();
    await p.runOn(0, new Uint8Array(8));
    const frame = vm.coroutines.liveFrames()[0] as number;
    // a forged frame word: the handle names no task, the release is counted and ignored
    vm.dataView().setBigUint64(frame + 16, 0x12345n, true);
    expect(vm.coroutines.destroy(frame)).toBe(true);
    expect([vm.taskRefs.held, vm.taskRefs.badReleases]).toEqual([1, 1]);
  });
});
