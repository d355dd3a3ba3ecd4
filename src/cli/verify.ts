/**
 * `bpfwasm verify`: runs the verifier on a program without loading it and reports the verdict
 * (issue #5 §8). ELF objects are read by the loader (src/loader), their maps created in a
 * fresh Vm as libbpf creates them, and every program (or the one `--program` names) verified
 * against those maps with the kfuncs its relocations name and the C source lines of BTF.ext.
 * Raw bytecode (`.s`, `.bin`, ...) gets the maps `--map fd=N,...` describes, as the kernel's
 * bpf() interface takes map fds in the `imm` of `lddw` with src BPF_PSEUDO_MAP_FD.
 *
 * Called from: src/cli/main.ts, which prints `formatVerdicts` and exits 1 on any reject.
 *
 * Invariants: a rejection is a value here (`Verdict`), not an exception; any other error
 * (unreadable ELF, bad assembly, a bug) propagates to main's error handling.
 */

import { MapError, UsageError, VerifierError, isVerifierError } from '../errors.js';
import { isLdImm64, type Insn } from '../isa/insn.js';
import { BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_VALUE } from '../isa/opcodes.js';
import { loadObject } from '../loader/object.js';
import {
  btfTypeSizes,
  dataFuncStarts,
  sourceLines,
  type BpfObject,
  type ObjProgram,
} from '../loader/types.js';
import { createProgram, type Program, type ProgType } from '../program.js';
import { BPF_LOG_STATS } from '../verifier/log.js';
import { MAP_TYPE_NAMES } from '../../runtime/maps/map-type.js';
import type { BpfMap, MapSpec } from '../../runtime/maps/map.js';
import { createObjectMap } from '../../runtime/object.js';
import { Vm, type LoadOptions } from '../../runtime/vm.js';
import { readInputFile, readProgram } from './input.js';
import { isElf } from './object.js';

/** Options of `verifyFile`, as the command line gives them. */
export interface VerifyCliOptions {
  /** ELF objects: verify only this program (entry or section name). */
  readonly program?: string;
  /** Program type; the section's (objects) or `mem` / `xdp` for `*.xdp.bin` by default. */
  readonly type?: ProgType;
  /** Raw bytecode: `--map fd=N,type=T,key=K,value=V,max=M[,flags=F][,name=S]` specs. */
  readonly maps?: readonly string[];
  /** `--log-level`: 0 (no log), `BPF_LOG_LEVEL1` or `BPF_LOG_LEVEL2`. */
  readonly logLevel?: number;
}

/** The verifier's verdict on one program. */
export interface Verdict {
  /** The program's name for ELF objects; undefined for raw bytecode. */
  readonly program: string | undefined;
  readonly accepted: boolean;
  /** The rejected insn (null when the rejection names none, and on accept). */
  readonly insnIdx: number | null;
  /** The verifier's reason for a rejection; empty on accept. */
  readonly message: string;
  /** How to fix or investigate a rejection, one sentence each. */
  readonly hints: readonly string[];
  /** `insn_processed`; null when a rejection's log does not give it. */
  readonly processedInsns: number | null;
  /** Wall time of an accepted verification, in ms. */
  readonly verifyMs: number | null;
  /** The verifier log at the level asked for (empty at level 0). */
  readonly log: string;
}

/** A `--map` spec: the fd the program uses and the map to create for it. */
export interface CliMapSpec {
  readonly fd: number;
  readonly spec: MapSpec;
}

const MAP_SPEC_USAGE = '--map takes fd=N,type=T,key=K,value=V,max=M[,flags=F][,name=S]';

/** Map type id from a kernel name (`hash`, `BPF_MAP_TYPE_HASH`) or a number. */
function mapTypeOf(text: string): number | undefined {
  const name = text.toLowerCase().replace(/^bpf_map_type_/, '');
  for (const [id, n] of MAP_TYPE_NAMES) if (n === name || String(id) === name) return id;
  return undefined;
}

function uintField(key: string, text: string, spec: string): number {
  const n = /^(0x[0-9a-f]+|\d+)$/i.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > 0xffffffff)
    throw new UsageError(`--map '${spec}': ${key} takes a whole number, not '${text}'`);
  return n;
}

/**
 * Parses one `--map` spec; throws a UsageError naming what is wrong.
 *
 * @example
 * parseMapSpec('fd=5,type=array,key=4,value=8,max=4').fd // 5
 */
export function parseMapSpec(text: string): CliMapSpec {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim();
    if (eq <= 0 || fields.has(key)) throw new UsageError(`${MAP_SPEC_USAGE}, not '${text}'`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  for (const key of fields.keys()) {
    if (!['fd', 'type', 'key', 'value', 'max', 'flags', 'name'].includes(key))
      throw new UsageError(`--map '${text}': unknown field '${key}' (${MAP_SPEC_USAGE})`);
  }
  const need = (key: string): string => {
    const v = fields.get(key);
    if (v === undefined) throw new UsageError(`--map '${text}' has no ${key}= (${MAP_SPEC_USAGE})`);
    return v;
  };
  const typeText = need('type');
  const type = mapTypeOf(typeText);
  if (type === undefined) {
    throw new UsageError(
      `--map '${text}': unknown map type '${typeText}' (supported: ${[...MAP_TYPE_NAMES.values()].join(', ')}, or their ids)`,
    );
  }
  const fd = uintField('fd', need('fd'), text);
  if (fd > 0x7fffffff) throw new UsageError(`--map '${text}': fd ${fd} is not an s32`);
  const opt = (key: string): number => {
    const v = fields.get(key);
    return v === undefined ? 0 : uintField(key, v, text);
  };
  return {
    fd,
    spec: {
      name: fields.get('name') ?? `map_fd_${fd}`,
      type,
      keySize: opt('key'),
      valueSize: opt('value'),
      maxEntries: uintField('max', need('max'), text),
      flags: opt('flags'),
    },
  };
}

/**
 * Verifies the program(s) of `path`: every program of an ELF object (or `o.program`), or one
 * raw / assembled program. Usage errors (bad `--map`, unknown `--program`) throw UsageError.
 *
 * @example
 * const [v] = verifyFile('prog.s', { type: 'xdp' });
 * v.accepted
 */
export function verifyFile(path: string, o: VerifyCliOptions = {}): Verdict[] {
  const bytes = new Uint8Array(readInputFile(path));
  const maps = (o.maps ?? []).map(parseMapSpec);
  if (isElf(bytes)) {
    if (maps.length > 0) throw new UsageError('--map is for raw bytecode: objects declare maps');
    return verifyObject(loadObject(bytes), o);
  }
  if (o.program !== undefined) throw new UsageError('--program is for ELF objects');
  const { program } = readProgram(path, o.type);
  return [verifyRaw(program, maps, o.logLevel ?? 0)];
}

/**
 * Raw bytecode: creates the `--map` maps in a fresh Vm and verifies `program` against them.
 * A Vm numbers its maps 1, 2, 3, ... in creation order while the user picks the fds, so
 * each map lddw's imm is rewritten from the user's fd to the created map's id first (the
 * kernel's `resolve_pseudo_ldimm64` likewise replaces the fd with the map it names).
 */
function verifyRaw(program: Program, maps: readonly CliMapSpec[], logLevel: number): Verdict {
  const vm = Vm.create();
  try {
    const byFd = new Map<number, BpfMap>();
    for (const m of maps) {
      if (byFd.has(m.fd)) throw new UsageError(`--map fd=${m.fd} is given twice`);
      byFd.set(m.fd, createCliMap(vm, m));
    }
    let prog: Program;
    try {
      prog = withMapIds(program, byFd);
    } catch (e) {
      // refused before the verifier ran: there is no log to point to
      if (isVerifierError(e)) return rejected(undefined, e, logLevel, false);
      throw e;
    }
    return verifyOne(vm, prog, {}, logLevel);
  } finally {
    vm.close();
  }
}

function createCliMap(vm: Vm, m: CliMapSpec): BpfMap {
  try {
    return vm.createMap(m.spec);
  } catch (e) {
    // BPF_MAP_CREATE refusing the attributes: the spec on the command line is wrong
    if (e instanceof MapError) throw new UsageError(`--map fd=${m.fd}: ${e.message}`);
    throw e;
  }
}

/** `program` with the fd of every map lddw replaced by the id of the map `byFd` gives it. */
function withMapIds(program: Program, byFd: ReadonlyMap<number, BpfMap>): Program {
  let changed = false;
  const insns = program.insns.map((i: Insn, idx): Insn => {
    if (!isLdImm64(i) || program.ops[idx] === undefined) return i;
    if (i.src !== BPF_PSEUDO_MAP_FD && i.src !== BPF_PSEUDO_MAP_VALUE) return i;
    const map = byFd.get(i.imm);
    if (map === undefined) {
      const reason = `fd ${i.imm} is not pointing to valid bpf_map`;
      throw new VerifierError(
        idx,
        reason,
        `${reason}\n`,
        'EINVAL',
        `create it with --map fd=${i.imm},type=<type>,key=<size>,value=<size>,max=<entries>`,
      );
    }
    changed = true;
    return { ...i, imm: map.id };
  });
  if (!changed) return program;
  return createProgram(insns, {
    name: program.name,
    type: program.type,
    gotoxTargets: program.gotoxTargets,
  });
}

/** ELF objects: creates the object's maps, then verifies each program against them. */
function verifyObject(object: BpfObject, o: VerifyCliOptions): Verdict[] {
  let programs = object.programs;
  if (o.program !== undefined) {
    programs = programs.filter((p) => p.name === o.program || p.section === o.program);
    if (programs.length === 0) {
      throw new UsageError(
        `no program '${o.program}' in the object (have: ${object.programs.map((p) => p.name).join(', ')})`,
      );
    }
  }
  const vm = Vm.create();
  try {
    // As libbpf: the maps first, read-only sections frozen before any program loads.
    const maps = object.maps.map((def) => {
      const map = createObjectMap(vm, def);
      if (def.global?.readonly === true) map.freeze();
      return map;
    });
    return programs.map((p) => verifyObjectProgram(vm, object, p, maps, o));
  } finally {
    vm.close();
  }
}

function verifyObjectProgram(
  vm: Vm,
  object: BpfObject,
  p: ObjProgram,
  maps: readonly BpfMap[],
  o: VerifyCliOptions,
): Verdict {
  const prog = createProgram(p.insns, {
    name: p.name,
    type: o.type ?? p.type,
    funcNames: p.funcNames,
    gotoxTargets: p.gotoxTargets,
    dataFuncs: dataFuncStarts(object, object.programs.indexOf(p)),
  });
  const btfTypeSize = btfTypeSizes(object);
  const kfuncs = new Map<number, { name: string; weak: boolean }>();
  for (const r of p.relocs)
    if (r.kind === 'kfunc') kfuncs.set(r.insnIdx, { name: r.name, weak: r.weak });
  return verifyOne(
    vm,
    prog,
    // BTF.ext line info, printed as the kernel's verbose_linfo does.
    {
      maps,
      kfuncs,
      lineInfo: sourceLines(p),
      ...(btfTypeSize === undefined ? {} : { btfTypeSize }),
    },
    o.logLevel ?? 0,
    p.name,
  );
}

type VerifyExtras = Pick<LoadOptions, 'maps' | 'kfuncs' | 'lineInfo' | 'btfTypeSize'>;

/**
 * One `vm.verify`. Without `--log-level` it logs at BPF_LOG_STATS, as veristat does: only the
 * messages and the `processed N insns` line, which gives a rejection's insn count.
 */
function verifyOne(
  vm: Vm,
  prog: Program,
  extras: VerifyExtras,
  logLevel: number,
  name?: string,
): Verdict {
  try {
    const v = vm.verify(prog, { ...extras, logLevel: logLevel === 0 ? BPF_LOG_STATS : logLevel });
    return {
      program: name,
      accepted: true,
      insnIdx: null,
      message: '',
      hints: [],
      processedInsns: v.processedInsns,
      verifyMs: v.verifyMs,
      log: logLevel === 0 ? '' : v.log,
    };
  } catch (e) {
    if (isVerifierError(e)) return rejected(name, e, logLevel);
    throw e;
  }
}

function rejected(
  name: string | undefined,
  e: VerifierError,
  logLevel: number,
  traced = true,
): Verdict {
  const processed = /processed (\d+) insns/.exec(e.log)?.[1];
  const hints = e.hint === undefined ? [] : [e.hint];
  if (logLevel === 0 && traced) hints.push('run with --log-level 1 to print the verifier log');
  return {
    program: name,
    accepted: false,
    insnIdx: e.insnIdx,
    message: e.reason,
    hints,
    processedInsns: processed === undefined ? null : Number(processed),
    verifyMs: null,
    log: logLevel === 0 ? '' : e.log,
  };
}

/**
 * The command's output: per program its log (when `--log-level` is given), the verdict line
 * and a rejection's hints; or with `json` the object (an array of them, each with its
 * `program`, when an object's several programs were verified).
 *
 * @example
 * formatVerdicts(verdicts, { json: true, logLevel: 0 })
 * // '{"verdict":"accept","insn":null,"message":"","processed_insns":2}\n'
 */
export function formatVerdicts(
  verdicts: readonly Verdict[],
  o: { readonly json: boolean; readonly logLevel: number },
): string {
  if (o.json) {
    const objs = verdicts.map((v) => ({
      ...(verdicts.length > 1 ? { program: v.program } : {}),
      verdict: v.accepted ? 'accept' : 'reject',
      insn: v.insnIdx,
      message: v.message,
      processed_insns: v.processedInsns,
      ...(o.logLevel > 0 ? { log: v.log } : {}),
    }));
    return `${JSON.stringify(objs.length === 1 ? objs[0] : objs)}\n`;
  }
  const out: string[] = [];
  for (const v of verdicts) {
    if (v.log !== '') out.push(v.log.replace(/\n$/, ''));
    const who = v.program === undefined ? '' : `${v.program}: `;
    if (v.accepted) {
      out.push(
        `${who}verified: accept (${v.processedInsns ?? '?'} insns processed, ${(v.verifyMs ?? 0).toFixed(1)} ms)`,
      );
    } else {
      const at = v.insnIdx === null ? 'rejected' : `rejected at insn ${v.insnIdx}`;
      out.push(`${who}${at}: ${v.message}`, ...v.hints.map((h) => `hint: ${h}`));
    }
  }
  return `${out.join('\n')}\n`;
}
