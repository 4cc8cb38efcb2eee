//! Binary Merkle tree over a block's transactions (RFC 6962 shape, domain-tagged hashes).
//!
//! The leaves are the transactions' witness hashes (of their exact bytes, signatures
//! included), so a header commits to one byte form of its block, not only to the ids.
//! `root([])` is the hash of nothing; a leaf is `H(tx-leaf, witness hash)`; an inner node is
//! `H(tx-node, left || right)`, splitting at the largest power of two below the count, so no
//! leaf is ever duplicated and two lists never share a root (`specs/encoding.md`).

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::hash::Hash;

const LEAF_TAG: &str = "cachet/tx-leaf";
const NODE_TAG: &str = "cachet/tx-node";
const EMPTY_TAG: &str = "cachet/tx-empty";

fn leaf(id: &Hash) -> Hash {
    Hash::tagged(LEAF_TAG, &[id.as_bytes()])
}

fn node(left: &Hash, right: &Hash) -> Hash {
    Hash::tagged(NODE_TAG, &[left.as_bytes(), right.as_bytes()])
}

fn split_point(count: usize) -> usize {
    // Largest power of two strictly below count (count >= 2).
    let mut k = 1;
    while k * 2 < count {
        k *= 2;
    }
    k
}

fn subtree_root(ids: &[Hash]) -> Hash {
    match ids {
        [] => Hash::tagged(EMPTY_TAG, &[]),
        [one] => leaf(one),
        _ => {
            let (left, right) = ids.split_at(split_point(ids.len()));
            node(&subtree_root(left), &subtree_root(right))
        }
    }
}

/// The Merkle root of a list of leaf hashes (the transactions' witness hashes).
pub fn tx_root(ids: &[Hash]) -> Hash {
    subtree_root(ids)
}

/// Proof that one id sits at `index` among `count` ids under a root.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Position of the leaf.
    pub index: u32,
    /// Number of leaves.
    pub count: u32,
    /// Sibling hashes from the leaf up to the root.
    pub siblings: Vec<Hash>,
}

/// Builds the inclusion proof for `ids[index]`, or None if out of range.
pub fn inclusion_proof(ids: &[Hash], index: usize) -> Option<InclusionProof> {
    if index >= ids.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let (mut lo, mut hi, mut at) = (0usize, ids.len(), index);
    let mut path = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if at < k {
            path.push(subtree_root(&ids[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(subtree_root(&ids[lo..lo + k]));
            lo += k;
            at -= k;
        }
    }
    siblings.extend(path.into_iter().rev());
    Some(InclusionProof {
        index: u32::try_from(index).ok()?,
        count: u32::try_from(ids.len()).ok()?,
        siblings,
    })
}

/// Checks that the leaf hash `id` (a witness hash) is included under `root` by `proof`.
pub fn verify_inclusion(root: &Hash, id: &Hash, proof: &InclusionProof) -> bool {
    // Walk down to find, for each level, whether our subtree is the left or right one.
    let (mut lo, mut hi, at) = (0u64, u64::from(proof.count), u64::from(proof.index));
    if at >= hi {
        return false;
    }
    let mut sides = Vec::new(); // true: we are the left child
    while hi - lo > 1 {
        let k = split_point((hi - lo) as usize) as u64;
        if at - lo < k {
            sides.push(true);
            hi = lo + k;
        } else {
            sides.push(false);
            lo += k;
        }
    }
    if sides.len() != proof.siblings.len() {
        return false;
    }
    let mut hash = leaf(id);
    for (is_left, sibling) in sides.iter().rev().zip(&proof.siblings) {
        hash = if *is_left {
            node(&hash, sibling)
        } else {
            node(sibling, &hash)
        };
    }
    hash == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<Hash> {
        (0..n).map(|i| Hash::sha256(&i.to_be_bytes())).collect()
    }

    #[test]
    fn roots_differ_by_count_and_order() {
        assert_ne!(tx_root(&ids(2)), tx_root(&ids(3)));
        let mut swapped = ids(3);
        swapped.swap(0, 1);
        assert_ne!(tx_root(&ids(3)), tx_root(&swapped));
        // No duplication trick: [a, b, c] and [a, b, c, c] differ.
        let mut dup = ids(3);
        dup.push(dup[2]);
        assert_ne!(tx_root(&ids(3)), tx_root(&dup));
    }

    #[test]
    fn every_leaf_proves_and_nothing_else_does() {
        for n in 1..20 {
            let list = ids(n);
            let root = tx_root(&list);
            for (i, id) in list.iter().enumerate() {
                let proof = inclusion_proof(&list, i).unwrap();
                assert!(verify_inclusion(&root, id, &proof), "n={n} i={i}");
                assert!(!verify_inclusion(&root, &Hash::ZERO, &proof));
                let mut moved = proof.clone();
                moved.index = ((i + 1) % n) as u32;
                if n > 1 {
                    assert!(!verify_inclusion(&root, id, &moved));
                }
            }
            assert!(inclusion_proof(&list, n).is_none());
        }
    }
}
