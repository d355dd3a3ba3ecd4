/**
 * Differential testing: runs generated programs on the interpreter and on the JIT, on the same
 * Vm memory reset to the same state before each run, and compares r0 (or the error's kind and
 * insn index), the final input buffer and the final stack. Used by the test suite and by
 * `npm run fuzz:diff -- --seed S --count N`.
 */

import { disassemble } from '../../src/asm/disassembler.js';
import { isBpfError, isExecError } from '../../src/errors.js';
import { createProgram, type Program } from '../../src/program.js';
import { insn, type Insn } from '../../src/isa/insn.js';
import { PROG_STACK_SIZE } from '../../src/abi.js';
import { Vm } from '../../runtime/vm.js';
import { validateWasm } from '../../jit/wat.js';
import type { LoadedProgram } from '../../runtime/loaded-program.js';
import { createPrng } from '../helpers/prng.js';
import { generateProgram, INPUT_SIZE, TEST_HELPER_ID } from './prog-gen.js';

/** What one run left behind. */
interface Outcome {
  readonly result: string;
  readonly input: string;
  readonly stack: string;
}

/** A disagreement between the engines. */
export interface Mismatch {
  readonly seed: number;
  readonly what: string;
  readonly interp: string;
  readonly jit: string;
  readonly disasm: string;
}

/** Totals of a differential run. */
export interface DiffSummary {
  readonly programs: number;
  readonly errors: number;
  readonly mismatches: Mismatch[];
}

const PROGRAMS_PER_VM = 100;

function makeVm(): Vm {
  return Vm.create({
    // wabt, independent of binaryen, reads back and validates every module the JIT emits
    onCompiled: (wasm) => validateWasm(wasm),
    clock: () => 1_000_000n,
    helpers: [
      {
        id: TEST_HELPER_ID,
        name: 'test_mix',
        fn: ([a, b, c, d, e]) =>
          BigInt.asUintN(64, a * 3n + (b ^ (c << 7n)) - d * 0x9e3779b97f4a7c15n + (e >> 3n)),
      },
    ],
  });
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function runOnce(vm: Vm, p: LoadedProgram, input: Uint8Array): Outcome {
  const mem = vm.u8();
  const top = vm.worker.stackTop;
  mem.fill(0, top - PROG_STACK_SIZE, top);
  let result: string;
  try {
    result = `r0=${p.run(input).toString(16)}`;
  } catch (e) {
    if (!isBpfError(e)) throw e;
    result = isExecError(e)
      ? `error ${e.kind} at insn ${String(e.insnIdx)}`
      : `error ${e.name}: ${e.message}`;
  }
  const after = vm.u8();
  return {
    result,
    input: hex(after.slice(vm.worker.packet, vm.worker.packet + INPUT_SIZE)),
    stack: hex(after.slice(top - PROG_STACK_SIZE, top)),
  };
}

/** Runs one program on both engines; returns what differs, or undefined. */
export async function compareOne(
  vm: Vm,
  prog: Program,
  input: Uint8Array,
): Promise<{ what: string; interp: string; jit: string; failed: boolean } | undefined> {
  const interp = await vm.load(prog, { engine: 'interp', verify: false });
  const a = runOnce(vm, interp, input);
  // The JIT has no instruction budget (deadlines come with termination): never run it on a
  // program the interpreter could not finish.
  if (a.result.startsWith('error insn-budget'))
    return { what: '', interp: a.result, jit: '', failed: true };
  const jit = await interp.withEngine('jit');
  const b = runOnce(vm, jit, input);
  for (const what of ['result', 'input', 'stack'] as const) {
    if (a[what] !== b[what])
      return { what, interp: a[what], jit: b[what], failed: a.result.startsWith('error') };
  }
  return a.result.startsWith('error') ? { what: '', interp: '', jit: '', failed: true } : undefined;
}

/**
 * Shrinks a failing program: replaces instructions (exits, jumps and pseudo lddw aside) by
 * `ja +0`, one at a time, keeping each replacement while `stillFails` holds for the result.
 * Shared by the differential and the verifier soundness fuzzers.
 */
export async function shrinkInsns(
  insns: readonly Insn[],
  stillFails: (trial: Insn[]) => Promise<boolean>,
): Promise<Insn[]> {
  let cur = [...insns];
  for (let idx = 0; idx < cur.length; idx++) {
    const i = cur[idx] as Insn;
    if (i.code === 0x95 || i.code === 0x05 || i.code === 0 || (i.code === 0x18 && i.src !== 0))
      continue;
    const trial = [...cur];
    trial[idx] = insn(0x05, 0, 0, 0, 0);
    if (i.code === 0x18) trial[idx + 1] = insn(0x05, 0, 0, 0, 0);
    if (await stillFails(trial)) cur = trial;
  }
  return cur;
}

/**
 * Shrinks a mismatching program: replaces instructions by `ja +0` while the engines still
 * disagree, so that the report shows only what matters.
 */
export async function minimize(insns: readonly Insn[], input: Uint8Array): Promise<Insn[]> {
  let vm = makeVm();
  let loads = 0;
  const cur = await shrinkInsns(insns, async (trial) => {
    let prog: Program;
    try {
      prog = createProgram(trial);
    } catch {
      return false;
    }
    if (++loads > 100) {
      vm.close();
      vm = makeVm();
      loads = 0;
    }
    const d = await compareOne(vm, prog, input);
    return d !== undefined && d.what !== '';
  });
  vm.close();
  return cur;
}

/** Runs `count` programs from seeds `seed`, `seed + 1`, ...; returns the mismatches. */
export async function runDifferential(
  seed: number,
  count: number,
  opts: { minimize?: boolean } = {},
): Promise<DiffSummary> {
  const mismatches: Mismatch[] = [];
  let errors = 0;
  let vm = makeVm();
  for (let k = 0; k < count; k++) {
    if (k > 0 && k % PROGRAMS_PER_VM === 0) {
      vm.close();
      vm = makeVm();
    }
    const s = seed + k;
    const gen = generateProgram(createPrng(s));
    let prog: Program;
    try {
      prog = createProgram(gen.insns, { name: `diff_${s}`, type: 'mem' });
    } catch (e) {
      mismatches.push({
        seed: s,
        what: 'generator made an invalid program',
        interp: String(e),
        jit: '',
        disasm: '',
      });
      continue;
    }
    const d = await compareOne(vm, prog, gen.input);
    if (d?.failed === true) errors++;
    if (d !== undefined && d.what !== '') {
      const shown = opts.minimize === true ? await minimize(prog.insns, gen.input) : prog.insns;
      mismatches.push({
        seed: s,
        what: d.what,
        interp: d.interp,
        jit: d.jit,
        disasm: disassemble(shown, { syntax: 'asm', showIndex: true }),
      });
    }
  }
  vm.close();
  return { programs: count, errors, mismatches };
}

/** A readable report of one mismatch. */
export function formatMismatch(m: Mismatch): string {
  return `seed ${m.seed}: ${m.what} differs\n  interp: ${m.interp.slice(0, 400)}\n  jit:    ${m.jit.slice(0, 400)}\n${m.disasm}`;
}
