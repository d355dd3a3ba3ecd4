/**
 * examples/ringbuf_events: one 32-byte event per packet through a BPF ring buffer, decoded by a
 * host consumer; packets under 60 bytes reserve then discard, ARP uses bpf_ringbuf_output.
 */
import { describe, expect, it } from 'vitest';
import {
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
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
import { ENGINES, exampleObject, loadExample } from './example.js';

/** struct event, as the host decodes it. */
interface PacketEvent {
  readonly seq: bigint;
  readonly len: number;
  readonly ethProto: number;
  readonly ipProto: number;
  readonly kind: 'reserved' | 'output';
  readonly payload: Uint8Array;
}

const EVENT_SIZE = 32;
const RING_SIZE = 16 * 1024;

function decodeEvent(rec: Uint8Array): PacketEvent {
  expect(rec.length).toBe(EVENT_SIZE);
  const v = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  const kind = v.getUint8(15);
  expect([1, 2]).toContain(kind);
  return {
    seq: v.getBigUint64(0, true),
    len: v.getUint32(8, true),
    ethProto: v.getUint16(12, true),
    ipProto: v.getUint8(14),
    kind: kind === 1 ? 'reserved' : 'output',
    payload: rec.slice(16, 32),
  };
}

const A = mac('02:00:00:00:00:0a');
const B = mac('02:00:00:00:00:0b');
/** An IPv4 UDP packet of exactly `len` bytes (at least 42). */
const udp4 = (len: number): Uint8Array => {
  const extra = len - 42;
  return withPayload(
    concat(
      eth(B, A, ETH_P_IP),
      ipv4({ src: '192.0.2.1', dst: '192.0.2.2', protocol: IPPROTO_UDP, payloadLen: 8 + extra }),
      udp(4000, 4001, extra),
    ),
    extra,
    0xa0,
  );
};
const tcp6 = withPayload(
  concat(eth(B, A, ETH_P_IPV6), ipv6({ nexthdr: IPPROTO_TCP, payloadLen: 46 }), tcp(5, 6)),
  26,
);
const arp = arpRequest(A, '192.0.2.1', '192.0.2.99');

describe('examples/ringbuf_events', () => {
  for (const engine of ENGINES) {
    it(`emits one event per packet, discards short ones and outputs ARP (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('ringbuf_events'), engine);
      try {
        const prog = obj.program('ringbuf_events');
        const packets = [udp4(64), arp, udp4(50), tcp6, udp4(59), udp4(60), new Uint8Array(10)];
        for (const p of packets) expect(prog.run(p)).toBe(BigInt(XDP_PASS));

        const events: PacketEvent[] = [];
        const ring = obj.map('events').ringbuf();
        expect(ring.consume((r) => events.push(decodeEvent(r)))).toBe(4);
        expect(ring.pending).toBe(0);
        // seq numbers every packet: the discarded ones (3, 5, 7) leave gaps
        expect(events.map((e) => [e.seq, e.len, e.kind])).toEqual([
          [1n, 64, 'reserved'],
          [2n, 42, 'output'],
          [4n, 100, 'reserved'],
          [6n, 60, 'reserved'],
        ]);
        const [first, second, third] = events as [PacketEvent, PacketEvent, PacketEvent];
        expect([first.ethProto, first.ipProto]).toEqual([ETH_P_IP, IPPROTO_UDP]);
        expect(first.payload).toEqual((packets[0] as Uint8Array).slice(14, 30));
        expect([second.ethProto, second.ipProto]).toEqual([ETH_P_ARP, 0]);
        expect(second.payload).toEqual(arp.slice(14, 30));
        expect([third.ethProto, third.ipProto]).toEqual([ETH_P_IPV6, IPPROTO_TCP]);
        expect(third.payload).toEqual(tcp6.slice(14, 30));

        expect(obj.globals.readUint('seq')).toBe(7n);
        expect(obj.globals.readUint('discarded')).toBe(3n);
        expect(obj.globals.readUint('ring_full')).toBe(0n);
      } finally {
        vm.close();
      }
    });

    it(`fails reservations once the ring is full until the host consumes (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('ringbuf_events'), engine);
      try {
        const prog = obj.program('ringbuf_events');
        const ring = obj.map('events').ringbuf();
        // a record takes 8 header bytes + 32: 409 fit in 16 KiB
        const fit = Math.floor(RING_SIZE / (EVENT_SIZE + 8));
        for (let k = 0; k < fit + 20; k++) prog.run(udp4(64));
        expect(obj.globals.readUint('ring_full')).toBe(20n);
        const seqs: bigint[] = [];
        ring.consume((r) => seqs.push(decodeEvent(r).seq));
        expect(seqs.length).toBe(fit);
        expect(seqs[fit - 1]).toBe(BigInt(fit));
        // consumed: there is room again
        prog.run(udp4(64));
        ring.consume((r) => seqs.push(decodeEvent(r).seq));
        expect(seqs.at(-1)).toBe(BigInt(fit + 21));
        expect(obj.globals.readUint('ring_full')).toBe(20n);
      } finally {
        vm.close();
      }
    });
  }

  it('delivers events to an async consumer through records()', async () => {
    const { vm, obj } = await loadExample(exampleObject('ringbuf_events'), 'jit');
    try {
      const prog = obj.program('ringbuf_events');
      const ctl = new AbortController();
      const seen: PacketEvent[] = [];
      const reader = (async () => {
        for await (const rec of obj.map('events').ringbuf().records({ signal: ctl.signal })) {
          seen.push(decodeEvent(rec));
          if (seen.length === 3) ctl.abort();
        }
      })();
      for (const len of [61, 62, 63]) {
        prog.run(udp4(len));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await reader;
      expect(seen.map((e) => e.len)).toEqual([61, 62, 63]);
    } finally {
      vm.close();
    }
  });
});
