/**
 * Static register liveness (kernel `compute_live_registers`, 6.15+): the registers each insn
 * may read before writing them, on some path to the end of its function, as a bit mask per
 * insn. State pruning compares only live registers (states.ts `liveRegs`): a dead register
 * cannot influence any later check.
 *
 * Called from: verifier.ts before the main pass.
 *
 * Invariants: uses are over-approximated (a helper call reads the arguments of its prototype,
 * all five when unknown; exit reads R0); defs are only the certain writes. R10 is always live.
 */

import { callxReg, type Insn } from '../isa/insn.js';
import { BPF_PSEUDO_CALL } from '../isa/opcodes.js';
import type { OpInfo } from '../isa/table.js';
import { jumpTarget, type Program } from '../program.js';
import { funcProto } from '../helper-protos.js';

const R0 = 1 << 0;
const ARGS = 0b111110;
const CALLER_SAVED = R0 | ARGS;
const FP = 1 << 10;

/** Use and def masks of one insn. */
function useDef(i: Insn, op: OpInfo): { use: number; def: number } {
  const d = 1 << i.dst;
  const s = 1 << i.src;
  switch (op.kind) {
    case 'alu':
      if (op.op === 'mov') return { use: op.source === 'reg' ? s : 0, def: d };
      return { use: d | (op.source === 'reg' && op.op !== 'neg' ? s : 0), def: d };
    case 'movsx':
      return { use: s, def: d };
    case 'end':
      return { use: d, def: d };
    case 'lddw':
      return { use: 0, def: d };
    case 'ldabs':
      return { use: 1 << 6, def: CALLER_SAVED };
    case 'ldind':
      return { use: (1 << 6) | s, def: CALLER_SAVED };
    case 'ldx':
    case 'ldxsx':
      return { use: s, def: d };
    case 'st':
      return { use: d, def: 0 };
    case 'stx':
      return { use: d | s, def: 0 };
    case 'atomic':
      if (op.op === 'cmpxchg') return { use: d | s | R0, def: R0 };
      return { use: d | s, def: op.fetch || op.op === 'xchg' ? s : 0 };
    case 'jmp':
      return { use: d | (op.source === 'reg' ? s : 0), def: 0 };
    case 'gotox':
      return { use: d, def: 0 };
    case 'call': {
      if (i.src === BPF_PSEUDO_CALL || i.src !== 0) return { use: ARGS, def: CALLER_SAVED };
      const proto = funcProto(i.imm);
      const n = proto === undefined ? 5 : Math.max(proto.args.length, 0);
      return { use: proto === undefined ? ARGS : ((1 << (n + 1)) - 2) & ARGS, def: CALLER_SAVED };
    }
    case 'callx':
      return { use: ARGS | (1 << callxReg(i)), def: CALLER_SAVED };
    case 'exit':
      return { use: R0, def: 0 };
    case 'ja':
    case 'ja32':
    case 'may_goto':
      return { use: 0, def: 0 };
  }
}

/** Successor slots of insn `idx` inside its function. */
function successors(prog: Program, idx: number, op: OpInfo): number[] {
  const i = prog.insns[idx] as Insn;
  const next = idx + (op.kind === 'lddw' ? 2 : 1);
  switch (op.kind) {
    case 'exit':
      return [];
    case 'ja':
    case 'ja32':
      return [jumpTarget(i, idx, op)];
    case 'jmp':
    case 'may_goto':
      return [next, jumpTarget(i, idx, op)];
    case 'gotox':
      return [...(prog.gotoxTargets.get(idx) ?? [])];
    default:
      return [next];
  }
}

/**
 * Registers live before each slot (bit r for Rr), by slot index; 0 for second lddw slots.
 *
 * @example
 * computeLiveRegs(assembleProgram('mov %r0, %r1\nexit'))[0] // 0b10000000010 (R1, R10)
 */
export function computeLiveRegs(prog: Program): Uint16Array {
  const n = prog.insns.length;
  const live = new Uint16Array(n);
  const use = new Uint16Array(n);
  const def = new Uint16Array(n);
  const succ: number[][] = new Array<number[]>(n);
  const preds: number[][] = Array.from({ length: n }, () => []);
  for (let idx = 0; idx < n; idx++) {
    const op = prog.ops[idx];
    if (op === undefined) {
      succ[idx] = [];
      continue;
    }
    const ud = useDef(prog.insns[idx] as Insn, op);
    use[idx] = ud.use;
    def[idx] = ud.def;
    succ[idx] = successors(prog, idx, op).filter((t) => t >= 0 && t < n);
    for (const t of succ[idx] as number[]) (preds[t] as number[]).push(idx);
  }
  const work: number[] = [];
  const queued = new Uint8Array(n);
  for (let idx = n - 1; idx >= 0; idx--) {
    if (prog.ops[idx] !== undefined) {
      work.push(idx);
      queued[idx] = 1;
    }
  }
  while (work.length > 0) {
    const idx = work.pop() as number;
    queued[idx] = 0;
    let out = 0;
    for (const t of succ[idx] as number[]) out |= live[t] as number;
    const inn = ((use[idx] as number) | (out & ~(def[idx] as number)) | FP) & 0xffff;
    if (inn === live[idx]) continue;
    live[idx] = inn;
    for (const p of preds[idx] as number[]) {
      if (queued[p] === 0) {
        queued[p] = 1;
        work.push(p);
      }
    }
  }
  return live;
}
