/**
 * A seeded generator of XDP programs that are plausibly verifiable but edgy, for the verifier
 * soundness fuzz (test/fuzz/verifier-soundness.ts). A program is a sequence of idioms real
 * programs use and the verifier must reason about exactly: scalars derived from unknown sources
 * (packet and map bytes, ctx fields, bpf_get_prandom_u32, bpf_ktime_get_ns) through ALU chains
 * (32/64 bit, every op), bounds checks in many forms (unsigned, signed with a lower bound, JMP32,
 * immediate or register, either branch direction) before variable-offset accesses to the stack,
 * map values, ringbuf records and a caller's stack, `data + N > data_end` packet checks, ctx
 * loads, spills and fills, bounded loops, branches the verifier must prove dead, diamonds that
 * exercise state pruning, local calls with stack pointer arguments, bpf_loop callbacks, map
 * updates and ringbuf reserve/submit.
 *
 * Near misses: about half of the programs get one or two deliberate mutations (off-by-one
 * bound, missing null check, signed bound without a lower bound, JMP32 bound on a 64-bit value,
 * bound overwritten after its check, partly overwritten spill, use after release, ...), listed
 * in `mutations`, so that many programs are rejected and the accepted ones sit at the edge;
 * those no input can make unsafe (they break only a verifier rule) end in "(memory-safe)".
 * Scalar sources have small exact domains (a byte, a mask of at most 8 bits, a constant), so the
 * generator evaluates every derived value with the interpreter's ALU semantics
 * (src/interp/alu.ts): clean bounds are tight for the interval the check proves, and for a
 * mutated site it records input hints (packet and map bytes, random and clock values, packet
 * lengths) that drive the unsafe path when one exists. What the generator believes never decides
 * a verdict: the harness judges programs only by what the checked interpreter observes.
 *
 * Conventions: the entry's r6 holds the ctx (a callee's r6 its pointer argument), r9 collects
 * scalars that end in r0 (low 32 bits) and in the result map (map_fd 1, all 64 bits); r7 and r8
 * are callee-saved temporaries of one idiom; a bpf_loop callback keeps its index at r10 - 8.
 * A program either makes no calls and uses its whole frame, or calls and keeps its call chains
 * within the kernel's 512 combined stack bytes (256 + 128 + 64). Map fds are 1-based indexes
 * into `maps`.
 */

import { insn, type Insn } from '../../src/isa/insn.js';
import {
  BPF_ALU32_IMM,
  BPF_ALU64_IMM,
  BPF_ALU64_REG,
  BPF_ATOMIC_OP,
  BPF_EMIT_CALL,
  BPF_EXIT_INSN,
  BPF_JMP_A,
  BPF_LD_IMM64,
  BPF_LD_IMM64_RAW,
  BPF_LD_MAP_FD,
  BPF_LDX_MEM,
  BPF_LDX_MEMSX,
  BPF_MOV32_REG,
  BPF_MOV64_IMM,
  BPF_MOV64_REG,
  BPF_ST_MEM,
  BPF_STX_MEM,
} from '../../src/isa/build.js';
import {
  BPF_ADD,
  BPF_AND,
  BPF_B,
  BPF_DW,
  BPF_H,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_K,
  BPF_LSH,
  BPF_MUL,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_VALUE,
  BPF_SUB,
  BPF_W,
  BPF_X,
  BPF_XOR,
  CALL,
} from '../../src/isa/opcodes.js';
import {
  OP_TABLE,
  type AluOp,
  type JmpCond,
  type OpInfo,
  type Width,
} from '../../src/isa/table.js';
import { aluOp, endian, immU64, jmpCond, movsx } from '../../src/interp/alu.js';
import {
  BPF_FUNC_get_prandom_u32,
  BPF_FUNC_ktime_get_ns,
  BPF_FUNC_loop,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_map_update_elem,
  BPF_FUNC_ringbuf_discard,
  BPF_FUNC_ringbuf_reserve,
  BPF_FUNC_ringbuf_submit,
} from '../../src/helper-protos.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_RINGBUF } from '../../runtime/maps/map-type.js';
import type { Prng } from '../helpers/prng.js';
import { EDGE_IMMS } from './prog-gen.js';

/** A map the program uses; map_fd k names `maps[k - 1]`. */
export interface GenMap {
  readonly name: string;
  readonly type: number;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
}

/** Input values that drive a program down a path (byte values for 'pkt' and 'map'). */
export type InputHint =
  | { readonly where: 'pkt'; readonly off: number; readonly values: readonly bigint[] }
  | {
      readonly where: 'map';
      readonly map: number;
      readonly elem: number;
      readonly off: number;
      readonly values: readonly bigint[];
    }
  | { readonly where: 'random' | 'clock' | 'len'; readonly values: readonly bigint[] };

/** A generated program. */
export interface VerifierFuzzProgram {
  readonly insns: Insn[];
  readonly maps: readonly GenMap[];
  readonly hints: readonly InputHint[];
  /** The near misses placed in it, as `site: mutation`. */
  readonly mutations: readonly string[];
}

/** One run's inputs: packet, initial array map values, helper return streams. */
export interface VerifierFuzzInput {
  readonly packet: Uint8Array;
  /** Per map (by index): each element's value for array maps other than the result map. */
  readonly mapValues: readonly (readonly Uint8Array[] | undefined)[];
  /** What bpf_get_prandom_u32 returns, in order (cycled). */
  readonly random: readonly number[];
  /** What bpf_ktime_get_ns returns, in order (cycled). */
  readonly clock: readonly bigint[];
}

/** Options of `generateVerifierProgram`. */
export interface VerifierGenOptions {
  /** Share of programs that get near-miss mutations (default 0.5). */
  readonly mutationRate?: number;
}

/** Largest packet an input has. */
export const MAX_PACKET = 256;
const CTX = 6;
const T1 = 7;
const T2 = 8;
const ACC = 9;
const FP = 10;
const SIZES = [1, 2, 4, 8] as const;
const SIZE_BITS: Readonly<Record<number, number>> = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW };
const COND_OP: Readonly<Record<JmpCond, number>> = {
  eq: BPF_JEQ,
  gt: BPF_JGT,
  ge: BPF_JGE,
  set: BPF_JSET,
  ne: BPF_JNE,
  sgt: BPF_JSGT,
  sge: BPF_JSGE,
  lt: BPF_JLT,
  le: BPF_JLE,
  slt: BPF_JSLT,
  sle: BPF_JSLE,
};
const NEG_COND: Readonly<Record<JmpCond, JmpCond>> = {
  eq: 'ne',
  ne: 'eq',
  gt: 'le',
  le: 'gt',
  ge: 'lt',
  lt: 'ge',
  sgt: 'sle',
  sle: 'sgt',
  sge: 'slt',
  slt: 'sge',
  set: 'set', // never inverted
};
const ALL_CONDS = Object.keys(COND_OP) as JmpCond[];
type AluInfo = OpInfo & { kind: 'alu' };
const ALU_IMM = OP_TABLE.filter((o): o is AluInfo => o.kind === 'alu' && o.source === 'imm');
const ALU_REG = OP_TABLE.filter(
  (o): o is AluInfo => o.kind === 'alu' && o.source === 'reg' && o.op !== 'mov',
);
const END_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'end' } => o.kind === 'end');
const MOVSX_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'movsx' } => o.kind === 'movsx');
const BYTES: readonly bigint[] = [...Array(256).keys()].map(BigInt);
const cmp = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// Scalar steps: one instruction on one register, with its exact semantics.

/** `reg = reg OP imm`, a byte swap, a movsx, or `reg |= (reg & 1) << 32` (JMP32 near misses). */
type Step =
  | { readonly kind: 'alu'; readonly info: AluInfo; readonly imm: number }
  | { readonly kind: 'end'; readonly info: OpInfo & { kind: 'end' } }
  | { readonly kind: 'movsx'; readonly info: OpInfo & { kind: 'movsx' } }
  | { readonly kind: 'hi32' };

function applyStep(s: Step, v: bigint): bigint {
  switch (s.kind) {
    case 'alu':
      return aluOp(s.info.op, s.info.width, v, immU64(s.imm));
    case 'end':
      return endian(s.info.order, s.info.bits, v);
    case 'movsx':
      return movsx(s.info.width, s.info.bits, v);
    case 'hi32':
      return v | ((v & 1n) << 32n);
    default: {
      const never: never = s;
      return never;
    }
  }
}

const applySteps = (steps: readonly Step[], v: bigint): bigint =>
  steps.reduce((x, s) => applyStep(s, x), v);

/** The instructions of `s` on `reg` (`tmp` is scratch for 'hi32'). */
function stepInsns(s: Step, reg: number, tmp: number): Insn[] {
  switch (s.kind) {
    case 'alu':
      return [insn(s.info.code, reg, 0, s.info.off ?? 0, s.info.op === 'neg' ? 0 : s.imm)];
    case 'end':
      return [insn(s.info.code, reg, 0, 0, s.info.imm)];
    case 'movsx':
      return [insn(s.info.code, reg, reg, s.info.off, 0)];
    case 'hi32':
      return [
        BPF_MOV64_REG(tmp, reg),
        BPF_ALU64_IMM(BPF_AND, tmp, 1),
        BPF_ALU64_IMM(BPF_LSH, tmp, 32),
        BPF_ALU64_REG(BPF_OR, reg, tmp),
      ];
    default: {
      const never: never = s;
      return never;
    }
  }
}

function aluStep(op: AluOp, width: Width, imm: number): Step {
  const info = ALU_IMM.find((o) => o.op === op && o.width === width);
  if (info === undefined) throw new Error(`verifier-gen: no ${op}${width} opcode`);
  return { kind: 'alu', info, imm };
}

/** The 64-bit `v` as an s32 immediate of a `width` operation, when one can express it. */
function immOf(v: bigint, width: Width): number | undefined {
  const imm = Number(BigInt.asIntN(32, v));
  if (width === 32) return imm;
  return immU64(imm) === BigInt.asUintN(64, v) ? imm : undefined;
}

/** Every subset of the bits of `mask`. */
function subsets(mask: number): bigint[] {
  let out = [0n];
  for (let b = 0n; b < 32n; b++)
    if ((BigInt(mask) >> b) & 1n) out = out.flatMap((v) => [v, v | (1n << b)]);
  return out;
}

/** `if !(reg cond k) goto skip`, i.e. a value passes when `cond` is false. */
interface Check {
  readonly cond: JmpCond;
  readonly width: Width;
  readonly k: bigint;
  /** Compare with r5 = k instead of an immediate. */
  readonly viaReg: boolean;
  /** Emit `if !cond goto use; ja skip; use:` instead of `if cond goto skip`. */
  readonly inverted: boolean;
}

const passes = (checks: readonly Check[], v: bigint): boolean =>
  checks.every((c) => !jmpCond(c.cond, c.width, v, c.k));

/** What a source of scalars can produce, and how to make inputs produce given values. */
interface Source {
  readonly domain: readonly bigint[];
  readonly hint: (srcValues: readonly bigint[]) => void;
}

/** A value in `reg` with (source value, value) pairs over the source's whole domain. */
interface Derived {
  readonly reg: number;
  readonly pairs: readonly (readonly [bigint, bigint])[];
  /** Records input hints that make the source produce `srcValues`. */
  readonly hint: (srcValues: readonly bigint[]) => void;
}

/** What a function's body may use. */
interface FnEnv {
  readonly hasCtx: boolean;
  /** Deepest stack byte it may use: call chains share the kernel's 512 bytes. */
  readonly stack: number;
  /** Bytes at the top of the frame kept for a bpf_loop callback's index (at r10 - 8). */
  readonly top: number;
  /** Bytes r6 may touch (a caller's stack area), or 0. */
  readonly argSize: number;
  /** Values the callback index takes ([0, loops)), or 0 outside callbacks. */
  readonly loops: number;
  readonly depth: number;
}

/** A memory area `varAccess` indexes. */
interface Region {
  readonly name: string;
  readonly minSize: number;
  readonly maxSize: number;
  /** Its size is given (a callee's argument) rather than chosen to fit the index. */
  readonly fixed: boolean;
  /** Accesses must be aligned to their size (the stack). */
  readonly align: boolean;
  /**
   * Emits code pointing a register at an area of `bytes` (jumping to `out` when there is none);
   * returns it and the offsets [lo, hi) outside which the checked interpreter faults.
   */
  readonly setup: (bytes: number, out: number) => { ptr: number; lo: bigint; hi: bigint };
  /** Emits what every path past the access needs (a ringbuf submit). */
  readonly teardown?: (ptr: number) => void;
}

// ---------------------------------------------------------------------------------------------
// One function's code, with labels.

class Fn {
  readonly insns: Insn[] = [];
  readonly env: FnEnv;
  /** Out-of-line blocks, emitted after the function's final exit. */
  readonly tails: (() => void)[] = [];
  private readonly bound: (number | undefined)[] = [];
  private readonly fixups: { at: number; label: number }[] = [];

  constructor(env: FnEnv) {
    this.env = env;
  }

  emit(...code: (Insn | Insn[])[]): void {
    for (const c of code) this.insns.push(...(Array.isArray(c) ? c : [c]));
  }

  label(): number {
    return this.bound.push(undefined) - 1;
  }

  bind(label: number): void {
    this.bound[label] = this.insns.length;
  }

  ja(label: number): void {
    this.fixups.push({ at: this.insns.length, label });
    this.insns.push(BPF_JMP_A(0));
  }

  /** `if (dst cond operand) goto label`. */
  jcc(
    cond: JmpCond,
    width: Width,
    dst: number,
    operand: { reg: number } | { imm: number },
    label: number,
  ): void {
    const cls = (width === 64 ? BPF_JMP : BPF_JMP32) | COND_OP[cond];
    this.fixups.push({ at: this.insns.length, label });
    this.insns.push(
      'reg' in operand
        ? insn(cls | BPF_X, dst, operand.reg, 0, 0)
        : insn(cls | BPF_K, dst, 0, 0, operand.imm),
    );
  }

  /**
   * A stack area of `bytes`: returns B, the area being [r10 - B, r10 - B + bytes), 8-aligned,
   * often right below the frame pointer or at the deepest byte allowed. Areas overlap freely:
   * every idiom initialises what it reads.
   */
  slot(bytes: number, rng: Prng): number {
    const lo = Math.ceil(bytes / 8) * 8 + this.env.top;
    const hi = Math.max(lo, this.env.stack);
    if (rng.bool(0.25)) return lo;
    if (rng.bool(0.15)) return hi;
    return lo + 8 * rng.int((hi - lo) / 8 + 1);
  }

  finish(): Insn[] {
    for (const t of this.tails) t();
    for (const f of this.fixups) {
      const target = this.bound[f.label];
      if (target === undefined) throw new Error('verifier-gen: unbound label');
      const old = this.insns[f.at] as Insn;
      this.insns[f.at] = insn(old.code, old.dst, old.src, target - (f.at + 1), old.imm);
    }
    return this.insns;
  }
}

// ---------------------------------------------------------------------------------------------
// The generator.

class VerifierGen {
  readonly maps: GenMap[] = [];
  readonly hints: InputHint[] = [];
  readonly mutations: string[] = [];
  private readonly rng: Prng;
  private readonly funcs: Fn[] = [];
  /** Slots (function, insn) whose imm must reach function `target`. */
  private readonly calls: { func: number; at: number; target: number }[] = [];
  private mutationsLeft: number;
  private fn: Fn;
  private fnIndex = 0;

  constructor(rng: Prng, opts: VerifierGenOptions) {
    this.rng = rng;
    this.mutationsLeft = rng.bool(opts.mutationRate ?? 0.5) ? 1 + (rng.bool(0.2) ? 1 : 0) : 0;
    // a program either calls (and its frames share 512 bytes) or uses its whole frame
    const calls = rng.bool(0.6);
    this.fn = new Fn({
      hasCtx: true,
      stack: calls ? 256 : 512,
      top: 0,
      argSize: 0,
      loops: 0,
      depth: calls ? 0 : 2,
    });
  }

  /**
   * Whether `site` gets one of `kinds` as its mutation (then recorded as `site: kind`); `weight`
   * scales the chance for sites that are frequent or rarely unsafe.
   */
  private mutation<K extends string>(site: string, kinds: readonly K[], weight = 1): K | undefined {
    if (this.mutationsLeft === 0 || kinds.length === 0 || !this.rng.bool(0.45 * weight))
      return undefined;
    this.mutationsLeft--;
    const k = this.rng.pick(kinds);
    this.mutations.push(`${site}: ${k}`);
    return k;
  }

  /** Marks the last mutation as one no input makes unsafe (only the verifier can tell). */
  private benign(): void {
    const last = this.mutations.length - 1;
    if (last >= 0 && !(this.mutations[last] as string).endsWith(')'))
      this.mutations[last] += ' (memory-safe)';
  }

  program(): Insn[] {
    this.arrayMap(8, 1, true); // map_fd 1: the result
    const main = this.fn;
    this.funcs.push(main);
    main.emit(BPF_MOV64_REG(CTX, 1), BPF_MOV64_IMM(ACC, 0));
    for (let k = 2 + this.rng.int(6); k > 0; k--) this.idiom();
    main.emit(
      BPF_LD_IMM64_RAW(1, BPF_PSEUDO_MAP_VALUE, 1n),
      BPF_STX_MEM(BPF_DW, 1, ACC, 0),
      BPF_MOV32_REG(0, ACC),
      BPF_EXIT_INSN(),
    );
    const bodies = this.funcs.map((f) => f.finish());
    const starts = bodies.map((_, k) => bodies.slice(0, k).reduce((n, b) => n + b.length, 0));
    const insns = bodies.flat();
    for (const c of this.calls) {
      const idx = (starts[c.func] as number) + c.at;
      const old = insns[idx] as Insn;
      const rel = (starts[c.target] as number) - (idx + 1);
      insns[idx] = insn(old.code, old.dst, old.src, old.off, rel);
    }
    return insns;
  }

  /** Builds a new function with `body`; returns its index. */
  private subprog(env: FnEnv, body: (fn: Fn) => void): number {
    const [saved, savedIndex] = [this.fn, this.fnIndex];
    const index = this.funcs.push(new Fn(env)) - 1;
    [this.fn, this.fnIndex] = [this.funcs[index] as Fn, index];
    body(this.fn);
    [this.fn, this.fnIndex] = [saved, savedIndex];
    return index;
  }

  /** A map_fd of an array map with values of `valueSize` (often an existing one). */
  private arrayMap(valueSize: number, maxEntries: number, fresh = false): number {
    const known = this.maps.findIndex(
      (m, k) => k > 0 && m.type === BPF_MAP_TYPE_ARRAY && m.valueSize === valueSize,
    );
    if (known >= 0 && !fresh && this.rng.bool(0.7)) return known + 1;
    const name = `arr${this.maps.length + 1}`;
    this.maps.push({ name, type: BPF_MAP_TYPE_ARRAY, keySize: 4, valueSize, maxEntries });
    return this.maps.length;
  }

  private ringbufMap(): number {
    const known = this.maps.findIndex((m) => m.type === BPF_MAP_TYPE_RINGBUF);
    if (known >= 0) return known + 1;
    const type = BPF_MAP_TYPE_RINGBUF;
    this.maps.push({ name: 'rb', type, keySize: 0, valueSize: 0, maxEntries: 4096 });
    return this.maps.length;
  }

  private mapOf(fd: number): GenMap {
    return this.maps[fd - 1] as GenMap;
  }

  /** Emits `*(u32 *)(r10 - B) = elem; r2 = r10 - B; r1 = map; call bpf_map_lookup_elem`. */
  private lookup(fd: number, elem: number): void {
    const b = this.fn.slot(4, this.rng);
    this.fn.emit(BPF_ST_MEM(BPF_W, FP, -b, elem), BPF_MOV64_REG(2, FP));
    this.fn.emit(BPF_ALU64_IMM(BPF_ADD, 2, -b), BPF_LD_MAP_FD(1, fd));
    this.fn.emit(BPF_EMIT_CALL(BPF_FUNC_map_lookup_elem));
  }

  // -------------------------------------------------------------------------------------------
  // Idioms

  private idiom(): void {
    const env = this.fn.env;
    const table: [number, () => void][] = [
      [10, () => this.aluToAcc()],
      [8, () => this.deadBranch()],
      [12, () => this.varAccess(this.stackRegion())],
      [10, () => this.varAccess(this.mapRegion())],
      [4, () => this.varAccess(this.ringbufRegion())],
      [4, () => this.directValue()],
      [5, () => this.spillFill()],
      [5, () => this.diamond()],
      [4, () => this.mapUpdate()],
      [5, () => this.loop()],
    ];
    if (env.hasCtx) {
      table.push([10, () => this.packetConst()], [6, () => this.packetVarOff()]);
      table.push([5, () => this.ctxLoad()]);
    }
    if (env.argSize > 0) table.push([10, () => this.varAccess(this.argRegion())]);
    if (env.depth < 2) table.push([5, () => this.localCall()], [4, () => this.bpfLoop()]);
    let roll = this.rng.int(table.reduce((s, [w]) => s + w, 0));
    for (const [w, f] of table) {
      if (roll < w) return f();
      roll -= w;
    }
  }

  /** A scalar from an unknown (or constant) source in `reg` (r7 or r8), through ALU steps. */
  private derive(reg: number, style: 'friendly' | 'wild'): Derived {
    const src = this.source(reg, style);
    const steps: Step[] = [];
    for (let k = style === 'friendly' ? this.rng.int(3) : 1 + this.rng.int(5); k > 0; k--)
      steps.push(style === 'friendly' ? this.friendlyStep() : this.wildStep());
    for (const s of steps) this.fn.emit(stepInsns(s, reg, 5));
    const pairs = src.domain.map((v) => [v, applySteps(steps, v)] as const);
    return { reg, pairs, hint: src.hint };
  }

  /** Emits a source of unknown (or constant) value into `reg`; returns its domain and hints. */
  private source(reg: number, style: 'friendly' | 'wild'): Source {
    const r = this.rng;
    const fn = this.fn;
    const none = (): void => undefined;
    const kinds = ['random', 'ktime', 'map8', 'const'];
    if (fn.env.hasCtx) kinds.push('pkt8', 'pkt8', 'ctx');
    if (fn.env.argSize > 0) kinds.push('arg8');
    if (fn.env.loops > 0) kinds.push('index', 'index', 'index');
    const kind = r.pick(kinds);
    if (kind === 'pkt8') return this.packetByte(reg);
    if (kind === 'map8') return this.mapByte(reg);
    if (kind === 'random' || kind === 'ktime') {
      const mask = this.smallMask();
      fn.emit(BPF_EMIT_CALL(kind === 'random' ? BPF_FUNC_get_prandom_u32 : BPF_FUNC_ktime_get_ns));
      const and = r.bool(0.3) ? BPF_ALU32_IMM : BPF_ALU64_IMM;
      fn.emit(BPF_MOV64_REG(reg, 0), and(BPF_AND, reg, mask));
      const where = kind === 'random' ? 'random' : 'clock';
      return { domain: subsets(mask), hint: (v) => this.hints.push({ where, values: v }) };
    }
    if (kind === 'ctx') {
      const mask = this.smallMask();
      const field = r.pick([12, 16, 20]);
      fn.emit(BPF_LDX_MEM(BPF_W, reg, CTX, field), BPF_ALU64_IMM(BPF_AND, reg, mask));
      return { domain: subsets(mask), hint: none };
    }
    if (kind === 'arg8') {
      fn.emit(BPF_LDX_MEM(BPF_B, reg, CTX, r.int(fn.env.argSize)));
      return { domain: BYTES, hint: none };
    }
    if (kind === 'index') {
      fn.emit(BPF_LDX_MEM(BPF_DW, reg, FP, -8));
      return { domain: [...Array(fn.env.loops).keys()].map(BigInt), hint: none };
    }
    const c =
      style === 'wild' && r.bool(0.4)
        ? (BigInt(r.next32()) << 32n) | BigInt(r.next32())
        : immU64(r.bool(0.7) ? r.int(64) : r.pick(EDGE_IMMS));
    const imm = immOf(c, 64);
    fn.emit(imm === undefined ? BPF_LD_IMM64(reg, c) : BPF_MOV64_IMM(reg, imm));
    return { domain: [c], hint: none };
  }

  /** reg = 0, or a packet byte (maybe sign-extended) when the packet has it. */
  private packetByte(reg: number): Source {
    const fn = this.fn;
    const off = this.rng.int(48);
    const signed = this.rng.bool(0.2);
    const skip = fn.label();
    fn.emit(BPF_LDX_MEM(BPF_W, 2, CTX, 0), BPF_LDX_MEM(BPF_W, 3, CTX, 4), BPF_MOV64_REG(4, 2));
    fn.emit(BPF_ALU64_IMM(BPF_ADD, 4, off + 1), BPF_MOV64_IMM(reg, 0));
    fn.jcc('gt', 64, 4, { reg: 3 }, skip);
    fn.emit((signed ? BPF_LDX_MEMSX : BPF_LDX_MEM)(BPF_B, reg, 2, off));
    fn.bind(skip);
    return {
      domain: signed ? BYTES.map((b) => BigInt.asUintN(64, BigInt.asIntN(8, b))) : BYTES,
      hint: (v) => {
        this.hints.push({ where: 'pkt', off, values: v.map((b) => b & 0xffn) });
        this.hints.push({ where: 'len', values: [BigInt(off + 1), BigInt(off + 9)] });
      },
    };
  }

  /** reg = 0, or a byte of an array map value when the lookup finds one. */
  private mapByte(reg: number): Source {
    const fn = this.fn;
    const fd = this.arrayMap(8 + 4 * this.rng.int(15), 1 + this.rng.int(4));
    const m = this.mapOf(fd);
    const [elem, off] = [this.rng.int(m.maxEntries), this.rng.int(m.valueSize)];
    const skip = fn.label();
    this.lookup(fd, elem);
    fn.emit(BPF_MOV64_IMM(reg, 0));
    fn.jcc('eq', 64, 0, { imm: 0 }, skip);
    fn.emit(BPF_LDX_MEM(BPF_B, reg, 0, off));
    fn.bind(skip);
    const map = fd - 1;
    return {
      domain: BYTES,
      hint: (v) => this.hints.push({ where: 'map', map, elem, off, values: v }),
    };
  }

  /** A mask of at most 8 bits below bit 31, mostly contiguous from bit 0. */
  private smallMask(): number {
    const r = this.rng;
    if (r.bool(0.6)) return (1 << (1 + r.int(8))) - 1;
    let m = 0;
    for (let k = 1 + r.int(8); k > 0; k--) m |= 1 << r.int(31);
    return m;
  }

  /** A step that keeps small values small (what bounds tracking handles precisely). */
  private friendlyStep(): Step {
    const r = this.rng;
    const width: Width = r.bool(0.8) ? 64 : 32;
    const [op, imm] = r.pick<[AluOp, () => number]>([
      ['and', () => this.smallMask()],
      ['or', () => r.int(16)],
      ['add', () => r.int(24) - 8],
      ['sub', () => r.int(8)],
      ['lsh', () => r.int(4)],
      ['rsh', () => r.int(4)],
      ['mul', () => 1 + r.int(4)],
      ['xor', () => r.int(16)],
    ]);
    return aluStep(op, width, imm());
  }

  /** Any one-register step, with edge immediates. */
  private wildStep(): Step {
    const r = this.rng;
    const roll = r.int(10);
    if (roll === 0) return { kind: 'end', info: r.pick(END_INFOS) };
    if (roll === 1) return { kind: 'movsx', info: r.pick(MOVSX_INFOS) };
    const info = r.pick(ALU_IMM.filter((o) => o.op !== 'mov' || r.bool(0.1)));
    let imm = r.bool(0.6) ? r.pick(EDGE_IMMS) : r.next32() | 0;
    if (info.op === 'lsh' || info.op === 'rsh' || info.op === 'arsh') {
      const bad = this.mutation('alu', ['shift by the operand width or more'], 0.15);
      imm = bad === undefined ? r.int(info.width) : info.width + r.int(8);
    } else if (imm === 0 && ['div', 'mod', 'sdiv', 'smod'].includes(info.op)) {
      imm = this.mutation('alu', ['division by the constant zero'], 0.5) === undefined ? 3 : 0;
    }
    return { kind: 'alu', info, imm };
  }

  /** r9 op= a wild function of one or two unknowns (ALU precision, constant folding). */
  private aluToAcc(): void {
    const r = this.rng;
    const fn = this.fn;
    this.derive(T2, 'wild');
    if (r.bool(0.4)) {
      this.derive(T1, r.bool() ? 'wild' : 'friendly');
      const info = r.pick(ALU_REG);
      fn.emit(insn(info.code, T2, T1, info.off ?? 0, 0));
    }
    const bad = this.mutation('alu', [
      'read of a register a call scratched',
      'arithmetic on a stack pointer',
    ]);
    if (bad === 'read of a register a call scratched') {
      fn.emit(BPF_EMIT_CALL(BPF_FUNC_get_prandom_u32), BPF_ALU64_REG(BPF_XOR, T2, 1 + r.int(5)));
      this.benign();
    } else if (bad !== undefined) {
      const b = fn.slot(8, r);
      fn.emit(BPF_ST_MEM(BPF_DW, FP, -b, 7), BPF_MOV64_REG(3, FP), BPF_ALU64_IMM(BPF_ADD, 3, -b));
      fn.emit(BPF_ALU64_IMM(r.pick([BPF_MUL, BPF_OR, BPF_LSH]), 3, 2));
      fn.emit(BPF_LDX_MEM(BPF_DW, 4, 3, 0), BPF_ALU64_REG(BPF_ADD, T2, 4));
    }
    fn.emit(BPF_ALU64_REG(r.pick([BPF_XOR, BPF_ADD, BPF_SUB]), ACC, T2));
  }

  /**
   * `if d cond K goto bad`, no value of d taking it, `bad` being an out-of-line unsafe access:
   * the verifier must prove the branch dead (or reject). Mutation: K lets a few values through.
   */
  private deadBranch(): void {
    const r = this.rng;
    const fn = this.fn;
    const d = this.derive(T2, r.bool(0.6) ? 'wild' : 'friendly');
    const vals = [...new Set(d.pairs.map(([, v]) => v))];
    const cond = r.pick(ALL_CONDS);
    const width: Width = r.bool(0.7) ? 64 : 32;
    const cands = new Set<bigint>([0n, BigInt.asUintN(64, -1n)]);
    for (const v of [...this.extremes(vals), ...vals.slice(0, 4)])
      for (const dv of [-1n, 0n, 1n]) cands.add(BigInt.asUintN(64, v + dv));
    const scored = [...cands].map((k) => ({
      k,
      hits: d.pairs.filter(([, v]) => jmpCond(cond, width, v, k)),
    }));
    const bad = this.mutation('dead branch', ['bound that lets some values through']);
    const all = d.pairs.length;
    const pool = scored.filter((s) =>
      bad === undefined ? s.hits.length === 0 : s.hits.length > 0 && s.hits.length < all,
    );
    if (pool.length === 0) {
      if (bad !== undefined) this.benign();
      return;
    }
    const { k, hits } = r.pick(pool);
    if (hits.length > 0) d.hint(hits.map(([s]) => s));
    const imm = immOf(k, width);
    const badLabel = fn.label();
    if (imm !== undefined && r.bool(0.7)) fn.jcc(cond, width, T2, { imm }, badLabel);
    else {
      fn.emit(BPF_LD_IMM64(5, k));
      fn.jcc(cond, width, T2, { reg: 5 }, badLabel);
    }
    const back = fn.label();
    fn.bind(back);
    const nullDeref = r.bool();
    fn.tails.push(() => {
      fn.bind(badLabel);
      if (nullDeref) fn.emit(BPF_MOV64_IMM(1, 0), BPF_LDX_MEM(BPF_DW, 0, 1, 0));
      else fn.emit(BPF_LDX_MEM(BPF_DW, 0, FP, -520));
      fn.emit(BPF_ALU64_REG(BPF_ADD, ACC, 0));
      fn.ja(back);
    });
  }

  /** Unsigned and signed minimum and maximum of a non-empty `vals`. */
  private extremes(vals: readonly bigint[]): bigint[] {
    const u = [...vals].sort(cmp);
    const s = vals.map((v) => BigInt.asIntN(64, v)).sort(cmp);
    return [u[0], u.at(-1), s[0], s.at(-1)]
      .filter((v): v is bigint => v !== undefined)
      .map((v) => BigInt.asUintN(64, v));
  }

  // -------------------------------------------------------------------------------------------
  // Areas indexed by a bounded scalar

  /**
   * An access at `area + d` behind a bounds check on d in one of several forms, tight against
   * the end of the area. Mutations loosen the check or shrink the area; the generator works out
   * which source values then reach outside what the interpreter allows and hints them.
   */
  private varAccess(region: Region): void {
    const r = this.rng;
    const fn = this.fn;
    const placed = this.mutations.length;
    const d = this.derive(T2, r.bool(0.75) ? 'friendly' : 'wild');
    const { size, sh, bytes } = this.accessShape(region, d);
    const kMax = Math.floor((bytes - size) / 2 ** sh);
    if (kMax < 0) return;
    const negative = d.pairs.some(([, v]) => v >= 1n << 63n);
    const bad = this.mutation(`${region.name} variable offset`, [
      'bound off by one',
      'no bound check',
      'bound overwritten after the check',
      'JMP32 bound on a 64-bit value',
      ...(negative ? (['signed bound without a lower bound'] as const) : []),
      ...(region.fixed || bytes - 1 < region.minSize ? [] : (['area one byte short'] as const)),
    ]);
    const own = this.mutations.length; // region mutations come after this site's own
    const pre: Step[] = bad === 'JMP32 bound on a 64-bit value' ? [{ kind: 'hi32' }] : [];
    const k = BigInt(kMax) + (bad === 'bound off by one' ? 1n : 0n);
    const checks = this.boundChecks(k, bad, d, pre);
    const post: Step[] = [];
    if (bad === 'bound overwritten after the check') post.push(aluStep('add', 64, 1 + r.int(2)));
    if (sh > 0) post.push(aluStep('lsh', 64, sh));
    const out = fn.label();
    const { ptr, lo, hi } = region.setup(bad === 'area one byte short' ? bytes - 1 : bytes, out);
    // which source values reach the access, and at which offsets
    const reach = d.pairs
      .filter(([, v]) => passes(checks, applySteps(pre, v)))
      .map(([src, v]) => [src, BigInt.asIntN(64, applySteps(post, applySteps(pre, v)))] as const);
    const unsafe = reach.filter(([, off]) => off < lo || off + BigInt(size) > hi);
    const memorySafe = (from: number, to: number): void => {
      for (let m = from; m < to; m++)
        if (!(this.mutations[m] as string).endsWith(')')) this.mutations[m] += ' (memory-safe)';
    };
    // nothing reaches the access: every near miss here is harmless; nothing reaching it leaves
    // the area: this site's own is
    if (reach.length === 0) memorySafe(placed, this.mutations.length);
    else if (unsafe.length === 0 && bad !== undefined) memorySafe(own - 1, own);
    const edge = reach.reduce((m, [, off]) => (off > m ? off : m), -1n << 63n);
    d.hint((unsafe.length > 0 ? unsafe : reach.filter(([, off]) => off === edge)).map(([s]) => s));
    for (const s of pre) fn.emit(stepInsns(s, T2, 5));
    const skip = fn.label();
    for (const c of checks) this.emitCheck(c, T2, skip);
    for (const s of post) fn.emit(stepInsns(s, T2, 5));
    const at = ptr === 3 ? 2 : 3;
    const split = r.pick([0, 0, 8, -8, 16]);
    fn.emit(BPF_MOV64_REG(at, ptr), BPF_ALU64_IMM(BPF_ADD, at, split));
    fn.emit(BPF_ALU64_REG(BPF_ADD, at, T2));
    this.access(at, -split, size, region.align || sh >= Math.log2(size));
    fn.bind(skip);
    region.teardown?.(ptr);
    fn.bind(out);
  }

  /**
   * Access size, index shift (the stack needs aligned offsets) and area size: when the region
   * lets us choose, tight around an index that some input reaches.
   */
  private accessShape(region: Region, d: Derived): { size: number; sh: number; bytes: number } {
    const r = this.rng;
    const size = r.pick(SIZES.filter((s) => s <= region.maxSize));
    const sh = region.align
      ? Math.log2(size) + (r.bool(0.2) ? 1 : 0)
      : r.pick([0, 0, 1, Math.log2(size)]);
    if (region.fixed) return { size, sh, bytes: region.maxSize };
    const small = [...new Set(d.pairs.map(([, v]) => v))].filter((v) => v < 64n);
    const want = small.length > 0 && r.bool(0.8) ? Number(r.pick(small)) : r.int(8);
    const extra = r.bool(0.7) ? 0 : r.int(8);
    const bytes = Math.min(region.maxSize, Math.max(region.minSize, (want << sh) + size + extra));
    return { size, sh, bytes };
  }

  /** Checks bounding d (after `pre`) to [0, k], in one of several equivalent forms. */
  private boundChecks(
    k: bigint,
    bad: string | undefined,
    d: Derived,
    pre: readonly Step[],
  ): Check[] {
    const r = this.rng;
    const [viaReg, inverted] = [r.bool(0.25), r.bool(0.25)];
    const check = (cond: JmpCond, width: Width, kk: bigint, first = true): Check => ({
      cond,
      width,
      k: kk,
      viaReg: first && viaReg,
      inverted: first && inverted,
    });
    if (bad === 'no bound check') return [];
    if (bad === 'JMP32 bound on a 64-bit value') return [check('gt', 32, k)];
    if (bad === 'signed bound without a lower bound') return [check('sgt', 64, k)];
    // 32-bit forms only where they bound the 64-bit value too
    const big = d.pairs.some(([, v]) => applySteps(pre, v) >= 1n << 31n);
    switch (r.int(big ? 4 : 6)) {
      case 0:
        return [check('gt', 64, k)];
      case 1:
        return [check('ge', 64, k + 1n)];
      case 2:
        return [check('sgt', 64, k), check('slt', 64, 0n, false)];
      case 3:
        return [check('slt', 64, 0n), check('sge', 64, k + 1n, false)];
      case 4:
        return [check('gt', 32, k)];
      default:
        return [check('sgt', 32, k), check('slt', 32, 0n, false)];
    }
  }

  private emitCheck(c: Check, reg: number, skip: number): void {
    const fn = this.fn;
    const imm = immOf(c.k, c.width);
    let operand: { reg: number } | { imm: number } = { imm: imm ?? 0 };
    if (c.viaReg || imm === undefined) {
      const imm64 = immOf(c.k, 64);
      fn.emit(imm64 === undefined ? BPF_LD_IMM64(5, c.k) : BPF_MOV64_IMM(5, imm64));
      operand = { reg: 5 };
    }
    if (c.inverted && c.cond !== 'set') {
      const use = fn.label();
      fn.jcc(NEG_COND[c.cond], c.width, reg, operand, use);
      fn.ja(skip);
      fn.bind(use);
    } else fn.jcc(c.cond, c.width, reg, operand, skip);
  }

  /**
   * A load (folded into r9), store or atomic add of `size` bytes at [ptr + off]. Loads go to
   * r5 (r4 when ptr is r5): r2..r4 may still hold pointers the idiom uses next.
   */
  private access(ptr: number, off: number, size: number, aligned: boolean): void {
    const r = this.rng;
    const sz = SIZE_BITS[size] as number;
    const kind = r.int(aligned && size >= 4 ? 5 : 4);
    if (kind <= 1) {
      const load = kind === 1 && size < 8 ? BPF_LDX_MEMSX : BPF_LDX_MEM;
      const dst = ptr === 5 ? 4 : 5;
      this.fn.emit(load(sz, dst, ptr, off), BPF_ALU64_REG(BPF_XOR, ACC, dst));
    } else if (kind === 2) this.fn.emit(BPF_STX_MEM(sz, ptr, ACC, off));
    else if (kind === 3) this.fn.emit(BPF_ST_MEM(sz, ptr, off, r.pick(EDGE_IMMS)));
    else this.fn.emit(BPF_ATOMIC_OP(sz, BPF_ADD, ptr, ACC, off));
  }

  /** A stack area, initialised before use. */
  private stackRegion(): Region {
    const fn = this.fn;
    return {
      name: 'stack',
      minSize: 1,
      maxSize: Math.min(64, fn.env.stack - fn.env.top),
      fixed: false,
      align: true,
      setup: (bytes) => {
        const b = fn.slot(bytes, this.rng);
        for (let o = 0; o < bytes; o += 8) fn.emit(BPF_STX_MEM(BPF_DW, FP, ACC, -b + o));
        const ptr = 1 + this.rng.int(3);
        fn.emit(BPF_MOV64_REG(ptr, FP), BPF_ALU64_IMM(BPF_ADD, ptr, -b));
        return { ptr, lo: BigInt(b - 512), hi: BigInt(b) };
      },
    };
  }

  /** An array map value, looked up and null-checked. */
  private mapRegion(): Region {
    const fn = this.fn;
    const r = this.rng;
    return {
      name: 'map value',
      minSize: 8,
      maxSize: 64,
      fixed: false,
      align: false,
      setup: (bytes, out) => {
        const fd = this.arrayMap(bytes, 1 + r.int(4));
        const m = this.mapOf(fd);
        const bad = this.mutation('map lookup', ['missing null check', 'null check inverted']);
        // an index past the end makes the lookup return NULL
        const past = bad !== undefined ? r.bool(0.6) : r.bool(0.1);
        this.lookup(fd, past ? m.maxEntries : r.int(m.maxEntries));
        if (bad === 'null check inverted') fn.jcc('ne', 64, 0, { imm: 0 }, out);
        else if (bad === undefined && r.bool(0.2)) {
          const use = fn.label();
          fn.jcc('ne', 64, 0, { imm: 0 }, use);
          fn.ja(out);
          fn.bind(use);
        } else if (bad === undefined) fn.jcc('eq', 64, 0, { imm: 0 }, out);
        if (bad === 'missing null check' && !past) this.benign();
        return { ptr: 0, lo: 0n, hi: BigInt(bytes) };
      },
    };
  }

  /** A ringbuf record of a constant size, reserved, null-checked and released afterwards. */
  private ringbufRegion(): Region {
    const fn = this.fn;
    const r = this.rng;
    const bad = this.mutation('ringbuf', [
      'missing null check',
      'record not released',
      'record released twice',
      'write after release',
      'size not a constant',
    ]);
    if (bad === 'missing null check') this.benign(); // the ring never fills up
    return {
      name: 'ringbuf record',
      minSize: 8,
      maxSize: 64,
      fixed: false,
      align: true,
      setup: (bytes, out) => {
        if (bad === 'size not a constant') {
          // a size in [bytes - 7, bytes]
          fn.emit(BPF_EMIT_CALL(BPF_FUNC_get_prandom_u32), BPF_MOV64_REG(2, 0));
          fn.emit(BPF_ALU64_IMM(BPF_AND, 2, 7), BPF_ALU64_IMM(BPF_ADD, 2, bytes - 7));
        } else fn.emit(BPF_MOV64_IMM(2, bytes));
        fn.emit(BPF_LD_MAP_FD(1, this.ringbufMap()));
        fn.emit(BPF_MOV64_IMM(3, 0), BPF_EMIT_CALL(BPF_FUNC_ringbuf_reserve));
        if (bad !== 'missing null check') fn.jcc('eq', 64, 0, { imm: 0 }, out);
        fn.emit(BPF_MOV64_REG(T1, 0));
        return { ptr: T1, lo: 0n, hi: BigInt(bytes) };
      },
      teardown: (ptr) => {
        if (bad === 'record not released') return;
        const release = r.bool(0.7) ? BPF_FUNC_ringbuf_submit : BPF_FUNC_ringbuf_discard;
        for (let k = bad === 'record released twice' ? 2 : 1; k > 0; k--)
          fn.emit(BPF_MOV64_REG(1, ptr), BPF_MOV64_IMM(2, 0), BPF_EMIT_CALL(release));
        if (bad === 'write after release') fn.emit(BPF_STX_MEM(BPF_DW, ptr, ACC, 0));
      },
    };
  }

  /** In a callee: the caller's stack area its r6 points to. */
  private argRegion(): Region {
    const size = this.fn.env.argSize;
    return {
      name: "caller's stack",
      minSize: size,
      maxSize: size,
      fixed: true,
      align: true,
      setup: () => ({ ptr: CTX, lo: 0n, hi: BigInt(size) }),
    };
  }

  // -------------------------------------------------------------------------------------------
  // Packet and ctx

  /** `if data + N > data_end` in one of its forms, then accesses inside the N bytes. */
  private packetConst(): void {
    const r = this.rng;
    const fn = this.fn;
    const n = r.bool(0.7) ? 1 + r.int(64) : 1 + r.int(MAX_PACKET - 1);
    this.hints.push({ where: 'len', values: [BigInt(n - 1), BigInt(n), BigInt(n + 1)] });
    const bad = this.mutation('packet', [
      'access one byte past the checked range',
      'access on the failing branch',
      'compared two packet pointers',
      'JMP32 pointer comparison',
      'data_end dereferenced',
      'access at the checked end pointer',
    ]);
    if (bad === 'JMP32 pointer comparison') this.benign(); // addresses are below 2^32
    fn.emit(BPF_LDX_MEM(BPF_W, 2, CTX, 0), BPF_LDX_MEM(BPF_W, 3, CTX, 4));
    fn.emit(BPF_MOV64_REG(4, 2), BPF_ALU64_IMM(BPF_ADD, 4, n));
    const skip = fn.label();
    const width: Width = bad === 'JMP32 pointer comparison' ? 32 : 64;
    const form = r.int(5);
    if (bad === 'access on the failing branch') fn.jcc('le', width, 4, { reg: 3 }, skip);
    else if (bad === 'compared two packet pointers') fn.jcc('gt', width, 2, { reg: 4 }, skip);
    else if (form === 0) fn.jcc('gt', width, 4, { reg: 3 }, skip);
    else if (form === 1) fn.jcc('lt', width, 3, { reg: 4 }, skip);
    else if (form === 2)
      fn.jcc('ge', width, 4, { reg: 3 }, skip); // stricter: data + N < end
    else {
      const use = fn.label();
      if (form === 3) fn.jcc('le', width, 4, { reg: 3 }, use);
      else fn.jcc('ge', width, 3, { reg: 4 }, use);
      fn.ja(skip);
      fn.bind(use);
    }
    for (let k = 1 + r.int(2); k > 0; k--) {
      const size = r.pick(SIZES.filter((s) => s <= n));
      let [base, off] = [2, r.int(n - size + 1)];
      if (r.bool(0.2)) [base, off] = [4, off - n]; // back from the checked end
      if (k === 1 && bad === 'access one byte past the checked range')
        [base, off] = [2, n - size + 1];
      if (k === 1 && bad === 'access at the checked end pointer') [base, off] = [4, 0];
      if (k === 1 && bad === 'data_end dereferenced') [base, off] = [3, 0];
      this.access(base, off, size, false);
    }
    fn.bind(skip);
  }

  /** A header length from the packet (IHL-style) moves the pointer; then a second check. */
  private packetVarOff(): void {
    const r = this.rng;
    const fn = this.fn;
    const m = 1 + r.int(24);
    const bad = this.mutation('packet variable offset', [
      'signed header length',
      'length not masked',
      'second check against the old pointer',
      'access one byte past the second check',
    ]);
    if (bad === 'length not masked') this.benign(); // a byte, shifted, is still small
    const [mask, shift] = [r.pick([0xf, 0x3c, 0x7f]), r.pick([0, 2])];
    // the header length each hinted first byte gives
    const hl = (b: number): number =>
      bad === 'signed header length'
        ? (b << 24) >> 24
        : (bad === 'length not masked' ? b : b & mask) << shift;
    const skip = fn.label();
    fn.emit(BPF_LDX_MEM(BPF_W, 2, CTX, 0), BPF_LDX_MEM(BPF_W, 3, CTX, 4), BPF_MOV64_REG(4, 2));
    fn.emit(BPF_ALU64_IMM(BPF_ADD, 4, 1));
    fn.jcc('gt', 64, 4, { reg: 3 }, skip);
    if (bad === 'signed header length') fn.emit(BPF_LDX_MEMSX(BPF_B, 5, 2, 0));
    else {
      fn.emit(BPF_LDX_MEM(BPF_B, 5, 2, 0));
      if (bad !== 'length not masked') fn.emit(BPF_ALU64_IMM(BPF_AND, 5, mask));
      fn.emit(BPF_ALU64_IMM(BPF_LSH, 5, shift));
    }
    fn.emit(BPF_MOV64_REG(1, 2), BPF_ALU64_REG(BPF_ADD, 2, 5));
    fn.emit(BPF_MOV64_REG(4, bad === 'second check against the old pointer' ? 1 : 2));
    fn.emit(BPF_ALU64_IMM(BPF_ADD, 4, m));
    fn.jcc('gt', 64, 4, { reg: 3 }, skip);
    const size = r.pick(SIZES.filter((s) => s <= m));
    const past = bad === 'access one byte past the second check';
    this.access(2, past ? m - size + 1 : r.int(m - size + 1), size, false);
    fn.bind(skip);
    const firsts = [0x0f, 0x05, 0xff, 0x80, 0x3c, 0x01, 0];
    this.hints.push({ where: 'pkt', off: 0, values: firsts.map(BigInt) });
    // lengths that end the packet right at the checked range, for each of those bytes
    const lens = firsts.map((b) => Math.max(1, hl(b) + m));
    this.hints.push({ where: 'len', values: [1, m + 1, ...lens].map(BigInt) });
  }

  /** xdp_md field loads (4-byte reads of ingress_ifindex, rx_queue_index, egress_ifindex). */
  private ctxLoad(): void {
    const r = this.rng;
    const fn = this.fn;
    const bad = this.mutation('ctx', [
      'narrow read',
      'wide read',
      'read past the end',
      'misaligned read',
      'write',
      'read through a modified ctx pointer',
    ]);
    let [base, off, size] = [CTX, r.pick([12, 16, 20]), 4];
    if (r.bool(0.3) || bad === 'read through a modified ctx pointer') {
      fn.emit(BPF_MOV64_REG(2, CTX));
      base = 2;
      if (bad === 'read through a modified ctx pointer') {
        fn.emit(BPF_ALU64_IMM(BPF_ADD, 2, 8));
        off -= 8;
      }
    }
    if (bad === 'narrow read') size = r.pick([1, 2]);
    if (bad === 'wide read') [size, off] = [8, r.pick([8, 16])];
    if (bad === 'read past the end') off = r.pick([24, 28, -4]);
    if (bad === 'misaligned read') off += r.pick([1, 2]);
    const at = off + (base === CTX ? 0 : bad === 'read through a modified ctx pointer' ? 8 : 0);
    if (bad !== undefined && bad !== 'write' && at >= 0 && at + size <= 24) this.benign();
    if (bad === 'write') fn.emit(BPF_STX_MEM(BPF_W, base, ACC, off));
    else
      fn.emit(BPF_LDX_MEM(SIZE_BITS[size] as number, 3, base, off), BPF_ALU64_REG(BPF_XOR, ACC, 3));
  }

  // -------------------------------------------------------------------------------------------
  // Stack state, control flow and calls

  /** Spills a pointer (stack or ctx) or a scalar in [0, 8), clobbers it, fills it, uses it. */
  private spillFill(): void {
    const r = this.rng;
    const fn = this.fn;
    const kind = r.pick(fn.env.hasCtx ? ['stack', 'scalar', 'ctx'] : ['stack', 'scalar']);
    if (kind === 'scalar') {
      const d = this.derive(T2, 'friendly');
      d.hint([r.pick(d.pairs)[0]]);
      fn.emit(BPF_ALU64_IMM(BPF_AND, T2, 7));
    }
    const bad = this.mutation('spill/fill', [
      'spilled value partly overwritten',
      'filled with a 4-byte load',
      'filled from the wrong slot',
    ]);
    if (bad === 'filled with a 4-byte load') this.benign(); // addresses are below 2^32
    const s = fn.slot(16, r);
    fn.emit(BPF_ST_MEM(BPF_DW, FP, -s + 8, 0x28));
    if (kind === 'stack') fn.emit(BPF_MOV64_REG(2, FP), BPF_ALU64_IMM(BPF_ADD, 2, -s + 8));
    else fn.emit(BPF_MOV64_REG(2, kind === 'ctx' ? CTX : T2));
    fn.emit(BPF_STX_MEM(BPF_DW, FP, 2, -s));
    fn.emit(r.bool() ? BPF_EMIT_CALL(BPF_FUNC_ktime_get_ns) : BPF_MOV64_IMM(2, 0));
    if (bad === 'spilled value partly overwritten') {
      // a low byte: the high bytes of an address are zero already
      fn.emit(BPF_ST_MEM(BPF_B, FP, -s + r.int(3), r.pick([0, 0x40, 0xff])));
    }
    if (bad === 'filled with a 4-byte load') fn.emit(BPF_LDX_MEM(BPF_W, 3, FP, -s));
    else fn.emit(BPF_LDX_MEM(BPF_DW, 3, FP, bad === 'filled from the wrong slot' ? -s + 8 : -s));
    if (kind === 'stack') fn.emit(BPF_LDX_MEM(BPF_DW, 4, 3, 0));
    else if (kind === 'ctx') fn.emit(BPF_LDX_MEM(BPF_W, 4, 3, 12));
    else {
      fn.emit(BPF_MOV64_REG(4, FP), BPF_ALU64_IMM(BPF_ADD, 4, -s), BPF_ALU64_REG(BPF_ADD, 4, 3));
      fn.emit(BPF_LDX_MEM(BPF_B, 4, 4, 0));
    }
    fn.emit(BPF_ALU64_REG(BPF_XOR, ACC, 4));
  }

  /**
   * A diamond on an unknown: r7 gets a different stack offset on each side, then indexes a
   * stack area directly, through a copy, a 32-bit move or a spill (state pruning must keep the
   * two offsets apart). Mutation: one side's offset leaves the frame.
   */
  private diamond(): void {
    const r = this.rng;
    const fn = this.fn;
    const d = this.derive(T2, 'friendly');
    const size = r.pick(SIZES);
    const bytes = Math.min(size * (1 + r.int(8)), fn.env.stack - fn.env.top);
    const b = fn.slot(bytes, r);
    const offs = [r.int(bytes / size) * size, r.int(bytes / size) * size];
    const bad = this.mutation('diamond', ['one side above the frame', 'one side below the frame']);
    if (bad !== undefined) offs[1] = bad === 'one side above the frame' ? b : b - 512 - size;
    for (let o = 0; o < bytes; o += 8) fn.emit(BPF_ST_MEM(BPF_DW, FP, -b + o, 0));
    const cond = r.pick(['gt', 'set', 'eq', 'sgt'] as const);
    const ks = d.pairs.map(([, v]) => v).filter((v) => immOf(v, 64) !== undefined);
    const k = ks.length > 0 ? r.pick(ks) : 0n;
    const taken = d.pairs.filter(([, v]) => jmpCond(cond, 64, v, k));
    if (bad !== undefined && taken.length === 0) this.benign();
    if (taken.length > 0) d.hint([r.pick(taken)[0]]);
    const [other, join] = [fn.label(), fn.label()];
    fn.jcc(cond, 64, T2, { imm: immOf(k, 64) ?? 0 }, other);
    fn.emit(BPF_MOV64_IMM(T1, offs[0] as number));
    fn.ja(join);
    fn.bind(other);
    fn.emit(BPF_MOV64_IMM(T1, offs[1] as number));
    fn.bind(join);
    fn.emit(BPF_ALU64_REG(BPF_ADD, ACC, T2));
    const via = r.int(4);
    if (via === 0) fn.emit(BPF_MOV64_REG(3, T1));
    else if (via === 1) fn.emit(BPF_MOV32_REG(3, T1));
    else if (via === 2) {
      const s = fn.slot(8, r);
      fn.emit(BPF_STX_MEM(BPF_DW, FP, T1, -s), BPF_LDX_MEM(BPF_DW, 3, FP, -s));
    }
    fn.emit(BPF_MOV64_REG(2, FP), BPF_ALU64_IMM(BPF_ADD, 2, -b));
    fn.emit(BPF_ALU64_REG(BPF_ADD, 2, via === 3 ? T1 : 3));
    this.access(2, 0, size, true);
  }

  /** bpf_map_update_elem with key and value on the stack. */
  private mapUpdate(): void {
    const r = this.rng;
    const fn = this.fn;
    const fd = this.arrayMap(8 + 4 * r.int(15), 1 + r.int(4));
    const m = this.mapOf(fd);
    const words = Math.ceil(m.valueSize / 8);
    const bad = this.mutation('map update', [
      'value partly uninitialised',
      'value runs past the frame',
    ]);
    if (bad === 'value partly uninitialised') this.benign();
    const vb = bad === 'value runs past the frame' ? words * 8 - 8 : fn.slot(m.valueSize, r);
    for (let o = 0; o < words; o++) {
      const skip = bad === 'value partly uninitialised' && o === words - 1;
      if (!skip && -vb + o * 8 < 0) fn.emit(BPF_STX_MEM(BPF_DW, FP, ACC, -vb + o * 8));
    }
    const kb = fn.slot(4, r);
    fn.emit(BPF_ST_MEM(BPF_W, FP, -kb, r.int(m.maxEntries + 1)), BPF_LD_MAP_FD(1, fd));
    fn.emit(BPF_MOV64_REG(2, FP), BPF_ALU64_IMM(BPF_ADD, 2, -kb), BPF_MOV64_REG(3, FP));
    fn.emit(BPF_ALU64_IMM(BPF_ADD, 3, -vb), BPF_MOV64_IMM(4, 0));
    fn.emit(BPF_EMIT_CALL(BPF_FUNC_map_update_elem), BPF_ALU64_REG(BPF_ADD, ACC, 0));
  }

  /**
   * A bounded loop walking a stack array with its counter (up or down, JMP or JMP32, signed or
   * unsigned exit test). Mutations: one iteration too many, a counter reset (infinite loop).
   */
  private loop(): void {
    const r = this.rng;
    const fn = this.fn;
    const size = r.pick(SIZES);
    const n = Math.min(1 + r.int(8), Math.floor((fn.env.stack - fn.env.top) / size));
    const b = fn.slot(n * size, r);
    const bad = this.mutation('loop', ['one iteration too many', 'counter reset in the body']);
    const iters = n + (bad === 'one iteration too many' ? 1 : 0);
    if (bad === 'one iteration too many' && b > n * size) this.benign();
    for (let o = 0; o < n * size; o += 8) fn.emit(BPF_ST_MEM(BPF_DW, FP, -b + o, 1));
    const up = r.bool();
    const width: Width = r.bool(0.3) ? 32 : 64;
    fn.emit(BPF_MOV64_IMM(T1, up ? 0 : iters));
    const head = fn.label();
    fn.bind(head);
    // index: the counter (counting up) or the counter - 1 (counting down), scaled by the size
    fn.emit(BPF_MOV64_REG(3, T1));
    if (!up) fn.emit(BPF_ALU64_IMM(BPF_SUB, 3, 1));
    fn.emit(BPF_ALU64_IMM(BPF_LSH, 3, Math.log2(size)), BPF_MOV64_REG(2, FP));
    fn.emit(BPF_ALU64_IMM(BPF_ADD, 2, -b), BPF_ALU64_REG(BPF_ADD, 2, 3));
    this.access(2, 0, size, true);
    if (bad === 'counter reset in the body') fn.emit(BPF_MOV64_IMM(T1, up ? 0 : iters));
    if (up) {
      fn.emit(BPF_ALU64_IMM(BPF_ADD, T1, 1));
      const cond = r.pick(['lt', 'slt', 'ne'] as const);
      fn.jcc(cond, width, T1, { imm: iters }, head);
    } else {
      fn.emit(BPF_ALU64_IMM(BPF_SUB, T1, 1));
      fn.jcc(r.pick(['ne', 'gt', 'sgt'] as const), width, T1, { imm: 0 }, head);
    }
  }

  /** The frame budget of a callee of this function. */
  private calleeEnv(argSize: number, loops: number): FnEnv {
    const env = this.fn.env;
    const stack = env.depth === 0 ? 128 : 64;
    return { hasCtx: false, stack, top: loops > 0 ? 8 : 0, argSize, loops, depth: env.depth + 1 };
  }

  /** A call to a new subprogram that gets a pointer to an initialised area of this frame. */
  private localCall(): void {
    const r = this.rng;
    const fn = this.fn;
    const bytes = 8 * (1 + r.int(Math.min(8, (fn.env.stack - fn.env.top) / 8)));
    const bad = this.mutation('local call', [
      'callee returns a pointer to its stack',
      'caller reads a scratched argument register',
      'area passed one slot too high',
    ]);
    const high = bad === 'area passed one slot too high';
    if (bad !== undefined && !high) this.benign();
    const b = high ? bytes + fn.env.top : fn.slot(bytes, r);
    for (let o = 0; o < bytes; o += 8) fn.emit(BPF_STX_MEM(BPF_DW, FP, ACC, -b + o));
    const target = this.subprog(this.calleeEnv(bytes, 0), (callee) => {
      callee.emit(BPF_MOV64_REG(CTX, 1), BPF_MOV64_REG(ACC, 2));
      for (let k = 1 + r.int(3); k > 0; k--) this.idiom();
      if (bad === 'callee returns a pointer to its stack')
        callee.emit(BPF_MOV64_REG(0, FP), BPF_ALU64_IMM(BPF_ADD, 0, -8));
      else callee.emit(BPF_MOV64_REG(0, ACC));
      callee.emit(BPF_EXIT_INSN());
    });
    fn.emit(BPF_MOV64_REG(1, FP), BPF_ALU64_IMM(BPF_ADD, 1, high ? -b + 8 : -b));
    fn.emit(BPF_MOV64_REG(2, ACC));
    this.calls.push({ func: this.fnIndex, at: fn.insns.length, target });
    fn.emit(insn(CALL, 0, BPF_PSEUDO_CALL, 0, 0), BPF_ALU64_REG(BPF_ADD, ACC, 0));
    if (bad === 'caller reads a scratched argument register')
      fn.emit(BPF_ALU64_REG(BPF_XOR, ACC, 1 + r.int(5)));
    fn.emit(BPF_LDX_MEM(BPF_DW, 3, FP, -b + 8 * r.int(bytes / 8)), BPF_ALU64_REG(BPF_XOR, ACC, 3));
  }

  /** bpf_loop(nr, callback, &area, 0); the callback indexes the area with its loop index. */
  private bpfLoop(): void {
    const r = this.rng;
    const fn = this.fn;
    const derived = r.bool(0.3);
    const nr = derived ? 16 : 1 + r.int(12);
    const bytes = 8 * (1 + r.int(Math.min(8, (fn.env.stack - fn.env.top) / 8)));
    const bad = this.mutation('bpf_loop', ['callback returns 2', 'NULL context dereferenced']);
    if (bad === 'callback returns 2') this.benign();
    const b = fn.slot(bytes, r);
    for (let o = 0; o < bytes; o += 8) fn.emit(BPF_ST_MEM(BPF_DW, FP, -b + o, o));
    const target = this.subprog(this.calleeEnv(bytes, nr), (cb) => {
      cb.emit(BPF_MOV64_REG(CTX, 2), BPF_STX_MEM(BPF_DW, FP, 1, -8), BPF_MOV64_IMM(ACC, 0));
      for (let k = 1 + r.int(2); k > 0; k--) {
        if (k === 1 || r.bool(0.5)) this.varAccess(this.argRegion());
        else this.idiom();
      }
      cb.emit(BPF_MOV64_IMM(0, bad === 'callback returns 2' ? 2 : r.bool(0.8) ? 0 : 1));
      cb.emit(BPF_EXIT_INSN());
    });
    if (derived) {
      const d = this.derive(T2, 'friendly');
      d.hint([r.pick(d.pairs)[0]]);
      fn.emit(BPF_MOV64_REG(1, T2), BPF_ALU64_IMM(BPF_AND, 1, 15));
    } else fn.emit(BPF_MOV64_IMM(1, nr));
    this.calls.push({ func: this.fnIndex, at: fn.insns.length, target });
    fn.emit(BPF_LD_IMM64_RAW(2, BPF_PSEUDO_FUNC, 0n));
    if (bad === 'NULL context dereferenced') fn.emit(BPF_MOV64_IMM(3, 0));
    else fn.emit(BPF_MOV64_REG(3, FP), BPF_ALU64_IMM(BPF_ADD, 3, -b));
    fn.emit(BPF_MOV64_IMM(4, 0), BPF_EMIT_CALL(BPF_FUNC_loop), BPF_ALU64_REG(BPF_ADD, ACC, 0));
  }

  /** A direct map value load (lddw map_value + off) and an access at a fixed offset from it. */
  private directValue(): void {
    const r = this.rng;
    const fd = this.arrayMap(8 + 4 * r.int(15), 1 + r.int(4));
    const m = this.mapOf(fd);
    const size = r.pick(SIZES.filter((s) => s <= m.valueSize));
    const base = r.int(m.valueSize);
    const bad = this.mutation('direct map value', ['access past the value']);
    const at = bad !== undefined ? m.valueSize - size + 1 : r.int(m.valueSize - size + 1);
    this.fn.emit(BPF_LD_IMM64_RAW(2, BPF_PSEUDO_MAP_VALUE, (BigInt(base) << 32n) | BigInt(fd)));
    this.access(2, at - base, size, false);
  }
}

/**
 * Generates one program from `rng`.
 *
 * @example
 * const p = generateVerifierProgram(createPrng(7));
 * disassemble(p.insns); // mov %r6, %r1 ... exit
 */
export function generateVerifierProgram(
  rng: Prng,
  opts: VerifierGenOptions = {},
): VerifierFuzzProgram {
  const g = new VerifierGen(rng, opts);
  const insns = g.program();
  return { insns, maps: g.maps, hints: g.hints, mutations: g.mutations };
}

const EDGE_BYTES = [0, 0xff, 0x80, 0x7f, 1, 2, 4, 8, 0x0f, 0x3c, 0x40];

/** `n` inputs for `prog`: random packets (0..256 bytes) and map values, biased by its hints. */
export function generateInputs(
  rng: Prng,
  prog: VerifierFuzzProgram,
  n: number,
): VerifierFuzzInput[] {
  const hinted = (where: 'random' | 'clock' | 'len'): bigint[] =>
    prog.hints.flatMap((h) => (h.where === where ? [...h.values] : []));
  const lens = hinted('len').map(Number);
  const byte = (): number => (rng.bool(0.5) ? rng.pick(EDGE_BYTES) : rng.int(256));
  const stream = <T>(from: readonly T[], fresh: () => T): T[] =>
    Array.from({ length: 8 }, () => (from.length > 0 && rng.bool(0.6) ? rng.pick(from) : fresh()));
  return Array.from({ length: n }, () => {
    let len = rng.bool(0.1) ? 0 : rng.int(MAX_PACKET + 1);
    if (lens.length > 0 && rng.bool(0.6)) len = Math.min(MAX_PACKET, Math.max(0, rng.pick(lens)));
    const packet = Uint8Array.from({ length: len }, byte);
    const mapValues = prog.maps.map((m, idx) =>
      m.type !== BPF_MAP_TYPE_ARRAY || idx === 0
        ? undefined
        : Array.from({ length: m.maxEntries }, () =>
            Uint8Array.from({ length: m.valueSize }, byte),
          ),
    );
    for (const h of prog.hints) {
      if (h.values.length === 0 || !rng.bool(0.6)) continue;
      const v = Number(rng.pick(h.values) & 0xffn);
      if (h.where === 'pkt' && h.off < packet.length) packet[h.off] = v;
      const value = h.where === 'map' ? mapValues[h.map]?.[h.elem] : undefined;
      if (h.where === 'map' && value !== undefined && h.off < value.length) value[h.off] = v;
    }
    return {
      packet,
      mapValues,
      random: stream(hinted('random').map(Number), () => rng.next32()),
      clock: stream(hinted('clock'), () => (BigInt(rng.next32()) << 32n) | BigInt(rng.next32())),
    };
  });
}
