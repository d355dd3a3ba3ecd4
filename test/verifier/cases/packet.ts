/**
 * Direct packet access (kernel check_packet_access / find_good_pkt_pointers /
 * try_match_pkt_pointers; verifier/direct_packet_access.c, verifier_xdp_direct_packet_access.c).
 * The kernel logs `invalid access to packet, off=.. size=.., R2(id=0,off=..,r=..)` and then
 * `R2 offset is outside of the packet`; `msg` is that last line and the rule names the detail.
 */
import { pair, type VerifierCase } from '../case.js';

/** The accepted form shared by several rules: one byte read after `data + 1 > data_end` is ruled out. */
const CHECKED_BYTE_READ = `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +1
      ldxb %r0, [%r2+0]
      exit`;

export const packetCases: readonly VerifierCase[] = [
  ...pair({
    rule: 'verifier/direct_packet_access.c (helper changes pkt data): after bpf_xdp_adjust_head every packet pointer must be reloaded from the ctx (clear_all_pkt_pointers)',
    progType: 'xdp',
    accept: `mov %r6, %r1
      mov %r2, 0
      call 44
      mov %r0, 0
      ldxw %r2, [%r6+0]
      ldxw %r3, [%r6+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +2
      mov %r7, %r2
      ldxb %r0, [%r7+0]
      exit`,
    input: [0x2a],
    retval: 0x2an,
    reject: `mov %r6, %r1
      mov %r0, 0
      ldxw %r2, [%r6+0]
      ldxw %r3, [%r6+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +4
      mov %r7, %r2
      mov %r2, 0
      call 44
      ldxb %r0, [%r7+0]
      exit`,
    msg: "R7 invalid mem access 'scalar'",
  }),
  ...pair({
    rule: 'verifier_xdp_direct_packet_access.c: a packet read before the data_end check is out of range (off=0 size=1, R2(id=0,off=0,r=0))',
    progType: 'xdp',
    accept: CHECKED_BYTE_READ,
    input: [0x2a],
    retval: 0x2an,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      ldxb %r0, [%r2+0]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
  ...pair({
    rule: 'verifier_xdp_direct_packet_access.c: checking 2 bytes allows off 1 but not off 2 (off=2 size=1, r=2)',
    progType: 'xdp',
    accept: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 2
      jgt %r4, %r3, +1
      ldxb %r0, [%r2+1]
      exit`,
    input: [1, 2, 3],
    retval: 2n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 2
      jgt %r4, %r3, +1
      ldxb %r0, [%r2+2]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
  ...pair({
    rule: 'verifier/direct_packet_access.c: a wider read past the checked range is out of range (off=1 size=2, r=2)',
    progType: 'xdp',
    accept: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 2
      jgt %r4, %r3, +1
      ldxh %r0, [%r2+0]
      exit`,
    input: [1, 2, 3],
    retval: 0x201n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 2
      jgt %r4, %r3, +1
      ldxh %r0, [%r2+1]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
  ...pair({
    rule: 'verifier/direct_packet_access.c: a negative offset from data is before the packet (off=-1 size=1)',
    progType: 'xdp',
    accept: CHECKED_BYTE_READ,
    input: [7],
    retval: 7n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +1
      ldxb %r0, [%r2-1]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
  ...pair({
    rule: 'verifier/direct_packet_access.c: comparing against a packet pointer instead of data_end proves no range',
    progType: 'xdp',
    accept: CHECKED_BYTE_READ,
    input: [5],
    retval: 5n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r2, +1
      ldxb %r0, [%r2+0]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
  ...pair({
    rule: 'verifier/direct_packet_access.c: the fall-through of a pkt < pkt_end test proves no range',
    progType: 'xdp',
    accept: CHECKED_BYTE_READ,
    input: [6],
    retval: 6n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jlt %r4, %r3, +1
      ldxb %r0, [%r2+0]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
  ...pair({
    rule: 'verifier/direct_packet_access.c: pointer arithmetic on pkt_end is prohibited',
    progType: 'xdp',
    accept: CHECKED_BYTE_READ,
    input: [8],
    retval: 8n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r3, -1
      jgt %r4, %r3, +1
      ldxb %r0, [%r2+0]
      exit`,
    msg: 'R3 pointer arithmetic on pkt_end prohibited',
  }),
  ...pair({
    rule: "verifier/direct_packet_access.c: data_end may be compared but not dereferenced (R3 invalid mem access 'pkt_end')",
    progType: 'xdp',
    accept: CHECKED_BYTE_READ,
    input: [9],
    retval: 9n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +1
      ldxb %r0, [%r3+0]
      exit`,
    msg: "R3 invalid mem access 'pkt_end'",
  }),
  ...pair({
    rule: 'verifier_xdp_direct_packet_access.c: a packet write must also lie inside the checked range (off=1 size=1, r=1)',
    progType: 'xdp',
    accept: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +2
      stb [%r2+0], 11
      ldxb %r0, [%r2+0]
      exit`,
    input: [1, 2],
    retval: 11n,
    reject: `mov %r0, 0
      ldxw %r2, [%r1+0]
      ldxw %r3, [%r1+4]
      mov %r4, %r2
      add %r4, 1
      jgt %r4, %r3, +2
      stb [%r2+1], 11
      ldxb %r0, [%r2+0]
      exit`,
    msg: 'R2 offset is outside of the packet',
  }),
];
