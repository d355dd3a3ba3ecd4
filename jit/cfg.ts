/**
 * Control flow of one BPF function for the JIT: basic blocks in layout order and, when the
 * CFG allows it, a plan of properly nested Wasm `block`s and `loop`s (a stackifier): every
 * forward jump exits a `block` that ends just before its target, every backward jump
 * continues a `loop` that starts at its target. BPF code is already in layout order, so this
 * is linear-ish work, where binaryen's Relooper is superlinear (notes/wasm-platform.md §3).
 * When no nesting exists (an irreducible CFG: a jump into the middle of a loop), `planNesting`
 * returns undefined and the caller falls back to the Relooper.
 *
 * With verifier facts, `buildCfg` takes the set of reachable slots and builds the CFG of those
 * only: unreachable slots are absent, a conditional jump one of whose successors is
 * unreachable becomes the unconditional edge to the other (the verifier proved the condition
 * constant there, as the kernel's `opt_hard_wire_dead_code_branches`), and an edge into
 * unreachable code becomes a `dead` terminator (the JIT emits `unreachable`).
 *
 * Pure data: no binaryen here.
 */

import type { Insn } from '../src/isa/insn.js';
import type { OpInfo } from '../src/isa/table.js';
import { jumpTarget, type Program, type Subprog } from '../src/program.js';

/** How a basic block ends. */
export type Terminator =
  | { readonly kind: 'fall' } // into the next block
  | { readonly kind: 'jump'; readonly target: number } // unconditional (ja, ja32)
  | { readonly kind: 'cond'; readonly idx: number; readonly target: number } // jmp or may_goto at idx
  | { readonly kind: 'gotox'; readonly idx: number; readonly targets: readonly number[] }
  | { readonly kind: 'exit'; readonly idx: number }
  | { readonly kind: 'dead' }; // control never gets past the block (proven by the verifier)

/** A straight run of slots `[start, end)` with one entry and one terminator. */
export interface BasicBlock {
  readonly id: number;
  readonly start: number;
  readonly end: number;
  readonly term: Terminator;
}

/** The blocks of one function, indexed by id (= layout order). */
export interface FuncCfg {
  readonly blocks: readonly BasicBlock[];
  /** Block id by its first slot. */
  readonly blockAt: ReadonlyMap<number, number>;
}

/** A nesting interval over block ids: `[start, end)`; loops continue at start, blocks exit to end. */
export interface Interval {
  readonly kind: 'block' | 'loop';
  readonly start: number;
  readonly end: number;
}

/** The targets of the gotox at `idx`: from the program's jump tables, else every slot of the function. */
export function gotoxTargets(prog: Program, sp: Subprog, idx: number): readonly number[] {
  const known = prog.gotoxTargets.get(idx);
  if (known !== undefined) return [...new Set(known)].sort((a, b) => a - b);
  const all: number[] = [];
  for (let i = sp.start; i < sp.end; i++) if (prog.ops[i] !== undefined) all.push(i);
  return all;
}

/**
 * Splits function `sp` of `prog` into basic blocks. With `live` (a slot → reachable test, for
 * slots that start an instruction), only reachable slots are in blocks.
 */
export function buildCfg(prog: Program, sp: Subprog, live?: (idx: number) => boolean): FuncCfg {
  const { insns, ops } = prog;
  const isLive = (idx: number): boolean =>
    idx >= sp.start && idx < sp.end && ops[idx] !== undefined && (live?.(idx) ?? true);
  if (!isLive(sp.start)) return { blocks: [], blockAt: new Map() };
  const leaders = new Set<number>([sp.start]);
  let afterDead = false;
  for (let idx = sp.start; idx < sp.end; idx++) {
    const info = ops[idx];
    if (info === undefined) continue;
    if (!isLive(idx)) {
      afterDead = true;
      continue;
    }
    if (afterDead) leaders.add(idx);
    afterDead = false;
    const i = insns[idx] as Insn;
    switch (info.kind) {
      case 'jmp':
      case 'may_goto':
      case 'ja':
      case 'ja32':
        leaders.add(jumpTarget(i, idx, info));
        leaders.add(idx + 1);
        break;
      case 'gotox':
        for (const t of gotoxTargets(prog, sp, idx)) leaders.add(t);
        leaders.add(idx + 1);
        break;
      case 'exit':
        leaders.add(idx + 1);
        break;
      default:
        break;
    }
  }
  const starts = [...leaders].filter(isLive).sort((a, b) => a - b);
  const blockAt = new Map<number, number>();
  starts.forEach((s, k) => blockAt.set(s, k));
  const blocks = starts.map((start, id): BasicBlock => {
    let end = start + 1;
    const next = starts[id + 1] ?? sp.end;
    while (end < next && (ops[end] === undefined || isLive(end))) end++;
    const term = terminatorOf(prog, sp, start, end);
    return {
      id,
      start,
      end,
      term: live === undefined ? term : pruneTerminator(term, end, sp.end, isLive),
    };
  });
  return { blocks, blockAt };
}

/** A terminator without its edges into unreachable slots (see the file comment). */
function pruneTerminator(
  t: Terminator,
  end: number,
  fnEnd: number,
  isLive: (idx: number) => boolean,
): Terminator {
  switch (t.kind) {
    case 'fall': // falling off the function's end stays a fall (the JIT reports it)
      return end >= fnEnd || isLive(end) ? t : { kind: 'dead' };
    case 'jump':
      return isLive(t.target) ? t : { kind: 'dead' };
    case 'cond': {
      const taken = isLive(t.target);
      const fall = isLive(end);
      if (taken && fall) return t;
      if (taken) return { kind: 'jump', target: t.target };
      return fall ? { kind: 'fall' } : { kind: 'dead' };
    }
    case 'gotox': {
      const targets = t.targets.filter(isLive);
      return targets.length > 0 ? { ...t, targets } : { kind: 'dead' };
    }
    case 'exit':
    case 'dead':
      return t;
  }
}

function terminatorOf(prog: Program, sp: Subprog, start: number, end: number): Terminator {
  let last = end - 1;
  if (prog.ops[last] === undefined && last > start) last--; // second slot of an lddw
  const info: OpInfo | undefined = prog.ops[last];
  const i = prog.insns[last] as Insn;
  if (info !== undefined && last >= start) {
    switch (info.kind) {
      case 'ja':
      case 'ja32':
        return { kind: 'jump', target: jumpTarget(i, last, info) };
      case 'jmp':
      case 'may_goto':
        return { kind: 'cond', idx: last, target: jumpTarget(i, last, info) };
      case 'gotox':
        return { kind: 'gotox', idx: last, targets: gotoxTargets(prog, sp, last) };
      case 'exit':
        return { kind: 'exit', idx: last };
      default:
        break;
    }
  }
  return { kind: 'fall' };
}

/** Block ids a block may continue to. A 'fall' off the last block has no successor. */
export function successors(cfg: FuncCfg, b: BasicBlock): number[] {
  const at = (slot: number): number => cfg.blockAt.get(slot) as number;
  const next = b.id + 1 < cfg.blocks.length ? [b.id + 1] : [];
  switch (b.term.kind) {
    case 'fall':
      return next;
    case 'jump':
      return [at(b.term.target)];
    case 'cond':
      return [...next, at(b.term.target)];
    case 'gotox':
      return b.term.targets.map(at);
    case 'exit':
    case 'dead':
      return [];
  }
}

/**
 * Plans properly nested intervals for the function, or returns undefined when the CFG is not
 * reducible in layout order. Intervals are sorted outermost first (by start, then by end descending).
 */
export function planNesting(cfg: FuncCfg): Interval[] | undefined {
  const n = cfg.blocks.length;
  // Loops: header h, extending to the last block that jumps back to h.
  const loopEnd = new Map<number, number>();
  const fwdSources = new Map<number, number[]>();
  for (const b of cfg.blocks) {
    for (const s of successors(cfg, b)) {
      if (s <= b.id) loopEnd.set(s, Math.max(loopEnd.get(s) ?? 0, b.id + 1));
      else if (s !== b.id + 1 || b.term.kind === 'gotox') {
        const list = fwdSources.get(s) ?? [];
        list.push(b.id);
        fwdSources.set(s, list);
      }
    }
  }
  // Make loops nest: a loop that starts inside another and ends after it stretches the outer one.
  const loops = [...loopEnd]
    .map(([start, end]) => ({ start, end }))
    .sort((a, b) => a.start - b.start);
  for (let changed = true; changed;) {
    changed = false;
    for (const a of loops) {
      for (const b of loops) {
        if (a.start < b.start && b.start < a.end && a.end < b.end) {
          a.end = b.end;
          changed = true;
        }
      }
    }
  }
  // A jump into a loop from outside it (not to its header) makes the CFG irreducible here.
  for (const b of cfg.blocks) {
    for (const s of successors(cfg, b)) {
      for (const l of loops) {
        if (s > l.start && s < l.end && (b.id < l.start || b.id >= l.end)) return undefined;
      }
    }
  }
  // Blocks: one per forward target, starting early enough to hold every source and to nest.
  const blocks: { start: number; end: number }[] = [];
  for (const [t, sources] of fwdSources) blocks.push({ start: Math.min(...sources), end: t });
  const all = (): { start: number; end: number }[] => [...loops, ...blocks];
  for (let changed = true, rounds = 0; changed; rounds++) {
    if (rounds > 4 * n + 16) return undefined;
    changed = false;
    for (const a of blocks) {
      for (const b of all()) {
        if (a === b) continue;
        // b starts before a and ends inside a: a must start at or before b.
        if (b.start < a.start && b.end > a.start && b.end < a.end) {
          a.start = b.start;
          changed = true;
        }
      }
    }
  }
  const intervals: Interval[] = [
    ...loops.map((l) => ({ kind: 'loop' as const, start: l.start, end: l.end })),
    ...blocks.map((b) => ({ kind: 'block' as const, start: b.start, end: b.end })),
  ].sort((a, b) => a.start - b.start || b.end - a.end || (a.kind === 'block' ? -1 : 1));
  // Verify proper nesting.
  const stack: Interval[] = [];
  for (const iv of intervals) {
    while (stack.length > 0 && (stack[stack.length - 1] as Interval).end <= iv.start) stack.pop();
    const top = stack[stack.length - 1];
    if (top !== undefined && iv.end > top.end) return undefined;
    stack.push(iv);
  }
  return intervals;
}
