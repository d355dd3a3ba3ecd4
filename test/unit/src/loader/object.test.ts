/**
 * Tests of `loadObject` (src/loader/object.ts and link.ts) on the checked-in clang objects:
 * xdp_count (maps, globals, three kinds of bpf-to-bpf call, a bpf_loop callback, line info),
 * the C++ coroutine objects (kfuncs, callx, gotox jump tables, function pointers in .rodata)
 * and the benchmark corpus (two entry sections each, compared with the flattened .bin files),
 * plus hand-built objects for what clang did not emit here (weak externs, cross-section calls,
 * section names, bad relocations).
 */

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeInsns, insn, type Insn } from '../../../../src/isa/insn.js';
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
} from '../../../../src/isa/opcodes.js';
import {
  R_BPF_64_32,
  R_BPF_64_64,
  R_BPF_64_ABS64,
  STB_WEAK,
  STT_SECTION,
} from '../../../../src/loader/elf.js';
import { loadObject } from '../../../../src/loader/object.js';
import type { BpfObject, ObjProgram } from '../../../../src/loader/types.js';
import { createProgram, type Program } from '../../../../src/program.js';
import { buildElf } from './elf-builder.js';
import { expectLoaderError, listObjects, readFixture } from './fixtures.js';

const EXIT = insn(0x95, 0, 0, 0, 0);
const MOV_R0_0 = insn(0xb7, 0, 0, 0, 0);
const LDDW = [insn(0x18, 1, 0, 0, 0), insn(0, 0, 0, 0, 0)];

function programOf(p: ObjProgram): Program {
  return createProgram(p.insns, {
    name: p.name,
    type: p.type,
    funcNames: p.funcNames,
    gotoxTargets: p.gotoxTargets,
  });
}

function only<T>(xs: readonly T[]): T {
  expect(xs).toHaveLength(1);
  return xs[0] as T;
}

/** Absolute target slot of the call / pseudo-func lddw at `idx`. */
function targetOf(insns: readonly Insn[], idx: number): number {
  return idx + (insns[idx] as Insn).imm + 1;
}

describe('xdp_count.o', () => {
  const obj = loadObject(readFixture('xdp/xdp_count.o'));
  const prog = only(obj.programs);
  const start = (name: string): number =>
    [...prog.funcNames].find(([, n]) => n === name)?.[0] ?? -1;

  it('finds the entry program with its section, type, license and functions', () => {
    expect(obj.license).toBe('GPL');
    expect(obj.version).toBeUndefined();
    expect(prog).toMatchObject({
      name: 'xdp_count',
      section: 'xdp',
      type: 'xdp',
      kernelType: 'xdp',
      custom: false,
    });
    expect(prog.attachTo).toBeUndefined();
    expect([...prog.funcNames.values()]).toEqual([
      'xdp_count',
      'bucket_of',
      'should_sample',
      'sum_bytes_cb',
      'mix',
    ]);
    expect(start('xdp_count')).toBe(0);
    expect(programOf(prog).subprogs.map((s) => s.name)).toEqual([...prog.funcNames.values()]);
  });

  it('lists the hash map, then the .bss, .data and .rodata maps with their variables', () => {
    expect(obj.maps.map((m) => [m.name, m.typeName])).toEqual([
      ['pkt_count', 'hash'],
      ['.bss', 'array'],
      ['.data', 'array'],
      ['.rodata', 'array'],
    ]);
    const [, bss, data, rodata] = obj.maps;
    expect(bss?.global).toMatchObject({ section: '.bss', readonly: false, funcPtrs: [] });
    expect(bss?.global?.bytes).toEqual(new Uint8Array(8));
    expect(bss?.global?.vars).toMatchObject([{ name: 'total_packets', offset: 0, size: 8 }]);
    expect(data?.global?.bytes).toEqual(new Uint8Array([4, 0, 0, 0]));
    expect(data?.global?.vars).toMatchObject([{ name: 'sample_every', offset: 0, size: 4 }]);
    expect(rodata).toMatchObject({ keySize: 4, valueSize: 4, maxEntries: 1, flags: 0x480 });
    expect(rodata?.global).toMatchObject({ readonly: true });
    expect(rodata?.global?.bytes).toEqual(new Uint8Array([0xea, 0x05, 0, 0]));
    const maxFrame = rodata?.global?.vars[0];
    expect(maxFrame?.name).toBe('max_frame');
    expect(obj.btf?.resolve(maxFrame?.typeId ?? 0).name).toBe('unsigned int');
    expect(data?.flags).toBe(0x400);
  });

  it('rewrites map references to src 5 and global variables to src 6 and lists them', () => {
    expect(prog.relocs).toEqual([
      { insnIdx: 9, kind: 'map', map: 0 },
      { insnIdx: 20, kind: 'map', map: 0 },
      { insnIdx: 24, kind: 'map_value', map: 1, offset: 0 },
      { insnIdx: start('bucket_of'), kind: 'map_value', map: 3, offset: 0 },
      { insnIdx: start('should_sample') + 1, kind: 'map_value', map: 2, offset: 0 },
    ]);
    for (const r of prog.relocs) {
      const i = prog.insns[r.insnIdx] as Insn;
      expect(i.code).toBe(0x18);
      if (r.kind === 'map') expect([i.src, i.imm]).toEqual([BPF_PSEUDO_MAP_IDX, r.map]);
      if (r.kind === 'map_value') {
        expect([i.src, i.imm]).toEqual([BPF_PSEUDO_MAP_IDX_VALUE, r.map]);
        expect(prog.insns[r.insnIdx + 1]?.imm).toBe(r.offset);
      }
    }
  });

  it('links the static, global and same-section callees with fixed-up call offsets', () => {
    const calls = prog.insns
      .map((i, idx) => ({ i, idx }))
      .filter(({ i }) => i.code === 0x85 && i.src === BPF_PSEUDO_CALL)
      .map(({ idx }) => [idx, targetOf(prog.insns, idx)]);
    expect(calls).toEqual([
      [4, start('bucket_of')],
      [29, start('should_sample')],
      [start('should_sample') + 5, start('mix')],
    ]);
  });

  it('turns the bpf_loop callback address into a pseudo-func lddw pointing at the callback', () => {
    const idx = prog.insns.findIndex((i) => i.code === 0x18 && i.src === BPF_PSEUDO_FUNC);
    expect(idx).toBe(37);
    expect(targetOf(prog.insns, idx)).toBe(start('sum_bytes_cb'));
    expect(prog.insns[idx + 1]?.imm).toBe(0);
    expect(prog.insns[idx + 3]).toMatchObject({ code: 0x85, src: 0, imm: 181 });
  });

  it('carries func_info and line_info with the C source text onto the linked slots', () => {
    expect(prog.funcInfo.map((f) => [f.insnIdx, f.name])).toEqual(
      [...prog.funcNames].map(([idx, name]) => [idx, name]),
    );
    expect(prog.lineInfo.length).toBe(45);
    expect(prog.lineInfo[0]).toEqual({
      insnIdx: 0,
      file: './xdp_count.c',
      line: 68,
      col: 51,
      source: '  const __u8 *data_end = (const __u8 *)(long)ctx->data_end;',
    });
    const mix = prog.lineInfo.find((l) => l.insnIdx === start('mix'));
    expect(mix?.source).toContain('return n ^ (n >> 7);');
    expect(prog.lineInfo.every((l) => l.insnIdx < prog.insns.length)).toBe(true);
  });

  it('loads the -mcpu=v3 build with the same maps and functions', () => {
    const v3 = loadObject(readFixture('xdp/xdp_count.v3.o'));
    expect(v3.maps.map((m) => m.name)).toEqual(obj.maps.map((m) => m.name));
    const p = only(v3.programs);
    expect([...p.funcNames.values()]).toEqual([...prog.funcNames.values()]);
    expect(() => programOf(p)).not.toThrow();
  });
});

describe.each(listObjects('coro'))('%s', (path) => {
  const obj = loadObject(readFixture(path));

  it('rewrites every kfunc call to src 2 with an index into the extern names', () => {
    let kfuncs = 0;
    for (const p of obj.programs) {
      for (const r of p.relocs) {
        if (r.kind !== 'kfunc') continue;
        kfuncs++;
        const i = p.insns[r.insnIdx] as Insn;
        expect(i).toMatchObject({ code: 0x85, src: BPF_PSEUDO_KFUNC_CALL, off: 0 });
        expect(obj.externs[i.imm]).toBe(r.name);
        expect(r.weak).toBe(false);
      }
      expect(
        p.insns.some((i) => i.code === 0x85 && i.src === BPF_PSEUDO_CALL && i.imm === -1),
      ).toBe(false);
    }
    expect(kfuncs).toBeGreaterThan(0);
    expect(obj.externs).toContain('bpf_coro_frame_alloc');
  });

  it('keeps callx and links the coroutine clones whose addresses are taken', () => {
    const all = obj.programs.flatMap((p) => p.insns);
    expect(all.some((i) => i.code === 0x8d)).toBe(true);
    const names = obj.programs.flatMap((p) => [...p.funcNames.values()]);
    expect(names.some((n) => n.endsWith('.resume'))).toBe(true);
    expect(names.some((n) => n.endsWith('.destroy'))).toBe(true);
  });

  it('gives programs that createProgram accepts', () => {
    for (const p of obj.programs) expect(() => programOf(p)).not.toThrow();
  });
});

describe('coro_many_suspends.o jump table', () => {
  const obj = loadObject(readFixture('coro/coro_many_suspends.o'));
  const prog = only(obj.programs);
  const resume = [...prog.funcNames].find(([, n]) => n === '_ZL10many_stepsPv.resume')?.[0] ?? -1;
  const raw = [
    0x38, 0x1f8, 0x150, 0x188, 0xa8, 0x230, 0x2a0, 0x1c0, 0x310, 0x118, 0x2d8, 0x70, 0xe0, 0x268,
  ];

  it('gives the gotox the table entries as absolute slots of the linked program', () => {
    const gotox = prog.insns.findIndex((i) => i.code === 0x0d);
    expect(gotox).toBe(resume + 6);
    const want = raw.map((b) => resume + b / 8).sort((a, b) => a - b);
    expect(prog.gotoxTargets).toEqual(new Map([[gotox, want]]));
    expect(programOf(prog).gotoxTargets.get(gotox)).toEqual(want);
  });

  it('points the table lddw at the program jump-table map holding those slots', () => {
    const jt = obj.maps.findIndex((m) => m.global?.section === '.jumptables');
    const map = obj.maps[jt];
    expect(map).toMatchObject({ name: '.jumptables.on_many', valueSize: 112, flags: 0x80 });
    expect(map?.global?.vars).toEqual([{ name: 'BPF.JT.1.0', offset: 0, size: 112 }]);
    const bytes = map?.global?.bytes ?? new Uint8Array();
    const slots = [...new BigUint64Array(bytes.slice().buffer)].map(Number);
    expect(slots).toEqual(raw.map((b) => resume + b / 8));
    const lddw = prog.insns[resume + 2] as Insn;
    expect([lddw.code, lddw.src, lddw.imm]).toEqual([0x18, BPF_PSEUDO_MAP_IDX_VALUE, jt]);
    expect(prog.relocs).toContainEqual({
      insnIdx: resume + 2,
      kind: 'map_value',
      map: jt,
      offset: 0,
    });
  });

  it('has no gotox and no jump-table map at -mcpu=v3', () => {
    const v3 = loadObject(readFixture('coro/coro_many_suspends.v3.o'));
    expect(only(v3.programs).gotoxTargets.size).toBe(0);
    expect(v3.maps.map((m) => m.name)).toEqual(['.bss']);
  });
});

describe('coro_symmetric.o function pointers in .rodata', () => {
  const obj = loadObject(readFixture('coro/coro_symmetric.o'));
  const prog = only(obj.programs);
  const rodata = only(obj.maps);

  it('records both pointers of the noop coroutine frame with their target slot', () => {
    const noop = [...prog.funcNames].find(([, n]) => n === '__NoopCoro_ResumeDestroy')?.[0];
    expect(noop).toBeDefined();
    expect(prog.insns[noop ?? -1]).toEqual(EXIT);
    expect(rodata.global?.funcPtrs).toEqual([
      {
        offset: 0,
        size: 8,
        func: '__NoopCoro_ResumeDestroy',
        targets: [{ program: 0, insnIdx: noop }],
      },
      {
        offset: 8,
        size: 8,
        func: '__NoopCoro_ResumeDestroy',
        targets: [{ program: 0, insnIdx: noop }],
      },
    ]);
    expect(rodata.global?.bytes).toEqual(new Uint8Array(16));
    expect(rodata.global?.readonly).toBe(true);
  });

  it('refers to .rodata from the linked child coroutine', () => {
    expect(prog.relocs.filter((r) => r.kind === 'map_value')).toHaveLength(2);
  });
});

describe.each(listObjects('bench'))('%s', (path) => {
  const obj = loadObject(readFixture(path));
  const base = path.replace(/\.o$/, '');

  it('loads both entry sections as programs that createProgram accepts', () => {
    expect(obj.programs.map((p) => [p.name, p.section, p.type, p.custom])).toEqual([
      ['bench_xdp', 'xdp', 'xdp', false],
      ['bench_mem', 'mem', 'mem', true],
    ]);
    for (const p of obj.programs) expect(programOf(p).insns).toBe(p.insns);
    expect(obj.maps).toEqual([]);
  });

  it('gives the same instructions as the flattened .bin files', () => {
    for (const p of obj.programs) {
      // the flattened programs live with the benchmark corpus (bench/corpus/bpf/)
      const bin = new URL(
        `../../../../bench/corpus/bpf/${base.replace(/^bench\//, '')}.${p.section}.bin`,
        import.meta.url,
      );
      expect(encodeInsns(p.insns)).toEqual(new Uint8Array(readFileSync(bin)));
    }
  });
});

describe('hand-built objects', () => {
  it('encodes weak kfunc calls and weak ksym lddws with their extern index', () => {
    const obj = loadObject(
      buildElf({
        sections: [
          { name: 'tc', insns: [...LDDW, insn(0x85, 0, 1, 0, -1), insn(0x85, 0, 1, 0, -1), EXIT] },
        ],
        symbols: [
          { name: 'prog', section: 'tc' },
          { name: 'bpf_maybe', bind: STB_WEAK },
          { name: 'bpf_always' },
        ],
        relocs: [
          { section: 'tc', offset: 0, type: R_BPF_64_64, symbol: 'bpf_maybe' },
          { section: 'tc', offset: 16, type: R_BPF_64_32, symbol: 'bpf_always' },
          { section: 'tc', offset: 24, type: R_BPF_64_32, symbol: 'bpf_maybe' },
        ],
      }),
    );
    const p = only(obj.programs);
    expect(p.type).toBe('sched_cls');
    expect(obj.externs).toEqual(['bpf_maybe', 'bpf_always']);
    expect(p.relocs).toEqual([
      { insnIdx: 0, kind: 'ksym', name: 'bpf_maybe', weak: true },
      { insnIdx: 2, kind: 'kfunc', name: 'bpf_always', weak: false },
      { insnIdx: 3, kind: 'kfunc', name: 'bpf_maybe', weak: true },
    ]);
    expect(p.insns.slice(0, 4).map((i) => [i.src, i.imm])).toEqual([
      [BPF_PSEUDO_BTF_ID, 0],
      [0, 0],
      [BPF_PSEUDO_KFUNC_CALL, 1],
      [BPF_PSEUDO_KFUNC_CALL, 0],
    ]);
    expect(() => programOf(p)).not.toThrow();
  });

  it('links callees from other code sections once, in discovery order', () => {
    const obj = loadObject(
      buildElf({
        sections: [
          {
            name: 'kprobe/do_sys_open',
            insns: [insn(0x85, 0, 1, 0, -1), MOV_R0_0, EXIT],
          },
          { name: '.text.helpers', insns: [insn(0x85, 0, 1, 0, -1), EXIT] },
          { name: '.text', insns: [MOV_R0_0, EXIT, MOV_R0_0, EXIT] },
        ],
        symbols: [
          { name: 'probe', section: 'kprobe/do_sys_open' },
          { name: 'helper', section: '.text.helpers' },
          { name: '.text', section: '.text', type: STT_SECTION },
          { name: 'leaf', section: '.text', value: 16 },
        ],
        relocs: [
          { section: 'kprobe/do_sys_open', offset: 0, type: R_BPF_64_32, symbol: 'helper' },
          { section: '.text.helpers', offset: 0, type: R_BPF_64_32, symbol: '.text' },
        ],
      }),
    );
    const p = only(obj.programs);
    expect(p).toMatchObject({ name: 'probe', type: 'kprobe', attachTo: 'do_sys_open' });
    // probe [0,3), helper [3,5), then .text+0 [5,7) (no symbol there: named after the section);
    // `leaf` is never called, so it is not linked.
    expect([...p.funcNames]).toEqual([
      [0, 'probe'],
      [3, 'helper'],
      [5, '.text'],
    ]);
    expect(targetOf(p.insns, 0)).toBe(3);
    expect(targetOf(p.insns, 3)).toBe(5);
  });

  it('treats a code section without FUNC symbols as one program named after it', () => {
    const obj = loadObject(
      buildElf({ sections: [{ name: 'struct_ops/dctcp_init', insns: [MOV_R0_0, EXIT] }] }),
    );
    expect(only(obj.programs)).toMatchObject({
      name: 'struct_ops/dctcp_init',
      type: 'struct_ops',
      attachTo: 'dctcp_init',
    });
  });

  it('reads the license and version sections', () => {
    const obj = loadObject(
      buildElf({
        sections: [
          { name: 'socket', insns: [MOV_R0_0, EXIT] },
          { name: 'license', data: new TextEncoder().encode('Dual MIT/GPL\0') },
          { name: 'version', data: new Uint8Array([0x12, 0x34, 0x06, 0x00]) },
        ],
      }),
    );
    expect(obj.license).toBe('Dual MIT/GPL');
    expect(obj.version).toBe(0x063412);
  });

  it('rejects a libbpf section whose kernel program type the engine does not model', () => {
    expectLoaderError(
      () => loadObject(buildElf({ sections: [{ name: 'sk_msg', insns: [EXIT] }] })),
      {
        name: 'ElfError',
        section: 'sk_msg',
        reason: /program type 'sk_msg' is not supported/,
      },
    );
  });

  it('rejects a relocation against an instruction that is neither a call nor an lddw', () => {
    const bytes = buildElf({
      sections: [{ name: 'xdp', insns: [MOV_R0_0, EXIT] }],
      symbols: [{ name: 'p', section: 'xdp' }, { name: 'ext' }],
      relocs: [{ section: 'xdp', offset: 0, type: R_BPF_64_64, symbol: 'ext' }],
    });
    expectLoaderError(() => loadObject(bytes), {
      name: 'ElfError',
      section: '.relxdp',
      reason: /relocation at 0x0: insn 0 is not a call or lddw/,
    });
  });

  it('rejects a call whose target lies outside its section', () => {
    const bytes = buildElf({
      sections: [{ name: 'xdp', insns: [insn(0x85, 0, 1, 0, 40), EXIT] }],
      symbols: [{ name: 'p', section: 'xdp' }],
    });
    expectLoaderError(() => loadObject(bytes), {
      name: 'ElfError',
      section: 'xdp',
      reason: /call to insn 41 outside the section 'xdp'/,
    });
  });

  it('rejects an lddw against a section that is neither code, a map nor global data', () => {
    const bytes = buildElf({
      sections: [
        { name: 'xdp', insns: [...LDDW, EXIT] },
        { name: 'license', data: new TextEncoder().encode('GPL\0') },
      ],
      symbols: [
        { name: 'p', section: 'xdp' },
        { name: 'LICENSE', section: 'license' },
      ],
      relocs: [{ section: 'xdp', offset: 0, type: R_BPF_64_64, symbol: 'LICENSE' }],
    });
    expectLoaderError(() => loadObject(bytes), {
      name: 'ElfError',
      section: '.relxdp',
      reason: /lddw against 'LICENSE', which is not code, a map or global data/,
    });
  });

  it('rejects a function pointer in data that is not a function start', () => {
    const bytes = buildElf({
      sections: [
        { name: 'xdp', insns: [...LDDW, EXIT] },
        { name: '.text', insns: [MOV_R0_0, EXIT] },
        { name: '.data', data: new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0]) },
      ],
      symbols: [
        { name: 'p', section: 'xdp' },
        { name: 'f', section: '.text' },
        { name: 'ptr', section: '.data', size: 8 },
      ],
      relocs: [{ section: '.data', offset: 0, type: R_BPF_64_ABS64, symbol: 'f' }],
    });
    expectLoaderError(() => loadObject(bytes), {
      name: 'ElfError',
      section: '.rel.data',
      reason: /function pointer to 0x8 of \.text is not a function start/,
    });
  });

  it('rejects a jump table entry outside the function that loads the table', () => {
    const code = [...LDDW, insn(0x79, 2, 1, 0, 0), insn(0x0d, 2, 0, 0, 0), EXIT];
    const bytes = buildElf({
      sections: [
        { name: 'xdp', insns: code },
        { name: '.jumptables', data: new Uint8Array([0x80, 0, 0, 0, 0, 0, 0, 0]), flags: 0 },
      ],
      symbols: [
        { name: 'p', section: 'xdp' },
        { name: 'BPF.JT.0.0', section: '.jumptables', size: 8 },
      ],
      relocs: [{ section: 'xdp', offset: 0, type: R_BPF_64_64, symbol: 'BPF.JT.0.0' }],
    });
    expectLoaderError(() => loadObject(bytes), {
      name: 'ElfError',
      section: '.jumptables',
      reason: /entry 0x80 is not an insn of function 'p'/,
    });
  });
});

/** Makes sure the model is plain data: every program and map survives structuredClone. */
describe('the object model', () => {
  it('is plain data the runtime can copy', () => {
    const obj: BpfObject = loadObject(readFixture('coro/coro_many_suspends.g.o'));
    const rest = { ...obj, btf: undefined };
    expect(structuredClone(rest)).toEqual(rest);
  });
});
