/**
 * Programs the termination tests and the `termination` benchmark share.
 */

/** bpf_loop(1024, l1) → bpf_loop(1024, l2) → bpf_loop(1024, l3) → bpf_loop(1024, l4). */
export const NESTED_LOOPS = `
    mov %r1, 1024
    lddw %r2, func l1
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 7
    exit
  l1:
    mov %r1, 1024
    lddw %r2, func l2
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 0
    exit
  l2:
    mov %r1, 1024
    lddw %r2, func l3
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 0
    exit
  l3:
    mov %r1, 1024
    lddw %r2, func l4
    mov %r3, 0
    mov %r4, 0
    call 181
    mov %r0, 0
    exit
  l4:
    mov %r0, 0
    exit`;

/** An open loop bounded only by may_goto (8M iterations); r0 = iterations. Loaded unverified: our verifier does not widen the counter in may_goto loops as the kernel does. */
export const MAY_GOTO_LOOP = `
    mov %r0, 0
  top:
    may_goto +2
    add %r0, 1
    ja top
    exit`;

/**
 * `asm` with `map_fd N` naming the N-th of `maps` (1-based) by its Vm id: a Vm may create maps
 * of its own before the test's (the coroutine queues), so ids do not start at 1.
 */
export function withMapFds(asm: string, maps: readonly { readonly id: number }[]): string {
  return asm.replace(/map_fd (\d+)/g, (_, n: string) => {
    const m = maps[Number(n) - 1];
    if (m === undefined) throw new RangeError(`no map ${n} for the program`);
    return `map_fd ${m.id}`;
  });
}
