/**
 * The fast-path versions of helpers and kfuncs (notes/fast-path-termination.md §10.2), as Wasm
 * functions a call table can hold, for one thread (the host or a worker: a function made on one
 * thread cannot be put in another thread's table). Built from the classes in
 * src/helper-protos.ts:
 *
 * - release, lock, and `other` without a `fastPathRet` (pure helpers): no fast path, the
 *   original stays in the slot;
 * - acquire and `other` with a `fastPathRet`: a Wasm stub that returns it (NULL = 0, -EBUSY...);
 * - iterators (bpf_loop, for_each_map_elem): a stub that calls no callback and returns 0, the
 *   number of iterations it made; a loop already running stops on its own (it polls the
 *   termination flag before each callback, runtime/helpers/loop.ts);
 * - a stub whose helper has an uninitialised output argument (probe_read*, map_pop/peek) also
 *   zeroes that buffer (§10.3 rule 6): those are JS functions behind the module's adapters.
 *
 * Kfuncs: the class by name (KFUNC_TERM_CLASSES), otherwise §10.3 on the kfunc's signature (a
 * nullable memory return → NULL; anything else kept).
 *
 * Called from host (runtime/termination.ts) and worker threads (runtime/termination-worker.ts).
 */

import { MAP_DESC, MAP_MAGIC } from '../src/abi.js';
import {
  FUNC_PROTO_LIST,
  KFUNC_TERM_CLASSES,
  helperFastPath,
  parseArgType,
  termRetValue,
  uninitArgs,
  type FastPath,
  type FuncProto,
  type KfuncTermClass,
} from '../src/helper-protos.js';

export { helperFastPath, type FastPath } from '../src/helper-protos.js';
import type { HelperArgs } from '../src/interp/env.js';
import type { KfuncSig } from '../src/verifier/verifier.js';
import { instantiateFastPath, type FastPathJs } from '../jit/stubs.js';
import { memAddr, type MemHost } from './helpers/mem.js';

/** The class of kfunc `name`: KFUNC_TERM_CLASSES, else derived from its signature. */
export function kfuncTermClass(name: string, sig: KfuncSig | undefined): KfuncTermClass {
  const known = KFUNC_TERM_CLASSES.get(name);
  if (known !== undefined) return known;
  if (sig?.args.some((a) => a.kind === 'release') === true) return { helperClass: 'release' };
  // a nullable pointer return (memory, an object, a frame, a BTF pointer) → acquire, NULL
  const ret = sig?.ret.kind;
  if (ret === 'mem' || ret === 'obj' || ret === 'frame' || ret === 'btf_id')
    return { helperClass: 'acquire', fastPathRet: 'null' };
  return { helperClass: 'other' };
}

/** The fast path of a kfunc (kept unless its class gives a return value). */
export function kfuncFastPath(name: string, sig: KfuncSig | undefined): FastPath {
  const c = kfuncTermClass(name, sig);
  if (c.helperClass === 'release' || c.fastPathRet === undefined) return { kind: 'keep' };
  return { kind: 'const', ret: termRetValue(c.fastPathRet) };
}

/**
 * Zeroes the uninitialised output buffers of `p`'s call with `args` (sizes from the size
 * argument that follows, or the map's value size for map_pop/peek); pointers that are not Vm
 * memory are left alone, as the helper itself would refuse them.
 */
export function zeroOutputs(vm: MemHost, p: FuncProto, args: HelperArgs): void {
  for (const k of uninitArgs(p)) {
    const { base } = parseArgType(p.args[k] as FuncProto['args'][number]);
    let size: number;
    if (base === 'ARG_PTR_TO_UNINIT_MEM') size = Number((args[k + 1] ?? 0n) & 0xffffffffn);
    else {
      const desc = memAddr(vm, args[0], MAP_DESC.aux);
      if (desc < 0 || vm.dataView().getUint32(desc + MAP_DESC.magic, true) !== MAP_MAGIC) continue;
      size = vm.dataView().getUint32(desc + MAP_DESC.valueSize, true);
    }
    const a = memAddr(vm, args[k] ?? 0n, size);
    if (a >= 0) vm.u8().fill(0, a, a + size);
  }
}

/** The JS implementation of a fast path (what the interpreter calls); undefined for keep. */
export function fastPathFn(vm: MemHost, f: FastPath): ((args: HelperArgs) => bigint) | undefined {
  if (f.kind === 'keep') return undefined;
  if (f.kind === 'const') return () => f.ret;
  return (args) => {
    zeroOutputs(vm, f.proto, args);
    return f.ret;
  };
}

/**
 * One thread's fast-path functions: a Wasm stub per helper id and kfunc that has a fast path,
 * and extra JS functions (the termination checkpoint) made Wasm-callable by the same module.
 */
export class FastPathSet {
  private readonly byId = new Map<number, WebAssembly.ExportValue>();
  private readonly byConst = new Map<bigint, WebAssembly.ExportValue>();
  /** The Wasm functions of `extra`, in order. */
  readonly extra: readonly WebAssembly.ExportValue[];

  constructor(vm: MemHost, extra: readonly FastPathJs[]) {
    const consts = new Set<bigint>([0n]);
    const zero: { id: number; f: FastPath & { kind: 'zero' } }[] = [];
    for (const p of FUNC_PROTO_LIST) {
      const f = helperFastPath(p.id);
      if (f.kind === 'const') consts.add(f.ret);
      else if (f.kind === 'zero') zero.push({ id: p.id, f });
    }
    for (const c of KFUNC_TERM_CLASSES.values())
      if (c.fastPathRet !== undefined) consts.add(termRetValue(c.fastPathRet));
    const constList = [...consts];
    const zeroJs: FastPathJs[] = zero.map(({ f }) => (r1, r2, r3, r4, r5) => {
      const u = (v: bigint): bigint => BigInt.asUintN(64, v);
      zeroOutputs(vm, f.proto, [u(r1), u(r2), u(r3), u(r4), u(r5)]);
      return BigInt.asIntN(64, f.ret);
    });
    const fns = instantiateFastPath(constList, [...extra, ...zeroJs]);
    constList.forEach((c, k) => this.byConst.set(c, fns.consts[k] as WebAssembly.ExportValue));
    // compiled now (V8 compiles a Wasm function lazily, at its first call), not inside the
    // first terminated run
    for (const f of fns.consts) (f as (...r: bigint[]) => bigint)(0n, 0n, 0n, 0n, 0n);
    zero.forEach(({ id }, k) =>
      this.byId.set(id, fns.js[extra.length + k] as WebAssembly.ExportValue),
    );
    this.extra = fns.js.slice(0, extra.length);
  }

  /** The Wasm fast path of helper `id`, or undefined when the original is kept. */
  helper(id: number): WebAssembly.ExportValue | undefined {
    const f = helperFastPath(id);
    if (f.kind === 'keep') return undefined;
    return f.kind === 'const' ? this.byConst.get(f.ret) : this.byId.get(id);
  }

  /** The Wasm fast path of a kfunc, or undefined when the original is kept. */
  kfunc(name: string, sig: KfuncSig | undefined): WebAssembly.ExportValue | undefined {
    const f = kfuncFastPath(name, sig);
    return f.kind === 'const' ? this.byConst.get(f.ret) : undefined;
  }
}
