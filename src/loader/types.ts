/**
 * The object model `loadObject` produces: plain data, independent of the runtime. The runtime
 * creates the maps, resolves externs (kfuncs, ksyms), writes function tokens into global data
 * and loads the programs; nothing here refers to a Vm.
 *
 * Encodings shared by `ObjProgram.insns` and `ObjProgram.relocs` (every relocated slot is
 * both rewritten and listed, so a Program built from `insns` is self-describing):
 *
 * | what                       | insn                                                         |
 * | -------------------------- | ------------------------------------------------------------ |
 * | map reference              | lddw src 5 (BPF_PSEUDO_MAP_IDX), imm = index in `maps`        |
 * | global variable            | lddw src 6 (BPF_PSEUDO_MAP_IDX_VALUE), imm = index in `maps`, |
 * |                            | 2nd slot imm = byte offset in the map's value                 |
 * | kfunc call                 | call src 2 (BPF_PSEUDO_KFUNC_CALL), imm = index in `externs`, |
 * |                            | off 0                                                         |
 * | ksym address (extern lddw) | lddw src 3 (BPF_PSEUDO_BTF_ID), imm = index in `externs`      |
 * | function address           | lddw src 4 (BPF_PSEUDO_FUNC), imm = target - (slot + 1)       |
 * | bpf-to-bpf call            | call src 1, imm = target - (slot + 1), in the linked program  |
 * | jump table address         | as a global variable, in the program's own jump-table map     |
 */

import type { Btf } from './btf.js';
import type { Insn } from '../isa/insn.js';
import type { ProgType } from '../program.js';

/** A loaded ELF object: programs, maps, and the names the runtime must resolve. */
export interface BpfObject {
  /** Contents of the `license` section up to its NUL ('' when absent). */
  readonly license: string;
  /** The `version` section's u32, when present. */
  readonly version?: number;
  /** One per entry function in an executable section other than `.text` / `.text.*`. */
  readonly programs: readonly ObjProgram[];
  /**
   * BTF-defined (`.maps`) and legacy (`maps`) maps in symbol-offset order, then one map per
   * global data section (`.data*`, `.rodata*`, `.bss*`) in section order, then one jump-table
   * map per program that uses `gotox` tables.
   */
  readonly maps: readonly MapDef[];
  /**
   * Undefined symbols the code refers to (kfuncs and ksyms), in first-use order. Kfunc calls
   * (src 2) and ksym lddws (src 3) carry an index into this list in their imm.
   */
  readonly externs: readonly string[];
  readonly btf?: Btf;
}

/** A variable of a global data section. */
export interface GlobalVar {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  /** BTF type of the variable (the VAR's type), when the object has BTF. */
  readonly typeId?: number;
}

/**
 * A function pointer stored in global data (`R_BPF_64_ABS64` / `R_BPF_64_ABS32` against
 * code, e.g. the `.rodata` noop-coroutine frame). The runtime writes the function's token at
 * `offset` (the loader zeroed those bytes). The target function is linked into every program
 * that refers to the data section (directly or through a function it links), at `insnIdx` of
 * `programs[program]`; any of those copies may provide the token (they are the same code).
 */
export interface FuncPtr {
  readonly offset: number;
  /** 8 for ABS64, 4 for ABS32. */
  readonly size: number;
  /** Name of the target function. */
  readonly func: string;
  readonly targets: readonly { readonly program: number; readonly insnIdx: number }[];
}

/** The global data a map holds (libbpf's internal `.data` / `.rodata` / `.bss` maps). */
export interface GlobalData {
  /** The ELF section (`.data`, `.rodata`, `.bss`, `.data.foo`, `.jumptables`, ...). */
  readonly section: string;
  /** Initial contents (zeros for `.bss`); a copy, the runtime may keep it. */
  readonly bytes: Uint8Array;
  readonly readonly: boolean;
  readonly vars: readonly GlobalVar[];
  readonly funcPtrs: readonly FuncPtr[];
}

/** A map definition, before the runtime creates the map. */
export interface MapDef {
  readonly name: string;
  /**
   * `BPF_MAP_TYPE_*` id. 0 (`unspec`) only for a `.maps` entry of an object without BTF:
   * its parameters are unknown and the runtime must refuse to create it.
   */
  readonly type: number;
  readonly typeName: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly keyTypeId?: number;
  readonly valueTypeId?: number;
  /** The inner map's definition for array_of_maps / hash_of_maps. */
  readonly innerMap?: MapDef;
  /** `__array(values, ...)` slots: index → program (prog_array) or map (map-in-map) name. */
  readonly initialValues?: readonly { readonly index: number; readonly symbol: string }[];
  readonly pinning?: number;
  readonly numaNode?: number;
  readonly mapExtra?: number;
  /** For global data sections and jump tables. */
  readonly global?: GlobalData;
}

/** A relocation the runtime resolves, by slot of `ObjProgram.insns`. */
export type ProgReloc =
  | { readonly insnIdx: number; readonly kind: 'map'; readonly map: number }
  | {
      readonly insnIdx: number;
      readonly kind: 'map_value';
      readonly map: number;
      readonly offset: number;
    }
  | {
      readonly insnIdx: number;
      readonly kind: 'kfunc';
      readonly name: string;
      readonly weak: boolean;
    }
  | {
      readonly insnIdx: number;
      readonly kind: 'ksym';
      readonly name: string;
      readonly weak: boolean;
    };

/** `func_info` of the linked program: the BTF FUNC starting at `insnIdx`. */
export interface ObjFuncInfo {
  readonly insnIdx: number;
  readonly name: string;
  readonly typeId: number;
}

/** `line_info` of the linked program. */
export interface ObjLineInfo {
  readonly insnIdx: number;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** The source line's text, as the compiler recorded it. */
  readonly source: string;
}

/** One entry program, linked with every function it can reach. */
export interface ObjProgram {
  /** The entry symbol's name (the section name when the section has no FUNC symbol). */
  readonly name: string;
  readonly section: string;
  readonly type: ProgType;
  /** The kernel program type libbpf gives the section (`mem` for custom sections). */
  readonly kernelType: string;
  /** Text after the section's `/` (`kprobe/NAME`, `struct_ops/NAME`, `fentry/NAME`). */
  readonly attachTo?: string;
  readonly sleepable: boolean;
  /** True for a section name libbpf does not know (type `mem`, the uBPF convention). */
  readonly custom: boolean;
  /**
   * The entry function first, then every function it calls or takes the address of,
   * transitively, in discovery order (from `.text` or any other code section).
   */
  readonly insns: readonly Insn[];
  /** Start slot → function name, for every linked function. */
  readonly funcNames: ReadonlyMap<number, string>;
  /** gotox slot → its possible target slots, from `.jumptables`. */
  readonly gotoxTargets: ReadonlyMap<number, readonly number[]>;
  readonly relocs: readonly ProgReloc[];
  readonly funcInfo: readonly ObjFuncInfo[];
  readonly lineInfo: readonly ObjLineInfo[];
}

/**
 * Starts (slots of `object.programs[program].insns`) of the functions whose tokens the
 * object's global data holds (`FuncPtr.targets`): `createProgram`'s `dataFuncs`.
 *
 * @example
 * createProgram(p.insns, { dataFuncs: dataFuncStarts(object, 0) });
 */
export function dataFuncStarts(object: Pick<BpfObject, 'maps'>, program: number): number[] {
  const starts = new Set<number>();
  for (const def of object.maps) {
    for (const fp of def.global?.funcPtrs ?? []) {
      for (const t of fp.targets) if (t.program === program) starts.add(t.insnIdx);
    }
  }
  return [...starts].sort((a, b) => a - b);
}

/**
 * The size of a type of the object's BTF by id (the verifier's `btfTypeSize`, for
 * `bpf_obj_new_impl`); undefined without BTF or for a type without a size.
 */
export function btfTypeSizes(
  object: Pick<BpfObject, 'btf'>,
): ((id: number) => number | undefined) | undefined {
  const btf = object.btf;
  if (btf === undefined) return undefined;
  return (id) => {
    if (id <= 0) return undefined;
    try {
      return btf.sizeOf(id);
    } catch {
      return undefined;
    }
  };
}

/**
 * The C source line of each insn that has one, as the kernel's `verbose_linfo` prints it in
 * the verifier log: `source @ file:line` (the file's base name).
 */
export function sourceLines(
  p: Pick<ObjProgram, 'lineInfo'>,
): (insnIdx: number) => string | undefined {
  const lines = new Map<number, string>();
  for (const l of p.lineInfo) {
    const source = l.source.trim();
    if (source === '') continue;
    const file = l.file.slice(l.file.lastIndexOf('/') + 1);
    lines.set(l.insnIdx, `${source} @ ${file}:${l.line}`);
  }
  return (insnIdx) => lines.get(insnIdx);
}
