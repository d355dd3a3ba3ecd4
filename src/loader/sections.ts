/**
 * Program section names → program types, following libbpf's `section_defs` table and its
 * matching rules (`sec_def_matches`): a pattern ending in `+` matches the name exactly or
 * followed by `/extra`; a pattern ending in `/` matches any name with that prefix; any other
 * pattern matches exactly. The first match wins, so more specific patterns come first.
 * `extra` (after the `/`) becomes the program's `attachTo` (`kprobe/do_sys_open`,
 * `struct_ops/dctcp_init`, `fentry/tcp_v4_rcv`).
 *
 * A name libbpf does not know (`mem`, `classifier_x`, any custom name) is allowed and gives
 * the uBPF `mem` type with `custom: true`. A name libbpf knows whose kernel type the engine
 * does not model (`sk_msg`, `cgroup/sock`, ...) is rejected by `loadObject` with the kernel
 * type's name.
 *
 * Called from: `loadObject`.
 */

import type { ProgType } from '../program.js';

/** What a section name says about its programs. */
export interface SectionDef {
  /** The engine's program type (`mem` for custom sections). */
  readonly type: ProgType | undefined;
  /** The kernel's `BPF_PROG_TYPE_*` name, lower case without prefix (`sched_cls`). */
  readonly kernelType: string;
  /** The text after the pattern's `/`, when there is one. */
  readonly attachTo: string | undefined;
  /** Sleepable variants (`fentry.s/`, `lsm.s/`, `uprobe.s`, `syscall`). */
  readonly sleepable: boolean;
  /** True when libbpf does not know the name. */
  readonly custom: boolean;
}

interface Pattern {
  readonly sec: string;
  readonly kernelType: string;
  readonly sleepable?: boolean;
}

/** libbpf's table (1.5), in its order. */
const SECTION_DEFS: readonly Pattern[] = [
  { sec: 'socket', kernelType: 'socket_filter' },
  { sec: 'sk_reuseport/migrate', kernelType: 'sk_reuseport' },
  { sec: 'sk_reuseport', kernelType: 'sk_reuseport' },
  { sec: 'kprobe+', kernelType: 'kprobe' },
  { sec: 'uprobe+', kernelType: 'kprobe' },
  { sec: 'uprobe.s+', kernelType: 'kprobe', sleepable: true },
  { sec: 'kretprobe+', kernelType: 'kprobe' },
  { sec: 'uretprobe+', kernelType: 'kprobe' },
  { sec: 'uretprobe.s+', kernelType: 'kprobe', sleepable: true },
  { sec: 'kprobe.multi+', kernelType: 'kprobe' },
  { sec: 'kretprobe.multi+', kernelType: 'kprobe' },
  { sec: 'kprobe.session+', kernelType: 'kprobe' },
  { sec: 'uprobe.multi+', kernelType: 'kprobe' },
  { sec: 'uretprobe.multi+', kernelType: 'kprobe' },
  { sec: 'uprobe.session+', kernelType: 'kprobe' },
  { sec: 'uprobe.multi.s+', kernelType: 'kprobe', sleepable: true },
  { sec: 'uretprobe.multi.s+', kernelType: 'kprobe', sleepable: true },
  { sec: 'uprobe.session.s+', kernelType: 'kprobe', sleepable: true },
  { sec: 'ksyscall+', kernelType: 'kprobe' },
  { sec: 'kretsyscall+', kernelType: 'kprobe' },
  { sec: 'usdt+', kernelType: 'kprobe' },
  { sec: 'usdt.s+', kernelType: 'kprobe', sleepable: true },
  { sec: 'tc/ingress', kernelType: 'sched_cls' },
  { sec: 'tc/egress', kernelType: 'sched_cls' },
  { sec: 'tcx/ingress', kernelType: 'sched_cls' },
  { sec: 'tcx/egress', kernelType: 'sched_cls' },
  { sec: 'netkit/primary', kernelType: 'sched_cls' },
  { sec: 'netkit/peer', kernelType: 'sched_cls' },
  { sec: 'tc', kernelType: 'sched_cls' },
  { sec: 'classifier', kernelType: 'sched_cls' },
  { sec: 'action', kernelType: 'sched_act' },
  { sec: 'tracepoint+', kernelType: 'tracepoint' },
  { sec: 'tp+', kernelType: 'tracepoint' },
  { sec: 'raw_tracepoint+', kernelType: 'raw_tracepoint' },
  { sec: 'raw_tp+', kernelType: 'raw_tracepoint' },
  { sec: 'raw_tracepoint.w+', kernelType: 'raw_tracepoint_writable' },
  { sec: 'raw_tp.w+', kernelType: 'raw_tracepoint_writable' },
  { sec: 'tp_btf+', kernelType: 'tracing' },
  { sec: 'fentry+', kernelType: 'tracing' },
  { sec: 'fmod_ret+', kernelType: 'tracing' },
  { sec: 'fexit+', kernelType: 'tracing' },
  { sec: 'fentry.s+', kernelType: 'tracing', sleepable: true },
  { sec: 'fmod_ret.s+', kernelType: 'tracing', sleepable: true },
  { sec: 'fexit.s+', kernelType: 'tracing', sleepable: true },
  { sec: 'freplace+', kernelType: 'ext' },
  { sec: 'lsm+', kernelType: 'lsm' },
  { sec: 'lsm.s+', kernelType: 'lsm', sleepable: true },
  { sec: 'lsm_cgroup+', kernelType: 'lsm' },
  { sec: 'iter+', kernelType: 'tracing' },
  { sec: 'iter.s+', kernelType: 'tracing', sleepable: true },
  { sec: 'syscall', kernelType: 'syscall', sleepable: true },
  { sec: 'xdp.frags/devmap', kernelType: 'xdp' },
  { sec: 'xdp/devmap', kernelType: 'xdp' },
  { sec: 'xdp.frags/cpumap', kernelType: 'xdp' },
  { sec: 'xdp/cpumap', kernelType: 'xdp' },
  { sec: 'xdp.frags', kernelType: 'xdp' },
  { sec: 'xdp', kernelType: 'xdp' },
  { sec: 'perf_event', kernelType: 'perf_event' },
  { sec: 'lwt_in', kernelType: 'lwt_in' },
  { sec: 'lwt_out', kernelType: 'lwt_out' },
  { sec: 'lwt_xmit', kernelType: 'lwt_xmit' },
  { sec: 'lwt_seg6local', kernelType: 'lwt_seg6local' },
  { sec: 'sockops', kernelType: 'sock_ops' },
  { sec: 'sk_skb/stream_parser', kernelType: 'sk_skb' },
  { sec: 'sk_skb/stream_verdict', kernelType: 'sk_skb' },
  { sec: 'sk_skb/verdict', kernelType: 'sk_skb' },
  { sec: 'sk_skb', kernelType: 'sk_skb' },
  { sec: 'sk_msg', kernelType: 'sk_msg' },
  { sec: 'lirc_mode2', kernelType: 'lirc_mode2' },
  { sec: 'flow_dissector', kernelType: 'flow_dissector' },
  { sec: 'cgroup_skb/ingress', kernelType: 'cgroup_skb' },
  { sec: 'cgroup_skb/egress', kernelType: 'cgroup_skb' },
  { sec: 'cgroup/skb', kernelType: 'cgroup_skb' },
  { sec: 'cgroup/sock_create', kernelType: 'cgroup_sock' },
  { sec: 'cgroup/sock_release', kernelType: 'cgroup_sock' },
  { sec: 'cgroup/sock', kernelType: 'cgroup_sock' },
  { sec: 'cgroup/post_bind4', kernelType: 'cgroup_sock' },
  { sec: 'cgroup/post_bind6', kernelType: 'cgroup_sock' },
  { sec: 'cgroup/bind4', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/bind6', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/connect4', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/connect6', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/connect_unix', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/sendmsg4', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/sendmsg6', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/sendmsg_unix', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/recvmsg4', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/recvmsg6', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/recvmsg_unix', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/getpeername4', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/getpeername6', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/getpeername_unix', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/getsockname4', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/getsockname6', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/getsockname_unix', kernelType: 'cgroup_sock_addr' },
  { sec: 'cgroup/sysctl', kernelType: 'cgroup_sysctl' },
  { sec: 'cgroup/getsockopt', kernelType: 'cgroup_sockopt' },
  { sec: 'cgroup/setsockopt', kernelType: 'cgroup_sockopt' },
  { sec: 'cgroup/dev', kernelType: 'cgroup_device' },
  { sec: 'struct_ops+', kernelType: 'struct_ops' },
  { sec: 'struct_ops.s+', kernelType: 'struct_ops', sleepable: true },
  { sec: 'sk_lookup', kernelType: 'sk_lookup' },
  { sec: 'netfilter', kernelType: 'netfilter' },
];

/** Kernel program types the engine models, by their kernel name. */
const MODELLED: ReadonlyMap<string, ProgType> = new Map<string, ProgType>([
  ['socket_filter', 'socket_filter'],
  ['kprobe', 'kprobe'],
  ['sched_cls', 'sched_cls'],
  ['sched_act', 'sched_act'],
  ['tracepoint', 'tracepoint'],
  ['raw_tracepoint', 'raw_tracepoint'],
  ['tracing', 'tracing'],
  ['lsm', 'lsm'],
  ['syscall', 'syscall'],
  ['xdp', 'xdp'],
  ['perf_event', 'perf_event'],
  ['sk_skb', 'sk_skb'],
  ['cgroup_skb', 'cgroup_skb'],
  ['struct_ops', 'struct_ops'],
]);

/**
 * Looks a section name up in libbpf's table.
 *
 * @example
 * ```ts
 * sectionDef('kprobe/do_sys_open'); // { type: 'kprobe', attachTo: 'do_sys_open', ... }
 * sectionDef('mem');                // { type: 'mem', custom: true, ... }
 * ```
 */
export function sectionDef(name: string): SectionDef {
  for (const p of SECTION_DEFS) {
    const attach = matchPattern(p.sec, name);
    if (attach === null) continue;
    return {
      type: MODELLED.get(p.kernelType),
      kernelType: p.kernelType,
      attachTo: attach,
      sleepable: p.sleepable === true,
      custom: false,
    };
  }
  return { type: 'mem', kernelType: 'mem', attachTo: undefined, sleepable: false, custom: true };
}

/** null when `name` does not match `sec`, else the attach target (undefined when none). */
function matchPattern(sec: string, name: string): string | undefined | null {
  const last = sec[sec.length - 1];
  if (last === '+') {
    const base = sec.slice(0, -1);
    if (name === base) return undefined;
    return name.startsWith(`${base}/`) ? name.slice(base.length + 1) : null;
  }
  if (last === '/') return name.startsWith(sec) ? name.slice(sec.length) : null;
  if (name !== sec) return null;
  const slash = sec.indexOf('/');
  return slash < 0 ? undefined : sec.slice(slash + 1);
}
