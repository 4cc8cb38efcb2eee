//! Sparse Merkle tree over the state: the state commitment in every block header.
//!
//! Keys and values are 32-byte hashes. The tree is the full binary tree of depth 256 in which
//! every subtree holding no leaf hashes to zero and every subtree holding exactly one leaf is
//! that leaf, stored where its path first becomes unique. So the root is a function of the
//! set of (key, value) pairs alone, and a proof of one key is its leaf plus one sibling hash
//! per level above it (`specs/ledger.md#sparse-merkle-tree-state-commitment`).
//!
//! Only inner nodes with two or more leaves below are stored, under their path
//! ([`NodeKey`]); a stored node holds both children's summaries, so a walk costs one read per
//! level. Reads come from a [`NodeSource`] (the store), writes go back as a list.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use cachet_types::Hash;

use crate::StateError;

const LEAF_TAG: &str = "cachet/smt-leaf";
const NODE_TAG: &str = "cachet/smt-node";

/// A subtree as its parent sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub enum Child {
    /// No leaf below.
    #[default]
    Empty,
    /// Exactly one leaf below.
    Leaf {
        /// Leaf key.
        key: Hash,
        /// Hash of the leaf's value.
        value: Hash,
    },
    /// Two or more leaves below: a stored node with this hash.
    Node(Hash),
}

impl Child {
    /// The subtree's hash.
    pub fn hash(&self) -> Hash {
        match self {
            Child::Empty => Hash::ZERO,
            Child::Leaf { key, value } => leaf_hash(key, value),
            Child::Node(hash) => *hash,
        }
    }
}

/// Hash of a leaf.
pub fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    Hash::tagged(LEAF_TAG, &[key.as_bytes(), value.as_bytes()])
}

/// Hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::tagged(NODE_TAG, &[left.as_bytes(), right.as_bytes()])
}

/// A stored inner node: its two children.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Node {
    /// Subtree where the next key bit is 0.
    pub left: Child,
    /// Subtree where the next key bit is 1.
    pub right: Child,
}

impl Node {
    fn hash(&self) -> Hash {
        node_hash(&self.left.hash(), &self.right.hash())
    }
}

/// Where an inner node sits: its depth and the key bits above it (the rest zeroed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// Depth, 0 for the root.
    pub depth: u8,
    /// First `depth` bits of every key below, the rest zero.
    pub prefix: Hash,
}

impl NodeKey {
    /// 33-byte storage key: depth then prefix.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out[0] = self.depth;
        out[1..].copy_from_slice(self.prefix.as_bytes());
        out
    }

    fn child(&self, bit: bool) -> NodeKey {
        let mut prefix = self.prefix;
        if bit {
            set_bit(&mut prefix, self.depth);
        }
        NodeKey {
            depth: self.depth.saturating_add(1),
            prefix,
        }
    }
}

/// Reads stored inner nodes.
pub trait NodeSource {
    /// The node at `key`, if stored.
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, StateError>;

    /// Like [`NodeSource::node`], and whether the node is one this source holds in memory
    /// from its own tree updates, so that an update need not hash it again to trust it.
    /// Nodes read back from a disk say `false`, also when served again from a cache: their
    /// parent's hash is what catches a corrupt one.
    fn node_in_memory(&self, key: &NodeKey) -> Result<Option<(Node, bool)>, StateError> {
        Ok(self.node(key)?.map(|node| (node, false)))
    }
}

/// Bit `depth` of `key`, most significant first.
pub fn bit(key: &Hash, depth: u8) -> bool {
    let byte = key.0[usize::from(depth / 8)];
    (byte >> (7 - depth % 8)) & 1 == 1
}

fn set_bit(key: &mut Hash, depth: u8) {
    key.0[usize::from(depth / 8)] |= 1 << (7 - depth % 8);
}

/// Node writes of an update, each key at most once (None: delete).
pub type NodeWrites = Vec<(NodeKey, Option<Node>)>;

/// (key, value hash) pairs, sorted by key.
type Leaves = [(Hash, Hash)];

/// What an update did to the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The new root.
    pub root: Child,
    /// The node writes.
    pub writes: NodeWrites,
    /// Positions (indices into the updates) of the keys the tree did not hold before,
    /// ascending.
    pub inserted: Vec<usize>,
}

/// Inserts or replaces `updates` (sorted by key, unique) in the tree rooted at `root`.
pub fn update(
    source: &dyn NodeSource,
    root: Child,
    updates: &[(Hash, Hash)],
) -> Result<Updated, StateError> {
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    let mut writes = Vec::new();
    let mut inserted = Vec::new();
    let top = NodeKey {
        depth: 0,
        prefix: Hash::ZERO,
    };
    let root = update_at(source, top, root, updates, 0, &mut writes, &mut inserted)?;
    Ok(Updated {
        root,
        writes,
        inserted,
    })
}

fn split(updates: &Leaves, depth: u8) -> (&Leaves, &Leaves) {
    // Sorted keys sharing the prefix: the 0-bit ones come first.
    let at = updates.partition_point(|(key, _)| !bit(key, depth));
    updates.split_at(at)
}

/// `first` is the position of `updates[0]` among all the update's keys (for `inserted`).
fn update_at(
    source: &dyn NodeSource,
    at: NodeKey,
    current: Child,
    updates: &Leaves,
    first: usize,
    writes: &mut NodeWrites,
    inserted: &mut Vec<usize>,
) -> Result<Child, StateError> {
    if updates.is_empty() {
        return Ok(current);
    }
    match current {
        Child::Empty => {
            inserted.extend(first..first + updates.len());
            build(at, updates, writes)
        }
        Child::Leaf { key, value } => {
            let mut leaves = updates.to_vec();
            match leaves.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(replaced) => inserted
                    .extend((first..first + updates.len()).filter(|&i| i != first + replaced)),
                Err(pos) => {
                    inserted.extend(first..first + updates.len());
                    leaves.insert(pos, (key, value));
                }
            }
            build(at, &leaves, writes)
        }
        Child::Node(expected) => {
            let node = stored_node(source, at, expected)?;
            let (left_updates, right_updates) = split(updates, at.depth);
            let right_first = first + left_updates.len();
            let left = update_at(
                source,
                at.child(false),
                node.left,
                left_updates,
                first,
                writes,
                inserted,
            )?;
            let right = update_at(
                source,
                at.child(true),
                node.right,
                right_updates,
                right_first,
                writes,
                inserted,
            )?;
            Ok(join(at, left, right, writes))
        }
    }
}

/// The stored node at `at`, which its parent says hashes to `expected`. A node the source
/// holds from its own updates is not hashed again (half of an update's hashing in the upper
/// levels, which every block rewrites); one read from a disk is.
fn stored_node(source: &dyn NodeSource, at: NodeKey, expected: Hash) -> Result<Node, StateError> {
    let (node, in_memory) = source.node_in_memory(&at)?.ok_or(StateError::MissingNode {
        depth: at.depth,
        prefix: at.prefix,
    })?;
    debug_assert!(
        !in_memory || node.hash() == expected,
        "a node in memory is stale"
    );
    if !in_memory && node.hash() != expected {
        return Err(StateError::CorruptNode {
            depth: at.depth,
            prefix: at.prefix,
        });
    }
    Ok(node)
}

fn build(at: NodeKey, leaves: &Leaves, writes: &mut NodeWrites) -> Result<Child, StateError> {
    match leaves {
        [] => Ok(Child::Empty),
        [(key, value)] => Ok(Child::Leaf {
            key: *key,
            value: *value,
        }),
        _ => {
            if at.depth == u8::MAX {
                // Two distinct 256-bit keys always differ before the last bit.
                return Err(StateError::DuplicateKey);
            }
            let (left, right) = split(leaves, at.depth);
            let left = build(at.child(false), left, writes)?;
            let right = build(at.child(true), right, writes)?;
            Ok(join(at, left, right, writes))
        }
    }
}

fn join(at: NodeKey, left: Child, right: Child, writes: &mut NodeWrites) -> Child {
    match (left, right) {
        (Child::Empty, Child::Empty) => {
            writes.push((at, None));
            Child::Empty
        }
        (leaf @ Child::Leaf { .. }, Child::Empty) | (Child::Empty, leaf @ Child::Leaf { .. }) => {
            writes.push((at, None));
            leaf
        }
        _ => {
            let node = Node { left, right };
            writes.push((at, Some(node)));
            Child::Node(node.hash())
        }
    }
}

/// The subtree holding exactly `leaves` (sorted by key, unique, every key under `at`), built
/// from nothing: its summary and the nodes to store. A snapshot chunk is checked this way
/// against the summary its manifest proves.
pub fn subtree(at: NodeKey, leaves: &[(Hash, Hash)]) -> Result<(Child, NodeWrites), StateError> {
    if !leaves.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(StateError::DuplicateKey);
    }
    let mut writes = Vec::new();
    let child = build(at, leaves, &mut writes)?;
    writes.retain(|(_, node)| node.is_some());
    Ok((child, writes))
}

/// The key of subtree number `index` at `depth` (its prefix is `index` in `depth` bits).
pub fn subtree_key(depth: u8, index: u32) -> NodeKey {
    debug_assert!(depth <= 32 && u64::from(index) < 1u64 << depth);
    let mut prefix = Hash::ZERO;
    for d in 0..depth {
        if (index >> (depth - 1 - d)) & 1 == 1 {
            set_bit(&mut prefix, d);
        }
    }
    NodeKey { depth, prefix }
}

/// The number of the subtree at `depth` that holds `key` (the key's first `depth` bits).
pub fn subtree_index(key: &Hash, depth: u8) -> u32 {
    (0..depth).fold(0u32, |index, d| (index << 1) | u32::from(bit(key, d)))
}

/// The summaries of the 2^`depth` subtrees at `depth` of the tree rooted at `root`, in
/// prefix order: what a snapshot manifest lists.
pub fn summaries(
    source: &dyn NodeSource,
    root: Child,
    depth: u8,
) -> Result<Vec<Child>, StateError> {
    let top = NodeKey {
        depth: 0,
        prefix: Hash::ZERO,
    };
    let mut out = Vec::with_capacity(1usize << depth);
    summaries_at(source, top, root, depth, &mut out)?;
    Ok(out)
}

fn summaries_at(
    source: &dyn NodeSource,
    at: NodeKey,
    current: Child,
    depth: u8,
    out: &mut Vec<Child>,
) -> Result<(), StateError> {
    let below = 1usize << (depth - at.depth);
    match current {
        _ if at.depth == depth => out.push(current),
        Child::Empty => out.extend(std::iter::repeat_n(Child::Empty, below)),
        Child::Leaf { key, .. } => {
            // A single leaf sits in exactly one of the subtrees below; the rest are empty.
            let first = subtree_index(&at.prefix, depth) as usize;
            let own = subtree_index(&key, depth) as usize - first;
            out.extend((0..below).map(|i| if i == own { current } else { Child::Empty }));
        }
        Child::Node(expected) => {
            let node = stored_node(source, at, expected)?;
            summaries_at(source, at.child(false), node.left, depth, out)?;
            summaries_at(source, at.child(true), node.right, depth, out)?;
        }
    }
    Ok(())
}

/// The tree above `depth` whose subtrees there are `children` (2^`depth` summaries in
/// prefix order): its root and the nodes to store. The inverse of [`summaries`].
pub fn assemble(depth: u8, children: &[Child]) -> (Child, NodeWrites) {
    assert_eq!(children.len(), 1usize << depth, "one summary per subtree");
    let mut writes = Vec::new();
    let top = NodeKey {
        depth: 0,
        prefix: Hash::ZERO,
    };
    let root = assemble_at(top, children, &mut writes);
    writes.retain(|(_, node)| node.is_some());
    (root, writes)
}

fn assemble_at(at: NodeKey, children: &[Child], writes: &mut NodeWrites) -> Child {
    if let [only] = children {
        return *only;
    }
    let (left, right) = children.split_at(children.len() / 2);
    let left = assemble_at(at.child(false), left, writes);
    let right = assemble_at(at.child(true), right, writes);
    join(at, left, right, writes)
}

/// Proof of one key's value, or of its absence, against a root hash.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct SmtProof {
    /// Sibling hashes from the root down to where the walk ended.
    pub siblings: Vec<Hash>,
    /// The leaf where the walk ended (the key's own, or another with the same prefix), or
    /// None for an empty subtree.
    pub leaf: Option<(Hash, Hash)>,
}

/// Builds the proof for `key` in the tree rooted at `root`.
pub fn prove(source: &dyn NodeSource, root: Child, key: &Hash) -> Result<SmtProof, StateError> {
    let mut siblings = Vec::new();
    let mut at = NodeKey {
        depth: 0,
        prefix: Hash::ZERO,
    };
    let mut current = root;
    loop {
        match current {
            Child::Empty => {
                return Ok(SmtProof {
                    siblings,
                    leaf: None,
                });
            }
            Child::Leaf { key, value } => {
                return Ok(SmtProof {
                    siblings,
                    leaf: Some((key, value)),
                });
            }
            Child::Node(_) => {
                let node = source.node(&at)?.ok_or(StateError::MissingNode {
                    depth: at.depth,
                    prefix: at.prefix,
                })?;
                let go_right = bit(key, at.depth);
                let (next, sibling) = if go_right {
                    (node.right, node.left)
                } else {
                    (node.left, node.right)
                };
                siblings.push(sibling.hash());
                at = at.child(go_right);
                current = next;
            }
        }
    }
}

/// Checks a proof: `value` Some(v) claims key holds v; None claims the key is absent.
pub fn verify(root: &Hash, key: &Hash, value: Option<&Hash>, proof: &SmtProof) -> bool {
    if proof.siblings.len() > 256 {
        return false;
    }
    let depth = proof.siblings.len();
    let start = match (&proof.leaf, value) {
        (Some((leaf_key, leaf_value)), Some(v)) => {
            if leaf_key != key || leaf_value != v {
                return false;
            }
            leaf_hash(leaf_key, leaf_value)
        }
        (Some((leaf_key, leaf_value)), None) => {
            // Absence: another key sits where ours would be; it must share our path.
            let shares_path = (0..depth).all(|d| bit(leaf_key, d as u8) == bit(key, d as u8));
            if leaf_key == key || !shares_path {
                return false;
            }
            leaf_hash(leaf_key, leaf_value)
        }
        (None, None) => Hash::ZERO,
        (None, Some(_)) => return false,
    };
    let mut hash = start;
    for (d, sibling) in proof.siblings.iter().enumerate().rev() {
        hash = if bit(key, d as u8) {
            node_hash(sibling, &hash)
        } else {
            node_hash(&hash, sibling)
        };
    }
    hash == *root
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[derive(Default)]
    struct Memory(BTreeMap<NodeKey, Node>);

    impl NodeSource for Memory {
        fn node(&self, key: &NodeKey) -> Result<Option<Node>, StateError> {
            Ok(self.0.get(key).copied())
        }
    }

    impl Memory {
        fn apply(&mut self, root: Child, updates: &BTreeMap<Hash, Hash>) -> Child {
            self.apply_inserting(root, updates).0
        }

        /// Like `apply`, also returning the keys the update says are new to the tree.
        fn apply_inserting(
            &mut self,
            root: Child,
            updates: &BTreeMap<Hash, Hash>,
        ) -> (Child, Vec<Hash>) {
            let list: Vec<(Hash, Hash)> = updates.iter().map(|(k, v)| (*k, *v)).collect();
            let Updated {
                root,
                writes,
                inserted,
            } = update(self, root, &list).unwrap();
            assert!(inserted.windows(2).all(|w| w[0] < w[1]), "{inserted:?}");
            let inserted = inserted.into_iter().map(|i| list[i].0).collect();
            for (key, node) in writes {
                match node {
                    Some(node) => self.0.insert(key, node),
                    None => self.0.remove(&key),
                };
            }
            (root, inserted)
        }
    }

    fn h(n: u64) -> Hash {
        Hash::sha256(&n.to_be_bytes())
    }

    /// Reference: the root computed from scratch from the full set of leaves.
    fn reference_root(all: &BTreeMap<Hash, Hash>) -> Hash {
        let mut scratch = Memory::default();
        scratch.apply(Child::Empty, all).hash()
    }

    #[test]
    fn incremental_updates_match_a_fresh_build() {
        let mut tree = Memory::default();
        let mut root = Child::Empty;
        let mut all = BTreeMap::new();
        for round in 0..20u64 {
            let mut batch = BTreeMap::new();
            for i in 0..(round * 7 % 23 + 1) {
                // Mix new keys with overwrites of old ones.
                let key = h((round * 31 + i * 17) % 200);
                batch.insert(key, h(round * 1000 + i));
            }
            let (new_root, inserted) = tree.apply_inserting(root, &batch);
            root = new_root;
            let new_keys: Vec<Hash> = batch
                .keys()
                .filter(|key| !all.contains_key(*key))
                .copied()
                .collect();
            assert_eq!(inserted, new_keys, "round {round}: keys new to the tree");
            all.extend(batch);
            assert_eq!(root.hash(), reference_root(&all), "round {round}");
        }
        // Leaf-count-independent order: inserting in one batch gives the same root.
        assert_eq!(
            root.hash(),
            Memory::default().apply(Child::Empty, &all).hash()
        );
    }

    #[test]
    fn proofs_of_presence_and_absence() {
        let mut tree = Memory::default();
        let all: BTreeMap<Hash, Hash> = (0..50).map(|i| (h(i), h(i + 1000))).collect();
        let root = tree.apply(Child::Empty, &all);
        let root_hash = root.hash();
        for (key, value) in &all {
            let proof = prove(&tree, root, key).unwrap();
            assert!(verify(&root_hash, key, Some(value), &proof));
            assert!(!verify(&root_hash, key, Some(&h(7)), &proof));
            assert!(!verify(&root_hash, key, None, &proof));
        }
        for absent in 5000..5020 {
            let key = h(absent);
            let proof = prove(&tree, root, &key).unwrap();
            assert!(verify(&root_hash, &key, None, &proof));
            assert!(!verify(&root_hash, &key, Some(&h(1)), &proof));
        }
        // A proof against an older root fails after an update (stale proof).
        let key = h(3);
        let old = prove(&tree, root, &key).unwrap();
        let root2 = tree.apply(root, &BTreeMap::from([(key, h(9999))]));
        assert!(!verify(&root2.hash(), &key, Some(&h(1003)), &old));
        let new = prove(&tree, root2, &key).unwrap();
        assert!(verify(&root2.hash(), &key, Some(&h(9999)), &new));
    }

    #[test]
    fn empty_and_single_leaf_trees() {
        let tree = Memory::default();
        assert_eq!(Child::Empty.hash(), Hash::ZERO);
        let proof = prove(&tree, Child::Empty, &h(1)).unwrap();
        assert!(verify(&Hash::ZERO, &h(1), None, &proof));
        let mut tree = Memory::default();
        let root = tree.apply(Child::Empty, &BTreeMap::from([(h(1), h(2))]));
        assert_eq!(root.hash(), leaf_hash(&h(1), &h(2)));
        assert!(tree.0.is_empty());
    }

    #[test]
    fn summaries_assemble_back_to_the_root_and_subtrees_rebuild_them() {
        for count in [0u64, 1, 2, 3, 40, 300] {
            let mut tree = Memory::default();
            let all: BTreeMap<Hash, Hash> = (0..count).map(|i| (h(i), h(i + 7))).collect();
            let root = tree.apply(Child::Empty, &all);
            for depth in [0u8, 1, 3, 6] {
                let children = summaries(&tree, root, depth).unwrap();
                assert_eq!(children.len(), 1 << depth);
                let (assembled, top) = assemble(depth, &children);
                assert_eq!(assembled, root, "{count} leaves at depth {depth}");
                let mut rebuilt: BTreeMap<NodeKey, Node> =
                    top.into_iter().map(|(k, n)| (k, n.unwrap())).collect();
                for (index, summary) in children.iter().enumerate() {
                    let at = subtree_key(depth, index as u32);
                    let leaves: Vec<(Hash, Hash)> = all
                        .iter()
                        .filter(|(k, _)| subtree_index(k, depth) == index as u32)
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    let (child, writes) = subtree(at, &leaves).unwrap();
                    assert_eq!(child, *summary, "subtree {index} at depth {depth}");
                    rebuilt.extend(writes.into_iter().map(|(k, n)| (k, n.unwrap())));
                }
                // The rebuilt nodes are exactly the stored ones.
                assert_eq!(rebuilt, tree.0, "{count} leaves at depth {depth}");
            }
        }
    }

    #[test]
    fn subtree_keys_and_indexes_agree() {
        for depth in [0u8, 1, 5, 16] {
            for index in [0u32, 1, 7, 40_000] {
                if u64::from(index) >= 1 << depth {
                    continue;
                }
                let at = subtree_key(depth, index);
                assert_eq!(subtree_index(&at.prefix, depth), index);
            }
        }
        assert!(subtree(subtree_key(0, 0), &[(h(1), h(1)), (h(1), h(2))]).is_err());
    }

    #[test]
    fn tampered_store_is_detected() {
        let mut tree = Memory::default();
        let all: BTreeMap<Hash, Hash> = (0..10).map(|i| (h(i), h(i))).collect();
        let root = tree.apply(Child::Empty, &all);
        let top = NodeKey {
            depth: 0,
            prefix: Hash::ZERO,
        };
        let node = tree.0[&top];
        tree.0.insert(
            top,
            Node {
                left: node.right,
                right: node.left,
            },
        );
        let result = update(&tree, root, &[(h(100), h(1))]);
        assert!(matches!(
            result,
            Err(StateError::CorruptNode { depth: 0, .. })
        ));
        tree.0.remove(&top);
        let result = update(&tree, root, &[(h(100), h(1))]);
        assert!(matches!(
            result,
            Err(StateError::MissingNode { depth: 0, .. })
        ));
    }
}
