/**
 * `vm.loadObject(bytes)`: libbpf's object workflow on a Vm. It reads the ELF (src/loader),
 * creates every map (global data sections become one-element array maps holding their
 * initial image, as libbpf's `.data`/`.rodata`/`.bss` maps), links and loads every program
 * against those maps, and writes the function tokens that global data holds (function
 * pointers in `.rodata`). The result gives programs, maps and global variables by name, as
 * bytes or, where the object's BTF gives the layout, as decoded values (`typedMap`,
 * `globals.get` / `set`; runtime/btf-view.ts).
 */

import { LinkError, MapError, UsageError } from '../src/errors.js';
import type { Btf } from '../src/loader/btf.js';
import {
  decodeBtf,
  encodeBtf,
  type BtfDecodeOptions,
  type BtfValue,
} from '../src/loader/btf-value.js';
import { loadObject } from '../src/loader/object.js';
import {
  btfTypeSizes,
  dataFuncStarts,
  sourceLines,
  type BpfObject,
  type GlobalVar,
  type MapDef,
  type ObjProgram,
} from '../src/loader/types.js';
import { createProgram, subprogIndexOf } from '../src/program.js';
import { TypedMap, mapBtfTypes } from './btf-view.js';
import type { Engine, LoadedProgram } from './loaded-program.js';
import type { BpfMap, MapSpec } from './maps/map.js';
import { BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PROG_ARRAY } from './maps/map-type.js';
import type { Vm } from './vm.js';

/** Options of `Vm.loadObject`. */
export interface ObjectOptions {
  readonly engine?: Engine;
  /** Verify each program before it runs (the default); `false` runs them unverified. */
  readonly verify?: boolean;
  /** Verifier log level for each program (its `VerifierError` carries the log). */
  readonly logLevel?: number;
  /**
   * Initial images of global-data sections by section name (`.rodata`, `.data`, `.bss`), as
   * a skeleton sets them before load. Shorter images leave the rest as the object has it.
   */
  readonly globals?: Readonly<Record<string, Uint8Array>>;
  /** Addresses of extern ksyms by name; absent weak ksyms resolve to 0. */
  readonly ksyms?: Readonly<Record<string, bigint>>;
}

/** A global variable: which map holds it and where. */
interface GlobalSlot {
  readonly map: BpfMap;
  readonly v: GlobalVar;
}

/** Global variables of an object, by name. */
export class ObjectGlobals {
  private readonly slots = new Map<string, GlobalSlot>();
  /** The object's BTF, which types the variables for `get` and `set`. */
  private readonly btf: Btf | undefined;

  constructor(entries: readonly (readonly [BpfMap, readonly GlobalVar[]])[], btf?: Btf) {
    for (const [map, vars] of entries) for (const v of vars) this.slots.set(v.name, { map, v });
    this.btf = btf;
  }

  /** Names of every global variable. */
  names(): string[] {
    return [...this.slots.keys()];
  }

  /** The current bytes of variable `name`. */
  read(name: string): Uint8Array {
    const s = this.slot(name);
    return (s.map.lookup(new Uint8Array(4)) as Uint8Array).slice(s.v.offset, s.v.offset + s.v.size);
  }

  /** Overwrites variable `name` (exactly its size in bytes). */
  write(name: string, bytes: Uint8Array): void {
    const s = this.slot(name);
    if (bytes.length !== s.v.size) {
      throw new UsageError(`global '${name}' has ${s.v.size} bytes, got ${bytes.length}`);
    }
    const value = s.map.lookup(new Uint8Array(4)) as Uint8Array;
    value.set(bytes, s.v.offset);
    s.map.update(new Uint8Array(4), value);
  }

  /** Variable `name` read as a little-endian unsigned integer (1, 2, 4 or 8 bytes). */
  readUint(name: string): bigint {
    const b = this.read(name);
    let v = 0n;
    for (let k = b.length - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k] as number);
    return v;
  }

  /**
   * Variable `name` decoded by its BTF type (src/loader/btf-value.ts: numbers up to 32 bits,
   * bigints beyond, objects for structs). `T` only names what the caller expects.
   *
   * @example
   * ```ts
   * obj.globals.get('max_frame'); // 1514
   * obj.globals.get<bigint>('total_packets'); // 3n
   * ```
   */
  get<T = BtfValue>(name: string, opts: Omit<BtfDecodeOptions, 'path'> = {}): T {
    const [btf, typeId] = this.typeOf(name);
    return decodeBtf(btf, typeId, this.read(name), { ...opts, path: name }) as T;
  }

  /**
   * Encodes `value` by the BTF type of variable `name` and writes it (struct members left out
   * are zero). Throws a UsageError naming the member when a value does not fit.
   *
   * @example
   * ```ts
   * obj.globals.set('total_packets', 0n);
   * obj.globals.set('cfg', { rate: 100, flags: { verbose: true } });
   * ```
   */
  set(name: string, value: unknown): void {
    const [btf, typeId] = this.typeOf(name);
    this.write(name, encodeBtf(btf, typeId, value, { path: name }));
  }

  private typeOf(name: string): [Btf, number] {
    const typeId = this.slot(name).v.typeId;
    if (this.btf === undefined || typeId === undefined) {
      throw new UsageError(
        `global '${name}' has no BTF type (build the object with -g), use read() / write()`,
      );
    }
    return [this.btf, typeId];
  }

  private slot(name: string): GlobalSlot {
    const s = this.slots.get(name);
    if (s === undefined)
      throw new UsageError(`no global variable '${name}' (have: ${this.names().join(', ')})`);
    return s;
  }
}

/** An object loaded into a Vm. */
export class LoadedObject {
  readonly object: BpfObject;
  readonly globals: ObjectGlobals;
  private readonly programs: ReadonlyMap<string, LoadedProgram>;
  private readonly maps: ReadonlyMap<string, BpfMap>;

  constructor(
    object: BpfObject,
    programs: ReadonlyMap<string, LoadedProgram>,
    maps: ReadonlyMap<string, BpfMap>,
    globals: ObjectGlobals,
  ) {
    this.object = object;
    this.programs = programs;
    this.maps = maps;
    this.globals = globals;
  }

  /** Program by entry name or section name. */
  program(name: string): LoadedProgram {
    const p = this.programs.get(name);
    if (p === undefined) {
      throw new UsageError(
        `no program '${name}' in the object (have: ${[...this.programs.keys()].join(', ')})`,
      );
    }
    return p;
  }

  /** Names of the programs, by entry symbol. */
  programNames(): string[] {
    return this.object.programs.map((p) => p.name);
  }

  /** Map by name; global data maps are named by their section (`.data`, `.bss`, `.rodata`). */
  map(name: string): BpfMap {
    const m = this.maps.get(name);
    if (m === undefined)
      throw new UsageError(
        `no map '${name}' in the object (have: ${[...this.maps.keys()].join(', ')})`,
      );
    return m;
  }

  /** Every map with its name. */
  mapEntries(): [string, BpfMap][] {
    return [...this.maps];
  }

  /**
   * Map `name` with keys and values decoded by its BTF `__type(key, ...)` and
   * `__type(value, ...)` (btf-view.ts); percpu maps give an array of per-CPU values. Throws a
   * UsageError for maps without BTF types (objects built without `-g`, `key_size` /
   * `value_size` definitions, ring buffers) and for global data (use `globals.get`).
   *
   * @example
   * ```ts
   * const obj = await vm.loadObject(bytes, { verify: false });
   * obj.program('xdp_count').run(new Uint8Array(100));
   * obj.typedMap('pkt_count').lookup(1); // 1n
   * obj.typedMap<number, bigint>('pkt_count').update(7, 0n);
   * ```
   */
  typedMap<K = BtfValue, V = BtfValue>(
    name: string,
    opts: Omit<BtfDecodeOptions, 'path'> = {},
  ): TypedMap<K, V> {
    const map = this.map(name);
    const def = this.object.maps.find((d) => (d.global?.section ?? d.name) === name);
    if (def === undefined) throw new UsageError(`map '${name}' is not defined by the object`);
    return new TypedMap<K, V>(map, mapBtfTypes(name, def, this.object.btf, map.typeName), opts);
  }
}

/** Loads ELF `bytes` into `vm`. */
export async function loadObjectInto(
  vm: Vm,
  bytes: Uint8Array,
  opts: ObjectOptions = {},
): Promise<LoadedObject> {
  const object = loadObject(bytes);
  const maps = object.maps.map((def) => createObjectMap(vm, def, opts.globals));
  const byName = new Map<string, BpfMap>();
  object.maps.forEach((def, k) => byName.set(def.global?.section ?? def.name, maps[k] as BpfMap));
  const loaded: LoadedProgram[] = [];
  for (let k = 0; k < object.programs.length; k++)
    loaded.push(await loadObjectProgram(vm, object, k, maps, opts));
  object.maps.forEach((def, k) => writeFuncPtrs(def, maps[k] as BpfMap, loaded));
  const programs = new Map<string, LoadedProgram>();
  object.programs.forEach((p, k) => {
    programs.set(p.section, loaded[k] as LoadedProgram);
    programs.set(p.name, loaded[k] as LoadedProgram);
  });
  object.maps.forEach((def, k) => writeInitialValues(def, maps[k] as BpfMap, programs, byName));
  // libbpf freezes read-only global data once the programs are loaded
  object.maps.forEach((def, k) => {
    if (def.global?.readonly === true) (maps[k] as BpfMap).freeze();
  });
  const globals = new ObjectGlobals(
    object.maps.flatMap((def, k) =>
      def.global === undefined ? [] : [[maps[k] as BpfMap, def.global.vars] as const],
    ),
    object.btf,
  );
  return new LoadedObject(object, programs, byName, globals);
}

function mapSpecOf(def: MapDef): MapSpec {
  return {
    name: def.name,
    type: def.type,
    keySize: def.keySize,
    valueSize: def.valueSize,
    maxEntries: def.maxEntries,
    flags: def.flags,
    ...(def.mapExtra === undefined ? {} : { mapExtra: def.mapExtra }),
    ...(def.innerMap === undefined ? {} : { innerMap: mapSpecOf(def.innerMap) }),
  };
}

/** Fills `__array(values, ...)` slots: programs into prog_arrays, maps into map-in-maps. */
function writeInitialValues(
  def: MapDef,
  map: BpfMap,
  programs: ReadonlyMap<string, LoadedProgram>,
  maps: ReadonlyMap<string, BpfMap>,
): void {
  for (const { index, symbol } of def.initialValues ?? []) {
    const key = new Uint8Array(new Uint32Array([index]).buffer);
    if (map.type === BPF_MAP_TYPE_PROG_ARRAY) {
      const p = programs.get(symbol);
      if (p === undefined)
        throw new LinkError(symbol, `map '${def.name}' slot ${index}: no program '${symbol}'`);
      map.setProg(index, p);
      continue;
    }
    const inner = maps.get(symbol);
    if (inner === undefined)
      throw new LinkError(symbol, `map '${def.name}' slot ${index}: no map '${symbol}'`);
    map.update(key, new Uint8Array(new Uint32Array([inner.id]).buffer));
  }
}

/**
 * Creates one map of an object: a declared map from its definition, or a global-data section
 * as a one-element array holding its image (`images` overrides it, as a skeleton does). The
 * caller freezes read-only sections once their function pointers are written.
 */
export function createObjectMap(
  vm: Vm,
  def: MapDef,
  images: ObjectOptions['globals'] = undefined,
): BpfMap {
  if (def.global === undefined) {
    if (def.type === 0)
      throw new MapError(def.name, 'EINVAL', 'the object has no BTF to describe this map');
    return vm.createMap(mapSpecOf(def));
  }
  const g = def.global;
  const size = Math.max(1, g.bytes.length);
  const map = vm.createMap({
    name: g.section,
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: size,
    maxEntries: 1,
    flags: def.flags,
  });
  const image = new Uint8Array(size);
  image.set(g.bytes);
  const given = images?.[g.section];
  if (given !== undefined) {
    if (given.length > size)
      throw new UsageError(`image for ${g.section} has ${given.length} bytes, the section ${size}`);
    image.set(given);
  }
  map.update(new Uint8Array(4), image);
  return map;
}

async function loadObjectProgram(
  vm: Vm,
  object: BpfObject,
  k: number,
  maps: readonly BpfMap[],
  opts: ObjectOptions,
): Promise<LoadedProgram> {
  const p = object.programs[k] as ObjProgram;
  const ksyms = new Map<number, bigint>();
  const kfuncs = new Map<number, { name: string; weak: boolean }>();
  for (const r of p.relocs) {
    if (r.kind === 'kfunc') kfuncs.set(r.insnIdx, { name: r.name, weak: r.weak });
    if (r.kind !== 'ksym') continue;
    // the address of a kfunc the Vm has is its (non-zero) call-table slot
    const slot = vm.kfuncSlot(r.name);
    const v = opts.ksyms?.[r.name] ?? (slot === undefined ? undefined : BigInt(slot));
    if (v === undefined && !r.weak)
      throw new LinkError(r.name, `program ${p.name}: unknown ksym '${r.name}'`);
    ksyms.set(r.insnIdx, v ?? 0n);
  }
  const prog = createProgram(p.insns, {
    name: p.name,
    type: p.type,
    funcNames: p.funcNames,
    gotoxTargets: p.gotoxTargets,
    dataFuncs: dataFuncStarts(object, k),
  });
  const btfTypeSize = btfTypeSizes(object);
  return vm.load(prog, {
    ...(btfTypeSize === undefined ? {} : { btfTypeSize }),
    engine: opts.engine ?? 'jit',
    ...(opts.verify === undefined ? {} : { verify: opts.verify }),
    ...(opts.logLevel === undefined ? {} : { logLevel: opts.logLevel }),
    maps,
    ksyms,
    kfuncs,
    lineInfo: sourceLines(p),
  });
}

/** Writes each function pointer's token into the loaded global data. */
function writeFuncPtrs(def: MapDef, map: BpfMap, loaded: readonly LoadedProgram[]): void {
  const g = def.global;
  if (g === undefined || g.funcPtrs.length === 0) return;
  const value = map.lookup(new Uint8Array(4)) as Uint8Array;
  const view = new DataView(value.buffer, value.byteOffset);
  for (const fp of g.funcPtrs) {
    const t = fp.targets[0];
    const lp = t === undefined ? undefined : loaded[t.program];
    if (t === undefined || lp === undefined)
      throw new LinkError(fp.func, `no program provides function '${fp.func}'`);
    const token = lp.links.funcTokenBase + subprogIndexOf(lp.program, t.insnIdx);
    if (fp.size === 8) view.setBigUint64(fp.offset, BigInt(token), true);
    else view.setUint32(fp.offset, token, true);
  }
  map.update(new Uint8Array(4), value);
}
