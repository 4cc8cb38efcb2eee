/**
 * One included transaction: its signature and chain, and its inclusion in its block
 * (`check_included` in `crates/provenance/src/lib.rs`).
 */

import { Failure } from "./failure";
import { verifyInclusion } from "./merkle";
import { txId, verifyTx, witnessHash } from "./tx";
import type { BlockHeader, Hash, IncludedTx } from "./types";

/** Verified headers by height. */
export type HeaderMap = Map<bigint, BlockHeader>;

/**
 * Checks one included transaction and returns its id: the transaction verifies (chain id,
 * form, keys and signatures; else `signature`); a header at its height is among `headers`
 * (else `missing_header`); its witness hash, recomputed from its encoding, is included
 * under that header's `tx_root` with `proof.count` equal to the header's `tx_count` (else
 * `not_included`). The id is recomputed from the transaction's signing bytes.
 */
export function checkIncluded(
  included: IncludedTx,
  what: string,
  chainId: Hash,
  headers: HeaderMap,
): Hash {
  const error = verifyTx(included.tx, chainId);
  if (error !== null) throw Failure.signature(what, error);
  const header = headers.get(included.height);
  if (header === undefined) throw Failure.missingHeader(included.height);
  const id = txId(included.tx);
  if (
    included.proof.count !== header.tx_count ||
    !verifyInclusion(header.tx_root, witnessHash(included.tx), included.proof)
  ) {
    throw Failure.notIncluded(what);
  }
  return id;
}
