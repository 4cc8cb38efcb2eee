/**
 * Ed25519 keys and signatures under Cachet's one validity rule, and account addresses
 * (`crates/types/src/keys.rs`; `specs/encoding.md#signatures`,
 * `specs/ledger.md#canonical-account-keys`, `specs/encoding.md#account-addresses`).
 *
 * Signatures are verified under ZIP-215 (as `ed25519-zebra` does): `R` may be a
 * non-canonical encoding, `s` must be below the group order, the check is cofactored.
 * Keys are stricter: a key that is or acts as an account must be the canonical encoding of
 * a point of the prime-order subgroup, checked before its signature.
 */

import { ed25519 } from "@noble/curves/ed25519.js";
import { bech32m } from "@scure/base";

import { type Bytes, equalBytes } from "./bytes";
import type { Address, PublicKey, Signature } from "./types";

/** Human-readable prefix of account addresses. */
export const ADDRESS_HRP = "cachet";

/** Why a key or signature was refused (`SignatureError`), with its Display text. */
export type SignatureError =
  | "invalid_key"
  | "weak_key"
  | "non_canonical_key"
  | "mixed_order_key"
  | "bad_signature";

/** The Rust Display text of each `SignatureError`. */
export const SIGNATURE_ERROR_TEXT: Record<SignatureError, string> = {
  invalid_key: "public key is not a valid curve point",
  weak_key: "public key is a weak (small-order) key",
  non_canonical_key: "public key is not the canonical encoding of its point",
  mixed_order_key: "public key has a torsion component (mixed order)",
  bad_signature: "signature does not verify",
};

/**
 * Checks that a key may be an account (`PublicKey::check_account`): in this order, it
 * decodes to a curve point (`invalid_key`), is not of small order (`weak_key`), re-encodes
 * to the same bytes (`non_canonical_key`), and has no torsion component
 * (`mixed_order_key`). Returns null when the key passes.
 *
 * The decoding is curve25519-dalek's: the sign bit is taken as given and `y` may be any
 * 255-bit value (reduced modulo p), which is noble's ZIP-215 decoding; rule 3 then refuses
 * every encoding but the point's canonical one.
 */
export function checkAccount(key: PublicKey): SignatureError | null {
  if (key.length !== 32) return "invalid_key";
  let point;
  try {
    point = ed25519.Point.fromBytes(key, true);
  } catch {
    return "invalid_key";
  }
  if (point.isSmallOrder()) return "weak_key";
  if (!equalBytes(point.toBytes(), key)) return "non_canonical_key";
  if (!point.isTorsionFree()) return "mixed_order_key";
  return null;
}

/**
 * Verifies `signature` over `message` under ZIP-215 for a key that passes
 * {@link checkAccount} (`PublicKey::verify`). Returns null when it verifies, else the reason.
 */
export function verifySignature(
  key: PublicKey,
  message: Bytes,
  signature: Signature,
): SignatureError | null {
  const keyError = checkAccount(key);
  if (keyError !== null) return keyError;
  if (signature.length !== 64) return "bad_signature";
  let valid: boolean;
  try {
    valid = ed25519.verify(signature, message, key, { zip215: true });
  } catch {
    valid = false;
  }
  return valid ? null : "bad_signature";
}

/** The bech32m text of an account: `cachet1...`, lower case, with checksum. */
export function formatAddress(address: Address): string {
  return bech32m.encode(ADDRESS_HRP, bech32m.toWords(address));
}

/**
 * Parses an account address (`Address::from_str`): bech32m with a valid checksum, the
 * prefix `cachet`, no upper-case letter, exactly 32 bytes of data, and the 4 bits left over
 * after the 32nd byte (in the 52nd character) zero, so that an account has one spelling.
 * Null if not.
 */
export function parseAddress(text: string): Address | null {
  if (/[A-Z]/.test(text)) return null;
  let decoded;
  try {
    decoded = bech32m.decode(text, false);
  } catch {
    return null;
  }
  if (decoded.prefix !== ADDRESS_HRP) return null;
  // 52 five-bit words are 260 bits: 32 bytes and 4 bits the Rust decoder ignores. Any other
  // count gives another number of bytes than 32.
  if (decoded.words.length !== 52) return null;
  if ((decoded.words[51]! & 0b01111) !== 0) return null;
  const words = decoded.words.slice();
  try {
    return bech32m.fromWords(words);
  } catch {
    return null;
  }
}
