/**
 * Host-registered kfuncs called by name, on both engines.
 */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../../src/asm/assembler.js';
import { LinkError } from '../../../src/errors.js';
import { createProgram } from '../../../src/program.js';
import { Vm } from '../../../runtime/vm.js';
import { outcome } from '../../helpers/engines.js';

// r0 = kfunc#0(r1 = 20, r2 = 22)
const prog = createProgram(assemble('mov %r1, 20\nmov %r2, 22\ncall kfunc 0\nexit'));
const names = (name: string, weak = false) => new Map([[2, { name, weak }]]);

describe('kfuncs', () => {
  it('are called by name with r1..r5 and return r0, on both engines', async () => {
    const vm = Vm.create();
    vm.registerKfunc({ name: 'bpf_add', fn: ([a, b]) => a + b });
    const jit = await vm.load(prog, { verify: false, kfuncs: names('bpf_add') });
    const interp = await jit.withEngine('interp');
    expect(outcome(() => jit.run())).toBe('r0=2a');
    expect(outcome(() => interp.run())).toBe('r0=2a');
  });

  it('refuse to link a call to a kfunc the Vm does not have', async () => {
    const vm = Vm.create();
    await expect(vm.load(prog, { verify: false, kfuncs: names('bpf_nope') })).rejects.toThrow(
      LinkError,
    );
    await expect(vm.load(prog, { verify: false })).rejects.toThrow(/names no kfunc/);
  });

  it('link a weak kfunc the Vm lacks, and fail with call only if the call runs', async () => {
    const vm = Vm.create();
    const jit = await vm.load(prog, { verify: false, kfuncs: names('bpf_nope', true) });
    expect(outcome(() => jit.run())).toBe('error call at insn 2');
    const interp = await jit.withEngine('interp');
    expect(outcome(() => interp.run())).toBe('error call at insn 2');
  });
});
