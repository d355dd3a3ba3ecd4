/**
 * The drain of a run's deferred coroutine frames (task_work, bpf_coro_defer), emitted in the
 * run's entry function itself: it resumes the frames of this worker's deferred ring in order,
 * as the runtime module's `coro_drain_deferred` (runtime/wasm/coro.ts) does, without a call
 * into the runtime module per run and with the resume and destroy calls made from this
 * module. It does the same thing, in the same order: check the entry (the frame still the
 * one deferred, a resume token the table can hold, not queued, not dying), pop it, clear its deadline,
 * count it, enter the resume context once for a run of frames (depth, current frame, the
 * frame's owner as the running program), call the resume token; a frame done afterwards that
 * no coroutine awaits is reaped (context left, destroy token called) as coro_resume does.
 * An entry it would not resume itself (stale, done already, a bad token, queued) hands the
 * rest of the ring to the runtime module's drain (IMPORT_CORO_DRAIN), which decides and counts
 * as always.
 *
 * Called from: jit/entry.ts, for programs that may defer frames.
 */

import {
  CORO_CTL,
  CORO_CTL_OFF,
  CORO_F_DYING,
  CORO_F_QUEUED,
  CORO_HDR,
  CORO_HDR_SIZE,
  CORO_MAGIC,
  CTRL_BASE,
  CTRL_CORO_CURRENT,
  CTRL_CORO_DEPTH,
  CTRL_DEFER_HEAD,
  CTRL_DEFER_RING,
  CTRL_DEFER_TAIL,
  CTRL_PROG,
  DEFER_RING_CAP,
  FUNC_TOKEN_BASE,
  NULL_GUARD_END,
} from '../src/abi.js';
import type { BinaryenApi, BinaryenModule, ExpressionRef } from './module.js';

const CTL = CTRL_BASE + CORO_CTL_OFF;

// locals, from `base`
const F = 0;
const SEQ = 1;
const N = 2;
const ENTERED = 3;
const OUTER_DEPTH = 4;
const OUTER = 5;
const OUTER_PROG = 6;
const HEAD = 7;
const I32_LOCALS = 8;
const T = 8; // i64: a token

/** The locals `coroDrain` uses, to append to the entry function's vars. */
export function coroDrainVars(b: BinaryenApi): number[] {
  return [...new Array<number>(I32_LOCALS).fill(b.i32), b.i64];
}

let nextLabel = 0;

/**
 * Statements that drain this worker's deferred ring, resuming at most `limit` frames, in a
 * function whose locals from `base` on are `coroDrainVars`. `drainImport` is the runtime
 * module's drain (`(limit: i32) -> i32`).
 */
export function coroDrain(
  b: BinaryenApi,
  m: BinaryenModule,
  base: number,
  limit: number,
  drainImport: string,
): ExpressionRef[] {
  const i32 = b.i32;
  const shared = m.getMemoryInfo('0').shared;
  const get = (l: number): ExpressionRef => m.local.get(base + l, l >= I32_LOCALS ? b.i64 : i32);
  const set = (l: number, v: ExpressionRef): ExpressionRef => m.local.set(base + l, v);
  const c = (v: number): ExpressionRef => m.i32.const(v);
  const ctrl = (): ExpressionRef => m.global.get('ctrl', i32);
  const ld = (off: number, p: ExpressionRef): ExpressionRef => m.i32.load(off, 4, p);
  const st = (off: number, p: ExpressionRef, v: ExpressionRef): ExpressionRef =>
    m.i32.store(off, 4, p, v);
  const count = (field: number): ExpressionRef =>
    shared
      ? m.drop(m.i64.atomic.rmw.add(0, c(CTL + field), m.i64.const(1)))
      : m.i64.store(
          0,
          8,
          c(CTL + field),
          m.i64.add(m.i64.load(0, 8, c(CTL + field)), m.i64.const(1)),
        );
  const hdr = (field: number): number => CORO_HDR_SIZE + field; // from F - CORO_HDR_SIZE
  const obj = (): ExpressionRef => m.i32.sub(get(F), c(CORO_HDR_SIZE));
  // coro.ts stillFrame(F, SEQ); the header is read only inside memory (the ring is memory a
  // program could have written)
  const stillFrame = (): ExpressionRef =>
    m.if(
      m.i32.and(
        m.i32.ge_u(get(F), c(NULL_GUARD_END + CORO_HDR_SIZE)),
        m.i64.le_u(
          m.i64.add(m.i64.extend_u(get(F)), m.i64.const(16)),
          m.i64.shl(m.i64.extend_u(m.memory.size()), m.i64.const(16)),
        ),
      ),
      m.i32.and(
        m.i32.eq(ld(hdr(CORO_HDR.magic), obj()), c(CORO_MAGIC)),
        m.i32.eq(ld(hdr(CORO_HDR.seq), obj()), get(SEQ)),
      ),
      c(0),
    );
  // coro.ts tokenOk(T)
  const tokenOk = (): ExpressionRef =>
    m.i32.and(
      m.i64.ge_u(get(T), m.i64.const(FUNC_TOKEN_BASE)),
      m.i64.lt_u(get(T), m.i64.extend_u(ld(0, c(CTL + CORO_CTL.tokenLimit)))),
    );
  const leave = (): ExpressionRef =>
    m.if(
      get(ENTERED),
      m.block(null, [
        st(CTRL_PROG, ctrl(), get(OUTER_PROG)),
        st(CTRL_CORO_CURRENT, ctrl(), get(OUTER)),
        st(CTRL_CORO_DEPTH, ctrl(), get(OUTER_DEPTH)),
        set(ENTERED, c(0)),
      ]),
    );
  const i64x5 = b.createType([b.i64, b.i64, b.i64, b.i64, b.i64]);
  const callToken = (): ExpressionRef =>
    m.drop(
      m.call_indirect(
        'table',
        m.i32.wrap(get(T)),
        [m.i64.extend_u(get(F)), m.i64.const(0), m.i64.const(0), m.i64.const(0), m.i64.const(0)],
        i64x5,
        b.i64,
      ),
    );
  const id = `coro_drain_${nextLabel++}`;
  const out = `${id}_out`;
  const next = `${id}_next`;
  const handOver = (): ExpressionRef =>
    m.block(null, [
      leave(),
      m.drop(m.call(drainImport, [m.i32.sub(c(limit), get(N))], i32)),
      m.br(out),
    ]);
  const entry = (): ExpressionRef =>
    m.i32.add(
      ld(CTRL_DEFER_RING, ctrl()),
      m.i32.shl(m.i32.and(get(HEAD), c(DEFER_RING_CAP - 1)), c(3)),
    );
  return [
    set(OUTER_DEPTH, ld(CTRL_CORO_DEPTH, ctrl())),
    set(OUTER, ld(CTRL_CORO_CURRENT, ctrl())),
    set(OUTER_PROG, ld(CTRL_PROG, ctrl())),
    set(ENTERED, c(0)),
    set(N, c(0)),
    m.block(out, [
      m.loop(
        next,
        m.block(null, [
          m.br(out, m.i32.ge_u(get(N), c(limit))),
          set(HEAD, ld(CTRL_DEFER_HEAD, ctrl())),
          m.br(out, m.i32.eq(get(HEAD), ld(CTRL_DEFER_TAIL, ctrl()))),
          set(F, ld(0, entry())),
          set(SEQ, ld(4, entry())),
          set(T, m.i64.const(0)),
          m.if(stillFrame(), set(T, m.i64.load(0, 8, get(F)))),
          // not one to resume here (stale, done, bad token, queued, being destroyed by the
          // host's sweep): the runtime module's drain takes the rest of the ring, from this
          // entry on (T != 0: a live header)
          m.if(m.i32.or(m.i64.eqz(get(T)), m.i32.eqz(tokenOk())), handOver()),
          m.if(
            m.i32.and(ld(hdr(CORO_HDR.flags), obj()), c(CORO_F_QUEUED | CORO_F_DYING)),
            handOver(),
          ),
          st(CTRL_DEFER_HEAD, ctrl(), m.i32.add(get(HEAD), c(1))),
          m.i64.store(0, 8, m.i32.add(obj(), c(hdr(CORO_HDR.deadline))), m.i64.const(0)),
          count(CORO_CTL.resumed),
          m.if(
            m.i32.eqz(get(ENTERED)),
            m.block(null, [
              st(CTRL_CORO_DEPTH, ctrl(), m.i32.add(get(OUTER_DEPTH), c(1))),
              set(ENTERED, c(1)),
            ]),
          ),
          st(CTRL_CORO_CURRENT, ctrl(), get(F)),
          st(CTRL_PROG, ctrl(), ld(hdr(CORO_HDR.owner), obj())),
          callToken(),
          set(N, m.i32.add(get(N), c(1))),
          // done now, and no coroutine awaits it: reaped outside the context (coro.ts coroReap)
          m.if(
            m.i64.eqz(m.i64.load(0, 8, get(F))),
            m.if(
              m.i32.and(stillFrame(), m.i32.eqz(ld(hdr(CORO_HDR.parent), obj()))),
              m.block(null, [
                leave(),
                set(T, m.i64.load(8, 8, get(F))),
                m.if(
                  tokenOk(),
                  m.block(null, [count(CORO_CTL.reaped), callToken()]),
                  count(CORO_CTL.badHandles),
                ),
              ]),
            ),
          ),
          m.br(next),
        ]),
      ),
    ]),
    leave(),
  ];
}
