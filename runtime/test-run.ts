/**
 * `BPF_PROG_TEST_RUN` with the kernel's semantics (net/bpf/test_run.c), so that BPF programs can
 * be unit-tested anywhere Node runs:
 *  - XDP: data_in ≥ ETH_HLEN; an optional xdp_md ctx_in whose `data` is the metadata length
 *    (a multiple of 4, at most 32), `data_end` the data_in size, `data_meta` 0, egress_ifindex 0,
 *    ingress_ifindex 0 or 1 (lo); data_out runs from data_meta to data_end after the program,
 *    so it reflects adjust_head/tail/meta; ctx_out has data and data_end relative to data_meta.
 *  - socket_filter, cgroup_skb: the program sees the packet from L3 on (eth_type_trans pulled the
 *    Ethernet header); data_out comes back with those 14 bytes zeroed.
 *  - sched_cls, sched_act: the program sees the packet from L2.
 *  - skb types take a `__sk_buff` ctx_in in which only mark, priority, ingress_ifindex, ifindex,
 *    cb[], tstamp, wire_len, gso_segs, gso_size and hwtstamp may be set; ctx_out carries them back.
 *  - The repeats share one packet and one context, which are not reset between runs;
 *    duration is the mean ns per run.
 * Where the kernel refuses an input, the run fails with its errno as a TestRunError.
 */

import { PACKET_CAPACITY, SK_BUFF, XDP_MD, XDP_PACKET_HEADROOM } from '../src/abi.js';
import { TestRunError } from '../src/errors.js';
import type { LoadedProgram } from './loaded-program.js';

/** Input of a test run. */
export interface TestRunOptions {
  readonly dataIn?: Uint8Array;
  readonly ctxIn?: Uint8Array;
  /** Runs over the same packet and context (default 1; 0 means 1, as in the kernel). */
  readonly repeat?: number;
}

/** Output of a test run. */
export interface TestRunResult {
  readonly retval: number;
  readonly dataOut: Uint8Array;
  /** The context after the run (xdp_md or __sk_buff), null for types without one. */
  readonly ctxOut: Uint8Array | null;
  /** Mean ns per run. */
  readonly durationNs: number;
}

const ETH_HLEN = 14;
const LOOPBACK_IFINDEX = 1;
const GSO_MAX_SEGS = 65535;
const GSO_LEGACY_MAX_SIZE = 65536;

/** Runs `prog` as BPF_PROG_TEST_RUN would. */
export function testRun(prog: LoadedProgram, opts: TestRunOptions): TestRunResult {
  const repeat = opts.repeat === undefined || opts.repeat === 0 ? 1 : opts.repeat;
  if (!Number.isInteger(repeat) || repeat < 0)
    throw new TestRunError('EINVAL', `bad repeat count ${opts.repeat}`);
  const data = opts.dataIn ?? new Uint8Array(0);
  if (data.length > PACKET_CAPACITY)
    throw new TestRunError('E2BIG', `data_in of ${data.length} bytes is too large`);
  switch (prog.type) {
    case 'xdp':
      return testRunXdp(prog, data, opts.ctxIn, repeat);
    case 'socket_filter':
    case 'cgroup_skb':
      return testRunSkb(prog, data, opts.ctxIn, repeat, false);
    case 'sched_cls':
    case 'sched_act':
      return testRunSkb(prog, data, opts.ctxIn, repeat, true);
    case 'mem':
      return testRunMem(prog, data, opts.ctxIn, repeat);
    default:
      throw new TestRunError('ENOTSUPP', `program type '${prog.type}' has no test run`);
  }
}

/** Checks a ctx_in against a context of `size` bytes: bytes beyond it must be zero (E2BIG). */
function ctxBytes(ctxIn: Uint8Array | undefined, size: number): Uint8Array | undefined {
  if (ctxIn === undefined) return undefined;
  if (ctxIn.length === 0) throw new TestRunError('EINVAL', 'ctx_in is empty (ctx_size_in 0)');
  if (ctxIn.subarray(size).some((b) => b !== 0)) {
    throw new TestRunError('E2BIG', `ctx_in has non-zero bytes beyond the ${size}-byte context`);
  }
  const out = new Uint8Array(size);
  out.set(ctxIn.subarray(0, size));
  return out;
}

function timed(run: () => number, repeat: number): { retval: number; durationNs: number } {
  let retval = 0;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < repeat; k++) retval = run();
  const ns = Number(process.hrtime.bigint() - t0);
  return { retval: retval >>> 0, durationNs: Math.round(ns / repeat) };
}

function testRunXdp(
  prog: LoadedProgram,
  data: Uint8Array,
  ctxIn: Uint8Array | undefined,
  repeat: number,
): TestRunResult {
  if (data.length < ETH_HLEN)
    throw new TestRunError(
      'EINVAL',
      `data_in of ${data.length} bytes is shorter than an Ethernet header`,
    );
  const md = ctxBytes(ctxIn, XDP_MD.size);
  const mv = md === undefined ? undefined : new DataView(md.buffer);
  let metalen = 0;
  let ingress = LOOPBACK_IFINDEX;
  let rxQueue = 0;
  if (mv !== undefined) {
    const mdData = mv.getUint32(XDP_MD.data, true);
    const mdEnd = mv.getUint32(XDP_MD.data_end, true);
    if (mv.getUint32(XDP_MD.data_meta, true) !== 0)
      throw new TestRunError('EINVAL', 'xdp_md.data_meta must be 0');
    if (mdEnd !== data.length)
      throw new TestRunError('EINVAL', `xdp_md.data_end must be the data_in size ${data.length}`);
    if (mdData > mdEnd) throw new TestRunError('EINVAL', 'xdp_md.data is past data_end');
    if (mdData % 4 !== 0 || mdData > 32)
      throw new TestRunError('EINVAL', `metadata length ${mdData} is not a multiple of 4 up to 32`);
    if (mv.getUint32(XDP_MD.egress_ifindex, true) !== 0)
      throw new TestRunError('EINVAL', 'xdp_md.egress_ifindex must be 0');
    ingress = mv.getUint32(XDP_MD.ingress_ifindex, true);
    rxQueue = mv.getUint32(XDP_MD.rx_queue_index, true);
    if (ingress === 0 && rxQueue !== 0)
      throw new TestRunError('EINVAL', 'rx_queue_index without ingress_ifindex');
    if (ingress > LOOPBACK_IFINDEX)
      throw new TestRunError('ENODEV', `no device with ifindex ${ingress}`);
    if (ingress === LOOPBACK_IFINDEX && rxQueue >= 1)
      throw new TestRunError('EINVAL', `rx queue ${rxQueue} does not exist`);
    metalen = mdData;
  }
  if (metalen > XDP_PACKET_HEADROOM)
    throw new TestRunError('EINVAL', 'metadata does not fit the headroom');
  const vm = prog.vm;
  const w = vm.worker;
  const pkt = w.packet;
  vm.u8().set(data, pkt - metalen);
  const view = vm.dataView();
  view.setUint32(w.ctx + XDP_MD.data, pkt, true);
  view.setUint32(w.ctx + XDP_MD.data_end, pkt + data.length - metalen, true);
  view.setUint32(w.ctx + XDP_MD.data_meta, pkt - metalen, true);
  view.setUint32(w.ctx + XDP_MD.ingress_ifindex, ingress, true);
  view.setUint32(w.ctx + XDP_MD.rx_queue_index, rxQueue, true);
  view.setUint32(w.ctx + XDP_MD.egress_ifindex, 0, true);
  const { retval, durationNs } = timed(
    () => prog.runWithCtx(w.ctx, pkt, data.length - metalen),
    repeat,
  );
  const v = vm.dataView();
  const dData = v.getUint32(w.ctx + XDP_MD.data, true);
  const dEnd = v.getUint32(w.ctx + XDP_MD.data_end, true);
  const dMeta = v.getUint32(w.ctx + XDP_MD.data_meta, true);
  const ctxOut = vm.u8().slice(w.ctx, w.ctx + XDP_MD.size);
  const cv = new DataView(ctxOut.buffer);
  cv.setUint32(XDP_MD.data, dData - dMeta, true);
  cv.setUint32(XDP_MD.data_end, dEnd - dMeta, true);
  cv.setUint32(XDP_MD.data_meta, 0, true);
  return { retval, dataOut: vm.u8().slice(dMeta, dEnd), ctxOut, durationNs };
}

/** Zero ranges of a __sk_buff ctx_in: every field but those the kernel lets a test run set. */
const SKB_ALLOWED: readonly (readonly [number, number])[] = [
  [SK_BUFF.mark, 4],
  [SK_BUFF.priority, 4],
  [SK_BUFF.ingress_ifindex, 4],
  [SK_BUFF.ifindex, 4],
  [SK_BUFF.cb, 20],
  [SK_BUFF.tstamp, 8],
  [SK_BUFF.wire_len, 4],
  [SK_BUFF.gso_segs, 4],
  [SK_BUFF.gso_size, 4],
  [SK_BUFF.hwtstamp, 8],
];

function checkSkbCtx(skb: Uint8Array): void {
  const allowed = new Uint8Array(SK_BUFF.size);
  for (const [off, len] of SKB_ALLOWED) allowed.fill(1, off, off + len);
  const bad = skb.findIndex((b, k) => b !== 0 && allowed[k] === 0);
  if (bad >= 0) {
    const field = Object.entries(SK_BUFF)
      .filter(([, off]) => off <= bad)
      .sort((a, b) => b[1] - a[1])[0]?.[0];
    throw new TestRunError('EINVAL', `__sk_buff.${field ?? '?'} cannot be set in ctx_in`);
  }
}

/** PACKET_HOST 0, PACKET_BROADCAST 1, PACKET_MULTICAST 2, PACKET_OTHERHOST 3 for the lo device. */
function pktType(data: Uint8Array): number {
  if ((data[0] as number) & 1) return data.subarray(0, 6).every((b) => b === 0xff) ? 1 : 2;
  return data.subarray(0, 6).every((b) => b === 0) ? 0 : 3;
}

function testRunSkb(
  prog: LoadedProgram,
  data: Uint8Array,
  ctxIn: Uint8Array | undefined,
  repeat: number,
  isL2: boolean,
): TestRunResult {
  if (data.length < ETH_HLEN)
    throw new TestRunError(
      'EINVAL',
      `data_in of ${data.length} bytes is shorter than an Ethernet header`,
    );
  const skbIn = ctxBytes(ctxIn, SK_BUFF.size) ?? new Uint8Array(SK_BUFF.size);
  checkSkbCtx(skbIn);
  const iv = new DataView(skbIn.buffer);
  const ifindex = iv.getUint32(SK_BUFF.ifindex, true);
  if (ifindex > LOOPBACK_IFINDEX)
    throw new TestRunError('ENODEV', `no device with ifindex ${ifindex}`);
  const off = isL2 ? 0 : ETH_HLEN;
  const len = data.length - off;
  const wireLen = iv.getUint32(SK_BUFF.wire_len, true);
  if (wireLen !== 0 && (wireLen < len || wireLen > GSO_LEGACY_MAX_SIZE)) {
    throw new TestRunError('EINVAL', `wire_len ${wireLen} is below the packet length or too large`);
  }
  if (iv.getUint32(SK_BUFF.gso_segs, true) > GSO_MAX_SEGS)
    throw new TestRunError('EINVAL', 'gso_segs is too large');
  const vm = prog.vm;
  const w = vm.worker;
  const pkt = w.packet;
  vm.u8().set(data.subarray(off), pkt);
  const skb = new Uint8Array(SK_BUFF.size);
  for (const [o, n] of SKB_ALLOWED) skb.set(skbIn.subarray(o, o + n), o);
  const sv = new DataView(skb.buffer);
  sv.setUint32(SK_BUFF.len, len, true);
  sv.setUint32(SK_BUFF.pkt_type, pktType(data), true);
  sv.setUint32(SK_BUFF.protocol, ((data[12] as number) | ((data[13] as number) << 8)) >>> 0, true);
  sv.setUint32(SK_BUFF.ifindex, LOOPBACK_IFINDEX, true);
  sv.setUint32(SK_BUFF.data, pkt, true);
  sv.setUint32(SK_BUFF.data_end, pkt + len, true);
  sv.setUint32(SK_BUFF.data_meta, pkt, true);
  if (wireLen === 0) sv.setUint32(SK_BUFF.wire_len, len, true);
  vm.u8().set(skb, w.ctx);
  const { retval, durationNs } = timed(() => prog.runWithCtx(w.ctx, pkt, len), repeat);
  const after = vm.u8().slice(w.ctx, w.ctx + SK_BUFF.size);
  const ctxOut = new Uint8Array(SK_BUFF.size);
  for (const [o, n] of SKB_ALLOWED) ctxOut.set(after.subarray(o, o + n), o);
  const dataOut = new Uint8Array(off + len);
  dataOut.set(vm.u8().subarray(pkt, pkt + len), off);
  return { retval, dataOut, ctxOut, durationNs };
}

function testRunMem(
  prog: LoadedProgram,
  data: Uint8Array,
  ctxIn: Uint8Array | undefined,
  repeat: number,
): TestRunResult {
  if (ctxIn !== undefined && ctxIn.length > 0)
    throw new TestRunError('EINVAL', 'mem programs take no ctx_in');
  const vm = prog.vm;
  const pkt = vm.worker.packet;
  vm.u8().set(data, pkt);
  const { retval, durationNs } = timed(() => prog.runU32(data.length), repeat);
  return { retval, dataOut: vm.u8().slice(pkt, pkt + data.length), ctxOut: null, durationNs };
}
