/**
 * bpf_trace_printk and bpf_snprintf: the kernel's format subset, its limits and error values,
 * on both engines. The format (and any strings) sit in the input buffer, whose address a `mem`
 * program gets in r1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { workerLayout } from '../../../../src/abi.js';
import { ENGINES, closeVms, concat, cstr, r0, runAsm, u64s, type TestEngine } from './harness.js';

afterEach(closeVms);

const PKT = workerLayout(0).packet;
const EINVAL = -22;

/**
 * trace_printk with the format at the input's start (r2 = the input length) and r3..r5 =
 * `args` (numbers, or `+N` for the input's address plus N).
 */
function printkAsm(args: readonly (number | bigint | string)[]): string {
  const set = args.map((a, k) => {
    const r = `%r${k + 3}`;
    if (typeof a === 'string') return `mov ${r}, %r1\nadd ${r}, ${a.slice(1)}`;
    return `lddw ${r}, ${BigInt.asUintN(64, BigInt(a))}`;
  });
  return [...set, 'call 6', 'exit'].join('\n');
}

async function printk(
  engine: TestEngine,
  fmt: string | Uint8Array,
  args: readonly (number | bigint | string)[] = [],
  extra: Uint8Array = new Uint8Array(0),
): Promise<{ out: string; log: readonly string[] }> {
  const input = concat(typeof fmt === 'string' ? cstr(fmt) : fmt, extra);
  const run = await runAsm(engine, printkAsm(args), { input });
  return { out: run.out, log: run.vm.traceLog };
}

describe.each(ENGINES)('bpf_trace_printk on the %s engine', (engine) => {
  it.each([
    ['%d %i %u', [-5, -5, -5], '-5 -5 4294967291'],
    ['%ld %lld', [-5, 0x1_0000_0000n], '-5 4294967296'],
    ['%lu %llu', [-1, 7], '18446744073709551615 7'],
    ['%x %lx %llx', [0x1_2345_abcdn, 0x1_2345_abcdn, 255], '2345abcd 12345abcd ff'],
    ['%X|%lX', [0xabcdef, 0xabcdefn], 'ABCDEF|ABCDEF'],
    ['[%5d|%-5d|%05d]', [42, 42, -42], '[   42|42   |-0042]'],
    ['[%+d|% d|%+u]', [7, 7, 7], '[+7| 7|7]'],
    ['%c%c%3c', [0x41, 0x142, 0x43], 'AB  C'],
    ['100%% %d', [1], '100% 1'],
    ['%p|%px|%pK', [0xabcn, 0n, -1n], '0000000000000abc|0000000000000000|ffffffffffffffff'],
    ['[%20p]', [0xabcn], '[                 abc]'],
    ['%pS', [0x1234n], '0x1234'],
    ['tab\there\n', [], 'tab\there\n'],
  ])('formats %j', async (fmt, args, text) => {
    const { out, log } = await printk(engine, fmt, args);
    expect(out).toBe(r0(text.length));
    expect(log).toEqual([text]);
  });

  it('reads %s, %pks and %pus strings from memory, and prints a bad one as empty', async () => {
    const fmt = cstr('<%s|%-6pks|%pus>');
    const extra = cstr('abc');
    const { out, log } = await printk(engine, fmt, [`+${fmt.length}`, `+${fmt.length}`, 8], extra);
    expect(log).toEqual(['<abc|abc   |>']);
    expect(out).toBe(r0(13));
  });

  it('formats %pI4, %pi4, %pI6 and %pi6 from memory', async () => {
    const fmt = cstr('%pI4 %pi4 %pI6');
    const ip6 = Uint8Array.from({ length: 16 }, (_, k) => k);
    const extra = concat(Uint8Array.of(10, 0, 2, 15), ip6);
    const at = fmt.length;
    const { log } = await printk(engine, fmt, [`+${at}`, `+${at}`, `+${at + 4}`], extra);
    expect(log).toEqual(['10.0.2.15 010.000.002.015 0001:0203:0405:0607:0809:0a0b:0c0d:0e0f']);
    const { log: l6 } = await printk(engine, cstr('%pi6'), ['+5'], ip6);
    expect(l6).toEqual(['000102030405060708090a0b0c0d0e0f']);
  });

  it.each([
    ['%o', [1]],
    ['%hd', [1]],
    ['%.2d', [1]],
    ['%#x', [1]],
    ['%lllx', [1]],
    ['%d %d %d %d', [1, 2, 3]],
    ['%sx', [0]],
    ['%pZ', [0]],
    ['%', []],
    ['bell\x07', []],
  ])('refuses %j with -EINVAL and logs nothing', async (fmt, args) => {
    const { out, log } = await printk(engine, fmt, args);
    expect(out).toBe(r0(EINVAL));
    expect(log).toEqual([]);
  });

  it('needs a NUL within fmt_size', async () => {
    const run = await runAsm(engine, 'mov %r2, 3\ncall 6\nexit', { input: cstr('abcdef') });
    expect(run.out).toBe(r0(EINVAL));
  });

  it('returns -EFAULT for a format outside memory', async () => {
    expect((await runAsm(engine, 'mov %r1, 16\nmov %r2, 4\ncall 6\nexit')).out).toBe(r0(-14));
  });

  it('cuts the logged text to 1023 bytes but returns its whole length', async () => {
    const { out, log } = await printk(engine, `${'x'.repeat(1100)}%d`, [12]);
    expect(out).toBe(r0(1102));
    expect(log[0]).toBe('x'.repeat(1023));
  });

  it('cuts strings at the 512-byte argument buffer', async () => {
    const fmt = cstr('%s');
    const { log } = await printk(engine, fmt, [`+${fmt.length}`], cstr('y'.repeat(600)));
    expect(log[0]).toBe('y'.repeat(511));
  });

  it('sends each text to onTrace as well', async () => {
    const seen: string[] = [];
    const run = await runAsm(engine, printkAsm([3]), {
      input: cstr('n=%d\n'),
      vm: { onTrace: (t) => seen.push(t) },
    });
    expect(run.out).toBe(r0(4));
    expect(seen).toEqual(['n=3\n']);
    expect(run.vm.traceLog).toEqual(['n=3\n']);
  });
});

/**
 * snprintf(str = input + 0, str_size, fmt = input + 64, data = input + 128, data_len), with
 * `strArg`/`dataArg` replacing the pointers when given.
 */
function snprintfAsm(size: number, dataLen: number, strArg = '', dataArg = ''): string {
  return [
    'mov %r6, %r1',
    strArg === '' ? 'mov %r1, %r6' : `mov %r1, ${strArg}`,
    `mov %r2, ${size}`,
    'mov %r3, %r6',
    'add %r3, 64',
    dataArg === '' ? 'mov %r4, %r6\nadd %r4, 128' : `mov %r4, ${dataArg}`,
    `mov %r5, ${dataLen}`,
    'call 165',
    'exit',
  ].join('\n');
}

function snprintfInput(fmt: string, args: readonly bigint[], strings = ''): Uint8Array {
  const input = new Uint8Array(256).fill(0xee);
  input.set(cstr(fmt), 64);
  input.set(u64s(...args), 128);
  input.set(cstr(strings), 192);
  return input;
}

describe.each(ENGINES)('bpf_snprintf on the %s engine', (engine) => {
  const str = (input: Uint8Array, n: number): string => new TextDecoder().decode(input.slice(0, n));

  it('formats into the buffer and returns the length with the NUL', async () => {
    const input = snprintfInput('%d-%s!', [42n, BigInt(PKT + 192)], 'abc');
    const run = await runAsm(engine, snprintfAsm(32, 16), { input });
    expect(run.out).toBe(r0(8));
    expect(str(run.prog.input, 8)).toBe('42-abc!\0');
    expect(run.prog.input[8]).toBe(0xee);
  });

  it('cuts the text to str_size - 1 bytes and still returns the whole length', async () => {
    const input = snprintfInput('%d-%s!', [42n, BigInt(PKT + 192)], 'abc');
    const run = await runAsm(engine, snprintfAsm(4, 16), { input });
    expect(run.out).toBe(r0(8));
    expect([...run.prog.input.slice(0, 5)]).toEqual([0x34, 0x32, 0x2d, 0, 0xee]);
  });

  it('writes nothing for str_size 0, even with a NULL buffer', async () => {
    const input = snprintfInput('%lu', [12345n]);
    const run = await runAsm(engine, snprintfAsm(0, 8, '0'), { input });
    expect(run.out).toBe(r0(6));
    expect(run.prog.input[0]).toBe(0xee);
  });

  it('takes up to 12 arguments', async () => {
    const fmt = '%d'.repeat(12);
    const input = new Uint8Array(256);
    input.set(cstr(fmt), 64);
    input.set(u64s(...Array.from({ length: 12 }, (_, k) => BigInt(k % 10))), 128);
    const run = await runAsm(engine, snprintfAsm(32, 96), { input });
    expect(run.out).toBe(r0(13));
    expect(str(run.prog.input, 12)).toBe('012345678901');
  });

  it.each([
    ['data_len not a multiple of 8', 12, ''],
    ['more than 12 arguments', 104, ''],
    ['data_len without data', 8, '0'],
  ])('returns -EINVAL for %s', async (_what, dataLen, dataArg) => {
    const input = snprintfInput('%d', [1n]);
    expect((await runAsm(engine, snprintfAsm(16, dataLen, '', dataArg), { input })).out).toBe(
      r0(EINVAL),
    );
  });

  it('returns -EINVAL for more conversions than arguments', async () => {
    const input = snprintfInput('%d %d', [1n]);
    expect((await runAsm(engine, snprintfAsm(16, 8), { input })).out).toBe(r0(EINVAL));
  });

  it('returns -EFAULT for a buffer outside memory', async () => {
    const input = snprintfInput('%d', [1n]);
    expect((await runAsm(engine, snprintfAsm(16, 8, '8'), { input })).out).toBe(r0(-14));
  });
});
