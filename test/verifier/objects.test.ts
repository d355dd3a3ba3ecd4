/**
 * The verifier on real clang output: every bundled example object, every benchmark-corpus
 * program (mem and XDP builds, v3 and v4) and the shared XDP example verify. The coroutine
 * objects (test/fixtures/elf/coro) are verified against the built-in kfunc signatures
 * (src/kfunc-protos.ts) in a Vm that registers those kfuncs, each with its documented outcome;
 * a plain Vm (the CLI's) has no coroutine kfuncs and says so. Verification times are measured
 * by `npm run bench -- --only verify`.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyFile } from '../../src/cli/verify.js';
import { isVerifierError } from '../../src/errors.js';
import { KFUNC_PROTOS } from '../../src/kfunc-protos.js';
import { loadObject } from '../../src/loader/object.js';
import { btfTypeSizes, dataFuncStarts } from '../../src/loader/types.js';
import { createProgram } from '../../src/program.js';
import { createObjectMap } from '../../runtime/object.js';
import { Vm } from '../../runtime/vm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared', 'examples');

function objects(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.o'))
    .map((f) => join(dir, f));
}

// the C examples; the C++ coroutine examples (examples/coro) have their own outcomes below
const EXAMPLES = readdirSync(join(ROOT, 'examples'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && d.name !== 'coro')
  .flatMap((d) => objects(join(ROOT, 'examples', d.name, 'build')));

const CORPUS = readdirSync(join(ROOT, 'bench', 'corpus', 'bpf'))
  .filter((f) => f.endsWith('.bin'))
  .map((f) => join(ROOT, 'bench', 'corpus', 'bpf', f));

describe('the verifier on the bundled examples', () => {
  it('finds the example objects', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(10);
  });

  it.each(EXAMPLES.map((f) => [f.slice(ROOT.length + 1), f] as const))('%s verifies', (_n, f) => {
    const verdicts = verifyFile(f);
    expect(verdicts.length).toBeGreaterThan(0);
    for (const v of verdicts)
      expect(v.accepted ? 'accept' : `${v.program}: ${v.message}`).toBe('accept');
  });
});

describe('the verifier on the benchmark corpus', () => {
  it.each(CORPUS.map((f) => [f.slice(ROOT.length + 1), f] as const))('%s verifies', (_n, f) => {
    const [v] = verifyFile(f, { type: f.endsWith('.xdp.bin') ? 'xdp' : 'mem' });
    expect(v?.accepted ? 'accept' : v?.message).toBe('accept');
  });
});

const sharedXdp = objects(join(SHARED, 'xdp', 'build'));
if (sharedXdp.length === 0) {
  console.warn(`skipping ../shared/examples objects: ${SHARED} is not beside this clone`);
}

describe.skipIf(sharedXdp.length === 0)('the verifier on ../shared/examples', () => {
  it.each(sharedXdp.map((f) => [f.slice(SHARED.length + 1), f] as const))(
    '%s verifies',
    (_n, f) => {
      for (const v of verifyFile(f)) expect(v.accepted ? 'accept' : v.message).toBe('accept');
    },
  );
});

const CORO = join(ROOT, 'test', 'fixtures', 'elf', 'coro');

/**
 * Verifies every program of coroutine object `file` in a Vm that has the built-in kfuncs (and
 * bpf_get_current_task_btf): 'accept' or `insn N: reason` per program.
 */
function coroVerdicts(file: string): Record<string, string> {
  const obj = loadObject(new Uint8Array(readFileSync(join(CORO, file))));
  const vm = Vm.create();
  try {
    for (const name of KFUNC_PROTOS.keys()) vm.registerKfunc({ name, fn: () => 0n });
    vm.registerHelper({ id: 158, name: 'bpf_get_current_task_btf', fn: () => 0n });
    const maps = obj.maps.map((def) => {
      const m = createObjectMap(vm, def);
      if (def.global?.readonly === true) m.freeze();
      return m;
    });
    const btfTypeSize = btfTypeSizes(obj);
    const out: Record<string, string> = {};
    obj.programs.forEach((p, k) => {
      const prog = createProgram(p.insns, {
        name: p.name,
        type: p.type,
        funcNames: p.funcNames,
        gotoxTargets: p.gotoxTargets,
        dataFuncs: dataFuncStarts(obj, k),
      });
      const kfuncs = new Map<number, { name: string; weak: boolean }>();
      for (const r of p.relocs) {
        if (r.kind === 'kfunc') kfuncs.set(r.insnIdx, { name: r.name, weak: r.weak });
      }
      try {
        vm.verify(prog, { maps, kfuncs, ...(btfTypeSize === undefined ? {} : { btfTypeSize }) });
        out[p.name] = 'accept';
      } catch (e) {
        if (!isVerifierError(e)) throw e;
        out[p.name] = `insn ${String(e.insnIdx)}: ${e.reason}`;
      }
    });
    return out;
  } finally {
    void vm.close();
  }
}

describe('the verifier on the coroutine objects, with the built-in kfunc signatures', () => {
  it('accepts coro_perf_event (the talk example): frame, resume and destroy verified', () => {
    expect(coroVerdicts('coro_perf_event.g.o')).toEqual({ on_perf_event: 'accept' });
  });

  it('coro_destroy: accepts the cancel and scoped programs, rejects the reference kept in a frame', () => {
    // on_sample stores a task reference and a ringbuf record in the frame and suspends: their
    // release in .destroy is not tracked (check-coro.ts, "What is not proven"), so the
    // references are still held at the program's exit.
    expect(coroVerdicts('coro_destroy.g.o')).toEqual({
      on_sample: 'insn 49: Unreleased reference id=2 alloc_insn=17',
      on_cancel: 'accept',
      on_scoped: 'accept',
    });
  });

  it('coro_loop: rejects the child handle clang dereferences without a NULL check', () => {
    // .resume at suspend index 1 reloads the child frame from the parent's +0x20 and reads
    // its promise: clang knows the slot is set, the verifier (no frame contents across
    // suspensions) sees a coro_handle_or_null.
    const reason = "R1 invalid mem access 'coro_handle_or_null'";
    expect(coroVerdicts('coro_loop.g.o')).toEqual({ on_tick: `insn 55: ${reason}` });
    expect(coroVerdicts('coro_loop.o')).toEqual({ on_tick: `insn 55: ${reason}` });
    expect(coroVerdicts('coro_loop.v3.o')).toEqual({ on_tick: `insn 58: ${reason}` });
  });

  it('coro_many_suspends: accepts the v3 compare tree, rejects the v4 jump table', () => {
    // v4: the suspend index (a byte loaded from the frame) indexes the 14-entry jump table
    // unchecked; the index is not tracked, so the table load may be out of bounds.
    const table = 'insn 38: R3 max value is outside of the allowed memory range';
    expect(coroVerdicts('coro_many_suspends.g.o')).toEqual({ on_many: table });
    expect(coroVerdicts('coro_many_suspends.o')).toEqual({ on_many: table });
    expect(coroVerdicts('coro_many_suspends.v3.o')).toEqual({ on_many: 'accept' });
  });

  it('coro_symmetric: verifies the .rodata noop coroutine, rejects the unchecked child handle', () => {
    // As coro_loop (the parent's .resume reads the child's result through +0x20 unchecked);
    // past that, the child's final suspend loads the next resume token through either the
    // .rodata noop frame or a handle at one insn, which the run-time frame check cannot serve.
    const reason = "R2 invalid mem access 'coro_handle_or_null'";
    expect(coroVerdicts('coro_symmetric.g.o')).toEqual({ on_sym: `insn 49: ${reason}` });
    expect(coroVerdicts('coro_symmetric.o')).toEqual({ on_sym: `insn 49: ${reason}` });
    expect(coroVerdicts('coro_symmetric.v3.o')).toEqual({ on_sym: `insn 52: ${reason}` });
  });

  it('cannot create the BTF-defined maps of the plain .o builds of coro_perf_event and coro_destroy', () => {
    for (const f of [
      'coro_perf_event.o',
      'coro_perf_event.v3.o',
      'coro_destroy.o',
      'coro_destroy.v3.o',
    ]) {
      expect(() => coroVerdicts(f)).toThrow('the object has no BTF to describe this map');
    }
  });
});

/**
 * The C++ coroutine examples built on include/bpf_coro.h (examples/coro), as the CLI verifies
 * them (a plain Vm: built-in coroutine kfuncs and signatures). Each program has its recorded
 * outcome; the rejected ones run unverified in their tests, and the issue note says why.
 */
const CORO_EXAMPLE_OUTCOMES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  coro_perf_event: { on_perf_event: 'accept' },
  coro_where: { start_hop: 'accept' },
  coro_many_suspends: { on_many: 'accept' },
};

describe('the verifier on examples/coro (include/bpf_coro.h)', () => {
  it.each(Object.entries(CORO_EXAMPLE_OUTCOMES))('%s.v3.o', (name, want) => {
    const out: Record<string, string> = {};
    for (const v of verifyFile(join(ROOT, 'examples', 'coro', 'build', `${name}.v3.o`)))
      out[v.program ?? name] = v.accepted ? 'accept' : v.message;
    expect(out).toEqual(want);
  });
});
