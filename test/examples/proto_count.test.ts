/**
 * examples/proto_count: packets counted per IP protocol in a hash map, bytes in a percpu_array;
 * malformed frames counted under KEY_MALFORMED (0x100) and dropped, non-IP under KEY_NON_IP
 * (0x200) and passed.
 */
import { describe, expect, it } from 'vitest';
import { TestRunError } from '../../src/errors.js';
import { asU64, u32 } from '../helpers/maps.js';
import {
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  XDP_DROP,
  XDP_PASS,
  arpRequest,
  concat,
  eth,
  ipv4,
  ipv6,
  mac,
  tcp,
  udp,
  withPayload,
} from '../helpers/packets.js';
import { ENGINES, exampleObject, le, loadExample } from './example.js';

const KEY_MALFORMED = 0x100;
const KEY_NON_IP = 0x200;

const A = mac('02:00:00:00:00:0a');
const B = mac('02:00:00:00:00:0b');
const v4 = (
  protocol: number,
  l4: Uint8Array,
  extra = 0,
  over: Partial<Parameters<typeof ipv4>[0]> = {},
) =>
  withPayload(
    concat(
      eth(B, A, ETH_P_IP),
      ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol, payloadLen: l4.length + extra, ...over }),
      l4,
    ),
    extra,
  );
const v6 = (nexthdr: number, l4: Uint8Array) =>
  concat(eth(B, A, ETH_P_IPV6), ipv6({ nexthdr, payloadLen: l4.length }), l4);

/** [name, packet, verdict, key it is counted under] */
const CASES: readonly (readonly [string, Uint8Array, number, number])[] = [
  ['IPv4 TCP', v4(IPPROTO_TCP, tcp(1000, 80), 6), XDP_PASS, IPPROTO_TCP],
  ['IPv4 TCP', v4(IPPROTO_TCP, tcp(1001, 80), 100), XDP_PASS, IPPROTO_TCP],
  ['IPv4 TCP', v4(IPPROTO_TCP, tcp(1002, 443)), XDP_PASS, IPPROTO_TCP],
  ['IPv4 UDP', v4(IPPROTO_UDP, udp(53, 5353, 10), 10), XDP_PASS, IPPROTO_UDP],
  ['IPv4 UDP', v4(IPPROTO_UDP, udp(53, 5353)), XDP_PASS, IPPROTO_UDP],
  ['IPv6 ICMPv6', v6(IPPROTO_ICMPV6, new Uint8Array(8)), XDP_PASS, IPPROTO_ICMPV6],
  ['IPv6 TCP', v6(IPPROTO_TCP, tcp(2000, 22)), XDP_PASS, IPPROTO_TCP],
  ['ARP', arpRequest(A, '10.0.0.1', '10.0.0.2'), XDP_PASS, KEY_NON_IP],
  ['a 10-byte runt', new Uint8Array(10), XDP_DROP, KEY_MALFORMED],
  [
    'IPv4 cut inside its header',
    concat(eth(B, A, ETH_P_IP), new Uint8Array(10)),
    XDP_DROP,
    KEY_MALFORMED,
  ],
  ['IPv4 with IHL 4', v4(IPPROTO_TCP, tcp(1, 2), 0, { ihl: 4 }), XDP_DROP, KEY_MALFORMED],
  ['IPv4 with version 6', v4(IPPROTO_TCP, tcp(1, 2), 0, { version: 6 }), XDP_DROP, KEY_MALFORMED],
  [
    'IPv4 with IHL 15 past the end',
    v4(IPPROTO_UDP, udp(1, 2), 0, { ihl: 15 }),
    XDP_DROP,
    KEY_MALFORMED,
  ],
  [
    'IPv6 cut inside its header',
    concat(eth(B, A, ETH_P_IPV6), new Uint8Array(39)),
    XDP_DROP,
    KEY_MALFORMED,
  ],
];

describe('examples/proto_count', () => {
  for (const engine of ENGINES) {
    it(`counts packets per IP protocol, bytes per CPU, and drops malformed frames (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('proto_count'), engine);
      try {
        const prog = obj.program('proto_count');
        const want = new Map<number, bigint>();
        let bytes = 0n;
        for (const [name, packet, verdict, key] of CASES) {
          expect(prog.run(packet), name).toBe(BigInt(verdict));
          want.set(key, (want.get(key) ?? 0n) + 1n);
          bytes += BigInt(packet.length);
        }
        const packets = obj.map('packets');
        const got = new Map([...packets.entries()].map(([k, v]) => [Number(le(k)), le(v)]));
        expect(got).toEqual(want);
        expect(want.get(IPPROTO_TCP)).toBe(4n);
        expect(want.get(KEY_MALFORMED)).toBe(6n);
        // one CPU: the host sees one 8-byte value per CPU
        const total = obj.map('total_bytes');
        expect(total.lookup(u32(0))?.length).toBe(8 * vm.nCpus);
        expect(asU64(total.lookup(u32(0)))).toBe(bytes);
      } finally {
        vm.close();
      }
    });

    it(`gives the same verdicts through BPF_PROG_TEST_RUN, leaving the packet unchanged (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('proto_count'), engine);
      try {
        const prog = obj.program('proto_count');
        for (const [name, packet, verdict] of CASES) {
          if (packet.length < 14) {
            // BPF_PROG_TEST_RUN refuses XDP input shorter than an Ethernet header
            expect(() => prog.testRun({ dataIn: packet }), name).toThrow(TestRunError);
            continue;
          }
          const r = prog.testRun({ dataIn: packet });
          expect(r.retval, name).toBe(verdict);
          expect(r.dataOut, name).toEqual(packet);
        }
        // repeat runs the program that many times over the same packet
        const before = le(obj.map('packets').lookup(u32(IPPROTO_UDP)));
        prog.testRun({ dataIn: CASES[3]?.[1] as Uint8Array, repeat: 10 });
        expect(le(obj.map('packets').lookup(u32(IPPROTO_UDP)))).toBe(before + 10n);
      } finally {
        vm.close();
      }
    });
  }
});
