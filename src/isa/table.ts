/**
 * The opcode table: one `OpInfo` per valid instruction shape (opcode byte plus, where the
 * ISA overloads an opcode, the value of `off` or `imm` that selects the variant). It drives
 * decoding, encoding, the assembler, both disassembler styles, the interpreter and the JIT,
 * in the spirit of uBPF's instruction filter table: facts live in this table, not in code.
 *
 * Invariant: for every encoded instruction at most one entry matches (`lookupOp`).
 */

import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JMP,
  BPF_JMP32,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_ST,
  BPF_STX,
  BPF_SUB,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
} from './opcodes.js';

/** Binary and unary ALU operations. `sdiv`/`smod` are BPF_DIV/BPF_MOD with off = 1. */
export type AluOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'sdiv'
  | 'or'
  | 'and'
  | 'lsh'
  | 'rsh'
  | 'neg'
  | 'mod'
  | 'smod'
  | 'xor'
  | 'mov'
  | 'arsh';

/** Conditions of conditional jumps. */
export type JmpCond =
  'eq' | 'gt' | 'ge' | 'set' | 'ne' | 'sgt' | 'sge' | 'lt' | 'le' | 'slt' | 'sle';

/** Atomic read-modify-write operations (imm of BPF_STX | BPF_ATOMIC, fetch bit aside). */
export type AtomicOp = 'add' | 'or' | 'and' | 'xor' | 'xchg' | 'cmpxchg';

/** Access width in bytes. */
export type AccessSize = 1 | 2 | 4 | 8;

/** Operand width of ALU and JMP operations. */
export type Width = 32 | 64;

/** Which operand the instruction takes besides dst. */
export type Source = 'imm' | 'reg';

/** What an opcode table entry describes, with the facts each kind needs. */
export type OpInfo =
  | {
      readonly kind: 'alu';
      readonly op: AluOp;
      readonly width: Width;
      readonly source: Source;
      readonly mnemonic: string;
      readonly code: number;
      readonly off?: number;
    }
  | {
      readonly kind: 'movsx';
      readonly width: Width;
      /** bits of the source that are sign-extended: 8, 16 or 32 (the off field). */
      readonly bits: 8 | 16 | 32;
      readonly mnemonic: string;
      readonly code: number;
      readonly off: number;
    }
  | {
      readonly kind: 'end';
      /** le/be: byte order to convert to (host is little endian); bswap: unconditional. */
      readonly order: 'le' | 'be' | 'swap';
      readonly bits: 16 | 32 | 64;
      readonly mnemonic: string;
      readonly code: number;
      readonly imm: number;
    }
  | { readonly kind: 'lddw'; readonly mnemonic: 'lddw'; readonly code: number }
  | {
      readonly kind: 'ldabs' | 'ldind';
      readonly size: AccessSize;
      readonly mnemonic: string;
      readonly code: number;
    }
  | {
      readonly kind: 'ldx' | 'st' | 'stx';
      readonly size: AccessSize;
      readonly mnemonic: string;
      readonly code: number;
    }
  | {
      readonly kind: 'ldxsx';
      readonly size: 1 | 2 | 4;
      readonly mnemonic: string;
      readonly code: number;
    }
  | {
      readonly kind: 'atomic';
      readonly op: AtomicOp;
      readonly fetch: boolean;
      readonly size: 4 | 8;
      readonly mnemonic: string;
      readonly code: number;
      readonly imm: number;
    }
  | {
      readonly kind: 'jmp';
      readonly cond: JmpCond;
      readonly width: Width;
      readonly source: Source;
      readonly mnemonic: string;
      readonly code: number;
    }
  | {
      readonly kind: 'ja' | 'ja32' | 'gotox' | 'may_goto' | 'call' | 'callx' | 'exit';
      readonly mnemonic: string;
      readonly code: number;
    };

/** The kinds of instruction, for exhaustive switches. */
export type OpKind = OpInfo['kind'];

const ALU_OPS: readonly [AluOp, number][] = [
  ['add', BPF_ADD],
  ['sub', BPF_SUB],
  ['mul', BPF_MUL],
  ['div', BPF_DIV],
  ['or', BPF_OR],
  ['and', BPF_AND],
  ['lsh', BPF_LSH],
  ['rsh', BPF_RSH],
  ['mod', BPF_MOD],
  ['xor', BPF_XOR],
  ['mov', BPF_MOV],
  ['arsh', BPF_ARSH],
];

const JMP_CONDS: readonly [JmpCond, number][] = [
  ['eq', BPF_JEQ],
  ['gt', BPF_JGT],
  ['ge', BPF_JGE],
  ['set', BPF_JSET],
  ['ne', BPF_JNE],
  ['sgt', BPF_JSGT],
  ['sge', BPF_JSGE],
  ['lt', BPF_JLT],
  ['le', BPF_JLE],
  ['slt', BPF_JSLT],
  ['sle', BPF_JSLE],
];

const SIZES: readonly [AccessSize, number, string][] = [
  [1, BPF_B, 'b'],
  [2, BPF_H, 'h'],
  [4, BPF_W, 'w'],
  [8, BPF_DW, 'dw'],
];

const ATOMIC_OPS: readonly [AtomicOp, number][] = [
  ['add', BPF_ADD],
  ['or', BPF_OR],
  ['and', BPF_AND],
  ['xor', BPF_XOR],
];

function buildTable(): OpInfo[] {
  const t: OpInfo[] = [];
  for (const [cls, width, suffix] of [
    [BPF_ALU64, 64, ''],
    [BPF_ALU, 32, '32'],
  ] as const) {
    for (const [op, bits] of ALU_OPS) {
      t.push({
        kind: 'alu',
        op,
        width,
        source: 'imm',
        mnemonic: op + suffix,
        code: cls | BPF_K | bits,
      });
      t.push({
        kind: 'alu',
        op,
        width,
        source: 'reg',
        mnemonic: op + suffix,
        code: cls | BPF_X | bits,
      });
    }
    for (const [op, bits] of [
      ['sdiv', BPF_DIV],
      ['smod', BPF_MOD],
    ] as const) {
      t.push({
        kind: 'alu',
        op,
        width,
        source: 'imm',
        mnemonic: op + suffix,
        code: cls | BPF_K | bits,
        off: 1,
      });
      t.push({
        kind: 'alu',
        op,
        width,
        source: 'reg',
        mnemonic: op + suffix,
        code: cls | BPF_X | bits,
        off: 1,
      });
    }
    t.push({
      kind: 'alu',
      op: 'neg',
      width,
      source: 'imm',
      mnemonic: 'neg' + suffix,
      code: cls | BPF_K | BPF_NEG,
    });
    const sx: readonly (8 | 16 | 32)[] = width === 64 ? [8, 16, 32] : [8, 16];
    for (const b of sx) {
      t.push({
        kind: 'movsx',
        width,
        bits: b,
        mnemonic: `movsx${b}${width}`,
        code: cls | BPF_X | BPF_MOV,
        off: b,
      });
    }
  }
  for (const bits of [16, 32, 64] as const) {
    t.push({
      kind: 'end',
      order: 'le',
      bits,
      mnemonic: `le${bits}`,
      code: BPF_ALU | BPF_K | BPF_END,
      imm: bits,
    });
    t.push({
      kind: 'end',
      order: 'be',
      bits,
      mnemonic: `be${bits}`,
      code: BPF_ALU | BPF_X | BPF_END,
      imm: bits,
    });
    t.push({
      kind: 'end',
      order: 'swap',
      bits,
      mnemonic: `bswap${bits}`,
      code: BPF_ALU64 | BPF_K | BPF_END,
      imm: bits,
    });
  }
  t.push({ kind: 'lddw', mnemonic: 'lddw', code: BPF_LD | BPF_DW | BPF_IMM });
  for (const [size, sz, s] of SIZES) {
    if (size !== 8) {
      t.push({ kind: 'ldabs', size, mnemonic: `ldabs${s}`, code: BPF_LD | sz | BPF_ABS });
      t.push({ kind: 'ldind', size, mnemonic: `ldind${s}`, code: BPF_LD | sz | BPF_IND });
      t.push({ kind: 'ldxsx', size, mnemonic: `ldxs${s}`, code: BPF_LDX | sz | BPF_MEMSX });
    }
    t.push({ kind: 'ldx', size, mnemonic: `ldx${s}`, code: BPF_LDX | sz | BPF_MEM });
    t.push({ kind: 'st', size, mnemonic: `st${s}`, code: BPF_ST | sz | BPF_MEM });
    t.push({ kind: 'stx', size, mnemonic: `stx${s}`, code: BPF_STX | sz | BPF_MEM });
  }
  for (const [size, sz, suffix] of [
    [8, BPF_DW, ''],
    [4, BPF_W, '32'],
  ] as const) {
    const code = BPF_STX | sz | BPF_ATOMIC;
    for (const [op, bits] of ATOMIC_OPS) {
      t.push({
        kind: 'atomic',
        op,
        fetch: false,
        size,
        mnemonic: `lock ${op}${suffix}`,
        code,
        imm: bits,
      });
      t.push({
        kind: 'atomic',
        op,
        fetch: true,
        size,
        mnemonic: `lock fetch ${op}${suffix}`,
        code,
        imm: bits | BPF_FETCH,
      });
    }
    t.push({
      kind: 'atomic',
      op: 'xchg',
      fetch: true,
      size,
      mnemonic: `lock xchg${suffix}`,
      code,
      imm: BPF_XCHG,
    });
    t.push({
      kind: 'atomic',
      op: 'cmpxchg',
      fetch: true,
      size,
      mnemonic: `lock cmpxchg${suffix}`,
      code,
      imm: BPF_CMPXCHG,
    });
  }
  for (const [cls, width, suffix] of [
    [BPF_JMP, 64, ''],
    [BPF_JMP32, 32, '32'],
  ] as const) {
    for (const [cond, bits] of JMP_CONDS) {
      t.push({
        kind: 'jmp',
        cond,
        width,
        source: 'imm',
        mnemonic: `j${cond}${suffix}`,
        code: cls | BPF_K | bits,
      });
      t.push({
        kind: 'jmp',
        cond,
        width,
        source: 'reg',
        mnemonic: `j${cond}${suffix}`,
        code: cls | BPF_X | bits,
      });
    }
  }
  t.push({ kind: 'ja', mnemonic: 'ja', code: BPF_JMP | BPF_JA });
  t.push({ kind: 'ja32', mnemonic: 'ja32', code: BPF_JMP32 | BPF_JA });
  t.push({ kind: 'gotox', mnemonic: 'gotox', code: BPF_JMP | BPF_X | BPF_JA });
  t.push({ kind: 'may_goto', mnemonic: 'may_goto', code: BPF_JMP | BPF_JCOND });
  t.push({ kind: 'call', mnemonic: 'call', code: BPF_JMP | BPF_CALL });
  t.push({ kind: 'callx', mnemonic: 'callx', code: BPF_JMP | BPF_X | BPF_CALL });
  t.push({ kind: 'exit', mnemonic: 'exit', code: BPF_JMP | BPF_EXIT });
  return t;
}

/** Every ALU operation, for exhaustive tests and generators. */
export const ALU_OP_NAMES: readonly AluOp[] = [...ALU_OPS.map(([op]) => op), 'sdiv', 'smod', 'neg'];

/**
 * The kernel's `bpf_alu_string`: how its disassembler and verifier messages spell each ALU
 * operation (`r1 += r2`, `R2 pointer arithmetic with *= operator prohibited`).
 */
export const BPF_ALU_STRING: Readonly<Record<AluOp, string>> = {
  add: '+=',
  sub: '-=',
  mul: '*=',
  div: '/=',
  sdiv: 's/=',
  or: '|=',
  and: '&=',
  lsh: '<<=',
  rsh: '>>=',
  neg: 'neg',
  mod: '%=',
  smod: 's%=',
  xor: '^=',
  mov: '=',
  arsh: 's>>=',
};

/** Every condition of conditional jumps. */
export const JMP_COND_NAMES: readonly JmpCond[] = JMP_CONDS.map(([c]) => c);

/** Every valid instruction shape. */
export const OP_TABLE: readonly OpInfo[] = buildTable();

/** Entries by opcode byte; several entries share a byte where off or imm selects the variant. */
const BY_CODE: ReadonlyMap<number, readonly OpInfo[]> = (() => {
  const m = new Map<number, OpInfo[]>();
  for (const info of OP_TABLE) {
    const list = m.get(info.code);
    if (list === undefined) m.set(info.code, [info]);
    else list.push(info);
  }
  return m;
})();

/** Entries by mnemonic (an ALU or JMP mnemonic has an imm and a reg entry). */
export const OPS_BY_MNEMONIC: ReadonlyMap<string, readonly OpInfo[]> = (() => {
  const m = new Map<string, OpInfo[]>();
  for (const info of OP_TABLE) {
    const list = m.get(info.mnemonic);
    if (list === undefined) m.set(info.mnemonic, [info]);
    else list.push(info);
  }
  return m;
})();

/** True when opcode byte `code` is used by some table entry. */
export function isKnownOpcode(code: number): boolean {
  return BY_CODE.has(code);
}

/**
 * The table entry for an instruction, or undefined. Variants are chosen by `off`
 * (sdiv/smod, movsx) and `imm` (byte swaps, atomics); an ALU entry without `off` matches only off 0.
 */
export function lookupOp(code: number, off: number, imm: number): OpInfo | undefined {
  const list = BY_CODE.get(code);
  if (list === undefined) return undefined;
  for (const info of list) {
    switch (info.kind) {
      case 'alu':
        if ((info.off ?? 0) === off) return info;
        break;
      case 'movsx':
        if (info.off === off) return info;
        break;
      case 'end':
      case 'atomic':
        if (info.imm === imm) return info;
        break;
      default:
        return info;
    }
  }
  return undefined;
}
