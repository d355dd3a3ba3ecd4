/**
 * BPF-to-BPF calls and callbacks (kernel check_func_call / prepare_func_exit /
 * set_loop_callback_state; verifier/calls.c, verifier_subprog_precision.c, verifier_loops1.c,
 * verifier_iterating_callbacks.c).
 */
import { pair, type VerifierCase } from '../case.js';

export const callCases: readonly VerifierCase[] = [
  ...pair({
    rule: 'verifier/calls.c: a subprogram reading an argument register the caller never set',
    progType: 'socket_filter',
    accept: `mov %r1, 3
      mov %r2, 4
      call local f
      exit
      f:
      mov %r0, %r1
      add %r0, %r2
      exit`,
    retval: 7n,
    reject: `mov %r1, 3
      call local f
      exit
      f:
      mov %r0, %r1
      add %r0, %r2
      exit`,
    msg: 'R2 !read_ok',
  }),
  ...pair({
    rule: 'verifier/calls.c: callee-saved registers of the caller are not initialised in the callee',
    progType: 'socket_filter',
    accept: `mov %r1, 5
      mov %r6, 6
      call local f
      exit
      f:
      mov %r0, %r1
      exit`,
    retval: 5n,
    reject: `mov %r1, 5
      mov %r6, 6
      call local f
      exit
      f:
      mov %r0, %r6
      exit`,
    msg: 'R6 !read_ok',
  }),
  ...pair({
    rule: 'verifier/calls.c: a subprogram returning without writing r0 leaves the caller an uninitialised R0',
    progType: 'socket_filter',
    accept: `call local f
      exit
      f:
      mov %r1, 1
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `call local f
      exit
      f:
      mov %r1, 1
      exit`,
    msg: 'R0 !read_ok',
  }),
  ...pair({
    rule: 'verifier/calls.c: a subprogram may not return a pointer to its own stack',
    progType: 'socket_filter',
    accept: `call local f
      exit
      f:
      stdw [%r10-8], 2
      mov %r0, 2
      exit`,
    retval: 2n,
    reject: `call local f
      exit
      f:
      stdw [%r10-8], 2
      mov %r0, %r10
      exit`,
    msg: 'cannot return stack pointer to the caller',
  }),
  ...pair({
    rule: "verifier/calls.c: a callee may read the caller's stack through a pointer argument, but not past the caller's frame",
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 9
      mov %r1, %r10
      add %r1, -8
      call local f
      exit
      f:
      ldxdw %r0, [%r1+0]
      exit`,
    retval: 9n,
    reject: `stdw [%r10-8], 9
      mov %r1, %r10
      add %r1, -8
      call local f
      exit
      f:
      ldxdw %r0, [%r1+8]
      exit`,
    msg: 'invalid read from stack R1 off=0 size=8',
  }),
  ...pair({
    rule: "verifier/calls.c: a callee reading an uninitialised slot of the caller's stack",
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 4
      mov %r1, %r10
      add %r1, -8
      call local f
      exit
      f:
      ldxdw %r0, [%r1+0]
      exit`,
    retval: 4n,
    reject: `mov %r1, %r10
      add %r1, -8
      call local f
      exit
      f:
      ldxdw %r0, [%r1+0]
      exit`,
    msg: 'invalid read from stack off -8+0 size 8',
  }),
  ...pair({
    rule: "verifier/calls.c: a callee writing through a caller stack pointer must stay inside the caller's 512 bytes",
    progType: 'socket_filter',
    accept: `mov %r1, %r10
      add %r1, -8
      call local f
      ldxdw %r0, [%r10-8]
      exit
      f:
      stdw [%r1+0], 12
      mov %r0, 0
      exit`,
    retval: 12n,
    reject: `mov %r1, %r10
      add %r1, -8
      call local f
      ldxdw %r0, [%r10-8]
      exit
      f:
      stdw [%r1-512], 12
      mov %r0, 0
      exit`,
    msg: 'invalid write to stack R1 off=-520 size=8',
  }),
  ...pair({
    rule: 'verifier_loops1.c: a bpf_loop callback must return 0 or 1 (a constant 2 is out of range)',
    progType: 'socket_filter',
    accept: `mov %r1, 3
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, 0
      exit`,
    retval: 3n,
    reject: `mov %r1, 3
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, 2
      exit`,
    msg: 'At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier_iterating_callbacks.c: a bpf_loop callback returning its unbounded index is out of range',
    progType: 'socket_filter',
    accept: `mov %r1, 3
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, %r1
      and %r0, 1
      exit`,
    retval: 2n,
    reject: `mov %r1, 3
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, %r1
      exit`,
    msg: 'At callback return the register R0 has',
  }),
  ...pair({
    rule: 'verifier_loops1.c: the bpf_loop callback argument must be a function pointer',
    progType: 'socket_filter',
    accept: `mov %r1, 3
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, 0
      exit`,
    retval: 3n,
    reject: `mov %r1, 3
      lddw %r6, func cb
      mov %r2, 0
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, 0
      exit`,
    msg: 'R2 type=scalar expected=func',
  }),
  ...pair({
    rule: "verifier/calls.c: a callee may not leave a pointer to its own stack in its caller's frame (cannot spill pointers to stack into stack frame of the caller)",
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 0
      mov %r1, %r10
      add %r1, -8
      call local f
      ldxdw %r0, [%r10-8]
      exit
      f:
      stdw [%r1+0], 5
      mov %r0, 0
      exit`,
    retval: 5n,
    reject: `stdw [%r10-8], 0
      mov %r1, %r10
      add %r1, -8
      call local f
      ldxdw %r0, [%r10-8]
      exit
      f:
      stxdw [%r1+0], %r10
      mov %r0, 0
      exit`,
    msg: 'cannot spill pointers to stack into stack frame of the caller',
  }),
];
