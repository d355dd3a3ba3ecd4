/**
 * The fast-path module of termination (notes/fast-path-termination.md §10): Wasm functions with
 * the BPF calling convention `(i64 r1..r5) -> i64` that a termination swaps into a program's
 * helper block. Constant stubs (`c<k>`: return `consts[k]`, e.g. NULL or -EBUSY) are Wasm code,
 * so a stubbed call never leaves Wasm; stubs that must do more (zero an output buffer) and the
 * checkpoint are JS functions the module imports as `fastpath.j<k>` and re-exports as `j<k>`
 * (the same trick as jit/adapter.ts: a table can hold only Wasm functions).
 *
 * The module is a few hundred bytes and is encoded here by hand rather than with binaryen, so
 * that a worker thread can build it synchronously without loading binaryen (≈1 s).
 *
 * Called from: runtime/termination.ts (host) and runtime/termination-worker.ts (workers).
 */

/** Import module name of the JS functions a fast-path module re-exports. */
export const FASTPATH_IMPORT_MODULE = 'fastpath';

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 of a 64-bit value (as `i64.const` takes it). */
function sleb64(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asIntN(64, value);
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

function name(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/**
 * Encodes a module that imports `jsCount` JS functions `fastpath.j<k>` and exports them as
 * `j<k>`, and exports `c<k>` returning `consts[k]` (all `(i64 × 5) -> i64`).
 */
export function fastPathModuleBytes(consts: readonly bigint[], jsCount: number): Uint8Array {
  const sig = [0x60, 5, 0x7e, 0x7e, 0x7e, 0x7e, 0x7e, 1, 0x7e];
  const imports = Array.from({ length: jsCount }, (_, k) => [
    ...name(FASTPATH_IMPORT_MODULE),
    ...name(`j${k}`),
    0x00,
    0x00,
  ]);
  const funcs = consts.map(() => [0x00]);
  const exports = [
    ...Array.from({ length: jsCount }, (_, k) => [...name(`j${k}`), 0x00, ...uleb(k)]),
    ...consts.map((_, k) => [...name(`c${k}`), 0x00, ...uleb(jsCount + k)]),
  ];
  const bodies = consts.map((v) => {
    const body = [0x00, 0x42, ...sleb64(v), 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([sig])),
    ...section(2, vec(imports)),
    ...section(3, vec(funcs)),
    ...section(7, vec(exports)),
    ...section(10, vec(bodies)),
  ]);
}

/** The functions of an instantiated fast-path module. */
export interface FastPathFunctions {
  /** `consts[k]`'s stub. */
  readonly consts: readonly WebAssembly.ExportValue[];
  /** The Wasm function that calls `js[k]`. */
  readonly js: readonly WebAssembly.ExportValue[];
}

/** A JS function as a fast-path module imports it: r1..r5 in (i64 as BigInt), r0 out. */
export type FastPathJs = (r1: bigint, r2: bigint, r3: bigint, r4: bigint, r5: bigint) => bigint;

/** Builds and instantiates (synchronously) the fast-path module of `consts` and `js`. */
export function instantiateFastPath(
  consts: readonly bigint[],
  js: readonly FastPathJs[],
): FastPathFunctions {
  const mod = new WebAssembly.Module(fastPathModuleBytes(consts, js.length));
  const imports: Record<string, FastPathJs> = {};
  js.forEach((f, k) => (imports[`j${k}`] = f));
  const inst = new WebAssembly.Instance(mod, { [FASTPATH_IMPORT_MODULE]: imports });
  return {
    consts: consts.map((_, k) => inst.exports[`c${k}`] as WebAssembly.ExportValue),
    js: js.map((_, k) => inst.exports[`j${k}`] as WebAssembly.ExportValue),
  };
}
