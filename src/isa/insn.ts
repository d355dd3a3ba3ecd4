/**
 * `Insn`, the kernel's `struct bpf_insn`: one 8-byte slot `{ code, dst, src, off, imm }`.
 * `lddw` (ld_imm64) takes two slots; the second has code 0 and holds the upper 32 bits in imm.
 *
 * Decoding checks every slot against the opcode table and the kernel's rules for reserved
 * fields, so that everything downstream (assembler round trip, interpreter, JIT, verifier)
 * sees only well-formed instructions. A bad slot is a `DecodeError` naming its index.
 */

import { DecodeError } from '../errors.js';
import {
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_HELPER_CALL,
  INSN_SIZE,
  LD_DW_IMM,
  MAX_BPF_REG,
} from './opcodes.js';
import { lookupOp, type OpInfo } from './table.js';

/** A register number 0..10. */
export type Reg = number;

/** One instruction slot, as `struct bpf_insn`. `imm` is a signed 32-bit integer, `off` a signed 16-bit one. */
export interface Insn {
  readonly code: number;
  readonly dst: Reg;
  readonly src: Reg;
  readonly off: number;
  readonly imm: number;
}

/** Builds an `Insn`, normalising `off` to s16 and `imm` to s32. */
export function insn(code: number, dst: Reg, src: Reg, off: number, imm: number): Insn {
  return {
    code: code & 0xff,
    dst: dst & 0xf,
    src: src & 0xf,
    off: (off << 16) >> 16,
    imm: imm | 0,
  };
}

/** True for the first slot of `lddw`. */
export function isLdImm64(i: Insn): boolean {
  return i.code === LD_DW_IMM;
}

/** The 64-bit immediate of the `lddw` at `insns[idx]` (from both slots), as an unsigned bigint. */
export function ldImm64Value(insns: readonly Insn[], idx: number): bigint {
  const lo = insns[idx];
  const hi = insns[idx + 1];
  if (lo === undefined || hi === undefined) throw new DecodeError(idx, 'invalid bpf_ld_imm64 insn');
  return (BigInt(hi.imm >>> 0) << 32n) | BigInt(lo.imm >>> 0);
}

/** Reads instruction slots from little-endian bytes. The length must be a multiple of 8. */
export function decodeInsns(bytes: Uint8Array): Insn[] {
  if (bytes.length % INSN_SIZE !== 0) {
    throw new DecodeError(
      Math.floor(bytes.length / INSN_SIZE),
      `program size ${bytes.length} is not a multiple of ${INSN_SIZE}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Insn[] = [];
  for (let off = 0; off < bytes.length; off += INSN_SIZE) {
    const regs = view.getUint8(off + 1);
    out.push({
      code: view.getUint8(off),
      dst: regs & 0xf,
      src: regs >> 4,
      off: view.getInt16(off + 2, true),
      imm: view.getInt32(off + 4, true),
    });
  }
  return out;
}

/** Writes instruction slots as little-endian bytes. */
export function encodeInsns(insns: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(insns.length * INSN_SIZE);
  const view = new DataView(out.buffer);
  insns.forEach((i, idx) => {
    const off = idx * INSN_SIZE;
    view.setUint8(off, i.code);
    view.setUint8(off + 1, ((i.src & 0xf) << 4) | (i.dst & 0xf));
    view.setInt16(off + 2, i.off, true);
    view.setInt32(off + 4, i.imm, true);
  });
  return out;
}

/**
 * The register an indirect call goes through. clang puts it in dst (`callx r2` = `8d 02 ...`);
 * older encodings put it in imm with dst 0.
 */
export function callxReg(i: Insn): Reg {
  return i.dst !== 0 || i.imm === 0 ? i.dst : i.imm;
}

/**
 * Checks one slot against the table and the kernel's reserved-field rules and returns its
 * table entry. `idx` is used in errors. The second slot of an lddw is checked by `checkInsns`.
 */
export function checkInsn(i: Insn, idx: number): OpInfo {
  const info = lookupOp(i.code, i.off, i.imm);
  if (info === undefined) throw new DecodeError(idx, unknownReason(i));
  const bad = (what: string): never => {
    throw new DecodeError(idx, `${what} uses reserved fields`);
  };
  const badReg = (r: Reg): void => {
    if (r < 0 || r >= MAX_BPF_REG) throw new DecodeError(idx, `R${r} is invalid`);
  };
  switch (info.kind) {
    case 'alu':
      if (info.op === 'neg') {
        if (i.src !== 0 || i.imm !== 0) bad('BPF_NEG');
      } else if (info.source === 'imm' ? i.src !== 0 : i.imm !== 0) bad('BPF_ALU');
      badReg(i.dst);
      badReg(i.src);
      break;
    case 'movsx':
      if (i.imm !== 0) bad('BPF_MOV');
      badReg(i.dst);
      badReg(i.src);
      break;
    case 'end':
      if (i.src !== 0 || i.off !== 0) bad('BPF_END');
      badReg(i.dst);
      break;
    case 'lddw':
      if (i.off !== 0 || i.src > 6) throw new DecodeError(idx, 'invalid bpf_ld_imm64 insn');
      badReg(i.dst);
      break;
    case 'ldabs':
    case 'ldind':
      if (i.dst !== 0 || i.off !== 0 || (info.kind === 'ldabs' && i.src !== 0)) {
        bad('BPF_LD_[ABS|IND]');
      }
      badReg(i.src);
      break;
    case 'ldx':
    case 'ldxsx':
      if (i.imm !== 0) bad('BPF_LDX');
      badReg(i.dst);
      badReg(i.src);
      break;
    case 'st':
      if (i.src !== 0) bad('BPF_ST');
      badReg(i.dst);
      break;
    case 'stx':
    case 'atomic':
      badReg(i.dst);
      badReg(i.src);
      if (info.kind === 'stx' && i.imm !== 0) bad('BPF_STX');
      break;
    case 'jmp':
      if (info.source === 'imm' ? i.src !== 0 : i.imm !== 0) bad('BPF_JMP/JMP32');
      badReg(i.dst);
      badReg(i.src);
      break;
    case 'ja':
      if (i.dst !== 0 || i.src !== 0 || i.imm !== 0) bad('BPF_JA');
      break;
    case 'ja32':
      if (i.dst !== 0 || i.src !== 0 || i.off !== 0) bad('BPF_JA');
      break;
    case 'gotox':
      if (i.src !== 0 || i.off !== 0 || i.imm !== 0) bad('BPF_JA|BPF_X');
      badReg(i.dst);
      break;
    case 'may_goto':
      if (i.dst !== 0 || i.src !== 0 || i.imm !== 0) bad('BPF_JCOND');
      break;
    case 'call':
      if (i.dst !== 0) bad('BPF_CALL');
      if (
        i.src !== BPF_HELPER_CALL &&
        i.src !== BPF_PSEUDO_CALL &&
        i.src !== BPF_PSEUDO_KFUNC_CALL
      ) {
        bad('BPF_CALL');
      }
      if (i.src !== BPF_PSEUDO_KFUNC_CALL && i.off !== 0) bad('BPF_CALL');
      break;
    case 'callx':
      if (i.src !== 0 || i.off !== 0 || (i.dst !== 0 && i.imm !== 0)) bad('BPF_CALL|BPF_X');
      badReg(callxReg(i));
      break;
    case 'exit':
      if (i.dst !== 0 || i.src !== 0 || i.off !== 0 || i.imm !== 0) bad('BPF_EXIT');
      break;
    default: {
      const never: never = info;
      return never;
    }
  }
  return info;
}

function unknownReason(i: Insn): string {
  const hex = i.code.toString(16).padStart(2, '0');
  return lookupOp(i.code, 0, 0) === undefined &&
    lookupOp(i.code, 1, 16) === undefined &&
    lookupOp(i.code, 8, 0) === undefined
    ? `unknown opcode ${hex}`
    : `invalid off ${i.off} or imm ${i.imm} for opcode ${hex}`;
}

/**
 * Checks every slot of a program and returns the table entry of each (undefined for the
 * second slot of an lddw). Throws `DecodeError` naming the first bad slot.
 */
export function checkInsns(insns: readonly Insn[]): (OpInfo | undefined)[] {
  const infos: (OpInfo | undefined)[] = new Array<OpInfo | undefined>(insns.length);
  for (let idx = 0; idx < insns.length; idx++) {
    const i = insns[idx] as Insn;
    const info = checkInsn(i, idx);
    infos[idx] = info;
    if (info.kind === 'lddw') {
      const next = insns[idx + 1];
      if (next === undefined) throw new DecodeError(idx, 'invalid bpf_ld_imm64 insn');
      if (next.code !== 0 || next.dst !== 0 || next.src !== 0 || next.off !== 0) {
        throw new DecodeError(idx + 1, 'invalid bpf_ld_imm64 insn');
      }
      idx++;
      infos[idx] = undefined;
    }
  }
  return infos;
}
