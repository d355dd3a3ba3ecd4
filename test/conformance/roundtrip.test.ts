/**
 * Every conformance program assembles into a structurally valid program, `-- raw` agrees with
 * the assembled `-- asm`, and the 'asm' disassembly assembles back to identical bytes (with
 * offsets and with labels). The llvm and kernel syntaxes print every instruction (no
 * `.invalid` lines). Skips with a printed reason when the conformance files are absent.
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assemble, assembleProgram } from '../../src/asm/assembler.js';
import { parseDataFile } from '../../src/asm/data-file.js';
import { disassemble } from '../../src/asm/disassembler.js';
import { encodeInsns } from '../../src/isa/insn.js';
import { conformanceDir, listDataFiles } from '../helpers/conformance.js';

const dir = conformanceDir();
const files = dir === undefined ? [] : listDataFiles(dir);

describe('conformance round trip', () => {
  if (dir === undefined) {
    console.log('conformance round trip skipped: no conformance dir (set BPF_CONFORMANCE_DIR)');
    it.skip('needs the conformance .data files', () => {});
    return;
  }

  it('finds all 313 data files', () => {
    expect(files).toHaveLength(313);
  });

  it.each(files.map((f) => [basename(f), f]))('%s assembles and round-trips', (_name, path) => {
    const data = parseDataFile(readFileSync(path, 'utf8'), path);
    expect(data.skip).toBeUndefined();
    const asm = data.asm ?? '';
    const insns = assemble(asm);
    const bytes = encodeInsns(insns);
    expect(assembleProgram(asm).insns).toEqual(insns);
    if (data.raw !== undefined) expect(encodeInsns(data.raw)).toEqual(bytes);
    expect(encodeInsns(assemble(disassemble(insns, { syntax: 'asm' })))).toEqual(bytes);
    expect(encodeInsns(assemble(disassemble(insns, { syntax: 'asm', labels: true })))).toEqual(
      bytes,
    );
    for (const syntax of ['llvm', 'kernel'] as const) {
      expect(disassemble(insns, { syntax })).not.toContain('.invalid');
    }
  });
});
