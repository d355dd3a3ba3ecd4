/**
 * The checked spin lock, `bpf_res_spin_lock(lock) -> int` / `bpf_res_spin_unlock(lock)`: the
 * form of the lock that fast-path termination can make fail (notes/fast-path-termination.md §6,
 * the kernel's rqspinlock kfuncs). The call returns 0 with the lock taken, or a negative error
 * (-ETIMEDOUT, -EDEADLK, or the fast path of a terminated run) without it, so the program must
 * find out which before it enters the critical section:
 *
 * - at the call, r0 becomes an unknown scalar with a fresh id, and the state holds a
 *   REF_TYPE_RES_LOCK reference with that id (the lock is *pending*);
 * - a conditional jump `if rX == 0` / `if rX != 0` on a register with that id (r0 or a copy)
 *   resolves it: on the zero side the lock is held (`active_locks`, released only by
 *   bpf_res_spin_unlock), on the other side it is not;
 * - a memory access, a call or an exit while the lock is pending is rejected: the result must be
 *   checked before the critical section.
 *
 * Called from: do-check.ts (every insn), check-jmp.ts (conditional jumps), check-call.ts (the
 * kfunc call and its unlock).
 */

import type { JmpCond } from '../isa/table.js';
import { regUnknownScalar, regWith, type RegState } from './reg-state.js';
import type { VerifierState } from './states.js';
import type { VerifierEnv } from './verifier-env.js';

/** The pending reference of `st`, if a bpf_res_spin_lock result is not checked yet. */
function pending(st: VerifierState): { readonly id: number; readonly ptr: number } | undefined {
  return st.refs.find((r) => r.type === 'REF_TYPE_RES_LOCK');
}

/**
 * Applies a bpf_res_spin_lock call on the lock of map `mapId` at `idx` and returns r0: no lock
 * may be held or pending.
 */
export function resLockCall(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  mapId: number,
): RegState {
  if (st.activeLocks > 0 || pending(st) !== undefined)
    throw env.fail(idx, 'Locking two bpf_spin_locks are not allowed');
  const id = env.newId();
  st.refs.push({ type: 'REF_TYPE_RES_LOCK', id, insnIdx: idx, ptr: mapId });
  return regWith(regUnknownScalar(), { id });
}

/** Applies bpf_res_spin_unlock of the lock of map `mapId`. */
export function resUnlockCall(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  mapId: number,
): void {
  if (st.activeLocks === 0) throw env.fail(idx, 'bpf_res_spin_unlock without taking a lock');
  if (st.activeLockPtr !== mapId) throw env.fail(idx, 'bpf_res_spin_unlock of different lock');
  st.activeLocks = 0;
  st.activeLockPtr = 0;
}

/**
 * Rejects an insn that needs the lock's outcome (memory access, call, exit) while a
 * bpf_res_spin_lock result is unchecked.
 */
export function checkResLockChecked(env: VerifierEnv, st: VerifierState, idx: number): void {
  const p = pending(st);
  if (p === undefined) return;
  const at = st.refs.find((r) => r.id === p.id)?.insnIdx ?? idx;
  throw env.fail(
    idx,
    `the result of bpf_res_spin_lock at insn ${at} must be checked (if r0 != 0) before the critical section`,
  );
}

/**
 * Resolves a pending lock at `if dst COND 0`: `taken` and `fall` are the two sides (either may
 * be undefined when it cannot run). On the side where dst == 0 the lock is held.
 */
export function resLockBranch(
  dst: RegState,
  cond: JmpCond,
  srcIsZero: boolean,
  taken: VerifierState | undefined,
  fall: VerifierState | undefined,
): void {
  if (!srcIsZero || (cond !== 'eq' && cond !== 'ne') || dst.id === 0) return;
  const resolve = (st: VerifierState | undefined, held: boolean): void => {
    if (st === undefined) return;
    const k = st.refs.findIndex((r) => r.type === 'REF_TYPE_RES_LOCK' && r.id === dst.id);
    if (k < 0) return;
    const ref = st.refs[k];
    st.refs.splice(k, 1);
    if (held && ref !== undefined) {
      st.activeLocks = 1;
      st.activeLockPtr = ref.ptr;
    }
  };
  resolve(taken, cond === 'eq');
  resolve(fall, cond === 'ne');
}
