/**
 * The verifier on real clang output: every bundled example object (each program accepted or
 * rejected as documented in BUNDLED_REJECTS), every benchmark-corpus program (mem and XDP
 * builds, v3 and v4) and the shared XDP example verify. The coroutine objects
 * (test/fixtures/elf/coro) are verified against the built-in kfunc signatures
 * (src/kfunc-protos.ts) in a Vm that registers those kfuncs, each with its documented outcome.
 * Verification times are measured by `npm run bench -- --only verify`.
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

const EXAMPLES = readdirSync(join(ROOT, 'examples'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => objects(join(ROOT, 'examples', d.name, 'build')));

const CORPUS = readdirSync(join(ROOT, 'bench', 'corpus', 'bpf'))
  .filter((f) => f.endsWith('.bin'))
  .map((f) => join(ROOT, 'bench', 'corpus', 'bpf', f));

const infiniteLoop = (insn: number): string => `infinite loop detected at insn ${insn}`;
const tooLarge = 'BPF program is too large. Processed 1000001 insn';

/**
 * The programs of the bundled coroutine examples the verifier rejects, by object, each for a
 * reason the kernel's verifier would share: a loop it cannot bound within 1M insns, a callee
 * that may rewrite a loop counter, a pointer stored into a map. Every other program verifies.
 */
const BUNDLED_REJECTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'coro_bench.o': {
    // roundtrip_yield: the counter at +0x2c is tracked (frame slots) but bounded by a u32 from
    // .data, and when every yield fails (a full ready queue) the loop runs that often in one
    // activation; alloc_free: 100000 iterations of its loop exceed 1M insns; halves_callback
    // stores a function pointer into .bss (a map value)
    roundtrip_yield: tooLarge,
    halves_callback: 'R1 leaks addr into map',
    alloc_free: tooLarge,
  },
  'coro_bench.v3.o': {
    roundtrip_yield: tooLarge,
    halves_callback: 'R1 leaks addr into map',
    alloc_free: tooLarge,
  },
  // on_tick itself verifies (its counter is a frame slot); the resume clone poll_loop.resume
  // destroys the child with callx through a handle, and the callee may write the parent frame
  // (the child holds its address as continuation), so the counter is unknown afterwards and the
  // loop on bpf_coro_sleep's non-zero result cannot be bounded: "infinite loop detected"
  'coro_loop.o': { on_tick: infiniteLoop(129) },
  'coro_loop.v3.o': { on_tick: infiniteLoop(137) },
  // up to 4096 iterations of three operations in one activation (FCFS mode)
  'uc_kvstore.o': { kv_serve: tooLarge },
  'uc_kvstore.v3.o': { kv_serve: tooLarge },
};

describe('the verifier on the bundled examples', () => {
  it('finds the example objects', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(10);
  });

  it.each(EXAMPLES.map((f) => [f.slice(ROOT.length + 1), f] as const))(
    '%s: every program verifies or is rejected as documented',
    (n, f) => {
      const verdicts = verifyFile(f);
      expect(verdicts.length).toBeGreaterThan(0);
      const rejects = BUNDLED_REJECTS[n.slice(n.lastIndexOf('/') + 1)] ?? {};
      for (const v of verdicts) {
        const reason = rejects[v.program ?? ''];
        expect(v.accepted ? 'accept' : `${v.program}: ${v.message}`).toBe(
          reason === undefined ? 'accept' : `${v.program}: ${reason}`,
        );
      }
    },
  );
});

describe('the verifier on the benchmark corpus', () => {
  it.each(CORPUS.map((f) => [f.slice(ROOT.length + 1), f] as const))('%s verifies', (_n, f) => {
    const [v] = verifyFile(f, { type: f.endsWith('.xdp.bin') ? 'xdp' : 'mem' });
    expect(v?.accepted ? 'accept' : v?.message).toBe('accept');
  });
});

const sharedXdp = objects(join(SHARED, 'xdp', 'build'));
const coro = objects(join(SHARED, 'coro', 'build'));
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

  it.each(
    coro.filter((f) => f.endsWith('.g.o')).map((f) => [f.slice(SHARED.length + 1), f] as const),
  )('%s: each program verifies', (_n, f) => {
    // the coroutine kfuncs are registered in every Vm
    for (const v of verifyFile(f)) {
      expect(v.accepted ? 'accept' : `${v.program}: ${v.message}`).toBe('accept');
    }
  });
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

  it('coro_destroy: accepts the references a frame keeps across its suspension', () => {
    // on_sample stores a task reference and a ringbuf record in the frame and suspends
    // (bpf_coro_defer): they move into the frame, and .resume and .destroy are verified
    // holding them, each releasing both (check-coro.ts suspendFrame, the destroy path)
    expect(coroVerdicts('coro_destroy.g.o')).toEqual({
      on_sample: 'accept',
      on_cancel: 'accept',
      on_scoped: 'accept',
    });
  });

  it('coro_loop: accepts the child handle clang dereferences without a NULL check', () => {
    // .resume at suspend index 1 reloads the child frame from the parent's +0x20 and reads its
    // promise without a NULL check: the run-time frame check refuses NULL (check-coro.ts).
    expect(coroVerdicts('coro_loop.g.o')).toEqual({ on_tick: 'accept' });
    expect(coroVerdicts('coro_loop.o')).toEqual({ on_tick: 'accept' });
    expect(coroVerdicts('coro_loop.v3.o')).toEqual({ on_tick: 'accept' });
  });

  it('coro_many_suspends: accepts the v3 compare tree and the v4 jump table', () => {
    // v4: the suspend index (a byte loaded from the frame) indexes the 14-entry jump table
    // unchecked; the table load is bounds-checked at run time (regionChecks).
    expect(coroVerdicts('coro_many_suspends.g.o')).toEqual({ on_many: 'accept' });
    expect(coroVerdicts('coro_many_suspends.o')).toEqual({ on_many: 'accept' });
    expect(coroVerdicts('coro_many_suspends.v3.o')).toEqual({ on_many: 'accept' });
  });

  it('coro_symmetric: accepts the load through either the .rodata noop frame or a handle', () => {
    // the child's final suspend loads the next resume token through the .rodata noop frame on
    // one path and through a handle on another: the run-time check accepts either.
    expect(coroVerdicts('coro_symmetric.g.o')).toEqual({ on_sym: 'accept' });
    expect(coroVerdicts('coro_symmetric.o')).toEqual({ on_sym: 'accept' });
    expect(coroVerdicts('coro_symmetric.v3.o')).toEqual({ on_sym: 'accept' });
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
