/**
 * Coroutines and exceptions in the verifier (issue 7 item 6, issue 8 item 4): coroutine
 * frames, frame handles, `callx`, the coroutine kfuncs' arguments, `bpf_throw`, and the
 * functions entered through function tokens (resume / destroy clones).
 *
 * Called from: check-mem.ts (accesses through frames and handles), check-call.ts (kfunc
 * arguments and results), do-check.ts (`callx`, `bpf_throw`, the token entry points).
 *
 * ## What is proven
 *
 * - **Frames** from `bpf_coro_frame_alloc(size, ctx)` are `coro_mem_or_null` of `size` bytes
 *   (`size` a known constant in [16, CORO_FRAME_MAX]); after the NULL check every access
 *   through them is bounds-checked as for `mem`. Frames are program-private memory: any
 *   pointer but a stack pointer may be stored into them (function tokens, other frames, ringbuf
 *   records, task references, ctx). Storing a referenced pointer does not release it: the
 *   path must still release it, or suspend the frame with it (below), or it is an
 *   `Unreleased reference`.
 * - **The destroy path** (`suspendFrame`, issue 7 item 6): at a suspension (`KfuncSig.suspends`:
 *   `bpf_coro_defer`, `_detach`; `_yield`, `_sleep`, `_enqueue` on their r0 == 0 path: code
 *   outside the path resumes or destroys the frame, the sweep at its deadline if nothing else
 *   does) of a frame with an
 *   identity on the path, the references whose pointers sit in its 8-byte slots (ringbuf
 *   records and task references, which outlive the run) move into the frame: they leave the
 *   path (registers and spills that held them are invalidated, slots become scalars), and
 *   the functions of the tokens in its +0 (resume) and +8 (destroy) slots are verified as
 *   token entries with r1 = that frame, its slots as the path left them (scalars such as the
 *   suspend index, function tokens, those references), and those references held. Each must
 *   release them before it returns, or suspend again with them in its frame (verified the same
 *   way; each distinct state once, at most SUSPENDED_STATES_MAX). So a coroutine destroyed at
 *   a suspension releases what it acquired before it (coro_destroy's on_sample: a ringbuf
 *   record and a task reference, discarded and released by `.destroy`, submitted and released
 *   by `.resume`). Without a frame identity, or without function tokens at +0 and +8, nothing
 *   moves and the path still holds the references.
 * - **Entry points**: every function whose token escapes into a frame, or sits in global data
 *   (`R_BPF_64_ABS64` in `.rodata`), is verified as an entry of its own: with r1 = `coro_mem`
 *   of N bytes, N the smallest frame size over every frame whose +0 or +8 the token is stored
 *   at, or with r1 an unknown scalar when there is no such store; r2–r5 are not readable. Its
 *   exit may leave any r0 (a `callx` returns an unknown scalar). References and locks must be
 *   released before it returns, as for a program.
 * - **`callx`** targets are function tokens (`func`, explored as a call) or words loaded from
 *   a frame, a handle or `.rodata` (`coro_handle`); for the latter r0 becomes an unknown scalar
 *   and r1–r5 are clobbered, r6–r9 and the stack are kept; as the target may `bpf_throw`, no
 *   reference or lock may be held and it may not run inside a callback; no argument register
 *   may hold a stack pointer, and as no stack pointer can be stored into a frame or a map,
 *   the callee cannot reach the caller's stack; it may write frames and maps, whose contents
 *   the verifier does not track.
 * - **Handles**: an 8-byte load from a frame, a handle or `.rodata` gives a `coro_handle`: a
 *   scalar (arithmetic makes it a plain scalar) that may be a frame address, a token or NULL.
 *   It may be dereferenced at a non-negative offset within CORO_FRAME_MAX, with or without a
 *   NULL check: the run-time check refuses NULL (and every address that is not a live frame),
 *   so the verifier does not require one (clang omits it where it knows a frame slot is set,
 *   e.g. coro_loop's child handle). One insn may not access memory through a handle (or another
 *   run-time checked base, below) on one path and through a pointer the check would refuse on
 *   another: the run-time check is per insn, and accepts the start of a frame and, for loads,
 *   a read-only map value the insn loads from on another path.
 * - **Read-only global data** (`BPF_F_RDONLY_PROG` map values: `.rodata`, jump tables): a load
 *   from one at an offset the verifier cannot bound (clang's gotox dispatch indexes its jump
 *   table with the suspend index, a byte loaded from the frame: 0..255 for a 14-entry table) is
 *   accepted and checked at run time against the value's bounds; reads of read-only memory
 *   cannot corrupt anything, and the gotox that consumes the entry still jumps only to the
 *   table's targets. Writes keep the kernel rules (no write to such maps at all), and so do
 *   writable maps (the offset must be proven in bounds).
 * - **Frames that may be gone**: after a call that may free a frame or hand it to another
 *   worker (`callx`, `bpf_coro_frame_free`, `_detach`, `_yield`, `_sleep`, `_enqueue`; not
 *   `_defer`, which resumes after the run), every frame pointer becomes a non-NULL handle (its
 *   accesses are checked at run time, so a freed frame is not touched) and every pointer into
 *   the middle of a frame a plain scalar (a callee or another worker may free any frame it
 *   can reach, whatever its identity on this path); for `_yield`, `_sleep` and `_enqueue` only
 *   on their r0 == 0 path (frame slots, below).
 * - **Frame slots** (per path, `VerifierState.coroSlots`): a frame has an identity on a path
 *   (`RegState.frameId`): the pointer `bpf_coro_frame_alloc` returns (kept through its NULL
 *   check) and the r1 of a token entry verified with a frame, in every copy, spill and offset
 *   of it. A store through such a pointer at a constant offset records what it stored (8 bytes:
 *   any register; narrower: a scalar truncated to the store size); a load of exactly that
 *   offset and size gives it back (scalars with their bounds, pointers with their type). Other
 *   loads keep the handle / scalar rule. A store overlapping a slot partially, a store at a
 *   variable offset, a helper writing the frame, forget that frame's slots; a store through a
 *   handle, `callx`, a kfunc without `KfuncSig.keepsFrameData`, and a bpf_loop / for_each
 *   callback forget every slot. A released reference in a slot becomes an unknown scalar (as a
 *   spill); `mayFreeFrames` calls demote every frame and drop every slot. `bpf_coro_yield`,
 *   `_sleep` and `_enqueue` (`handsOffOnZero`; runtime/coroutines.ts `sleep`, runtime/wasm/
 *   coro.ts `pushHandle`: non-zero means nothing was scheduled and the frame was not written)
 *   fork the path: r0 == 0 with every frame demoted, r0 != 0 (umin 1) with frames and slots
 *   kept. Pruning and loop detection compare slots (states.ts `coroSlotsSafe`): an old slot
 *   covers only a cur slot of the paired frame at the same offset and size with a `regsafe`
 *   value. At most CORO_SLOTS_MAX slots per state (the oldest are forgotten).
 * - **Escaped frames**: a frame whose address lands where the verifier does not follow it (a
 *   store of the pointer through a handle, into an untracked frame, at a variable offset or
 *   narrow; a forgotten slot that held it; a kfunc without `keepsFrameData` or a callback that
 *   got it) loses its identity on the path (`frameId` 0): its contents may be written by code
 *   the verifier does not see, so nothing is recorded for it any more.
 * - **`bpf_throw`** ends the path (noreturn); it is rejected while a reference or a lock is
 *   held, and inside callbacks (bpf_loop, for_each, timers).
 * - Frame arguments of the coroutine kfuncs are frames (`coro_mem` at offset 0) or non-NULL
 *   handles, never stack addresses (a stack frame would dangle once the run returns); the
 *   bookkeeping kfuncs `bpf_coro_await` and `bpf_coro_done` take any value (include/bpf_coro.h
 *   passes reloaded handles and, after CoroElide, stack frames) and the runtime ignores what is
 *   not a live frame.
 *
 * ## What is checked at run time (the JIT and the interpreter)
 *
 * - Each access through a handle: `coro_frame_check(handle, off + size)` before it
 *   (`VerifiedProgram.frameChecks`); a failure ends the run with an ExecError ('frame'). NULL
 *   and any address below a frame header fail it. The start of a reserved ringbuf record of
 *   `off + size` bytes passes it too (CORO_CHECK_RECORD: a record kept in a frame across a
 *   suspension, reloaded where the verifier does not know the frame's contents); the access
 *   then lies in the record, and a function entry's check does not take records. When the insn also loads through read-only
 *   global data on another path (coro_symmetric's `std::noop_coroutine()` frame in `.rodata`
 *   or a continuation handle), the check also passes when `[addr, addr + size)` lies inside one
 *   of those map values (`VerifiedProgram.regionChecks`): only loads get such entries, so the
 *   handle path can at most read read-only memory.
 * - Each load from read-only global data at an offset the verifier could not bound
 *   (`regionChecks` without `frameChecks`): `[addr, addr + size)` must lie inside one of the
 *   map values the insn loads from, else the run ends with ExecError 'mem'.
 * - The entry of a function verified with r1 = frame of N bytes: `coro_frame_check(r1, N)`
 *   (`VerifiedProgram.coroEntries`), as `callx` or the runtime may pass anything.
 * - `callx` on a handle (`VerifiedProgram.callxChecks`): the target must be the token of a
 *   function verified as a token entry, of any program of the Vm (`coro_entry_check`, call-table
 *   slot CORO_ENTRY_CHECK_SLOT; the interpreter asks the Vm). Helper ids and the tokens of
 *   other functions fail the run ('call'), so a number stored into a frame reaches nothing
 *   that was verified for other arguments. A callx insn that also calls a function token on
 *   another path makes that function an entry too.
 * - The coroutine kfuncs validate their frame arguments (runtime side).
 * - `bpf_throw` (`VerifiedProgram.throwInsns`; the Vm links it by name, no kfunc slot): the
 *   JIT records the cookie with exec code 'throw' and traps, the interpreter throws
 *   TerminationError('throw'); the host wrapper returns the cookie as r0 and sets
 *   `LoadedProgram.thrown` (a batch ends with the TerminationError on both engines).
 *
 * ## What is not proven
 *
 * - That the entry a `callx` through a handle reaches is the one the frame was made for: any
 *   verified entry may be called with any frame; its own r1 check (above) keeps it in bounds.
 * - That the frame still holds what the destroy path was verified with when its resume or
 *   destroy function runs. The seeded exploration (the destroy path, above) proves that a frame
 *   left as the path left it releases what it holds; the same functions are also verified
 *   with any frame (contents unknown), because `callx` and the runtime may enter them with
 *   any frame (coro_destroy's on_cancel destroys whatever `bpf_coro_take_cancelled` returns,
 *   and a program may build a frame around a token). There a kept reference is a handle:
 *   `bpf_ringbuf_submit` / `_discard` and `bpf_task_release` take handles (the helpers check
 *   at run time for a reserved record, -EINVAL otherwise; the task kfunc ignores a pointer
 *   holding no reference), and an access through the handle passes the run-time check when it
 *   lies in a reserved record (CORO_CHECK_RECORD). So a frame changed after the suspension
 *   (a store through a handle, code after the suspension kfunc on the same run) stays memory
 *   safe but may leak what it held or release a record another path reserved (that path's
 *   own release then fails with -EINVAL). `bpf_obj_drop_impl` does not take handles (a
 *   stale one would free a live object), so an object from `bpf_obj_new_impl` kept across a
 *   suspension is rejected where the function is verified with any frame. References kept in
 *   a frame suspended without a suspension kfunc stay on the path until one (the caller's
 *   `Task::detach`) moves them. A reference held across a `co_await` of a child task is
 *   still rejected with include/bpf_coro.h: the child's frame allocation calls `bpf_throw`
 *   when it fails, and the parent's destroy function destroys the child with `callx`; neither
 *   may run while a reference is held (a callee may `bpf_throw`, which releases nothing).
 * - That a suspended frame is ever resumed or destroyed: that is the runtime's part (defer
 *   resumes at the end of the run, queues are drained, timers fire, and the sweep destroys a
 *   frame left untouched past its deadline). A detached frame nobody resumes, in a Vm with
 *   `coroutines.ttlNs: 0`, keeps what it holds until the Vm closes.
 * - That a load from read-only global data at an offset the verifier cannot bound succeeds:
 *   the run fails ('mem') past the map value; if the same insn also loads through the start of
 *   a frame on another path, that path fails the run too (not produced by clang).
 * - That frames are freed exactly once, or not leaked (the kfuncs validate their frame
 *   arguments; the runtime's owner/deadline accounting destroys what is left behind).
 * - That a frame handed to another worker (yield, sleep, enqueue) is not freed there between
 *   the run-time check of an access and the access itself (a race the check narrows only).
 * - Frame contents beyond the slots of the path: a frame's contents at entry of a token entry
 *   (resume / destroy clone), after `callx` (every frame is demoted: the callee may free any),
 *   after a frame-freeing call, or read through a handle, are not known. A resume clone that
 *   loops on bpf_coro_sleep's non-zero result after a `callx` (coro_loop's poll_loop.resume)
 *   is therefore still rejected. A pointer stored where no slot records it may still come out
 *   as a scalar (an address leak within the program, e.g. into a map or r0).
 * - `bpf_coro_defer` keeps frame data (`keepsFrameData`) on the assumption above that a
 *   deferred frame runs after the run; a Vm configured to defer to the ready queue (or a full
 *   deferred ring) may resume it on another worker during the run.
 * - Kfuncs a Vm registers with their own signature may write frames only through what they
 *   are passed; without `keepsFrameData` every slot is forgotten at the call, but a frame
 *   address they keep and use after the call (from another thread) is not accounted for.
 */

import { callxReg, type Insn } from '../isa/insn.js';
import type { MapInfo, RegState } from './reg-state.js';
import {
  regAtZeroOff,
  regNotInit,
  regScalar,
  regTypeStr,
  regUnknownScalar,
  regWith,
} from './reg-state.js';
import type { CoroSlot, RefState, VerifierState } from './states.js';
import { tnumIsConst } from './tnum.js';
import type { KfuncArg } from './verifier.js';
import type { VerifierEnv } from './verifier-env.js';
import { readReg } from './check-alu.js';
import { releaseReference } from './check-call.js';
import { mapAllRegs } from './check-jmp.js';
import {
  regBoundsSync,
  scalarCoerce,
  scalarCoerceSx,
  scalarCopy,
  SCALAR_UNKNOWN,
} from './bounds.js';

/** Largest coroutine frame (and largest offset + size through a handle), in bytes. */
export const CORO_FRAME_MAX = 0x10000;
/** Smallest frame: the resume and destroy tokens. */
export const CORO_FRAME_MIN = 16;

/** An 8-byte word loaded from a frame, a handle or `.rodata`: maybe a handle or a token. */
export const REG_CORO_HANDLE: RegState = regWith(regUnknownScalar(), { coroHandle: true });

/** A non-NULL `coro_handle`: a frame pointer after its frame may have been freed. */
const REG_CORO_HANDLE_NOT_NULL: RegState = regWith(REG_CORO_HANDLE, {
  scalar: (() => {
    const s = scalarCopy(SCALAR_UNKNOWN);
    s.umin = 1n;
    regBoundsSync(s);
    return s;
  })(),
});

/**
 * After a call that may free a frame or hand it to another worker (`callx`, `KfuncSig.
 * mayFreeFrames`): frame pointers (without identities, any of them may be the one) become
 * non-NULL handles, whose accesses the run-time frame check covers; pointers into the middle
 * of a frame become plain scalars.
 */
export function demoteFrames(st: VerifierState): void {
  mapAllRegs(st, (r) => {
    if (!isCoroMem(r)) return r;
    return isFrameStart(r) ? REG_CORO_HANDLE_NOT_NULL : regUnknownScalar();
  });
  // no frame is tracked any more: what was recorded of them is unreachable
  st.coroSlots = [];
}

/** Most frame slots one path state records; the oldest are forgotten first. */
export const CORO_SLOTS_MAX = 64;

/** Whether `reg` is a pointer into a frame whose contents this path tracks. */
function isTrackedFrame(reg: RegState): boolean {
  return isCoroMem(reg) && reg.frameId !== 0;
}

/**
 * Frame `fid` stops being tracked on this path (its address may now be reachable by code the
 * verifier does not follow): its pointers keep their type but lose the identity, its slots go,
 * and so do, recursively, the frames whose pointers those slots hold.
 */
export function escapeFrame(st: VerifierState, fid: number, escaped?: Set<number>): void {
  if (fid === 0) return;
  escaped?.add(fid);
  mapAllRegs(st, (r) => (isCoroMem(r) && r.frameId === fid ? regWith(r, { frameId: 0 }) : r));
  dropSlots(st, (s) => s.frameId === fid, escaped);
}

/**
 * Forgets the slots `drop` selects. A dropped slot that held a tracked frame pointer leaves
 * that address in memory the verifier no longer follows: that frame escapes.
 */
function dropSlots(st: VerifierState, drop: (s: CoroSlot) => boolean, escaped?: Set<number>): void {
  const held: number[] = [];
  st.coroSlots = st.coroSlots.filter((s) => {
    if (!drop(s)) return true;
    if (isTrackedFrame(s.reg)) held.push(s.reg.frameId);
    return false;
  });
  for (const k of held) escapeFrame(st, k, escaped);
}

/** Forgets every recorded frame slot (a write that may hit any frame). */
export function forgetAllSlots(st: VerifierState): void {
  if (st.coroSlots.length > 0) dropSlots(st, () => true);
}

/** Forgets the slots of frame `fid` (a helper wrote it). */
export function forgetFrameSlots(st: VerifierState, fid: number): void {
  if (fid !== 0) dropSlots(st, (s) => s.frameId === fid);
}

/** The frame offset of an access at `off` through frame pointer `reg`, if it is a constant. */
function frameOff(reg: RegState, off: number): number | undefined {
  if (!tnumIsConst(reg.scalar.varOff)) return undefined;
  return reg.off + off + Number(BigInt.asIntN(64, reg.scalar.varOff.value));
}

/**
 * Records a store of `size` bytes at `off` through frame pointer `reg` (bounds already
 * checked): `value` is the stored register (an immediate as its constant), undefined for bytes
 * the verifier does not know (atomics). An 8-byte store records the value, a narrower one a
 * scalar truncated to its size; slots it overlaps are forgotten. A store into an untracked
 * frame, at a variable offset, or that records nothing makes a stored tracked frame escape.
 */
export function frameStore(
  st: VerifierState,
  reg: RegState,
  off: number,
  size: number,
  value: RegState | undefined,
): void {
  const fid = reg.frameId;
  const at = frameOff(reg, off);
  let rec: RegState | undefined;
  if (fid !== 0 && at !== undefined && value !== undefined) {
    if (size === 8) rec = value.type === 'SCALAR_VALUE' ? regWith(value, { id: 0 }) : value;
    else if (value.type === 'SCALAR_VALUE') {
      rec = regWith(regScalar(scalarCoerce(value.scalar, size as 1 | 2 | 4)), {
        coroHandle: false,
      });
    }
  }
  const escaped = new Set<number>();
  if (fid !== 0) {
    if (at === undefined) dropSlots(st, (s) => s.frameId === fid, escaped);
    else {
      // an exact overwrite replaces every byte of the old slot; a partial one leaves some
      const same = (s: CoroSlot): boolean => s.frameId === fid && s.off === at && s.size === size;
      st.coroSlots = st.coroSlots.filter((s) => !same(s));
      dropSlots(st, (s) => s.frameId === fid && s.off < at + size && at < s.off + s.size, escaped);
    }
  }
  // the drops may have made this frame or the stored one escape
  if (escaped.has(fid)) rec = undefined;
  if (rec !== undefined && escaped.has(rec.frameId)) rec = regWith(rec, { frameId: 0 });
  if (rec === undefined) {
    if (value !== undefined && isTrackedFrame(value)) escapeFrame(st, value.frameId);
    return;
  }
  st.coroSlots.push({ frameId: fid, off: at as number, size, reg: rec });
  if (st.coroSlots.length > CORO_SLOTS_MAX) {
    const first = st.coroSlots[0];
    dropSlots(st, (s) => s === first);
  }
}

/**
 * A load of `size` bytes at `off` through frame pointer `reg`: the recorded value when a
 * slot of this frame has exactly that offset and size (sign-extended for `BPF_MEMSX`).
 */
export function frameLoad(
  st: VerifierState,
  reg: RegState,
  off: number,
  size: number,
  sx: boolean,
): RegState | undefined {
  const fid = reg.frameId;
  if (fid === 0) return undefined;
  const at = frameOff(reg, off);
  if (at === undefined) return undefined;
  const s = st.coroSlots.find((x) => x.frameId === fid && x.off === at && x.size === size);
  if (s === undefined) return undefined;
  if (sx && size < 8 && s.reg.type === 'SCALAR_VALUE') {
    return regScalar(scalarCoerceSx(s.reg.scalar, size as 1 | 2 | 4));
  }
  return s.reg;
}

/** Whether `reg` points to the start of a coroutine frame (what the run-time check accepts). */
export function isFrameStart(reg: RegState): boolean {
  return isCoroMem(reg) && !reg.maybeNull && regAtZeroOff(reg);
}

/** Whether `reg` is a `coro_handle`: a word loaded from a frame, a handle or `.rodata`. */
export function isCoroHandle(reg: RegState): boolean {
  return reg.type === 'SCALAR_VALUE' && reg.coroHandle;
}

/** Whether `reg` is a coroutine frame pointer (`coro_mem`, maybe NULL). */
export function isCoroMem(reg: RegState): boolean {
  return reg.type === 'PTR_TO_MEM' && reg.memCoro;
}

/** Whether an 8-byte load through `reg` gives a `coro_handle` rather than a plain scalar. */
export function loadsHandle(reg: RegState, size: number): boolean {
  if (size !== 8) return false;
  if (isCoroMem(reg)) return true;
  if (isCoroHandle(reg)) return true;
  return reg.type === 'PTR_TO_MAP_VALUE' && reg.map?.rdonlyProg === true;
}

/**
 * A store of `value` into a frame at `reg + off`: stack pointers may not escape into frames;
 * a function token stored at +0 / +8 ties its function to this frame's size (its r1 as an
 * entry), and any token stored into a frame makes its function an entry point.
 */
export function checkCoroStore(
  env: VerifierEnv,
  idx: number,
  regno: number,
  reg: RegState,
  off: number,
  value: RegState,
): void {
  if (value.type === 'PTR_TO_STACK') {
    throw env.fail(idx, `R${regno} cannot store a stack pointer into a coroutine frame`);
  }
  if (value.type !== 'PTR_TO_FUNC') return;
  env.escapeFunc(value.subprog);
  if (!isCoroMem(reg) || !tnumIsConst(reg.scalar.varOff)) return;
  const at = reg.off + off + Number(BigInt.asIntN(64, reg.scalar.varOff.value));
  if (at === 0 || at === 8) env.tieFuncToFrame(value.subprog, reg.memSize);
}

/**
 * A load or store through a `coro_handle` (kernel-style checks, then the run-time check the
 * JIT emits): the handle is non-NULL and `[off, off + size)` lies in `[0, CORO_FRAME_MAX)`.
 * Returns the loaded register for reads.
 */
export function checkHandleAccess(
  env: VerifierEnv,
  idx: number,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  write: RegState | undefined,
): RegState | undefined {
  // No NULL check needed: coro_frame_check refuses NULL (and anything below a frame header)
  if (off < 0 || off + size > CORO_FRAME_MAX) {
    throw env.fail(
      idx,
      `R${regno} invalid access to coroutine frame, off=${off} size=${size} (frames are at most ${CORO_FRAME_MAX} bytes)`,
    );
  }
  env.needFrameCheck(idx, off + size);
  if (write !== undefined) {
    checkCoroStore(env, idx, regno, reg, off, write);
    return undefined;
  }
  return size === 8 ? REG_CORO_HANDLE : undefined;
}

/**
 * `callx rX` with a target other than a function token: rX must be a word loaded from a frame,
 * a handle or `.rodata`; no argument register may carry a stack pointer. Applies the call to
 * `st`: r0 an unknown scalar, r1–r5 clobbered.
 */
export function checkCallx(env: VerifierEnv, st: VerifierState, idx: number, insn: Insn): void {
  const r = callxReg(insn);
  const target = readReg(env, st, idx, r);
  if (!isCoroHandle(target)) {
    throw env.fail(idx, `R${r} type=${regTypeStr(target)} expected=func or coro_handle`);
  }
  if (st.activeLocks > 0)
    throw env.fail(idx, 'function calls are not allowed while holding a lock');
  // The target may be any verified entry, which may bpf_throw: nothing may be held, and no
  // helper frame may be unwound (as for bpf_throw itself).
  const cb = st.frames.findIndex((fr) => fr.inCallbackFn);
  if (cb >= 0 || env.inAsyncCallback) {
    const sub = cb >= 0 ? (st.frames[cb]?.subprogno ?? 0) : env.asyncSubprog;
    throw env.fail(
      idx,
      `callx through a coroutine handle (insn ${idx}) cannot be called from callback subprog ${sub}`,
    );
  }
  const ref = st.refs[0];
  if (ref !== undefined) {
    throw env.fail(
      idx,
      `callx through a coroutine handle while holding reference id=${ref.id} alloc_insn=${ref.insnIdx} (the callee may bpf_throw)`,
    );
  }
  const f = st.frames[st.curframe];
  if (f === undefined) throw new RangeError('bug: no frame');
  for (let a = 1; a <= 5; a++) {
    const reg = f.regs[a];
    if (reg?.type === 'PTR_TO_STACK') {
      throw env.fail(idx, `R${a} stack pointer cannot be passed through callx`);
    }
  }
  for (let a = 1; a <= 5; a++) f.regs[a] = regNotInit();
  f.regs[0] = regUnknownScalar();
  // the callee may have freed any frame (a destroy function frees its own), and written any
  demoteFrames(st);
  st.coroSlots = [];
}

/** `bpf_throw`: no reference or lock held, not inside a callback. */
export function checkThrow(env: VerifierEnv, st: VerifierState, idx: number, name: string): void {
  const cb = st.frames.findIndex((f) => f.inCallbackFn);
  if (cb >= 0 || env.inAsyncCallback) {
    const sub = cb >= 0 ? (st.frames[cb]?.subprogno ?? 0) : env.asyncSubprog;
    throw env.fail(
      idx,
      `${name} kfunc (insn ${idx}) cannot be called from callback subprog ${sub}`,
    );
  }
  if (st.activeLocks > 0) {
    throw env.fail(idx, `${name} cannot be used inside bpf_spin_lock-ed region`);
  }
  const ref = st.refs[0];
  if (ref !== undefined) {
    throw env.fail(idx, `Unreleased reference id=${ref.id} alloc_insn=${ref.insnIdx}`);
  }
}

/** Checks a coroutine kfunc argument of kind `arg` in register `argno`. */
export function checkCoroKfuncArg(
  env: VerifierEnv,
  idx: number,
  argno: number,
  reg: RegState,
  arg: Extract<KfuncArg, { kind: 'frame_size' | 'frame' | 'map' | 'btf_id' | 'obj_type' }>,
): void {
  const expected = (what: string): never => {
    throw env.fail(idx, `R${argno} type=${regTypeStr(reg)} expected=${what}`);
  };
  switch (arg.kind) {
    case 'frame_size':
    case 'obj_type': {
      if (reg.type !== 'SCALAR_VALUE') expected('scalar');
      if (!tnumIsConst(reg.scalar.varOff)) {
        const what = arg.kind === 'frame_size' ? 'frame size' : 'BTF type id';
        throw env.fail(idx, `R${argno} ${what} is not a known constant`);
      }
      const v = reg.scalar.varOff.value;
      if (arg.kind === 'frame_size' && (v < CORO_FRAME_MIN || v > CORO_FRAME_MAX)) {
        throw env.fail(
          idx,
          `R${argno} frame size ${v} is outside [${CORO_FRAME_MIN}, ${CORO_FRAME_MAX}]`,
        );
      }
      return;
    }
    case 'frame':
      if (isCoroHandle(reg) && reg.scalar.umin > 0n) return;
      if (!isCoroMem(reg) || reg.maybeNull) expected('coro_mem');
      if (!regAtZeroOff(reg)) {
        throw env.fail(idx, `R${argno} must point to the start of a coroutine frame`);
      }
      return;
    case 'map': {
      const map: MapInfo | undefined = reg.map;
      if (reg.type !== 'CONST_PTR_TO_MAP' || map === undefined) expected('map_ptr');
      else if (map.type !== arg.mapType || map.valueSize !== arg.valueSize) {
        throw env.fail(
          idx,
          `R${argno} map_type ${map.type} value_size ${map.valueSize}: expected map_type ${arg.mapType} with ${arg.valueSize}-byte values`,
        );
      }
      return;
    }
    case 'btf_id':
      if (reg.type !== 'PTR_TO_BTF_ID' || reg.btfName !== arg.btfName) {
        expected(`ptr_${arg.btfName}`);
      }
      if (reg.maybeNull)
        throw env.fail(idx, `Possibly NULL pointer passed to trusted arg${argno - 1}`);
      return;
  }
}

/**
 * A frame suspended with references in its slots (`VerifierEnv.suspendedFrames`): its resume
 * and destroy functions are verified from what the path left in it.
 */
export interface SuspendedFrame {
  /** The suspending kfunc call. */
  readonly insn: number;
  /** Subprogs of the tokens at +0 (resume) and +8 (destroy). */
  readonly resume: number;
  readonly destroy: number;
  /** Bytes of the frame. */
  readonly size: number;
  /** The slots the functions find: scalars, function tokens and the references moved in. */
  readonly slots: readonly CoroSlot[];
  /** The references the frame holds from the suspension on. */
  readonly refs: readonly RefState[];
  /** Identifies the suspended state (dedupe): slot shapes, with references by position. */
  readonly key: string;
}

/** Whether a reference to what `reg` points to may be kept in a frame across a suspension. */
function keepsAcrossRuns(reg: RegState): boolean {
  // ringbuf records stay reserved and task references stay valid until they are released;
  // other referenced objects (sockets) live only for the run
  return (reg.type === 'PTR_TO_MEM' && reg.memRingbuf) || reg.type === 'PTR_TO_BTF_ID';
}

/** A description of slot value `reg` independent of ids (references by their position). */
function slotShape(reg: RegState, refs: readonly RefState[]): string {
  if (reg.type === 'PTR_TO_FUNC') return `func#${reg.subprog}`;
  if (reg.type === 'SCALAR_VALUE') {
    const v = reg.scalar;
    const h = reg.coroHandle ? 'h' : '';
    return `${h}${v.umin},${v.umax},${v.smin},${v.smax},${v.varOff.value},${v.varOff.mask}`;
  }
  const k = refs.findIndex((r) => r.id === reg.refObjId);
  return `${regTypeStr(reg)}:${reg.memSize}:${reg.btfName ?? ''}:ref${k}`;
}

/**
 * A suspension (issue 7 item 6): `frame` (the kfunc's frame argument) is handed to code that
 * runs its resume or its destroy function later (`KfuncSig.suspends`). The references of the
 * path whose pointers sit in the frame's 8-byte slots move into the frame: they leave the path
 * (every register and spill holding them is invalidated, as by a release) and the frame's
 * resume (+0) and destroy (+8) functions are queued to be verified with r1 = this frame,
 * holding them, and finding in its slots the scalars (the suspend index), function tokens and
 * references the path stored (DoCheck.verifySuspended); so each must release them, or suspend
 * again with them in the frame, or the program is rejected. Nothing moves when the frame has
 * no identity on the path or its +0 / +8 slots are not function tokens: the references stay
 * on the path (`Unreleased reference` at its exit).
 */
export function suspendFrame(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  frame: RegState,
): void {
  if (!isFrameStart(frame) || frame.frameId === 0) return;
  const fid = frame.frameId;
  const slots = st.coroSlots.filter((x) => x.frameId === fid);
  // a slot holding a reference that may stay in the frame (a held reference: a released one
  // left the slot as a scalar)
  const holds = (x: CoroSlot): boolean =>
    x.size === 8 && x.reg.refObjId !== 0 && keepsAcrossRuns(x.reg);
  const ids = new Set(slots.filter(holds).map((x) => x.reg.refObjId));
  const refs = st.refs.filter((r) => r.type === 'REF_TYPE_PTR' && ids.has(r.id));
  if (refs.length === 0) return;
  const token = (off: number): number | undefined => {
    const t = slots.find((x) => x.off === off && x.size === 8)?.reg;
    return t?.type === 'PTR_TO_FUNC' ? t.subprog : undefined;
  };
  const resume = token(0);
  const destroy = token(8);
  if (resume === undefined || destroy === undefined) return;
  const kept = slots.filter(
    (x) => x.reg.type === 'SCALAR_VALUE' || x.reg.type === 'PTR_TO_FUNC' || holds(x),
  );
  const key =
    `${frame.memSize}|` +
    kept
      .map((x) => `${x.off}:${x.size}=${slotShape(x.reg, refs)}`)
      .sort()
      .join(';');
  env.suspendFrame({ insn: idx, resume, destroy, size: frame.memSize, slots: kept, refs, key });
  env.verbose(
    `frame suspended at insn ${idx} keeps reference${refs.length > 1 ? 's' : ''} ${refs
      .map((r) => `id=${r.id}`)
      .join(
        ' ',
      )}: its resume (func#${resume}) and destroy (func#${destroy}) must release ${refs.length > 1 ? 'them' : 'it'}`,
  );
  for (const r of refs) releaseReference(env, st, idx, r.id);
}
