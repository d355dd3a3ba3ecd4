/**
 * Pointer and argument checks every helper makes before it touches Vm memory (DESIGN.md §3:
 * the verifier is the first line of defence, the helpers the second). A BPF pointer is a u64
 * whose value must be a 32-bit linear address at or above the null guard, and the whole range
 * must lie inside the memory. Helpers that fail these checks return -EFAULT (or the errno
 * their kernel counterpart would) instead of throwing.
 *
 * Called from BPF (through every helper implementation in runtime/helpers/).
 */

import { NULL_GUARD_END } from '../../src/abi.js';

/** What the pointer checks need from the Vm. */
export interface MemHost {
  readonly memory: WebAssembly.Memory;
  u8(): Uint8Array;
  dataView(): DataView;
}

/**
 * The linear address of the `size` bytes at `ptr`, or -1 when they are not all inside the
 * Vm memory above the null guard. A size of 0 still needs a valid `ptr`.
 */
export function memAddr(vm: MemHost, ptr: bigint, size: number): number {
  if (ptr < BigInt(NULL_GUARD_END) || ptr > 0xffffffffn || size < 0) return -1;
  const a = Number(ptr);
  return a + size <= vm.memory.buffer.byteLength ? a : -1;
}

/** The low 32 bits of an argument, unsigned (a `u32` parameter). */
export function argU32(v: bigint): number {
  return Number(v & 0xffffffffn);
}

/** The low 32 bits of an argument, signed (an `int` parameter). */
export function argS32(v: bigint): number {
  return Number(BigInt.asIntN(32, v));
}

/**
 * The bytes of the NUL-terminated string at `addr`, reading at most `max` bytes (the NUL
 * included) and never past the end of memory: `{ bytes, terminated }` where `bytes` excludes
 * the NUL and `terminated` says whether one was found.
 */
export function readCString(
  vm: MemHost,
  addr: number,
  max: number,
): { bytes: Uint8Array; terminated: boolean } {
  const u8 = vm.u8();
  const end = Math.min(u8.length, addr + max);
  for (let a = addr; a < end; a++) {
    if (u8[a] === 0) return { bytes: u8.slice(addr, a), terminated: true };
  }
  return { bytes: u8.slice(addr, end), terminated: false };
}
