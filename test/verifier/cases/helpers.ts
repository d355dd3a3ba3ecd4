/**
 * Helper calls: prototypes, argument types and program-type availability (kernel
 * check_helper_call / check_func_arg / check_reg_type / check_mem_size_reg /
 * check_map_func_compatibility; verifier/helper_*.c, verifier_helper_packet_access.c,
 * verifier_unpriv.c, verifier/ringbuf.c).
 */
import { ARRAY, RINGBUF, pair, type VerifierCase } from '../case.js';

const ARR = [{ type: ARRAY, keySize: 4, valueSize: 8, maxEntries: 4 }] as const;
const RB = [{ type: RINGBUF, keySize: 0, valueSize: 0, maxEntries: 4096 }] as const;
const RB_ARR = [...RB, ...ARR] as const;

export const helperCases: readonly VerifierCase[] = [
  ...pair({
    rule: 'verifier_map_ptr.c: the map argument must be a map pointer, not a scalar',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      mov %r1, 0
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    msg: 'R1 type=scalar expected=map_ptr',
  }),
  ...pair({
    rule: 'verifier/helper_access_var_len.c: the key argument must point to memory; the context is not accepted',
    progType: 'socket_filter',
    maps: ARR,
    accept: `mov %r9, %r1
      stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `mov %r9, %r1
      stw [%r10-4], 0
      mov %r2, %r9
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    msg: 'R2 type=ctx expected=fp',
  }),
  ...pair({
    rule: 'verifier/helper_access_var_len.c: a NULL key is not accepted where the argument may not be null',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 3
      exit`,
    retval: -22n & 0xffffffffffffffffn,
    reject: `stw [%r10-4], 0
      mov %r2, 0
      lddw %r1, map_fd 1
      call 3
      exit`,
    msg: 'R2 type=scalar expected=fp',
  }),
  ...pair({
    rule: "verifier/helper_access_var_len.c: a size argument with no upper bound is rejected (use 'var &= const')",
    progType: 'socket_filter',
    maps: RB,
    accept: `ldxw %r3, [%r1+0]
      stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      and %r3, 7
      mov %r4, 0
      lddw %r1, map_fd 1
      call 130
      exit`,
    input: [1, 2, 3],
    retval: 0n,
    reject: `ldxw %r3, [%r1+0]
      stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      mov %r4, 0
      lddw %r1, map_fd 1
      call 130
      exit`,
    msg: "use 'var &= const' or 'if (var < const)'",
  }),
  ...pair({
    rule: 'verifier/helper_access_var_len.c: a size argument bounded only by a signed test may be negative (R3 min value is negative)',
    progType: 'socket_filter',
    maps: RB,
    accept: `ldxw %r3, [%r1+0]
      lsh %r3, 32
      arsh %r3, 32
      mov %r0, 0
      jgt %r3, 8, +7
      stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      mov %r4, 0
      lddw %r1, map_fd 1
      call 130
      exit`,
    input: [1, 2, 3, 4],
    retval: 0n,
    reject: `ldxw %r3, [%r1+0]
      lsh %r3, 32
      arsh %r3, 32
      mov %r0, 0
      jsgt %r3, 8, +7
      stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      mov %r4, 0
      lddw %r1, map_fd 1
      call 130
      exit`,
    msg: "R3 min value is negative, either use unsigned or 'var &= const'",
  }),
  ...pair({
    rule: 'verifier/helper_access_var_len.c: a constant size larger than the stack buffer reaches past the frame',
    progType: 'socket_filter',
    maps: RB,
    accept: `stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      mov %r3, 8
      mov %r4, 0
      lddw %r1, map_fd 1
      call 130
      exit`,
    retval: 0n,
    reject: `stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      mov %r3, 16
      mov %r4, 0
      lddw %r1, map_fd 1
      call 130
      exit`,
    msg: 'invalid indirect access to stack R2 off=-8 size=16',
  }),
  ...pair({
    rule: 'verifier/junk_insn.c: a helper id beyond __BPF_FUNC_MAX_ID is an invalid func',
    progType: 'socket_filter',
    accept: `call 7
      mov %r0, 3
      exit`,
    retval: 3n,
    reject: `call 9999
      mov %r0, 3
      exit`,
    msg: 'invalid func unknown#9999',
  }),
  ...pair({
    rule: 'verifier/unpriv.c: a socket filter cannot use the XDP-only helper bpf_xdp_adjust_head',
    progType: 'socket_filter',
    accept: `mov %r2, 0
      call 7
      mov %r0, 4
      exit`,
    retval: 4n,
    reject: `mov %r2, 0
      call 44
      mov %r0, 4
      exit`,
    msg: 'program of this type cannot use helper bpf_xdp_adjust_head#44',
  }),
  ...pair({
    rule: 'verifier/unpriv.c: an XDP program cannot use the skb-only helper bpf_skb_load_bytes',
    progType: 'xdp',
    accept: `call 7
      mov %r0, 2
      exit`,
    retval: 2n,
    reject: `call 26
      mov %r0, 2
      exit`,
    msg: 'program of this type cannot use helper bpf_skb_load_bytes#26',
  }),
  ...pair({
    rule: 'verifier/ringbuf.c: bpf_ringbuf_reserve takes a ringbuf map, not an array (check_map_func_compatibility)',
    progType: 'socket_filter',
    maps: RB_ARR,
    accept: `lddw %r1, map_fd 1
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +4
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `lddw %r1, map_fd 2
      mov %r2, 8
      mov %r3, 0
      call 131
      jeq %r0, 0, +4
      mov %r1, %r0
      mov %r2, 0
      call 133
      mov %r0, 1
      exit`,
    msg: 'cannot pass map_type 2 into func bpf_ringbuf_reserve#131',
  }),
  ...pair({
    rule: 'verifier/ringbuf.c: bpf_map_lookup_elem does not take a ringbuf map (check_map_func_compatibility)',
    progType: 'socket_filter',
    maps: RB_ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 2
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    msg: 'cannot pass map_type 27 into func bpf_map_lookup_elem#1',
  }),
];
