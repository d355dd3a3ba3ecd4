/**
 * The verifier on real clang output: every bundled example object, every benchmark-corpus
 * program (mem and XDP builds, v3 and v4) and the shared XDP example verify; the coroutine
 * objects are rejected with a message that names what is missing (their kfuncs come with the
 * coroutines issue). Verification times are measured by `npm run bench -- --only verify`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyFile } from '../../src/cli/verify.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SHARED = join(ROOT, '..', 'shared', 'examples');

function objects(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.o'))
    .map((f) => join(dir, f));
}

const EXAMPLES = readdirSync(join(ROOT, 'examples'), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .flatMap((d) => objects(join(ROOT, 'examples', d.name, 'build')));

const CORPUS = readdirSync(join(ROOT, 'bench', 'corpus', 'bpf'))
  .filter((f) => f.endsWith('.bin'))
  .map((f) => join(ROOT, 'bench', 'corpus', 'bpf', f));

describe('the verifier on the bundled examples', () => {
  it('finds the example objects', () => {
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(10);
  });

  it.each(EXAMPLES.map((f) => [f.slice(ROOT.length + 1), f] as const))('%s verifies', (_n, f) => {
    const verdicts = verifyFile(f);
    expect(verdicts.length).toBeGreaterThan(0);
    for (const v of verdicts)
      expect(v.accepted ? 'accept' : `${v.program}: ${v.message}`).toBe('accept');
  });
});

describe('the verifier on the benchmark corpus', () => {
  it.each(CORPUS.map((f) => [f.slice(ROOT.length + 1), f] as const))('%s verifies', (_n, f) => {
    const [v] = verifyFile(f, { type: f.endsWith('.xdp.bin') ? 'xdp' : 'mem' });
    expect(v?.accepted ? 'accept' : v?.message).toBe('accept');
  });
});

const sharedXdp = objects(join(SHARED, 'xdp', 'build'));
if (sharedXdp.length === 0) {
  console.warn(`skipping ../shared/examples objects: ${SHARED} is not beside this clone`);
}
const coro = objects(join(SHARED, 'coro', 'build'));

describe.skipIf(sharedXdp.length === 0)('the verifier on ../shared/examples', () => {
  it.each(sharedXdp.map((f) => [f.slice(SHARED.length + 1), f] as const))(
    '%s verifies',
    (_n, f) => {
      for (const v of verifyFile(f)) expect(v.accepted ? 'accept' : v.message).toBe('accept');
    },
  );

  it.each(
    coro.filter((f) => f.endsWith('.g.o')).map((f) => [f.slice(SHARED.length + 1), f] as const),
  )('%s: each program verifies or names what is missing', (_n, f) => {
    for (const v of verifyFile(f)) {
      if (v.accepted) continue;
      expect(v.message).toMatch(
        /calling kernel function bpf_\w+ is not allowed \(the Vm has no such kfunc\)|unreachable insn \d+/,
      );
    }
  });
});
