/**
 * The verifier's register state (kernel `struct bpf_reg_state`, include/linux/bpf_verifier.h):
 * the register type in the kernel's spelling (`RegType`) with its modifiers (`PTR_MAYBE_NULL`,
 * `MEM_RDONLY`, `MEM_RINGBUF`), the fixed offset, the variable part as a `Scalar`, ids, the
 * map a map pointer or map value refers to, packet range, memory size, stack frame and
 * subprog, precision and liveness marks. Also the kernel helpers that build and change a
 * register (`__mark_reg_not_init`, `__mark_reg_unknown`, `__mark_reg_known_zero`,
 * `mark_ptr_or_null_reg`) and the log printer (`reg_type_str`, `print_reg_state`, log.c).
 *
 * Called from: the stack model (src/verifier/stack.ts), the path state and pruning
 * (src/verifier/states.ts) and the instruction checks of `doCheck`.
 *
 * Invariants: a `RegState` is never mutated; every helper returns a new record (registers are
 * shared between copied states). For SCALAR_VALUE `scalar` is the value. For a pointer `off`
 * is the fixed offset and `scalar` the variable offset (the kernel keeps `var_off` and the
 * min/max fields on pointer registers too); a pointer without variable offset has
 * `scalar` = the constant 0.
 */

import { fls64, tnumEqualsConst, tnumIsConst, tnumIsUnknown, tnumStr } from './tnum.js';
import { SCALAR_UNKNOWN, scalarKnown, scalarStr, type Scalar } from './bounds.js';

/** Register types (kernel `enum bpf_reg_type`, base types only; modifiers are flags). */
export type RegType =
  | 'NOT_INIT'
  | 'SCALAR_VALUE'
  | 'PTR_TO_CTX'
  | 'CONST_PTR_TO_MAP'
  | 'PTR_TO_MAP_VALUE'
  | 'PTR_TO_MAP_KEY'
  | 'PTR_TO_STACK'
  | 'PTR_TO_PACKET_META'
  | 'PTR_TO_PACKET'
  | 'PTR_TO_PACKET_END'
  | 'PTR_TO_MEM'
  | 'PTR_TO_BUF'
  | 'PTR_TO_FUNC'
  | 'PTR_TO_BTF_ID'
  | 'PTR_TO_ARENA'
  | 'CONST_PTR_TO_DYNPTR';

/** Short names of the base types in the log (kernel `reg_type_str`'s table). */
export const REG_TYPE_STR: Readonly<Record<RegType, string>> = Object.freeze({
  NOT_INIT: '?',
  SCALAR_VALUE: 'scalar',
  PTR_TO_CTX: 'ctx',
  CONST_PTR_TO_MAP: 'map_ptr',
  PTR_TO_MAP_VALUE: 'map_value',
  PTR_TO_MAP_KEY: 'map_key',
  PTR_TO_STACK: 'fp',
  PTR_TO_PACKET_META: 'pkt_meta',
  PTR_TO_PACKET: 'pkt',
  PTR_TO_PACKET_END: 'pkt_end',
  PTR_TO_MEM: 'mem',
  PTR_TO_BUF: 'buf',
  PTR_TO_FUNC: 'func',
  PTR_TO_BTF_ID: 'ptr_',
  PTR_TO_ARENA: 'arena',
  CONST_PTR_TO_DYNPTR: 'dynptr_ptr',
});

/** The map behind a CONST_PTR_TO_MAP / PTR_TO_MAP_VALUE / PTR_TO_MAP_KEY register. */
export interface MapInfo {
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** `BPF_MAP_TYPE_*`. */
  readonly type: number;
  /** Map identity (the kernel compares `map_ptr`). */
  readonly id: number;
  /** Printed as `map=name` when set and non-empty. */
  readonly name?: string;
  /** `BPF_F_RDONLY_PROG` (`.rodata`): programs may not write values. */
  readonly rdonlyProg?: boolean;
  /** `BPF_F_WRONLY_PROG`: programs may not read values. */
  readonly wronlyProg?: boolean;
}

/** Liveness bits (kernel `enum bpf_reg_liveness`). */
export const REG_LIVE_NONE = 0;
/** The register was read as a 32-bit value. */
export const REG_LIVE_READ32 = 1;
/** The register was read as a 64-bit value. */
export const REG_LIVE_READ64 = 2;
/** Either kind of read. */
export const REG_LIVE_READ = REG_LIVE_READ32 | REG_LIVE_READ64;
/** The register was written in this state (screens reads from the parent). */
export const REG_LIVE_WRITTEN = 4;
/** Liveness of this state is final. */
export const REG_LIVE_DONE = 8;

/** One register (kernel `struct bpf_reg_state`). Never mutated. */
export interface RegState {
  readonly type: RegType;
  /** `PTR_MAYBE_NULL`: the `_or_null` variants. */
  readonly maybeNull: boolean;
  /** `MEM_RDONLY`. */
  readonly memRdonly: boolean;
  /** `MEM_RINGBUF` (ringbuf_mem). */
  readonly memRingbuf: boolean;
  /**
   * PTR_TO_MEM of a coroutine frame (`coro_mem`, from `bpf_coro_frame_alloc` or the r1 of a
   * resume/destroy function): program-private memory that may hold pointers
   * (src/verifier/check-coro.ts).
   */
  readonly memCoro: boolean;
  /**
   * SCALAR_VALUE: a word loaded from a coroutine frame (or a handle, or `.rodata`), which may be
   * a frame handle or a function token: a `callx` target, and, once proven non-zero, a frame
   * whose accesses the JIT checks at run time (`coro_handle`, check-coro.ts).
   */
  readonly coroHandle: boolean;
  /** Fixed offset of a pointer. */
  readonly off: number;
  /** The value (SCALAR_VALUE) or the variable offset (pointers). */
  readonly scalar: Scalar;
  /** Shared by registers known to hold the same value (null checks, scalar links). */
  readonly id: number;
  /** Id of the acquired reference this pointer holds (`ref_obj_id`). */
  readonly refObjId: number;
  /**
   * `coro_mem`: the identity of the frame on this path (check-coro.ts), kept through the NULL
   * check, copies, spills and pointer arithmetic; 0 for a frame whose contents are not tracked.
   */
  readonly frameId: number;
  /** The map of a map pointer / map value / map key. */
  readonly map: MapInfo | undefined;
  /** Packet pointers: bytes after the pointer proven in bounds. */
  readonly range: number;
  /** PTR_TO_MEM: size of the memory. */
  readonly memSize: number;
  /** PTR_TO_STACK: the frame it points into. */
  readonly frameno: number;
  /** PTR_TO_FUNC: the subprog index. */
  readonly subprog: number;
  /** PTR_TO_BTF_ID: the type name printed after `ptr_`. */
  readonly btfName: string;
  /** Scalar precision mark (`precise`). */
  readonly precise: boolean;
  /** `REG_LIVE_*` bits. */
  readonly live: number;
}

/** Fields a pointer constructor may set. */
export type RegPtrFields = Partial<Omit<RegState, 'type'>>;

const ZERO = scalarKnown(0n);

/** An uninitialised register (kernel `__mark_reg_not_init`). */
export const REG_NOT_INIT: RegState = Object.freeze({
  type: 'NOT_INIT',
  maybeNull: false,
  memRdonly: false,
  memRingbuf: false,
  memCoro: false,
  coroHandle: false,
  off: 0,
  scalar: SCALAR_UNKNOWN,
  id: 0,
  refObjId: 0,
  frameId: 0,
  map: undefined,
  range: 0,
  memSize: 0,
  frameno: 0,
  subprog: 0,
  btfName: '',
  precise: false,
  live: REG_LIVE_NONE,
});

/**
 * An uninitialised register (kernel `__mark_reg_not_init`).
 *
 * @example
 * regNotInit().type // 'NOT_INIT'
 */
export function regNotInit(): RegState {
  return REG_NOT_INIT;
}

/**
 * A scalar that may hold anything, not precise (kernel `__mark_reg_unknown`).
 *
 * @example
 * regStateStr(regUnknownScalar()) // 'scalar()'
 */
export function regUnknownScalar(): RegState {
  return UNKNOWN_SCALAR;
}

const UNKNOWN_SCALAR: RegState = Object.freeze({ ...REG_NOT_INIT, type: 'SCALAR_VALUE' });

/** A scalar with value `scalar` (and no id, not precise). */
export function regScalar(scalar: Scalar): RegState {
  if (scalar.varOff.mask === 0n && scalar.varOff.value < 1024n) {
    // The shared register of a shared small constant (bounds.ts scalarKnown).
    const i = Number(scalar.varOff.value);
    const c = CONST_REGS[i];
    if (c !== undefined && c.scalar === scalar) return c;
    if (c === undefined && scalar === scalarKnown(scalar.varOff.value)) {
      return (CONST_REGS[i] = regWith(UNKNOWN_SCALAR, { scalar }));
    }
  }
  return regWith(UNKNOWN_SCALAR, { scalar });
}

const CONST_REGS: (RegState | undefined)[] = [];

/**
 * A known constant scalar (kernel `__mark_reg_known` on a SCALAR_VALUE); `v` is taken mod 2^64.
 *
 * @example
 * regStateStr(regConst(-1)) // '-1'
 */
export function regConst(v: bigint | number): RegState {
  return regScalar(scalarKnown(BigInt(v)));
}

/**
 * A pointer of base type `type` with zero offsets and the given fields.
 *
 * @example
 * regStr(10, regPtr('PTR_TO_STACK')) // 'R10=fp0'
 */
export function regPtr(type: RegType, fields: RegPtrFields = {}): RegState {
  return regWith(ZERO_PTR, { ...fields, type });
}

/**
 * Whether pointer `reg` points at the start of its object: fixed offset 0 and a variable offset
 * known to be 0 (what a release function, a trusted argument or a run-time check needs).
 */
export function regAtZeroOff(reg: RegState): boolean {
  return reg.off === 0 && tnumEqualsConst(reg.scalar.varOff, 0n);
}

const ZERO_PTR: RegState = Object.freeze({ ...REG_NOT_INIT, scalar: ZERO });

/**
 * `reg` with some fields replaced. Records are built field by field so that every register
 * has one shape (the verifier's hottest allocation); they are not frozen, but no code
 * mutates one (the fields are readonly).
 */
export function regWith(reg: RegState, f: RegPtrFields & { type?: RegType }): RegState {
  return {
    type: f.type ?? reg.type,
    maybeNull: f.maybeNull ?? reg.maybeNull,
    memRdonly: f.memRdonly ?? reg.memRdonly,
    memRingbuf: f.memRingbuf ?? reg.memRingbuf,
    memCoro: f.memCoro ?? reg.memCoro,
    coroHandle: f.coroHandle ?? reg.coroHandle,
    off: f.off ?? reg.off,
    scalar: f.scalar ?? reg.scalar,
    id: f.id ?? reg.id,
    refObjId: f.refObjId ?? reg.refObjId,
    frameId: f.frameId ?? reg.frameId,
    map: 'map' in f ? f.map : reg.map,
    range: f.range ?? reg.range,
    memSize: f.memSize ?? reg.memSize,
    frameno: f.frameno ?? reg.frameno,
    subprog: f.subprog ?? reg.subprog,
    btfName: f.btfName ?? reg.btfName,
    precise: f.precise ?? reg.precise,
    live: f.live ?? reg.live,
  };
}

/**
 * `reg` with its offsets and ids cleared and its value the constant 0, keeping the type
 * (kernel `__mark_reg_known_zero`, as used for R1=ctx and R10).
 */
export function markRegKnownZero(reg: RegState): RegState {
  return regWith(reg, {
    off: 0,
    range: 0,
    memSize: 0,
    map: undefined,
    id: 0,
    refObjId: 0,
    frameId: 0,
    scalar: ZERO,
  });
}

/** Whether the type is one of the packet pointers (kernel `type_is_pkt_pointer`). */
export function typeIsPktPointer(type: RegType): boolean {
  return type === 'PTR_TO_PACKET' || type === 'PTR_TO_PACKET_META';
}

/** Whether the type refers to a map (kernel `type_is_map_ptr`). */
export function typeIsMapPtr(type: RegType): boolean {
  return type === 'CONST_PTR_TO_MAP' || type === 'PTR_TO_MAP_VALUE' || type === 'PTR_TO_MAP_KEY';
}

/**
 * Whether the register holds a pointer (kernel `__is_pointer_value` with leaks not allowed):
 * initialised and not a scalar.
 */
export function regIsPointer(reg: RegState): boolean {
  return reg.type !== 'SCALAR_VALUE' && reg.type !== 'NOT_INIT';
}

/** Whether the register is the scalar constant 0 (kernel `register_is_null`). */
export function regIsNull(reg: RegState): boolean {
  return reg.type === 'SCALAR_VALUE' && tnumEqualsConst(reg.scalar.varOff, 0n);
}

/** Number of significant bits of a scalar's umax (kernel `get_reg_width`). */
export function regWidth(reg: RegState): number {
  return fls64(reg.scalar.umax);
}

/**
 * The or-null → not-null conversion of a pointer proven non-NULL (kernel
 * `mark_ptr_not_null_reg`, maps without inner maps or socket values).
 */
export function markPtrNotNull(reg: RegState): RegState {
  if (!reg.maybeNull) return reg;
  return regWith(reg, { maybeNull: false });
}

/**
 * A null check on the pointers with id `id` (kernel `mark_ptr_or_null_reg`): on the NULL
 * branch the register becomes the scalar 0 with no ids; otherwise it becomes not-null and
 * loses its id (`keepId` for pointers that may point to a spin lock, whose id stays in use).
 * Registers of another id, or not maybe-null, are returned unchanged.
 */
export function markPtrOrNull(
  reg: RegState,
  id: number,
  isNull: boolean,
  keepId = false,
): RegState {
  if (!reg.maybeNull || reg.id !== id || id === 0) return reg;
  if (isNull) {
    return regWith(regConst(0), { live: reg.live });
  }
  const r = markPtrNotNull(reg);
  return keepId ? r : regWith(r, { id: 0 });
}

/**
 * The type's log name with its modifiers (kernel `reg_type_str`).
 *
 * @example
 * regTypeStr(regPtr('PTR_TO_MAP_VALUE', { maybeNull: true })) // 'map_value_or_null'
 * regTypeStr(regPtr('PTR_TO_MEM', { memRingbuf: true })) // 'ringbuf_mem'
 */
export function regTypeStr(
  reg: Pick<RegState, 'type' | 'maybeNull' | 'memRdonly' | 'memRingbuf'> &
    Partial<Pick<RegState, 'memCoro' | 'coroHandle' | 'scalar'>>,
): string {
  if (reg.type === 'SCALAR_VALUE' && reg.coroHandle === true) {
    return (reg.scalar?.umin ?? 0n) > 0n ? 'coro_handle' : 'coro_handle_or_null';
  }
  let postfix = '';
  if (reg.maybeNull) postfix = reg.type === 'PTR_TO_BTF_ID' ? 'or_null_' : '_or_null';
  const prefix =
    (reg.memRdonly ? 'rdonly_' : '') +
    (reg.memRingbuf ? 'ringbuf_' : '') +
    (reg.memCoro === true ? 'coro_' : '');
  return prefix + REG_TYPE_STR[reg.type] + postfix;
}

/** A signed number as the log prints it (kernel `verbose_snum`). */
function snum(n: bigint | number): string {
  const v = BigInt.asIntN(64, BigInt(n));
  return v >= -32768n && v <= 32767n ? v.toString() : `0x${BigInt.asUintN(64, v).toString(16)}`;
}

/** An unsigned number as the log prints it (kernel `verbose_unum`). */
function unum(n: number): string {
  return n <= 0xffff ? n.toString() : `0x${n.toString(16)}`;
}

/** The `smin=...` entries of a pointer's variable offset (kernel `print_scalar_ranges`). */
function varOffRanges(s: Scalar): string[] {
  // scalarStr prints `scalar(<ranges>[,var_off=...])`; reuse its range printer.
  const str = scalarStr(s);
  const inner = str.startsWith('scalar(') ? str.slice('scalar('.length, -1) : '';
  const parts = inner === '' ? [] : inner.split(',');
  return parts.filter((p) => !p.startsWith('var_off='));
}

/**
 * A register's value as the log prints it after `R1=` (kernel `print_reg_state`): `5`,
 * `scalar(umax=255,var_off=(0x0; 0xff))`, `ctx()`, `fp-8`, `map_value_or_null(id=1,ks=4,vs=8)`,
 * `pkt(r=14)`. `frameno` is the frame the register lives in (a stack pointer into another
 * frame prints `fp[1]-8`).
 *
 * @example
 * regStateStr(regPtr('PTR_TO_PACKET', { range: 14 })) // 'pkt(r=14)'
 */
export function regStateStr(reg: RegState, frameno = 0): string {
  const t = reg.type;
  const s = reg.scalar;
  const p = t === 'SCALAR_VALUE' && reg.precise ? 'P' : '';
  if (t === 'SCALAR_VALUE' && tnumIsConst(s.varOff)) return p + snum(s.varOff.value);
  if (t === 'SCALAR_VALUE' && reg.coroHandle) {
    const r = varOffRanges(s);
    return `${regTypeStr(reg)}(${r.join(',')})`;
  }
  let out = p + regTypeStr(reg);
  if (t === 'PTR_TO_ARENA') return out;
  if (t === 'PTR_TO_STACK') {
    if (reg.frameno !== frameno) out += `[${reg.frameno}]`;
    if (tnumIsConst(s.varOff)) return out + snum(s.varOff.value + BigInt(reg.off));
  }
  if (t === 'PTR_TO_BTF_ID') out += reg.btfName;
  const a: string[] = [];
  if (reg.id !== 0) a.push(`id=${reg.id}`);
  if (reg.refObjId !== 0) a.push(`ref_obj_id=${reg.refObjId}`);
  if (typeIsMapPtr(t) && reg.map !== undefined) {
    if (reg.map.name !== undefined && reg.map.name !== '') a.push(`map=${reg.map.name}`);
    a.push(`ks=${reg.map.keySize},vs=${reg.map.valueSize}`);
  }
  if (t !== 'SCALAR_VALUE' && reg.off !== 0) a.push(`off=${snum(reg.off)}`);
  if (typeIsPktPointer(t)) a.push(`r=${unum(reg.range)}`);
  if (t === 'PTR_TO_MEM') a.push(`sz=${unum(reg.memSize)}`);
  if (tnumIsConst(s.varOff)) {
    if (s.varOff.value !== 0n) a.push(`imm=${snum(s.varOff.value)}`);
  } else {
    a.push(...varOffRanges(s));
    if (!tnumIsUnknown(s.varOff)) a.push(`var_off=${tnumStr(s.varOff)}`);
  }
  return `${out}(${a.join(',')})`;
}

/** The liveness suffix of a register or stack slot (kernel `print_liveness`): `_w`, `_rw`, ''. */
export function liveStr(live: number): string {
  if ((live & (REG_LIVE_READ | REG_LIVE_WRITTEN | REG_LIVE_DONE)) === 0) return '';
  return (
    '_' +
    ((live & REG_LIVE_READ) !== 0 ? 'r' : '') +
    ((live & REG_LIVE_WRITTEN) !== 0 ? 'w' : '') +
    ((live & REG_LIVE_DONE) !== 0 ? 'D' : '')
  );
}

/**
 * One register entry of `print_verifier_state`: `R1=ctx()`, `R2_w=fp-8`. `written` forces
 * (`true`) or suppresses (`false`) the `_w` mark; by default the register's `live` bits are
 * printed as `print_liveness` does.
 *
 * @example
 * regStr(2, regPtr('PTR_TO_STACK', { off: -8 }), true) // 'R2_w=fp-8'
 */
export function regStr(regno: number, reg: RegState, written?: boolean, frameno = 0): string {
  const live = written === undefined ? liveStr(reg.live) : written ? '_w' : '';
  return `R${regno}${live}=${regStateStr(reg, frameno)}`;
}
