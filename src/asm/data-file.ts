/**
 * The parser of bpf_conformance `.data` files (`-- asm`, `-- raw`, `-- mem`, `-- result`,
 * `-- error`), following the rules of the conformance README, in this order:
 *
 * 1. Everything from the first `#` to the end of a line is removed.
 * 2. A line containing `--` switches sections; the section is chosen by substring, checked in
 *    the order `asm`, `result`, `mem`, `raw`, `no register offset` (ignored), ` c` (the C
 *    source, ignored), `error`. Any other directive makes the runner skip the file: the
 *    result then has `skip` set and holds what was parsed before the directive.
 * 3. Blank lines are ignored. Sections may come in any order and may repeat; `mem` and `raw`
 *    lines are joined, and for `result` and `error` the last line wins (as upstream).
 *
 * A file without `result` or `error`, or without `asm` or `raw`, is also reported as a skip,
 * as the upstream runner does. Bad content in `mem`, `raw` or `result` is an `AsmError`
 * naming the file's line and column. The assembly itself is not assembled here: `asm` keeps
 * the file's line numbering (lines outside the section are blank), so that `assemble(asm)`
 * reports errors at the file's own line numbers.
 *
 * Called from: the conformance runner, the round-trip tests, the CLI.
 */

import { AsmError } from '../errors.js';
import type { Insn } from '../isa/insn.js';

/** One parsed `.data` file. */
export interface DataFile {
  /** The file name given to `parseDataFile`, if any. */
  readonly fileName?: string;
  /** The `-- asm` text, line-aligned with the file (other lines blank, comments removed). */
  readonly asm?: string;
  /** The `-- raw` slots; when present they replace `asm`. */
  readonly raw?: Insn[];
  /** The `-- mem` bytes (empty without a `-- mem` section). */
  readonly mem: Uint8Array;
  /** The expected r0 as an unsigned 64-bit number. */
  readonly result?: bigint;
  /** The expected error message (upstream `negative/` tests only). */
  readonly error?: string;
  /** Set when the runner has to skip the file, with the reason. */
  readonly skip?: string;
}

type Section = 'none' | 'asm' | 'raw' | 'mem' | 'result' | 'error' | 'ignore';

/** Section chosen by a directive line, by substring as upstream; undefined when unknown. */
function sectionOf(line: string): Section | undefined {
  if (line.includes('asm')) return 'asm';
  if (line.includes('result')) return 'result';
  if (line.includes('mem')) return 'mem';
  if (line.includes('raw')) return 'raw';
  if (line.includes('no register offset')) return 'ignore';
  if (line.includes(' c')) return 'ignore';
  if (line.includes('error')) return 'error';
  return undefined;
}

interface Word {
  readonly text: string;
  readonly line: number;
  readonly col: number;
}

function words(text: string, line: number): Word[] {
  const out: Word[] = [];
  for (const m of text.matchAll(/\S+/g)) out.push({ text: m[0], line, col: (m.index ?? 0) + 1 });
  return out;
}

/**
 * Parses the text of a `.data` file. Throws `AsmError` for malformed `mem`, `raw` or `result`
 * content; an unknown directive is not an error but a `skip`.
 *
 * @example
 * ```ts
 * const f = parseDataFile('-- asm\nmov %r0, 1\nexit\n-- result\n0x1\n', 'one.data');
 * f.result; // 1n
 * assemble(f.asm ?? ''); // two slots
 * ```
 */
export function parseDataFile(text: string, fileName?: string): DataFile {
  const lines = text.split('\n');
  const asmLines: string[] = lines.map(() => '');
  const memWords: Word[] = [];
  const rawWords: Word[] = [];
  let section: Section = 'none';
  let hasAsm = false;
  let resultLine: Word | undefined;
  let error: string | undefined;
  let skip: string | undefined;
  for (let k = 0; k < lines.length && skip === undefined; k++) {
    const lineNo = k + 1;
    let line = lines[k] ?? '';
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    if (line.includes('--')) {
      const next = sectionOf(line);
      if (next === undefined) skip = `unknown directive '${line.trim()}' at line ${lineNo}`;
      else section = next;
      continue;
    }
    if (line.trim() === '') continue;
    switch (section) {
      case 'asm':
        asmLines[k] = line;
        hasAsm = true;
        break;
      case 'mem':
        memWords.push(...words(line, lineNo));
        break;
      case 'raw':
        rawWords.push(...words(line, lineNo));
        break;
      case 'result':
        resultLine = { text: line.trim(), line: lineNo, col: line.search(/\S/) + 1 };
        break;
      case 'error':
        error = line.trimEnd();
        break;
      case 'none':
      case 'ignore':
        break;
      default: {
        const never: never = section;
        return never;
      }
    }
  }
  const result = resultLine === undefined ? undefined : parseResult(resultLine);
  const raw = rawWords.length === 0 ? undefined : rawWords.map(parseRawSlot);
  if (skip === undefined && result === undefined && error === undefined)
    skip = 'no result or error';
  if (skip === undefined && !hasAsm && raw === undefined) skip = 'no instructions';
  return {
    ...(fileName === undefined ? {} : { fileName }),
    ...(hasAsm ? { asm: asmLines.join('\n') } : {}),
    ...(raw === undefined ? {} : { raw }),
    mem: parseMem(memWords),
    ...(result === undefined ? {} : { result }),
    ...(error === undefined ? {} : { error }),
    ...(skip === undefined ? {} : { skip }),
  };
}

function parseMem(ws: readonly Word[]): Uint8Array {
  const out = new Uint8Array(ws.length);
  ws.forEach((w, k) => {
    const m = /^(?:0[xX])?([0-9a-fA-F]{1,2})$/.exec(w.text);
    if (m === null) throw new AsmError(w.line, w.col, `mem: invalid byte '${w.text}'`);
    out[k] = parseInt(m[1] ?? '0', 16);
  });
  return out;
}

const U64_MAX = 2n ** 64n - 1n;

/** A `-- result` value: hex when it contains `0x`, otherwise decimal; wraps to u64. */
function parseResult(w: Word): bigint {
  const hex = /^(-?)0[xX]([0-9a-fA-F]{1,16})$/.exec(w.text);
  const dec = /^(-?)([0-9]{1,20})$/.exec(w.text);
  const m = w.text.includes('0x') || w.text.includes('0X') ? hex : dec;
  if (m === null) throw new AsmError(w.line, w.col, `result: invalid number '${w.text}'`);
  const mag = BigInt(m === hex ? `0x${m[2] ?? '0'}` : (m[2] ?? '0'));
  if (mag > U64_MAX || (m[1] === '-' && mag > 2n ** 63n)) {
    throw new AsmError(w.line, w.col, `result: ${w.text} out of range`);
  }
  return BigInt.asUintN(64, m[1] === '-' ? -mag : mag);
}

/** A `-- raw` slot: the little-endian u64 of one instruction, hex with `0x` or decimal. */
function parseRawSlot(w: Word): Insn {
  const m = /^(?:0[xX]([0-9a-fA-F]{1,16})|([0-9]{1,20}))$/.exec(w.text);
  const v = m === null ? -1n : BigInt(m[1] !== undefined ? `0x${m[1]}` : (m[2] ?? '0'));
  if (v < 0n || v > U64_MAX) throw new AsmError(w.line, w.col, `raw: invalid slot '${w.text}'`);
  return {
    code: Number(v & 0xffn),
    dst: Number((v >> 8n) & 0xfn),
    src: Number((v >> 12n) & 0xfn),
    off: Number(BigInt.asIntN(16, v >> 16n)),
    imm: Number(BigInt.asIntN(32, v >> 32n)),
  };
}
