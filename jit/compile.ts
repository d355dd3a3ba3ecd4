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
 * Called from: runtime/ (Vm.load) with the links the Vm fixed.
 */

import {
  CTRL_ERR_AUX,
  CTRL_ERR_CODE,
  CTRL_ERR_INSN,
  CTRL_MAY_GOTO,
  CTRL_PKT_ADDR,
  CTRL_PKT_LEN,
  CTRL_R0,
  CTRL_TAIL_CALL_CNT,
  EXEC_CODE,
  EXPORT_FUNC_PREFIX,
  EXPORT_RUN,
  EXPORT_RUN_BATCH,
  EXPORT_RUN_CTX,
  FUNC_TOKEN_BASE,
  HELPER_BLOCK_SIZE,
  IMPORT_CTRL,
  IMPORT_CTX,
  IMPORT_MEMORY,
  IMPORT_MODULE,
  IMPORT_SP,
  IMPORT_STACK_LIMIT,
  IMPORT_TABLE,
  NULL_GUARD_END,
  XDP_MD,
  type ProgLinks,
} from '../src/abi.js';
import { LinkError } from '../src/errors.js';
import { BPF_FUNC_tail_call } from '../src/helper-protos.js';
import { callxReg, ldImm64Value, type Insn } from '../src/isa/insn.js';
import {
  BPF_MAX_LOOPS,
  MAX_TAIL_CALL_CNT,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  MAX_BPF_STACK,
} from '../src/isa/opcodes.js';
import type { AluOp, JmpCond, OpInfo } from '../src/isa/table.js';
import { jumpTarget, type Program, type Subprog } from '../src/program.js';
import { buildCfg, planNesting, type BasicBlock, type FuncCfg } from './cfg.js';
import {
  loadBinaryen,
  validateModule,
  withModule,
  type BinaryenApi,
  type BinaryenModule,
  type ExpressionRef,
} from './module.js';

/** How the exported `run(a, b)` builds the entry function's arguments. */
export type EntryKind = 'mem' | 'xdp';

/** Options of `compileProgram`. */
export interface CompileOptions {
  readonly links: ProgLinks;
  /** Limits of the Vm memory the module imports. */
  readonly memory: { readonly initial: number; readonly maximum: number; readonly shared: boolean };
  /** Check every memory access against the null guard (for programs that were not verified). */
  readonly memCheck: boolean;
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
  readonly timings: CompileTimings;
}

// Local indices: params r1..r5 are 0..4.
const R0 = 5;
const T64A = 11;
const T64B = 12;
const T32 = 13;
const FP = 14;
const LABEL = 15;
const VAR_TYPES_I64 = 7; // r0, r6..r10, T64A, T64B → 8 i64 vars (indices 5..12)

function regLocal(r: number): number {
  return r === 0 ? R0 : r <= 5 ? r - 1 : r;
}

/** Compiles a structurally checked program into a Wasm module. */
export async function compileProgram(prog: Program, opts: CompileOptions): Promise<CompiledModule> {
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
    timings: { load: t1 - t0, build: t2 - t1, emit: t3 - t2 },
  };
}

function buildModule(
  b: BinaryenApi,
  m: BinaryenModule,
  prog: Program,
  opts: CompileOptions,
): { reloopered: number[]; markers: number[][] } {
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
  addFailFunction(b, m);
  const reloopered: number[] = [];
  const markers: number[][] = [];
  prog.subprogs.forEach((sp, k) => {
    const fc = new FuncCompiler(b, m, prog, sp, opts);
    const body = fc.compile();
    if (fc.usedRelooper) reloopered.push(k);
    markers.push(fc.markers);
    const vars = [...new Array<number>(VAR_TYPES_I64 + 1).fill(b.i64), b.i32, b.i32, b.i32];
    const f = m.addFunction(funcName(k), i64x5, b.i64, vars, body);
    if (opts.debugNames === true || opts.annotate === true) nameLocals(b, f);
    m.addFunctionExport(funcName(k), EXPORT_FUNC_PREFIX + k);
  });
  addEntryFunctions(b, m, opts.entry, entryNeeds(prog));
  return { reloopered, markers };
}

function funcName(k: number): string {
  return `bpf_func_${k}`;
}

function nameLocals(b: BinaryenApi, f: number): void {
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

/** What the entry points must set up per run, from the instructions the program uses. */
interface EntryNeeds {
  /** The program has may_goto: reset its budget every run. */
  readonly mayGoto: boolean;
  /** The program has ld_abs/ld_ind: record the packet every run. */
  readonly ldAbs: boolean;
  /** The program may tail-call: reset the tail call count every run. */
  readonly tailCall: boolean;
}

function entryNeeds(prog: Program): EntryNeeds {
  const kinds = new Set(prog.ops.map((o) => o?.kind));
  const tailCall = prog.insns.some(
    (i, idx) => prog.ops[idx]?.kind === 'call' && i.src === 0 && i.imm === BPF_FUNC_tail_call,
  );
  return {
    mayGoto: kinds.has('may_goto'),
    ldAbs: kinds.has('ldabs') || kinds.has('ldind'),
    tailCall,
  };
}

/**
 * Exports `run(a, b) -> i32` and `run_batch(desc, count, results) -> i32`. Both set the
 * constant context fields once and then, per run, only what changes: the packet pointers,
 * and the may_goto budget and ld_abs packet when the program uses them.
 */
function addEntryFunctions(
  b: BinaryenApi,
  m: BinaryenModule,
  entry: EntryKind,
  needs: EntryNeeds,
): void {
  const i32 = b.i32;
  const ctx = (): ExpressionRef => m.global.get('ctx', i32);
  const ctrl = (): ExpressionRef => m.global.get('ctrl', i32);
  const u64 = (e: ExpressionRef): ExpressionRef => m.i64.extend_u(e);
  const zero = (): ExpressionRef => m.i64.const(0);
  const once = (): ExpressionRef[] =>
    entry === 'xdp'
      ? [
          m.i32.store(XDP_MD.ingress_ifindex, 4, ctx(), m.i32.const(1)),
          m.i32.store(XDP_MD.rx_queue_index, 4, ctx(), m.i32.const(0)),
          m.i32.store(XDP_MD.egress_ifindex, 4, ctx(), m.i32.const(0)),
        ]
      : [];
  /** Per-run setup and the call of the entry function, for packet local `pa` of length `pl`. */
  const perRun = (pa: number, pl: number): { setup: ExpressionRef[]; call: ExpressionRef } => {
    const a = (): ExpressionRef => m.local.get(pa, i32);
    const len = (): ExpressionRef => m.local.get(pl, i32);
    const setup: ExpressionRef[] = [];
    if (needs.mayGoto)
      setup.push(m.i64.store(CTRL_MAY_GOTO, 8, ctrl(), m.i64.const(BPF_MAX_LOOPS)));
    if (needs.tailCall) setup.push(m.i32.store(CTRL_TAIL_CALL_CNT, 4, ctrl(), m.i32.const(0)));
    if (needs.ldAbs) {
      setup.push(m.i32.store(PKT_ADDR, 4, ctrl(), a()), m.i32.store(PKT_LEN, 4, ctrl(), len()));
    }
    if (entry === 'xdp') {
      setup.push(
        m.i32.store(XDP_MD.data, 4, ctx(), a()),
        m.i32.store(XDP_MD.data_end, 4, ctx(), m.i32.add(a(), len())),
        m.i32.store(XDP_MD.data_meta, 4, ctx(), a()),
      );
      return {
        setup,
        call: m.call(funcName(0), [u64(ctx()), zero(), zero(), zero(), zero()], b.i64),
      };
    }
    return {
      setup,
      call: m.call(funcName(0), [u64(a()), u64(len()), zero(), zero(), zero()], b.i64),
    };
  };
  const one = perRun(0, 1);
  m.addFunction(
    EXPORT_RUN,
    b.createType([i32, i32]),
    i32,
    [b.i64],
    m.block(
      null,
      [
        ...once(),
        ...one.setup,
        m.local.set(2, one.call),
        m.i64.store(CTRL_R0, 8, ctrl(), m.local.get(2, b.i64)),
        m.i32.wrap(m.local.get(2, b.i64)),
      ],
      i32,
    ),
  );
  m.addFunctionExport(EXPORT_RUN, EXPORT_RUN);
  // run_batch(desc, count, results); locals: 3 = i, 4 = packet, 5 = length
  const i = (): ExpressionRef => m.local.get(3, i32);
  const desc = (): ExpressionRef => m.i32.add(m.local.get(0, i32), m.i32.shl(i(), m.i32.const(3)));
  const each = perRun(4, 5);
  m.addFunction(
    EXPORT_RUN_BATCH,
    b.createType([i32, i32, i32]),
    i32,
    [i32, i32, i32],
    m.block(
      null,
      [
        ...once(),
        m.local.set(3, m.i32.const(0)),
        m.block('done', [
          m.br('done', m.i32.ge_u(i(), m.local.get(1, i32))),
          m.loop(
            'next',
            m.block(null, [
              m.local.set(4, m.i32.load(0, 4, desc())),
              m.local.set(5, m.i32.load(4, 4, desc())),
              ...each.setup,
              m.i32.store(
                0,
                4,
                m.i32.add(m.local.get(2, i32), m.i32.shl(i(), m.i32.const(2))),
                m.i32.wrap(each.call),
              ),
              m.local.set(3, m.i32.add(i(), m.i32.const(1))),
              m.br('next', m.i32.lt_u(i(), m.local.get(1, i32))),
            ]),
          ),
        ]),
        m.local.get(1, i32),
      ],
      i32,
    ),
  );
  m.addFunctionExport(EXPORT_RUN_BATCH, EXPORT_RUN_BATCH);
  // run_ctx(ctx, pkt, len): r1 = a context the host built; pkt/len are what ld_abs reads.
  m.addFunction(
    EXPORT_RUN_CTX,
    b.createType([i32, i32, i32]),
    i32,
    [b.i64],
    m.block(
      null,
      [
        m.i64.store(CTRL_MAY_GOTO, 8, ctrl(), m.i64.const(BPF_MAX_LOOPS)),
        m.i32.store(CTRL_TAIL_CALL_CNT, 4, ctrl(), m.i32.const(0)),
        m.i32.store(PKT_ADDR, 4, ctrl(), m.local.get(1, i32)),
        m.i32.store(PKT_LEN, 4, ctrl(), m.local.get(2, i32)),
        m.local.set(
          3,
          m.call(funcName(0), [u64(m.local.get(0, i32)), zero(), zero(), zero(), zero()], b.i64),
        ),
        m.i64.store(CTRL_R0, 8, ctrl(), m.local.get(3, b.i64)),
        m.i32.wrap(m.local.get(3, b.i64)),
      ],
      i32,
    ),
  );
  m.addFunctionExport(EXPORT_RUN_CTX, EXPORT_RUN_CTX);
}

const PKT_ADDR = CTRL_PKT_ADDR;
const PKT_LEN = CTRL_PKT_LEN;

/** Translates one BPF function. */
class FuncCompiler {
  readonly b: BinaryenApi;
  readonly m: BinaryenModule;
  readonly prog: Program;
  readonly sp: Subprog;
  readonly opts: CompileOptions;
  readonly cfg: FuncCfg;
  readonly hasFrame: boolean;
  usedRelooper = false;
  /** Insn index of each annotation marker, in code order (annotate only). */
  readonly markers: number[] = [];

  constructor(b: BinaryenApi, m: BinaryenModule, prog: Program, sp: Subprog, opts: CompileOptions) {
    this.b = b;
    this.m = m;
    this.prog = prog;
    this.sp = sp;
    this.opts = opts;
    this.cfg = buildCfg(prog, sp);
    this.hasFrame = this.needsFrame();
  }

  /** The function body. */
  compile(): ExpressionRef {
    const m = this.m;
    const prologue: ExpressionRef[] = [];
    if (this.hasFrame) {
      prologue.push(
        m.local.set(FP, m.global.get('sp', this.b.i32)),
        m.local.set(10, m.i64.extend_u(m.local.get(FP, this.b.i32))),
        m.global.set('sp', m.i32.sub(m.local.get(FP, this.b.i32), m.i32.const(MAX_BPF_STACK))),
      );
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
    if (t.kind === 'fall' || (t.kind === 'jump' && t.target === blk.end))
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
    const nextSlot = blk.end;
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
        return [this.exitCode()];
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
        ids.push(rl.addBlock(m.block(null, [...code, this.exitCode()])));
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

  // ---- instructions ----

  private get64(r: number): ExpressionRef {
    return this.m.local.get(regLocal(r), this.b.i64);
  }

  private set64(r: number, v: ExpressionRef): ExpressionRef {
    return this.m.local.set(regLocal(r), v);
  }

  private get32(r: number): ExpressionRef {
    return this.m.i32.wrap(this.get64(r));
  }

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

  private exitCode(): ExpressionRef {
    const m = this.m;
    const ret = m.return(this.get64(0));
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
    switch (info.kind) {
      case 'alu':
        return this.alu(i, info.op, info.width, info.source === 'imm');
      case 'movsx': {
        const src = this.get64(i.src);
        if (info.width === 64) {
          const v =
            info.bits === 8
              ? m.i64.extend8_s(src)
              : info.bits === 16
                ? m.i64.extend16_s(src)
                : m.i64.extend32_s(src);
          return [this.set64(i.dst, v)];
        }
        const w = m.i32.wrap(src);
        return [
          this.set64(
            i.dst,
            m.i64.extend_u(info.bits === 8 ? m.i32.extend8_s(w) : m.i32.extend16_s(w)),
          ),
        ];
      }
      case 'end':
        return [this.set64(i.dst, this.endian(info.order, info.bits, this.get64(i.dst)))];
      case 'lddw':
        return [this.set64(i.dst, m.i64.const(this.ldImm64(idx, i)))];
      case 'ldx':
      case 'ldxsx':
        return this.load(idx, i, info.size, info.kind === 'ldxsx');
      case 'st':
        return this.store(idx, i.dst, i.off, info.size, m.i64.const(BigInt(i.imm)));
      case 'stx':
        return this.store(idx, i.dst, i.off, info.size, this.get64(i.src));
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
    const set = (v: ExpressionRef): ExpressionRef[] => [this.set64(i.dst, m.i64.extend_u(v))];
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
        return isImm ? [this.set64(i.dst, m.i64.const(BigInt(i.imm >>> 0)))] : set(s());
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
    const set = (v: ExpressionRef): ExpressionRef => this.set64(i.dst, m.i64.extend_u(v));
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

  private endian(order: 'le' | 'be' | 'swap', bits: 16 | 32 | 64, v: ExpressionRef): ExpressionRef {
    const m = this.m;
    if (order === 'le') {
      if (bits === 64) return v;
      return m.i64.and(v, m.i64.const(bits === 16 ? 0xffff : 0xffffffff));
    }
    if (bits === 16) {
      const x = (): ExpressionRef => m.local.get(T32, this.b.i32);
      return m.block(
        null,
        [
          m.local.set(T32, m.i32.wrap(v)),
          m.i64.extend_u(
            m.i32.or(
              m.i32.and(m.i32.shl(x(), m.i32.const(8)), m.i32.const(0xff00)),
              m.i32.and(m.i32.shr_u(x(), m.i32.const(8)), m.i32.const(0xff)),
            ),
          ),
        ],
        this.b.i64,
      );
    }
    if (bits === 32) {
      return m.block(
        null,
        [m.local.set(T32, m.i32.wrap(v)), m.i64.extend_u(this.bswap32())],
        this.b.i64,
      );
    }
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
    if (!this.opts.memCheck && !align) {
      if (off >= 0) return { pre: [], ptr: this.get32(reg), offset: off };
      return { pre: [], ptr: m.i32.add(this.get32(reg), m.i32.const(off)), offset: 0 };
    }
    const a = (): ExpressionRef => m.local.get(T64A, this.b.i64);
    const pre: ExpressionRef[] = [m.local.set(T64A, m.i64.add(this.get64(reg), m.i64.const(off)))];
    if (this.opts.memCheck) {
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

  private load(idx: number, i: Insn, size: 1 | 2 | 4 | 8, signed: boolean): ExpressionRef[] {
    const m = this.m;
    const { pre, ptr, offset } = this.address(idx, i.src, i.off, size, false);
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

  private store(
    idx: number,
    reg: number,
    off: number,
    size: 1 | 2 | 4 | 8,
    value: ExpressionRef,
  ): ExpressionRef[] {
    const m = this.m;
    const { pre, ptr, offset } = this.address(idx, reg, off, size, false);
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
        m.i64.add(ind ? m.i64.extend32_s(this.get64(i.src)) : m.i64.const(0), m.i64.const(i.imm)),
      ),
      // out of [0, len - size]: the program returns 0
      m.if(
        m.i64.gt_u(
          m.i64.add(off(), m.i64.const(size)),
          m.i64.extend_u(m.i32.load(PKT_LEN, 4, ctrl())),
        ),
        m.block(null, [this.set64(0, m.i64.const(0)), this.exitCode()]),
      ),
      m.local.set(T32, m.i32.add(m.i32.load(PKT_ADDR, 4, ctrl()), m.i32.wrap(off()))),
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
    const args = (): ExpressionRef[] => [1, 2, 3, 4, 5].map((r) => this.get64(r));
    if (i.src === BPF_PSEUDO_CALL) {
      const target = jumpTarget(i, idx, this.prog.ops[idx] as OpInfo);
      const k = this.prog.subprogs.findIndex((s) => s.start === target);
      return [this.depthCheck(idx), this.set64(0, m.call(funcName(k), args(), b.i64))];
    }
    if (i.src === BPF_PSEUDO_KFUNC_CALL) {
      const slot = this.opts.links.kfuncSlots.get(idx);
      // a weak kfunc the Vm does not have: linked, but fails if it ever runs
      if (slot === undefined) return [this.fail('call', idx, m.i64.const(i.imm))];
      return [
        this.set64(0, m.call_indirect('table', m.i32.const(slot), args(), this.i64x5(), b.i64)),
      ];
    }
    if (i.imm < 0 || i.imm >= HELPER_BLOCK_SIZE || !this.opts.hasHelper(i.imm)) {
      return [this.fail('call', idx, m.i64.const(i.imm))];
    }
    if (i.imm === BPF_FUNC_tail_call) return this.tailCall();
    const slot = m.i32.const(this.opts.links.helperBase + i.imm);
    return [this.set64(0, m.call_indirect('table', slot, args(), this.i64x5(), b.i64))];
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
    const args = (): ExpressionRef[] => [1, 2, 3, 4, 5].map((r) => this.get64(r));
    const token = (): ExpressionRef => m.local.get(T64A, b.i64);
    const slot = m.i32.const(this.opts.links.helperBase + BPF_FUNC_tail_call);
    const count = (): ExpressionRef => m.i32.load(CTRL_TAIL_CALL_CNT, 4, ctrl());
    const jump: ExpressionRef[] = [
      m.i32.store(CTRL_TAIL_CALL_CNT, 4, ctrl(), m.i32.add(count(), m.i32.const(1))),
    ];
    if (this.hasFrame) jump.push(m.global.set('sp', m.local.get(FP, b.i32)));
    jump.push(m.return_call_indirect('table', m.i32.wrap(token()), args(), this.i64x5(), b.i64));
    return [
      m.if(
        m.i32.lt_u(count(), m.i32.const(MAX_TAIL_CALL_CNT)),
        m.block(null, [
          m.local.set(T64A, m.call_indirect('table', slot, args(), this.i64x5(), b.i64)),
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
    const args = (): ExpressionRef[] => [1, 2, 3, 4, 5].map((r) => this.get64(r));
    const helper = m.block(null, [
      m.if(m.i64.ge_u(v(), m.i64.const(HELPER_BLOCK_SIZE)), this.fail('call', idx, v())),
      this.set64(
        0,
        m.call_indirect(
          'table',
          m.i32.add(m.i32.wrap(v()), m.i32.const(this.opts.links.helperBase)),
          args(),
          this.i64x5(),
          b.i64,
        ),
      ),
    ]);
    const func = m.block(null, [
      m.if(m.i64.ge_u(v(), m.i64.const(0x1_0000_0000)), this.fail('call', idx, v())),
      this.depthCheck(idx),
      this.set64(0, m.call_indirect('table', m.i32.wrap(v()), args(), this.i64x5(), b.i64)),
    ]);
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
      return {
        pre: [
          m.local.set(T64A, m.i64.load(CTRL_MAY_GOTO, 8, ctrl())),
          m.if(
            m.i32.eqz(m.i64.eqz(t())),
            m.i64.store(CTRL_MAY_GOTO, 8, ctrl(), m.i64.sub(t(), m.i64.const(1))),
          ),
        ],
        cond: m.i64.eqz(t()),
      };
    }
    if (info.kind !== 'jmp') return { pre: [], cond: m.i32.const(1) };
    const w = info.width;
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
