/**
 * Locating the bpf_conformance `.data` files: `BPF_CONFORMANCE_DIR` when set, else
 * `../shared/conformance` next to the repository root. Tests that need them skip (with a
 * printed reason) when neither exists, so the suite runs from a bare checkout too.
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is test/helpers/conformance.ts). */
export const REPO_ROOT: string = fileURLToPath(new URL('../..', import.meta.url));

function isDir(p: string): boolean {
  return existsSync(p) && statSync(p).isDirectory();
}

/**
 * The conformance directory, or undefined when it is absent.
 *
 * @example
 * ```ts
 * const dir = conformanceDir();
 * if (dir === undefined) console.log('skipped: no conformance files');
 * ```
 */
export function conformanceDir(): string | undefined {
  const fromEnv = process.env['BPF_CONFORMANCE_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return isDir(fromEnv) ? resolve(fromEnv) : undefined;
  const dir = resolve(REPO_ROOT, '..', 'shared', 'conformance');
  return isDir(dir) ? dir : undefined;
}

/** Absolute paths of the `.data` files in `dir`, sorted by name. */
export function listDataFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.data'))
    .sort()
    .map((f) => join(dir, f));
}
