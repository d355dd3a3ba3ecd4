/**
 * Scalar precision tracking (kernel `mark_chain_precision`, `__mark_chain_precision`,
 * `backtrack_insn`, `get_prev_insn_idx`, `mark_precise_scalar_ids`, `mark_all_scalars_precise`,
 * `propagate_precision` and the per-state jump history `push_jmp_history`, verifier.c).
 *
 * Scalars start imprecise: an imprecise scalar of an explored state matches any scalar when
 * states are compared for pruning (states.ts `regsafe`). When the verifier relies on a
 * scalar's value for safety (a pointer offset, a helper size, a decided branch, a checked
 * return value, ...), the scalar is marked precise in every checkpoint of the current path
 * from which it flows: the instructions of the path are walked backwards, following the
 * registers and stack slots the value came from, and marking them precise in the parent
 * states (the explored states themselves, which later prune with those marks). The current
 * state itself is not marked (its future checkpoints get marks from their own future).
 *
 * The path is cut into segments, one per checkpoint (`histParent`): a state keeps only the
 * insns since its last checkpoint, as the kernel does: the first and the last insn of the
 * segment (`firstInsnIdx`, `lastInsnIdx`) and a jump history of the insns reached other than
 * by falling through (with the insn they came from) and of the spills and fills (with their
 * stack slot); the insns between two entries are walked by index. A walk stops as soon as
 * nothing is left to follow, which is at the latest in a checkpoint where everything asked
 * for is precise already: a precise mark is only set by a walk that went on to the sources of
 * the value, so what is precise in a checkpoint has its sources marked further up. Where the
 * explored-state list of an insn is full of states still being explored (long loops), a
 * `PrecisionCheckpoint` takes the explored state's place in the chain (do-check.ts): masks
 * of which registers and slots hold scalars and which are precise, no registers. It bounds
 * the segments walked inside a loop to an iteration or so, and its marks stop the next
 * iteration's walk. Insns that cannot touch what a walk follows (computeBacktrackRegs) are
 * stepped over by index.
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
import type { Program } from '../program.js';
import type { VerifierState } from './states.js';
import type { VerifierEnv } from './verifier-env.js';

/**
 * One entry of a state's jump history (kernel `struct bpf_jmp_history_entry`): insn `idx`
 * reached from `prevIdx` other than by falling through, or a spill or fill at `idx`. Entries
 * are shared by the copies of a state and never change.
 */
export interface JmpHistoryEntry {
  readonly idx: number;
  /** The insn executed before `idx` on the path (-1 at the entry of an exploration). */
  readonly prevIdx: number;
  /** Frame of the stack slot a spill or fill at `idx` used, -1 for none. */
  readonly stackFrame: number;
  /** The slot (`spi`) of that spill or fill. */
  readonly stackSpi: number;
  /** The entry before this one in the segment. */
  readonly prev: JmpHistoryEntry | undefined;
}

/** The insn before `idx` when falling through to it (the first slot of an lddw). */
function linearPrev(env: VerifierEnv, idx: number): number {
  return idx >= 2 && env.ops[idx - 1] === undefined ? idx - 2 : idx - 1;
}

/**
 * Records how insn `idx` of `st` was reached, before it runs (kernel `push_jmp_history` at a
 * jmp point): nothing when it follows `prevIdx` by falling through.
 */
export function pushJmpHistory(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  prevIdx: number,
): void {
  if (prevIdx >= 0 && linearPrev(env, idx) === prevIdx) return;
  st.jmpHistory = { idx, prevIdx, stackFrame: -1, stackSpi: 0, prev: st.jmpHistory };
  st.jmpHistoryCnt++;
}

/**
 * Records that the insn being executed by `st` (`insnIdx`) spilled to or filled from slot
 * `spi` of `frame` (kernel `INSN_F_STACK_ACCESS`).
 */
export function noteStackAccess(st: VerifierState, frame: number, spi: number): void {
  const top = st.jmpHistory;
  // An entry for this insn is the newest one: reaching the insn again needs a jump, which
  // would have a newer entry.
  if (top !== undefined && top.idx === st.insnIdx) {
    st.jmpHistory = {
      idx: top.idx,
      prevIdx: top.prevIdx,
      stackFrame: frame,
      stackSpi: spi,
      prev: top.prev,
    };
    return;
  }
  st.jmpHistory = {
    idx: st.insnIdx,
    prevIdx: st.lastInsnIdx,
    stackFrame: frame,
    stackSpi: spi,
    prev: top,
  };
  st.jmpHistoryCnt++;
}

const MAX_FRAMES = 8;
/** Stack slots per frame (512 bytes). */
const MAX_SLOTS = 64;
const ARG_REGS = 0b111110; // R1-R5
const REG_FP = 10;

/** The lowest set bit of `mask` as a number (0-31). */
function lowBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

/**
 * The registers and stack slots still to be followed (kernel `struct backtrack_state`): a
 * register bit mask per frame and a slot bit mask per frame (slots 0-31 at `2 * frame`,
 * 32-63 at `2 * frame + 1`).
 */
class Backtrack {
  frame = 0;
  readonly regs: number[] = new Array<number>(MAX_FRAMES).fill(0);
  readonly slots: number[] = new Array<number>(MAX_FRAMES * 2).fill(0);

  /** Nothing to follow, in frame `frame`. */
  reset(frame: number): this {
    this.frame = frame;
    // Frames above are set when a walk enters them (exit).
    for (let f = 0; f <= frame; f++) {
      this.regs[f] = 0;
      this.slots[2 * f] = 0;
      this.slots[2 * f + 1] = 0;
    }
    return this;
  }

  empty(): boolean {
    if (this.frame === 0) return this.regs[0] === 0 && this.slots[0] === 0 && this.slots[1] === 0;
    for (let f = 0; f <= this.frame; f++) {
      if (this.regs[f] !== 0 || this.slots[2 * f] !== 0 || this.slots[2 * f + 1] !== 0) {
        return false;
      }
    }
    return true;
  }

  /** The registers of frame `f`. */
  regMask(f = this.frame): number {
    return this.regs[f] ?? 0;
  }

  setReg(r: number, f = this.frame): void {
    this.regs[f] = (this.regs[f] ?? 0) | (1 << r);
  }

  clearReg(r: number, f = this.frame): void {
    this.regs[f] = (this.regs[f] ?? 0) & ~(1 << r);
  }

  /** Whether frame `f` has stack slots to follow. */
  hasSlots(f: number): boolean {
    return this.slots[2 * f] !== 0 || this.slots[2 * f + 1] !== 0;
  }

  hasSlot(f: number, spi: number): boolean {
    return ((this.slots[2 * f + (spi >> 5)] ?? 0) & (1 << (spi & 31))) !== 0;
  }

  setSlot(f: number, spi: number): void {
    const w = 2 * f + (spi >> 5);
    this.slots[w] = (this.slots[w] ?? 0) | (1 << (spi & 31));
  }

  clearSlot(f: number, spi: number): void {
    const w = 2 * f + (spi >> 5);
    this.slots[w] = (this.slots[w] ?? 0) & ~(1 << (spi & 31));
  }

  anySlot(): boolean {
    for (let w = 0; w < 2 * (this.frame + 1); w++) if (this.slots[w] !== 0) return true;
    return false;
  }
}

/** The one `Backtrack` of the walks, which never nest (kernel `env->bt`). */
const scratch = new Backtrack();

/** Backtracking cannot follow this insn: mark everything (`-ENOTSUPP`). */
const UNSUPPORTED = false;

/**
 * Per insn, the registers whose tracking makes `backtrackInsn` do anything there: the
 * registers it writes or compares with a register; -1 where it always must run (stores,
 * calls, exits: stack slots and frames). The walk skips the other insns by index.
 */
export function computeBacktrackRegs(prog: Program): Int32Array {
  const masks = new Int32Array(prog.insns.length);
  prog.insns.forEach((insn, idx) => {
    const op = prog.ops[idx];
    if (op === undefined) return;
    const dst = 1 << insn.dst;
    switch (op.kind) {
      case 'alu':
        masks[idx] = op.op !== 'neg' && (op.op === 'mov' || op.source === 'reg') ? dst : 0;
        return;
      case 'movsx':
      case 'lddw':
      case 'ldx':
      case 'ldxsx':
        masks[idx] = dst;
        return;
      case 'ldabs':
      case 'ldind':
        masks[idx] = 1;
        return;
      case 'jmp':
        masks[idx] = op.source === 'reg' ? dst | (1 << insn.src) : 0;
        return;
      case 'end':
      case 'ja':
      case 'ja32':
      case 'may_goto':
      case 'gotox':
        return;
      case 'st':
      case 'stx':
      case 'atomic':
      case 'exit':
      case 'call':
      case 'callx':
        masks[idx] = -1;
        return;
    }
  });
  return masks;
}

/**
 * Steps `bt` back over insn `idx` (kernel `backtrack_insn`): what was needed after it becomes
 * what is needed before it. `hist` is its jump history entry, if any; `subseq` the insn
 * executed right after it on the path. Returns false when it cannot follow the insn.
 */
function backtrackInsn(
  env: VerifierEnv,
  idx: number,
  hist: JmpHistoryEntry | undefined,
  subseq: number,
  bt: Backtrack,
): boolean {
  const insn = env.insns[idx];
  const op = env.ops[idx];
  if (insn === undefined || op === undefined) return UNSUPPORTED;
  const fr = bt.frame;
  const regs = bt.regs[fr] ?? 0;
  const dst = 1 << insn.dst;
  const src = insn.src === REG_FP ? 0 : 1 << insn.src;
  switch (op.kind) {
    case 'alu':
      // dst = dst op src or dst = src: src flows into dst; with an imm, only dst's own value.
      if ((regs & dst) === 0 || op.op === 'neg') return true;
      if (op.op === 'mov') {
        bt.regs[fr] = op.source === 'reg' ? (regs & ~dst) | src : regs & ~dst;
      } else if (op.source === 'reg') {
        bt.regs[fr] = regs | src;
      }
      return true;
    case 'movsx':
      if ((regs & dst) !== 0) bt.regs[fr] = (regs & ~dst) | src;
      return true;
    case 'end':
      return true;
    case 'lddw':
      bt.regs[fr] = regs & ~dst;
      return true;
    case 'ldabs':
    case 'ldind':
      return (regs & 1) === 0;
    case 'ldx':
    case 'ldxsx':
      if ((regs & dst) === 0) return true;
      bt.regs[fr] = regs & ~dst;
      // A fill restores the spilled register: follow its slot. Any other load is a fresh
      // value whose precision is this state's own.
      if (hist !== undefined && hist.stackFrame >= 0) bt.setSlot(hist.stackFrame, hist.stackSpi);
      return true;
    case 'st':
    case 'stx':
      // A tracked register used as the base of a store: pointer subtraction gave it.
      if ((regs & dst) !== 0) return UNSUPPORTED;
      if (hist === undefined || hist.stackFrame < 0) return true;
      if (!bt.hasSlot(hist.stackFrame, hist.stackSpi)) return true;
      bt.clearSlot(hist.stackFrame, hist.stackSpi);
      if (op.kind === 'stx') bt.regs[fr] = regs | (1 << insn.src);
      return true;
    case 'atomic': {
      if ((regs & dst) !== 0) return UNSUPPORTED;
      const fetched = op.op === 'cmpxchg' ? 0 : op.fetch || op.op === 'xchg' ? insn.src : -1;
      if (fetched >= 0 && (regs & (1 << fetched)) !== 0) return UNSUPPORTED;
      if (
        hist !== undefined &&
        hist.stackFrame >= 0 &&
        bt.hasSlot(hist.stackFrame, hist.stackSpi)
      ) {
        return UNSUPPORTED;
      }
      return true;
    }
    case 'jmp':
      // A comparison of two registers refined both: each one's value depends on the other.
      if (op.source === 'reg' && (regs & (dst | src)) !== 0) bt.regs[fr] = regs | dst | src;
      return true;
    case 'ja':
    case 'ja32':
    case 'may_goto':
    case 'gotox':
      return true;
    case 'exit': {
      // Backwards from the caller into the callee that returned.
      if ((regs & ARG_REGS) !== 0 || fr + 1 >= MAX_FRAMES) return UNSUPPORTED;
      bt.regs[fr] = regs & ~1;
      bt.frame = fr + 1;
      bt.regs[fr + 1] = regs & 1;
      bt.slots[2 * fr + 2] = 0;
      bt.slots[2 * fr + 3] = 0;
      return true;
    }
    case 'call':
    case 'callx': {
      const local =
        (op.kind === 'call' && insn.src === BPF_PSEUDO_CALL) ||
        (op.kind === 'callx' && subseq !== idx + 1);
      if (local) {
        // Backwards from the callee's first insn to its caller: only R1-R5 pass.
        if (subseq === idx + 1 || fr === 0) return UNSUPPORTED;
        if ((regs & ~ARG_REGS) !== 0 || bt.hasSlots(fr)) return UNSUPPORTED;
        bt.regs[fr] = 0;
        bt.frame = fr - 1;
        bt.regs[fr - 1] = (bt.regs[fr - 1] ?? 0) | regs;
        return true;
      }
      // A helper or kfunc: R0 is its result, R1-R5 are clobbered. A callback may have written
      // the caller's stack (explored on its own, not in this history): give up on slots.
      if (
        op.kind === 'call' &&
        insn.src !== BPF_PSEUDO_KFUNC_CALL &&
        (insn.imm === BPF_FUNC_loop || insn.imm === BPF_FUNC_for_each_map_elem) &&
        bt.anySlot()
      ) {
        return UNSUPPORTED;
      }
      bt.regs[fr] = regs & ~1;
      return (regs & ARG_REGS) === 0;
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

/** The scalar id of the register or spilled register `slot`, 0 for none. */
function slotScalarId(slot: StackSlot | undefined): number {
  return isSpilledScalar(slot) ? slot.spilledPtr.id : 0;
}

/**
 * Adds to `bt` every scalar register and spilled scalar of `st` sharing a scalar id with one
 * already in `bt` (kernel `mark_precise_scalar_ids`): a bounds check on one refined them all.
 */
function addLinkedScalars(st: VerifierState, bt: Backtrack): void {
  let ids: number[] | undefined;
  const top = Math.min(bt.frame, st.curframe);
  for (let fr = 0; fr <= top; fr++) {
    const f = st.frames[fr];
    if (f === undefined) continue;
    for (let m = bt.regMask(fr); m !== 0; m &= m - 1) {
      const reg = f.regs[lowBit(m)];
      if (reg !== undefined && reg.id !== 0 && reg.type === 'SCALAR_VALUE')
        (ids ??= []).push(reg.id);
    }
    for (let w = 0; w < 2; w++) {
      for (let m = bt.slots[2 * fr + w] ?? 0; m !== 0; m &= m - 1) {
        const id = slotScalarId(f.stack[32 * w + lowBit(m)]);
        if (id !== 0) (ids ??= []).push(id);
      }
    }
  }
  if (ids === undefined) return;
  for (let fr = 0; fr <= top; fr++) {
    const f = st.frames[fr];
    if (f === undefined) continue;
    for (let r = 0; r < REG_FP; r++) {
      const reg = f.regs[r];
      if (reg?.type === 'SCALAR_VALUE' && reg.id !== 0 && ids.includes(reg.id)) bt.setReg(r, fr);
    }
    const n = Math.min(f.stack.length, MAX_SLOTS);
    for (let spi = 0; spi < n; spi++) {
      const id = slotScalarId(f.stack[spi]);
      if (id !== 0 && ids.includes(id)) bt.setSlot(fr, spi);
    }
  }
}

/**
 * Marks the registers and slots of `bt` precise in the checkpoint `st`, with the scalars
 * linked to them (`addLinkedScalars`), dropping from `bt` those that are not scalars or were
 * precise already (their sources are marked already).
 */
function markState(st: VerifierState, bt: Backtrack): void {
  addLinkedScalars(st, bt);
  for (let fr = 0; fr <= bt.frame; fr++) {
    const f = st.frames[fr];
    if (f === undefined) continue;
    for (let m = bt.regMask(fr); m !== 0; m &= m - 1) {
      const r = lowBit(m);
      const reg = f.regs[r];
      if (reg === undefined || reg.type !== 'SCALAR_VALUE' || reg.precise) {
        bt.clearReg(r, fr);
      } else {
        f.regs[r] = preciseReg(reg);
        st.hasPrecise = true;
      }
    }
    for (let w = 0; w < 2; w++) {
      for (let m = bt.slots[2 * fr + w] ?? 0; m !== 0; m &= m - 1) {
        const spi = 32 * w + lowBit(m);
        const slot = f.stack[spi];
        if (!isSpilledScalar(slot) || slot.spilledPtr.precise) {
          bt.clearSlot(fr, spi);
        } else {
          f.stack[spi] = preciseSlot(slot);
          st.hasPrecise = true;
        }
      }
    }
  }
}

/**
 * A checkpoint kept for precision backtracking only, where the explored list of its insn is
 * full (do-check.ts): the segment of history it ends and, per frame, which registers and
 * spilled stack slots hold scalars, which of those are marked precise, and their scalar ids.
 * Nothing compares it with other states, so it keeps no registers.
 */
export class PrecisionCheckpoint {
  readonly histParent: VerifierState | PrecisionCheckpoint | undefined;
  readonly firstInsnIdx: number;
  readonly lastInsnIdx: number;
  readonly jmpHistory: JmpHistoryEntry | undefined;
  readonly curframe: number;
  allPrecise = false;
  /**
   * Six words per frame: the registers holding scalars, the stack slots holding spilled
   * scalars (slots 0-31, 32-63), then the same three marked precise.
   */
  readonly masks: number[];
  /**
   * Scalars sharing an id with another one, three numbers each: frame, location (a register,
   * or `LOC_SLOT + spi`) and id; undefined when none.
   */
  readonly ids: number[] | undefined;

  constructor(st: VerifierState) {
    this.histParent = st.histParent;
    this.firstInsnIdx = st.firstInsnIdx;
    this.lastInsnIdx = st.lastInsnIdx;
    this.jmpHistory = st.jmpHistory;
    this.curframe = st.curframe;
    const masks = new Array<number>(6 * (st.curframe + 1)).fill(0);
    let ids: number[] | undefined;
    for (let fr = 0; fr <= st.curframe; fr++) {
      const f = st.frames[fr];
      if (f === undefined) continue;
      let regs = 0;
      let lo = 0;
      let hi = 0;
      for (let r = 0; r < REG_FP; r++) {
        const reg = f.regs[r];
        if (reg?.type !== 'SCALAR_VALUE') continue;
        regs |= 1 << r;
        if (reg.id !== 0) (ids ??= []).push(fr, r, reg.id);
      }
      const n = Math.min(f.stack.length, MAX_SLOTS);
      for (let spi = 0; spi < n; spi++) {
        const slot = f.stack[spi];
        if (!isSpilledScalar(slot)) continue;
        if (spi < 32) lo |= 1 << spi;
        else hi |= 1 << (spi - 32);
        if (slot.spilledPtr.id !== 0) (ids ??= []).push(fr, LOC_SLOT + spi, slot.spilledPtr.id);
      }
      masks[6 * fr] = regs;
      masks[6 * fr + 1] = lo;
      masks[6 * fr + 2] = hi;
    }
    this.masks = masks;
    this.ids = ids === undefined ? undefined : sharedIds(ids);
  }

  /** `markState` on this checkpoint: bit operations on its masks. */
  mark(bt: Backtrack): void {
    if (this.ids !== undefined) this.addLinked(bt);
    const m = this.masks;
    for (let fr = 0; fr <= bt.frame; fr++) {
      const w = 6 * fr;
      const regs = bt.regMask(fr) & (m[w] ?? 0) & ~(m[w + 3] ?? 0);
      const lo = (bt.slots[2 * fr] ?? 0) & (m[w + 1] ?? 0) & ~(m[w + 4] ?? 0);
      const hi = (bt.slots[2 * fr + 1] ?? 0) & (m[w + 2] ?? 0) & ~(m[w + 5] ?? 0);
      m[w + 3] = (m[w + 3] ?? 0) | regs;
      m[w + 4] = (m[w + 4] ?? 0) | lo;
      m[w + 5] = (m[w + 5] ?? 0) | hi;
      bt.regs[fr] = regs;
      bt.slots[2 * fr] = lo;
      bt.slots[2 * fr + 1] = hi;
    }
  }

  /** Every scalar precise. */
  markAll(): void {
    this.allPrecise = true;
    const m = this.masks;
    for (let w = 0; w < m.length; w += 6) {
      m[w + 3] = m[w] ?? 0;
      m[w + 4] = m[w + 1] ?? 0;
      m[w + 5] = m[w + 2] ?? 0;
    }
  }

  /** `addLinkedScalars` on this checkpoint. */
  private addLinked(bt: Backtrack): void {
    const ids = this.ids ?? [];
    const linked: number[] = [];
    for (let k = 0; k < ids.length; k += 3) {
      if (isTracked(bt, ids[k] ?? 0, ids[k + 1] ?? 0)) linked.push(ids[k + 2] ?? 0);
    }
    if (linked.length === 0) return;
    for (let k = 0; k < ids.length; k += 3) {
      if (!linked.includes(ids[k + 2] ?? 0)) continue;
      const fr = ids[k] ?? 0;
      const loc = ids[k + 1] ?? 0;
      if (loc < LOC_SLOT) bt.setReg(loc, fr);
      else bt.setSlot(fr, loc - LOC_SLOT);
    }
  }
}

/** The entries of `ids` (frame, location, id) whose id another entry has too; undefined if none. */
function sharedIds(ids: readonly number[]): number[] | undefined {
  let out: number[] | undefined;
  for (let k = 2; k < ids.length; k += 3) {
    const id = ids[k];
    let shared = false;
    for (let j = 2; j < ids.length && !shared; j += 3) shared = j !== k && ids[j] === id;
    if (shared) (out ??= []).push(ids[k - 2] ?? 0, ids[k - 1] ?? 0, id ?? 0);
  }
  return out;
}

/** `PrecisionCheckpoint.ids`: locations from here on are stack slots. */
const LOC_SLOT = 16;

function isTracked(bt: Backtrack, fr: number, loc: number): boolean {
  if (fr > bt.frame) return false;
  return loc < LOC_SLOT ? (bt.regMask(fr) & (1 << loc)) !== 0 : bt.hasSlot(fr, loc - LOC_SLOT);
}

/** Marks every scalar of the checkpoints above `st` precise (kernel `mark_all_scalars_precise`). */
function markAllInChain(st: VerifierState): void {
  // A state marked so before has its parents marked too (parents never change).
  for (let s = st.histParent; s !== undefined && !s.allPrecise; s = s.histParent) {
    if (s instanceof PrecisionCheckpoint) {
      s.markAll();
      continue;
    }
    s.allPrecise = true;
    s.hasPrecise = true;
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

/**
 * Walks the path of `st` backwards from insn `idx` (skipped: its inputs are what `bt` holds)
 * with `hist` the jump history from there on, marking what `bt` follows precise in every
 * checkpoint it flows from (kernel `__mark_chain_precision`).
 */
function backtrackChain(
  env: VerifierEnv,
  st: VerifierState,
  bt: Backtrack,
  idx: number,
  hist: JmpHistoryEntry | undefined,
): void {
  const masks = env.backtrackRegs;
  const ops = env.ops;
  addLinkedScalars(st, bt);
  let s: VerifierState | PrecisionCheckpoint = st;
  let i = idx;
  let subseq = -1;
  let skip = true;
  for (;;) {
    // The insns of the segment of s, from i back to its first (kernel `get_prev_insn_idx`).
    while (i >= 0) {
      const e = hist !== undefined && hist.idx === i ? hist : undefined;
      const uses = masks[i] ?? -1;
      if (skip) {
        skip = false;
      } else if (uses < 0 || (uses & (bt.regs[bt.frame] ?? 0)) !== 0) {
        if (!backtrackInsn(env, i, e, subseq, bt)) {
          markAllScalarsPrecise(env, st);
          return;
        }
        if (bt.empty()) return;
      }
      if (
        i === s.firstInsnIdx &&
        (hist === undefined || (e !== undefined && e.prev === undefined))
      ) {
        break;
      }
      subseq = i;
      if (e !== undefined) {
        i = e.prevIdx;
        hist = e.prev;
      } else {
        i = i >= 2 && ops[i - 1] === undefined ? i - 2 : i - 1;
      }
      if (i < 0) {
        // The start of the segment was not found: the history does not describe the path.
        markAllScalarsPrecise(env, st);
        return;
      }
    }
    const parent: VerifierState | PrecisionCheckpoint | undefined = s.histParent;
    if (parent === undefined) break;
    if (parent.curframe !== bt.frame) {
      markAllScalarsPrecise(env, st);
      return;
    }
    subseq = s.firstInsnIdx;
    s = parent;
    if (s instanceof PrecisionCheckpoint) s.mark(bt);
    else markState(s, bt);
    if (bt.empty()) return;
    i = s.lastInsnIdx;
    hist = s.jmpHistory;
  }
  // The entry of the exploration. The program's inputs need nothing more; a callback's come
  // from the paths that called it, which this history does not reach.
  if (env.callbackCallers.length > 0) markAllScalarsPrecise(env, st);
}

/**
 * Marks register `regno` (and `regno2`, unless -1) of the current frame of `st`, inputs of
 * the insn `st` is executing, precise in the checkpoints of its path they flow from (kernel
 * `mark_chain_precision`). Registers that do not hold scalars are skipped.
 */
export function markChainPrecision(
  env: VerifierEnv,
  st: VerifierState,
  regno: number,
  regno2 = -1,
): void {
  const regs = st.frames[st.curframe]?.regs;
  if (regs === undefined) return;
  let mask = regs[regno]?.type === 'SCALAR_VALUE' ? 1 << regno : 0;
  if (regno2 >= 0 && regs[regno2]?.type === 'SCALAR_VALUE') mask |= 1 << regno2;
  if (mask === 0) return;
  const bt = scratch.reset(st.curframe);
  bt.regs[st.curframe] = mask;
  backtrackChain(env, st, bt, st.insnIdx, st.jmpHistory);
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
  const bt = scratch.reset(cur.curframe);
  for (let fr = 0; fr <= old.curframe && fr <= cur.curframe; fr++) {
    const f = old.frames[fr];
    const c = cur.frames[fr];
    if (f === undefined || c === undefined) continue;
    const live = fr === old.curframe ? liveRegs : 0x3ff;
    for (let r = 0; r < REG_FP; r++) {
      if ((live & (1 << r)) === 0) continue;
      const reg = f.regs[r];
      if (
        reg?.precise === true &&
        reg.type === 'SCALAR_VALUE' &&
        c.regs[r]?.type === 'SCALAR_VALUE'
      ) {
        bt.setReg(r, fr);
      }
    }
    const n = Math.min(f.stack.length, MAX_SLOTS);
    for (let spi = 0; spi < n; spi++) {
      const slot = f.stack[spi];
      if (isSpilledScalar(slot) && slot.spilledPtr.precise) bt.setSlot(fr, spi);
    }
  }
  if (bt.empty()) return;
  // The walk starts at idx, which the pruned path reached from its last insn.
  let hist = cur.jmpHistory;
  if (cur.lastInsnIdx < 0 || linearPrev(env, idx) !== cur.lastInsnIdx) {
    hist = { idx, prevIdx: cur.lastInsnIdx, stackFrame: -1, stackSpi: 0, prev: hist };
  }
  backtrackChain(env, cur, bt, idx, hist);
}
