/**
 * Small byte helpers shared by the verifier: strict lower-case hex, comparison, UTF-8.
 *
 * Hex text forms follow `specs/api.md#conventions`: lower-case only, exactly the
 * expected number of digits (`crates/types/src/hash.rs`, `keys.rs`: upper case is refused
 * so that every value has one text form).
 */

import { hex } from "@scure/base";

/** Bytes, as everywhere in the verifier. */
export type Bytes = Uint8Array;

const LOWER_HEX = /^[0-9a-f]*$/;

/** Parses exactly `length` bytes of lower-case hex; null if the text is anything else. */
export function parseHex(text: string, length: number): Bytes | null {
  if (text.length !== 2 * length || !LOWER_HEX.test(text)) return null;
  return hex.decode(text);
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Bytes): string {
  return hex.encode(bytes);
}

/** True if both byte strings are equal. */
export function equalBytes(a: Bytes, b: Bytes): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lexicographic order of byte strings (as Rust's `Ord` for `[u8; N]`): <0, 0 or >0. */
export function compareBytes(a: Bytes, b: Bytes): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

const ENCODER = new TextEncoder();

/** UTF-8 bytes of a string (the caller has refused lone surrogates, see `json.ts`). */
export function utf8(text: string): Bytes {
  return ENCODER.encode(text);
}

/** ASCII bytes of a constant (domain tags), padded with zero bytes to `length`. */
export function asciiPadded(text: string, length: number): Bytes {
  const out = new Uint8Array(length);
  out.set(utf8(text));
  return out;
}
