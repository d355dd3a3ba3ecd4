/**
 * BPF → WebAssembly. One Wasm function `(i64 r1..r5) -> i64` per BPF function; r0 and r6–r10
 * are i64 locals, so callee-saved registers survive local calls for free. Control flow is
 * built as nested blocks and loops from `jit/cfg.ts`'s plan, with binaryen's Relooper only
 * for functions whose CFG has no such nesting. Helper calls and `callx` go through the Vm's
 * call table (`call_indirect`), which is what makes helpers hot-patchable; local calls are
 * direct calls. Exact BPF semantics for division, modulo, shifts and 32-bit results.
 *
 * Module shape (src/abi.ts): imports env.memory, env.table, env.sp (mutable i32, the worker's
 * stack pointer, shared by all its modules), env.stack_limit, env.ctrl, env.ctx; exports
 * `f<k>` per function, `run(a, b) -> i32` and `run_batch(desc, count, results) -> i32`.
 *
 * Errors in generated code (unverified programs only) store an `EXEC_CODE` and the insn index
 * in the worker's control slot and trap; the runtime turns that into an `ExecError`.
 *
 * With the verifier's facts (`CompileOptions.verified`, issue #5 §5): unreachable slots are not
 * emitted (jit/cfg.ts), values the facts prove to be pointers live in i32 locals so that
 * address arithmetic, loads, stores and pointer compares need no wrap or extend
 * (jit/reg-repr.ts decides which, and argues why it is sound), and the Vm turns `memCheck` off
 * because every access was proven in bounds. A function the verifier never entered is compiled
 * as unverified code (all of it, i64 registers, guards on). r10 is always the i32 `fp` local.
 *
 * Called from: runtime/ (Vm.load) with the links the Vm fixed.
 */

import {
  CORO_CHECK_RECORD,
  CORO_FRAME_CHECK_SLOT,
  CTRL_ERR_AUX,
  CTRL_ERR_CODE,
  CTRL_ERR_INSN,
  CTRL_MAY_GOTO,
  CTRL_PKT_ADDR,
  CTRL_PKT_LEN,
  CTRL_TAIL_CALL_CNT,
  CTRL_TERMINATE,
  CTRL_TERM_BLOCK,
  CTRL_TERM_DEADLINE,
  EXEC_CODE,
  EXPORT_FUNC_PREFIX,
  FUNC_TOKEN_BASE,
  HELPER_BLOCK_SIZE,
  programOwner,
  IMPORT_CTRL,
  IMPORT_CORO_DRAIN,
  MAY_GOTO_CHECK_PERIOD,
  TERM_CHECK_SLOT,
  IMPORT_CTX,
  IMPORT_MEMORY,
  IMPORT_MODULE,
  IMPORT_SP,
  IMPORT_STACK_LIMIT,
  IMPORT_TABLE,
  NULL_GUARD_END,
  type ProgLinks,
} from '../src/abi.js';
import { InternalError, LinkError } from '../src/errors.js';
import {
  BPF_FUNC_loop,
  BPF_FUNC_tail_call,
  E2BIG,
  helperFastPath,
  negErrno,
} from '../src/helper-protos.js';
import { callxReg, ldImm64Value, type Insn } from '../src/isa/insn.js';
import {
  MAX_TAIL_CALL_CNT,
  BPF_MAX_LOOPS,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  MAX_BPF_STACK,
} from '../src/isa/opcodes.js';
import type { AluOp, JmpCond, OpInfo } from '../src/isa/table.js';
import { jumpTarget, type Program, type Subprog } from '../src/program.js';
import type { VerifiedProgram } from '../src/verifier/verified-program.js';
import { buildCfg, planNesting, type BasicBlock, type FuncCfg } from './cfg.js';
import { addEntryFunctions, CORO_DRAIN, entryNeeds, funcName, type EntryKind } from './entry.js';
import {
  inlineEntryCheck,
  inlineFrameCheck,
  inlineKfuncCall,
  inlineKfuncVars,
} from './inline-kfunc.js';
import {
  loadBinaryen,
  validateModule,
  withModule,
  type BinaryenApi,
  type BinaryenModule,
  type ExpressionRef,
} from './module.js';
import { ALL_I64, planRegRepr, type RegLoc, type RegRepr, type WebCount } from './reg-repr.js';

export type { EntryKind } from './entry.js';

/** Options of `compileProgram`. */
export interface CompileOptions {
  readonly links: ProgLinks;
  /** Limits of the Vm memory the module imports. */
  readonly memory: { readonly initial: number; readonly maximum: number; readonly shared: boolean };
  /**
   * Check every memory access against the null guard (for programs that were not verified).
   * The Vm passes false with `verified`: a verified program's accesses are proven in bounds.
   */
  readonly memCheck: boolean;
  /**
   * The verifier's facts about `prog` (the same slots): unreachable code is dropped and
   * pointer values are kept in i32 locals (jit/reg-repr.ts). Without them every register is an
   * i64 local and every slot is compiled.
   */
  readonly verified?: VerifiedProgram;
  readonly entry: EntryKind;
  /** Helper ids the Vm provides; a call to another id fails at run time with 'call'. */
  readonly hasHelper: (id: number) => boolean;
  /** Keep function and local names in the binary (for --wat and stack traces). */
  readonly debugNames?: boolean;
  /** Also return the module's text (binaryen's printer). */
  readonly emitText?: boolean;
  /**
   * Put a `nop` before the code of every BPF instruction and report their order in
   * `markers`, so that a printer can show the instruction beside its code. Implies debugNames.
   */
  readonly annotate?: boolean;
  /**
   * How static helper calls are made (notes/fast-path-termination.md; the `termination` bench
   * compares them). All but 'direct' are `call_indirect` through the program's block of the
   * call table, which termination swaps for the fast-path versions:
   * - 'flag-check' (the default) also reads CTRL_TERM_BLOCK before each call of a helper whose
   *   fast path is a constant, and while it names this program's block (the run is terminated
   *   and its slots hold the stubs) takes the constant instead of calling the stub. The result
   *   is the same as the swapped slot's; the point is speed: after a swap each call site's
   *   indirect branch first mispredicts, and a run-down through 2000 lookup sites took 7.4 µs
   *   with 'patchable' against 3.5 µs with the check (bench/termination.bench.ts, warm code).
   *   When nothing is terminated the check costs ≈ 0.25 ns a call: 1.2 % over direct calls on
   *   the helper-heavy bench, 4 % over 'patchable' (which is 3 % faster than direct calls);
   * - 'patchable': the call alone (the talk's design: nothing added to the call path);
   * - 'direct' calls the helper as an imported function `env.helper_<id>` (not terminable: the
   *   baseline the overhead is measured against).
   */
  readonly helperCalls?: HelperCallMode;
}

/** See `CompileOptions.helperCalls`. */
export type HelperCallMode = 'patchable' | 'direct' | 'flag-check';

/** Import name of helper `id` in 'direct' mode. */
export function directHelperImport(id: number): string {
  return `helper_${id}`;
}

/** Time spent per phase, in milliseconds. */
export interface CompileTimings {
  readonly load: number;
  readonly build: number;
  readonly emit: number;
}

/** A compiled program module. */
export interface CompiledModule {
  readonly wasm: Uint8Array;
  readonly text: string | undefined;
  /** Functions that needed the Relooper (irreducible control flow), by subprog index. */
  readonly reloopered: readonly number[];
  /** With `annotate`: per function, the insn index of each `nop` marker in code order. */
  readonly markers: readonly (readonly number[])[];
  /**
   * With `verified`: per function and register r0..r9, how many webs (live ranges) live in
   * i32 and in i64 locals (jit/reg-repr.ts); all zero without facts.
   */
  readonly webs: readonly (readonly WebCount[])[];
  readonly timings: CompileTimings;
}

/**
 * An inlined bpf_loop asks the termination checkpoint every this many calls while a deadline
 * is armed (a call into JS: amortised below 2 ns per iteration).
 */
const LOOP_CHECK_PERIOD = 64;

// Local indices: params r1..r5 are 0..4.
const R0 = 5;
const T64A = 11;
const T64B = 12;
const T32 = 13;
const FP = 14;
const LABEL = 15;
const VAR_TYPES_I64 = 7; // r0, r6..r10, T64A, T64B → 8 i64 vars (indices 5..12)
/** With facts: the i32 local of register r (r0..r9) is W32 + r. */
const W32 = 16;

function regLocal(r: number): number {
  return r === 0 ? R0 : r <= 5 ? r - 1 : r;
}

/** Compiles a structurally checked program into a Wasm module. */
export async function compileProgram(prog: Program, opts: CompileOptions): Promise<CompiledModule> {
  const v = opts.verified;
  if (v !== undefined && v.prog.insns.length !== prog.insns.length) {
    throw new InternalError(
      `bug: facts for ${v.prog.insns.length} slots, a program of ${prog.insns.length}`,
    );
  }
  const t0 = performance.now();
  const b = await loadBinaryen();
  const t1 = performance.now();
  let t2 = t1;
  const out = withModule(
    b,
    (m) => {
      const built = buildModule(b, m, prog, opts);
      validateModule(m);
      t2 = performance.now();
      return built;
    },
    (m) => {
      const names = opts.debugNames === true || opts.annotate === true;
      if (names) b.setDebugInfo(true);
      try {
        const wasm = m.emitBinary();
        return { wasm, text: opts.emitText === true ? m.emitText() : undefined };
      } finally {
        if (names) b.setDebugInfo(false);
      }
    },
  );
  const t3 = performance.now();
  return {
    wasm: out.wasm,
    text: out.text,
    reloopered: out.built.reloopered,
    markers: out.built.markers,
    webs: out.built.webs,
    timings: { load: t1 - t0, build: t2 - t1, emit: t3 - t2 },
  };
}

/** The helper ids a program calls statically, for 'direct' mode's imports. */
export function directHelperIds(prog: Program, opts: Pick<CompileOptions, 'hasHelper'>): number[] {
  const ids = new Set<number>();
  prog.insns.forEach((i, idx) => {
    if (prog.ops[idx]?.kind !== 'call' || i.src !== 0 || i.imm === BPF_FUNC_tail_call) return;
    if (i.imm > 0 && i.imm < HELPER_BLOCK_SIZE && opts.hasHelper(i.imm)) ids.add(i.imm);
  });
  return [...ids].sort((a, b) => a - b);
}

function buildModule(
  b: BinaryenApi,
  m: BinaryenModule,
  prog: Program,
  opts: CompileOptions,
): { reloopered: number[]; markers: number[][]; webs: (readonly WebCount[])[] } {
  // setMemory first: called after the import, it would replace it with a module-own memory.
  m.setMemory(opts.memory.initial, opts.memory.maximum, null, [], opts.memory.shared);
  m.addMemoryImport('0', IMPORT_MODULE, IMPORT_MEMORY, opts.memory.shared);
  m.addTable('table', 0, 0xffffffff);
  m.addTableImport('table', IMPORT_MODULE, IMPORT_TABLE);
  m.addGlobalImport('sp', IMPORT_MODULE, IMPORT_SP, b.i32, true);
  m.addGlobalImport('stack_limit', IMPORT_MODULE, IMPORT_STACK_LIMIT, b.i32, false);
  m.addGlobalImport('ctrl', IMPORT_MODULE, IMPORT_CTRL, b.i32, false);
  m.addGlobalImport('ctx', IMPORT_MODULE, IMPORT_CTX, b.i32, false);
  const i64x5 = b.createType([b.i64, b.i64, b.i64, b.i64, b.i64]);
  if (opts.helperCalls === 'direct') {
    for (const id of directHelperIds(prog, opts)) {
      const name = directHelperImport(id);
      m.addFunctionImport(name, IMPORT_MODULE, name, i64x5, b.i64);
    }
  }
  addFailFunction(b, m);
  const reloopered: number[] = [];
  const markers: number[][] = [];
  const webs: (readonly WebCount[])[] = [];
  const w32 = opts.verified === undefined ? [] : new Array<number>(10).fill(b.i32);
  prog.subprogs.forEach((sp, k) => {
    const fc = new FuncCompiler(b, m, prog, sp, opts);
    const body = fc.compile();
    if (fc.usedRelooper) reloopered.push(k);
    markers.push(fc.markers);
    webs.push(fc.repr.webs);
    const vars = [...new Array<number>(VAR_TYPES_I64 + 1).fill(b.i64), b.i32, b.i32, b.i32, ...w32];
    // the locals of the inline fast paths and frame checks (jit/inline-kfunc.ts)
    const { inlineKfuncs, frameChecks, coroEntries } = opts.links;
    if (inlineKfuncs !== undefined || frameChecks !== undefined || coroEntries !== undefined)
      vars.push(...inlineKfuncVars(b));
    const f = m.addFunction(funcName(k), i64x5, b.i64, vars, body);
    if (opts.debugNames === true || opts.annotate === true) nameLocals(b, f, w32.length > 0);
    m.addFunctionExport(funcName(k), EXPORT_FUNC_PREFIX + k);
  });
  const needs = entryNeeds(prog);
  if (needs.coro) {
    m.addFunctionImport(CORO_DRAIN, IMPORT_MODULE, IMPORT_CORO_DRAIN, b.i32, b.i32);
  }
  // allocations are charged to owner id + 1 (0 is the host); src/abi.ts programOwner
  addEntryFunctions(b, m, opts.entry, needs, programOwner(opts.links.helperBase));
  return { reloopered, markers, webs };
}

function nameLocals(b: BinaryenApi, f: number, withW32: boolean): void {
  const names = [
    'r1',
    'r2',
    'r3',
    'r4',
    'r5',
    'r0',
    'r6',
    'r7',
    'r8',
    'r9',
    'r10',
    't64a',
    't64b',
    't32',
    'fp',
    'label',
    ...(withW32 ? Array.from({ length: 10 }, (_, r) => `r${r}_i32`) : []),
  ];
  // binaryen.js has Function.setLocalName on the namespace (its d.ts puts it on Module).
  const fn = (b as unknown as { Function: { setLocalName(f: number, i: number, n: string): void } })
    .Function;
  names.forEach((n, i) => fn.setLocalName(f, i, n));
}

/** `$fail(code, insn, aux)`: records an error in the control slot and traps. */
function addFailFunction(b: BinaryenApi, m: BinaryenModule): void {
  const ctrl = (): ExpressionRef => m.global.get('ctrl', b.i32);
  m.addFunction(
    'fail',
    b.createType([b.i32, b.i32, b.i64]),
    b.none,
    [],
    m.block(null, [
      m.i32.store(CTRL_ERR_CODE, 4, ctrl(), m.local.get(0, b.i32)),
      m.i32.store(CTRL_ERR_INSN, 4, ctrl(), m.local.get(1, b.i32)),
      m.i64.store(CTRL_ERR_AUX, 8, ctrl(), m.local.get(2, b.i64)),
      m.unreachable(),
    ]),
  );
}

/**
 * The unsigned condition deciding `cond` for two operands in [0, 2^32): on them signed and
 * unsigned 64-bit compares agree, and so do unsigned compares of their low halves.
 */
const UNSIGNED: Readonly<Record<JmpCond, JmpCond>> = {
  eq: 'eq',
  ne: 'ne',
  gt: 'gt',
  ge: 'ge',
  lt: 'lt',
  le: 'le',
  set: 'set',
  sgt: 'gt',
  sge: 'ge',
  slt: 'lt',
  sle: 'le',
};

/** Translates one BPF function. */
class FuncCompiler {
  readonly b: BinaryenApi;
  readonly m: BinaryenModule;
  readonly prog: Program;
  readonly sp: Subprog;
  readonly opts: CompileOptions;
  readonly cfg: FuncCfg;
  /** Which local (i64 or i32) each read and write of r0..r9 uses. */
  readonly repr: RegRepr;
  /** Guard every memory access (unverified code, or a function the verifier never entered). */
  readonly memCheck: boolean;
  readonly hasFrame: boolean;
  usedRelooper = false;
  /** Insn index of each annotation marker, in code order (annotate only). */
  readonly markers: number[] = [];
  /** The slot whose code is being built: register reads and writes are planned per slot. */
  private at = 0;

  constructor(b: BinaryenApi, m: BinaryenModule, prog: Program, sp: Subprog, opts: CompileOptions) {
    this.b = b;
    this.m = m;
    this.prog = prog;
    this.sp = sp;
    this.opts = opts;
    const v = opts.verified;
    if (v !== undefined && v.reachable[sp.start] === true) {
      this.cfg = buildCfg(prog, sp, (idx) => v.reachable[idx] === true);
      this.repr = planRegRepr(prog, sp, this.cfg, v);
      this.memCheck = opts.memCheck;
    } else {
      // Without facts, or a function the verifier never entered (no path from the entry
      // calls it, but the host or a token might): compiled as unverified code, guards on.
      this.cfg = buildCfg(prog, sp);
      this.repr = ALL_I64;
      this.memCheck = opts.memCheck || v !== undefined;
    }
    this.hasFrame = this.needsFrame();
  }

  /** The function body. */
  compile(): ExpressionRef {
    const m = this.m;
    const b = this.b;
    const prologue: ExpressionRef[] = [];
    if (this.hasFrame) {
      prologue.push(
        m.local.set(FP, m.global.get('sp', b.i32)),
        m.global.set('sp', m.i32.sub(m.local.get(FP, b.i32), m.i32.const(MAX_BPF_STACK))),
      );
    }
    // a resume / destroy function verified with r1 = a frame of N bytes: anyone may call it
    const frameSize = this.opts.links.coroEntries?.get(this.prog.subprogs.indexOf(this.sp)) ?? 0;
    if (frameSize > 0) {
      prologue.push(
        this.frameCheck(this.sp.start, () => m.local.get(regLocal(1), b.i64), frameSize),
      );
    }
    // incoming arguments kept as i32 (the i32 locals of other registers start at 0, as r0/r6-r9)
    for (let r = 1; r <= 5; r++) {
      if (this.repr.entry(r) === 'i32') {
        prologue.push(m.local.set(W32 + r, m.i32.wrap(m.local.get(regLocal(r), b.i64))));
      }
    }
    const plan = planNesting(this.cfg);
    const body = plan === undefined ? [this.relooper()] : this.structured(plan);
    return m.block(null, [...prologue, ...body, m.unreachable()]);
  }

  private needsFrame(): boolean {
    for (let idx = this.sp.start; idx < this.sp.end; idx++) {
      const info = this.prog.ops[idx];
      const i = this.prog.insns[idx] as Insn;
      if (info === undefined) continue;
      if (info.kind === 'callx' || (info.kind === 'call' && i.src === BPF_PSEUDO_CALL)) return true;
      if (i.dst === 10 || i.src === 10) return true;
    }
    return false;
  }

  // ---- structured control flow ----

  private structured(plan: ReturnType<typeof planNesting> & object): ExpressionRef[] {
    const m = this.m;
    let next = 0;
    const emit = (from: number, to: number): ExpressionRef[] => {
      const out: ExpressionRef[] = [];
      let bid = from;
      while (bid < to) {
        const iv = plan[next];
        if (iv !== undefined && iv.start === bid && iv.end <= to) {
          next++;
          const inner = emit(bid, iv.end);
          out.push(
            iv.kind === 'loop'
              ? m.loop(`L${iv.start}`, m.block(null, inner))
              : m.block(`B${iv.end}`, inner),
          );
          bid = iv.end;
          continue;
        }
        out.push(...this.blockCode(this.cfg.blocks[bid] as BasicBlock), ...this.branchCode(bid));
        bid++;
      }
      return out;
    };
    return emit(0, this.cfg.blocks.length);
  }

  private label(from: number, toSlot: number): string {
    const to = this.cfg.blockAt.get(toSlot) as number;
    return to > from ? `B${to}` : `L${to}`;
  }

  private branchCode(bid: number): ExpressionRef[] {
    const blk = this.cfg.blocks[bid] as BasicBlock;
    const t = blk.term;
    const next = this.cfg.blocks[bid + 1]?.start;
    if (t.kind === 'fall' || t.kind === 'dead' || (t.kind === 'jump' && t.target === next))
      return this.branchCodeOf(bid);
    return [...this.mark(t.kind === 'jump' ? blk.end - 1 : t.idx), ...this.branchCodeOf(bid)];
  }

  /** A `nop` recorded as the start of insn `idx`'s code (annotate only). */
  private mark(idx: number): ExpressionRef[] {
    if (this.opts.annotate !== true) return [];
    this.markers.push(idx);
    return [this.m.nop()];
  }

  private branchCodeOf(bid: number): ExpressionRef[] {
    const m = this.m;
    const blk = this.cfg.blocks[bid] as BasicBlock;
    const t = blk.term;
    // the block laid out next (with facts, unreachable slots may lie between the two)
    const nextSlot = this.cfg.blocks[bid + 1]?.start;
    switch (t.kind) {
      case 'fall':
        return bid + 1 < this.cfg.blocks.length ? [] : [this.fail('fall-off', blk.end - 1)];
      case 'jump':
        return t.target === nextSlot ? [] : [m.br(this.label(bid, t.target))];
      case 'cond': {
        const { pre, cond } = this.condition(t.idx);
        if (t.target === nextSlot) return [...pre, m.drop(cond)];
        return [...pre, m.br(this.label(bid, t.target), cond)];
      }
      case 'exit':
        return [this.exitCode(t.idx)];
      case 'dead':
        return [m.unreachable()];
      case 'gotox': {
        const { pre, index, min, count } = this.gotoxIndex(t.idx, t.targets);
        const labels: string[] = [];
        for (let k = 0; k < count; k++) {
          labels.push(t.targets.includes(min + k) ? this.label(bid, min + k) : 'gotox_bad');
        }
        return [
          m.block('gotox_bad', [...pre, m.switch(labels, 'gotox_bad', index)]),
          this.fail('jump', t.idx),
        ];
      }
    }
  }

  // ---- Relooper fallback for irreducible control flow ----

  private relooper(): ExpressionRef {
    this.usedRelooper = true;
    const b = this.b;
    const m = this.m;
    const rl = new b.Relooper(m);
    const ids: number[] = [];
    const bad = rl.addBlock(this.fail('jump', this.sp.start));
    for (const blk of this.cfg.blocks) {
      const code = this.blockCode(blk);
      const t = blk.term;
      if (t.kind === 'gotox') {
        const g = this.gotoxIndex(t.idx, t.targets);
        ids.push(rl.addBlockWithSwitch(m.block(null, [...code, ...g.pre]), g.index));
      } else if (t.kind === 'cond') {
        const c = this.condition(t.idx);
        ids.push(rl.addBlock(m.block(null, [...code, ...c.pre])));
        this.conds.set(blk.id, c.cond);
      } else if (t.kind === 'exit') {
        ids.push(rl.addBlock(m.block(null, [...code, this.exitCode(t.idx)])));
      } else if (t.kind === 'dead') {
        ids.push(rl.addBlock(m.block(null, [...code, m.unreachable()])));
      } else if (t.kind === 'fall' && blk.id + 1 >= this.cfg.blocks.length) {
        ids.push(rl.addBlock(m.block(null, [...code, this.fail('fall-off', blk.end - 1)])));
      } else {
        ids.push(rl.addBlock(m.block(null, code)));
      }
    }
    for (const blk of this.cfg.blocks) {
      const from = ids[blk.id] as number;
      const t = blk.term;
      const at = (slot: number): number => ids[this.cfg.blockAt.get(slot) as number] as number;
      if (t.kind === 'gotox') {
        const min = t.targets[0] ?? 0;
        for (const target of t.targets) rl.addBranchForSwitch(from, at(target), [target - min], 0);
        rl.addBranchForSwitch(from, bad, [], 0);
      } else if (t.kind === 'cond') {
        rl.addBranch(from, at(t.target), this.conds.get(blk.id) as number, 0);
        rl.addBranch(from, ids[blk.id + 1] as number, 0, 0);
      } else if (t.kind === 'jump') {
        rl.addBranch(from, at(t.target), 0, 0);
      } else if (t.kind === 'fall' && blk.id + 1 < this.cfg.blocks.length) {
        rl.addBranch(from, ids[blk.id + 1] as number, 0, 0);
      }
    }
    return rl.renderAndDispose(ids[0] as number, LABEL);
  }

  private readonly conds = new Map<number, ExpressionRef>();

  // ---- registers (reads and writes at slot `this.at`, in the local jit/reg-repr.ts chose) ----

  /** All 64 bits of register r. */
  private get64(r: number): ExpressionRef {
    const loc = this.readLoc(r);
    if (loc === 'i32' && r !== 10 && !this.repr.isFull(this.at, r)) {
      throw new InternalError(
        `bug: insn ${this.at}: r${r} widened where only its low half is planned`,
      );
    }
    return this.raw64(r, loc);
  }

  /** The low 32 bits of register r. */
  private get32(r: number): ExpressionRef {
    const loc = this.readLoc(r);
    if (r === 10) return this.m.local.get(FP, this.b.i32);
    if (loc === 'i32') return this.m.local.get(W32 + r, this.b.i32);
    return this.m.i32.wrap(this.m.local.get(regLocal(r), this.b.i64));
  }

  /**
   * Register r as an i64 whatever the plan says about its upper half: the value of an i64
   * local, the zero-extended i32 local otherwise. For guards on the accessed address, which
   * is exactly the low half of base + off when the base lives in an i32 local.
   */
  private raw64(r: number, loc: RegLoc = this.readLoc(r)): ExpressionRef {
    const m = this.m;
    if (r === 10) return m.i64.extend_u(m.local.get(FP, this.b.i32));
    if (loc === 'i32') return m.i64.extend_u(m.local.get(W32 + r, this.b.i32));
    return m.local.get(regLocal(r), this.b.i64);
  }

  private readLoc(r: number): RegLoc {
    if (r === 10) return 'i32';
    const loc = this.repr.use(this.at, r);
    if (loc === 'none') throw new InternalError(`bug: insn ${this.at}: r${r} read but unplanned`);
    return loc;
  }

  /** Call arguments r1..r5; an argument no path initialised is passed as 0. */
  private args(): ExpressionRef[] {
    return [1, 2, 3, 4, 5].map((r) =>
      this.repr.use(this.at, r) === 'none' ? this.m.i64.const(0) : this.get64(r),
    );
  }

  /** Writes the 64-bit value v to register r (its low half when r lives in i32 here). */
  private set64(r: number, v: ExpressionRef): ExpressionRef {
    if (this.repr.def(this.at, r) === 'i32') return this.m.local.set(W32 + r, this.m.i32.wrap(v));
    return this.m.local.set(regLocal(r), v);
  }

  /** Writes the zero-extended i32 v to register r. */
  private setZext(r: number, v: ExpressionRef): ExpressionRef {
    if (this.repr.def(this.at, r) === 'i32') return this.m.local.set(W32 + r, v);
    return this.m.local.set(regLocal(r), this.m.i64.extend_u(v));
  }

  /** Whether the write of r at this slot goes to its i32 local. */
  private defIs32(r: number): boolean {
    return this.repr.def(this.at, r) === 'i32';
  }

  // ---- instructions ----

  private fail(kind: keyof typeof EXEC_CODE, idx: number, aux?: ExpressionRef): ExpressionRef {
    const m = this.m;
    return m.block(null, [
      m.call(
        'fail',
        [m.i32.const(EXEC_CODE[kind]), m.i32.const(idx), aux ?? m.i64.const(0)],
        this.b.none,
      ),
      m.unreachable(),
    ]);
  }

  /** The exit at `idx`: returns r0. */
  private exitCode(idx: number): ExpressionRef {
    this.at = idx;
    return this.ret(this.get64(0));
  }

  /** Releases the frame and returns the i64 `v`. */
  private ret(v: ExpressionRef): ExpressionRef {
    const m = this.m;
    const ret = m.return(v);
    if (!this.hasFrame) return ret;
    return m.block(null, [m.global.set('sp', m.local.get(FP, this.b.i32)), ret]);
  }

  /** Code of a block's instructions, without its terminator. */
  private blockCode(blk: BasicBlock): ExpressionRef[] {
    const out: ExpressionRef[] = [];
    for (let idx = blk.start; idx < blk.end; idx++) {
      const info = this.prog.ops[idx];
      if (info === undefined) continue;
      switch (info.kind) {
        case 'ja':
        case 'ja32':
        case 'jmp':
        case 'may_goto':
        case 'gotox':
        case 'exit':
          continue; // terminators: handled by the branch code
        default:
          out.push(...this.mark(idx), ...this.insnCode(idx, info));
      }
    }
    return out;
  }

  private insnCode(idx: number, info: OpInfo): ExpressionRef[] {
    const i = this.prog.insns[idx] as Insn;
    const m = this.m;
    this.at = idx;
    switch (info.kind) {
      case 'alu':
        return this.alu(i, info.op, info.width, info.source === 'imm');
      case 'movsx': {
        if (info.width === 64) {
          const src = this.get64(i.src);
          const v =
            info.bits === 8
              ? m.i64.extend8_s(src)
              : info.bits === 16
                ? m.i64.extend16_s(src)
                : m.i64.extend32_s(src);
          return [this.set64(i.dst, v)];
        }
        const w = this.get32(i.src);
        return [this.setZext(i.dst, info.bits === 8 ? m.i32.extend8_s(w) : m.i32.extend16_s(w))];
      }
      case 'end':
        return this.endian(info.order, info.bits, i.dst);
      case 'lddw': {
        const v = this.ldImm64(idx, i);
        if (this.defIs32(i.dst)) {
          return [m.local.set(W32 + i.dst, m.i32.const(Number(BigInt.asIntN(32, v))))];
        }
        return [this.set64(i.dst, m.i64.const(v))];
      }
      case 'ldx':
      case 'ldxsx':
        return this.load(idx, i, info.size, info.kind === 'ldxsx');
      case 'st':
        return this.store(idx, i.dst, i.off, info.size, { imm: i.imm });
      case 'stx':
        return this.store(idx, i.dst, i.off, info.size, { reg: i.src });
      case 'atomic':
        return this.atomic(idx, i, info);
      case 'ldabs':
      case 'ldind':
        return this.ldPacket(i, info.size, info.kind === 'ldind');
      case 'call':
        return this.call(idx, i);
      case 'callx':
        return this.callx(idx, callxReg(i));
      case 'ja':
      case 'ja32':
      case 'jmp':
      case 'may_goto':
      case 'gotox':
      case 'exit':
        return [];
    }
  }

  private ldImm64(idx: number, i: Insn): bigint {
    if (i.src === 0) return BigInt.asIntN(64, ldImm64Value(this.prog.insns, idx));
    const v = this.opts.links.ldImm64.get(idx);
    if (v === undefined) {
      throw new LinkError(`insn ${idx}`, `insn ${idx}: lddw with src ${i.src} was not linked`);
    }
    return BigInt.asIntN(64, v);
  }

  private alu(i: Insn, op: AluOp, width: 32 | 64, isImm: boolean): ExpressionRef[] {
    return width === 64 ? this.alu64(i, op, isImm) : this.alu32(i, op, isImm);
  }

  private alu64(i: Insn, op: AluOp, isImm: boolean): ExpressionRef[] {
    const m = this.m;
    const low = this.defIs32(i.dst) ? this.aluLow(i, op, isImm) : undefined;
    if (low !== undefined) return [m.local.set(W32 + i.dst, low)];
    const d = (): ExpressionRef => this.get64(i.dst);
    const s = (): ExpressionRef => (isImm ? m.i64.const(i.imm) : this.get64(i.src));
    const set = (v: ExpressionRef): ExpressionRef[] => [this.set64(i.dst, v)];
    switch (op) {
      case 'add':
        return set(m.i64.add(d(), s()));
      case 'sub':
        return set(m.i64.sub(d(), s()));
      case 'mul':
        return set(m.i64.mul(d(), s()));
      case 'or':
        return set(m.i64.or(d(), s()));
      case 'and':
        return set(m.i64.and(d(), s()));
      case 'xor':
        return set(m.i64.xor(d(), s()));
      case 'lsh':
        return set(m.i64.shl(d(), s()));
      case 'rsh':
        return set(m.i64.shr_u(d(), s()));
      case 'arsh':
        return set(m.i64.shr_s(d(), s()));
      case 'neg':
        return set(m.i64.sub(m.i64.const(0), d()));
      case 'mov':
        return set(s());
      case 'div':
      case 'mod':
      case 'sdiv':
      case 'smod':
        return this.divmod64(i, op, isImm);
    }
  }

  /**
   * The low half of a 64-bit `dst op= src` for the ops that are exact modulo 2^32 (add, sub,
   * mul, and, or, xor, neg, mov), computed on the operands' low halves; undefined for others.
   */
  private aluLow(i: Insn, op: AluOp, isImm: boolean): ExpressionRef | undefined {
    const m = this.m;
    const d = (): ExpressionRef => this.get32(i.dst);
    const s = (): ExpressionRef => (isImm ? m.i32.const(i.imm) : this.get32(i.src));
    switch (op) {
      case 'add':
        return m.i32.add(d(), s());
      case 'sub':
        return m.i32.sub(d(), s());
      case 'mul':
        return m.i32.mul(d(), s());
      case 'or':
        return m.i32.or(d(), s());
      case 'and':
        return m.i32.and(d(), s());
      case 'xor':
        return m.i32.xor(d(), s());
      case 'neg':
        return m.i32.sub(m.i32.const(0), d());
      case 'mov':
        return s();
      default:
        return undefined;
    }
  }

  private divmod64(i: Insn, op: 'div' | 'mod' | 'sdiv' | 'smod', isImm: boolean): ExpressionRef[] {
    const m = this.m;
    const d = (): ExpressionRef => this.get64(i.dst);
    const set = (v: ExpressionRef): ExpressionRef => this.set64(i.dst, v);
    const op2 = (a: ExpressionRef, s: ExpressionRef): ExpressionRef =>
      op === 'div'
        ? m.i64.div_u(a, s)
        : op === 'mod'
          ? m.i64.rem_u(a, s)
          : op === 'sdiv'
            ? m.i64.div_s(a, s)
            : m.i64.rem_s(a, s);
    const onZero = (): ExpressionRef[] =>
      op === 'div' || op === 'sdiv' ? [set(m.i64.const(0))] : [];
    if (isImm) {
      if (i.imm === 0) return onZero();
      if (i.imm === -1 && op === 'sdiv') return [set(m.i64.sub(m.i64.const(0), d()))];
      if (i.imm === -1 && op === 'smod') return [set(m.i64.const(0))];
      return [set(op2(d(), m.i64.const(i.imm)))];
    }
    const s = (): ExpressionRef => m.local.get(T64B, this.b.i64);
    const zero = m.i64.eqz(s());
    const nonzero: ExpressionRef =
      op === 'sdiv'
        ? m.if(
            m.i64.eq(s(), m.i64.const(-1)),
            set(m.i64.sub(m.i64.const(0), d())),
            set(op2(d(), s())),
          )
        : set(op2(d(), s()));
    const z = onZero();
    return [
      m.local.set(T64B, this.get64(i.src)),
      z.length > 0 ? m.if(zero, z[0] as number, nonzero) : m.if(m.i32.eqz(zero), nonzero),
    ];
  }

  private alu32(i: Insn, op: AluOp, isImm: boolean): ExpressionRef[] {
    const m = this.m;
    const d = (): ExpressionRef => this.get32(i.dst);
    const s = (): ExpressionRef => (isImm ? m.i32.const(i.imm) : this.get32(i.src));
    const set = (v: ExpressionRef): ExpressionRef[] => [this.setZext(i.dst, v)];
    switch (op) {
      case 'add':
        return set(m.i32.add(d(), s()));
      case 'sub':
        return set(m.i32.sub(d(), s()));
      case 'mul':
        return set(m.i32.mul(d(), s()));
      case 'or':
        return set(m.i32.or(d(), s()));
      case 'and':
        return set(m.i32.and(d(), s()));
      case 'xor':
        return set(m.i32.xor(d(), s()));
      case 'lsh':
        return set(m.i32.shl(d(), s()));
      case 'rsh':
        return set(m.i32.shr_u(d(), s()));
      case 'arsh':
        return set(m.i32.shr_s(d(), s()));
      case 'neg':
        return set(m.i32.sub(m.i32.const(0), d()));
      case 'mov':
        return isImm && !this.defIs32(i.dst)
          ? [this.set64(i.dst, m.i64.const(BigInt(i.imm >>> 0)))]
          : set(s());
      case 'div':
      case 'mod':
      case 'sdiv':
      case 'smod':
        return this.divmod32(i, op, isImm);
    }
  }

  private divmod32(i: Insn, op: 'div' | 'mod' | 'sdiv' | 'smod', isImm: boolean): ExpressionRef[] {
    const m = this.m;
    const d = (): ExpressionRef => this.get32(i.dst);
    const set = (v: ExpressionRef): ExpressionRef => this.setZext(i.dst, v);
    const op2 = (a: ExpressionRef, s: ExpressionRef): ExpressionRef =>
      op === 'div'
        ? m.i32.div_u(a, s)
        : op === 'mod'
          ? m.i32.rem_u(a, s)
          : op === 'sdiv'
            ? m.i32.div_s(a, s)
            : m.i32.rem_s(a, s);
    const onZero = (): ExpressionRef =>
      op === 'div' || op === 'sdiv' ? set(m.i32.const(0)) : set(d());
    if (isImm) {
      if (i.imm === 0) return [onZero()];
      if (i.imm === -1 && op === 'sdiv') return [set(m.i32.sub(m.i32.const(0), d()))];
      if (i.imm === -1 && op === 'smod') return [set(m.i32.const(0))];
      return [set(op2(d(), m.i32.const(i.imm)))];
    }
    const s = (): ExpressionRef => m.local.get(T32, this.b.i32);
    const nonzero: ExpressionRef =
      op === 'sdiv'
        ? m.if(
            m.i32.eq(s(), m.i32.const(-1)),
            set(m.i32.sub(m.i32.const(0), d())),
            set(op2(d(), s())),
          )
        : set(op2(d(), s()));
    return [m.local.set(T32, this.get32(i.src)), m.if(m.i32.eqz(s()), onZero(), nonzero)];
  }

  /** `dst = le|be|bswap<bits> dst`: 16- and 32-bit forms read and write only the low half. */
  private endian(order: 'le' | 'be' | 'swap', bits: 16 | 32 | 64, dst: number): ExpressionRef[] {
    const m = this.m;
    if (bits === 64) {
      const v = this.get64(dst);
      return [this.set64(dst, order === 'le' ? v : this.bswap64(v))];
    }
    const v = this.get32(dst);
    if (order === 'le') {
      return [this.setZext(dst, bits === 16 ? m.i32.and(v, m.i32.const(0xffff)) : v)];
    }
    if (bits === 32) return [m.local.set(T32, v), this.setZext(dst, this.bswap32())];
    const x = (): ExpressionRef => m.local.get(T32, this.b.i32);
    return [
      m.local.set(T32, v),
      this.setZext(
        dst,
        m.i32.or(
          m.i32.and(m.i32.shl(x(), m.i32.const(8)), m.i32.const(0xff00)),
          m.i32.and(m.i32.shr_u(x(), m.i32.const(8)), m.i32.const(0xff)),
        ),
      ),
    ];
  }

  /** Byte swap of the i64 v. */
  private bswap64(v: ExpressionRef): ExpressionRef {
    const m = this.m;
    const t = (): ExpressionRef => m.local.get(T64B, this.b.i64);
    return m.block(
      null,
      [
        m.local.set(T64B, v),
        m.local.set(T32, m.i32.wrap(t())),
        m.local.set(
          T64B,
          m.i64.or(
            m.i64.shl(m.i64.extend_u(this.bswap32()), m.i64.const(32)),
            m.i64.shr_u(t(), m.i64.const(32)),
          ),
        ),
        m.local.set(T32, m.i32.wrap(m.i64.and(t(), m.i64.const(0xffffffff)))),
        m.i64.or(m.i64.and(t(), m.i64.const(-4294967296n)), m.i64.extend_u(this.bswap32())),
      ],
      this.b.i64,
    );
  }

  /** Byte swap of the i32 in T32. */
  private bswap32(): ExpressionRef {
    const m = this.m;
    const x = (): ExpressionRef => m.local.get(T32, this.b.i32);
    return m.i32.or(
      m.i32.or(
        m.i32.shl(x(), m.i32.const(24)),
        m.i32.and(m.i32.shl(x(), m.i32.const(8)), m.i32.const(0xff0000)),
      ),
      m.i32.or(
        m.i32.and(m.i32.shr_u(x(), m.i32.const(8)), m.i32.const(0xff00)),
        m.i32.shr_u(x(), m.i32.const(24)),
      ),
    );
  }

  /**
   * The i32 address of `reg + off` and the statements that must run first. With memCheck,
   * the address is checked against the null guard and the 4 GiB limit.
   */
  private address(
    idx: number,
    reg: number,
    off: number,
    size: number,
    align: boolean,
  ): { pre: ExpressionRef[]; ptr: ExpressionRef; offset: number } {
    const m = this.m;
    // an access through a coroutine handle: the runtime checks the frame first
    const need = this.opts.links.frameChecks?.get(idx);
    const ranges = this.opts.links.regionChecks?.get(idx);
    const inRanges = (): ExpressionRef | undefined =>
      ranges === undefined
        ? undefined
        : this.inRanges(m.i64.add(this.raw64(reg), m.i64.const(off)), size, ranges);
    const check =
      need !== undefined
        ? [this.frameCheck(idx, () => this.raw64(reg), need, inRanges(), CORO_CHECK_RECORD)]
        : ranges !== undefined
          ? [m.if(m.i32.eqz(inRanges() as ExpressionRef), this.fail('mem', idx, this.raw64(reg)))]
          : [];
    if (!this.memCheck && !align) {
      if (off >= 0) return { pre: check, ptr: this.get32(reg), offset: off };
      return { pre: check, ptr: m.i32.add(this.get32(reg), m.i32.const(off)), offset: 0 };
    }
    const a = (): ExpressionRef => m.local.get(T64A, this.b.i64);
    const pre: ExpressionRef[] = [
      ...check,
      m.local.set(T64A, m.i64.add(this.raw64(reg), m.i64.const(off))),
    ];
    if (this.memCheck) {
      pre.push(
        m.if(
          m.i64.ge_u(
            m.i64.sub(a(), m.i64.const(NULL_GUARD_END)),
            m.i64.const(0x1_0000_0000 - NULL_GUARD_END - size + 1),
          ),
          this.fail('mem', idx, a()),
        ),
      );
    }
    if (align && size > 1) {
      pre.push(
        m.if(
          m.i64.ne(m.i64.and(a(), m.i64.const(size - 1)), m.i64.const(0)),
          this.fail('align', idx, a()),
        ),
      );
    }
    return { pre, ptr: m.i32.wrap(a()), offset: 0 };
  }

  /**
   * Fails the run with 'frame' unless the i64 `frame` is a live coroutine frame of at least
   * `need` bytes: `coro_frame_check` in the call table (CORO_FRAME_CHECK_SLOT), asked with
   * `need | needFlags` (CORO_CHECK_RECORD: a handle access, which a reserved ringbuf record
   * of `need` bytes passes too; the inline fast path accepts frames only).
   */
  private frameCheck(
    idx: number,
    frame: () => ExpressionRef,
    need: number,
    alt?: ExpressionRef,
    needFlags = 0,
  ): ExpressionRef {
    const m = this.m;
    const b = this.b;
    // a small live frame is accepted inline, anything else asks coro_frame_check
    const base = W32 + (this.opts.verified === undefined ? 0 : 10);
    const check = {
      frame: frame(),
      need,
      needFlags,
      checkSlot: CORO_FRAME_CHECK_SLOT,
      base,
      site: idx,
    };
    const live = m.if(
      m.i64.ge_u(frame(), m.i64.const(0x1_0000_0000)),
      m.i32.const(0),
      inlineFrameCheck(b, m, check),
    );
    const ok = alt === undefined ? live : m.if(alt, m.i32.const(1), live);
    return m.if(m.i32.eqz(ok), this.fail('frame', idx, frame()));
  }

  /**
   * i32 1 when `[addr, addr + size)` (i64 `addr`) lies inside one of `ranges` (read-only map
   * values, `ProgLinks.regionChecks`), else 0.
   */
  private inRanges(
    addr: ExpressionRef,
    size: number,
    ranges: readonly (readonly [number, number])[],
  ): ExpressionRef {
    const m = this.m;
    const b = this.b;
    let ok = m.i32.const(0);
    const fits = ranges.filter(([start, end]) => end - start >= size);
    if (fits.length === 0) return ok;
    const tees = [m.local.set(T64B, addr)];
    for (const [start, end] of fits) {
      const hit = m.i64.le_u(
        m.i64.sub(m.local.get(T64B, b.i64), m.i64.const(start)),
        m.i64.const(end - start - size),
      );
      ok = m.i32.or(ok, hit);
    }
    return m.block(null, [...tees, ok], b.i32);
  }

  private load(idx: number, i: Insn, size: 1 | 2 | 4 | 8, signed: boolean): ExpressionRef[] {
    const m = this.m;
    const { pre, ptr, offset } = this.address(idx, i.src, i.off, size, false);
    if (this.defIs32(i.dst)) {
      // the low half of the loaded value (little endian: the first 4 bytes of an 8-byte load)
      const v =
        size === 1
          ? signed
            ? m.i32.load8_s(offset, 1, ptr)
            : m.i32.load8_u(offset, 1, ptr)
          : size === 2
            ? signed
              ? m.i32.load16_s(offset, 1, ptr)
              : m.i32.load16_u(offset, 1, ptr)
            : m.i32.load(offset, 1, ptr);
      return [...pre, m.local.set(W32 + i.dst, v)];
    }
    let v: ExpressionRef;
    switch (size) {
      case 1:
        v = signed ? m.i64.load8_s(offset, 1, ptr) : m.i64.load8_u(offset, 1, ptr);
        break;
      case 2:
        v = signed ? m.i64.load16_s(offset, 1, ptr) : m.i64.load16_u(offset, 1, ptr);
        break;
      case 4:
        v = signed ? m.i64.load32_s(offset, 1, ptr) : m.i64.load32_u(offset, 1, ptr);
        break;
      case 8:
        v = m.i64.load(offset, 1, ptr);
        break;
    }
    return [...pre, this.set64(i.dst, v)];
  }

  /** `*(size *)(base + off) = imm | reg`: a 1/2/4-byte store of an i32 local stays i32. */
  private store(
    idx: number,
    base: number,
    off: number,
    size: 1 | 2 | 4 | 8,
    src: { readonly imm: number } | { readonly reg: number },
  ): ExpressionRef[] {
    const m = this.m;
    const { pre, ptr, offset } = this.address(idx, base, off, size, false);
    if ('reg' in src && size < 8 && this.readLoc(src.reg) === 'i32') {
      const v = this.get32(src.reg);
      const st32 =
        size === 1
          ? m.i32.store8(offset, 1, ptr, v)
          : size === 2
            ? m.i32.store16(offset, 1, ptr, v)
            : m.i32.store(offset, 1, ptr, v);
      return [...pre, st32];
    }
    const value = 'reg' in src ? this.get64(src.reg) : m.i64.const(BigInt(src.imm));
    const st =
      size === 1
        ? m.i64.store8(offset, 1, ptr, value)
        : size === 2
          ? m.i64.store16(offset, 1, ptr, value)
          : size === 4
            ? m.i64.store32(offset, 1, ptr, value)
            : m.i64.store(offset, 1, ptr, value);
    return [...pre, st];
  }

  private atomic(idx: number, i: Insn, info: OpInfo & { kind: 'atomic' }): ExpressionRef[] {
    const m = this.m;
    const { pre, ptr } = this.address(idx, i.dst, i.off, info.size, true);
    const a = info.size === 8 ? m.i64.atomic.rmw : m.i64.atomic.rmw32_u;
    const v = this.get64(i.src);
    if (info.op === 'cmpxchg') {
      return [...pre, this.set64(0, a.cmpxchg(0, ptr, this.get64(0), v))];
    }
    const r = a[info.op](0, ptr, v);
    return [...pre, info.fetch ? this.set64(i.src, r) : m.drop(r)];
  }

  /**
   * Legacy ld_abs/ld_ind: big-endian load from the run's packet; out of bounds ends the program
   * with r0 = 0. createProgram allows them only in programs without local calls (as the kernel).
   */
  private ldPacket(i: Insn, size: 1 | 2 | 4 | 8, ind: boolean): ExpressionRef[] {
    const m = this.m;
    const b = this.b;
    const ctrl = (): ExpressionRef => m.global.get('ctrl', b.i32);
    const off = (): ExpressionRef => m.local.get(T64A, b.i64);
    const pre = [
      m.local.set(
        T64A,
        m.i64.add(ind ? m.i64.extend_s(this.get32(i.src)) : m.i64.const(0), m.i64.const(i.imm)),
      ),
      // out of [0, len - size]: the program returns 0
      m.if(
        m.i64.gt_u(
          m.i64.add(off(), m.i64.const(size)),
          m.i64.extend_u(m.i32.load(CTRL_PKT_LEN, 4, ctrl())),
        ),
        this.ret(m.i64.const(0)),
      ),
      m.local.set(T32, m.i32.add(m.i32.load(CTRL_PKT_ADDR, 4, ctrl()), m.i32.wrap(off()))),
    ];
    const p = (): ExpressionRef => m.local.get(T32, b.i32);
    let v: ExpressionRef;
    if (size === 1) v = m.i64.extend_u(m.i32.load8_u(0, 1, p()));
    else if (size === 2) {
      v = m.i64.extend_u(
        m.i32.or(m.i32.shl(m.i32.load8_u(0, 1, p()), m.i32.const(8)), m.i32.load8_u(1, 1, p())),
      );
    } else {
      v = m.i64.extend_u(this.bswap32WithLoad(p()));
    }
    return [...pre, this.set64(0, v)];
  }

  private bswap32WithLoad(p: ExpressionRef): ExpressionRef {
    const m = this.m;
    return m.block(null, [m.local.set(T32, m.i32.load(0, 1, p)), this.bswap32()], this.b.i32);
  }

  private call(idx: number, i: Insn): ExpressionRef[] {
    const m = this.m;
    const b = this.b;
    if (i.src === BPF_PSEUDO_CALL) {
      const target = jumpTarget(i, idx, this.prog.ops[idx] as OpInfo);
      const k = this.prog.subprogs.findIndex((s) => s.start === target);
      return [this.depthCheck(idx), this.set64(0, m.call(funcName(k), this.args(), b.i64))];
    }
    if (i.src === BPF_PSEUDO_KFUNC_CALL) {
      // bpf_throw: unwind to the entry; the host returns the cookie as r0 (runtime/trap.ts)
      if (this.opts.links.throwInsns?.has(idx) === true) {
        return [this.fail('throw', idx, this.get64(1))];
      }
      // bpf_obj_new_impl gets the object size the verifier found (the kernel's fixup);
      // bpf_coro_frame_alloc's size, when constant on every path, is that constant
      const constSize =
        this.opts.links.objNewSizes?.get(idx) ?? this.opts.links.frameAllocSizes?.get(idx);
      const args = this.args();
      if (constSize !== undefined) args[0] = m.i64.const(constSize);
      const slot = this.opts.links.kfuncSlots.get(idx);
      // a weak kfunc the Vm does not have: linked, but fails if it ever runs
      if (slot === undefined) return [this.fail('call', idx, m.i64.const(i.imm))];
      // the runtime module's allocator / coroutine kfuncs: their fast path inline
      const kind = this.opts.links.inlineKfuncs?.get(idx);
      if (kind !== undefined) {
        const base = W32 + (this.opts.verified === undefined ? 0 : 10);
        const shared = this.opts.memory.shared;
        const liveFrame = this.opts.links.liveFrameFrees?.has(idx) === true;
        const site = {
          kind,
          slot,
          args,
          shared,
          base,
          site: idx,
          ...(constSize !== undefined ? { constSize } : {}),
          ...(liveFrame ? { liveFrame } : {}),
        };
        return [this.set64(0, inlineKfuncCall(b, m, site))];
      }
      return [
        this.set64(0, m.call_indirect('table', m.i32.const(slot), args, this.i64x5(), b.i64)),
      ];
    }
    if (i.imm < 0 || i.imm >= HELPER_BLOCK_SIZE || !this.opts.hasHelper(i.imm)) {
      return [this.fail('call', idx, m.i64.const(i.imm))];
    }
    if (i.imm === BPF_FUNC_tail_call) return this.tailCall();
    const loopCallback = this.opts.links.loopInlines?.get(idx);
    if (i.imm === BPF_FUNC_loop && loopCallback !== undefined) {
      return this.inlineLoop(idx, loopCallback);
    }
    const mode = this.opts.helperCalls ?? 'flag-check';
    if (mode === 'direct') {
      return [this.set64(0, m.call(directHelperImport(i.imm), this.args(), b.i64))];
    }
    const slot = m.i32.const(this.opts.links.helperBase + i.imm);
    const call = this.set64(0, m.call_indirect('table', slot, this.args(), this.i64x5(), b.i64));
    if (mode === 'patchable') return [call];
    // 'flag-check': while this program's block holds the fast paths (CTRL_TERM_BLOCK, written
    // by the thread's own engage), a helper with a constant fast path is not called (r0 = the
    // constant); the others are called through the block as they are
    const fast = helperFastPath(i.imm);
    if (fast.kind !== 'const') return [call];
    const block = m.i32.load(CTRL_TERM_BLOCK, 4, m.global.get('ctrl', b.i32));
    return [
      m.if(
        m.i32.eq(block, m.i32.const(this.opts.links.helperBase + 1)),
        this.set64(0, m.i64.const(BigInt.asIntN(64, fast.ret))),
        call,
      ),
    ];
  }

  /**
   * bpf_loop(nr, callback, ctx, 0) inlined (the kernel's `inline_bpf_loop`), for a call the
   * verifier proved passes the same callback and flags 0 on every path: a Wasm loop that calls
   * the callback's function directly, with the helper's semantics (runtime/helpers/loop.ts):
   * nr is a u32, above BPF_MAX_LOOPS it is -E2BIG; the callback gets (i, ctx) and a non-zero
   * return stops the loop after it; r0 = the number of calls made. The callback's frame is
   * one local call below the caller's (one depth check before the first call).
   *
   * Termination (notes/fast-path-termination.md §10.1): before each call the loop reads the
   * worker's CTRL_TERMINATE, and every LOOP_CHECK_PERIOD-th call, while a deadline is armed
   * (CTRL_TERM_DEADLINE ≠ 0), asks the termination checkpoint (TERM_CHECK_SLOT); a request or
   * an expired deadline ends the loop with the count so far, as the helper's checkpoint does.
   * r1..r5 are dead after a helper call, so their locals hold the loop's state: local 0 = nr,
   * 1 = i, 2 = ctx, 3 = the callback's return.
   */
  private inlineLoop(idx: number, subprog: number): ExpressionRef[] {
    const m = this.m;
    const b = this.b;
    const ctrl = (): ExpressionRef => m.global.get('ctrl', b.i32);
    const [r1, , r3] = this.args();
    const nr = (): ExpressionRef => m.local.get(0, b.i64);
    const i = (): ExpressionRef => m.local.get(1, b.i64);
    const base = this.opts.links.helperBase;
    const out = `loop_out_${idx}`;
    const next = `loop_next_${idx}`;
    const checkpoint = m.call_indirect(
      'table',
      m.i32.const(base + TERM_CHECK_SLOT),
      [m.i64.const(base), m.i64.const(1), m.i64.const(0), m.i64.const(0), m.i64.const(0)],
      this.i64x5(),
      b.i64,
    );
    const poll = m.i32.or(
      m.i32.load(CTRL_TERMINATE, 4, ctrl()),
      m.i32.and(
        m.i64.eq(
          m.i64.and(i(), m.i64.const(LOOP_CHECK_PERIOD - 1)),
          m.i64.const(LOOP_CHECK_PERIOD - 1),
        ),
        m.i64.ne(m.i64.load(CTRL_TERM_DEADLINE, 8, ctrl()), m.i64.const(0)),
      ),
    );
    const body = m.loop(
      next,
      m.block(null, [
        m.br(out, m.i64.ge_u(i(), nr())),
        m.if(poll, m.br(out, m.i64.eqz(checkpoint))),
        m.local.set(
          3,
          m.call(
            funcName(subprog),
            [i(), m.local.get(2, b.i64), m.i64.const(0), m.i64.const(0), m.i64.const(0)],
            b.i64,
          ),
        ),
        m.local.set(1, m.i64.add(i(), m.i64.const(1))),
        m.br(next, m.i64.eqz(m.local.get(3, b.i64))),
      ]),
    );
    return [
      m.local.set(0, m.i64.and(r1 as ExpressionRef, m.i64.const(0xffffffff))),
      m.local.set(2, r3 as ExpressionRef),
      m.local.set(1, m.i64.const(0)),
      m.if(
        m.i64.gt_u(nr(), m.i64.const(BPF_MAX_LOOPS)),
        this.set64(0, m.i64.const(negErrno(E2BIG))),
        m.block(null, [
          m.if(m.i32.eqz(m.i64.eqz(nr())), this.depthCheck(idx)),
          m.block(out, [body]),
          this.set64(0, i()),
        ]),
      ),
    ];
  }

  /**
   * bpf_tail_call(ctx, prog_array, index): the helper in slot 12 resolves the target's token
   * (0 when the slot is empty or out of range); under MAX_TAIL_CALL_CNT the frame is released
   * and the target replaces this function (a Wasm tail call); otherwise execution falls through
   * with r0 unchanged, as in the kernel.
   */
  private tailCall(): ExpressionRef[] {
    const m = this.m;
    const b = this.b;
    const ctrl = (): ExpressionRef => m.global.get('ctrl', b.i32);
    const token = (): ExpressionRef => m.local.get(T64A, b.i64);
    const slot = m.i32.const(this.opts.links.helperBase + BPF_FUNC_tail_call);
    const count = (): ExpressionRef => m.i32.load(CTRL_TAIL_CALL_CNT, 4, ctrl());
    const jump: ExpressionRef[] = [
      m.i32.store(CTRL_TAIL_CALL_CNT, 4, ctrl(), m.i32.add(count(), m.i32.const(1))),
    ];
    if (this.hasFrame) jump.push(m.global.set('sp', m.local.get(FP, b.i32)));
    jump.push(
      m.return_call_indirect('table', m.i32.wrap(token()), this.args(), this.i64x5(), b.i64),
    );
    return [
      m.if(
        m.i32.lt_u(count(), m.i32.const(MAX_TAIL_CALL_CNT)),
        m.block(null, [
          m.local.set(T64A, m.call_indirect('table', slot, this.args(), this.i64x5(), b.i64)),
          m.if(m.i32.eqz(m.i64.eqz(token())), m.block(null, jump)),
        ]),
      ),
    ];
  }

  private i64x5(): number {
    const b = this.b;
    return b.createType([b.i64, b.i64, b.i64, b.i64, b.i64]);
  }

  /** A call from this frame would need a frame below the program's stack: 'call-depth'. */
  private depthCheck(idx: number): ExpressionRef {
    const m = this.m;
    const b = this.b;
    return m.if(
      m.i32.lt_u(
        m.i32.sub(m.local.get(FP, b.i32), m.i32.const(2 * MAX_BPF_STACK)),
        m.global.get('stack_limit', b.i32),
      ),
      this.fail('call-depth', idx),
    );
  }

  private callx(idx: number, reg: number): ExpressionRef[] {
    const m = this.m;
    const b = this.b;
    const v = (): ExpressionRef => m.local.get(T64A, b.i64);
    const helper = m.block(null, [
      // id 0 (TERM_CHECK_SLOT) holds the termination checkpoint, not a helper
      m.if(
        m.i32.or(
          m.i64.ge_u(v(), m.i64.const(HELPER_BLOCK_SIZE)),
          m.i64.eq(v(), m.i64.const(TERM_CHECK_SLOT)),
        ),
        this.fail('call', idx, v()),
      ),
      this.set64(
        0,
        m.call_indirect(
          'table',
          m.i32.add(m.i32.wrap(v()), m.i32.const(this.opts.links.helperBase)),
          this.args(),
          this.i64x5(),
          b.i64,
        ),
      ),
    ]);
    const func = m.block(null, [
      m.if(m.i64.ge_u(v(), m.i64.const(0x1_0000_0000)), this.fail('call', idx, v())),
      this.depthCheck(idx),
      this.set64(0, m.call_indirect('table', m.i32.wrap(v()), this.args(), this.i64x5(), b.i64)),
    ]);
    if (this.opts.links.callxChecks?.has(idx) === true) {
      // a target from a frame, a handle or .rodata: only a verified entry's token
      const entry = m.if(
        m.i64.ge_u(
          m.i64.sub(v(), m.i64.const(FUNC_TOKEN_BASE)),
          m.i64.const(0x1_0000_0000 - FUNC_TOKEN_BASE),
        ),
        m.i32.const(0),
        // coro_entry_check (CORO_ENTRY_CHECK_SLOT) in generated code
        inlineEntryCheck(m, v),
      );
      return [
        m.local.set(T64A, this.get64(reg)),
        m.if(m.i32.eqz(entry), this.fail('call', idx, v())),
        func,
      ];
    }
    return [
      m.local.set(T64A, this.get64(reg)),
      m.if(m.i64.lt_u(v(), m.i64.const(FUNC_TOKEN_BASE)), helper, func),
    ];
  }

  /** Pre-statements and the i32 condition of the conditional jump or may_goto at idx. */
  private condition(idx: number): { pre: ExpressionRef[]; cond: ExpressionRef } {
    const m = this.m;
    const b = this.b;
    const info = this.prog.ops[idx] as OpInfo;
    const i = this.prog.insns[idx] as Insn;
    if (info.kind === 'may_goto') {
      const ctrl = (): ExpressionRef => m.global.get('ctrl', b.i32);
      const t = (): ExpressionRef => m.local.get(T64A, b.i64);
      // Every MAY_GOTO_CHECK_PERIOD-th may_goto (budget ≡ 1, so not on a run's first one)
      // asks the termination checkpoint (the program's block, TERM_CHECK_SLOT) for the budget:
      // unchanged, or 0 once the run is terminated (the kernel's timed may_goto, §10.1).
      const base = this.opts.links.helperBase;
      const check = m.call_indirect(
        'table',
        m.i32.const(base + TERM_CHECK_SLOT),
        [m.i64.const(base), t(), m.i64.const(0), m.i64.const(0), m.i64.const(0)],
        this.i64x5(),
        b.i64,
      );
      return {
        pre: [
          m.local.set(T64A, m.i64.load(CTRL_MAY_GOTO, 8, ctrl())),
          m.if(
            m.i64.eq(m.i64.and(t(), m.i64.const(MAY_GOTO_CHECK_PERIOD - 1)), m.i64.const(1)),
            m.local.set(T64A, check),
          ),
          m.if(
            m.i32.eqz(m.i64.eqz(t())),
            m.i64.store(CTRL_MAY_GOTO, 8, ctrl(), m.i64.sub(t(), m.i64.const(1))),
          ),
        ],
        cond: m.i64.eqz(t()),
      };
    }
    if (info.kind !== 'jmp') return { pre: [], cond: m.i32.const(1) };
    this.at = idx;
    const w = info.width;
    const imm = info.source === 'imm';
    const below4g = (r: number): boolean => this.repr.upperZero(idx, r);
    if (w === 64 && below4g(i.dst) && (imm ? i.imm >= 0 : below4g(i.src))) {
      // both operands are below 2^32 (pointers, a non-negative immediate): signed and unsigned
      // 64-bit compares agree on them, and so does the unsigned compare of their low halves
      const s = imm ? m.i32.const(i.imm) : this.get32(i.src);
      return { pre: [], cond: this.compare(UNSIGNED[info.cond], 32, this.get32(i.dst), s) };
    }
    const a = w === 64 ? this.get64(i.dst) : this.get32(i.dst);
    const s =
      info.source === 'imm'
        ? w === 64
          ? m.i64.const(i.imm)
          : m.i32.const(i.imm)
        : w === 64
          ? this.get64(i.src)
          : this.get32(i.src);
    return { pre: [], cond: this.compare(info.cond, w, a, s) };
  }

  private compare(cond: JmpCond, w: 32 | 64, a: ExpressionRef, s: ExpressionRef): ExpressionRef {
    const m = this.m;
    const o = w === 64 ? m.i64 : m.i32;
    switch (cond) {
      case 'eq':
        return o.eq(a, s);
      case 'ne':
        return o.ne(a, s);
      case 'gt':
        return o.gt_u(a, s);
      case 'ge':
        return o.ge_u(a, s);
      case 'lt':
        return o.lt_u(a, s);
      case 'le':
        return o.le_u(a, s);
      case 'sgt':
        return o.gt_s(a, s);
      case 'sge':
        return o.ge_s(a, s);
      case 'slt':
        return o.lt_s(a, s);
      case 'sle':
        return o.le_s(a, s);
      case 'set':
        return w === 64
          ? m.i64.ne(m.i64.and(a, s), m.i64.const(0))
          : m.i32.ne(m.i32.and(a, s), m.i32.const(0));
    }
  }

  /** br_table index of a gotox: target slot - first target; values ≥ 2^32 fail. */
  private gotoxIndex(
    idx: number,
    targets: readonly number[],
  ): { pre: ExpressionRef[]; index: ExpressionRef; min: number; count: number } {
    const m = this.m;
    const i = this.prog.insns[idx] as Insn;
    const min = targets[0] ?? 0;
    const max = targets[targets.length - 1] ?? 0;
    const v = (): ExpressionRef => m.local.get(T64A, this.b.i64);
    this.at = idx;
    return {
      pre: [
        m.local.set(T64A, this.get64(i.dst)),
        m.if(m.i64.ge_u(v(), m.i64.const(0x1_0000_0000)), this.fail('jump', idx, v())),
      ],
      index: m.i32.sub(m.i32.wrap(v()), m.i32.const(min)),
      min,
      count: max - min + 1,
    };
  }
}
