/**
 * Command line of `npm run bench -- [options]`, and the timing plans each mode implies.
 *
 * Called from bench/main.ts.
 */

import { CORPUS_PROGRAMS, isCorpusName, type CorpusCpu, type CorpusName } from './corpus.js';
import type { KernelPlan } from './kernel-anchor.js';
import type { TimingPlan } from './timing.js';

/** The report's sections. */
export const SECTIONS = [
  'corpus',
  'overhead',
  'maps',
  'alloc',
  'coroutines',
  'workers',
  'compile',
  'verify',
  'termination',
] as const;

/** A section name. */
export type SectionName = (typeof SECTIONS)[number];

/** True when `s` names a section. */
export function isSectionName(s: string): s is SectionName {
  return (SECTIONS as readonly string[]).includes(s);
}

/** Parsed options. */
export interface BenchOptions {
  readonly quick: boolean;
  readonly sections: ReadonlySet<SectionName>;
  readonly programs: readonly CorpusName[];
  readonly cpu: CorpusCpu;
  readonly kernel: boolean;
  readonly jsonPath: string | undefined;
  readonly help: boolean;
}

/** Timing plans for one mode. */
export interface BenchPlans {
  /** JIT runs and per-run overhead (ns-scale). */
  readonly jit: TimingPlan;
  /** Interpreter runs (100–300× slower: fewer, longer rounds). */
  readonly interp: TimingPlan;
  /** The kernel anchor's test runs. */
  readonly kernel: KernelPlan;
  /** Fresh compiles per synthetic program size. */
  readonly compiles: number;
  /** Copies of the packet in the runBatch batch. */
  readonly batchSize: number;
  /** Fresh workers per JIT measurement (the median of their medians is reported). */
  readonly isolates: number;
}

/** Usage text for `--help`. */
export const USAGE = `usage: npm run bench -- [options]

  --quick            fewer and shorter rounds (a smoke run, figures are rough)
  --only LIST        comma-separated sections (${SECTIONS.join(', ')}) and/or corpus
                     programs (${CORPUS_PROGRAMS.join(', ')}); programs imply 'corpus'
  --cpu v3|v4        corpus objects built with -mcpu=v3 (default) or v4
  --no-kernel        skip the kernel anchor (bpf_testrun)
  --json FILE        also write every figure as JSON to FILE
  --help             this text`;

/** Parses argv (without node and the script). Throws an Error with a message on bad input. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  let quick = false;
  let kernel = true;
  let help = false;
  let cpu: CorpusCpu = 'v3';
  let jsonPath: string | undefined;
  let only: string[] | undefined;
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k] as string;
    const value = (): string => {
      const v = argv[++k];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') quick = true;
    else if (arg === '--no-kernel') kernel = false;
    else if (arg === '--help' || arg === '-h') help = true;
    else if (arg === '--json') jsonPath = value();
    else if (arg === '--only') only = [...(only ?? []), ...value().split(',')];
    else if (arg === '--cpu') {
      const v = value();
      if (v !== 'v3' && v !== 'v4') throw new Error(`--cpu: expected v3 or v4, got '${v}'`);
      cpu = v;
    } else throw new Error(`unknown option '${arg}'\n\n${USAGE}`);
  }
  const { sections, programs } = resolveOnly(only);
  return { quick, sections, programs, cpu, kernel, jsonPath, help };
}

function resolveOnly(only: readonly string[] | undefined): {
  sections: Set<SectionName>;
  programs: CorpusName[];
} {
  if (only === undefined) return { sections: new Set(SECTIONS), programs: [...CORPUS_PROGRAMS] };
  const sections = new Set<SectionName>();
  const programs: CorpusName[] = [];
  for (const raw of only) {
    const name = raw.trim();
    if (name === '') continue;
    if (isCorpusName(name)) {
      programs.push(name);
      sections.add('corpus');
    } else if (isSectionName(name)) {
      sections.add(name);
    } else {
      throw new Error(`--only: '${name}' is neither a section nor a corpus program\n\n${USAGE}`);
    }
  }
  return { sections, programs: programs.length > 0 ? programs : [...CORPUS_PROGRAMS] };
}

/** The timing plans for full or quick runs. */
export function benchPlans(quick: boolean): BenchPlans {
  return quick
    ? {
        jit: { warmupMs: 100, rounds: 5, roundMs: 10 },
        interp: { warmupMs: 100, rounds: 3, roundMs: 30 },
        kernel: { repeat: 10_000, reps: 5 },
        compiles: 2,
        batchSize: 256,
        isolates: 1,
      }
    : {
        jit: { warmupMs: 200, rounds: 15, roundMs: 20 },
        interp: { warmupMs: 200, rounds: 7, roundMs: 60 },
        kernel: { repeat: 100_000, reps: 11 },
        compiles: 5,
        batchSize: 1024,
        isolates: 3,
      };
}
