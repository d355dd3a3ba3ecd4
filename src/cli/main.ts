#!/usr/bin/env node
/**
 * The `bpfwasm` command line: asm, disasm, run, jit, conformance. Every command has `--help`;
 * bad usage prints a message and exits with status 2; a BpfError exits with status 1 and its
 * message, never a stack trace.
 */

import { realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { disassemble } from '../asm/disassembler.js';
import { encodeInsns } from '../isa/insn.js';
import { isBpfError, UsageError } from '../errors.js';
import { PROG_TYPES, type ProgType } from '../program.js';
import { Vm } from '../../runtime/vm.js';
import type { Engine } from '../../runtime/loaded-program.js';
import { runConformance } from './conformance.js';
import { parseHex, readInputFile, readInsns, readProgram } from './input.js';
import { wasmToWat } from '../../jit/wat.js';

const USAGE = `usage: bpfwasm <command> [options]

commands:
  asm <file.s> -o <out.bin>            assemble to raw little-endian bytecode
  disasm <file> [--syntax asm|llvm|kernel]
                                       disassemble raw bytecode, .s or .data
  run <file> [--mem <hex>|--mem-file <path>] [--engine jit|interp] [--type mem|xdp]
             [--repeat N] [--json]     run a program; prints r0 (hex and decimal)
  jit <file> --wat [--type mem|xdp]    print the generated WebAssembly text
  conformance <dir> [--engine jit|interp]
                                       run a bpf_conformance directory of .data files

Programs are .s/.asm (assembly), .data (conformance format) or raw bytecode (anything else;
*.xdp.bin runs as XDP). Run '<command> --help' for details.`;

const HELP: Record<string, string> = {
  asm: 'usage: bpfwasm asm <file.s> -o <out.bin>\nAssembles conformance-syntax assembly into raw bytecode.',
  disasm:
    'usage: bpfwasm disasm <file> [--syntax asm|llvm|kernel]\nDisassembles raw bytecode (or .s/.data). Default syntax: asm.',
  run: `usage: bpfwasm run <file> [--mem <hex>|--mem-file <path>] [--engine jit|interp] [--type mem|xdp] [--repeat N] [--json]
Runs a program unverified (the verifier is not built yet). mem programs get r1 = input, r2 = its length;
xdp programs get struct xdp_md over the input as packet. With --repeat N it reports the median ns per
run; with --json it prints {"r0": "<decimal u64>", "ns_per_run": <number|null>, "engine": "..."}.`,
  jit: 'usage: bpfwasm jit <file> --wat [--type mem|xdp]\nPrints the Wasm module the JIT generates, as text (wabt wasm2wat, folded).',
  conformance:
    'usage: bpfwasm conformance <dir> [--engine jit|interp]\nRuns every .data file; prints failures and "N passed, M failed"; exit 1 on failures.',
};

const OPTIONS: ParseArgsConfig['options'] = {
  help: { type: 'boolean', short: 'h' },
  output: { type: 'string', short: 'o' },
  syntax: { type: 'string' },
  mem: { type: 'string' },
  'mem-file': { type: 'string' },
  engine: { type: 'string' },
  type: { type: 'string' },
  repeat: { type: 'string' },
  json: { type: 'boolean' },
  wat: { type: 'boolean' },
};

type Values = Record<string, string | boolean | undefined>;

/** Runs the command line; returns the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  const help = HELP[cmd];
  if (help === undefined) return usage(`unknown command '${cmd}'`);
  let values: Values;
  let positionals: string[];
  try {
    const parsed = parseArgs({
      args: [...rest],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    return usage(e instanceof Error ? e.message : String(e), help);
  }
  if (values['help'] === true) {
    console.log(help);
    return 0;
  }
  try {
    return await dispatch(cmd, positionals, values);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message, help);
    if (isBpfError(e)) {
      console.error(`bpfwasm: ${e.name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

function usage(message: string, help = USAGE): number {
  console.error(`bpfwasm: ${message}\n${help}`);
  return 2;
}

function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(`expected exactly one ${what}`);
  return positionals[0] as string;
}

function engineOf(v: Values): Engine {
  const e = v['engine'] ?? 'jit';
  if (e !== 'jit' && e !== 'interp')
    throw new UsageError(`--engine must be jit or interp, not '${String(e)}'`);
  return e;
}

function typeOf(v: Values): ProgType | undefined {
  const t = v['type'];
  if (t === undefined) return undefined;
  if (typeof t !== 'string' || !(PROG_TYPES as readonly string[]).includes(t)) {
    throw new UsageError(`--type must be one of ${PROG_TYPES.join(', ')}`);
  }
  return t as ProgType;
}

async function dispatch(cmd: string, pos: string[], v: Values): Promise<number> {
  switch (cmd) {
    case 'asm': {
      const out = v['output'];
      if (typeof out !== 'string') throw new UsageError('asm needs -o <out.bin>');
      const { insns } = readInsns(one(pos, 'input file'));
      writeFileSync(out, encodeInsns(insns));
      return 0;
    }
    case 'disasm': {
      const syntax = v['syntax'] ?? 'asm';
      if (syntax !== 'asm' && syntax !== 'llvm' && syntax !== 'kernel') {
        throw new UsageError(`--syntax must be asm, llvm or kernel`);
      }
      const { insns } = readInsns(one(pos, 'input file'));
      process.stdout.write(disassemble(insns, { syntax }));
      return 0;
    }
    case 'run':
      return runCommand(one(pos, 'program file'), v);
    case 'jit': {
      if (v['wat'] !== true) throw new UsageError('jit needs --wat');
      const { program } = readProgram(one(pos, 'program file'), typeOf(v));
      const vm = Vm.create();
      const loaded = await vm.load(program, { engine: 'jit', verify: false, annotate: true });
      process.stdout.write(
        await wasmToWat(
          loaded.compiled?.wasm ?? new Uint8Array(),
          program,
          loaded.compiled?.markers ?? [],
        ),
      );
      return 0;
    }
    case 'conformance': {
      const s = await runConformance(one(pos, 'directory'), engineOf(v));
      for (const r of s.results)
        if (r.status === 'fail') console.log(`FAIL ${r.name}: ${r.detail ?? ''}`);
      for (const r of s.results)
        if (r.status === 'skip') console.log(`SKIP ${r.name}: ${r.detail ?? ''}`);
      console.log(
        `${s.passed} passed, ${s.failed} failed${s.skipped > 0 ? `, ${s.skipped} skipped` : ''}`,
      );
      return s.failed > 0 ? 1 : 0;
    }
    default:
      throw new UsageError(`unknown command '${cmd}'`);
  }
}

async function runCommand(path: string, v: Values): Promise<number> {
  const engine = engineOf(v);
  const { program, mem } = readProgram(path, typeOf(v));
  let input = mem;
  if (typeof v['mem'] === 'string') input = parseHex(v['mem']);
  if (typeof v['mem-file'] === 'string') input = new Uint8Array(readInputFile(v['mem-file']));
  const repeatText = v['repeat'];
  const repeat = repeatText === undefined ? 0 : Number(repeatText);
  if (!Number.isInteger(repeat) || repeat < 0)
    throw new UsageError('--repeat takes a whole number');
  const vm = Vm.create();
  const prog = await vm.load(program, { engine, verify: false });
  const r0 = prog.run(input);
  let ns: number | null = null;
  if (repeat > 0) ns = medianNsPerRun(() => prog.runU32(input?.length ?? 0), repeat);
  if (v['json'] === true) {
    console.log(JSON.stringify({ r0: r0.toString(), ns_per_run: ns, engine }));
  } else {
    console.log(`r0 = 0x${r0.toString(16)} (${r0})`);
    if (ns !== null) console.log(`${ns.toFixed(1)} ns/run (median, ${engine}, ${repeat} runs)`);
  }
  return 0;
}

/** Median ns per run over up to 15 rounds of `repeat` runs each, after a warm-up. */
function medianNsPerRun(run: () => number, repeat: number): number {
  const rounds = Math.min(15, Math.max(3, Math.ceil(repeat / 1000)));
  const per = Math.max(1, Math.floor(repeat / rounds));
  const warmEnd = performance.now() + 100;
  while (performance.now() < warmEnd) run();
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < per; k++) run();
    samples.push(Number(process.hrtime.bigint() - t0) / per);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1] as number;
}

function isMainModule(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMainModule()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error('bpfwasm: internal error:', e);
      process.exit(70);
    },
  );
}
