/**
 * bpf_tail_call through a prog_array, on both engines: the chain, the 33-call limit, empty
 * slots falling through with r0 unchanged, and tail calls from a subprogram.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import { Vm } from '../../../runtime/vm.js';
import { BPF_MAP_TYPE_PROG_ARRAY } from '../../../runtime/maps/map-type.js';
import type { Engine, LoadedProgram } from '../../../runtime/loaded-program.js';
import { outcome } from '../../helpers/engines.js';

// counts its hops in the input's first byte, then tail-calls slot input[1]
const hop = (fd: number, tag: number): string => `
    mov %r6, %r1
    ldxb %r2, [%r6]
    add %r2, 1
    stxb [%r6], %r2
    mov %r0, ${tag}
    mov %r1, %r6
    lddw %r2, map_fd ${fd}
    ldxb %r3, [%r6+1]
    call 12
    exit`;

async function setup(engine: Engine): Promise<{ vm: Vm; progs: LoadedProgram[] }> {
  const vm = Vm.create();
  const pa = vm.createMap({
    name: 'jmp',
    type: BPF_MAP_TYPE_PROG_ARRAY,
    keySize: 4,
    valueSize: 4,
    maxEntries: 4,
  });
  const progs: LoadedProgram[] = [];
  for (let k = 0; k < 3; k++)
    progs.push(await vm.load(assembleProgram(hop(pa.id, 10 + k)), { engine, verify: false }));
  pa.setProg(0, progs[0] as LoadedProgram);
  pa.setProg(2, progs[2] as LoadedProgram);
  return { vm, progs };
}

describe('tail calls', () => {
  for (const engine of ['jit', 'interp'] as const) {
    it(`stop after 33 tail calls, and fall through with r0 unchanged on an empty slot (${engine})`, async () => {
      const { progs } = await setup(engine);
      const p1 = progs[1] as LoadedProgram;
      // slot 0 is program 0 itself: 1 + 33 hops, then the 34th call falls through
      const self = new Uint8Array([0, 0]);
      expect(outcome(() => p1.run(self))).toBe('r0=a');
      // the entry program counts once, then each of the 33 tail-called runs of program 0
      expect(p1.input[0]).toBe(34);
      // slot 1 is empty: program 1 returns its own tag
      expect(outcome(() => p1.run(new Uint8Array([0, 1])))).toBe('r0=b');
      expect(p1.input[0]).toBe(1);
      // slot 2, then slot 2 again... 33 hops into program 2
      expect(outcome(() => p1.run(new Uint8Array([0, 2])))).toBe('r0=c');
      // out of range index
      expect(outcome(() => p1.run(new Uint8Array([0, 9])))).toBe('r0=b');
    });

    it(`reset the tail call count every run (${engine})`, async () => {
      const { progs } = await setup(engine);
      const p0 = progs[0] as LoadedProgram;
      for (let k = 0; k < 3; k++) {
        p0.run(new Uint8Array([0, 0]));
        expect(p0.input[0]).toBe(34);
      }
    });
  }
});
