/**
 * The current task: bpf_get_current_pid_tgid, bpf_get_current_uid_gid and
 * bpf_get_current_comm report what the host supplies (VmOptions.task), on both engines.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskInfo } from '../../../../runtime/helpers/task.js';
import { ENGINES, closeVms, r0, runAsm } from './harness.js';

afterEach(closeVms);

const TASK: TaskInfo = { pid: 4321, tgid: 1234, uid: 1000, gid: 50, comm: 'bpfwasm-test' };

/** get_current_comm into the input buffer with `size`; r0 is the helper's result. */
const commAsm = (size: number, buf = '%r1'): string =>
  `mov %r1, ${buf}\nmov %r2, ${size}\ncall 16\nexit`;

describe.each(ENGINES)('on the %s engine', (engine) => {
  it('bpf_get_current_pid_tgid is tgid << 32 | pid', async () => {
    const run = await runAsm(engine, 'call 14\nexit', { vm: { task: TASK } });
    expect(run.out).toBe(r0((1234n << 32n) | 4321n));
  });

  it('bpf_get_current_uid_gid is gid << 32 | uid', async () => {
    const run = await runAsm(engine, 'call 15\nexit', { vm: { task: { uid: 7, gid: 9 } } });
    expect(run.out).toBe(r0((9n << 32n) | 7n));
  });

  it('defaults to this process', async () => {
    const run = await runAsm(engine, 'call 14\nexit');
    expect(run.out).toBe(r0((BigInt(process.pid) << 32n) | BigInt(process.pid)));
  });

  it('asks a task function at every call', async () => {
    let pid = 10;
    const task = (): TaskInfo => ({ ...TASK, pid: pid++ });
    const asm = 'call 14\nmov %r6, %r0\ncall 14\nsub %r0, %r6\nexit';
    expect((await runAsm(engine, asm, { vm: { task } })).out).toBe(r0(1));
  });

  it('bpf_get_current_comm copies the name, NUL terminated and zero padded', async () => {
    const run = await runAsm(engine, commAsm(20), {
      vm: { task: TASK },
      input: new Uint8Array(24).fill(0xee),
    });
    expect(run.out).toBe(r0(0));
    const expected = new Uint8Array(24).fill(0xee);
    expected.fill(0, 0, 20);
    expected.set(new TextEncoder().encode('bpfwasm-test'));
    expect(run.prog.input.slice(0, 24)).toEqual(expected);
  });

  it('bpf_get_current_comm cuts the name to 15 bytes and to size - 1', async () => {
    const long = { ...TASK, comm: 'a-rather-long-task-name' };
    const run = await runAsm(engine, commAsm(32), {
      vm: { task: long },
      input: new Uint8Array(32).fill(0xee),
    });
    expect(new TextDecoder().decode(run.prog.input.slice(0, 16))).toBe('a-rather-long-t\0');
    expect(run.prog.input.slice(16, 32).every((b) => b === 0)).toBe(true);
    const short = await runAsm(engine, commAsm(4), {
      vm: { task: long },
      input: new Uint8Array(8).fill(0xee),
    });
    expect([...short.prog.input.slice(0, 5)]).toEqual([0x61, 0x2d, 0x72, 0, 0xee]);
  });

  it('bpf_get_current_comm returns -EFAULT for a bad buffer and 0 for size 0', async () => {
    expect((await runAsm(engine, commAsm(16, '0'))).out).toBe(r0(-14));
    expect((await runAsm(engine, commAsm(0, '0'))).out).toBe(r0(0));
  });
});
