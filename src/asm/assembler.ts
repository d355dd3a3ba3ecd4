/**
 * The assembler for the bpf_conformance / uBPF assembly syntax (`mov %r0, 1`, `ldxw %r0,
 * [%r1+4]`, `jeq %r1, 0x80000000, +1`, `lddw %r0, 0x1122334455667788`, ...), driven by the
 * opcode table: a mnemonic names table entries, and the entry's `kind` decides which operands
 * it takes and where they go. Called from tests, the conformance runner and the CLI.
 *
 * Syntax (one instruction or label per line; the conformance README's "Assembly syntax" plus
 * the extensions marked *):
 *
 * - Comments run from `#`, `;` or `//` to the end of the line. Blank lines are ignored.
 * - Labels: `name:` on its own line or in front of an instruction (`loop: add %r1, 1`). The
 *   label `exit` is defined implicitly at the first `exit` instruction unless a label of that
 *   name is written out. Labels are case sensitive; mnemonics are not.
 * - Registers `%r0`..`%r10`. Numbers are decimal or `0x` hex, either with a sign. A 32-bit
 *   immediate may be written in [-2^31, 2^32-1]; values above 0x7fffffff keep their bit
 *   pattern (`0x80000000` is INT32_MIN). Offsets (memory and jumps) must fit s16.
 * - ALU: `add %dst, %src|imm` (`add32` for the ALU class; `add64`* is `add`), `neg %dst`,
 *   `sdiv`/`smod`, `movsx832 %dst, %src` etc.; `le16`/`be32 %dst`, `bswap64 %dst`
 *   (`swap64` too).
 * - `lddw %dst, imm64` (two slots; imm64 in [-2^63, 2^64-1]). *Pseudo sources:
 *   `lddw %dst, map_fd N`, `map_value N, M`, `btf_id N`, `func target`, `map_idx N`,
 *   `map_idx_value N, M` (src 1..6; the optional second number is the second slot's imm).
 * - Memory: `ldxw %dst, [%src+off]`, `ldxsw`, `stw [%dst+off], imm`, `stxw [%dst-8], %src`;
 *   `[%r1]`, `[%r1+0x10]` and `[%r10 - 8]` are all accepted.
 * - *Legacy packet loads: `ldabsw imm` (r0 = packet word at imm) and `ldindw %src, imm`
 *   (at src + imm), with `b`/`h`/`w` sizes.
 * - Atomics: `lock [fetch] add|or|and|xor[32] [%dst+off], %src`, `lock xchg[32]`,
 *   `lock cmpxchg[32]` (`lock add64`* is `lock add`).
 * - Jumps: `ja target`, `ja32 target` (offset in imm), `jeq %dst, %src|imm, target` and the
 *   other conditions, `jeq32` for JMP32, `may_goto target`*, `gotox %reg`*. A target is a
 *   label or a signed slot count such as `+1` or `-3`, counted from the next slot (lddw counts
 *   as two slots).
 * - Calls: `call N` (helper; `call helper N` too), `call local target` (src 1, imm = slot
 *   offset), `call kfunc N[, off]`* (src 2; `call runtime N` too), `call %rN` or `callx %rN`
 *   (opcode 0x8d, register in dst), `exit`.
 * - *`.raw u64` / `.invalid u64`: one slot given as the little-endian u64 of a `-- raw`
 *   section, so that everything the disassembler prints assembles back to the same bytes.
 *
 * Errors are `AsmError(line, column, reason)`, 1-based, pointing at the offending token.
 */

import { AsmError } from '../errors.js';
import { insn, type Insn } from '../isa/insn.js';
import {
  BPF_HELPER_CALL,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  MAX_BPF_REG,
} from '../isa/opcodes.js';
import { OP_TABLE, OPS_BY_MNEMONIC, type OpInfo } from '../isa/table.js';
import { createProgram, type Program, type ProgramOptions } from '../program.js';

/** Names of the lddw pseudo sources, as the assembler and the 'asm' disassembly spell them. */
export const LDDW_PSEUDO_NAMES: ReadonlyMap<number, string> = new Map([
  [BPF_PSEUDO_MAP_FD, 'map_fd'],
  [BPF_PSEUDO_MAP_VALUE, 'map_value'],
  [BPF_PSEUDO_BTF_ID, 'btf_id'],
  [BPF_PSEUDO_FUNC, 'func'],
  [BPF_PSEUDO_MAP_IDX, 'map_idx'],
  [BPF_PSEUDO_MAP_IDX_VALUE, 'map_idx_value'],
]);

const LDDW_PSEUDO_BY_NAME: ReadonlyMap<string, number> = new Map(
  [...LDDW_PSEUDO_NAMES].map(([src, name]) => [name, src]),
);

/** Mnemonics (lower case) to table entries, with the aliases `add64`, `swap16`, `lock add64`. */
const MNEMONICS: ReadonlyMap<string, readonly OpInfo[]> = (() => {
  const m = new Map<string, OpInfo[]>();
  const add = (name: string, info: OpInfo): void => {
    const list = m.get(name);
    if (list === undefined) m.set(name, [info]);
    else if (!list.includes(info)) list.push(info);
  };
  for (const [name, infos] of OPS_BY_MNEMONIC) for (const info of infos) add(name, info);
  for (const info of OP_TABLE) {
    if (info.kind === 'alu' && info.width === 64) add(`${info.mnemonic}64`, info);
    if (info.kind === 'atomic' && info.size === 8) add(`${info.mnemonic}64`, info);
    if (info.kind === 'end' && info.order === 'swap') add(`swap${info.bits}`, info);
  }
  return m;
})();

const CALLX_INFO = (OPS_BY_MNEMONIC.get('callx') ?? [])[0];

type TokenKind = 'word' | 'reg' | 'num' | 'punct';

/** One token of a line; `col` is 1-based. */
interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly col: number;
}

/** A slot under construction. */
interface Slot {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

/** A label reference to resolve once every label is known. */
interface Fixup {
  readonly slot: number;
  readonly field: 'off' | 'imm';
  readonly name: string;
  readonly line: number;
  readonly col: number;
}

/** Assembler state across lines. */
interface State {
  readonly slots: Slot[];
  readonly fixups: Fixup[];
  readonly labels: Map<string, number>;
  firstExit: number | undefined;
  line: number;
}

const S16_MIN = -(2n ** 15n);
const S16_MAX = 2n ** 15n - 1n;
const S32_MIN = -(2n ** 31n);
const S32_MAX = 2n ** 31n - 1n;
const U32_MAX = 2n ** 32n - 1n;
const S64_MIN = -(2n ** 63n);
const U64_MAX = 2n ** 64n - 1n;

/**
 * Assembles a program into instruction slots (lddw gives two). Nothing is checked beyond the
 * syntax: pass the result to `createProgram` (or use `assembleProgram`).
 *
 * @example
 * ```ts
 * const insns = assemble('mov %r0, 1\nexit');
 * // [{ code: 0xb7, dst: 0, src: 0, off: 0, imm: 1 }, { code: 0x95, ... }]
 * ```
 */
export function assemble(text: string): Insn[] {
  return assembleWithLabels(text).insns;
}

/**
 * Assembles and structurally checks a program. Labels at function starts name the
 * subprograms unless `opts.funcNames` is given. Throws `AsmError` for bad syntax and
 * `DecodeError` for a program that is not well formed.
 *
 * @example
 * ```ts
 * const prog = assembleProgram('call local f\nexit\nf:\nmov %r0, 2\nexit', { name: 'demo' });
 * prog.subprogs.map((s) => s.name); // ['demo', 'f']
 * ```
 */
export function assembleProgram(text: string, opts: ProgramOptions = {}): Program {
  const { insns, labels } = assembleWithLabels(text);
  if (opts.funcNames !== undefined) return createProgram(insns, opts);
  // name only the functions calls and function references make: createProgram takes every
  // named slot as a function start, and most labels are jump targets
  const starts = new Set(createProgram(insns, opts).subprogs.map((s) => s.start));
  const funcNames = new Map<number, string>();
  for (const [name, slot] of labels) {
    if (slot > 0 && starts.has(slot) && !funcNames.has(slot)) funcNames.set(slot, name);
  }
  return createProgram(insns, { ...opts, funcNames });
}

function assembleWithLabels(text: string): { insns: Insn[]; labels: Map<string, number> } {
  const st: State = { slots: [], fixups: [], labels: new Map(), firstExit: undefined, line: 0 };
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    st.line = k + 1;
    assembleLine(st, stripComment(lines[k] ?? ''));
  }
  for (const f of st.fixups) {
    const target = st.labels.get(f.name) ?? (f.name === 'exit' ? st.firstExit : undefined);
    if (target === undefined) throw new AsmError(f.line, f.col, `undefined label '${f.name}'`);
    const rel = BigInt(target - (f.slot + 1));
    const slot = st.slots[f.slot] as Slot;
    if (f.field === 'off') {
      if (rel < S16_MIN || rel > S16_MAX) {
        throw new AsmError(f.line, f.col, `jump offset ${rel} to '${f.name}' out of range`);
      }
      slot.off = Number(rel);
    } else {
      slot.imm = Number(rel);
    }
  }
  const insns = st.slots.map((s) => insn(s.code, s.dst, s.src, s.off, s.imm));
  return { insns, labels: st.labels };
}

function stripComment(s: string): string {
  let end = s.length;
  for (const marker of ['#', ';', '//']) {
    const k = s.indexOf(marker);
    if (k >= 0 && k < end) end = k;
  }
  return s.slice(0, end);
}

const WORD_START = /[A-Za-z_.$]/;
const WORD_CHAR = /[A-Za-z0-9_.$]/;
const DIGIT = /[0-9]/;

function tokenize(text: string, line: number): Token[] {
  const toks: Token[] = [];
  let i = 0;
  const scan = (from: number): number => {
    let j = from;
    while (j < text.length && WORD_CHAR.test(text[j] as string)) j++;
    return j;
  };
  while (i < text.length) {
    const c = text[i] as string;
    const col = i + 1;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\v' || c === '\f') {
      i++;
    } else if (c === ',' || c === '[' || c === ']' || c === ':') {
      toks.push({ kind: 'punct', text: c, col });
      i++;
    } else if ((c === '+' || c === '-') && DIGIT.test(text[i + 1] ?? '')) {
      const end = scan(i + 1);
      toks.push({ kind: 'num', text: text.slice(i, end), col });
      i = end;
    } else if (c === '+' || c === '-') {
      toks.push({ kind: 'punct', text: c, col });
      i++;
    } else if (DIGIT.test(c)) {
      const end = scan(i);
      toks.push({ kind: 'num', text: text.slice(i, end), col });
      i = end;
    } else if (c === '%') {
      const end = scan(i + 1);
      toks.push({ kind: 'reg', text: text.slice(i, end), col });
      i = end;
    } else if (WORD_START.test(c)) {
      const end = scan(i);
      toks.push({ kind: 'word', text: text.slice(i, end), col });
      i = end;
    } else {
      throw new AsmError(line, col, `unexpected character ${JSON.stringify(c)}`);
    }
  }
  return toks;
}

function assembleLine(st: State, text: string): void {
  const toks = tokenize(text, st.line);
  let p = 0;
  while (toks[p]?.kind === 'word' && toks[p + 1]?.text === ':') {
    const t = toks[p] as Token;
    if (st.labels.has(t.text)) throw new AsmError(st.line, t.col, `duplicate label '${t.text}'`);
    st.labels.set(t.text, st.slots.length);
    p += 2;
  }
  const first = toks[p];
  if (first === undefined) return;
  if (first.kind !== 'word') {
    throw new AsmError(st.line, first.col, `expected a mnemonic or a label, got '${first.text}'`);
  }
  let name = first.text.toLowerCase();
  let nameTok = first;
  p++;
  if (name === 'lock') {
    let t = toks[p];
    const fetch = t?.kind === 'word' && t.text.toLowerCase() === 'fetch';
    if (fetch) t = toks[++p];
    if (t?.kind !== 'word') {
      throw new AsmError(st.line, t?.col ?? first.col, "expected an atomic operation after 'lock'");
    }
    name = `lock ${fetch ? 'fetch ' : ''}${t.text.toLowerCase()}`;
    nameTok = t;
    p++;
  }
  const groups = splitOperands(toks.slice(p), st.line);
  if (name === '.raw' || name === '.invalid') {
    expectCount(groups, 1, name, nameTok, st.line);
    const v = num(groups[0] as Token[], st.line, 0n, U64_MAX, 'slot value');
    st.slots.push(rawSlot(v));
    return;
  }
  const infos = MNEMONICS.get(name);
  if (infos === undefined) {
    throw new AsmError(st.line, nameTok.col, `unknown mnemonic '${name}'`);
  }
  encode(st, infos, name, nameTok, groups);
}

/** Splits operand tokens at commas; brackets never hold commas. */
function splitOperands(toks: readonly Token[], line: number): Token[][] {
  if (toks.length === 0) return [];
  const groups: Token[][] = [[]];
  for (const t of toks) {
    if (t.kind === 'punct' && t.text === ',') {
      if ((groups[groups.length - 1] as Token[]).length === 0) {
        throw new AsmError(line, t.col, 'missing operand before ,');
      }
      groups.push([]);
    } else {
      (groups[groups.length - 1] as Token[]).push(t);
    }
  }
  if ((groups[groups.length - 1] as Token[]).length === 0) {
    const last = toks[toks.length - 1] as Token;
    throw new AsmError(line, last.col, 'missing operand after ,');
  }
  return groups;
}

function expectCount(
  groups: readonly Token[][],
  n: number | readonly number[],
  name: string,
  nameTok: Token,
  line: number,
): void {
  const ok = typeof n === 'number' ? [n] : n;
  if (ok.includes(groups.length)) return;
  const want = ok.join(' or ');
  const reason = `'${name}' takes ${want} operand${want === '1' ? '' : 's'}, got ${groups.length}`;
  const extra = groups[Math.max(...ok)];
  throw new AsmError(line, extra !== undefined ? (extra[0] as Token).col : nameTok.col, reason);
}

function rawSlot(v: bigint): Slot {
  return {
    code: Number(v & 0xffn),
    dst: Number((v >> 8n) & 0xfn),
    src: Number((v >> 12n) & 0xfn),
    off: Number(BigInt.asIntN(16, v >> 16n)),
    imm: Number(BigInt.asIntN(32, v >> 32n)),
  };
}

function slotOf(info: OpInfo): Slot {
  let off = 0;
  let imm = 0;
  if (info.kind === 'alu' || info.kind === 'movsx') off = info.off ?? 0;
  if (info.kind === 'end' || info.kind === 'atomic') imm = info.imm;
  return { code: info.code, dst: 0, src: 0, off, imm };
}

/** Emits the slot(s) of one instruction: the operand shape follows the entry's kind. */
function encode(
  st: State,
  infos: readonly OpInfo[],
  name: string,
  nameTok: Token,
  groups: Token[][],
): void {
  const line = st.line;
  const info = infos[0] as OpInfo;
  const idx = st.slots.length;
  const g = (k: number): Token[] => groups[k] as Token[];
  const count = (n: number | readonly number[]): void =>
    expectCount(groups, n, name, nameTok, line);
  /** The imm or reg entry of an ALU/JMP mnemonic, chosen by the operand. */
  const bySource = (op: Token[]): { info: OpInfo; slot: Slot } => {
    const isReg = op.length === 1 && op[0]?.kind === 'reg';
    const chosen = infos.find((e) => 'source' in e && e.source === (isReg ? 'reg' : 'imm')) ?? info;
    const slot = slotOf(chosen);
    if (isReg) slot.src = reg(op, line);
    else slot.imm = imm32(op, line);
    return { info: chosen, slot };
  };
  switch (info.kind) {
    case 'alu': {
      if (info.op === 'neg') {
        count(1);
        const s = slotOf(info);
        s.dst = reg(g(0), line);
        st.slots.push(s);
        return;
      }
      count(2);
      const dst = reg(g(0), line);
      const { slot } = bySource(g(1));
      slot.dst = dst;
      st.slots.push(slot);
      return;
    }
    case 'movsx': {
      count(2);
      const s = slotOf(info);
      s.dst = reg(g(0), line);
      s.src = reg(g(1), line);
      st.slots.push(s);
      return;
    }
    case 'end':
    case 'gotox':
    case 'callx': {
      count(1);
      const s = slotOf(info);
      s.dst = reg(g(0), line);
      st.slots.push(s);
      return;
    }
    case 'lddw':
      count([2, 3]);
      encodeLddw(st, info, g(0), g(1), groups[2], nameTok);
      return;
    case 'ldabs': {
      count(1);
      const s = slotOf(info);
      s.imm = imm32(g(0), line);
      st.slots.push(s);
      return;
    }
    case 'ldind': {
      count(2);
      const s = slotOf(info);
      s.src = reg(g(0), line);
      s.imm = imm32(g(1), line);
      st.slots.push(s);
      return;
    }
    case 'ldx':
    case 'ldxsx': {
      count(2);
      const s = slotOf(info);
      s.dst = reg(g(0), line);
      [s.src, s.off] = mem(g(1), line);
      st.slots.push(s);
      return;
    }
    case 'st': {
      count(2);
      const s = slotOf(info);
      [s.dst, s.off] = mem(g(0), line);
      s.imm = imm32(g(1), line);
      st.slots.push(s);
      return;
    }
    case 'stx':
    case 'atomic': {
      count(2);
      const s = slotOf(info);
      [s.dst, s.off] = mem(g(0), line);
      s.src = reg(g(1), line);
      st.slots.push(s);
      return;
    }
    case 'jmp': {
      count(3);
      const dst = reg(g(0), line);
      const { slot } = bySource(g(1));
      slot.dst = dst;
      st.slots.push(slot);
      slot.off = target(st, g(2), idx, 'off');
      return;
    }
    case 'ja':
    case 'may_goto':
    case 'ja32': {
      count(1);
      const s = slotOf(info);
      st.slots.push(s);
      if (info.kind === 'ja32') s.imm = target(st, g(0), idx, 'imm');
      else s.off = target(st, g(0), idx, 'off');
      return;
    }
    case 'call':
      count([1, 2]);
      encodeCall(st, info, groups, nameTok);
      return;
    case 'exit':
      count(0);
      if (st.firstExit === undefined) st.firstExit = idx;
      st.slots.push(slotOf(info));
      return;
    default: {
      const never: never = info;
      return never;
    }
  }
}

function encodeLddw(
  st: State,
  info: OpInfo,
  dstOp: Token[],
  valueOp: Token[],
  extraOp: Token[] | undefined,
  nameTok: Token,
): void {
  const line = st.line;
  const lo = slotOf(info);
  const hi: Slot = { code: 0, dst: 0, src: 0, off: 0, imm: 0 };
  lo.dst = reg(dstOp, line);
  const idx = st.slots.length;
  st.slots.push(lo, hi);
  const head = valueOp[0] as Token;
  if (head.kind !== 'word') {
    if (extraOp !== undefined) expectCount([dstOp, valueOp, extraOp], 2, 'lddw', nameTok, line);
    const v = BigInt.asUintN(64, num(valueOp, line, S64_MIN, U64_MAX, 'immediate'));
    lo.imm = Number(BigInt.asIntN(32, v));
    hi.imm = Number(BigInt.asIntN(32, v >> 32n));
    return;
  }
  const src = LDDW_PSEUDO_BY_NAME.get(head.text.toLowerCase());
  if (src === undefined) {
    throw new AsmError(
      line,
      head.col,
      `unknown lddw source '${head.text}' (expected a number or ${[...LDDW_PSEUDO_BY_NAME.keys()].join(', ')})`,
    );
  }
  lo.src = src;
  const rest = valueOp.slice(1);
  if (rest.length === 0) throw new AsmError(line, head.col, `'${head.text}' needs a value`);
  if (src === BPF_PSEUDO_FUNC) lo.imm = target(st, rest, idx, 'imm');
  else lo.imm = imm32(rest, line);
  if (extraOp !== undefined) hi.imm = imm32(extraOp, line);
}

function encodeCall(st: State, info: OpInfo, groups: Token[][], nameTok: Token): void {
  const line = st.line;
  const op = groups[0] as Token[];
  const head = op[0] as Token;
  const s = slotOf(info);
  const idx = st.slots.length;
  const mode = head.kind === 'word' ? head.text.toLowerCase() : undefined;
  if (mode !== 'kfunc' && mode !== 'runtime' && groups.length > 1) {
    expectCount(groups, 1, 'call', nameTok, line);
  }
  if (head.kind === 'reg' && CALLX_INFO !== undefined) {
    const x = slotOf(CALLX_INFO);
    x.dst = reg(op, line);
    st.slots.push(x);
    return;
  }
  st.slots.push(s);
  if (mode === undefined) {
    s.src = BPF_HELPER_CALL;
    s.imm = imm32(op, line);
    return;
  }
  const rest = op.slice(1);
  if (rest.length === 0) throw new AsmError(line, head.col, `'call ${head.text}' needs a target`);
  switch (mode) {
    case 'helper':
      s.imm = imm32(rest, line);
      return;
    case 'local':
      s.src = BPF_PSEUDO_CALL;
      s.imm = target(st, rest, idx, 'imm');
      return;
    case 'kfunc':
    case 'runtime':
      s.src = BPF_PSEUDO_KFUNC_CALL;
      s.imm = imm32(rest, line);
      if (groups[1] !== undefined) s.off = off16(groups[1], line);
      return;
    default:
      throw new AsmError(
        line,
        head.col,
        `unknown call kind '${head.text}' (expected local, helper, kfunc or a number)`,
      );
  }
}

// ---- operands ----------------------------------------------------------------------------

function single(op: readonly Token[], line: number, what: string): Token {
  const t = op[0] as Token;
  if (op.length > 1) {
    const extra = op[1] as Token;
    throw new AsmError(line, extra.col, `unexpected '${extra.text}' after ${what}`);
  }
  return t;
}

function regToken(t: Token, line: number): number {
  if (t.kind !== 'reg') throw new AsmError(line, t.col, `expected a register, got '${t.text}'`);
  const m = /^%r(\d{1,2})$/i.exec(t.text);
  const r = m === null ? -1 : Number(m[1]);
  if (r < 0 || r >= MAX_BPF_REG) throw new AsmError(line, t.col, `invalid register '${t.text}'`);
  return r;
}

function reg(op: readonly Token[], line: number): number {
  return regToken(single(op, line, 'register'), line);
}

function parseNumber(t: Token, line: number): bigint {
  const m = /^([+-]?)(?:0[xX]([0-9a-fA-F]+)|([0-9]+))$/.exec(t.text);
  if (t.kind !== 'num' || m === null || t.text.length > 80) {
    throw new AsmError(
      line,
      t.col,
      `${t.kind === 'num' ? 'invalid number' : 'expected a number, got'} '${t.text}'`,
    );
  }
  const mag = BigInt(m[2] !== undefined ? `0x${m[2]}` : (m[3] ?? '0'));
  return m[1] === '-' ? -mag : mag;
}

function num(op: readonly Token[], line: number, min: bigint, max: bigint, what: string): bigint {
  const t = single(op, line, 'number');
  const v = parseNumber(t, line);
  if (v < min || v > max) throw new AsmError(line, t.col, `${what} ${t.text} out of range`);
  return v;
}

/** A 32-bit immediate: [-2^31, 2^32-1], values above INT32_MAX keep their bit pattern. */
function imm32(op: readonly Token[], line: number): number {
  return Number(BigInt.asIntN(32, num(op, line, S32_MIN, U32_MAX, 'immediate')));
}

function off16(op: readonly Token[], line: number): number {
  return Number(num(op, line, S16_MIN, S16_MAX, 'offset'));
}

/** `[%reg]`, `[%reg+off]`, `[%reg-off]`, `[%reg + off]`: returns [reg, off]. */
function mem(op: readonly Token[], line: number): [number, number] {
  const open = op[0] as Token;
  if (open.text !== '[')
    throw new AsmError(
      line,
      open.col,
      `expected a memory operand like [%r1+8], got '${open.text}'`,
    );
  const r = op[1];
  if (r === undefined) throw new AsmError(line, open.col, "expected a register after '['");
  const base = regToken(r, line);
  let p = 2;
  let sign = 1n;
  let offTok: Token | undefined;
  const t = op[p];
  if (t?.kind === 'punct' && (t.text === '+' || t.text === '-')) {
    sign = t.text === '-' ? -1n : 1n;
    offTok = op[p + 1];
    if (offTok?.kind !== 'num' || /^[+-]/.test(offTok.text)) {
      throw new AsmError(line, (offTok ?? t).col, `expected an offset after '${t.text}'`);
    }
    p += 2;
  } else if (t?.kind === 'num') {
    if (!/^[+-]/.test(t.text))
      throw new AsmError(line, t.col, `expected '+' or '-' before '${t.text}'`);
    offTok = t;
    p += 1;
  }
  const close = op[p];
  if (close?.text !== ']') {
    throw new AsmError(line, close?.col ?? (op[p - 1] as Token).col, "expected ']'");
  }
  if (op[p + 1] !== undefined) {
    const extra = op[p + 1] as Token;
    throw new AsmError(line, extra.col, `unexpected '${extra.text}' after memory operand`);
  }
  if (offTok === undefined) return [base, 0];
  const v = sign * parseNumber(offTok, line);
  if (v < S16_MIN || v > S16_MAX) throw new AsmError(line, offTok.col, `offset ${v} out of range`);
  return [base, Number(v)];
}

/**
 * A jump or call target: a label (resolved later) or a signed slot count. Returns the value
 * to store now (0 for a label; the fixup fills it in).
 */
function target(st: State, op: readonly Token[], slot: number, field: 'off' | 'imm'): number {
  const line = st.line;
  const t = single(op, line, 'target');
  if (t.kind === 'word') {
    st.fixups.push({ slot, field, name: t.text, line, col: t.col });
    return 0;
  }
  if (t.kind !== 'num' || !/^[+-]/.test(t.text)) {
    throw new AsmError(
      line,
      t.col,
      `expected a label or a signed offset such as +2, got '${t.text}'`,
    );
  }
  const v = parseNumber(t, line);
  const [min, max] = field === 'off' ? [S16_MIN, S16_MAX] : [S32_MIN, S32_MAX];
  if (v < min || v > max) throw new AsmError(line, t.col, `jump offset ${t.text} out of range`);
  return Number(v);
}
