/**
 * Verification of sparse-Merkle proofs of the state tree (`crates/state/src/smt.rs`,
 * `specs/ledger.md#sparse-merkle-tree-state-commitment`).
 *
 * The full binary tree of depth 256 over 32-byte keys, bits most significant first. A
 * subtree with no leaf hashes to 32 zero bytes; a subtree with exactly one leaf `(k, v)` is
 * that leaf, `H(cachet/smt-leaf, k || v)`; a subtree with two or more leaves is
 * `H(cachet/smt-node, left || right)`.
 */

import { equalBytes } from "./bytes";
import { tagged, ZERO_HASH } from "./hash";
import type { Hash, SmtProof } from "./types";

const LEAF_TAG = "cachet/smt-leaf";
const NODE_TAG = "cachet/smt-node";

/** Hash of a leaf: `H(cachet/smt-leaf, key || value hash)`. */
export function leafHash(key: Hash, value: Hash): Hash {
  return tagged(LEAF_TAG, key, value);
}

/** Hash of an inner node: `H(cachet/smt-node, left || right)`. */
export function nodeHash(left: Hash, right: Hash): Hash {
  return tagged(NODE_TAG, left, right);
}

/** Bit `depth` of `key`, most significant first: `(k[d / 8] >> (7 - d % 8)) & 1`. */
export function bit(key: Hash, depth: number): boolean {
  return ((key[depth >> 3]! >> (7 - (depth & 7))) & 1) === 1;
}

/**
 * Checks a proof (`smt::verify`): `value` non-null claims that `key` holds that value hash,
 * null claims the key is absent. At most 256 siblings.
 */
export function verifySmt(root: Hash, key: Hash, value: Hash | null, proof: SmtProof): boolean {
  if (proof.siblings.length > 256) return false;
  const depth = proof.siblings.length;
  let start: Hash;
  if (proof.leaf !== null && value !== null) {
    const [leafKey, leafValue] = proof.leaf;
    if (!equalBytes(leafKey, key) || !equalBytes(leafValue, value)) return false;
    start = leafHash(leafKey, leafValue);
  } else if (proof.leaf !== null) {
    // Absence: another key sits where ours would be; it must share our path.
    const [leafKey, leafValue] = proof.leaf;
    let sharesPath = true;
    for (let d = 0; d < depth; d++) if (bit(leafKey, d) !== bit(key, d)) sharesPath = false;
    if (equalBytes(leafKey, key) || !sharesPath) return false;
    start = leafHash(leafKey, leafValue);
  } else if (value === null) {
    start = ZERO_HASH;
  } else {
    return false;
  }
  let hash = start;
  for (let d = depth - 1; d >= 0; d--) {
    const sibling = proof.siblings[d]!;
    hash = bit(key, d) ? nodeHash(sibling, hash) : nodeHash(hash, sibling);
  }
  return equalBytes(hash, root);
}
