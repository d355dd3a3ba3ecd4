/**
 * A bounds-checked little-endian reader over a byte range. The ELF, BTF and BTF.ext parsers
 * read every field through it, so that a truncated or lying input becomes an `ElfError` or a
 * `BtfError` naming the section and offset, never a `RangeError` from `DataView`.
 *
 * Offsets are relative to the start of the range. 64-bit fields are returned as numbers:
 * values above 2^53 lose precision, which is harmless because every such value is an offset
 * or a size that then fails a bounds check.
 */

/** Throws the caller's error type for a failed check at `offset` (relative to the range). */
export type ReadFail = (reason: string, offset: number) => never;

/** Reads fields from `bytes`; every access outside the range calls `fail`. */
export class ByteReader {
  readonly bytes: Uint8Array;
  readonly length: number;
  private readonly view: DataView;
  private readonly fail: ReadFail;

  constructor(bytes: Uint8Array, fail: ReadFail) {
    this.bytes = bytes;
    this.length = bytes.length;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.fail = fail;
  }

  /** Throws unless `[off, off + len)` lies inside the range. */
  check(off: number, len: number, what: string): void {
    if (!(off >= 0 && len >= 0 && off + len <= this.length && Number.isSafeInteger(off + len))) {
      this.fail(`${what}: ${len} bytes at 0x${hex(off)} outside 0x${hex(this.length)} bytes`, off);
    }
  }

  /** An unsigned byte. */
  u8(off: number, what = 'u8'): number {
    this.check(off, 1, what);
    return this.view.getUint8(off);
  }

  /** An unsigned 16-bit field. */
  u16(off: number, what = 'u16'): number {
    this.check(off, 2, what);
    return this.view.getUint16(off, true);
  }

  /** An unsigned 32-bit field. */
  u32(off: number, what = 'u32'): number {
    this.check(off, 4, what);
    return this.view.getUint32(off, true);
  }

  /** A signed 32-bit field. */
  i32(off: number, what = 'i32'): number {
    this.check(off, 4, what);
    return this.view.getInt32(off, true);
  }

  /** An unsigned 64-bit field as a number (see the file comment about precision). */
  u64(off: number, what = 'u64'): number {
    this.check(off, 8, what);
    return this.view.getUint32(off + 4, true) * 2 ** 32 + this.view.getUint32(off, true);
  }

  /** An unsigned 64-bit field as a bigint (exact). */
  u64n(off: number, what = 'u64'): bigint {
    this.check(off, 8, what);
    return this.view.getBigUint64(off, true);
  }

  /** A view of `len` bytes at `off` (no copy). */
  slice(off: number, len: number, what = 'bytes'): Uint8Array {
    this.check(off, len, what);
    return this.bytes.subarray(off, off + len);
  }

  /** The NUL-terminated string at `off`; a missing terminator is an error. */
  cstr(off: number, what = 'string'): string {
    if (!(off >= 0 && off < this.length)) {
      this.fail(`${what}: offset 0x${hex(off)} outside 0x${hex(this.length)} bytes`, off);
    }
    const end = this.bytes.indexOf(0, off);
    if (end < 0) this.fail(`${what}: string at 0x${hex(off)} is not NUL-terminated`, off);
    return UTF8.decode(this.bytes.subarray(off, end));
  }
}

const UTF8 = new TextDecoder('utf-8');

/** Lower-case hex without prefix, for messages. */
export function hex(n: number): string {
  return Number.isFinite(n) && n >= 0 ? Math.trunc(n).toString(16) : String(n);
}
