/**
 * The entry map: which function tokens are verified token entries (coroutine resume / destroy
 * functions, `ProgLinks.coroEntries`), as a bitmap in Vm memory that the runtime module's
 * `coro_entry_check` reads (CORO_ENTRY_CHECK_SLOT), so that a checked `callx` through a frame,
 * a handle or `.rodata` asks Wasm, never JavaScript, on the host and in every worker.
 *
 * Layout (at the address in CTRL_BASE + CORO_CTL_OFF + CORO_CTL.entryMap): a u32 count of
 * token bits, then one bit per token from FUNC_TOKEN_BASE. The map only grows, as tokens are
 * never reused: a bigger one is filled first and then published with one store of its
 * address, so a reader (another worker) always sees a count that matches its bits.
 *
 * Called from host: runtime/vm.ts when it links a program.
 */

import { CORO_CTL, CORO_CTL_OFF, CTRL_BASE, FUNC_TOKEN_BASE } from '../src/abi.js';

/** What the entry map needs from the Vm. */
export interface EntryMapHost {
  /** Bytes of Vm memory (8-aligned), never freed. */
  alloc(bytes: number): number;
  dataView(): DataView;
  u8(): Uint8Array;
}

/** Token bits of the first map; each growth doubles it. */
const FIRST_BITS = 4096;

/** The Vm's entry map. */
export class CoroEntryMap {
  private readonly host: EntryMapHost;
  private addr = 0;
  private bits = 0;

  constructor(host: EntryMapHost) {
    this.host = host;
  }

  /** Marks `tokens` as verified token entries. */
  add(tokens: Iterable<number>): void {
    for (const t of tokens) {
      const i = t - FUNC_TOKEN_BASE;
      if (i < 0) continue;
      if (i >= this.bits) this.grow(i + 1);
      const u8 = this.host.u8();
      const p = this.addr + 4 + (i >> 3);
      u8[p] = (u8[p] as number) | (1 << (i & 7));
    }
  }

  private grow(need: number): void {
    let bits = Math.max(FIRST_BITS, this.bits);
    while (bits < need) bits *= 2;
    const addr = this.host.alloc(4 + bits / 8);
    const u8 = this.host.u8();
    u8.fill(0, addr, addr + 4 + bits / 8);
    if (this.addr !== 0) u8.copyWithin(addr + 4, this.addr + 4, this.addr + 4 + this.bits / 8);
    const v = this.host.dataView();
    v.setUint32(addr, bits, true);
    // publish last (a sequentially consistent store): the count and bits are in place before
    // any worker can find them
    const words = new Int32Array(v.buffer);
    Atomics.store(words, (CTRL_BASE + CORO_CTL_OFF + CORO_CTL.entryMap) >> 2, addr);
    this.addr = addr;
    this.bits = bits;
  }
}
