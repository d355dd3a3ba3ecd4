/**
 * Scalar precision tracking (kernel `mark_chain_precision`, `__mark_chain_precision`,
 * `backtrack_insn`, `mark_precise_scalar_ids`, `mark_all_scalars_precise`,
 * `propagate_precision` and the per-state instruction history `push_jmp_history`, verifier.c).
 *
 * Scalars start imprecise: an imprecise scalar of an explored state matches any scalar when
 * states are compared for pruning (states.ts `regsafe`). When the verifier relies on a
 * scalar's value for safety (a pointer offset, a helper size, a decided branch, a checked
 * return value, ...), the scalar is marked precise in every checkpoint of the current path
 * from which it flows: the instructions of the path are walked backwards (each state keeps
 * the instructions it executed since its parent checkpoint, with the stack slot of spills
 * and fills), following the registers and stack slots the value came from, and marking them
 * precise in the parent states (the explored states themselves, which later prune with
 * those marks). The current state itself is not marked (its future checkpoints get marks
 * from their own future).
 *
 * Differences from the kernel, all conservative (more marks):
 * - Registers linked by a scalar id are all marked whenever one is, at every state boundary
 *   (the kernel's 6.5-6.9 `mark_precise_scalar_ids`, applied before marking the parent).
 * - Whatever backtracking cannot follow (pointer arithmetic on a tracked register, atomic
 *   fetches, legacy packet loads, stack slots across a callback-calling helper, inconsistent
 *   frames) marks every scalar of the path precise (`mark_all_scalars_precise`); so does a
 *   `may_goto` state pruned against its own in-progress ancestor, whose marks are not final.
 * - Callbacks run in explorations of their own (do-check.ts): what a callback's backtracking
 *   cannot resolve at its entry (its arguments, the caller's frames) marks every scalar of
 *   the calling paths precise.
 *
 * Called from: do-check.ts (history, prune hits, return values), check-alu.ts (pointer
 * arithmetic), check-jmp.ts (decided branches), check-mem.ts (spills, fills, zero stores,
 * handle accesses), check-call.ts (helper and kfunc arguments).
 */

import { BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL } from '../isa/opcodes.js';
import { BPF_FUNC_for_each_map_elem, BPF_FUNC_loop } from '../helper-protos.js';
import { regWith, type RegState } from './reg-state.js';
import { isSpilledReg, type StackSlot } from './stack.js';
import type { VerifierState } from './states.js';
import type { VerifierEnv } from './verifier-env.js';

/** One executed instruction of a state's history (kernel `struct bpf_jmp_history_entry`). */
export interface HistNode {
  readonly idx: number;
  readonly prev: HistNode | undefined;
  /** Frame of the stack slot a spill or fill at this insn used, -1 for none. */
  stackFrame: number;
  /** The slot (`spi`) of that spill or fill. */
  stackSpi: number;
}

/** Appends insn `idx` to the history of `st` (called before the insn executes). */
export function pushHistory(st: VerifierState, idx: number): void {
  st.hist = { idx, prev: st.hist, stackFrame: -1, stackSpi: 0 };
  st.histLen = (st.histLen ?? 0) + 1;
}

/**
 * Longest history walked: a path that found no room for a checkpoint for this long (every
 * kept state at its prune points still in progress) marks its parents all precise instead of
 * walking it again and again.
 */
const MAX_HISTORY = 16384;

/** Records that the current insn of `st` spilled to or filled from slot `spi` of `frame`. */
export function noteStackAccess(st: VerifierState, frame: number, spi: number): void {
  const h = st.hist;
  if (h === undefined) return;
  h.stackFrame = frame;
  h.stackSpi = spi;
}

const MAX_FRAMES = 8;
const ARG_REGS = 0b111110; // R1-R5

/** The registers and stack slots still to be followed (kernel `struct backtrack_state`). */
class Backtrack {
  frame: number;
  readonly regs: number[] = new Array<number>(MAX_FRAMES).fill(0);
  readonly slots: bigint[] = new Array<bigint>(MAX_FRAMES).fill(0n);

  constructor(frame: number) {
    this.frame = frame;
  }

  empty(): boolean {
    for (let f = 0; f <= this.frame; f++) {
      if ((this.regs[f] ?? 0) !== 0 || (this.slots[f] ?? 0n) !== 0n) return false;
    }
    return true;
  }

  hasReg(r: number, f = this.frame): boolean {
    return ((this.regs[f] ?? 0) & (1 << r)) !== 0;
  }

  setReg(r: number, f = this.frame): void {
    this.regs[f] = (this.regs[f] ?? 0) | (1 << r);
  }

  clearReg(r: number, f = this.frame): void {
    this.regs[f] = (this.regs[f] ?? 0) & ~(1 << r);
  }

  hasSlot(f: number, spi: number): boolean {
    return ((this.slots[f] ?? 0n) & (1n << BigInt(spi))) !== 0n;
  }

  setSlot(f: number, spi: number): void {
    this.slots[f] = (this.slots[f] ?? 0n) | (1n << BigInt(spi));
  }

  clearSlot(f: number, spi: number): void {
    this.slots[f] = (this.slots[f] ?? 0n) & ~(1n << BigInt(spi));
  }

  anySlot(): boolean {
    return this.slots.some((s) => s !== 0n);
  }
}

/** Backtracking cannot follow this insn: mark everything (`-ENOTSUPP`). */
const UNSUPPORTED = false;

/**
 * Steps `bt` back over the insn of `node` (kernel `backtrack_insn`): what was needed after it
 * becomes what is needed before it. `subseq` is the insn executed right after it on the path.
 * Returns false when it cannot follow the insn.
 */
function backtrackInsn(env: VerifierEnv, node: HistNode, subseq: number, bt: Backtrack): boolean {
  const idx = node.idx;
  const insn = env.insns[idx];
  const op = env.ops[idx];
  if (insn === undefined || op === undefined) return UNSUPPORTED;
  const dreg = insn.dst;
  const sreg = insn.src;
  switch (op.kind) {
    case 'alu':
      if (!bt.hasReg(dreg)) return true;
      if (op.op === 'neg') return true;
      if (op.op === 'mov') {
        bt.clearReg(dreg);
        if (op.source === 'reg' && sreg !== 10) bt.setReg(sreg);
        return true;
      }
      if (op.source === 'reg' && sreg !== 10) bt.setReg(sreg);
      return true;
    case 'movsx':
      if (!bt.hasReg(dreg)) return true;
      bt.clearReg(dreg);
      if (sreg !== 10) bt.setReg(sreg);
      return true;
    case 'end':
      return true;
    case 'lddw':
      bt.clearReg(dreg);
      return true;
    case 'ldabs':
    case 'ldind':
      return !bt.hasReg(0);
    case 'ldx':
    case 'ldxsx':
      if (!bt.hasReg(dreg)) return true;
      bt.clearReg(dreg);
      // A fill restores the spilled register: follow its slot. Any other load is a fresh
      // value whose precision is this state's own.
      if (node.stackFrame >= 0) bt.setSlot(node.stackFrame, node.stackSpi);
      return true;
    case 'st':
    case 'stx':
      // A tracked register used as the base of a store: pointer subtraction gave it.
      if (bt.hasReg(dreg)) return UNSUPPORTED;
      if (node.stackFrame < 0 || !bt.hasSlot(node.stackFrame, node.stackSpi)) return true;
      bt.clearSlot(node.stackFrame, node.stackSpi);
      if (op.kind === 'stx') bt.setReg(sreg);
      return true;
    case 'atomic': {
      if (bt.hasReg(dreg)) return UNSUPPORTED;
      const fetched = op.op === 'cmpxchg' ? 0 : op.fetch || op.op === 'xchg' ? sreg : -1;
      if (fetched >= 0 && bt.hasReg(fetched)) return UNSUPPORTED;
      if (node.stackFrame >= 0 && bt.hasSlot(node.stackFrame, node.stackSpi)) return UNSUPPORTED;
      return true;
    }
    case 'jmp':
      if (op.source === 'reg' && (bt.hasReg(dreg) || bt.hasReg(sreg))) {
        bt.setReg(dreg);
        bt.setReg(sreg);
      }
      return true;
    case 'ja':
    case 'ja32':
    case 'may_goto':
    case 'gotox':
      return true;
    case 'exit': {
      // Backwards from the caller into the callee that returned.
      if (((bt.regs[bt.frame] ?? 0) & ARG_REGS) !== 0) return UNSUPPORTED;
      const r0 = bt.hasReg(0);
      bt.clearReg(0);
      if (bt.frame + 1 >= MAX_FRAMES) return UNSUPPORTED;
      bt.frame++;
      bt.regs[bt.frame] = r0 ? 1 : 0;
      bt.slots[bt.frame] = 0n;
      return true;
    }
    case 'call':
    case 'callx': {
      const local =
        (op.kind === 'call' && sreg === BPF_PSEUDO_CALL) ||
        (op.kind === 'callx' && subseq !== idx + 1);
      if (local) {
        // Backwards from the callee's first insn to its caller: only R1-R5 pass.
        if (subseq === idx + 1 || bt.frame === 0) return UNSUPPORTED;
        const regs = bt.regs[bt.frame] ?? 0;
        if ((regs & ~ARG_REGS) !== 0 || (bt.slots[bt.frame] ?? 0n) !== 0n) return UNSUPPORTED;
        bt.regs[bt.frame] = 0;
        bt.frame--;
        bt.regs[bt.frame] = (bt.regs[bt.frame] ?? 0) | regs;
        return true;
      }
      // A helper or kfunc: R0 is its result, R1-R5 are clobbered. A callback may have written
      // the caller's stack (explored on its own, not in this history): give up on slots.
      if (
        op.kind === 'call' &&
        sreg !== BPF_PSEUDO_KFUNC_CALL &&
        (insn.imm === BPF_FUNC_loop || insn.imm === BPF_FUNC_for_each_map_elem) &&
        bt.anySlot()
      ) {
        return UNSUPPORTED;
      }
      bt.clearReg(0);
      return ((bt.regs[bt.frame] ?? 0) & ARG_REGS) === 0;
    }
  }
}

function preciseReg(reg: RegState): RegState {
  return reg.precise ? reg : regWith(reg, { precise: true });
}

function preciseSlot(slot: StackSlot): StackSlot {
  return Object.freeze({ ...slot, spilledPtr: preciseReg(slot.spilledPtr) });
}

function isSpilledScalar(slot: StackSlot | undefined): slot is StackSlot {
  return slot !== undefined && isSpilledReg(slot) && slot.spilledPtr.type === 'SCALAR_VALUE';
}

/**
 * Adds to `bt` every scalar register and spilled scalar of `st` sharing a scalar id with one
 * already in `bt` (kernel `mark_precise_scalar_ids`): a bounds check on one refined them all.
 */
function addLinkedScalars(st: VerifierState, bt: Backtrack): void {
  const ids = new Set<number>();
  const top = Math.min(bt.frame, st.curframe);
  for (let fr = 0; fr <= top; fr++) {
    const f = st.frames[fr];
    if (f === undefined) continue;
    for (let r = 0; r < 10; r++) {
      const reg = f.regs[r];
      if (bt.hasReg(r, fr) && reg?.type === 'SCALAR_VALUE' && reg.id !== 0) ids.add(reg.id);
    }
    for (let spi = 0; spi < f.stack.length; spi++) {
      const s = f.stack[spi];
      if (bt.hasSlot(fr, spi) && isSpilledScalar(s) && s.spilledPtr.id !== 0) {
        ids.add(s.spilledPtr.id);
      }
    }
  }
  if (ids.size === 0) return;
  for (let fr = 0; fr <= top; fr++) {
    const f = st.frames[fr];
    if (f === undefined) continue;
    for (let r = 0; r < 10; r++) {
      const reg = f.regs[r];
      if (reg?.type === 'SCALAR_VALUE' && ids.has(reg.id)) bt.setReg(r, fr);
    }
    for (let spi = 0; spi < f.stack.length; spi++) {
      const s = f.stack[spi];
      if (isSpilledScalar(s) && ids.has(s.spilledPtr.id)) bt.setSlot(fr, spi);
    }
  }
}

/**
 * Marks the registers and slots of `bt` precise in the checkpoint `st` (dropping those that
 * are not scalars or already precise: their sources are marked already).
 */
function markState(st: VerifierState, bt: Backtrack): void {
  for (let fr = 0; fr <= bt.frame; fr++) {
    const f = st.frames[fr];
    if (f === undefined) continue;
    for (let r = 0; r < 11; r++) {
      if (!bt.hasReg(r, fr)) continue;
      const reg = f.regs[r];
      if (reg === undefined || reg.type !== 'SCALAR_VALUE' || reg.precise) bt.clearReg(r, fr);
      else f.regs[r] = preciseReg(reg);
    }
    const mask = bt.slots[fr] ?? 0n;
    if (mask === 0n) continue;
    for (let spi = 0; spi < 64; spi++) {
      if ((mask & (1n << BigInt(spi))) === 0n) continue;
      const s = f.stack[spi];
      if (!isSpilledScalar(s) || s.spilledPtr.precise) bt.clearSlot(fr, spi);
      else f.stack[spi] = preciseSlot(s);
    }
  }
}

/** Marks every scalar of the checkpoints above `st` precise (kernel `mark_all_scalars_precise`). */
function markAllInChain(st: VerifierState): void {
  // A state marked so before has its parents marked too (parents never change).
  for (let s = st.parent; s !== undefined && s.allPrecise !== true; s = s.parent) {
    s.allPrecise = true;
    for (const f of s.frames) {
      for (let r = 0; r < f.regs.length; r++) {
        const reg = f.regs[r];
        if (reg?.type === 'SCALAR_VALUE' && !reg.precise) f.regs[r] = preciseReg(reg);
      }
      for (let spi = 0; spi < f.stack.length; spi++) {
        const slot = f.stack[spi];
        if (isSpilledScalar(slot) && !slot.spilledPtr.precise) f.stack[spi] = preciseSlot(slot);
      }
    }
  }
}

/**
 * The big hammer: every scalar of the path of `st` precise, and, inside a callback, of the
 * paths that called it.
 */
export function markAllScalarsPrecise(env: VerifierEnv, st: VerifierState): void {
  markAllInChain(st);
  for (const caller of env.callbackCallers) {
    markAllInChain(caller);
    // The caller's own state is a checkpoint for nothing yet, but the call's arguments are
    // among its registers: its parents are what later prunes.
  }
}

/** What to mark: registers of the current frame and slots of any frame. */
export interface PrecisionRequest {
  readonly regs?: readonly number[];
  /** Registers of other frames: [frame, regno]. */
  readonly frameRegs?: readonly (readonly [number, number])[];
  readonly slots?: readonly (readonly [number, number])[];
}

/**
 * Marks what `req` names precise in the checkpoints of `st`'s path it flows from (kernel
 * `__mark_chain_precision`). `atInsn`: the history of `st` ends with the insn being executed
 * (its registers are those before it, so it is skipped); otherwise the history ends before
 * `nextIdx`, the insn about to run (a prune hit).
 */
export function markChainPrecision(
  env: VerifierEnv,
  st: VerifierState,
  req: PrecisionRequest,
  atInsn = true,
  nextIdx = -1,
): void {
  const bt = new Backtrack(st.curframe);
  for (const r of req.regs ?? []) {
    const reg = st.frames[st.curframe]?.regs[r];
    if (reg?.type === 'SCALAR_VALUE') bt.setReg(r);
  }
  for (const [fr, r] of req.frameRegs ?? []) {
    if (st.frames[fr]?.regs[r]?.type === 'SCALAR_VALUE') bt.setReg(r, fr);
  }
  for (const [fr, spi] of req.slots ?? []) {
    if (fr <= st.curframe) bt.setSlot(fr, spi);
  }
  if (bt.empty()) return;
  if ((st.histLen ?? 0) > MAX_HISTORY) {
    markAllScalarsPrecise(env, st);
    return;
  }
  addLinkedScalars(st, bt);
  let node = st.hist;
  let subseq = nextIdx;
  if (atInsn && node !== undefined) {
    subseq = node.idx;
    node = node.prev;
  }
  let s = st;
  for (;;) {
    for (; node !== undefined; node = node.prev) {
      if (!backtrackInsn(env, node, subseq, bt)) {
        markAllScalarsPrecise(env, st);
        return;
      }
      if (bt.empty()) return;
      subseq = node.idx;
    }
    const parent = s.parent;
    if (parent === undefined) break;
    if (parent.curframe !== bt.frame) {
      markAllScalarsPrecise(env, st);
      return;
    }
    s = parent;
    addLinkedScalars(s, bt);
    markState(s, bt);
    if (bt.empty()) return;
    node = s.hist;
  }
  // The entry of the exploration. The program's inputs need nothing more; a callback's come
  // from the paths that called it, which this history does not reach.
  if (env.callbackCallers.length > 0) markAllScalarsPrecise(env, st);
}

/**
 * At a prune hit of `cur` against `old` before `idx` (kernel `propagate_precision`): what old
 * needs precise, cur's path needs too, or its checkpoints would prune unsafely later.
 * `liveRegs` are the registers of the current frame live at `idx`.
 */
export function propagatePrecision(
  env: VerifierEnv,
  old: VerifierState,
  cur: VerifierState,
  idx: number,
  liveRegs: number,
): void {
  const frameRegs: [number, number][] = [];
  const slots: [number, number][] = [];
  for (let fr = 0; fr <= old.curframe; fr++) {
    const f = old.frames[fr];
    if (f === undefined) continue;
    for (let r = 0; r < 10; r++) {
      if (fr === old.curframe && (liveRegs & (1 << r)) === 0) continue;
      const reg = f.regs[r];
      if (reg?.type === 'SCALAR_VALUE' && reg.precise) frameRegs.push([fr, r]);
    }
    for (let spi = 0; spi < f.stack.length; spi++) {
      const s = f.stack[spi];
      if (isSpilledScalar(s) && s.spilledPtr.precise) slots.push([fr, spi]);
    }
  }
  if (frameRegs.length === 0 && slots.length === 0) return;
  markChainPrecision(env, cur, { frameRegs, slots }, false, idx);
}
