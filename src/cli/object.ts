/**
 * Command-line support for ELF objects: `run obj.o --program`, `test-run`, `disasm obj.o`
 * (sections, functions, relocations, source lines) and `maps obj.o`.
 */

import { existsSync, readFileSync } from 'node:fs';
import { disasmInsn } from '../asm/disassembler.js';
import { UsageError } from '../errors.js';
import { helperName } from '../helper-protos.js';
import { loadObject } from '../loader/object.js';
import type { BpfObject, ObjProgram } from '../loader/types.js';
import { Vm } from '../../runtime/vm.js';
import type { Engine } from '../../runtime/loaded-program.js';
import type { LoadedObject } from '../../runtime/object.js';
import { parseHex } from './input.js';

/** True when `bytes` start with the ELF magic. */
export function isElf(bytes: Uint8Array): boolean {
  return (
    bytes.length >= 4 &&
    bytes[0] === 0x7f &&
    bytes[1] === 0x45 &&
    bytes[2] === 0x4c &&
    bytes[3] === 0x46
  );
}

/** Bytes from a file path, or hex text when no such file exists. */
export function bytesArg(arg: string): Uint8Array {
  if (existsSync(arg)) return new Uint8Array(readFileSync(arg));
  return parseHex(arg);
}

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

/** Every map's entries as [keyhex, valuehex], global data maps named by section. */
export function dumpMaps(obj: LoadedObject): Record<string, [string, string][]> {
  const out: Record<string, [string, string][]> = {};
  for (const [name, map] of obj.mapEntries()) {
    // ring buffers, queues, stacks and bloom filters have no keys to iterate: nothing to list
    out[name] = map.hasKeys ? [...map.entries()].map(([k, v]) => [hex(k), hex(v)]) : [];
  }
  return out;
}

/** Options of `objectTestRun`, as the command line gives them. */
export interface ObjectRunOptions {
  readonly program: string;
  readonly engine: Engine;
  /** Verify each program before it runs (true by default; `--no-verify` clears it). */
  readonly verify?: boolean;
  readonly dataIn?: Uint8Array;
  readonly ctxIn?: Uint8Array;
  readonly repeat?: number;
  /** `map:keyhex:valuehex` or `map:keyhex:@program`, applied in order after load. */
  readonly mapUpdates?: readonly string[];
  /** `section=hex`: initial images of global data sections. */
  readonly globals?: readonly string[];
  /** What bpf_get_current_pid_tgid returns (tgid << 32 | pid). */
  readonly pidTgid?: bigint;
}

/** A Vm for a run with `o`'s task identity, and `workers` worker threads (0: none). */
export function vmFor(o: ObjectRunOptions, workers = 0): Vm {
  return Vm.create({
    ...(workers > 0 ? { workers } : {}),
    ...(o.pidTgid === undefined
      ? {}
      : { task: { pid: Number(o.pidTgid & 0xffffffffn), tgid: Number(o.pidTgid >> 32n) } }),
  });
}

/** Loads an object with the given global images and applies map updates. */
export async function loadForRun(
  vm: Vm,
  bytes: Uint8Array,
  o: ObjectRunOptions,
): Promise<LoadedObject> {
  const images: Record<string, Uint8Array> = {};
  for (const g of o.globals ?? []) {
    const eq = g.indexOf('=');
    if (eq <= 0) throw new UsageError(`--global takes <section>=<hex>, not '${g}'`);
    images[g.slice(0, eq)] = parseHex(g.slice(eq + 1));
  }
  const obj = await vm.loadObject(bytes, {
    engine: o.engine,
    verify: o.verify ?? true,
    globals: images,
  });
  for (const u of o.mapUpdates ?? []) applyMapUpdate(obj, u);
  return obj;
}

function applyMapUpdate(obj: LoadedObject, spec: string): void {
  const parts = spec.split(':');
  if (parts.length !== 3)
    throw new UsageError(`--map-update takes <map>:<keyhex>:<valuehex|@program>, not '${spec}'`);
  const [name, keyHex, valueArg] = parts as [string, string, string];
  const map = obj.map(name);
  const key = parseHex(keyHex);
  if (valueArg.startsWith('@')) {
    const target = obj.program(valueArg.slice(1));
    const token = new Uint8Array(map.valueSize);
    new DataView(token.buffer).setUint32(0, target.links.funcTokenBase, true);
    map.update(key, token);
    return;
  }
  map.update(key, parseHex(valueArg));
}

/** `bpfwasm test-run`: one BPF_PROG_TEST_RUN and its JSON result. */
export async function objectTestRun(
  bytes: Uint8Array,
  o: ObjectRunOptions,
): Promise<Record<string, unknown>> {
  const vm = Vm.create();
  try {
    const obj = await loadForRun(vm, bytes, o);
    const prog = obj.program(o.program);
    const r = prog.testRun({
      ...(o.dataIn === undefined ? {} : { dataIn: o.dataIn }),
      ...(o.ctxIn === undefined ? {} : { ctxIn: o.ctxIn }),
      ...(o.repeat === undefined ? {} : { repeat: o.repeat }),
    });
    return {
      retval: r.retval,
      data_out: hex(r.dataOut),
      data_size_out: r.dataOut.length,
      ctx_out: r.ctxOut === null ? null : hex(r.ctxOut),
      duration_ns: r.durationNs,
      maps: dumpMaps(obj),
    };
  } finally {
    vm.close();
  }
}

/** `bpfwasm maps obj.o`: the maps an object declares. */
export function describeMaps(obj: BpfObject): string {
  const rows = obj.maps.map((m) =>
    [
      m.global?.section ?? m.name,
      m.typeName,
      `key ${m.keySize}`,
      `value ${m.valueSize}`,
      `max_entries ${m.maxEntries}`,
      `flags 0x${m.flags.toString(16)}`,
      m.global === undefined
        ? ''
        : `vars ${m.global.vars.map((v) => `${v.name}@${v.offset}:${v.size}`).join(' ')}`,
    ]
      .filter((c) => c !== '')
      .join('  '),
  );
  return rows.join('\n') + (rows.length > 0 ? '\n' : '');
}

/** `bpfwasm disasm obj.o`: every program with its functions, relocations and source lines. */
export function disassembleObject(bytes: Uint8Array, syntax: 'asm' | 'llvm' | 'kernel'): string {
  const obj = loadObject(bytes);
  const out: string[] = [`license: ${obj.license || '(none)'}`, ''];
  for (const p of obj.programs) out.push(...describeProgram(obj, p, syntax), '');
  return out.join('\n');
}

function describeProgram(
  obj: BpfObject,
  p: ObjProgram,
  syntax: 'asm' | 'llvm' | 'kernel',
): string[] {
  const out = [
    `section ${p.section}: program ${p.name} (type ${p.type}${p.custom ? ', custom section' : ''})`,
  ];
  const relocAt = new Map<number, string>();
  for (const r of p.relocs) {
    const what =
      r.kind === 'map'
        ? `map ${obj.maps[r.map]?.name ?? r.map}`
        : r.kind === 'map_value'
          ? `${obj.maps[r.map]?.global?.section ?? obj.maps[r.map]?.name ?? r.map}+${r.offset}`
          : `${r.kind} ${r.name}${r.weak ? ' (weak)' : ''}`;
    relocAt.set(r.insnIdx, what);
  }
  const lineAt = new Map(p.lineInfo.map((l) => [l.insnIdx, l]));
  for (let idx = 0; idx < p.insns.length; idx++) {
    const fn = p.funcNames.get(idx);
    if (fn !== undefined) out.push(`${fn}:`);
    const line = lineAt.get(idx);
    if (line !== undefined && line.source !== '')
      out.push(`; ${line.source.trim()} [${line.file.split('/').pop() ?? ''}:${line.line}]`);
    const i = p.insns[idx];
    if (i === undefined || (idx > 0 && p.insns[idx - 1]?.code === 0x18 && i.code === 0)) continue;
    const rel = relocAt.get(idx);
    out.push(
      `  ${String(idx).padStart(4)}: ${disasmInsn(p.insns, idx, syntax, { helperName })}${rel === undefined ? '' : `    ; ${rel}`}`,
    );
  }
  return out;
}

/** What `run --json` reports of the coroutines a run left behind. */
export interface CoroutineCounts {
  readonly created: number;
  readonly completed: number;
  readonly destroyed: number;
  readonly live: number;
}

/**
 * Drives what the run suspended to completion on the default scheduler (the ready queue, then
 * the sleepers' timers) and counts the frames; undefined when the run made none.
 */
export async function settleCoroutines(vm: Vm): Promise<CoroutineCounts | undefined> {
  if (vm.coroutines.stats().created === 0) return undefined;
  await vm.coroutines.settle();
  const s = vm.coroutines.stats();
  return { created: s.created, completed: s.completed, destroyed: s.destroyed, live: s.live };
}
