/** Control flow (kernel check_cfg / check_subprogs; verifier_cfg.c, verifier/jump.c, verifier_loops1.c). */
import { pair, type VerifierCase } from '../case.js';

export const cfgCases: readonly VerifierCase[] = [
  ...pair({
    rule: 'verifier_cfg.c: an insn after the final exit is unreachable',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      exit`,
    retval: 0n,
    reject: `mov %r0, 0
      exit
      mov %r0, 1
      exit`,
    msg: 'unreachable insn 2',
  }),
  ...pair({
    rule: 'verifier_cfg.c: an insn skipped by an unconditional ja is unreachable',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      jeq %r0, 1, +1
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `mov %r0, 0
      ja +1
      mov %r0, 1
      exit`,
    msg: 'unreachable insn 2',
  }),
  ...pair({
    rule: 'verifier_cfg.c: a dead insn inside a subprogram is unreachable',
    progType: 'socket_filter',
    accept: `call local f
      exit
      f:
      mov %r0, 3
      exit`,
    retval: 3n,
    reject: `call local f
      exit
      f:
      mov %r0, 3
      exit
      mov %r0, 4
      exit`,
    msg: 'unreachable insn 4',
  }),
  ...pair({
    rule: 'verifier/jump.c: a forward jump past the last insn is out of range',
    progType: 'socket_filter',
    accept: `mov %r0, 2
      ja +0
      exit`,
    retval: 2n,
    reject: `mov %r0, 2
      ja +5
      exit`,
    msg: 'jump out of range from insn 1 to 7',
    structural: true,
  }),
  ...pair({
    rule: 'verifier/jump.c: a backward jump before insn 0 is out of range',
    progType: 'socket_filter',
    accept: `mov %r0, 2
      jeq %r0, 0, -2
      exit`,
    retval: 2n,
    reject: `mov %r0, 2
      jeq %r0, 0, -3
      exit`,
    msg: 'jump out of range from insn 1 to -1',
    structural: true,
  }),
  ...pair({
    rule: 'verifier/calls.c: a jump may not leave its subprogram',
    progType: 'socket_filter',
    accept: `call local f
      exit
      f:
      mov %r0, 5
      ja +0
      exit`,
    retval: 5n,
    reject: `call local f
      exit
      f:
      mov %r0, 5
      ja -4
      exit`,
    msg: 'jump out of range from insn 3 to 0',
    structural: true,
  }),
  ...pair({
    rule: 'verifier/ld_imm64.c: a jump into the second slot of lddw is refused',
    progType: 'socket_filter',
    accept: `jeq %r1, 0, +2
      lddw %r0, 0x100000001
      mov %r0, 7
      exit`,
    retval: 7n,
    reject: `jeq %r1, 0, +1
      lddw %r0, 0x100000001
      mov %r0, 7
      exit`,
    msg: 'jump into the middle of ldimm64 insn 1',
    structural: true,
  }),
  ...pair({
    rule: 'verifier/basic.c: the last insn must be an exit or a jump',
    progType: 'socket_filter',
    accept: `mov %r0, 1
      exit`,
    retval: 1n,
    reject: `mov %r0, 1
      mov %r0, 2`,
    msg: 'last insn is not an exit or jmp',
    structural: true,
  }),
  ...pair({
    rule: 'verifier/calls.c: the last insn of a subprogram must be an exit or a jump',
    progType: 'socket_filter',
    accept: `call local f
      exit
      f:
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `call local f
      exit
      f:
      mov %r0, 1`,
    msg: 'last insn is not an exit or jmp',
    structural: true,
  }),
  ...pair({
    rule: 'verifier_loops1.c: a bounded loop is accepted, a loop whose state never changes is infinite',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      l:
      add %r0, 1
      jlt %r0, 10, l
      exit`,
    retval: 10n,
    reject: `mov %r0, 0
      l:
      add %r0, 0
      jlt %r0, 10, l
      exit`,
    msg: 'infinite loop detected at insn 1',
  }),
  ...pair({
    rule: 'verifier_loops1.c: ja to itself is an infinite loop',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      jeq %r0, 1, -1
      exit`,
    retval: 0n,
    reject: `mov %r0, 0
      jeq %r0, 0, -1
      exit`,
    msg: 'infinite loop detected at insn 1',
  }),
  ...pair({
    rule: 'verifier_loops1.c: a loop bounded by a masked ctx value is explored; unmasked it exceeds the complexity limit',
    progType: 'socket_filter',
    accept: `ldxw %r2, [%r1+0]
      and %r2, 15
      mov %r0, 0
      l:
      add %r0, 1
      jgt %r2, %r0, l
      exit`,
    input: [1, 2, 3, 4, 5, 6, 7, 8],
    retval: 8n,
    reject: `ldxw %r2, [%r1+0]
      mov %r0, 0
      l:
      add %r0, 1
      jgt %r2, %r0, l
      exit`,
    msg: 'BPF program is too large',
  }),
  ...pair({
    rule: 'verifier_loops1.c: a down-counting loop from a constant terminates',
    progType: 'socket_filter',
    accept: `mov %r0, 0
      mov %r2, 5
      l:
      add %r0, 2
      sub %r2, 1
      jne %r2, 0, l
      exit`,
    retval: 10n,
    reject: `mov %r0, 0
      mov %r2, 5
      l:
      add %r0, 2
      sub %r2, 2
      jne %r2, 0, l
      exit`,
    msg: 'BPF program is too large',
  }),
  ...pair({
    rule: 'verifier/ld_abs.c: BPF_LD_ABS cannot be mixed with bpf-to-bpf calls',
    progType: 'socket_filter',
    accept: `mov %r6, %r1
      ldabsb 0
      exit`,
    input: [0x2a, 0, 0, 0],
    retval: 0x2an,
    reject: `mov %r6, %r1
      ldabsb 0
      call local f
      exit
      f:
      mov %r0, 0
      exit`,
    msg: 'BPF_LD_[ABS|IND] instructions cannot be mixed with bpf-to-bpf calls',
    structural: true,
  }),
  ...pair({
    rule: 'verifier/ld_abs.c: BPF_LD_ABS needs the ctx in r6',
    progType: 'socket_filter',
    accept: `mov %r6, %r1
      ldabsh 0
      exit`,
    input: [0x12, 0x34, 0, 0],
    retval: 0x1234n,
    reject: `mov %r7, %r1
      ldabsh 0
      exit`,
    msg: 'R6 !read_ok',
  }),
  ...pair({
    rule: 'verifier/ld_abs.c: BPF_LD_IND reads its index register',
    progType: 'socket_filter',
    accept: `mov %r6, %r1
      mov %r7, 1
      ldindb %r7, 0
      exit`,
    input: [0x11, 0x22, 0, 0],
    retval: 0x22n,
    reject: `mov %r6, %r1
      ldindb %r7, 0
      exit`,
    msg: 'R7 !read_ok',
  }),
];
