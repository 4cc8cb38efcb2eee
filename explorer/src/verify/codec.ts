/**
 * Canonical binary encoding (`specs/encoding.md#canonical-binary-encoding-format-version-1`),
 * the writer half of `crates/types/src/codec.rs`.
 *
 * One byte `0x01` (the format version), then the value in bincode 2.0.1 with fixed-width
 * big-endian integers: `u8`..`u64` as 1..8 bytes; `bool` as 0 or 1; `Option<T>` as 0, or 1
 * then `T`; `Vec<T>` and `String` as a `u64` length then the items or UTF-8 bytes;
 * `[u8; N]` as the bytes alone; structs and tuples as their fields in order; enums as a
 * `u32` variant index then the variant's fields. The version byte appears once, at the
 * start of a top-level encoding.
 *
 * The verifier only ever encodes (to hash and to check signatures): every value arrives as
 * JSON, and every hash is recomputed from the encoding of the decoded value.
 */

import { type Bytes, utf8 } from "./bytes";

/** Version of the binary format; the first byte of every top-level encoding. */
export const FORMAT_VERSION = 1;

const U64_MAX = (1n << 64n) - 1n;

/** Appends canonical encodings of primitive values to a growing buffer. */
export class Writer {
  private buffer = new Uint8Array(256);
  private length = 0;

  private reserve(extra: number): void {
    const needed = this.length + extra;
    if (needed <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  /** One byte. */
  u8(value: number): this {
    checkInt(value, 0xff, "u8");
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  /** Two bytes, big-endian. */
  u16(value: number): this {
    checkInt(value, 0xffff, "u16");
    this.reserve(2);
    this.buffer[this.length++] = value >>> 8;
    this.buffer[this.length++] = value & 0xff;
    return this;
  }

  /** Four bytes, big-endian. */
  u32(value: number): this {
    checkInt(value, 0xffff_ffff, "u32");
    this.reserve(4);
    for (let shift = 24; shift >= 0; shift -= 8) {
      this.buffer[this.length++] = (value >>> shift) & 0xff;
    }
    return this;
  }

  /** Eight bytes, big-endian; a bigint so that every u64 is exact. */
  u64(value: bigint): this {
    if (value < 0n || value > U64_MAX) throw new RangeError(`u64 out of range: ${value}`);
    this.reserve(8);
    for (let shift = 56n; shift >= 0n; shift -= 8n) {
      this.buffer[this.length++] = Number((value >> shift) & 0xffn);
    }
    return this;
  }

  /** A bool: one byte, 0 or 1. */
  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  /** Fixed-size bytes (`[u8; N]`: hashes, keys, signatures): the bytes, no length. */
  fixed(bytes: Bytes, size: number): this {
    if (bytes.length !== size) {
      throw new RangeError(`expected ${size} bytes, got ${bytes.length}`);
    }
    this.reserve(size);
    this.buffer.set(bytes, this.length);
    this.length += size;
    return this;
  }

  /** A collection length (`Vec`, `String`): a u64. */
  len(count: number): this {
    return this.u64(BigInt(count));
  }

  /** A `String` (identifiers too): length then UTF-8 bytes. */
  string(text: string): this {
    const bytes = utf8(text);
    this.len(bytes.length);
    return this.fixed(bytes, bytes.length);
  }

  /** An enum variant index (a u32). */
  variant(index: number): this {
    return this.u32(index);
  }

  /** `Option<T>`: 0, or 1 then the value written by `put`. */
  option<T>(value: T | null, put: (w: Writer, v: T) => void): this {
    if (value === null) return this.u8(0);
    this.u8(1);
    put(this, value);
    return this;
  }

  /** `Vec<T>`: length, then each item written by `put`. */
  vec<T>(items: readonly T[], put: (w: Writer, v: T) => void): this {
    this.len(items.length);
    for (const item of items) put(this, item);
    return this;
  }

  /** The bytes written so far. */
  finish(): Bytes {
    return this.buffer.slice(0, this.length);
  }
}

function checkInt(value: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${what} out of range: ${value}`);
  }
}

/**
 * Encodes a value in its canonical form, version byte first (`codec::encode`): `put`
 * writes the value's fields without a version byte.
 */
export function encode(put: (w: Writer) => void): Bytes {
  const w = new Writer();
  w.u8(FORMAT_VERSION);
  put(w);
  return w.finish();
}
