/**
 * Seeded fuzzing of the decoder, the program checks, the disassembler and the assembler.
 *
 * Oracles:
 * 1. Nothing but a `BpfError` escapes decodeInsns / checkInsns / createProgram / verifyProgram /
 *    assemble.
 * 2. `disassembleBytes` never throws at all, in any syntax.
 * 3. Round trip: for any whole number of slots, `assemble(disassembleBytes(bytes))` gives the
 *    same bytes back, and so does `assemble(disassemble(assemble(text)))` for any text that
 *    assembles.
 *
 * Inputs: random bytes, structured instructions drawn from the opcode table (mostly valid),
 * their mutations, random text, and mutated valid assembly lines (from the conformance files
 * when present). Every case has its own seed, printed on failure; reproduce with
 * `FUZZ_SEED=<seed> FUZZ_CASES=1`. `FUZZ_CASES` scales the run (default 20000 cases).
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { assemble, assembleProgram } from '../../src/asm/assembler.js';
import { parseDataFile } from '../../src/asm/data-file.js';
import { disassemble, disassembleBytes, type DisasmSyntax } from '../../src/asm/disassembler.js';
import { isBpfError } from '../../src/errors.js';
import { checkInsns, decodeInsns, encodeInsns, insn, type Insn } from '../../src/isa/insn.js';
import { OP_TABLE, type OpInfo } from '../../src/isa/table.js';
import { createProgram } from '../../src/program.js';
import { BPF_LOG_LEVEL2 } from '../../src/verifier/log.js';
import { verifyProgram } from '../../src/verifier/verifier.js';
import { conformanceDir, listDataFiles } from '../helpers/conformance.js';
import { createPrng, type Prng } from '../helpers/prng.js';

const MASTER_SEED = Number(process.env['FUZZ_SEED'] ?? 0x5eed1234);
const CASES = Number(process.env['FUZZ_CASES'] ?? 20_000);
const SYNTAXES: readonly DisasmSyntax[] = ['asm', 'llvm', 'kernel'];
const INTERESTING = [0, 1, -1, 2, 8, 16, 32, 64, 0x7fffffff, -0x80000000, 0xffff, -0x8000];

/** Runs `f`, returning what it threw if that is a BpfError; rethrows anything else. */
function onlyBpfErrors(what: string, f: () => void): void {
  try {
    f();
  } catch (e) {
    if (!isBpfError(e)) throw new Error(`${what} threw a non-BpfError: ${String(e)}`, { cause: e });
  }
}

function hexOf(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, k) => x === b[k]);
}

/** Slots for one instruction of `info`, with fields drawn to be valid most of the time. */
function randomSlots(rng: Prng, info: OpInfo): Insn[] {
  const reg = (): number => (rng.bool(0.97) ? rng.int(11) : rng.int(16));
  const imm = (): number => (rng.bool(0.5) ? rng.pick(INTERESTING) : rng.next32() | 0);
  const jmpOff = (): number => (rng.bool(0.8) ? rng.int(9) - 4 : (rng.next32() << 16) >> 16);
  let [dst, src, off, val] = [
    reg(),
    reg(),
    rng.bool(0.5) ? jmpOff() : rng.pick(INTERESTING),
    imm(),
  ];
  switch (info.kind) {
    case 'alu':
      off = info.off ?? 0;
      if (info.op === 'neg') [src, val] = [0, 0];
      else if (info.source === 'imm') src = 0;
      else val = 0;
      break;
    case 'movsx':
      [off, val] = [info.off, 0];
      break;
    case 'end':
      [src, off, val] = [0, 0, info.imm];
      break;
    case 'lddw':
      return [insn(info.code, dst, rng.int(7), 0, val), insn(0, 0, 0, 0, imm())];
    case 'ldabs':
      [dst, src, off] = [0, 0, 0];
      break;
    case 'ldind':
      [dst, off] = [0, 0];
      break;
    case 'ldx':
    case 'ldxsx':
    case 'stx':
      val = 0;
      break;
    case 'st':
      src = 0;
      break;
    case 'atomic':
      val = info.imm;
      break;
    case 'jmp':
      off = jmpOff();
      if (info.source === 'imm') src = 0;
      else val = 0;
      break;
    case 'ja':
    case 'may_goto':
      [dst, src, off, val] = [0, 0, jmpOff(), 0];
      break;
    case 'ja32':
      [dst, src, off, val] = [0, 0, 0, jmpOff()];
      break;
    case 'gotox':
      [src, off, val] = [0, 0, 0];
      break;
    case 'call':
      [dst, src] = [0, rng.int(3)];
      if (src !== 2) off = 0;
      if (src === 1) val = jmpOff();
      break;
    case 'callx':
      [src, off] = [0, 0];
      [dst, val] = rng.bool(0.8) ? [dst, 0] : [0, reg()];
      break;
    case 'exit':
      [dst, src, off, val] = [0, 0, 0, 0];
      break;
    default: {
      const never: never = info;
      return never;
    }
  }
  const out = insn(info.code, dst, src, off, val);
  if (rng.bool(0.95)) return [out];
  return [insn(out.code, out.dst, rng.int(16), rng.next32(), out.imm)];
}

/** A short random program of mostly valid instructions, usually ending in exit. */
function randomProgram(rng: Prng): Insn[] {
  const out: Insn[] = [];
  const n = 1 + rng.int(10);
  for (let k = 0; k < n; k++) out.push(...randomSlots(rng, rng.pick(OP_TABLE)));
  if (rng.bool(0.9)) out.push(insn(0x95, 0, 0, 0, 0));
  return out;
}

/** Flips, overwrites, inserts or deletes a few bytes. */
function mutateBytes(rng: Prng, bytes: Uint8Array): Uint8Array {
  const b = [...bytes];
  for (let k = 1 + rng.int(4); k > 0; k--) {
    const at = rng.int(b.length + 1);
    switch (rng.int(5)) {
      case 0:
        if (at < b.length) b[at] = (b[at] as number) ^ (1 << rng.int(8));
        break;
      case 1:
        if (at < b.length) b[at] = rng.int(256);
        break;
      case 2:
        b.splice(at, 0, ...rng.bytes(rng.bool() ? 8 : 1 + rng.int(7)));
        break;
      case 3:
        b.splice(at, rng.bool() ? 8 : 1 + rng.int(3));
        break;
      default:
        if (b.length >= 16) b.splice(at - (at % 8), 8, ...b.slice(0, 8));
    }
  }
  return new Uint8Array(b);
}

const ALPHABET = '%r0123456789abcdefx+-[],: #;/\t.\nlockfetchmovaddjeqcallexitlddw_$@"\\\u00e9';
const WORDS = [
  'lock',
  'fetch',
  'add',
  'mov32',
  'lddw',
  'call',
  'local',
  'kfunc',
  'exit',
  'ja',
  'jeq32',
  'map_value',
  'func',
  '.raw',
  '.invalid',
  '%r10',
  '%r11',
  '%r',
  '[',
  ']',
  ',',
  ':',
  '+',
  '-',
  '0x',
  '0xffffffffffffffffff',
  '-9223372036854775809',
  '4294967296',
  '+32768',
  'label:',
];

function randomText(rng: Prng): string {
  let s = '';
  for (let k = rng.int(60); k > 0; k--) s += rng.pick([...ALPHABET]);
  return s;
}

/** Mutates assembly text at character and token level. */
function mutateText(rng: Prng, text: string): string {
  let s = text;
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const at = rng.int(s.length + 1);
    switch (rng.int(5)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + rng.int(4));
        break;
      case 1:
        s = s.slice(0, at) + rng.pick([...ALPHABET]) + s.slice(at);
        break;
      case 2:
        s = `${s.slice(0, at)} ${rng.pick(WORDS)} ${s.slice(at)}`;
        break;
      case 3:
        s = s.replace(
          /-?(0x)?[0-9a-f]+/,
          String(rng.next32() * rng.pick([1, -1, 2 ** 20, 2 ** 33])),
        );
        break;
      default:
        s = s.replace(/\d+/, String(rng.int(40)));
    }
  }
  return s;
}

/** Assembly lines to mutate: the conformance programs when present, else disassembled samples. */
function corpusLines(rng: Prng): string[] {
  const dir = conformanceDir();
  const lines: string[] = [];
  if (dir !== undefined) {
    for (const f of listDataFiles(dir)) {
      const asm = parseDataFile(readFileSync(f, 'utf8')).asm ?? '';
      for (const l of asm.split('\n')) if (l.trim() !== '') lines.push(l);
    }
  }
  for (let k = 0; k < 200; k++) {
    lines.push(...disassemble(randomProgram(rng), { labels: rng.bool() }).trimEnd().split('\n'));
  }
  return lines;
}

function checkBytes(bytes: Uint8Array): void {
  for (const syntax of SYNTAXES) {
    disassembleBytes(bytes, { syntax, showBytes: syntax === 'llvm', labels: syntax === 'asm' });
  }
  if (bytes.length % 8 === 0) {
    const back = encodeInsns(assemble(disassembleBytes(bytes)));
    if (!sameBytes(back, bytes))
      throw new Error(`asm round trip changed the bytes to ${hexOf(back)}`);
  }
  onlyBpfErrors('decode/check/createProgram/verifyProgram', () => {
    const insns = decodeInsns(bytes);
    checkInsns(insns);
    const prog = createProgram(insns);
    // The verifier on arbitrary programs: a verdict or a BpfError, never a crash; the log
    // printers run at level 2. A low insn limit bounds the time of looping programs.
    for (const type of ['xdp', 'mem', 'socket_filter'] as const) {
      verifyProgram(prog, { type, logLevel: BPF_LOG_LEVEL2, insnLimit: 5000 });
    }
  });
}

function checkText(text: string): void {
  let insns: Insn[] | undefined;
  onlyBpfErrors('assemble', () => {
    insns = assemble(text);
  });
  onlyBpfErrors('assembleProgram', () => {
    assembleProgram(text);
  });
  if (insns === undefined) return;
  const bytes = encodeInsns(insns);
  const back = encodeInsns(assemble(disassemble(insns)));
  if (!sameBytes(back, bytes))
    throw new Error(`asm round trip changed ${hexOf(bytes)} to ${hexOf(back)}`);
}

describe('asm fuzz', () => {
  it(`survives ${CASES} seeded cases of bytes and text (master seed ${MASTER_SEED})`, () => {
    const master = createPrng(MASTER_SEED);
    const lines = corpusLines(createPrng(MASTER_SEED ^ 0x9e3779b9));
    const stats = { bytes: 0, text: 0, assembled: 0, validPrograms: 0 };
    for (let k = 0; k < CASES; k++) {
      const seed = CASES === 1 ? MASTER_SEED : master.next32();
      const rng = createPrng(seed);
      let input = '';
      try {
        if (rng.bool()) {
          const kind = rng.int(4);
          const bytes =
            kind === 0
              ? rng.bytes(rng.int(80))
              : kind === 1
                ? encodeInsns(randomProgram(rng))
                : mutateBytes(rng, encodeInsns(randomProgram(rng)));
          input = hexOf(bytes);
          stats.bytes++;
          checkBytes(bytes);
          try {
            createProgram(decodeInsns(bytes));
            stats.validPrograms++;
          } catch {
            // counted only
          }
        } else {
          const kind = rng.int(3);
          let text: string;
          if (kind === 0) text = randomText(rng);
          else {
            const picked: string[] = [];
            for (let n = 1 + rng.int(4); n > 0; n--) picked.push(rng.pick(lines));
            text = picked.join('\n');
            if (kind === 2) text = mutateText(rng, text);
          }
          input = JSON.stringify(text);
          stats.text++;
          checkText(text);
          try {
            assemble(text);
            stats.assembled++;
          } catch {
            // counted only
          }
        }
      } catch (e) {
        throw new Error(
          `fuzz case ${k} failed (seed ${seed}; reproduce with FUZZ_SEED=${seed} FUZZ_CASES=1)\ninput: ${input}\n${String(e)}`,
          { cause: e },
        );
      }
    }
    expect(stats.bytes + stats.text).toBe(CASES);
    if (CASES >= 1000) {
      expect(stats.validPrograms).toBeGreaterThan(CASES / 40);
      expect(stats.assembled).toBeGreaterThan(CASES / 10);
    }
  });
});
