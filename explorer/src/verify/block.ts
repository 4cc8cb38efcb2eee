/**
 * Block headers and commit certificates (`crates/types/src/block.rs`,
 * `specs/ledger.md#blocks-and-certificates`).
 */

import { equalBytes, toHex } from "./bytes";
import { encodeHeader, precommitSigningBytes } from "./encodings";
import { tagged } from "./hash";
import { verifySignature } from "./keys";
import type { BlockHeader, CommitCertificate, Hash, PublicKey } from "./types";

/** Hash tag of block headers. */
export const BLOCK_HASH_TAG = "cachet/block";

/** The block hash: `H(cachet/block, encode(header))`. */
export function headerHash(header: BlockHeader): Hash {
  return tagged(BLOCK_HASH_TAG, encodeHeader(header));
}

/** Smallest number of validators that is more than two thirds of `total`: `floor(2n/3) + 1`. */
export function quorum(total: number): number {
  return Math.floor((total * 2) / 3) + 1;
}

/**
 * Checks that `cert` finalizes `header` under `validators`, the validator keys of the
 * header's height by index (`CommitCertificate::verify`), in the Rust order: it names this
 * header's height and hash; its validator indices strictly increase and are below the
 * validator count; it has at least a quorum of signatures; each is a valid precommit
 * signature (ZIP-215, the key checked first) over
 * `(chain_id, precommit, height, round, block_hash)`. Returns the error message (the Rust
 * `CertificateError` Display) or null.
 */
export function verifyCertificate(
  cert: CommitCertificate,
  header: BlockHeader,
  validators: readonly PublicKey[],
): string | null {
  const hash = headerHash(header);
  if (cert.height !== header.height || !equalBytes(cert.block_hash, hash)) {
    return `certificate is for block ${toHex(cert.block_hash)} at height ${cert.height}`;
  }
  const sigs = cert.signatures;
  const increasing = sigs.every((s, i) => i === 0 || sigs[i - 1]!.validator < s.validator);
  const inRange = sigs.every((s) => s.validator < validators.length);
  if (!increasing || !inRange) return "certificate signer list is malformed";
  if (sigs.length < quorum(validators.length)) {
    return `certificate has ${sigs.length} of ${validators.length} validator signatures; more than two thirds are needed`;
  }
  const message = precommitSigningBytes(header.chain_id, header.height, cert.round, hash);
  for (const entry of sigs) {
    const key = validators[entry.validator];
    if (key === undefined) return "certificate signer list is malformed";
    if (verifySignature(key, message, entry.signature) !== null) {
      return `certificate signature of validator ${entry.validator} does not verify`;
    }
  }
  return null;
}
