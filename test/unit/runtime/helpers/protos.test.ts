/**
 * src/helper-protos.ts against the kernel: every helper id and name matches uapi
 * `___BPF_FUNC_MAPPER` (bpf-func-mapper.txt), every built-in helper of a Vm has a prototype of
 * the same name, and the prototypes are well formed.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BPF_FUNC_NAMES,
  FUNC_PROTO_LIST,
  funcProto,
  helperName,
  parseArgType,
} from '../../../../src/helper-protos.js';
import { disassemble } from '../../../../src/asm/disassembler.js';
import { assembleProgram } from '../../../../src/asm/assembler.js';
import { closeVms } from './harness.js';
import { makeTestVm } from '../../../helpers/engines.js';

const MAPPER = readFileSync(new URL('./bpf-func-mapper.txt', import.meta.url), 'utf8');
const KERNEL: ReadonlyMap<number, string> = new Map(
  [...MAPPER.matchAll(/FN\((\w+), (\d+), ##ctx\)/g)].map((m) => [Number(m[2]), m[1] as string]),
);

afterEach(closeVms);

describe('helper prototypes', () => {
  it('name every kernel helper id 0..211 as uapi ___BPF_FUNC_MAPPER does', () => {
    expect(KERNEL.size).toBe(212);
    expect(BPF_FUNC_NAMES.length).toBe(KERNEL.size);
    BPF_FUNC_NAMES.forEach((n, id) => expect([id, n]).toEqual([id, KERNEL.get(id)]));
  });

  it('give each prototype the kernel id and bpf_-prefixed name', () => {
    for (const p of FUNC_PROTO_LIST) {
      expect([p.id, p.name]).toEqual([p.id, `bpf_${KERNEL.get(p.id) ?? '?'}`]);
      expect(funcProto(p.id)).toBe(p);
    }
  });

  it('cover every helper id issue #4 names', () => {
    const named = [
      1, 2, 3, 5, 6, 7, 8, 12, 14, 15, 16, 28, 42, 44, 45, 54, 65, 87, 88, 89, 93, 94, 105, 106,
      112, 113, 114, 115, 125, 130, 131, 132, 133, 134, 164, 165, 169, 170, 171, 172, 181, 182,
    ];
    expect(named.filter((id) => funcProto(id) === undefined)).toEqual([]);
  });

  it('are sorted by id, with at most five arguments', () => {
    const ids = FUNC_PROTO_LIST.map((p) => p.id);
    expect(ids).toEqual([...new Set(ids)].sort((a, b) => a - b));
    for (const p of FUNC_PROTO_LIST) expect(p.args.length).toBeLessThanOrEqual(5);
  });

  it('give acquire helpers a NULL fast path and keep release, lock and iterator ones', () => {
    for (const p of FUNC_PROTO_LIST) {
      if (p.helperClass === 'acquire') expect([p.name, p.fastPathRet]).toEqual([p.name, 'null']);
      if (p.helperClass === 'release' || p.helperClass === 'lock' || p.helperClass === 'iterator')
        expect([p.name, p.fastPathRet]).toEqual([p.name, undefined]);
      if (p.ret.endsWith('_OR_NULL')) expect([p.name, p.helperClass]).toEqual([p.name, 'acquire']);
      if (p.args.includes('ARG_PTR_TO_FUNC') && p.name !== 'bpf_timer_set_callback')
        expect([p.name, p.helperClass]).toEqual([p.name, 'iterator']);
    }
    expect(funcProto(1)?.fastPathRet).toBe('null');
    expect(funcProto(2)?.fastPathRet).toBe(BigInt.asUintN(64, -16n));
    expect(funcProto(113)?.fastPathRet).toBe(BigInt.asUintN(64, -14n));
  });

  it('spell argument flags the kernel way', () => {
    expect(funcProto(6)?.args).toEqual(['ARG_PTR_TO_MEM | MEM_RDONLY', 'ARG_CONST_SIZE']);
    expect(parseArgType('ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY')).toEqual({
      base: 'ARG_PTR_TO_MEM',
      flags: ['PTR_MAYBE_NULL', 'MEM_RDONLY'],
    });
    expect(funcProto(131)?.ret).toBe('RET_PTR_TO_RINGBUF_MEM_OR_NULL');
    expect(funcProto(181)?.args).toEqual([
      'ARG_ANYTHING',
      'ARG_PTR_TO_FUNC',
      'ARG_PTR_TO_STACK_OR_NULL',
      'ARG_ANYTHING',
    ]);
  });

  it('exist for every helper a Vm registers, under the same name', () => {
    const vm = makeTestVm();
    try {
      const missing = vm.helpers
        .all()
        .filter((h) => funcProto(h.id)?.name !== h.name)
        .map((h) => `${h.name}#${h.id}`);
      expect(missing).toEqual([]);
      const implemented = [
        1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 28, 42, 44, 45, 54, 65, 67, 93, 94, 105, 106, 112, 113,
        114, 115, 125, 164, 165, 169, 170, 171, 172, 181, 182,
      ];
      expect(implemented.filter((id) => !vm.helpers.has(id))).toEqual([]);
    } finally {
      vm.close();
    }
  });
});

describe('helperName', () => {
  it('gives the kernel name of known ids and undefined otherwise', () => {
    expect(helperName(1)).toBe('bpf_map_lookup_elem');
    expect(helperName(181)).toBe('bpf_loop');
    expect(helperName(211)).toBe('bpf_cgrp_storage_delete');
    expect(helperName(0)).toBeUndefined();
    expect(helperName(212)).toBeUndefined();
    expect(helperName(-1)).toBeUndefined();
    expect(helperName(1.5)).toBeUndefined();
  });

  it('lets the disassembler print kernel syntax', () => {
    const prog = assembleProgram('call 181\ncall 6\ncall 999\nexit');
    const text = disassemble(prog.insns, { syntax: 'kernel', helperName });
    expect(text).toContain('call bpf_loop#181');
    expect(text).toContain('call bpf_trace_printk#6');
    expect(text).toContain('call unknown#999');
  });
});
