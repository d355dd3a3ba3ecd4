/**
 * A minimal coroutine in assembly for runtime tests: `call kfunc N` names the Nth of the kfunc
 * list a test passes to `kfuncCalls`.
 */

import type { Program } from '../../src/program.js';

/**
 * The kfunc calls of `prog` (`call kfunc N`, N an index into `names`), as `Vm.load` takes them.
 */
export function kfuncCalls(
  prog: Program,
  names: readonly string[],
): Map<number, { name: string; weak: boolean }> {
  const out = new Map<number, { name: string; weak: boolean }>();
  prog.insns.forEach((i, idx) => {
    if (prog.ops[idx]?.kind === 'call' && i.src === 2)
      out.set(idx, { name: names[i.imm] as string, weak: false });
  });
  return out;
}

/**
 * Assembly that allocates a 32-byte frame (kfunc 0, bpf_coro_frame_alloc, with r1 = the ctx)
 * whose resume function marks it done (+0 = 0) and whose destroy function frees it (kfunc
 * `free`, bpf_coro_frame_free), detaches it (kfunc 1, bpf_coro_detach: the runtime reaps it
 * once done), then runs `handOff` with the frame in r7, whose r0 the program returns; r0 = 99
 * when there was no frame.
 */
export function detachedFrameAsm(handOff: string, free: number): string {
  return `
    mov %r6, %r1
    mov %r1, 32
    mov %r2, %r6
    call kfunc 0
    jeq %r0, 0, out
    mov %r7, %r0
    lddw %r1, func resume
    stxdw [%r7], %r1
    lddw %r1, func destroy
    stxdw [%r7+8], %r1
    mov %r1, %r7
    call kfunc 1
    ${handOff}
    exit
  out:
    mov %r0, 99
    exit
  resume:
    stdw [%r1], 0
    mov %r0, 0
    exit
  destroy:
    call kfunc ${free}
    mov %r0, 0
    exit`;
}
