//! Sparse Merkle tree over the state: the state commitment in every block header.
//!
//! Keys and values are 32-byte hashes. The tree is the full binary tree of depth 256 in which
//! every subtree holding no leaf hashes to zero and every subtree holding exactly one leaf is
//! that leaf, stored where its path first becomes unique. So the root is a function of the
//! set of (key, value) pairs alone, and a proof of one key is its leaf plus one sibling hash
//! per level above it (`specs/ledger.md#sparse-merkle-tree-state-commitment`).
//!
//! The commitment is binary; storage is not. The tree is stored in [`Page`]s of
//! [`PAGE_LEVELS`] binary levels: the page under a node at a depth that is a multiple of 4
//! holds every binary node down to the next such depth (15 at most) as their 30 children,
//! and is stored only when that node has two or more leaves below. An update reads and
//! writes one page per four levels instead of one node per level (a 16-ary tree's I/O, as
//! Jellyfish-style trees do, with the binary tree's hashes and proofs). Pages are keyed by
//! [`NodeKey`] (depth, prefix); reads come from a [`PageSource`] (the store), writes go back
//! as a list.

use std::sync::Arc;

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use cachet_types::Hash;

use crate::StateError;

const LEAF_TAG: &str = "cachet/smt-leaf";
const NODE_TAG: &str = "cachet/smt-node";

/// Binary levels one stored page spans: pages sit at depths 0, 4, 8, ... 252.
pub const PAGE_LEVELS: u8 = 4;
/// The subtrees at the bottom of a page (the roots of the pages below it).
const SLOTS: usize = 1 << PAGE_LEVELS;
/// Entries a page stores: every position below its root, 2 + 4 + 8 + 16.
const ENTRIES: usize = 2 * SLOTS - 2;
/// Largest encoded page: the format byte, two u32 position maps, the hashes' u64 count and
/// two hashes for each of the 30 entries.
pub const MAX_PAGE_BYTES: usize = 1 + 4 + 4 + 8 + ENTRIES * 2 * 32;

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
    /// Two or more leaves below: an inner node with this hash.
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

/// A stored page: the binary subtree of [`PAGE_LEVELS`] levels below an inner node (the
/// page's root) whose depth is a multiple of [`PAGE_LEVELS`].
///
/// Positions number that subtree as a heap: 1 is the root (not stored: its parent holds its
/// hash), the children of position p are 2p and 2p + 1, and 16..=31 are the roots of the
/// pages one level of pages down. The entry at a position is the binary child there if the
/// position's parent is an inner node, and empty otherwise, so a page is a function of the
/// leaves below its root. Only the non-empty entries are held (a low page holds a few
/// leaves), in position order: an inner node's hash, or a leaf's key and value hash.
///
/// A page also knows, in memory only, which of its inner nodes it has checked: bit p of
/// `checked` says the children at 2p and 2p + 1 hash to the node at p (position 1: to the
/// hash the parent gives). An update sets the bits of the nodes it builds and of those whose
/// children it hashes; a page decoded from disk has none, so each of its nodes is hashed
/// the first time a walk needs it, also after a commit wrote the page back (a node the walk
/// did not need stays unchecked).
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Bit p: the entry at position p is an inner node (one hash in `hashes`).
    nodes: u32,
    /// Bit p: the entry at position p is a leaf (two hashes in `hashes`).
    leaves: u32,
    /// The non-empty entries' hashes, in position order.
    hashes: Vec<Hash>,
    /// Bit p: the inner node at p is checked against its children (not stored).
    checked: u32,
}

/// Pages are equal when their entries are: what has been checked is not part of the value.
impl PartialEq for Page {
    fn eq(&self, other: &Page) -> bool {
        (self.nodes, self.leaves, &self.hashes) == (other.nodes, other.leaves, &other.hashes)
    }
}

impl Eq for Page {}

impl Page {
    /// A page with no entries (what a new inner node's page starts as).
    pub const EMPTY: Page = Page {
        nodes: 0,
        leaves: 0,
        hashes: Vec::new(),
        checked: 0,
    };

    /// Where the hashes of `position` begin.
    fn offset(&self, position: usize) -> usize {
        let below = (1u32 << position) - 1;
        ((self.nodes & below).count_ones() + 2 * (self.leaves & below).count_ones()) as usize
    }

    /// The entry at `position` (2..=31).
    pub fn get(&self, position: usize) -> Child {
        debug_assert!((2..2 * SLOTS).contains(&position), "position {position}");
        let bit = 1u32 << position;
        let at = self.offset(position);
        if self.nodes & bit != 0 {
            Child::Node(self.hashes[at])
        } else if self.leaves & bit != 0 {
            Child::Leaf {
                key: self.hashes[at],
                value: self.hashes[at + 1],
            }
        } else {
            Child::Empty
        }
    }

    fn set(&mut self, position: usize, child: Child) {
        debug_assert!((2..2 * SLOTS).contains(&position), "position {position}");
        let bit = 1u32 << position;
        let at = self.offset(position);
        let held = if self.nodes & bit != 0 {
            1
        } else if self.leaves & bit != 0 {
            2
        } else {
            0
        };
        self.nodes &= !bit;
        self.leaves &= !bit;
        match child {
            Child::Empty => {
                self.hashes.drain(at..at + held);
            }
            Child::Node(hash) => {
                self.nodes |= bit;
                self.hashes.splice(at..at + held, [hash]);
            }
            Child::Leaf { key, value } => {
                self.leaves |= bit;
                self.hashes.splice(at..at + held, [key, value]);
            }
        }
    }

    /// The children of the inner node at `position` (1..=15).
    pub fn children(&self, position: usize) -> (Child, Child) {
        (self.get(2 * position), self.get(2 * position + 1))
    }
}

/// A page's encoding: the two position maps (u32), then the hashes.
impl Encode for Page {
    fn encode<E: bincode::enc::Encoder>(
        &self,
        encoder: &mut E,
    ) -> Result<(), bincode::error::EncodeError> {
        self.nodes.encode(encoder)?;
        self.leaves.encode(encoder)?;
        self.hashes.encode(encoder)
    }
}

impl<Context> Decode<Context> for Page {
    fn decode<D: bincode::de::Decoder<Context = Context>>(
        decoder: &mut D,
    ) -> Result<Self, bincode::error::DecodeError> {
        let nodes = u32::decode(decoder)?;
        let leaves = u32::decode(decoder)?;
        let hashes = Vec::<Hash>::decode(decoder)?;
        // Positions 0 and 1 are not entries; no position is both; an entry below the page's
        // root sits under an inner node; one hash per node, two per leaf.
        let occupied = nodes | leaves;
        let expected = nodes.count_ones() as usize + 2 * leaves.count_ones() as usize;
        let orphans =
            (4..2 * SLOTS).any(|p| occupied & (1u32 << p) != 0 && nodes & (1u32 << (p / 2)) == 0);
        if occupied & 0b11 != 0 || nodes & leaves != 0 || orphans || hashes.len() != expected {
            return Err(bincode::error::DecodeError::Other(
                "a state tree page whose maps and hashes disagree",
            ));
        }
        Ok(Page {
            nodes,
            leaves,
            hashes,
            checked: 0,
        })
    }
}

/// Where an inner node sits, and so where its page is when its depth is a multiple of
/// [`PAGE_LEVELS`]: its depth and the key bits above it (the rest zeroed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey {
    /// Depth, 0 for the root.
    pub depth: u8,
    /// First `depth` bits of every key below, the rest zero.
    pub prefix: Hash,
}

impl NodeKey {
    /// The tree's root, where the first page sits.
    pub const ROOT: NodeKey = NodeKey {
        depth: 0,
        prefix: Hash::ZERO,
    };

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

/// Reads stored pages: as an update wrote them (with what it checked), or decoded from a
/// disk (nothing checked; the hashes above catch a corrupt one).
pub trait PageSource {
    /// The page at `key` (a depth that is a multiple of [`PAGE_LEVELS`]), if stored.
    fn page(&self, key: &NodeKey) -> Result<Option<Arc<Page>>, StateError>;
}

/// Bit `depth` of `key`, most significant first.
pub fn bit(key: &Hash, depth: u8) -> bool {
    let byte = key.0[usize::from(depth / 8)];
    (byte >> (7 - depth % 8)) & 1 == 1
}

fn set_bit(key: &mut Hash, depth: u8) {
    key.0[usize::from(depth / 8)] |= 1 << (7 - depth % 8);
}

/// Pages an update writes, each key at most once. None is ever deleted: no update removes a
/// leaf, so an inner node stays one.
pub type PageWrites = Vec<(NodeKey, Arc<Page>)>;

/// (key, value hash) pairs, sorted by key.
type Leaves = [(Hash, Hash)];

/// What an update did to the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    /// The new root.
    pub root: Child,
    /// The page writes.
    pub writes: PageWrites,
    /// Positions (indices into the updates) of the keys the tree did not hold before,
    /// ascending.
    pub inserted: Vec<usize>,
}

/// An update in progress.
struct Walk<'a> {
    source: &'a dyn PageSource,
    writes: PageWrites,
    inserted: Vec<usize>,
}

impl Walk<'_> {
    /// The stored page at `at` (an inner node's, so it must be there), as a copy to change.
    fn load(&self, at: NodeKey) -> Result<Page, StateError> {
        let page = self.source.page(&at)?.ok_or(missing(at))?;
        Ok(Page::clone(&page))
    }
}

fn missing(at: NodeKey) -> StateError {
    StateError::MissingNode {
        depth: at.depth,
        prefix: at.prefix,
    }
}

/// Inserts or replaces `updates` (sorted by key, unique) in the tree rooted at `root`.
pub fn update(
    source: &dyn PageSource,
    root: Child,
    updates: &[(Hash, Hash)],
) -> Result<Updated, StateError> {
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    let mut walk = Walk {
        source,
        writes: Vec::new(),
        inserted: Vec::new(),
    };
    let root = update_page(&mut walk, NodeKey::ROOT, root, updates, 0)?;
    Ok(Updated {
        root,
        writes: walk.writes,
        inserted: walk.inserted,
    })
}

fn split(updates: &Leaves, depth: u8) -> (&Leaves, &Leaves) {
    // Sorted keys sharing the prefix: the 0-bit ones come first.
    let at = updates.partition_point(|(key, _)| !bit(key, depth));
    updates.split_at(at)
}

/// Updates the subtree at `at`, a page boundary. `first` is the position of `updates[0]`
/// among all the update's keys (for `inserted`).
fn update_page(
    walk: &mut Walk,
    at: NodeKey,
    current: Child,
    updates: &Leaves,
    first: usize,
) -> Result<Child, StateError> {
    if updates.is_empty() {
        return Ok(current);
    }
    let stored = matches!(current, Child::Node(_));
    let mut page = if stored { walk.load(at)? } else { Page::EMPTY };
    let root = update_in(walk, &mut page, at, 1, current, updates, first)?;
    if matches!(root, Child::Node(_)) {
        walk.writes.push((at, Arc::new(page)));
    } else {
        // Two or more leaves stay two or more: updates only insert or replace.
        assert!(
            !stored,
            "an update left fewer than two leaves under a stored page"
        );
    }
    Ok(root)
}

/// Updates the subtree at `position` of `page`.
fn update_in(
    walk: &mut Walk,
    page: &mut Page,
    at: NodeKey,
    position: usize,
    current: Child,
    updates: &Leaves,
    first: usize,
) -> Result<Child, StateError> {
    if updates.is_empty() {
        return Ok(current);
    }
    if position >= SLOTS {
        return update_page(walk, at, current, updates, first);
    }
    match current {
        Child::Empty => {
            walk.inserted.extend(first..first + updates.len());
            build_in(walk, page, at, position, updates)
        }
        Child::Leaf { key, value } => {
            let mut leaves = updates.to_vec();
            match leaves.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(replaced) => walk
                    .inserted
                    .extend((first..first + updates.len()).filter(|&i| i != first + replaced)),
                Err(pos) => {
                    walk.inserted.extend(first..first + updates.len());
                    leaves.insert(pos, (key, value));
                }
            }
            build_in(walk, page, at, position, &leaves)
        }
        Child::Node(expected) => {
            let (left, right) = checked_children(page, at, position, expected)?;
            page.checked |= 1 << position;
            let (left_updates, right_updates) = split(updates, at.depth);
            let right_first = first + left_updates.len();
            let left = update_in(
                walk,
                page,
                at.child(false),
                2 * position,
                left,
                left_updates,
                first,
            )?;
            let right = update_in(
                walk,
                page,
                at.child(true),
                2 * position + 1,
                right,
                right_updates,
                right_first,
            )?;
            Ok(join_in(page, position, left, right))
        }
    }
}

/// The children of the inner node at `position`, which its parent says hashes to
/// `expected`. A node the page has checked already (built or checked by an update) is not
/// hashed again (half of an update's hashing in the upper levels, which every block
/// rewrites); any other is, one node per level walked.
fn checked_children(
    page: &Page,
    at: NodeKey,
    position: usize,
    expected: Hash,
) -> Result<(Child, Child), StateError> {
    let (left, right) = page.children(position);
    let checked = page.checked & (1 << position) != 0;
    debug_assert!(
        !checked || node_hash(&left.hash(), &right.hash()) == expected,
        "a page in memory is stale"
    );
    if !checked && node_hash(&left.hash(), &right.hash()) != expected {
        return Err(StateError::CorruptNode {
            depth: at.depth,
            prefix: at.prefix,
        });
    }
    Ok((left, right))
}

/// Builds the subtree holding exactly `leaves` at `position` of `page` (empty there).
fn build_in(
    walk: &mut Walk,
    page: &mut Page,
    at: NodeKey,
    position: usize,
    leaves: &Leaves,
) -> Result<Child, StateError> {
    match leaves {
        [] => Ok(Child::Empty),
        [(key, value)] => Ok(Child::Leaf {
            key: *key,
            value: *value,
        }),
        _ if position >= SLOTS => {
            let mut below = Page::EMPTY;
            let root = build_in(walk, &mut below, at, 1, leaves)?;
            walk.writes.push((at, Arc::new(below)));
            Ok(root)
        }
        _ => {
            if at.depth == u8::MAX {
                // Two distinct 256-bit keys always differ before the last bit.
                return Err(StateError::DuplicateKey);
            }
            let (left, right) = split(leaves, at.depth);
            let left = build_in(walk, page, at.child(false), 2 * position, left)?;
            let right = build_in(walk, page, at.child(true), 2 * position + 1, right)?;
            Ok(join_in(page, position, left, right))
        }
    }
}

/// The subtree at `position` whose halves are `left` and `right`: an inner node (its
/// children entered in `page`) or, with at most one leaf, that leaf or nothing.
fn join_in(page: &mut Page, position: usize, left: Child, right: Child) -> Child {
    match (left, right) {
        (Child::Empty, Child::Empty) => Child::Empty,
        (leaf @ Child::Leaf { .. }, Child::Empty) | (Child::Empty, leaf @ Child::Leaf { .. }) => {
            // Entries below a position that is not an inner node are empty; only an inner
            // node (two or more leaves) could have put any there, and no update removes a
            // leaf, so there are none to clear.
            debug_assert!(page.get(2 * position) == Child::Empty);
            debug_assert!(page.get(2 * position + 1) == Child::Empty);
            leaf
        }
        _ => {
            page.set(2 * position, left);
            page.set(2 * position + 1, right);
            page.checked |= 1 << position;
            Child::Node(node_hash(&left.hash(), &right.hash()))
        }
    }
}

/// The subtree holding exactly `leaves` (sorted by key, unique, every key under `at`, a page
/// boundary), built from nothing: its summary and the pages to store. A snapshot chunk is
/// checked this way against the summary its manifest proves.
pub fn subtree(at: NodeKey, leaves: &[(Hash, Hash)]) -> Result<(Child, PageWrites), StateError> {
    assert_eq!(
        at.depth % PAGE_LEVELS,
        0,
        "subtrees start at page boundaries"
    );
    if !leaves.windows(2).all(|w| w[0].0 < w[1].0) {
        return Err(StateError::DuplicateKey);
    }
    let mut walk = Walk {
        source: &NoPages,
        writes: Vec::new(),
        inserted: Vec::new(),
    };
    // A page boundary is a bottom slot of the page above (not built here).
    let mut above = Page::EMPTY;
    let child = build_in(&mut walk, &mut above, at, SLOTS, leaves)?;
    Ok((child, walk.writes))
}

/// The source of a tree built from nothing.
struct NoPages;

impl PageSource for NoPages {
    fn page(&self, _: &NodeKey) -> Result<Option<Arc<Page>>, StateError> {
        Ok(None)
    }
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
/// prefix order: what a snapshot manifest lists. Every stored node walked is checked (or was,
/// by the update that wrote or walked it).
pub fn summaries(
    source: &dyn PageSource,
    root: Child,
    depth: u8,
) -> Result<Vec<Child>, StateError> {
    let mut out = Vec::with_capacity(1usize << depth);
    summaries_at(source, None, NodeKey::ROOT, SLOTS, root, depth, &mut out)?;
    Ok(out)
}

/// `page`: the page `position` is in; None with `position` at a page boundary (a bottom
/// slot of the page above).
fn summaries_at(
    source: &dyn PageSource,
    page: Option<&Page>,
    at: NodeKey,
    position: usize,
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
        Child::Node(expected) => match page {
            Some(page) if position < SLOTS => {
                let (left, right) = checked_children(page, at, position, expected)?;
                let (left_at, right_at) = (at.child(false), at.child(true));
                let page = Some(page);
                summaries_at(source, page, left_at, 2 * position, left, depth, out)?;
                summaries_at(source, page, right_at, 2 * position + 1, right, depth, out)?;
            }
            _ => {
                let below = source.page(&at)?.ok_or(missing(at))?;
                summaries_at(source, Some(&below), at, 1, current, depth, out)?;
            }
        },
    }
    Ok(())
}

/// The tree above `depth` (a page boundary) whose subtrees there are `children` (2^`depth`
/// summaries in prefix order): its root and the pages to store. The inverse of
/// [`summaries`].
pub fn assemble(depth: u8, children: &[Child]) -> (Child, PageWrites) {
    assert_eq!(
        depth % PAGE_LEVELS,
        0,
        "the tree is assembled from page boundaries"
    );
    assert_eq!(children.len(), 1usize << depth, "one summary per subtree");
    let mut writes = Vec::new();
    // The root is a bottom slot of a page above it that does not exist.
    let mut above = Page::EMPTY;
    let root = assemble_at(&mut above, NodeKey::ROOT, SLOTS, children, &mut writes);
    (root, writes)
}

fn assemble_at(
    page: &mut Page,
    at: NodeKey,
    position: usize,
    children: &[Child],
    writes: &mut PageWrites,
) -> Child {
    if let [only] = children {
        return *only;
    }
    if position >= SLOTS {
        let mut below = Page::EMPTY;
        let root = assemble_at(&mut below, at, 1, children, writes);
        if matches!(root, Child::Node(_)) {
            writes.push((at, Arc::new(below)));
        }
        return root;
    }
    let (left, right) = children.split_at(children.len() / 2);
    let left = assemble_at(page, at.child(false), 2 * position, left, writes);
    let right = assemble_at(page, at.child(true), 2 * position + 1, right, writes);
    join_in(page, position, left, right)
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
pub fn prove(source: &dyn PageSource, root: Child, key: &Hash) -> Result<SmtProof, StateError> {
    let mut siblings = Vec::new();
    let mut at = NodeKey::ROOT;
    let mut page = Arc::new(Page::EMPTY);
    let mut position = SLOTS;
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
                if siblings.len() >= 256 {
                    // No key path is longer: a stored tree that says so is corrupt.
                    return Err(StateError::CorruptNode {
                        depth: at.depth,
                        prefix: at.prefix,
                    });
                }
                if position >= SLOTS {
                    page = source.page(&at)?.ok_or(missing(at))?;
                    position = 1;
                }
                let (left, right) = page.children(position);
                let go_right = bit(key, at.depth);
                let (next, sibling) = if go_right {
                    (right, left)
                } else {
                    (left, right)
                };
                siblings.push(sibling.hash());
                at = at.child(go_right);
                position = 2 * position + usize::from(go_right);
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
    struct Memory(BTreeMap<NodeKey, Arc<Page>>);

    impl PageSource for Memory {
        fn page(&self, key: &NodeKey) -> Result<Option<Arc<Page>>, StateError> {
            Ok(self.0.get(key).cloned())
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
            let keys: Vec<NodeKey> = writes.iter().map(|(key, _)| *key).collect();
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), keys.len(), "each page is written once");
            let inserted = inserted.into_iter().map(|i| list[i].0).collect();
            for (key, page) in writes {
                assert_eq!(key.depth % PAGE_LEVELS, 0, "pages sit at page boundaries");
                self.0.insert(key, page);
            }
            (root, inserted)
        }
    }

    fn h(n: u64) -> Hash {
        Hash::sha256(&n.to_be_bytes())
    }

    /// The binary tree's summary of `leaves` (sorted, all under one prefix of `depth` bits)
    /// straight from the definition: no pages, no store.
    fn reference(leaves: &[(Hash, Hash)], depth: u8) -> Child {
        match leaves {
            [] => Child::Empty,
            [(key, value)] => Child::Leaf {
                key: *key,
                value: *value,
            },
            _ => {
                let at = leaves.partition_point(|(key, _)| !bit(key, depth));
                let (left, right) = leaves.split_at(at);
                let left = reference(left, depth + 1).hash();
                let right = reference(right, depth + 1).hash();
                Child::Node(node_hash(&left, &right))
            }
        }
    }

    fn reference_root(all: &BTreeMap<Hash, Hash>) -> Child {
        let leaves: Vec<(Hash, Hash)> = all.iter().map(|(k, v)| (*k, *v)).collect();
        reference(&leaves, 0)
    }

    #[test]
    fn incremental_updates_match_the_binary_definition_and_a_fresh_build() {
        let mut tree = Memory::default();
        let mut root = Child::Empty;
        let mut all = BTreeMap::new();
        for round in 0..40u64 {
            let mut batch = BTreeMap::new();
            for i in 0..(round * 7 % 23 + 1) {
                // Mix new keys with overwrites of old ones.
                let key = h((round * 31 + i * 17) % 400);
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
            assert_eq!(root, reference_root(&all), "round {round}");
            // The stored pages are those of the same leaves inserted at once.
            let mut fresh = Memory::default();
            assert_eq!(fresh.apply(Child::Empty, &all), root, "round {round}");
            assert_eq!(fresh.0, tree.0, "round {round}: pages");
        }
    }

    #[test]
    fn an_update_writes_one_page_per_four_levels() {
        let mut tree = Memory::default();
        let all: BTreeMap<Hash, Hash> = (0..5000).map(|i| (h(i), h(i))).collect();
        let root = tree.apply(Child::Empty, &all);
        // 5,000 leaves sit ~12-14 levels down: pages at depths 0, 4, 8 and often 12.
        let key = h(77);
        let proof = prove(&tree, root, &key).unwrap();
        let updated = update(&tree, root, &[(key, h(1))]).unwrap();
        let pages = proof.siblings.len().div_ceil(usize::from(PAGE_LEVELS));
        assert_eq!(
            updated.writes.len(),
            pages,
            "{} levels",
            proof.siblings.len()
        );
        assert!(updated.inserted.is_empty());
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
        for count in [0u64, 1, 2, 3, 40, 300, 3000] {
            let mut tree = Memory::default();
            let all: BTreeMap<Hash, Hash> = (0..count).map(|i| (h(i), h(i + 7))).collect();
            let root = tree.apply(Child::Empty, &all);
            for depth in [0u8, 1, 3, 4, 6, 8] {
                let children = summaries(&tree, root, depth).unwrap();
                assert_eq!(children.len(), 1 << depth);
                for (index, summary) in children.iter().enumerate() {
                    let leaves: Vec<(Hash, Hash)> = all
                        .iter()
                        .filter(|(k, _)| subtree_index(k, depth) == index as u32)
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    assert_eq!(*summary, reference(&leaves, depth), "{count}: {index}");
                }
                if depth % PAGE_LEVELS != 0 {
                    continue;
                }
                let (assembled, top) = assemble(depth, &children);
                assert_eq!(assembled, root, "{count} leaves at depth {depth}");
                let mut rebuilt: BTreeMap<NodeKey, Arc<Page>> = top.into_iter().collect();
                for (index, summary) in children.iter().enumerate() {
                    let at = subtree_key(depth, index as u32);
                    let leaves: Vec<(Hash, Hash)> = all
                        .iter()
                        .filter(|(k, _)| subtree_index(k, depth) == index as u32)
                        .map(|(k, v)| (*k, *v))
                        .collect();
                    let (child, writes) = subtree(at, &leaves).unwrap();
                    assert_eq!(child, *summary, "subtree {index} at depth {depth}");
                    rebuilt.extend(writes);
                }
                // The rebuilt pages are exactly the stored ones.
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
    fn a_page_round_trips_through_its_encoding_within_its_bound() {
        let mut tree = Memory::default();
        let all: BTreeMap<Hash, Hash> = (0..3000).map(|i| (h(i), h(i))).collect();
        tree.apply(Child::Empty, &all);
        // The largest page: 14 inner nodes above 16 leaves.
        let mut full = Page::EMPTY;
        for position in 2..2 * SLOTS {
            let child = if position < SLOTS {
                Child::Node(h(position as u64))
            } else {
                Child::Leaf {
                    key: h(position as u64),
                    value: h(1),
                }
            };
            full.set(position, child);
        }
        // Entries set, replaced and cleared in any order read back as set.
        let mut page = full.clone();
        page.set(7, Child::Node(h(70)));
        page.set(30, Child::Empty);
        page.set(31, Child::Node(h(31)));
        assert_eq!(page.get(7), Child::Node(h(70)));
        assert_eq!(page.get(30), Child::Empty);
        assert_eq!(page.get(31), Child::Node(h(31)));
        assert_eq!(page.get(29), full.get(29));
        assert_eq!(page.get(3), full.get(3));
        // Pages that do not decode: a position both a node and a leaf (the leaves map's
        // last byte); an entry under a position that is not an inner node.
        let mut bytes = cachet_types::codec::encode(&page);
        bytes[8] |= 0b100;
        assert!(cachet_types::codec::decode::<Page>(&bytes, MAX_PAGE_BYTES).is_err());
        let mut orphan = full.clone();
        orphan.set(2, Child::Empty);
        let bytes = cachet_types::codec::encode(&orphan);
        assert!(cachet_types::codec::decode::<Page>(&bytes, MAX_PAGE_BYTES).is_err());
        for page in tree
            .0
            .values()
            .map(|page| Page::clone(page))
            .chain([full, page])
        {
            let bytes = cachet_types::codec::encode(&page);
            assert!(bytes.len() <= MAX_PAGE_BYTES, "{}", bytes.len());
            let back: Page = cachet_types::codec::decode(&bytes, MAX_PAGE_BYTES).unwrap();
            assert_eq!(back, page);
        }
    }

    /// `page` as a disk gives it back: its bytes decoded, nothing checked.
    fn from_disk(page: &Page) -> Arc<Page> {
        let bytes = cachet_types::codec::encode(page);
        Arc::new(cachet_types::codec::decode(&bytes, MAX_PAGE_BYTES).unwrap())
    }

    #[test]
    fn tampered_store_is_detected() {
        let mut tree = Memory::default();
        let all: BTreeMap<Hash, Hash> = (0..40).map(|i| (h(i), h(i))).collect();
        let root = tree.apply(Child::Empty, &all);
        let honest = Page::clone(&tree.0[&NodeKey::ROOT]);
        let corrupt = |tree: &mut Memory, position: usize| {
            let mut page = honest.clone();
            let (left, right) = page.children(position);
            page.set(2 * position, right);
            page.set(2 * position + 1, left);
            tree.0.insert(NodeKey::ROOT, from_disk(&page));
        };
        // The root's children swapped, then two nodes inside the root's page: each is
        // caught at its own level.
        corrupt(&mut tree, 1);
        let result = update(&tree, root, &[(h(100), h(1))]);
        assert!(matches!(
            result,
            Err(StateError::CorruptNode { depth: 0, .. })
        ));
        for position in [2, 3] {
            corrupt(&mut tree, position);
            let every: Vec<(Hash, Hash)> = all.keys().map(|k| (*k, h(5))).collect();
            let result = update(&tree, root, &every);
            assert!(
                matches!(result, Err(StateError::CorruptNode { depth: 1, .. })),
                "{result:?}"
            );
            assert!(summaries(&tree, root, 4).is_err());
        }
        tree.0.remove(&NodeKey::ROOT);
        let result = update(&tree, root, &[(h(100), h(1))]);
        assert!(matches!(
            result,
            Err(StateError::MissingNode { depth: 0, .. })
        ));
    }

    #[test]
    fn a_corrupt_node_no_update_needed_is_caught_after_the_page_is_written_back() {
        // A page read from disk and written back by an update that walked only its left
        // half: its right half, never hashed, is not taken on trust by the next update.
        let mut tree = Memory::default();
        let all: BTreeMap<Hash, Hash> = (0..40).map(|i| (h(i), h(i))).collect();
        let root = tree.apply(Child::Empty, &all);
        let mut page = Page::clone(&tree.0[&NodeKey::ROOT]);
        let (left, right) = page.children(3);
        page.set(6, right);
        page.set(7, left);
        tree.0.insert(NodeKey::ROOT, from_disk(&page));
        let side = |right: bool| (1000..).map(h).find(|k| bit(k, 0) == right).unwrap();
        let root = tree.apply(root, &BTreeMap::from([(side(false), h(1))]));
        assert!(tree.0[&NodeKey::ROOT].checked & (1 << 3) == 0);
        let result = update(&tree, root, &[(side(true), h(1))]);
        assert!(
            matches!(result, Err(StateError::CorruptNode { depth: 1, .. })),
            "{result:?}"
        );
    }
}
