/**
 * Inline fast paths of the runtime module's allocator and coroutine kfuncs, as the kernel
 * inlines some helpers: `bpf_obj_new_impl` / `bpf_coro_frame_alloc` pop this worker's cache
 * (runtime/wasm/frame-alloc.ts), `bpf_obj_drop_impl` / `bpf_coro_frame_free` push onto it, and
 * `bpf_coro_defer` pushes onto this worker's deferred ring (runtime/wasm/coro.ts). The fast path
 * is emitted in the calling function itself (V8 does not inline Wasm calls, and even a direct
 * call costs about as much as the fast path). Whatever it does not serve (an empty cache, a
 * cap reached, a pointer that is not a live small object, a full ring, a termination request:
 * the slot may hold the kfunc's fast-path version) branches to the call of the kfunc's slot,
 * taken before anything changed, so the runtime module decides and counts exactly as always.
 * The fast paths change memory exactly as the runtime module does (same object, owner entry,
 * account, header, counters), so the interpreter, which calls the runtime module, stays the
 * oracle.
 *
 * In the shared build (a Vm with workers) the accounts, owner entries, sequence numbers and
 * Vm-wide counters are changed with atomics, as the runtime module does; a free that would
 * send the object home or spill the cache to the depot is left to the runtime module.
 *
 * The same live-frame check also serves generated code's frame checks (`inlineFrameCheck`:
 * accesses through a coroutine handle, a token entry's r1; anything it does not accept asks
 * `coro_frame_check`), and `inlineEntryCheck` reads the entry map as `coro_entry_check` does.
 *
 * Called from: jit/compile.ts, for kfunc calls that `ProgLinks.inlineKfuncs` names, frame
 * checks (`frameChecks`, `coroEntries`) and checked `callx` (`callxChecks`).
 */

import {
  CORO_CTL,
  CORO_CTL_OFF,
  CORO_F_DETACHED,
  CORO_HDR,
  CORO_HDR_SIZE,
  CORO_MAGIC,
  CTRL_ALLOC_CACHE,
  CTRL_ALLOC_MAX_OWNERS,
  CTRL_ALLOC_OWNERS,
  CTRL_ALLOC_STATE,
  CTRL_ALLOC_WORKER,
  CTRL_BASE,
  CTRL_CORO_CURRENT,
  CTRL_DEFER_HEAD,
  CTRL_DEFER_RING,
  CTRL_DEFER_TAIL,
  CTRL_PROG,
  CTRL_TERMINATE,
  DEFER_RING_CAP,
  FRAME_ALLOC as FA,
  FUNC_TOKEN_BASE,
  NULL_GUARD_END,
  type InlineKfunc,
} from '../src/abi.js';
import { InternalError } from '../src/errors.js';
import type { BinaryenApi, BinaryenModule, ExpressionRef } from './module.js';

/** Where the coroutine counters are (absolute addresses). */
const CTL = CTRL_BASE + CORO_CTL_OFF;
const SPAN_MASK = (1 << FA.spanShift) - 1;

// locals, from the first one `inlineKfuncVars` adds (`base`)
const P = 0; // object
const SZ = 1; // request bytes (alloc) / slot bytes (free)
const C = 2; // class
const CS = 3; // class bytes
const CE = 4; // cache class entry
const OWN = 5; // owner
const ACCT = 6; // owner account
const SPAN = 7;
const OFF = 8;
const IDX = 9;
const ST = 10; // allocator state block
const Q = 11; // cursor
const E = 12; // end / entry
const N = 13; // count
const I32_LOCALS = 14;
const R1 = 14; // i64: the kfunc's r1
const LIVE = 15; // i64: account before the change
const D = 16; // i64: account delta

/** The locals the fast paths use, to append to a function that has `ProgLinks.inlineKfuncs`. */
export function inlineKfuncVars(b: BinaryenApi): number[] {
  return [...new Array<number>(I32_LOCALS).fill(b.i32), b.i64, b.i64, b.i64];
}

/** One inline kfunc call site. */
export interface InlineKfuncSite {
  readonly kind: InlineKfunc;
  /** Call-table slot of the kfunc. */
  readonly slot: number;
  /** r1..r5, each used once. */
  readonly args: readonly ExpressionRef[];
  /** The module imports a shared memory (a Vm with workers). */
  readonly shared: boolean;
  /** Index of the first of the locals `inlineKfuncVars` added to the function. */
  readonly base: number;
  /** A number unique in the function (the insn index), for labels. */
  readonly site: number;
  /**
   * For an allocation: the request's size when the verifier proved it the same constant on
   * every path (the size class is then worked out here, at compile time).
   */
  readonly constSize?: number;
  /**
   * For bpf_coro_frame_free: the verifier proved the argument a live frame (a frame pointer on
   * every path, not a handle), so the checks that tell a frame from anything else are skipped.
   */
  readonly liveFrame?: boolean;
}

/**
 * The i64 r0 of the kfunc call `s`: its fast path, and on a miss the call of its slot with
 * the same arguments.
 */
export function inlineKfuncCall(
  b: BinaryenApi,
  m: BinaryenModule,
  s: InlineKfuncSite,
): ExpressionRef {
  const g = new FastPathGen(b, m, s);
  const i64x5 = b.createType([b.i64, b.i64, b.i64, b.i64, b.i64]);
  const args = [m.local.get(s.base + R1, b.i64), ...s.args.slice(1)];
  return m.block(
    g.doneLabel,
    [
      m.block(g.slowLabel, [
        m.local.set(s.base + R1, s.args[0] as ExpressionRef),
        ...g.body(s.kind),
      ]),
      m.call_indirect('table', m.i32.const(s.slot), args, i64x5, b.i64),
    ],
    b.i64,
  );
}

/** Makes labels unique within a function (a site may emit more than one fast path). */
let nextLabel = 0;

/**
 * i32 1 when the i64 `frame` (below 2^32) is a live coroutine frame of at least `need` bytes,
 * else 0, as `coro_frame_check` (CORO_FRAME_CHECK_SLOT) answers: a small live frame is
 * accepted inline; anything else (a large frame, or not a frame) is asked in `checkSlot`.
 * `base`: the locals `inlineKfuncVars` added; `site`: for labels.
 */
export function inlineFrameCheck(
  b: BinaryenApi,
  m: BinaryenModule,
  s: {
    readonly frame: ExpressionRef;
    readonly need: number;
    /** Or'ed into `need` for the slow call (CORO_CHECK_RECORD for handle accesses). */
    readonly needFlags?: number;
    readonly checkSlot: number;
    readonly base: number;
    readonly site: number;
  },
): ExpressionRef {
  const g = new FastPathGen(b, m, { shared: false, base: s.base, site: s.site });
  const frame = (): ExpressionRef => m.local.get(s.base + R1, b.i64);
  return m.block(
    g.doneLabel,
    [
      m.block(g.slowLabel, [
        m.local.set(s.base + R1, s.frame),
        ...g.liveFrame(s.need),
        m.br(g.doneLabel, undefined, m.i32.const(1)),
      ]),
      m.call_indirect(
        'table',
        m.i32.const(s.checkSlot),
        [m.i32.wrap(frame()), m.i32.const(s.need | (s.needFlags ?? 0) | 0)],
        b.createType([b.i32, b.i32]),
        b.i32,
      ),
    ],
    b.i32,
  );
}

/**
 * i32 1 when the i64 `token` (read twice: a local) is a verified token entry, else 0: the
 * runtime module's `coro_entry_check` (the entry map at CORO_CTL.entryMap) in generated code.
 */
export function inlineEntryCheck(m: BinaryenModule, token: () => ExpressionRef): ExpressionRef {
  const map = (): ExpressionRef => m.i32.load(0, 4, m.i32.const(CTL + CORO_CTL.entryMap));
  const i = (): ExpressionRef => m.i32.wrap(m.i64.sub(token(), m.i64.const(FUNC_TOKEN_BASE)));
  return m.if(
    m.i32.or(
      m.i32.eqz(map()),
      m.i64.ge_u(
        m.i64.sub(token(), m.i64.const(FUNC_TOKEN_BASE)),
        m.i64.extend_u(m.i32.load(0, 4, map())),
      ),
    ),
    m.i32.const(0),
    m.i32.and(
      m.i32.shr_u(
        m.i32.load8_u(4, 1, m.i32.add(map(), m.i32.shr_u(i(), m.i32.const(3)))),
        m.i32.and(i(), m.i32.const(7)),
      ),
      m.i32.const(1),
    ),
  );
}

/** Emits the fast path of one call site. */
class FastPathGen {
  private readonly b: BinaryenApi;
  private readonly m: BinaryenModule;
  private readonly shared: boolean;
  private readonly base: number;
  /** Label of the block whose value is r0. */
  readonly doneLabel: string;
  /** Label of the block whose end calls the kfunc. */
  readonly slowLabel: string;
  private readonly zeroLabel: string;
  private readonly constSize: number | undefined;
  /** InlineKfuncSite.liveFrame. */
  private readonly provenLive: boolean;

  constructor(
    b: BinaryenApi,
    m: BinaryenModule,
    s: Pick<InlineKfuncSite, 'shared' | 'base' | 'site' | 'constSize' | 'liveFrame'>,
  ) {
    this.b = b;
    this.m = m;
    this.shared = s.shared;
    this.base = s.base;
    this.constSize = s.constSize;
    this.provenLive = s.liveFrame === true;
    const id = `kf${s.site}_${nextLabel++}`;
    this.doneLabel = `${id}_done`;
    this.slowLabel = `${id}_slow`;
    this.zeroLabel = `${id}_zero`;
  }

  body(kind: InlineKfunc): ExpressionRef[] {
    switch (kind) {
      case 'bpf_obj_new_impl':
        return this.alloc(false);
      case 'bpf_coro_frame_alloc':
        return this.alloc(true);
      case 'bpf_obj_drop_impl':
        return this.free(false);
      case 'bpf_coro_frame_free':
        return this.free(true);
      case 'bpf_coro_defer':
        return this.defer();
      case 'bpf_coro_detach':
        return this.detach();
      case 'bpf_coro_done':
        return this.done();
      default: {
        const never: never = kind;
        return never;
      }
    }
  }

  // ---- expression helpers ----

  private get(l: number): ExpressionRef {
    return this.m.local.get(this.base + l, l >= I32_LOCALS ? this.b.i64 : this.b.i32);
  }

  private set(l: number, v: ExpressionRef): ExpressionRef {
    return this.m.local.set(this.base + l, v);
  }

  /** The kfunc's r1. */
  private r1(): ExpressionRef {
    return this.get(R1);
  }

  private i32(v: number): ExpressionRef {
    return this.m.i32.const(v);
  }

  private ld(off: number, ptr: ExpressionRef): ExpressionRef {
    return this.m.i32.load(off, 4, ptr);
  }

  private ctrl(field: number): ExpressionRef {
    return this.ld(field, this.m.global.get('ctrl', this.b.i32));
  }

  /** To the call of the kfunc itself (its slot), with the original arguments. */
  private slow(): ExpressionRef {
    return this.m.br(this.slowLabel);
  }

  private slowIf(cond: ExpressionRef): ExpressionRef {
    return this.m.br(this.slowLabel, cond);
  }

  /** r0 = v. */
  private ret(v: ExpressionRef): ExpressionRef {
    return this.m.br(this.doneLabel, undefined, v);
  }

  /** Adds the i64 `d` to the u64 at `ptr`; returns the old value when `old`. */
  private add64(ptr: ExpressionRef, d: ExpressionRef, old: boolean): ExpressionRef {
    const m = this.m;
    if (this.shared) {
      const r = m.i64.atomic.rmw.add(0, ptr, d);
      return old ? r : m.drop(r);
    }
    if (old) throw new InternalError('bug: add64 with old in the single-threaded build');
    return m.i64.store(0, 8, ptr, m.i64.add(m.i64.load(0, 8, ptr), d));
  }

  /** Bumps the Vm-wide u64 coroutine counter at CTL + `field`. */
  private countCoro(field: number): ExpressionRef {
    return this.add64(this.i32(CTL + field), this.m.i64.const(1), false);
  }

  // ---- allocation ----

  /** `bpf_obj_new_impl(size)` or `bpf_coro_frame_alloc(size)`. */
  private alloc(coro: boolean): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    const hdr = coro ? CORO_HDR_SIZE : 0;
    const k = this.constSize;
    // a size the verifier proved constant: its class now (slab_index_for_size at compile time)
    const known = k !== undefined && k >= 1 && k <= FA.maxSmall - hdr;
    const out: ExpressionRef[] = [
      // a termination request: the slot may hold the fast path (NULL)
      this.slowIf(this.ctrl(CTRL_TERMINATE)),
    ];
    if (known) {
      const c = sizeClassOf(k + hdr);
      out.push(
        this.set(SZ, this.i32(k + hdr)),
        this.set(C, this.i32(c)),
        this.set(CS, this.i32(classBytes(c))),
      );
    } else {
      out.push(
        // 0, or more than a size class serves: the runtime module decides
        this.slowIf(
          m.i64.ge_u(m.i64.sub(this.r1(), m.i64.const(1)), m.i64.const(FA.maxSmall - hdr)),
        ),
        this.set(SZ, m.i32.add(m.i32.wrap(this.r1()), this.i32(hdr))),
        ...this.sizeClass(),
      );
    }
    out.push(
      this.set(CE, m.i32.add(this.ctrl(CTRL_ALLOC_CACHE), m.i32.shl(get(C), this.i32(4)))),
      this.set(P, this.ld(FA.ceHead, get(CE))),
      this.slowIf(m.i32.eqz(get(P))),
      this.set(OWN, this.ctrl(CTRL_PROG)),
      this.slowIf(m.i32.ge_u(get(OWN), this.ctrl(CTRL_ALLOC_MAX_OWNERS))),
      this.set(ACCT, m.i32.add(this.ctrl(CTRL_ALLOC_OWNERS), m.i32.shl(get(OWN), this.i32(4)))),
      ...this.charge(),
      // pop
      m.i32.store(FA.ceHead, 4, get(CE), this.ld(0, get(P))),
    );
    if (this.shared) {
      // the count is a soft bound (frame-alloc.ts): stop at 0
      out.push(
        this.set(N, this.ld(FA.ceCount, get(CE))),
        m.if(get(N), m.i32.store(FA.ceCount, 4, get(CE), m.i32.sub(get(N), this.i32(1)))),
      );
    }
    out.push(
      // owner entry: owner + 1
      this.set(SPAN, m.i32.and(get(P), this.i32(~SPAN_MASK))),
      this.set(OFF, m.i32.sub(m.i32.sub(get(P), get(SPAN)), this.ld(FA.spData, get(SPAN)))),
      this.set(IDX, this.slotIndex()),
      m.i32.store16(
        FA.spanHdr,
        2,
        m.i32.add(get(SPAN), m.i32.shl(get(IDX), this.i32(1))),
        m.i32.add(get(OWN), this.i32(1)),
      ),
      ...this.zero(hdr),
    );
    if (!coro) {
      out.push(this.ret(m.i64.extend_u(get(P))));
      return out;
    }
    out.push(
      ...this.header(),
      this.countCoro(CORO_CTL.created),
      this.ret(m.i64.extend_u(m.i32.add(get(P), this.i32(CORO_HDR_SIZE)))),
    );
    return out;
  }

  /** C and CS: the size class of SZ (1..maxSmall) and its slot bytes (frame-alloc.ts classOf). */
  private sizeClass(): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    // bits: 31 - clz(size - 1), in OFF
    const bits = (): ExpressionRef => get(OFF);
    return [
      m.if(
        m.i32.le_u(get(SZ), this.i32(64)),
        m.block(null, [
          this.set(C, m.i32.shr_u(m.i32.sub(get(SZ), this.i32(1)), this.i32(4))),
          this.set(CS, m.i32.shl(m.i32.add(get(C), this.i32(1)), this.i32(4))),
        ]),
        m.block(null, [
          this.set(OFF, m.i32.sub(this.i32(31), m.i32.clz(m.i32.sub(get(SZ), this.i32(1))))),
          // 3 << (bits - 1) < size: the class of 2^(bits+1), else of 3 * 2^(bits-1)
          this.set(Q, m.i32.gt_u(get(SZ), m.i32.shl(this.i32(3), m.i32.sub(bits(), this.i32(1))))),
          this.set(
            C,
            m.i32.add(
              m.i32.add(this.i32(4), m.i32.shl(m.i32.sub(bits(), this.i32(6)), this.i32(1))),
              get(Q),
            ),
          ),
          this.set(
            CS,
            m.select(
              get(Q),
              m.i32.shl(this.i32(2), bits()),
              m.i32.shl(this.i32(3), m.i32.sub(bits(), this.i32(1))),
            ),
          ),
        ]),
      ),
    ];
  }

  /** Charges CS bytes to the account at ACCT, or takes the slow path over a cap. */
  private charge(): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    const over = (): ExpressionRef =>
      m.i32.or(
        m.i32.gt_u(
          m.i32.add(m.i32.wrap(m.i64.shr_u(get(LIVE), m.i64.const(32))), this.i32(1)),
          this.ld(FA.oaCapObjects, get(ACCT)),
        ),
        m.i64.gt_u(
          m.i64.add(m.i64.extend_u(m.i32.wrap(get(LIVE))), m.i64.extend_u(get(CS))),
          m.i64.extend_u(this.ld(FA.oaCapBytes, get(ACCT))),
        ),
      );
    const d = this.set(D, m.i64.or(m.i64.const(1n << 32n), m.i64.extend_u(get(CS))));
    if (this.shared) {
      // as frame-alloc.ts charge(): add, then take it back over a cap
      return [
        d,
        this.set(LIVE, this.add64(get(ACCT), get(D), true)),
        m.if(
          over(),
          m.block(null, [m.drop(m.i64.atomic.rmw.sub(0, get(ACCT), get(D))), this.slow()]),
        ),
      ];
    }
    return [
      d,
      this.set(LIVE, m.i64.load(0, 8, get(ACCT))),
      this.slowIf(over()),
      m.i64.store(0, 8, get(ACCT), m.i64.add(get(LIVE), get(D))),
    ];
  }

  /** The slot index of offset OFF in span SPAN (frame-alloc.ts slotIndex, without the checks). */
  private slotIndex(): ExpressionRef {
    const m = this.m;
    return m.i32.wrap(
      m.i64.shr_u(
        m.i64.mul(
          m.i64.extend_u(this.get(OFF)),
          m.i64.extend_u(this.ld(FA.spRecip, this.get(SPAN))),
        ),
        m.i64.const(32),
      ),
    );
  }

  /**
   * Zeroes the (SZ + 7) & ~7 bytes at P (16-aligned) from byte `from` (a multiple of 16) on:
   * 16 bytes a store, then 8 if left.
   */
  private zero(from: number): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    const z = new Array<number>(16).fill(0);
    return [
      this.set(N, m.i32.and(m.i32.add(get(SZ), this.i32(7)), this.i32(~7))),
      this.set(E, m.i32.add(get(P), m.i32.and(get(N), this.i32(~15)))),
      this.set(Q, m.i32.add(get(P), this.i32(from))),
      m.block(this.zeroLabel, [
        m.loop(
          `${this.zeroLabel}_loop`,
          m.block(null, [
            m.br(this.zeroLabel, m.i32.ge_u(get(Q), get(E))),
            m.v128.store(0, 16, get(Q), m.v128.const(z)),
            this.set(Q, m.i32.add(get(Q), this.i32(16))),
            m.br(`${this.zeroLabel}_loop`),
          ]),
        ),
      ]),
      m.if(m.i32.and(get(N), this.i32(8)), m.i64.store(0, 8, get(E), m.i64.const(0))),
    ];
  }

  /**
   * A new frame's header at P, written whole (the zeroing skipped it): deadline 0, seq, flags
   * 0, owner, parent 0, size, magic.
   */
  private header(): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    const seqP = (): ExpressionRef => m.i32.add(get(ST), this.i32(FA.stSeq));
    const next = (): ExpressionRef =>
      this.shared
        ? m.i32.add(m.i32.atomic.rmw.add(0, seqP(), this.i32(1)), this.i32(1))
        : m.i32.add(this.ld(0, seqP()), this.i32(1));
    const out: ExpressionRef[] = [this.set(ST, this.ctrl(CTRL_ALLOC_STATE)), this.set(N, next())];
    if (!this.shared) out.push(m.i32.store(0, 4, seqP(), get(N)));
    // 0 means "no frame": skip it
    out.push(
      m.if(
        m.i32.eqz(get(N)),
        this.shared
          ? this.set(N, next())
          : m.block(null, [this.set(N, this.i32(1)), m.i32.store(0, 4, seqP(), this.i32(1))]),
      ),
      // two fields a store, aligned: a later load of one field reads within one store
      m.i64.store(0, 8, get(P), m.i64.const(0)),
      m.i64.store(8, 8, get(P), m.i64.extend_u(get(N))),
      m.i64.store(16, 8, get(P), m.i64.extend_u(get(OWN))),
      m.i64.store(
        24,
        8,
        get(P),
        this.constSize !== undefined
          ? m.i64.const((BigInt(CORO_MAGIC) << 32n) | BigInt(this.constSize))
          : m.i64.or(
              m.i64.and(this.r1(), m.i64.const(0xffffffff)),
              m.i64.const(BigInt(CORO_MAGIC) << 32n),
            ),
      ),
    );
    return out;
  }

  // ---- free ----

  /**
   * SPAN, IDX, SZ (slot bytes) and E (owner entry) of object P when P starts a slot of a small
   * span in the region (ST: the state block); anything else takes the slow path.
   */
  private smallSlot(trusted = false): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    const out: ExpressionRef[] = [
      // in the region, in a small span (anything else: the runtime module counts or serves it)
      this.set(ST, this.ctrl(CTRL_ALLOC_STATE)),
      this.set(OFF, m.i32.sub(get(P), this.ld(FA.stHeapStart, get(ST)))),
    ];
    if (!trusted) {
      out.push(
        this.slowIf(
          m.i32.ge_u(
            get(OFF),
            m.i32.sub(this.ld(FA.stHeapEnd, get(ST)), this.ld(FA.stHeapStart, get(ST))),
          ),
        ),
      );
    }
    out.push(
      this.slowIf(
        m.i32.ne(
          m.i32.load8_u(
            0,
            1,
            m.i32.add(
              this.ld(FA.stSpanTable, get(ST)),
              m.i32.shr_u(get(OFF), this.i32(FA.spanShift)),
            ),
          ),
          this.i32(FA.kindSmall),
        ),
      ),
      this.set(SPAN, m.i32.sub(get(P), m.i32.and(get(OFF), this.i32(SPAN_MASK)))),
      // a slot start
      this.set(
        OFF,
        m.i32.sub(m.i32.and(get(OFF), this.i32(SPAN_MASK)), this.ld(FA.spData, get(SPAN))),
      ),
      this.set(IDX, this.slotIndex()),
      this.set(SZ, this.ld(FA.spSize, get(SPAN))),
    );
    if (!trusted) {
      out.push(
        this.slowIf(
          m.i32.or(
            m.i32.ge_u(get(IDX), this.ld(FA.spNslots, get(SPAN))),
            m.i32.ne(m.i32.mul(get(IDX), get(SZ)), get(OFF)),
          ),
        ),
      );
    }
    out.push(
      this.set(
        E,
        m.i32.add(get(SPAN), m.i32.add(this.i32(FA.spanHdr), m.i32.shl(get(IDX), this.i32(1)))),
      ),
    );
    return out;
  }

  /**
   * P = r1 - CORO_HDR_SIZE when r1 is a live coroutine frame of at least `need` bytes (16: the
   * tokens; coro.ts frameOk: frame-alloc.ts coro_frame_check); anything else, large frames
   * included, takes the slow path.
   */
  liveFrame(need = 16): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    return [
      this.slowIf(
        m.i64.ge_u(
          m.i64.sub(this.r1(), m.i64.const(NULL_GUARD_END + CORO_HDR_SIZE)),
          m.i64.const(0x1_0000_0000 - NULL_GUARD_END - CORO_HDR_SIZE),
        ),
      ),
      this.set(P, m.i32.sub(m.i32.wrap(this.r1()), this.i32(CORO_HDR_SIZE))),
      ...this.smallSlot(),
      this.slowIf(m.i32.eqz(m.i32.load16_u(0, 2, get(E)))),
      this.slowIf(m.i32.le_u(get(SZ), this.i32(CORO_HDR_SIZE))),
      this.slowIf(m.i32.ne(this.ld(CORO_HDR_SIZE - 4, get(P)), this.i32(CORO_MAGIC))),
      this.slowIf(m.i32.lt_u(this.ld(CORO_HDR_SIZE - 8, get(P)), this.i32(need))),
    ];
  }

  /** `bpf_coro_detach(frame)`: the runtime owns the frame (CORO_F_DETACHED). */
  private detach(): ExpressionRef[] {
    const m = this.m;
    const flags = (): ExpressionRef =>
      m.i32.add(this.get(P), this.i32(CORO_HDR_SIZE + CORO_HDR.flags));
    return [
      ...this.liveFrame(),
      this.shared
        ? m.drop(m.i32.atomic.rmw.or(0, flags(), this.i32(CORO_F_DETACHED)))
        : m.i32.store(0, 4, flags(), m.i32.or(this.ld(0, flags()), this.i32(CORO_F_DETACHED))),
      this.ret(m.i64.const(0)),
    ];
  }

  /**
   * `bpf_coro_done(frame)`: nothing to do for the frame the runtime's resume loop runs, a frame
   * the program still owns or one a coroutine awaits; otherwise (it defers the frame) and for
   * anything that is not a live frame, the runtime module. Every way out but the deferral
   * returns 0 and changes nothing, so the order of the tests is free: the frame the resume
   * loop runs (a Task's final suspend) is told first, before the live-frame check (a value
   * above 4 GiB or 0 never equals it, and the runtime module returns 0 for those too).
   */
  private done(): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    // r0 = 0 when `cond` (a br_if with a value leaves it when not taken: dropped)
    const zeroIf = (cond: ExpressionRef): ExpressionRef =>
      m.drop(m.br(this.doneLabel, cond, m.i64.const(0)));
    return [
      zeroIf(m.i64.eq(this.r1(), m.i64.extend_u(this.ctrl(CTRL_CORO_CURRENT)))),
      ...this.liveFrame(),
      zeroIf(
        m.i32.eqz(
          m.i32.and(this.ld(CORO_HDR_SIZE + CORO_HDR.flags, get(P)), this.i32(CORO_F_DETACHED)),
        ),
      ),
      zeroIf(this.ld(CORO_HDR_SIZE + CORO_HDR.parent, get(P))),
      this.slow(),
    ];
  }

  /** `bpf_obj_drop_impl(p)` or `bpf_coro_frame_free(frame)`. */
  private free(coro: boolean): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    // a frame the verifier proved live: only whether it is small (a slot) is asked
    const trusted = coro && this.provenLive;
    const out: ExpressionRef[] = [];
    if (!trusted) {
      out.push(
        this.slowIf(
          coro
            ? m.i64.ge_u(
                m.i64.sub(this.r1(), m.i64.const(CORO_HDR_SIZE)),
                m.i64.const(0x1_0000_0000 - CORO_HDR_SIZE),
              )
            : m.i64.gt_u(this.r1(), m.i64.const(0xffffffff)),
        ),
      );
    }
    out.push(
      this.set(P, m.i32.sub(m.i32.wrap(this.r1()), this.i32(coro ? CORO_HDR_SIZE : 0))),
      ...this.smallSlot(trusted),
      this.set(
        CE,
        m.i32.add(
          this.ctrl(CTRL_ALLOC_CACHE),
          m.i32.shl(this.ld(FA.spClass, get(SPAN)), this.i32(4)),
        ),
      ),
    );
    if (coro && !trusted) {
      // a live frame: live entry, a slot bigger than the header, the magic (then cleared)
      out.push(
        this.slowIf(m.i32.eqz(m.i32.load16_u(0, 2, get(E)))),
        this.slowIf(m.i32.le_u(get(SZ), this.i32(CORO_HDR_SIZE))),
        this.slowIf(m.i32.ne(this.ld(CORO_HDR_SIZE - 4, get(P)), this.i32(CORO_MAGIC))),
      );
    }
    if (this.shared) {
      // sending the object home or spilling to the depot: the runtime module (frame-alloc.ts
      // cacheFree); decided before anything changes
      out.push(
        this.set(N, this.ld(FA.ceCount, get(CE))),
        this.slowIf(
          m.i32.or(
            m.i32.and(
              m.i32.ne(this.ld(FA.spWorker, get(SPAN)), this.ctrl(CTRL_ALLOC_WORKER)),
              m.i32.ge_u(m.i32.mul(get(N), get(SZ)), this.i32(FA.cacheForeignBytes)),
            ),
            m.i32.gt_u(
              m.i32.mul(m.i32.add(get(N), this.i32(1)), get(SZ)),
              this.i32(FA.cacheSpillBytes),
            ),
          ),
        ),
      );
    }
    if (coro) out.push(m.i32.store(CORO_HDR_SIZE - 4, 4, get(P), this.i32(0)));
    out.push(
      // clear the owner entry; 0 already: a double free, counted
      this.set(
        OWN,
        this.shared
          ? m.i32.atomic.rmw16_u.xchg(0, get(E), this.i32(0))
          : m.i32.load16_u(0, 2, get(E)),
      ),
    );
    if (!this.shared) out.push(m.i32.store16(0, 2, get(E), this.i32(0)));
    const double = this.shared
      ? m.drop(m.i32.atomic.rmw.add(0, m.i32.add(get(ST), this.i32(FA.stDouble)), this.i32(1)))
      : m.i32.store(FA.stDouble, 4, get(ST), m.i32.add(this.ld(FA.stDouble, get(ST)), this.i32(1)));
    out.push(
      m.if(m.i32.eqz(get(OWN)), m.block(null, [double, this.ret(m.i64.const(0))])),
      // uncharge the owner it was charged to
      this.add64(
        m.i32.add(
          this.ctrl(CTRL_ALLOC_OWNERS),
          m.i32.shl(m.i32.sub(get(OWN), this.i32(1)), this.i32(4)),
        ),
        m.i64.sub(m.i64.const(0), m.i64.or(m.i64.const(1n << 32n), m.i64.extend_u(get(SZ)))),
        false,
      ),
    );
    if (this.shared) {
      out.push(
        m.i32.store(FA.ceCount, 4, get(CE), m.i32.add(this.ld(FA.ceCount, get(CE)), this.i32(1))),
      );
    }
    out.push(
      // push onto this worker's cache
      m.i32.store(0, 4, get(P), this.ld(FA.ceHead, get(CE))),
      m.i32.store(FA.ceHead, 4, get(CE), get(P)),
    );
    if (coro) {
      // done (resume token 0) or destroyed early
      const frame = m.i32.add(get(P), this.i32(CORO_HDR_SIZE));
      out.push(
        m.if(
          m.i64.eqz(m.i64.load(0, 8, frame)),
          this.countCoro(CORO_CTL.completed),
          this.countCoro(CORO_CTL.destroyed),
        ),
      );
    }
    out.push(this.ret(m.i64.const(0)));
    return out;
  }

  // ---- bpf_coro_defer ----

  /** `bpf_coro_defer(frame)`: onto this worker's deferred ring. */
  private defer(): ExpressionRef[] {
    const m = this.m;
    const get = (l: number): ExpressionRef => this.get(l);
    const ctrl = (): ExpressionRef => m.global.get('ctrl', this.b.i32);
    return [
      // a coroutine header inside memory (coro.ts headerOk); anything else: counted there
      this.slowIf(m.i64.lt_u(this.r1(), m.i64.const(NULL_GUARD_END + CORO_HDR_SIZE))),
      this.slowIf(
        m.i64.gt_u(
          m.i64.add(this.r1(), m.i64.const(16)),
          m.i64.shl(m.i64.extend_u(m.memory.size()), m.i64.const(16)),
        ),
      ),
      this.set(P, m.i32.sub(m.i32.wrap(this.r1()), this.i32(CORO_HDR_SIZE))),
      this.slowIf(m.i32.ne(this.ld(CORO_HDR_SIZE - 4, get(P)), this.i32(CORO_MAGIC))),
      // to the ready queue instead, or the ring is full: the runtime module
      this.set(Q, this.ld(CTRL_DEFER_TAIL, ctrl())),
      this.slowIf(this.ld(0, this.i32(CTL + CORO_CTL.deferToReady))),
      this.slowIf(
        m.i32.ge_u(m.i32.sub(get(Q), this.ld(CTRL_DEFER_HEAD, ctrl())), this.i32(DEFER_RING_CAP)),
      ),
      this.set(
        E,
        m.i32.add(
          this.ld(CTRL_DEFER_RING, ctrl()),
          m.i32.shl(m.i32.and(get(Q), this.i32(DEFER_RING_CAP - 1)), this.i32(3)),
        ),
      ),
      m.i32.store(0, 4, get(E), m.i32.add(get(P), this.i32(CORO_HDR_SIZE))),
      m.i32.store(4, 4, get(E), this.ld(8, get(P))),
      m.i32.store(CTRL_DEFER_TAIL, 4, ctrl(), m.i32.add(get(Q), this.i32(1))),
      this.countCoro(CORO_CTL.deferred),
      this.ret(m.i64.const(0)),
    ];
  }
}

/**
 * The size class of a request of 1..FRAME_ALLOC.maxSmall bytes, as the runtime module's
 * `classOf` (runtime/wasm/frame-alloc.ts): 16, 32, 48, 64, then 3·2^(b-1) and 2^(b+1).
 */
export function sizeClassOf(size: number): number {
  if (size <= 64) return (size - 1) >> 4;
  const b = 31 - Math.clz32(size - 1);
  return 4 + ((b - 6) << 1) + (size > 3 << (b - 1) ? 1 : 0);
}

/** Bytes of a slot of class `c` (frame-alloc.ts `classSize`). */
export function classBytes(c: number): number {
  if (c < 4) return (c + 1) << 4;
  const b = 6 + ((c - 4) >> 1);
  return (c & 1) !== 0 ? 2 << b : 3 << (b - 1);
}
