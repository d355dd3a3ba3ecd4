/** Pointer and scalar arithmetic (kernel adjust_ptr_min_max_vals / check_alu_op; verifier_value_ptr_arith.c, verifier/ctx.c, verifier_div0.c). */
import { pair, type VerifierCase } from '../case.js';

/** The kernel's `bpf_alu_string`: how its messages spell each operator. */
const ALU_STRING: Readonly<Record<string, string>> = {
  mul: '*=',
  div: '/=',
  mod: '%=',
  lsh: '<<=',
  rsh: '>>=',
  arsh: 's>>=',
  and: '&=',
  or: '|=',
  xor: '^=',
};

/** Operators other than add/sub on a pointer (the kernel's default case). */
const arith: VerifierCase[] = ['mul', 'div', 'mod', 'lsh', 'rsh', 'arsh'].flatMap((op) =>
  pair({
    rule: `verifier_value_ptr_arith.c: ${op} on a stack pointer is prohibited (${op} on a scalar copy is fine)`,
    progType: 'socket_filter',
    accept: `mov %r2, 8
      ${op} %r2, 1
      mov %r0, %r2
      exit`,
    retval: op === 'mod' ? 0n : op === 'mul' || op === 'div' ? 8n : op === 'lsh' ? 16n : 4n,
    reject: `mov %r2, %r10
      ${op} %r2, 1
      mov %r0, 0
      exit`,
    msg: `R2 pointer arithmetic with ${ALU_STRING[op]} operator prohibited`,
  }),
);

/** Bitwise operators on a pointer. */
const bitwise: VerifierCase[] = ['and', 'or', 'xor'].flatMap((op) =>
  pair({
    rule: `verifier_value_ptr_arith.c: bitwise ${op} on a stack pointer is prohibited`,
    progType: 'socket_filter',
    accept: `mov %r2, 6
      ${op} %r2, 3
      mov %r0, %r2
      exit`,
    retval: op === 'and' ? 2n : op === 'or' ? 7n : 5n,
    reject: `mov %r2, %r10
      ${op} %r2, 3
      mov %r0, 0
      exit`,
    msg: `R2 bitwise operator ${ALU_STRING[op]} on pointer prohibited`,
  }),
);

/** 32-bit ALU on a pointer. */
const alu32: VerifierCase[] = ['add32', 'sub32', 'mov32'].flatMap((op) =>
  pair({
    rule: `verifier_value_ptr_arith.c: 32-bit ${op} on a pointer is prohibited, the 64-bit op is fine`,
    progType: 'socket_filter',
    accept: `mov %r2, %r10
      ${op.replace('32', '')} %r2, ${op === 'mov32' ? '%r10' : '0'}
      stdw [%r2-8], 7
      ldxdw %r0, [%r10-8]
      exit`,
    retval: 7n,
    reject: `mov %r2, %r10
      ${op} %r2, ${op === 'mov32' ? '%r10' : '0'}
      stdw [%r2-8], 7
      ldxdw %r0, [%r10-8]
      exit`,
    // A root loader gets a scalar from mov32 and sub32 of a pointer (allow_ptr_leaks).
    msg: op === 'add32' ? 'R2 32-bit pointer arithmetic prohibited' : 'R2 invalid mem access',
  }),
);

/** Constant shifts must be below the operand width. */
const shifts: VerifierCase[] = [
  ['lsh', 63, 64],
  ['rsh', 63, 64],
  ['arsh', 63, 64],
  ['lsh32', 31, 32],
  ['rsh32', 31, 32],
  ['arsh32', 31, 32],
].flatMap(([op, ok, bad]) =>
  pair({
    rule: `verifier/basic_instr.c: ${String(op)} by the constant ${String(bad)} is an invalid shift`,
    progType: 'socket_filter',
    accept: `mov %r0, 1
      ${String(op)} %r0, ${String(ok)}
      exit`,
    retval: op === 'lsh' ? 1n << 63n : op === 'lsh32' ? 1n << 31n : 0n,
    reject: `mov %r0, 1
      ${String(op)} %r0, ${String(bad)}
      exit`,
    msg: `invalid shift ${String(bad)}`,
  }),
);

export const aluCases: readonly VerifierCase[] = [
  ...arith,
  ...bitwise,
  ...alu32,
  ...shifts,
  ...pair({
    rule: 'verifier_value_ptr_arith.c: pointer += pointer is prohibited, pointer += scalar is fine',
    progType: 'socket_filter',
    accept: `mov %r2, %r10
      mov %r3, -8
      add %r2, %r3
      stdw [%r2+0], 3
      ldxdw %r0, [%r10-8]
      exit`,
    retval: 3n,
    reject: `mov %r2, %r10
      mov %r3, %r10
      add %r2, %r3
      stdw [%r2+0], 3
      ldxdw %r0, [%r10-8]
      exit`,
    msg: 'R2 pointer += pointer prohibited',
  }),
  ...pair({
    rule: 'verifier_value_ptr_arith.c: scalar -= pointer is prohibited',
    progType: 'socket_filter',
    accept: `mov %r2, 8
      mov %r3, 3
      sub %r2, %r3
      mov %r0, %r2
      exit`,
    retval: 5n,
    reject: `mov %r2, 8
      mov %r3, %r10
      sub %r2, %r3
      mov %r0, 0
      exit`,
    msg: 'R2 tried to subtract pointer from scalar',
  }),
  ...pair({
    rule: 'verifier/ctx.c: a modified ctx pointer may not be dereferenced',
    progType: 'socket_filter',
    accept: `ldxw %r0, [%r1+0]
      exit`,
    input: [1, 2, 3],
    retval: 3n,
    reject: `add %r1, 4
      ldxw %r0, [%r1-4]
      exit`,
    msg: 'dereference of modified ctx ptr R1 off=4 disallowed',
  }),
  ...pair({
    rule: 'verifier_div0.c: dividing by a constant zero is refused, by a register is defined (0)',
    progType: 'socket_filter',
    accept: `mov %r0, 7
      mov %r2, 0
      div %r0, %r2
      exit`,
    retval: 0n,
    reject: `mov %r0, 7
      div %r0, 0
      exit`,
    msg: 'div by zero',
  }),
  ...pair({
    rule: 'verifier_div0.c: mod by a constant zero is refused, by a register keeps the dividend',
    progType: 'socket_filter',
    accept: `mov %r0, 7
      mov %r2, 0
      mod %r0, %r2
      exit`,
    retval: 7n,
    reject: `mov %r0, 7
      mod %r0, 0
      exit`,
    msg: 'div by zero',
  }),
  ...pair({
    rule: 'verifier_div0.c: 32-bit division by a constant zero is refused',
    progType: 'socket_filter',
    accept: `mov %r0, 7
      mov32 %r2, 0
      div32 %r0, %r2
      exit`,
    retval: 0n,
    reject: `mov %r0, 7
      div32 %r0, 0
      exit`,
    msg: 'div by zero',
  }),
  ...pair({
    rule: 'verifier_value_ptr_arith.c: arithmetic on pkt_end is prohibited',
    progType: 'xdp',
    accept: `ldxw %r3, [%r1+4]
      ldxw %r2, [%r1+0]
      add %r2, 1
      mov %r0, 2
      exit`,
    retval: 2n,
    reject: `ldxw %r3, [%r1+4]
      ldxw %r2, [%r1+0]
      add %r3, 1
      mov %r0, 2
      exit`,
    msg: 'R3 pointer arithmetic on pkt_end prohibited',
  }),
];
