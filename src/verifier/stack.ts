/**
 * The per-frame BPF stack of the verifier (kernel `struct bpf_stack_state` and the fixed-offset
 * stack accesses `check_stack_write_fixed_off` / `check_stack_read_fixed_off`, verifier.c):
 * up to 512 bytes in 8-byte slots, each with a type per byte (`STACK_INVALID`, `STACK_SPILL`,
 * `STACK_MISC`, `STACK_ZERO`) and the register spilled into it.
 *
 * Called from: `checkMemAccess` on PTR_TO_STACK (through the `FuncState` of
 * src/verifier/states.ts), and the state printer and `stacksafe`.
 *
 * Invariants: a `Stack` is an array of immutable `StackSlot`s, index `spi` covering the bytes
 * `[-8*(spi+1), -8*spi)`; writes replace slots in place, so copying a frame is one array slice.
 * Byte `j` of `slotType` is the byte at `fp - 8*spi - 1 - j` (kernel order: index 7 is the
 * lowest address, where a narrow spill lives). The array only grows (`allocated_stack`).
 */

import { scalarCoerce, scalarCoerceSx } from './bounds.js';
import {
  liveStr,
  REG_LIVE_WRITTEN,
  REG_NOT_INIT,
  regConst,
  regIsNull,
  regStateStr,
  regUnknownScalar,
  regWidth,
  regWith,
  type RegState,
} from './reg-state.js';

/** `MAX_BPF_STACK`. */
export const MAX_BPF_STACK = 512;
/** `BPF_REG_SIZE`: bytes per slot. */
export const BPF_REG_SIZE = 8;

/** The kind of one stack byte (kernel `enum bpf_stack_slot_type`). */
export type SlotType = 'STACK_INVALID' | 'STACK_SPILL' | 'STACK_MISC' | 'STACK_ZERO';

/** Log characters of the slot types (kernel `slot_type_char`). */
export const SLOT_TYPE_CHAR: Readonly<Record<SlotType, string>> = Object.freeze({
  STACK_INVALID: '?',
  STACK_SPILL: 'r',
  STACK_MISC: 'm',
  STACK_ZERO: '0',
});

/** One 8-byte slot (kernel `struct bpf_stack_state`). Never mutated. */
export interface StackSlot {
  /** Per-byte types, kernel order (index 7 = lowest address). */
  readonly slotType: readonly SlotType[];
  /** The spilled register; its `live` bits are the slot's liveness. */
  readonly spilledPtr: RegState;
}

/** A frame's stack: slot `spi` at index `spi`. */
export type Stack = StackSlot[];

/** What a stack write stores. */
export type StackWriteValue =
  /** A register store (`*(u64 *)(r10 -8) = r1`). */
  | { readonly reg: RegState }
  /** An immediate store (`BPF_ST`: `*(u32 *)(r10 -8) = 5`). */
  | { readonly imm: bigint }
  /** Unknown bytes (helper output, atomics): `STACK_MISC`. */
  | { readonly misc: true };

/** Options of the stack accesses, as the kernel's privileges decide them. */
export interface StackAccessOptions {
  /** `env->allow_uninit_stack`: reads of STACK_INVALID bytes give unknown scalars. */
  readonly allowUninitStack?: boolean;
  /** `env->allow_ptr_leaks`: partial overwrites of spilled pointers are allowed. */
  readonly allowPtrLeaks?: boolean;
  /** The pointer register of the access, for messages (R10 by default). */
  readonly regno?: number;
}

/** The result of a stack read: the loaded register, or the kernel's reason for rejecting it. */
export type StackReadResult =
  /** `fill`: the read restored the spilled register (kernel: a stack access in the history). */
  { readonly reg: RegState; readonly fill?: boolean } | { readonly error: string };

const INVALID_SLOT: StackSlot = Object.freeze({
  slotType: Object.freeze(new Array<SlotType>(BPF_REG_SIZE).fill('STACK_INVALID')),
  spilledPtr: REG_NOT_INIT,
});

/** A frame's stack with nothing allocated. */
export function newStack(): Stack {
  return [];
}

/** The slot of `spi` (STACK_INVALID beyond the allocated part). */
export function stackSlot(stack: readonly StackSlot[], spi: number): StackSlot {
  return stack[spi] ?? INVALID_SLOT;
}

/** Bytes allocated so far (kernel `allocated_stack`). */
export function allocatedStack(stack: readonly StackSlot[]): number {
  return stack.length * BPF_REG_SIZE;
}

/** Grows the stack to cover `size` bytes below fp (kernel `grow_stack_state`). */
export function growStack(stack: Stack, size: number): void {
  const n = Math.ceil(size / BPF_REG_SIZE);
  while (stack.length < n) stack.push(INVALID_SLOT);
}

/** Whether the slot holds a spilled register (kernel `is_spilled_reg`). */
export function isSpilledReg(slot: StackSlot): boolean {
  return slot.slotType[BPF_REG_SIZE - 1] === 'STACK_SPILL';
}

/** Whether the slot holds a spilled scalar (kernel `is_spilled_scalar_reg`). */
export function isSpilledScalarReg(slot: StackSlot): boolean {
  return isSpilledReg(slot) && slot.spilledPtr.type === 'SCALAR_VALUE';
}

/** Whether the slot holds a full 8-byte spilled scalar (kernel `is_spilled_scalar_reg64`). */
export function isSpilledScalarReg64(slot: StackSlot): boolean {
  return isSpilledScalarReg(slot) && slot.slotType[0] === 'STACK_SPILL';
}

/** Whether all bytes are MISC (or INVALID when allowed) (kernel `is_stack_all_misc`). */
export function isStackAllMisc(slot: StackSlot, allowUninitStack = false): boolean {
  return slot.slotType.every(
    (t) => t === 'STACK_MISC' || (t === 'STACK_INVALID' && allowUninitStack),
  );
}

function checkBounds(off: number, size: number, what: string, regno: number): string | undefined {
  if (off < -MAX_BPF_STACK || off + size > 0 || size <= 0) {
    return `invalid ${what} stack R${regno} off=${off} size=${size}`;
  }
  if (off % size !== 0) return `misaligned stack access off (0x0; 0x0)+0+${off} size ${size}`;
  return undefined;
}

/** Spills `reg` into slot `spi` over `size` bytes (kernel `save_register_state`). */
function saveRegisterState(stack: Stack, spi: number, reg: RegState, size: number): void {
  const live = size === BPF_REG_SIZE ? reg.live | REG_LIVE_WRITTEN : reg.live;
  const spilledPtr = reg.live === live ? reg : regWith(reg, { live });
  if (size === BPF_REG_SIZE) {
    // The common full spill: every byte STACK_SPILL, one shared type array.
    stack[spi] = { slotType: ALL_SPILL, spilledPtr };
    return;
  }
  const old = stackSlot(stack, spi);
  const types = old.slotType.slice();
  for (let i = BPF_REG_SIZE; i > 0; i--) {
    if (i > BPF_REG_SIZE - size) types[i - 1] = 'STACK_SPILL';
    else if (types[i - 1] !== 'STACK_ZERO' && types[i - 1] !== 'STACK_INVALID') {
      types[i - 1] = 'STACK_MISC'; // mark_stack_slot_misc
    }
  }
  stack[spi] = { slotType: Object.freeze(types), spilledPtr };
}

const ALL_SPILL: readonly SlotType[] = Object.freeze(
  new Array<SlotType>(BPF_REG_SIZE).fill('STACK_SPILL'),
);

/**
 * Writes `size` bytes at `off` (negative, from fp) into the stack (kernel
 * `check_stack_write_fixed_off`): a scalar written at a slot boundary, or an immediate stored
 * there, is spilled with the written size; a pointer is spilled only as 8 bytes (`invalid size
 * of register spill`); anything else marks the bytes STACK_ZERO for a known zero, STACK_MISC
 * otherwise, and breaks a spill it overlaps. Mutates `stack`; returns the kernel's reason on
 * rejection.
 *
 * @example
 * const stack = newStack();
 * writeStack(stack, -8, 8, { reg: regPtr('PTR_TO_CTX') }); // undefined
 * stackStr(stack) // ' fp-8_w=ctx()'
 */
export function writeStack(
  stack: Stack,
  off: number,
  size: number,
  value: StackWriteValue,
  opts: StackAccessOptions = {},
): string | undefined {
  const err = checkBounds(off, size, 'write to', opts.regno ?? 10);
  if (err !== undefined) return err;
  growStack(stack, -off);
  const slot = -off - 1;
  const spi = Math.floor(slot / BPF_REG_SIZE);
  const cur = stackSlot(stack, spi);
  if (
    opts.allowPtrLeaks !== true &&
    isSpilledReg(cur) &&
    !isSpilledScalarReg(cur) &&
    size !== BPF_REG_SIZE
  ) {
    return 'attempt to corrupt spilled pointer on stack';
  }
  const aligned = off % BPF_REG_SIZE === 0;
  if ('reg' in value && aligned && value.reg.type === 'SCALAR_VALUE') {
    const fits = regWidth(value.reg) <= 8 * size;
    saveRegisterState(stack, spi, fits ? value.reg : regWith(value.reg, { id: 0 }), size);
    return undefined;
  }
  if ('imm' in value && aligned) {
    saveRegisterState(stack, spi, regConst(value.imm), size);
    return undefined;
  }
  if ('reg' in value && value.reg.type !== 'SCALAR_VALUE' && value.reg.type !== 'NOT_INIT') {
    if (size !== BPF_REG_SIZE) return 'invalid size of register spill';
    saveRegisterState(stack, spi, value.reg, size);
    return undefined;
  }
  const zero = ('reg' in value && regIsNull(value.reg)) || ('imm' in value && value.imm === 0n);
  const type: SlotType = zero ? 'STACK_ZERO' : 'STACK_MISC';
  const special = isSpilledReg(cur);
  const types = cur.slotType.map((t) =>
    special && t !== 'STACK_INVALID' ? 'STACK_MISC' : t,
  ) as SlotType[];
  for (let i = 0; i < size; i++) types[(slot - i) % BPF_REG_SIZE] = type;
  const live = size === BPF_REG_SIZE ? cur.spilledPtr.live | REG_LIVE_WRITTEN : cur.spilledPtr.live;
  stack[spi] = Object.freeze({
    slotType: Object.freeze(types),
    spilledPtr: regWith(REG_NOT_INIT, { live }),
  });
  return undefined;
}

/** Zero-extends (or sign-extends) a scalar loaded with `size` bytes, as `check_mem_access`. */
function coerceLoaded(reg: RegState, size: number, sx: boolean): RegState {
  if (reg.type !== 'SCALAR_VALUE' || size >= BPF_REG_SIZE) return reg;
  const sz = size as 1 | 2 | 4;
  return regWith(reg, {
    scalar: sx ? scalarCoerceSx(reg.scalar, sz) : scalarCoerce(reg.scalar, sz),
  });
}

/** The bytes `[off, off+size)` of slot `spi`, checked readable; counts spills and zeros. */
function scanBytes(
  s: StackSlot,
  off: number,
  size: number,
  allowUninit: boolean,
): { spill: number; zero: number } | string {
  const slot = -off - 1;
  let spill = 0;
  let zero = 0;
  for (let i = 0; i < size; i++) {
    const t = s.slotType[(slot - i) % BPF_REG_SIZE];
    if (t === 'STACK_SPILL') spill++;
    else if (t === 'STACK_ZERO') zero++;
    else if (t === 'STACK_MISC' || (t === 'STACK_INVALID' && allowUninit)) continue;
    else return `invalid read from stack off ${off}+${i} size ${size}`;
  }
  return { spill, zero };
}

/**
 * Reads `size` bytes at `off` into a register (kernel `check_stack_read_fixed_off` with the
 * load's zero/sign extension of `check_mem_access`): a full spill gives the spilled register,
 * a narrow read of a spilled scalar at the slot boundary gives it coerced, all-zero bytes give
 * 0, readable bytes otherwise an unknown scalar. `sx` is a sign-extending load (`BPF_MEMSX`).
 *
 * @example
 * readStack(newStack(), -8, 8) // { error: 'invalid read from stack off -8+0 size 8' }
 */
export function readStack(
  stack: readonly StackSlot[],
  off: number,
  size: number,
  opts: StackAccessOptions & { readonly sx?: boolean } = {},
): StackReadResult {
  const err = checkBounds(off, size, 'read from', opts.regno ?? 10);
  if (err !== undefined) return { error: err };
  const sx = opts.sx === true;
  const allowUninit = opts.allowUninitStack === true;
  const spi = Math.floor((-off - 1) / BPF_REG_SIZE);
  const s = stackSlot(stack, spi);
  const reg = s.spilledPtr;
  if (isSpilledReg(s)) {
    let spillSize = 1;
    for (let i = BPF_REG_SIZE - 1; i > 0 && s.slotType[i - 1] === 'STACK_SPILL'; i--) spillSize++;
    if (size === BPF_REG_SIZE && spillSize === BPF_REG_SIZE) {
      return {
        reg: reg.live === REG_LIVE_WRITTEN ? reg : regWith(reg, { live: REG_LIVE_WRITTEN }),
        fill: true,
      };
    }
    if (reg.type !== 'SCALAR_VALUE') return { error: 'invalid size of register fill' };
    if (size <= spillSize && off % BPF_REG_SIZE === 0) {
      let r = regWith(reg, { live: REG_LIVE_WRITTEN });
      if (regWidth(reg) > size * 8) r = regWith(r, { id: 0 });
      return { reg: coerceLoaded(r, size, sx), fill: true };
    }
    const scan = scanBytes(s, off, size, allowUninit);
    if (typeof scan === 'string') return { error: scan };
    const allZero = (scan.spill === size && regIsNull(reg)) || scan.zero === size;
    return { reg: loaded(allZero, size, sx) };
  }
  const scan = scanBytes(s, off, size, allowUninit);
  if (typeof scan === 'string') return { error: scan };
  return { reg: loaded(scan.zero === size, size, sx) };
}

function loaded(zero: boolean, size: number, sx: boolean): RegState {
  const r = zero ? regConst(0) : regUnknownScalar();
  return coerceLoaded(regWith(r, { live: REG_LIVE_WRITTEN }), size, sx);
}

/**
 * The stack part of `print_verifier_state`, each entry with its leading space:
 * ` fp-8=mmmmmmmm fp-16_w=ctx()`; a narrow spill prints the bytes above it first
 * (`fp-8=????0`). Slots that are all STACK_INVALID are skipped. `frameno` is the frame the
 * stack belongs to.
 */
export function stackStr(stack: readonly StackSlot[], frameno = 0): string {
  let out = '';
  for (let i = 0; i < stack.length; i++) {
    const s = stackSlot(stack, i);
    if (s.slotType.every((t) => t === 'STACK_INVALID')) continue;
    const reg = s.spilledPtr;
    out += ` fp${(-i - 1) * BPF_REG_SIZE}${liveStr(reg.live)}=`;
    if (isSpilledReg(s)) {
      const j = s.slotType.indexOf('STACK_SPILL');
      out += s.slotType
        .slice(0, j)
        .map((t) => SLOT_TYPE_CHAR[t])
        .join('');
      out += regStateStr(reg, frameno);
    } else {
      out += s.slotType.map((t) => SLOT_TYPE_CHAR[t]).join('');
    }
  }
  return out;
}
