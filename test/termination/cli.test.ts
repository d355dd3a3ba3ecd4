/**
 * `bpfwasm run ... --deadline-ns N --json` (issue 8 §5): "terminated" and the resources
 * counted after the run, for a program that stops at its deadline and one that finishes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { NESTED_LOOPS } from './programs.js';

const dir = mkdtempSync(join(tmpdir(), 'bpfwasm-term-'));
const nested = join(dir, 'nested.s');
writeFileSync(nested, NESTED_LOOPS);
const quick = join(dir, 'quick.s');
writeFileSync(quick, 'mov %r0, 5\nexit\n');

const NONE = { live_objects: 0, live_bytes: 0, reservations: 0, locks_held: 0 };

describe('bpfwasm run --deadline-ns', () => {
  it('reports a run stopped at its deadline as terminated, with nothing leaked', async () => {
    const r = await cli('run', nested, '--deadline-ns', '20000000', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({
      r0: null,
      ns_per_run: null,
      runs_per_sec: null,
      engine: 'jit',
      terminated: true,
      resources: NONE,
    });
  });

  it('reports a run that finishes in time as not terminated, with its r0', async () => {
    const r = await cli('run', quick, '--deadline-ns', '1000000000', '--json');
    expect(JSON.parse(r.out)).toEqual({
      r0: '5',
      ns_per_run: null,
      runs_per_sec: null,
      engine: 'jit',
      terminated: false,
      resources: NONE,
    });
  });

  it('prints the outcome and the resources as text, and refuses a bad deadline', async () => {
    const r = await cli('run', nested, '--deadline-ns', '5000000', '--engine', 'interp');
    expect(r.out).toBe(
      'terminated (timeout)\nresources after the run: 0 objects (0 bytes), 0 ringbuf reservations, 0 locks held\n',
    );
    const bad = await cli('run', quick, '--deadline-ns', '1e6');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/--deadline-ns takes a whole number of ns/);
  });
});
