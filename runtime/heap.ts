/**
 * Host-side allocations in the Vm's linear memory (batch buffers, and later map descriptors):
 * a first-fit free list over `[base, limit)`, 16-byte aligned, that asks the Vm to grow the
 * memory when it runs out. Not on any BPF hot path; the BPF-side frame allocator is separate.
 */

import { UsageError } from '../src/errors.js';

const ALIGN = 16;

/** A first-fit arena. */
export class HeapArena {
  private readonly free: { addr: number; size: number }[] = [];
  private readonly sizes = new Map<number, number>();
  private top: number;
  private limit: number;
  private readonly grow: (bytes: number) => number;

  /** `grow(bytes)` must make at least `bytes` more bytes available and return the new limit. */
  constructor(base: number, limit: number, grow: (bytes: number) => number) {
    this.top = align(base);
    this.limit = limit;
    this.grow = grow;
  }

  /** Allocates `size` bytes (zeroing is the caller's business). */
  alloc(size: number): number {
    if (!Number.isInteger(size) || size <= 0) throw new UsageError(`bad allocation size ${size}`);
    const need = align(size);
    const k = this.free.findIndex((f) => f.size >= need);
    if (k >= 0) {
      const f = this.free[k] as { addr: number; size: number };
      const addr = f.addr;
      if (f.size === need) this.free.splice(k, 1);
      else {
        f.addr += need;
        f.size -= need;
      }
      this.sizes.set(addr, need);
      return addr;
    }
    if (this.top + need > this.limit) this.limit = this.grow(this.top + need - this.limit);
    const addr = this.top;
    this.top += need;
    this.sizes.set(addr, need);
    return addr;
  }

  /** Frees an allocation made by `alloc`. */
  release(addr: number): void {
    const size = this.sizes.get(addr);
    if (size === undefined)
      throw new UsageError(`free of 0x${addr.toString(16)}, which was not allocated`);
    this.sizes.delete(addr);
    this.free.push({ addr, size });
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}
