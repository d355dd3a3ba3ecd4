/**
 * Section "compile": how long a program takes from instructions to its first result, per
 * phase, for synthetic programs of 1,000 and 10,000 instructions (bench/synth.ts). Each sample
 * is a fresh program (a new seed, so V8 cannot reuse a cached module) loaded into a Vm that
 * has already compiled one program of the same size (binaryen loaded, helper adapters built,
 * binaryen's own code warm). Phases:
 * - program: `createProgram` (decode checks, subprogram split);
 * - build, emit: the JIT's `timings` (binaryen IR construction + validation, `emitBinary`);
 * - compile+instantiate: the rest of `Vm.load`'s `compileMs` (`WebAssembly.compile`,
 *   `instantiate`, call-table slots);
 * - first call: the first `runU32()`, which includes V8's lazy Liftoff compile;
 * - total: program + `vm.load` + first call, measured around them.
 * The process's very first JIT load, which imports binaryen, is reported separately.
 *
 * Target (issue #3): 1,000 instructions compiled and first result ≤ 20 ms.
 *
 * Called from bench/main.ts.
 */

import { Vm } from '../runtime/vm.js';
import { createProgram } from '../src/program.js';
import { WrongResultError } from './corpus.js';
import { synthInsns } from './synth.js';
import { fmtMs, formatTable, verdict } from './table.js';
import { median } from './timing.js';

/** Target: total ms for 1,000 instructions. */
export const COMPILE_TARGET_1K_MS = 20;

/** Synthetic program sizes, in instructions. */
export const COMPILE_SIZES = [1000, 10_000] as const;

/** The phases of one compile, ms. */
export interface CompilePhases {
  readonly program: number;
  /** Binaryen load inside this compile (≈0 once loaded). */
  readonly load: number;
  readonly build: number;
  readonly emit: number;
  readonly compileInstantiate: number;
  readonly firstCall: number;
  readonly total: number;
}

/** One size's figures: the median of each phase over the samples, and the samples. */
export interface CompileRow {
  readonly insnCnt: number;
  readonly median: CompilePhases;
  readonly samples: readonly CompilePhases[];
}

/** The process's first JIT load (binaryen import included), ms. */
export interface ColdStart {
  readonly binaryenLoad: number;
  readonly build: number;
  readonly emit: number;
  readonly compileMs: number;
  readonly firstCall: number;
}

/** The compile section's report. */
export interface CompileReport {
  readonly coldStart: ColdStart;
  readonly rows: readonly CompileRow[];
  readonly target1k:
    { readonly ms: number; readonly max: number; readonly ok: boolean } | undefined;
}

/** What the compile section needs. */
export interface CompileBenchInput {
  readonly coldStart: ColdStart;
  /** Fresh compiles per size. */
  readonly samples: number;
  readonly progress: (line: string) => void;
}

/** Runs the compile section. */
export async function benchCompile(input: CompileBenchInput): Promise<CompileReport> {
  const rows: CompileRow[] = [];
  for (const insnCnt of COMPILE_SIZES) {
    input.progress(`compile: ${insnCnt} insns`);
    const vm = Vm.create();
    try {
      // Warm-up compile of this size, checked against the interpreter once.
      await checkAgainstInterp(vm, insnCnt, insnCnt);
      const samples: CompilePhases[] = [];
      for (let k = 1; k <= input.samples; k++)
        samples.push(await compileOnce(vm, insnCnt, insnCnt + k));
      rows.push({ insnCnt, median: medianPhases(samples), samples });
    } finally {
      vm.close();
    }
  }
  const row1k = rows.find((r) => r.insnCnt === 1000);
  return {
    coldStart: input.coldStart,
    rows,
    target1k:
      row1k === undefined
        ? undefined
        : {
            ms: row1k.median.total,
            max: COMPILE_TARGET_1K_MS,
            ok: row1k.median.total <= COMPILE_TARGET_1K_MS,
          },
  };
}

async function compileOnce(vm: Vm, insnCnt: number, seed: number): Promise<CompilePhases> {
  const insns = synthInsns(insnCnt, seed);
  const t0 = performance.now();
  const prog = createProgram(insns, { name: `synth${insnCnt}_${seed}`, type: 'mem' });
  const t1 = performance.now();
  const loaded = await vm.load(prog, { engine: 'jit', verify: false });
  const t2 = performance.now();
  loaded.runU32();
  const t3 = performance.now();
  const tm = loaded.timings;
  if (tm === undefined) throw new Error('a JIT load reported no timings');
  return {
    program: t1 - t0,
    load: tm.load,
    build: tm.build,
    emit: tm.emit,
    compileInstantiate: loaded.compileMs - tm.load - tm.build - tm.emit,
    firstCall: t3 - t2,
    total: t3 - t0,
  };
}

/** Compiles one program of the size and checks that the JIT and the interpreter agree. */
async function checkAgainstInterp(vm: Vm, insnCnt: number, seed: number): Promise<void> {
  const prog = createProgram(synthInsns(insnCnt, seed), {
    name: `synth${insnCnt}_${seed}`,
    type: 'mem',
  });
  const jit = await vm.load(prog, { engine: 'jit', verify: false });
  const interp = await jit.withEngine('interp');
  const a = jit.run();
  const b = interp.run();
  if (a !== b) {
    throw new WrongResultError(
      `WRONG RESULT: synthetic ${insnCnt}-insn program (seed ${seed}): jit 0x${a.toString(16)}, interp 0x${b.toString(16)}`,
    );
  }
}

function medianPhases(samples: readonly CompilePhases[]): CompilePhases {
  const m = (f: (p: CompilePhases) => number): number => median(samples.map(f));
  return {
    program: m((p) => p.program),
    load: m((p) => p.load),
    build: m((p) => p.build),
    emit: m((p) => p.emit),
    compileInstantiate: m((p) => p.compileInstantiate),
    firstCall: m((p) => p.firstCall),
    total: m((p) => p.total),
  };
}

/** The section as text. */
export function formatCompile(report: CompileReport): string {
  const samples = report.rows[0]?.samples.length ?? 0;
  const table = formatTable(
    [
      'program',
      'program',
      'build',
      'emit',
      'compile+inst',
      'first call',
      'total',
      '(min–max total)',
    ],
    report.rows.map((r) => {
      const totals = r.samples.map((s) => s.total);
      return [
        `${r.insnCnt.toLocaleString('en-US')} insns`,
        fmtMs(r.median.program),
        fmtMs(r.median.build),
        fmtMs(r.median.emit),
        fmtMs(r.median.compileInstantiate),
        fmtMs(r.median.firstCall),
        fmtMs(r.median.total),
        `${fmtMs(Math.min(...totals))}–${fmtMs(Math.max(...totals))}`,
      ];
    }),
  );
  const c = report.coldStart;
  const lines = [
    `ms per phase, median over ${samples} fresh compiles per size (each a new program), binaryen already loaded`,
    '',
    table,
    '',
    `first JIT load of the process (p1_pass, 2 insns): binaryen import ${fmtMs(c.binaryenLoad)} ms, ` +
      `build ${fmtMs(c.build)}, emit ${fmtMs(c.emit)}, load total ${fmtMs(c.compileMs)} ms, ` +
      `first call ${fmtMs(c.firstCall)} ms`,
  ];
  if (report.target1k !== undefined) {
    const t = report.target1k;
    lines.push(
      `1,000 insns to first result: ${fmtMs(t.ms)} ms (target ≤ ${t.max} ms) ${verdict(t.ok)}`,
    );
  }
  return lines.join('\n');
}
