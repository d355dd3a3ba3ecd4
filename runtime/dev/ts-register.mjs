// `node --import <this file>`: registers ts-hooks.mjs so that the process (or worker thread)
// can import the TypeScript sources. Used by runtime/worker-pool.ts when it runs from source.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
