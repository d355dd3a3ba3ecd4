/**
 * bpf_spin_lock (93) and bpf_spin_unlock (94) on a `struct bpf_spin_lock` (a u32) in a map
 * value. The lock word holds the owner: the locking worker's index + 1, 0 when free. On shared
 * memory (a Vm with workers) the word is changed with `Atomics`; otherwise plainly.
 *
 * Resilient, as notes/fast-path-termination.md §10.1 asks: the program cannot see a failure of
 * bpf_spin_lock, and a critical section calls no helper, so a lock that stays taken can only
 * belong to a worker that died or a run that trapped inside the section. A waiter therefore
 * takes over a lock it finds held by its own worker at once (single-threaded, nobody else can
 * release it), and one held by another worker after SPIN_LIMIT tries; `breaks` and the worker's
 * CTRL_LOCK_BREAKS word count both (the pool reads the word: `WorkerPool.lockBreaks`).
 * The lock held is recorded in the worker's CTRL_LOCK_HELD word, so that the pool can release
 * it when it replaces a worker that died or hung inside the critical section.
 *
 * Both return 0 (RET_VOID); a pointer that is not a 4-byte-aligned word of Vm memory is
 * -EINVAL (the verifier rejects such programs).
 *
 * The checked form, the kfuncs `bpf_res_spin_lock(lock) -> int` and `bpf_res_spin_unlock(lock)`
 * (the kernel's rqspinlock, notes/fast-path-termination.md §6), never breaks a lock: it returns
 * -EDEADLK when the running worker holds the lock already (AA) and -ETIMEDOUT after SPIN_LIMIT
 * tries against another holder, and the verifier makes the program check the result before its
 * critical section (src/verifier/res-lock.ts). Its fast path fails with -ETIMEDOUT.
 *
 * Called from BPF. Fast-path termination keeps bpf_spin_lock/unlock (lock / release).
 */

import { CTRL_LOCK_BREAKS, CTRL_LOCK_HELD, type WorkerLayout } from '../../src/abi.js';
import {
  BPF_FUNC_spin_lock,
  BPF_FUNC_spin_unlock,
  EDEADLK,
  EINVAL,
  ETIMEDOUT,
  negErrno,
} from '../../src/helper-protos.js';
import type { HelperProto, KfuncProto } from '../helpers.js';
import { memAddr, type MemHost } from './mem.js';

/** Tries before a waiter takes a lock held by another worker. */
export const SPIN_LIMIT = 1 << 22;

/** What the lock helpers need from the Vm. */
export interface LockHost extends MemHost {
  readonly worker: WorkerLayout;
}

/** Lock statistics of one Vm. */
export interface SpinLockStats {
  /** Locks taken over from an owner that did not release them. */
  breaks: number;
  /**
   * Locks taken and not yet released through these helpers (a lock taken over counts once);
   * `Vm.resources()` reports it as locks_held.
   */
  held: number;
}

function lockAddr(vm: MemHost, ptr: bigint): number {
  const a = memAddr(vm, ptr, 4);
  return a < 0 || a % 4 !== 0 ? -1 : a;
}

/** bpf_spin_lock: takes the lock at `ptr` for the running worker. */
export function spinLock(vm: LockHost, ptr: bigint, stats: SpinLockStats): bigint {
  const a = lockAddr(vm, ptr);
  if (a < 0) return negErrno(EINVAL);
  const me = vm.worker.index + 1;
  const ctrl = vm.worker.ctrl;
  const buf = vm.memory.buffer as ArrayBuffer | SharedArrayBuffer;
  if (!(buf instanceof SharedArrayBuffer)) {
    const v = vm.dataView();
    if (v.getUint32(a, true) !== 0) {
      stats.breaks++;
      v.setUint32(ctrl + CTRL_LOCK_BREAKS, v.getUint32(ctrl + CTRL_LOCK_BREAKS, true) + 1, true);
    } else stats.held++;
    v.setUint32(a, me, true);
    v.setUint32(ctrl + CTRL_LOCK_HELD, a, true);
    return 0n;
  }
  const words = new Int32Array(buf);
  const i = a / 4;
  for (let n = 0; ; n++) {
    const owner = Atomics.compareExchange(words, i, 0, me);
    if (owner === 0) {
      stats.held++;
      break;
    }
    if (owner === me || n >= SPIN_LIMIT) {
      if (Atomics.compareExchange(words, i, owner, me) === owner) {
        stats.breaks++;
        Atomics.add(words, (ctrl + CTRL_LOCK_BREAKS) / 4, 1);
        break;
      }
    }
  }
  Atomics.store(words, (ctrl + CTRL_LOCK_HELD) / 4, a);
  return 0n;
}

/** bpf_spin_unlock: releases the lock at `ptr`. */
export function spinUnlock(vm: LockHost, ptr: bigint, stats?: SpinLockStats): bigint {
  const a = lockAddr(vm, ptr);
  if (a < 0) return negErrno(EINVAL);
  const held = (vm.worker.ctrl + CTRL_LOCK_HELD) / 4;
  const buf = vm.memory.buffer as ArrayBuffer | SharedArrayBuffer;
  if (buf instanceof SharedArrayBuffer) {
    const words = new Int32Array(buf);
    Atomics.compareExchange(words, held, a, 0);
    Atomics.store(words, a / 4, 0);
  } else {
    const v = vm.dataView();
    if (v.getUint32(held * 4, true) === a) v.setUint32(held * 4, 0, true);
    v.setUint32(a, 0, true);
  }
  if (stats !== undefined && stats.held > 0) stats.held--;
  return 0n;
}

/** bpf_res_spin_lock: 0 with the lock at `ptr` taken, or -EDEADLK / -ETIMEDOUT without it. */
export function resSpinLock(vm: LockHost, ptr: bigint, stats: SpinLockStats): bigint {
  const a = lockAddr(vm, ptr);
  if (a < 0) return negErrno(EINVAL);
  const me = vm.worker.index + 1;
  const buf = vm.memory.buffer as ArrayBuffer | SharedArrayBuffer;
  if (!(buf instanceof SharedArrayBuffer)) {
    const v = vm.dataView();
    // single-threaded: nobody else can release a held lock
    if (v.getUint32(a, true) !== 0) return negErrno(EDEADLK);
    v.setUint32(a, me, true);
    stats.held++;
    return 0n;
  }
  const words = new Int32Array(buf);
  for (let n = 0; n < SPIN_LIMIT; n++) {
    const owner = Atomics.compareExchange(words, a / 4, 0, me);
    if (owner === 0) {
      stats.held++;
      return 0n;
    }
    if (owner === me) return negErrno(EDEADLK);
  }
  return negErrno(ETIMEDOUT);
}

/** The checked lock kfuncs and their verifier signatures. */
export function resSpinLockKfuncs(vm: LockHost, stats: SpinLockStats): KfuncProto[] {
  return [
    {
      name: 'bpf_res_spin_lock',
      fn: (args) => resSpinLock(vm, args[0], stats),
      sig: {
        name: 'bpf_res_spin_lock',
        args: [{ kind: 'res_spin_lock' }],
        ret: { kind: 'scalar' },
      },
    },
    {
      name: 'bpf_res_spin_unlock',
      fn: (args) => spinUnlock(vm, args[0], stats),
      sig: {
        name: 'bpf_res_spin_unlock',
        args: [{ kind: 'res_spin_unlock' }],
        ret: { kind: 'void' },
      },
    },
  ];
}

/** The lock helpers; `stats` collects lock breaks. */
export function spinLockHelpers(vm: LockHost, stats: SpinLockStats): HelperProto[] {
  return [
    { id: BPF_FUNC_spin_lock, name: 'bpf_spin_lock', fn: (args) => spinLock(vm, args[0], stats) },
    {
      id: BPF_FUNC_spin_unlock,
      name: 'bpf_spin_unlock',
      fn: (args) => spinUnlock(vm, args[0], stats),
    },
  ];
}
