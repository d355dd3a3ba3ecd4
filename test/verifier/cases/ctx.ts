/** Context accesses (kernel check_ctx_access / *_is_valid_access; verifier/ctx_skb.c, verifier_xdp.c, verifier/ctx.c). */
import { pair, type VerifierCase } from '../case.js';

/** XDP: every xdp_md field is a u32 and only 4-byte reads are valid (__is_valid_xdp_access). */
const xdpSize: VerifierCase[] = [
  ['ingress_ifindex', 12],
  ['rx_queue_index', 16],
  ['egress_ifindex', 20],
].flatMap(([f, off]) =>
  (['ldxb', 'ldxh', 'ldxdw'] as const).flatMap((op) =>
    pair({
      rule: `verifier_xdp.c: xdp_md.${String(f)} may not be read with ${op}`,
      progType: 'xdp',
      accept: `ldxw %r0, [%r1+${String(off)}]
        exit`,
      retval: f === 'ingress_ifindex' ? 1n : 0n,
      reject: `${op} %r0, [%r1+${String(off)}]
        exit`,
      msg: `invalid bpf_context access off=${String(off)} size=${op === 'ldxb' ? 1 : op === 'ldxh' ? 2 : 8}`,
    }),
  ),
);

/** XDP: the context is read only. */
const xdpWrite: VerifierCase[] = [0, 4, 8, 12, 16, 20].flatMap((off) =>
  pair({
    rule: `verifier_xdp.c: xdp_md at off ${off} may be read but not written`,
    progType: 'xdp',
    accept: `mov %r2, 1
      ldxw %r2, [%r1+${off}]
      mov %r0, 2
      exit`,
    retval: 2n,
    reject: `mov %r2, 1
      stxw [%r1+${off}], %r2
      mov %r0, 2
      exit`,
    msg: `invalid bpf_context access off=${off} size=4`,
  }),
);

/** Offsets past the end of the context. */
const pastEnd: VerifierCase[] = (
  [
    ['xdp', 20, 24],
    ['xdp', 20, 28],
    ['socket_filter', 164, 192],
    ['socket_filter', 164, 200],
  ] as const
).flatMap(([t, ok, bad]) =>
  pair({
    rule: `verifier/ctx.c: a ${t} ctx read at off ${bad} is past the end of the context`,
    progType: t,
    accept: `ldxw %r0, [%r1+${ok}]
      exit`,
    input: [1, 2, 3],
    retval: 0n,
    reject: `ldxw %r0, [%r1+${bad}]
      exit`,
    msg: `invalid bpf_context access off=${bad} size=4`,
  }),
);

/** socket_filter: only cb[0..4] is writable (sk_filter_is_valid_access). */
const skbWrite: VerifierCase[] = (
  [
    ['len', 0],
    ['pkt_type', 4],
    ['mark', 8],
    ['queue_mapping', 12],
    ['protocol', 16],
    ['priority', 32],
    ['ifindex', 40],
    ['hash', 68],
  ] as const
).flatMap(([f, off]) =>
  pair({
    rule: `verifier/ctx_skb.c: socket_filter may write cb[] but not __sk_buff.${f}`,
    progType: 'socket_filter',
    accept: `mov %r2, 5
      stxw [%r1+48], %r2
      ldxw %r0, [%r1+48]
      exit`,
    retval: 5n,
    reject: `mov %r2, 5
      stxw [%r1+${off}], %r2
      ldxw %r0, [%r1+48]
      exit`,
    msg: `invalid bpf_context access off=${off} size=4`,
  }),
);

/** socket_filter: direct packet access and socket fields are not available (sk_filter_is_valid_access). */
const skbDenied: VerifierCase[] = (
  [
    ['data', 76],
    ['data_end', 80],
    ['tc_classid', 72],
    ['family', 88],
    ['remote_ip4', 92],
    ['local_port', 136],
    ['data_meta', 140],
    ['wire_len', 160],
  ] as const
).flatMap(([f, off]) =>
  pair({
    rule: `verifier/ctx_skb.c: socket_filter may not read __sk_buff.${f}`,
    progType: 'socket_filter',
    accept: `ldxw %r0, [%r1+0]
      exit`,
    input: [9, 9],
    retval: 2n,
    reject: `ldxw %r0, [%r1+${off}]
      exit`,
    msg: `invalid bpf_context access off=${off} size=4`,
  }),
);

/** __sk_buff narrow loads: aligned narrow reads are fine, misaligned ones are not. */
const skbNarrow: VerifierCase[] = (
  [
    ['ldxh', 0, 1],
    ['ldxh', 8, 9],
    ['ldxw', 0, 2],
  ] as const
).flatMap(([op, ok, bad]) =>
  pair({
    rule: `verifier/ctx_skb.c: a ${op} of __sk_buff at off ${bad} is not aligned to its size`,
    progType: 'socket_filter',
    accept: `${op} %r0, [%r1+${ok}]
      exit`,
    input: [1, 2, 3],
    retval: ok === 0 ? 3n : 0n,
    reject: `${op} %r0, [%r1+${bad}]
      exit`,
    msg: `invalid bpf_context access off=${bad} size=${op === 'ldxh' ? 2 : 4}`,
  }),
);

export const ctxCases: readonly VerifierCase[] = [
  ...xdpSize,
  ...xdpWrite,
  ...pastEnd,
  ...skbWrite,
  ...skbDenied,
  ...skbNarrow,
  ...pair({
    rule: 'verifier/ctx_skb.c: cb[4] ends at off 68, an 8-byte read at cb[4] crosses it',
    progType: 'socket_filter',
    accept: `ldxdw %r0, [%r1+56]
      exit`,
    retval: 0n,
    reject: `ldxdw %r0, [%r1+64]
      exit`,
    msg: 'invalid bpf_context access off=64 size=8',
  }),
  ...pair({
    rule: 'verifier/ctx.c: a negative ctx offset is invalid',
    progType: 'socket_filter',
    accept: `ldxw %r0, [%r1+0]
      exit`,
    input: [1],
    retval: 1n,
    reject: `ldxw %r0, [%r1-4]
      exit`,
    msg: 'invalid bpf_context access off=-4 size=4',
  }),
];
