/**
 * bpf_strtol, bpf_strtoul and bpf_strncmp with the kernel's parsing rules and return values,
 * on both engines. The string is at the input's start, `*res` at input + 64.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, closeVms, cstr, r0, runAsm, type TestEngine } from './harness.js';

afterEach(closeVms);

const EINVAL = -22;
const ERANGE = -34;
const EFAULT = -14;

/** strtol (105) or strtoul (106) of the first `len` bytes of `text`; r0 and *res. */
async function strtox(
  engine: TestEngine,
  id: 105 | 106,
  text: string,
  flags: number,
  len = text.length,
): Promise<[string, bigint]> {
  const asm = [
    'mov %r6, %r1',
    `mov %r2, ${len}`,
    `lddw %r3, ${flags}`,
    'mov %r4, %r6',
    'add %r4, 64',
    `call ${id}`,
    'exit',
  ].join('\n');
  const input = new Uint8Array(72).fill(0xff);
  input.set(new TextEncoder().encode(text));
  const run = await runAsm(engine, asm, { input });
  return [
    run.out,
    new DataView(run.prog.input.buffer, run.prog.input.byteOffset).getBigUint64(64, true),
  ];
}

const s64 = (v: bigint): bigint => BigInt.asUintN(64, v);

describe.each(ENGINES)('bpf_strtol on the %s engine', (engine) => {
  it.each([
    ['123', 10, 3, 123n],
    ['  -42xyz', 0, 5, -42n],
    ['\t+7', 10, 0, 0n],
    ['0x1f', 0, 4, 31n],
    ['0x1f', 16, 4, 31n],
    ['1F', 16, 2, 31n],
    ['017', 0, 3, 15n],
    ['0x', 0, 1, 0n],
    ['0xg', 0, 1, 0n],
    ['19', 8, 1, 1n],
    ['9223372036854775807', 10, 19, 9223372036854775807n],
    ['-9223372036854775808', 10, 20, -9223372036854775808n],
  ])('parses %j in base %i', async (text, base, consumed, value) => {
    const [out, res] = await strtox(engine, 105, text, base);
    if (consumed === 0) {
      expect(out).toBe(r0(EINVAL));
      return;
    }
    expect(out).toBe(r0(consumed));
    expect(res).toBe(s64(value));
  });

  it.each([
    ['zz', 10, EINVAL],
    ['   ', 10, EINVAL],
    ['-', 10, EINVAL],
    ['12', 2, EINVAL],
    ['12', 0x2a, EINVAL],
    ['0x', 16, EINVAL],
    ['9223372036854775808', 10, ERANGE],
    ['-9223372036854775809', 10, ERANGE],
    ['18446744073709551616', 10, ERANGE],
  ])('refuses %j in base %i', async (text, base, errno) => {
    const [out, res] = await strtox(engine, 105, text, base);
    expect(out).toBe(r0(errno));
    expect(res).toBe(0n);
  });

  it('parses only buf_len bytes', async () => {
    const [out, res] = await strtox(engine, 105, '12345', 10, 3);
    expect([out, res]).toEqual([r0(3), 123n]);
  });

  it('parses at most 63 bytes after the sign', async () => {
    const [out, res] = await strtox(engine, 105, `${'0'.repeat(62)}12`, 10);
    expect([out, res]).toEqual([r0(63), 1n]);
  });

  it('returns -EINVAL for a NULL or empty buffer and -EFAULT for a bad res', async () => {
    const run = (asm: string): Promise<string> =>
      runAsm(engine, asm, { input: cstr('1') }).then((r) => r.out);
    expect(
      await run('mov %r1, 0\nmov %r2, 1\nmov %r3, 0\nmov %r4, %r10\nadd %r4, -8\ncall 105\nexit'),
    ).toBe(r0(EINVAL));
    expect(await run('mov %r2, 0\nmov %r3, 0\nmov %r4, %r10\nadd %r4, -8\ncall 105\nexit')).toBe(
      r0(EINVAL),
    );
    expect(await run('mov %r2, 1\nmov %r3, 0\nmov %r4, 8\ncall 105\nexit')).toBe(r0(EFAULT));
  });
});

describe.each(ENGINES)('bpf_strtoul on the %s engine', (engine) => {
  it('parses the whole u64 range', async () => {
    const [out, res] = await strtox(engine, 106, '18446744073709551615', 10);
    expect([out, res]).toEqual([r0(20), 0xffff_ffff_ffff_ffffn]);
  });

  it('refuses a minus sign with -EINVAL and overflow with -ERANGE', async () => {
    expect((await strtox(engine, 106, '-1', 10))[0]).toBe(r0(EINVAL));
    expect((await strtox(engine, 106, ' 18446744073709551616', 0))[0]).toBe(r0(ERANGE));
  });

  it('detects base 16 and 8 like strtol', async () => {
    expect(await strtox(engine, 106, '0XfF', 0)).toEqual([r0(4), 255n]);
    expect(await strtox(engine, 106, '0777', 0)).toEqual([r0(4), 511n]);
  });
});

describe.each(ENGINES)('bpf_strncmp on the %s engine', (engine) => {
  /** strncmp(input, n, input + 32). */
  async function strncmp(s1: Uint8Array, n: number, s2: Uint8Array): Promise<string> {
    const input = new Uint8Array(64).fill(0x7a);
    input.set(s1);
    input.set(s2, 32);
    const asm = `mov %r2, ${n}\nmov %r3, %r1\nadd %r3, 32\ncall 182\nexit`;
    return (await runAsm(engine, asm, { input })).out;
  }
  const b = (s: string): Uint8Array => new TextEncoder().encode(s);

  it.each([
    ['abc', 3, 'abd', -1],
    ['abd', 3, 'abc', 1],
    ['abc', 2, 'abd', 0],
    ['abc', 3, 'abc', 0],
    ['abc', 3, 'ab', 1],
    ['ab', 3, 'abc', -1],
  ])('compares %j (%i bytes) with %j', async (s1, n, s2, expected) => {
    expect(await strncmp(cstr(s1), n, cstr(s2))).toBe(r0(expected));
  });

  it('stops at a NUL and compares bytes as unsigned', async () => {
    expect(await strncmp(b('ab\0x'), 4, b('ab\0y'))).toBe(r0(0));
    expect(await strncmp(Uint8Array.of(0xff, 0), 2, cstr('a'))).toBe(r0(1));
  });

  it('returns -EFAULT for a bad string', async () => {
    const run = await runAsm(engine, 'mov %r2, 3\nmov %r3, 8\ncall 182\nexit', {
      input: cstr('abc'),
    });
    expect(run.out).toBe(r0(EFAULT));
  });
});
