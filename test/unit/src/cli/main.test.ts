/**
 * The command line, run in-process: outputs, exit statuses, usage errors.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { cli } from '../../../helpers/cli.js';
import { conformanceDir } from '../../../helpers/conformance.js';

const dir = mkdtempSync(join(tmpdir(), 'bpfwasm-cli-'));
const sum = join(dir, 'sum.s');
writeFileSync(
  sum,
  'mov %r0, 0\nloop:\njeq %r2, 0, exit\nldxb %r3, [%r1]\nadd %r0, %r3\nadd %r1, 1\nsub %r2, 1\nja loop\nexit\n',
);

afterEach(() => vi.restoreAllMocks());

describe('bpfwasm asm and disasm', () => {
  it('assembles to raw bytes that disassemble back to the same program', async () => {
    const bin = join(dir, 'sum.bin');
    expect((await cli('asm', sum, '-o', bin)).code).toBe(0);
    expect(readFileSync(bin).length).toBe(8 * 8);
    const d = await cli('disasm', bin);
    expect(d.code).toBe(0);
    expect(d.out).toContain('ldxb %r3, [%r1]');
    const k = await cli('disasm', bin, '--syntax', 'kernel');
    expect(k.out).toContain('(71) r3 = *(u8 *)(r1 +0)');
  });

  it('names the line and column of an assembly error and exits 1', async () => {
    const bad = join(dir, 'bad.s');
    writeFileSync(bad, 'mov %r0, 1\nadd %r11, 1\n');
    const r = await cli('asm', bad, '-o', join(dir, 'bad.bin'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/AsmError: asm: 2:\d+:/);
  });
});

describe('bpfwasm run', () => {
  it('prints r0 in hex and decimal on both engines', async () => {
    for (const engine of ['jit', 'interp']) {
      const r = await cli('run', sum, '--mem', '01 02 03 0a', '--engine', engine);
      expect(r.code).toBe(0);
      expect(r.out).toBe('r0 = 0x10 (16)\n');
    }
  });

  it('prints one JSON object with the median ns per run', async () => {
    const r = await cli('run', sum, '--mem', 'ff', '--repeat', '2000', '--json');
    const j = JSON.parse(r.out) as { r0: string; ns_per_run: number; engine: string };
    expect(j.r0).toBe('255');
    expect(j.engine).toBe('jit');
    expect(j.ns_per_run).toBeGreaterThan(0);
  });

  it('reads the input from a file', async () => {
    const mem = join(dir, 'mem.bin');
    writeFileSync(mem, Buffer.from([5, 6]));
    expect((await cli('run', sum, '--mem-file', mem, '--json')).out).toContain('"r0":"11"');
  });

  it('reports a run-time fault with its insn index and exits 1', async () => {
    const f = join(dir, 'null.s');
    writeFileSync(f, 'mov %r1, 0\nldxdw %r0, [%r1]\nexit\n');
    // Unverified: the verifier would refuse the NULL dereference before it runs.
    const r = await cli('run', f, '--no-verify');
    expect(r.code).toBe(1);
    expect(r.err).toContain('ExecError: insn 1: mem');
  });
});

describe('bpfwasm jit --wat', () => {
  it('prints the module with each BPF instruction beside its code', async () => {
    const r = await cli('jit', sum, '--wat');
    expect(r.code).toBe(0);
    expect(r.out).toContain('(module');
    expect(r.out).toContain(';; insn 2: (71) r3 = *(u8 *)(r1 +0)');
  });
});

describe('usage errors', () => {
  it.each([
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['run'], /expected exactly one program file/],
    [['run', sum, '--engine', 'llvm'], /--engine must be jit or interp/],
    [['run', sum, '--bogus'], /Unknown option '--bogus'/],
    [['asm', sum], /asm needs -o/],
    [['run', join(dir, 'missing.s')], /cannot read/],
    [['run', sum, '--mem', 'xyz'], /bad hex bytes/],
  ])('exits 2 with a message for %j', async (args, msg) => {
    const r = await cli(...args);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
  });

  it('prints help for every command and exits 0', async () => {
    for (const c of ['asm', 'disasm', 'run', 'jit', 'conformance']) {
      const r = await cli(c, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`usage: bpfwasm ${c}`);
    }
    expect((await cli('--help')).out).toContain('commands:');
  });
});

const xdpCount = fileURLToPath(new URL('../../../fixtures/elf/xdp/xdp_count.o', import.meta.url));
const pkt100 = join(dir, 'pkt100.bin');
writeFileSync(
  pkt100,
  Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 8, 0]), Buffer.alloc(86)]),
);

describe('bpfwasm with ELF objects', () => {
  it('runs a program of an object and dumps its maps, on both engines', async () => {
    for (const engine of ['jit', 'interp']) {
      const r = await cli(
        'run',
        xdpCount,
        '--program',
        'xdp_count',
        '--packet',
        pkt100,
        '--engine',
        engine,
        '--json',
        '--dump-maps',
      );
      expect(r.code).toBe(0);
      const j = JSON.parse(r.out) as { r0: string; maps: Record<string, [string, string][]> };
      expect(j.r0).toBe('2');
      expect(j.maps['pkt_count']).toEqual([['01000000', '0100000000000000']]);
      expect(j.maps['.bss']).toEqual([['00000000', '0100000000000000']]);
    }
  });

  it('test-runs with repeats, initial globals and map updates, printing the kernel-style JSON', async () => {
    const r = await cli(
      'test-run',
      xdpCount,
      '--program',
      'xdp_count',
      '--data-in',
      pkt100,
      '--repeat',
      '2',
      '--global',
      '.rodata=32000000',
      '--map-update',
      'pkt_count:ff000000:0a00000000000000',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j['retval']).toBe(2);
    expect(j['data_size_out']).toBe(100);
    expect(typeof j['duration_ns']).toBe('number');
    // max_frame = 50: both runs land in bucket 255, which the update preset to 10
    expect((j['maps'] as Record<string, unknown>)['pkt_count']).toEqual([
      ['ff000000', '0c00000000000000'],
    ]);
  });

  it('refuses a packet shorter than an Ethernet header with the kernel errno', async () => {
    const r = await cli(
      'test-run',
      xdpCount,
      '--program',
      'xdp_count',
      '--data-in',
      '0102',
      '--json',
    );
    expect(r.code).toBe(1);
    expect(r.err).toContain('TestRunError');
    expect(r.err).toContain('EINVAL');
  });

  it('lists the maps and disassembles with source lines and relocations', async () => {
    expect((await cli('maps', xdpCount)).out).toContain(
      'pkt_count  hash  key 4  value 8  max_entries 256',
    );
    const d = await cli('disasm', xdpCount, '--syntax', 'kernel');
    expect(d.out).toContain('section xdp: program xdp_count (type xdp)');
    expect(d.out).toMatch(/; map pkt_count/);
    expect(d.out).toContain('xdp_count.c:');
  });

  it('names the program it cannot find', async () => {
    const r = await cli('run', xdpCount, '--program', 'nope');
    expect(r.code).toBe(2);
    expect(r.err).toContain("no program 'nope'");
  });
});

describe.skipIf(conformanceDir() === undefined)('bpfwasm conformance', () => {
  it('prints "313 passed, 0 failed" for the interpreter', async () => {
    const r = await cli('conformance', conformanceDir() as string, '--engine', 'interp');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n').pop()).toBe('313 passed, 0 failed');
  });
});

describe('bpfwasm run --repeat with workers', () => {
  it('also reports runs per second without workers', async () => {
    const r = await cli('run', sum, '--mem', 'ff', '--repeat', '2000', '--json');
    const j = JSON.parse(r.out) as { ns_per_run: number; runs_per_sec: number };
    expect(j.runs_per_sec).toBe(Math.round(1e9 / j.ns_per_run));
    expect(Object.keys(j)).toEqual(['r0', 'ns_per_run', 'runs_per_sec', 'engine']);
  });

  it('spreads the runs of a mem program over the workers', async () => {
    const r = await cli(
      'run',
      sum,
      '--mem',
      '01 02 ff',
      '--repeat',
      '5001',
      '--workers',
      '2',
      '--json',
    );
    expect([r.code, r.err]).toEqual([0, '']);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(Object.keys(j)).toEqual(['r0', 'ns_per_run', 'runs_per_sec', 'engine', 'workers']);
    expect(j).toMatchObject({ r0: '258', engine: 'jit', workers: 2 });
    expect(j['ns_per_run']).toBeGreaterThan(0);
    expect(j['runs_per_sec']).toBe(Math.round(1e9 / (j['ns_per_run'] as number)));
  });

  it('runs the xdp program of an object on workers with the same verdict as on the host', async () => {
    const p2 = fileURLToPath(new URL('../../../fixtures/elf/bench/p2_parse.o', import.meta.url));
    const args = ['run', p2, '--program', 'bench_xdp', '--packet', pkt100, '--json'];
    const host = JSON.parse((await cli(...args)).out) as Record<string, unknown>;
    const r = await cli(...args, '--repeat', '3000', '--workers', '2');
    expect([r.code, r.err]).toEqual([0, '']);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({ r0: host['r0'], workers: 2 });
    expect(host['runs_per_sec']).toBeNull();
    expect(j['runs_per_sec']).toBeGreaterThan(0);
  });

  it('refuses a bad worker count', async () => {
    const r = await cli('run', sum, '--repeat', '10', '--workers', '0');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/--workers takes a whole number of at least 1/);
  });
});
