/**
 * Register representation for verified programs (issue #5 §5): decides, per BPF function, which
 * values of which registers the JIT keeps in an i32 local instead of the register's i64 local,
 * so that address arithmetic, loads, stores and pointer compares work on i32 directly
 * (notes/wasm-platform.md §6 measured a packet loop 1.75× faster that way).
 *
 * Called from: jit/compile.ts, once per BPF function of a program compiled with verifier facts.
 * Pure data: no binaryen here.
 *
 * ## The scheme: webs
 *
 * A BPF register is a pointer at some instructions and a scalar at others, so the decision is
 * not per register but per *web*: the definitions of a register that reach a common read,
 * joined transitively (the classic live-range split). Every definition of a register (an
 * instruction writing it, or the function entry for its incoming value) belongs to exactly one
 * web, and so does every read. Webs are found with liveness (per block, 10-bit masks) and a
 * union-find over the definitions that reach a block entry where the register is live.
 *
 * Each read is classified by what the instruction needs from the register (`RegUse.full`):
 * - *low*: only the low 32 bits — ALU32 and JMP32 operands, the base of a memory access (a
 *   verified access is below 2^32, so the address is the low 32 bits of base + off), the value
 *   of a 1/2/4-byte store, the index of ld_ind;
 * - *full*: all 64 bits — every other read (ALU64 operands, 64-bit compares, 8-byte stores,
 *   call arguments, callx targets, gotox, exit's r0).
 *
 * A web is **i32** when it is read at all and the verifier's facts say, at every full read of
 * it, that the register holds no scalar (`regClass` has no `REG_CLASS_SCALAR` bit), else i64.
 * The JIT then writes every definition of an i32 web as the low 32 bits of the value (i32 ops
 * for add/sub/mul/and/or/xor/neg/mov, which are exact modulo 2^32, i32 loads, `i32.wrap_i64`
 * otherwise) and reads it with `local.get` where the low half suffices, `i64.extend_i32_u`
 * where all 64 bits are needed. Call arguments the facts show as not initialised on every
 * path are not reads at all: the callee cannot read them, so the JIT passes 0.
 *
 * ## Soundness
 *
 * Claim: every read of a register at slot s yields the value the BPF semantics give it.
 * 1. The reaching definition d of the read belongs to the read's web W (webs are closed under
 *    "reaches a read"), and no other definition of the register ran between d and s, so no
 *    other write of W's local did either. All webs of one register share that register's two
 *    locals (one i64, one i32) safely for the same reason: a write of another web of the same
 *    register between d and s would be a definition of the register between d and s.
 *    Hence W's local holds the value d wrote (i64) or its low 32 bits (i32).
 * 2. A low read of an i32 web gets the exact low 32 bits; of an i64 web, `i32.wrap_i64`.
 * 3. A full read of an i32 web is `i64.extend_i32_u` of the low half, which is the value iff
 *    the upper half is 0. The web is i32 only if the facts at s show no scalar: the register
 *    is a pointer (a linear-memory address, a function token or the 0 of a null `_or_null`
 *    pointer, always below 2^32, verified-program.ts) on every explored state at s. A state
 *    the verifier pruned at an earlier slot is covered by an explored one in every register it
 *    will read (states.ts `regsafe`), and s reads the register, so the facts hold for it too.
 *    Call arguments beyond what the callee reads may contradict the facts, but no one reads
 *    them.
 * 4. Pointer arithmetic `ptr += scalar` computed in i32 gives the low half of the 64-bit sum
 *    (wrap is a ring morphism); the verifier proved the result is an address below 2^32, so the
 *    low half is the value. Compares of two values known below 2^32 are done as unsigned i32
 *    compares (a signed 64-bit compare of two non-negative values is the unsigned one).
 * 5. Reads the JIT emits and this analysis does not know are refused (InternalError), so the
 *    table of reads in `regAccess` cannot silently fall out of step with the emitter.
 */

import { InternalError } from '../src/errors.js';
import { BPF_FUNC_tail_call } from '../src/helper-protos.js';
import { callxReg, type Insn } from '../src/isa/insn.js';
import { BPF_PSEUDO_CALL, BPF_PSEUDO_KFUNC_CALL } from '../src/isa/opcodes.js';
import type { OpInfo } from '../src/isa/table.js';
import type { Program, Subprog } from '../src/program.js';
import {
  REG_CLASS_PTR,
  REG_CLASS_SCALAR,
  type VerifiedProgram,
} from '../src/verifier/verified-program.js';
import { successors, type FuncCfg } from './cfg.js';

/** Which local holds a register's value at one read or write. */
export type RegLoc = 'i64' | 'i32';

/** One register an instruction reads; `full` when all 64 bits are needed, not only the low 32. */
export interface RegUse {
  readonly reg: number;
  readonly full: boolean;
}

/** The registers an instruction reads (before it writes) and writes, r10 included in reads. */
export interface RegAccess {
  readonly uses: readonly RegUse[];
  readonly defs: readonly number[];
}

/** The representation chosen for every read and write of one function's registers r0–r9. */
export interface RegRepr {
  /** The local the write of `reg` at `idx` goes to. */
  def(idx: number, reg: number): RegLoc;
  /** The local the read of `reg` at `idx` comes from; 'none' for an argument no one reads. */
  use(idx: number, reg: number): RegLoc | 'none';
  /** Whether the read of `reg` at `idx` was declared full (may be widened to 64 bits). */
  isFull(idx: number, reg: number): boolean;
  /** The local holding `reg`'s incoming value at function entry. */
  entry(reg: number): RegLoc;
  /** The facts prove `reg` is below 2^32 before `idx` (a pointer on every path). */
  upperZero(idx: number, reg: number): boolean;
  /** Per register r0–r9, how many of its webs that are read live in i32 and in i64 locals. */
  readonly webs: readonly WebCount[];
}

/** Webs of one register by representation. */
export interface WebCount {
  readonly i32: number;
  readonly i64: number;
}

/** Registers with a web analysis: r0–r9 (r10 is the frame pointer, always the i32 `fp` local). */
const NREGS = 10;

/** Without facts: every register in its i64 local. */
export const ALL_I64: RegRepr = {
  def: () => 'i64',
  use: () => 'i64',
  isFull: () => true,
  entry: () => 'i64',
  upperZero: (_idx, reg) => reg === 10,
  webs: Array.from({ length: NREGS }, () => ({ i32: 0, i64: 0 })),
};

const ARGS = [1, 2, 3, 4, 5] as const;

/**
 * The reads and writes of the instruction at `idx`, as jit/compile.ts emits it. `skipArg(r)`
 * tells whether call argument r is unread (not initialised on any path): it is then no read.
 */
export function regAccess(
  prog: Program,
  idx: number,
  skipArg: (reg: number) => boolean,
): RegAccess {
  const info = prog.ops[idx] as OpInfo;
  const i = prog.insns[idx] as Insn;
  const use = (reg: number, full: boolean): RegUse => ({ reg, full });
  const args = (): RegUse[] => ARGS.filter((r) => !skipArg(r)).map((r) => use(r, true));
  switch (info.kind) {
    case 'alu': {
      const full = info.width === 64;
      const src = info.source === 'reg' ? [use(i.src, full)] : [];
      if (info.op === 'mov') return { uses: src, defs: [i.dst] };
      if (info.op === 'neg') return { uses: [use(i.dst, full)], defs: [i.dst] };
      return { uses: [use(i.dst, full), ...src], defs: [i.dst] };
    }
    case 'movsx':
      return { uses: [use(i.src, info.width === 64)], defs: [i.dst] };
    case 'end':
      return { uses: [use(i.dst, info.bits === 64)], defs: [i.dst] };
    case 'lddw':
      return { uses: [], defs: [i.dst] };
    case 'ldx':
    case 'ldxsx':
      return { uses: [use(i.src, false)], defs: [i.dst] };
    case 'st':
      return { uses: [use(i.dst, false)], defs: [] };
    case 'stx':
      return { uses: [use(i.dst, false), use(i.src, info.size === 8)], defs: [] };
    case 'atomic': {
      const uses = [use(i.dst, false), use(i.src, true)];
      if (info.op === 'cmpxchg') return { uses: [...uses, use(0, true)], defs: [0] };
      return { uses, defs: info.fetch ? [i.src] : [] };
    }
    case 'ldabs':
      return { uses: [], defs: [0] };
    case 'ldind':
      return { uses: [use(i.src, false)], defs: [0] };
    case 'call': {
      const helper = i.src !== BPF_PSEUDO_CALL && i.src !== BPF_PSEUDO_KFUNC_CALL;
      // a tail call that falls through leaves r0 as it was
      const defs = helper && i.imm === BPF_FUNC_tail_call ? [] : [0];
      return { uses: args(), defs };
    }
    case 'callx':
      return { uses: [use(callxReg(i), true), ...args()], defs: [0] };
    case 'jmp': {
      const full = info.width === 64;
      const src = info.source === 'reg' ? [use(i.src, full)] : [];
      return { uses: [use(i.dst, full), ...src], defs: [] };
    }
    case 'gotox':
      return { uses: [use(i.dst, true)], defs: [] };
    case 'exit':
      return { uses: [use(0, true)], defs: [] };
    case 'may_goto':
    case 'ja':
    case 'ja32':
      return { uses: [], defs: [] };
    default: {
      const never: never = info;
      throw new InternalError(`bug: insn ${idx}: no register access for ${String(never)}`);
    }
  }
}

/** Union-find over definition ids, with path halving. */
class DefSets {
  private readonly parent: Int32Array;

  constructor(n: number) {
    this.parent = Int32Array.from({ length: n }, (_, k) => k);
  }

  find(x: number): number {
    const p = this.parent;
    while (p[x] !== x) {
      const up = p[p[x] as number] as number;
      p[x] = up;
      x = up;
    }
    return x;
  }

  /** Joins the sets of a and b; false when they already were one. */
  union(a: number, b: number): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return false;
    this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
    return true;
  }
}

const key = (idx: number, reg: number): number => idx * 16 + reg;

/** The instructions of one block with their register accesses. */
interface BlockAccess {
  readonly idx: number;
  readonly access: RegAccess;
}

/**
 * Chooses i32 or i64 for every web of function `sp` (its reachable blocks `cfg`), from the
 * verifier's facts. See the file comment for the scheme and its soundness.
 */
export function planRegRepr(
  prog: Program,
  sp: Subprog,
  cfg: FuncCfg,
  verified: VerifiedProgram,
): RegRepr {
  const regClass = (idx: number, reg: number): number | undefined =>
    verified.facts[idx]?.regClass[reg];
  const isUninit = (idx: number, reg: number): boolean => {
    const c = regClass(idx, reg);
    return c !== undefined && (c & (REG_CLASS_SCALAR | REG_CLASS_PTR)) === 0;
  };
  const upperZero = (idx: number, reg: number): boolean => {
    if (reg === 10) return true;
    const c = regClass(idx, reg);
    return c !== undefined && (c & REG_CLASS_SCALAR) === 0 && (c & REG_CLASS_PTR) !== 0;
  };
  const blocks: BlockAccess[][] = cfg.blocks.map((b) => {
    const out: BlockAccess[] = [];
    for (let idx = b.start; idx < b.end; idx++) {
      if (prog.ops[idx] === undefined) continue;
      out.push({ idx, access: regAccess(prog, idx, (r) => isUninit(idx, r)) });
    }
    return out;
  });
  // Definition ids: 0..9 are the values r0..r9 hold at function entry.
  const defIds = new Map<number, number>();
  const defReg = Array.from({ length: NREGS }, (_, r) => r);
  for (const list of blocks) {
    for (const { idx, access } of list) {
      for (const r of access.defs) {
        defIds.set(key(idx, r), defReg.length);
        defReg.push(r);
      }
    }
  }
  const nDefs = defReg.length;
  const sets = new DefSets(nDefs);
  const inDef = joinReachingDefs(cfg, blocks, defIds, sets);
  // Record every read with its web; a full read that may see a scalar pins the web to i64.
  const useWeb = new Map<number, number>();
  const fullUses = new Set<number>();
  const pinned: number[] = [];
  const read: number[] = [];
  blocks.forEach((list, b) => {
    const cur = Array.from(inDef.subarray(b * NREGS, (b + 1) * NREGS));
    for (const { idx, access } of list) {
      for (const u of access.uses) {
        if (u.reg >= NREGS) continue;
        let web = cur[u.reg] as number;
        if (web < 0) {
          web = u.reg; // no definition reaches it (never on a verified path): keep it in i64
          pinned.push(web);
        }
        useWeb.set(key(idx, u.reg), web);
        read.push(web);
        if (!u.full) continue;
        fullUses.add(key(idx, u.reg));
        const c = regClass(idx, u.reg);
        if (c === undefined || (c & REG_CLASS_SCALAR) !== 0) pinned.push(web);
      }
      for (const r of access.defs) cur[r] = defIds.get(key(idx, r)) as number;
    }
  });
  // 0: not read, 1: i32, 2: i64 (by set root)
  const rep = new Uint8Array(nDefs);
  for (const w of read) rep[sets.find(w)] = 1;
  for (const w of pinned) rep[sets.find(w)] = 2;
  const loc = (def: number): RegLoc => (rep[sets.find(def)] === 1 ? 'i32' : 'i64');
  const webs = Array.from({ length: NREGS }, () => ({ i32: 0, i64: 0 }));
  for (let d = 0; d < nDefs; d++) {
    const count = webs[defReg[d] as number] as { i32: number; i64: number };
    if (sets.find(d) === d && rep[d] === 1) count.i32++;
    else if (sets.find(d) === d && rep[d] === 2) count.i64++;
  }
  const where = (idx: number, reg: number): string => `insn ${idx} (${sp.name}) r${reg}`;
  return {
    def: (idx, reg) => {
      const d = defIds.get(key(idx, reg));
      if (d === undefined) throw new InternalError(`bug: ${where(idx, reg)}: unplanned write`);
      return loc(d);
    },
    use: (idx, reg) => {
      const w = useWeb.get(key(idx, reg));
      if (w !== undefined) return loc(w);
      if (isUninit(idx, reg)) return 'none';
      throw new InternalError(`bug: ${where(idx, reg)}: unplanned read`);
    },
    isFull: (idx, reg) => fullUses.has(key(idx, reg)),
    entry: (reg) => loc(reg),
    upperZero,
    webs,
  };
}

/**
 * Liveness, then the webs: for every block and every register live at its entry, the
 * definitions reaching that entry are joined into one set. Returns, per block and register, a
 * definition of the set reaching the block entry (-1 where the register is dead).
 */
function joinReachingDefs(
  cfg: FuncCfg,
  blocks: readonly (readonly BlockAccess[])[],
  defIds: ReadonlyMap<number, number>,
  sets: DefSets,
): Int32Array {
  const nb = blocks.length;
  const useMask = new Uint16Array(nb);
  const defMask = new Uint16Array(nb);
  const lastDef = new Int32Array(nb * NREGS).fill(-1);
  blocks.forEach((list, b) => {
    let used = 0;
    let defined = 0;
    for (const { idx, access } of list) {
      for (const u of access.uses) {
        if (u.reg < NREGS && (defined & (1 << u.reg)) === 0) used |= 1 << u.reg;
      }
      for (const r of access.defs) {
        defined |= 1 << r;
        lastDef[b * NREGS + r] = defIds.get(key(idx, r)) as number;
      }
    }
    useMask[b] = used;
    defMask[b] = defined;
  });
  const succ = cfg.blocks.map((b) => successors(cfg, b));
  const preds: number[][] = cfg.blocks.map(() => []);
  succ.forEach((ss, b) => ss.forEach((s) => (preds[s] as number[]).push(b)));
  const liveIn = new Uint16Array(nb);
  for (let changed = true; changed;) {
    changed = false;
    for (let b = nb - 1; b >= 0; b--) {
      let out = 0;
      for (const s of succ[b] as number[]) out |= liveIn[s] as number;
      const inb = (useMask[b] as number) | (out & ~(defMask[b] as number));
      if (inb !== liveIn[b]) {
        liveIn[b] = inb;
        changed = true;
      }
    }
  }
  const inDef = new Int32Array(nb * NREGS).fill(-1);
  if (nb > 0) for (let r = 0; r < NREGS; r++) inDef[r] = r;
  for (let changed = true; changed;) {
    changed = false;
    for (let b = 0; b < nb; b++) {
      for (let r = 0; r < NREGS; r++) {
        if (((liveIn[b] as number) & (1 << r)) === 0) continue;
        for (const p of preds[b] as number[]) {
          const last = lastDef[p * NREGS + r] as number;
          const out = last >= 0 ? last : (inDef[p * NREGS + r] as number);
          if (out < 0) continue;
          const at = b * NREGS + r;
          if ((inDef[at] as number) < 0) {
            inDef[at] = out;
            changed = true;
          } else if (sets.union(inDef[at] as number, out)) {
            changed = true;
          }
        }
      }
    }
  }
  return inDef;
}
