/**
 * The bpf_conformance runner: assembles each `.data` file, runs it on one engine with
 * r1 = a writable copy of `-- mem` and r2 = its length (r1 = r2 = 0 without mem), and
 * compares r0 as u64 with `-- result` (or expects a failure for `-- error`). Used by the
 * `bpfwasm conformance` command and by the test suite.
 */

import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { assemble } from '../asm/assembler.js';
import { parseDataFile } from '../asm/data-file.js';
import { isBpfError } from '../errors.js';
import { createProgram } from '../program.js';
import { Vm, type VmOptions } from '../../runtime/vm.js';
import type { Engine } from '../../runtime/loaded-program.js';

/** Outcome of one conformance file. */
export interface ConformanceResult {
  readonly name: string;
  readonly status: 'pass' | 'fail' | 'skip';
  /** Why it failed or was skipped. */
  readonly detail?: string;
}

/** Totals of a conformance run. */
export interface ConformanceSummary {
  readonly results: readonly ConformanceResult[];
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
}

/** The `.data` files of `dir`, sorted by name. */
export function listDataFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.data'))
    .sort()
    .map((f) => join(dir, f));
}

/** Runs one `.data` file on `engine` in a fresh Vm (made with `vmOptions`). */
export async function runConformanceFile(
  path: string,
  engine: Engine,
  vmOptions: VmOptions = {},
): Promise<ConformanceResult> {
  const name = basename(path, '.data');
  const data = parseDataFile(readFileSync(path, 'utf8'), basename(path));
  if (data.skip !== undefined) return { name, status: 'skip', detail: data.skip };
  const vm = Vm.create(vmOptions);
  try {
    const insns = data.raw ?? assemble(data.asm ?? '');
    const prog = createProgram(insns, { name, type: 'mem' });
    const loaded = await vm.load(prog, { engine, verify: false });
    const r0 = loaded.run(data.mem.length === 0 ? undefined : data.mem);
    if (data.error !== undefined) {
      return {
        name,
        status: 'fail',
        detail: `expected error '${data.error}', got r0 = 0x${r0.toString(16)}`,
      };
    }
    if (r0 !== data.result) {
      return {
        name,
        status: 'fail',
        detail: `expected 0x${(data.result ?? 0n).toString(16)}, got 0x${r0.toString(16)}`,
      };
    }
    return { name, status: 'pass' };
  } catch (e) {
    if (data.error !== undefined && isBpfError(e)) return { name, status: 'pass' };
    return {
      name,
      status: 'fail',
      detail: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    };
  } finally {
    vm.close();
  }
}

/** Runs every `.data` file of `dir` on `engine`. */
export async function runConformance(dir: string, engine: Engine): Promise<ConformanceSummary> {
  const results: ConformanceResult[] = [];
  for (const f of listDataFiles(dir)) results.push(await runConformanceFile(f, engine));
  const count = (s: ConformanceResult['status']): number =>
    results.filter((r) => r.status === s).length;
  return { results, passed: count('pass'), failed: count('fail'), skipped: count('skip') };
}
