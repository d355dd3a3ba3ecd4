/**
 * Helper prototypes as data: the kernel's `struct bpf_func_proto` for every helper bpfwasm knows,
 * with the kernel's enum spellings, plus the helper id → name table of uapi `__BPF_FUNC_MAPPER`.
 * Written once and read by every layer: the verifier checks call arguments against `args` and
 * types r0 from `ret`; the runtime (runtime/helpers/) registers an implementation per id and a
 * test checks that each has a prototype here; termination (notes/fast-path-termination.md §10.2)
 * reads `helperClass` and `fastPathRet`; the disassembler prints `helperName(id)`.
 *
 * Spellings. `args` lists the typed arguments only, as the kernel does (the rest are
 * ARG_DONTCARE, e.g. trace_printk's three values). Flags compose with `|` as in C
 * (`'ARG_PTR_TO_MEM | MEM_RDONLY'`); `parseArgType` splits them. A few arguments use the
 * kernel's older single names, which say more than the composed forms that replaced them:
 * ARG_PTR_TO_LONG (now ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED, 8
 * bytes), ARG_PTR_TO_RINGBUF_MEM (ARG_PTR_TO_MEM | MEM_RINGBUF) and
 * RET_PTR_TO_RINGBUF_MEM_OR_NULL (RET_PTR_TO_MEM | MEM_RINGBUF | PTR_MAYBE_NULL).
 *
 * Helper ids and names were checked against uapi `___BPF_FUNC_MAPPER` (ids 0..211), the
 * prototypes against kernel/bpf/helpers.c, kernel/bpf/bpf_iter.c, kernel/bpf/ringbuf.c,
 * kernel/trace/bpf_trace.c and net/core/filter.c.
 *
 * Nothing here executes; src/ may not import runtime/ (DESIGN.md §1), so the verifier can use it.
 */

// ---------------------------------------------------------------------------------------------
// Types

/** `enum bpf_arg_type` base types (include/linux/bpf.h). */
export type ArgBaseType =
  | 'ARG_DONTCARE'
  | 'ARG_CONST_MAP_PTR'
  | 'ARG_PTR_TO_MAP_KEY'
  | 'ARG_PTR_TO_MAP_VALUE'
  | 'ARG_PTR_TO_MEM'
  | 'ARG_PTR_TO_UNINIT_MEM'
  | 'ARG_PTR_TO_FIXED_SIZE_MEM'
  | 'ARG_CONST_SIZE'
  | 'ARG_CONST_SIZE_OR_ZERO'
  | 'ARG_CONST_ALLOC_SIZE_OR_ZERO'
  | 'ARG_PTR_TO_CTX'
  | 'ARG_ANYTHING'
  | 'ARG_PTR_TO_FUNC'
  | 'ARG_PTR_TO_STACK'
  | 'ARG_PTR_TO_STACK_OR_NULL'
  | 'ARG_PTR_TO_CONST_STR'
  | 'ARG_PTR_TO_RINGBUF_MEM'
  | 'ARG_PTR_TO_TIMER'
  | 'ARG_PTR_TO_SPIN_LOCK'
  | 'ARG_PTR_TO_LONG'
  | 'ARG_PTR_TO_INT'
  | 'ARG_PTR_TO_BTF_ID'
  | 'ARG_PTR_TO_DYNPTR'
  | 'ARG_PTR_TO_SOCKET'
  | 'ARG_PTR_TO_SOCK_COMMON'
  | 'ARG_KPTR_XCHG_DEST';

/** `enum bpf_type_flag` flags that appear in helper argument types. */
export type ArgTypeFlag =
  | 'PTR_MAYBE_NULL'
  | 'MEM_RDONLY'
  | 'MEM_UNINIT'
  | 'MEM_WRITE'
  | 'MEM_ALIGNED'
  | 'MEM_RINGBUF'
  | 'OBJ_RELEASE';

/** A helper argument type as the kernel spells it: a base type and up to two flags. */
export type ArgType =
  | ArgBaseType
  | `${ArgBaseType} | ${ArgTypeFlag}`
  | `${ArgBaseType} | ${ArgTypeFlag} | ${ArgTypeFlag}`;

/** `enum bpf_return_type` values helpers return. */
export type RetType =
  | 'RET_INTEGER'
  | 'RET_VOID'
  | 'RET_PTR_TO_MAP_VALUE'
  | 'RET_PTR_TO_MAP_VALUE_OR_NULL'
  | 'RET_PTR_TO_SOCKET_OR_NULL'
  | 'RET_PTR_TO_RINGBUF_MEM_OR_NULL'
  | 'RET_PTR_TO_DYNPTR_MEM_OR_NULL'
  | 'RET_PTR_TO_BTF_ID_OR_NULL'
  | 'RET_PTR_TO_BTF_ID'
  | 'RET_PTR_TO_MEM_OR_BTF_ID';

/**
 * How fast-path termination treats a helper (notes/fast-path-termination.md §10.2):
 * - `release`: consumes a reference or ends an activity; the original is always kept.
 * - `acquire`: returns a new reference or a nullable pointer; the stub returns `fastPathRet`.
 * - `iterator`: calls back into BPF; the stub calls no further callback and returns the
 *   count done so far.
 * - `lock`: the original is kept (resilient lock).
 * - `other`: the stub returns `fastPathRet`; without one the helper is pure (clocks, ids,
 *   parsers, checksums) and the original is kept.
 * A stub also zeroes the helper's uninitialised output argument (`MEM_UNINIT` /
 * `ARG_PTR_TO_UNINIT_MEM`), which the verifier marked initialised after the call.
 */
export type HelperClass = 'release' | 'acquire' | 'iterator' | 'lock' | 'other';

/** The kernel's `struct bpf_func_proto`, as data. */
export interface FuncProto {
  /** `BPF_FUNC_*` id. */
  readonly id: number;
  /** Kernel-style name: `bpf_map_lookup_elem`. */
  readonly name: string;
  readonly ret: RetType;
  /** Types of r1.. (at most 5); the rest are ARG_DONTCARE. */
  readonly args: readonly ArgType[];
  readonly helperClass: HelperClass;
  /** What the fast-path stub returns (u64 value, e.g. -EBUSY), or `'null'` for a NULL pointer. */
  readonly fastPathRet?: bigint | 'null';
  /** `gpl_only`: callable only from GPL-compatible programs. */
  readonly gplOnly?: boolean;
  /** `might_sleep`: only sleepable programs may call it. */
  readonly mightSleep?: boolean;
  /** `pkt_access`: memory arguments may point into the packet. */
  readonly pktAccess?: boolean;
  /** `ret_btf_id`: the struct a `RET_PTR_TO_BTF_ID` result points to. */
  readonly retBtfName?: string;
  /** `arg_btf_id`: the struct an `ARG_PTR_TO_BTF_ID` argument must point to. */
  readonly argBtfName?: string;
}

/** Splits an argument type into its base type and flags. */
export function parseArgType(t: ArgType): { base: ArgBaseType; flags: ArgTypeFlag[] } {
  const [base, ...flags] = t.split(' | ');
  return { base: base as ArgBaseType, flags: flags as ArgTypeFlag[] };
}

// ---------------------------------------------------------------------------------------------
// Errno values helpers return (negated, as u64), from include/uapi/asm-generic/errno*.h and
// include/linux/errno.h (ENOTSUPP).

/** Operation not permitted. */
export const EPERM = 1;
/** No such entry. */
export const ENOENT = 2;
/** Argument list too long (too many loops). */
export const E2BIG = 7;
/** Permission denied (bad metadata length). */
export const EACCES = 13;
/** Bad address. */
export const EFAULT = 14;
/** Busy (already initialised; fast-path stubs). */
export const EBUSY = 16;
/** Entry exists. */
export const EEXIST = 17;
/** Invalid argument. */
export const EINVAL = 22;
/** No space left (bprintf argument buffer). */
export const ENOSPC = 28;
/** Result out of range. */
export const ERANGE = 34;
/** Would deadlock (a timer callback cancelling its own timer). */
export const EDEADLK = 35;
/** Timed out (bpf_res_spin_lock's fast path). */
export const ETIMEDOUT = 110;
/** Operation not supported (uapi). */
export const EOPNOTSUPP = 95;
/** Operation not supported (kernel-internal 524, e.g. xdp_adjust_meta without metadata support). */
export const ENOTSUPP = 524;

/** `-errno` as the u64 a helper returns in r0. */
export function negErrno(errno: number): bigint {
  return BigInt.asUintN(64, BigInt(-errno));
}

// ---------------------------------------------------------------------------------------------
// Helper ids (uapi `enum bpf_func_id`) of the helpers described below.

export const BPF_FUNC_map_lookup_elem = 1;
export const BPF_FUNC_map_update_elem = 2;
export const BPF_FUNC_map_delete_elem = 3;
export const BPF_FUNC_probe_read = 4;
export const BPF_FUNC_ktime_get_ns = 5;
export const BPF_FUNC_trace_printk = 6;
export const BPF_FUNC_get_prandom_u32 = 7;
export const BPF_FUNC_get_smp_processor_id = 8;
export const BPF_FUNC_tail_call = 12;
export const BPF_FUNC_get_current_pid_tgid = 14;
export const BPF_FUNC_get_current_uid_gid = 15;
export const BPF_FUNC_get_current_comm = 16;
export const BPF_FUNC_csum_diff = 28;
export const BPF_FUNC_get_numa_node_id = 42;
export const BPF_FUNC_xdp_adjust_head = 44;
export const BPF_FUNC_probe_read_str = 45;
export const BPF_FUNC_xdp_adjust_meta = 54;
export const BPF_FUNC_xdp_adjust_tail = 65;
export const BPF_FUNC_get_stack = 67;
export const BPF_FUNC_map_push_elem = 87;
export const BPF_FUNC_map_pop_elem = 88;
export const BPF_FUNC_map_peek_elem = 89;
export const BPF_FUNC_spin_lock = 93;
export const BPF_FUNC_spin_unlock = 94;
export const BPF_FUNC_strtol = 105;
export const BPF_FUNC_strtoul = 106;
export const BPF_FUNC_probe_read_user = 112;
export const BPF_FUNC_probe_read_kernel = 113;
export const BPF_FUNC_probe_read_user_str = 114;
export const BPF_FUNC_probe_read_kernel_str = 115;
export const BPF_FUNC_ktime_get_boot_ns = 125;
export const BPF_FUNC_ringbuf_output = 130;
export const BPF_FUNC_ringbuf_reserve = 131;
export const BPF_FUNC_ringbuf_submit = 132;
export const BPF_FUNC_ringbuf_discard = 133;
export const BPF_FUNC_ringbuf_query = 134;
/** `bpf_get_task_stack`: bpf_get_stack for a task (a `PTR_TO_BTF_ID` task_struct), no ctx. */
export const BPF_FUNC_get_task_stack = 141;
/** `bpf_get_current_task_btf`: the current task as a trusted `PTR_TO_BTF_ID` task_struct. */
export const BPF_FUNC_get_current_task_btf = 158;
export const BPF_FUNC_for_each_map_elem = 164;
export const BPF_FUNC_snprintf = 165;
export const BPF_FUNC_timer_init = 169;
export const BPF_FUNC_timer_set_callback = 170;
export const BPF_FUNC_timer_start = 171;
export const BPF_FUNC_timer_cancel = 172;
export const BPF_FUNC_loop = 181;
export const BPF_FUNC_strncmp = 182;

// ---------------------------------------------------------------------------------------------
// Prototypes

const EBUSY_RET = negErrno(EBUSY);
const EFAULT_RET = negErrno(EFAULT);
const ENOENT_RET = negErrno(ENOENT);

const probeRead = (id: number, name: string): FuncProto => ({
  id,
  name,
  ret: 'RET_INTEGER',
  args: ['ARG_PTR_TO_UNINIT_MEM', 'ARG_CONST_SIZE_OR_ZERO', 'ARG_ANYTHING'],
  helperClass: 'other',
  fastPathRet: EFAULT_RET,
  gplOnly: true,
});

const pure = (id: number, name: string, args: readonly ArgType[] = []): FuncProto => ({
  id,
  name,
  ret: 'RET_INTEGER',
  args,
  helperClass: 'other',
});

const xdpAdjust = (id: number, name: string): FuncProto => ({
  id,
  name,
  ret: 'RET_INTEGER',
  args: ['ARG_PTR_TO_CTX', 'ARG_ANYTHING'],
  helperClass: 'other',
});

/** Every prototype, by id order. */
export const FUNC_PROTO_LIST: readonly FuncProto[] = [
  {
    id: BPF_FUNC_map_lookup_elem,
    name: 'bpf_map_lookup_elem',
    ret: 'RET_PTR_TO_MAP_VALUE_OR_NULL',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_KEY'],
    helperClass: 'acquire',
    fastPathRet: 'null',
    pktAccess: true,
  },
  {
    id: BPF_FUNC_map_update_elem,
    name: 'bpf_map_update_elem',
    ret: 'RET_INTEGER',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_KEY', 'ARG_PTR_TO_MAP_VALUE', 'ARG_ANYTHING'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    pktAccess: true,
  },
  {
    id: BPF_FUNC_map_delete_elem,
    name: 'bpf_map_delete_elem',
    ret: 'RET_INTEGER',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_KEY'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    pktAccess: true,
  },
  probeRead(BPF_FUNC_probe_read, 'bpf_probe_read'),
  pure(BPF_FUNC_ktime_get_ns, 'bpf_ktime_get_ns'),
  {
    id: BPF_FUNC_trace_printk,
    name: 'bpf_trace_printk',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_MEM | MEM_RDONLY', 'ARG_CONST_SIZE'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    gplOnly: true,
  },
  pure(BPF_FUNC_get_prandom_u32, 'bpf_get_prandom_u32'),
  pure(BPF_FUNC_get_smp_processor_id, 'bpf_get_smp_processor_id'),
  {
    id: BPF_FUNC_tail_call,
    name: 'bpf_tail_call',
    ret: 'RET_VOID',
    args: ['ARG_PTR_TO_CTX', 'ARG_CONST_MAP_PTR', 'ARG_ANYTHING'],
    helperClass: 'other',
    // The stub fails the tail call: execution continues after it, as for an empty slot.
    fastPathRet: 0n,
  },
  pure(BPF_FUNC_get_current_pid_tgid, 'bpf_get_current_pid_tgid'),
  pure(BPF_FUNC_get_current_uid_gid, 'bpf_get_current_uid_gid'),
  pure(BPF_FUNC_get_current_comm, 'bpf_get_current_comm', [
    'ARG_PTR_TO_UNINIT_MEM',
    'ARG_CONST_SIZE',
  ]),
  {
    ...pure(BPF_FUNC_csum_diff, 'bpf_csum_diff', [
      'ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY',
      'ARG_CONST_SIZE_OR_ZERO',
      'ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY',
      'ARG_CONST_SIZE_OR_ZERO',
      'ARG_ANYTHING',
    ]),
    pktAccess: true,
  },
  pure(BPF_FUNC_get_numa_node_id, 'bpf_get_numa_node_id'),
  xdpAdjust(BPF_FUNC_xdp_adjust_head, 'bpf_xdp_adjust_head'),
  probeRead(BPF_FUNC_probe_read_str, 'bpf_probe_read_str'),
  xdpAdjust(BPF_FUNC_xdp_adjust_meta, 'bpf_xdp_adjust_meta'),
  xdpAdjust(BPF_FUNC_xdp_adjust_tail, 'bpf_xdp_adjust_tail'),
  {
    id: BPF_FUNC_get_stack,
    name: 'bpf_get_stack',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_CTX', 'ARG_PTR_TO_UNINIT_MEM', 'ARG_CONST_SIZE_OR_ZERO', 'ARG_ANYTHING'],
    helperClass: 'other',
    fastPathRet: EFAULT_RET,
    gplOnly: true,
  },
  {
    id: BPF_FUNC_map_push_elem,
    name: 'bpf_map_push_elem',
    ret: 'RET_INTEGER',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_VALUE', 'ARG_ANYTHING'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    pktAccess: true,
  },
  {
    id: BPF_FUNC_map_pop_elem,
    name: 'bpf_map_pop_elem',
    ret: 'RET_INTEGER',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE'],
    helperClass: 'other',
    fastPathRet: ENOENT_RET,
  },
  {
    id: BPF_FUNC_map_peek_elem,
    name: 'bpf_map_peek_elem',
    ret: 'RET_INTEGER',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE'],
    helperClass: 'other',
    fastPathRet: ENOENT_RET,
  },
  {
    id: BPF_FUNC_spin_lock,
    name: 'bpf_spin_lock',
    ret: 'RET_VOID',
    args: ['ARG_PTR_TO_SPIN_LOCK'],
    helperClass: 'lock',
  },
  {
    id: BPF_FUNC_spin_unlock,
    name: 'bpf_spin_unlock',
    ret: 'RET_VOID',
    args: ['ARG_PTR_TO_SPIN_LOCK'],
    helperClass: 'release',
  },
  pure(BPF_FUNC_strtol, 'bpf_strtol', [
    'ARG_PTR_TO_MEM | MEM_RDONLY',
    'ARG_CONST_SIZE',
    'ARG_ANYTHING',
    'ARG_PTR_TO_LONG',
  ]),
  pure(BPF_FUNC_strtoul, 'bpf_strtoul', [
    'ARG_PTR_TO_MEM | MEM_RDONLY',
    'ARG_CONST_SIZE',
    'ARG_ANYTHING',
    'ARG_PTR_TO_LONG',
  ]),
  probeRead(BPF_FUNC_probe_read_user, 'bpf_probe_read_user'),
  probeRead(BPF_FUNC_probe_read_kernel, 'bpf_probe_read_kernel'),
  probeRead(BPF_FUNC_probe_read_user_str, 'bpf_probe_read_user_str'),
  probeRead(BPF_FUNC_probe_read_kernel_str, 'bpf_probe_read_kernel_str'),
  pure(BPF_FUNC_ktime_get_boot_ns, 'bpf_ktime_get_boot_ns'),
  {
    id: BPF_FUNC_ringbuf_output,
    name: 'bpf_ringbuf_output',
    ret: 'RET_INTEGER',
    args: [
      'ARG_CONST_MAP_PTR',
      'ARG_PTR_TO_MEM | MEM_RDONLY',
      'ARG_CONST_SIZE_OR_ZERO',
      'ARG_ANYTHING',
    ],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
  },
  {
    id: BPF_FUNC_ringbuf_reserve,
    name: 'bpf_ringbuf_reserve',
    ret: 'RET_PTR_TO_RINGBUF_MEM_OR_NULL',
    args: ['ARG_CONST_MAP_PTR', 'ARG_CONST_ALLOC_SIZE_OR_ZERO', 'ARG_ANYTHING'],
    helperClass: 'acquire',
    fastPathRet: 'null',
  },
  {
    id: BPF_FUNC_ringbuf_submit,
    name: 'bpf_ringbuf_submit',
    ret: 'RET_VOID',
    args: ['ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE', 'ARG_ANYTHING'],
    helperClass: 'release',
  },
  {
    id: BPF_FUNC_ringbuf_discard,
    name: 'bpf_ringbuf_discard',
    ret: 'RET_VOID',
    args: ['ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE', 'ARG_ANYTHING'],
    helperClass: 'release',
  },
  pure(BPF_FUNC_ringbuf_query, 'bpf_ringbuf_query', ['ARG_CONST_MAP_PTR', 'ARG_ANYTHING']),
  {
    id: BPF_FUNC_get_task_stack,
    name: 'bpf_get_task_stack',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_BTF_ID', 'ARG_PTR_TO_UNINIT_MEM', 'ARG_CONST_SIZE_OR_ZERO', 'ARG_ANYTHING'],
    helperClass: 'other',
    fastPathRet: EFAULT_RET,
    gplOnly: true,
    argBtfName: 'task_struct',
  },
  {
    id: BPF_FUNC_get_current_task_btf,
    name: 'bpf_get_current_task_btf',
    ret: 'RET_PTR_TO_BTF_ID',
    args: [],
    helperClass: 'other',
    retBtfName: 'task_struct',
  },
  {
    id: BPF_FUNC_for_each_map_elem,
    name: 'bpf_for_each_map_elem',
    ret: 'RET_INTEGER',
    args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_FUNC', 'ARG_PTR_TO_STACK_OR_NULL', 'ARG_ANYTHING'],
    helperClass: 'iterator',
  },
  {
    id: BPF_FUNC_snprintf,
    name: 'bpf_snprintf',
    ret: 'RET_INTEGER',
    args: [
      'ARG_PTR_TO_MEM | PTR_MAYBE_NULL',
      'ARG_CONST_SIZE_OR_ZERO',
      'ARG_PTR_TO_CONST_STR',
      'ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY',
      'ARG_CONST_SIZE_OR_ZERO',
    ],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    gplOnly: true,
  },
  {
    id: BPF_FUNC_timer_init,
    name: 'bpf_timer_init',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_TIMER', 'ARG_CONST_MAP_PTR', 'ARG_ANYTHING'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    gplOnly: true,
  },
  {
    id: BPF_FUNC_timer_set_callback,
    name: 'bpf_timer_set_callback',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_TIMER', 'ARG_PTR_TO_FUNC'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    gplOnly: true,
  },
  {
    id: BPF_FUNC_timer_start,
    name: 'bpf_timer_start',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_TIMER', 'ARG_ANYTHING', 'ARG_ANYTHING'],
    helperClass: 'other',
    fastPathRet: EBUSY_RET,
    gplOnly: true,
  },
  {
    id: BPF_FUNC_timer_cancel,
    name: 'bpf_timer_cancel',
    ret: 'RET_INTEGER',
    args: ['ARG_PTR_TO_TIMER'],
    helperClass: 'release',
    gplOnly: true,
  },
  {
    id: BPF_FUNC_loop,
    name: 'bpf_loop',
    ret: 'RET_INTEGER',
    args: ['ARG_ANYTHING', 'ARG_PTR_TO_FUNC', 'ARG_PTR_TO_STACK_OR_NULL', 'ARG_ANYTHING'],
    helperClass: 'iterator',
  },
  pure(BPF_FUNC_strncmp, 'bpf_strncmp', [
    'ARG_PTR_TO_MEM | MEM_RDONLY',
    'ARG_CONST_SIZE',
    'ARG_PTR_TO_CONST_STR',
  ]),
];

/** Prototypes by helper id. */
export const FUNC_PROTOS: ReadonlyMap<number, FuncProto> = new Map(
  FUNC_PROTO_LIST.map((p) => [p.id, p]),
);

/** The prototype of helper `id`, or undefined when bpfwasm does not describe it. */
export function funcProto(id: number): FuncProto | undefined {
  return FUNC_PROTOS.get(id);
}

// ---------------------------------------------------------------------------------------------
// Names

/** Helper names by id, without the `bpf_` prefix: uapi `___BPF_FUNC_MAPPER`, ids 0..211. */
export const BPF_FUNC_NAMES: readonly string[] = [
  'unspec',
  'map_lookup_elem',
  'map_update_elem',
  'map_delete_elem',
  'probe_read',
  'ktime_get_ns',
  'trace_printk',
  'get_prandom_u32',
  'get_smp_processor_id',
  'skb_store_bytes',
  'l3_csum_replace',
  'l4_csum_replace',
  'tail_call',
  'clone_redirect',
  'get_current_pid_tgid',
  'get_current_uid_gid',
  'get_current_comm',
  'get_cgroup_classid',
  'skb_vlan_push',
  'skb_vlan_pop',
  'skb_get_tunnel_key',
  'skb_set_tunnel_key',
  'perf_event_read',
  'redirect',
  'get_route_realm',
  'perf_event_output',
  'skb_load_bytes',
  'get_stackid',
  'csum_diff',
  'skb_get_tunnel_opt',
  'skb_set_tunnel_opt',
  'skb_change_proto',
  'skb_change_type',
  'skb_under_cgroup',
  'get_hash_recalc',
  'get_current_task',
  'probe_write_user',
  'current_task_under_cgroup',
  'skb_change_tail',
  'skb_pull_data',
  'csum_update',
  'set_hash_invalid',
  'get_numa_node_id',
  'skb_change_head',
  'xdp_adjust_head',
  'probe_read_str',
  'get_socket_cookie',
  'get_socket_uid',
  'set_hash',
  'setsockopt',
  'skb_adjust_room',
  'redirect_map',
  'sk_redirect_map',
  'sock_map_update',
  'xdp_adjust_meta',
  'perf_event_read_value',
  'perf_prog_read_value',
  'getsockopt',
  'override_return',
  'sock_ops_cb_flags_set',
  'msg_redirect_map',
  'msg_apply_bytes',
  'msg_cork_bytes',
  'msg_pull_data',
  'bind',
  'xdp_adjust_tail',
  'skb_get_xfrm_state',
  'get_stack',
  'skb_load_bytes_relative',
  'fib_lookup',
  'sock_hash_update',
  'msg_redirect_hash',
  'sk_redirect_hash',
  'lwt_push_encap',
  'lwt_seg6_store_bytes',
  'lwt_seg6_adjust_srh',
  'lwt_seg6_action',
  'rc_repeat',
  'rc_keydown',
  'skb_cgroup_id',
  'get_current_cgroup_id',
  'get_local_storage',
  'sk_select_reuseport',
  'skb_ancestor_cgroup_id',
  'sk_lookup_tcp',
  'sk_lookup_udp',
  'sk_release',
  'map_push_elem',
  'map_pop_elem',
  'map_peek_elem',
  'msg_push_data',
  'msg_pop_data',
  'rc_pointer_rel',
  'spin_lock',
  'spin_unlock',
  'sk_fullsock',
  'tcp_sock',
  'skb_ecn_set_ce',
  'get_listener_sock',
  'skc_lookup_tcp',
  'tcp_check_syncookie',
  'sysctl_get_name',
  'sysctl_get_current_value',
  'sysctl_get_new_value',
  'sysctl_set_new_value',
  'strtol',
  'strtoul',
  'sk_storage_get',
  'sk_storage_delete',
  'send_signal',
  'tcp_gen_syncookie',
  'skb_output',
  'probe_read_user',
  'probe_read_kernel',
  'probe_read_user_str',
  'probe_read_kernel_str',
  'tcp_send_ack',
  'send_signal_thread',
  'jiffies64',
  'read_branch_records',
  'get_ns_current_pid_tgid',
  'xdp_output',
  'get_netns_cookie',
  'get_current_ancestor_cgroup_id',
  'sk_assign',
  'ktime_get_boot_ns',
  'seq_printf',
  'seq_write',
  'sk_cgroup_id',
  'sk_ancestor_cgroup_id',
  'ringbuf_output',
  'ringbuf_reserve',
  'ringbuf_submit',
  'ringbuf_discard',
  'ringbuf_query',
  'csum_level',
  'skc_to_tcp6_sock',
  'skc_to_tcp_sock',
  'skc_to_tcp_timewait_sock',
  'skc_to_tcp_request_sock',
  'skc_to_udp6_sock',
  'get_task_stack',
  'load_hdr_opt',
  'store_hdr_opt',
  'reserve_hdr_opt',
  'inode_storage_get',
  'inode_storage_delete',
  'd_path',
  'copy_from_user',
  'snprintf_btf',
  'seq_printf_btf',
  'skb_cgroup_classid',
  'redirect_neigh',
  'per_cpu_ptr',
  'this_cpu_ptr',
  'redirect_peer',
  'task_storage_get',
  'task_storage_delete',
  'get_current_task_btf',
  'bprm_opts_set',
  'ktime_get_coarse_ns',
  'ima_inode_hash',
  'sock_from_file',
  'check_mtu',
  'for_each_map_elem',
  'snprintf',
  'sys_bpf',
  'btf_find_by_name_kind',
  'sys_close',
  'timer_init',
  'timer_set_callback',
  'timer_start',
  'timer_cancel',
  'get_func_ip',
  'get_attach_cookie',
  'task_pt_regs',
  'get_branch_snapshot',
  'trace_vprintk',
  'skc_to_unix_sock',
  'kallsyms_lookup_name',
  'find_vma',
  'loop',
  'strncmp',
  'get_func_arg',
  'get_func_ret',
  'get_func_arg_cnt',
  'get_retval',
  'set_retval',
  'xdp_get_buff_len',
  'xdp_load_bytes',
  'xdp_store_bytes',
  'copy_from_user_task',
  'skb_set_tstamp',
  'ima_file_hash',
  'kptr_xchg',
  'map_lookup_percpu_elem',
  'skc_to_mptcp_sock',
  'dynptr_from_mem',
  'ringbuf_reserve_dynptr',
  'ringbuf_submit_dynptr',
  'ringbuf_discard_dynptr',
  'dynptr_read',
  'dynptr_write',
  'dynptr_data',
  'tcp_raw_gen_syncookie_ipv4',
  'tcp_raw_gen_syncookie_ipv6',
  'tcp_raw_check_syncookie_ipv4',
  'tcp_raw_check_syncookie_ipv6',
  'ktime_get_tai_ns',
  'user_ringbuf_drain',
  'cgrp_storage_get',
  'cgrp_storage_delete',
];

/**
 * The kernel's name of helper `id` (`bpf_map_lookup_elem`), as the disassembler's kernel syntax
 * and the verifier log print it (`call bpf_map_lookup_elem#1`); undefined for id 0 and for ids
 * the kernel does not define.
 * @example
 * helperName(181); // 'bpf_loop'
 */
export function helperName(id: number): string | undefined {
  if (!Number.isInteger(id) || id < 1) return undefined;
  const n = BPF_FUNC_NAMES[id];
  return n === undefined ? undefined : `bpf_${n}`;
}

// ---------------------------------------------------------------------------------------------
// Termination classes (notes/fast-path-termination.md §10.2-10.3)

/**
 * The class §10.3 derives from a prototype: an argument released (`OBJ_RELEASE`) → release;
 * a nullable pointer return → acquire; a callback argument → iterator; anything else → other
 * (the stub returns `fastPathRet`, or the helper is pure and kept when it has none). The
 * prototypes' `helperClass` agrees with it except for TERM_CLASS_OVERRIDES.
 */
export function deriveHelperClass(p: FuncProto): HelperClass {
  if (p.args.some((a) => parseArgType(a).flags.includes('OBJ_RELEASE'))) return 'release';
  if (p.ret.endsWith('_OR_NULL')) return 'acquire';
  if (p.args.some((a) => parseArgType(a).base === 'ARG_PTR_TO_FUNC')) return 'iterator';
  return 'other';
}

/**
 * Helpers whose class is set by hand, against deriveHelperClass: the lock pair (kept: their
 * release is not flagged OBJ_RELEASE, and a stubbed lock before a real unlock is wrong, §6),
 * bpf_timer_cancel (it only ends deferred work, so it is kept like a release) and
 * bpf_timer_set_callback (its callback runs later, not inside the call: no new deferred work,
 * so it fails like the other timer helpers).
 */
export const TERM_CLASS_OVERRIDES: ReadonlyMap<number, HelperClass> = new Map([
  [BPF_FUNC_spin_lock, 'lock'],
  [BPF_FUNC_spin_unlock, 'release'],
  [BPF_FUNC_timer_cancel, 'release'],
  [BPF_FUNC_timer_set_callback, 'other'],
]);

/** How termination treats a kfunc, and what its fast-path version returns. */
export interface KfuncTermClass {
  readonly helperClass: HelperClass;
  readonly fastPathRet?: bigint | 'null';
}

const ACQUIRE_NULL: KfuncTermClass = { helperClass: 'acquire', fastPathRet: 'null' };
const RELEASE: KfuncTermClass = { helperClass: 'release' };

/**
 * Kfunc classes by name (§10.2; a kfunc has no id, so they live beside the helper prototypes
 * here rather than in them). A kfunc not listed is classed from its signature when the Vm
 * swaps it (runtime/termination.ts: a nullable memory return is acquire, everything else is
 * kept), which is §10.3 applied to `KfuncSig`.
 */
export const KFUNC_TERM_CLASSES: ReadonlyMap<string, KfuncTermClass> = new Map([
  ['bpf_obj_new_impl', ACQUIRE_NULL],
  ['bpf_refcount_acquire_impl', ACQUIRE_NULL],
  ['bpf_obj_drop_impl', RELEASE],
  ['bpf_list_push_front_impl', RELEASE],
  ['bpf_list_push_back_impl', RELEASE],
  ['bpf_rbtree_add_impl', RELEASE],
  ['bpf_list_pop_front', ACQUIRE_NULL],
  ['bpf_list_pop_back', ACQUIRE_NULL],
  ['bpf_rbtree_remove', ACQUIRE_NULL],
  ['bpf_rbtree_first', ACQUIRE_NULL],
  ['bpf_task_acquire', ACQUIRE_NULL],
  ['bpf_task_from_pid', ACQUIRE_NULL],
  ['bpf_cgroup_acquire', ACQUIRE_NULL],
  ['bpf_task_release', RELEASE],
  ['bpf_cgroup_release', RELEASE],
  ['bpf_coro_frame_alloc', ACQUIRE_NULL],
  ['bpf_coro_frame_free', RELEASE],
  // no new suspension: the awaitable resumes at once with the error and the coroutine's own
  // code runs down (include/bpf_coro.h returns it from co_await)
  ['bpf_coro_enqueue', { helperClass: 'other', fastPathRet: negErrno(EBUSY) }],
  ['bpf_coro_yield', { helperClass: 'other', fastPathRet: negErrno(EBUSY) }],
  ['bpf_coro_sleep', { helperClass: 'other', fastPathRet: negErrno(EBUSY) }],
  // ownership bookkeeping and the drain of what a run deferred: kept
  ['bpf_coro_defer', RELEASE],
  ['bpf_coro_detach', RELEASE],
  ['bpf_coro_await', RELEASE],
  ['bpf_coro_done', RELEASE],
  ['bpf_coro_reap', RELEASE],
  ['bpf_coro_handle_frame', ACQUIRE_NULL],
  ['bpf_coro_take_cancelled', { helperClass: 'other' }],
  ['bpf_coro_drain', { helperClass: 'iterator', fastPathRet: 0n }],
  ['bpf_iter_num_next', { helperClass: 'iterator', fastPathRet: 'null' }],
  ['bpf_iter_num_new', { helperClass: 'other' }],
  ['bpf_iter_num_destroy', RELEASE],
  ['bpf_res_spin_lock', { helperClass: 'lock', fastPathRet: negErrno(ETIMEDOUT) }],
  ['bpf_res_spin_unlock', RELEASE],
  ['bpf_rcu_read_lock', { helperClass: 'lock' }],
  ['bpf_rcu_read_unlock', RELEASE],
  ['bpf_throw', { helperClass: 'other' }],
]);

/**
 * What the fast-path version of a helper does instead of the original (runtime/fast-path.ts
 * builds them; the JIT's 'flag-check' mode inlines the constant ones): keep the original,
 * return a constant, or zero the uninitialised output buffers (§10.3 rule 6) and return one.
 */
export type FastPath =
  | { readonly kind: 'keep' }
  | { readonly kind: 'const'; readonly ret: bigint }
  | { readonly kind: 'zero'; readonly ret: bigint; readonly proto: FuncProto };

const KEEP: FastPath = { kind: 'keep' };

/** The u64 a fast path returns for `fastPathRet`. */
export function termRetValue(r: bigint | 'null'): bigint {
  return r === 'null' ? 0n : BigInt.asUintN(64, r);
}

/** Arguments (0-based) the verifier marks initialised after the call although the helper writes them. */
export function uninitArgs(p: FuncProto): number[] {
  const out: number[] = [];
  p.args.forEach((a, k) => {
    const { base, flags } = parseArgType(a);
    if (base === 'ARG_PTR_TO_UNINIT_MEM' || flags.includes('MEM_UNINIT')) out.push(k);
  });
  return out;
}

/** The fast path of helper `id` (keep when bpfwasm has no prototype for it). */
export function helperFastPath(id: number): FastPath {
  const p = funcProto(id);
  if (p === undefined) return KEEP;
  switch (p.helperClass) {
    case 'release':
    case 'lock':
      return KEEP;
    case 'iterator':
      return { kind: 'const', ret: 0n };
    case 'acquire':
    case 'other': {
      if (p.fastPathRet === undefined) return KEEP;
      const ret = termRetValue(p.fastPathRet);
      return uninitArgs(p).length > 0 ? { kind: 'zero', ret, proto: p } : { kind: 'const', ret };
    }
  }
}
