/**
 * Test helper: an `ExecEnv` over a plain 1 MiB buffer laid out as worker 0 of a Vm
 * (src/abi.ts `workerLayout(0)`): the stack ends at `layout.stackTop`, an input buffer sits
 * at `layout.packet`, helpers come from a map, and function tokens `FUNC_TOKEN_BASE + k`
 * resolve to subprog k of the program under test. Used by the interpreter's unit tests and
 * by anything that wants to run a program without a Vm.
 */

import { FUNC_TOKEN_BASE, workerLayout, type ProgLinks, type WorkerLayout } from '../../src/abi.js';
import { ExecError } from '../../src/errors.js';
import type { Insn } from '../../src/isa/insn.js';
import { MAX_BPF_STACK, MAX_CALL_FRAMES } from '../../src/isa/opcodes.js';
import {
  DEFAULT_INSN_BUDGET,
  type ExecEnv,
  type HelperArgs,
  type MemRegion,
  type TokenTarget,
} from '../../src/interp/env.js';
import { interpret } from '../../src/interp/interpreter.js';
import { createProgram, type Program, type ProgramOptions } from '../../src/program.js';

/** Bytes of the test memory. */
export const TEST_MEMORY_SIZE = 1 << 20;

/** A helper implementation: r1..r5 in, r0 out (negative values wrap to u64). */
export type TestHelper = (args: HelperArgs) => bigint;

/** Options of `makeExecEnv`. */
export interface ExecEnvOptions {
  /** The program whose subprogs function tokens resolve to. */
  readonly prog?: Program;
  /** Bytes copied to `layout.packet`; they form the 'input' region and the ld_abs packet. */
  readonly input?: Uint8Array;
  /** Whether the input region is writable (default true, as uBPF's mem programs). */
  readonly inputWritable?: boolean;
  /** Extra regions besides the stack and the input. */
  readonly regions?: readonly MemRegion[];
  /** Helpers by kernel helper id. */
  readonly helpers?: ReadonlyMap<number, TestHelper>;
  /** Values of pseudo lddw slots. */
  readonly ldImm64?: ReadonlyMap<number, bigint>;
  readonly insnBudget?: number;
  readonly mayGotoBudget?: number;
  /** Back the memory with a SharedArrayBuffer (exercises the `Atomics` path). */
  readonly shared?: boolean;
}

/** An `ExecEnv` plus handles on its memory for assertions. */
export interface TestExecEnv extends ExecEnv {
  /** The whole test memory. */
  readonly mem: Uint8Array;
  /** Little-endian view of `mem`. */
  readonly view: DataView;
  readonly layout: WorkerLayout;
  /** Address and length of the input buffer (length 0 without input). */
  readonly input: { readonly addr: number; readonly len: number };
  /** Helper ids called so far, in order. */
  readonly calls: number[];
}

/** Builds an `ExecEnv` over a fresh 1 MiB buffer using the worker-0 layout. */
export function makeExecEnv(opts: ExecEnvOptions = {}): TestExecEnv {
  const layout = workerLayout(0);
  const buf = opts.shared
    ? new SharedArrayBuffer(TEST_MEMORY_SIZE)
    : new ArrayBuffer(TEST_MEMORY_SIZE);
  const mem = new Uint8Array(buf);
  const input = opts.input ?? new Uint8Array(0);
  mem.set(input, layout.packet);
  const inputRegion: MemRegion = {
    start: layout.packet,
    end: layout.packet + input.length,
    writable: opts.inputWritable ?? true,
    name: 'input',
  };
  const links: ProgLinks = {
    helperBase: 0,
    funcTokenBase: FUNC_TOKEN_BASE,
    ldImm64: opts.ldImm64 ?? new Map(),
    kfuncSlots: new Map(),
  };
  const helpers = opts.helpers ?? new Map<number, TestHelper>();
  const calls: number[] = [];
  const prog = opts.prog;
  return {
    mem,
    view: new DataView(buf),
    layout,
    input: { addr: layout.packet, len: input.length },
    calls,
    memory: () => mem,
    regions: [inputRegion, ...(opts.regions ?? [])],
    stackTop: layout.stackTop,
    stackLimit: layout.stackTop - MAX_CALL_FRAMES * MAX_BPF_STACK,
    links,
    callHelper: (id, args) => {
      const fn = helpers.get(id);
      if (fn === undefined) throw new ExecError(null, 'call', `unknown helper #${id}`);
      calls.push(id);
      return fn(args);
    },
    resolveToken: (token): TokenTarget | undefined => {
      const k = token - BigInt(FUNC_TOKEN_BASE);
      if (prog === undefined || k < 0n || k >= BigInt(prog.subprogs.length)) return undefined;
      return { prog, links, subprog: Number(k) };
    },
    insnBudget: opts.insnBudget ?? DEFAULT_INSN_BUDGET,
    mayGotoBudget: opts.mayGotoBudget ?? 0,
    packet: opts.input === undefined ? undefined : { addr: layout.packet, len: input.length },
  };
}

/** Options of `runInsns`: those of `makeExecEnv` and `createProgram`, plus r1 and r2. */
export interface RunOptions extends Omit<ExecEnvOptions, 'prog'> {
  readonly r1?: bigint;
  readonly r2?: bigint;
  readonly program?: ProgramOptions;
}

/**
 * Builds a program from `insns`, an env for it, and interprets it. With input and no r1/r2,
 * r1 = input address and r2 = input length (uBPF's `mem` convention).
 */
export function runInsns(
  insns: readonly Insn[],
  opts: RunOptions = {},
): { r0: bigint; env: TestExecEnv; prog: Program } {
  const prog = createProgram(insns, opts.program);
  const env = makeExecEnv({ ...opts, prog });
  const r1 = opts.r1 ?? (opts.input === undefined ? 0n : BigInt(env.input.addr));
  const r2 = opts.r2 ?? BigInt(env.input.len);
  return { r0: interpret(prog, env, r1, r2), env, prog };
}

/** What `f` throws, or undefined when it returns. */
export function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Id of the probe helper of `probeHelpers` (not a real kernel helper id). */
export const PROBE_HELPER = 200;

/** A helper map with a probe (helper `PROBE_HELPER`) that records r1..r5 of every call. */
export function probeHelpers(extra: ReadonlyMap<number, TestHelper> = new Map()): {
  readonly helpers: Map<number, TestHelper>;
  readonly seen: (readonly bigint[])[];
} {
  const seen: (readonly bigint[])[] = [];
  const helpers = new Map(extra);
  helpers.set(PROBE_HELPER, (args) => {
    seen.push([...args]);
    return 0n;
  });
  return { helpers, seen };
}
