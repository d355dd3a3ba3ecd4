/**
 * DESIGN.md §1 rules that a reviewer would otherwise have to check by hand: imports flow
 * src/{index,cli} → runtime/ → jit/ → src/*; only jit/module.ts imports binaryen; no default
 * exports anywhere.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function tsFiles(dir: string): string[] {
  if (!existsSync(join(root, dir))) return [];
  return readdirSync(join(root, dir)).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(join(root, p)).isDirectory()) return tsFiles(p);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g)].map(
    (m) => m[1] as string,
  );
}

function resolveRel(file: string, spec: string): string {
  return relative(root, join(root, file, '..', spec));
}

describe('layering', () => {
  const src = tsFiles('src');
  it('src/ never imports jit/ or runtime/ except in index.ts and cli/', () => {
    const bad = src
      .filter((f) => f !== join('src', 'index.ts') && !f.startsWith(join('src', 'cli')))
      .flatMap((f) =>
        imports(f)
          .filter((s) => s.startsWith('.'))
          .map((s) => [f, resolveRel(f, s)] as const),
      )
      .filter(([, t]) => t.startsWith('jit') || t.startsWith('runtime'));
    expect(bad).toEqual([]);
  });

  it('jit/ never imports runtime/', () => {
    const bad = tsFiles('jit').flatMap((f) =>
      imports(f)
        .filter((s) => s.startsWith('.') && resolveRel(f, s).startsWith('runtime'))
        .map((s) => `${f} -> ${s}`),
    );
    expect(bad).toEqual([]);
  });

  it('only jit/module.ts imports binaryen at run time', () => {
    const all = [...src, ...tsFiles('jit'), ...tsFiles('runtime')];
    const bad = all.filter((f) => {
      const text = readFileSync(join(root, f), 'utf8');
      return (
        f !== join('jit', 'module.ts') &&
        /import\s*\(\s*['"]binaryen['"]|from\s+['"]binaryen['"]/.test(text)
      );
    });
    expect(bad).toEqual([]);
  });

  it('has no default exports (the vitest config aside, which the tool requires)', () => {
    const all = [
      ...src,
      ...tsFiles('jit'),
      ...tsFiles('runtime'),
      ...tsFiles('test'),
      ...tsFiles('bench'),
    ].filter((f) => f !== join('test', 'vitest.config.ts'));
    const bad = all.filter((f) =>
      /^\s*export\s+default\b/m.test(readFileSync(join(root, f), 'utf8')),
    );
    expect(bad).toEqual([]);
  });
});
