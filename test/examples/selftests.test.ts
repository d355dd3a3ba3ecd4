/**
 * BPF_PROG_TEST_RUN agreement with the kernel: our own programs (examples/selftests/*.c) for
 * what kernel selftests check, run with the selftests' inputs, asserting the results the
 * selftests assert. Each case names the selftest (tools/testing/selftests/bpf/prog_tests/...)
 * and the assertion it mirrors.
 *
 * Where bpfwasm is known to differ from the kernel, the case is listed in KNOWN_DIFFERENCES:
 * it still runs, and when it gives bpfwasm's known result it is skipped with the reason
 * printed; when bpfwasm agrees with the kernel the assertion simply passes (drop the entry
 * then), and any other result fails.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it, type TestContext } from 'vitest';
import { SK_BUFF, XDP_MD } from '../../src/abi.js';
import { MapError, TestRunError } from '../../src/errors.js';
import { u32 } from '../helpers/maps.js';
import {
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IPPROTO_TCP,
  TC_ACT_OK,
  XDP_DROP,
  XDP_PASS,
  XDP_TX,
  concat,
  inetChecksum,
  ip4,
  mac,
  pktV4,
  pktV6,
} from '../helpers/packets.js';
import {
  ENGINES,
  exampleObject,
  le,
  loadExample,
  skbCtx,
  xdpMd,
  type LoadedExample,
} from './example.js';

/**
 * Cases where bpfwasm differs from the kernel: id -> what bpfwasm gives instead of the kernel's
 * result, and why.
 */
const KNOWN_DIFFERENCES: Readonly<Record<string, { readonly got: unknown; readonly why: string }>> =
  {
    'xdp_adjust_tail_grow ipv4': {
      got: XDP_TX,
      why:
        'the kernel refuses to grow a 54-byte packet by 4096 (its test-run frame is one 4096-byte ' +
        'page: at most 4096 - 256 headroom - 320 tailroom = 3520 bytes of packet), so the program ' +
        'returns XDP_DROP; bpfwasm lets data_end grow to the end of its 64 KiB packet area, so the ' +
        'program returns XDP_TX with 4150 bytes',
    },
    'global_data .rodata is read-only': {
      got: 'ok',
      why:
        'libbpf freezes .rodata after load, so a map update from user space fails with EPERM; ' +
        'bpfwasm lets the host update the .rodata map',
    },
    'skb_ctx ctx_in of size 0': {
      got: 'ok',
      why:
        'the kernel refuses ctx_in with ctx_size_in == 0 (EINVAL); bpfwasm takes an empty ctxIn ' +
        'as an all-zero __sk_buff and runs the program',
    },
  };

/**
 * Asserts the kernel's result; for a KNOWN_DIFFERENCES case that still gives bpfwasm's known
 * result, prints the reason and skips the test instead.
 */
function expectKernel(ctx: TestContext, id: string, got: unknown, kernel: unknown): void {
  const known = KNOWN_DIFFERENCES[id];
  if (known !== undefined && isDeepStrictEqual(got, known.got)) {
    console.log(`skip ${id}: ${known.why}`);
    ctx.skip(`differs from the kernel: ${known.why}`);
  }
  expect(got, id).toEqual(kernel);
}

async function withObject(
  name: string,
  engine: (typeof ENGINES)[number],
  body: (ex: LoadedExample) => void,
): Promise<void> {
  const ex = await loadExample(exampleObject('selftests', name), engine);
  try {
    body(ex);
  } finally {
    ex.vm.close();
  }
}

/** The errno of the TestRunError `f` throws, or 'ok'. */
function testRunErrno(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    if (e instanceof TestRunError) return e.code;
    throw e;
  }
}

describe('kernel selftest agreement', () => {
  for (const engine of ENGINES) {
    describe(`on the ${engine}`, () => {
      // prog_tests/pkt_access.c: test_pkt_access on pkt_v4 and pkt_v6, repeat 100000:
      // ASSERT_OK(topts.retval, "ipv4 ...") and ASSERT_OK(topts.retval, "ipv6 ...")
      it('pkt_access: both packets give TC_ACT_OK (test_pkt_access)', async () => {
        await withObject('pkt_access', engine, ({ obj }) => {
          const prog = obj.program('pkt_access');
          for (const [name, pkt, tcpOff] of [
            ['ipv4', pktV4(), 34],
            ['ipv6', pktV6(), 54],
          ] as const) {
            const r = prog.testRun({ dataIn: pkt, repeat: 1000 });
            expect(r.retval, name).toBe(TC_ACT_OK);
            // ours: the repeats share the packet, so the global subprogram's write to
            // tcp->check accumulated once per run
            const check = new DataView(r.dataOut.buffer).getUint16(tcpOff + 16, true);
            expect(check, `${name} tcp->check`).toBe(1000);
          }
        });
      });

      // prog_tests/skb_ctx.c: test_skb_ctx, the ctx_in of the selftest and its ctx_out checks
      it('skb_ctx: ctx_in fields reach the program and its writes come back (test_skb_ctx)', async () => {
        await withObject('skb_ctx', engine, ({ obj }) => {
          const prog = obj.program('skb_ctx');
          const fields = {
            priority: 6,
            ingress_ifindex: 11,
            ifindex: 1,
            tstamp: 7,
            wire_len: 100,
            gso_segs: 8,
            mark: 9,
            gso_size: 10,
            hwtstamp: 11,
          };
          const cb = [1, 2, 3, 4, 5];
          // "non-zero [len, tc_index] fields should be rejected", "non-zero [hash, sk] ..."
          for (const bad of ['len', 'tc_index', 'hash', 'sk'] as const) {
            const ctxIn = skbCtx({ ...fields, [bad]: 1 }, cb);
            expect(
              testRunErrno(() => prog.testRun({ dataIn: pktV4(), ctxIn })),
              bad,
            ).toBe('EINVAL');
          }
          // ASSERT_OK(err, "test_run"); ASSERT_OK(tattr.retval, ...); ASSERT_EQ(ctx_size_out, sizeof(skb))
          const r = prog.testRun({ dataIn: pktV4(), ctxIn: skbCtx(fields, cb) });
          expect(r.retval).toBe(0);
          const out = r.ctxOut as Uint8Array;
          expect(out.length).toBe(SK_BUFF.size);
          const v = new DataView(out.buffer, out.byteOffset);
          // ctx_out_cb: cb[i] == i + 2; priority 7, ifindex 1, tstamp 8, mark 10
          for (let i = 0; i < 5; i++)
            expect(v.getUint32(SK_BUFF.cb + 4 * i, true), `cb[${i}]`).toBe(i + 2);
          expect(v.getUint32(SK_BUFF.priority, true)).toBe(7);
          expect(v.getUint32(SK_BUFF.ifindex, true)).toBe(1);
          expect(v.getBigUint64(SK_BUFF.tstamp, true)).toBe(8n);
          expect(v.getUint32(SK_BUFF.mark, true)).toBe(10);
        });
      });

      // prog_tests/skb_ctx.c: "ctx_in != NULL, ctx_size_in == 0" -> ASSERT_NEQ(err, 0, "ctx_size_in").
      // (Its twin "ctx_out != NULL, ctx_size_out == 0" has no counterpart: testRun always
      // returns the whole context.)
      it('skb_ctx: a zero-size ctx_in is refused (test_skb_ctx)', async (ctx) => {
        await withObject('skb_ctx', engine, ({ obj }) => {
          const prog = obj.program('skb_ctx');
          const got = testRunErrno(() =>
            prog.testRun({ dataIn: pktV4(), ctxIn: new Uint8Array(0) }),
          );
          expectKernel(ctx, 'skb_ctx ctx_in of size 0', got, 'EINVAL');
        });
      });

      // prog_tests/global_data.c: test_global_data_number / _string / _struct after one run
      it('global_data: .bss, .data and .rodata references relocate (test_global_data)', async () => {
        await withObject('global_data', engine, ({ obj }) => {
          // ASSERT_OK(topts.retval, "pass global data run retval")
          expect(obj.program('global_data').testRun({ dataIn: pktV4() }).retval).toBe(TC_ACT_OK);
          const numbers = [
            0n,
            42n,
            24n,
            0n,
            0xffeeffn,
            0xababn,
            1234n,
            0n,
            0xabn,
            0x1111111111111111n,
            2n ** 64n - 1n,
          ];
          numbers.forEach((n, k) =>
            expect(le(obj.map('result_number').lookup(u32(k))), `number ${k}`).toBe(n),
          );
          const str = (s: string) =>
            concat(new TextEncoder().encode(s), new Uint8Array(32 - s.length));
          const strings = [
            str('abcdefghijklmnopqrstuvwxyz'),
            str('abcdefghijklmnopqrstuvwxyz'),
            str(''),
            str('abcdexghijklmnopqrstuvwxyz'),
            str('\0\0hello'),
          ];
          strings.forEach((s, k) =>
            expect(obj.map('result_string').lookup(u32(k)), `string ${k}`).toEqual(s),
          );
          // struct foo { u8 a; u32 b; u64 c; }: a at 0, b at 4, c at 8
          const foo = (a: number, b: number, c: bigint) => {
            const x = new Uint8Array(16);
            const v = new DataView(x.buffer);
            v.setUint8(0, a);
            v.setUint32(4, b, true);
            v.setBigUint64(8, c, true);
            return x;
          };
          const structs = [
            foo(42, 0xfefeefef, 0x1111111111111111n),
            foo(0, 0, 0n),
            foo(0, 0, 0n),
            foo(41, 0xeeeeefef, 0x2111111111111111n),
          ];
          structs.forEach((s, k) =>
            expect(obj.map('result_struct').lookup(u32(k)), `struct ${k}`).toEqual(s),
          );
        });
      });

      // prog_tests/global_data.c: test_global_data_rdonly: CHECK(!err || errno != EPERM,
      // "test .rodata read-only map")
      it('global_data: the .rodata map is read-only for the host after load (test_global_data)', async (ctx) => {
        await withObject('global_data', engine, ({ obj }) => {
          const rodata = obj.map('.rodata');
          let got = 'ok';
          try {
            rodata.update(u32(0), new Uint8Array(rodata.valueSize));
          } catch (e) {
            if (!(e instanceof MapError)) throw e;
            got = e.code;
          }
          expectKernel(ctx, 'global_data .rodata is read-only', got, 'EPERM');
        });
      });

      // prog_tests/xdp_adjust_tail.c: test_xdp_adjust_tail_shrink: ipv4 retval XDP_DROP;
      // ipv6 retval XDP_TX and data_size_out == sizeof(pkt_v6) - 20
      it('xdp_adjust_tail_shrink: too much fails, 20 bytes succeed (test_xdp_adjust_tail)', async () => {
        await withObject('xdp_adjust_tail', engine, ({ obj }) => {
          const prog = obj.program('adjust_tail_shrink');
          expect(prog.testRun({ dataIn: pktV4() }).retval).toBe(XDP_DROP);
          const r = prog.testRun({ dataIn: pktV6() });
          expect(r.retval).toBe(XDP_TX);
          expect(r.dataOut.length).toBe(74 - 20);
          expect(r.dataOut).toEqual(pktV6().subarray(0, 54));
        });
      });

      // prog_tests/xdp_adjust_tail.c: test_xdp_adjust_tail_grow: ipv4 retval XDP_DROP
      it('xdp_adjust_tail_grow: growing past the page fails (test_xdp_adjust_tail)', async (ctx) => {
        await withObject('xdp_adjust_tail', engine, ({ obj }) => {
          const r = obj.program('adjust_tail_grow').testRun({ dataIn: pktV4() });
          expectKernel(ctx, 'xdp_adjust_tail_grow ipv4', r.retval, XDP_DROP);
        });
      });

      // prog_tests/xdp_adjust_tail.c: test_xdp_adjust_tail_grow: ipv6 retval XDP_TX, size
      // sizeof(pkt_v6) + 40; test_xdp_adjust_tail_grow2: case-64 grows to 192 bytes whose
      // new bytes are zero; case-128 grows to max_grow = 4096 - 256 - 320 = 3520 bytes with
      // max_grow - 128 zeros
      it('xdp_adjust_tail_grow: grown bytes are zero, up to the end of the page (test_xdp_adjust_tail)', async () => {
        await withObject('xdp_adjust_tail', engine, ({ obj }) => {
          const prog = obj.program('adjust_tail_grow');
          const v6 = prog.testRun({ dataIn: pktV6() });
          expect(v6.retval).toBe(XDP_TX);
          expect(v6.dataOut.length).toBe(74 + 40);
          // case-64 (the kernel's data_size_out of 128 also makes it fail with ENOSPC after
          // the run; testRun has no data_out size limit, so that part has no counterpart)
          const c64 = prog.testRun({ dataIn: new Uint8Array(64).fill(1) });
          expect(c64.retval).toBe(XDP_TX);
          expect(c64.dataOut.length).toBe(192);
          expect(c64.dataOut.subarray(0, 64).every((b) => b === 1)).toBe(true);
          expect(c64.dataOut.subarray(64, 192).every((b) => b === 0)).toBe(true);
          const c128 = prog.testRun({ dataIn: new Uint8Array(128).fill(2) });
          const maxGrow = 4096 - 256 - 320;
          expect(c128.retval).toBe(XDP_TX);
          expect(c128.dataOut.length).toBe(maxGrow);
          expect(c128.dataOut.filter((b) => b === 0).length).toBe(maxGrow - 128);
        });
      });

      // prog_tests/xdp.c: test_xdp with vip2tnl {TCP, AF_INET} and {TCP, AF_INET6}:
      // ipv4 retval XDP_TX, size 74, iph->protocol == IPPROTO_IPIP;
      // ipv6 retval XDP_TX, size 114, iph6->nexthdr == IPPROTO_IPV6
      it('xdp_tunnel: encapsulates pkt_v4 in IPIP and pkt_v6 in IPv6 (test_xdp)', async () => {
        await withObject('xdp_tunnel', engine, ({ obj }) => {
          const prog = obj.program('xdp_tunnel');
          const vip2tnl = obj.map('vip2tnl');
          vip2tnl.update(vipKey(2, IPPROTO_TCP), tunnel(2));
          vip2tnl.update(vipKey(10, IPPROTO_TCP), tunnel(10));
          const r4 = prog.testRun({ dataIn: pktV4() });
          expect(r4.retval).toBe(XDP_TX);
          expect(r4.dataOut.length).toBe(74);
          expect(r4.dataOut[14 + 9]).toBe(IPPROTO_IPIP);
          const r6 = prog.testRun({ dataIn: pktV6() });
          expect(r6.retval).toBe(XDP_TX);
          expect(r6.dataOut.length).toBe(114);
          expect(r6.dataOut[14 + 6]).toBe(IPPROTO_IPV6);
          // ours: the inner packets follow unchanged, rxcnt counted TCP twice
          expect(r4.dataOut.subarray(34)).toEqual(pktV4().subarray(14));
          expect(r6.dataOut.subarray(54)).toEqual(pktV6().subarray(14));
          expect(le(obj.map('rxcnt').lookup(u32(IPPROTO_TCP)))).toBe(2n);
        });
      });

      // ours, beyond prog_tests/xdp.c: the outer headers of a tunnel with addresses and a MAC
      it('xdp_tunnel: writes the outer Ethernet and IPv4 headers with a valid checksum', async () => {
        await withObject('xdp_tunnel', engine, ({ obj }) => {
          const tmac = mac('0a:0b:0c:0d:0e:0f');
          obj
            .map('vip2tnl')
            .update(
              vipKey(2, IPPROTO_TCP),
              tunnel(2, ip4('198.51.100.1'), ip4('198.51.100.2'), tmac),
            );
          const inner = pktV4();
          inner.set(mac('02:00:00:00:00:aa'), 0);
          const r = obj.program('xdp_tunnel').testRun({ dataIn: inner });
          expect(r.retval).toBe(XDP_TX);
          const out = r.dataOut;
          expect(out.subarray(0, 6)).toEqual(tmac);
          expect(out.subarray(6, 12)).toEqual(mac('02:00:00:00:00:aa'));
          const ip = out.subarray(14, 34);
          expect([ip[0], ip[8], ip[9]]).toEqual([0x45, 8, IPPROTO_IPIP]);
          expect(new DataView(ip.buffer, ip.byteOffset).getUint16(2)).toBe(123 + 20);
          expect(ip.subarray(12, 16)).toEqual(ip4('198.51.100.1'));
          expect(ip.subarray(16, 20)).toEqual(ip4('198.51.100.2'));
          expect(inetChecksum(ip)).toBe(0);
          // no tunnel for UDP: passed unchanged
          const udp = pktV4();
          udp[23] = 17;
          expect(obj.program('xdp_tunnel').testRun({ dataIn: udp }).retval).toBe(XDP_PASS);
        });
      });

      // prog_tests/xdp_context_test_run.c: test_xdp_context_test_run
      it('xdp_context: metadata in ctx_in, ctx_out after adjust_meta (xdp_context_test_run)', async () => {
        await withObject('xdp_context', engine, ({ obj }) => {
          const prog = obj.program('xdp_context');
          const data = concat(u32(XDP_PASS), pktV4());
          // "Data past the end of the kernel's struct xdp_md must be 0": E2BIG
          const bad = new Uint8Array(XDP_MD.size + 1);
          bad[XDP_MD.size] = 1;
          expect(testRunErrno(() => prog.testRun({ dataIn: data, ctxIn: bad }))).toBe('E2BIG');
          // valid: retval XDP_PASS, data_size_out == sizeof(pkt_v4), ctx_size_out ==
          // ctx_size_in, ctx_out data_meta 0, data 0, data_end sizeof(pkt_v4)
          const r = prog.testRun({ dataIn: data, ctxIn: xdpMd({ data: 4, data_end: 58 }) });
          expect(r.retval).toBe(XDP_PASS);
          expect(r.dataOut.length).toBe(54);
          const out = r.ctxOut as Uint8Array;
          expect(out.length).toBe(XDP_MD.size);
          const v = new DataView(out.buffer, out.byteOffset);
          expect(v.getUint32(XDP_MD.data_meta, true)).toBe(0);
          expect(v.getUint32(XDP_MD.data, true)).toBe(0);
          expect(v.getUint32(XDP_MD.data_end, true)).toBe(54);
          // test_xdp_context_error cases: each fails with EINVAL
          const errors: readonly [string, Parameters<typeof xdpMd>[0]][] = [
            ['meta data size not a multiple of 4', { data: 1, data_end: 58 }],
            ['data_meta not at the start of data', { data_meta: 4, data: 4, data_end: 58 }],
            ['meta data larger than 255 bytes', { data: 256, data_end: 58 }],
            ['data_end short of the data', { data: 4, data_end: 57 }],
            ['data_end past the data', { data: 4, data_end: 59 }],
            ['rx queue without ingress ifindex', { data: 4, data_end: 58, rx_queue_index: 1 }],
            [
              'rx queue 1 of loopback',
              { data: 4, data_end: 58, ingress_ifindex: 1, rx_queue_index: 1 },
            ],
            ['egress ifindex', { data: 4, data_end: 58, egress_ifindex: 1 }],
          ];
          for (const [why, md] of errors)
            expect(
              testRunErrno(() => prog.testRun({ dataIn: data, ctxIn: xdpMd(md) })),
              why,
            ).toBe('EINVAL');
        });
      });
    });
  }
});

/** struct vip_key of xdp_tunnel.c: daddr[4], dport, family, protocol (pkt_v4/v6: zero address and port). */
function vipKey(family: number, protocol: number): Uint8Array {
  const k = new Uint8Array(24);
  const v = new DataView(k.buffer);
  v.setUint16(18, family, true);
  k[20] = protocol;
  return k;
}

/** struct tunnel of xdp_tunnel.c: saddr[4], daddr[4], family, dmac. */
function tunnel(
  family: number,
  saddr: Uint8Array = new Uint8Array(4),
  daddr: Uint8Array = new Uint8Array(4),
  dmac: Uint8Array = new Uint8Array(6),
): Uint8Array {
  const t = new Uint8Array(40);
  t.set(saddr, 0);
  t.set(daddr, 16);
  new DataView(t.buffer).setUint16(32, family, true);
  t.set(dmac, 34);
  return t;
}
