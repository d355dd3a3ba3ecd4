/**
 * Shared by the helper tests: assembles a program, loads it on one engine of a fresh Vm
 * (JIT output validated by wabt), runs it once and keeps the Vm for inspection (trace log,
 * maps, memory). `closeVms()` closes every Vm made so far (call it in afterEach).
 */
import { assembleProgram } from '../../../../src/asm/assembler.js';
import type { ProgType } from '../../../../src/program.js';
import type { LoadedProgram } from '../../../../runtime/loaded-program.js';
import type { BpfMap, MapSpec } from '../../../../runtime/maps/map.js';
import type { Vm, VmOptions } from '../../../../runtime/vm.js';
import { makeTestVm, outcome } from '../../../helpers/engines.js';

/** Both engines, for describe.each / it.each. */
export const ENGINES = ['jit', 'interp'] as const;
export type TestEngine = (typeof ENGINES)[number];

/** What `runAsm` hands back. */
export interface HelperRun {
  /** `r0=<hex>` or `error <kind> at insn <idx>` (test/helpers/engines.ts `outcome`). */
  readonly out: string;
  readonly vm: Vm;
  readonly prog: LoadedProgram;
  readonly maps: BpfMap[];
}

/** Options of `runAsm`. */
export interface RunOptions {
  readonly vm?: VmOptions;
  /** Copied into the packet area; a `mem` program gets r1 = its address, r2 = its length. */
  readonly input?: Uint8Array;
  readonly type?: ProgType;
  /** Maps created before loading (ids 1, 2, ... for `lddw %rX, map_fd N`). */
  readonly maps?: readonly MapSpec[];
  /** Runs after loading, before the run. */
  readonly before?: (vm: Vm, maps: BpfMap[]) => void;
  readonly run?: boolean;
  /** Verify the program first (default false); verified bpf_loop calls are inlined by the JIT. */
  readonly verify?: boolean;
}

const open: Vm[] = [];

/** Closes every Vm made by `loadAsm` / `runAsm`. */
export function closeVms(): void {
  for (const vm of open.splice(0)) vm.close();
}

/** Loads `asm` on `engine` of a fresh Vm. */
export async function loadAsm(
  engine: TestEngine,
  asm: string,
  opts: RunOptions = {},
): Promise<{ vm: Vm; prog: LoadedProgram; maps: BpfMap[] }> {
  const vm = makeTestVm(opts.vm);
  open.push(vm);
  const maps = (opts.maps ?? []).map((m) => vm.createMap(m));
  const prog = await vm.load(assembleProgram(asm, { type: opts.type ?? 'mem' }), {
    engine,
    verify: opts.verify ?? false,
  });
  opts.before?.(vm, maps);
  return { vm, prog, maps };
}

/** Loads `asm` on `engine` of a fresh Vm and runs it once with `opts.input`. */
export async function runAsm(
  engine: TestEngine,
  asm: string,
  opts: RunOptions = {},
): Promise<HelperRun> {
  const { vm, prog, maps } = await loadAsm(engine, asm, opts);
  const out = outcome(() => prog.run(opts.input));
  return { out, vm, prog, maps };
}

/** `r0=<hex>` of a u64 value given as a (possibly negative) number or bigint. */
export function r0(v: number | bigint): string {
  return `r0=${BigInt.asUintN(64, BigInt(v)).toString(16)}`;
}

/** The bytes of `s` followed by a NUL. */
export function cstr(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = new Uint8Array(b.length + 1);
  out.set(b);
  return out;
}

/** `parts` back to back. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Little-endian u64s. */
export function u64s(...v: bigint[]): Uint8Array {
  return new Uint8Array(new BigUint64Array(v.map((x) => BigInt.asUintN(64, x))).buffer);
}
