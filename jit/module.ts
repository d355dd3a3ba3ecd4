/**
 * The one file that imports binaryen (AssemblyScript's module.ts idea): it loads binaryen.js
 * lazily (the import costs ≈1 s and ≈77 MB, so the interpreter, loader and most tests never
 * pay it), fixes the feature set Node 20 accepts, and owns every Module's lifetime
 * (`withModule` disposes in `finally`). Other jit/ files use the types re-exported here.
 *
 * binaryen 132 pitfalls handled here or by the callers (DESIGN.md §4):
 *  - never `Features.All` (compact imports break V8 11.3): an explicit mask;
 *  - `i64.const` takes one argument (a bigint or a number);
 *  - full-width `i32.load` is marked signed: callers emit `i64.load32_u` for BPF ldxw.
 */

import type Binaryen from 'binaryen';
import { InternalError } from '../src/errors.js';

/** The binaryen.js namespace. */
export type BinaryenApi = typeof Binaryen;
/** A binaryen module under construction. */
export type BinaryenModule = Binaryen.Module;
/** A binaryen expression handle. */
export type ExpressionRef = number;
/** A binaryen type handle. */
export type TypeRef = number;

let loading: Promise<BinaryenApi> | undefined;

/** Loads binaryen.js once per process. */
export function loadBinaryen(): Promise<BinaryenApi> {
  loading ??= import('binaryen').then((m) => m.default);
  return loading;
}

/** The Wasm features Node 20 (V8 11.3) runs unflagged, as measured (notes/wasm-platform.md §1). */
export function node20Features(b: BinaryenApi): number {
  const f = b.Features;
  return (
    f.MutableGlobals |
    f.NontrappingFPToInt |
    f.SIMD128 |
    f.BulkMemory |
    f.BulkMemoryOpt |
    f.SignExt |
    f.ExceptionHandling |
    f.TailCall |
    f.ReferenceTypes |
    f.Multivalue |
    f.Atomics |
    f.CallIndirectOverlong
  );
}

/** Output of `emitModule`. */
export interface EmittedModule {
  readonly wasm: Uint8Array;
  readonly text: string | undefined;
}

/**
 * Creates a module with the Node 20 feature set, lets `build` fill it, validates it and
 * emits the binary. The module is always disposed.
 */
export function withModule<T>(
  b: BinaryenApi,
  build: (m: BinaryenModule) => T,
  finish: (m: BinaryenModule, built: T) => EmittedModule,
): EmittedModule & { built: T } {
  const m = new b.Module();
  try {
    m.setFeatures(node20Features(b));
    const built = build(m);
    return { ...finish(m, built), built };
  } finally {
    m.dispose();
  }
}

/** Validates `m`, capturing binaryen's stderr report into the thrown error. */
export function validateModule(m: BinaryenModule): void {
  const chunks: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
    return true;
  }) as typeof process.stderr.write;
  let ok: number;
  try {
    ok = m.validate();
  } finally {
    process.stderr.write = write;
  }
  if (!ok)
    throw new InternalError(
      `generated module does not validate: ${chunks.join('').slice(0, 2000)}`,
    );
}
