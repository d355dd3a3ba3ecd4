// Module hooks that let a worker thread run the TypeScript sources directly (tests and tools
// that run from source, e.g. under vitest): `.js` specifiers that name a missing file resolve to
// the `.ts` beside it, and `.ts` files are transpiled with TypeScript's `transpileModule`
// (types erased, nothing checked). The built package (dist/) never uses them.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, URL } from 'node:url';
import ts from 'typescript';

export async function resolve(specifier, context, next) {
  const parent = context.parentURL;
  if (specifier.startsWith('.') && specifier.endsWith('.js') && parent?.endsWith('.ts')) {
    const url = new URL(specifier, parent);
    if (!existsSync(fileURLToPath(url))) {
      return { url: `${url.href.slice(0, -3)}.ts`, format: 'module', shortCircuit: true };
    }
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.endsWith('.ts')) return next(url, context);
  const fileName = fileURLToPath(url);
  const out = ts.transpileModule(readFileSync(fileName, 'utf8'), {
    fileName,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
    },
  });
  return { format: 'module', source: out.outputText, shortCircuit: true };
}
