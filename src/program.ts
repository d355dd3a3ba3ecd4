/**
 * The Program model: decoded instruction slots split into subprograms (BPF-to-BPF functions),
 * with the structural facts every backend needs. `createProgram` performs the kernel's
 * `check_subprogs` checks (jumps stay inside their function, functions end in exit or a jump,
 * no jump into the middle of an lddw), so the interpreter and the JIT can rely on them.
 *
 * Called from: the assembler and raw-bytes front ends, the ELF loader, the Vm.
 */

import { DecodeError } from './errors.js';
import { checkInsns, decodeInsns, type Insn } from './isa/insn.js';
import { BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_REG_FP } from './isa/opcodes.js';
import type { OpInfo } from './isa/table.js';

/** Program types: the kernel's `BPF_PROG_TYPE_*`, plus uBPF's `mem` (r1 = buffer, r2 = length). */
export type ProgType =
  | 'mem'
  | 'xdp'
  | 'socket_filter'
  | 'sched_cls'
  | 'sched_act'
  | 'cgroup_skb'
  | 'sk_skb'
  | 'kprobe'
  | 'tracepoint'
  | 'raw_tracepoint'
  | 'perf_event'
  | 'struct_ops'
  | 'syscall'
  | 'tracing'
  | 'lsm';

/** Every program type, for validating user input. */
export const PROG_TYPES: readonly ProgType[] = [
  'mem',
  'xdp',
  'socket_filter',
  'sched_cls',
  'sched_act',
  'cgroup_skb',
  'sk_skb',
  'kprobe',
  'tracepoint',
  'raw_tracepoint',
  'perf_event',
  'struct_ops',
  'syscall',
  'tracing',
  'lsm',
];

/** A BPF function: slots `[start, end)`. Subprog 0 is the entry. */
export interface Subprog {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

/** A decoded, structurally checked program. */
export interface Program {
  readonly name: string;
  readonly type: ProgType;
  readonly insns: readonly Insn[];
  /** The table entry of each slot; undefined for the second slot of an lddw. */
  readonly ops: readonly (OpInfo | undefined)[];
  /** Functions sorted by start; `subprogs[0].start === 0`. */
  readonly subprogs: readonly Subprog[];
  /**
   * Possible targets of each `gotox` (slot index → absolute slot indexes), from jump tables.
   * A gotox without an entry may go to any slot of its function.
   */
  readonly gotoxTargets: ReadonlyMap<number, readonly number[]>;
  /**
   * Starts of functions whose tokens sit in global data (`R_BPF_64_ABS64` against code, e.g.
   * the `.rodata` noop-coroutine frame): entry points reached only through those tokens.
   */
  readonly dataFuncs?: readonly number[];
}

/** Options of `createProgram`. */
export interface ProgramOptions {
  readonly name?: string;
  readonly type?: ProgType;
  /** Names of functions by start slot (from ELF symbols); others are named `func#N`. */
  readonly funcNames?: ReadonlyMap<number, string>;
  readonly gotoxTargets?: ReadonlyMap<number, readonly number[]>;
  /** Starts of functions whose tokens sit in global data (`Program.dataFuncs`). */
  readonly dataFuncs?: readonly number[];
}

/** Target slot of a jump or local call at `idx`, per RFC 9669 (relative to the next slot). */
export function jumpTarget(i: Insn, idx: number, info: OpInfo): number {
  switch (info.kind) {
    case 'ja32':
    case 'call':
    case 'lddw':
      return idx + i.imm + 1;
    default:
      return idx + i.off + 1;
  }
}

/** Index of the subprog that holds slot `idx` (binary search). */
export function subprogIndexOf(prog: Program, idx: number): number {
  let lo = 0;
  let hi = prog.subprogs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((prog.subprogs[mid] as Subprog).start <= idx) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** True for the slot starting a local call (`call` with src = BPF_PSEUDO_CALL). */
export function isPseudoCall(i: Insn, info: OpInfo | undefined): boolean {
  return info?.kind === 'call' && i.src === BPF_PSEUDO_CALL;
}

/** True for an lddw that loads a function address (src = BPF_PSEUDO_FUNC). */
export function isPseudoFunc(i: Insn, info: OpInfo | undefined): boolean {
  return info?.kind === 'lddw' && i.src === BPF_PSEUDO_FUNC;
}

/** Decodes, checks and splits a program. Throws `DecodeError` naming the bad slot. */
export function createProgram(insns: readonly Insn[], opts: ProgramOptions = {}): Program {
  if (insns.length === 0) throw new DecodeError(0, 'program has no instructions');
  const ops = checkInsns(insns);
  const starts = new Set<number>([0]);
  for (const t of opts.dataFuncs ?? []) {
    if (!Number.isInteger(t) || t < 0 || t >= insns.length) {
      throw new DecodeError(0, `function pointer in data to insn ${t}, outside the program`);
    }
    starts.add(t);
  }
  insns.forEach((i, idx) => {
    const info = ops[idx];
    if (info === undefined) return;
    if (isPseudoCall(i, info) || isPseudoFunc(i, info)) {
      const t = jumpTarget(i, idx, info);
      if (t < 0 || t >= insns.length) {
        throw new DecodeError(idx, `jump out of range from insn ${idx} to ${t}`);
      }
      starts.add(t);
    }
  });
  const sorted = [...starts].sort((a, b) => a - b);
  const subprogs: Subprog[] = sorted.map((start, k) => ({
    start,
    end: sorted[k + 1] ?? insns.length,
    name: opts.funcNames?.get(start) ?? (k === 0 ? (opts.name ?? 'func#0') : `func#${k}`),
  }));
  const prog: Program = {
    name: opts.name ?? 'prog',
    type: opts.type ?? 'mem',
    insns,
    ops,
    subprogs,
    gotoxTargets: opts.gotoxTargets ?? new Map(),
    ...(opts.dataFuncs !== undefined && opts.dataFuncs.length > 0
      ? { dataFuncs: [...new Set(opts.dataFuncs)].sort((a, b) => a - b) }
      : {}),
  };
  checkSubprogs(prog);
  return prog;
}

/** Decodes raw little-endian bytes into a checked program. */
export function programFromBytes(bytes: Uint8Array, opts: ProgramOptions = {}): Program {
  return createProgram(decodeInsns(bytes), opts);
}

/** The register an instruction writes, if any (r0 for ld_abs/ld_ind and calls aside). */
function writtenReg(i: Insn, info: OpInfo): number | undefined {
  switch (info.kind) {
    case 'alu':
    case 'movsx':
    case 'end':
    case 'lddw':
    case 'ldx':
    case 'ldxsx':
      return i.dst;
    case 'atomic':
      return info.op === 'cmpxchg' ? 0 : info.fetch ? i.src : undefined;
    default:
      return undefined;
  }
}

function checkSubprogs(prog: Program): void {
  const { insns, ops } = prog;
  for (const sp of prog.subprogs) {
    for (let idx = sp.start; idx < sp.end; idx++) {
      const i = insns[idx] as Insn;
      const info = ops[idx];
      if (info === undefined) {
        if (idx === sp.start)
          throw new DecodeError(idx, `jump into the middle of ldimm64 insn ${idx - 1}`);
        continue;
      }
      if (writtenReg(i, info) === BPF_REG_FP)
        throw new DecodeError(idx, 'frame pointer is read only');
      if ((info.kind === 'ldabs' || info.kind === 'ldind') && prog.subprogs.length > 1) {
        throw new DecodeError(
          idx,
          'BPF_LD_[ABS|IND] instructions cannot be mixed with bpf-to-bpf calls',
        );
      }
      if (
        info.kind === 'jmp' ||
        info.kind === 'ja' ||
        info.kind === 'ja32' ||
        info.kind === 'may_goto'
      ) {
        checkJump(prog, sp, idx, jumpTarget(i, idx, info));
      } else if (info.kind === 'gotox') {
        for (const t of prog.gotoxTargets.get(idx) ?? []) checkJump(prog, sp, idx, t);
      }
    }
    const lastIdx = sp.end - 1;
    const last = ops[lastIdx] ?? ops[lastIdx - 1];
    const k = ops[lastIdx] === undefined ? 'lddw' : last?.kind;
    if (k !== 'exit' && k !== 'ja' && k !== 'ja32' && k !== 'gotox') {
      throw new DecodeError(lastIdx, 'last insn is not an exit or jmp');
    }
  }
}

function checkJump(prog: Program, sp: Subprog, idx: number, t: number): void {
  if (t < sp.start || t >= sp.end) {
    throw new DecodeError(idx, `jump out of range from insn ${idx} to ${t}`);
  }
  if (prog.ops[t] === undefined) {
    throw new DecodeError(idx, `jump into the middle of ldimm64 insn ${t - 1}`);
  }
}
