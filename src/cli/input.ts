/**
 * Reading programs and input bytes for the command line: `.s`/`.asm` assembly, `.data`
 * conformance files (program plus `-- mem`), and raw little-endian bytecode (anything else).
 */

import { readFileSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { assemble } from '../asm/assembler.js';
import { parseDataFile } from '../asm/data-file.js';
import { UsageError } from '../errors.js';
import { decodeInsns, type Insn } from '../isa/insn.js';
import { createProgram, type Program, type ProgType } from '../program.js';

/** A program read from a file, with the input memory a `.data` file carries. */
export interface ProgramFile {
  readonly program: Program;
  readonly mem: Uint8Array | undefined;
  readonly expected: bigint | undefined;
}

/** Reads a file, turning a missing file into a UsageError. */
export function readInputFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The instruction slots of a `.s`, `.asm`, `.data` or raw bytecode file. */
export function readInsns(path: string): {
  insns: Insn[];
  mem: Uint8Array | undefined;
  expected: bigint | undefined;
} {
  const ext = extname(path);
  const bytes = readInputFile(path);
  if (ext === '.s' || ext === '.asm')
    return { insns: assemble(bytes.toString('utf8')), mem: undefined, expected: undefined };
  if (ext === '.data') {
    const d = parseDataFile(bytes.toString('utf8'), basename(path));
    if (d.skip !== undefined) throw new UsageError(`${path}: ${d.skip}`);
    return {
      insns: d.raw ?? assemble(d.asm ?? ''),
      mem: d.mem.length > 0 ? d.mem : undefined,
      expected: d.result,
    };
  }
  return {
    insns: decodeInsns(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
    mem: undefined,
    expected: undefined,
  };
}

/** Reads and checks a program. The type defaults to `mem`, or `xdp` for `*.xdp.bin`. */
export function readProgram(path: string, type?: ProgType): ProgramFile {
  const { insns, mem, expected } = readInsns(path);
  const t = type ?? (path.endsWith('.xdp.bin') ? 'xdp' : 'mem');
  return { program: createProgram(insns, { name: basename(path), type: t }), mem, expected };
}

/** Parses hex bytes: `aabb`, `aa bb`, `0xaa,0xbb`. */
export function parseHex(text: string): Uint8Array {
  const clean = text.replace(/0x/gi, '').replace(/[\s,:]/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean))
    throw new UsageError(`bad hex bytes '${text}'`);
  const out = new Uint8Array(clean.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(clean.slice(2 * k, 2 * k + 2), 16);
  return out;
}
