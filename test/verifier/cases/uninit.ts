/** Uninitialised registers and stack (kernel check_reg_arg / check_stack_read; verifier_uninit.c, verifier/basic_stack.c). */
import { pair, type VerifierCase } from '../case.js';

/** One pair per register r2..r9: reading it before any write is `R<n> !read_ok`. */
const regReads: VerifierCase[] = [2, 3, 4, 5, 6, 7, 8, 9].flatMap((r) =>
  pair({
    rule: `verifier_uninit.c: r${r} is not initialised at entry and may not be read`,
    progType: 'socket_filter',
    accept: `mov %r${r}, 4
      mov %r0, %r${r}
      exit`,
    retval: 4n,
    reject: `mov %r0, %r${r}
      exit`,
    msg: `R${r} !read_ok`,
  }),
);

/** One pair per caller-saved register: a helper call clobbers r1..r5. */
const clobbered: VerifierCase[] = [1, 2, 3, 4, 5].flatMap((r) =>
  pair({
    rule: `verifier/calls.c: r${r} is scratched by a helper call and may not be read after it`,
    progType: 'socket_filter',
    accept: `mov %r6, 9
      call 7
      mov %r0, %r6
      exit`,
    retval: 9n,
    reject: `mov %r${r}, 9
      call 7
      mov %r0, %r${r}
      exit`,
    msg: `R${r} !read_ok`,
  }),
);

export const uninitCases: readonly VerifierCase[] = [
  ...regReads,
  ...clobbered,
  ...pair({
    rule: 'verifier_uninit.c: exit without writing r0 reads an uninitialised R0',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      exit`,
    retval: 0n,
    reject: `exit`,
    msg: 'R0 !read_ok',
  }),
  ...pair({
    rule: 'verifier_uninit.c: r0 written on only one path is uninitialised at the exit of the other',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      ldxw %r2, [%r1+0]
      jeq %r2, 0, +1
      mov %r0, 1
      exit`,
    input: [1, 2],
    retval: 1n,
    reject: `ldxw %r2, [%r1+0]
      jeq %r2, 0, +1
      mov %r0, 1
      exit`,
    msg: 'R0 !read_ok',
  }),
  ...pair({
    rule: 'verifier_uninit.c: an uninitialised register may not be a store source',
    progType: 'socket_filter',
    accept: `mov %r3, 1
      stxdw [%r10-8], %r3
      ldxdw %r0, [%r10-8]
      exit`,
    retval: 1n,
    reject: `stxdw [%r10-8], %r3
      ldxdw %r0, [%r10-8]
      exit`,
    msg: 'R3 !read_ok',
  }),
  ...pair({
    rule: 'verifier_uninit.c: an uninitialised register may not be a load base',
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 8
      mov %r3, %r10
      ldxdw %r0, [%r3-8]
      exit`,
    retval: 8n,
    reject: `stdw [%r10-8], 8
      ldxdw %r0, [%r3-8]
      exit`,
    msg: 'R3 !read_ok',
  }),
  ...pair({
    rule: 'verifier_uninit.c: an uninitialised register may not be compared',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      mov %r4, 0
      jeq %r4, 0, +1
      mov %r0, 1
      exit`,
    retval: 0n,
    reject: `mov %r0, 0
      jeq %r4, 0, +1
      mov %r0, 1
      exit`,
    msg: 'R4 !read_ok',
  }),
  ...pair({
    rule: 'verifier_uninit.c: an ALU op reads its destination register',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      add %r0, 1
      exit`,
    retval: 1n,
    reject: `add %r0, 1
      exit`,
    msg: 'R0 !read_ok',
  }),
  ...pair({
    rule: 'verifier_uninit.c: an ALU op reads its source register',
    progType: 'socket_filter',
    accept: `mov %r0, 2
      mov %r5, 3
      add %r0, %r5
      exit`,
    retval: 5n,
    reject: `mov %r0, 2
      add %r0, %r5
      exit`,
    msg: 'R5 !read_ok',
  }),
  ...pair({
    rule: 'verifier/basic_stack.c: reading a stack slot never written is an invalid read from stack',
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 6
      ldxdw %r0, [%r10-8]
      exit`,
    retval: 6n,
    reject: `ldxdw %r0, [%r10-8]
      exit`,
    msg: 'invalid read from stack',
  }),
  ...pair({
    rule: 'verifier/basic_stack.c: a read covering bytes never written is an invalid read from stack',
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 0
      stw [%r10-8], 6
      ldxdw %r0, [%r10-8]
      exit`,
    retval: 6n,
    reject: `stw [%r10-8], 6
      ldxdw %r0, [%r10-8]
      exit`,
    msg: 'invalid read from stack',
  }),
  ...pair({
    rule: 'verifier/basic_stack.c: a byte read of a slot written at another byte is uninitialised',
    progType: 'socket_filter',
    accept: `stb [%r10-1], 5
      ldxb %r0, [%r10-1]
      exit`,
    retval: 5n,
    reject: `stb [%r10-1], 5
      ldxb %r0, [%r10-2]
      exit`,
    msg: 'invalid read from stack',
  }),
  ...pair({
    rule: 'verifier/basic_stack.c: a slot written on one branch only is uninitialised on the other',
    progType: 'socket_filter',
    accept: `ldxw %r2, [%r1+0]
      stdw [%r10-16], 1
      jeq %r2, 0, +1
      stdw [%r10-16], 2
      ldxdw %r0, [%r10-16]
      exit`,
    input: [0],
    retval: 2n,
    reject: `ldxw %r2, [%r1+0]
      jeq %r2, 0, +1
      stdw [%r10-16], 2
      ldxdw %r0, [%r10-16]
      exit`,
    msg: 'invalid read from stack',
  }),
];
