/**
 * vm.loadObject on real clang output: maps, global data, local calls, function pointers.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Vm } from '../../../runtime/vm.js';

const fixture = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../../fixtures/elf/xdp/${name}`, import.meta.url)));

const u32 = (n: number): Uint8Array => new Uint8Array(new Uint32Array([n]).buffer);
const le = (b: Uint8Array | undefined): bigint => {
  let v = 0n;
  for (let k = (b?.length ?? 0) - 1; k >= 0; k--) v = (v << 8n) | BigInt(b?.[k] ?? 0);
  return v;
};

describe('xdp_count.o', () => {
  for (const engine of ['jit', 'interp'] as const) {
    it(`counts packets per length bucket in its hash map and its .bss global on the ${engine}`, async () => {
      const vm = Vm.create();
      const obj = await vm.loadObject(fixture('xdp_count.o'), { engine, verify: false });
      const prog = obj.program('xdp_count');
      expect(obj.program('xdp')).toBe(prog);
      // three packets: no sampling yet (should_sample(n) first holds at n = 4)
      for (const len of [100, 100, 1000]) expect(prog.run(new Uint8Array(len))).toBe(2n);
      const counts = obj.map('pkt_count');
      expect(le(counts.lookup(u32(100 >> 6)))).toBe(2n);
      expect(le(counts.lookup(u32(1000 >> 6)))).toBe(1n);
      expect([...counts.keys()].length).toBe(2);
      expect(obj.globals.readUint('total_packets')).toBe(3n);
      expect(obj.globals.readUint('sample_every')).toBe(4n);
      expect(obj.globals.readUint('max_frame')).toBe(1514n);
    });
  }

  it('takes initial global images before load, as a skeleton does', async () => {
    const vm = Vm.create();
    const rodata = new Uint8Array(4);
    new DataView(rodata.buffer).setUint32(0, 50, true); // max_frame = 50: every packet > 50 goes to bucket 255
    const obj = await vm.loadObject(fixture('xdp_count.o'), {
      verify: false,
      globals: { '.rodata': rodata },
    });
    obj.program('xdp_count').run(new Uint8Array(100));
    expect(le(obj.map('pkt_count').lookup(u32(255)))).toBe(1n);
    obj.globals.write('total_packets', new Uint8Array(8).fill(0));
    expect(obj.globals.readUint('total_packets')).toBe(0n);
  });
});

describe('xdp_count.o with bpf_loop', () => {
  for (const engine of ['jit', 'interp'] as const) {
    it(`runs the bpf_loop callback on every 4th packet (sampling) on the ${engine}`, async () => {
      const vm = Vm.create();
      const obj = await vm.loadObject(fixture('xdp_count.o'), { engine, verify: false });
      const prog = obj.program('xdp_count');
      // packets 4 and 8 are sampled: bpf_loop sums their first bytes through the callback
      for (let k = 0; k < 8; k++) expect(prog.run(new Uint8Array(64).fill(1))).toBe(2n);
      expect(obj.globals.readUint('total_packets')).toBe(8n);
      expect(le(obj.map('pkt_count').lookup(u32(1)))).toBe(8n);
    });
  }
});
