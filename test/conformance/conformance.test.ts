/**
 * The 313 bpf_conformance tests on both engines. The files are third-party data read from
 * ../shared/conformance (or $BPF_CONFORMANCE_DIR); without them the suite is skipped with a reason.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listDataFiles, runConformanceFile } from '../../src/cli/conformance.js';
import { validateWasm } from '../../jit/wat.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = process.env['BPF_CONFORMANCE_DIR'] ?? `${root}../shared/conformance`;
const present = existsSync(dir);
if (!present) console.log(`conformance: skipped, no conformance files at ${dir}`);

for (const engine of ['interp', 'jit'] as const) {
  describe.skipIf(!present)(`conformance on the ${engine} engine`, () => {
    const files = present ? listDataFiles(dir) : [];
    it('has the 313 tests of the suite', () => {
      expect(files.length).toBe(313);
    });
    for (const f of files) {
      const name = f.slice(f.lastIndexOf('/') + 1);
      it(`passes ${name}`, async () => {
        // wabt, independent of binaryen, reads back and validates every module the JIT emits
        const r = await runConformanceFile(f, engine, { onCompiled: (wasm) => validateWasm(wasm) });
        expect(r.detail ?? '').toBe('');
        expect(r.status).toBe('pass');
      });
    }
  });
}
