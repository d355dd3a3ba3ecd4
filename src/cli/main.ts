#!/usr/bin/env node
/**
 * The `bpfwasm` command line: asm, disasm, run, test-run, verify, maps, jit, conformance. Every
 * command has `--help`; bad usage prints a message and exits with status 2; a BpfError exits
 * with status 1 and its message, never a stack trace.
 */

import { realpathSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { disassemble } from '../asm/disassembler.js';
import { encodeInsns } from '../isa/insn.js';
import { isBpfError, isVerifierError, TerminationError, UsageError } from '../errors.js';
import { helperName } from '../helper-protos.js';
import { PROG_TYPES, type ProgType } from '../program.js';
import { BPF_LOG_LEVEL1, BPF_LOG_LEVEL2 } from '../verifier/log.js';
import { Vm } from '../../runtime/vm.js';
import type { Engine, LoadedProgram, RunInput } from '../../runtime/loaded-program.js';
import type { ResourceCounts } from '../../runtime/resources.js';
import { hostRate, workersOf, workersRate, type RepeatRate } from './repeat.js';
import { runConformance } from './conformance.js';
import { formatVerdicts, verifyFile } from './verify.js';
import { parseHex, readInputFile, readInsns, readProgram } from './input.js';
import { wasmToWat } from '../../jit/wat.js';
import { loadObject } from '../loader/object.js';
import {
  bytesArg,
  describeMaps,
  disassembleObject,
  dumpMaps,
  isElf,
  loadForRun,
  objectTestRun,
  settleCoroutines,
  vmFor,
  type CoroutineCounts,
  type ObjectRunOptions,
} from './object.js';

const USAGE = `usage: bpfwasm <command> [options]

commands:
  asm <file.s> -o <out.bin>            assemble to raw little-endian bytecode
  disasm <file> [--syntax asm|llvm|kernel]
                                       disassemble raw bytecode, .s or .data
  run <file> [--mem <hex>|--mem-file <path>] [--engine jit|interp] [--type mem|xdp]
             [--repeat N [--workers W]] [--deadline-ns N] [--json] [--no-verify]
                                       verify and run a program; prints r0 (hex and decimal)
  run <obj.o> --program <name> [--packet <file>] [--repeat N [--workers W]] [--deadline-ns N]
             [--json] [--dump-maps] [--no-verify]
  test-run <obj.o> --program <name> [--data-in <file|hex>] [--ctx-in <file|hex>] [--repeat N]
             [--map-update <map>:<keyhex>:<valuehex|@prog>]... [--global <section>=<hex>]...
             [--no-verify] --json
  verify <file> [--program <name>] [--type <type>] [--map fd=N,type=T,key=K,value=V,max=M]...
             [--log-level 1|2] [--json]
                                       run the verifier; prints the verdict, exit 1 on reject
  maps <obj.o>                         list the maps an object declares
  jit <file> --wat [--type mem|xdp] [--no-verify]
                                       print the generated WebAssembly text
  conformance <dir> [--engine jit|interp]
                                       run a bpf_conformance directory of .data files

Programs are .s/.asm (assembly), .data (conformance format) or raw bytecode (anything else;
*.xdp.bin runs as XDP). Run '<command> --help' for details.`;

const HELP: Record<string, string> = {
  asm: 'usage: bpfwasm asm <file.s> -o <out.bin>\nAssembles conformance-syntax assembly into raw bytecode.',
  disasm:
    'usage: bpfwasm disasm <file> [--syntax asm|llvm|kernel]\nDisassembles raw bytecode (or .s/.data). Default syntax: asm.',
  run: `usage: bpfwasm run <file> [--mem <hex>|--mem-file <path>] [--engine jit|interp] [--type mem|xdp] [--repeat N [--workers W]] [--deadline-ns N] [--json] [--no-verify]
       bpfwasm run <obj.o> --program <name> [--packet <file>|--mem <hex>|--mem-file <path>] [--engine jit|interp] [--repeat N [--workers W]] [--deadline-ns N] [--json] [--dump-maps] [--no-verify]
Verifies the program, as the kernel's bpf() does, then runs it; --no-verify runs it unverified, every
memory access checked at run time. mem programs get r1 = input, r2 = its length;
xdp programs get struct xdp_md over the input as packet. With --repeat N it reports the median ns per
run and the runs per second; with --workers W (mem and xdp programs, jit) the N runs are split into
one batch per worker thread, run in parallel and timed together. With --json it prints
{"r0": "<decimal u64>", "ns_per_run": <number|null>, "runs_per_sec": <number|null>, "engine": "..."}
(and "workers": W with --workers).
Coroutines the run suspended are then driven to completion on the default scheduler (ready
queue, timers), and the JSON gets "coroutines": {"created", "completed", "destroyed", "live"}.
--deadline-ns N terminates the (first) run N ns after it starts (fast-path termination: the program
runs down its own error paths); --json then adds "terminated": true|false (r0 is null when true) and
"resources": {"live_objects", "live_bytes", "reservations", "locks_held"}, counted after the run
(all 0 when nothing leaked).`,
  'test-run': `usage: bpfwasm test-run <obj.o> --program <name> [--data-in <file|hex>] [--ctx-in <file|hex>] [--repeat N]
       [--map-update <map>:<keyhex>:<valuehex> | <map>:<keyhex>:@<program>]... [--global <section>=<hex>]... [--pid-tgid <u64>] [--engine jit|interp] [--no-verify] --json
BPF_PROG_TEST_RUN with the kernel's semantics, on programs the verifier accepted (--no-verify: unverified).
Prints {"retval", "data_out", "data_size_out", "ctx_out", "duration_ns", "maps"}.`,
  verify: `usage: bpfwasm verify <obj.o|file.s|file.bin> [--program <name>] [--type <type>]
       [--map fd=N,type=T,key=K,value=V,max=M[,flags=F][,name=S]]... [--log-level 1|2] [--json]
Runs the verifier without loading the program and prints the verdict:
  verified: accept (N insns processed, T ms)    or    rejected at insn K: <message>
exit 1 when rejected. Objects: every program (or --program's), each against the object's maps,
with its kfuncs and C source lines. Raw bytecode: --map creates the map that lddw with src 1
(BPF_PSEUDO_MAP_FD) names by its imm, as the kernel's bpf() takes map fds; T is a kernel map type
name (hash, array, percpu_array, lru_hash, ringbuf, ...) or its number. --type defaults to the
section's type, or mem (xdp for *.xdp.bin). --log-level 1 prints the trace of the failing path,
2 every insn with its state. --json prints
{"verdict": "accept"|"reject", "insn": <index|null>, "message": "...", "processed_insns": <N|null>}
(plus "log" with --log-level; an array with each "program" for an object's several programs).`,
  maps: 'usage: bpfwasm maps <obj.o>\nLists the maps an ELF object declares, global data sections included.',
  jit: 'usage: bpfwasm jit <file> --wat [--type mem|xdp] [--no-verify]\nPrints the Wasm module the JIT generates, as text (wabt wasm2wat, folded): for a verified program (the\ndefault) with its pointers in i32 locals and no memory guards; --no-verify shows the guarded code.',
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
  workers: { type: 'string' },
  json: { type: 'boolean' },
  wat: { type: 'boolean' },
  program: { type: 'string' },
  packet: { type: 'string' },
  'dump-maps': { type: 'boolean' },
  'data-in': { type: 'string' },
  'ctx-in': { type: 'string' },
  'map-update': { type: 'string', multiple: true },
  global: { type: 'string', multiple: true },
  'pid-tgid': { type: 'string' },
  'no-verify': { type: 'boolean' },
  map: { type: 'string', multiple: true },
  'log-level': { type: 'string' },
  'deadline-ns': { type: 'string' },
};

type Values = Record<string, string | boolean | string[] | undefined>;

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
      if (isVerifierError(e)) {
        if (e.hint !== undefined) console.error(`bpfwasm: hint: ${e.hint}`);
        console.error(
          `bpfwasm: 'bpfwasm verify <file> --log-level 1' prints the verifier log; --no-verify runs unverified`,
        );
      }
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
      const file = one(pos, 'input file');
      const raw = new Uint8Array(readInputFile(file));
      if (isElf(raw)) {
        process.stdout.write(disassembleObject(raw, syntax));
        return 0;
      }
      const { insns } = readInsns(file);
      process.stdout.write(disassemble(insns, { syntax, helperName }));
      return 0;
    }
    case 'run': {
      const file = one(pos, 'program file');
      const raw = new Uint8Array(readInputFile(file));
      return isElf(raw) ? runObjectCommand(raw, v) : runCommand(file, v);
    }
    case 'test-run': {
      const raw = new Uint8Array(readInputFile(one(pos, 'object file')));
      if (!isElf(raw)) throw new UsageError('test-run takes an ELF object');
      const result = await objectTestRun(raw, objectRunOptions(v));
      console.log(JSON.stringify(result));
      return 0;
    }
    case 'verify': {
      const logLevel = logLevelOf(v);
      const type = typeOf(v);
      const verdicts = verifyFile(one(pos, 'program file'), {
        ...(typeof v['program'] === 'string' ? { program: v['program'] } : {}),
        ...(type === undefined ? {} : { type }),
        maps: Array.isArray(v['map']) ? v['map'] : [],
        logLevel,
      });
      process.stdout.write(formatVerdicts(verdicts, { json: v['json'] === true, logLevel }));
      return verdicts.every((d) => d.accepted) ? 0 : 1;
    }
    case 'maps': {
      const raw = new Uint8Array(readInputFile(one(pos, 'object file')));
      if (!isElf(raw)) throw new UsageError('maps takes an ELF object');
      process.stdout.write(describeMaps(loadObject(raw)));
      return 0;
    }
    case 'jit': {
      if (v['wat'] !== true) throw new UsageError('jit needs --wat');
      const { program } = readProgram(one(pos, 'program file'), typeOf(v));
      const vm = Vm.create();
      const loaded = await vm.load(program, {
        engine: 'jit',
        verify: v['no-verify'] !== true,
        annotate: true,
      });
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

function logLevelOf(v: Values): number {
  const l = v['log-level'];
  if (l === undefined) return 0;
  if (l === '1') return BPF_LOG_LEVEL1;
  if (l === '2') return BPF_LOG_LEVEL2;
  throw new UsageError(`--log-level must be 1 or 2, not '${String(l)}'`);
}

function repeatOf(v: Values): number {
  const text = v['repeat'];
  const repeat = text === undefined ? 0 : Number(text);
  if (!Number.isInteger(repeat) || repeat < 0)
    throw new UsageError('--repeat takes a whole number');
  return repeat;
}

function objectRunOptions(v: Values): ObjectRunOptions {
  const program = v['program'];
  if (typeof program !== 'string') throw new UsageError('--program <name> is required for objects');
  const list = (k: string): string[] => {
    const x = v[k];
    return Array.isArray(x) ? x : [];
  };
  const dataIn = v['data-in'];
  const ctxIn = v['ctx-in'];
  const pidTgid = v['pid-tgid'];
  let task: bigint | undefined;
  if (typeof pidTgid === 'string') {
    try {
      task = BigInt.asUintN(64, BigInt(pidTgid));
    } catch {
      throw new UsageError(`--pid-tgid takes a u64, not '${pidTgid}'`);
    }
  }
  return {
    ...(task === undefined ? {} : { pidTgid: task }),
    program,
    engine: engineOf(v),
    verify: v['no-verify'] !== true,
    repeat: repeatOf(v),
    mapUpdates: list('map-update'),
    globals: list('global'),
    ...(typeof dataIn === 'string' ? { dataIn: bytesArg(dataIn) } : {}),
    ...(typeof ctxIn === 'string' ? { ctxIn: bytesArg(ctxIn) } : {}),
  };
}

async function runObjectCommand(bytes: Uint8Array, v: Values): Promise<number> {
  const o = objectRunOptions(v);
  let input: Uint8Array | undefined;
  if (typeof v['packet'] === 'string') input = new Uint8Array(readInputFile(v['packet']));
  if (typeof v['mem'] === 'string') input = parseHex(v['mem']);
  if (typeof v['mem-file'] === 'string') input = new Uint8Array(readInputFile(v['mem-file']));
  const repeat = o.repeat ?? 0;
  const workers = workersOf(v['workers']);
  const vm = vmFor(o, repeat > 0 ? workers : 0);
  try {
    const obj = await loadForRun(vm, bytes, o);
    const prog = obj.program(o.program);
    const first = runFirst(vm, prog, input, v);
    const rate = await measure(prog, input, repeat, workers);
    const extra: Record<string, unknown> = { ...first.extra };
    const coroutines = await settleCoroutines(vm);
    if (coroutines !== undefined) extra['coroutines'] = coroutines;
    if (v['dump-maps'] === true) extra['maps'] = dumpMaps(obj);
    printRun(v, first.r0, rate, o.engine, repeat, workers, extra, first.reason);
    return 0;
  } finally {
    await vm.close();
  }
}

/** `--repeat` on the host thread, or spread over `workers` threads; null without `--repeat`. */
async function measure(
  prog: LoadedProgram,
  input: Uint8Array | undefined,
  repeat: number,
  workers: number,
): Promise<RepeatRate | null> {
  if (repeat === 0) return null;
  if (workers > 0) return workersRate(prog, input ?? new Uint8Array(0), repeat, workers);
  return hostRate(() => prog.runU32(input?.length ?? 0), repeat);
}

/** Prints what `run` found: r0 and the rate, as text or one JSON object. */
function printRun(
  v: Values,
  r0: bigint | null,
  rate: RepeatRate | null,
  engine: Engine,
  repeat: number,
  workers: number,
  extra: Record<string, unknown>,
  reason?: string,
): void {
  if (v['json'] === true) {
    const out: Record<string, unknown> = {
      r0: r0?.toString() ?? null,
      ns_per_run: rate?.nsPerRun ?? null,
      runs_per_sec: rate === null ? null : Math.round(rate.runsPerSec),
      engine,
      ...(workers > 0 ? { workers } : {}),
      ...extra,
    };
    console.log(JSON.stringify(out));
    return;
  }
  if (r0 === null) console.log(`terminated (${reason ?? 'request'})`);
  else console.log(`r0 = 0x${r0.toString(16)} (${r0})`);
  const res = extra['resources'] as ResourceCounts | undefined;
  if (res !== undefined) {
    console.log(
      `resources after the run: ${res.live_objects} objects (${res.live_bytes} bytes), ${res.reservations} ringbuf reservations, ${res.locks_held} locks held`,
    );
  }
  if (rate !== null) {
    const how = workers > 0 ? `${workers} workers` : 'median';
    console.log(
      `${rate.nsPerRun.toFixed(1)} ns/run, ${Math.round(rate.runsPerSec)} runs/s (${how}, ${engine}, ${repeat} runs)`,
    );
  }
  const c = extra['coroutines'] as CoroutineCounts | undefined;
  if (c !== undefined)
    console.log(
      `coroutines: ${c.created} created, ${c.completed} completed, ${c.destroyed} destroyed, ${c.live} live`,
    );
  if (extra['maps'] !== undefined) console.log(JSON.stringify(extra['maps'], null, 2));
}

async function runCommand(path: string, v: Values): Promise<number> {
  const engine = engineOf(v);
  const { program, mem } = readProgram(path, typeOf(v));
  let input = mem;
  if (typeof v['mem'] === 'string') input = parseHex(v['mem']);
  if (typeof v['mem-file'] === 'string') input = new Uint8Array(readInputFile(v['mem-file']));
  const repeat = repeatOf(v);
  const workers = workersOf(v['workers']);
  const vm = Vm.create(repeat > 0 && workers > 0 ? { workers } : {});
  try {
    const prog = await vm.load(program, { engine, verify: v['no-verify'] !== true });
    const first = runFirst(vm, prog, input, v);
    const rate = await measure(prog, input, repeat, workers);
    printRun(v, first.r0, rate, engine, repeat, workers, { ...first.extra }, first.reason);
    return 0;
  } finally {
    await vm.close();
  }
}

/** The outcome of the first run of `run`: r0 (null when terminated) and the --deadline-ns fields. */
interface FirstRun {
  readonly r0: bigint | null;
  readonly reason: string | undefined;
  /** With --deadline-ns: "terminated" and "resources" for --json. */
  readonly extra: { terminated?: boolean; resources?: ResourceCounts };
}

/** Runs once, with the watchdog of --deadline-ns when given. */
function runFirst(vm: Vm, prog: LoadedProgram, input: RunInput, v: Values): FirstRun {
  const text = v['deadline-ns'];
  if (text === undefined) return { r0: prog.run(input), reason: undefined, extra: {} };
  if (typeof text !== 'string' || !/^\d+$/.test(text))
    throw new UsageError(`--deadline-ns takes a whole number of ns, not '${String(text)}'`);
  let r0: bigint | null = null;
  let reason: string | undefined;
  try {
    r0 = prog.run(input, { deadlineNs: BigInt(text) });
  } catch (e) {
    if (!(e instanceof TerminationError)) throw e;
    reason = e.reason;
  }
  return {
    r0,
    reason,
    extra: { terminated: reason !== undefined, resources: vm.resources() },
  };
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
