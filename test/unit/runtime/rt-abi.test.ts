/**
 * The AssemblyScript runtime repeats src/abi.ts's map layout; both must agree.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CORO_CTL,
  CORO_CTL_OFF,
  CTRL_HEADER_SIZE,
  CORO_CHECK_RECORD,
  CORO_HDR_SIZE,
  CORO_MAGIC,
  CTRL_ALLOC,
  CTRL_ALLOC_CACHE,
  CTRL_ALLOC_MAX_OWNERS,
  CTRL_ALLOC_OWNERS,
  CTRL_ALLOC_STATE,
  CTRL_ALLOC_WORKER,
  CTRL_DEFER_RING,
  FRAME_ALLOC,
  CTRL_PROG,
  CTRL_TERM,
  HTAB_ELEM_HEADER,
  LPM_NODE_HEADER,
  MAP_DESC,
  MAP_DESC_SIZE,
  MAP_MAGIC,
  NULL_GUARD_END,
} from '../../../src/abi.js';

const text = readFileSync(new URL('../../../runtime/wasm/abi.ts', import.meta.url), 'utf8');
const allocText = readFileSync(
  new URL('../../../runtime/wasm/frame-alloc.ts', import.meta.url),
  'utf8',
);
const constsOf = (src: string): Map<string, number> =>
  new Map(
    [...src.matchAll(/export const (\w+): \w+ = (0x[0-9a-f]+|\d+);/gi)].map((m) => [
      m[1] as string,
      Number(m[2]),
    ]),
  );
const consts = new Map(
  [...text.matchAll(/export const (\w+): \w+ = (0x[0-9a-f]+|\d+);/gi)].map((m) => [
    m[1] as string,
    Number(m[2]),
  ]),
);

describe('runtime module ABI', () => {
  it('matches src/abi.ts for every map descriptor field', () => {
    const fields: Record<string, number> = {
      MAP_TYPE: MAP_DESC.type,
      MAP_KEY_SIZE: MAP_DESC.keySize,
      MAP_VALUE_SIZE: MAP_DESC.valueSize,
      MAP_MAX_ENTRIES: MAP_DESC.maxEntries,
      MAP_FLAGS: MAP_DESC.flags,
      MAP_ID: MAP_DESC.id,
      MAP_ELEM_SIZE: MAP_DESC.elemSize,
      MAP_DATA: MAP_DESC.data,
      MAP_N_BUCKETS: MAP_DESC.nBuckets,
      MAP_COUNT: MAP_DESC.count,
      MAP_FREE_LIST: MAP_DESC.freeList,
      MAP_ELEMS: MAP_DESC.elems,
      MAP_LOCK: MAP_DESC.lock,
      MAP_N_CPUS: MAP_DESC.nCpus,
      MAP_LRU_HAND: MAP_DESC.lruHand,
      MAP_MAGIC_FIELD: MAP_DESC.magic,
      MAP_EXTRA: MAP_DESC.mapExtra,
      MAP_HEAD: MAP_DESC.head,
      MAP_TAIL: MAP_DESC.tail,
      MAP_N_HASH_FUNCS: MAP_DESC.nHashFuncs,
      MAP_BITSET_MASK: MAP_DESC.bitsetMask,
      MAP_ROOT: MAP_DESC.root,
      MAP_AUX: MAP_DESC.aux,
      MAP_DESC_SIZE,
      MAP_MAGIC,
      HTAB_ELEM_HEADER,
      LPM_NODE_HEADER,
      NULL_GUARD_END,
    };
    for (const [name, value] of Object.entries(fields))
      expect([name, consts.get(name)]).toEqual([name, value]);
  });

  it('matches src/abi.ts for the Vm-wide coroutine and task words (CORO_CTL)', () => {
    const snake = (k: string): string =>
      `CORO_CTL_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    const found = Object.entries(CORO_CTL).filter(([k]) => consts.has(snake(k)));
    for (const [k, v] of found) expect([k, consts.get(snake(k))]).toEqual([k, v]);
    expect(found.map(([k]) => k)).toEqual(
      expect.arrayContaining(['sleepQueue', 'taskStruct', 'taskHeld', 'taskBadReleases']),
    );
    const offsets = Object.values(CORO_CTL);
    expect(new Set(offsets).size).toBe(offsets.length);
    for (const off of offsets) expect(CORO_CTL_OFF + off + 4).toBeLessThanOrEqual(CTRL_HEADER_SIZE);
  });

  it('has every map descriptor field inside the descriptor, without overlaps', () => {
    const offsets = Object.values(MAP_DESC);
    expect(new Set(offsets).size).toBe(offsets.length);
    for (const off of offsets) expect(off + 4).toBeLessThanOrEqual(MAP_DESC_SIZE);
  });

  it('numbers the map types as the TypeScript side does', async () => {
    const types = await import('../../../runtime/maps/map-type.js');
    for (const [name, value] of Object.entries(types)) {
      if (name.startsWith('BPF_MAP_TYPE_') && consts.has(name))
        expect([name, consts.get(name)]).toEqual([name, value]);
    }
    expect(consts.get('BPF_F_INNER_MAP')).toBe(types.BPF_F_INNER_MAP);
  });

  it('matches src/abi.ts and runtime/frame-alloc.ts for the frame allocator', async () => {
    const fa = await import('../../../runtime/frame-alloc.js');
    const fields: Record<string, number> = {
      CTRL_PROG,
      CTRL_ALLOC_CACHE,
      CORO_HDR_SIZE,
      CORO_MAGIC,
      CORO_CHECK_RECORD,
    };
    for (const [name, value] of Object.entries(fields))
      expect([name, consts.get(name)]).toEqual([name, value]);
    expect(CTRL_ALLOC_CACHE >= CTRL_ALLOC && CTRL_ALLOC_CACHE + 4 <= CTRL_TERM).toBe(true);
    const alloc = constsOf(allocText);
    expect(alloc.get('FRAME_ALLOC_MAX')).toBe(fa.FRAME_ALLOC_MAX);
    expect(alloc.get('ALLOC_STATE_SIZE')).toBe(fa.ALLOC_STATE_SIZE);
    expect(alloc.get('OWNER_ACCT_SIZE')).toBe(fa.OWNER_ACCT_SIZE);
    expect(alloc.get('ALLOC_CACHE_SIZE')).toBe(fa.ALLOC_CACHE_SIZE);
    expect(fa.ALLOC_CACHE_SIZE).toBe(fa.FRAME_SIZE_CLASSES.length * 16);
  });

  it('matches src/abi.ts for what the JIT inline fast paths read (jit/inline-kfunc.ts)', () => {
    const ctrl: Record<string, number> = {
      CTRL_ALLOC_OWNERS,
      CTRL_ALLOC_MAX_OWNERS,
      CTRL_ALLOC_STATE,
      CTRL_ALLOC_WORKER,
      CTRL_DEFER_RING,
      CORO_CTL_ENTRY_MAP: CORO_CTL.entryMap,
    };
    for (const [name, value] of Object.entries(ctrl))
      expect([name, consts.get(name)]).toEqual([name, value]);
    for (const off of [
      CTRL_ALLOC_OWNERS,
      CTRL_ALLOC_MAX_OWNERS,
      CTRL_ALLOC_STATE,
      CTRL_ALLOC_WORKER,
    ])
      expect(off >= CTRL_ALLOC && off + 4 <= CTRL_TERM).toBe(true);
    const alloc = constsOf(allocText);
    const fields: Record<string, number> = {
      SPAN_SHIFT: FRAME_ALLOC.spanShift,
      SPAN_HDR: FRAME_ALLOC.spanHdr,
      MAX_SMALL: FRAME_ALLOC.maxSmall,
      SP_CLASS: FRAME_ALLOC.spClass,
      SP_WORKER: FRAME_ALLOC.spWorker,
      SP_SIZE: FRAME_ALLOC.spSize,
      SP_NSLOTS: FRAME_ALLOC.spNslots,
      SP_DATA: FRAME_ALLOC.spData,
      SP_RECIP: FRAME_ALLOC.spRecip,
      KIND_SMALL: FRAME_ALLOC.kindSmall,
      ST_HEAP_START: FRAME_ALLOC.stHeapStart,
      ST_HEAP_END: FRAME_ALLOC.stHeapEnd,
      ST_SEQ: FRAME_ALLOC.stSeq,
      ST_DOUBLE: FRAME_ALLOC.stDouble,
      ST_SPAN_TABLE: FRAME_ALLOC.stSpanTable,
      CE_SIZE: FRAME_ALLOC.ceSize,
      CE_HEAD: FRAME_ALLOC.ceHead,
      CE_COUNT: FRAME_ALLOC.ceCount,
      OWNER_ACCT_SIZE: FRAME_ALLOC.ownerAcctSize,
      OA_CAP_OBJECTS: FRAME_ALLOC.oaCapObjects,
      OA_CAP_BYTES: FRAME_ALLOC.oaCapBytes,
      CACHE_FOREIGN_BYTES: FRAME_ALLOC.cacheForeignBytes,
      CACHE_SPILL_BYTES: FRAME_ALLOC.cacheSpillBytes,
    };
    for (const [name, value] of Object.entries(fields))
      expect([name, alloc.get(name)]).toEqual([name, value]);
  });
});
