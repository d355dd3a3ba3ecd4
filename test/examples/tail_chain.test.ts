/**
 * examples/tail_chain: an XDP dispatcher tail-calling per-protocol handlers through a prog_array
 * that the object's `__array(values, ...)` initialiser fills at load, and a program that
 * tail-calls itself until the kernel's limit of 33 tail calls per run.
 */
import { describe, expect, it } from 'vitest';
import { u32 } from '../helpers/maps.js';
import {
  ETH_P_IP,
  ETH_P_IPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  XDP_ABORTED,
  XDP_DROP,
  XDP_PASS,
  XDP_TX,
  arpRequest,
  concat,
  eth,
  ipv4,
  ipv6,
  mac,
  tcp,
  udp,
} from '../helpers/packets.js';
import { ENGINES, exampleObject, le, loadExample } from './example.js';
import type { LoadedObject } from '../../runtime/object.js';

const SLOT_IPV4 = 0;
const SLOT_IPV6 = 1;
const SLOT_OTHER = 2;
const SLOT_MISS = 3;
/** MAX_TAIL_CALL_CNT: a run makes at most 33 tail calls, so 34 programs run. */
const MAX_TAIL_CALL_CNT = 33;

const A = mac('02:00:00:00:00:0a');
const B = mac('02:00:00:00:00:0b');
const V4 = concat(
  eth(B, A, ETH_P_IP),
  ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: IPPROTO_UDP, payloadLen: 8 }),
  udp(1, 2),
);
const V6 = concat(eth(B, A, ETH_P_IPV6), ipv6({ nexthdr: IPPROTO_TCP, payloadLen: 20 }), tcp(3, 4));
const ARP = arpRequest(A, '10.0.0.1', '10.0.0.3');
const RUNT = new Uint8Array(8);

/** [packets, bytes] counted in `stats` slot `slot`. */
function statsOf(obj: LoadedObject, slot: number): [bigint, bigint] {
  const v = obj.map('stats').lookup(u32(slot)) as Uint8Array;
  return [le(v.subarray(0, 8)), le(v.subarray(8, 16))];
}

describe('examples/tail_chain', () => {
  for (const engine of ENGINES) {
    it(`fills the prog_array from the object's initialiser (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('tail_chain'), engine);
      try {
        expect(obj.programNames().sort()).toEqual(
          ['chain', 'dispatch', 'handle_ipv4', 'handle_ipv6', 'handle_other'].sort(),
        );
        const handlers = obj.map('handlers');
        const entry = (name: string) => obj.program(name).links.funcTokenBase;
        expect(handlers.progToken(SLOT_IPV4)).toBe(entry('handle_ipv4'));
        expect(handlers.progToken(SLOT_IPV6)).toBe(entry('handle_ipv6'));
        expect(handlers.progToken(SLOT_OTHER)).toBe(entry('handle_other'));
        expect(handlers.progToken(SLOT_MISS)).toBeUndefined();
        expect(obj.map('self_table').progToken(0)).toBe(entry('chain'));
      } finally {
        vm.close();
      }
    });

    it(`dispatches by ethertype to handlers that count and choose the verdict (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('tail_chain'), engine);
      try {
        const dispatch = obj.program('dispatch');
        expect(dispatch.run(V4)).toBe(BigInt(XDP_PASS));
        expect(dispatch.run(V4)).toBe(BigInt(XDP_PASS));
        expect(dispatch.run(V6)).toBe(BigInt(XDP_TX));
        expect(dispatch.run(ARP)).toBe(BigInt(XDP_DROP));
        expect(dispatch.run(RUNT)).toBe(BigInt(XDP_DROP));
        expect(statsOf(obj, SLOT_IPV4)).toEqual([2n, BigInt(2 * V4.length)]);
        expect(statsOf(obj, SLOT_IPV6)).toEqual([1n, BigInt(V6.length)]);
        expect(statsOf(obj, SLOT_OTHER)).toEqual([2n, BigInt(ARP.length + RUNT.length)]);
        expect(statsOf(obj, SLOT_MISS)).toEqual([0n, 0n]);
        // the same verdicts through BPF_PROG_TEST_RUN
        expect(dispatch.testRun({ dataIn: V6 }).retval).toBe(XDP_TX);
        expect(statsOf(obj, SLOT_IPV6)).toEqual([2n, BigInt(2 * V6.length)]);
      } finally {
        vm.close();
      }
    });

    it(`falls through an emptied slot and follows a slot the host replaced (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('tail_chain'), engine);
      try {
        const dispatch = obj.program('dispatch');
        const handlers = obj.map('handlers');
        handlers.delete(u32(SLOT_IPV6));
        expect(dispatch.run(V6)).toBe(BigInt(XDP_ABORTED));
        expect(statsOf(obj, SLOT_MISS)).toEqual([1n, BigInt(V6.length)]);
        expect(statsOf(obj, SLOT_IPV6)).toEqual([0n, 0n]);
        handlers.setProg(SLOT_IPV6, obj.program('handle_other'));
        expect(dispatch.run(V6)).toBe(BigInt(XDP_DROP));
        expect(statsOf(obj, SLOT_OTHER)).toEqual([1n, BigInt(V6.length)]);
        // a handler run on its own, without the dispatcher
        expect(obj.program('handle_ipv6').run(V4)).toBe(BigInt(XDP_TX));
        expect(statsOf(obj, SLOT_IPV6)).toEqual([1n, BigInt(V4.length)]);
      } finally {
        vm.close();
      }
    });

    it(`stops a self tail-calling chain after ${MAX_TAIL_CALL_CNT} tail calls per run (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('tail_chain'), engine);
      try {
        const chain = obj.program('chain');
        expect(chain.run(V4)).toBe(BigInt(XDP_PASS));
        expect(obj.globals.readUint('hops')).toBe(BigInt(1 + MAX_TAIL_CALL_CNT));
        // the count starts again at every run
        expect(chain.testRun({ dataIn: V4, repeat: 2 }).retval).toBe(XDP_PASS);
        expect(obj.globals.readUint('hops')).toBe(BigInt(3 * (1 + MAX_TAIL_CALL_CNT)));
      } finally {
        vm.close();
      }
    });
  }
});
