/**
 * The static linker: turns one entry function of an object into a self-contained program,
 * the way libbpf's `bpf_object__relocate` does. The entry function comes first; every function
 * it calls (`call` src 1, with or without a relocation) or whose address it takes (lddw +
 * `R_BPF_64_64` against code) is appended once, in discovery order, from any code section;
 * so are the targets of function pointers stored in global data the program refers to.
 * Relocations are applied as described in types.ts (map → src 5, global → src 6, kfunc →
 * src 2, ksym → src 3, function address → src 4) and listed in `relocs`.
 *
 * `.jumptables` (clang's gotox tables) are u64 byte offsets from the start of the code section
 * of the function that loads them; they are converted to absolute slots of the linked program
 * and written into the program's own read-only jump-table map, and every `gotox` gets its
 * targets: those of the table whose lddw reaches it (traced forward through mov/add/ldx), or,
 * if no trace reaches it, the union of its function's tables.
 *
 * Called from: `loadObject`. Work is bounded: each function is placed at most once per
 * program, and traces stop at the end of their function.
 */

import { ElfError } from '../errors.js';
import { insn, type Insn } from '../isa/insn.js';
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  CALL,
  LD_DW_IMM,
} from '../isa/opcodes.js';
import type { Btf } from './btf.js';
import type { BtfExt } from './btf-ext.js';
import {
  R_BPF_64_32,
  R_BPF_64_64,
  SHN_UNDEF,
  STB_WEAK,
  STT_SECTION,
  type ElfRel,
  type ElfSection,
  type ElfSymbol,
} from './elf.js';
import { traceJumpTables } from './jump-tables.js';
import { mapAtOffset, type MapEntry } from './maps.js';
import { ByteReader, hex } from './reader.js';
import type { ObjFuncInfo, ObjLineInfo, ProgReloc } from './types.js';

/** A code section: its decoded slots, functions and relocations by slot. */
export interface CodeSection {
  readonly sec: ElfSection;
  readonly insns: readonly Insn[];
  /** Sorted by start; they partition the section. */
  readonly funcs: readonly Func[];
  readonly relocs: ReadonlyMap<number, ElfRel>;
  /** Name of the SHT_REL section relocating it ('' when none), for errors. */
  readonly relName: string;
}

/** A function: slots `[start, end)` of its section. */
export interface Func {
  readonly code: CodeSection;
  readonly start: number;
  readonly end: number;
  readonly name: string;
  /** The FUNC symbol that starts it, if any. */
  readonly sym: ElfSymbol | undefined;
}

/** A function pointer in a global data section, before linking. */
export interface DataFuncPtr {
  readonly offset: number;
  readonly size: number;
  readonly target: Func;
}

/** Everything the linker resolves against; shared by all programs of an object. */
export interface LinkEnv {
  readonly sections: readonly ElfSection[];
  readonly code: ReadonlyMap<number, CodeSection>;
  readonly mapEntries: readonly MapEntry[];
  /** Global data section index → map index. */
  readonly globalMaps: ReadonlyMap<number, number>;
  /** Global data section index → function pointers in it. */
  readonly funcPtrs: ReadonlyMap<number, readonly DataFuncPtr[]>;
  readonly jumpTables: ElfSection | undefined;
  readonly symbols: readonly ElfSymbol[];
  /** Extern names; the linker appends new ones. */
  readonly externs: string[];
  readonly btf: Btf | undefined;
  readonly btfExt: BtfExt | undefined;
  /** The map index this program's jump-table map gets if it needs one. */
  readonly jumpTableMap: number;
}

/** A linked program, before it becomes an `ObjProgram`. */
export interface Linked {
  readonly insns: Insn[];
  readonly funcNames: Map<number, string>;
  readonly gotoxTargets: Map<number, number[]>;
  readonly relocs: ProgReloc[];
  readonly funcInfo: ObjFuncInfo[];
  readonly lineInfo: ObjLineInfo[];
  /** Contents of the jump-table map (a `.jumptables`-sized copy), if the program uses one. */
  readonly jumpTableBytes: Uint8Array | undefined;
  /** For each global data section index: the slot of each of its function pointers' targets. */
  readonly funcPtrSlots: Map<number, number[]>;
}

interface Table {
  readonly offset: number;
  readonly slots: number[];
}

/** Links the program whose entry is `entry`. Throws `ElfError` for bad relocations. */
export function linkProgram(env: LinkEnv, entry: Func): Linked {
  return new Linker(env).link(entry);
}

class Linker {
  private readonly env: LinkEnv;
  private readonly out: Insn[] = [];
  private readonly placed = new Map<Func, number>();
  private readonly queue: Func[] = [];
  private readonly relocs: ProgReloc[] = [];
  private readonly tables = new Map<number, Table>();
  /** Per function: lddw source slot → table offset. */
  private readonly tableLoads = new Map<Func, Map<number, number>>();
  private readonly funcPtrSlots = new Map<number, number[]>();
  private total = 0;
  /** The section being relocated, for errors. */
  private relName = '';

  constructor(env: LinkEnv) {
    this.env = env;
  }

  link(entry: Func): Linked {
    this.place(entry);
    for (let q = 0; q < this.queue.length; q++) this.relocateFunc(this.queue[q] as Func);
    const funcNames = new Map<number, string>();
    for (const [f, base] of this.placed) funcNames.set(base, f.name);
    return {
      insns: this.out,
      funcNames,
      gotoxTargets: this.gotoxTargets(),
      relocs: this.relocs,
      ...this.debugInfo(),
      jumpTableBytes: this.jumpTableBytes(),
      funcPtrSlots: this.funcPtrSlots,
    };
  }

  /** The start slot of `f` in the output, appending it to the queue the first time. */
  private place(f: Func): number {
    let base = this.placed.get(f);
    if (base === undefined) {
      base = this.total;
      this.total += f.end - f.start;
      this.placed.set(f, base);
      this.queue.push(f);
    }
    return base;
  }

  private relocateFunc(f: Func): void {
    const base = this.placed.get(f) as number;
    const { insns, relocs, sec } = f.code;
    this.relName = f.code.relName;
    for (let s = f.start; s < f.end; s++) {
      const o = base + s - f.start;
      const i = insns[s] as Insn;
      const rel = relocs.get(s);
      this.out[o] = i;
      if (i.code === LD_DW_IMM && s + 1 >= f.end) {
        const reason = `lddw at insn ${s} is cut by the end of function '${f.name}'`;
        throw new ElfError(reason, sec.name, sec.offset + s * 8);
      }
      if (i.code === LD_DW_IMM) {
        this.out[o + 1] = insns[s + 1] as Insn;
        if (rel !== undefined) this.relocateLddw(f, s, o, i, rel);
        s++;
        if (relocs.has(s)) this.badReloc(relocs.get(s) as ElfRel, 'points into the middle of lddw');
      } else if (i.code === CALL) {
        if (rel !== undefined) this.relocateCall(o, i, rel);
        else if (i.src === BPF_PSEUDO_CALL) {
          this.callTo(f.code, s + i.imm + 1, o, i, sec.name, sec.offset + s * 8);
        }
      } else if (rel !== undefined) {
        this.badReloc(rel, `insn ${s} is not a call or lddw`);
      }
    }
  }

  private relocateCall(o: number, i: Insn, rel: ElfRel): void {
    if (rel.type !== R_BPF_64_32) this.badReloc(rel, `type ${rel.type} on a call`);
    const sym = rel.sym;
    if (sym.shndx === SHN_UNDEF) {
      const idx = this.externIndex(sym.name);
      this.out[o] = insn(i.code, 0, BPF_PSEUDO_KFUNC_CALL, 0, idx);
      this.relocs.push({ insnIdx: o, kind: 'kfunc', name: sym.name, weak: sym.bind === STB_WEAK });
      return;
    }
    const code = this.env.code.get(sym.shndx);
    if (code === undefined) this.badReloc(rel, `call against '${sym.name}', which is not code`);
    if (sym.value % 8 !== 0) this.badReloc(rel, `call target 0x${hex(sym.value)} is not aligned`);
    const t = sym.value / 8 + i.imm + 1;
    this.callTo(code as CodeSection, t, o, i, this.relName, rel.fileOffset);
  }

  /** Rewrites the call at output slot `o` to reach section slot `t` of `code`. */
  private callTo(
    code: CodeSection,
    t: number,
    o: number,
    i: Insn,
    where: string,
    fileOff: number,
  ): void {
    const g = funcAt(code, t);
    if (g === undefined) {
      throw new ElfError(
        `call to insn ${t} outside the section '${code.sec.name}'`,
        where,
        fileOff,
      );
    }
    const target = this.place(g) + t - g.start;
    this.out[o] = insn(i.code, i.dst, BPF_PSEUDO_CALL, i.off, target - o - 1);
  }

  private relocateLddw(f: Func, s: number, o: number, i: Insn, rel: ElfRel): void {
    if (rel.type !== R_BPF_64_64) this.badReloc(rel, `type ${rel.type} on an lddw`);
    const sym = rel.sym;
    const env = this.env;
    const hi = this.out[o + 1] as Insn;
    const set = (src: number, imm: number, imm2: number): void => {
      this.out[o] = insn(i.code, i.dst, src, i.off, imm);
      this.out[o + 1] = insn(hi.code, hi.dst, hi.src, hi.off, imm2);
    };
    const code = env.code.get(sym.shndx);
    const global = env.globalMaps.get(sym.shndx);
    if (sym.shndx === SHN_UNDEF) {
      set(BPF_PSEUDO_BTF_ID, this.externIndex(sym.name), 0);
      this.relocs.push({ insnIdx: o, kind: 'ksym', name: sym.name, weak: sym.bind === STB_WEAK });
    } else if (code !== undefined) {
      const byte = sym.value + i.imm;
      if (byte % 8 !== 0) this.badReloc(rel, `function address 0x${hex(byte)} is not aligned`);
      const g = funcAt(code, byte / 8);
      if (g === undefined)
        this.badReloc(rel, `function address 0x${hex(byte)} outside the section`);
      const target = this.place(g as Func) + byte / 8 - (g as Func).start;
      set(BPF_PSEUDO_FUNC, target - o - 1, 0);
    } else if (global !== undefined) {
      const size = this.globalSize(sym.shndx);
      const offset = sym.value + i.imm;
      if (!(offset >= 0 && offset < size)) {
        this.badReloc(rel, `offset 0x${hex(offset)} outside '${sym.name}' (0x${hex(size)} bytes)`);
      }
      set(BPF_PSEUDO_MAP_IDX_VALUE, global, offset);
      this.relocs.push({ insnIdx: o, kind: 'map_value', map: global, offset });
      this.useGlobal(sym.shndx);
    } else if (env.jumpTables !== undefined && sym.shndx === env.jumpTables.index) {
      const offset = this.loadTable(f, s, sym.value + i.imm, rel);
      set(BPF_PSEUDO_MAP_IDX_VALUE, env.jumpTableMap, offset);
      this.relocs.push({ insnIdx: o, kind: 'map_value', map: env.jumpTableMap, offset });
    } else {
      const map = mapAtOffset(env.mapEntries, sym.shndx, sym, i.imm);
      if (map === undefined) {
        this.badReloc(rel, `lddw against '${sym.name}', which is not code, a map or global data`);
      }
      set(BPF_PSEUDO_MAP_IDX, map as number, 0);
      this.relocs.push({ insnIdx: o, kind: 'map', map: map as number });
    }
  }

  private globalSize(shndx: number): number {
    return this.env.sections[shndx]?.size ?? 0;
  }

  /** Links the targets of the function pointers in a global data section the program uses. */
  private useGlobal(shndx: number): void {
    if (this.funcPtrSlots.has(shndx)) return;
    const ptrs = this.env.funcPtrs.get(shndx) ?? [];
    this.funcPtrSlots.set(
      shndx,
      ptrs.map((p) => this.place(p.target)),
    );
  }

  /** Reads the jump table at `offset` of `.jumptables` for the lddw at slot `s` of `f`. */
  private loadTable(f: Func, s: number, offset: number, rel: ElfRel): number {
    const jt = this.env.jumpTables as ElfSection;
    const sym = this.env.symbols.find(
      (x) => x.shndx === jt.index && x.type !== STT_SECTION && x.value === offset && x.size > 0,
    );
    if (sym === undefined) this.badReloc(rel, `no jump table symbol at 0x${hex(offset)}`);
    const size = (sym as ElfSymbol).size;
    const r = new ByteReader(jt.data, (reason, off) => {
      throw new ElfError(reason, jt.name, jt.offset + off);
    });
    r.check(offset, size, 'jump table');
    if (size % 8 !== 0)
      throw new ElfError(
        `jump table size ${size} is not a multiple of 8`,
        jt.name,
        jt.offset + offset,
      );
    const base = this.placed.get(f) as number;
    const slots: number[] = [];
    for (let k = 0; k < size; k += 8) {
      const byte = r.u64(offset + k, 'jump table entry');
      const t = byte / 8;
      if (!(Number.isInteger(t) && t >= f.start && t < f.end)) {
        throw new ElfError(
          `entry 0x${hex(byte)} is not an insn of function '${f.name}'`,
          jt.name,
          jt.offset + offset + k,
        );
      }
      slots.push(base + t - f.start);
    }
    const old = this.tables.get(offset);
    if (old !== undefined && old.slots.join() !== slots.join()) {
      throw new ElfError(`jump table used by two functions`, jt.name, jt.offset + offset);
    }
    this.tables.set(offset, { offset, slots });
    const loads = this.tableLoads.get(f) ?? new Map<number, number>();
    loads.set(s, offset);
    this.tableLoads.set(f, loads);
    return offset;
  }

  private gotoxTargets(): Map<number, number[]> {
    const out = new Map<number, number[]>();
    for (const [f, loads] of this.tableLoads) {
      const base = this.placed.get(f) as number;
      const reach = traceJumpTables(f.code.insns, f.start, f.end, loads);
      for (const [gotox, offsets] of reach) {
        const slots = new Set<number>();
        for (const off of offsets) for (const t of this.tables.get(off)?.slots ?? []) slots.add(t);
        out.set(
          base + gotox - f.start,
          [...slots].sort((a, b) => a - b),
        );
      }
    }
    return out;
  }

  private jumpTableBytes(): Uint8Array | undefined {
    const jt = this.env.jumpTables;
    if (jt === undefined || this.tables.size === 0) return undefined;
    const bytes = new Uint8Array(jt.size);
    const view = new DataView(bytes.buffer);
    for (const t of this.tables.values()) {
      t.slots.forEach((slot, k) => view.setBigUint64(t.offset + 8 * k, BigInt(slot), true));
    }
    return bytes;
  }

  private debugInfo(): { funcInfo: ObjFuncInfo[]; lineInfo: ObjLineInfo[] } {
    const funcInfo: ObjFuncInfo[] = [];
    const lineInfo: ObjLineInfo[] = [];
    const ext = this.env.btfExt;
    if (ext === undefined) return { funcInfo, lineInfo };
    for (const [f, base] of this.placed) {
      const sec = f.code.sec.name;
      const slotOf = (insnOff: number): number | undefined => {
        const t = insnOff / 8;
        return Number.isInteger(t) && t >= f.start && t < f.end ? base + t - f.start : undefined;
      };
      for (const r of ext.funcInfo.get(sec) ?? []) {
        const insnIdx = slotOf(r.insnOff);
        if (insnIdx === undefined) continue;
        const t = this.env.btf?.types[r.typeId];
        funcInfo.push({ insnIdx, name: t?.name ?? '', typeId: r.typeId });
      }
      const groups = [
        ext.lineInfo.get(sec) ?? [],
        sec === '.text' ? (ext.lineInfo.get('') ?? []) : [],
      ];
      for (const r of groups.flat()) {
        const insnIdx = slotOf(r.insnOff);
        if (insnIdx === undefined) continue;
        lineInfo.push({ insnIdx, file: r.file, line: r.line, col: r.col, source: r.source });
      }
    }
    funcInfo.sort((a, b) => a.insnIdx - b.insnIdx);
    lineInfo.sort((a, b) => a.insnIdx - b.insnIdx);
    return { funcInfo, lineInfo };
  }

  private externIndex(name: string): number {
    let idx = this.env.externs.indexOf(name);
    if (idx < 0) idx = this.env.externs.push(name) - 1;
    return idx;
  }

  private badReloc(rel: ElfRel, reason: string): never {
    throw new ElfError(
      `relocation at 0x${hex(rel.offset)}: ${reason}`,
      this.relName,
      rel.fileOffset,
    );
  }
}

/** The function of `code` holding section slot `t`. */
export function funcAt(code: CodeSection, t: number): Func | undefined {
  let lo = 0;
  let hi = code.funcs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const f = code.funcs[mid] as Func;
    if (t < f.start) hi = mid - 1;
    else if (t >= f.end) lo = mid + 1;
    else return f;
  }
  return undefined;
}
