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

/**
 * r6 = a frame of `size` bytes from kfunc 0 (bpf_coro_frame_alloc, r2 = 0); without one the
 * program returns `none`. Seven insns.
 */
export function allocFrameAsm(size: number, none: number): string {
  return `mov %r1, ${size}
    mov %r2, 0
    call kfunc 0
    mov %r6, %r0
    jne %r6, 0, +2
    mov %r0, ${none}
    exit`;
}

/** Stores the tokens of labels `resume` (+0) and `destroy` (+8) into the frame in r6. */
export const TOKENS_ASM = `lddw %r1, func resume
    stxdw [%r6], %r1
    lddw %r1, func destroy
    stxdw [%r6+8], %r1`;

/** The parts of `keptRecordAsm` a test may replace. */
export interface KeptRecordParts {
  /** The suspension, with r1 = the frame (default `call kfunc 2`, bpf_coro_defer). */
  readonly suspend?: string;
  /** After the suspension, before `r0 = 0; exit`. */
  readonly after?: string;
  /** Stores the resume (+0) and destroy (+8) tokens into the frame in r6. */
  readonly tokens?: string;
  /** The resume function's release of the record in r1 (default bpf_ringbuf_submit). */
  readonly resume?: string;
  /** The destroy function's release of the record in r1 (default bpf_ringbuf_discard). */
  readonly destroy?: string;
}

/**
 * A coroutine that keeps a ringbuf record in its frame across a suspension (the verifier's
 * destroy path, src/verifier/check-coro.ts suspendFrame). `call kfunc N`: 0 frame_alloc,
 * 1 frame_free, 2 defer; `map_fd 1` a ringbuf. It allocates a 32-byte frame in r6 (r0 = 99
 * without one), stores its tokens, reserves an 8-byte record (insn 17; r7 and frame +16),
 * stores suspend index 1 at +24 and suspends (insn 23). The resume function writes 7 into the
 * record through the reloaded word and submits it; the destroy function discards it when the
 * index is 1; both free the frame.
 */
export function keptRecordAsm(p: KeptRecordParts = {}): string {
  return `${allocFrameAsm(32, 99)}
    ${p.tokens ?? TOKENS_ASM}
    lddw %r1, map_fd 1
    mov %r2, 8
    mov %r3, 0
    call 131
    jeq %r0, 0, none
    mov %r7, %r0
    stxdw [%r6+16], %r0
    stb [%r6+24], 1
    mov %r1, %r6
    ${p.suspend ?? 'call kfunc 2'}
    ${p.after ?? ''}
    mov %r0, 0
    exit
  none:
    mov %r1, %r6
    call kfunc 1
    mov %r0, 0
    exit
  resume:
    mov %r6, %r1
    ldxdw %r1, [%r6+16]
    stdw [%r1], 7
    ${p.resume ?? 'mov %r2, 0\ncall 132'}
    mov %r1, %r6
    call kfunc 1
    mov %r0, 0
    exit
  destroy:
    mov %r6, %r1
    ldxb %r2, [%r6+24]
    jne %r2, 1, dfree
    ldxdw %r1, [%r6+16]
    jeq %r1, 0, dfree
    ${p.destroy ?? 'mov %r2, 0\ncall 133'}
  dfree:
    mov %r1, %r6
    call kfunc 1
    mov %r0, 0
    exit`;
}
