/**
 * examples/lpm_router: IPv4 longest-prefix routing in XDP. The host installs routes (/0, /8,
 * /24, /32) in the LPM trie and next hops in a hash map; each packet's verdict, the route it
 * took (.bss last_ifindex) and the rewritten frame (BPF_PROG_TEST_RUN data_out) are checked.
 */
import { describe, expect, it } from 'vitest';
import type { LoadedObject } from '../../runtime/object.js';
import { u32 } from '../helpers/maps.js';
import {
  ETH_P_IPV6,
  ETH_P_IP,
  IPPROTO_UDP,
  XDP_DROP,
  XDP_PASS,
  XDP_TX,
  concat,
  eth,
  hex,
  inetChecksum,
  ip4,
  ipv4,
  ipv6,
  mac,
  udp,
  withPayload,
} from '../helpers/packets.js';
import { ENGINES, exampleObject, loadExample } from './example.js';

const HOST = mac('02:00:00:00:00:01');
const ROUTER = mac('02:00:00:00:00:fe');

/** struct route_key: prefixlen (u32, host order) then the IPv4 address (network order). */
function routeKey(prefix: string): Uint8Array {
  const [addr, len] = prefix.split('/') as [string, string];
  return concat(u32(Number(len)), ip4(addr));
}

/** struct next_hop: dmac then smac. */
const nextHop = (ifindex: number): Uint8Array =>
  concat(mac(`0a:00:00:00:00:${ifindex.toString(16).padStart(2, '0')}`), ROUTER);

const ROUTES: readonly (readonly [string, number])[] = [
  ['0.0.0.0/0', 1],
  ['10.0.0.0/8', 2],
  ['10.1.2.0/24', 3],
  ['10.1.2.3/32', 4],
];

function install(obj: LoadedObject): void {
  for (const [prefix, ifindex] of ROUTES) {
    obj.map('routes').update(routeKey(prefix), u32(ifindex));
    obj.map('next_hops').update(u32(ifindex), nextHop(ifindex));
  }
}

const packetTo = (dst: string, ttl = 64): Uint8Array =>
  withPayload(
    concat(
      eth(ROUTER, HOST, ETH_P_IP),
      ipv4({ src: '192.0.2.10', dst, protocol: IPPROTO_UDP, payloadLen: 8 + 18, ttl }),
      udp(1234, 53, 18),
    ),
    18,
  );

/** [destination, ifindex of the longest matching prefix] */
const DECISIONS: readonly (readonly [string, number])[] = [
  ['10.1.2.3', 4], // /32
  ['10.1.2.4', 3], // /24
  ['10.1.2.255', 3],
  ['10.1.3.3', 2], // /8
  ['10.255.0.1', 2],
  ['11.1.2.3', 1], // /0
  ['192.168.1.1', 1],
];

describe('examples/lpm_router', () => {
  for (const engine of ENGINES) {
    it(`forwards on the longest matching prefix with the next hop's MACs and TTL - 1 (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('lpm_router'), engine);
      try {
        install(obj);
        const prog = obj.program('lpm_router');
        for (const [dst, ifindex] of DECISIONS) {
          const packet = packetTo(dst);
          const r = prog.testRun({ dataIn: packet });
          expect(r.retval, dst).toBe(XDP_TX);
          expect(obj.globals.readUint('last_ifindex'), dst).toBe(BigInt(ifindex));
          // only the MACs, the TTL and the header checksum change
          const want = packet.slice();
          want.set(nextHop(ifindex), 0);
          want[22] = 63;
          want.set(r.dataOut.subarray(24, 26), 24);
          expect(hex(r.dataOut), dst).toBe(hex(want));
          expect(inetChecksum(r.dataOut.subarray(14, 34)), `${dst} checksum`).toBe(0);
        }
        // the host sees the same longest-prefix match the program does
        expect(obj.map('routes').lookup(routeKey('10.1.2.77/32'))).toEqual(u32(3));
      } finally {
        vm.close();
      }
    });

    it(`drops without a route or next hop, passes TTL 1 and non-IPv4 frames (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('lpm_router'), engine);
      try {
        const prog = obj.program('lpm_router');
        const run = (p: Uint8Array) => prog.testRun({ dataIn: p }).retval;
        // an empty trie routes nothing
        expect(run(packetTo('10.1.2.3'))).toBe(XDP_DROP);
        install(obj);
        obj.map('routes').delete(routeKey('0.0.0.0/0'));
        expect(run(packetTo('192.168.1.1'))).toBe(XDP_DROP);
        expect(run(packetTo('10.1.2.3'))).toBe(XDP_TX);
        // a route whose next hop is unknown
        obj.map('routes').update(routeKey('172.16.0.0/12'), u32(9));
        expect(run(packetTo('172.20.1.1'))).toBe(XDP_DROP);
        expect(obj.globals.readUint('last_ifindex')).toBe(9n);
        // removing the /32 uncovers the /24
        obj.map('routes').delete(routeKey('10.1.2.3/32'));
        expect(run(packetTo('10.1.2.3'))).toBe(XDP_TX);
        expect(obj.globals.readUint('last_ifindex')).toBe(3n);
        // TTL 1: left to the stack, unchanged
        const ttl1 = packetTo('10.1.2.3', 1);
        const r = prog.testRun({ dataIn: ttl1 });
        expect(r.retval).toBe(XDP_PASS);
        expect(r.dataOut).toEqual(ttl1);
        const v6 = concat(eth(ROUTER, HOST, ETH_P_IPV6), ipv6({ nexthdr: 59, payloadLen: 0 }));
        expect(run(v6)).toBe(XDP_PASS);
        expect(run(concat(eth(ROUTER, HOST, ETH_P_IP), new Uint8Array(19)))).toBe(XDP_DROP);
      } finally {
        vm.close();
      }
    });
  }
});
