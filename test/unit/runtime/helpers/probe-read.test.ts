/**
 * bpf_probe_read{,_user,_kernel} and their _str forms: bounded copies inside Vm memory, the
 * kernel's return values and -EFAULT with a zeroed destination, on both engines. dst is the
 * input's start, src the input + 32 unless a test says otherwise.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { makeTestVm } from '../../../helpers/engines.js';
import { ENGINES, closeVms, cstr, r0, runAsm } from './harness.js';

afterEach(closeVms);

const EFAULT = -14;

/** helper `id`(dst = input [+ dstOff], size, src = input + 32 or `src`). */
function probeAsm(id: number, size: number, src = '', dst = ''): string {
  return [
    'mov %r6, %r1',
    dst === '' ? 'mov %r1, %r6' : `mov %r1, ${dst}`,
    `mov %r2, ${size}`,
    src === '' ? 'mov %r3, %r6\nadd %r3, 32' : `lddw %r3, ${src}`,
    `call ${id}`,
    'exit',
  ].join('\n');
}

/** 64 bytes: 0xee up to 32, then `src`. */
function input(src: Uint8Array): Uint8Array {
  const b = new Uint8Array(64).fill(0xee);
  b.set(src, 32);
  return b;
}

describe.each(ENGINES)('on the %s engine', (engine) => {
  describe.each([4, 112, 113])('probe_read helper #%i', (id) => {
    it('copies size bytes and returns 0', async () => {
      const src = Uint8Array.from({ length: 8 }, (_, k) => k + 1);
      const run = await runAsm(engine, probeAsm(id, 8), { input: input(src) });
      expect(run.out).toBe(r0(0));
      expect([...run.prog.input.slice(0, 9)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0xee]);
    });

    it('zeroes dst and returns -EFAULT for a source in the null guard or past memory', async () => {
      for (const src of ['0x100', '0xfffffff0', '0x100000000']) {
        const run = await runAsm(engine, probeAsm(id, 8, src), { input: input(new Uint8Array()) });
        expect(run.out).toBe(r0(EFAULT));
        expect([...run.prog.input.slice(0, 9)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0xee]);
      }
    });

    it('returns -EFAULT and writes nothing for a bad destination', async () => {
      const run = await runAsm(engine, probeAsm(id, 8, '', '8'), { input: input(cstr('x')) });
      expect(run.out).toBe(r0(EFAULT));
    });

    it('copies nothing for size 0', async () => {
      const run = await runAsm(engine, probeAsm(id, 0, '0x100'), { input: input(cstr('x')) });
      expect(run.out).toBe(r0(0));
      expect(run.prog.input[0]).toBe(0xee);
    });
  });

  describe.each([45, 114, 115])('probe_read_str helper #%i', (id) => {
    it('copies the string with its NUL and returns its length including the NUL', async () => {
      const run = await runAsm(engine, probeAsm(id, 16), { input: input(cstr('hello')) });
      expect(run.out).toBe(r0(6));
      expect([...run.prog.input.slice(0, 7)]).toEqual([...cstr('hello'), 0xee]);
    });

    it('returns 1 for an empty string', async () => {
      const run = await runAsm(engine, probeAsm(id, 16), { input: input(cstr('')) });
      expect(run.out).toBe(r0(1));
    });

    it('cuts a long string to size - 1 bytes plus a NUL and returns size', async () => {
      const run = await runAsm(engine, probeAsm(id, 4), { input: input(cstr('hello')) });
      expect(run.out).toBe(r0(4));
      expect([...run.prog.input.slice(0, 5)]).toEqual([0x68, 0x65, 0x6c, 0, 0xee]);
    });

    it('zeroes dst and returns -EFAULT for a bad source', async () => {
      const run = await runAsm(engine, probeAsm(id, 8, '0x100'), { input: input(cstr('x')) });
      expect(run.out).toBe(r0(EFAULT));
      expect([...run.prog.input.slice(0, 9)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0xee]);
    });

    it('returns 0 for size 0 and -EFAULT for a bad destination', async () => {
      expect((await runAsm(engine, probeAsm(id, 0), { input: input(cstr('x')) })).out).toBe(r0(0));
      const bad = await runAsm(engine, probeAsm(id, 8, '', '0'), { input: input(cstr('x')) });
      expect(bad.out).toBe(r0(EFAULT));
    });
  });

  it('probe_read_str faults on a string that runs off the end of memory', async () => {
    const probe = makeTestVm();
    const end = probe.memory.buffer.byteLength;
    probe.close();
    const run = await runAsm(engine, probeAsm(45, 16, String(end - 4)), {
      input: input(new Uint8Array()),
      before: (vm) => vm.u8().fill(0x41, end - 4, end),
    });
    expect(run.out).toBe(r0(EFAULT));
    expect([...run.prog.input.slice(0, 16)]).toEqual(new Array<number>(16).fill(0));
    const ok = await runAsm(engine, probeAsm(45, 4, String(end - 4)), {
      input: input(new Uint8Array()),
      before: (vm) => vm.u8().fill(0x41, end - 4, end),
    });
    expect(ok.out).toBe(r0(4));
  });
});
