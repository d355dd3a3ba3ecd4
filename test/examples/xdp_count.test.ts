/**
 * examples/xdp_count: packets counted per length bucket (len >> 6, or 255 above max_frame) in
 * a BTF hash map, a .bss total, .data / .rodata tunables, bpf-to-bpf calls and a bpf_loop
 * callback on every sampled packet; and the command line on the committed object.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/cli/main.js';
import { Vm } from '../../runtime/vm.js';
import { u32 } from '../helpers/maps.js';
import { XDP_PASS } from '../helpers/packets.js';
import { ENGINES, EXAMPLES_DIR, exampleObject, globalImage, le, loadExample } from './example.js';

const BPF_FUNC_loop = 181;
const probe = Vm.create();
const hasLoop = probe.helpers.has(BPF_FUNC_loop);
probe.close();
if (!hasLoop)
  console.log('skip examples/xdp_count sampling: this Vm has no bpf_loop helper (#181) yet');

const OBJECT = join(EXAMPLES_DIR, 'xdp_count', 'build', 'xdp_count.o');

/** Runs the command line in-process; returns its exit status and what it printed. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
    out += `${a.join(' ')}\n`;
  });
  vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => {
    err += `${a.join(' ')}\n`;
  });
  const code = await main(args);
  vi.restoreAllMocks();
  return { code, out, err };
}

afterEach(() => vi.restoreAllMocks());

describe('examples/xdp_count', () => {
  for (const engine of ENGINES) {
    it(`counts packets per length bucket and in its .bss total (${engine})`, async () => {
      const { vm, obj } = await loadExample(exampleObject('xdp_count'), engine);
      try {
        const prog = obj.program('xdp_count');
        // should_sample(n) first holds at n = 4: three packets stay off the bpf_loop path
        for (const len of [100, 100, 2000]) expect(prog.run(new Uint8Array(len))).toBe(2n);
        const counts = obj.map('pkt_count');
        expect(le(counts.lookup(u32(100 >> 6)))).toBe(2n);
        expect(le(counts.lookup(u32(255)))).toBe(1n); // longer than max_frame (1514)
        expect([...counts.keys()].length).toBe(2);
        expect(obj.globals.readUint('total_packets')).toBe(3n);
        expect(obj.globals.readUint('sample_every')).toBe(4n);
        expect(obj.globals.readUint('max_frame')).toBe(1514n);
      } finally {
        vm.close();
      }
    });

    it.skipIf(!hasLoop)(
      `sums the first 16 bytes of every 4th packet with bpf_loop and passes it (${engine})`,
      async () => {
        const { vm, obj } = await loadExample(exampleObject('xdp_count'), engine);
        try {
          const prog = obj.program('xdp_count');
          for (let n = 1; n <= 8; n++)
            expect(prog.run(new Uint8Array(64).fill(0xff))).toBe(BigInt(XDP_PASS));
          expect(le(obj.map('pkt_count').lookup(u32(1)))).toBe(8n);
          expect(obj.globals.readUint('total_packets')).toBe(8n);
        } finally {
          vm.close();
        }
      },
    );
  }

  it('takes max_frame from .rodata set before load, as a skeleton does', async () => {
    const bytes = exampleObject('xdp_count');
    const rodata = globalImage(bytes, '.rodata', { max_frame: 50n });
    const { vm, obj } = await loadExample(bytes, 'jit', { globals: { '.rodata': rodata } });
    try {
      obj.program('xdp_count').run(new Uint8Array(100));
      expect(le(obj.map('pkt_count').lookup(u32(255)))).toBe(1n);
    } finally {
      vm.close();
    }
  });

  it('runs from the command line with --json --dump-maps on both engines', async () => {
    const packet = join(mkdtempSync(join(tmpdir(), 'bpfwasm-xdp-count-')), 'packet.bin');
    writeFileSync(packet, new Uint8Array(200));
    for (const engine of ENGINES) {
      const r = await cli(
        'run',
        OBJECT,
        '--program',
        'xdp_count',
        '--packet',
        packet,
        '--engine',
        engine,
        '--json',
        '--dump-maps',
      );
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out) as {
        r0: string;
        engine: string;
        maps: Record<string, [string, string][]>;
      };
      expect(out.r0).toBe(String(XDP_PASS));
      expect(out.engine).toBe(engine);
      // bucket 200 >> 6 = 3 counted once; total_packets = 1
      expect(out.maps['pkt_count']).toEqual([['03000000', '0100000000000000']]);
      expect(out.maps['.bss']).toEqual([['00000000', '0100000000000000']]);
    }
  });
});
