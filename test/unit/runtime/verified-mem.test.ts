/**
 * A verified `mem` program may access `memInputSize` bytes after R1 (the largest end offset the
 * verifier proved for an access through its input): `run` gives it the worker's input area,
 * `runBatch` lays every input out with that much room (zero padding), on the JIT and on the
 * interpreter alike, so the two agree on short and empty inputs too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeInsns } from '../../../src/isa/insn.js';
import { createProgram } from '../../../src/program.js';
import { makeTestVm } from '../../helpers/engines.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('verified mem programs', () => {
  it('get the same results from run and runBatch on both engines', async () => {
    const bytes = readFileSync(join(ROOT, 'bench', 'corpus', 'bpf', 'p3_sum.mem.bin'));
    const packet = new Uint8Array(readFileSync(join(ROOT, 'bench', 'corpus', 'packet.bin')));
    const inputs = [packet, packet.subarray(0, 100), new Uint8Array(0), packet.subarray(7, 60)];
    const vm = makeTestVm();
    try {
      const jit = await vm.load(createProgram(decodeInsns(bytes), { type: 'mem' }));
      // p3_sum reads at most 1500 bytes of its input.
      expect(jit.verified?.memInputSize).toBe(1500);
      const interp = await jit.withEngine('interp');
      const single = inputs.map((x) => Number(jit.run(x) & 0xffffffffn));
      expect(inputs.map((x) => Number(interp.run(x) & 0xffffffffn))).toEqual(single);
      expect([...jit.runBatch(inputs)]).toEqual(single);
      expect([...interp.runBatch(inputs)]).toEqual(single);
    } finally {
      vm.close();
    }
  });
});
