/**
 * The reference interpreter: the oracle every backend is tested against. It runs a `Program`
 * on the machine an `ExecEnv` describes (the Vm's own linear memory, or a test buffer) with
 * the exact semantics of RFC 9669 and the kernel, and checks everything an unverified
 * program could get wrong: every memory access, call depth, indirect targets, the
 * instruction budget. Every failure is an `ExecError` (or a `LinkError` for unresolved
 * references) naming the instruction index; no other exception escapes.
 *
 * Called from: the Vm's interpreter backend, conformance and differential tests.
 *
 * Choices where the kernel leaves behaviour undefined (verified programs never depend on them):
 * - A local call (or callx to a function token) starts the callee with r1–r5 = the arguments,
 *   r0 and r6–r9 = 0 (the kernel verifier forbids reading them; zero is what the JIT's
 *   per-function Wasm locals hold) and r10 = caller's frame pointer − 512. When the callee
 *   exits, the caller's r1–r10 are restored and only r0 changes. Helper calls also leave
 *   r1–r5 untouched.
 * - Memory a program may touch: the active stack frames `[fp − 512, stackTop)` where fp is
 *   the current frame's r10 (a callee may use pointers into its callers' frames), and
 *   `env.regions`. The frame pointer is tracked separately from r10, so a program that
 *   overwrites r10 does not move its stack window.
 * - Atomics: the bounds check ('mem') comes before the alignment check ('align').
 * - ld_abs/ld_ind: the offset is `(s32)(src + imm)` (the kernel's `int offset`); a negative
 *   offset or one past the packet ends the program with r0 = 0.
 */

import { CORO_CHECK_RECORD, FUNC_TOKEN_BASE, type ProgLinks } from '../abi.js';
import { BPF_FUNC_tail_call } from '../helper-protos.js';

import {
  ExecError,
  InternalError,
  LinkError,
  TerminationError,
  isBpfError,
  isExecError,
  type BpfError,
} from '../errors.js';
import { callxReg, ldImm64Value } from '../isa/insn.js';
import {
  BPF_HELPER_CALL,
  BPF_PSEUDO_CALL,
  MAX_BPF_REG,
  MAX_BPF_STACK,
  MAX_CALL_FRAMES,
  MAX_TAIL_CALL_CNT,
} from '../isa/opcodes.js';
import type { AccessSize, AtomicOp, OpInfo } from '../isa/table.js';
import { jumpTarget, subprogIndexOf, type Program } from '../program.js';
import { aluFn, condFn, endian, immU64, movsx, type AluFn, type CondFn } from './alu.js';
import type { ExecEnv, HelperArgs, MemRegion, TokenTarget } from './env.js';

const M32 = 0xffffffffn;
const TOKEN_BASE = BigInt(FUNC_TOKEN_BASE);

/** One predecoded slot: the instruction's fields plus everything derivable once. */
interface Slot {
  readonly info: OpInfo | undefined;
  /** dst; for callx the register holding the target (`callxReg`). */
  readonly dst: number;
  readonly src: number;
  readonly off: number;
  readonly imm: number;
  /** imm sign-extended to u64; for lddw the 64-bit immediate. */
  readonly k: bigint;
  /** Jump target slot; for a local call the callee's subprog index; otherwise -1. */
  readonly target: number;
  /** True when the second operand is `k` rather than a register (ALU and JMP K forms). */
  readonly isImm: boolean;
  readonly alu: AluFn;
  readonly cond: CondFn;
  /** For gotox: the allowed targets, or null when any slot of the function is allowed. */
  readonly allowed: ReadonlySet<number> | null;
}

/** Whether `[a, a + size)` lies inside one of `ranges` (`ProgLinks.regionChecks`). */
function inRanges(
  a: number,
  size: number,
  ranges: readonly (readonly [number, number])[],
): boolean {
  for (const [start, end] of ranges) if (a >= start && a + size <= end) return true;
  return false;
}

/** A predecoded program. */
interface Code {
  readonly prog: Program;
  readonly slots: readonly Slot[];
}

/** A suspended caller. */
interface Frame {
  readonly code: Code;
  readonly links: ProgLinks;
  readonly retPc: number;
  readonly fnStart: number;
  readonly fnEnd: number;
  /** The caller's r1..r10. */
  readonly saved: bigint[];
}

const NO_ALU: AluFn = () => 0n;
const NO_COND: CondFn = () => false;

const codeCache = new WeakMap<Program, Code>();

/**
 * Runs that are inside a helper call, innermost last. A helper that calls back into BPF
 * (bpf_loop, for_each_map_elem) runs the callback below the innermost one
 * (`interpretCallback`). Synchronous and per thread, like the runs themselves.
 */
const inHelper: Run[] = [];

function decodeSlot(prog: Program, idx: number): Slot {
  const i = prog.insns[idx];
  const info = prog.ops[idx];
  if (i === undefined) throw new ExecError(idx, 'fall-off', `no insn at ${idx}`);
  let dst = i.dst;
  let k = immU64(i.imm);
  let target = -1;
  let isImm = false;
  let alu = NO_ALU;
  let cond = NO_COND;
  let allowed: ReadonlySet<number> | null = null;
  switch (info?.kind) {
    case undefined:
      break;
    case 'alu':
      alu = aluFn(info.op, info.width);
      isImm = info.source === 'imm';
      break;
    case 'movsx': {
      const { width, bits } = info;
      alu = (_a, b) => movsx(width, bits, b);
      break;
    }
    case 'end': {
      const { order, bits } = info;
      alu = (a) => endian(order, bits, a);
      break;
    }
    case 'lddw':
      k = ldImm64Value(prog.insns, idx);
      break;
    case 'jmp':
      cond = condFn(info.cond, info.width);
      isImm = info.source === 'imm';
      target = jumpTarget(i, idx, info);
      break;
    case 'ja':
    case 'ja32':
    case 'may_goto':
      target = jumpTarget(i, idx, info);
      break;
    case 'call':
      if (i.src === BPF_PSEUDO_CALL) target = subprogIndexOf(prog, jumpTarget(i, idx, info));
      break;
    case 'callx':
      dst = callxReg(i);
      break;
    case 'gotox': {
      const t = prog.gotoxTargets.get(idx);
      allowed = t === undefined ? null : new Set(t);
      break;
    }
    case 'ldabs':
    case 'ldind':
    case 'ldx':
    case 'ldxsx':
    case 'st':
    case 'stx':
    case 'atomic':
    case 'exit':
      break;
    default: {
      const never: never = info;
      return never;
    }
  }
  return { info, dst, src: i.src, off: i.off, imm: i.imm, k, target, isImm, alu, cond, allowed };
}

/** The predecoded form of `prog`, built once and cached for the program's lifetime. */
function codeOf(prog: Program): Code {
  let code = codeCache.get(prog);
  if (code === undefined) {
    const slots: Slot[] = [];
    for (let idx = 0; idx < prog.insns.length; idx++) slots.push(decodeSlot(prog, idx));
    code = { prog, slots };
    codeCache.set(prog, code);
  }
  return code;
}

/** Turns anything thrown during a run into a `BpfError` that names insn `pc`. */
function toBpfError(e: unknown, pc: number): BpfError {
  if (isExecError(e) && e.insnIdx === null) {
    return new ExecError(pc, e.kind, e.reason, { cause: e });
  }
  if (isBpfError(e)) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new ExecError(pc, 'trap', msg, { cause: e });
}

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** The state of one run. */
class Run {
  readonly env: ExecEnv;
  readonly regs: bigint[] = new Array<bigint>(MAX_BPF_REG).fill(0n);
  readonly frames: Frame[] = [];
  code: Code;
  links: ProgLinks;
  fnStart: number;
  fnEnd: number;
  /** Frame pointer of the current function. */
  fp: number;
  mayGoto: number;
  u8: Uint8Array = new Uint8Array(0);
  dv: DataView = new DataView(this.u8.buffer);
  /** True when atomics must use `Atomics` (shared memory, 8-aligned view). */
  shared = false;
  a32: Uint32Array | null = null;
  a64: BigUint64Array | null = null;
  /** Frames outside this run: 0 for an entry, the caller's depth for a callback. */
  readonly baseDepth: number;
  /** Insns executed so far (callbacks share their caller's budget); kept across calls. */
  used = 0;

  /** A run of function `subprog` of `code` whose frame pointer is `fp`. */
  constructor(env: ExecEnv, code: Code, subprog = 0, fp = env.stackTop, baseDepth = 0) {
    this.env = env;
    this.code = code;
    this.links = env.links;
    const entry = code.prog.subprogs[subprog];
    this.fnStart = entry?.start ?? 0;
    this.fnEnd = entry?.end ?? 0;
    this.fp = fp;
    this.baseDepth = baseDepth;
    this.mayGoto = env.mayGotoBudget;
    this.refresh();
  }

  /** Re-creates the views when the env's memory changed (a helper grew it). */
  refresh(): void {
    const m = this.env.memory();
    const u8 = this.u8;
    if (m.buffer === u8.buffer && m.byteOffset === u8.byteOffset && m.length === u8.length) {
      return;
    }
    this.u8 = m;
    this.dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
    this.shared = m.buffer instanceof SharedArrayBuffer && m.byteOffset % 8 === 0;
    this.a32 = null;
    this.a64 = null;
  }

  /** Runs from the entry of the current function until it exits; returns r0. */
  run(r1: bigint, r2: bigint, r3 = 0n, r4 = 0n, r5 = 0n): bigint {
    const regs = this.regs;
    regs[1] = r1;
    regs[2] = r2;
    regs[3] = r3;
    regs[4] = r4;
    regs[5] = r5;
    regs[10] = BigInt(this.fp);
    const budget = this.env.insnBudget;
    let count = this.used;
    let pc = this.fnStart;
    let slots = this.code.slots;
    let fnEnd = this.fnEnd;
    try {
      for (;;) {
        if (pc >= fnEnd) throw this.fallOff(fnEnd);
        if (++count > budget) {
          throw new ExecError(pc, 'insn-budget', `more than ${budget} insns executed`);
        }
        const s = slots[pc] as Slot;
        const info = s.info;
        if (info === undefined) {
          throw new ExecError(pc, 'jump', `jump into the middle of ldimm64 insn ${pc - 1}`);
        }
        switch (info.kind) {
          case 'alu':
          case 'movsx':
          case 'end':
            regs[s.dst] = s.alu(regs[s.dst]!, s.isImm ? s.k : regs[s.src]!);
            pc++;
            break;
          case 'lddw':
            regs[s.dst] = s.src === 0 ? s.k : this.pseudo(pc, s.src);
            pc += 2;
            break;
          case 'ldx':
            regs[s.dst] = this.load(
              info.size,
              this.addr(regs[s.src]!, s.off, info.size, false, pc),
            );
            pc++;
            break;
          case 'ldxsx':
            regs[s.dst] = this.loadSx(
              info.size,
              this.addr(regs[s.src]!, s.off, info.size, false, pc),
            );
            pc++;
            break;
          case 'st':
            this.store(info.size, this.addr(regs[s.dst]!, s.off, info.size, true, pc), s.k);
            pc++;
            break;
          case 'stx':
            this.store(
              info.size,
              this.addr(regs[s.dst]!, s.off, info.size, true, pc),
              regs[s.src]!,
            );
            pc++;
            break;
          case 'atomic':
            this.atomic(s, info.op, info.fetch, info.size, pc);
            pc++;
            break;
          case 'ldabs':
          case 'ldind': {
            const v = this.ldPacket(s, info.size, info.kind === 'ldind', pc);
            if (v === undefined) return 0n;
            regs[0] = v;
            pc++;
            break;
          }
          case 'jmp':
            pc = s.cond(regs[s.dst]!, s.isImm ? s.k : regs[s.src]!) ? s.target : pc + 1;
            break;
          case 'ja':
          case 'ja32':
            pc = s.target;
            break;
          case 'may_goto': {
            let budget = this.mayGoto;
            if (budget !== 0 && this.env.mayGotoCheck !== undefined) {
              budget = this.env.mayGotoCheck(budget);
            }
            if (budget === 0) {
              this.mayGoto = 0;
              pc = s.target;
            } else {
              this.mayGoto = budget - 1;
              pc++;
            }
            break;
          }
          case 'gotox':
            pc = this.gotox(s, pc);
            break;
          case 'call':
          case 'callx':
            this.used = count;
            pc = info.kind === 'call' ? this.call(s, pc) : this.callx(s, pc);
            count = this.used;
            slots = this.code.slots;
            fnEnd = this.fnEnd;
            break;
          case 'exit':
            if (this.frames.length === 0) return regs[0]!;
            pc = this.leave();
            slots = this.code.slots;
            fnEnd = this.fnEnd;
            break;
          default: {
            const never: never = info;
            return never;
          }
        }
      }
    } catch (e) {
      throw toBpfError(e, pc);
    } finally {
      this.used = count;
    }
  }

  fallOff(fnEnd: number): ExecError {
    const sp = this.code.prog.subprogs[subprogIndexOf(this.code.prog, fnEnd - 1)];
    return new ExecError(fnEnd - 1, 'fall-off', `ran past the last insn of ${sp?.name ?? '?'}`);
  }

  /** The linked value of the pseudo lddw at `pc`. */
  pseudo(pc: number, src: number): bigint {
    const v = this.links.ldImm64.get(pc);
    if (v === undefined) {
      throw new LinkError(`ldimm64@${pc}`, `insn ${pc}: lddw with src ${src} has no linked value`);
    }
    return BigInt.asUintN(64, v);
  }

  // Memory

  /**
   * The linear address `base + off` after checking that `size` bytes there lie in the
   * active stack frames or in one region (writable when `write`); else ExecError 'mem'.
   */
  addr(base: bigint, off: number, size: number, write: boolean, pc: number): number {
    const b = Number(base);
    const a = b + off;
    const need = this.links.frameChecks?.get(pc);
    const ranges = this.links.regionChecks?.get(pc);
    // a load that may read a read-only map value the verifier could not bound it to, or
    // through a handle on another path: inside one of those values is enough (as the JIT)
    if (ranges !== undefined && b <= 0xffffffff && inRanges(a, size, ranges)) return a;
    if (need !== undefined) {
      // through a coroutine handle: a live frame of `need` bytes (the verifier proved
      // [off, off + size) lies within need), as the JIT checks
      this.frameCheck(base, need, pc, CORO_CHECK_RECORD);
      if (a + size <= this.u8.length) return a;
    } else if (ranges !== undefined) {
      const at = hex(BigInt.asUintN(64, base + BigInt(off)));
      throw new ExecError(
        pc,
        'mem',
        `invalid read of ${size} bytes at ${at}: outside the read-only map values the load may read (an offset the verifier could not bound)`,
      );
    }
    if (b <= 0xffffffff && this.isAccessible(a, size, write)) return a;
    const at = BigInt.asUintN(64, base + BigInt(off));
    const what = write ? 'write' : 'read';
    throw new ExecError(pc, 'mem', `invalid ${what} of ${size} bytes at ${hex(at)}`);
  }

  /**
   * `coro_frame_check(frame, need | flags)`, or ExecError 'frame' (the JIT's check, same insn;
   * `flags` CORO_CHECK_RECORD for an access through a handle).
   */
  frameCheck(frame: bigint, need: number, pc: number, flags = 0): void {
    const check = this.env.coroFrameCheck;
    if (frame <= 0xffffffffn && check !== undefined && check(Number(frame), (need | flags) >>> 0))
      return;
    throw new ExecError(
      pc,
      'frame',
      `${hex(frame)} is not a live coroutine frame of at least ${need} bytes`,
    );
  }

  /** A function verified as a token entry with r1 = a frame of N bytes is entered: check r1. */
  checkCoroEntry(links: ProgLinks, code: Code, subprog: number): void {
    const size = links.coroEntries?.get(subprog) ?? 0;
    if (size > 0) this.frameCheck(this.regs[1]!, size, code.prog.subprogs[subprog]?.start ?? 0);
  }

  isAccessible(a: number, size: number, write: boolean): boolean {
    const end = a + size;
    if (a < 0 || end > this.u8.length) return false;
    if (a >= this.fp - MAX_BPF_STACK && end <= this.env.stackTop) return true;
    const regions = this.env.regions;
    for (let n = 0; n < regions.length; n++) {
      const r = regions[n]!;
      if (a >= r.start && end <= r.end && (r.writable || !write)) return true;
    }
    return false;
  }

  load(size: AccessSize, a: number): bigint {
    switch (size) {
      case 1:
        return BigInt(this.dv.getUint8(a));
      case 2:
        return BigInt(this.dv.getUint16(a, true));
      case 4:
        return BigInt(this.dv.getUint32(a, true));
      case 8:
        return this.dv.getBigUint64(a, true);
    }
  }

  loadSx(size: 1 | 2 | 4, a: number): bigint {
    switch (size) {
      case 1:
        return BigInt.asUintN(64, BigInt(this.dv.getInt8(a)));
      case 2:
        return BigInt.asUintN(64, BigInt(this.dv.getInt16(a, true)));
      case 4:
        return BigInt.asUintN(64, BigInt(this.dv.getInt32(a, true)));
    }
  }

  /** Stores the low `size` bytes of `v` (a u64, or any bigint for size 8: it wraps). */
  store(size: AccessSize, a: number, v: bigint): void {
    switch (size) {
      case 1:
        this.dv.setUint8(a, Number(v & 0xffn));
        return;
      case 2:
        this.dv.setUint16(a, Number(v & 0xffffn), true);
        return;
      case 4:
        this.dv.setUint32(a, Number(v & M32), true);
        return;
      case 8:
        this.dv.setBigUint64(a, v, true);
        return;
    }
  }

  atomic(s: Slot, op: AtomicOp, fetch: boolean, size: 4 | 8, pc: number): void {
    const regs = this.regs;
    const a = this.addr(regs[s.dst]!, s.off, size, true, pc);
    if (a % size !== 0) {
      throw new ExecError(pc, 'align', `misaligned ${size}-byte atomic access at ${hex(a)}`);
    }
    const v = size === 4 ? regs[s.src]! & M32 : regs[s.src]!;
    const expect = size === 4 ? regs[0]! & M32 : regs[0]!;
    const old = this.shared
      ? this.atomicShared(op, size, a, v, expect)
      : this.atomicPlain(op, size, a, v, expect);
    if (op === 'cmpxchg') regs[0] = old;
    else if (fetch) regs[s.src] = old;
  }

  /** Read-modify-write on unshared memory; returns the old value (zero-extended). */
  atomicPlain(op: AtomicOp, size: 4 | 8, a: number, v: bigint, expect: bigint): bigint {
    const old = this.load(size, a);
    switch (op) {
      case 'add':
        this.store(size, a, old + v);
        break;
      case 'or':
        this.store(size, a, old | v);
        break;
      case 'and':
        this.store(size, a, old & v);
        break;
      case 'xor':
        this.store(size, a, old ^ v);
        break;
      case 'xchg':
        this.store(size, a, v);
        break;
      case 'cmpxchg':
        if (old === expect) this.store(size, a, v);
        break;
    }
    return old;
  }

  /** Read-modify-write with `Atomics` on shared memory; returns the old value. */
  atomicShared(op: AtomicOp, size: 4 | 8, a: number, v: bigint, expect: bigint): bigint {
    const buf = this.u8.buffer;
    if (size === 8) {
      const view = (this.a64 ??= new BigUint64Array(buf, 0, Math.floor(buf.byteLength / 8)));
      const i = (this.u8.byteOffset + a) / 8;
      switch (op) {
        case 'add':
          return Atomics.add(view, i, v);
        case 'or':
          return Atomics.or(view, i, v);
        case 'and':
          return Atomics.and(view, i, v);
        case 'xor':
          return Atomics.xor(view, i, v);
        case 'xchg':
          return Atomics.exchange(view, i, v);
        case 'cmpxchg':
          return Atomics.compareExchange(view, i, expect, v);
      }
    }
    const view = (this.a32 ??= new Uint32Array(buf, 0, Math.floor(buf.byteLength / 4)));
    const i = (this.u8.byteOffset + a) / 4;
    const x = Number(v);
    switch (op) {
      case 'add':
        return BigInt(Atomics.add(view, i, x));
      case 'or':
        return BigInt(Atomics.or(view, i, x));
      case 'and':
        return BigInt(Atomics.and(view, i, x));
      case 'xor':
        return BigInt(Atomics.xor(view, i, x));
      case 'xchg':
        return BigInt(Atomics.exchange(view, i, x));
      case 'cmpxchg':
        return BigInt(Atomics.compareExchange(view, i, Number(expect), x));
    }
  }

  /** ld_abs / ld_ind: the big-endian value, or undefined when the program must end with 0. */
  ldPacket(s: Slot, size: AccessSize, ind: boolean, pc: number): bigint | undefined {
    const pkt = this.env.packet;
    if (pkt === undefined) return undefined;
    const off = ind ? Number(BigInt.asIntN(32, this.regs[s.src]! + s.k)) : s.imm;
    if (off < 0 || off + size > pkt.len) return undefined;
    const a = pkt.addr + off;
    if (a < 0 || a + size > this.u8.length) {
      throw new ExecError(pc, 'mem', `invalid packet read of ${size} bytes at ${hex(a)}`);
    }
    switch (size) {
      case 1:
        return BigInt(this.dv.getUint8(a));
      case 2:
        return BigInt(this.dv.getUint16(a, false));
      case 4:
        return BigInt(this.dv.getUint32(a, false));
      case 8:
        return this.dv.getBigUint64(a, false);
    }
  }

  // Control flow

  gotox(s: Slot, pc: number): number {
    const v = this.regs[s.dst]!;
    const t = v < this.fnEnd ? Number(v) : -1;
    if (
      t < this.fnStart ||
      this.code.slots[t]?.info === undefined ||
      (s.allowed !== null && !s.allowed.has(t))
    ) {
      throw new ExecError(pc, 'jump', `gotox from insn ${pc} to ${v} is not a valid target`);
    }
    return t;
  }

  call(s: Slot, pc: number): number {
    switch (s.src) {
      case BPF_HELPER_CALL:
        if (s.imm === BPF_FUNC_tail_call) return this.tailCall(pc);
        this.helper(s.imm, pc);
        return pc + 1;
      case BPF_PSEUDO_CALL:
        return this.enter(this.code, this.links, s.target, pc);
      default:
        this.kfunc(s, pc);
        return pc + 1;
    }
  }

  /** A kfunc call: the slot the Vm linked for this insn; a weak kfunc it lacks fails here. */
  kfunc(s: Slot, pc: number): void {
    const r = this.regs;
    // bpf_throw: unwind to the entry; the host returns the cookie as r0 (as the JIT)
    if (this.links.throwInsns?.has(pc) === true) throw new TerminationError('throw', r[1]!);
    const slot = this.links.kfuncSlots.get(pc);
    const call = this.env.callKfunc;
    if (call === undefined)
      throw new LinkError(`kfunc#${s.imm}`, `insn ${pc}: this machine has no kfuncs`);
    if (slot === undefined)
      throw new ExecError(pc, 'call', 'call to a weak kfunc the Vm does not have');
    // bpf_obj_new_impl gets the object size the verifier found (the kernel's fixup)
    const objSize = this.links.objNewSizes?.get(pc);
    const r1 = objSize === undefined ? r[1]! : BigInt(objSize);
    let v: bigint;
    try {
      v = call(slot, [r1, r[2]!, r[3]!, r[4]!, r[5]!]);
    } catch (e) {
      if (isBpfError(e)) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new ExecError(pc, 'helper', `kfunc threw: ${msg}`, { cause: e });
    }
    r[0] = BigInt.asUintN(64, v);
    this.refresh();
  }

  /**
   * bpf_tail_call(ctx, prog_array, index): the helper resolves the target's function token (0
   * when there is none). Under MAX_TAIL_CALL_CNT the target replaces the current function in
   * its frame (it returns to this function's caller); otherwise execution goes on at the next
   * insn with r0 unchanged, as in the kernel.
   */
  tailCall(pc: number): number {
    if (this.tailCalls >= MAX_TAIL_CALL_CNT) return pc + 1;
    const r = this.regs;
    const saved = r[0]!;
    this.helper(BPF_FUNC_tail_call, pc);
    const token = r[0]!;
    r[0] = saved;
    if (token === 0n) return pc + 1;
    const t = this.env.resolveToken(token);
    const sp = t?.prog.subprogs[t.subprog];
    if (t === undefined || sp === undefined) {
      throw new ExecError(pc, 'call', `tail call to ${hex(token)}: not a function token`);
    }
    this.tailCalls++;
    this.code = codeOf(t.prog);
    this.links = t.links;
    this.fnStart = sp.start;
    this.fnEnd = sp.end;
    r[0] = 0n;
    for (let k = 6; k <= 9; k++) r[k] = 0n;
    return sp.start;
  }

  /** Tail calls taken in this run. */
  private tailCalls = 0;

  callx(s: Slot, pc: number): number {
    const v = this.regs[s.dst]!;
    // a target from a frame, a handle or .rodata: only a verified entry's token (as the JIT)
    if (this.links.callxChecks?.has(pc) === true && this.env.isCoroEntry?.(v) !== true) {
      throw new ExecError(pc, 'call', `callx to ${hex(v)}: not a verified coroutine entry`);
    }
    if (v < TOKEN_BASE) {
      this.helper(Number(v), pc);
      return pc + 1;
    }
    const t = this.env.resolveToken(v);
    if (t === undefined || t.prog.subprogs[t.subprog] === undefined) {
      throw new ExecError(pc, 'call', `callx to ${hex(v)}: not a helper id or a function token`);
    }
    return this.enter(codeOf(t.prog), t.links, t.subprog, pc);
  }

  /** Calls helper `id` with r1..r5; r0 gets the result, r1..r5 keep their values. */
  helper(id: number, pc: number): void {
    const r = this.regs;
    let v: unknown;
    inHelper.push(this);
    try {
      v = this.env.callHelper(id, [r[1]!, r[2]!, r[3]!, r[4]!, r[5]!]);
    } catch (e) {
      if (isBpfError(e)) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new ExecError(pc, 'helper', `helper #${id} threw: ${msg}`, { cause: e });
    } finally {
      inHelper.pop();
    }
    if (typeof v !== 'bigint') {
      throw new ExecError(pc, 'helper', `helper #${id} returned a ${typeof v}, not a bigint`);
    }
    r[0] = BigInt.asUintN(64, v);
    this.refresh();
  }

  /** Pushes a frame for a call at `pc` into subprog `subprog` of `code`; returns its entry. */
  enter(code: Code, links: ProgLinks, subprog: number, pc: number): number {
    const depth = this.baseDepth + this.frames.length + 2;
    const fp = this.fp - MAX_BPF_STACK;
    if (depth > MAX_CALL_FRAMES || fp - MAX_BPF_STACK < this.env.stackLimit) {
      throw new ExecError(pc, 'call-depth', `the call stack of ${depth} frames is too deep`);
    }
    const sp = code.prog.subprogs[subprog];
    if (sp === undefined) throw new ExecError(pc, 'call', `no function #${subprog}`);
    this.checkCoroEntry(links, code, subprog);
    const regs = this.regs;
    this.frames.push({
      code: this.code,
      links: this.links,
      retPc: pc + 1,
      fnStart: this.fnStart,
      fnEnd: this.fnEnd,
      saved: regs.slice(1),
    });
    this.code = code;
    this.links = links;
    this.fnStart = sp.start;
    this.fnEnd = sp.end;
    this.fp = fp;
    regs[10] = BigInt(fp);
    // A callee starts with r0 and r6-r9 zero, as the JIT's per-function locals do.
    regs[0] = 0n;
    for (let r = 6; r <= 9; r++) regs[r] = 0n;
    return sp.start;
  }

  /** Pops the current frame: restores the caller's r1..r10; returns the return slot. */
  leave(): number {
    const f = this.frames.pop() as Frame;
    const regs = this.regs;
    for (let r = 1; r < MAX_BPF_REG; r++) regs[r] = f.saved[r - 1]!;
    this.code = f.code;
    this.links = f.links;
    this.fnStart = f.fnStart;
    this.fnEnd = f.fnEnd;
    this.fp += MAX_BPF_STACK;
    return f.retPc;
  }
}

/**
 * Runs subprog 0 of `prog` with r1, r2 (r3–r5 = 0, r10 = `env.stackTop`) and returns r0 as a
 * u64 bigint. Throws `ExecError` naming the failing insn (or `LinkError` for an unresolved
 * pseudo lddw or a kfunc call); nothing else escapes, except what a helper throws that is
 * already a `BpfError` (e.g. `TerminationError`).
 *
 * Called from host. The program is predecoded on first use and cached per `Program`.
 *
 * @example
 * const prog = createProgram([BPF_MOV64_REG(BPF_REG_0, BPF_REG_1), BPF_EXIT_INSN()]);
 * // env: from the Vm (runtime/loaded-program.ts) or test/helpers/exec-env.ts makeExecEnv({ prog })
 * interpret(prog, env, 42n, 0n); // 42n
 */
export function interpret(prog: Program, env: ExecEnv, r1: bigint, r2: bigint): bigint {
  const run = new Run(env, codeOf(prog));
  return run.run(BigInt.asUintN(64, r1), BigInt.asUintN(64, r2));
}

/** True while an interpreter run on this thread is inside a helper call. */
export function hasActiveHelperCall(): boolean {
  return inHelper.length > 0;
}

/**
 * Runs the function behind a token from inside a helper call of the innermost interpreter run
 * (bpf_loop, for_each_map_elem): r1..r5 = `args`, r10 = one frame below the calling function's
 * frame, so the callback counts as a frame towards MAX_CALL_FRAMES as in the kernel, may use
 * pointers into its callers' stack frames, and shares the run's insn and may_goto budgets.
 * `regions` adds memory the callback may touch (a key the helper built). Returns r0.
 *
 * Called from host (a helper). Throws `ExecError` 'call-depth' when the frame would not fit,
 * and whatever the callback's run throws; an `InternalError` outside a helper call.
 */
export function interpretCallback(
  target: TokenTarget,
  args: HelperArgs,
  regions?: readonly MemRegion[],
): bigint {
  const outer = inHelper[inHelper.length - 1];
  if (outer === undefined) throw new InternalError('interpretCallback outside a helper call');
  const depth = outer.baseDepth + outer.frames.length + 2;
  const fp = outer.fp - MAX_BPF_STACK;
  if (depth > MAX_CALL_FRAMES || fp - MAX_BPF_STACK < outer.env.stackLimit) {
    throw new ExecError(null, 'call-depth', `the call stack of ${depth} frames is too deep`);
  }
  const env: ExecEnv = {
    ...outer.env,
    links: target.links,
    regions: regions === undefined ? outer.env.regions : [...outer.env.regions, ...regions],
  };
  const run = new Run(env, codeOf(target.prog), target.subprog, fp, depth - 1);
  run.used = outer.used;
  run.mayGoto = outer.mayGoto;
  try {
    return run.run(...u64Args(args));
  } finally {
    outer.used = run.used;
    outer.mayGoto = run.mayGoto;
  }
}

/**
 * Runs the function behind a token as an entry of its own (a timer callback the host event
 * loop runs): r1..r5 = `args`, r10 = `env.stackTop`. Returns r0; throws as `interpret`.
 */
export function interpretFunction(target: TokenTarget, env: ExecEnv, args: HelperArgs): bigint {
  const code = codeOf(target.prog);
  const run = new Run(env, code, target.subprog);
  run.regs[1] = BigInt.asUintN(64, args[0]);
  run.checkCoroEntry(target.links, code, target.subprog);
  return run.run(...u64Args(args));
}

function u64Args(a: HelperArgs): [bigint, bigint, bigint, bigint, bigint] {
  return [
    BigInt.asUintN(64, a[0]),
    BigInt.asUintN(64, a[1]),
    BigInt.asUintN(64, a[2]),
    BigInt.asUintN(64, a[3]),
    BigInt.asUintN(64, a[4]),
  ];
}
