/**
 * BTF.ext (`.BTF.ext` section): per code section, `func_info` (which BTF FUNC starts at
 * which instruction) and `line_info` (file, line, column and source text of instructions),
 * with strings taken from the `.BTF` string section. `core_relo` records (CO-RE field and type
 * relocations) are read raw and kept, not applied: the engine has no kernel BTF to relocate
 * against, so CO-RE accesses keep the offsets the compiler wrote.
 *
 * In relocatable objects `insnOff` is a byte offset into the section (libbpf divides by 8);
 * the records here keep bytes and the linker converts them.
 *
 * Called from: `loadObject`. clang-22 emits a line_info group with an empty section name for
 * coroutine clones in `.text` compiled `nodebug` (notes/coroutines.md §2); such a group is
 * kept under the name '' and the linker reads it as `.text`.
 */

import { BtfError } from '../errors.js';
import type { Btf } from './btf.js';
import { ByteReader, hex } from './reader.js';

/** One `bpf_func_info`: the FUNC type `typeId` starts at byte `insnOff` of its section. */
export interface BtfExtFuncInfo {
  readonly insnOff: number;
  readonly typeId: number;
}

/** One `bpf_line_info`, with its strings resolved. */
export interface BtfExtLineInfo {
  readonly insnOff: number;
  readonly file: string;
  readonly source: string;
  readonly line: number;
  readonly col: number;
}

/** One `bpf_core_relo`, raw. `kind` is `enum bpf_core_relo_kind`. */
export interface BtfExtCoreRelo {
  readonly insnOff: number;
  readonly typeId: number;
  readonly accessStr: string;
  readonly kind: number;
}

/** Parsed `.BTF.ext`: records grouped by code section name. */
export interface BtfExt {
  readonly funcInfo: ReadonlyMap<string, readonly BtfExtFuncInfo[]>;
  readonly lineInfo: ReadonlyMap<string, readonly BtfExtLineInfo[]>;
  readonly coreRelo: ReadonlyMap<string, readonly BtfExtCoreRelo[]>;
}

/**
 * Parses `.BTF.ext` against its `.BTF`. Errors are `BtfError`s naming `section` and the file
 * offset (`fileOffset` + offset in the section).
 */
export function parseBtfExt(
  bytes: Uint8Array,
  btf: Btf,
  section = '.BTF.ext',
  fileOffset = 0,
): BtfExt {
  const fail = (reason: string, off: number): never => {
    throw new BtfError(reason, section, fileOffset + off);
  };
  const r = new ByteReader(bytes, fail);
  const magic = r.u16(0, 'header');
  if (magic !== 0xeb9f) fail(`bad magic 0x${hex(magic)}`, 0);
  if (r.u8(2, 'header') !== 1) fail(`unsupported version ${r.u8(2)}`, 2);
  const hdrLen = r.u32(4, 'header');
  if (hdrLen < 24) fail(`header length ${hdrLen} < 24`, 4);
  const str = (off: number, at: number): string => {
    try {
      return btf.str(off);
    } catch {
      return fail(`string offset 0x${hex(off)} out of range`, at);
    }
  };
  const funcInfo = readGroups(r, hdrLen, r.u32(8), r.u32(12), 8, fail, str, (at) => ({
    insnOff: r.u32(at),
    typeId: r.u32(at + 4),
  }));
  const lineInfo = readGroups(r, hdrLen, r.u32(16), r.u32(20), 16, fail, str, (at) => {
    const lineCol = r.u32(at + 12);
    return {
      insnOff: r.u32(at),
      file: str(r.u32(at + 4), at + 4),
      source: str(r.u32(at + 8), at + 8),
      line: lineCol >>> 10,
      col: lineCol & 0x3ff,
    };
  });
  const coreRelo =
    hdrLen >= 32
      ? readGroups(r, hdrLen, r.u32(24), r.u32(28), 16, fail, str, (at) => ({
          insnOff: r.u32(at),
          typeId: r.u32(at + 4),
          accessStr: str(r.u32(at + 8), at + 8),
          kind: r.u32(at + 12),
        }))
      : new Map<string, BtfExtCoreRelo[]>();
  return { funcInfo, lineInfo, coreRelo };
}

/**
 * Reads one info block: `u32 rec_size`, then groups `{ sec_name_off, num_info, records }`.
 * `minRec` is the record size this reader understands; larger records are skipped over.
 */
function readGroups<T>(
  r: ByteReader,
  hdrLen: number,
  relOff: number,
  len: number,
  minRec: number,
  fail: (reason: string, off: number) => never,
  str: (off: number, at: number) => string,
  read: (at: number) => T,
): Map<string, T[]> {
  const out = new Map<string, T[]>();
  if (len === 0) return out;
  const start = hdrLen + relOff;
  r.check(start, len, 'info block');
  const end = start + len;
  const recSize = r.u32(start, 'rec_size');
  if (recSize < minRec || recSize % 4 !== 0) fail(`bad record size ${recSize}`, start);
  let off = start + 4;
  while (off < end) {
    if (off + 8 > end) fail('truncated section header', off);
    const name = str(r.u32(off), off);
    const num = r.u32(off + 4);
    off += 8;
    if (!(num * recSize <= end - off)) {
      fail(`${num} records of ${recSize} bytes past the end of the block`, off - 4);
    }
    const list = out.get(name) ?? [];
    for (let k = 0; k < num; k++, off += recSize) list.push(read(off));
    out.set(name, list);
  }
  return out;
}
