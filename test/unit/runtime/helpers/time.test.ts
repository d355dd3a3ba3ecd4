/**
 * Host values: bpf_ktime_get_ns / bpf_ktime_get_boot_ns (injected clock), bpf_get_prandom_u32
 * (injected random), bpf_get_smp_processor_id and bpf_get_numa_node_id, from BPF programs on
 * both engines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, closeVms, r0, runAsm } from './harness.js';

afterEach(closeVms);

describe.each(ENGINES)('on the %s engine', (engine) => {
  it('bpf_ktime_get_ns and bpf_ktime_get_boot_ns read the injected clock', async () => {
    let t = 1_000_000n;
    const clock = (): bigint => (t += 7n);
    const asm = 'call 5\nmov %r6, %r0\ncall 125\nsub %r0, %r6\nexit';
    expect((await runAsm(engine, asm, { vm: { clock } })).out).toBe(r0(7));
    expect((await runAsm(engine, 'call 5\nexit', { vm: { clock: () => 42n } })).out).toBe(r0(42));
  });

  it('bpf_get_prandom_u32 returns the injected source as a u32', async () => {
    const run = await runAsm(engine, 'call 7\nexit', { vm: { random: () => -1 } });
    expect(run.out).toBe(r0(0xffffffff));
  });

  it('bpf_get_prandom_u32 is reproducible for a seed', async () => {
    const asm = 'call 7\nmov %r6, %r0\ncall 7\nlsh %r0, 32\nor %r0, %r6\nexit';
    const a = await runAsm(engine, asm, { vm: { seed: 99 } });
    const b = await runAsm(engine, asm, { vm: { seed: 99 } });
    expect(a.out).toBe(b.out);
    expect(a.out).not.toBe((await runAsm(engine, asm, { vm: { seed: 100 } })).out);
  });

  it('bpf_get_smp_processor_id and bpf_get_numa_node_id are 0 on a single worker', async () => {
    const asm = 'call 8\nmov %r6, %r0\ncall 42\nadd %r0, %r6\nadd %r0, 5\nexit';
    expect((await runAsm(engine, asm)).out).toBe(r0(5));
  });
});
