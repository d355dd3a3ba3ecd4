/**
 * What the verifier hands the backends (issue #5 §5): a `Program` proven safe, with the facts
 * it learned along the way — which slots run, what kind of value each register holds before
 * each instruction, the stack each function uses and the registers that are the same constant
 * on every path.
 *
 * Called from: `verifyProgram` (src/verifier/verifier.ts) builds it; the Vm passes it to the
 * JIT (jit/compile.ts) and the CLI prints its counters.
 *
 * Invariants: facts are a join over every state the verifier explored at a slot. A state
 * pruned at slot X is covered by an explored state at X (states.ts `statesEqual`), so the facts
 * of the slots after X hold for the pruned path too: a register read after X has the class the
 * explored path saw (a register NOT_INIT in the explored state is never read after X).
 */

import type { Program, ProgType } from '../program.js';

/** Register class bits, OR-ed over the states seen at a slot. */
export const REG_CLASS_NONE = 0;
/** A scalar (any 64-bit value). */
export const REG_CLASS_SCALAR = 1;
/**
 * A pointer of any type (ctx, stack, map, map value or null, packet, packet end, mem, func
 * token, ...): its value is a linear-memory address or token below 2^32, or 0 for a null
 * `_or_null` pointer, so the upper 32 bits are always 0.
 */
export const REG_CLASS_PTR = 2;
/** Not initialised on some path (never read there). */
export const REG_CLASS_UNINIT = 4;

/** Facts about one instruction slot, valid before it executes. */
export interface InsnFacts {
  /** `REG_CLASS_*` bits for R0..R10, OR-ed over every explored state at this slot. */
  readonly regClass: Uint8Array;
  /**
   * Registers that hold the same 64-bit constant in every explored state here (scalars only),
   * by register number. Paths pruned against an explored state whose scalar was not precise
   * (src/verifier/precision.ts) are not seen and may hold other values: not for codegen.
   */
  readonly constants: ReadonlyMap<number, bigint>;
}

/** A verified program with the facts the JIT uses. */
export interface VerifiedProgram {
  readonly prog: Program;
  /** The program type it was verified as (ctx layout, helpers, return range). */
  readonly type: ProgType;
  /** Slot index → explored (false for dead code and second lddw slots). */
  readonly reachable: readonly boolean[];
  /** Facts per reachable slot (undefined for unreachable slots and second lddw slots). */
  readonly facts: readonly (InsnFacts | undefined)[];
  /**
   * `mem` programs: bytes after R1 (the input) that the program may access, the largest end
   * offset of any proven access through it (0 when it never touches its input). The runtime
   * gives every run at least this many bytes there (zero padding after a short input).
   */
  readonly memInputSize: number;
  /**
   * Some explored state held a reference (ringbuf record, acquired object) or a lock at some
   * insn. When false, a run can be abandoned anywhere without leaking (the precondition of
   * bpf_throw), which fast-path termination uses to exit at once instead of running down.
   * Undefined (facts built elsewhere) counts as true.
   */
  readonly holdsResources?: boolean;
  /**
   * Accesses through coroutine handles (src/verifier/check-coro.ts): insn → bytes the handle
   * must be a live frame of (`off + size`). The backends call `coro_frame_check(handle, bytes)`
   * before the access and fail the run when it returns 0.
   */
  readonly frameChecks?: ReadonlyMap<number, number>;
  /**
   * Loads that may read a read-only map value (`.rodata`, a jump table) and are checked at run
   * time: insn → ids of those maps. With a `frameChecks` entry, the check also accepts an
   * access that lies inside one of those map values (the insn loads through a handle on one
   * path and through read-only global data on another); without one, the access must lie in
   * one of them (an offset the verifier could not bound), else the run fails ('mem').
   */
  readonly regionChecks?: ReadonlyMap<number, readonly number[]>;
  /**
   * Functions verified as entries reached through their tokens (coroutine resume / destroy):
   * subprog index → the frame size their r1 was verified as (the backends check
   * `coro_frame_check(r1, size)` at entry), or 0 when r1 was an unknown scalar (no check).
   */
  readonly coroEntries?: ReadonlyMap<number, number>;
  /**
   * `callx` insns whose target is a word loaded from a frame, a handle or `.rodata`: the
   * backends allow only tokens of functions verified as entries (`coroEntries` of any program)
   * and fail the run otherwise.
   */
  readonly callxChecks?: ReadonlySet<number>;
  /** `bpf_obj_new_impl` calls: insn → object size; the backends pass it in r1 (kernel fixup). */
  readonly objNewSizes?: ReadonlyMap<number, number>;
  /**
   * `bpf_coro_frame_alloc` calls whose size argument is the same constant on every path: insn →
   * size (the JIT works out the size class when it compiles).
   */
  readonly frameAllocSizes?: ReadonlyMap<number, number>;
  /**
   * `bpf_coro_frame_free` calls given a frame pointer (not a handle) on every path: a live
   * frame, so the JIT's fast path skips the checks that tell a frame from anything else.
   */
  readonly liveFrameFrees?: ReadonlySet<number>;
  /** `bpf_throw` calls: the run unwinds to the entry with r0 = r1 (the cookie). */
  readonly throwInsns?: ReadonlySet<number>;
  /**
   * `bpf_loop` calls the JIT may inline (the kernel's `inline_bpf_loop`): insn → callback
   * subprog, the same on every path, with flags 0.
   */
  readonly loopInlines?: ReadonlyMap<number, number>;
  /** Bytes of stack each subprog uses (kernel `stack_depth`), by subprog index. */
  readonly stackDepth: readonly number[];
  /** Instructions processed (`insn_processed`). */
  readonly processedInsns: number;
  /** Explored states kept (`total_states`) and the most at one slot. */
  readonly totalStates: number;
  readonly maxStatesPerInsn: number;
  /** The verifier log (level and size as asked; empty when logging was off). */
  readonly log: string;
  /** Wall time of the verification, in milliseconds. */
  readonly verifyMs: number;
}
