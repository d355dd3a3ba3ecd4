/**
 * Helper and kfunc calls on the verifier state (kernel `check_helper_call`, `check_func_arg`,
 * `check_map_func_compatibility`, `check_kfunc_call`): the helper exists and the program type
 * may call it, each argument matches its prototype (map pointers, keys and values of the map's
 * sizes, memory with a constant-bounded size, ctx, callbacks, ringbuf records to release, spin
 * locks and timers in map values), references are acquired and released, R0 gets the return
 * type and R1–R5 are clobbered. Callbacks are not explored here: the call returns what
 * do-check.ts needs to verify them.
 *
 * Called from: do-check.ts for helper calls (`call` src 0) and kfunc calls (`call` src 2).
 */

import type { Insn } from '../isa/insn.js';
import {
  BPF_FUNC_for_each_map_elem,
  BPF_FUNC_loop,
  BPF_FUNC_map_delete_elem,
  BPF_FUNC_map_lookup_elem,
  BPF_FUNC_map_peek_elem,
  BPF_FUNC_map_pop_elem,
  BPF_FUNC_map_push_elem,
  BPF_FUNC_map_update_elem,
  BPF_FUNC_ringbuf_output,
  BPF_FUNC_ringbuf_query,
  BPF_FUNC_ringbuf_reserve,
  BPF_FUNC_spin_lock,
  BPF_FUNC_spin_unlock,
  BPF_FUNC_tail_call,
  BPF_FUNC_timer_set_callback,
  BPF_FUNC_xdp_adjust_head,
  BPF_FUNC_xdp_adjust_meta,
  BPF_FUNC_xdp_adjust_tail,
  funcProto,
  helperName,
  parseArgType,
  type FuncProto,
} from '../helper-protos.js';
import {
  regConst,
  regIsPointer,
  regNotInit,
  regPtr,
  regScalar,
  regTypeStr,
  regUnknownScalar,
  type MapInfo,
  type RegState,
  regAtZeroOff,
} from './reg-state.js';
import { tnumIsConst } from './tnum.js';
import { markChainPrecision } from './precision.js';
import { regBoundsSync, scalarCopy, SCALAR_UNKNOWN, type Scalar } from './bounds.js';
import { tnumRange } from './tnum.js';
import type { VerifierState } from './states.js';
import { readReg } from './check-alu.js';
import { checkHelperMemAccess } from './check-mem.js';
import { mapAllRegs } from './check-jmp.js';
import type { VerifierEnv } from './verifier-env.js';
import type { KfuncArg } from './verifier.js';
import { resLockCall, resUnlockCall } from './res-lock.js';
import {
  checkCoroKfuncArg,
  checkThrow,
  demoteFrames,
  escapeFrame,
  forgetAllSlots,
  forgetFrameSlots,
  isCoroHandle,
  isCoroMem,
  REG_CORO_HANDLE,
  suspendFrame,
} from './check-coro.js';
import { copyState } from './states.js';

/** Map types (uapi `enum bpf_map_type`) the compatibility rules name. */
const MAP = {
  hash: 1,
  array: 2,
  progArray: 3,
  percpuHash: 5,
  percpuArray: 6,
  lruHash: 9,
  lruPercpuHash: 10,
  arrayOfMaps: 12,
  hashOfMaps: 13,
  queue: 22,
  stack: 23,
  ringbuf: 27,
  bloomFilter: 30,
} as const;

/** Helpers a map type is restricted to (the first switch of `check_map_func_compatibility`). */
const MAP_ONLY_FUNCS: ReadonlyMap<number, readonly number[]> = new Map([
  [MAP.progArray, [BPF_FUNC_tail_call]],
  [MAP.ringbuf, [BPF_FUNC_ringbuf_output, BPF_FUNC_ringbuf_reserve, BPF_FUNC_ringbuf_query]],
  [MAP.queue, [BPF_FUNC_map_push_elem, BPF_FUNC_map_pop_elem, BPF_FUNC_map_peek_elem]],
  [MAP.stack, [BPF_FUNC_map_push_elem, BPF_FUNC_map_pop_elem, BPF_FUNC_map_peek_elem]],
  [MAP.bloomFilter, [BPF_FUNC_map_push_elem, BPF_FUNC_map_peek_elem]],
  [MAP.arrayOfMaps, [BPF_FUNC_map_lookup_elem]],
  [MAP.hashOfMaps, [BPF_FUNC_map_lookup_elem]],
]);

/** Map types a helper is restricted to (the second switch). */
const FUNC_ONLY_MAPS: ReadonlyMap<number, readonly number[]> = new Map([
  [BPF_FUNC_tail_call, [MAP.progArray]],
  [BPF_FUNC_ringbuf_output, [MAP.ringbuf]],
  [BPF_FUNC_ringbuf_reserve, [MAP.ringbuf]],
  [BPF_FUNC_ringbuf_query, [MAP.ringbuf]],
  [BPF_FUNC_map_push_elem, [MAP.queue, MAP.stack, MAP.bloomFilter]],
  [BPF_FUNC_map_pop_elem, [MAP.queue, MAP.stack]],
  [BPF_FUNC_map_peek_elem, [MAP.queue, MAP.stack, MAP.bloomFilter]],
  [
    BPF_FUNC_for_each_map_elem,
    [MAP.hash, MAP.array, MAP.percpuHash, MAP.percpuArray, MAP.lruHash, MAP.lruPercpuHash],
  ],
]);

/** Program types that may call a helper restricted to some types (`get_func_proto`). */
const SKB_TYPES = ['socket_filter', 'sched_cls', 'sched_act', 'cgroup_skb', 'sk_skb'] as const;
const TRACING_TYPES = [
  'kprobe',
  'tracepoint',
  'raw_tracepoint',
  'perf_event',
  'tracing',
  'lsm',
] as const;
const HELPER_TYPES: ReadonlyMap<number, readonly string[]> = new Map<number, readonly string[]>([
  [BPF_FUNC_xdp_adjust_head, ['xdp']],
  [BPF_FUNC_xdp_adjust_meta, ['xdp']],
  [BPF_FUNC_xdp_adjust_tail, ['xdp']],
  [4, TRACING_TYPES], // bpf_probe_read
  [45, TRACING_TYPES], // bpf_probe_read_str
  [26, SKB_TYPES], // bpf_skb_load_bytes
]);

/** Helpers that move or resize the packet (`bpf_helper_changes_pkt_data`). */
const CHANGES_PKT_DATA: ReadonlySet<number> = new Set([
  BPF_FUNC_xdp_adjust_head,
  BPF_FUNC_xdp_adjust_meta,
  BPF_FUNC_xdp_adjust_tail,
]);

/** A callback the call registers, for do-check.ts to verify. */
export interface CallbackRequest {
  /** `sync`: runs before the helper returns (bpf_loop, for_each); `async`: later (timers). */
  readonly kind: 'loop' | 'for_each' | 'timer';
  readonly subprog: number;
  /** The callback's R1..R5 on entry. */
  readonly args: readonly RegState[];
  /** The range its R0 must lie in. */
  readonly retRange: readonly [bigint, bigint];
}

/** What a call's checks collected about its arguments (kernel `struct bpf_call_arg_meta`). */
interface CallMeta {
  map?: MapInfo | undefined;
  mapRegno?: number;
  funcSubprog?: number;
  releaseRefObjId?: number;
  releaseRegno?: number;
  allocSize?: number;
  timerMap?: MapInfo | undefined;
}

/** `bpf_loop`'s cap on nr_loops (`BPF_MAX_LOOPS`). */
const BPF_MAX_LOOPS = 1n << 23n;

/** The scalar known to lie in `[lo, hi]` (small non-negative bounds). */
function scalarRange(lo: bigint, hi: bigint): Scalar {
  const r = scalarCopy(SCALAR_UNKNOWN);
  r.umin = lo;
  r.umax = hi;
  r.smin = lo;
  r.smax = hi;
  r.u32Min = Number(lo);
  r.u32Max = Number(hi);
  r.s32Min = Number(lo);
  r.s32Max = Number(hi);
  r.varOff = tnumRange(lo, hi);
  regBoundsSync(r);
  return r;
}

/** The constant value of `s`, if it is one. */
function constOf(s: Scalar): bigint | undefined {
  return tnumIsConst(s.varOff) ? s.varOff.value : undefined;
}

/** `check_mem_size_reg`: the size in `sizeReg` bounds the memory in `memRegno`. */
function checkMemSize(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  memRegno: number,
  sizeRegno: number,
  zeroOk: boolean,
  access: { read: boolean; write: boolean },
): void {
  const size = readReg(env, st, idx, sizeRegno);
  if (size.type !== 'SCALAR_VALUE') {
    throw env.fail(idx, `R${sizeRegno} type=${regTypeStr(size)} expected=scalar`);
  }
  const s = size.scalar;
  if (s.smin < 0n) {
    throw env.fail(
      idx,
      `R${sizeRegno} min value is negative, either use unsigned or 'var &= const'`,
    );
  }
  if (s.umin === 0n && !zeroOk) {
    throw env.fail(idx, `R${sizeRegno} invalid zero-sized read: u64=[${s.umin},${s.umax}]`);
  }
  if (s.umax >= 1n << 29n) {
    throw env.fail(
      idx,
      `R${sizeRegno} unbounded memory access, use 'var &= const' or 'if (var < const)'`,
    );
  }
  const mem = st.frames[st.curframe]?.regs[memRegno];
  if (mem !== undefined && mem.maybeNull && zeroOk) {
    // ARG_PTR_TO_MEM | PTR_MAYBE_NULL: NULL is allowed only with size 0.
    if (s.umax !== 0n)
      checkHelperMemAccess(env, st, idx, memRegno, Number(s.umax), { ...access, zeroOk });
    markChainPrecision(env, st, sizeRegno);
    return;
  }
  if (mem !== undefined && mem.type === 'SCALAR_VALUE' && zeroOk && s.umax === 0n) {
    markChainPrecision(env, st, sizeRegno);
    return;
  }
  checkHelperMemAccess(env, st, idx, memRegno, Number(s.umax), { ...access, zeroOk });
  markChainPrecision(env, st, sizeRegno);
}

/** Checks the helper's argument `argno` (1-based register) against its type. */
function checkFuncArg(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  proto: FuncProto,
  argno: number,
  meta: CallMeta,
): void {
  const argType = proto.args[argno - 1];
  if (argType === undefined) return;
  const { base, flags } = parseArgType(argType);
  if (base === 'ARG_DONTCARE') return;
  const reg = readReg(env, st, idx, argno);
  const mayBeNull = flags.includes('PTR_MAYBE_NULL');
  const expect = (ok: boolean, expected: string): void => {
    if (!ok) throw env.fail(idx, `R${argno} type=${regTypeStr(reg)} expected=${expected}`);
  };
  switch (base) {
    case 'ARG_ANYTHING':
      if (regIsPointer(reg) && !env.allowPtrLeaks) {
        throw env.fail(idx, `R${argno} leaks addr into helper function`);
      }
      return;
    case 'ARG_CONST_MAP_PTR':
      expect(reg.type === 'CONST_PTR_TO_MAP', 'map_ptr');
      meta.map = reg.map;
      meta.mapRegno = argno;
      checkMapFuncCompat(env, idx, proto, meta.map);
      return;
    case 'ARG_PTR_TO_MAP_KEY':
    case 'ARG_PTR_TO_MAP_VALUE': {
      if (meta.map === undefined) throw env.fail(idx, 'invalid map_ptr to access map->key');
      const size = base === 'ARG_PTR_TO_MAP_KEY' ? meta.map.keySize : meta.map.valueSize;
      if (mayBeNull && reg.type === 'SCALAR_VALUE' && constOf(reg.scalar) === 0n) {
        markChainPrecision(env, st, argno);
        return;
      }
      expect(
        reg.type === 'PTR_TO_STACK' ||
          reg.type === 'PTR_TO_MAP_VALUE' ||
          reg.type === 'PTR_TO_MAP_KEY' ||
          reg.type === 'PTR_TO_MEM' ||
          (proto.pktAccess === true &&
            (reg.type === 'PTR_TO_PACKET' || reg.type === 'PTR_TO_PACKET_META')),
        'fp, pkt, pkt_meta, map_key, map_value, mem',
      );
      if (reg.maybeNull) expect(false, 'fp, pkt, pkt_meta, map_key, map_value, mem');
      // The key/value is read; an update's value is read, a pop/peek's is written.
      const write = proto.id === BPF_FUNC_map_pop_elem || proto.id === BPF_FUNC_map_peek_elem;
      checkHelperMemAccess(env, st, idx, argno, size, { read: !write, write, zeroOk: false });
      return;
    }
    case 'ARG_PTR_TO_MEM':
    case 'ARG_PTR_TO_UNINIT_MEM':
      // The memory is checked with its size argument, next (check_mem_size_reg); here only
      // that it is not an unchecked _or_null pointer.
      if (mayBeNull && reg.type === 'SCALAR_VALUE' && constOf(reg.scalar) === 0n) {
        markChainPrecision(env, st, argno);
        return;
      }
      if (reg.maybeNull && reg.type !== 'SCALAR_VALUE') {
        throw env.fail(
          idx,
          `R${argno} type=${regTypeStr(reg)} expected=fp, pkt, pkt_meta, map_key, map_value, mem`,
        );
      }
      return;
    case 'ARG_CONST_SIZE':
    case 'ARG_CONST_SIZE_OR_ZERO': {
      const memArg = proto.args[argno - 2];
      const memBase = memArg === undefined ? undefined : parseArgType(memArg);
      const uninit =
        memBase !== undefined &&
        (memBase.base === 'ARG_PTR_TO_UNINIT_MEM' || memBase.flags.includes('MEM_UNINIT'));
      const rdonly = memBase?.flags.includes('MEM_RDONLY') === true;
      checkMemSize(env, st, idx, argno - 1, argno, base === 'ARG_CONST_SIZE_OR_ZERO', {
        read: !uninit,
        write: uninit || !rdonly,
      });
      return;
    }
    case 'ARG_CONST_ALLOC_SIZE_OR_ZERO': {
      if (reg.type !== 'SCALAR_VALUE') expect(false, 'scalar');
      const c = constOf(reg.scalar);
      if (c === undefined) throw env.fail(idx, `R${argno} is not a known constant'`);
      markChainPrecision(env, st, argno);
      meta.allocSize = Number(c);
      return;
    }
    case 'ARG_PTR_TO_FIXED_SIZE_MEM':
    case 'ARG_PTR_TO_LONG':
    case 'ARG_PTR_TO_INT': {
      const size = base === 'ARG_PTR_TO_INT' ? 4 : 8;
      const uninit = flags.includes('MEM_UNINIT') || base !== 'ARG_PTR_TO_FIXED_SIZE_MEM';
      checkHelperMemAccess(env, st, idx, argno, size, {
        read: !uninit,
        write: uninit,
        zeroOk: false,
      });
      return;
    }
    case 'ARG_PTR_TO_CTX':
      expect(reg.type === 'PTR_TO_CTX', 'ctx');
      if (!regAtZeroOff(reg)) {
        throw env.fail(idx, `dereference of modified ctx ptr R${argno} off=${reg.off} disallowed`);
      }
      return;
    case 'ARG_PTR_TO_FUNC':
      expect(reg.type === 'PTR_TO_FUNC', 'func');
      meta.funcSubprog = reg.subprog;
      return;
    case 'ARG_PTR_TO_STACK':
    case 'ARG_PTR_TO_STACK_OR_NULL':
      if (
        base === 'ARG_PTR_TO_STACK_OR_NULL' &&
        reg.type === 'SCALAR_VALUE' &&
        constOf(reg.scalar) === 0n
      ) {
        markChainPrecision(env, st, argno);
        return;
      }
      expect(reg.type === 'PTR_TO_STACK', 'fp');
      return;
    case 'ARG_PTR_TO_CONST_STR': {
      expect(reg.type === 'PTR_TO_MAP_VALUE' && !reg.maybeNull, 'map_value');
      const map = reg.map;
      if (map === undefined || !tnumIsConst(reg.scalar.varOff)) {
        throw env.fail(idx, `R${argno} does not point to a readonly map'`);
      }
      const off = reg.off + Number(reg.scalar.varOff.value);
      checkHelperMemAccess(env, st, idx, argno, Math.max(1, map.valueSize - off), {
        read: true,
        write: false,
        zeroOk: false,
      });
      return;
    }
    case 'ARG_PTR_TO_RINGBUF_MEM': {
      // a record kept in a frame and reloaded as a handle (check-coro.ts): the helper checks
      // at run time that it is a reserved record (-EINVAL otherwise)
      if (isCoroHandle(reg)) return;
      const ok = reg.type === 'PTR_TO_MEM' && reg.memRingbuf && !reg.maybeNull;
      if (!ok) throw env.fail(idx, `R${argno} type=${regTypeStr(reg)} expected=ringbuf_mem`);
      if (reg.refObjId === 0) {
        throw env.fail(idx, `R${argno} must be referenced when passed to release function`);
      }
      if (!regAtZeroOff(reg)) {
        throw env.fail(
          idx,
          `R${argno} must have zero offset when passed to release func or trusted arg to kfunc`,
        );
      }
      meta.releaseRefObjId = reg.refObjId;
      meta.releaseRegno = argno;
      return;
    }
    case 'ARG_PTR_TO_BTF_ID': {
      // a trusted pointer to the start of the struct the helper names (kernel arg_btf_id)
      const name = proto.argBtfName ?? '';
      expect(reg.type === 'PTR_TO_BTF_ID' && reg.btfName === name, `ptr_${name}`);
      if (reg.maybeNull && !mayBeNull)
        throw env.fail(idx, `Possibly NULL pointer passed to helper arg${argno}`);
      if (!regAtZeroOff(reg))
        throw env.fail(idx, `R${argno} must have zero offset when passed to ${proto.name}`);
      return;
    }
    case 'ARG_PTR_TO_TIMER':
    case 'ARG_PTR_TO_SPIN_LOCK': {
      expect(reg.type === 'PTR_TO_MAP_VALUE' && !reg.maybeNull, 'map_value');
      if (!tnumIsConst(reg.scalar.varOff)) {
        throw env.fail(
          idx,
          `R${argno} doesn't have constant offset. ${base === 'ARG_PTR_TO_TIMER' ? 'bpf_timer' : 'bpf_spin_lock'} has to be at the constant offset`,
        );
      }
      const size = base === 'ARG_PTR_TO_TIMER' ? 16 : 4;
      checkHelperMemAccess(env, st, idx, argno, size, { read: false, write: false, zeroOk: false });
      if (base === 'ARG_PTR_TO_TIMER') meta.timerMap = reg.map;
      else meta.map = reg.map;
      return;
    }
    default:
      throw env.fail(idx, `R${argno} argument type ${base} of ${proto.name} is not supported`);
  }
}

/** `check_map_func_compatibility`. */
function checkMapFuncCompat(
  env: VerifierEnv,
  idx: number,
  proto: FuncProto,
  map: MapInfo | undefined,
): void {
  if (map === undefined) return;
  const bad = (): never => {
    throw env.fail(idx, `cannot pass map_type ${map.type} into func ${proto.name}#${proto.id}`);
  };
  const onlyFuncs = MAP_ONLY_FUNCS.get(map.type);
  if (onlyFuncs !== undefined && !onlyFuncs.includes(proto.id)) bad();
  const onlyMaps = FUNC_ONLY_MAPS.get(proto.id);
  if (onlyMaps !== undefined && !onlyMaps.includes(map.type)) bad();
  if (
    (proto.id === BPF_FUNC_map_update_elem || proto.id === BPF_FUNC_map_delete_elem) &&
    map.type === MAP.progArray
  ) {
    bad();
  }
}

/** Clobbers R1–R5 after a call (`caller_saved`). */
function clobberArgs(st: VerifierState): void {
  const f = st.frames[st.curframe];
  if (f === undefined) return;
  for (let r = 1; r <= 5; r++) f.regs[r] = regNotInit();
}

/** Sets R0 of the current frame. */
function setR0(st: VerifierState, reg: RegState): void {
  const f = st.frames[st.curframe];
  if (f !== undefined) f.regs[0] = reg;
}

/** An unknown non-zero u64. */
function nonZero(): Scalar {
  const r = scalarCopy(SCALAR_UNKNOWN);
  r.umin = 1n;
  regBoundsSync(r);
  return r;
}

/**
 * The type a KF_RELEASE argument must have: a `PTR_TO_BTF_ID` of `arg.btfName`, or an object
 * of `bpf_obj_new_impl` (the kfunc that acquired the reference returns `obj`), at offset 0.
 */
function checkReleaseType(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  argno: number,
  reg: RegState,
  arg: Extract<KfuncArg, { kind: 'release' }>,
): void {
  const type = reg.type === 'PTR_TO_BTF_ID' ? `ptr_${reg.btfName}` : regTypeStr(reg);
  if (arg.btfName !== undefined && (reg.type !== 'PTR_TO_BTF_ID' || reg.btfName !== arg.btfName))
    throw env.fail(idx, `R${argno} type=${type} expected=ptr_${arg.btfName}`);
  if (arg.obj === true) {
    const at = st.refs.find((r) => r.id === reg.refObjId)?.insnIdx;
    const made = at === undefined ? undefined : env.kfuncAt(at);
    if (reg.type !== 'PTR_TO_MEM' || made?.ret.kind !== 'obj')
      throw env.fail(idx, `R${argno} type=${type} expected=an object of bpf_obj_new`);
  }
  if (!regAtZeroOff(reg)) {
    throw env.fail(
      idx,
      `R${argno} must have zero offset when passed to release func or trusted arg to kfunc`,
    );
  }
}

/** `release_reference`: drops reference `id` and invalidates every register holding it. */
export function releaseReference(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  id: number,
): void {
  const i = st.refs.findIndex((r) => r.id === id && r.type === 'REF_TYPE_PTR');
  if (i < 0) throw env.fail(idx, `invalid reference id=${id} passed to release function`);
  st.refs.splice(i, 1);
  mapAllRegs(st, (r) => (r.refObjId === id ? regNotInit() : r));
}

/** `acquire_reference`: a new reference acquired at `idx`. */
export function acquireReference(env: VerifierEnv, st: VerifierState, idx: number): number {
  const id = env.newId();
  st.refs.push({ type: 'REF_TYPE_PTR', id, insnIdx: idx, ptr: 0 });
  return id;
}

/**
 * `update_loop_inline_state`: the bpf_loop call at `idx` stays fit for inlining while every
 * path reaching it passes the same callback and a flags argument known to be 0.
 */
function noteLoopInline(env: VerifierEnv, idx: number, subprog: number, flags: RegState): void {
  const zero = flags.type === 'SCALAR_VALUE' && constOf(flags.scalar) === 0n;
  const seen = env.loopInline.get(idx);
  env.loopInline.set(idx, zero && (seen === undefined || seen === subprog) ? subprog : -1);
}

/**
 * Checks helper call `insn` at `idx` and applies it to `st` (args checked, R0 typed, R1–R5
 * clobbered). Returns the callback the helper registers, if any.
 */
export function checkHelperCall(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  insn: Insn,
): CallbackRequest | undefined {
  const id = insn.imm;
  const name = helperName(id);
  if (name === undefined) throw env.fail(idx, `invalid func unknown#${id}`);
  const proto = funcProto(id);
  const types = HELPER_TYPES.get(id);
  if (
    proto === undefined ||
    (env.opts.hasHelper !== undefined && !env.opts.hasHelper(id)) ||
    (types !== undefined && !types.includes(env.type))
  ) {
    throw env.fail(idx, `program of this type cannot use helper ${name}#${id}`);
  }
  if (st.activeLocks > 0 && id !== BPF_FUNC_spin_unlock) {
    throw env.fail(idx, 'function calls are not allowed while holding a lock');
  }
  const meta: CallMeta = {};
  for (let a = 1; a <= proto.args.length; a++) checkFuncArg(env, st, idx, proto, a, meta);
  // A helper may write a frame it gets a pointer to (a memory argument).
  for (let a = 1; a <= proto.args.length; a++) {
    const reg = st.frames[st.curframe]?.regs[a];
    if (reg !== undefined && isCoroMem(reg)) forgetFrameSlots(st, reg.frameId);
  }
  if (id === BPF_FUNC_map_lookup_elem && meta.map !== undefined) {
    if (meta.map.type === MAP.arrayOfMaps || meta.map.type === MAP.hashOfMaps) {
      throw env.fail(
        idx,
        `map-in-map lookups (map_type ${meta.map.type}) are not supported by this verifier`,
      );
    }
  }
  // Spin locks.
  if (id === BPF_FUNC_spin_lock) {
    if (st.activeLocks > 0) throw env.fail(idx, 'Locking two bpf_spin_locks are not allowed');
    st.activeLocks = 1;
    st.activeLockPtr = meta.map?.id ?? 0;
  } else if (id === BPF_FUNC_spin_unlock) {
    if (st.activeLocks === 0) throw env.fail(idx, 'bpf_spin_unlock without taking a lock');
    if (st.activeLockPtr !== (meta.map?.id ?? 0))
      throw env.fail(idx, 'bpf_spin_unlock of different lock');
    st.activeLocks = 0;
    st.activeLockPtr = 0;
  }
  // Release before the registers are clobbered.
  if (meta.releaseRefObjId !== undefined) releaseReference(env, st, idx, meta.releaseRefObjId);
  // Callbacks: collect their arguments from the caller's registers.
  let cb: CallbackRequest | undefined;
  const regs = st.frames[st.curframe]?.regs ?? [];
  if (meta.funcSubprog !== undefined) {
    if (id === BPF_FUNC_loop) {
      // The callback's index is bounded by nr_loops; flags 0 decides inlining.
      markChainPrecision(env, st, 1, 4);
      const nr = regs[1] as RegState;
      noteLoopInline(env, idx, meta.funcSubprog, regs[4] as RegState);
      // The index is below nr_loops, which the helper caps at BPF_MAX_LOOPS (1 << 23).
      const lim = nr.scalar.umax < BPF_MAX_LOOPS ? nr.scalar.umax : BPF_MAX_LOOPS;
      const idxReg = regScalar(scalarRange(0n, lim === 0n ? 0n : lim - 1n));
      cb = {
        kind: 'loop',
        subprog: meta.funcSubprog,
        args: [idxReg, regs[3] as RegState],
        retRange: [0n, 1n],
      };
    } else if (id === BPF_FUNC_for_each_map_elem && meta.map !== undefined) {
      const map = meta.map;
      cb = {
        kind: 'for_each',
        subprog: meta.funcSubprog,
        args: [
          regPtr('CONST_PTR_TO_MAP', { map }),
          regPtr('PTR_TO_MAP_KEY', { map }),
          regPtr('PTR_TO_MAP_VALUE', { map }),
          regs[3] as RegState,
        ],
        retRange: [0n, 1n],
      };
    } else if (id === BPF_FUNC_timer_set_callback && meta.timerMap !== undefined) {
      const map = meta.timerMap;
      cb = {
        kind: 'timer',
        subprog: meta.funcSubprog,
        args: [
          regPtr('CONST_PTR_TO_MAP', { map }),
          regPtr('PTR_TO_MAP_KEY', { map }),
          regPtr('PTR_TO_MAP_VALUE', { map }),
        ],
        retRange: [0n, 0n],
      };
    }
  }
  clobberArgs(st);
  if (CHANGES_PKT_DATA.has(id)) {
    // The packet moved or changed size: every packet pointer's proof is void
    // (clear_all_pkt_pointers); the program must reload data/data_end from the ctx.
    mapAllRegs(st, (r) =>
      r.type === 'PTR_TO_PACKET' ||
      r.type === 'PTR_TO_PACKET_META' ||
      r.type === 'PTR_TO_PACKET_END'
        ? regUnknownScalar()
        : r,
    );
  }
  // R0.
  switch (proto.ret) {
    case 'RET_VOID':
      setR0(st, regNotInit());
      break;
    case 'RET_INTEGER':
      setR0(st, regUnknownScalar());
      break;
    case 'RET_PTR_TO_MAP_VALUE':
    case 'RET_PTR_TO_MAP_VALUE_OR_NULL': {
      if (meta.map === undefined) throw env.fail(idx, `kernel subsystem misconfigured verifier`);
      const maybeNull = proto.ret === 'RET_PTR_TO_MAP_VALUE_OR_NULL';
      setR0(
        st,
        regPtr('PTR_TO_MAP_VALUE', { map: meta.map, maybeNull, id: maybeNull ? env.newId() : 0 }),
      );
      break;
    }
    case 'RET_PTR_TO_RINGBUF_MEM_OR_NULL': {
      const size = meta.allocSize ?? 0;
      env.newId(); // the or_null id the kernel allocates first
      const ref = acquireReference(env, st, idx);
      setR0(
        st,
        regPtr('PTR_TO_MEM', {
          memRingbuf: true,
          maybeNull: true,
          memSize: size,
          id: ref,
          refObjId: ref,
        }),
      );
      break;
    }
    case 'RET_PTR_TO_BTF_ID':
      // A trusted pointer the program may pass to kfuncs but not dereference.
      setR0(st, regPtr('PTR_TO_BTF_ID', { btfName: proto.retBtfName ?? '' }));
      break;
    default:
      throw env.fail(idx, `helper ${proto.name}#${id} return type ${proto.ret} is not supported`);
  }
  return cb;
}

/**
 * Checks kfunc call `insn` at `idx` against its signature and applies it to `st`. Returns
 * false when the kfunc never returns (`bpf_throw`): the path ends at the call.
 */
export function checkKfuncCall(
  env: VerifierEnv,
  st: VerifierState,
  idx: number,
  insn: Insn,
  forks: VerifierState[] = [],
): boolean {
  const sig = env.kfuncAt(idx);
  if (sig === undefined || sig.missing === true) {
    const name = sig?.name ?? `kfunc#${insn.imm}`;
    throw env.fail(
      idx,
      `calling kernel function ${name} is not allowed (the Vm has no such kfunc)`,
    );
  }
  const unlocks = sig.args.some((a) => a.kind === 'res_spin_unlock');
  if (sig.noreturn !== true && st.activeLocks > 0 && !unlocks)
    throw env.fail(idx, 'function calls are not allowed while holding a lock');
  let resLock: number | undefined;
  let objSize = 0;
  sig.args.forEach((arg, k) => {
    const argno = k + 1;
    const reg = readReg(env, st, idx, argno);
    switch (arg.kind) {
      case 'scalar':
        if (reg.type !== 'SCALAR_VALUE') {
          throw env.fail(idx, `R${argno} type=${regTypeStr(reg)} expected=scalar`);
        }
        return;
      case 'any':
        return;
      case 'mem':
        checkHelperMemAccess(env, st, idx, argno, arg.size, {
          read: true,
          write: true,
          zeroOk: false,
        });
        return;
      case 'release':
        if (arg.handleOk === true && isCoroHandle(reg)) return;
        if (reg.refObjId === 0 || reg.maybeNull) {
          throw env.fail(idx, `R${argno} must be referenced or trusted`);
        }
        checkReleaseType(env, st, idx, argno, reg, arg);
        releaseReference(env, st, idx, reg.refObjId);
        return;
      case 'res_spin_lock':
      case 'res_spin_unlock': {
        if (reg.type !== 'PTR_TO_MAP_VALUE' || reg.maybeNull) {
          throw env.fail(idx, `R${argno} type=${regTypeStr(reg)} expected=map_value`);
        }
        if (!tnumIsConst(reg.scalar.varOff)) {
          throw env.fail(
            idx,
            `R${argno} doesn't have constant offset. bpf_res_spin_lock has to be at the constant offset`,
          );
        }
        checkHelperMemAccess(env, st, idx, argno, 4, { read: false, write: false, zeroOk: false });
        const mapId = reg.map?.id ?? 0;
        if (arg.kind === 'res_spin_unlock') resUnlockCall(env, st, idx, mapId);
        else resLock = mapId;
        return;
      }
      case 'obj_type':
        checkCoroKfuncArg(env, idx, argno, reg, arg);
        markChainPrecision(env, st, argno);
        objSize = objTypeSize(env, idx, argno, reg.scalar.varOff.value);
        return;
      case 'frame':
        checkCoroKfuncArg(env, idx, argno, reg, arg);
        // a frame pointer (not a handle) is a live frame: alloc'd on this path or checked at
        // the entry, and no frame-freeing call since (those turn frame pointers into handles)
        if (sig.name === 'bpf_coro_frame_free')
          env.frameFreeLive.set(idx, (env.frameFreeLive.get(idx) ?? true) && isCoroMem(reg));
        return;
      case 'frame_size':
      case 'map':
      case 'btf_id':
        checkCoroKfuncArg(env, idx, argno, reg, arg);
        // A constant size, or a handle proven non-NULL: the value matters.
        if (reg.type === 'SCALAR_VALUE') markChainPrecision(env, st, argno);
        return;
    }
  });
  if (sig.noreturn === true) {
    checkThrow(env, st, idx, sig.name);
    env.throwInsns.add(idx);
    return false;
  }
  // r0 != 0 of a kfunc that hands off a frame only on 0: nothing happened to any frame
  const kept =
    sig.mayFreeFrames === true && sig.handsOffOnZero === true ? copyState(st) : undefined;
  if (sig.suspends === true) {
    const k = sig.args.findIndex((a) => a.kind === 'frame');
    const frame = st.frames[st.curframe]?.regs[k + 1];
    if (k >= 0 && frame !== undefined) suspendFrame(env, st, idx, frame);
  }
  if (sig.mayFreeFrames === true) demoteFrames(st);
  else if (sig.keepsFrameData !== true) {
    // It may write any frame (a scalar may be a frame address) and keep the frames it gets.
    const regs = st.frames[st.curframe]?.regs ?? [];
    const passed = sig.args.map((_, k) => regs[k + 1] ?? regNotInit()).filter(isCoroMem);
    forgetAllSlots(st);
    for (const r of passed) escapeFrame(st, r.frameId);
  }
  const frameSize = (st.frames[st.curframe]?.regs[1] ?? regNotInit()).scalar.varOff.value;
  clobberArgs(st);
  const ret = sig.ret;
  if (kept !== undefined && ret.kind === 'scalar') {
    clobberArgs(kept);
    setR0(kept, regScalar(nonZero()));
    forks.push(kept);
    setR0(st, regConst(0));
    return true;
  }
  if (resLock !== undefined) {
    setR0(st, resLockCall(env, st, idx, resLock));
    return true;
  }
  switch (ret.kind) {
    case 'void':
      setR0(st, regNotInit());
      break;
    case 'scalar':
      setR0(st, regUnknownScalar());
      break;
    case 'handle':
      setR0(st, REG_CORO_HANDLE);
      break;
    case 'frame': {
      const size = Number(frameSize);
      const seen = env.frameAllocSizes.get(idx);
      if (env.frameAllocMixed.has(idx) || (seen !== undefined && seen !== size)) {
        env.frameAllocMixed.add(idx);
        env.frameAllocSizes.delete(idx);
      } else env.frameAllocSizes.set(idx, size);
      const frameId = env.newId();
      setR0(
        st,
        regPtr('PTR_TO_MEM', {
          maybeNull: true,
          memCoro: true,
          memSize: Number(frameSize),
          id: frameId,
          frameId,
        }),
      );
      break;
    }
    case 'btf_id': {
      const id = ret.acquire ? acquireReference(env, st, idx) : env.newId();
      setR0(
        st,
        regPtr('PTR_TO_BTF_ID', {
          maybeNull: true,
          btfName: ret.btfName,
          id,
          refObjId: ret.acquire ? id : 0,
        }),
      );
      break;
    }
    case 'obj':
    case 'mem': {
      const acquire = ret.kind === 'obj' || ret.acquire;
      const id = acquire ? acquireReference(env, st, idx) : env.newId();
      if (ret.kind === 'obj') {
        // the backends pass the size in r1 (kernel fixup): one size per call insn
        const seen = env.objNewSizes.get(idx);
        if (seen !== undefined && seen !== objSize)
          throw env.fail(idx, `bpf_obj_new of ${objSize} bytes here, of ${seen} on another path`);
        env.objNewSizes.set(idx, objSize);
      }
      setR0(
        st,
        regPtr('PTR_TO_MEM', {
          maybeNull: true,
          memSize: ret.kind === 'obj' ? objSize : ret.size,
          id,
          refObjId: acquire ? id : 0,
        }),
      );
      break;
    }
  }
  return true;
}

/** The size of the program BTF's type `id` (`bpf_obj_new_impl`), at most 4 KiB as the kernel's. */
function objTypeSize(env: VerifierEnv, idx: number, argno: number, id: bigint): number {
  const size = id <= 0xffffffffn ? env.opts.btfTypeSize?.(Number(id)) : undefined;
  if (size === undefined) {
    throw env.fail(idx, `R${argno} type id ${id} names no sized type of the program's BTF`);
  }
  if (size === 0 || size > BPF_GLOBAL_PERCPU_MA_MAX_SIZE) {
    throw env.fail(
      idx,
      `bpf_obj_new type size ${size} is not in [1, ${BPF_GLOBAL_PERCPU_MA_MAX_SIZE}]`,
    );
  }
  return size;
}

/** `BPF_GLOBAL_PERCPU_MA_MAX_SIZE`-like cap on `bpf_obj_new` objects (KMALLOC_MAX_CACHE_SIZE). */
const BPF_GLOBAL_PERCPU_MA_MAX_SIZE = 4096;
