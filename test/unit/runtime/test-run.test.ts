/**
 * BPF_PROG_TEST_RUN semantics per program type, on both engines.
 */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../../src/asm/assembler.js';
import { SK_BUFF, XDP_MD } from '../../../src/abi.js';
import { TestRunError } from '../../../src/errors.js';
import { createProgram, type ProgType } from '../../../src/program.js';
import { Vm } from '../../../runtime/vm.js';
import type { LoadedProgram } from '../../../runtime/loaded-program.js';

async function both(text: string, type: ProgType): Promise<LoadedProgram[]> {
  const vm = Vm.create();
  const jit = await vm.load(createProgram(assemble(text), { type }), { verify: false });
  return [jit, await jit.withEngine('interp')];
}

function errnoOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof TestRunError) return e.code;
    throw e;
  }
}

// Ethernet (dst 02:..:01, IPv4) + an IPv4 header start
const packet = new Uint8Array([
  2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, 0x45, 0x00, 0x00, 0x1c, 9, 9, 9, 9,
]);

function xdpMd(fields: Partial<Record<keyof typeof XDP_MD, number>>): Uint8Array {
  const b = new Uint8Array(XDP_MD.size);
  const v = new DataView(b.buffer);
  for (const [k, val] of Object.entries(fields))
    v.setUint32(XDP_MD[k as keyof typeof XDP_MD], val, true);
  return b;
}

function skb(fields: Partial<Record<keyof typeof SK_BUFF, number>>): Uint8Array {
  const b = new Uint8Array(SK_BUFF.size);
  const v = new DataView(b.buffer);
  for (const [k, val] of Object.entries(fields))
    v.setUint32(SK_BUFF[k as keyof typeof SK_BUFF], val, true);
  return b;
}

describe('XDP test runs', () => {
  // increments the first packet byte and returns XDP_TX (3)
  const bump = `
    ldxw %r2, [%r1+0]
    ldxb %r3, [%r2]
    add %r3, 1
    stxb [%r2], %r3
    mov %r0, 3
    exit`;

  it('share one packet across repeats, which is not reset between runs', async () => {
    for (const p of await both(bump, 'xdp')) {
      const r = p.testRun({ dataIn: packet, repeat: 5 });
      expect(r.retval).toBe(3);
      expect(r.dataOut[0]).toBe(packet[0]! + 5);
      expect(r.dataOut.length).toBe(packet.length);
      expect(r.durationNs).toBeGreaterThanOrEqual(0);
    }
  });

  it('refuse what the kernel refuses, with its errno', async () => {
    const [p] = await both(bump, 'xdp');
    const t = (dataIn: Uint8Array, ctxIn?: Uint8Array): string =>
      errnoOf(() => p!.testRun(ctxIn === undefined ? { dataIn } : { dataIn, ctxIn }));
    expect(t(packet.slice(0, 13))).toBe('EINVAL');
    expect(t(packet, xdpMd({ data_end: packet.length - 1 }))).toBe('EINVAL');
    expect(t(packet, xdpMd({ data_end: packet.length, data_meta: 4 }))).toBe('EINVAL');
    expect(t(packet, xdpMd({ data_end: packet.length, data: 6 }))).toBe('EINVAL');
    expect(t(packet, xdpMd({ data_end: packet.length, egress_ifindex: 1 }))).toBe('EINVAL');
    expect(t(packet, xdpMd({ data_end: packet.length, ingress_ifindex: 7 }))).toBe('ENODEV');
    expect(t(packet, xdpMd({ data_end: packet.length, rx_queue_index: 1 }))).toBe('EINVAL');
    const long = new Uint8Array(XDP_MD.size + 4);
    long.set(xdpMd({ data_end: packet.length }));
    long[XDP_MD.size + 1] = 1;
    expect(t(packet, long)).toBe('E2BIG');
    expect(t(packet, xdpMd({ data_end: packet.length }))).toBe('ok');
  });

  it('put metadata before the packet and report it in data_out and ctx_out', async () => {
    const meta = `
      ldxw %r2, [%r1+8]
      ldxw %r3, [%r1+0]
      mov %r0, %r3
      sub %r0, %r2
      exit`;
    for (const p of await both(meta, 'xdp')) {
      const dataIn = new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd, ...packet]);
      const r = p.testRun({ dataIn, ctxIn: xdpMd({ data: 4, data_end: dataIn.length }) });
      expect(r.retval).toBe(4);
      expect(r.dataOut).toEqual(dataIn);
      const cv = new DataView((r.ctxOut as Uint8Array).buffer);
      expect(cv.getUint32(XDP_MD.data, true)).toBe(4);
      expect(cv.getUint32(XDP_MD.data_end, true)).toBe(dataIn.length);
    }
  });
});

describe('skb test runs', () => {
  // r0 = first byte at skb->data; cb[0] = skb->mark + skb->len; protocol in r0's upper half
  const peek = `
    ldxw %r2, [%r1+${SK_BUFF.data}]
    ldxb %r0, [%r2]
    ldxw %r3, [%r1+${SK_BUFF.mark}]
    ldxw %r4, [%r1+${SK_BUFF.len}]
    add %r3, %r4
    stxw [%r1+${SK_BUFF.cb}], %r3
    ldxw %r5, [%r1+${SK_BUFF.protocol}]
    lsh %r5, 16
    or %r0, %r5
    exit`;

  it('show socket filters the packet from L3 and zero the Ethernet header in data_out', async () => {
    for (const p of await both(peek, 'socket_filter')) {
      const r = p.testRun({ dataIn: packet, ctxIn: skb({ mark: 100 }) });
      expect(r.retval).toBe((0x0008 << 16) | 0x45);
      expect(r.dataOut.subarray(0, 14)).toEqual(new Uint8Array(14));
      expect(r.dataOut.subarray(14)).toEqual(packet.subarray(14));
      const cv = new DataView((r.ctxOut as Uint8Array).buffer);
      expect(cv.getUint32(SK_BUFF.cb, true)).toBe(100 + packet.length - 14);
      expect(cv.getUint32(SK_BUFF.mark, true)).toBe(100);
      expect(cv.getUint32(SK_BUFF.ifindex, true)).toBe(1);
      expect(cv.getUint32(SK_BUFF.len, true)).toBe(0);
    }
  });

  it('show tc programs the packet from L2', async () => {
    for (const p of await both(peek, 'sched_cls')) {
      const r = p.testRun({ dataIn: packet });
      expect(r.retval & 0xff).toBe(2);
      expect(r.dataOut).toEqual(packet);
    }
  });

  it('refuse ctx_in fields a test run cannot set, unknown devices and short packets', async () => {
    const [p] = await both(peek, 'sched_cls');
    expect(errnoOf(() => p!.testRun({ dataIn: packet, ctxIn: skb({ len: 5 }) }))).toBe('EINVAL');
    expect(errnoOf(() => p!.testRun({ dataIn: packet, ctxIn: skb({ protocol: 8 }) }))).toBe(
      'EINVAL',
    );
    expect(errnoOf(() => p!.testRun({ dataIn: packet, ctxIn: skb({ ifindex: 2 }) }))).toBe(
      'ENODEV',
    );
    expect(errnoOf(() => p!.testRun({ dataIn: packet, ctxIn: skb({ wire_len: 3 }) }))).toBe(
      'EINVAL',
    );
    expect(errnoOf(() => p!.testRun({ dataIn: packet.slice(0, 10) }))).toBe('EINVAL');
    expect(
      errnoOf(() => p!.testRun({ dataIn: packet, ctxIn: skb({ priority: 7, tstamp: 1 }) })),
    ).toBe('ok');
  });
});

describe('mem test runs', () => {
  it('pass the buffer in r1 and r2 and return it changed', async () => {
    for (const p of await both('stb [%r1], 7\nmov %r0, %r2\nexit', 'mem')) {
      const r = p.testRun({ dataIn: new Uint8Array([1, 2, 3]) });
      expect(r.retval).toBe(3);
      expect([...r.dataOut]).toEqual([7, 2, 3]);
      expect(r.ctxOut).toBeNull();
      expect(
        errnoOf(() => p.testRun({ dataIn: new Uint8Array(1), ctxIn: new Uint8Array(4) })),
      ).toBe('EINVAL');
    }
  });
});
