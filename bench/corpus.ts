/**
 * The benchmark corpus in bench/corpus/ (copied from the shared bench-corpus): six programs as
 * raw instructions per entry (`pN_name.{xdp,mem}.bin`, `-mcpu=v3`, and `.v4.` variants), the
 * 1500-byte `packet.bin`, the expected results on it (`expected.tsv`) and the reference
 * figures of the corpus README (another run on another machine, for context only).
 *
 * Called from the bench sections. Files are found relative to this module, whether it runs
 * from bench/ or from dist/bench/.
 */

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { programFromBytes, type Program } from '../src/program.js';

/** The corpus programs, in order. */
export const CORPUS_PROGRAMS = [
  'p1_pass',
  'p2_parse',
  'p3_sum',
  'p4_fnv',
  'p5_crc32',
  'p6_sort',
] as const;

/** A corpus program name. */
export type CorpusName = (typeof CORPUS_PROGRAMS)[number];

/** Entry section: `xdp` (ctx->data / ctx->data_end) or `mem` (r1 = packet, r2 = length). */
export type CorpusEntry = 'xdp' | 'mem';

/** Instruction set the objects were built for (`clang -mcpu=`). */
export type CorpusCpu = 'v3' | 'v4';

/** Reference figures (ns/run) from the corpus README: one run on a 2-core machine, not ours. */
export interface ReferenceFigures {
  readonly kernelJit: number;
  readonly ubpfJit: number;
  readonly ubpfInterp: number;
  readonly wasm32: number;
}

/** From bench/corpus/README.md (the shared bench-corpus README), ns per run, medians. */
export const REFERENCE_FIGURES: Readonly<Record<CorpusName, ReferenceFigures>> = {
  p1_pass: { kernelJit: 31, ubpfJit: 5.3, ubpfInterp: 61, wasm32: 3.1 },
  p2_parse: { kernelJit: 41, ubpfJit: 12.5, ubpfInterp: 1268, wasm32: 9.4 },
  p3_sum: { kernelJit: 1626, ubpfJit: 1221, ubpfInterp: 176651, wasm32: 553 },
  p4_fnv: { kernelJit: 1991, ubpfJit: 2164, ubpfInterp: 177757, wasm32: 1910 },
  p5_crc32: { kernelJit: 2160, ubpfJit: 4238, ubpfInterp: 216171, wasm32: 2144 },
  p6_sort: { kernelJit: 1504, ubpfJit: 2220, ubpfInterp: 276042, wasm32: 1293 },
};

/** True when `s` names a corpus program. */
export function isCorpusName(s: string): s is CorpusName {
  return (CORPUS_PROGRAMS as readonly string[]).includes(s);
}

/** The bench/corpus directory. */
export function corpusDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, 'corpus'), join(here, '..', '..', 'bench', 'corpus')]) {
    if (existsSync(join(dir, 'expected.tsv'))) return dir;
  }
  throw new Error(`bench corpus not found next to ${here}`);
}

/** Path of a program's raw instruction file. */
export function corpusBinPath(name: CorpusName, entry: CorpusEntry, cpu: CorpusCpu): string {
  const variant = cpu === 'v4' ? '.v4' : '';
  return join(corpusDir(), 'bpf', `${name}${variant}.${entry}.bin`);
}

/** Loads a corpus program as a Program of the entry's type. */
export function loadCorpusProgram(name: CorpusName, entry: CorpusEntry, cpu: CorpusCpu): Program {
  const bytes = readFileSync(corpusBinPath(name, entry, cpu));
  return programFromBytes(new Uint8Array(bytes), { type: entry, name });
}

/** The 1500-byte benchmark packet. */
export function packetPath(): string {
  return join(corpusDir(), 'packet.bin');
}

/** Reads packet.bin. */
export function loadPacket(): Uint8Array {
  return new Uint8Array(readFileSync(packetPath()));
}

/** Expected result of each program on packet.bin (u32), from expected.tsv. */
export function loadExpected(): ReadonlyMap<CorpusName, number> {
  const out = new Map<CorpusName, number>();
  const text = readFileSync(join(corpusDir(), 'expected.tsv'), 'utf8');
  for (const line of text.split('\n')) {
    const [name, value] = line.trim().split(/\s+/);
    if (name === undefined || value === undefined || !isCorpusName(name)) continue;
    out.set(name, Number.parseInt(value, 16) >>> 0);
  }
  for (const name of CORPUS_PROGRAMS) {
    if (!out.has(name)) throw new Error(`expected.tsv has no result for ${name}`);
  }
  return out;
}

/** Thrown when an engine's result differs from the expected one: the bench stops loudly. */
export class WrongResultError extends Error {
  override name = 'WrongResultError' as const;
}

/** Returns `got` if it equals `expected`, else throws a `WrongResultError` naming `what`. */
export function checkResult(what: string, got: number, expected: number): number {
  if (got !== expected) {
    throw new WrongResultError(
      `WRONG RESULT: ${what} returned 0x${(got >>> 0).toString(16)}, expected 0x${(expected >>> 0).toString(16)}`,
    );
  }
  return got;
}
