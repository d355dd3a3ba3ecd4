/**
 * Which jump table each `gotox` uses. clang-22 lowers a switch to
 *
 * ```
 * r3 = BPF.JT.1.0 ll        ; lddw of the table (R_BPF_64_64 against .jumptables)
 * r3 += r2                  ; + index * 8
 * r2 = *(u64 *)(r3 + 0x0)   ; the entry
 * gotox r2
 * ```
 *
 * `traceJumpTables` follows each table lddw forward along the fall-through path (through
 * `mov`, `add`, and the u64 load that reads the entry) until the gotox that consumes the
 * entry, a `ja`/`exit`, or the end of the function. A gotox no trace reaches gets the union of
 * its function's tables, a sound over-approximation.
 *
 * Called from: the linker (link.ts). Works on section slots of one function; bounded by its
 * length per lddw.
 */

import type { Insn } from '../isa/insn.js';
import { CALL, CALLX, EXIT, GOTOX, JA, JA32, LD_DW_IMM } from '../isa/opcodes.js';
import { lookupOp } from '../isa/table.js';

const MOV64_X = 0xbf;
const ADD64_X = 0x0f;
const ADD64_K = 0x07;
const LDX_DW = 0x79;

/** What a register holds: the address of table `offset`, or an entry read from it. */
interface Held {
  readonly offset: number;
  readonly entry: boolean;
}

/**
 * For each gotox in slots `[start, end)`: the offsets (in `.jumptables`) of the tables it may
 * use. `loads` maps each table lddw's slot to its table offset.
 */
export function traceJumpTables(
  insns: readonly Insn[],
  start: number,
  end: number,
  loads: ReadonlyMap<number, number>,
): Map<number, number[]> {
  const reached = new Map<number, Set<number>>();
  for (const [slot, offset] of loads) {
    const hit = traceOne(insns, slot, end, offset);
    if (hit !== undefined) {
      const set = reached.get(hit) ?? new Set<number>();
      set.add(offset);
      reached.set(hit, set);
    }
  }
  const all = [...new Set(loads.values())].sort((a, b) => a - b);
  const out = new Map<number, number[]>();
  for (let s = start; s < end; s++) {
    const i = insns[s] as Insn;
    if (i.code === LD_DW_IMM) s++;
    else if (i.code === GOTOX) {
      const set = reached.get(s);
      out.set(s, set === undefined ? all : [...set].sort((a, b) => a - b));
    }
  }
  return out;
}

/** The gotox slot the table loaded at `slot` reaches, if the straight-line trace finds one. */
function traceOne(
  insns: readonly Insn[],
  slot: number,
  end: number,
  offset: number,
): number | undefined {
  const first = insns[slot] as Insn;
  const regs = new Map<number, Held>([[first.dst, { offset, entry: false }]]);
  for (let s = slot + 2; s < end && regs.size > 0; s++) {
    const i = insns[s] as Insn;
    const src = regs.get(i.src);
    const dst = regs.get(i.dst);
    switch (i.code) {
      case GOTOX:
        if (dst?.entry === true) return s;
        break;
      case MOV64_X:
        if (i.off === 0 && src !== undefined) regs.set(i.dst, src);
        else regs.delete(i.dst);
        break;
      case ADD64_X:
        if (src !== undefined && dst === undefined && !src.entry) regs.set(i.dst, src);
        else if (!(dst !== undefined && src === undefined && !dst.entry)) regs.delete(i.dst);
        break;
      case ADD64_K:
        if (dst?.entry === true) regs.delete(i.dst);
        break;
      case LDX_DW:
        if (src !== undefined && !src.entry) regs.set(i.dst, { offset, entry: true });
        else regs.delete(i.dst);
        break;
      case LD_DW_IMM:
        regs.delete(i.dst);
        s++;
        break;
      case CALL:
      case CALLX:
        for (let r = 0; r <= 5; r++) regs.delete(r);
        break;
      case EXIT:
      case JA:
      case JA32:
        return undefined;
      default:
        clobber(regs, i);
    }
  }
  return undefined;
}

/** Forgets registers an instruction may write (dst of ALU and loads, r0/src of atomics). */
function clobber(regs: Map<number, Held>, i: Insn): void {
  const info = lookupOp(i.code, i.off, i.imm);
  switch (info?.kind) {
    case 'alu':
    case 'movsx':
    case 'end':
    case 'ldx':
    case 'ldxsx':
      regs.delete(i.dst);
      break;
    case 'atomic':
      regs.delete(0);
      regs.delete(i.src);
      break;
    case 'ldabs':
    case 'ldind':
      regs.delete(0);
      break;
    default:
      if (info === undefined) regs.delete(i.dst);
  }
}
