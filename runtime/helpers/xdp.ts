/**
 * XDP packet geometry: bpf_xdp_adjust_head (44), bpf_xdp_adjust_meta (54) and
 * bpf_xdp_adjust_tail (65) move `data`, `data_meta` and `data_end` of the running program's
 * `struct xdp_md` (the worker's ctx, whose fields are linear addresses), with the kernel's
 * checks (net/core/filter.c):
 *
 * - The packet lives in the worker's packet area: XDP_PACKET_HEADROOM bytes of headroom before
 *   `worker.packet`, PACKET_CAPACITY bytes from it. As in the kernel, the first
 *   sizeof(struct xdp_frame) = 40 bytes of headroom stay reserved.
 * - adjust_head(ctx, delta): data + delta must stay at or above the headroom start plus the
 *   metadata, and at least ETH_HLEN = 14 bytes before data_end (else -EINVAL); the metadata
 *   moves with data.
 * - adjust_meta(ctx, delta): -ENOTSUPP when data_meta > data (no metadata support); the new
 *   data_meta must stay in [headroom start, data] (else -EINVAL) and leave a metadata length
 *   that is a multiple of 4 up to 32 (else -EACCES).
 * - adjust_tail(ctx, delta): data_end + delta must stay within the packet area and at least
 *   ETH_HLEN bytes after data (else -EINVAL); bytes the packet grows by are zeroed.
 * - A packet outside the packet area (runBatch inputs) has no headroom or tailroom: it can
 *   shrink but not grow. A ctx other than the worker's is -EINVAL.
 *
 * Called from BPF. Fast-path termination keeps them (no resources, bounded cost).
 */

import { PACKET_CAPACITY, XDP_MD, XDP_PACKET_HEADROOM, type WorkerLayout } from '../../src/abi.js';
import {
  BPF_FUNC_xdp_adjust_head,
  BPF_FUNC_xdp_adjust_meta,
  BPF_FUNC_xdp_adjust_tail,
  EACCES,
  EINVAL,
  ENOTSUPP,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperArgs } from '../../src/interp/env.js';
import type { HelperProto } from '../helpers.js';
import { argS32, type MemHost } from './mem.js';

/** ETH_HLEN: an Ethernet header, the least a packet keeps. */
export const ETH_HLEN = 14;
/** Bytes of the page an XDP test-run frame lives in. */
const XDP_FRAME_PAGE = 4096;
/** SKB_DATA_ALIGN(sizeof(struct skb_shared_info)): tailroom the kernel keeps at the page end. */
const XDP_TAILROOM = 320;

/** sizeof(struct xdp_frame) on 64-bit kernels: headroom the kernel keeps for the frame. */
export const XDP_FRAME_SIZE = 40;
/** Most metadata bytes (xdp_metalen_invalid). */
export const XDP_META_MAX = 32;

/** What the XDP helpers need from the Vm. */
export interface XdpHost extends MemHost {
  readonly worker: WorkerLayout;
}

/** The xdp_md fields and the bounds the packet may move within. */
interface XdpBuff {
  readonly ctx: number;
  data: number;
  dataEnd: number;
  dataMeta: number;
  /** Lowest address data_meta may reach (after the reserved frame). */
  readonly frameEnd: number;
  /** Highest address data_end may reach. */
  readonly hardEnd: number;
}

function readBuff(vm: XdpHost, ctxArg: bigint): XdpBuff | undefined {
  const w = vm.worker;
  if (ctxArg !== BigInt(w.ctx)) return undefined;
  const v = vm.dataView();
  const data = v.getUint32(w.ctx + XDP_MD.data, true);
  const dataEnd = v.getUint32(w.ctx + XDP_MD.data_end, true);
  const dataMeta = v.getUint32(w.ctx + XDP_MD.data_meta, true);
  const start = w.packet - XDP_PACKET_HEADROOM;
  const end = w.packet + PACKET_CAPACITY;
  const inArea = Math.min(data, dataMeta) >= start && dataEnd <= end && data <= dataEnd;
  return {
    ctx: w.ctx,
    data,
    dataEnd,
    dataMeta,
    frameEnd: inArea ? start + XDP_FRAME_SIZE : Math.min(data, dataMeta),
    // the kernel's test-run frame is one page, less the skb_shared_info tailroom; larger
    // packets (multi-buffer in the kernel) may shrink but not grow
    hardEnd: inArea
      ? Math.min(end, Math.max(start + XDP_FRAME_PAGE - XDP_TAILROOM, dataEnd))
      : dataEnd,
  };
}

function writeBuff(vm: XdpHost, b: XdpBuff): void {
  const v = vm.dataView();
  v.setUint32(b.ctx + XDP_MD.data, b.data, true);
  v.setUint32(b.ctx + XDP_MD.data_end, b.dataEnd, true);
  v.setUint32(b.ctx + XDP_MD.data_meta, b.dataMeta, true);
}

/** bpf_xdp_adjust_head(ctx, delta). */
export function xdpAdjustHead(vm: XdpHost, args: HelperArgs): bigint {
  const b = readBuff(vm, args[0]);
  if (b === undefined) return negErrno(EINVAL);
  const delta = argS32(args[1]);
  const metalen = b.dataMeta > b.data ? 0 : b.data - b.dataMeta;
  const data = b.data + delta;
  if (data < b.frameEnd + metalen || data > b.dataEnd - ETH_HLEN) return negErrno(EINVAL);
  if (metalen > 0) vm.u8().copyWithin(b.dataMeta + delta, b.dataMeta, b.dataMeta + metalen);
  b.dataMeta += delta;
  b.data = data;
  writeBuff(vm, b);
  return 0n;
}

/** bpf_xdp_adjust_meta(ctx, delta). */
export function xdpAdjustMeta(vm: XdpHost, args: HelperArgs): bigint {
  const b = readBuff(vm, args[0]);
  if (b === undefined) return negErrno(EINVAL);
  if (b.dataMeta > b.data) return negErrno(ENOTSUPP);
  const meta = b.dataMeta + argS32(args[1]);
  const metalen = b.data - meta;
  if (meta < b.frameEnd || meta > b.data) return negErrno(EINVAL);
  if (metalen % 4 !== 0 || metalen > XDP_META_MAX) return negErrno(EACCES);
  b.dataMeta = meta;
  writeBuff(vm, b);
  return 0n;
}

/** bpf_xdp_adjust_tail(ctx, delta). */
export function xdpAdjustTail(vm: XdpHost, args: HelperArgs): bigint {
  const b = readBuff(vm, args[0]);
  if (b === undefined) return negErrno(EINVAL);
  const delta = argS32(args[1]);
  const end = b.dataEnd + delta;
  if (end > b.hardEnd || end < b.data + ETH_HLEN) return negErrno(EINVAL);
  if (delta > 0) vm.u8().fill(0, b.dataEnd, end);
  b.dataEnd = end;
  writeBuff(vm, b);
  return 0n;
}

/** The XDP helpers. */
export function xdpHelpers(vm: XdpHost): HelperProto[] {
  return [
    {
      id: BPF_FUNC_xdp_adjust_head,
      name: 'bpf_xdp_adjust_head',
      fn: (args) => xdpAdjustHead(vm, args),
    },
    {
      id: BPF_FUNC_xdp_adjust_meta,
      name: 'bpf_xdp_adjust_meta',
      fn: (args) => xdpAdjustMeta(vm, args),
    },
    {
      id: BPF_FUNC_xdp_adjust_tail,
      name: 'bpf_xdp_adjust_tail',
      fn: (args) => xdpAdjustTail(vm, args),
    },
  ];
}
