/**
 * Unit tests of src/loader/jump-tables.ts: tracing a table's lddw to the gotox that consumes
 * it, and the union fallback when the trace is broken.
 */

import { describe, expect, it } from 'vitest';
import { insn, type Insn } from '../../../../src/isa/insn.js';
import { traceJumpTables } from '../../../../src/loader/jump-tables.js';

const lddw = (dst: number): Insn[] => [insn(0x18, dst, 0, 0, 0), insn(0, 0, 0, 0, 0)];
const addX = (dst: number, src: number): Insn => insn(0x0f, dst, src, 0, 0);
const movX = (dst: number, src: number): Insn => insn(0xbf, dst, src, 0, 0);
const ldxdw = (dst: number, src: number): Insn => insn(0x79, dst, src, 0, 0);
const gotox = (reg: number): Insn => insn(0x0d, reg, 0, 0, 0);
const lsh = (dst: number, k: number): Insn => insn(0x67, dst, 0, 0, k);
const ja = (off: number): Insn => insn(0x05, 0, 0, off, 0);
const EXIT = insn(0x95, 0, 0, 0, 0);

describe('traceJumpTables', () => {
  it("follows clang's lddw, add, load, gotox sequence", () => {
    // 0: r2 <<= 3; 1: r3 = table; 3: r3 += r2; 4: r2 = *(u64 *)(r3 + 0); 5: gotox r2
    const code = [lsh(2, 3), ...lddw(3), addX(3, 2), ldxdw(2, 3), gotox(2), EXIT];
    expect(traceJumpTables(code, 0, code.length, new Map([[1, 0x40]]))).toEqual(
      new Map([[5, [0x40]]]),
    );
  });

  it('follows the table through a register copy and an index added the other way round', () => {
    const code = [...lddw(4), movX(5, 4), addX(2, 5), ldxdw(1, 2), gotox(1), EXIT];
    expect(traceJumpTables(code, 0, code.length, new Map([[0, 0]]))).toEqual(new Map([[5, [0]]]));
  });

  it('gives each gotox the table its own trace reaches', () => {
    const first = [...lddw(3), addX(3, 2), ldxdw(2, 3), gotox(2)];
    const second = [...lddw(4), addX(4, 1), ldxdw(1, 4), gotox(1)];
    const code = [...first, ...second, EXIT];
    const loads = new Map([
      [0, 0x10],
      [5, 0x80],
    ]);
    expect(traceJumpTables(code, 0, code.length, loads)).toEqual(
      new Map([
        [4, [0x10]],
        [9, [0x80]],
      ]),
    );
  });

  it('falls back to the union of the function tables when no trace reaches a gotox', () => {
    // The table address is loaded, then an unconditional jump: the straight-line trace stops.
    const code = [...lddw(3), ja(0), addX(3, 2), ldxdw(2, 3), gotox(2), ...lddw(6), EXIT];
    const loads = new Map([
      [0, 0x10],
      [7, 0x20],
    ]);
    expect(traceJumpTables(code, 0, code.length, loads)).toEqual(new Map([[5, [0x10, 0x20]]]));
  });

  it('stops the trace when the register is overwritten', () => {
    const code = [...lddw(3), insn(0xb7, 3, 0, 0, 0), ldxdw(2, 3), gotox(2), ...lddw(6), EXIT];
    const loads = new Map([
      [0, 8],
      [5, 16],
    ]);
    expect(traceJumpTables(code, 0, code.length, loads)).toEqual(new Map([[4, [8, 16]]]));
  });
});
