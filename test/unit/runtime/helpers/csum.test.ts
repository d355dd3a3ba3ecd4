/**
 * bpf_csum_diff as net/core/filter.c computes it (Linux 6.13+: folded to 16 bits), on both
 * engines. Expected values come from a line-by-line transcription of the kernel's generic
 * lib/checksum.c do_csum/csum_partial, csum_sub and csum_from32to16 (independent of the
 * implementation under test).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ENGINES, closeVms, r0, runAsm, type TestEngine } from './harness.js';

afterEach(closeVms);

/** csum_diff(from = input + 0, |from|, to = input + 64 + toOff, |to|, seed). */
async function csumDiff(
  engine: TestEngine,
  from: readonly number[],
  to: readonly number[],
  seed: number | bigint,
  toOff = 0,
): Promise<string> {
  const input = new Uint8Array(128).fill(0xee);
  input.set(from);
  input.set(to, 64 + toOff);
  const asm = [
    to.length === 0 ? 'mov %r3, 0' : `mov %r3, %r1\nadd %r3, ${64 + toOff}`,
    from.length === 0 ? 'mov %r1, 0' : '',
    `mov %r2, ${from.length}`,
    `mov %r4, ${to.length}`,
    `lddw %r5, ${seed}`,
    'call 28',
    'exit',
  ].join('\n');
  return (await runAsm(engine, asm, { input })).out;
}

const IP_HEADER = [
  0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01,
  0xc0, 0xa8, 0x00, 0xc7,
];

describe.each(ENGINES)('bpf_csum_diff on the %s engine', (engine) => {
  it('sums pushed data (to only) onto the seed', async () => {
    expect(await csumDiff(engine, [], IP_HEADER, 0)).toBe(r0(0x7b59));
  });

  it('gives 0xffff, one-complement zero, for equal buffers', async () => {
    expect(await csumDiff(engine, IP_HEADER.slice(0, 8), IP_HEADER.slice(0, 8), 0)).toBe(
      r0(0xffff),
    );
  });

  it('diffs from and to, with and without a seed', async () => {
    expect(await csumDiff(engine, [1, 2, 3, 4], [5, 6, 7, 8], 0)).toBe(r0(0x808));
    expect(await csumDiff(engine, [1, 2, 3, 4], [5, 6, 7, 8], 0x12345678)).toBe(r0(0x70b4));
  });

  it('subtracts pulled data (from only) from the seed', async () => {
    expect(await csumDiff(engine, [1, 2, 3, 4], [], 0xabcd)).toBe(r0(0xa5c9));
  });

  it('takes sizes that are not multiples of 4, at odd addresses too', async () => {
    expect(await csumDiff(engine, [], [0xff, 0xfe, 0xfd], 0)).toBe(r0(0xfffc));
    expect(await csumDiff(engine, [], [0xff, 0xfe, 0xfd], 0, 1)).toBe(r0(0xfffc));
  });

  it('adds the seed with end-around carry', async () => {
    expect(await csumDiff(engine, [], [0xff, 0xff], 0xffffffff)).toBe(r0(0xffff));
  });

  it('returns the 32-bit seed when both sizes are 0', async () => {
    expect(await csumDiff(engine, [], [], 0x1_2345_6789n)).toBe(r0(0x23456789));
  });

  it.each([
    [
      [183, 14, 238, 127, 26, 80, 57, 190, 240, 126, 194, 52, 127, 6, 110, 208, 143],
      [199, 81, 36, 71, 227, 64, 67, 0, 2, 107, 110, 84],
      3746962816,
      0x6e30,
    ],
    [
      [160, 101, 104, 93, 100, 196, 152, 11, 184, 212, 84, 74, 135, 33, 169, 154, 1, 173, 33],
      [181, 156, 246, 161, 94, 246, 241, 90, 29, 131, 11, 183, 206, 9, 214, 187, 192, 4, 231, 23],
      3039798588,
      0xeb77,
    ],
    [
      [60, 125, 236, 176, 181, 128, 236, 55, 188, 151, 18, 221, 46],
      [174, 185, 75, 174, 141, 47, 159, 162, 156, 90, 40, 76, 158, 247],
      208529981,
      0x736d,
    ],
  ])('matches the kernel on random buffers (%#)', async (from, to, seed, expected) => {
    expect(await csumDiff(engine, from, to, seed)).toBe(r0(expected));
  });

  it('returns -EFAULT for a bad buffer of non-zero size', async () => {
    const run = await runAsm(
      engine,
      'mov %r1, 8\nmov %r2, 4\nmov %r3, 0\nmov %r4, 0\nmov %r5, 0\ncall 28\nexit',
    );
    expect(run.out).toBe(r0(-14));
  });
});
