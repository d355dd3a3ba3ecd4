/**
 * Program return values (kernel check_return_code / verbose_invalid_scalar;
 * verifier/cgroup_skb.c, verifier_cgroup_inv_retcode.c, verifier_netfilter_retcode.c). A
 * cgroup_skb program (ingress, the default attach type) must return 0 or 1; socket_filter and
 * XDP have no range. Without CAP_PERFMON (the model this corpus uses, as for uninitialised
 * stack) a pointer may not be returned: `R0 leaks addr as return value`.
 */
import { pair, type VerifierCase } from '../case.js';

export const exitCases: readonly VerifierCase[] = [
  ...pair({
    rule: 'verifier/cgroup_skb.c: a cgroup_skb program returning the constant 2 is out of [0, 1]',
    progType: 'cgroup_skb',
    accept: `mov %r0, 1
      exit`,
    retval: 1n,
    reject: `mov %r0, 2
      exit`,
    msg: 'At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier/cgroup_skb.c: a cgroup_skb program returning -1 is out of [0, 1]',
    progType: 'cgroup_skb',
    accept: `mov %r0, 0
      exit`,
    retval: 0n,
    reject: `mov %r0, -1
      exit`,
    msg: 'At program exit the register R0 has smin=-1 smax=-1 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier/cgroup_skb.c: a 64-bit return value is checked in full, not truncated to 32 bits',
    progType: 'cgroup_skb',
    accept: `lddw %r0, 0x1
      exit`,
    retval: 1n,
    reject: `lddw %r0, 0x100000001
      exit`,
    msg: 'At program exit the register R0 has smin=4294967297 smax=4294967297 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier_cgroup_inv_retcode.c: an unchecked u32 context field as the cgroup_skb return value',
    progType: 'cgroup_skb',
    accept: `ldxw %r0, [%r1+0]
      and %r0, 1
      exit`,
    input: [1, 2, 3],
    retval: 1n,
    reject: `ldxw %r0, [%r1+0]
      exit`,
    msg: 'At program exit the register R0 has smin=0 smax=4294967295 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier_cgroup_inv_retcode.c: a fully unknown 64-bit return value (unknown scalar value)',
    progType: 'cgroup_skb',
    accept: `call 5
      rsh %r0, 63
      exit`,
    retval: 0n,
    reject: `call 5
      exit`,
    msg: 'At program exit the register R0 has unknown scalar value should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier/cgroup_skb.c: a bounds check that still admits 2 leaves the return value out of range',
    progType: 'cgroup_skb',
    accept: `ldxw %r0, [%r1+0]
      jle %r0, 1, +1
      mov %r0, 0
      exit`,
    input: [4],
    retval: 1n,
    reject: `ldxw %r0, [%r1+0]
      jle %r0, 2, +1
      mov %r0, 0
      exit`,
    msg: 'At program exit the register R0 has smin=0 smax=2 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier/cgroup_skb.c: the range is checked on every path to exit, here a branch returning 3',
    progType: 'cgroup_skb',
    accept: `ldxw %r2, [%r1+0]
      mov %r0, 1
      jeq %r2, 7, +1
      mov %r0, 0
      exit`,
    input: [1],
    retval: 0n,
    reject: `ldxw %r2, [%r1+0]
      mov %r0, 1
      jeq %r2, 7, +1
      mov %r0, 3
      exit`,
    msg: 'At program exit the register R0 has smin=3 smax=3 should have been in [0, 1]',
  }),
  ...pair({
    rule: 'verifier/unpriv.c: a socket filter may return any scalar, but not a pointer (R0 leaks addr as return value)',
    progType: 'socket_filter',
    accept: `mov %r0, -2
      exit`,
    retval: 0xfffffffffffffffen,
    reject: `mov %r0, %r10
      exit`,
    msg: 'R0 leaks addr as return value',
  }),
  ...pair({
    rule: 'verifier_xdp.c: an XDP program may return any u32, even one that is no XDP action, but not its context',
    progType: 'xdp',
    accept: `mov32 %r0, -1
      exit`,
    retval: 0xffffffffn,
    reject: `mov %r0, %r1
      exit`,
    msg: 'R0 leaks addr as return value',
  }),
];
