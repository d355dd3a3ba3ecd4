/**
 * Validates the verifier corpus itself: every case assembles into a Program of its type (or,
 * for a structural reject, createProgram refuses it with the expected DecodeError), every
 * reject has an accepted twin that differs only in the checked point, and every accepted case
 * with a `retval` runs to it on both engines (verify: false).
 *
 * Then the verifier runs on every case: an accepted case verifies, a rejected one fails with
 * `msg` in its reason.
 */
import { describe, expect, it } from 'vitest';
import { assemble } from '../../src/asm/assembler.js';
import { isBpfError } from '../../src/errors.js';
import { createProgram } from '../../src/program.js';
import { makeTestVm } from '../helpers/engines.js';
import type { VerifierCase } from './case.js';
import { isLdImm64 } from '../../src/isa/insn.js';
import { BPF_PSEUDO_MAP_FD } from '../../src/isa/opcodes.js';
import { verifyProgram, type LdMap } from '../../src/verifier/verifier.js';
import { aluCases } from './cases/alu.js';
import { callCases } from './cases/calls.js';
import { cfgCases } from './cases/cfg.js';
import { ctxCases } from './cases/ctx.js';
import { exitCases } from './cases/exit.js';
import { helperCases } from './cases/helpers.js';
import { mapCases } from './cases/map.js';
import { packetCases } from './cases/packet.js';
import { refCases } from './cases/refs.js';
import { stackCases } from './cases/stack.js';
import { uninitCases } from './cases/uninit.js';

const FILES: Readonly<Record<string, readonly VerifierCase[]>> = {
  cfg: cfgCases,
  uninit: uninitCases,
  alu: aluCases,
  stack: stackCases,
  ctx: ctxCases,
  map: mapCases,
  packet: packetCases,
  helpers: helperCases,
  refs: refCases,
  calls: callCases,
  exit: exitCases,
};

const ALL: readonly VerifierCase[] = Object.values(FILES).flat();
const BY_DESC = new Map(ALL.map((c) => [c.desc, c]));

/** The lines of one program that the other does not have (as multisets). */
function lineDiff(a: string, b: string): number {
  const count = new Map<string, number>();
  for (const l of a.split('\n')) count.set(l, (count.get(l) ?? 0) + 1);
  let extra = 0;
  for (const l of b.split('\n')) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else extra++;
  }
  return extra + [...count.values()].reduce((s, n) => s + n, 0);
}

describe('the verifier corpus', () => {
  it('has unique descriptions', () => {
    expect(BY_DESC.size).toBe(ALL.length);
  });

  it('pairs every case with a twin of the other verdict, program type and maps', () => {
    for (const c of ALL) {
      expect(c.twin, c.desc).toBeDefined();
      const t = BY_DESC.get(c.twin ?? '');
      expect(t, c.desc).toBeDefined();
      if (t === undefined) continue;
      expect(t.twin, c.desc).toBe(c.desc);
      expect(t.result, c.desc).not.toBe(c.result);
      expect(t.progType, c.desc).toBe(c.progType);
      expect(t.maps, c.desc).toEqual(c.maps);
      expect(lineDiff(c.asm, t.asm), c.desc).toBeGreaterThan(0);
      expect(lineDiff(c.asm, t.asm), c.desc).toBeLessThanOrEqual(4);
    }
  });

  it('gives every reject a message and no retval, and every accept no message', () => {
    for (const c of ALL) {
      if (c.result === 'reject') {
        expect(c.msg, c.desc).toMatch(/\S/);
        expect(c.retval, c.desc).toBeUndefined();
      } else {
        expect(c.msg, c.desc).toBeUndefined();
        expect(c.structural, c.desc).toBeUndefined();
      }
    }
  });
});

describe.each(Object.entries(FILES))('verifier cases in %s.ts', (_file, cases) => {
  it.each(cases.map((c) => [c.desc, c] as const))('%s builds as recorded', (_desc, c) => {
    const insns = assemble(c.asm);
    if (c.structural === true) {
      let err: unknown;
      try {
        createProgram(insns, { type: c.progType });
      } catch (e) {
        err = e;
      }
      expect(isBpfError(err) && err.name === 'DecodeError', String(err)).toBe(true);
      expect((err as Error).message).toContain(c.msg ?? '');
    } else {
      expect(createProgram(insns, { type: c.progType }).type).toBe(c.progType);
    }
  });

  const runnable = cases.filter((c) => c.retval !== undefined);
  it.each(runnable.map((c) => [c.desc, c] as const))(
    '%s returns its retval on both engines',
    async (_desc, c) => {
      const vm = makeTestVm();
      try {
        (c.maps ?? []).forEach((m, k) => vm.createMap({ name: `m${k + 1}`, ...m }));
        const prog = createProgram(assemble(c.asm), { type: c.progType });
        const input = c.input === undefined ? undefined : new Uint8Array(c.input);
        for (const engine of ['jit', 'interp'] as const) {
          const loaded = await vm.load(prog, { engine, verify: false });
          expect(loaded.run(input), engine).toBe(c.retval);
        }
      } finally {
        vm.close();
      }
    },
  );
});

/** The LdMap of every `lddw map_fd N` of a case (fd N = the N-th map of `maps`). */
function caseMaps(c: VerifierCase, insns: ReturnType<typeof assemble>): Map<number, LdMap> {
  const out = new Map<number, LdMap>();
  insns.forEach((i, idx) => {
    if (!isLdImm64(i) || i.src !== BPF_PSEUDO_MAP_FD) return;
    const m = c.maps?.[i.imm - 1];
    if (m === undefined) return;
    out.set(idx, { map: { ...m, id: i.imm }, value: false, off: 0 });
  });
  return out;
}

describe.each(Object.entries(FILES))('the verifier on %s.ts', (_file, cases) => {
  it.each(cases.filter((c) => c.structural !== true).map((c) => [c.desc, c] as const))(
    '%s',
    (_desc, c) => {
      const insns = assemble(c.asm);
      const prog = createProgram(insns, { type: c.progType });
      let err: unknown;
      try {
        verifyProgram(prog, { maps: caseMaps(c, insns) });
      } catch (e) {
        err = e;
      }
      if (c.result === 'accept') {
        expect(err === undefined ? 'accepted' : String((err as { log?: string }).log ?? err)).toBe(
          'accepted',
        );
      } else {
        expect(isBpfError(err) && err.name === 'VerifierError', String(err)).toBe(true);
        expect((err as { reason: string }).reason).toContain(c.msg ?? '');
      }
    },
  );
});
