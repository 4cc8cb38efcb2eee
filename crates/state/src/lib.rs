//! Cachet's state machine: the ledger's rules, applied to a state view, and the sparse Merkle
//! tree whose root is every block's state commitment.
//!
//! Pure and deterministic: no I/O, no clock, no threads. Storage implements [`StateView`] and
//! [`smt::PageSource`]; this crate says what to write, the store writes it.

pub mod block;
pub mod execute;
pub mod membership;
pub mod records;
pub mod rejection;
pub mod smt;

use cachet_types::{Genesis, Hash, Operator};

pub use block::{BlockError, BlockRefusal, ExecutedBlock, Tip, build_block, execute_block};
pub use execute::{ApplyError, BlockEnv, BlockExecution, StateChanges, check_cosigners};
pub use records::{
    AccountState, Approval, EventKind, IssueState, MembershipEpoch, MembershipState, ProposalState,
    StampEvent, StampState, StampStatus, StateKey, StateValue, event_hash,
};
pub use rejection::Rejection;

/// The state could not be read: a storage failure or a corrupt store. Not the transaction's
/// fault; the node must stop rather than guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The backing store failed.
    #[error("state store failed: {0}")]
    Store(String),
    /// A stored value does not decode.
    #[error("state store holds a corrupt value: {0}")]
    Corrupt(String),
    /// A key holds a value of the wrong kind.
    #[error("state store holds a value of the wrong kind")]
    WrongKind,
    /// A tree node the root refers to is missing.
    #[error("state tree node missing at depth {depth} prefix {prefix}")]
    MissingNode {
        /// Depth.
        depth: u8,
        /// Prefix.
        prefix: Hash,
    },
    /// A tree node does not hash to what its parent says.
    #[error("state tree node corrupt at depth {depth} prefix {prefix}")]
    CorruptNode {
        /// Depth.
        depth: u8,
        /// Prefix.
        prefix: Hash,
    },
    /// Two updates for one tree key.
    #[error("duplicate key in state tree update")]
    DuplicateKey,
}

/// Read access to the committed state.
pub trait StateView {
    /// The value under `key`, if any.
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError>;
}

/// The membership record (empty before the first change).
pub fn membership(view: &(impl StateView + ?Sized)) -> Result<MembershipState, StateError> {
    match view.get(&StateKey::Membership)? {
        Some(StateValue::Membership(state)) => Ok(state),
        Some(_) => Err(StateError::WrongKind),
        None => Ok(MembershipState::default()),
    }
}

/// The operators of the block at `height`, in validator-index order, from a state at most
/// two blocks behind it (the tip, when deciding the next block or the one after).
pub fn operators_at(
    view: &(impl StateView + ?Sized),
    genesis: &Genesis,
    height: u64,
) -> Result<Vec<Operator>, StateError> {
    Ok(membership(view)?.at(genesis, height).1.to_vec())
}

/// State keys new to the tree, with their tree keys, ascending by tree key: what a store's
/// index from tree key to state key must gain (existing keys are already in it).
pub type NewLeaves = Vec<(Hash, StateKey)>;

/// Applies a block's writes to the state tree: returns the new root, the page writes and
/// the keys the tree did not hold before.
pub fn commit_tree(
    nodes: &dyn smt::PageSource,
    root: smt::Child,
    writes: &std::collections::BTreeMap<StateKey, StateValue>,
) -> Result<(smt::Child, smt::PageWrites, NewLeaves), StateError> {
    let mut keyed: Vec<((Hash, Hash), &StateKey)> = writes
        .iter()
        .map(|(key, value)| ((key.tree_key(), value.tree_value()), key))
        .collect();
    keyed.sort_unstable_by_key(|(leaf, _)| leaf.0);
    if keyed.windows(2).any(|pair| pair[0].0.0 == pair[1].0.0) {
        return Err(StateError::DuplicateKey);
    }
    let leaves: Vec<(Hash, Hash)> = keyed.iter().map(|(leaf, _)| *leaf).collect();
    let updated = smt::update(nodes, root, &leaves)?;
    let new_leaves: NewLeaves = updated
        .inserted
        .iter()
        .filter_map(|&i| keyed.get(i))
        .map(|((tree_key, _), key)| (*tree_key, (*key).clone()))
        .collect();
    // Every position `update` reports is one of the updates: a key left out here would be
    // missing from the store's index for good.
    assert_eq!(
        new_leaves.len(),
        updated.inserted.len(),
        "the tree reported an insert outside its updates"
    );
    Ok((updated.root, updated.writes, new_leaves))
}
