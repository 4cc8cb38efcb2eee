//! The one path by which blocks enter the ledger: check, execute, commit atomically.
//!
//! A proposer builds a [`Proposal`] from verified transactions (rejected ones are dropped and
//! reported); any node commits a certified block, either its own proposal (already executed)
//! or one received from a peer (checked and executed here). Both end in
//! [`Store::commit`] after the certificate is checked against the validators of its height
//! (the genesis operators until a membership change applies).

use cachet_state::{
    BlockError, BlockRefusal, ExecutedBlock, StampEvent, StateError, build_block, execute_block,
};
use cachet_types::{
    Block, BlockHeader, CertifiedBlock, CommitCertificate, PublicKey, VerifiedTx, verify_parallel,
};
use thiserror::Error;

use crate::{Store, StoreError, Tip};

/// Why a block could not be built or committed: the block is refused (a verdict on it), or
/// this node cannot read or write its own store (fatal for the node, never a verdict).
#[derive(Debug, Error)]
pub enum LedgerError {
    /// Storage failed (fatal for the node).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The state could not be read (fatal for the node).
    #[error("{0}")]
    State(#[from] StateError),
    /// The block breaks a rule.
    #[error("invalid block at height {height}: {refusal}")]
    Refused {
        /// Height.
        height: u64,
        /// The rule.
        refusal: BlockRefusal,
    },
}

impl LedgerError {
    /// The rule the block breaks; `None` when the store failed (no verdict on the block).
    pub fn refusal(&self) -> Option<&BlockRefusal> {
        match self {
            LedgerError::Refused { refusal, .. } => Some(refusal),
            LedgerError::Store(_) | LedgerError::State(_) => None,
        }
    }
}

impl From<BlockError> for LedgerError {
    fn from(error: BlockError) -> Self {
        match error {
            BlockError::State(error) => LedgerError::State(error),
            BlockError::Refused { height, refusal } => LedgerError::Refused { height, refusal },
        }
    }
}

/// Checks `certificate` against the validators of the header's height.
fn check_certificate(
    ledger: &Ledger,
    header: &BlockHeader,
    certificate: &CommitCertificate,
) -> Result<(), LedgerError> {
    certificate
        .verify(header, &ledger.validators_at(header.height)?)
        .map_err(|error| LedgerError::Refused {
            height: header.height,
            refusal: BlockRefusal::Certificate(error),
        })
}

/// A block built on the current tip, with its execution results.
pub type Proposal = ExecutedBlock;

/// The ledger: a store plus the rules for extending it.
pub struct Ledger {
    store: Store,
}

impl Ledger {
    /// Wraps an open store.
    pub fn new(store: Store) -> Ledger {
        Ledger { store }
    }

    /// The store, for queries.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The validator keys of the block at `height`, by index (see [`Store::operators_at`]),
    /// from the state ahead of the store (with a block committed behind, if any).
    pub fn validators_at(&self, height: u64) -> Result<Vec<PublicKey>, LedgerError> {
        Ok(self
            .store
            .ahead()
            .operators_at(height)?
            .iter()
            .map(|op| op.validator_key)
            .collect())
    }

    /// Builds a block on the tip from `candidates`, in order, stopping at the chain's block
    /// limits. Candidates that break a rule are left out and returned in `rejected`. The tip
    /// is the one ahead of the store: a block committed behind counts.
    pub fn build(
        &self,
        candidates: Vec<VerifiedTx>,
        time_ms: u64,
        proposer: u16,
    ) -> Result<Proposal, LedgerError> {
        let ahead = self.store.ahead();
        let tip = ahead.tip()?;
        Ok(build_block(
            &ahead,
            self.store.genesis(),
            &tip,
            candidates,
            time_ms,
            proposer,
        )?)
    }

    /// Checks a block from a peer against the tip and executes it, without committing:
    /// signatures (batched, on every core), links, limits, every transaction and the state root.
    pub fn prepare(&self, block: Block) -> Result<ExecutedBlock, LedgerError> {
        let height = block.header.height;
        let verified = verify_parallel(&self.store.chain_id(), block.txs.clone()).map_err(
            |(index, error)| LedgerError::Refused {
                height,
                refusal: BlockRefusal::TxCheck { index, error },
            },
        )?;
        self.prepare_verified(block, verified)
    }

    /// Like [`Ledger::prepare`], for a block whose transactions the caller has already
    /// verified (e.g. found in its mempool by id): `verified` must be `block.txs` in order,
    /// which `execute_block` checks.
    pub fn prepare_verified(
        &self,
        block: Block,
        verified: Vec<VerifiedTx>,
    ) -> Result<ExecutedBlock, LedgerError> {
        let ahead = self.store.ahead();
        let tip = ahead.tip()?;
        Ok(execute_block(
            &ahead,
            self.store.genesis(),
            &tip,
            block,
            verified,
        )?)
    }

    /// Commits an executed block (our proposal, or a prepared peer block) once certified.
    pub fn commit_proposal(
        &self,
        proposal: ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<(Tip, CertifiedBlock), LedgerError> {
        self.store.settle()?;
        let (certified, changes, tree_writes, new_leaves, root) =
            self.certify(proposal, certificate)?;
        let tip = self
            .store
            .commit(&certified, &changes, &tree_writes, &new_leaves, root)?;
        Ok((tip, certified))
    }

    /// Like [`Ledger::commit_proposal`], but the block is written on its own thread while the
    /// caller goes on ([`Store::commit_behind`]): what this ledger builds, prepares or checks
    /// next sees it at once; the store's other readers see it once written. Call
    /// [`Ledger::settle`] before handing the store to anything else.
    pub fn commit_proposal_behind(
        &self,
        proposal: ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<Tip, LedgerError> {
        let (certified, changes, tree_writes, new_leaves, root) =
            self.certify(proposal, certificate)?;
        Ok(self
            .store
            .commit_behind(certified, changes, tree_writes, new_leaves, root)?)
    }

    /// Waits for the block committed behind, if any, to be written.
    pub fn settle(&self) -> Result<(), LedgerError> {
        Ok(self.store.settle()?)
    }

    /// Checks `certificate` for `proposal` on the tip ahead of the store.
    fn certify(
        &self,
        proposal: ExecutedBlock,
        certificate: CommitCertificate,
    ) -> Result<
        (
            CertifiedBlock,
            cachet_state::StateChanges,
            cachet_state::smt::PageWrites,
            cachet_state::NewLeaves,
            cachet_state::smt::Child,
        ),
        LedgerError,
    > {
        check_certificate(self, &proposal.block.header, &certificate)?;
        let tip = self.store.ahead().tip()?;
        if tip.block_hash != proposal.parent {
            return Err(LedgerError::Refused {
                height: proposal.block.header.height,
                refusal: BlockRefusal::Stale,
            });
        }
        let certified = CertifiedBlock {
            block: proposal.block,
            certificate,
        };
        Ok((
            certified,
            proposal.changes,
            proposal.tree_writes,
            proposal.new_leaves,
            proposal.root,
        ))
    }

    /// Checks a certified block from elsewhere against the tip, executes it, and commits it.
    pub fn commit_certified(&self, certified: &CertifiedBlock) -> Result<Tip, LedgerError> {
        check_certificate(self, &certified.block.header, &certified.certificate)?;
        let executed = self.prepare(certified.block.clone())?;
        Ok(self
            .commit_proposal(executed, certified.certificate.clone())?
            .0)
    }

    /// Like [`Ledger::commit_certified`], also returning the block's stamp events (what a
    /// backfill hands to the state-synced store).
    pub fn commit_certified_events(
        &self,
        certified: &CertifiedBlock,
    ) -> Result<Vec<StampEvent>, LedgerError> {
        check_certificate(self, &certified.block.header, &certified.certificate)?;
        let executed = self.prepare(certified.block.clone())?;
        let events = executed.changes.events.clone();
        self.commit_proposal(executed, certified.certificate.clone())?;
        Ok(events)
    }

    /// Like [`Ledger::commit_certified`], for a block whose transactions the caller has
    /// already verified (e.g. in parallel): `verified` must be `certified.block.txs` in order.
    pub fn commit_verified(
        &self,
        certified: &CertifiedBlock,
        verified: Vec<VerifiedTx>,
    ) -> Result<Tip, LedgerError> {
        check_certificate(self, &certified.block.header, &certified.certificate)?;
        let executed = self.prepare_verified(certified.block.clone(), verified)?;
        Ok(self
            .commit_proposal(executed, certified.certificate.clone())?
            .0)
    }

    /// Like [`Ledger::commit_verified`], but committed behind
    /// ([`Ledger::commit_proposal_behind`]): the replay of a chain (sync, audit) executes the
    /// next block while this one is written.
    pub fn commit_verified_behind(
        &self,
        certified: &CertifiedBlock,
        verified: Vec<VerifiedTx>,
    ) -> Result<Tip, LedgerError> {
        check_certificate(self, &certified.block.header, &certified.certificate)?;
        let executed = self.prepare_verified(certified.block.clone(), verified)?;
        self.commit_proposal_behind(executed, certified.certificate.clone())
    }
}
