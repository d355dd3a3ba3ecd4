/**
 * wabt (a second, independent Wasm toolchain) for reading back what the JIT emits: the text
 * printer behind `bpfwasm jit --wat`, and a validator the tests run on every module, so that
 * binaryen's output is checked by something other than binaryen.
 *
 * With annotation markers (CompileOptions.annotate), each marker `nop` is replaced by a
 * comment naming the BPF instruction whose code follows.
 */

import { createRequire } from 'node:module';
import type wabtFactory from 'wabt';
import { disasmInsn } from '../src/asm/disassembler.js';
import { InternalError } from '../src/errors.js';
import type { Program } from '../src/program.js';

type Wabt = Awaited<ReturnType<typeof wabtFactory>>;

const FEATURES = {
  exceptions: true,
  mutable_globals: true,
  sat_float_to_int: true,
  sign_extension: true,
  simd: true,
  threads: true,
  multi_value: true,
  tail_call: true,
  bulk_memory: true,
  reference_types: true,
} as const;

let loading: Promise<Wabt> | undefined;

/** Loads wabt once per process (≈25–100 ms). */
export function loadWabt(): Promise<Wabt> {
  const require = createRequire(import.meta.url);
  loading ??= (require('wabt') as () => Promise<Wabt>)();
  return loading;
}

/** Reads and validates a module with wabt; throws with wabt's message when it is invalid. */
export async function validateWasm(wasm: Uint8Array): Promise<void> {
  const wabt = await loadWabt();
  let mod: ReturnType<Wabt['readWasm']> | undefined;
  try {
    mod = wabt.readWasm(wasm, { readDebugNames: true, ...FEATURES });
    mod.validate();
  } catch (e) {
    throw new InternalError(
      `wabt rejects the module: ${e instanceof Error ? e.message : String(e)}`,
      { cause: e },
    );
  } finally {
    mod?.destroy();
  }
}

/**
 * The module as folded WebAssembly text. `markers[k]` lists, for BPF function k, the insn
 * index of each marker nop in code order; those nops become `;; insn N: <disassembly>`.
 */
export async function wasmToWat(
  wasm: Uint8Array,
  prog?: Program,
  markers: readonly (readonly number[])[] = [],
): Promise<string> {
  const wabt = await loadWabt();
  const mod = wabt.readWasm(wasm, { readDebugNames: true, ...FEATURES });
  let text: string;
  try {
    mod.generateNames();
    mod.applyNames();
    text = mod.toText({ foldExprs: true, inlineExport: false });
  } finally {
    mod.destroy();
  }
  if (prog === undefined || markers.length === 0) return text;
  const out: string[] = [];
  let func: readonly number[] | undefined;
  let next = 0;
  for (const line of text.split('\n')) {
    const f = /^\s*\(func \$bpf_func_(\d+)\b/.exec(line);
    if (f !== null) {
      func = markers[Number(f[1])];
      next = 0;
    } else if (/^\s*\(func /.test(line)) func = undefined;
    const nop = /^(\s*)\(?nop\)?$/.exec(line);
    if (nop !== null && func !== undefined && next < func.length) {
      const idx = func[next++] as number;
      out.push(
        `${nop[1] ?? ''};; insn ${idx}: ${disasmInsn(prog.insns, idx, 'kernel').replace(/^\d+: /, '')}`,
      );
      continue;
    }
    out.push(line);
  }
  return out.join('\n');
}
