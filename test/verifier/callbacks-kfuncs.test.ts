/**
 * The verifier on callbacks that run an unknown number of times (bpf_loop: the caller's state
 * after the call covers every number of runs, computed as a fixpoint) and on kfuncs checked
 * against the signature the host registers (memory arguments, acquired results that must be
 * null-checked, stay in bounds and be released). Accepted programs also run on both engines.
 */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { isBpfError } from '../../src/errors.js';
import { BPF_PSEUDO_KFUNC_CALL } from '../../src/isa/opcodes.js';
import { createProgram, type ProgType } from '../../src/program.js';
import { verifyProgram, type KfuncSig } from '../../src/verifier/verifier.js';
import { makeTestVm } from '../helpers/engines.js';

/** The verdict: 'accept' or the reason of the VerifierError. */
function verdict(asm: string, type: ProgType, kfuncs: readonly KfuncSig[] = []): string {
  const insns = assemble(asm);
  const sigs = new Map<number, KfuncSig>();
  insns.forEach((i, idx) => {
    const sig = kfuncs[i.imm];
    if (i.code === 0x85 && i.src === BPF_PSEUDO_KFUNC_CALL && sig !== undefined) sigs.set(idx, sig);
  });
  try {
    verifyProgram(createProgram(insns, { type }), { kfuncs: sigs });
    return 'accept';
  } catch (e) {
    if (isBpfError(e) && e.name === 'VerifierError')
      return (e as unknown as { reason: string }).reason;
    throw e;
  }
}

/** Counts in the caller's stack slot fp-8 through the callback's ctx (r2), `n` times. */
const COUNT = (n: number, body: string): string => `stdw [%r10-8], 0
  mov %r1, ${n}
  lddw %r2, func cb
  mov %r3, %r10
  add %r3, -8
  mov %r4, 0
  call 181
  ldxdw %r0, [%r10-8]
  exit
  cb:
  ${body}
  mov %r0, 0
  exit`;

describe('bpf_loop callbacks', () => {
  it('accepts a callback that counts in its caller stack and runs it on both engines', async () => {
    const asm = COUNT(5, 'ldxdw %r3, [%r2+0]\nadd %r3, 1\nstxdw [%r2+0], %r3');
    expect(verdict(asm, 'socket_filter')).toBe('accept');
    const vm = makeTestVm();
    try {
      const prog = createProgram(assemble(asm), { type: 'mem' });
      const jit = await vm.load(prog);
      const interp = await jit.withEngine('interp');
      expect([jit.run(), interp.run()]).toEqual([5n, 5n]);
    } finally {
      vm.close();
    }
  });

  it('widens a counter the callback keeps in its caller: it cannot index a buffer unchecked', () => {
    // Each run uses the count as an offset below fp-8. The first run sees 1, but the state
    // after any number of runs has an unknown count: only a masked one is accepted.
    const body = (mask: string): string => `ldxdw %r3, [%r2+0]
      add %r3, 1
      stxdw [%r2+0], %r3
      ${mask}
      mov %r4, %r2
      sub %r4, %r3
      stb [%r4-8], 1`;
    expect(verdict(COUNT(3, body('and %r3, 7')), 'socket_filter')).toBe('accept');
    expect(verdict(COUNT(3, body('mov %r5, 0')), 'socket_filter')).toBe(
      'math between fp pointer and register with unbounded min value is not allowed',
    );
  });

  it('rejects a callback whose return value is outside [0, 1]', () => {
    const asm = (ret: number): string => `mov %r1, 2
      lddw %r2, func cb
      mov %r3, 0
      mov %r4, 0
      call 181
      exit
      cb:
      mov %r0, ${ret}
      exit`;
    expect(verdict(asm(1), 'socket_filter')).toBe('accept');
    expect(verdict(asm(2), 'socket_filter')).toBe(
      'At callback return the register R0 has smin=2 smax=2 should have been in [0, 1]',
    );
  });

  it('gives the callback its index below nr_loops', () => {
    // A 4-slot table in the callback's own stack, indexed by index * 8: in bounds for
    // nr_loops = 4, one slot past fp for nr_loops = 5.
    const body = `mov %r3, %r1
      lsh %r3, 3
      mov %r4, %r10
      add %r4, -32
      add %r4, %r3
      stdw [%r4+0], 0`;
    expect(verdict(COUNT(4, body), 'socket_filter')).toBe('accept');
    expect(verdict(COUNT(5, body), 'socket_filter')).toMatch(
      /^invalid variable-offset write to stack R4 /,
    );
  });
});

/** A kfunc that allocates 16 bytes (maybe NULL) and one that frees them. */
const KFUNCS: readonly KfuncSig[] = [
  { name: 'obj_new', args: [{ kind: 'scalar' }], ret: { kind: 'mem', size: 16, acquire: true } },
  { name: 'obj_drop', args: [{ kind: 'release' }], ret: { kind: 'void' } },
];

const USE = (store: string, release = 'call kfunc 1'): string => `mov %r1, 16
  call kfunc 0
  jeq %r0, 0, +4
  mov %r1, %r0
  ${store}
  ${release}
  mov %r0, 0
  mov %r0, 0
  exit`;

describe('kfuncs with registered signatures', () => {
  it('accepts a checked, in-bounds, released object', () => {
    expect(verdict(USE('stdw [%r1+8], 7'), 'xdp', KFUNCS)).toBe('accept');
  });

  it('rejects a store past its size', () => {
    expect(verdict(USE('stdw [%r1+16], 7'), 'xdp', KFUNCS)).toBe(
      'R1 min value is outside of the allowed memory range',
    );
  });

  it('rejects a path that does not release it', () => {
    expect(verdict(USE('stdw [%r1+8], 7', 'mov %r1, 0'), 'xdp', KFUNCS)).toMatch(
      /^Unreleased reference id=\d+ alloc_insn=1$/,
    );
  });

  it('rejects a use before the null check', () => {
    const asm = `mov %r1, 16
      call kfunc 0
      stdw [%r0+0], 1
      mov %r1, %r0
      call kfunc 1
      mov %r0, 0
      exit`;
    expect(verdict(asm, 'xdp', KFUNCS)).toBe("R0 invalid mem access 'mem_or_null'");
  });

  it('rejects a kfunc without a signature', () => {
    expect(verdict('call kfunc 7\nmov %r0, 0\nexit', 'xdp', KFUNCS)).toMatch(
      /^calling kernel function kfunc#7 is not allowed/,
    );
  });
});
