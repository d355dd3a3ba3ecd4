/**
 * JIT paths the conformance suite does not reach, each checked against the interpreter.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../../src/asm/assembler.js';
import { createProgram } from '../../../src/program.js';
import { insn } from '../../../src/isa/insn.js';
import { compileProgram } from '../../../jit/compile.js';
import { loadBoth, makeTestVm, outcome, runBoth } from '../../helpers/engines.js';

const LINKS = {
  helperBase: 0,
  funcTokenBase: 0x10000,
  ldImm64: new Map<number, bigint>(),
  kfuncSlots: new Map<number, number>(),
};
const MEMORY = { initial: 1, maximum: 65536, shared: false };

describe('control flow', () => {
  it('builds a reducible loop without the Relooper', async () => {
    const prog = assembleProgram(`
      mov %r0, 0
      mov %r3, 10
    loop:
      add %r0, %r3
      sub %r3, 1
      jne %r3, 0, loop
      exit`);
    const c = await compileProgram(prog, {
      links: LINKS,
      memory: MEMORY,
      memCheck: true,
      entry: 'mem',
      hasHelper: () => true,
    });
    expect(c.reloopered).toEqual([]);
    expect(await runBoth(prog)).toEqual({ interp: 'r0=37', jit: 'r0=37' });
  });

  it('falls back to the Relooper for a loop with two entries and still agrees with the interpreter', async () => {
    // A <-> B loop entered at A or at B depending on the input: irreducible.
    const text = `
      mov %r0, 0
      mov %r3, 0
      ldxb %r2, [%r1]
      jeq %r2, 0, b
    a:
      add %r0, 1
      add %r3, 1
      jgt %r3, 6, done
    b:
      add %r0, 100
      add %r3, 1
      jgt %r3, 6, done
      ja a
    done:
      exit`;
    const prog = assembleProgram(text);
    const c = await compileProgram(prog, {
      links: LINKS,
      memory: MEMORY,
      memCheck: true,
      entry: 'mem',
      hasHelper: () => true,
    });
    expect(c.reloopered).toEqual([0]);
    for (const first of [0, 1]) {
      const r = await runBoth(prog, new Uint8Array([first]));
      expect(r.jit).toBe(r.interp);
    }
    // entered at b: 4 × 100 + 3 × 1 = 403; entered at a: 4 × 1 + 3 × 100 = 304
    expect((await runBoth(prog, new Uint8Array([0]))).jit).toBe('r0=193');
    expect((await runBoth(prog, new Uint8Array([1]))).jit).toBe('r0=130');
  });

  it('turns gotox into a br_table over the jump table targets', async () => {
    const text = `
      ldxb %r2, [%r1]
      gotox %r2
      mov %r0, 10
      exit
      mov %r0, 20
      exit
      mov %r0, 30
      exit`;
    const targets = new Map([[1, [2, 4, 6]]]);
    const prog = assembleProgram(text, { gotoxTargets: targets });
    for (const [t, want] of [
      [2, 'r0=a'],
      [4, 'r0=14'],
      [6, 'r0=1e'],
      [3, 'error jump at insn 1'],
      [200, 'error jump at insn 1'],
    ] as const) {
      expect(await runBoth(prog, new Uint8Array([t]))).toEqual({ interp: want, jit: want });
    }
  });

  it('lets a gotox without a jump table reach any instruction of its function', async () => {
    const prog = assembleProgram(`
      ldxb %r2, [%r1]
      mov %r0, 1
      gotox %r2
      add %r0, 2
      add %r0, 4
      exit`);
    for (const t of [3, 4, 5]) {
      const r = await runBoth(prog, new Uint8Array([t]));
      expect(r.jit).toBe(r.interp);
    }
    expect((await runBoth(prog, new Uint8Array([4]))).jit).toBe('r0=5');
  });
});

describe('calls', () => {
  const recurse = (depth: number): string => `
      mov %r1, ${depth}
      call local f
      exit
    f:
      jle %r1, 1, out
      sub %r1, 1
      call local f
      add %r0, 1
      exit
    out:
      mov %r0, 1
      exit`;

  it('runs 8 nested frames and fails the 9th with call-depth at the call', async () => {
    expect(await runBoth(recurse(7))).toEqual({ interp: 'r0=7', jit: 'r0=7' });
    const r = await runBoth(recurse(8));
    expect(r.jit).toBe(r.interp);
    expect(r.jit).toBe('error call-depth at insn 5');
  });

  it('gives each local call a fresh 512-byte frame and keeps r6-r9', async () => {
    const r = await runBoth(`
      mov %r6, 7
      stdw [%r10-8], 100
      call local f
      ldxdw %r1, [%r10-8]
      add %r0, %r1
      add %r0, %r6
      exit
    f:
      stdw [%r10-8], 5
      mov %r6, 1000
      ldxdw %r0, [%r10-8]
      exit`);
    expect(r).toEqual({ interp: 'r0=70', jit: 'r0=70' });
  });

  it('fails a call to a helper that does not exist with kind call on both engines', async () => {
    const r = await runBoth('mov %r0, 1\ncall 199\nexit');
    expect(r).toEqual({ interp: 'error call at insn 1', jit: 'error call at insn 1' });
  });

  it('calls helpers through callx by id and local functions through callx by token', async () => {
    const r = await runBoth(
      `
      mov %r2, 8
      callx %r2
      mov %r6, %r0
      lddw %r3, func f
      callx %r3
      add %r0, %r6
      exit
    f:
      mov %r0, 40
      exit`,
    );
    expect(r).toEqual({ interp: 'r0=28', jit: 'r0=28' });
  });

  it('rejects callx to a value that is neither a helper nor a token', async () => {
    for (const v of ['0x300', '0x7ffffff0', '0x123456789']) {
      const r = await runBoth(`lddw %r2, ${v}\ncallx %r2\nexit`);
      expect(r.jit).toMatch(/^error call/);
      expect(r.interp).toMatch(/^error call/);
    }
  });
});

describe('memory errors', () => {
  it('reports a NULL dereference as mem with its insn index on both engines', async () => {
    expect(await runBoth('mov %r1, 0\nldxw %r0, [%r1+8]\nexit')).toEqual({
      interp: 'error mem at insn 1',
      jit: 'error mem at insn 1',
    });
  });

  it('reports an address with the upper half set as mem', async () => {
    expect(await runBoth('lddw %r1, 0x100020000\nstb [%r1], 1\nexit')).toEqual({
      interp: 'error mem at insn 2',
      jit: 'error mem at insn 2',
    });
  });

  it('reports a misaligned atomic as align', async () => {
    const r = await runBoth('mov %r0, 1\nlock add [%r10-12], %r0\nexit');
    expect(r).toEqual({ interp: 'error align at insn 1', jit: 'error align at insn 1' });
  });

  it('keeps the Vm usable after a program fails', async () => {
    const vm = makeTestVm();
    const bad = await loadBoth(vm, assembleProgram('mov %r1, 0\nldxw %r0, [%r1]\nexit'));
    const good = await loadBoth(
      vm,
      assembleProgram(
        'mov %r2, 0\ncall local f\nexit\nf:\nstdw [%r10-8], 3\nldxdw %r0, [%r10-8]\nexit',
      ),
    );
    for (let k = 0; k < 3; k++) {
      expect(outcome(() => bad.jit.run())).toBe('error mem at insn 1');
      expect(outcome(() => good.jit.run())).toBe('r0=3');
      expect(outcome(() => good.interp.run())).toBe('r0=3');
    }
    vm.close();
  });
});

describe('entry points', () => {
  it('runs XDP programs over struct xdp_md built from the packet', async () => {
    const prog = createProgram(
      assembleProgram(`
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r0, %r3
        sub %r0, %r2
        ldxb %r4, [%r2+1]
        lsh %r4, 16
        or %r0, %r4
        exit`).insns,
      { type: 'xdp' },
    );
    expect(await runBoth(prog, new Uint8Array([1, 0xab, 3, 4, 5]))).toEqual({
      interp: 'r0=ab0005',
      jit: 'r0=ab0005',
    });
  });

  it('runs a batch in one call with the same results as single runs', async () => {
    const vm = makeTestVm();
    const { jit, interp } = await loadBoth(
      vm,
      assembleProgram('mov %r0, %r2\nldxb %r3, [%r1]\nmul %r0, %r3\nexit'),
    );
    const inputs = Array.from({ length: 50 }, (_, k) => new Uint8Array(1 + (k % 7)).fill(k));
    const want = inputs.map((x) => Number(jit.run(x)));
    expect([...jit.runBatch(inputs)]).toEqual(want);
    const batch = interp.prepareBatch(inputs);
    expect([...interp.runBatch(batch)]).toEqual(want);
    interp.releaseBatch(batch);
    vm.close();
  });

  it('reads legacy ld_abs/ld_ind big-endian and returns 0 when out of the packet', async () => {
    const text = `
      mov %r6, %r1
      ldabsh 2
      mov %r7, %r0
      mov %r2, 1
      ldindw %r2, 3
      add %r0, %r7
      exit`;
    const input = new Uint8Array([0, 0, 0x12, 0x34, 0xa0, 0xb0, 0xc0, 0xd0]);
    // 0x1234 + 0xa0b0c0d0
    expect(await runBoth(text, input)).toEqual({ interp: 'r0=a0b0d304', jit: 'r0=a0b0d304' });
    expect(await runBoth(text, input.slice(0, 6))).toEqual({ interp: 'r0=0', jit: 'r0=0' });
  });
});

describe('generated modules', () => {
  it('validate in wabt for a program using every kind of instruction', async () => {
    const insns = [
      insn(0xb7, 0, 0, 0, 1),
      insn(0xc3, 10, 0, -8, 0x01),
      insn(0xdb, 10, 0, -8, 0xf1),
      insn(0xd7, 0, 0, 0, 64),
      insn(0xdc, 0, 0, 0, 16),
      insn(0x95, 0, 0, 0, 0),
    ];
    const r = await runBoth(createProgram(insns));
    expect(r.jit).toBe(r.interp);
  });
});

describe('callee registers', () => {
  it('start at zero for r0 and r6-r9 on both engines', async () => {
    const r = await runBoth(`
      mov %r0, 100
      mov %r6, 6
      mov %r9, 9
      call local f
      exit
    f:
      add %r0, %r6
      add %r0, %r9
      add %r0, 1
      exit`);
    expect(r).toEqual({ interp: 'r0=1', jit: 'r0=1' });
  });
});
