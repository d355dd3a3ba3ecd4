/**
 * ALU instructions on the verifier state (kernel `check_alu_op`, `adjust_reg_min_max_vals`,
 * `adjust_ptr_min_max_vals`, `sanitize_*` aside): scalar transfer through scalar.ts, pointer
 * arithmetic where the kernel allows it (a pointer plus or minus a bounded scalar, packet and
 * stack pointers subtracted from their own kind), and the kernel's rejections of everything
 * else on pointers. Also the scalar links (`id`) that let a bounds check on a copy refine the
 * original (`find_equal_scalars`).
 *
 * Called from: do-check.ts for `alu`, `movsx` and `end` insns.
 */

import type { Insn } from '../isa/insn.js';
import { BPF_ALU_STRING, type AluOp, type OpInfo } from '../isa/table.js';
import {
  S64_MIN,
  SCALAR_UNKNOWN,
  scalarByteSwap,
  scalarKnown,
  scalarMovsx,
  toU64,
  type Scalar,
} from './bounds.js';
import { adjustScalarMinMaxVals, maybeForkScalars } from './scalar.js';
import { tnumIsConst } from './tnum.js';
import {
  REG_NOT_INIT,
  regIsPointer,
  regScalar,
  regTypeStr,
  regUnknownScalar,
  regWith,
  typeIsPktPointer,
  type RegState,
} from './reg-state.js';
import { copyState, type VerifierState } from './states.js';
import { markChainPrecision } from './precision.js';
import { BPF_MAX_VAR_OFF } from './check-mem.js';
import type { VerifierEnv } from './verifier-env.js';

/** The immediate as a 64-bit scalar (sign-extended, as the ALU64 K forms use it). */
function immScalar(imm: number): Scalar {
  return scalarKnown(toU64(BigInt(imm)));
}

/** Reads register `r` of the current frame, rejecting NOT_INIT (`check_reg_arg` SRC_OP). */
export function readReg(env: VerifierEnv, st: VerifierState, idx: number, r: number): RegState {
  const reg = st.frames[st.curframe]?.regs[r] ?? REG_NOT_INIT;
  if (reg.type === 'NOT_INIT') throw env.fail(idx, `R${r} !read_ok`);
  return reg;
}

/** Writes register `r` of the current frame (`check_reg_arg` DST_OP; R10 is read only). */
export function writeReg(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  r: number,
  reg: RegState,
): void {
  if (r === 10) throw env.fail(idx, 'frame pointer is read only');
  const f = st.frames[st.curframe];
  if (f === undefined) throw new RangeError('bug: no current frame');
  f.regs[r] = reg;
}

/** Pointer types the kernel forbids arithmetic on (`adjust_ptr_min_max_vals`' switch). */
function arithProhibited(reg: RegState): boolean {
  return (
    reg.type === 'CONST_PTR_TO_MAP' ||
    reg.type === 'PTR_TO_PACKET_END' ||
    reg.type === 'PTR_TO_FUNC' ||
    reg.type === 'PTR_TO_BTF_ID' ||
    reg.type === 'CONST_PTR_TO_DYNPTR'
  );
}

/**
 * `ptr OP scalar` (or `scalar + ptr`), kernel `adjust_ptr_min_max_vals`: only add and sub,
 * only 64-bit, only on pointer types that allow it, with a bounded scalar.
 */
function adjustPtr(
  env: VerifierEnv,
  idx: number,
  dstno: number,
  ptr: RegState,
  off: Scalar,
  op: AluOp,
  ptrIsDst: boolean,
): RegState {
  if (ptr.maybeNull) {
    throw env.fail(
      idx,
      `R${dstno} pointer arithmetic on ${regTypeStr(ptr)} prohibited, null-check it first`,
    );
  }
  if (arithProhibited(ptr)) {
    throw env.fail(idx, `R${dstno} pointer arithmetic on ${regTypeStr(ptr)} prohibited`);
  }
  if (op === 'sub' && !ptrIsDst) {
    throw env.fail(idx, `R${dstno} tried to subtract pointer from scalar`);
  }
  if (op === 'and' || op === 'or' || op === 'xor') {
    throw env.fail(idx, `R${dstno} bitwise operator ${BPF_ALU_STRING[op]} on pointer prohibited`);
  }
  if (op !== 'add' && op !== 'sub') {
    throw env.fail(
      idx,
      `R${dstno} pointer arithmetic with ${BPF_ALU_STRING[op]} operator prohibited`,
    );
  }
  const known = tnumIsConst(off.varOff);
  if (known) {
    const v = BigInt.asIntN(64, off.varOff.value);
    if (v >= BigInt(BPF_MAX_VAR_OFF) || v <= -BigInt(BPF_MAX_VAR_OFF)) {
      throw env.fail(idx, `math between ${regTypeStr(ptr)} pointer and ${v} is not allowed`);
    }
    const newOff = op === 'add' ? ptr.off + Number(v) : ptr.off - Number(v);
    if (newOff >= BPF_MAX_VAR_OFF || newOff <= -BPF_MAX_VAR_OFF) {
      throw env.fail(idx, `value ${v} makes ${regTypeStr(ptr)} pointer be out of bounds`);
    }
    return regWith(ptr, { off: newOff, live: 0 });
  }
  if (off.smin === S64_MIN) {
    throw env.fail(
      idx,
      `math between ${regTypeStr(ptr)} pointer and register with unbounded min value is not allowed`,
    );
  }
  const scalar = adjustScalarMinMaxVals(ptr.scalar, off, op, 64);
  const fields: Partial<RegState> = { scalar, live: 0 };
  if (typeIsPktPointer(ptr.type)) {
    // A new variable offset: earlier range checks no longer apply (new id, range 0).
    return regWith(ptr, { ...fields, id: env.newId(), range: 0 });
  }
  return regWith(ptr, fields);
}

/** `ptr - ptr` of the same kind: an unknown scalar (a length); everything else is rejected. */
function ptrMinusPtr(
  env: VerifierEnv,
  idx: number,
  dstno: number,
  dst: RegState,
  src: RegState,
  op: AluOp,
): RegState {
  const sameKind =
    dst.type === src.type &&
    !dst.maybeNull &&
    !src.maybeNull &&
    (typeIsPktPointer(dst.type) ||
      (dst.type === 'PTR_TO_STACK' && dst.frameno === src.frameno) ||
      (dst.type === 'PTR_TO_MAP_VALUE' && dst.map?.id === src.map?.id) ||
      (dst.type === 'PTR_TO_MEM' && dst.refObjId === src.refObjId && dst.id === src.id));
  const pktEnd =
    (typeIsPktPointer(dst.type) && src.type === 'PTR_TO_PACKET_END') ||
    (dst.type === 'PTR_TO_PACKET_END' && typeIsPktPointer(src.type));
  if (op === 'sub' && (sameKind || pktEnd)) return regUnknownScalar();
  if (op === 'add') throw env.fail(idx, `R${dstno} pointer += pointer prohibited`);
  throw env.fail(idx, `R${dstno} pointer ${BPF_ALU_STRING[op]} pointer prohibited`);
}

/**
 * Checks an ALU insn (`alu`, `movsx`, `end`) and applies it to `st`. Returns further states
 * to explore (the kernel's `maybe_fork_scalars`), usually none.
 */
export function checkAluOp(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  insn: Insn,
  op: OpInfo,
): VerifierState[] {
  const d = insn.dst;
  if (op.kind === 'end') {
    const dst = readReg(env, st, idx, d);
    if (regIsPointer(dst)) throw env.fail(idx, `R${d} pointer arithmetic prohibited`);
    writeReg(env, st, idx, d, regScalar(scalarByteSwap(dst.scalar, op.order, op.bits)));
    return [];
  }
  if (op.kind === 'movsx') {
    const src = readReg(env, st, idx, insn.src);
    if (regIsPointer(src)) {
      throw env.fail(idx, `R${insn.src} sign-extension mov of a pointer prohibited`);
    }
    writeReg(env, st, idx, d, regScalar(scalarMovsx(src.scalar, op.width, op.bits)));
    return [];
  }
  if (op.kind !== 'alu') throw new RangeError(`bug: checkAluOp on ${op.kind}`);
  const { width } = op;
  const aluOp = op.op;
  // Source operand.
  let src: RegState;
  if (op.source === 'reg' && aluOp !== 'neg') {
    src = readReg(env, st, idx, insn.src);
  } else {
    src = regScalar(immScalar(insn.imm));
  }
  if (aluOp === 'mov') {
    if (op.source === 'reg') {
      if (regIsPointer(src)) {
        // As for a root loader (allow_ptr_leaks): the low half of an address is a scalar.
        // clang emits `w1 = w6` for `(u32)(long)ctx->data_end`.
        if (width === 32) {
          writeReg(
            env,
            st,
            idx,
            d,
            regScalar(adjustScalarMinMaxVals(SCALAR_UNKNOWN, SCALAR_UNKNOWN, 'mov', 32)),
          );
          return [];
        }
        writeReg(env, st, idx, d, regWith(src, { live: 0 }));
        return [];
      }
      if (width === 64) {
        // Link the copies so a bounds check on one refines the other (find_equal_scalars).
        let linked = src;
        if (!tnumIsConst(src.scalar.varOff)) {
          if (src.id === 0) {
            linked = regWith(src, { id: env.newId() });
            writeRegRaw(st, insn.src, linked);
          }
        }
        writeReg(env, st, idx, d, regWith(linked, { live: 0 }));
        return [];
      }
      writeReg(
        env,
        st,
        idx,
        d,
        regScalar(adjustScalarMinMaxVals(src.scalar, src.scalar, 'mov', 32)),
      );
      return [];
    }
    const v = width === 32 ? scalarKnown(BigInt(insn.imm >>> 0)) : immScalar(insn.imm);
    writeReg(env, st, idx, d, regScalar(v));
    return [];
  }
  const dst = readReg(env, st, idx, d);
  // Division by a constant zero and shifts out of range (check_alu_op on BPF_K).
  if (op.source === 'imm') {
    if (
      (aluOp === 'div' || aluOp === 'mod' || aluOp === 'sdiv' || aluOp === 'smod') &&
      insn.imm === 0
    ) {
      throw env.fail(idx, 'div by zero');
    }
    if (
      (aluOp === 'lsh' || aluOp === 'rsh' || aluOp === 'arsh') &&
      (insn.imm < 0 || insn.imm >= width)
    ) {
      throw env.fail(idx, `invalid shift ${insn.imm}`);
    }
  }
  const dstPtr = regIsPointer(dst);
  const srcPtr = aluOp !== 'neg' && regIsPointer(src);
  if (dstPtr || srcPtr) {
    if (width === 32) {
      // 32-bit ALU on pointers gives meaningless scalars; a root loader may subtract
      // (`(u32)data_end - (u32)data`), everything else is refused, as in the kernel.
      if (aluOp === 'sub') {
        writeReg(
          env,
          st,
          idx,
          d,
          regScalar(adjustScalarMinMaxVals(SCALAR_UNKNOWN, SCALAR_UNKNOWN, 'mov', 32)),
        );
        return [];
      }
      throw env.fail(idx, `R${d} 32-bit pointer arithmetic prohibited`);
    }
    if (aluOp === 'neg') {
      throw env.fail(idx, `R${d} pointer arithmetic with neg operator prohibited`);
    }
    // The scalar operand becomes part of the pointer: its value matters (precision.ts).
    if (!(dstPtr && srcPtr) && op.source === 'reg') {
      markChainPrecision(env, st, dstPtr ? insn.src : d);
    }
    let res: RegState;
    if (dstPtr && srcPtr) res = ptrMinusPtr(env, idx, d, dst, src, aluOp);
    else if (dstPtr) res = adjustPtr(env, idx, d, dst, src.scalar, aluOp, true);
    else res = adjustPtr(env, idx, d, src, dst.scalar, aluOp, false);
    writeReg(env, st, idx, d, res);
    return [];
  }
  const forks: VerifierState[] = [];
  let dstScalar = dst.scalar;
  if ((aluOp === 'and' || aluOp === 'or') && op.source === 'imm') {
    const split = maybeForkScalars(dstScalar);
    if (split !== undefined) {
      const other = copyState(st);
      const alt = adjustScalarMinMaxVals(split[0], src.scalar, aluOp, width);
      writeRegRaw(other, d, regScalar(alt));
      forks.push(other);
      dstScalar = split[1];
    }
  }
  writeReg(env, st, idx, d, regScalar(adjustScalarMinMaxVals(dstScalar, src.scalar, aluOp, width)));
  return forks;
}

/** Sets register `r` of the current frame without checks. */
function writeRegRaw(st: VerifierState, r: number, reg: RegState): void {
  const f = st.frames[st.curframe];
  if (f !== undefined) f.regs[r] = reg;
}
