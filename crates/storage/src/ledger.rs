//! The one path by which blocks enter the ledger: check, execute, commit atomically.
//!
//! A proposer builds a [`Proposal`] from verified transactions (rejected ones are dropped and
//! reported); any node commits a certified block, either its own proposal (already executed)
//! or one received from a peer (checked and executed here). Both end in
//! [`Store::commit`] after the certificate is checked against the genesis validators.

use cachet_state::smt::{Child, NodeWrites};
use cachet_state::{
    ApplyError, BlockEnv, BlockExecution, Rejection, StateChanges, StateError, commit_tree,
};
use cachet_types::merkle::tx_root;
use cachet_types::os_rng;
use cachet_types::{
    Block, BlockHeader, CertificateError, CertifiedBlock, CommitCertificate, Hash, PublicKey,
    VerifiedTx, verify_batch,
};
use thiserror::Error;

use crate::{Store, StoreError, Tip};

/// Why a block could not be built or committed.
#[derive(Debug, Error)]
pub enum LedgerError {
    /// Storage failed (fatal for the node).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The state could not be read (fatal for the node).
    #[error("{0}")]
    State(#[from] StateError),
    /// The certificate does not finalize the block.
    #[error("invalid certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// The block breaks a rule.
    #[error("invalid block at height {height}: {reason}")]
    InvalidBlock {
        /// Height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

/// A block built on the current tip, with its execution results.
#[derive(Debug)]
pub struct Proposal {
    /// The block (header carries the resulting state root).
    pub block: Block,
    /// Transactions included, verified.
    pub included: Vec<VerifiedTx>,
    /// Transactions dropped, with their reasons.
    pub rejected: Vec<(Hash, Rejection)>,
    changes: StateChanges,
    tree_writes: NodeWrites,
    root: Child,
    parent: Hash,
}

/// The ledger: a store plus the rules for extending it.
pub struct Ledger {
    store: Store,
    validators: Vec<PublicKey>,
}

impl Ledger {
    /// Wraps an open store.
    pub fn new(store: Store) -> Ledger {
        let validators = store.genesis().validator_keys();
        Ledger { store, validators }
    }

    /// The store, for queries.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Validator keys by index.
    pub fn validators(&self) -> &[PublicKey] {
        &self.validators
    }

    /// Builds a block on the tip from `candidates`, in order, stopping at the chain's block
    /// limits. Candidates that break a rule are left out and returned in `rejected`.
    pub fn build(
        &self,
        candidates: Vec<VerifiedTx>,
        time_ms: u64,
        proposer: u16,
    ) -> Result<Proposal, LedgerError> {
        let tip = self.store.tip()?;
        let params = &self.store.genesis().params;
        let height = tip.height + 1;
        let time_ms = time_ms.max(tip.time_ms);
        let env = BlockEnv {
            genesis: self.store.genesis(),
            height,
            time_ms,
        };
        let mut execution = BlockExecution::new(&self.store, env);
        let mut included = Vec::new();
        let mut rejected = Vec::new();
        let mut bytes = 0usize;
        for tx in candidates {
            if included.len() >= params.max_block_txs as usize
                || bytes + tx.size() > params.max_block_bytes as usize
            {
                break;
            }
            match execution.apply(&tx) {
                Ok(()) => {
                    bytes += tx.size();
                    included.push(tx);
                }
                Err(ApplyError::Rejected(reason)) => rejected.push((tx.id(), reason)),
                Err(ApplyError::State(error)) => return Err(error.into()),
            }
        }
        let changes = execution.finish();
        let (root, tree_writes) = commit_tree(&self.store, tip.state_root, &changes.writes)?;
        let ids: Vec<Hash> = included.iter().map(VerifiedTx::id).collect();
        let header = BlockHeader {
            chain_id: self.store.chain_id(),
            height,
            prev_hash: tip.block_hash,
            time_ms,
            proposer,
            tx_count: included.len() as u32,
            tx_root: tx_root(&ids),
            state_root: root.hash(),
        };
        let block = Block {
            header,
            txs: included.iter().map(|tx| tx.tx().clone()).collect(),
        };
        Ok(Proposal {
            block,
            included,
            rejected,
            changes,
            tree_writes,
            root,
            parent: tip.block_hash,
        })
    }

    /// Commits our own proposal once it is certified.
    pub fn commit_proposal(
        &self,
        proposal: Proposal,
        certificate: CommitCertificate,
    ) -> Result<(Tip, CertifiedBlock), LedgerError> {
        certificate.verify(&proposal.block.header, &self.validators)?;
        let tip = self.store.tip()?;
        if tip.block_hash != proposal.parent {
            return Err(LedgerError::InvalidBlock {
                height: proposal.block.header.height,
                reason: "the tip moved since the proposal was built".into(),
            });
        }
        let certified = CertifiedBlock {
            block: proposal.block,
            certificate,
        };
        let tip = self.store.commit(
            &certified,
            &proposal.changes,
            &proposal.tree_writes,
            proposal.root,
        )?;
        Ok((tip, certified))
    }

    /// Checks a certified block from elsewhere against the tip, executes it, and commits it.
    pub fn commit_certified(&self, certified: &CertifiedBlock) -> Result<Tip, LedgerError> {
        let verified = verify_batch(
            &self.store.chain_id(),
            certified.block.txs.clone(),
            os_rng(),
        )
        .map_err(|(index, error)| LedgerError::InvalidBlock {
            height: certified.block.header.height,
            reason: format!("transaction {index}: {error}"),
        })?;
        self.commit_verified(certified, verified)
    }

    /// Like [`Ledger::commit_certified`], for a block whose transactions the caller has
    /// already verified (e.g. in parallel): `verified` must be `certified.block.txs` in order.
    pub fn commit_verified(
        &self,
        certified: &CertifiedBlock,
        verified: Vec<VerifiedTx>,
    ) -> Result<Tip, LedgerError> {
        let header = &certified.block.header;
        certified.certificate.verify(header, &self.validators)?;
        let tip = self.store.tip()?;
        let invalid = |reason: String| LedgerError::InvalidBlock {
            height: header.height,
            reason,
        };
        let params = &self.store.genesis().params;
        if header.chain_id != self.store.chain_id() {
            return Err(invalid("block is for another chain".into()));
        }
        if header.height != tip.height + 1 || header.prev_hash != tip.block_hash {
            return Err(invalid(format!(
                "does not extend the tip at height {}",
                tip.height
            )));
        }
        if header.time_ms < tip.time_ms {
            return Err(invalid("time goes backwards".into()));
        }
        if usize::from(header.proposer) >= self.validators.len() {
            return Err(invalid("unknown proposer".into()));
        }
        let txs = &certified.block.txs;
        if txs.len() != header.tx_count as usize
            || txs.len() > params.max_block_txs as usize
            || verified.len() != txs.len()
        {
            return Err(invalid(
                "transaction count mismatch or over the limit".into(),
            ));
        }
        let bytes: usize = verified.iter().map(VerifiedTx::size).sum();
        if bytes > params.max_block_bytes as usize {
            return Err(invalid("block is over the byte limit".into()));
        }
        let ids: Vec<Hash> = verified.iter().map(VerifiedTx::id).collect();
        if tx_root(&ids) != header.tx_root {
            return Err(invalid("transaction root mismatch".into()));
        }
        let env = BlockEnv {
            genesis: self.store.genesis(),
            height: header.height,
            time_ms: header.time_ms,
        };
        let mut execution = BlockExecution::new(&self.store, env);
        for (index, tx) in verified.iter().enumerate() {
            match execution.apply(tx) {
                Ok(()) => {}
                Err(ApplyError::Rejected(reason)) => {
                    return Err(invalid(format!("transaction {index}: {reason}")));
                }
                Err(ApplyError::State(error)) => return Err(error.into()),
            }
        }
        let changes = execution.finish();
        let (root, tree_writes) = commit_tree(&self.store, tip.state_root, &changes.writes)?;
        if root.hash() != header.state_root {
            return Err(invalid("state root mismatch".into()));
        }
        Ok(self.store.commit(certified, &changes, &tree_writes, root)?)
    }
}
