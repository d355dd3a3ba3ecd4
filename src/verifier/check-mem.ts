/**
 * Memory access checks (kernel `check_mem_access`, `check_mem_region_access`,
 * `check_packet_access`, `check_stack_access_within_bounds`, the variable-offset stack
 * accesses and `check_helper_mem_access`): every load, store and atomic, and every memory
 * argument of a helper or kfunc, is proven to lie inside the object its pointer register
 * points to.
 *
 * Called from: do-check.ts (loads, stores, atomics) and check-call.ts (helper arguments).
 *
 * Offsets: `off` is the instruction's offset; the pointer's fixed offset `reg.off` and its
 * variable offset (`reg.scalar`, bounds and tnum) are added here, as the kernel does.
 */

import { S64_MIN, SCALAR_UNKNOWN, scalarCoerce, scalarCoerceSx } from './bounds.js';
import { hex, tnumAdd, tnumConst, tnumIsAligned, tnumIsConst, type Tnum } from './tnum.js';

/** A tnum as the kernel's `tnum_strn` prints it, constants included: `(0x0; 0xff)`. */
export function tnumStr(t: Tnum): string {
  return `(${hex(t.value)}; ${hex(t.mask)})`;
}
import {
  REG_NOT_INIT,
  regConst,
  regIsNull,
  regIsPointer,
  regTypeStr,
  regScalar,
  regUnknownScalar,
  type MapInfo,
  type RegState,
  regAtZeroOff,
} from './reg-state.js';
import {
  BPF_REG_SIZE,
  MAX_BPF_STACK,
  growStack,
  isSpilledReg,
  isSpilledScalarReg,
  readStack,
  stackSlot,
  writeStack,
  type SlotType,
  type Stack,
} from './stack.js';
import type { VerifierState } from './states.js';
import { checkCtxAccess } from './ctx-access.js';
import {
  checkCoroStore,
  checkHandleAccess,
  escapeFrame,
  forgetAllSlots,
  forgetFrameSlots,
  frameLoad,
  frameStore,
  isCoroHandle,
  isCoroMem,
  isFrameStart,
  loadsHandle,
  REG_CORO_HANDLE,
} from './check-coro.js';
import type { VerifierEnv } from './verifier-env.js';
import { markChainPrecision, noteStackAccess } from './precision.js';

/** `BPF_MAX_VAR_OFF`: largest variable offset a pointer may carry. */
export const BPF_MAX_VAR_OFF = 1 << 29;
/** `MAX_PACKET_OFF`. */
export const MAX_PACKET_OFF = 0xffff;

/** How a memory access uses its bytes. */
export type AccessType = 'read' | 'write';

/** What a store writes (for stack spills): a register, an immediate, or unknown bytes. */
export type StoreValue = { readonly reg: RegState } | { readonly imm: bigint } | undefined;

/** Options of `checkMemAccess`. */
export interface MemAccessOptions {
  /** Sign-extending load (`BPF_MEMSX`). */
  readonly sx?: boolean;
  /** An atomic read-modify-write (only stack, map values and memory). */
  readonly atomic?: boolean;
  /** The value a store writes. */
  readonly value?: StoreValue;
  /** The register a `stx` stores, for precision (kernel `value_regno`). */
  readonly valueRegno?: number;
}

/** The frame a stack pointer points into. */
function stackOf(st: VerifierState, reg: RegState): Stack {
  const f = st.frames[reg.frameno];
  if (f === undefined) throw new RangeError(`bug: stack pointer into missing frame ${reg.frameno}`);
  return f.stack;
}

/** `__check_mem_access`: `[off, off+size)` inside `[0, memSize)`. */
function memAccessOk(off: number, size: number, memSize: number, zeroOk: boolean): boolean {
  return (size > 0 || (size === 0 && zeroOk)) && off >= 0 && off + size <= memSize;
}

/** Kind of a bounded region for the messages of `__check_mem_access`. */
type RegionKind = 'map_value' | 'mem';

function regionDetail(kind: RegionKind, memSize: number, off: number, size: number): string {
  return kind === 'map_value'
    ? `invalid access to map value, value_size=${memSize} off=${off} size=${size}`
    : `invalid access to memory, mem_size=${memSize} off=${off} size=${size}`;
}

/**
 * `check_mem_region_access`: the access `[reg + off, reg + off + size)` for every value of the
 * variable offset lies inside `[0, memSize)`. `off` already includes `reg.off`.
 */
function checkMemRegionAccess(
  env: VerifierEnv,
  idx: number,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  memSize: number,
  kind: RegionKind,
  zeroOk: boolean,
): void {
  const s = reg.scalar;
  const lo = s.smin + BigInt(off);
  if (s.smin < 0n && (s.smin === S64_MIN || lo !== BigInt.asIntN(32, lo) || lo < 0n)) {
    throw env.fail(idx, negativeMin(regno));
  }
  if (!memAccessOk(Number(lo), size, memSize, zeroOk)) {
    env.verbose(regionDetail(kind, memSize, Number(lo), size));
    throw env.fail(idx, `R${regno} min value is outside of the allowed memory range`);
  }
  if (s.umax >= BigInt(BPF_MAX_VAR_OFF)) {
    throw env.fail(
      idx,
      `R${regno} unbounded memory access, make sure to bounds check any such access`,
    );
  }
  const hi = Number(s.umax) + off;
  if (!memAccessOk(hi, size, memSize, zeroOk)) {
    env.verbose(regionDetail(kind, memSize, hi, size));
    throw env.fail(idx, `R${regno} max value is outside of the allowed memory range`);
  }
  if (kind === 'mem' && isMemInput(env, reg) && hi + size > env.memInputMax) {
    env.memInputMax = hi + size;
  }
}

/** Whether `[off, off + size)` past `reg` provably lies in a region of `memSize` bytes. */
function regionFits(reg: RegState, off: number, size: number, memSize: number): boolean {
  const s = reg.scalar;
  return (
    s.smin + BigInt(off) >= 0n &&
    s.umax < BigInt(BPF_MAX_VAR_OFF) &&
    s.umax + BigInt(off + size) <= BigInt(memSize)
  );
}

/**
 * The base kind of an access through pointer `reg` (`VerifierEnv.noteAccessBase`): loads from
 * read-only map values are checked at run time when unbounded, accepted by the frame check
 * otherwise. The start of a ringbuf record passes the frame check of a handle access (a
 * reserved record, CORO_CHECK_RECORD) as a frame start does.
 */
function accessBaseKind(
  reg: RegState,
  off: number,
  size: number,
  t: AccessType,
): 'handle' | 'frame' | 'rdonly' | 'pointer' {
  if (isFrameStart(reg) || isRecordStart(reg)) return 'frame';
  const map = reg.map;
  if (reg.type !== 'PTR_TO_MAP_VALUE' || t !== 'read' || map?.rdonlyProg !== true) return 'pointer';
  return regionFits(reg, off + reg.off, size, map.valueSize) ? 'rdonly' : 'handle';
}

/** Whether `reg` points to the start of a reserved ringbuf record (`ringbuf_mem`, offset 0). */
function isRecordStart(reg: RegState): boolean {
  return reg.type === 'PTR_TO_MEM' && reg.memRingbuf && !reg.maybeNull && regAtZeroOff(reg);
}

/** Whether `reg` points into a `mem` program's input (R1 at entry and what derives from it). */
function isMemInput(env: VerifierEnv, reg: RegState): boolean {
  return (
    env.type === 'mem' &&
    reg.type === 'PTR_TO_MEM' &&
    !reg.memRingbuf &&
    reg.refObjId === 0 &&
    reg.id === 0 &&
    reg.memSize === env.memSize
  );
}

/** `check_map_access_type`: `.rodata` (BPF_F_RDONLY_PROG) is not written, WRONLY not read. */
function checkMapAccessType(
  env: VerifierEnv,
  idx: number,
  map: MapInfo,
  off: number,
  size: number,
  t: AccessType,
): void {
  if (t === 'write' && map.rdonlyProg === true) {
    throw env.fail(
      idx,
      `write into map forbidden, value_size=${map.valueSize} off=${off} size=${size}`,
    );
  }
  if (t === 'read' && map.wronlyProg === true) {
    throw env.fail(
      idx,
      `read from map forbidden, value_size=${map.valueSize} off=${off} size=${size}`,
    );
  }
}

/** The kernel's message for an access whose variable offset may be negative. */
function negativeMin(regno: number): string {
  return `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`;
}

/** `check_packet_access`: `[off, off+size)` inside the proven range of the packet pointer. */
function checkPacketAccess(
  env: VerifierEnv,
  idx: number,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  zeroOk: boolean,
): void {
  if (reg.scalar.smin < 0n) {
    throw env.fail(idx, negativeMin(regno));
  }
  if (!memAccessOk(off, size, reg.range, zeroOk)) {
    env.verbose(
      `invalid access to packet, off=${off} size=${size}, R${regno}(id=${reg.id},off=${reg.off},r=${reg.range})`,
    );
    throw env.fail(idx, `R${regno} offset is outside of the packet`);
  }
}

/** Programs that may write into the packet (kernel `may_access_direct_pkt_data` for writes). */
function mayWritePacket(env: VerifierEnv): boolean {
  return (
    env.type === 'xdp' ||
    env.type === 'sched_cls' ||
    env.type === 'sched_act' ||
    env.type === 'sk_skb' ||
    env.type === 'mem'
  );
}

/** Bounds of a variable stack offset: `[min, max]` of `reg.off + off + var_off`. */
function stackVarBounds(reg: RegState, off: number): { min: bigint; max: bigint } {
  const base = BigInt(reg.off + off);
  return { min: reg.scalar.smin + base, max: reg.scalar.smax + base };
}

/**
 * `check_stack_access_within_bounds` for a variable offset; returns the byte range
 * `[min, max + size)` below fp.
 */
function stackVarRange(
  env: VerifierEnv,
  idx: number,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  what: string,
): { min: number; max: number } {
  const s = reg.scalar;
  const limit = BigInt(BPF_MAX_VAR_OFF);
  if (s.smax >= limit || s.smin <= -limit) {
    throw env.fail(idx, `invalid unbounded variable-offset ${what} stack R${regno}`);
  }
  const { min, max } = stackVarBounds(reg, off);
  if (min < -BigInt(MAX_BPF_STACK) || max + BigInt(size) > 0n) {
    throw env.fail(
      idx,
      `invalid variable-offset ${what} stack R${regno} var_off=${tnumStr(s.varOff)} off=${off} size=${size}`,
    );
  }
  return { min: Number(min), max: Number(max) };
}

/** The type of the stack byte at `off` (negative, from fp). */
function byteType(stack: Stack, off: number): SlotType {
  const slot = -off - 1;
  const spi = Math.floor(slot / BPF_REG_SIZE);
  return stackSlot(stack, spi).slotType[slot % BPF_REG_SIZE] as SlotType;
}

/** Marks stack bytes `[lo, hi)` (negative offsets) as written with unknown data. */
function markStackMisc(env: VerifierEnv, idx: number, stack: Stack, lo: number, hi: number): void {
  growStack(stack, -lo);
  for (let spi = Math.floor(-hi / BPF_REG_SIZE); spi * BPF_REG_SIZE < -lo; spi++) {
    const s = stackSlot(stack, spi);
    const types = s.slotType.slice();
    let changed = false;
    const spilledPtr = isSpilledReg(s) && !isSpilledScalarReg(s);
    for (let j = 0; j < BPF_REG_SIZE; j++) {
      const byteOff = -(spi * BPF_REG_SIZE) - 1 - j;
      if (byteOff < lo || byteOff >= hi) continue;
      if (spilledPtr) {
        throw env.fail(
          idx,
          `spilled ptr in range of var-offset stack write; insn ${idx}, ptr off: ${-(spi + 1) * BPF_REG_SIZE}`,
        );
      }
      types[j] = 'STACK_MISC';
      changed = true;
    }
    if (!changed) continue;
    // A partial overwrite breaks a spill: the rest of its bytes become plain data.
    const keepSpill = types.every((t) => t === 'STACK_SPILL');
    const fixed = keepSpill ? types : types.map((t) => (t === 'STACK_SPILL' ? 'STACK_MISC' : t));
    stack[spi] = Object.freeze({
      slotType: Object.freeze(fixed),
      spilledPtr: keepSpill ? s.spilledPtr : REG_NOT_INIT,
    });
  }
}

/** Whether stack bytes `[lo, hi)` are all initialised; returns the first bad offset. */
function firstUninit(stack: Stack, lo: number, hi: number): number | undefined {
  for (let o = lo; o < hi; o++) {
    if (byteType(stack, o) === 'STACK_INVALID') return o;
  }
  return undefined;
}

/** Whether stack bytes `[lo, hi)` are all known zero. */
function allZero(stack: Stack, lo: number, hi: number): boolean {
  for (let o = lo; o < hi; o++) if (byteType(stack, o) !== 'STACK_ZERO') return false;
  return true;
}

/** A stack access through `reg` (`check_stack_read` / `check_stack_write`). */
function checkStackAccess(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  regno: number,
  reg: RegState,
  off: number,
  size: number,
  t: AccessType,
  opts: MemAccessOptions,
): RegState | undefined {
  const stack = stackOf(st, reg);
  const f = st.frames[reg.frameno];
  const subprog = f?.subprogno ?? 0;
  // Alignment is always strict on the stack (check_ptr_alignment, "stack " pointers).
  const varOff = tnumAdd(reg.scalar.varOff, tnumConst(BigInt(reg.off + off)));
  if (!tnumIsAligned(varOff, size)) {
    throw env.fail(
      idx,
      `misaligned stack access off ${tnumStr(reg.scalar.varOff)}+${reg.off}+${off} size ${size}`,
    );
  }
  const stored = opts.value;
  if (
    t === 'write' &&
    stored !== undefined &&
    'reg' in stored &&
    stored.reg.type === 'PTR_TO_STACK' &&
    stored.reg.frameno > reg.frameno
  ) {
    // The callee's frame dies at its exit: a pointer to it must not outlive it.
    throw env.fail(idx, 'cannot spill pointers to stack into stack frame of the caller');
  }
  if (tnumIsConst(reg.scalar.varOff)) {
    const total = reg.off + off + Number(BigInt.asIntN(64, reg.scalar.varOff.value));
    if (t === 'write') {
      const value = opts.value;
      const err = writeStack(
        stack,
        total,
        size,
        value === undefined ? { misc: true } : value,
        // Root may overwrite part of a spilled pointer (the slot becomes data).
        { regno, allowPtrLeaks: true },
      );
      if (err !== undefined) throw env.fail(idx, err);
      env.useStack(subprog, -total);
      const spi = Math.floor((-total - 1) / BPF_REG_SIZE);
      if (isSpilledReg(stackSlot(stack, spi))) {
        noteStackAccess(st, reg.frameno, spi);
      } else if (
        value !== undefined &&
        'reg' in value &&
        value.reg.type === 'SCALAR_VALUE' &&
        regIsNull(value.reg) &&
        opts.valueRegno !== undefined
      ) {
        // The bytes became STACK_ZERO: the stored zero matters (backtracking does not follow
        // STACK_ZERO).
        markChainPrecision(env, st, opts.valueRegno);
      }
      return undefined;
    }
    const res = readStack(stack, total, size, {
      regno,
      allowUninitStack: env.allowUninitStack,
      sx: opts.sx === true,
    });
    if ('error' in res) throw env.fail(idx, res.error);
    env.useStack(subprog, -total);
    if (res.fill === true)
      noteStackAccess(st, reg.frameno, Math.floor((-total - 1) / BPF_REG_SIZE));
    return res.reg;
  }
  const { min, max } = stackVarRange(
    env,
    idx,
    regno,
    reg,
    off,
    size,
    t === 'read' ? 'read from' : 'write to',
  );
  env.useStack(subprog, -min);
  if (t === 'write') {
    const v = opts.value;
    if (v !== undefined && 'reg' in v && regIsPointer(v.reg)) {
      throw env.fail(idx, `R${regno} variable-offset stack write of a pointer is not allowed`);
    }
    markStackMisc(env, idx, stack, min, max + size);
    return undefined;
  }
  const bad = firstUninit(stack, min, max + size);
  if (bad !== undefined) {
    throw env.fail(
      idx,
      `invalid variable-offset read from stack R${regno} var_off=${tnumStr(reg.scalar.varOff)}+${off} size ${size}`,
    );
  }
  for (let o = min; o < max + size; o++) {
    const slot = stackSlot(stack, Math.floor((-o - 1) / BPF_REG_SIZE));
    if (isSpilledReg(slot) && !isSpilledScalarReg(slot)) {
      throw env.fail(idx, `invalid variable-offset read of a spilled pointer from stack R${regno}`);
    }
  }
  return allZero(stack, min, max + size) ? regConst(0) : regUnknownScalar();
}

/**
 * The result of a load of `size` bytes that is not a spill fill: an unknown scalar of that
 * width (zero- or sign-extended).
 */
export function loadedScalar(size: number, sx: boolean): RegState {
  const key = size * 2 + (sx ? 1 : 0);
  let reg = LOADED[key];
  if (reg === undefined) {
    const sz = size as 1 | 2 | 4;
    reg =
      size >= 8
        ? regUnknownScalar()
        : regScalar(sx ? scalarCoerceSx(SCALAR_UNKNOWN, sz) : scalarCoerce(SCALAR_UNKNOWN, sz));
    LOADED[key] = reg;
  }
  return reg;
}

/** `loadedScalar` results by `size * 2 + sx` (registers are immutable, so they are shared). */
const LOADED: (RegState | undefined)[] = [];

/**
 * Checks a load, store or atomic through register `regno` at `off` with `size` bytes (kernel
 * `check_mem_access`). Returns the loaded register for reads (the caller writes it to the
 * destination), undefined for writes. Stack writes update the state in place.
 */
export function checkMemAccess(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
  opts: MemAccessOptions = {},
): RegState | undefined {
  const f = st.frames[st.curframe];
  const reg = f?.regs[regno] ?? REG_NOT_INIT;
  const sx = opts.sx === true;
  const value = opts.value;
  const storesPointer = value !== undefined && 'reg' in value && regIsPointer(value.reg);
  if (isCoroHandle(reg)) {
    // A frame handle: checked at run time (check-coro.ts), its value needs no precision.
    env.noteAccessBase(idx, 'handle', regno);
    const stored = t === 'write' ? storedReg(value) : undefined;
    const loaded = checkHandleAccess(env, idx, regno, reg, off, size, stored);
    if (stored !== undefined) {
      // the handle may be any frame: nothing recorded of frames holds, and a stored frame
      // pointer is now where the verifier does not follow it
      forgetAllSlots(st);
      if (isCoroMem(stored)) escapeFrame(st, stored.frameId);
    }
    return t === 'read' ? (loaded ?? loadedScalar(size, sx)) : undefined;
  }
  if (reg.maybeNull) {
    throw env.fail(idx, `R${regno} invalid mem access '${regTypeStr(reg)}'`);
  }
  if (reg.type !== 'NOT_INIT' && reg.type !== 'SCALAR_VALUE')
    env.noteAccessBase(idx, accessBaseKind(reg, off, size, t), regno);
  switch (reg.type) {
    case 'PTR_TO_STACK':
      return checkStackAccess(env, st, idx, regno, reg, off, size, t, opts);
    case 'PTR_TO_MAP_VALUE': {
      const map = reg.map;
      if (map === undefined) throw new RangeError('bug: map value without a map');
      if (t === 'write' && storesPointer && !env.allowPtrLeaks) {
        throw env.fail(idx, `R${regno} leaks addr into map`);
      }
      checkMapAccessType(env, idx, map, off + reg.off, size, t);
      if (t === 'read' && map.rdonlyProg === true) {
        const bounded = regionFits(reg, off + reg.off, size, map.valueSize);
        env.noteRdonlyLoad(idx, map.id, bounded);
        // an offset the verifier cannot bound: the backends check the address (check-coro.ts)
        if (!bounded) return loadsHandle(reg, size) ? REG_CORO_HANDLE : loadedScalar(size, sx);
      }
      checkMemRegionAccess(
        env,
        idx,
        regno,
        reg,
        off + reg.off,
        size,
        map.valueSize,
        'map_value',
        false,
      );
      if (t === 'read' && loadsHandle(reg, size)) return REG_CORO_HANDLE;
      return t === 'read' ? loadedScalar(size, sx) : undefined;
    }
    case 'PTR_TO_MEM': {
      if (t === 'write' && reg.memRdonly) {
        throw env.fail(idx, `R${regno} cannot write into ${regTypeStr(reg)}`);
      }
      if (reg.memCoro && t === 'write' && value !== undefined && 'reg' in value) {
        // Frames are program-private: they may hold pointers (check-coro.ts).
        checkCoroStore(env, idx, regno, reg, off, value.reg);
      } else if (t === 'write' && storesPointer && !env.allowPtrLeaks) {
        throw env.fail(idx, `R${regno} leaks addr into mem`);
      }
      checkMemRegionAccess(env, idx, regno, reg, off + reg.off, size, reg.memSize, 'mem', false);
      if (reg.memCoro && t === 'write') {
        const v =
          value === undefined ? undefined : 'reg' in value ? value.reg : regConst(value.imm);
        // Loads give recorded frame slots back, which backtracking does not follow: the stored
        // scalar is precise from here back (frame slots are compared by value).
        if (opts.valueRegno !== undefined && v?.type === 'SCALAR_VALUE') {
          markChainPrecision(env, st, opts.valueRegno);
        }
        frameStore(st, reg, off, size, v);
        return undefined;
      }
      if (reg.memCoro && t === 'read') {
        const rec = frameLoad(st, reg, off, size, sx);
        if (rec !== undefined) return rec;
      }
      if (t === 'read' && loadsHandle(reg, size)) return REG_CORO_HANDLE;
      return t === 'read' ? loadedScalar(size, sx) : undefined;
    }
    case 'PTR_TO_CTX': {
      if (opts.atomic === true) {
        throw env.fail(idx, `BPF_ATOMIC stores into R${regno} ctx is not allowed`);
      }
      if (t === 'write' && storesPointer) {
        throw env.fail(idx, `R${regno} leaks addr into ctx`);
      }
      if (!tnumIsConst(reg.scalar.varOff)) {
        throw env.fail(
          idx,
          `variable ctx access var_off=${tnumStr(reg.scalar.varOff)} off=${off} size=${size}`,
        );
      }
      if (reg.off !== 0) {
        throw env.fail(idx, `dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`);
      }
      const res = checkCtxAccess(env.type, off, size as 1 | 2 | 4 | 8, t === 'write');
      if (!res.ok) throw env.fail(idx, res.error);
      if (t === 'write') return undefined;
      if (res.regType === 'SCALAR_VALUE') return loadedScalar(size, sx);
      return Object.freeze({
        ...REG_NOT_INIT,
        type: res.regType,
        scalar: regConst(0).scalar,
        id: 0,
        range: 0,
      });
    }
    case 'PTR_TO_PACKET':
    case 'PTR_TO_PACKET_META': {
      if (opts.atomic === true) {
        throw env.fail(idx, `BPF_ATOMIC stores into R${regno} packet is not allowed`);
      }
      if (t === 'write' && !mayWritePacket(env)) {
        throw env.fail(idx, `cannot write into packet`);
      }
      if (t === 'write' && storesPointer && !env.allowPtrLeaks) {
        throw env.fail(idx, `R${regno} leaks addr into packet`);
      }
      checkPacketAccess(env, idx, regno, reg, off + reg.off, size, false);
      return t === 'read' ? loadedScalar(size, sx) : undefined;
    }
    case 'NOT_INIT':
      throw env.fail(idx, `R${regno} !read_ok`);
    default:
      throw env.fail(idx, `R${regno} invalid mem access '${regTypeStr(reg)}'`);
  }
}

/** The register a store writes, when it is a register (immediates store scalars). */
function storedReg(value: StoreValue): RegState {
  return value !== undefined && 'reg' in value ? value.reg : regUnknownScalar();
}

/** What a helper argument does with the memory it points to. */
export interface HelperMemAccess {
  /** The helper writes the bytes (they need not be initialised before). */
  readonly write: boolean;
  /** The helper reads them (they must be initialised). */
  readonly read: boolean;
  /** A size of 0 is allowed (`ARG_CONST_SIZE_OR_ZERO`). */
  readonly zeroOk: boolean;
}

/**
 * Checks that register `regno` points to at least `size` accessible bytes for a helper
 * argument (kernel `check_helper_mem_access` with `check_stack_range_initialized`), and marks
 * stack bytes a helper writes as initialised.
 */
export function checkHelperMemAccess(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  regno: number,
  size: number,
  access: HelperMemAccess,
): void {
  const f = st.frames[st.curframe];
  const reg = f?.regs[regno] ?? REG_NOT_INIT;
  if (size === 0 && access.zeroOk && reg.type === 'SCALAR_VALUE') return;
  switch (reg.type) {
    case 'PTR_TO_PACKET':
    case 'PTR_TO_PACKET_META':
      if (access.write && !mayWritePacket(env)) throw env.fail(idx, 'cannot write into packet');
      checkPacketAccess(env, idx, regno, reg, reg.off, size, access.zeroOk);
      return;
    case 'PTR_TO_MAP_VALUE':
    case 'PTR_TO_MAP_KEY': {
      const map = reg.map;
      if (map === undefined) throw new RangeError('bug: map pointer without a map');
      const memSize = reg.type === 'PTR_TO_MAP_KEY' ? map.keySize : map.valueSize;
      if (reg.type === 'PTR_TO_MAP_VALUE') {
        if (access.write) checkMapAccessType(env, idx, map, reg.off, size, 'write');
        if (access.read) checkMapAccessType(env, idx, map, reg.off, size, 'read');
      }
      checkMemRegionAccess(
        env,
        idx,
        regno,
        reg,
        reg.off,
        size,
        memSize,
        'map_value',
        access.zeroOk,
      );
      return;
    }
    case 'PTR_TO_MEM':
      if (reg.maybeNull) break;
      if (access.write && reg.memRdonly) {
        throw env.fail(idx, `R${regno} cannot write into ${regTypeStr(reg)}`);
      }
      checkMemRegionAccess(env, idx, regno, reg, reg.off, size, reg.memSize, 'mem', access.zeroOk);
      if (access.write && reg.memCoro) forgetFrameSlots(st, reg.frameId);
      return;
    case 'PTR_TO_STACK':
      checkStackRange(env, st, idx, regno, reg, size, access);
      return;
    default:
      break;
  }
  if (reg.type === 'NOT_INIT') throw env.fail(idx, `R${regno} !read_ok`);
  throw env.fail(
    idx,
    `R${regno} type=${regTypeStr(reg)} expected=fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf`,
  );
}

/** `check_stack_range_initialized` for helper memory arguments. */
function checkStackRange(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  regno: number,
  reg: RegState,
  size: number,
  access: HelperMemAccess,
): void {
  const stack = stackOf(st, reg);
  const subprog = st.frames[reg.frameno]?.subprogno ?? 0;
  let lo: number;
  let hi: number;
  if (tnumIsConst(reg.scalar.varOff)) {
    lo = reg.off + Number(BigInt.asIntN(64, reg.scalar.varOff.value));
    hi = lo + size;
    if (lo < -MAX_BPF_STACK || hi > 0 || (size === 0 && !access.zeroOk)) {
      throw env.fail(idx, `invalid indirect access to stack R${regno} off=${lo} size=${size}`);
    }
  } else {
    const s = reg.scalar;
    const limit = BigInt(BPF_MAX_VAR_OFF);
    if (s.smax >= limit || s.smin <= -limit) {
      throw env.fail(idx, `R${regno} unbounded indirect variable offset stack access`);
    }
    const { min, max } = stackVarBounds(reg, 0);
    if (min < -BigInt(MAX_BPF_STACK) || max + BigInt(size) > 0n) {
      throw env.fail(
        idx,
        `invalid variable-offset indirect access to stack R${regno} var_off=${tnumStr(s.varOff)} size=${size}`,
      );
    }
    lo = Number(min);
    hi = Number(max) + size;
  }
  if (size === 0) return;
  env.useStack(subprog, -lo);
  if (access.read) {
    for (let o = lo; o < hi; o++) {
      const slot = stackSlot(stack, Math.floor((-o - 1) / BPF_REG_SIZE));
      const t = byteType(stack, o);
      if (t === 'STACK_INVALID') {
        const within = tnumIsConst(reg.scalar.varOff)
          ? `off ${lo}+${o - lo} size ${size}`
          : `var_off ${tnumStr(reg.scalar.varOff)}+${o - lo} size ${size}`;
        throw env.fail(idx, `invalid indirect read from stack R${regno} ${within}`);
      }
      if (isSpilledReg(slot) && !isSpilledScalarReg(slot) && !env.allowPtrLeaks) {
        throw env.fail(
          idx,
          `R${regno} leaks addr into helper function (spilled pointer at fp${o})`,
        );
      }
    }
  }
  if (access.write) markStackMisc(env, idx, stack, lo, hi);
}
