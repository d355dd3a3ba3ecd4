/**
 * Unit tests of src/loader/btf-ext.ts: func_info and line_info of real objects (including the
 * empty-named group clang-22 writes for `nodebug` coroutine clones), CO-RE records kept raw,
 * and malformed sections giving a `BtfError` with section and offset.
 */

import { describe, expect, it } from 'vitest';
import { parseBtf, type Btf } from '../../../../src/loader/btf.js';
import { parseBtfExt } from '../../../../src/loader/btf-ext.js';
import { parseElf, sectionByName } from '../../../../src/loader/elf.js';
import { BtfBuilder, u32s } from './elf-builder.js';
import { expectLoaderError, readFixture } from './fixtures.js';

function extOf(path: string): ReturnType<typeof parseBtfExt> {
  const elf = parseElf(readFixture(path));
  const b = sectionByName(elf, '.BTF');
  const e = sectionByName(elf, '.BTF.ext');
  if (b === undefined || e === undefined) throw new Error(`${path} has no BTF`);
  return parseBtfExt(e.data, parseBtf(b.data), e.name, e.offset);
}

describe('BTF.ext of real objects', () => {
  it('groups func_info and line_info of xdp_count.o by code section', () => {
    const ext = extOf('xdp/xdp_count.o');
    expect([...ext.funcInfo.keys()].sort()).toEqual(['.text', 'xdp']);
    expect(ext.funcInfo.get('.text')?.map((r) => r.insnOff)).toEqual([0, 0x60, 0x80, 0xc0]);
    expect(ext.funcInfo.get('xdp')).toHaveLength(1);
    const first = ext.lineInfo.get('xdp')?.[0];
    expect(first).toEqual({
      insnOff: 0,
      file: './xdp_count.c',
      source: '  const __u8 *data_end = (const __u8 *)(long)ctx->data_end;',
      line: 68,
      col: 51,
    });
    expect(ext.coreRelo.size).toBe(0);
  });

  it('keeps the empty-named line_info group of coroutine objects', () => {
    const ext = extOf('coro/coro_perf_event.g.o');
    expect(ext.lineInfo.get('')?.length).toBeGreaterThan(0);
    expect(ext.lineInfo.get('')?.[0]?.file).toBe('././bpf_coro.h');
  });
});

describe('malformed BTF.ext', () => {
  const b = new BtfBuilder();
  const int = b.int('int', 4, 1);
  b.func('f', b.funcProto(int, []));
  const btf: Btf = parseBtf(b.build());
  const funcName = 1 + 'int'.length + 1; // offset of "f" in the strings

  /** Header (32 bytes) + a func_info block + a line_info block + a core_relo block. */
  function ext(
    func: Uint8Array,
    line: Uint8Array,
    core: Uint8Array = new Uint8Array(0),
  ): Uint8Array {
    const hdr = u32s(0x0001eb9f, 32, 0, func.length, func.length, line.length);
    const coreHdr = u32s(func.length + line.length, core.length);
    const out = new Uint8Array(32 + func.length + line.length + core.length);
    out.set(hdr);
    out.set(coreHdr, 24);
    out.set(func, 32);
    out.set(line, 32 + func.length);
    out.set(core, 32 + func.length + line.length);
    return out;
  }

  it('reads a well-formed section with all three blocks', () => {
    const parsed = parseBtfExt(
      ext(
        u32s(8, funcName, 1, 0, 2),
        u32s(16, funcName, 1, 8, funcName, funcName, (7 << 10) | 3),
        u32s(16, funcName, 1, 16, 1, funcName, 0),
      ),
      btf,
    );
    expect(parsed.funcInfo.get('f')).toEqual([{ insnOff: 0, typeId: 2 }]);
    expect(parsed.lineInfo.get('f')).toEqual([
      { insnOff: 8, file: 'f', source: 'f', line: 7, col: 3 },
    ]);
    expect(parsed.coreRelo.get('f')).toEqual([{ insnOff: 16, typeId: 1, accessStr: 'f', kind: 0 }]);
  });

  it('rejects a record size smaller than the record', () => {
    expectLoaderError(
      () => parseBtfExt(ext(u32s(4, funcName, 0), new Uint8Array(0)), btf, '.BTF.ext', 0x200),
      {
        name: 'BtfError',
        section: '.BTF.ext',
        offset: 0x200 + 32,
        reason: /bad record size 4/,
      },
    );
  });

  it('rejects records past the end of their block', () => {
    expectLoaderError(() => parseBtfExt(ext(u32s(8, funcName, 5, 0, 2), new Uint8Array(0)), btf), {
      name: 'BtfError',
      section: '.BTF.ext',
      offset: 32 + 8,
      reason: /5 records of 8 bytes past the end of the block/,
    });
  });

  it('rejects a string offset out of range', () => {
    expectLoaderError(() => parseBtfExt(ext(u32s(8, 0x4444, 0), new Uint8Array(0)), btf), {
      name: 'BtfError',
      section: '.BTF.ext',
      offset: 32 + 4,
      reason: /string offset 0x4444 out of range/,
    });
  });

  it('rejects an info block outside the section', () => {
    const bytes = ext(u32s(8, funcName, 0), new Uint8Array(0)).slice();
    new DataView(bytes.buffer).setUint32(12, 0x1000, true);
    expectLoaderError(() => parseBtfExt(bytes, btf), {
      name: 'BtfError',
      section: '.BTF.ext',
      offset: 32,
      reason: /info block: 4096 bytes at 0x20 outside/,
    });
  });
});
