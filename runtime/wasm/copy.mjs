// Copies the AssemblyScript runtime modules (private and shared-memory builds) next to the
// compiled runtime in dist/.
import { copyFileSync, mkdirSync } from 'node:fs';
const to = new URL('../../dist/runtime/wasm/', import.meta.url);
mkdirSync(to, { recursive: true });
for (const name of ['rt.wasm', 'rt-shared.wasm']) {
  copyFileSync(new URL(`./${name}`, import.meta.url), new URL(name, to));
}
