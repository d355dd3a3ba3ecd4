/**
 * One thread of the frame allocator's stress test (frame-alloc.test.ts): it instantiates the
 * runtime module over the test's shared memory as worker `index`, then runs a seeded random
 * sequence of allocations, frees and hand-offs through shared mailboxes. Every object it holds
 * carries its size and a tag unique to this allocation in every word; an object is checked
 * whole before it is freed or handed on, and a fresh object must be all zeroes, so any overlap
 * of two live objects, or an address handed out twice while live, shows as a wrong word.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CORO_HDR, CORO_MAGIC, CTRL_PROG, workerLayout } from '../../src/abi.js';
import { instantiateRt } from '../../runtime/rt.js';
import { createPrng } from '../helpers/prng.js';

/** What the test passes to each thread. */
export interface StressInit {
  readonly memory: WebAssembly.Memory;
  readonly state: number;
  readonly index: number;
  readonly seed: number;
  readonly ops: number;
  /** Address of `mailboxes` u32 slots: 0 or an object being handed over. */
  readonly mailbox: number;
  readonly mailboxes: number;
  /** Address of an i32 the threads wait on until the test sets it to 1. */
  readonly go: number;
}

/** What each thread reports. */
export interface StressReport {
  readonly allocs: number;
  readonly nulls: number;
  readonly frees: number;
  readonly given: number;
  readonly taken: number;
  /** Sequence numbers of the coroutine frames this thread allocated. */
  readonly seqs: readonly number[];
  readonly errors: readonly string[];
}

const d = workerData as StressInit;
const rt = instantiateRt(d.memory, d.index, () => -22n);
const ctrl = workerLayout(d.index).ctrl;
rt.alloc_attach(d.state, d.index, ctrl);
const u32 = new Uint32Array(d.memory.buffer);
/** The "program" of this thread: the owner its coroutine frames are charged to. */
const prog = 1 + d.index;
u32[(ctrl + CTRL_PROG) >>> 2] = prog;
/** Marks, in an object's size word, a coroutine frame. */
const FRAME = 0x80000000;
const seqs: number[] = [];
const i32 = new Int32Array(d.memory.buffer);
const rng = createPrng(d.seed);
const errors: string[] = [];
const live: number[] = [];
let tags = 0;
const r = { allocs: 0, nulls: 0, frees: 0, given: 0, taken: 0 };

/** Sizes mostly from three classes (so that caches fill and frees go home), some large. */
function pickSize(): number {
  const k = rng.int(100);
  if (k < 2) return 4097 + rng.int(12_000);
  if (k < 40) return 4000 + rng.int(96);
  if (k < 70) return 8 + rng.int(200);
  return 8 + rng.int(4089);
}

function fill(p: number, size: number, frame: boolean): void {
  const tag = ((d.index + 1) << 24) | (++tags & 0xffffff);
  const w = p >>> 2;
  u32[w] = size | (frame ? FRAME : 0);
  for (let k = 1; k < size >>> 2; k++) u32[w + k] = tag;
}

/** Checks the object at `p` is whole; false (and an error) when a word was overwritten. */
function check(p: number, why: string): boolean {
  const w = p >>> 2;
  const size = (u32[w] as number) & ~FRAME;
  const tag = u32[w + 1] as number;
  if (size < 8 || size > 20_000) {
    errors.push(`worker ${d.index}: ${why} 0x${p.toString(16)}: bad size word ${size}`);
    return false;
  }
  for (let k = 2; k < size >>> 2; k++) {
    if (u32[w + k] !== tag) {
      errors.push(`worker ${d.index}: ${why} 0x${p.toString(16)}: word ${k} overwritten`);
      return false;
    }
  }
  return true;
}

/** A fresh coroutine frame's header: magic, size, owner, a sequence number. */
function checkHeader(f: number, size: number): void {
  const at = (off: number): number => u32[(f + off) >>> 2] as number;
  const bad =
    at(CORO_HDR.magic) !== CORO_MAGIC || at(CORO_HDR.size) !== size || at(CORO_HDR.owner) !== prog;
  if (bad || at(CORO_HDR.seq) === 0 || rt.coro_frame_check(f, size) !== 1)
    errors.push(`worker ${d.index}: frame 0x${f.toString(16)} has a bad header`);
  seqs.push(at(CORO_HDR.seq));
}

function alloc(): void {
  const size = pickSize();
  const frame = rng.bool(0.2);
  const p = frame
    ? Number(rt.bpf_coro_frame_alloc(BigInt(size), 0n, 0n, 0n, 0n))
    : rt.host_frame_alloc(size, 1 + rng.int(3)) >>> 0;
  if (p === 0) {
    r.nulls++;
    return;
  }
  r.allocs++;
  if (p % 8 !== 0) errors.push(`worker ${d.index}: unaligned 0x${p.toString(16)}`);
  for (let k = 0; k < size >>> 2; k++) {
    if (u32[(p >>> 2) + k] !== 0) {
      errors.push(`worker ${d.index}: fresh 0x${p.toString(16)} (${size} B) not zero at word ${k}`);
      break;
    }
  }
  if (frame) checkHeader(p, size);
  fill(p, size, frame);
  live.push(p);
}

function free(at: number): void {
  const p = live[at] as number;
  live[at] = live[live.length - 1] as number;
  live.pop();
  check(p, 'free');
  if (((u32[p >>> 2] as number) & FRAME) !== 0) {
    // (whether it was accepted shows in the rejected-free counter the test checks: another
    // thread may already have the same address as a new frame, so it cannot be checked here)
    rt.bpf_coro_frame_free(BigInt(p), 0n, 0n, 0n, 0n);
  } else if (rt.host_frame_free(p) !== 1)
    errors.push(`worker ${d.index}: free of live 0x${p.toString(16)} refused`);
  r.frees++;
}

function handOff(): void {
  let give = 0;
  if (live.length > 0 && rng.bool(0.8)) {
    const at = rng.int(live.length);
    give = live[at] as number;
    live[at] = live[live.length - 1] as number;
    live.pop();
    check(give, 'give');
    r.given++;
  }
  const got = Atomics.exchange(i32, (d.mailbox >>> 2) + rng.int(d.mailboxes), give) >>> 0;
  if (got !== 0) {
    r.taken++;
    if (check(got, 'take')) live.push(got);
  }
}

Atomics.wait(i32, d.go >>> 2, 0);
for (let op = 0; op < d.ops && errors.length < 10; op++) {
  const k = rng.int(100);
  if (k < 45 && live.length < 150) alloc();
  else if (k < 80 && live.length > 0) free(rng.int(live.length));
  else handOff();
}
while (live.length > 0) free(live.length - 1);
rt.alloc_flush(); // an orderly exit: what this thread's cache holds goes to the depot
const report: StressReport = { ...r, seqs, errors };
parentPort?.postMessage(report);
