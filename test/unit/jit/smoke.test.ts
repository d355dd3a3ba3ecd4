import { describe, expect, it } from 'vitest';
import { insn } from '../../../src/isa/insn.js';
import { createProgram } from '../../../src/program.js';
import { Vm } from '../../../runtime/vm.js';

describe('jit smoke', () => {
  it('runs a loop summing input bytes on both engines', async () => {
    // r0 = 0; r3 = r1 + r2; loop: if r1 >= r3 goto exit; r4 = *(u8*)r1; r0 += r4; r1 += 1; goto loop
    const prog = createProgram([
      insn(0xb7, 0, 0, 0, 0),
      insn(0xbf, 3, 1, 0, 0),
      insn(0x0f, 3, 2, 0, 0),
      insn(0x3d, 1, 3, 4, 0),
      insn(0x71, 4, 1, 0, 0),
      insn(0x0f, 0, 4, 0, 0),
      insn(0x07, 1, 0, 0, 1),
      insn(0x05, 0, 0, -5, 0),
      insn(0x95, 0, 0, 0, 0),
    ]);
    const vm = Vm.create();
    const input = new Uint8Array([1, 2, 3, 250]);
    for (const engine of ['jit', 'interp'] as const) {
      const p = await vm.load(prog, { engine, verify: false });
      expect(p.run(input)).toBe(256n);
    }
  });
});
