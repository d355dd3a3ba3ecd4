/**
 * Map access flags (kernel `check_map_access_type`): a map created with BPF_F_RDONLY_PROG
 * (libbpf's `.rodata`) may be read but not written by programs, one with BPF_F_WRONLY_PROG
 * written but not read; the Vm passes the flags of the maps a program loads to the verifier.
 */
import { describe, expect, it } from 'vitest';
import { assembleProgram } from '../../src/asm/assembler.js';
import { BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG } from '../../runtime/maps/map-type.js';
import { makeTestVm } from '../helpers/engines.js';

/** Looks key 0 up in map fd 1 and applies `use` to the value in r0. */
const LOOKUP = (use: string): string => `stw [%r10-4], 0
  mov %r2, %r10
  add %r2, -4
  lddw %r1, map_fd 1
  call 1
  jeq %r0, 0, +1
  ${use}
  mov %r0, 0
  exit`;

function verdict(flags: number, use: string): string {
  const vm = makeTestVm();
  try {
    vm.createMap({ name: 'm', type: 2, keySize: 4, valueSize: 8, maxEntries: 1, flags });
    vm.verify(assembleProgram(LOOKUP(use), { type: 'xdp' }));
    return 'accept';
  } catch (e) {
    return (e as { reason?: string }).reason ?? String(e);
  } finally {
    void vm.close();
  }
}

describe('map access flags', () => {
  it('lets programs read but not write a BPF_F_RDONLY_PROG map', () => {
    expect(verdict(BPF_F_RDONLY_PROG, 'ldxdw %r3, [%r0+0]')).toBe('accept');
    expect(verdict(BPF_F_RDONLY_PROG, 'stdw [%r0+0], 1')).toBe(
      'write into map forbidden, value_size=8 off=0 size=8',
    );
  });

  it('lets programs write but not read a BPF_F_WRONLY_PROG map', () => {
    expect(verdict(BPF_F_WRONLY_PROG, 'stdw [%r0+0], 1')).toBe('accept');
    expect(verdict(BPF_F_WRONLY_PROG, 'ldxdw %r3, [%r0+0]')).toBe(
      'read from map forbidden, value_size=8 off=0 size=8',
    );
  });

  it('allows both without flags', () => {
    expect(verdict(0, 'stdw [%r0+0], 1')).toBe('accept');
  });
});
