/**
 * The verifier's main pass (kernel `do_check` with `is_state_visited`, `push_stack`,
 * `pop_stack`, `check_func_call`, `prepare_func_exit` and `check_return_code`): a depth-first
 * walk over every path from an entry, one instruction at a time, with the checks of
 * check-alu.ts, check-mem.ts, check-jmp.ts and check-call.ts, pruning at the CFG's prune points
 * against explored states that cover the current one, and the `1,000,000` processed-insn
 * limit.
 *
 * Called from: verifier.ts.
 *
 * Loops: a loop is walked iteration by iteration until its exit; states at a loop head are
 * pruned against completed states only. A state at a prune point contained in its nearest
 * ancestor at the same insn makes no progress: `infinite loop detected`. At `may_goto`, a state
 * contained in that ancestor with another may_goto depth is pruned (the runtime budget bounds
 * the loop), as in the kernel.
 *
 * Precision (kernel `mark_chain_precision`, precision.ts): scalars start imprecise; an explored
 * state's imprecise scalars (registers and spilled scalars) match any scalar when it prunes
 * (NOT_EXACT). Where the verifier relies on a scalar's value (pointer offsets, helper sizes
 * and constant arguments, decided branches, checked return values, zero stores, values stored
 * in coroutine frames), the scalar is marked precise in the checkpoints of the path it flows
 * from, by backtracking through the jump history each state keeps since its last checkpoint
 * (where an insn's explored list is full, the checkpoint is kept for that alone). A prune hit
 * copies the explored state's marks onto the pruned path (`propagate_precision`); a may_goto
 * state pruned against its in-progress ancestor marks its whole path precise. Only completed
 * explored states prune, so their marks are final. Registers dead at an insn (liveness.ts) are
 * not compared; values recorded in coroutine frame slots are always compared by value.
 *
 * Callbacks: bpf_loop and bpf_for_each_map_elem callbacks are verified where they are called,
 * in a frame above the caller's, to a fixpoint (state-join.ts); timer callbacks are verified
 * after the main program as entries of their own.
 */

import { callxReg, type Insn } from '../isa/insn.js';
import {
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from '../isa/opcodes.js';
import { ldImm64Value } from '../isa/insn.js';
import { jumpTarget, subprogIndexOf } from '../program.js';
import { BPF_FUNC_tail_call } from '../helper-protos.js';
import { scalarKnown } from './bounds.js';
import { tnumIsUnknown } from './tnum.js';
import { BPF_COMPLEXITY_LIMIT_INSNS, BPF_LOG_LEVEL, BPF_LOG_LEVEL2 } from './log.js';
import {
  REG_NOT_INIT,
  regIsPointer,
  regNotInit,
  regPtr,
  regScalar,
  regStr,
  regTypeStr,
  regUnknownScalar,
  regWith,
  type RegState,
} from './reg-state.js';
import {
  copyState,
  ExploredStates,
  initFuncState,
  initVerifierState,
  MAX_CALL_FRAMES,
  statesEqual,
  updateBranchCounts,
  verifierStateStr,
  type VerifierState,
} from './states.js';
import { checkAluOp, readReg, writeReg } from './check-alu.js';
import { checkMemAccess, loadedScalar } from './check-mem.js';
import { checkCondJmp, mapAllRegs } from './check-jmp.js';
import { checkHelperCall, checkKfuncCall, type CallbackRequest } from './check-call.js';
import { joinStates } from './state-join.js';
import {
  markAllScalarsPrecise,
  markChainPrecision,
  PrecisionCheckpoint,
  propagatePrecision,
  pushJmpHistory,
} from './precision.js';
import { checkCallx, forgetAllSlots, isCoroMem, type SuspendedFrame } from './check-coro.js';
import { stackStr, type StackSlot } from './stack.js';
import { STATES_PER_INSN, type VerifierEnv } from './verifier-env.js';
import { checkResLockChecked } from './res-lock.js';

/** Insns that may touch a critical section: a bpf_res_spin_lock result must be checked first. */
const RES_LOCK_USES: ReadonlySet<string> = new Set([
  'ldx',
  'ldxsx',
  'st',
  'stx',
  'atomic',
  'call',
  'callx',
  'exit',
]);

/** A path waiting to be explored (kernel `struct bpf_verifier_stack_elem`). */
interface Work {
  readonly st: VerifierState;
  readonly idx: number;
  readonly prevIdx: number;
  /** Log position when it was pushed, to drop the finished path at level 1. */
  readonly logPos: number;
}

/** Program types whose return value the kernel checks, with the allowed range. */
const RETURN_RANGE: Readonly<Partial<Record<string, readonly [bigint, bigint]>>> = {
  cgroup_skb: [0n, 1n],
};

/** Whether an insn counts as a jump for the checkpoint heuristic (`jmps_processed`). */
function isJmpKind(kind: string): boolean {
  switch (kind) {
    case 'jmp':
    case 'ja':
    case 'ja32':
    case 'may_goto':
    case 'gotox':
    case 'call':
    case 'callx':
    case 'exit':
      return true;
    default:
      return false;
  }
}

/** `Exploration.cbFrame` of a function entered through its token (resume / destroy). */
const CORO_ENTRY = -3;

/** Most rounds of a callback fixpoint before the caller's state is widened to unknowns. */
const CALLBACK_ROUNDS = 8;

/** A timer callback to verify after the main program. */
interface AsyncCallback {
  readonly req: CallbackRequest;
}

/** The registers and stack of the current frame before an insn, for the level-2 comment. */
interface Snapshot {
  readonly frameno: number;
  readonly regs: readonly RegState[];
  readonly stack: readonly StackSlot[];
}

function snapshot(st: VerifierState): Snapshot {
  const f = st.frames[st.curframe];
  return { frameno: st.curframe, regs: f?.regs.slice() ?? [], stack: f?.stack.slice() ?? [] };
}

/**
 * What an insn changed, as the kernel's level-2 comment prints it (`; R2_w=fp-4 fp-8=0000????`):
 * the registers it wrote and, when it wrote the stack, the stack; after a call or return the
 * whole state of the new frame.
 */
function changedStr(before: Snapshot, st: VerifierState): string {
  const f = st.frames[st.curframe];
  if (f === undefined) return '';
  if (st.curframe !== before.frameno) return verifierStateStr(st);
  let out = '';
  f.regs.forEach((r, i) => {
    if (r !== before.regs[i] && r.type !== 'NOT_INIT') out += ` ${regStr(i, r, true, f.frameno)}`;
  });
  if (f.stack.length !== before.stack.length || f.stack.some((x, i) => x !== before.stack[i])) {
    out += stackStr(f.stack, f.frameno);
  }
  return out;
}

/** `verbose_invalid_scalar`'s description of a scalar. */
function scalarDesc(reg: RegState): string {
  if (tnumIsUnknown(reg.scalar.varOff)) return 'unknown scalar value';
  return `smin=${reg.scalar.smin} smax=${reg.scalar.smax}`;
}

/** One exploration: the main program, a callback body or an async callback. */
class Exploration {
  private readonly stack: Work[] = [];
  /** Exit states of the callback frame (sync callbacks only). */
  readonly exits: VerifierState[] = [];
  /** Jumps and insns processed when the last checkpoint was kept. */
  private cpJmps = -Infinity;
  private cpInsns = -Infinity;
  /** Jumps and insns processed when the last history segment started. */
  private segJmps = -Infinity;
  private segInsns = -Infinity;

  private readonly check: DoCheck;
  private readonly explored: ExploredStates;
  /**
   * Frame number of the callback whose exits are collected; -1 for the program, -2 for an async
   * callback, CORO_ENTRY for a function entered through its token.
   */
  private readonly cbFrame: number;
  private readonly retRange: readonly [bigint, bigint] | undefined;
  /** A suspended frame's resume / destroy: the insn of the suspension (for messages). */
  private readonly suspendedAt: number | undefined;

  constructor(
    check: DoCheck,
    explored: ExploredStates,
    cbFrame: number,
    retRange: readonly [bigint, bigint] | undefined,
    suspendedAt?: number,
  ) {
    this.check = check;
    this.explored = explored;
    this.cbFrame = cbFrame;
    this.retRange = retRange;
    this.suspendedAt = suspendedAt;
  }

  run(entry: VerifierState, startIdx: number): void {
    // The entry starts the path's history.
    entry.histParent = undefined;
    entry.firstInsnIdx = startIdx;
    entry.lastInsnIdx = -1;
    entry.jmpHistory = undefined;
    entry.jmpHistoryCnt = 0;
    this.stack.push({ st: entry, idx: startIdx, prevIdx: -1, logPos: this.check.env.log.pos() });
    let first = true;
    for (;;) {
      const w = this.stack.pop();
      if (w === undefined) return;
      const env = this.check.env;
      if (!first && (env.log.level & BPF_LOG_LEVEL2) === 0) env.log.reset(w.logPos);
      if (!first && (env.log.level & BPF_LOG_LEVEL) !== 0) {
        env.log.verbose(`from ${w.prevIdx} to ${w.idx}:${verifierStateStr(w.st)}\n`);
      }
      this.walk(w.st, w.idx, w.prevIdx, first);
      first = false;
    }
  }

  /** Queues `st` to continue at `idx` (kernel `push_stack`): one more open path. */
  push(st: VerifierState, idx: number, prevIdx: number): void {
    if (st.parent !== undefined) st.parent.branches++;
    this.stack.push({ st, idx, prevIdx, logPos: this.check.env.log.pos() });
  }

  /** Whether `st` at a prune point is covered (true: stop this path). */
  private isStateVisited(st: VerifierState, idx: number): boolean {
    const env = this.check.env;
    const liveRegs = env.liveBefore[idx] ?? 0x7ff;
    const op = env.ops[idx];
    // The nearest checkpoint of this path at the same insn (an iteration ago). Every cycle
    // passes through a loop head, so only loop heads and may_goto need the search.
    let anc: VerifierState | undefined;
    if (op?.kind === 'may_goto' || env.cfg.loopHeads.has(idx)) {
      anc = st.parent;
      while (anc !== undefined && anc.insnIdx !== idx) anc = anc.parent;
    }
    if (anc !== undefined && anc.curframe === st.curframe) {
      const within = statesEqual(anc, st, { exact: 'RANGE_WITHIN', liveRegs });
      if (within) {
        if (op?.kind === 'may_goto' && anc.mayGotoDepth !== st.mayGotoDepth) {
          // anc's precision marks are not final yet: keep every scalar of this path precise.
          markAllScalarsPrecise(env, st);
          return true;
        }
        if (op?.kind !== 'may_goto') {
          throw env.fail(idx, `infinite loop detected at insn ${idx}`);
        }
      }
    }
    const old = this.explored.find(idx, st, { liveRegs, exact: 'NOT_EXACT' });
    if (old !== undefined) {
      if (old.hasPrecise) propagatePrecision(env, old, st, idx, liveRegs);
      return true;
    }
    // Like the kernel, keep a new checkpoint only every few jumps (or where one is forced):
    // fewer copies and comparisons, the same pruning for everything but tight loops.
    const force = env.cfg.forceCheckpoint[idx] === true;
    if (!force && (env.jmpsProcessed - this.cpJmps < 2 || env.insnProcessed - this.cpInsns < 8)) {
      return false;
    }
    this.cpJmps = env.jmpsProcessed;
    this.cpInsns = env.insnProcessed;
    const cp = copyState(st);
    cp.branches = 1;
    cp.insnIdx = idx;
    cp.parent = st.parent;
    if (this.explored.add(idx, cp)) {
      st.parent = cp;
      st.histParent = cp;
    } else if (
      force ||
      st.jmpHistoryCnt > 40 ||
      env.jmpsProcessed - this.segJmps >= 20 ||
      env.insnProcessed - this.segInsns >= 100
    ) {
      // Every state kept at idx is still being explored (a long loop): a checkpoint for
      // precision backtracking only, which bounds the history a mark walks and whose marks
      // end the walks of the next iterations. As the kernel adds states in a loop: after 20
      // jumps or 100 insns, or where the path's jump history since its last checkpoint
      // passed 40 entries.
      st.histParent = new PrecisionCheckpoint(st);
    } else {
      return false;
    }
    // A new segment of history starts here; the checkpoint keeps the one that led to it.
    this.segJmps = env.jmpsProcessed;
    this.segInsns = env.insnProcessed;
    st.firstInsnIdx = idx;
    st.jmpHistory = undefined;
    st.jmpHistoryCnt = 0;
    return false;
  }

  /** Ends the current path (exit, prune or error-free fall off). */
  private endPath(st: VerifierState): void {
    updateBranchCounts(st.parent);
  }

  /**
   * Walks one path from `start` (reached from insn `from`, -1 for none) until it exits or is
   * pruned.
   */
  private walk(st: VerifierState, start: number, from: number, printEntry: boolean): void {
    const env = this.check.env;
    const { insns, ops, cfg, log } = env;
    let idx = start;
    let prevIdx = -1;
    let lastIdx = from;
    for (;;) {
      if (++env.insnProcessed > (env.opts.insnLimit ?? BPF_COMPLEXITY_LIMIT_INSNS)) {
        throw env.fail(
          idx,
          `BPF program is too large. Processed ${env.insnProcessed} insn`,
          'E2BIG',
        );
      }
      const insn = insns[idx];
      const op = ops[idx];
      if (insn === undefined || op === undefined) {
        throw env.fail(idx, `invalid insn idx ${idx} insn_cnt ${insns.length}`, 'EINVAL');
      }
      st.insnIdx = idx;
      st.lastInsnIdx = lastIdx;
      if (cfg.prunePoint[idx] === true || cfg.forceCheckpoint[idx] === true) {
        if (this.isStateVisited(st, idx)) {
          if ((log.level & BPF_LOG_LEVEL) !== 0) {
            log.verbose(
              prevIdx >= 0 && (log.level & BPF_LOG_LEVEL2) !== 0
                ? `from ${prevIdx} to ${idx}: safe\n`
                : `${idx}: safe\n`,
            );
          }
          this.endPath(st);
          return;
        }
      }
      const level2 = (log.level & BPF_LOG_LEVEL2) !== 0;
      if (level2 && printEntry && prevIdx < 0) log.verbose(`${idx}:${verifierStateStr(st)}\n`);
      if ((log.level & BPF_LOG_LEVEL) !== 0) {
        const line = env.opts.lineInfo?.(idx);
        if (line !== undefined) log.verbose(`; ${line}\n`);
        log.insn(idx, insns);
      }
      env.recordFacts(idx, st);
      pushJmpHistory(env, st, idx, lastIdx);
      if (isJmpKind(op.kind)) env.jmpsProcessed++;
      prevIdx = idx;
      lastIdx = idx;
      const before = level2 ? snapshot(st) : undefined;
      const next = this.step(st, idx, insn);
      if (next === undefined) {
        this.endPath(st);
        return;
      }
      if (before !== undefined) {
        const changed = changedStr(before, st);
        if (changed !== '') log.insnState(idx, changed);
      }
      idx = next;
    }
  }

  /** Executes one insn on `st`; returns the next insn, or undefined when the path ends. */
  private step(st: VerifierState, idx: number, insn: Insn): number | undefined {
    const env = this.check.env;
    const op = env.ops[idx];
    if (op === undefined) throw new RangeError('bug: no op');
    const f = st.frames[st.curframe];
    if (f === undefined) throw new RangeError('bug: no frame');
    if (st.refs.length > 0 && RES_LOCK_USES.has(op.kind)) checkResLockChecked(env, st, idx);
    switch (op.kind) {
      case 'alu':
      case 'movsx':
      case 'end': {
        const forks = checkAluOp(env, st, idx, insn, op);
        for (const s of forks) this.push(s, idx + 1, idx);
        return idx + 1;
      }
      case 'lddw':
        writeReg(env, st, idx, insn.dst, this.check.ldImm64(idx, insn));
        return idx + 2;
      case 'ldx':
      case 'ldxsx': {
        const loaded = checkMemAccess(env, st, idx, insn.src, insn.off, op.size, 'read', {
          sx: op.kind === 'ldxsx',
        });
        writeReg(env, st, idx, insn.dst, loaded ?? regUnknownScalar());
        return idx + 1;
      }
      case 'st':
        readReg(env, st, idx, insn.dst);
        checkMemAccess(env, st, idx, insn.dst, insn.off, op.size, 'write', {
          value: { imm: BigInt(insn.imm) },
        });
        return idx + 1;
      case 'stx': {
        const value = readReg(env, st, idx, insn.src);
        readReg(env, st, idx, insn.dst);
        checkMemAccess(env, st, idx, insn.dst, insn.off, op.size, 'write', {
          value: { reg: value },
          valueRegno: insn.src,
        });
        return idx + 1;
      }
      case 'atomic': {
        const value = readReg(env, st, idx, insn.src);
        readReg(env, st, idx, insn.dst);
        if (op.op === 'cmpxchg') {
          const r0 = readReg(env, st, idx, 0);
          if (regIsPointer(r0)) throw env.fail(idx, 'R0 leaks addr into mem');
        }
        if (regIsPointer(value)) throw env.fail(idx, `R${insn.src} leaks addr into mem`);
        checkMemAccess(env, st, idx, insn.dst, insn.off, op.size, 'read', { atomic: true });
        checkMemAccess(env, st, idx, insn.dst, insn.off, op.size, 'write', { atomic: true });
        const fetched = loadedScalar(op.size, false);
        if (op.op === 'cmpxchg') writeReg(env, st, idx, 0, fetched);
        else if (op.fetch || op.op === 'xchg') writeReg(env, st, idx, insn.src, fetched);
        return idx + 1;
      }
      case 'ldabs':
      case 'ldind': {
        if (!['socket_filter', 'sched_cls', 'sched_act', 'cgroup_skb'].includes(env.type)) {
          throw env.fail(
            idx,
            'BPF_LD_[ABS|IND] instructions not allowed for this program type',
            'EINVAL',
          );
        }
        if (st.refs.length > 0) {
          throw env.fail(idx, 'BPF_LD_[ABS|IND] cannot be mixed with socket references');
        }
        if (st.activeLocks > 0) {
          throw env.fail(idx, 'BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region');
        }
        const r6 = readReg(env, st, idx, 6);
        if (r6.type !== 'PTR_TO_CTX') {
          throw env.fail(idx, 'at the time of BPF_LD_ABS|IND R6 != pointer to skb');
        }
        if (op.kind === 'ldind') {
          const s = readReg(env, st, idx, insn.src);
          if (regIsPointer(s)) throw env.fail(idx, `R${insn.src} leaks addr into packet`);
        }
        for (let r = 1; r <= 5; r++) f.regs[r] = regNotInit();
        f.regs[0] = loadedScalar(op.size, false);
        return idx + 1;
      }
      case 'ja':
      case 'ja32':
        return jumpTarget(insn, idx, op);
      case 'jmp': {
        const { taken, fall } = checkCondJmp(env, st, idx, insn, op);
        const target = jumpTarget(insn, idx, op);
        if (taken !== undefined && fall !== undefined) {
          this.push(taken, target, idx);
          return idx + 1;
        }
        return taken !== undefined ? target : idx + 1;
      }
      case 'may_goto': {
        // The kernel continues at the target (budget exhausted) and queues the loop body.
        const body = copyState(st);
        body.mayGotoDepth++;
        this.push(body, idx + 1, idx);
        return jumpTarget(insn, idx, op);
      }
      case 'gotox': {
        readReg(env, st, idx, insn.dst);
        const targets = env.prog.gotoxTargets.get(idx);
        if (targets === undefined || targets.length === 0) {
          throw env.fail(idx, `gotox at insn ${idx} has no jump table`);
        }
        for (const t of targets.slice(1)) this.push(copyState(st), t, idx);
        return targets[0];
      }
      case 'call':
        return this.call(st, idx, insn);
      case 'callx': {
        const reg = readReg(env, st, idx, callxReg(insn));
        if (reg.type === 'PTR_TO_FUNC') {
          const seen = env.callxFuncTargets.get(idx) ?? new Set<number>();
          env.callxFuncTargets.set(idx, seen.add(reg.subprog));
          return this.localCall(st, idx, reg.subprog);
        }
        // A token loaded from a frame, a handle or .rodata (check-coro.ts).
        checkCallx(env, st, idx, insn);
        env.callxHandleInsns.add(idx);
        return idx + 1;
      }
      case 'exit':
        return this.exit(st, idx);
    }
  }

  /** A helper, kfunc or BPF-to-BPF call. */
  private call(st: VerifierState, idx: number, insn: Insn): number | undefined {
    const env = this.check.env;
    if (insn.src === BPF_PSEUDO_CALL) {
      const target = idx + insn.imm + 1;
      return this.localCall(st, idx, subprogIndexOf(env.prog, target));
    }
    if (insn.src === BPF_PSEUDO_KFUNC_CALL) {
      // false: bpf_throw, the path ends here.
      const forks: VerifierState[] = [];
      const returns = checkKfuncCall(env, st, idx, insn, forks);
      for (const s of forks) this.push(s, idx + 1, idx);
      return returns ? idx + 1 : undefined;
    }
    if (insn.imm === BPF_FUNC_tail_call && st.refs.length > 0) {
      throw env.fail(idx, 'tail_call would lead to reference leak');
    }
    const cb = checkHelperCall(env, st, idx, insn);
    if (cb !== undefined) {
      if (cb.kind === 'timer') this.check.addAsync({ req: cb });
      else this.check.verifySyncCallback(st, idx, cb);
    }
    return idx + 1;
  }

  /** Enters subprog `subprog` in a new frame (kernel `check_func_call`). */
  private localCall(st: VerifierState, idx: number, subprog: number): number {
    const env = this.check.env;
    if (st.activeLocks > 0)
      throw env.fail(idx, 'function calls are not allowed while holding a lock');
    if (st.curframe + 1 >= MAX_CALL_FRAMES) {
      throw env.fail(idx, `the call stack of ${st.curframe + 2} frames is too deep !`, 'E2BIG');
    }
    const sp = env.prog.subprogs[subprog];
    if (sp === undefined) throw env.fail(idx, `invalid call target subprog ${subprog}`, 'EINVAL');
    for (const fr of st.frames.slice(0, st.curframe + 1)) {
      if (fr.subprogno === subprog) {
        throw env.fail(
          idx,
          `recursive call from ${env.prog.subprogs[st.frames[st.curframe]?.subprogno ?? 0]?.name ?? '?'} to ${sp.name}`,
        );
      }
    }
    const caller = st.frames[st.curframe];
    if (caller === undefined) throw new RangeError('bug: no frame');
    const callee = initFuncState(st.curframe + 1, idx, subprog);
    for (let r = 1; r <= 5; r++) callee.regs[r] = caller.regs[r] ?? REG_NOT_INIT;
    st.frames.length = st.curframe + 1;
    st.frames.push(callee);
    st.curframe++;
    return sp.start;
  }

  /** `exit`: return from a subprog, end a callback run, or end the program. */
  private exit(st: VerifierState, idx: number): number | undefined {
    const env = this.check.env;
    const f = st.frames[st.curframe];
    if (f === undefined) throw new RangeError('bug: no frame');
    const r0 = f.regs[0] ?? REG_NOT_INIT;
    const coroEntryExit = this.cbFrame === CORO_ENTRY && st.curframe === 0;
    if (r0.type === 'NOT_INIT' && !coroEntryExit) throw env.fail(idx, 'R0 !read_ok');
    if (st.curframe === this.cbFrame) {
      this.checkRetRange(st, idx, r0, 'callback return', this.retRange);
      this.exits.push(st);
      return undefined;
    }
    if (st.curframe > 0) {
      if (r0.type === 'PTR_TO_STACK' && r0.frameno === st.curframe) {
        throw env.fail(idx, 'cannot return stack pointer to the caller');
      }
      st.frames.pop();
      st.curframe--;
      const caller = st.frames[st.curframe];
      if (caller === undefined) throw new RangeError('bug: no caller');
      caller.regs[0] = r0;
      for (let r = 1; r <= 5; r++) caller.regs[r] = regNotInit();
      return f.callsite + 1;
    }
    if (st.activeLocks > 0) throw env.fail(idx, 'bpf_spin_unlock is missing');
    const ref = st.refs.find((r) => r.type === 'REF_TYPE_PTR');
    if (ref !== undefined) {
      const kept =
        this.suspendedAt === undefined
          ? ''
          : ` (kept in the frame suspended at insn ${this.suspendedAt})`;
      throw env.fail(idx, `Unreleased reference id=${ref.id} alloc_insn=${ref.insnIdx}${kept}`);
    }
    // A resume / destroy function's r0 reaches no one: callx gives its caller an unknown scalar.
    if (coroEntryExit) return undefined;
    if (regIsPointer(r0) && !env.allowPtrLeaks)
      throw env.fail(idx, 'R0 leaks addr as return value');
    this.checkRetRange(
      st,
      idx,
      r0,
      this.cbFrame === -2 ? 'async callback' : 'program exit',
      this.retRange ?? RETURN_RANGE[env.type],
    );
    return undefined;
  }

  /** `check_return_code`: R0 within `range`. */
  private checkRetRange(
    st: VerifierState,
    idx: number,
    r0: RegState,
    what: string,
    range: readonly [bigint, bigint] | undefined,
  ): void {
    if (range === undefined) return;
    const env = this.check.env;
    if (r0.type !== 'SCALAR_VALUE')
      throw env.fail(idx, `At ${what} the register R0 is not a known value (${regTypeStr(r0)})`);
    const [lo, hi] = range;
    if (r0.scalar.smin < lo || r0.scalar.smax > hi) {
      throw env.fail(
        idx,
        `At ${what} the register R0 has ${scalarDesc(r0)} should have been in [${lo}, ${hi}]`,
      );
    }
    markChainPrecision(env, st, 0);
  }
}

/** The main pass over a program. */
export class DoCheck {
  private readonly asyncCbs: AsyncCallback[] = [];
  /** Functions verified as token entry points → the frame size their r1 had (0: a scalar). */
  readonly coroEntries = new Map<number, number>();
  private readonly asyncSeen = new Set<string>();
  /** `VerifierEnv.suspendedFrames` verified so far. */
  private suspendedDone = 0;

  readonly env: VerifierEnv;

  constructor(env: VerifierEnv) {
    this.env = env;
  }

  /** Verifies the program from insn 0, then every timer callback it registers. */
  run(): void {
    const env = this.env;
    const entry = this.entryState();
    new Exploration(this, env.explored, -1, undefined).run(entry, 0);
    for (let i = 0; i < this.asyncCbs.length; i++) {
      const cb = this.asyncCbs[i] as AsyncCallback;
      const st = this.callbackEntry(cb.req, 0);
      env.inAsyncCallback = true;
      env.asyncSubprog = cb.req.subprog;
      new Exploration(
        this,
        new ExploredStates({ maxStatesPerInsn: STATES_PER_INSN }),
        -2,
        cb.req.retRange,
      ).run(st, this.subprogStart(cb.req.subprog));
      env.inAsyncCallback = false;
    }
    this.verifyCoroEntries();
  }

  /**
   * Verifies every function whose token escaped into a frame or sits in global data as an
   * entry of its own (check-coro.ts): r1 = a frame of the smallest size its token was stored
   * at +0 / +8 of, or an unknown scalar. Exploring one may make more tokens escape, or tie a
   * verified one to a smaller frame: repeat until nothing changes (sizes only shrink).
   */
  private verifyCoroEntries(): void {
    const env = this.env;
    for (const start of env.prog.dataFuncs ?? []) {
      env.escapeFunc(subprogIndexOf(env.prog, start));
    }
    for (;;) {
      // A callx checked at run time (its target must be a verified entry) that also calls a
      // function token on another path: that function must be an entry too.
      for (const idx of env.callxHandleInsns) {
        for (const k of env.callxFuncTargets.get(idx) ?? []) env.escapeFunc(k);
      }
      const todo = [...env.escapedFuncs]
        .sort((a, b) => a - b)
        .find((k) => this.coroEntries.get(k) !== (env.funcFrameSize.get(k) ?? 0));
      if (todo === undefined) {
        const susp = env.suspendedFrames[this.suspendedDone];
        if (susp === undefined) return;
        this.suspendedDone++;
        this.verifySuspended(susp, susp.destroy, 'destroy');
        this.verifySuspended(susp, susp.resume, 'resume');
        continue;
      }
      const size = env.funcFrameSize.get(todo) ?? 0;
      this.coroEntries.set(todo, size);
      const r1 =
        size > 0
          ? regPtr('PTR_TO_MEM', { memCoro: true, memSize: size, frameId: env.newId() })
          : regUnknownScalar();
      const name = this.funcName(todo);
      const what = name === '' ? `func#${todo}` : `${name} (func#${todo})`;
      this.exploreTokenEntry(todo, r1, `token entry ${what}`);
    }
  }

  /**
   * The destroy path (issue 7 item 6, check-coro.ts `suspendFrame`): verifies function
   * `subprog` (the suspended frame's resume or destroy) as a token entry with r1 = that frame,
   * its recorded slots (the suspend index, function tokens, the references moved in) and those
   * references held, so that it must release them before it returns, or suspend again with
   * them in the frame (verified the same way, once per distinct state).
   */
  private verifySuspended(susp: SuspendedFrame, subprog: number, what: string): void {
    const r1 = regPtr('PTR_TO_MEM', {
      memCoro: true,
      memSize: susp.size,
      frameId: this.env.newId(),
    });
    const name = this.funcName(subprog);
    const held = susp.refs.map((r) => `id=${r.id}`).join(' ');
    this.exploreTokenEntry(
      subprog,
      r1,
      `${what} ${name === '' ? '' : `${name} `}(func#${subprog}) of the frame suspended at insn ${susp.insn}, holding ${held}`,
      susp,
    );
  }

  /** The name of subprog `k`, '' when it has none of its own. */
  private funcName(k: number): string {
    const name = this.env.prog.subprogs[k]?.name ?? '';
    return name === `func#${k}` ? '' : name;
  }

  /**
   * Explores function `subprog` as a token entry (r1 = `r1`, r2–r5 unreadable), logging
   * `heading`; with `susp`, r1's frame holds that suspended frame's slots and references.
   */
  private exploreTokenEntry(
    subprog: number,
    r1: RegState,
    heading: string,
    susp?: SuspendedFrame,
  ): void {
    const st = this.entryState();
    const f = initFuncState(0, -1, subprog);
    f.regs[1] = r1;
    st.frames[0] = f;
    if (susp !== undefined) {
      st.coroSlots = susp.slots.map((x) => ({ ...x, frameId: r1.frameId }));
      st.refs.push(...susp.refs);
    }
    this.env.log.verbose(`${heading}: ${regStr(1, r1)}\n`);
    new Exploration(
      this,
      new ExploredStates({ maxStatesPerInsn: STATES_PER_INSN }),
      CORO_ENTRY,
      undefined,
      susp?.insn,
    ).run(st, this.subprogStart(subprog));
  }

  /** The state at insn 0: R1 = ctx (or the input buffer for `mem`), R10 = fp. */
  private entryState(): VerifierState {
    const env = this.env;
    const st = initVerifierState();
    const f = st.frames[0];
    if (f === undefined) throw new RangeError('bug');
    if (env.type === 'mem') {
      f.regs[1] = regPtr('PTR_TO_MEM', { memSize: env.memSize });
      const len = regScalar({
        ...scalarKnown(0n),
        varOff: { value: 0n, mask: (1n << BigInt(env.memSize.toString(2).length)) - 1n },
        umax: BigInt(env.memSize),
        smax: BigInt(env.memSize),
        u32Max: env.memSize,
        s32Max: env.memSize,
      });
      f.regs[2] = len;
    } else {
      f.regs[1] = regPtr('PTR_TO_CTX');
    }
    return st;
  }

  private subprogStart(k: number): number {
    return this.env.prog.subprogs[k]?.start ?? 0;
  }

  /** The value of an lddw (kernel `check_ld_imm`). */
  ldImm64(idx: number, insn: Insn): RegState {
    const env = this.env;
    switch (insn.src) {
      case 0:
        return regScalar(scalarKnown(ldImm64Value(env.insns, idx)));
      case BPF_PSEUDO_FUNC: {
        const op = env.ops[idx];
        if (op === undefined) throw new RangeError('bug');
        return regPtr('PTR_TO_FUNC', {
          subprog: subprogIndexOf(env.prog, jumpTarget(insn, idx, op)),
        });
      }
      case BPF_PSEUDO_MAP_FD:
      case BPF_PSEUDO_MAP_IDX:
      case BPF_PSEUDO_MAP_VALUE:
      case BPF_PSEUDO_MAP_IDX_VALUE: {
        const m = env.mapAt(idx);
        if (m === undefined)
          throw env.fail(idx, `fd ${insn.imm} is not pointing to valid bpf_map`, 'EINVAL');
        if (!m.value) return regPtr('CONST_PTR_TO_MAP', { map: m.map });
        return regPtr('PTR_TO_MAP_VALUE', { map: m.map, off: m.off });
      }
      default:
        // Extern ksyms: an address the program may pass on but not dereference.
        return regUnknownScalar();
    }
  }

  /** Remembers a timer callback to verify after the main program. */
  addAsync(cb: AsyncCallback): void {
    const key = `${cb.req.subprog}:${cb.req.args[0]?.map?.id ?? 0}`;
    if (this.asyncSeen.has(key)) return;
    this.asyncSeen.add(key);
    this.asyncCbs.push(cb);
  }

  /** The entry state of a callback run on its own (async). */
  private callbackEntry(req: CallbackRequest, frameno: number): VerifierState {
    const st = this.entryState();
    const f = initFuncState(frameno, -1, req.subprog);
    req.args.forEach((a, i) => (f.regs[i + 1] = a));
    st.frames[0] = f;
    return st;
  }

  /**
   * Verifies a callback that runs 0..n times before the helper returns, and leaves in `st`
   * a caller state covering every number of runs (a fixpoint, widened after a few rounds).
   */
  verifySyncCallback(st: VerifierState, idx: number, req: CallbackRequest): void {
    const env = this.env;
    const explored = new ExploredStates({ maxStatesPerInsn: STATES_PER_INSN });
    let entry = copyState(st);
    entry.parent = undefined;
    // The callback may run any number of times: it starts without recorded frame slots.
    entry.coroSlots = [];
    for (let round = 0; ; round++) {
      const cbState = copyState(entry);
      cbState.branches = 1;
      const callee = initFuncState(entry.curframe + 1, idx, req.subprog);
      callee.inCallbackFn = true;
      req.args.forEach((a, i) => (callee.regs[i + 1] = a));
      if (entry.curframe + 1 >= MAX_CALL_FRAMES) {
        throw env.fail(
          idx,
          `the call stack of ${entry.curframe + 2} frames is too deep !`,
          'E2BIG',
        );
      }
      cbState.frames.length = entry.curframe + 1;
      cbState.frames.push(callee);
      cbState.curframe++;
      const ex = new Exploration(this, explored, cbState.curframe, req.retRange);
      env.callbackCallers.push(st);
      try {
        ex.run(cbState, this.subprogStart(req.subprog));
      } finally {
        env.callbackCallers.pop();
      }
      let joined: VerifierState = entry;
      for (const exit of ex.exits) {
        exit.frames.pop();
        exit.curframe--;
        const j = joinStates(joined, exit, round >= CALLBACK_ROUNDS);
        if (j === undefined) {
          throw env.fail(idx, 'callback must release every reference it acquires and hold no lock');
        }
        joined = j;
      }
      if (statesEqual(entry, joined, { exact: 'RANGE_WITHIN' })) break;
      if (round > CALLBACK_ROUNDS + 2) {
        throw env.fail(idx, `callback of insn ${idx} does not converge`, 'E2BIG');
      }
      entry = joinStates(entry, joined, round >= 1) ?? joined;
      entry.parent = undefined;
    }
    // The caller continues with the fixpoint: stack effects of any number of runs.
    const f = st.frames[st.curframe];
    const ef = entry.frames[entry.curframe];
    if (f === undefined || ef === undefined) throw new RangeError('bug');
    for (let i = 0; i <= st.curframe; i++) {
      const src = entry.frames[i];
      const dst = st.frames[i];
      if (src === undefined || dst === undefined) continue;
      dst.stack.length = 0;
      dst.stack.push(...src.stack);
      for (let r = 6; r <= 9; r++) dst.regs[r] = src.regs[r] ?? REG_NOT_INIT;
    }
    f.regs[0] = regUnknownScalar();
    // The callback may have written frames and left frame addresses in memory the caller does
    // not follow: no slot holds, no frame stays tracked.
    forgetAllSlots(st);
    mapAllRegs(st, (r) => (isCoroMem(r) && r.frameId !== 0 ? regWith(r, { frameId: 0 }) : r));
  }
}
