/**
 * Seeded fuzzing of the ELF loader: mutations of the checked-in clang objects
 * (test/fixtures/elf) go through `loadObject` and then `createProgram` on every program.
 *
 * Oracles:
 * 1. Nothing but a `BpfError` escapes (no RangeError, TypeError, stack overflow ...).
 * 2. No case hangs: each must finish well under a second (loops are bounded by section sizes).
 *
 * Mutations: flipped bits, truncations, random u32/u64 overwrites of the ELF header and of
 * section header fields (offsets, sizes, links, types), overwrites of symbol and relocation
 * entries, of the BTF / BTF.ext headers and type records, and byte splats inside a section.
 * Every case has its own seed, printed on failure; reproduce with `FUZZ_SEED=<seed>
 * FUZZ_CASES=1`. `FUZZ_CASES` scales the run (default 6000 cases).
 */

import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isBpfError } from '../../src/errors.js';
import { parseElf, type ElfFile } from '../../src/loader/elf.js';
import { loadObject } from '../../src/loader/object.js';
import { createProgram } from '../../src/program.js';
import { sourceLines } from '../../src/loader/types.js';
import { verifyProgram } from '../../src/verifier/verifier.js';
import { createPrng, type Prng } from '../helpers/prng.js';
import { FIXTURE_DIR, readFixture } from '../unit/src/loader/fixtures.js';

const MASTER_SEED = Number(process.env['FUZZ_SEED'] ?? 0xe1f5eed);
const CASES = Number(process.env['FUZZ_CASES'] ?? 6000);
const SLOW_CASE_MS = 1000;
const INTERESTING = [0, 1, 2, 7, 8, 0x18, 0x40, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

/** A fixture with the places worth aiming at. */
interface Target {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** File offsets of section headers. */
  readonly shdrs: readonly number[];
  /** [offset, size] of every section's contents. */
  readonly ranges: readonly (readonly [number, number])[];
  /** [offset, size] of the symbol table, relocation sections, .BTF and .BTF.ext. */
  readonly tables: readonly (readonly [number, number])[];
}

function targetOf(name: string): Target {
  const bytes = readFixture(name);
  const elf: ElfFile = parseElf(bytes);
  const shoff = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(40, true));
  const ranges = elf.sections
    .filter((s) => s.data.length > 0)
    .map((s) => [s.offset, s.data.length] as const);
  const tables = elf.sections
    .filter((s) => s.type === 2 || s.type === 9 || s.name === '.BTF' || s.name === '.BTF.ext')
    .map((s) => [s.offset, s.data.length] as const);
  return { name, bytes, shdrs: elf.sections.map((_, k) => shoff + 64 * k), ranges, tables };
}

function fixtures(): Target[] {
  const out: Target[] = [];
  for (const dir of ['xdp', 'coro', 'bench']) {
    for (const f of readdirSync(`${FIXTURE_DIR}${dir}`)
      .filter((x) => x.endsWith('.o'))
      .sort()) {
      out.push(targetOf(`${dir}/${f}`));
    }
  }
  return out;
}

function value32(rng: Prng, old: number): number {
  switch (rng.int(4)) {
    case 0:
      return rng.pick(INTERESTING);
    case 1:
      return (old + rng.int(65) - 32) >>> 0;
    case 2:
      return old ^ (1 << rng.int(32));
    default:
      return rng.next32();
  }
}

function put32(bytes: Uint8Array, off: number, rng: Prng): void {
  if (off < 0 || off + 4 > bytes.length) return;
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  v.setUint32(off, value32(rng, v.getUint32(off, true)), true);
}

function put64(bytes: Uint8Array, off: number, rng: Prng): void {
  if (off < 0 || off + 8 > bytes.length) return;
  const v = new DataView(bytes.buffer, bytes.byteOffset);
  v.setUint32(off, value32(rng, v.getUint32(off, true)), true);
  v.setUint32(off + 4, rng.bool(0.8) ? 0 : rng.pick(INTERESTING), true);
}

/** An offset inside [start, start + len), aligned to `align`. */
function within(rng: Prng, [start, len]: readonly [number, number], align: number): number {
  return start + Math.floor(rng.int(Math.max(1, len)) / align) * align;
}

/** Applies 1-3 mutations to a copy of `t.bytes`; returns it and a description. */
function mutate(rng: Prng, t: Target): { bytes: Uint8Array; what: string } {
  let bytes = t.bytes.slice();
  const what: string[] = [];
  for (let n = 1 + rng.int(3); n > 0 && bytes.length > 0; n--) {
    const kind = rng.int(8);
    switch (kind) {
      case 0: {
        const off = rng.int(bytes.length);
        bytes[off] = (bytes[off] as number) ^ (1 << rng.int(8));
        what.push(`flip@${off}`);
        break;
      }
      case 1: {
        const len = rng.bool() ? rng.int(bytes.length) : bytes.length - 1 - rng.int(64);
        bytes = bytes.slice(0, Math.max(0, len));
        what.push(`truncate@${len}`);
        break;
      }
      case 2: {
        const off = 4 * rng.int(16);
        put32(bytes, off, rng);
        what.push(`ehdr32@${off}`);
        break;
      }
      case 3: {
        // sh_name, sh_type, sh_link, sh_info (u32) or sh_offset, sh_size, sh_entsize (u64)
        const hdr = rng.pick(t.shdrs);
        const field = rng.pick([0, 4, 40, 44, 24, 32, 56, 8]);
        if (field >= 24 || field === 8) put64(bytes, hdr + field, rng);
        else put32(bytes, hdr + field, rng);
        what.push(`shdr@${hdr}+${field}`);
        break;
      }
      case 4: {
        if (t.tables.length === 0) break;
        const off = within(rng, rng.pick(t.tables), 4);
        put32(bytes, off, rng);
        what.push(`table32@${off}`);
        break;
      }
      case 5: {
        if (t.tables.length === 0) break;
        const off = within(rng, rng.pick(t.tables), 8);
        put64(bytes, off, rng);
        what.push(`table64@${off}`);
        break;
      }
      case 6: {
        const r = rng.pick(t.ranges);
        const off = within(rng, r, 1);
        const splat = rng.bytes(1 + rng.int(16));
        if (off < bytes.length) bytes.set(splat.subarray(0, bytes.length - off), off);
        what.push(`splat@${off}`);
        break;
      }
      default: {
        const r = rng.pick(t.ranges);
        const off = within(rng, r, 4);
        put32(bytes, off, rng);
        what.push(`data32@${off}`);
      }
    }
  }
  return { bytes, what: what.join(',') };
}

/** Loads and creates every program; returns what happened. Rethrows non-BpfErrors. */
function runCase(bytes: Uint8Array): 'loaded' | 'rejected' {
  try {
    const obj = loadObject(bytes);
    for (const p of obj.programs) {
      try {
        const prog = createProgram(p.insns, {
          name: p.name,
          type: p.type,
          funcNames: p.funcNames,
          gotoxTargets: p.gotoxTargets,
        });
        // Mutated objects through the verifier (no maps: map loads are rejected): a verdict
        // or a BpfError, never a crash.
        verifyProgram(prog, { insnLimit: 200, lineInfo: sourceLines(p) });
      } catch (e) {
        if (!isBpfError(e)) throw e;
      }
    }
    return 'loaded';
  } catch (e) {
    if (!isBpfError(e)) throw e;
    return 'rejected';
  }
}

describe('ELF loader fuzz', () => {
  const targets = fixtures();

  it('loads every fixture unmutated', () => {
    for (const t of targets) expect(runCase(t.bytes), t.name).toBe('loaded');
  });

  it(`lets only BpfErrors escape from ${CASES} seeded mutations (master seed ${MASTER_SEED})`, () => {
    console.log(`elf fuzz: master seed ${MASTER_SEED}, ${CASES} cases`);
    const master = createPrng(MASTER_SEED);
    const stats = { loaded: 0, rejected: 0, slowest: 0 };
    for (let k = 0; k < CASES; k++) {
      const seed = CASES === 1 ? MASTER_SEED : master.next32();
      const rng = createPrng(seed);
      const t = rng.pick(targets);
      const { bytes, what } = mutate(rng, t);
      const started = performance.now();
      try {
        stats[runCase(bytes)]++;
      } catch (e) {
        throw new Error(
          `elf fuzz case ${k} failed (seed ${seed}; reproduce with FUZZ_SEED=${seed} FUZZ_CASES=1)\n` +
            `object: ${t.name}, mutations: ${what}\n${String(e)}`,
          { cause: e },
        );
      }
      const ms = performance.now() - started;
      stats.slowest = Math.max(stats.slowest, ms);
      expect(ms, `case ${k} (seed ${seed}, ${t.name}, ${what}) took ${ms} ms`).toBeLessThan(
        SLOW_CASE_MS,
      );
    }
    expect(stats.loaded + stats.rejected).toBe(CASES);
    if (CASES >= 1000) {
      expect(stats.loaded).toBeGreaterThan(CASES / 10);
      expect(stats.rejected).toBeGreaterThan(CASES / 10);
    }
  });
});
