/**
 * SHA-256 with domain separation (`specs/encoding.md#hashes`, `crates/types/src/hash.rs`).
 */

import { sha256 } from "@noble/hashes/sha2.js";

import { type Bytes, utf8 } from "./bytes";
import type { Hash } from "./types";

/** The all-zero hash: "nothing before" (first event of a stamp, an empty subtree). */
export const ZERO_HASH: Hash = new Uint8Array(32);

/**
 * A tagged hash, `SHA-256(len(tag) as one byte || tag || part_1 || part_2 || ...)`
 * (`Hash::tagged`): the parts are concatenated with nothing between them.
 */
export function tagged(tag: string, ...parts: Bytes[]): Hash {
  const tagBytes = utf8(tag);
  if (tagBytes.length > 255) throw new RangeError("hash tag too long");
  const hasher = sha256.create();
  hasher.update(Uint8Array.of(tagBytes.length));
  hasher.update(tagBytes);
  for (const part of parts) hasher.update(part);
  return hasher.digest();
}

/** Plain SHA-256 (as for an artwork's `design_sha256`). */
export function plainSha256(bytes: Bytes): Hash {
  return sha256(bytes);
}
