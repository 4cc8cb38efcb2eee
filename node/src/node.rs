//! The node's core: admission of transactions, block production on the development chain,
//! and the status of transactions. Shared by the API handlers and the producer task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use cachet_api::{NodeMetrics, TxStatus};
use cachet_state::{AccountState, Rejection, StateKey, StateValue};
use cachet_storage::{Ledger, LedgerError, StoreError, Tip};
use cachet_types::{CommitCertificate, Hash, PublicKey, SignedTx, SigningKey, VerifiedTx};
use tokio::sync::{Notify, watch};

use crate::mempool::{AdmitError, Mempool};
use crate::setup::now_ms;

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction is refused, with a named reason.
    #[error("{0}")]
    Rejected(Rejection),
    /// The mempool said no for now.
    #[error("{0}")]
    Mempool(AdmitError),
    /// Storage failed.
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// Everything the API and the producer share.
pub struct Node {
    ledger: Ledger,
    mempool: Mutex<Mempool>,
    /// Held for writing while a block is committed, for reading while a proof is built: the
    /// state tree is stored by position, so a proof must not straddle two roots.
    commit_lock: RwLock<()>,
    validator: (u16, SigningKey),
    tip_sender: watch::Sender<Tip>,
    work: Notify,
    txs_final: AtomicU64,
    txs_rejected: AtomicU64,
    blocks_committed: AtomicU64,
}

impl Node {
    /// A node over an open ledger, producing blocks with `validator`.
    pub fn new(
        ledger: Ledger,
        mempool: Mempool,
        validator: (u16, SigningKey),
    ) -> Result<Node, StoreError> {
        let tip = ledger.store().tip()?;
        let (tip_sender, _) = watch::channel(tip);
        Ok(Node {
            ledger,
            mempool: Mutex::new(mempool),
            commit_lock: RwLock::new(()),
            validator,
            tip_sender,
            work: Notify::new(),
            txs_final: AtomicU64::new(0),
            txs_rejected: AtomicU64::new(0),
            blocks_committed: AtomicU64::new(0),
        })
    }

    /// The ledger, for queries.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Watches the tip.
    pub fn tip_watch(&self) -> watch::Receiver<Tip> {
        self.tip_sender.subscribe()
    }

    /// Waits until there may be work for the producer.
    pub async fn work_arrived(&self) {
        self.work.notified().await
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Mempool> {
        // A panic while holding the lock is a bug that already stopped a task; the pool's
        // data stays consistent between calls, so keep serving.
        self.mempool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A signer's last final nonce.
    pub fn final_nonce(&self, signer: &PublicKey) -> Result<u64, StoreError> {
        match self.ledger.store().state(&StateKey::Account(*signer))? {
            Some(StateValue::Account(AccountState { nonce })) => Ok(nonce),
            Some(_) => Err(StoreError::Corrupt("account key holds another kind".into())),
            None => Ok(0),
        }
    }

    /// The nonce a signer should use next (counting pending transactions).
    pub fn next_nonce(&self, signer: &PublicKey) -> Result<u64, StoreError> {
        let pool = self.pool();
        let final_nonce = self.final_nonce(signer)?;
        Ok(pool.next_nonce(signer, final_nonce))
    }

    /// Checks and admits transaction bytes; returns the id and its status.
    pub fn submit(&self, bytes: &[u8]) -> Result<(Hash, TxStatus), SubmitError> {
        let limit = self.ledger.store().genesis().params.max_tx_bytes as usize;
        if bytes.len() > limit {
            return Err(SubmitError::Rejected(Rejection::TooLarge {
                size: bytes.len(),
                limit,
            }));
        }
        let tx = SignedTx::from_bytes(bytes, limit)
            .map_err(|e| SubmitError::Rejected(Rejection::Malformed(e.to_string())))?;
        let id = tx.id();
        // Idempotent: the same bytes again get the same answer, not a nonce error.
        let status = self.status(&id)?;
        if matches!(status, TxStatus::Final { .. } | TxStatus::Pending) {
            return Ok((id, status));
        }
        let chain_id = self.ledger.store().chain_id();
        let verified = match tx.verify(&chain_id) {
            Ok(verified) => verified,
            Err(error) => {
                let reason = Rejection::from(error);
                self.reject(id, reason.clone());
                return Err(SubmitError::Rejected(reason));
            }
        };
        let admitted = {
            // Read the final nonce under the pool lock: the producer commits a block, then
            // settles the pool under this lock, so we see both, neither, or a commit
            // without its settle, which `Mempool::next_nonce` allows for.
            let mut pool = self.pool();
            let final_nonce = self.final_nonce(&verified.tx().signer)?;
            pool.admit(verified, final_nonce)
        };
        match admitted {
            Ok(()) => {
                self.work.notify_one();
                Ok((id, TxStatus::Pending))
            }
            Err(AdmitError::Rejected(reason)) => {
                self.reject(id, reason.clone());
                Err(SubmitError::Rejected(reason))
            }
            Err(other) => Err(SubmitError::Mempool(other)),
        }
    }

    fn reject(&self, id: Hash, reason: Rejection) {
        self.txs_rejected.fetch_add(1, Ordering::Relaxed);
        self.pool().remember(id, reason);
    }

    /// Where a transaction stands.
    pub fn status(&self, id: &Hash) -> Result<TxStatus, StoreError> {
        {
            let pool = self.pool();
            if pool.contains(id) {
                return Ok(TxStatus::Pending);
            }
            if let Some(reason) = pool.rejection(id) {
                return Ok(TxStatus::Rejected {
                    reason: reason.code().to_string(),
                    message: reason.to_string(),
                });
            }
        }
        // Checked after the pool: a transaction leaves the pool only once it is stored.
        Ok(match self.ledger.store().tx_location(id)? {
            Some(location) => TxStatus::Final {
                height: location.height,
                index: location.index,
            },
            None => TxStatus::Unknown,
        })
    }

    /// The provenance bundle of a stamp, built with no commit in between.
    pub fn provenance(
        &self,
        stamp: &cachet_types::StampId,
    ) -> Result<Option<cachet_provenance::ProvenanceBundle>, StoreError> {
        let _reading = self.commit_lock.read().unwrap_or_else(|p| p.into_inner());
        self.ledger.store().provenance(stamp)
    }

    /// The supply proof of an issue, built with no commit in between.
    pub fn supply_proof(
        &self,
        issue: &cachet_types::IssueId,
    ) -> Result<Option<cachet_provenance::SupplyProof>, StoreError> {
        let _reading = self.commit_lock.read().unwrap_or_else(|p| p.into_inner());
        self.ledger.store().supply_proof(issue)
    }

    /// Counters.
    pub fn metrics(&self) -> NodeMetrics {
        NodeMetrics {
            mempool_size: self.pool().len(),
            txs_final: self.txs_final.load(Ordering::Relaxed),
            txs_rejected: self.txs_rejected.load(Ordering::Relaxed),
            blocks_committed: self.blocks_committed.load(Ordering::Relaxed),
            peers: 0,
        }
    }

    /// Builds, certifies and commits one block from the mempool, if anything is waiting.
    /// Blocking (executes and syncs to disk): run it off the async threads.
    pub fn produce_block(&self) -> Result<Option<Tip>, LedgerError> {
        let max = self.ledger.store().genesis().params.max_block_txs as usize;
        let candidates = self.pool().candidates(max);
        if candidates.is_empty() {
            return Ok(None);
        }
        let proposal = self.ledger.build(candidates, now_ms(), self.validator.0)?;
        let rejected = proposal.rejected.clone();
        let included: Vec<Hash> = proposal.included.iter().map(VerifiedTx::id).collect();
        let committed = if included.is_empty() {
            None
        } else {
            // The development chain has one validator, whose precommit alone is a quorum;
            // the certificate is checked like any other before the block is written.
            let certificate = CommitCertificate::sign(
                &proposal.block.header,
                0,
                &[(self.validator.0, &self.validator.1)],
            );
            let _writing = self.commit_lock.write().unwrap_or_else(|p| p.into_inner());
            Some(self.ledger.commit_proposal(proposal, certificate)?.0)
        };
        let mut pool = self.pool();
        let doomed: Vec<(PublicKey, u64)> = rejected
            .iter()
            .filter_map(|(id, _)| pool.get(id).map(|tx| (tx.tx().signer, tx.tx().nonce)))
            .collect();
        pool.settle(&included, &rejected);
        let mut dropped = rejected.len() as u64;
        for (signer, nonce) in doomed {
            for (id, got) in pool.drop_after(&signer, nonce) {
                // The refused transaction did not use its nonce: later ones now skip it.
                pool.remember(
                    id,
                    Rejection::NonceGap {
                        got,
                        expected: nonce,
                    },
                );
                dropped += 1;
            }
        }
        drop(pool);
        self.txs_rejected.fetch_add(dropped, Ordering::Relaxed);
        if let Some(tip) = committed {
            self.txs_final
                .fetch_add(included.len() as u64, Ordering::Relaxed);
            self.blocks_committed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(height = tip.height, txs = included.len(), rejected = rejected.len(), hash = %tip.block_hash.short(), "block final");
            self.tip_sender.send_replace(tip);
        }
        Ok(committed)
    }
}
