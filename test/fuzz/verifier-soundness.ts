/**
 * The verifier soundness fuzz (DESIGN.md §7, issue #5 §7): programs the verifier accepts never
 * fault in the checked interpreter and never trap in Wasm, and both engines agree on them.
 * Programs come from test/fuzz/verifier-gen.ts; each runs on several generated inputs. Used by
 * test/fuzz/verifier-soundness.test.ts (fixed seed) and `npm run fuzz:verifier -- --seed S
 * --count N` (test/fuzz/verifier-cli.ts).
 *
 * How a program is checked:
 * 1. Its maps are created on a Vm and its map lddw slots rebound to their ids.
 * 2. `verifyProgram` is called directly with an `LdMap` per map lddw slot built from the Vm's
 *    maps (what `vm.load` passes), so that rejections are counted without loading and a
 *    violation can print the level-2 log.
 * 3. An accepted program is loaded with `vm.load(prog)` and default options: once the Vm's
 *    verifier wiring is in, that verifies it again and JIT-compiles it WITHOUT memory guards,
 *    as users load programs; before, it loads unverified and guarded.
 * 4. Per input, the maps, stack, packet and helper streams (bpf_get_prandom_u32,
 *    bpf_ktime_get_ns) are reset, then the program runs in the checked interpreter and in the
 *    JIT. The checked interpreter is `interpret` over an ExecEnv stricter than the Vm's own: it
 *    may touch the active stack frames, the packet [data, data_end), the 24-byte xdp_md (read
 *    only), each array map element's value_size bytes and each reserved ringbuf record until
 *    it is released; helper pointer arguments (keys, values, records) are checked the same way;
 *    a record still reserved at exit is a leak.
 * 5. A violation: the verifier or the load throws something other than a VerifierError, the
 *    checked interpreter raises any error (an ExecError, the 1M-insn budget, a helper misuse),
 *    a record leaks, the JIT traps, or the engines differ on r0, the packet or the map values.
 *    It is reported with the seed, the near misses the generator placed, the program's
 *    disassembly (shrunk by diff-run's `shrinkInsns` while the same violation persists) and
 *    the verifier's level-2 log.
 *
 * Blind spots of the checked interpreter: a callee may touch any byte of its callers' frames
 * (the interpreter allows every active frame), and helper pointer arguments into the stack are
 * checked against the whole program stack. The engine comparison covers some of that: the JIT
 * keeps frames apart.
 *
 * Until `verifyProgram` is implemented the verified mode refuses to run (it would check
 * nothing). The unverified mode (`--unverified`) checks the generator instead: every program
 * is loaded with `{ verify: false }`, runs the checked interpreter faults on are counted, and
 * only a fault of a program without near misses is a violation (clean idioms are meant to be
 * safe for every input), besides JIT failures and disagreements after clean runs.
 */

import { disassemble } from '../../src/asm/disassembler.js';
import { PROG_STACK_SIZE, XDP_MD, XDP_PACKET_HEADROOM, type ProgLinks } from '../../src/abi.js';
import { ExecError, isVerifierError } from '../../src/errors.js';
import {
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_map_update_elem,
  BPF_FUNC_ringbuf_discard,
  BPF_FUNC_ringbuf_reserve,
  BPF_FUNC_ringbuf_submit,
} from '../../src/helper-protos.js';
import {
  DEFAULT_INSN_BUDGET,
  type ExecEnv,
  type HelperArgs,
  type MemRegion,
} from '../../src/interp/env.js';
import { interpret } from '../../src/interp/interpreter.js';
import { BPF_EXIT_INSN, BPF_MOV64_IMM } from '../../src/isa/build.js';
import { insn, isLdImm64, type Insn } from '../../src/isa/insn.js';
import { BPF_MAX_LOOPS, BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from '../../src/isa/opcodes.js';
import { createProgram, type Program } from '../../src/program.js';
import { BPF_LOG_LEVEL2 } from '../../src/verifier/log.js';
import { verifyProgram, type LdMap, type VerifyOptions } from '../../src/verifier/verifier.js';
import type { LoadedProgram } from '../../runtime/loaded-program.js';
import type { BpfMap } from '../../runtime/maps/map.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_RINGBUF } from '../../runtime/maps/map-type.js';
import type { Vm } from '../../runtime/vm.js';
import { makeTestVm, outcome } from '../helpers/engines.js';
import { createPrng } from '../helpers/prng.js';
import { shrinkInsns } from './diff-run.js';
import {
  generateInputs,
  generateVerifierProgram,
  MAX_PACKET,
  type VerifierFuzzInput,
  type VerifierFuzzProgram,
} from './verifier-gen.js';

/** 'verified': the soundness oracle; 'unverified': every program runs, faults are counted. */
export type SoundnessMode = 'verified' | 'unverified';

/** Options of `runSoundness`. */
export interface SoundnessOptions {
  /** Inputs each accepted program runs on (default 4). */
  readonly inputs?: number;
  /** Shrink violating programs before reporting them (default true). */
  readonly minimize?: boolean;
  /**
   * Violations reported in full (shrunk, with the verifier log); later ones are listed with
   * their seed and detail only (default: all).
   */
  readonly fullReports?: number;
  readonly mode?: SoundnessMode;
  /** Share of generated programs with near misses (verifier-gen's default when absent). */
  readonly mutationRate?: number;
  /** Called before each program is checked (progress of long runs). */
  readonly onProgram?: (seed: number) => void;
}

/** A program that broke the soundness property. */
export interface Violation {
  readonly seed: number;
  readonly what: string;
  readonly detail: string;
  readonly mutations: readonly string[];
  /** The maps, in map_fd order. */
  readonly maps: string;
  readonly disasm: string;
  /** The verifier log at level 2 (its tail). */
  readonly log: string;
}

/** Totals of a soundness run. */
export interface SoundnessSummary {
  readonly mode: SoundnessMode;
  readonly programs: number;
  readonly accepted: number;
  readonly rejected: number;
  /** Accepted programs carrying a near miss the generator could not prove memory-safe. */
  readonly acceptedNearMisses: number;
  /** Runs (one input on both engines). */
  readonly runs: number;
  /** Runs the checked interpreter faulted on (each one is a violation in verified mode). */
  readonly faults: number;
  /** Rejection reasons (digits as N), most frequent first. */
  readonly reasons: readonly (readonly [string, number])[];
  readonly violations: readonly Violation[];
}

/** The message `runSoundness` throws in verified mode while the verifier is missing. */
export const VERIFIER_UNAVAILABLE =
  'verifyProgram (src/verifier/verifier.ts) is not implemented yet, so the verifier soundness ' +
  'fuzz has nothing to check (run `npm run fuzz:verifier -- --unverified` to see the generator)';

const PROGRAMS_PER_VM = 64;
const INVALID = 'the generator made an invalid program';
const LOG_TAIL_LINES = 300;

/** True once `verifyProgram` does something other than throw "not yet implemented". */
export function verifierAvailable(): boolean {
  try {
    verifyProgram(createProgram([BPF_MOV64_IMM(0, 0), BPF_EXIT_INSN()], { type: 'xdp' }));
    return true;
  } catch (e) {
    return !(e instanceof Error && /not (yet )?implemented/i.test(e.message));
  }
}

/** The bpf_get_prandom_u32 and bpf_ktime_get_ns values of the current run. */
class Streams {
  private random: readonly number[] = [0];
  private clock: readonly bigint[] = [0n];
  private r = 0;
  private c = 0;

  reset(input: VerifierFuzzInput): void {
    this.random = input.random.length > 0 ? input.random : [0];
    this.clock = input.clock.length > 0 ? input.clock : [0n];
    this.r = 0;
    this.c = 0;
  }

  nextRandom(): number {
    return this.random[this.r++ % this.random.length] as number;
  }

  nextClock(): bigint {
    return this.clock[this.c++ % this.clock.length] as bigint;
  }
}

/** A Vm whose helper streams the harness controls. */
interface Bench {
  readonly vm: Vm;
  readonly io: Streams;
}

function makeBench(): Bench {
  const io = new Streams();
  const vm = makeTestVm({ random: () => io.nextRandom(), clock: () => io.nextClock() });
  return { vm, io };
}

/** `insns` with each map lddw's fd k replaced by `ids[k - 1]`. */
function bindMaps(insns: readonly Insn[], ids: readonly number[]): Insn[] {
  return insns.map((i) => {
    if (!isLdImm64(i) || (i.src !== BPF_PSEUDO_MAP_FD && i.src !== BPF_PSEUDO_MAP_VALUE)) return i;
    return insn(i.code, i.dst, i.src, i.off, ids[i.imm - 1] ?? i.imm);
  });
}

/** What `vm.load` passes to the verifier: an LdMap per map lddw slot, the Vm's helpers. */
function verifyOptions(vm: Vm, prog: Program, logLevel = 0): VerifyOptions {
  const maps = new Map<number, LdMap>();
  prog.insns.forEach((i, idx) => {
    if (prog.ops[idx]?.kind !== 'lddw') return;
    if (i.src !== BPF_PSEUDO_MAP_FD && i.src !== BPF_PSEUDO_MAP_VALUE) return;
    const m = vm.mapById(i.imm);
    if (m === undefined) return;
    const { keySize, valueSize, maxEntries, type, id, name } = m;
    maps.set(idx, {
      map: { keySize, valueSize, maxEntries, type, id, name },
      value: i.src === BPF_PSEUDO_MAP_VALUE,
      off: prog.insns[idx + 1]?.imm ?? 0,
    });
  });
  return {
    type: 'xdp',
    maps,
    hasHelper: (id) => vm.helpers.has(id),
    ...(logLevel > 0 ? { logLevel, logSize: 1 << 24 } : {}),
  };
}

/** The verifier's level-2 log of `prog` (accepted or not), its last lines. */
function verifierLog(vm: Vm, prog: Program): string {
  let log: string;
  try {
    log = verifyProgram(prog, verifyOptions(vm, prog, BPF_LOG_LEVEL2)).log;
  } catch (e) {
    log = isVerifierError(e) ? e.log : `(the verifier threw ${String(e)})`;
  }
  const lines = log.trimEnd().split('\n');
  const cut = lines.length - LOG_TAIL_LINES;
  return (cut > 0 ? [`... (${cut} lines before)`, ...lines.slice(cut)] : lines).join('\n');
}

/** Puts maps, stack and the packet area in the state `input` starts from. */
function restore(
  vm: Vm,
  maps: readonly BpfMap[],
  images: readonly Uint8Array[],
  input: VerifierFuzzInput,
): void {
  const u8 = vm.u8();
  maps.forEach((m, k) => {
    u8.set(images[k] as Uint8Array, m.valueRegion.start);
    input.mapValues[k]?.forEach((v, e) => u8.set(v, m.valueAddr(e)));
  });
  const w = vm.worker;
  u8.fill(0, w.stackTop - PROG_STACK_SIZE, w.stackTop);
  u8.fill(0, w.packet - XDP_PACKET_HEADROOM, w.packet + MAX_PACKET + 64);
}

/** Map values and packet bytes after a run. */
function snapshot(vm: Vm, maps: readonly BpfMap[], len: number): Buffer[] {
  const u8 = vm.u8();
  const p = vm.worker.packet;
  return [
    ...maps.map((m) => Buffer.from(u8.slice(m.valueRegion.start, m.valueRegion.end))),
    Buffer.from(u8.slice(p, p + len)),
  ];
}

/** Where two snapshots differ first, or undefined. */
function stateDiff(
  maps: readonly BpfMap[],
  a: readonly Buffer[],
  b: readonly Buffer[],
): string | undefined {
  for (let k = 0; k < a.length; k++) {
    const [x, y] = [a[k] as Buffer, b[k] as Buffer];
    if (x.equals(y)) continue;
    let at = 0;
    while (x[at] === y[at]) at++;
    const what = k < maps.length ? `map ${(maps[k] as BpfMap).name} value area` : 'packet';
    const show = (z: Buffer): string => z.subarray(at, at + 16).toString('hex');
    return `${what} at byte ${at}: interp ${show(x)} / jit ${show(y)}`;
  }
  return undefined;
}

/**
 * The memory the checked interpreter lets a run touch besides its stack frames: the xdp_md
 * (read only, its fields written here as the JIT's entry writes them), the packet
 * [data, data_end) and each array map element's value.
 */
function checkedRegions(vm: Vm, maps: readonly BpfMap[], len: number): MemRegion[] {
  const w = vm.worker;
  const addr = len === 0 ? 0 : w.packet;
  const view = vm.dataView();
  for (const [field, v] of [
    ['data', addr],
    ['data_end', addr + len],
    ['data_meta', addr],
    ['ingress_ifindex', 1],
    ['rx_queue_index', 0],
    ['egress_ifindex', 0],
  ] as const)
    view.setUint32(w.ctx + XDP_MD[field], v, true);
  const regions: MemRegion[] = [
    { start: w.ctx, end: w.ctx + XDP_MD.size, writable: false, name: 'ctx' },
  ];
  if (len > 0) regions.push({ start: addr, end: addr + len, writable: true, name: 'packet' });
  for (const m of maps) {
    if (m.type !== BPF_MAP_TYPE_ARRAY) continue;
    for (let e = 0; e < m.maxEntries; e++) {
      const start = m.valueAddr(e);
      regions.push({ start, end: start + m.valueSize, writable: true, name: `${m.name}[${e}]` });
    }
  }
  return regions;
}

/**
 * The Vm's helpers, with their pointer arguments checked against `regions` and the program
 * stack (keys, values, released records) and each reserved ringbuf record added to `regions`
 * (and to `records`) until it is released. Misuse raises ExecError 'helper'.
 */
function checkedHelpers(
  vm: Vm,
  maps: readonly BpfMap[],
  regions: MemRegion[],
  records: Map<number, MemRegion>,
): (id: number, args: HelperArgs) => bigint {
  const w = vm.worker;
  const readable = (ptr: bigint, n: number): boolean => {
    const a = Number(ptr);
    if (ptr > 0xffffffffn) return false;
    if (a >= w.progStackLimit && a + n <= w.stackTop) return true;
    return regions.some((r) => a >= r.start && a + n <= r.end);
  };
  return (id, args) => {
    const fail = (why: string): never => {
      throw new ExecError(null, 'helper', `checked helper #${id}: ${why}`);
    };
    const map = maps.find((m) => BigInt(m.addr) === args[0]);
    if (id === BPF_FUNC_map_lookup_elem || id === BPF_FUNC_map_update_elem) {
      if (map === undefined || map.type !== BPF_MAP_TYPE_ARRAY) fail('r1 is not an array map');
      const m = map as BpfMap;
      if (!readable(args[1], m.keySize)) fail(`key r2=0x${args[1].toString(16)} out of bounds`);
      if (id === BPF_FUNC_map_update_elem && !readable(args[2], m.valueSize))
        fail(`value r3=0x${args[2].toString(16)} (${m.valueSize} bytes) out of bounds`);
    }
    if (id === BPF_FUNC_ringbuf_reserve && map?.type !== BPF_MAP_TYPE_RINGBUF)
      fail('r1 is not a ringbuf');
    if (id === BPF_FUNC_ringbuf_submit || id === BPF_FUNC_ringbuf_discard) {
      const rec = records.get(Number(args[0]));
      if (rec === undefined) fail(`r1=0x${args[0].toString(16)} is not a reserved record`);
      records.delete(Number(args[0]));
      regions.splice(regions.indexOf(rec as MemRegion), 1);
    }
    const r0 = vm.callHelper(id, args);
    if (id === BPF_FUNC_ringbuf_reserve && r0 !== 0n) {
      const [start, end] = [Number(r0), Number(r0) + Number(args[1])];
      const rec = { start, end, writable: true, name: 'ringbuf record' };
      records.set(start, rec);
      regions.push(rec);
    }
    return r0;
  };
}

/**
 * Runs `prog` once in the checked interpreter (see the file header) on the packet already in
 * place; returns its outcome, as engines.ts `outcome` prints it, and the records it leaked.
 */
function runChecked(
  vm: Vm,
  prog: Program,
  links: ProgLinks,
  maps: readonly BpfMap[],
  len: number,
): { result: string; leaked: number } {
  const w = vm.worker;
  const regions = checkedRegions(vm, maps, len);
  const records = new Map<number, MemRegion>();
  const env: ExecEnv = {
    memory: () => vm.u8(),
    regions,
    stackTop: w.stackTop,
    stackLimit: w.progStackLimit,
    links,
    callHelper: checkedHelpers(vm, maps, regions, records),
    callKfunc: (slot, args) => vm.callKfunc(slot, args),
    resolveToken: (token) => vm.resolveToken(token),
    insnBudget: DEFAULT_INSN_BUDGET,
    mayGotoBudget: BPF_MAX_LOOPS,
    packet: len > 0 ? { addr: w.packet, len } : undefined,
  };
  return { result: guarded(() => interpret(prog, env, BigInt(w.ctx), 0n)), leaked: records.size };
}

/** `outcome`, with anything that is not a BpfError reported as a crash instead of thrown. */
function guarded(run: () => bigint): string {
  try {
    return outcome(run);
  } catch (e) {
    return `crash ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`;
  }
}

/** Whether the generator placed a near miss it could not prove memory-safe. */
const hasNearMiss = (gen: VerifierFuzzProgram): boolean =>
  gen.mutations.some((m) => !m.endsWith('(memory-safe)'));

/** The verdict on one program, what went wrong if anything, and the run counts. */
interface Checked {
  readonly accepted: boolean;
  readonly reason?: string;
  readonly problem?: { readonly what: string; readonly detail: string };
  readonly prog?: Program;
  readonly runs: number;
  readonly faults: number;
}

/** Verifies `insns` (the generator's program or a shrunk one) and runs it on `inputs`. */
async function checkProgram(
  bench: Bench,
  gen: VerifierFuzzProgram,
  insns: readonly Insn[],
  inputs: readonly VerifierFuzzInput[],
  mode: SoundnessMode,
): Promise<Checked> {
  const { vm } = bench;
  const maps = gen.maps.map((m) => vm.createMap({ ...m }));
  const ids = maps.map((m) => m.id);
  let prog: Program;
  try {
    prog = createProgram(bindMaps(insns, ids), { type: 'xdp', name: 'vfuzz' });
  } catch (e) {
    return { accepted: false, problem: { what: INVALID, detail: String(e) }, runs: 0, faults: 0 };
  }
  if (mode === 'verified') {
    try {
      verifyProgram(prog, verifyOptions(vm, prog));
    } catch (e) {
      if (isVerifierError(e))
        return { accepted: false, reason: e.reason, prog, runs: 0, faults: 0 };
      const what = 'the verifier threw something other than a VerifierError';
      return { accepted: false, problem: { what, detail: String(e) }, prog, runs: 0, faults: 0 };
    }
  }
  let jit: LoadedProgram;
  try {
    jit = await (mode === 'verified' ? vm.load(prog) : vm.load(prog, { verify: false }));
  } catch (e) {
    const what = 'vm.load refused a program verifyProgram accepted';
    return { accepted: true, problem: { what, detail: String(e) }, prog, runs: 0, faults: 0 };
  }
  return { accepted: true, prog, ...runInputs(bench, gen, jit, maps, inputs, mode) };
}

/** Runs a loaded program on each input in the checked interpreter and in the JIT. */
function runInputs(
  bench: Bench,
  gen: VerifierFuzzProgram,
  jit: LoadedProgram,
  maps: readonly BpfMap[],
  inputs: readonly VerifierFuzzInput[],
  mode: SoundnessMode,
): Pick<Checked, 'problem' | 'runs' | 'faults'> {
  const { vm, io } = bench;
  const images = maps.map((m) => vm.u8().slice(m.valueRegion.start, m.valueRegion.end));
  let [runs, faults] = [0, 0];
  const fail = (what: string, detail: string): Pick<Checked, 'problem' | 'runs' | 'faults'> => ({
    problem: { what, detail },
    runs,
    faults,
  });
  for (const input of inputs) {
    runs++;
    const len = input.packet.length;
    const bytes = Buffer.from(input.packet.subarray(0, 64)).toString('hex');
    const what = `input: packet of ${len} bytes ${bytes}${len > 64 ? '...' : ''}`;
    restore(vm, maps, images, input);
    io.reset(input);
    vm.u8().set(input.packet, vm.worker.packet);
    const a = runChecked(vm, jit.program, jit.links, maps, len);
    if (!a.result.startsWith('r0=')) {
      faults++;
      if (mode === 'unverified' && hasNearMiss(gen)) continue;
      const why = mode === 'verified' ? '' : ' on a program without near misses (a generator bug)';
      return fail(`the checked interpreter failed${why}`, `${a.result}\n  ${what}`);
    }
    if (a.leaked > 0 && (mode === 'verified' || !hasNearMiss(gen)))
      return fail('a ringbuf record was never released', `${a.leaked} record(s)\n  ${what}`);
    const sa = snapshot(vm, maps, len);
    restore(vm, maps, images, input);
    io.reset(input);
    const b = guarded(() => jit.run(input.packet));
    if (!b.startsWith('r0=')) return fail('the JIT failed', `${b}\n  ${what}`);
    const diff =
      a.result !== b
        ? `r0: interp ${a.result} / jit ${b}`
        : stateDiff(maps, sa, snapshot(vm, maps, len));
    if (diff !== undefined) return fail('the engines disagree', `${diff}\n  ${what}`);
  }
  return { runs, faults };
}

/** Checks on a fresh Vm (map fds 1, 2, ... as the generator wrote them). */
async function checkFresh(
  gen: VerifierFuzzProgram,
  insns: readonly Insn[],
  inputs: readonly VerifierFuzzInput[],
  mode: SoundnessMode,
  withLog = false,
): Promise<Checked & { log?: string }> {
  const bench = makeBench();
  try {
    const c = await checkProgram(bench, gen, insns, inputs, mode);
    return withLog && c.prog !== undefined ? { ...c, log: verifierLog(bench.vm, c.prog) } : c;
  } finally {
    bench.vm.close();
  }
}

/** The report of a violation: shrunk (while the same violation persists) and re-checked. */
async function describe(
  seed: number,
  gen: VerifierFuzzProgram,
  inputs: readonly VerifierFuzzInput[],
  mode: SoundnessMode,
  first: { readonly what: string; readonly detail: string },
  minimize: boolean,
): Promise<Violation> {
  let insns: readonly Insn[] = gen.insns;
  // without the verifier, shrinking keeps faults of broken programs (say, without r6 = ctx)
  if (minimize && mode === 'verified' && first.what !== INVALID) {
    insns = await shrinkInsns(insns, async (trial) => {
      const c = await checkFresh(gen, trial, inputs, mode);
      return c.problem?.what === first.what;
    });
  }
  const final = await checkFresh(gen, insns, inputs, mode, true);
  const problem = final.problem ?? {
    what: first.what,
    detail: `${first.detail}\n  (not reproduced on a fresh Vm: it depends on what ran before it)`,
  };
  return {
    seed,
    what: problem.what,
    detail: problem.detail,
    mutations: gen.mutations,
    maps: gen.maps
      .map(
        (m, k) =>
          `map_fd ${k + 1}: ${m.name} type ${m.type} key ${m.keySize} value ${m.valueSize} entries ${m.maxEntries}`,
      )
      .join('\n'),
    disasm:
      insns === gen.insns
        ? disassemble(insns, { syntax: 'asm', showIndex: true })
        : disassemble(insns, { syntax: 'asm', showIndex: true })
            .split('\n')
            .filter((l) => !l.startsWith('ja +0 #'))
            .join('\n') + '(the shrinker replaced the instructions not shown by ja +0)\n',
    log: mode === 'verified' ? (final.log ?? '') : '(unverified mode)',
  };
}

/**
 * Generates and checks `count` programs from seeds `seed`, `seed + 1`, ...
 *
 * @example
 * const s = await runSoundness(1, 100);
 * s.violations.length; // 0
 */
export async function runSoundness(
  seed: number,
  count: number,
  opts: SoundnessOptions = {},
): Promise<SoundnessSummary> {
  const mode = opts.mode ?? 'verified';
  if (mode === 'verified' && !verifierAvailable()) throw new Error(VERIFIER_UNAVAILABLE);
  const genOpts = opts.mutationRate === undefined ? {} : { mutationRate: opts.mutationRate };
  const violations: Violation[] = [];
  const reasons = new Map<string, number>();
  let [accepted, nearMisses, runs, faults] = [0, 0, 0, 0];
  let bench = makeBench();
  try {
    for (let k = 0; k < count; k++) {
      if (k > 0 && k % PROGRAMS_PER_VM === 0) {
        bench.vm.close();
        bench = makeBench();
      }
      const s = seed + k;
      opts.onProgram?.(s);
      const rng = createPrng(s);
      const gen = generateVerifierProgram(rng, genOpts);
      const inputs = generateInputs(rng, gen, opts.inputs ?? 4);
      const c = await checkProgram(bench, gen, gen.insns, inputs, mode);
      runs += c.runs;
      faults += c.faults;
      if (c.accepted) {
        accepted++;
        if (hasNearMiss(gen)) nearMisses++;
      } else if (c.reason !== undefined) {
        const r = c.reason.replace(/\d+/g, 'N').slice(0, 100);
        reasons.set(r, (reasons.get(r) ?? 0) + 1);
      }
      if (c.problem === undefined) continue;
      // an unguarded JIT run may have written anywhere in this Vm's memory
      bench.vm.close();
      bench = makeBench();
      if (violations.length < (opts.fullReports ?? Infinity)) {
        violations.push(await describe(s, gen, inputs, mode, c.problem, opts.minimize ?? true));
      } else
        violations.push({
          seed: s,
          ...c.problem,
          mutations: gen.mutations,
          maps: '',
          disasm: '',
          log: '',
        });
    }
  } finally {
    bench.vm.close();
  }
  return {
    mode,
    programs: count,
    accepted,
    rejected: count - accepted,
    acceptedNearMisses: nearMisses,
    runs,
    faults,
    reasons: [...reasons].sort((a, b) => b[1] - a[1]),
    violations,
  };
}

/** A readable report of one violation. */
export function formatViolation(v: Violation): string {
  return [
    `seed ${v.seed}: ${v.what}`,
    `  ${v.detail}`,
    `  near misses placed: ${v.mutations.length > 0 ? v.mutations.join('; ') : 'none'}`,
    v.maps,
    'program (xdp):',
    v.disasm.trimEnd(),
    'verifier log (level 2):',
    v.log,
  ].join('\n');
}

/** One paragraph of totals: the accept ratio, the run counts and the top rejection reasons. */
export function formatSummary(seed: number, s: SoundnessSummary): string {
  const pct = (n: number): string => `${((100 * n) / Math.max(1, s.programs)).toFixed(1)}%`;
  const head =
    s.mode === 'verified'
      ? `seed ${seed}: ${s.programs} programs, ${s.accepted} accepted (${pct(s.accepted)}; ${s.acceptedNearMisses} with near misses), ${s.rejected} rejected; ${s.runs} runs; ${s.violations.length} violations`
      : `seed ${seed} (unverified): ${s.programs} programs, ${s.runs} runs, ${s.faults} faulted in the checked interpreter; ${s.violations.length} problems`;
  const top = s.reasons.slice(0, 10).map(([r, n]) => `  ${String(n).padStart(5)}  ${r}`);
  const seeds = s.violations.map(
    (v) => `  seed ${v.seed}: ${v.what} (${v.detail.split('\n')[0] ?? ''})`,
  );
  return [
    head,
    ...(top.length > 0 ? ['top rejection reasons:', ...top] : []),
    ...(seeds.length > 0 ? ['violations:', ...seeds] : []),
  ].join('\n');
}
