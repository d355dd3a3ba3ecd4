/**
 * A verified `mem` program may read anywhere in the worker's input area (the verifier's model
 * of r1, `PACKET_CAPACITY` bytes), so every way of running one puts its input there: `run` and
 * `runU32` through `prog.input`, and `runBatch`, which copies each input in before the call,
 * on the JIT and on the interpreter alike.
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
      expect(jit.verified).toBeDefined();
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
