/**
 * Helper adapters: a Wasm module that imports JS helper implementations and re-exports them,
 * which turns each into a Wasm function a `WebAssembly.Table` can hold, so that generated code
 * reaches every helper through `call_indirect` on the call table (the hot-patchable path).
 *
 * Signature of every adapter: `(i64 r1..r5) -> i64`, the BPF calling convention.
 * Called from: runtime/vm.ts when it fills a program's helper slots.
 */

import type { HelperArgs } from '../src/interp/env.js';
import { loadBinaryen, validateModule, withModule } from './module.js';

/** Import module name of the adapter's helper imports. */
export const ADAPTER_IMPORT_MODULE = 'helpers';

/** Builds an adapter module for `count` helpers: imports `helpers.h<k>`, exports `h<k>`. */
export async function compileHelperAdapter(count: number): Promise<Uint8Array> {
  const b = await loadBinaryen();
  const out = withModule(
    b,
    (m) => {
      const i64x5 = b.createType([b.i64, b.i64, b.i64, b.i64, b.i64]);
      for (let k = 0; k < count; k++) {
        m.addFunctionImport(`h${k}`, ADAPTER_IMPORT_MODULE, `h${k}`, i64x5, b.i64);
        m.addFunctionExport(`h${k}`, `h${k}`);
      }
      validateModule(m);
    },
    (m) => ({ wasm: m.emitBinary(), text: undefined }),
  );
  return out.wasm;
}

/**
 * Wraps JS implementations `(r1..r5 as u64) -> r0` as Wasm functions a call table can hold, in
 * order. Values cross as i64 (BigInt): the arguments arrive unsigned, r0 goes back as an i64.
 */
export async function adaptHelpers(
  fns: readonly ((args: HelperArgs) => bigint)[],
): Promise<WebAssembly.ExportValue[]> {
  if (fns.length === 0) return [];
  const wasm = await compileHelperAdapter(fns.length);
  return instantiateHelperAdapter(await WebAssembly.compile(wasm), fns);
}

/**
 * Instantiates an adapter module that `compileHelperAdapter(fns.length)` built (it depends on
 * the count only, so one compiled module serves every worker thread of a Vm) over `fns`.
 */
export function instantiateHelperAdapter(
  mod: WebAssembly.Module,
  fns: readonly ((args: HelperArgs) => bigint)[],
): WebAssembly.ExportValue[] {
  const imports: Record<string, (...a: bigint[]) => bigint> = {};
  fns.forEach((fn, k) => {
    imports[`h${k}`] = (r1 = 0n, r2 = 0n, r3 = 0n, r4 = 0n, r5 = 0n) =>
      BigInt.asIntN(
        64,
        fn([
          BigInt.asUintN(64, r1),
          BigInt.asUintN(64, r2),
          BigInt.asUintN(64, r3),
          BigInt.asUintN(64, r4),
          BigInt.asUintN(64, r5),
        ]),
      );
  });
  const inst = new WebAssembly.Instance(mod, { [ADAPTER_IMPORT_MODULE]: imports });
  return fns.map((_, k) => inst.exports[`h${k}`] as WebAssembly.ExportValue);
}
