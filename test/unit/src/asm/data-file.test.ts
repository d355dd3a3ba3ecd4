/**
 * Unit tests of src/asm/data-file.ts: the README's parsing rules (comments first, sections by
 * substring and in any order, blank lines), skips, and errors with their line and column.
 */

import { describe, expect, it } from 'vitest';
import { assemble } from '../../../../src/asm/assembler.js';
import { parseDataFile } from '../../../../src/asm/data-file.js';
import { AsmError } from '../../../../src/errors.js';

describe('parseDataFile', () => {
  it('parses asm, mem and result sections', () => {
    const f = parseDataFile(
      [
        '# Copyright (c) somebody',
        '-- asm',
        'ldxb %r0, [%r1+1] # second byte',
        '',
        'exit',
        '-- mem',
        'aa bb',
        '11 22',
        '-- result',
        '0xBB',
      ].join('\n'),
      'x.data',
    );
    expect(f.fileName).toBe('x.data');
    expect(f.mem).toEqual(new Uint8Array([0xaa, 0xbb, 0x11, 0x22]));
    expect(f.result).toBe(0xbbn);
    expect(f.skip).toBeUndefined();
    expect(f.error).toBeUndefined();
    expect(f.raw).toBeUndefined();
    expect(assemble(f.asm ?? '')).toEqual(assemble('ldxb %r0, [%r1+1]\nexit'));
  });

  it('keeps the file line numbers in the asm text so assembler errors point into the file', () => {
    const f = parseDataFile('# header\n-- asm\nmov %r0, 1\n  bogus %r0\n-- result\n0x1\n');
    expect(f.asm?.split('\n')[3]).toBe('  bogus %r0');
    try {
      assemble(f.asm ?? '');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AsmError);
      expect([(e as AsmError).line, (e as AsmError).column]).toEqual([4, 3]);
    }
  });

  it('accepts sections in any order, as ldxb-all.data does', () => {
    const f = parseDataFile('-- result\n0x1\n-- mem\n01\n-- asm\nexit\n');
    expect(f.result).toBe(1n);
    expect(f.mem).toEqual(new Uint8Array([1]));
    expect(f.asm?.trim()).toBe('exit');
  });

  it('reads a decimal result unless the text contains 0x', () => {
    expect(parseDataFile('-- asm\nexit\n-- result\n10\n').result).toBe(10n);
    expect(parseDataFile('-- asm\nexit\n-- result\n0x10\n').result).toBe(16n);
    expect(parseDataFile('-- asm\nexit\n-- result\n0xffffffffffffffff\n').result).toBe(
      2n ** 64n - 1n,
    );
    expect(parseDataFile('-- asm\nexit\n-- result\n-1\n').result).toBe(2n ** 64n - 1n);
  });

  it('strips comments before looking for a directive', () => {
    const f = parseDataFile('-- asm\nexit # -- mem\n-- result # -- raw\n0x2 # the answer\n');
    expect(f.result).toBe(2n);
    expect(f.mem).toEqual(new Uint8Array(0));
  });

  it('parses raw slots as little-endian u64 values', () => {
    const f = parseDataFile(
      '-- asm\nlddw %r0, 0x1122334455667788\nexit\n-- raw\n0x5566778800000018\n0x1122334400000000 149\n-- result\n0x1122334455667788\n',
    );
    expect(f.raw).toEqual(assemble('lddw %r0, 0x1122334455667788\nexit'));
  });

  it('ignores the c and no register offset sections', () => {
    const f = parseDataFile(
      '-- c\nint main() { return 0; }\n-- asm\nexit\n-- result\n0\n-- no register offset\ncall instruction\n',
    );
    expect(f.skip).toBeUndefined();
    expect(f.asm?.trim()).toBe('exit');
    expect(f.result).toBe(0n);
  });

  it('keeps the last line of an error section with trailing whitespace trimmed', () => {
    const f = parseDataFile('-- asm\nexit\n-- error\nFailed to load program:  \n');
    expect(f.error).toBe('Failed to load program:');
    expect(f.result).toBeUndefined();
    expect(f.skip).toBeUndefined();
  });

  it('handles CRLF line endings', () => {
    const f = parseDataFile('-- asm\r\nmov %r0, 3\r\nexit\r\n-- result\r\n0x3\r\n');
    expect(f.result).toBe(3n);
    expect(assemble(f.asm ?? '')).toHaveLength(2);
  });

  it('asks to skip a file with an unknown directive', () => {
    const f = parseDataFile('-- asm\nexit\n-- frobnicate\nxyz\n-- result\n0x1\n');
    expect(f.skip).toBe("unknown directive '-- frobnicate' at line 3");
    expect(f.asm?.trim()).toBe('exit');
  });

  it('asks to skip a file without a result or without instructions', () => {
    expect(parseDataFile('-- asm\nexit\n').skip).toBe('no result or error');
    expect(parseDataFile('-- result\n0x1\n').skip).toBe('no instructions');
  });

  it.each([
    ['-- asm\nexit\n-- mem\n00 1g\n-- result\n0\n', 4, 4, "mem: invalid byte '1g'"],
    ['-- asm\nexit\n-- mem\n\n 100\n-- result\n0\n', 5, 2, "mem: invalid byte '100'"],
    ['-- asm\nexit\n-- result\n  0xzz\n', 4, 3, "result: invalid number '0xzz'"],
    [
      '-- asm\nexit\n-- result\n0x10000000000000000\n',
      4,
      1,
      "result: invalid number '0x10000000000000000'",
    ],
    [
      '-- asm\nexit\n-- result\n18446744073709551616\n',
      4,
      1,
      'result: 18446744073709551616 out of range',
    ],
    ['-- raw\n0x95 -1\n-- result\n0\n', 2, 6, "raw: invalid slot '-1'"],
  ] as const)('rejects bad content in %j at %i:%i', (text, line, column, reason) => {
    try {
      parseDataFile(text);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(AsmError);
      const err = e as AsmError;
      expect([err.line, err.column, err.reason]).toEqual([line, column, reason]);
    }
  });
});
