/**
 * The exported entry points of a program module: `run(a, b) -> i32`, `run_batch(desc, count,
 * results) -> i32` and `run_ctx(ctx, pkt, len) -> i32` (src/abi.ts). They set up what each run
 * needs (xdp_md over the packet, the may_goto budget, the ld_abs packet, the tail call count)
 * and call the entry BPF function `bpf_func_0`.
 *
 * Called from: jit/compile.ts, once per module.
 */

import {
  CORO_DRAIN_LIMIT,
  CTRL_DEFER_HEAD,
  CTRL_DEFER_TAIL,
  CTRL_MAY_GOTO,
  CTRL_PROG,
  CTRL_PKT_ADDR,
  CTRL_PKT_LEN,
  CTRL_R0,
  CTRL_TAIL_CALL_CNT,
  EXPORT_RUN,
  EXPORT_RUN_BATCH,
  EXPORT_RUN_CTX,
  XDP_MD,
} from '../src/abi.js';
import { BPF_FUNC_tail_call } from '../src/helper-protos.js';
import { BPF_MAX_LOOPS, BPF_PSEUDO_KFUNC_CALL } from '../src/isa/opcodes.js';
import type { Program } from '../src/program.js';
import { coroDrain, coroDrainVars } from './coro-drain.js';
import type { BinaryenApi, BinaryenModule, ExpressionRef } from './module.js';

/** How the exported `run(a, b)` builds the entry function's arguments. */
export type EntryKind = 'mem' | 'xdp';

/** The Wasm name of the imported coroutine drain (IMPORT_CORO_DRAIN). */
export const CORO_DRAIN = 'coro_drain';

/** The Wasm name of BPF function k. */
export function funcName(k: number): string {
  return `bpf_func_${k}`;
}

const PKT_ADDR = CTRL_PKT_ADDR;
const PKT_LEN = CTRL_PKT_LEN;

/** What the entry points must set up per run, from the instructions the program uses. */
export interface EntryNeeds {
  /** The program has may_goto: reset its budget every run. */
  readonly mayGoto: boolean;
  /** The program has ld_abs/ld_ind: record the packet every run. */
  readonly ldAbs: boolean;
  /** The program may tail-call: reset the tail call count every run. */
  readonly tailCall: boolean;
  /**
   * The program calls kfuncs or callx, so it may defer coroutine frames (bpf_coro_defer):
   * resume them when the entry function returns (jit/coro-drain.ts; the module imports
   * IMPORT_CORO_DRAIN for what that drain hands over).
   */
  readonly coro: boolean;
}

/** What the entry points of `prog` must set up per run. */
export function entryNeeds(prog: Program): EntryNeeds {
  const kinds = new Set(prog.ops.map((o) => o?.kind));
  const tailCall = prog.insns.some(
    (i, idx) => prog.ops[idx]?.kind === 'call' && i.src === 0 && i.imm === BPF_FUNC_tail_call,
  );
  const coro =
    kinds.has('callx') ||
    prog.insns.some((i, idx) => prog.ops[idx]?.kind === 'call' && i.src === BPF_PSEUDO_KFUNC_CALL);
  return {
    mayGoto: kinds.has('may_goto'),
    ldAbs: kinds.has('ldabs') || kinds.has('ldind'),
    tailCall,
    coro,
  };
}

/**
 * Exports `run(a, b) -> i32` and `run_batch(desc, count, results) -> i32`. Both set the
 * constant context fields once and then, per run, only what changes: the packet pointers,
 * and the may_goto budget and ld_abs packet when the program uses them.
 */
export function addEntryFunctions(
  b: BinaryenApi,
  m: BinaryenModule,
  entry: EntryKind,
  needs: EntryNeeds,
  owner: number,
): void {
  const i32 = b.i32;
  const ctx = (): ExpressionRef => m.global.get('ctx', i32);
  const ctrl = (): ExpressionRef => m.global.get('ctrl', i32);
  const u64 = (e: ExpressionRef): ExpressionRef => m.i64.extend_u(e);
  const zero = (): ExpressionRef => m.i64.const(0);
  /**
   * After the entry function returns: resume what it deferred (task_work), on this worker
   * (jit/coro-drain.ts; its locals from `base` on: `drainVars`).
   */
  const drain = (base: number): ExpressionRef[] =>
    needs.coro
      ? [
          m.if(
            m.i32.ne(
              m.i32.load(CTRL_DEFER_HEAD, 4, ctrl()),
              m.i32.load(CTRL_DEFER_TAIL, 4, ctrl()),
            ),
            m.block(null, coroDrain(b, m, base, CORO_DRAIN_LIMIT, CORO_DRAIN)),
          ),
        ]
      : [];
  const drainVars = needs.coro ? coroDrainVars(b) : [];
  /**
   * The running program (ctrl + CTRL_PROG, 0 when none): what the frame allocator charges and
   * what a termination request on this thread stops. Cleared when the run returns.
   */
  const charge = (): ExpressionRef[] => [m.i32.store(CTRL_PROG, 4, ctrl(), m.i32.const(owner))];
  const uncharge = (): ExpressionRef => m.i32.store(CTRL_PROG, 4, ctrl(), m.i32.const(0));
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
    const setup: ExpressionRef[] = [...charge()];
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
    [b.i64, ...drainVars],
    m.block(
      null,
      [
        ...once(),
        ...one.setup,
        m.local.set(2, one.call),
        ...drain(3),
        uncharge(),
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
    [i32, i32, i32, ...drainVars],
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
              ...drain(6),
              m.local.set(3, m.i32.add(i(), m.i32.const(1))),
              m.br('next', m.i32.lt_u(i(), m.local.get(1, i32))),
            ]),
          ),
        ]),
        uncharge(),
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
    [b.i64, ...drainVars],
    m.block(
      null,
      [
        ...charge(),
        m.i64.store(CTRL_MAY_GOTO, 8, ctrl(), m.i64.const(BPF_MAX_LOOPS)),
        m.i32.store(CTRL_TAIL_CALL_CNT, 4, ctrl(), m.i32.const(0)),
        m.i32.store(PKT_ADDR, 4, ctrl(), m.local.get(1, i32)),
        m.i32.store(PKT_LEN, 4, ctrl(), m.local.get(2, i32)),
        m.local.set(
          3,
          m.call(funcName(0), [u64(m.local.get(0, i32)), zero(), zero(), zero(), zero()], b.i64),
        ),
        ...drain(4),
        uncharge(),
        m.i64.store(CTRL_R0, 8, ctrl(), m.local.get(3, b.i64)),
        m.i32.wrap(m.local.get(3, b.i64)),
      ],
      i32,
    ),
  );
  m.addFunctionExport(EXPORT_RUN_CTX, EXPORT_RUN_CTX);
}
