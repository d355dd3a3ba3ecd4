/**
 * `bpfwasm verify` (issue #5 §8), run in-process: verdicts in text and JSON, the log levels,
 * raw bytecode with `--map fd=N`, an ELF object, usage errors; and `--no-verify` of `run`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cli } from '../../../helpers/cli.js';
import { BPF_FUNC_map_lookup_elem } from '../../../../src/helper-protos.js';
import {
  BPF_ALU64_IMM,
  BPF_EMIT_CALL,
  BPF_EXIT_INSN,
  BPF_JMP_IMM,
  BPF_LD_MAP_FD,
  BPF_MOV64_IMM,
  BPF_MOV64_REG,
  BPF_ST_MEM,
} from '../../../../src/isa/build.js';
import { encodeInsns } from '../../../../src/isa/insn.js';
import { BPF_ADD, BPF_DW, BPF_JEQ, BPF_W } from '../../../../src/isa/opcodes.js';

afterEach(() => vi.restoreAllMocks());

const dir = mkdtempSync(join(tmpdir(), 'bpfwasm-verify-'));
const ok = join(dir, 'ok.s');
writeFileSync(ok, 'mov %r0, 0\nexit\n');
/** Reads R2, which an XDP program does not get initialised. */
const uninit = join(dir, 'uninit.s');
writeFileSync(uninit, 'mov %r0, %r2\nexit\n');
/** key = 0; v = bpf_map_lookup_elem(fd 5, &key); if (v) *v = 1; return 0 */
const lookup = join(dir, 'lookup.bin');
writeFileSync(
  lookup,
  encodeInsns([
    BPF_ST_MEM(BPF_W, 10, -4, 0),
    BPF_MOV64_REG(2, 10),
    BPF_ALU64_IMM(BPF_ADD, 2, -4),
    ...BPF_LD_MAP_FD(1, 5),
    BPF_EMIT_CALL(BPF_FUNC_map_lookup_elem),
    BPF_JMP_IMM(BPF_JEQ, 0, 0, 1),
    BPF_ST_MEM(BPF_DW, 0, 0, 1),
    BPF_MOV64_IMM(0, 0),
    BPF_EXIT_INSN(),
  ]),
);
const ARRAY_FD5 = 'fd=5,type=array,key=4,value=8,max=4';
const xdpCount = fileURLToPath(
  new URL('../../../../examples/xdp_count/build/xdp_count.o', import.meta.url),
);

describe('bpfwasm verify', () => {
  it('accepts mov r0 0; exit and prints the JSON verdict', async () => {
    const r = await cli('verify', ok, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      verdict: 'accept',
      insn: null,
      message: '',
      processed_insns: 2,
    });
  });

  it('prints the verdict line with the insn count', async () => {
    const r = await cli('verify', ok);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^verified: accept \(2 insns processed, [\d.]+ ms\)\n$/);
  });

  it('rejects a read of an uninitialised register, naming the insn, and exits 1', async () => {
    const r = await cli('verify', uninit, '--type', 'xdp');
    expect(r.code).toBe(1);
    expect(r.out).toContain('rejected at insn 0: R2 !read_ok');
    expect(r.out).toContain('--log-level 1');
    const j = await cli('verify', uninit, '--type', 'xdp', '--json');
    expect(j.code).toBe(1);
    const v = JSON.parse(j.out) as Record<string, unknown>;
    expect(v['verdict']).toBe('reject');
    expect(v['insn']).toBe(0);
    expect(v['message']).toContain('R2 !read_ok');
    expect(v['log']).toBeUndefined();
  });

  it('prints the kernel-format log of a rejection with --log-level 1', async () => {
    const r = await cli('verify', uninit, '--type', 'xdp', '--log-level', '1');
    expect(r.code).toBe(1);
    expect(r.out).toContain('0: (bf) r0 = r2');
    expect(r.out).toContain('rejected at insn 0: R2 !read_ok');
    const j = await cli('verify', uninit, '--type', 'xdp', '--log-level', '2', '--json');
    expect((JSON.parse(j.out) as { log: string }).log).toContain('R2 !read_ok');
  });

  it('creates --map fd=5 for the lddw of fd 5 and accepts a null-checked lookup', async () => {
    const r = await cli('verify', lookup, '--type', 'xdp', '--map', ARRAY_FD5, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ verdict: 'accept', insn: null });
  });

  it('rejects the lddw of fd 5 without --map and says how to create the map', async () => {
    const r = await cli('verify', lookup, '--type', 'xdp');
    expect(r.code).toBe(1);
    expect(r.out).toContain('rejected at insn 3: fd 5 is not pointing to valid bpf_map');
    expect(r.out).toContain('hint: create it with --map fd=5,');
    const j = await cli(
      'verify',
      lookup,
      '--type',
      'xdp',
      '--map',
      'fd=4,type=hash,key=4,value=8,max=4',
      '--json',
    );
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out)).toEqual({
      verdict: 'reject',
      insn: 3,
      message: 'fd 5 is not pointing to valid bpf_map',
      processed_insns: null,
    });
  });

  it('verifies the bundled xdp_count example against its own maps', async () => {
    const r = await cli('verify', xdpCount);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^xdp_count: verified: accept \(\d+ insns processed/m);
    const j = await cli('verify', xdpCount, '--program', 'xdp_count', '--json');
    expect(j.code).toBe(0);
    expect(JSON.parse(j.out)).toMatchObject({ verdict: 'accept', insn: null });
  });

  it('prints help and exits 0', async () => {
    const r = await cli('verify', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('usage: bpfwasm verify');
  });
});

describe('bpfwasm verify usage errors', () => {
  it.each([
    [['verify'], /expected exactly one program file/],
    [['verify', join(dir, 'missing.s')], /cannot read/],
    [['verify', ok, '--log-level', '3'], /--log-level must be 1 or 2/],
    [['verify', ok, '--type', 'kernel'], /--type must be one of/],
    [['verify', lookup, '--map', 'type=array,key=4,value=8,max=4'], /has no fd=/],
    [
      ['verify', lookup, '--map', 'fd=5,type=arrey,key=4,value=8,max=4'],
      /unknown map type 'arrey'/,
    ],
    [
      ['verify', lookup, '--map', 'fd=5,type=array,key=four,value=8,max=4'],
      /key takes a whole number/,
    ],
    [['verify', lookup, '--map', 'fd=5,type=array,key=4,value=8'], /has no max=/],
    [
      ['verify', lookup, '--map', 'fd=5,type=array,key=4,value=8,max=4,size=2'],
      /unknown field 'size'/,
    ],
    [['verify', lookup, '--map', 'fd=5,array'], /--map takes fd=N,type=T/],
    [['verify', lookup, '--map', ARRAY_FD5, '--map', ARRAY_FD5], /fd=5 is given twice/],
    [['verify', lookup, '--map', 'fd=5,type=array,key=8,value=8,max=4'], /--map fd=5: /],
    [['verify', ok, '--program', 'xdp_count'], /--program is for ELF objects/],
    [['verify', xdpCount, '--map', ARRAY_FD5], /--map is for raw bytecode/],
    [['verify', xdpCount, '--program', 'nope'], /no program 'nope' in the object/],
  ])('exits 2 with a message for %j', async (args, msg) => {
    const r = await cli(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it('takes kernel map type names, their BPF_MAP_TYPE_ spelling and ids', async () => {
    for (const type of ['array', 'BPF_MAP_TYPE_ARRAY', '2']) {
      const r = await cli('verify', lookup, '--map', `fd=5,type=${type},key=4,value=8,max=4`);
      expect(r.code).toBe(0);
    }
  });
});

describe('bpfwasm run --no-verify', () => {
  const nullDeref = join(dir, 'null.s');
  writeFileSync(nullDeref, 'mov %r1, 0\nldxdw %r0, [%r1]\nexit\n');

  it('runs an unverified program, which faults at run time', async () => {
    const r = await cli('run', nullDeref, '--no-verify');
    expect(r.code).toBe(1);
    expect(r.err).toContain('ExecError: insn 1: mem');
  });

  it('verifies by default and refuses what the verifier rejects', async () => {
    const r = await cli('run', nullDeref);
    expect(r.code).toBe(1);
    expect(r.err).toContain("VerifierError: insn 1: R1 invalid mem access 'scalar'");
    expect(r.err).toContain('--no-verify');
  });

  it('test-runs an object unverified', async () => {
    const r = await cli(
      'test-run',
      xdpCount,
      '--program',
      'xdp_count',
      '--data-in',
      '00'.repeat(64),
      '--no-verify',
      '--json',
    );
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { retval: number }).retval).toBe(2);
  });
});
