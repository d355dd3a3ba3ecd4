/**
 * The disassembler: one printer, driven by the opcode table (a switch on `OpInfo.kind`), in
 * three syntaxes:
 *
 * - `'asm'`: the conformance suite's assembly syntax, exactly what `assemble` reads, so that
 *   `assemble(disassemble(insns))` gives back the same bytes (jumps print as `+N`/`-N`, or as
 *   labels with `labels: true`; callx prints as the suite's `call %rN`; encodings the syntax
 *   has no words for print as `.raw u64`).
 * - `'llvm'`: llvm-objdump's BPF syntax as clang users read it (`r0 = *(u32 *)(r1 + 0x4)`,
 *   `if w1 > 0x5 goto +0x3`, `r1 = 0x1234 ll`, `lock *(u64 *)(r10 - 0x8) += r1`).
 * - `'kernel'`: the kernel's `print_bpf_insn` (kernel/bpf/disasm.c) as the verifier log shows
 *   it (`(61) r0 = *(u32 *)(r1 +4)`, `(85) call bpf_map_lookup_elem#1`, `(05) goto pc+3`).
 *
 * Nothing here throws on bad input: a slot that does not decode (unknown opcode, reserved
 * fields set, an lddw without its second half) prints as `.invalid 0x<u64>` in every syntax,
 * where the u64 is the slot read as little-endian (the `-- raw` format). The assembler
 * accepts `.invalid` and `.raw`, so even garbage round-trips through the 'asm' syntax.
 *
 * Called from: the verifier log (`syntax: 'kernel'`), the CLI, tests and fuzzers.
 */

import { isBpfError } from '../errors.js';
import { callxReg, checkInsn, decodeInsns, type Insn } from '../isa/insn.js';
import {
  BPF_HELPER_CALL,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  INSN_SIZE,
} from '../isa/opcodes.js';
import { BPF_ALU_STRING, type AccessSize, type JmpCond, type OpInfo } from '../isa/table.js';
import { LDDW_PSEUDO_NAMES } from './assembler.js';

/** The three output syntaxes. */
export type DisasmSyntax = 'asm' | 'llvm' | 'kernel';

/** Options of the disassembler. */
export interface DisasmOptions {
  /** Output syntax; `'asm'` by default. */
  readonly syntax?: DisasmSyntax;
  /**
   * Prefix each line with its slot index (`12: ` for kernel, llvm-objdump's `      12:\t`).
   * Default: true for 'llvm' and 'kernel', false for 'asm' (where it becomes a `#` comment).
   */
  readonly showIndex?: boolean;
  /** Show the instruction bytes as llvm-objdump does (a `#` comment in 'asm'). Default false. */
  readonly showBytes?: boolean;
  /** 'asm' only: print jump and local-call targets as labels `L<idx>:`. Default false. */
  readonly labels?: boolean;
  /** Kernel syntax: the name of helper `id` (`call bpf_map_lookup_elem#1`); else `unknown#id`. */
  readonly helperName?: (id: number) => string | undefined;
  /** Kernel syntax: the name of kfunc `id`; else `kernel-function#id`. */
  readonly kfuncName?: (id: number) => string | undefined;
}

const JMP_COND_STR: Readonly<Record<JmpCond, string>> = {
  eq: '==',
  gt: '>',
  ge: '>=',
  set: '&',
  ne: '!=',
  sgt: 's>',
  sge: 's>=',
  lt: '<',
  le: '<=',
  slt: 's<',
  sle: 's<=',
};

const SIZE_STR: Readonly<Record<AccessSize, string>> = { 1: 'u8', 2: 'u16', 4: 'u32', 8: 'u64' };

/** A slot as the little-endian u64 of the `-- raw` format, in `0x%016x`. */
function slotHex(i: Insn): string {
  const v =
    (BigInt(i.imm >>> 0) << 32n) |
    (BigInt(i.off & 0xffff) << 16n) |
    (BigInt(((i.src & 0xf) << 4) | (i.dst & 0xf)) << 8n) |
    BigInt(i.code & 0xff);
  return `0x${v.toString(16).padStart(16, '0')}`;
}

function invalidLine(i: Insn): string {
  return `.invalid ${slotHex(i)}`;
}

/** LLVM's formatHex of a signed value: `0x5`, `-0x4`. */
function llvmHex(v: number | bigint): string {
  const b = BigInt(v);
  return b < 0n ? `-0x${(-b).toString(16)}` : `0x${b.toString(16)}`;
}

/** `%+d` of printf. */
function signed(v: number): string {
  return v < 0 ? `${v}` : `+${v}`;
}

/** The table entry of the instruction at `idx`, or undefined when the slot does not decode. */
function decodeAt(insns: readonly Insn[], idx: number): OpInfo | undefined {
  const i = insns[idx];
  if (i === undefined) return undefined;
  let info: OpInfo;
  try {
    info = checkInsn(i, idx);
  } catch (e) {
    if (isBpfError(e)) return undefined;
    throw e;
  }
  if (info.kind === 'lddw') {
    const next = insns[idx + 1];
    if (
      next === undefined ||
      next.code !== 0 ||
      next.dst !== 0 ||
      next.src !== 0 ||
      next.off !== 0
    ) {
      return undefined;
    }
  }
  return info;
}

/** Relative target of a jump, local call or lddw func; undefined when the insn has none. */
function relTarget(i: Insn, info: OpInfo): number | undefined {
  switch (info.kind) {
    case 'jmp':
    case 'ja':
    case 'may_goto':
      return i.off;
    case 'ja32':
      return i.imm;
    case 'call':
      return i.src === BPF_PSEUDO_CALL ? i.imm : undefined;
    case 'lddw':
      return i.src === BPF_PSEUDO_FUNC ? i.imm : undefined;
    default:
      return undefined;
  }
}

/**
 * Disassembles the instruction at `insns[idx]` (both slots of an lddw) without index or
 * bytes. Never throws: a slot that does not decode prints as `.invalid 0x<u64>`.
 *
 * @example
 * ```ts
 * disasmInsn(assemble('ldxw %r0, [%r1+4]'), 0, 'kernel'); // '(61) r0 = *(u32 *)(r1 +4)'
 * disasmInsn(assemble('ldxw %r0, [%r1+4]'), 0, 'llvm');   // 'r0 = *(u32 *)(r1 + 0x4)'
 * ```
 */
export function disasmInsn(
  insns: readonly Insn[],
  idx: number,
  syntax: DisasmSyntax = 'asm',
  opts: DisasmOptions = {},
): string {
  const i = insns[idx];
  if (i === undefined) return '.invalid';
  const info = decodeAt(insns, idx);
  if (info === undefined) return invalidLine(i);
  return printInsn(insns, idx, i, info, syntax, opts, undefined);
}

/**
 * Disassembles a program, one line per instruction (lddw takes one line), each ending in a
 * newline. Never throws: slots that do not decode print as `.invalid 0x<u64>`.
 *
 * @example
 * ```ts
 * disassemble(assemble('mov %r0, 1\nexit'), { syntax: 'kernel' });
 * // '0: (b7) r0 = 1\n1: (95) exit\n'
 * ```
 */
export function disassemble(insns: readonly Insn[], opts: DisasmOptions = {}): string {
  const syntax = opts.syntax ?? 'asm';
  const showIndex = opts.showIndex ?? syntax !== 'asm';
  const infos: (OpInfo | undefined)[] = [];
  const starts = new Set<number>();
  for (let idx = 0; idx < insns.length; idx++) {
    const info = decodeAt(insns, idx);
    infos[idx] = info;
    starts.add(idx);
    if (info?.kind === 'lddw') idx++;
  }
  const labels = new Map<number, string>();
  if (opts.labels === true && syntax === 'asm') {
    insns.forEach((i, idx) => {
      const info = infos[idx];
      const rel = info === undefined ? undefined : relTarget(i, info);
      const t = rel === undefined ? -1 : idx + rel + 1;
      if (starts.has(t)) labels.set(t, `L${t}`);
    });
  }
  let out = '';
  for (let idx = 0; idx < insns.length; idx++) {
    if (!starts.has(idx)) continue;
    const i = insns[idx] as Insn;
    const info = infos[idx];
    const label = labels.get(idx);
    if (label !== undefined) out += `${label}:\n`;
    const text =
      info === undefined ? invalidLine(i) : printInsn(insns, idx, i, info, syntax, opts, labels);
    const slots = info?.kind === 'lddw' ? insns.slice(idx, idx + 2) : [i];
    out += `${decorate(text, idx, slots, syntax, showIndex, opts.showBytes === true)}\n`;
  }
  return out;
}

/**
 * Disassembles raw little-endian bytes slot by slot. Never throws, whatever the bytes:
 * undecodable slots print as `.invalid 0x<u64>`, and trailing bytes that do not fill a slot
 * as `.invalid 0x<bytes> # N trailing bytes`.
 *
 * @example
 * ```ts
 * disassembleBytes(new Uint8Array([0xff, 0, 0, 0, 0, 0, 0, 0]));
 * // '.invalid 0x00000000000000ff\n'
 * ```
 */
export function disassembleBytes(bytes: Uint8Array, opts: DisasmOptions = {}): string {
  const whole = bytes.length - (bytes.length % INSN_SIZE);
  let out = disassemble(decodeInsns(bytes.subarray(0, whole)), opts);
  if (whole < bytes.length) {
    const tail = [...bytes.subarray(whole)].reverse();
    const hex = tail.map((b) => b.toString(16).padStart(2, '0')).join('');
    out += `.invalid 0x${hex} # ${bytes.length - whole} trailing bytes\n`;
  }
  return out;
}

function decorate(
  text: string,
  idx: number,
  slots: readonly Insn[],
  syntax: DisasmSyntax,
  showIndex: boolean,
  showBytes: boolean,
): string {
  const bytes = showBytes
    ? slots.map((s) => slotHex(s).slice(2).match(/../g)?.reverse().join(' ') ?? '').join(' ')
    : '';
  if (syntax === 'asm') {
    const note = [showIndex ? `${idx}` : '', bytes].filter((s) => s !== '').join(': ');
    return note === '' ? text : `${text} # ${note}`;
  }
  const prefix = showIndex
    ? syntax === 'llvm'
      ? `${String(idx).padStart(8)}:\t`
      : `${idx}: `
    : '';
  return `${prefix}${bytes === '' ? '' : `${bytes}\t`}${text}`;
}

/** The one printer: every syntax, every kind. `i` decodes to `info` (checked by the caller). */
function printInsn(
  insns: readonly Insn[],
  idx: number,
  i: Insn,
  info: OpInfo,
  syntax: DisasmSyntax,
  opts: DisasmOptions,
  labels: ReadonlyMap<number, string> | undefined,
): string {
  const code = `(${i.code.toString(16).padStart(2, '0')}) `;
  const k = syntax === 'kernel' ? code : '';
  /** A register: `%r1` in asm, `r1`/`w1` otherwise. */
  const r = (n: number, w32 = false): string =>
    syntax === 'asm' ? `%r${n}` : `${w32 ? 'w' : 'r'}${n}`;
  /** An immediate: decimal in asm and kernel, LLVM's hex in llvm. */
  const imm = (v: number): string => (syntax === 'llvm' ? llvmHex(v) : `${v}`);
  /** A memory operand: `[%r1+4]`, `(r1 + 0x4)`, `(r1 +4)`. */
  const mem = (base: number, off: number): string => {
    if (syntax === 'asm') return off === 0 ? `[%r${base}]` : `[%r${base}${signed(off)}]`;
    if (syntax === 'llvm') return `(r${base} ${off < 0 ? '-' : '+'} ${llvmHex(Math.abs(off))})`;
    return `(r${base} ${signed(off)})`;
  };
  /** A jump target relative to the next slot: `+3`, `+0x3`, `pc+3`, or a label. */
  const tgt = (rel: number): string => {
    const label = labels?.get(idx + rel + 1);
    if (label !== undefined) return label;
    if (syntax === 'llvm') return rel < 0 ? llvmHex(rel) : `+${llvmHex(rel)}`;
    return syntax === 'kernel' ? `pc${signed(rel)}` : signed(rel);
  };
  switch (info.kind) {
    case 'alu': {
      const w32 = info.width === 32;
      if (info.op === 'neg') {
        return syntax === 'asm'
          ? `${info.mnemonic} ${r(i.dst)}`
          : `${k}${r(i.dst, w32)} = -${r(i.dst, w32)}`;
      }
      const src = info.source === 'reg' ? r(i.src, w32) : imm(i.imm);
      if (syntax === 'asm') return `${info.mnemonic} ${r(i.dst)}, ${src}`;
      return `${k}${r(i.dst, w32)} ${BPF_ALU_STRING[info.op]} ${src}`;
    }
    case 'movsx': {
      const w32 = info.width === 32;
      if (syntax === 'asm') return `${info.mnemonic} ${r(i.dst)}, ${r(i.src)}`;
      return `${k}${r(i.dst, w32)} = (s${info.bits})${r(i.src, w32)}`;
    }
    case 'end':
      if (syntax === 'asm') return `${info.mnemonic} ${r(i.dst)}`;
      return `${k}${r(i.dst)} = ${info.order === 'swap' ? 'bswap' : info.order}${info.bits} ${r(i.dst)}`;
    case 'lddw':
      return printLddw(insns, idx, i, syntax, k, tgt);
    case 'ldabs':
    case 'ldind': {
      const where =
        info.kind === 'ldabs'
          ? imm(i.imm)
          : syntax === 'llvm' && i.imm === 0
            ? r(i.src)
            : `${r(i.src)} + ${imm(i.imm)}`;
      if (syntax === 'asm')
        return info.kind === 'ldabs'
          ? `${info.mnemonic} ${i.imm}`
          : `${info.mnemonic} ${r(i.src)}, ${i.imm}`;
      return `${k}r0 = *(${SIZE_STR[info.size]} *)skb[${where}]`;
    }
    case 'ldx':
    case 'ldxsx': {
      if (syntax === 'asm') return `${info.mnemonic} ${r(i.dst)}, ${mem(i.src, i.off)}`;
      const ty = `${info.kind === 'ldx' ? 'u' : 's'}${info.size * 8}`;
      return `${k}${r(i.dst)} = *(${ty} *)${mem(i.src, i.off)}`;
    }
    case 'st':
      if (syntax === 'asm') return `${info.mnemonic} ${mem(i.dst, i.off)}, ${i.imm}`;
      return `${k}*(${SIZE_STR[info.size]} *)${mem(i.dst, i.off)} = ${imm(i.imm)}`;
    case 'stx':
      if (syntax === 'asm') return `${info.mnemonic} ${mem(i.dst, i.off)}, ${r(i.src)}`;
      return `${k}*(${SIZE_STR[info.size]} *)${mem(i.dst, i.off)} = ${r(i.src)}`;
    case 'atomic':
      return printAtomic(i, info, syntax, k, r, mem);
    case 'jmp': {
      const w32 = info.width === 32;
      const src =
        info.source === 'reg'
          ? r(i.src, w32)
          : syntax === 'kernel'
            ? `0x${(i.imm >>> 0).toString(16)}`
            : imm(i.imm);
      if (syntax === 'asm') return `${info.mnemonic} ${r(i.dst)}, ${src}, ${tgt(i.off)}`;
      return `${k}if ${r(i.dst, w32)} ${JMP_COND_STR[info.cond]} ${src} goto ${tgt(i.off)}`;
    }
    case 'ja':
      return syntax === 'asm' ? `ja ${tgt(i.off)}` : `${k}goto ${tgt(i.off)}`;
    case 'ja32':
      return syntax === 'asm' ? `ja32 ${tgt(i.imm)}` : `${k}gotol ${tgt(i.imm)}`;
    case 'may_goto':
      return `${k}may_goto ${tgt(i.off)}`;
    case 'gotox':
      return `${k}gotox ${r(i.dst)}`;
    case 'call':
      return printCall(i, syntax, k, tgt, opts);
    case 'callx':
      if (syntax === 'asm' && i.dst === 0 && i.imm !== 0)
        return `.raw ${slotHex(i)} # callx %r${callxReg(i)}`;
      return `${k}${syntax === 'asm' ? 'call' : 'callx'} ${r(callxReg(i))}`;
    case 'exit':
      return `${k}exit`;
    default: {
      const never: never = info;
      return never;
    }
  }
}

function printLddw(
  insns: readonly Insn[],
  idx: number,
  i: Insn,
  syntax: DisasmSyntax,
  k: string,
  tgt: (rel: number) => string,
): string {
  const hi = (insns[idx + 1] as Insn).imm;
  const value = (BigInt(hi >>> 0) << 32n) | BigInt(i.imm >>> 0);
  if (syntax === 'kernel') return `${k}r${i.dst} = 0x${value.toString(16)}`;
  if (syntax === 'llvm') {
    if (i.src === 0) return `r${i.dst} = ${llvmHex(BigInt.asIntN(64, value))} ll`;
    return `ld_pseudo r${i.dst}, ${llvmHex(i.src)}, ${llvmHex(BigInt.asIntN(64, value))}`;
  }
  if (i.src === 0) return `lddw %r${i.dst}, 0x${value.toString(16)}`;
  const name = LDDW_PSEUDO_NAMES.get(i.src) ?? `${i.src}`;
  const v = i.src === BPF_PSEUDO_FUNC ? tgt(i.imm) : `${i.imm}`;
  const withHi = hi !== 0 || i.src === BPF_PSEUDO_MAP_VALUE || i.src === BPF_PSEUDO_MAP_IDX_VALUE;
  return `lddw %r${i.dst}, ${name} ${v}${withHi ? `, ${hi}` : ''}`;
}

function printAtomic(
  i: Insn,
  info: Extract<OpInfo, { kind: 'atomic' }>,
  syntax: DisasmSyntax,
  k: string,
  r: (n: number, w32?: boolean) => string,
  mem: (base: number, off: number) => string,
): string {
  if (syntax === 'asm') return `${info.mnemonic} ${mem(i.dst, i.off)}, ${r(i.src)}`;
  const ty = SIZE_STR[info.size];
  const w32 = syntax === 'llvm' && info.size === 4;
  const addr = mem(i.dst, i.off);
  if (syntax === 'llvm') {
    const bare = addr.slice(1, -1);
    const wsz = info.size === 4 ? '32_32' : '_64';
    switch (info.op) {
      case 'xchg':
        return `${r(i.src, w32)} = xchg${wsz}(${bare}, ${r(i.src, w32)})`;
      case 'cmpxchg':
        return `${r(0, w32)} = cmpxchg${wsz}(${bare}, ${r(0, w32)}, ${r(i.src, w32)})`;
      default:
        if (!info.fetch)
          return `lock *(${ty} *)${addr} ${BPF_ALU_STRING[info.op]} ${r(i.src, w32)}`;
        return `${r(i.src, w32)} = atomic_fetch_${info.op}((${ty} *)${addr}, ${r(i.src, w32)})`;
    }
  }
  const a64 = info.size === 8 ? '64' : '';
  switch (info.op) {
    case 'xchg':
      return `${k}r${i.src} = atomic${a64}_xchg((${ty} *)${addr}, r${i.src})`;
    case 'cmpxchg':
      return `${k}r0 = atomic${a64}_cmpxchg((${ty} *)${addr}, r0, r${i.src})`;
    default:
      if (!info.fetch) return `${k}lock *(${ty} *)${addr} ${BPF_ALU_STRING[info.op]} r${i.src}`;
      return `${k}r${i.src} = atomic${a64}_fetch_${info.op}((${ty} *)${addr}, r${i.src})`;
  }
}

function printCall(
  i: Insn,
  syntax: DisasmSyntax,
  k: string,
  tgt: (rel: number) => string,
  opts: DisasmOptions,
): string {
  if (syntax === 'llvm') return `call ${llvmHex(i.imm)}`;
  if (i.src === BPF_PSEUDO_CALL)
    return syntax === 'asm' ? `call local ${tgt(i.imm)}` : `${k}call ${tgt(i.imm)}`;
  if (i.src === BPF_HELPER_CALL) {
    if (syntax === 'asm') return `call ${i.imm}`;
    return `${k}call ${opts.helperName?.(i.imm) ?? 'unknown'}#${i.imm}`;
  }
  if (syntax === 'asm') return `call kfunc ${i.imm}${i.off === 0 ? '' : `, ${i.off}`}`;
  return `${k}call ${opts.kfuncName?.(i.imm) ?? 'kernel-function'}#${i.imm}`;
}
