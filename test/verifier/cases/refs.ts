/**
 * Acquired references: ringbuf records (kernel acquire_reference_state / release_reference /
 * check_reference_leak / mark_ptr_or_null_regs; verifier/ringbuf.c, verifier_ref_tracking.c).
 * bpf_ringbuf_reserve is insn 4 in every program here (after the two-slot lddw and two movs),
 * and its reference gets id 2 (id 1 goes to the maybe-NULL result first).
 */
import { RINGBUF, pair, type VerifierCase } from '../case.js';

const RB = [{ type: RINGBUF, keySize: 0, valueSize: 0, maxEntries: 4096 }] as const;

export const refCases: readonly VerifierCase[] = [
  ...pair({
    rule: 'verifier/ringbuf.c: a reserved record must be submitted or discarded before exit',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +5
      stdw [%r0+0], 1
      mov %r1, %r0
      mov %r2, 0
      call 132
      mov %r0, 5
      exit`,
    retval: 5n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +5
      stdw [%r0+0], 1
      mov %r1, %r0
      mov %r2, 0
      mov %r3, 0
      mov %r0, 5
      exit`,
    msg: 'Unreleased reference id=2 alloc_insn=4',
  }),
  ...pair({
    rule: 'verifier_ref_tracking.c: a reference released on one branch only leaks on the other',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +9
      mov %r6, %r0
      call 7
      mov %r1, %r6
      mov %r2, 0
      jeq %r0, 1234, +2
      call 132
      ja +1
      call 133
      mov %r0, 5
      exit`,
    retval: 5n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +9
      mov %r6, %r0
      call 7
      mov %r1, %r6
      mov %r2, 0
      jeq %r0, 1234, +2
      call 132
      ja +1
      mov %r3, 0
      mov %r0, 5
      exit`,
    msg: 'Unreleased reference id=2 alloc_insn=4',
  }),
  ...pair({
    rule: 'verifier/ringbuf.c: submitting a maybe-NULL record is rejected',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +4
      mov %r1, %r0
      mov %r2, 0
      call 132
      mov %r0, 6
      exit`,
    retval: 6n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      mov %r1, %r0
      mov %r2, 0
      call 132
      mov %r0, 6
      exit`,
    msg: 'R1 type=ringbuf_mem_or_null expected=ringbuf_mem',
  }),
  ...pair({
    rule: 'verifier/ringbuf.c: discarding a maybe-NULL record is rejected',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +4
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 7
      exit`,
    retval: 7n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 7
      exit`,
    msg: 'R1 type=ringbuf_mem_or_null expected=ringbuf_mem',
  }),
  ...pair({
    rule: "verifier/ringbuf.c: a reserved record may not be written before the NULL check (R0 invalid mem access 'ringbuf_mem_or_null')",
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +5
      stdw [%r0+0], 1
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 8
      exit`,
    retval: 8n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      stdw [%r0+0], 1
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 8
      exit`,
    msg: "R0 invalid mem access 'ringbuf_mem_or_null'",
  }),
  ...pair({
    rule: 'verifier/ringbuf.c: a write past the reserved size is out of bounds (invalid access to memory, mem_size=8 off=8 size=8)',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 16
      mov %r3, 0
      call 131
      jeq %r0, 0, +5
      stdw [%r0+8], 1
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 9
      exit`,
    retval: 9n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +5
      stdw [%r0+8], 1
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 9
      exit`,
    msg: 'R0 min value is outside of the allowed memory range',
  }),
  ...pair({
    rule: 'verifier/ringbuf.c: the reservation size must be a known constant',
    progType: 'socket_filter',
    maps: RB,
    accept: `ldxw %r2, [%r1+0]
      lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +4
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 10
      exit`,
    input: [1, 2],
    retval: 10n,
    reject: `ldxw %r2, [%r1+0]
      lddw %r1, map_fd 1
      and %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +4
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 10
      exit`,
    msg: 'R2 is not a known constant',
  }),
  ...pair({
    rule: 'verifier_ref_tracking.c: a copy of a submitted record is invalidated with it (use after release)',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +7
      mov %r6, %r0
      stdw [%r6+0], 3
      ldxdw %r7, [%r6+0]
      mov %r1, %r6
      mov %r2, 0
      call 132
      mov %r0, %r7
      exit`,
    retval: 3n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +7
      mov %r6, %r0
      stdw [%r6+0], 3
      mov %r1, %r6
      mov %r2, 0
      call 132
      ldxw %r7, [%r6+0]
      mov %r0, %r7
      exit`,
    msg: 'R6 !read_ok',
  }),
  ...pair({
    rule: 'verifier_ref_tracking.c: a record may not be submitted twice (its copies are invalid after the first release)',
    progType: 'socket_filter',
    maps: RB,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +7
      mov %r6, %r0
      mov %r1, %r6
      mov %r2, 0
      call 132
      mov %r2, 0
      mov %r2, 0
      mov %r0, 11
      exit`,
    retval: 11n,
    reject: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +7
      mov %r6, %r0
      mov %r1, %r6
      mov %r2, 0
      call 132
      mov %r1, %r6
      call 132
      mov %r0, 11
      exit`,
    msg: 'R6 !read_ok',
  }),
];
