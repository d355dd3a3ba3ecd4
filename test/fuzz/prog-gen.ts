/**
 * A seeded generator of random, well-formed BPF programs for differential testing: every
 * ALU op in 32 and 64 bit with immediate and register sources (edge-biased values), movsx,
 * byte swaps, lddw, loads/stores/atomics of every size on the stack and on the input buffer,
 * conditional forward jumps in both widths, may_goto, bounded loops, local calls, callx to
 * functions and helpers, helper calls, and (rarely) a deliberate NULL dereference.
 *
 * Conventions of generated code: r9 holds the input buffer (INPUT_SIZE bytes), r10 the frame;
 * neither is ever written. Loops count down in r8, which their bodies leave alone. Memory
 * accesses stay inside the current frame or the input, so both engines must agree exactly.
 */

import { insn, type Insn } from '../../src/isa/insn.js';
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_B,
  BPF_DW,
  BPF_H,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_IMM,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_ST,
  BPF_STX,
  BPF_W,
  BPF_X,
  CALL,
  CALLX,
  EXIT,
  JA,
  MAY_GOTO,
} from '../../src/isa/opcodes.js';
import { OP_TABLE, type OpInfo } from '../../src/isa/table.js';
import type { Prng } from '../helpers/prng.js';

/** Bytes of input each generated program gets in r1. */
export const INPUT_SIZE = 64;
/** A helper the differential harness registers: a deterministic mix of r1..r5. */
export const TEST_HELPER_ID = 200;

/** Edge-case s32 immediates (shared with the verifier fuzz generator). */
export const EDGE_IMMS = [
  0, 1, -1, 2, 7, 31, 32, 63, 64, 0x7fffffff, -0x80000000, 0xff, 0xffff, -2, 3, 5,
];
/** Edge-case 64-bit values (shared with the verifier fuzz generator). */
export const EDGE_U64 = [
  0n,
  1n,
  0xffffffffffffffffn,
  0x8000000000000000n,
  0x7fffffffffffffffn,
  0xffffffffn,
  0x80000000n,
  0x100000000n,
  0xfffffffffffffffen,
];

const ALU_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'alu' } => o.kind === 'alu');
const JMP_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'jmp' } => o.kind === 'jmp');
const END_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'end' } => o.kind === 'end');
const MOVSX_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'movsx' } => o.kind === 'movsx');
const ATOMIC_INFOS = OP_TABLE.filter((o): o is OpInfo & { kind: 'atomic' } => o.kind === 'atomic');
const SIZE_BITS = { 1: BPF_B, 2: BPF_H, 4: BPF_W, 8: BPF_DW } as const;

interface FuncCtx {
  /** Registers the code may write (loop bodies exclude r8). */
  readonly writable: readonly number[];
  /** Remaining nesting budget for jumps and loops. */
  readonly depth: number;
  readonly inLoop: boolean;
  /** Index of this function; calls go only to higher-numbered functions (no recursion). */
  readonly func: number;
}

/** A generated program: its slots and the input it runs on. */
export interface GeneratedProgram {
  readonly insns: Insn[];
  readonly input: Uint8Array;
}

/** Generates one program from `rng`. */
export function generateProgram(rng: Prng): GeneratedProgram {
  const nFuncs = 1 + rng.int(3);
  const funcs: Insn[][] = [];
  const calls: { func: number; at: number; target: number; kind: 'call' | 'lddw' }[] = [];
  for (let f = 0; f < nFuncs; f++) {
    const out: Insn[] = [];
    const g = new Gen(rng, out, nFuncs, (at, target, kind) =>
      calls.push({ func: f, at, target, kind }),
    );
    // r9 = the input: r1 in the entry; callers pass it in r5 to callees.
    out.push(insn(BPF_ALU64 | BPF_X | 0xb0, 9, f === 0 ? 1 : 5, 0, 0));
    for (const r of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
      if (f === 0 && (r === 1 || r === 2)) continue;
      if (f > 0 && r >= 1 && r <= 5) continue; // arguments
      g.setRandom(r);
    }
    g.body(
      { writable: [0, 1, 2, 3, 4, 5, 6, 7, 8], depth: 3, inLoop: false, func: f },
      6 + rng.int(f === 0 ? 30 : 14),
    );
    // Fold every register into r0 so that the result depends on all of them.
    for (const r of [1, 2, 3, 4, 5, 6, 7, 8]) out.push(insn(BPF_ALU64 | BPF_X | 0xa0, 0, r, 0, 0));
    out.push(insn(EXIT, 0, 0, 0, 0));
    funcs.push(out);
  }
  const starts: number[] = [];
  let at = 0;
  for (const f of funcs) {
    starts.push(at);
    at += f.length;
  }
  const insns = funcs.flat();
  for (const c of calls) {
    const idx = (starts[c.func] as number) + c.at;
    const rel = (starts[c.target] as number) - (idx + 1);
    const old = insns[idx] as Insn;
    insns[idx] = insn(old.code, old.dst, old.src, old.off, rel);
  }
  return { insns, input: rng.bytes(INPUT_SIZE) };
}

class Gen {
  private readonly rng: Prng;
  private readonly out: Insn[];
  private readonly nFuncs: number;
  private readonly onCall: (at: number, target: number, kind: 'call' | 'lddw') => void;

  constructor(
    rng: Prng,
    out: Insn[],
    nFuncs: number,
    onCall: (at: number, target: number, kind: 'call' | 'lddw') => void,
  ) {
    this.rng = rng;
    this.out = out;
    this.nFuncs = nFuncs;
    this.onCall = onCall;
  }

  private imm(): number {
    const r = this.rng;
    return r.bool(0.6) ? r.pick(EDGE_IMMS) : r.next32() | 0;
  }

  private u64(): bigint {
    const r = this.rng;
    if (r.bool(0.5)) return r.pick(EDGE_U64);
    return (BigInt(r.next32()) << 32n) | BigInt(r.next32());
  }

  setRandom(reg: number): void {
    const v = this.u64();
    this.out.push(insn(BPF_LD | BPF_DW | BPF_IMM, reg, 0, 0, Number(BigInt.asIntN(32, v))));
    this.out.push(insn(0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n))));
  }

  body(ctx: FuncCtx, n: number): void {
    for (let k = 0; k < n; k++) this.stmt(ctx);
  }

  private stmt(ctx: FuncCtx): void {
    const r = this.rng;
    const roll = r.int(100);
    const dst = r.pick(ctx.writable);
    const src = r.int(10);
    if (roll < 34) {
      const info = r.pick(ALU_INFOS);
      const cls = info.width === 64 ? BPF_ALU64 : BPF_ALU;
      const opBits = info.code & 0xf0;
      if (info.source === 'imm')
        this.out.push(
          insn(cls | BPF_K | opBits, dst, 0, info.off ?? 0, info.op === 'neg' ? 0 : this.imm()),
        );
      else this.out.push(insn(cls | BPF_X | opBits, dst, src, info.off ?? 0, 0));
    } else if (roll < 38) {
      const info = r.pick(MOVSX_INFOS);
      this.out.push(insn(info.code, dst, src, info.off, 0));
    } else if (roll < 42) {
      const info = r.pick(END_INFOS);
      this.out.push(insn(info.code, dst, 0, 0, info.imm));
    } else if (roll < 45) {
      this.setRandom(dst);
    } else if (roll < 62) {
      this.memAccess(ctx, dst, src);
    } else if (roll < 67) {
      this.atomic(ctx);
    } else if (roll < 80 && ctx.depth > 0) {
      this.forwardJump(ctx);
    } else if (roll < 84 && ctx.depth > 0 && !ctx.inLoop) {
      this.loop(ctx);
    } else if (roll < 91) {
      this.call(ctx);
    } else if (roll < 93 && ctx.depth > 0) {
      const at = this.out.length;
      this.out.push(insn(MAY_GOTO, 0, 0, 0, 0));
      const start = this.out.length;
      this.body({ ...ctx, depth: ctx.depth - 1 }, 1 + r.int(3));
      this.patchOff(at, this.out.length - start);
    } else if (roll < 94 && r.bool(0.2)) {
      // A deliberate NULL dereference: both engines must fail at this insn with 'mem'.
      this.out.push(insn(BPF_ALU64 | BPF_K | 0xb0, dst, 0, 0, 0));
      this.out.push(insn(BPF_LDX | BPF_MEM | BPF_DW, dst, dst, r.int(64) * 8, 0));
    } else {
      this.out.push(insn(BPF_ALU64 | BPF_K | 0x00, dst, 0, 0, this.imm()));
    }
  }

  /** A stack or input slot: [base reg, offset] for an access of `size` bytes. */
  private slot(size: number, aligned: boolean): [number, number] {
    const r = this.rng;
    if (r.bool()) {
      let off = -(size + r.int(512 - size + 1));
      if (aligned) off = -Math.ceil(-off / size) * size;
      return [10, off];
    }
    let off = r.int(INPUT_SIZE - size + 1);
    if (aligned) off = Math.floor(off / size) * size;
    return [9, off];
  }

  private memAccess(ctx: FuncCtx, dst: number, src: number): void {
    const r = this.rng;
    const size = r.pick([1, 2, 4, 8] as const);
    const sz = SIZE_BITS[size];
    const [base, off] = this.slot(size, false);
    const kind = r.int(4);
    if (kind === 0) this.out.push(insn(BPF_LDX | BPF_MEM | sz, dst, base, off, 0));
    else if (kind === 1 && size !== 8)
      this.out.push(insn(BPF_LDX | BPF_MEMSX | sz, dst, base, off, 0));
    else if (kind === 2) this.out.push(insn(BPF_ST | BPF_MEM | sz, base, 0, off, this.imm()));
    else this.out.push(insn(BPF_STX | BPF_MEM | sz, base, src, off, 0));
    void ctx;
  }

  private atomic(ctx: FuncCtx): void {
    const r = this.rng;
    const info = r.pick(ATOMIC_INFOS);
    const [base, off] = this.slot(info.size, true);
    // fetch forms write src, cmpxchg writes r0: keep those within the writable set
    const src = info.fetch && info.op !== 'cmpxchg' ? r.pick(ctx.writable) : r.int(10);
    if (info.op === 'cmpxchg' && !ctx.writable.includes(0)) return;
    this.out.push(
      insn(BPF_STX | BPF_ATOMIC | (info.size === 8 ? BPF_DW : BPF_W), base, src, off, info.imm),
    );
  }

  private patchOff(at: number, off: number): void {
    const old = this.out[at] as Insn;
    this.out[at] = insn(old.code, old.dst, old.src, off, old.imm);
  }

  private forwardJump(ctx: FuncCtx): void {
    const r = this.rng;
    const info = r.pick(JMP_INFOS);
    const cls = info.width === 64 ? BPF_JMP : BPF_JMP32;
    const code = cls | (info.source === 'imm' ? BPF_K : BPF_X) | (info.code & 0xf0);
    const at = this.out.length;
    this.out.push(
      insn(
        code,
        r.int(10),
        info.source === 'reg' ? r.int(10) : 0,
        0,
        info.source === 'imm' ? this.imm() : 0,
      ),
    );
    const start = this.out.length;
    this.body({ ...ctx, depth: ctx.depth - 1 }, 1 + r.int(5));
    if (r.bool(0.3)) {
      // if/else: jump over the else part at the end of the then part
      const ja = this.out.length;
      this.out.push(insn(JA, 0, 0, 0, 0));
      this.patchOff(at, this.out.length - start);
      const elseStart = this.out.length;
      this.body({ ...ctx, depth: ctx.depth - 1 }, 1 + r.int(4));
      this.patchOff(ja, this.out.length - elseStart);
      return;
    }
    this.patchOff(at, this.out.length - start);
  }

  private loop(ctx: FuncCtx): void {
    const r = this.rng;
    this.out.push(insn(BPF_ALU64 | BPF_K | 0xb0, 8, 0, 0, 1 + r.int(5))); // r8 = N
    const head = this.out.length;
    this.body(
      { ...ctx, writable: ctx.writable.filter((x) => x !== 8), depth: ctx.depth - 1, inLoop: true },
      1 + r.int(6),
    );
    this.out.push(insn(BPF_ALU64 | BPF_K | 0x10, 8, 0, 0, 1)); // r8 -= 1
    const back = this.out.length;
    this.out.push(insn(BPF_JMP | BPF_K | 0x50, 8, 0, head - (back + 1), 0)); // if r8 != 0 goto head
  }

  private call(ctx: FuncCtx): void {
    const r = this.rng;
    const callee = ctx.func + 1 + r.int(Math.max(1, this.nFuncs - ctx.func - 1));
    const roll = r.int(4);
    if (roll === 0 || callee >= this.nFuncs) {
      this.out.push(insn(CALL, 0, 0, 0, r.bool() ? TEST_HELPER_ID : 5));
    } else if (roll === 1 && ctx.writable.includes(5)) {
      this.out.push(insn(BPF_ALU64 | BPF_X | 0xb0, 5, 9, 0, 0)); // r5 = r9
      this.onCall(this.out.length, callee, 'call');
      this.out.push(insn(CALL, 0, BPF_PSEUDO_CALL, 0, 0));
    } else if (roll === 2 && ctx.writable.includes(7) && ctx.writable.includes(5)) {
      this.out.push(insn(BPF_ALU64 | BPF_X | 0xb0, 5, 9, 0, 0)); // r5 = r9
      this.onCall(this.out.length, callee, 'lddw');
      this.out.push(insn(BPF_LD | BPF_DW | BPF_IMM, 7, BPF_PSEUDO_FUNC, 0, 0), insn(0, 0, 0, 0, 0));
      this.out.push(insn(CALLX, 7, 0, 0, 0));
    } else if (ctx.writable.includes(7)) {
      this.out.push(insn(BPF_ALU64 | BPF_K | 0xb0, 7, 0, 0, TEST_HELPER_ID));
      this.out.push(insn(CALLX, 7, 0, 0, 0));
    }
  }
}
