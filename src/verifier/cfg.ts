/**
 * Control-flow checks before path exploration: the kernel's `check_subprogs` and `check_cfg`
 * (kernel/bpf/verifier.c; kernel/bpf/cfg.c in the 2026 split). An iterative depth-first walk
 * from insn 0 (and from extra entries such as an exception callback) follows fall-through,
 * jump, `may_goto`, `gotox` and call edges (a local call, and an lddw of a function address,
 * `BPF_PSEUDO_FUNC`, also enter the callee), and rejects jumps out of range, loops when they
 * are not allowed, unreachable insns and jumps into the middle of an lddw. On the way it marks
 * the insns where `doCheck` looks for equivalent states (`prune_point`), records jump history
 * (`jmp_point`) and always saves a checkpoint (`force_checkpoint`), as `visit_insn` does.
 *
 * Called from: the verifier driver, before `doCheck`. Works on the raw insns of a `Program`
 * (classifying by opcode byte, as the kernel does), so a program assembled by hand that
 * `createProgram` would refuse still gets the kernel's messages. Throws only `VerifierError`
 * (code EINVAL, like the kernel's -EINVAL); the message is also the last line of the log.
 */

import { isLdImm64, type Insn } from '../isa/insn.js';
import {
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_HELPER_CALL,
  BPF_IMM,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_LD,
  BPF_MAY_GOTO,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_X,
} from '../isa/opcodes.js';
import {
  BPF_FUNC_for_each_map_elem,
  BPF_FUNC_loop,
  BPF_FUNC_timer_set_callback,
} from '../helper-protos.js';
import type { Program } from '../program.js';
import type { VerifierLog } from './log.js';

/** `BPF_FUNC_find_vma`: calls its callback synchronously. */
const BPF_FUNC_find_vma = 180;
/** `BPF_FUNC_user_ringbuf_drain`: calls its callback synchronously. */
const BPF_FUNC_user_ringbuf_drain = 209;

/** Helpers that call a callback before they return (`is_sync_callback_calling_function`). */
const SYNC_CALLBACK_HELPERS: ReadonlySet<number> = new Set([
  BPF_FUNC_for_each_map_elem,
  BPF_FUNC_find_vma,
  BPF_FUNC_loop,
  BPF_FUNC_user_ringbuf_drain,
]);
/** Helpers that register a callback run later (`is_async_callback_calling_function`). */
const ASYNC_CALLBACK_HELPERS: ReadonlySet<number> = new Set([BPF_FUNC_timer_set_callback]);
/** Kfuncs that call a callback before they return (`is_sync_callback_calling_kfunc`). */
const SYNC_CALLBACK_KFUNCS: ReadonlySet<string> = new Set(['bpf_rbtree_add_impl']);
/** Kfuncs that register a callback run later (`is_async_callback_calling_kfunc`). */
const ASYNC_CALLBACK_KFUNCS: ReadonlySet<string> = new Set(['bpf_wq_set_callback_impl']);

/** Options of `checkCfg`. */
export interface CfgOptions {
  /**
   * Accept loops (back-edges); `doCheck` must then prove they terminate. True by default, as
   * for privileged (`bpf_capable`) loaders since 5.3; false gives `back-edge from insn %d to %d`.
   */
  readonly allowLoops?: boolean;
  /** Further entry points walked after insn 0, e.g. the exception callback's start. */
  readonly entries?: readonly number[];
  /** Kfunc names by BTF id, to mark iterator `_next` and callback-calling kfuncs. */
  readonly kfuncName?: (id: number) => string | undefined;
}

/** What `checkCfg` learned, per insn slot (index = slot; second lddw slots stay false). */
export interface CfgInfo {
  /** Reached from an entry (`insn_state[i] == EXPLORED`). */
  readonly reachable: readonly boolean[];
  /** `doCheck` compares states here (`mark_prune_point`). */
  readonly prunePoint: readonly boolean[];
  /** Jump history is recorded on arrival (`mark_jmp_point`). */
  readonly jmpPoint: readonly boolean[];
  /** A checkpoint is always saved here (`mark_force_checkpoint`): may_goto, iterator next. */
  readonly forceCheckpoint: readonly boolean[];
  /** A helper or kfunc call that runs a callback synchronously (`mark_calls_callback`). */
  readonly callsCallback: readonly boolean[];
  /** Insns in DFS postorder (`insn_postorder`); reverse it for a topological order. */
  readonly postorder: readonly number[];
  /** Targets of back-edges: the loop heads (only when loops are allowed). */
  readonly loopHeads: ReadonlySet<number>;
  /** Function starts: insn 0, local call targets and `BPF_PSEUDO_FUNC` targets, sorted. */
  readonly subprogStarts: readonly number[];
}

const cls = (code: number): number => code & 0x07;
const op = (code: number): number => code & 0xf0;
const isJmpClass = (code: number): boolean => cls(code) === BPF_JMP || cls(code) === BPF_JMP32;

/** True for a slot whose opcode is lddw (`bpf_is_ldimm64`). */
function isLddw(i: Insn | undefined): boolean {
  return i !== undefined && isLdImm64(i);
}

/** True for an lddw of a function address (`bpf_pseudo_func`). */
function isPseudoFuncInsn(i: Insn): boolean {
  return isLddw(i) && i.src === BPF_PSEUDO_FUNC;
}

/** True for a BPF-to-BPF call (`bpf_pseudo_call`). */
function isPseudoCallInsn(i: Insn): boolean {
  return i.code === (BPF_JMP | BPF_CALL) && i.src === BPF_PSEUDO_CALL;
}

/** Mutable per-insn facts while walking. */
interface CfgMarks {
  prunePoint: boolean[];
  jmpPoint: boolean[];
  forceCheckpoint: boolean[];
  callsCallback: boolean[];
}

/**
 * The kernel's `check_cfg` (preceded by the lddw and `check_subprogs` checks it relies on).
 * Throws `VerifierError` (EINVAL) with the kernel's message, also written to `log`.
 *
 * @example
 * ```ts
 * const prog = assembleProgram('mov %r0, 0\nexit\nmov %r0, 1\nexit');
 * checkCfg(prog, new VerifierLog({ level: 1 })); // throws 'insn 2: unreachable insn 2'
 * ```
 */
export function checkCfg(prog: Program, log: VerifierLog, opts: CfgOptions = {}): CfgInfo {
  const { insns } = prog;
  const n = insns.length;
  if (n === 0) throw log.fail(null, 'last insn is not an exit or jmp', 'EINVAL');
  checkLdImm(insns, log);
  const subprogStarts = findSubprogs(prog, log);
  checkSubprogs(insns, subprogStarts, log);
  const marks: CfgMarks = {
    prunePoint: new Array<boolean>(n).fill(false),
    jmpPoint: new Array<boolean>(n).fill(false),
    forceCheckpoint: new Array<boolean>(n).fill(false),
    callsCallback: new Array<boolean>(n).fill(false),
  };
  const succs: number[][] = [];
  for (let t = 0; t < n; t++) succs.push(visitInsn(prog, t, marks, opts, subprogStarts));
  const walk = walkCfg(n, succs, log, opts);
  for (let i = 0; i < n; i++) {
    if (walk.state[i] !== EXPLORED) throw log.fail(i, `unreachable insn ${i}`, 'EINVAL');
    if (isLddw(insns[i])) {
      if (walk.state[i + 1] !== UNSEEN) {
        throw log.fail(i + 1, `jump into the middle of ldimm64 insn ${i}`, 'EINVAL');
      }
      i++;
    }
  }
  return {
    reachable: walk.state.map((s) => s === EXPLORED),
    ...marks,
    postorder: walk.postorder,
    loopHeads: walk.loopHeads,
    subprogStarts,
  };
}

/**
 * `resolve_pseudo_ldimm64`'s shape check and `check_ld_imm`'s: an lddw has a second slot with
 * only imm set; a `BPF_LD | BPF_IMM` of another size is invalid.
 */
function checkLdImm(insns: readonly Insn[], log: VerifierLog): void {
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i] as Insn;
    if (cls(insn.code) !== BPF_LD || (insn.code & 0xe0) !== BPF_IMM) continue;
    if ((insn.code & 0x18) !== BPF_DW) throw log.fail(i, 'invalid BPF_LD_IMM insn', 'EINVAL');
    const next = insns[i + 1];
    if (
      next === undefined ||
      next.code !== 0 ||
      next.dst !== 0 ||
      next.src !== 0 ||
      next.off !== 0
    ) {
      throw log.fail(i, 'invalid bpf_ld_imm64 insn', 'EINVAL');
    }
    i++;
  }
}

/** `add_subprog_and_kfunc`: function starts are insn 0 and every call / func target. */
function findSubprogs(prog: Program, log: VerifierLog): number[] {
  const { insns } = prog;
  const starts = new Set<number>([0]);
  for (const sp of prog.subprogs)
    if (sp.start >= 0 && sp.start < insns.length) starts.add(sp.start);
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i] as Insn;
    if (!isPseudoCallInsn(insn) && !isPseudoFuncInsn(insn)) continue;
    const t = i + insn.imm + 1;
    if (t < 0 || t >= insns.length) throw log.fail(i, 'call to invalid destination', 'EINVAL');
    starts.add(t);
  }
  return [...starts].sort((a, b) => a - b);
}

/**
 * `check_subprogs`: every jump stays inside its function, and every function ends in `exit`
 * or an unconditional jump, so control never falls from one function into the next.
 */
function checkSubprogs(insns: readonly Insn[], starts: readonly number[], log: VerifierLog): void {
  starts.forEach((start, k) => {
    const end = starts[k + 1] ?? insns.length;
    for (let i = start; i < end; i++) {
      const { code, off, imm } = insns[i] as Insn;
      if (isJmpClass(code) && op(code) !== BPF_EXIT && op(code) !== BPF_CALL) {
        const gotox = code === (BPF_JMP | BPF_JA | BPF_X);
        const t = cls(code) === BPF_JMP32 && op(code) === BPF_JA ? i + imm + 1 : i + off + 1;
        if (!gotox && (t < start || t >= end)) {
          throw log.fail(i, `jump out of range from insn ${i} to ${t}`, 'EINVAL');
        }
      }
    }
    const last = (insns[end - 1] as Insn).code;
    if (last !== (BPF_JMP | BPF_EXIT) && (!isJmpClass(last) || op(last) !== BPF_JA)) {
      throw log.fail(end - 1, 'last insn is not an exit or jmp', 'EINVAL');
    }
  });
}

/** `mark_prune_point` + `mark_jmp_point`: what the kernel marks at a jump target. */
function markTarget(marks: CfgMarks, w: number): void {
  if (w < 0 || w >= marks.prunePoint.length) return;
  marks.prunePoint[w] = true;
  marks.jmpPoint[w] = true;
}

/**
 * `visit_insn`: the successors of insn `t` in the kernel's order (fall-through first, then
 * the branch), marking prune, jump and checkpoint points. Targets may be out of range; the
 * walk reports them when it takes the edge.
 */
function visitInsn(
  prog: Program,
  t: number,
  marks: CfgMarks,
  opts: CfgOptions,
  starts: readonly number[],
): number[] {
  const insn = prog.insns[t] as Insn;
  const { code } = insn;
  if (isPseudoFuncInsn(insn)) return visitCall(t, 2, t + insn.imm + 1, marks);
  if (!isJmpClass(code)) return [t + (isLddw(insn) ? 2 : 1)];
  switch (op(code)) {
    case BPF_EXIT:
      return [];
    case BPF_CALL:
      return visitCallInsn(t, insn, marks, opts);
    case BPF_JA: {
      if ((code & BPF_X) !== 0 && cls(code) === BPF_JMP) return visitGotox(prog, t, marks, starts);
      const w = t + (cls(code) === BPF_JMP32 ? insn.imm : insn.off) + 1;
      markTarget(marks, w);
      return [w];
    }
    default: {
      marks.prunePoint[t] = true;
      if (op(code) === BPF_JCOND && insn.src === BPF_MAY_GOTO) marks.forceCheckpoint[t] = true;
      const w = t + insn.off + 1;
      markTarget(marks, w);
      return [t + 1, w];
    }
  }
}

/** The `BPF_CALL` case of `visit_insn`: callback-calling helpers and kfuncs, iterators. */
function visitCallInsn(t: number, insn: Insn, marks: CfgMarks, opts: CfgOptions): number[] {
  let sync = false;
  let async = false;
  if (insn.src === BPF_HELPER_CALL && (insn.code & BPF_X) === 0) {
    sync = SYNC_CALLBACK_HELPERS.has(insn.imm);
    async = ASYNC_CALLBACK_HELPERS.has(insn.imm);
  } else if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
    const name = opts.kfuncName?.(insn.imm);
    if (name !== undefined) {
      sync = SYNC_CALLBACK_KFUNCS.has(name);
      async = ASYNC_CALLBACK_KFUNCS.has(name);
      if (/^bpf_iter_\w+_next$/.test(name)) {
        marks.prunePoint[t] = true;
        marks.forceCheckpoint[t] = true;
      }
    }
  }
  if (async) marks.prunePoint[t] = true;
  if (sync) {
    marks.callsCallback[t] = true;
    marks.forceCheckpoint[t] = true;
    marks.prunePoint[t] = true;
    marks.jmpPoint[t] = true;
  }
  return visitCall(t, 1, isPseudoCallInsn(insn) ? t + insn.imm + 1 : undefined, marks);
}

/** `visit_func_call_insn`: the return point, then (for local calls and funcs) the callee. */
function visitCall(t: number, size: number, callee: number | undefined, marks: CfgMarks): number[] {
  const ret = t + size;
  markTarget(marks, ret);
  if (callee === undefined) return [ret];
  marks.prunePoint[t] = true;
  markTarget(marks, callee);
  return [ret, callee];
}

/** `visit_gotox_insn`: every jump-table target, or every insn of the function without one. */
function visitGotox(
  prog: Program,
  t: number,
  marks: CfgMarks,
  starts: readonly number[],
): number[] {
  marks.prunePoint[t] = true;
  let targets = prog.gotoxTargets.get(t);
  if (targets === undefined) {
    const k = starts.filter((s) => s <= t).length - 1;
    const start = starts[k] ?? 0;
    const end = starts[k + 1] ?? prog.insns.length;
    const all: number[] = [];
    for (let w = start; w < end; w++) {
      all.push(w);
      if (isLddw(prog.insns[w])) w++;
    }
    targets = all;
  }
  const uniq = [...new Set(targets)];
  for (const w of uniq) markTarget(marks, w);
  return uniq;
}

const UNSEEN = 0;
const DISCOVERED = 1;
const EXPLORED = 2;

interface Walk {
  state: number[];
  postorder: number[];
  loopHeads: Set<number>;
}

/**
 * The DFS of `check_cfg` / `push_insn`: an explicit stack, each insn taking its edges in
 * order; an edge to an insn still on the stack is a back-edge.
 */
function walkCfg(
  n: number,
  succs: readonly (readonly number[])[],
  log: VerifierLog,
  opts: CfgOptions,
): Walk {
  const state = new Array<number>(n).fill(UNSEEN);
  const edge = new Array<number>(n).fill(0);
  const postorder: number[] = [];
  const loopHeads = new Set<number>();
  const allowLoops = opts.allowLoops ?? true;
  for (const entry of [0, ...(opts.entries ?? [])]) {
    if (entry < 0 || entry >= n || state[entry] !== UNSEEN) continue;
    state[entry] = DISCOVERED;
    const stack = [entry];
    while (stack.length > 0) {
      const t = stack[stack.length - 1] as number;
      const out = succs[t] as readonly number[];
      const k = edge[t] as number;
      if (k >= out.length) {
        state[t] = EXPLORED;
        stack.pop();
        postorder.push(t);
        continue;
      }
      edge[t] = k + 1;
      const w = out[k] as number;
      if (w < 0 || w >= n) {
        throw log.fail(t, `jump out of range from insn ${t} to ${w}`, 'EINVAL');
      }
      if (state[w] === UNSEEN) {
        state[w] = DISCOVERED;
        stack.push(w);
      } else if (state[w] === DISCOVERED) {
        if (!allowLoops) throw log.fail(t, `back-edge from insn ${t} to ${w}`, 'EINVAL');
        loopHeads.add(w);
      }
    }
  }
  return { state, postorder, loopHeads };
}
