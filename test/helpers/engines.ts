/**
 * Runs a program on both engines of one Vm (the same linked program, via withEngine) and
 * reports each outcome as a comparable string; every module the JIT emits is read back and
 * validated by wabt, a toolchain independent of binaryen.
 */
import { assembleProgram } from '../../src/asm/assembler.js';
import { isBpfError, isExecError } from '../../src/errors.js';
import type { Program, ProgramOptions } from '../../src/program.js';
import { validateWasm } from '../../jit/wat.js';
import { Vm, type VmOptions } from '../../runtime/vm.js';
import type { LoadedProgram } from '../../runtime/loaded-program.js';

/** r0 as `r0=<hex>`, or the error as `error <kind> at insn <idx>`. */
export function outcome(run: () => bigint): string {
  try {
    return `r0=${run().toString(16)}`;
  } catch (e) {
    if (isExecError(e)) return `error ${e.kind} at insn ${String(e.insnIdx)}`;
    if (isBpfError(e)) return `error ${e.name}: ${e.message}`;
    throw e;
  }
}

/** A Vm whose JIT output is validated by wabt. */
export function makeTestVm(opts: VmOptions = {}): Vm {
  return Vm.create({ ...opts, onCompiled: (wasm) => validateWasm(wasm) });
}

/** Loads `prog` on the JIT and the interpreter of one Vm. */
export async function loadBoth(
  vm: Vm,
  prog: Program,
): Promise<{ jit: LoadedProgram; interp: LoadedProgram }> {
  const jit = await vm.load(prog, { engine: 'jit', verify: false });
  return { jit, interp: await jit.withEngine('interp') };
}

/** Assembles `text`, runs it on both engines with `input` and returns both outcomes. */
export async function runBoth(
  text: string | Program,
  input?: Uint8Array,
  opts: ProgramOptions & { vm?: VmOptions } = {},
): Promise<{ jit: string; interp: string }> {
  const prog = typeof text === 'string' ? assembleProgram(text, opts) : text;
  const vm = makeTestVm(opts.vm);
  try {
    const { jit, interp } = await loadBoth(vm, prog);
    return { interp: outcome(() => interp.run(input)), jit: outcome(() => jit.run(input)) };
  } finally {
    vm.close();
  }
}
