/**
 * Wasm functions around JS functions of i32 arguments and an i32 result, so that a call table
 * (which holds only Wasm functions) can hold them: a module of one import re-exported. Used
 * for the Vm's own table entries that generated code calls with `call_indirect` (e.g.
 * `coro_entry_check`, src/abi.ts CORO_ENTRY_CHECK_SLOT).
 *
 * Called from host: runtime/vm.ts when a Vm is created (one tiny module per arity, cached).
 */

const compiled = new Map<number, WebAssembly.Module>();

/** The module `(import "e" "f" (func (param i32 × params) (result i32))) (export "f" ...)`. */
function shimModule(params: number): WebAssembly.Module {
  let mod = compiled.get(params);
  if (mod === undefined) {
    const type = [0x01, 0x60, params, ...new Array<number>(params).fill(0x7f), 0x01, 0x7f];
    const imports = [0x01, 0x01, 0x65, 0x01, 0x66, 0x00, 0x00];
    const exports = [0x01, 0x01, 0x66, 0x00, 0x00];
    mod = new WebAssembly.Module(
      new Uint8Array([
        ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
        ...[0x01, type.length, ...type],
        ...[0x02, imports.length, ...imports],
        ...[0x07, exports.length, ...exports],
      ]),
    );
    compiled.set(params, mod);
  }
  return mod;
}

/**
 * `fn` as a Wasm function of type `(i32 × params) -> i32`.
 *
 * @example
 * table.set(slot, wasmI32Function((token) => (isEntry(token) ? 1 : 0), 1));
 */
export function wasmI32Function(
  fn: (...args: number[]) => number,
  params: number,
): WebAssembly.ExportValue {
  const inst = new WebAssembly.Instance(shimModule(params), { e: { f: fn } });
  return inst.exports['f'] as WebAssembly.ExportValue;
}
