/**
 * The kernel as a side-by-side anchor: builds bench/corpus/tools/bpf_testrun.c with gcc into a
 * cache directory, loads a corpus program into the running kernel as XDP and times it with
 * `BPF_PROG_TEST_RUN` (nothing is attached or pinned). The kernel's `duration` (ns per run,
 * the loop's own setup excluded) is the figure we compare with: measured in the same bench run,
 * it is the only fair comparison on a noisy machine.
 *
 * Needs gcc, root (CAP_BPF + CAP_NET_ADMIN) and a kernel that allows bpf(); where any of that is
 * missing, `openKernelAnchor` returns the reason and the bench carries on without it.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpusDir } from './corpus.js';

/** One kernel measurement of a program. */
export interface KernelRun {
  /** Median of the kernel's per-run `duration` over the test runs, ns. */
  readonly nsPerRun: number;
  readonly minNs: number;
  readonly maxNs: number;
  /** The program's return value (XDP action or the benchmark's u32). */
  readonly retval: number;
  /** Instructions after the kernel's rewrites, and the size of its JIT image (0: interpreted). */
  readonly xlatedInsns: number;
  readonly jitedBytes: number;
}

/** How many runs per test-run syscall, and how many syscalls (the median is over these). */
export interface KernelPlan {
  readonly repeat: number;
  readonly reps: number;
}

/** A built, working anchor, or the reason there is none. */
export type KernelAnchorState =
  | { readonly ok: true; readonly anchor: KernelAnchor }
  | { readonly ok: false; readonly reason: string };

/** Runs programs in the kernel through the bpf_testrun tool. */
export class KernelAnchor {
  readonly tool: string;

  constructor(tool: string) {
    this.tool = tool;
  }

  /** Times the raw XDP program at `progPath` on `packetPath`. Throws with the tool's message. */
  run(progPath: string, packetPath: string, plan: KernelPlan): KernelRun {
    const args = ['-q', '-r', String(plan.repeat), '-k', String(plan.reps), progPath, packetPath];
    const res = spawnSync(this.tool, args, { encoding: 'utf8', timeout: 300_000 });
    if (res.error !== undefined) throw new Error(`bpf_testrun: ${res.error.message}`);
    if (res.status !== 0)
      throw new Error(firstLine(res.stderr) || `bpf_testrun exited ${res.status}`);
    return parseTestrunLine(res.stdout);
  }
}

/**
 * Builds the tool if needed (cached by source mtime) and checks that the kernel lets us load and
 * test-run a program, using `probeProg` (a corpus XDP program).
 */
export function openKernelAnchor(probeProg: string, packetPath: string): KernelAnchorState {
  if (process.platform !== 'linux') return { ok: false, reason: `not Linux (${process.platform})` };
  const source = join(corpusDir(), 'tools', 'bpf_testrun.c');
  const cache = join(tmpdir(), 'bpfwasm-bench');
  const tool = join(cache, 'bpf_testrun');
  if (!existsSync(tool) || statSync(tool).mtimeMs < statSync(source).mtimeMs) {
    mkdirSync(cache, { recursive: true });
    const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', tool, source], { encoding: 'utf8' });
    if (cc.error !== undefined)
      return { ok: false, reason: `gcc not available (${cc.error.message})` };
    if (cc.status !== 0) return { ok: false, reason: `gcc failed: ${firstLine(cc.stderr)}` };
  }
  const anchor = new KernelAnchor(tool);
  try {
    const probe = anchor.run(probeProg, packetPath, { repeat: 1, reps: 1 });
    if (probe.jitedBytes === 0) {
      return {
        ok: false,
        reason: 'the kernel did not JIT the program (net.core.bpf_jit_enable=0?)',
      };
    }
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
  return { ok: true, anchor };
}

/** Two measurements of one program as one: the mean of the medians, the extremes of both. */
export function mergeKernelRuns(a: KernelRun, b: KernelRun): KernelRun {
  return {
    ...a,
    nsPerRun: (a.nsPerRun + b.nsPerRun) / 2,
    minNs: Math.min(a.minNs, b.minNs),
    maxNs: Math.max(a.maxNs, b.maxNs),
  };
}

/** Parses bpf_testrun's summary line (`retval=0x.. dur_med=.. dur_min=.. ...`). */
export function parseTestrunLine(out: string): KernelRun {
  const fields = new Map<string, string>();
  for (const m of out.matchAll(/(\w+)=(\S+)/g)) fields.set(m[1] as string, m[2] as string);
  const num = (k: string): number => {
    const v = fields.get(k);
    const x = v === undefined ? Number.NaN : Number(v);
    if (!Number.isFinite(x)) throw new Error(`bpf_testrun: no ${k} in output '${out.trim()}'`);
    return x;
  };
  return {
    nsPerRun: num('dur_med'),
    minNs: num('dur_min'),
    maxNs: num('dur_max'),
    retval: num('retval') >>> 0,
    xlatedInsns: num('xlated_insns'),
    jitedBytes: num('jited_bytes'),
  };
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}
