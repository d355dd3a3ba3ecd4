/**
 * Path states and pruning (src/verifier/states.ts): copies, the `print_verifier_state` line,
 * `regsafe` / `stacksafe` / `refsafe` / `statesEqual` (a wider old state prunes a narrower
 * current one, never the reverse; id maps stay one-to-one; NOT_INIT and imprecise scalars in
 * old match anything) and the explored-states store with its counters.
 */

import { describe, expect, it } from 'vitest';
import {
  regBoundsSync,
  SCALAR_UNKNOWN,
  scalarCopy,
  type Scalar,
} from '../../../../src/verifier/bounds.js';
import { tnumRange } from '../../../../src/verifier/tnum.js';
import {
  regConst,
  regNotInit,
  regPtr,
  regScalar,
  regUnknownScalar,
  regWith,
  type MapInfo,
  type RegState,
} from '../../../../src/verifier/reg-state.js';
import { writeStack } from '../../../../src/verifier/stack.js';
import {
  copyState,
  curFunc,
  ExploredStates,
  IdMap,
  initFuncState,
  initVerifierState,
  regsafe,
  statesEqual,
  updateBranchCounts,
  verifierStateStr,
  type VerifierState,
} from '../../../../src/verifier/states.js';

const MAP: MapInfo = { keySize: 4, valueSize: 8, maxEntries: 1, type: 2, id: 7 };

function range(lo: bigint, hi: bigint): Scalar {
  const b = scalarCopy(SCALAR_UNKNOWN);
  b.varOff = tnumRange(lo, hi);
  b.umin = lo;
  b.umax = hi;
  regBoundsSync(b);
  return b;
}

const precise = (s: Scalar): RegState => regWith(regScalar(s), { precise: true });

function withReg(regno: number, reg: RegState, base = initVerifierState()): VerifierState {
  const s = copyState(base);
  curFunc(s).regs[regno] = reg;
  return s;
}

const safe = (old: RegState, cur: RegState): boolean => regsafe(old, cur, new IdMap());

describe('path states', () => {
  it('starts with R1=ctx and R10=fp0 and prints like the kernel', () => {
    const s = initVerifierState();
    expect(verifierStateStr(s)).toBe(' R1=ctx() R10=fp0');
    const f = initFuncState(1, 5, 1);
    expect(f.regs[10]).toMatchObject({ type: 'PTR_TO_STACK', frameno: 1 });
  });

  it('prints registers, stack slots, refs and inner frames', () => {
    const s = withReg(2, regWith(regPtr('PTR_TO_STACK', { off: -8 }), { live: 4 }));
    writeStack(curFunc(s).stack, -8, 8, { misc: true });
    writeStack(curFunc(s).stack, -16, 8, { reg: regPtr('PTR_TO_CTX') });
    s.refs.push({ type: 'REF_TYPE_PTR', id: 3, insnIdx: 4, ptr: 0 });
    expect(verifierStateStr(s)).toBe(
      ' R1=ctx() R2_w=fp-8 R10=fp0 fp-8_w=mmmmmmmm fp-16_w=ctx() refs=3',
    );
    const inner = copyState(s);
    inner.frames.push(initFuncState(1, 3, 1));
    inner.curframe = 1;
    expect(verifierStateStr(inner)).toBe(' frame1: R10=fp0 refs=3');
  });

  it('copies cheaply without sharing mutable arrays', () => {
    const a = initVerifierState();
    const b = copyState(a);
    curFunc(b).regs[0] = regConst(1);
    writeStack(curFunc(b).stack, -8, 8, { misc: true });
    b.refs.push({ type: 'REF_TYPE_PTR', id: 1, insnIdx: 0, ptr: 0 });
    expect(curFunc(a).regs[0]?.type).toBe('NOT_INIT');
    expect(curFunc(a).stack.length).toBe(0);
    expect(a.refs.length).toBe(0);
    expect(curFunc(b).regs[1]).toBe(curFunc(a).regs[1]);
  });

  it('counts finished paths up the parent chain', () => {
    const root = initVerifierState();
    root.branches = 2;
    const child = copyState(root);
    child.parent = root;
    child.branches = 1;
    updateBranchCounts(child);
    expect([child.branches, root.branches]).toEqual([0, 1]);
    updateBranchCounts(root);
    expect(root.branches).toBe(0);
  });
});

describe('regsafe', () => {
  it('prunes a narrower precise scalar with a wider one and not the reverse', () => {
    expect(safe(precise(range(0n, 255n)), precise(range(10n, 20n)))).toBe(true);
    expect(safe(precise(range(10n, 20n)), precise(range(0n, 255n)))).toBe(false);
    expect(safe(precise(range(0n, 255n)), regConst(7))).toBe(true);
    expect(safe(precise(range(0n, 255n)), regConst(256))).toBe(false);
  });

  it('lets an imprecise old scalar match any scalar', () => {
    expect(safe(regScalar(range(10n, 20n)), regUnknownScalar())).toBe(true);
    expect(
      regsafe(regScalar(range(10n, 20n)), regUnknownScalar(), new IdMap(), 'RANGE_WITHIN'),
    ).toBe(false);
  });

  it('lets NOT_INIT in old match anything', () => {
    expect(safe(regNotInit(), regPtr('PTR_TO_CTX'))).toBe(true);
    expect(safe(regNotInit(), regUnknownScalar())).toBe(true);
    expect(safe(regPtr('PTR_TO_CTX'), regNotInit())).toBe(false);
  });

  it('never equates different pointer types or modifiers', () => {
    expect(safe(regPtr('PTR_TO_CTX'), regPtr('PTR_TO_STACK'))).toBe(false);
    expect(safe(regUnknownScalar(), regPtr('PTR_TO_CTX'))).toBe(false);
    const mv = regPtr('PTR_TO_MAP_VALUE', { map: MAP });
    expect(safe(regWith(mv, { maybeNull: true, id: 1 }), mv)).toBe(false);
    expect(safe(mv, regWith(mv, { map: { ...MAP, id: 8 } }))).toBe(false);
    expect(safe(mv, regWith(mv, { off: 4 }))).toBe(false);
  });

  it('accepts a map value whose variable offset is contained in old', () => {
    const mv = (s: Scalar): RegState => regPtr('PTR_TO_MAP_VALUE', { map: MAP, scalar: s });
    expect(safe(mv(range(0n, 7n)), mv(range(0n, 3n)))).toBe(true);
    expect(safe(mv(range(0n, 3n)), mv(range(0n, 7n)))).toBe(false);
  });

  it('needs at least old packet range and the same offset', () => {
    const pkt = (r: number, off = 0): RegState => regPtr('PTR_TO_PACKET', { range: r, off });
    expect(safe(pkt(8), pkt(14))).toBe(true);
    expect(safe(pkt(14), pkt(8))).toBe(false);
    expect(safe(pkt(8, 2), pkt(14))).toBe(false);
  });

  it('compares stack pointers exactly', () => {
    const fp = (off: number, frameno = 0): RegState => regPtr('PTR_TO_STACK', { off, frameno });
    expect(safe(fp(-8), fp(-8))).toBe(true);
    expect(safe(fp(-8), fp(-16))).toBe(false);
    expect(safe(fp(-8), fp(-8, 1))).toBe(false);
  });
});

describe('id mapping', () => {
  const orNull = (id: number): RegState =>
    regPtr('PTR_TO_MAP_VALUE', { maybeNull: true, id, map: MAP });

  it('requires registers sharing an id in old to share one in cur', () => {
    const old = withReg(7, orNull(1), withReg(6, orNull(1)));
    const same = withReg(7, orNull(4), withReg(6, orNull(4)));
    const split = withReg(7, orNull(5), withReg(6, orNull(4)));
    expect(statesEqual(old, same)).toBe(true);
    expect(statesEqual(old, split)).toBe(false);
    expect(statesEqual(split, old)).toBe(false);
  });

  it('pairs ids one-to-one and zero only with zero', () => {
    const m = new IdMap();
    expect(m.checkIds(1, 9)).toBe(true);
    expect(m.checkIds(1, 9)).toBe(true);
    expect(m.checkIds(2, 9)).toBe(false);
    expect(m.checkIds(1, 8)).toBe(false);
    expect(m.checkIds(0, 0)).toBe(true);
    expect(m.checkIds(0, 3)).toBe(false);
  });

  it('treats linked precise scalars as distinct from unlinked ones', () => {
    const a = regWith(precise(range(0n, 9n)), { id: 2 });
    const old = withReg(7, a, withReg(6, a));
    const linked = withReg(7, regWith(a, { id: 3 }), withReg(6, regWith(a, { id: 3 })));
    const unlinked = withReg(7, regWith(a, { id: 0 }), withReg(6, regWith(a, { id: 0 })));
    expect(statesEqual(old, linked)).toBe(true);
    expect(statesEqual(old, unlinked)).toBe(false);
    // check_scalar_ids: '0 vs unique id' pairs, but two id-less old regs cannot share one cur id.
    expect(statesEqual(unlinked, linked)).toBe(false);
    expect(statesEqual(withReg(6, regWith(a, { id: 0 })), withReg(6, regWith(a, { id: 3 })))).toBe(
      true,
    );
  });
});

describe('statesEqual', () => {
  it('prunes a state with a narrower register and not vice versa', () => {
    const wide = withReg(0, precise(range(0n, 100n)));
    const narrow = withReg(0, precise(range(5n, 6n)));
    expect(statesEqual(wide, narrow)).toBe(true);
    expect(statesEqual(narrow, wide)).toBe(false);
  });

  it('ignores registers outside liveRegs', () => {
    const a = withReg(0, regPtr('PTR_TO_CTX'));
    const b = withReg(0, regConst(1));
    expect(statesEqual(a, b)).toBe(false);
    expect(statesEqual(a, b, { liveRegs: 0x7ff & ~1 })).toBe(true);
  });

  it('compares stacks: MISC in old covers ZERO in cur, not the reverse', () => {
    const misc = initVerifierState();
    writeStack(curFunc(misc).stack, -8, 8, { misc: true });
    const zero = initVerifierState();
    writeStack(curFunc(zero).stack, -4, 4, { imm: 0n });
    writeStack(curFunc(zero).stack, -8, 4, { misc: true });
    expect(statesEqual(misc, zero)).toBe(true);
    expect(statesEqual(zero, misc)).toBe(false);
    // An aligned 8-byte zero store is a spilled scalar 0; all-MISC compares with it as an
    // imprecise unknown scalar (scalar_reg_for_stack).
    const spilledZero = initVerifierState();
    writeStack(curFunc(spilledZero).stack, -8, 8, { imm: 0n });
    expect(statesEqual(misc, spilledZero)).toBe(true);
  });

  it('compares spilled registers and requires used old slots in cur', () => {
    const spill = (r: RegState): VerifierState => {
      const s = initVerifierState();
      writeStack(curFunc(s).stack, -8, 8, { reg: r });
      return s;
    };
    expect(statesEqual(spill(precise(range(0n, 9n))), spill(regConst(3)))).toBe(true);
    expect(statesEqual(spill(regConst(3)), spill(precise(range(0n, 9n))))).toBe(true); // imprecise old
    expect(
      statesEqual(spill(regWith(regConst(3), { precise: true })), spill(precise(range(0n, 9n)))),
    ).toBe(false);
    expect(statesEqual(spill(regPtr('PTR_TO_CTX')), spill(regConst(0)))).toBe(false);
    expect(statesEqual(spill(regPtr('PTR_TO_CTX')), initVerifierState())).toBe(false);
    expect(statesEqual(initVerifierState(), spill(regPtr('PTR_TO_CTX')))).toBe(true);
    const misc = initVerifierState();
    writeStack(curFunc(misc).stack, -8, 8, { misc: true });
    expect(statesEqual(misc, spill(regConst(3)))).toBe(true);
  });

  it('requires the same references, frames and callsites', () => {
    const a = initVerifierState();
    const b = copyState(a);
    b.refs.push({ type: 'REF_TYPE_PTR', id: 1, insnIdx: 3, ptr: 0 });
    expect(statesEqual(a, b)).toBe(false);
    const c = copyState(a);
    c.refs.push({ type: 'REF_TYPE_PTR', id: 6, insnIdx: 9, ptr: 0 });
    expect(statesEqual(b, c)).toBe(true);
    const d = copyState(a);
    d.frames.push(initFuncState(1, 4, 1));
    d.curframe = 1;
    const e = copyState(a);
    e.frames.push(initFuncState(1, 8, 1));
    e.curframe = 1;
    expect(statesEqual(a, d)).toBe(false);
    expect(statesEqual(d, e)).toBe(false);
    expect(statesEqual(d, copyState(d))).toBe(true);
    const spec = copyState(a);
    spec.speculative = true;
    expect(statesEqual(spec, a)).toBe(false);
    expect(statesEqual(a, spec)).toBe(true);
  });
});

describe('ExploredStates', () => {
  it('finds a covering complete state and counts states', () => {
    const explored = new ExploredStates();
    const wide = withReg(0, precise(range(0n, 100n)));
    wide.branches = 0;
    expect(explored.find(5, wide)).toBeUndefined();
    expect(explored.add(5, wide)).toBe(true);
    expect(explored.find(5, withReg(0, precise(range(1n, 2n))))).toBe(wide);
    expect(explored.find(5, withReg(0, regPtr('PTR_TO_CTX')))).toBeUndefined();
    expect(explored.get(5)[0]).toMatchObject({ hitCnt: 1, missCnt: 1 });
    expect(explored.add(5, initVerifierState())).toBe(true);
    expect(explored.find(5, initVerifierState())).toBeUndefined(); // second entry still in progress
    expect([explored.totalStates, explored.peakStates, explored.maxStatesPerInsn]).toEqual([
      2, 2, 2,
    ]);
  });

  it('keeps at most the per-insn cap and evicts states that keep missing', () => {
    const explored = new ExploredStates({ maxStatesPerInsn: 1 });
    const ctx = withReg(0, regPtr('PTR_TO_CTX'));
    ctx.branches = 0;
    expect(explored.add(1, ctx)).toBe(true);
    // At the cap, a completed state makes room for the new one...
    const next = withReg(0, regPtr('PTR_TO_CTX'));
    expect(explored.add(1, next)).toBe(true);
    expect(explored.get(1).map((e) => e.state)).toEqual([next]);
    // ...but a state still being explored is kept.
    expect(explored.add(1, initVerifierState())).toBe(false);
    next.branches = 0;
    for (let i = 0; i < 4; i++) explored.find(1, withReg(0, regConst(i)));
    expect(explored.get(1).length).toBe(0);
    expect(explored.size).toBe(0);
    expect(explored.peakStates).toBe(1);
  });
});
