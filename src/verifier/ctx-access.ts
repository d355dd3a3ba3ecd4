/**
 * Context access rules: which loads and stores through a `PTR_TO_CTX` register each program
 * type allows, and what type a loaded register gets. This is the kernel's per-type
 * `bpf_verifier_ops.is_valid_access` (net/core/filter.c, kernel/trace/bpf_trace.c,
 * kernel/bpf/syscall.c), applied to the context layouts bpfwasm really builds (src/abi.ts).
 *
 * Called from the verifier's `checkMemAccess` for every load or store through a ctx register
 * with a constant offset (register fixed offset + insn offset), as the kernel's
 * `check_ctx_access` calls `env->ops->is_valid_access`. A rejection carries the kernel's log
 * line `invalid bpf_context access off=%d size=%d`.
 *
 * Invariants: the runtime builds each context at its real address, with the kernel's uapi
 * layout, so no access is rewritten (there is no `convert_ctx_access`): a narrow load reads
 * the bytes at its offset, and `data`/`data_end`/`data_meta` are u32 fields that hold 32-bit
 * linear addresses. Every field allowed here lies inside `ctxSize(type)` bytes, which the
 * runtime reserves (abi.ts `CTX_SIZE`) and fills or zeroes.
 *
 * Two shapes of rule: a *struct* context (xdp_md, __sk_buff, bpf_perf_event_data) is a table
 * of fields, each with how it may be accessed, plus a per-type overlay (fields denied,
 * fields writable, fields that load a packet pointer); a *flat* context (pt_regs, tracepoint
 * records, u64 argument arrays, syscall memory) is a size, a first offset and an alignment.
 */

import { CTX_SIZE, SK_BUFF, XDP_MD } from '../abi.js';
import { InternalError } from '../errors.js';
import type { ProgType } from '../program.js';

/** The type a load from the context gives its destination register. */
export type CtxRegType =
  'SCALAR_VALUE' | 'PTR_TO_PACKET' | 'PTR_TO_PACKET_END' | 'PTR_TO_PACKET_META';

/** The verdict on one context access. */
export type CtxAccessResult =
  /** Allowed; `regType` is the type the loaded register gets (SCALAR_VALUE for stores). */
  | { readonly ok: true; readonly regType: CtxRegType }
  /** Refused; `error` is the kernel's log line. */
  | { readonly ok: false; readonly error: string };

/** Bytes of an access (BPF_B, BPF_H, BPF_W, BPF_DW). */
export type CtxAccessSize = 1 | 2 | 4 | 8;

/** `sizeof(struct pt_regs)` on x86-64: 21 u64 registers (uapi asm/ptrace.h). */
export const PT_REGS_SIZE = 168;

/** Largest tracepoint record a program may read (include/linux/trace_events.h). */
export const PERF_MAX_TRACE_SIZE = 2048;

/** Most arguments a traced function passes (include/linux/bpf.h `MAX_BPF_FUNC_ARGS`). */
export const MAX_BPF_FUNC_ARGS = 12;

/**
 * How a field may be accessed, whatever the program type (the cases of the switches in
 * `bpf_skb_is_valid_access`, `__is_valid_xdp_access` and `pe_prog_is_valid_access`). Every
 * access must also be aligned to its own size (`off % size == 0`).
 */
type FieldAccess =
  /** A u32: reads of 1, 2 or 4 bytes (`bpf_ctx_narrow_access_ok`), writes of 4. */
  | 'narrow32'
  /** A u64: reads of 1, 2, 4 or 8 bytes (`bpf_ctx_narrow_access_ok`), writes of 8. */
  | 'narrow64'
  /** 4-byte accesses only: packet pointers, ip4/ip6 words, every xdp_md field. */
  | 'exact32'
  /** 8-byte accesses only: tstamp, hwtstamp, the pt_regs words of a perf event. */
  | 'exact64'
  /** 1-byte accesses only: tc's `tstamp_type`. */
  | 'exact8'
  /** Any aligned access that stays inside the field: `cb[0..4]`. */
  | 'within'
  /** Never: pointers to kernel objects we do not model (`flow_keys`, `sk`) and padding. */
  | 'none';

/** One field of a struct context: bytes `[off, off + size)`. */
interface CtxField<F extends string> {
  readonly name: F;
  readonly off: number;
  readonly size: number;
  readonly access: FieldAccess;
}

/** What a program type adds to its struct's field table (its `*_is_valid_access`). */
interface CtxOverlay<F extends string> {
  /** Fields the type may not access at all. */
  readonly denied?: readonly F[];
  /** Fields the type may store to; every other field is read only. */
  readonly writable?: readonly F[];
  /** Fields whose 4-byte load gives a packet pointer, and its type. */
  readonly pkt?: Readonly<Partial<Record<F, CtxRegType>>>;
  /** Fields accessed differently by this type. */
  readonly access?: Readonly<Partial<Record<F, FieldAccess>>>;
}

/** A struct context, ready for lookups: one field index per byte. */
interface StructCtx {
  readonly shape: 'struct';
  readonly size: number;
  readonly fields: readonly CtxField<string>[];
  /** `fields` index of the field holding each byte. */
  readonly fieldAt: Uint8Array;
  readonly denied: ReadonlySet<string>;
  readonly writable: ReadonlySet<string>;
  readonly pkt: ReadonlyMap<string, CtxRegType>;
  readonly access: ReadonlyMap<string, FieldAccess>;
}

/** A flat context: accesses in `[minOff, size)`, aligned to their size and to `align`. */
interface FlatCtx {
  readonly shape: 'flat';
  readonly size: number;
  readonly minOff: number;
  readonly align: number;
  readonly writable: boolean;
}

/** A program type without a context (uBPF's `mem`: r1 is a buffer, not a ctx). */
interface NoCtx {
  readonly shape: 'none';
}

type CtxRules = StructCtx | FlatCtx | NoCtx;

// ---------------------------------------------------------------------------------------------
// Field tables (uapi layouts, offsets from src/abi.ts).

/** Field names of `struct xdp_md`. */
type XdpField = Exclude<keyof typeof XDP_MD, 'size'>;

/** `struct xdp_md`: six u32s; `__is_valid_xdp_access` allows only aligned 4-byte accesses. */
const XDP_FIELDS: readonly CtxField<XdpField>[] = (
  ['data', 'data_end', 'data_meta', 'ingress_ifindex', 'rx_queue_index', 'egress_ifindex'] as const
).map((name) => ({ name, off: XDP_MD[name], size: 4, access: 'exact32' }));

/** Field names of `struct __sk_buff`, plus the padding after `tstamp_type`. */
type SkbField = Exclude<keyof typeof SK_BUFF, 'size'> | 'pad';

/**
 * `struct __sk_buff` as `bpf_skb_is_valid_access` sees it: [name, size, access]. Where we
 * differ: the kernel lets an 8-byte load of `sk` give PTR_TO_SOCK_COMMON_OR_NULL, and
 * `flow_keys` is for flow dissectors only; we model no socket or flow-keys types, so both are
 * refused with the usual message. A store to `hwtstamp` is refused by every type's writable
 * list, as `bpf_skb_is_valid_access` refuses it.
 */
const SKB_FIELD_SPECS: readonly (readonly [SkbField, number, FieldAccess])[] = [
  ['len', 4, 'narrow32'],
  ['pkt_type', 4, 'narrow32'],
  ['mark', 4, 'narrow32'],
  ['queue_mapping', 4, 'narrow32'],
  ['protocol', 4, 'narrow32'],
  ['vlan_present', 4, 'narrow32'],
  ['vlan_tci', 4, 'narrow32'],
  ['vlan_proto', 4, 'narrow32'],
  ['priority', 4, 'narrow32'],
  ['ingress_ifindex', 4, 'narrow32'],
  ['ifindex', 4, 'narrow32'],
  ['tc_index', 4, 'narrow32'],
  ['cb', 20, 'within'],
  ['hash', 4, 'narrow32'],
  ['tc_classid', 4, 'narrow32'],
  ['data', 4, 'exact32'],
  ['data_end', 4, 'exact32'],
  ['napi_id', 4, 'narrow32'],
  ['family', 4, 'narrow32'],
  ['remote_ip4', 4, 'exact32'],
  ['local_ip4', 4, 'exact32'],
  ['remote_ip6', 16, 'exact32'],
  ['local_ip6', 16, 'exact32'],
  ['remote_port', 4, 'narrow32'],
  ['local_port', 4, 'narrow32'],
  ['data_meta', 4, 'exact32'],
  ['flow_keys', 8, 'none'],
  ['tstamp', 8, 'exact64'],
  ['wire_len', 4, 'narrow32'],
  ['gso_segs', 4, 'narrow32'],
  ['sk', 8, 'none'],
  ['gso_size', 4, 'narrow32'],
  ['tstamp_type', 1, 'none'],
  ['pad', 3, 'none'],
  ['hwtstamp', 8, 'exact64'],
];

const SKB_FIELDS: readonly CtxField<SkbField>[] = SKB_FIELD_SPECS.map(([name, size, access]) => ({
  name,
  off: name === 'pad' ? SK_BUFF.tstamp_type + 1 : SK_BUFF[name],
  size,
  access,
}));

/** `__sk_buff` fields `bpf_ctx_range_till(struct __sk_buff, family, local_port)`. */
const SKB_SOCK_FIELDS: readonly SkbField[] = [
  'family',
  'remote_ip4',
  'local_ip4',
  'remote_ip6',
  'local_ip6',
  'remote_port',
  'local_port',
];

/** Field names of `struct bpf_perf_event_data`. */
type PerfField = 'regs' | 'sample_period' | 'addr';

/** `struct bpf_perf_event_data { bpf_user_pt_regs_t regs; __u64 sample_period; __u64 addr; }`. */
const PERF_FIELDS: readonly CtxField<PerfField>[] = [
  { name: 'regs', off: 0, size: PT_REGS_SIZE, access: 'exact64' },
  { name: 'sample_period', off: PT_REGS_SIZE, size: 8, access: 'narrow64' },
  { name: 'addr', off: PT_REGS_SIZE + 8, size: 8, access: 'narrow64' },
];

/**
 * Indexes a field table and applies a program type's overlay. The fields must tile the struct
 * from offset 0 without gaps (padding is a field of its own), so every byte has its field.
 */
function structCtx<F extends string>(
  fields: readonly CtxField<F>[],
  overlay: CtxOverlay<F>,
): StructCtx {
  let size = 0;
  for (const f of fields) {
    if (f.off !== size)
      throw new InternalError(`ctx field ${f.name} at ${f.off}, expected ${size}`);
    size += f.size;
  }
  const fieldAt = new Uint8Array(size);
  fields.forEach((f, i) => fieldAt.fill(i, f.off, f.off + f.size));
  return {
    shape: 'struct',
    size,
    fields,
    fieldAt,
    denied: new Set(overlay.denied ?? []),
    writable: new Set(overlay.writable ?? []),
    pkt: new Map(Object.entries(overlay.pkt ?? {}) as [F, CtxRegType][]),
    access: new Map(Object.entries(overlay.access ?? {}) as [F, FieldAccess][]),
  };
}

// ---------------------------------------------------------------------------------------------
// Rules per program type.

/**
 * xdp_is_valid_access: read only (a store to `rx_queue_index` needs a device-bound program,
 * which we never have); data, data_end and data_meta load packet pointers.
 * Deviation: the kernel refuses `egress_ifindex` unless the program's expected attach type is
 * BPF_XDP_DEVMAP. We have no attach types, so every xdp program may read it (the runtime
 * fills in 0), as a devmap program may.
 */
const XDP_RULES = structCtx(XDP_FIELDS, {
  pkt: { data: 'PTR_TO_PACKET', data_end: 'PTR_TO_PACKET_END', data_meta: 'PTR_TO_PACKET_META' },
});

/**
 * sk_filter_is_valid_access: no direct packet access, no socket or tc fields, no timestamps;
 * only cb[] is writable.
 */
const SOCKET_FILTER_RULES = structCtx(SKB_FIELDS, {
  denied: [
    'tc_classid',
    'data',
    'data_meta',
    'data_end',
    ...SKB_SOCK_FIELDS,
    'tstamp',
    'wire_len',
    'hwtstamp',
  ],
  writable: ['cb'],
});

/**
 * tc_cls_act_is_valid_access (sched_cls and sched_act): data, data_meta and data_end load
 * packet pointers; no socket fields; `tstamp_type` is a readable u8; mark, tc_index,
 * priority, tc_classid, cb[], tstamp and queue_mapping are writable.
 */
const TC_RULES = structCtx(SKB_FIELDS, {
  denied: SKB_SOCK_FIELDS,
  writable: ['mark', 'tc_index', 'priority', 'tc_classid', 'cb', 'tstamp', 'queue_mapping'],
  pkt: { data: 'PTR_TO_PACKET', data_meta: 'PTR_TO_PACKET_META', data_end: 'PTR_TO_PACKET_END' },
  access: { tstamp_type: 'exact8' },
});

/**
 * cg_skb_is_valid_access: no tc_classid, data_meta or wire_len; data and data_end load packet
 * pointers (the kernel asks for CAP_BPF, and CAP_SYS_ADMIN to write tstamp: we run every
 * program as privileged); mark, priority, cb[] and tstamp are writable.
 */
const CGROUP_SKB_RULES = structCtx(SKB_FIELDS, {
  denied: ['tc_classid', 'data_meta', 'wire_len'],
  writable: ['mark', 'priority', 'cb', 'tstamp'],
  pkt: { data: 'PTR_TO_PACKET', data_end: 'PTR_TO_PACKET_END' },
});

/**
 * sk_skb_is_valid_access: no tc_classid, data_meta, timestamps, wire_len, nor even mark;
 * data and data_end load packet pointers; only tc_index and priority are writable.
 */
const SK_SKB_RULES = structCtx(SKB_FIELDS, {
  denied: ['tc_classid', 'data_meta', 'tstamp', 'wire_len', 'hwtstamp', 'mark'],
  writable: ['tc_index', 'priority'],
  pkt: { data: 'PTR_TO_PACKET', data_end: 'PTR_TO_PACKET_END' },
});

/**
 * pe_prog_is_valid_access: read only; the pt_regs words load as whole longs, sample_period
 * and addr allow narrow reads.
 */
const PERF_EVENT_RULES = structCtx(PERF_FIELDS, {});

/**
 * bpf_tracing_ctx_access + btf_ctx_access (tracing, lsm, struct_ops): MAX_BPF_FUNC_ARGS u64
 * arguments, read only, at offsets that are multiples of 8 (`func '%s' offset %d is not
 * multiple of 8`); a narrower load reads the low bytes of its argument. Without BTF we neither
 * count the function's arguments nor type pointer arguments: every argument is a scalar.
 */
const BTF_ARGS_RULES: FlatCtx = {
  shape: 'flat',
  size: 8 * MAX_BPF_FUNC_ARGS,
  minOff: 0,
  align: 8,
  writable: false,
};

const CTX_RULES: Readonly<Record<ProgType, CtxRules>> = {
  mem: { shape: 'none' },
  xdp: XDP_RULES,
  socket_filter: SOCKET_FILTER_RULES,
  sched_cls: TC_RULES,
  sched_act: TC_RULES,
  cgroup_skb: CGROUP_SKB_RULES,
  sk_skb: SK_SKB_RULES,
  /** kprobe_prog_is_valid_access: struct pt_regs, read only, any aligned size inside it. */
  kprobe: { shape: 'flat', size: PT_REGS_SIZE, minOff: 0, align: 1, writable: false },
  /**
   * tp_prog_is_valid_access: the tracepoint record, read only, any aligned size, from offset
   * 8 (the common_* header before it is off limits) to PERF_MAX_TRACE_SIZE.
   */
  tracepoint: {
    shape: 'flat',
    size: PERF_MAX_TRACE_SIZE,
    minOff: 8,
    align: 1,
    writable: false,
  },
  /**
   * raw_tp_prog_is_valid_access → bpf_tracing_ctx_access: `u64 args[MAX_BPF_FUNC_ARGS]`,
   * read only, any aligned size (no BTF check, so a 4-byte load of either half is fine).
   */
  raw_tracepoint: {
    shape: 'flat',
    size: 8 * MAX_BPF_FUNC_ARGS,
    minOff: 0,
    align: 1,
    writable: false,
  },
  perf_event: PERF_EVENT_RULES,
  struct_ops: BTF_ARGS_RULES,
  tracing: BTF_ARGS_RULES,
  lsm: BTF_ARGS_RULES,
  /**
   * syscall_prog_is_valid_access: the ctx is user memory, readable and writable at any
   * aligned size. The kernel bounds the offset by U16_MAX and checks the real ctx_size_in
   * against the largest offset used when the program runs; we bound it by the ctx area the
   * runtime reserves (abi.ts CTX_SIZE), so every allowed byte exists.
   */
  syscall: { shape: 'flat', size: CTX_SIZE, minOff: 0, align: 1, writable: true },
};

// ---------------------------------------------------------------------------------------------
// Checks.

/** Whether an aligned access of `size` bytes at `off` fits `field` accessed as `access`. */
function fieldAccessOk(
  access: FieldAccess,
  field: CtxField<string>,
  off: number,
  size: CtxAccessSize,
  write: boolean,
): boolean {
  switch (access) {
    case 'narrow32':
      return write ? size === 4 : size <= 4;
    case 'narrow64':
      return write ? size === 8 : size <= 8;
    case 'exact32':
      return size === 4;
    case 'exact64':
      return size === 8;
    case 'exact8':
      return size === 1;
    case 'within':
      return off + size <= field.off + field.size;
    case 'none':
      return false;
    default: {
      const never: never = access;
      return never;
    }
  }
}

/** A struct context access: the register type a load gets, or undefined when refused. */
function checkStructAccess(
  rules: StructCtx,
  off: number,
  size: CtxAccessSize,
  write: boolean,
): CtxRegType | undefined {
  if (off < 0 || off >= rules.size || off % size !== 0) return undefined;
  const field = rules.fields[rules.fieldAt[off] as number] as CtxField<string>;
  if (rules.denied.has(field.name)) return undefined;
  if (write && !rules.writable.has(field.name)) return undefined;
  const access = rules.access.get(field.name) ?? field.access;
  if (!fieldAccessOk(access, field, off, size, write)) return undefined;
  return write ? 'SCALAR_VALUE' : (rules.pkt.get(field.name) ?? 'SCALAR_VALUE');
}

/** A flat context access. */
function isFlatAccessOk(rules: FlatCtx, off: number, size: CtxAccessSize, write: boolean): boolean {
  if (write && !rules.writable) return false;
  if (off < rules.minOff || off + size > rules.size) return false;
  return off % size === 0 && off % rules.align === 0;
}

/**
 * Checks one load (`write` false) or store through a ctx register at constant offset `off`
 * (register fixed offset + insn offset), as the kernel's `check_ctx_access` does with the
 * program type's `is_valid_access`.
 *
 * Called from the verifier (host), once per ctx access per explored path.
 *
 * @example
 * checkCtxAccess('xdp', 0, 4, false) // { ok: true, regType: 'PTR_TO_PACKET' }
 * checkCtxAccess('xdp', 0, 8, false) // { ok: false, error: 'invalid bpf_context access off=0 size=8' }
 */
export function checkCtxAccess(
  type: ProgType,
  off: number,
  size: CtxAccessSize,
  write: boolean,
): CtxAccessResult {
  const rules = CTX_RULES[type];
  let regType: CtxRegType | undefined;
  switch (rules.shape) {
    case 'struct':
      regType = checkStructAccess(rules, off, size, write);
      break;
    case 'flat':
      regType = isFlatAccessOk(rules, off, size, write) ? 'SCALAR_VALUE' : undefined;
      break;
    case 'none':
      regType = undefined;
      break;
    default: {
      const never: never = rules;
      return never;
    }
  }
  if (regType === undefined) {
    return { ok: false, error: `invalid bpf_context access off=${off} size=${size}` };
  }
  return { ok: true, regType };
}

/**
 * Bytes of the ctx structure of `type` (0 when the type has no ctx, e.g. 'mem'): every access
 * `checkCtxAccess` allows lies inside them. At most abi.ts `CTX_SIZE`.
 *
 * @example
 * ctxSize('xdp') // 24
 * ctxSize('socket_filter') // 192
 */
export function ctxSize(type: ProgType): number {
  const rules = CTX_RULES[type];
  return rules.shape === 'none' ? 0 : rules.size;
}
