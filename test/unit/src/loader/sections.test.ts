/**
 * Unit tests of src/loader/sections.ts: libbpf's section names and matching rules.
 */

import { describe, expect, it } from 'vitest';
import { sectionDef } from '../../../../src/loader/sections.js';

describe('sectionDef', () => {
  it.each([
    ['xdp', 'xdp', undefined],
    ['xdp.frags', 'xdp', undefined],
    ['xdp/devmap', 'xdp', 'devmap'],
    ['socket', 'socket_filter', undefined],
    ['sk_skb', 'sk_skb', undefined],
    ['sk_skb/stream_verdict', 'sk_skb', 'stream_verdict'],
    ['tc', 'sched_cls', undefined],
    ['classifier', 'sched_cls', undefined],
    ['tc/ingress', 'sched_cls', 'ingress'],
    ['action', 'sched_act', undefined],
    ['cgroup_skb/ingress', 'cgroup_skb', 'ingress'],
    ['cgroup_skb/egress', 'cgroup_skb', 'egress'],
    ['kprobe/do_sys_open', 'kprobe', 'do_sys_open'],
    ['kretprobe/do_sys_open', 'kprobe', 'do_sys_open'],
    ['kprobe', 'kprobe', undefined],
    ['uprobe//bin/sh:main', 'kprobe', '/bin/sh:main'],
    ['tracepoint/syscalls/sys_enter_open', 'tracepoint', 'syscalls/sys_enter_open'],
    ['tp/sched/sched_switch', 'tracepoint', 'sched/sched_switch'],
    ['raw_tracepoint/sched_switch', 'raw_tracepoint', 'sched_switch'],
    ['raw_tp/sched_switch', 'raw_tracepoint', 'sched_switch'],
    ['perf_event', 'perf_event', undefined],
    ['struct_ops/dctcp_init', 'struct_ops', 'dctcp_init'],
    ['syscall', 'syscall', undefined],
    ['fentry/tcp_v4_rcv', 'tracing', 'tcp_v4_rcv'],
    ['fexit/tcp_v4_rcv', 'tracing', 'tcp_v4_rcv'],
    ['lsm/file_open', 'lsm', 'file_open'],
  ] as const)('maps %s to %s', (name, type, attachTo) => {
    const def = sectionDef(name);
    expect(def.type).toBe(type);
    expect(def.attachTo).toBe(attachTo);
    expect(def.custom).toBe(false);
  });

  it('marks sleepable variants', () => {
    expect(sectionDef('fentry.s/f').sleepable).toBe(true);
    expect(sectionDef('lsm.s/file_open')).toMatchObject({ type: 'lsm', sleepable: true });
    expect(sectionDef('syscall').sleepable).toBe(true);
    expect(sectionDef('fentry/f').sleepable).toBe(false);
  });

  it('gives unknown names the uBPF mem type and marks them custom', () => {
    for (const name of ['mem', 'my_prog', 'kprobefoo', 'xdp_extra', 'tc/other']) {
      expect(sectionDef(name)).toMatchObject({ type: 'mem', kernelType: 'mem', custom: true });
    }
  });

  it('names the kernel type of libbpf sections the engine does not model', () => {
    expect(sectionDef('sk_msg')).toMatchObject({ type: undefined, kernelType: 'sk_msg' });
    expect(sectionDef('cgroup/connect4')).toMatchObject({
      type: undefined,
      kernelType: 'cgroup_sock_addr',
    });
  });
});
