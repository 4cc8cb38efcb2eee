/**
 * The binary Merkle tree over a block's transactions (RFC 6962 shape, domain-tagged),
 * `crates/types/src/merkle.rs`, `specs/encoding.md#transaction-tree-per-block`.
 *
 * The leaves are the transactions' witness hashes. The root of no leaves is
 * `H(cachet/tx-empty)`; of one, `H(cachet/tx-leaf, w)`; of `n > 1`, with `k` the largest
 * power of two below `n`, `H(cachet/tx-node, root(w[0..k]) || root(w[k..n]))`.
 */

import { equalBytes } from "./bytes";
import { tagged } from "./hash";
import type { Hash, InclusionProof } from "./types";

const LEAF_TAG = "cachet/tx-leaf";
const NODE_TAG = "cachet/tx-node";
const EMPTY_TAG = "cachet/tx-empty";

function leaf(witness: Hash): Hash {
  return tagged(LEAF_TAG, witness);
}

function node(left: Hash, right: Hash): Hash {
  return tagged(NODE_TAG, left, right);
}

/** Largest power of two strictly below `count` (for `count >= 2`). */
function splitPoint(count: number): number {
  let k = 1;
  while (k * 2 < count) k *= 2;
  return k;
}

function subtreeRoot(leaves: readonly Hash[]): Hash {
  if (leaves.length === 0) return tagged(EMPTY_TAG);
  if (leaves.length === 1) return leaf(leaves[0]!);
  const k = splitPoint(leaves.length);
  return node(subtreeRoot(leaves.slice(0, k)), subtreeRoot(leaves.slice(k)));
}

/** The Merkle root of a block's witness hashes, in block order (`tx_root`). */
export function txRoot(witnesses: readonly Hash[]): Hash {
  return subtreeRoot(witnesses);
}

/** The inclusion proof of `witnesses[index]`, or null if out of range (`inclusion_proof`). */
export function inclusionProof(witnesses: readonly Hash[], index: number): InclusionProof | null {
  if (!Number.isInteger(index) || index < 0 || index >= witnesses.length) return null;
  const path: Hash[] = [];
  let lo = 0;
  let hi = witnesses.length;
  let at = index;
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (at < k) {
      path.push(subtreeRoot(witnesses.slice(lo + k, hi)));
      hi = lo + k;
    } else {
      path.push(subtreeRoot(witnesses.slice(lo, lo + k)));
      lo += k;
      at -= k;
    }
  }
  return { index, count: witnesses.length, siblings: path.reverse() };
}

/**
 * Checks that the witness hash `witness` sits at `proof.index` among `proof.count` leaves
 * under `root` (`verify_inclusion`): the left/right path is recomputed from index and
 * count with the same split rule, and the proof must hold exactly that many siblings,
 * leaf first.
 */
export function verifyInclusion(root: Hash, witness: Hash, proof: InclusionProof): boolean {
  let lo = 0;
  let hi = proof.count;
  const at = proof.index;
  if (at >= hi) return false;
  const sides: boolean[] = []; // true: our subtree is the left child
  while (hi - lo > 1) {
    const k = splitPoint(hi - lo);
    if (at - lo < k) {
      sides.push(true);
      hi = lo + k;
    } else {
      sides.push(false);
      lo += k;
    }
  }
  if (sides.length !== proof.siblings.length) return false;
  let hash = leaf(witness);
  sides.reverse().forEach((isLeft, i) => {
    const sibling = proof.siblings[i]!;
    hash = isLeft ? node(hash, sibling) : node(sibling, hash);
  });
  return equalBytes(hash, root);
}
