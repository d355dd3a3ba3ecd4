/**
 * The frame allocator, host side (DESIGN.md §5, notes/kmalloc-nolock.md §8). The allocator
 * itself is Wasm code in the runtime module (runtime/wasm/frame-alloc.ts): BPF allocates and
 * frees through the kfuncs `bpf_coro_frame_alloc` / `bpf_coro_frame_free` and
 * `bpf_obj_new_impl` / `bpf_obj_drop_impl`, which go straight into call-table slots, so neither
 * allocation nor free crosses into JavaScript. This file lays out the allocator's region and
 * state when a Vm is created, declares the four kfuncs, and is the host's view: accounts per
 * owner, caps, the live objects, and `alloc`/`free` through the same Wasm code.
 *
 * Owners are program ids (the worker's `CTRL_PROG` while a program runs; 0 = the host).
 * Bytes are accounted per slot: a request takes its size class's slot (16 B .. 4 KiB) or, above
 * 4 KiB, a run of whole 64 KiB spans minus a 64-byte header. Invariants: the accounts are exact
 * at every instant (one atomic add per allocation and per free); an allocation over a cap, over
 * FRAME_ALLOC_MAX or beyond the region returns 0; a bad free is counted and ignored.
 */

import { UsageError } from '../src/errors.js';
import { nativeKfunc } from './maps/helpers.js';
import type { KfuncProto } from './helpers.js';
import type { RtExports } from './rt.js';

/** Bytes of a span (small spans serve one size class; large objects take runs of them). */
export const FRAME_SPAN_SIZE = 0x10000;
/** The size classes (bytes); requests above the last take whole spans. */
export const FRAME_SIZE_CLASSES: readonly number[] = [
  16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096,
];
/** Largest request the allocator serves (1 MiB); above it allocation returns 0. */
export const FRAME_ALLOC_MAX = 1 << 20;
/** Default bytes of the allocator's region (`VmOptions.frameHeap`). */
export const FRAME_HEAP_DEFAULT = 8 << 20;
/** Most bytes the region may have. */
export const FRAME_HEAP_MAX = 1 << 30;
/** Owners (program ids) with an account: 0 .. FRAME_MAX_OWNERS - 1. */
export const FRAME_MAX_OWNERS = 1024;

// Mirrors of runtime/wasm/frame-alloc.ts (test/unit/runtime/rt-abi.test.ts checks them).
/** Bytes of the allocator's state block. */
export const ALLOC_STATE_SIZE = 256;
/** Bytes of one owner's account. */
export const OWNER_ACCT_SIZE = 16;
/** Bytes of one worker's cache. */
export const ALLOC_CACHE_SIZE = 256;
const NO_CAP = 0xffffffff;
const CNT_REJECTED = 0;
const CNT_DOUBLE = 1;
const CNT_FAILED = 2;
const CNT_REMOTE = 3;

/** The names of the allocator's kfuncs; each is also the runtime module's export. */
export const FRAME_ALLOC_KFUNCS = [
  'bpf_coro_frame_alloc',
  'bpf_coro_frame_free',
  'bpf_obj_new_impl',
  'bpf_obj_drop_impl',
] as const;

/** A kfunc the runtime module implements. */
export type FrameAllocKfunc = (typeof FRAME_ALLOC_KFUNCS)[number];

/** Where a Vm put the allocator. */
export interface FrameAllocLayout {
  /** Address of the state block (`alloc_attach`'s first argument). */
  readonly state: number;
  /** The region spans are carved from: [heapStart, heapEnd), 64 KiB aligned; 0, 0 until made. */
  readonly heapStart: number;
  readonly heapEnd: number;
}

/** Live objects and bytes of one owner. */
export interface OwnerUsage {
  readonly objects: number;
  readonly bytes: number;
}

/** What `FrameAllocator.stats` reports. */
export interface FrameAllocStats {
  readonly liveObjects: number;
  readonly liveBytes: number;
  /** Owners with live objects. */
  readonly byOwner: Map<number, OwnerUsage>;
  /** Frees of pointers that were not an object start (outside the region, interior, header). */
  readonly rejectedFrees: number;
  /** Frees of objects already free. */
  readonly doubleFrees: number;
  /** Allocations answered with 0 (size 0 or too big, a cap, the region exhausted). */
  readonly failedAllocs: number;
  /** Frees of other workers' objects sent home (CAS-pushed onto the owner's remote list). */
  readonly remoteFrees: number;
}

/** A live object, as `liveObjects` lists it. */
export interface LiveObject {
  readonly addr: number;
  /** Slot bytes (the size class, or the run minus its header). */
  readonly size: number;
  readonly owner: number;
}

/** How a Vm lets its allocator take memory: its host heap, and the region's size. */
export interface FrameAllocHost {
  /** Takes `bytes` bytes of the Vm's memory (growing it); 16-byte aligned. */
  readonly alloc: (bytes: number) => number;
  /** Bytes of the region, made at the first need (`VmOptions.frameHeap`). */
  readonly frameHeap: number;
}

/**
 * Lays out the allocator's state block in a Vm being created (from `host.alloc`, the Vm's host
 * heap) and initialises it through runtime instance `rt`, which then attaches as allocator
 * worker `worker` with control slot `ctrl`. `workers`: caches to make (every worker thread and
 * the host thread). The region itself is made later, by `FrameAllocator.ensureRegion`.
 */
export function initFrameAlloc(
  rt: RtExports,
  host: FrameAllocHost,
  workers: number,
  worker: number,
  ctrl: number,
): FrameAllocator {
  const f = host.frameHeap;
  if (!Number.isInteger(f) || f < FRAME_SPAN_SIZE || f > FRAME_HEAP_MAX)
    throw new UsageError(
      `frameHeap must be an integer in ${FRAME_SPAN_SIZE}..${FRAME_HEAP_MAX}, not ${f}`,
    );
  const state = host.alloc(
    ALLOC_STATE_SIZE + FRAME_MAX_OWNERS * OWNER_ACCT_SIZE + workers * ALLOC_CACHE_SIZE,
  );
  const owners = state + ALLOC_STATE_SIZE;
  const caches = owners + FRAME_MAX_OWNERS * OWNER_ACCT_SIZE;
  rt.alloc_init(state, owners, FRAME_MAX_OWNERS, caches, workers);
  rt.alloc_attach(state, worker, ctrl);
  return new FrameAllocator(rt, state, host);
}

/**
 * The allocator's kfuncs as runtime instance `rt` implements them: the JIT's call table holds
 * the Wasm export itself, the interpreter calls the same export. Registered without a verifier
 * signature (src/kfunc-protos.ts gives the built-in ones by name).
 */
export function frameAllocKfuncs(rt: RtExports): KfuncProto[] {
  return FRAME_ALLOC_KFUNCS.map((name) => nativeKfunc(name, rt[name]));
}

/**
 * The host's view of a Vm's frame allocator (`vm.allocator`). Host calls run on the host
 * thread's own cache, through the same Wasm code as BPF's.
 * @example
 * const p = vm.allocator.alloc(64, 0);
 * vm.allocator.stats().liveObjects; // 1
 * vm.allocator.free(p);
 */
export class FrameAllocator {
  private readonly rt: RtExports;
  private readonly state: number;
  private readonly host: FrameAllocHost;
  private heapStart = 0;
  private heapEnd = 0;

  constructor(rt: RtExports, state: number, host: FrameAllocHost) {
    this.rt = rt;
    this.state = state;
    this.host = host;
  }

  /** Where the state block and the region are. */
  get layout(): FrameAllocLayout {
    return { state: this.state, heapStart: this.heapStart, heapEnd: this.heapEnd };
  }

  /**
   * Makes the region (`frameHeap` bytes, whole spans) if it does not exist yet. Only while no
   * program that allocates is running: the Vm calls it when it loads a program that calls an
   * allocator kfunc, and `alloc` calls it; until then a Vm pays no memory for the allocator.
   */
  ensureRegion(): void {
    if (this.heapEnd !== 0) return;
    const bytes = Math.ceil(this.host.frameHeap / FRAME_SPAN_SIZE) * FRAME_SPAN_SIZE;
    const spans = bytes / FRAME_SPAN_SIZE;
    const raw = this.host.alloc(bytes + FRAME_SPAN_SIZE + spans);
    const start = Math.ceil(raw / FRAME_SPAN_SIZE) * FRAME_SPAN_SIZE;
    // the span table goes in the tail the alignment left over (at least `spans` bytes)
    const spanTable = start + bytes;
    this.rt.alloc_set_region(start, start + bytes, spanTable);
    this.heapStart = start;
    this.heapEnd = start + bytes;
  }

  /**
   * Allocates `size` zeroed bytes charged to `owner`: the address, or 0 when the allocator
   * cannot serve it (size 0 or over FRAME_ALLOC_MAX, the owner's cap, the region exhausted).
   */
  alloc(size: number, owner = 0): number {
    if (!Number.isInteger(size) || size < 0 || size > 0xffffffff)
      throw new UsageError(`bad allocation size ${size}`);
    checkOwner(owner);
    this.ensureRegion();
    return this.rt.host_frame_alloc(size, owner) >>> 0;
  }

  /** Frees the object at `addr`; false (and counted) when it was not a live object's start. */
  free(addr: number): boolean {
    if (!Number.isInteger(addr) || addr < 0 || addr > 0xffffffff)
      throw new UsageError(`bad address ${addr}`);
    return this.rt.host_frame_free(addr) === 1;
  }

  /** 1 when `frame` is a live coroutine frame of at least `need` bytes (what the JIT checks). */
  isCoroFrame(frame: number, need = 0): boolean {
    return this.rt.coro_frame_check(frame >>> 0, need >>> 0) === 1;
  }

  /** Caps `owner`: at most `objects` live objects and `bytes` live bytes (omitted: no cap). */
  setCap(owner: number, cap: { readonly objects?: number; readonly bytes?: number }): void {
    checkOwner(owner);
    const objects = cap.objects ?? NO_CAP;
    const bytes = cap.bytes ?? NO_CAP;
    for (const v of [objects, bytes]) {
      if (!Number.isInteger(v) || v < 0 || v > NO_CAP)
        throw new UsageError(`bad cap ${v} (0..${NO_CAP})`);
    }
    this.rt.alloc_set_cap(owner, objects, bytes);
  }

  /** Live objects and bytes of `owner`. */
  usage(owner: number): OwnerUsage {
    checkOwner(owner);
    const live = this.rt.alloc_owner_live(owner);
    return { objects: Number(BigInt.asUintN(64, live) >> 32n), bytes: Number(live & 0xffffffffn) };
  }

  /** Totals, accounts by owner and the counters. Exact when no worker is allocating. */
  stats(): FrameAllocStats {
    const byOwner = new Map<number, OwnerUsage>();
    let liveObjects = 0;
    let liveBytes = 0;
    for (let o = 0; o < FRAME_MAX_OWNERS; o++) {
      const u = this.usage(o);
      if (u.objects === 0 && u.bytes === 0) continue;
      byOwner.set(o, u);
      liveObjects += u.objects;
      liveBytes += u.bytes;
    }
    return {
      liveObjects,
      liveBytes,
      byOwner,
      rejectedFrees: this.rt.alloc_counter(CNT_REJECTED) >>> 0,
      doubleFrees: this.rt.alloc_counter(CNT_DOUBLE) >>> 0,
      failedAllocs: this.rt.alloc_counter(CNT_FAILED) >>> 0,
      remoteFrees: this.rt.alloc_counter(CNT_REMOTE) >>> 0,
    };
  }

  /**
   * The live objects (of `owner`, or all), in address order, found by walking the spans'
   * owner tables: the coroutine runtime uses it to find orphaned frames. A coroutine frame's
   * object starts CORO_HDR_SIZE bytes before the frame (`isCoroFrame(addr + CORO_HDR_SIZE)`).
   */
  liveObjects(owner?: number): LiveObject[] {
    const out: LiveObject[] = [];
    for (let p = this.rt.alloc_next_live(0) >>> 0; p !== 0; p = this.rt.alloc_next_live(p) >>> 0) {
      const o = this.rt.alloc_obj_owner(p) >>> 0;
      if (owner === undefined || o === owner)
        out.push({ addr: p, size: this.rt.alloc_obj_size(p) >>> 0, owner: o });
    }
    return out;
  }

  /** Bytes of the region carved into spans so far. */
  get carvedBytes(): number {
    return this.heapEnd === 0 ? 0 : (this.rt.alloc_top() >>> 0) - this.heapStart;
  }
}

function checkOwner(owner: number): void {
  if (!Number.isInteger(owner) || owner < 0 || owner >= FRAME_MAX_OWNERS)
    throw new UsageError(`owner ${owner} is out of range 0..${FRAME_MAX_OWNERS - 1}`);
}
