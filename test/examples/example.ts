/**
 * Shared pieces of the example tests: where the committed objects are (examples/<name>/build),
 * loading one into a fresh Vm on a given engine (JIT output validated by wabt), and finding a
 * BPF-capable clang for the rebuild test.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SK_BUFF, XDP_MD } from '../../src/abi.js';
import { loadObject } from '../../src/loader/object.js';
import type { Engine } from '../../runtime/loaded-program.js';
import type { LoadedObject, ObjectOptions } from '../../runtime/object.js';
import type { Vm } from '../../runtime/vm.js';
import { makeTestVm } from '../helpers/engines.js';

/** Both execution engines; every example test runs on each. */
export const ENGINES: readonly Engine[] = ['jit', 'interp'];

/** The repository's examples/ directory. */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/', import.meta.url));

/** Bytes of `examples/<example>/build/<object>.o` (or of `<dir>/<object>.o`). */
export function exampleObject(example: string, object = example, dir?: string): Uint8Array {
  return new Uint8Array(
    readFileSync(join(dir ?? join(EXAMPLES_DIR, example, 'build'), `${object}.o`)),
  );
}

/** A loaded example and its Vm; close the Vm when done. */
export interface LoadedExample {
  readonly vm: Vm;
  readonly obj: LoadedObject;
}

/** Loads `bytes` unverified into a fresh Vm with every program on `engine`. */
export async function loadExample(
  bytes: Uint8Array,
  engine: Engine,
  opts: Omit<ObjectOptions, 'engine' | 'verify'> = {},
): Promise<LoadedExample> {
  const vm = makeTestVm();
  try {
    return { vm, obj: await vm.loadObject(bytes, { ...opts, engine, verify: false }) };
  } catch (e) {
    vm.close();
    throw e;
  }
}

/** The clang the examples' Makefiles pick (clang-22 down to clang-19), or undefined. */
export function findClang(): string | undefined {
  try {
    const out = execFileSync(
      'sh',
      ['-c', 'command -v clang-22 clang-21 clang-20 clang-19 2>/dev/null; true'],
      {
        encoding: 'utf8',
      },
    );
    return out.split('\n').find((l) => l.trim() !== '');
  } catch {
    return undefined;
  }
}

/** True when `make` is on the PATH. */
export function hasMake(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v make'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Little-endian unsigned integer of `b` (any length up to 8 bytes). */
export function le(b: Uint8Array | undefined): bigint {
  let v = 0n;
  for (let k = (b?.length ?? 0) - 1; k >= 0; k--) v = (v << 8n) | BigInt(b?.[k] ?? 0);
  return v;
}

/**
 * The initial image of global-data `section` of the object `bytes` with some variables set
 * (little-endian, each at its offset and size), as a libbpf skeleton sets `skel->rodata->x`
 * before load; pass it as `globals: { [section]: image }`.
 */
export function globalImage(
  bytes: Uint8Array,
  section: string,
  values: Readonly<Record<string, bigint>>,
): Uint8Array {
  const g = loadObject(bytes).maps.find((m) => m.global?.section === section)?.global;
  if (g === undefined) throw new Error(`the object has no ${section} section`);
  const image = g.bytes.slice();
  for (const [name, value] of Object.entries(values)) {
    const v = g.vars.find((x) => x.name === name);
    if (v === undefined) throw new Error(`no variable '${name}' in ${section}`);
    for (let k = 0; k < v.size; k++) image[v.offset + k] = Number((value >> BigInt(8 * k)) & 0xffn);
  }
  return image;
}

/** A `struct __sk_buff` field. */
export type SkBuffField = Exclude<keyof typeof SK_BUFF, 'size'>;
/** A `struct xdp_md` field. */
export type XdpMdField = Exclude<keyof typeof XDP_MD, 'size'>;

/**
 * A `struct __sk_buff` ctx_in: `fields` set (tstamp, hwtstamp and sk as u64, the others as u32)
 * and cb[k] = `cb[k]`; every other byte zero.
 */
export function skbCtx(
  fields: Partial<Record<SkBuffField, number>>,
  cb: number[] = [],
): Uint8Array {
  const b = new Uint8Array(SK_BUFF.size);
  const v = new DataView(b.buffer);
  for (const [name, value] of Object.entries(fields) as [SkBuffField, number][]) {
    if (name === 'tstamp' || name === 'hwtstamp' || name === 'sk')
      v.setBigUint64(SK_BUFF[name], BigInt(value), true);
    else v.setUint32(SK_BUFF[name], value, true);
  }
  cb.forEach((x, k) => v.setUint32(SK_BUFF.cb + 4 * k, x, true));
  return b;
}

/** A `struct xdp_md` ctx_in with `f` set; every other field zero. */
export function xdpMd(f: Partial<Record<XdpMdField, number>>): Uint8Array {
  const b = new Uint8Array(XDP_MD.size);
  const v = new DataView(b.buffer);
  for (const [name, value] of Object.entries(f) as [XdpMdField, number][])
    v.setUint32(XDP_MD[name], value, true);
  return b;
}
