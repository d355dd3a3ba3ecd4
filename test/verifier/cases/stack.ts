/** Stack accesses (kernel check_stack_access_within_bounds / check_ptr_alignment / spill-fill; verifier_stack_ptr.c, verifier_spill_fill.c). */
import { pair, type VerifierCase } from '../case.js';

/** Out-of-bounds constant offsets: below -512 and at or above the frame pointer. */
const bounds: VerifierCase[] = (
  [
    ['stdw', -512, -520, 8, 'write to'],
    ['stw', -512, -516, 4, 'write to'],
    ['stb', -512, -513, 1, 'write to'],
    ['stdw', -8, 0, 8, 'write to'],
    ['stw', -4, 0, 4, 'write to'],
    ['stdw', -8, 8, 8, 'write to'],
  ] as const
).flatMap(([op, ok, bad, size, kind]) =>
  pair({
    rule: `verifier_stack_ptr.c: ${op} at fp${bad >= 0 ? '+' : ''}${bad} is outside the 512-byte stack`,
    progType: 'socket_filter',
    accept: `${op} [%r10${ok >= 0 ? '+' : ''}${ok}], 1
      mov %r0, 0
      exit`,
    retval: 0n,
    reject: `${op} [%r10${bad >= 0 ? '+' : ''}${bad}], 1
      mov %r0, 0
      exit`,
    msg: `invalid ${kind} stack R10 off=${bad} size=${size}`,
  }),
);

/** Reads at fixed out-of-bounds offsets. */
const readBounds: VerifierCase[] = (
  [
    ['ldxdw', -8, 0, 8],
    ['ldxw', -4, 4, 4],
    ['ldxb', -1, 0, 1],
  ] as const
).flatMap(([op, ok, bad, size]) =>
  pair({
    rule: `verifier_stack_ptr.c: ${op} at fp+${bad} reads above the frame`,
    progType: 'socket_filter',
    accept: `stdw [%r10-8], 0
      ${op} %r0, [%r10${ok}]
      exit`,
    retval: 0n,
    reject: `stdw [%r10-8], 0
      ${op} %r0, [%r10+${bad}]
      exit`,
    msg: `invalid read from stack R10 off=${bad} size=${size}`,
  }),
);

/** The stack is always strictly aligned (check_ptr_alignment strict = true for PTR_TO_STACK). */
const align: VerifierCase[] = (
  [
    ['stdw', -16, -12, 8],
    ['stw', -8, -6, 4],
    ['sth', -8, -7, 2],
    ['stdw', -16, -9, 8],
  ] as const
).flatMap(([op, ok, bad, size]) =>
  pair({
    rule: `verifier_stack_ptr.c: ${op} at fp${bad} is a misaligned stack access`,
    progType: 'socket_filter',
    accept: `${op} [%r10${ok}], 1
      mov %r0, 0
      exit`,
    retval: 0n,
    reject: `${op} [%r10${bad}], 1
      mov %r0, 0
      exit`,
    msg: `misaligned stack access off (0x0; 0x0)+0+${bad} size ${size}`,
  }),
);

/** Writes to r10 itself (the kernel's check_reg_arg DST_OP on BPF_REG_FP). */
const fpWrites: VerifierCase[] = [
  'mov %r10, 0',
  'add %r10, -8',
  'ldxw %r10, [%r1+0]',
  'mov %r10, %r1',
].flatMap((bad, k) =>
  pair({
    rule: `verifier_stack_ptr.c: the frame pointer is read only (${bad.split(' ')[0] ?? ''} r10, case ${k + 1})`,
    progType: 'socket_filter',
    accept: `mov %r0, 0
        mov %r2, 1
        ${bad.replace('%r10', '%r2')}
        exit`,
    retval: 0n,
    reject: `mov %r0, 0
        ${bad}
        exit`,
    msg: 'frame pointer is read only',
    structural: true,
  }),
);

export const stackCases: readonly VerifierCase[] = [
  ...bounds,
  ...readBounds,
  ...align,
  ...fpWrites,
  ...pair({
    rule: 'verifier_stack_ptr.c: a stack pointer offset by a constant in a register is a fixed-offset access',
    progType: 'socket_filter',
    accept: `mov %r2, %r10
      add %r2, -8
      stdw [%r2+0], 4
      ldxdw %r0, [%r2+0]
      exit`,
    retval: 4n,
    reject: `mov %r2, %r10
      add %r2, -520
      stdw [%r2+0], 4
      ldxdw %r0, [%r2+0]
      exit`,
    msg: 'invalid write to stack R2 off=-520 size=8',
  }),
  ...pair({
    rule: 'verifier_spill_fill.c: a spilled ctx pointer is filled back as a ctx pointer, a partly overwritten one as a scalar',
    progType: 'socket_filter',
    accept: `stxdw [%r10-8], %r1
      ldxdw %r2, [%r10-8]
      ldxw %r0, [%r2+0]
      exit`,
    input: [1, 2, 3, 4],
    retval: 4n,
    reject: `stxdw [%r10-8], %r1
      stb [%r10-8], 0
      ldxdw %r2, [%r10-8]
      ldxw %r0, [%r2+0]
      exit`,
    msg: "R2 invalid mem access 'scalar'",
  }),
  ...pair({
    rule: 'verifier_spill_fill.c: a spilled pointer may only be filled with a full 8-byte load',
    progType: 'socket_filter',
    accept: `stxdw [%r10-8], %r1
      ldxdw %r2, [%r10-8]
      mov %r0, 0
      exit`,
    retval: 0n,
    reject: `stxdw [%r10-8], %r1
      ldxw %r2, [%r10-8]
      mov %r0, 0
      exit`,
    msg: 'invalid size of register fill',
  }),
  ...pair({
    rule: 'verifier_spill_fill.c: a spilled scalar keeps its constant value across a fill',
    progType: 'socket_filter',
    accept: `mov %r2, 16
      stxdw [%r10-8], %r2
      ldxdw %r3, [%r10-8]
      mov %r4, %r10
      sub %r4, %r3
      stdw [%r4+0], 1
      ldxdw %r0, [%r10-16]
      exit`,
    retval: 1n,
    reject: `mov %r2, 16
      stxdw [%r10-8], %r2
      ldxdw %r3, [%r10-8]
      mov %r4, %r10
      sub %r4, %r3
      stdw [%r4+16], 1
      ldxdw %r0, [%r10-16]
      exit`,
    msg: 'invalid write to stack R4 off=0 size=8',
  }),
  ...pair({
    rule: 'verifier_spill_fill.c: a stack pointer spilled and filled still addresses the stack',
    progType: 'socket_filter',
    accept: `mov %r2, %r10
      add %r2, -16
      stxdw [%r10-8], %r2
      ldxdw %r3, [%r10-8]
      stdw [%r3+0], 9
      ldxdw %r0, [%r10-16]
      exit`,
    retval: 9n,
    reject: `mov %r2, %r10
      add %r2, -16
      stxdw [%r10-8], %r2
      ldxdw %r3, [%r10-8]
      stdw [%r3+16], 9
      ldxdw %r0, [%r10-16]
      exit`,
    msg: 'invalid write to stack R3 off=0 size=8',
  }),
  ...pair({
    rule: 'verifier_var_off.c: a variable-offset stack read through a bounded index is only allowed within the stack',
    progType: 'socket_filter',
    accept: `stdw [%r10-16], 0
      stdw [%r10-8], 0
      ldxw %r2, [%r1+0]
      and %r2, 8
      mov %r3, %r10
      add %r3, -16
      add %r3, %r2
      ldxdw %r0, [%r3+0]
      exit`,
    input: [1],
    retval: 0n,
    reject: `stdw [%r10-16], 0
      stdw [%r10-8], 0
      ldxw %r2, [%r1+0]
      and %r2, 16
      mov %r3, %r10
      add %r3, -16
      add %r3, %r2
      ldxdw %r0, [%r3+0]
      exit`,
    msg: 'invalid variable-offset read from stack R3',
  }),
  ...pair({
    rule: 'verifier_stack_ptr.c: a write through an unbounded (8-aligned) index off the stack pointer is refused',
    progType: 'socket_filter',
    accept: `ldxw %r2, [%r1+0]
      and %r2, 0
      mov %r3, %r10
      add %r3, %r2
      stdw [%r3-8], 1
      ldxdw %r0, [%r10-8]
      exit`,
    retval: 1n,
    reject: `ldxw %r2, [%r1+0]
      lsh %r2, 3
      mov %r3, %r10
      add %r3, %r2
      stdw [%r3-8], 1
      ldxdw %r0, [%r10-8]
      exit`,
    msg: 'invalid unbounded variable-offset write to stack R3',
  }),
];
