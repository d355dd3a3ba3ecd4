/**
 * Map lookups and map values (kernel check_map_access / check_mem_region_access /
 * check_helper_mem_access; verifier_map_ptr.c, verifier_array_access.c, verifier/value_ptr_arith.c,
 * verifier_helper_value_access.c). Where the kernel logs a detail line before the failing one
 * (`invalid access to map value, value_size=8 off=8 size=8`), `msg` is the last line and the
 * rule names the detail.
 */
import { ARRAY, HASH, pair, type VerifierCase } from '../case.js';

/** A 4-entry array of u64 values: key 0 is always present. */
const ARR = [{ type: ARRAY, keySize: 4, valueSize: 8, maxEntries: 4 }] as const;
/** A hash map with an 8-byte key, so a half-written key is a partial read. */
const HASH8 = [{ type: HASH, keySize: 8, valueSize: 8, maxEntries: 4 }] as const;

export const mapCases: readonly VerifierCase[] = [
  ...pair({
    rule: "verifier_map_ptr.c: the lookup result must be null-checked before it is dereferenced (R0 invalid mem access 'map_value_or_null')",
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +2
      stdw [%r0+0], 7
      ldxdw %r0, [%r0+0]
      exit`,
    retval: 7n,
    reject: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      stdw [%r0+0], 7
      ldxdw %r0, [%r0+0]
      exit`,
    msg: "R0 invalid mem access 'map_value_or_null'",
  }),
  ...pair({
    rule: 'verifier_array_access.c: a read at the end of an 8-byte value is out of bounds (invalid access to map value, value_size=8 off=8 size=8)',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 1
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      ldxdw %r0, [%r0+0]
      exit`,
    retval: 0n,
    reject: `stw [%r10-4], 1
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      ldxdw %r0, [%r0+8]
      exit`,
    msg: 'R0 min value is outside of the allowed memory range',
  }),
  ...pair({
    rule: 'verifier_array_access.c: a write straddling the end of the value is out of bounds (invalid access to map value, value_size=8 off=4 size=8)',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 2
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +2
      stw [%r0+4], 3
      ldxdw %r0, [%r0+0]
      exit`,
    retval: 3n << 32n,
    reject: `stw [%r10-4], 2
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +2
      stdw [%r0+4], 3
      ldxdw %r0, [%r0+0]
      exit`,
    msg: 'R0 min value is outside of the allowed memory range',
  }),
  ...pair({
    rule: 'verifier/value_ptr_arith.c: a negative constant offset from the value start is out of bounds (invalid access to map value, value_size=8 off=-8 size=8)',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      ldxdw %r0, [%r0+0]
      exit`,
    retval: 0n,
    reject: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      ldxdw %r0, [%r0-8]
      exit`,
    msg: 'R0 min value is outside of the allowed memory range',
  }),
  ...pair({
    rule: 'verifier_array_access.c: a signed index bounded only above may be negative (R6 min value is negative)',
    progType: 'socket_filter',
    maps: ARR,
    accept: `mov %r9, %r1
      stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +11
      mov %r6, %r0
      stdw [%r6+0], 0x04030201
      ldxw %r7, [%r9+0]
      lsh %r7, 32
      arsh %r7, 32
      mov %r0, 0
      jsgt %r7, 7, +4
      jslt %r7, 0, +3
      add %r6, %r7
      ldxb %r0, [%r6+0]
      exit
      exit`,
    input: [9, 9, 9],
    retval: 4n,
    reject: `mov %r9, %r1
      stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +11
      mov %r6, %r0
      stdw [%r6+0], 0x04030201
      ldxw %r7, [%r9+0]
      lsh %r7, 32
      arsh %r7, 32
      mov %r0, 0
      jsgt %r7, 7, +4
      jslt %r7, -4, +3
      add %r6, %r7
      ldxb %r0, [%r6+0]
      exit
      exit`,
    msg: 'R6 min value is negative, either use unsigned index or do a if (index >=0) check.',
  }),
  ...pair({
    rule: 'verifier_array_access.c: an index with no upper bound is an unbounded memory access',
    progType: 'socket_filter',
    maps: ARR,
    accept: `mov %r9, %r1
      stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +7
      mov %r6, %r0
      stdw [%r6+0], 0x04030201
      ldxw %r7, [%r9+0]
      and %r7, 7
      add %r6, %r7
      ldxb %r0, [%r6+0]
      exit
      exit`,
    input: [9, 9],
    retval: 3n,
    reject: `mov %r9, %r1
      stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +7
      mov %r6, %r0
      stdw [%r6+0], 0x04030201
      ldxw %r7, [%r9+0]
      mov %r7, %r7
      add %r6, %r7
      ldxb %r0, [%r6+0]
      exit
      exit`,
    msg: 'R6 unbounded memory access, make sure to bounds check any such access',
  }),
  ...pair({
    rule: 'verifier_map_ptr.c: pointer arithmetic on the lookup result before the null check is prohibited',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      mov %r6, %r0
      jeq %r6, 0, +3
      add %r6, 4
      stw [%r6+0], 9
      ldxw %r0, [%r6+0]
      exit`,
    retval: 9n,
    reject: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      mov %r6, %r0
      add %r6, 4
      jeq %r6, 0, +2
      stw [%r6+0], 9
      ldxw %r0, [%r6+0]
      exit`,
    msg: 'R6 pointer arithmetic on map_value_or_null prohibited, null-check it first',
  }),
  ...pair({
    rule: 'verifier_helper_value_access.c: the lookup key must be initialised stack (invalid indirect read from stack)',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 3
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    retval: 1n,
    reject: `mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 1
      exit`,
    msg: 'invalid indirect read from stack R2 off -4+0 size 4',
  }),
  ...pair({
    rule: 'verifier_helper_value_access.c: every byte of the key must be initialised, not only its first word',
    progType: 'socket_filter',
    maps: HASH8,
    accept: `stdw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      lddw %r1, map_fd 1
      call 1
      mov %r0, 0
      exit`,
    retval: 0n,
    reject: `stw [%r10-8], 0
      mov %r2, %r10
      add %r2, -8
      lddw %r1, map_fd 1
      call 1
      mov %r0, 0
      exit`,
    msg: 'invalid indirect read from stack R2 off -8+4 size 8',
  }),
  ...pair({
    rule: 'verifier_helper_value_access.c: a key that runs past the frame pointer is outside the stack',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -4
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 2
      exit`,
    retval: 2n,
    reject: `stw [%r10-4], 0
      mov %r2, %r10
      add %r2, -2
      lddw %r1, map_fd 1
      call 1
      jeq %r0, 0, +1
      mov %r0, 2
      exit`,
    msg: 'invalid indirect access to stack R2 off=-2 size=4',
  }),
  ...pair({
    rule: 'verifier_helper_value_access.c: the value passed to map_update_elem must be initialised stack',
    progType: 'socket_filter',
    maps: ARR,
    accept: `stw [%r10-4], 1
      stdw [%r10-16], 5
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      mov %r4, 0
      lddw %r1, map_fd 1
      call 2
      exit`,
    retval: 0n,
    reject: `stw [%r10-4], 1
      mov %r2, %r10
      add %r2, -4
      mov %r3, %r10
      add %r3, -16
      mov %r4, 0
      lddw %r1, map_fd 1
      call 2
      exit`,
    msg: 'invalid indirect read from stack R3 off -16+0 size 8',
  }),
];
