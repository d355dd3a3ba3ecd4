// Copies the AssemblyScript runtime module next to the compiled runtime in dist/.
import { copyFileSync, mkdirSync } from 'node:fs';
const from = new URL('./rt.wasm', import.meta.url);
const to = new URL('../../dist/runtime/wasm/', import.meta.url);
mkdirSync(to, { recursive: true });
copyFileSync(from, new URL('rt.wasm', to));
