/**
 * Function tokens of interpreted programs in the call table. A token is the function's
 * call-table slot (DESIGN.md §3); the JIT fills it with the compiled function. For a program
 * loaded on the interpreter the slot gets a Wasm function `(i64 r1..r5) -> i64` that runs the
 * function on the interpreter (`callBpf` with engine 'interp'), so what calls tokens through
 * the table reaches it too: the runtime module resuming and destroying coroutine frames
 * (vm.coroutines.resume / destroy / drain, the deferred drain), and `callx` from JIT code.
 *
 * Called from host (Vm.prepare, once per function of an interpreted program).
 */

/**
 * A module that imports `e.f: (i64 x5) -> i64` and exports it as `f`: re-exported, a JS
 * function becomes a Wasm function a table can hold (WebAssembly.Function is not in Node 20).
 */
const TRAMPOLINE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // type section: (i64 i64 i64 i64 i64) -> i64
  0x01, 0x0a, 0x01, 0x60, 0x05, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 0x01, 0x7e,
  // import section: e.f, function of type 0
  0x02, 0x07, 0x01, 0x01, 0x65, 0x01, 0x66, 0x00, 0x00,
  // export section: f = function 0
  0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00,
]);

let module: WebAssembly.Module | undefined;

/** The BPF call behind a token: r1..r5 as u64, r0 as u64. */
export type TokenCall = (args: readonly bigint[]) => bigint;

/** A Wasm function for a call-table slot that calls `call` (signed i64 in and out). */
export function interpTokenFunction(call: TokenCall): WebAssembly.ExportValue {
  module ??= new WebAssembly.Module(TRAMPOLINE);
  const f = (...regs: bigint[]): bigint =>
    BigInt.asIntN(64, call(regs.map((r) => BigInt.asUintN(64, r))));
  const inst = new WebAssembly.Instance(module, { e: { f } });
  return inst.exports['f'] as WebAssembly.ExportValue;
}
