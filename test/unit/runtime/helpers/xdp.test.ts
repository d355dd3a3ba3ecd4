/**
 * bpf_xdp_adjust_head, bpf_xdp_adjust_meta and bpf_xdp_adjust_tail on the running program's
 * xdp_md, with the kernel's bounds (headroom minus the reserved xdp_frame, ETH_HLEN, the
 * metadata rules) on both engines, and through BPF_PROG_TEST_RUN.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { XDP_PACKET_HEADROOM, workerLayout } from '../../../../src/abi.js';
import { ENGINES, closeVms, r0, runAsm, type TestEngine } from './harness.js';

afterEach(closeVms);

const EINVAL = -22;
const EACCES = -13;
const PKT = workerLayout(0).packet;

/**
 * Calls each `[helper, delta]` in turn (stopping at the first error); r0 = the last result
 * << 32 | (data_end - data) << 16 | (data - data_meta).
 */
function adjustAsm(calls: readonly (readonly [number, number])[], tail = ''): string {
  const body = calls
    .map(
      ([id, delta]) =>
        `mov %r1, %r6\nlddw %r2, ${delta}\ncall ${id}\nmov %r7, %r0\njne %r0, 0, done`,
    )
    .join('\n');
  return `
    mov %r6, %r1
    mov %r7, 0
    ${body}
    ${tail}
  done:
    ldxw %r2, [%r6+0]
    ldxw %r3, [%r6+4]
    ldxw %r4, [%r6+8]
    mov %r0, %r3
    sub %r0, %r2
    lsh %r0, 16
    sub %r2, %r4
    or %r0, %r2
    lsh %r7, 32
    or %r0, %r7
    exit`;
}

const geometry = (ret: number, len: number, meta = 0): string =>
  r0((BigInt.asUintN(64, BigInt(ret)) << 32n) | (BigInt(len) << 16n) | BigInt(meta));

const PACKET = Uint8Array.from({ length: 64 }, (_, k) => k);

async function adjust(
  engine: TestEngine,
  calls: readonly (readonly [number, number])[],
  tail = '',
): Promise<{ out: string; bytes: (at: number, n: number) => number[] }> {
  const run = await runAsm(engine, adjustAsm(calls, tail), {
    type: 'xdp',
    input: PACKET,
    before: (vm) => vm.u8().fill(0xaa, PKT + 64, PKT + 256),
  });
  return { out: run.out, bytes: (at, n) => [...run.vm.u8().slice(at, at + n)] };
}

describe.each(ENGINES)('on the %s engine', (engine) => {
  it('adjust_head grows the packet into the headroom and shrinks it', async () => {
    expect((await adjust(engine, [[44, -14]])).out).toBe(geometry(0, 78));
    expect((await adjust(engine, [[44, 20]])).out).toBe(geometry(0, 44));
    expect(
      (
        await adjust(engine, [
          [44, -14],
          [44, 14],
        ])
      ).out,
    ).toBe(geometry(0, 64));
  });

  it('adjust_head keeps ETH_HLEN bytes and the reserved xdp_frame', async () => {
    expect((await adjust(engine, [[44, 50]])).out).toBe(geometry(0, 14));
    expect((await adjust(engine, [[44, 51]])).out).toBe(geometry(EINVAL, 64));
    const room = XDP_PACKET_HEADROOM - 40;
    expect((await adjust(engine, [[44, -room]])).out).toBe(geometry(0, 64 + room));
    expect((await adjust(engine, [[44, -room - 1]])).out).toBe(geometry(EINVAL, 64));
  });

  it('lets the program write the bytes it gained', async () => {
    const tail = `
      ldxw %r2, [%r6+0]
      stb [%r2+0], 0x77
      ldxb %r7, [%r2+0]
      ldxb %r3, [%r2+14]
      lsh %r3, 8
      or %r7, %r3`;
    const { out } = await adjust(engine, [[44, -14]], tail);
    // r7 = 0x77 | packet[0] << 8, reported in the top half
    expect(out).toBe(geometry(0x77, 78));
  });

  it('adjust_meta makes metadata before data, in multiples of 4 up to 32', async () => {
    expect((await adjust(engine, [[54, -8]])).out).toBe(geometry(0, 64, 8));
    expect((await adjust(engine, [[54, -32]])).out).toBe(geometry(0, 64, 32));
    expect((await adjust(engine, [[54, -36]])).out).toBe(geometry(EACCES, 64, 0));
    expect((await adjust(engine, [[54, -6]])).out).toBe(geometry(EACCES, 64, 0));
    expect((await adjust(engine, [[54, 4]])).out).toBe(geometry(EINVAL, 64, 0));
  });

  it('adjust_head moves the metadata with data', async () => {
    const tail = `
      ldxw %r2, [%r6+8]
      stw [%r2+0], 0x11223344
      mov %r1, %r6
      mov %r2, -14
      call 44
      mov %r7, %r0
      ldxw %r2, [%r6+8]
      ldxw %r3, [%r2+0]
      jeq %r3, 0x11223344, done
      mov %r7, 99`;
    expect((await adjust(engine, [[54, -4]], tail)).out).toBe(geometry(0, 78, 4));
    const room = XDP_PACKET_HEADROOM - 40;
    expect(
      (
        await adjust(engine, [
          [54, -8],
          [44, -room + 8],
        ])
      ).out,
    ).toBe(geometry(0, 64 + room - 8, 8));
    expect(
      (
        await adjust(engine, [
          [54, -8],
          [44, -room + 7],
        ])
      ).out,
    ).toBe(geometry(EINVAL, 64, 8));
  });

  it('adjust_tail shrinks to ETH_HLEN and grows with zeroed bytes up to the end of the frame', async () => {
    expect((await adjust(engine, [[65, -10]])).out).toBe(geometry(0, 54));
    expect((await adjust(engine, [[65, -50]])).out).toBe(geometry(0, 14));
    expect((await adjust(engine, [[65, -51]])).out).toBe(geometry(EINVAL, 64));
    const grown = await adjust(engine, [[65, 100]]);
    expect(grown.out).toBe(geometry(0, 164));
    expect(grown.bytes(PKT + 62, 4)).toEqual([62, 63, 0, 0]);
    expect(grown.bytes(PKT + 164, 1)).toEqual([0xaa]);
    // the kernel's test-run frame: one 4096-byte page from the hard start (256 bytes of
    // headroom before the data), less 320 bytes of skb_shared_info: 3520 bytes of data
    expect((await adjust(engine, [[65, 3520 - 64]])).out).toBe(geometry(0, 3520));
    expect((await adjust(engine, [[65, 3520 - 63]])).out).toBe(geometry(EINVAL, 64));
  });

  it('refuses a ctx other than the running one with -EINVAL', async () => {
    const run = await runAsm(engine, 'mov %r1, %r10\nadd %r1, -24\nmov %r2, 0\ncall 44\nexit', {
      type: 'xdp',
      input: PACKET,
    });
    expect(run.out).toBe(r0(EINVAL));
  });

  it('shows in a test run: data_out from the adjusted head and tail', async () => {
    const asm = `
      mov %r6, %r1
      mov %r2, -4
      call 44
      mov %r1, %r6
      mov %r2, -10
      call 65
      ldxw %r2, [%r6+0]
      stw [%r2+0], 0x04030201
      mov %r0, 2
      exit`;
    const { prog } = await runAsm(engine, asm, { type: 'xdp', input: PACKET });
    const res = prog.testRun({ dataIn: PACKET });
    expect(res.retval).toBe(2);
    expect([...res.dataOut]).toEqual([1, 2, 3, 4, ...PACKET.slice(0, 54)]);
  });
});
