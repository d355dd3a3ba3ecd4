/**
 * Conditional jumps on the verifier state (kernel `check_cond_jmp_op`): decides which sides
 * can run (`is_branch_taken`), refines scalars on each side (`reg_set_min_max`, then the linked
 * copies: `sync_linked_regs`), turns `_or_null` pointers into pointers or NULL after a null
 * check (`mark_ptr_or_null_regs`, releasing the reference on the NULL side), and extends the
 * proven range of packet pointers compared against `data_end` (`try_match_pkt_pointers`,
 * `find_good_pkt_pointers`).
 *
 * Called from: do-check.ts for `jmp` insns.
 */

import type { Insn } from '../isa/insn.js';
import type { JmpCond, OpInfo } from '../isa/table.js';
import { scalarKnown, toU64, type Scalar } from './bounds.js';
import { condJmpOutcome, regSetMinMax } from './cond.js';
import { resLockBranch } from './res-lock.js';
import {
  markPtrOrNull,
  regIsNull,
  regIsPointer,
  regScalar,
  regUnknownScalar,
  regWith,
  typeIsPktPointer,
  type RegState,
  regAtZeroOff,
} from './reg-state.js';
import { copyState, type CoroSlot, type VerifierState } from './states.js';
import { readReg } from './check-alu.js';
import { MAX_PACKET_OFF } from './check-mem.js';
import type { VerifierEnv } from './verifier-env.js';
import { markChainPrecision } from './precision.js';

/** The two sides of a conditional jump; a side that cannot run is undefined. */
export interface JmpBranches {
  readonly taken: VerifierState | undefined;
  readonly fall: VerifierState | undefined;
}

/**
 * Replaces every register and spilled register of every frame of `st`, and every value
 * recorded in a coroutine frame slot, by `fn(reg)` (kernel `bpf_for_each_reg_in_vstate`).
 * `fn` returns its argument when nothing changes. A slot value `fn` makes NOT_INIT (a released
 * reference) becomes an unknown scalar, as the kernel does for spills (check-coro.ts).
 */
export function mapAllRegs(st: VerifierState, fn: (reg: RegState) => RegState): void {
  const slots = st.coroSlots;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i] as CoroSlot;
    const n = fn(s.reg);
    if (n !== s.reg) slots[i] = { ...s, reg: n.type === 'NOT_INIT' ? regUnknownScalar() : n };
  }
  for (const f of st.frames) {
    for (let r = 0; r < f.regs.length; r++) {
      const reg = f.regs[r] as RegState;
      const n = fn(reg);
      if (n !== reg) f.regs[r] = n;
    }
    for (let spi = 0; spi < f.stack.length; spi++) {
      const slot = f.stack[spi];
      if (slot === undefined || slot.slotType[7] !== 'STACK_SPILL') continue;
      const n = fn(slot.spilledPtr);
      if (n !== slot.spilledPtr) f.stack[spi] = Object.freeze({ ...slot, spilledPtr: n });
    }
  }
}

/** `mark_ptr_or_null_regs`: the null check of pointer id `id` on one side. */
function markPtrOrNullRegs(st: VerifierState, reg: RegState, isNull: boolean): void {
  const id = reg.id;
  mapAllRegs(st, (r) => markPtrOrNull(r, id, isNull));
  if (isNull && reg.refObjId !== 0) {
    // The NULL side holds nothing: drop the reference the acquire created.
    const i = st.refs.findIndex((ref) => ref.id === reg.refObjId);
    if (i >= 0) st.refs.splice(i, 1);
  }
}

/** `sync_linked_regs`: copies the refined `reg` into every scalar sharing its id. */
function syncLinked(st: VerifierState, reg: RegState): void {
  if (reg.type !== 'SCALAR_VALUE' || reg.id === 0) return;
  mapAllRegs(st, (r) =>
    r.type === 'SCALAR_VALUE' && r.id === reg.id ? regWith(reg, { live: r.live }) : r,
  );
}

/** A copy of `st` with the refined scalars of `dst`/`src` written back. */
function refineSide(
  st: VerifierState,
  insn: Insn,
  useSrcReg: boolean,
  dst: RegState,
  dstScalar: Scalar,
  src: RegState,
  srcScalar: Scalar,
): VerifierState {
  const f = st.frames[st.curframe];
  if (f === undefined) return st;
  const nd = regWith(dst, { scalar: dstScalar });
  f.regs[insn.dst] = nd;
  syncLinked(st, nd);
  if (useSrcReg && insn.src !== insn.dst) {
    const ns = regWith(src, { scalar: srcScalar });
    f.regs[insn.src] = ns;
    syncLinked(st, ns);
  }
  return st;
}

/** `find_good_pkt_pointers`: registers with `reg`'s id gain range `reg.off` (+1 if open). */
function findGoodPktPointers(st: VerifierState, reg: RegState, rightOpen: boolean): void {
  if (reg.off < 0 || (reg.off === 0 && rightOpen)) return;
  if (
    reg.scalar.umax > BigInt(MAX_PACKET_OFF) ||
    reg.scalar.umax + BigInt(reg.off) > BigInt(MAX_PACKET_OFF)
  ) {
    return;
  }
  const newRange = reg.off + (rightOpen ? 1 : 0);
  mapAllRegs(st, (r) =>
    r.type === reg.type && r.id === reg.id && r.range < newRange
      ? regWith(r, { range: newRange })
      : r,
  );
}

/** Whether `reg` is a packet pointer at the start of the packet (`reg_is_init_pkt_pointer`). */
function isInitPkt(reg: RegState): boolean {
  return reg.type === 'PTR_TO_PACKET' && regAtZeroOff(reg);
}

/**
 * `try_match_pkt_pointers`: for `lo` compared with its end (`pkt` with `pkt_end`, `pkt_meta`
 * with the start of `pkt`), the side on which `lo <= end` (or `lo < end`) holds gains range.
 */
function matchPktPointers(
  cond: JmpCond,
  dst: RegState,
  src: RegState,
  taken: VerifierState,
  fall: VerifierState,
): void {
  const loEnd = (lo: RegState, hi: RegState): boolean =>
    (lo.type === 'PTR_TO_PACKET' && hi.type === 'PTR_TO_PACKET_END') ||
    (lo.type === 'PTR_TO_PACKET_META' && isInitPkt(hi));
  let lo: RegState;
  // Relation of lo to end on the taken side when lo is the dst: a cond on (dst, src).
  let c: JmpCond = cond;
  if (loEnd(dst, src)) lo = dst;
  else if (loEnd(src, dst)) {
    lo = src;
    const swap: Partial<Record<JmpCond, JmpCond>> = { gt: 'lt', lt: 'gt', ge: 'le', le: 'ge' };
    const s = swap[cond];
    if (s === undefined) return;
    c = s;
  } else return;
  // c relates lo to end on the taken side.
  switch (c) {
    case 'gt': // lo > end taken; fall: lo <= end
      findGoodPktPointers(fall, lo, false);
      return;
    case 'ge': // fall: lo < end
      findGoodPktPointers(fall, lo, true);
      return;
    case 'lt': // taken: lo < end
      findGoodPktPointers(taken, lo, true);
      return;
    case 'le': // taken: lo <= end
      findGoodPktPointers(taken, lo, false);
      return;
    default:
      return;
  }
}

/**
 * Checks `if dst COND src goto` and returns the state of each side that can run; `st` itself
 * becomes the fall-through side (or the taken side when only that one can run).
 */
export function checkCondJmp(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  insn: Insn,
  op: OpInfo,
): JmpBranches {
  if (op.kind !== 'jmp') throw new RangeError(`bug: checkCondJmp on ${op.kind}`);
  const { cond, width } = op;
  const useSrcReg = op.source === 'reg';
  const dst = readReg(env, st, idx, insn.dst);
  const src = useSrcReg
    ? readReg(env, st, idx, insn.src)
    : regScalar(scalarKnown(width === 32 ? BigInt(insn.imm >>> 0) : toU64(BigInt(insn.imm))));
  const dstPtr = regIsPointer(dst);
  const srcPtr = regIsPointer(src);
  if (dstPtr || srcPtr) {
    if (width === 32)
      throw env.fail(idx, `R${dstPtr ? insn.dst : insn.src} pointer comparison prohibited`);
    // A scalar register compared with a pointer: a known NULL decides the null check.
    if (useSrcReg && dstPtr !== srcPtr && regIsNull(dstPtr ? src : dst)) {
      markChainPrecision(env, st, dstPtr ? insn.src : insn.dst);
    }
    return pointerJmp(st, cond, dst, src);
  }
  const sameReg = useSrcReg && insn.src === insn.dst;
  const out = condJmpOutcome(dst.scalar, src.scalar, cond, width, sameReg);
  const zero = !useSrcReg && insn.imm === 0;
  if (out.taken === 1 || out.taken === 0) {
    // The verifier follows one side only, decided by the values: they must be precise
    // (check_cond_jmp_op when is_branch_taken decides).
    markChainPrecision(env, st, insn.dst, useSrcReg ? insn.src : -1);
  }
  if (out.taken === 1) {
    resLockBranch(dst, cond, zero, st, undefined);
    return { taken: st, fall: undefined };
  }
  if (out.taken === 0) {
    resLockBranch(dst, cond, zero, undefined, st);
    return { taken: undefined, fall: st };
  }
  const b = out.states ?? regSetMinMax(dst.scalar, src.scalar, cond, width, sameReg);
  const taken = refineSide(copyState(st), insn, useSrcReg, dst, b.trueDst, src, b.trueSrc);
  const fall = refineSide(st, insn, useSrcReg, dst, b.falseDst, src, b.falseSrc);
  resLockBranch(dst, cond, zero, taken, fall);
  return { taken, fall };
}

/** A conditional jump with a pointer operand. */
function pointerJmp(st: VerifierState, cond: JmpCond, dst: RegState, src: RegState): JmpBranches {
  // Null checks: `if ptr == 0` / `if ptr != 0` (either operand order).
  if (cond === 'eq' || cond === 'ne') {
    const ptr = regIsPointer(dst) ? dst : src;
    const other = ptr === dst ? src : dst;
    if (regIsNull(other)) {
      if (!ptr.maybeNull) {
        // A pointer that is not _or_null is never NULL.
        return cond === 'eq' ? { taken: undefined, fall: st } : { taken: st, fall: undefined };
      }
      const taken = copyState(st);
      markPtrOrNullRegs(taken, ptr, cond === 'eq');
      markPtrOrNullRegs(st, ptr, cond !== 'eq');
      return { taken, fall: st };
    }
  }
  const taken = copyState(st);
  if (typeIsPktPointer(dst.type) || typeIsPktPointer(src.type)) {
    matchPktPointers(cond, dst, src, taken, st);
  }
  return { taken, fall: st };
}
