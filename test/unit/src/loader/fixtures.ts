/**
 * Paths and readers for the checked-in ELF fixtures (test/fixtures/elf, see its README) and a
 * checker for loader errors.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/** The fixture directory. */
export const FIXTURE_DIR = fileURLToPath(new URL('../../../fixtures/elf/', import.meta.url));

/** The bytes of `test/fixtures/elf/<rel>`. */
export function readFixture(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(`${FIXTURE_DIR}${rel}`));
}

/** The `.o` files of a fixture subdirectory, as paths relative to the fixture directory. */
export function listObjects(dir: string): string[] {
  return readdirSync(`${FIXTURE_DIR}${dir}`)
    .filter((f) => f.endsWith('.o'))
    .sort()
    .map((f) => `${dir}/${f}`);
}

/** What an error is expected to carry. */
export interface ExpectedError {
  readonly name: 'ElfError' | 'BtfError';
  readonly section: string;
  readonly offset?: number;
  readonly reason: RegExp;
}

/** Runs `f` and checks that it throws the expected ElfError / BtfError. */
export function expectLoaderError(f: () => unknown, want: ExpectedError): void {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected an error').toBeInstanceOf(Error);
  const e = caught as Error & { section?: string; offset?: number; reason?: string };
  expect(e.name).toBe(want.name);
  expect(e.section).toBe(want.section);
  expect(e.message).toContain(want.section);
  expect(e.reason).toMatch(want.reason);
  if (want.offset !== undefined) {
    expect(e.offset).toBe(want.offset);
    expect(e.message).toContain(`+0x${want.offset.toString(16)}`);
  } else {
    expect(typeof e.offset).toBe('number');
  }
}
