//! The node's core: admission of transactions, building and committing blocks for consensus,
//! and the status of transactions. Shared by the API handlers, the network and the consensus
//! thread.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use cachet_api::{NodeMetrics, TxStatus};
use cachet_network::Verdict;
use cachet_state::ExecutedBlock;
use cachet_state::{AccountState, Rejection, StateKey, StateValue};
use cachet_storage::{Ledger, LedgerError, StoreError, Tip};
use cachet_types::{Block, CertifiedBlock, Hash, PublicKey, SignedTx, TxBody, VerifiedTx};
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
    role: Role,
    tip_sender: watch::Sender<Tip>,
    /// Counts changes of transactions to a final or refused status, for long polls.
    status_sender: watch::Sender<u64>,
    work: Notify,
    txs_final: AtomicU64,
    txs_rejected: AtomicU64,
    blocks_committed: AtomicU64,
    outbox: Mutex<Vec<Vec<u8>>>,
    outbox_ready: Notify,
    consensus_round: AtomicU64,
    peers: Arc<AtomicUsize>,
}

/// What this node does in consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Proposes and votes with this validator key whenever it is in the operator set.
    Validator(PublicKey),
    /// Follows the chain and serves queries.
    Observer,
}

impl Node {
    /// A node over an open ledger; `peers` is the network's count of connected peers.
    pub fn new(
        ledger: Ledger,
        mempool: Mempool,
        role: Role,
        peers: Arc<AtomicUsize>,
    ) -> Result<Node, StoreError> {
        let tip = ledger.store().tip()?;
        let (tip_sender, _) = watch::channel(tip);
        let (status_sender, _) = watch::channel(0);
        Ok(Node {
            ledger,
            mempool: Mutex::new(mempool),
            commit_lock: RwLock::new(()),
            role,
            tip_sender,
            status_sender,
            work: Notify::new(),
            txs_final: AtomicU64::new(0),
            txs_rejected: AtomicU64::new(0),
            blocks_committed: AtomicU64::new(0),
            outbox: Mutex::new(Vec::new()),
            outbox_ready: Notify::new(),
            consensus_round: AtomicU64::new(0),
            peers,
        })
    }

    /// The ledger, for queries.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Watches status changes: it changes whenever a transaction becomes final or refused
    /// here (a block committed, a refusal while a block is built, a refusal remembered).
    pub fn status_watch(&self) -> watch::Receiver<u64> {
        self.status_sender.subscribe()
    }

    fn statuses_changed(&self) {
        self.status_sender.send_modify(|changes| *changes += 1);
    }

    /// Waits until there may be work for the block proposer.
    pub async fn work_arrived(&self) {
        self.work.notified().await
    }

    /// Whether transactions wait.
    pub fn has_work(&self) -> bool {
        self.pool().len() > 0
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
            Some(StateValue::Account(AccountState { nonce, .. })) => Ok(nonce),
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

    /// Checks and admits transaction bytes from a client; returns the id and its status.
    /// Admitted transactions are gossiped to the other nodes.
    pub fn submit(&self, bytes: &[u8]) -> Result<(Hash, TxStatus), SubmitError> {
        self.admit(bytes, true)
    }

    /// Checks and admits a gossiped batch of transactions, and judges the batch for the
    /// gossip layer: any malformed or badly signed transaction condemns the batch (its
    /// sender relayed garbage); otherwise it is forwarded.
    pub fn admit_batch(&self, txs: &[Vec<u8>]) -> Verdict {
        let max_tx = self.ledger.store().genesis().params.max_tx_bytes as usize;
        let mut fresh = Vec::with_capacity(txs.len());
        for bytes in txs {
            let Ok(tx) = SignedTx::from_bytes(bytes, max_tx) else {
                return Verdict::Reject;
            };
            match self.status(&tx.id()) {
                Ok(TxStatus::Final { .. } | TxStatus::Pending) => {}
                Ok(_) => fresh.push(tx),
                Err(error) => {
                    tracing::error!(%error, "cannot check a gossiped transaction");
                    return Verdict::Ignore;
                }
            }
        }
        // One batch verification (a quarter of the cost of one-by-one); a single bad
        // signature condemns the batch.
        let chain_id = self.ledger.store().chain_id();
        let Ok(verified) = cachet_types::verify_batch(&chain_id, fresh, cachet_types::os_rng())
        else {
            return Verdict::Reject;
        };
        for tx in verified {
            // Valid but refused here (nonce order, full pool): another node may take it.
            if let Err(SubmitError::Store(error)) = self.admit_checked(tx, None) {
                tracing::error!(%error, "cannot admit a gossiped transaction");
            }
        }
        Verdict::Accept
    }

    fn admit(&self, bytes: &[u8], relay: bool) -> Result<(Hash, TxStatus), SubmitError> {
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
                // Not remembered against the id: the id covers the content, not the
                // signature or the cosignatures, so a validly signed copy may be pending
                // elsewhere. The refusal goes to this submitter only.
                self.txs_rejected.fetch_add(1, Ordering::Relaxed);
                return Err(SubmitError::Rejected(Rejection::from(error)));
            }
        };
        self.admit_checked(verified, relay.then_some(bytes))
    }

    /// Admits a transaction whose signature is checked; `relay` holds its bytes when it came
    /// from a client (to gossip it and remember a refusal).
    fn admit_checked(
        &self,
        verified: VerifiedTx,
        relay: Option<&[u8]>,
    ) -> Result<(Hash, TxStatus), SubmitError> {
        let id = verified.id();
        // Cosigners depend only on the operator set: a transaction cosigned by the wrong
        // parties never applies, and must not take its author's nonce slot in the pool.
        // Only a joint issue's creation names operators (read the set for it alone).
        let operators = match &verified.tx().body {
            TxBody::CreateIssue { record } if !record.co_issuers.is_empty() => {
                let next = self.ledger.store().tip()?.height + 1;
                self.ledger.store().operators_at(next)?
            }
            _ => Vec::new(),
        };
        if let Err(reason) = cachet_state::check_cosigners(&operators, verified.tx()) {
            // Cosignatures are outside the id: a correctly cosigned copy may exist, so the
            // refusal is not remembered against the id.
            if relay.is_some() {
                self.txs_rejected.fetch_add(1, Ordering::Relaxed);
            }
            return Err(SubmitError::Rejected(reason));
        }
        let admitted = {
            // Read the final nonce under the pool lock: the consensus thread commits a
            // block, then settles the pool under this lock, so we see both, neither, or a
            // commit without its settle, which `Mempool::next_nonce` allows for.
            let mut pool = self.pool();
            let final_nonce = self.final_nonce(&verified.tx().signer)?;
            pool.admit(verified, final_nonce)
        };
        match admitted {
            Ok(()) => {
                self.work.notify_one();
                if let Some(bytes) = relay {
                    self.outbox
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(bytes.to_vec());
                    self.outbox_ready.notify_one();
                }
                Ok((id, TxStatus::Pending))
            }
            Err(AdmitError::Rejected(reason)) => {
                // A client learns why; gossip from peers may just be out of order here.
                if relay.is_some() {
                    self.reject(id, reason.clone());
                }
                Err(SubmitError::Rejected(reason))
            }
            Err(other) => Err(SubmitError::Mempool(other)),
        }
    }

    fn reject(&self, id: Hash, reason: Rejection) {
        self.txs_rejected.fetch_add(1, Ordering::Relaxed);
        self.pool().remember(id, reason);
        self.statuses_changed();
    }

    /// Where a transaction stands.
    pub fn status(&self, id: &Hash) -> Result<TxStatus, StoreError> {
        if self.pool().contains(id) {
            return Ok(TxStatus::Pending);
        }
        // Checked after the pool: a transaction leaves the pool only once it is stored. And
        // before remembered rejections: another node may have made final what this one
        // refused (e.g. out of nonce order while it was catching up).
        if let Some(location) = self.ledger.store().tx_location(id)? {
            return Ok(TxStatus::Final {
                height: location.height,
                index: location.index,
            });
        }
        Ok(match self.pool().rejection(id) {
            Some(reason) => TxStatus::Rejected {
                reason: reason.code().to_string(),
                message: reason.to_string(),
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

    /// "validator N" (N its index at the next height), "validator (not in the operator
    /// set)", or "observer".
    pub fn role_name(&self) -> String {
        let Role::Validator(key) = self.role else {
            return "observer".into();
        };
        let index = self.ledger.store().tip().and_then(|tip| {
            let operators = self.ledger.store().operators_at(tip.height + 1)?;
            Ok(operators.iter().position(|op| op.validator_key == key))
        });
        match index {
            Ok(Some(index)) => format!("validator {index}"),
            Ok(None) => "validator (not in the operator set)".into(),
            Err(error) => format!("validator (operator set unreadable: {error})"),
        }
    }

    /// Counters.
    pub fn metrics(&self) -> NodeMetrics {
        NodeMetrics {
            mempool_size: self.pool().len(),
            txs_final: self.txs_final.load(Ordering::Relaxed),
            txs_rejected: self.txs_rejected.load(Ordering::Relaxed),
            blocks_committed: self.blocks_committed.load(Ordering::Relaxed),
            peers: self.peers.load(Ordering::Relaxed),
            consensus_round: self.consensus_round.load(Ordering::Relaxed) as u32,
            role: self.role_name(),
        }
    }

    /// Builds a block on the tip from the mempool for `proposer`: `None` when nothing is
    /// waiting and `allow_empty` is false. Transactions the block refuses leave the pool
    /// (with their reason) at once. Blocking: executes transactions.
    pub fn build_proposal(
        &self,
        proposer: u16,
        allow_empty: bool,
    ) -> Result<Option<ExecutedBlock>, LedgerError> {
        let max = self.ledger.store().genesis().params.max_block_txs as usize;
        let candidates = self.pool().candidates(max);
        if candidates.is_empty() && !allow_empty {
            return Ok(None);
        }
        let tip = self.ledger.store().tip()?;
        // Never behind the parent, even if this clock is.
        let time_ms = now_ms().max(tip.time_ms);
        let proposal = self.ledger.build(candidates, time_ms, proposer)?;
        if !proposal.rejected.is_empty() {
            self.settle_rejected(&proposal.rejected);
        }
        if proposal.block.txs.is_empty() && !allow_empty {
            return Ok(None);
        }
        Ok(Some(proposal))
    }

    fn settle_rejected(&self, rejected: &[(Hash, Rejection)]) {
        let mut pool = self.pool();
        let doomed: Vec<(PublicKey, u64)> = rejected
            .iter()
            .filter_map(|(id, _)| pool.get(id).map(|tx| (tx.tx().signer, tx.tx().nonce)))
            .collect();
        pool.settle(&[], rejected);
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
        self.statuses_changed();
    }

    /// Commits a final block: `executed` if this node executed it already (its own proposal
    /// or a checked peer proposal), else checked and executed here. Then the pool settles
    /// and waiters wake. Blocking: writes to disk.
    pub fn commit_final(
        &self,
        executed: Option<ExecutedBlock>,
        certified: CertifiedBlock,
    ) -> Result<Tip, LedgerError> {
        let tip = {
            let _writing = self.commit_lock.write().unwrap_or_else(|p| p.into_inner());
            match executed {
                Some(executed) => {
                    self.ledger
                        .commit_proposal(executed, certified.certificate.clone())?
                        .0
                }
                None => self.ledger.commit_certified(&certified)?,
            }
        };
        let included: Vec<Hash> = certified.block.txs.iter().map(SignedTx::id).collect();
        let signers: BTreeMap<PublicKey, u64> = certified
            .block
            .txs
            .iter()
            .map(|tx| (tx.signer, tx.nonce))
            .collect();
        {
            let mut pool = self.pool();
            pool.settle(&included, &[]);
            // Pending transactions whose nonce a final one (from another node) used.
            for (signer, nonce) in signers {
                for (id, got) in pool.drop_through(&signer, nonce) {
                    pool.remember(id, Rejection::StaleNonce { got, last: nonce });
                }
            }
        }
        self.txs_final
            .fetch_add(included.len() as u64, Ordering::Relaxed);
        self.blocks_committed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(height = tip.height, txs = included.len(), round = certified.certificate.round, hash = %tip.block_hash.short(), "block final");
        self.tip_sender.send_replace(tip);
        self.statuses_changed();
        Ok(tip)
    }

    /// Checks and executes a proposed block on the tip without committing it. Signatures of
    /// transactions this node already verified in the same bytes (same witness hash: the id
    /// alone does not fix the signature) are not checked again; the rest are batch-verified.
    pub fn prepare_block(&self, block: Block) -> Result<ExecutedBlock, LedgerError> {
        let mut verified: Vec<Option<VerifiedTx>> = {
            let pool = self.pool();
            block
                .txs
                .iter()
                .map(|tx| pool.get(&tx.id()).filter(|known| known.tx() == tx).cloned())
                .collect()
        };
        let (positions, missing): (Vec<usize>, Vec<SignedTx>) = block
            .txs
            .iter()
            .zip(&verified)
            .enumerate()
            .filter(|(_, (_, known))| known.is_none())
            .map(|(position, (tx, _))| (position, tx.clone()))
            .unzip();
        let chain_id = self.ledger.store().chain_id();
        let checked = cachet_types::verify_batch(&chain_id, missing, cachet_types::os_rng())
            .map_err(|(index, error)| LedgerError::Refused {
                height: block.header.height,
                refusal: cachet_state::BlockRefusal::TxCheck {
                    index: positions[index],
                    error,
                },
            })?;
        let mut checked = checked.into_iter();
        for slot in verified.iter_mut().filter(|slot| slot.is_none()) {
            *slot = checked.next();
        }
        let verified: Vec<VerifiedTx> = verified.into_iter().flatten().collect();
        self.ledger.prepare_verified(block, verified)
    }

    /// Encoded certified blocks from `from_height` on: at most `max`, and no more than
    /// `max_bytes` in all (but always the first, if it exists).
    pub fn blocks_from(
        &self,
        from_height: u64,
        max: u32,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let tip = self.ledger.store().tip()?.height;
        let mut blocks = Vec::new();
        let mut total = 0;
        for height in from_height.max(1)
            ..=tip.min(from_height.saturating_add(u64::from(max)).saturating_sub(1))
        {
            let Some(block) = self.ledger.store().block(height)? else {
                break;
            };
            let bytes = cachet_types::codec::encode(&block);
            total += bytes.len();
            if total > max_bytes && !blocks.is_empty() {
                break;
            }
            blocks.push(bytes);
        }
        Ok(blocks)
    }

    /// Transactions pending here for longer than `age` (at most `max`, oldest first), to
    /// gossip again; those pending longer than `expiry` are dropped first.
    pub fn lingering(&self, age: Duration, expiry: Duration, max: usize) -> Vec<Vec<u8>> {
        let now = Instant::now();
        let mut pool = self.pool();
        if let Some(cutoff) = now.checked_sub(expiry) {
            let expired = pool.expire(cutoff);
            if expired > 0 {
                tracing::warn!(expired, "dropped transactions pending too long");
            }
        }
        let Some(cutoff) = now.checked_sub(age) else {
            return Vec::new();
        };
        let lingering = pool.lingering(cutoff, max);
        drop(pool);
        if let Err(error) = self.recheck(&lingering) {
            tracing::error!(%error, "cannot recheck pending transactions");
        }
        // Those the recheck refused left the pool: not gossiped again.
        let pool = self.pool();
        lingering
            .iter()
            .filter(|tx| pool.contains(&tx.id()))
            .map(|tx| tx.tx().to_bytes())
            .collect()
    }

    /// Executes `pending` (the oldest pending transactions, a prefix of the pool in arrival
    /// order, so what they depend on comes first) on the tip as a block would, and settles
    /// those a block would refuse: a transaction that passed admission but breaks a state
    /// rule (a stale last event, a stamp sold meanwhile) is refused here too, not left
    /// pending on every node whose proposer did not build it. Returns how many were refused.
    fn recheck(&self, pending: &[VerifiedTx]) -> Result<usize, LedgerError> {
        if pending.is_empty() {
            return Ok(0);
        }
        // No commit in between: the execution sees one tip.
        let proposal = {
            let _reading = self.commit_lock.read().unwrap_or_else(|p| p.into_inner());
            let tip = self.ledger.store().tip()?;
            self.ledger
                .build(pending.to_vec(), now_ms().max(tip.time_ms), 0)?
        };
        // Only those still pending: a commit may have settled some since they were read.
        let refused: Vec<(Hash, Rejection)> = {
            let pool = self.pool();
            proposal
                .rejected
                .into_iter()
                .filter(|(id, _)| pool.contains(id))
                .collect()
        };
        if !refused.is_empty() {
            self.settle_rejected(&refused);
        }
        Ok(refused.len())
    }

    /// Transactions admitted here since the last call, to gossip.
    pub fn take_outbox(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits until admitted transactions wait in the outbox.
    pub async fn outbox_filled(&self) {
        self.outbox_ready.notified().await
    }

    /// The current consensus round, for metrics.
    pub fn set_round(&self, round: u32) {
        self.consensus_round
            .store(u64::from(round), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_storage::Store;
    use cachet_testkit::{TestChain, TxFactory, issue_record};

    /// An observer node over a fresh store of a four-operator chain, and a signer for it.
    struct Fixture {
        chain: TestChain,
        node: Node,
        factory: TxFactory,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let chain = TestChain::new(4);
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("db"), &chain.genesis).unwrap();
            let node = Node::new(
                Ledger::new(store),
                Mempool::new(100, 100),
                Role::Observer,
                Arc::new(AtomicUsize::new(0)),
            )
            .unwrap();
            Fixture {
                factory: TxFactory::new(chain.chain_id),
                chain,
                node,
                _dir: dir,
            }
        }
    }

    fn batch(txs: &[SignedTx]) -> Vec<Vec<u8>> {
        txs.iter().map(SignedTx::to_bytes).collect()
    }

    fn create(factory: &mut TxFactory, chain: &TestChain, id: &str) -> SignedTx {
        let body = TxBody::CreateIssue {
            record: issue_record(id, "AT-POST", 10),
        };
        factory.sign(chain.issuer(0), body)
    }

    #[test]
    fn gossiped_batches_are_judged_for_the_gossip_layer() {
        let mut fixture = Fixture::new();
        let Fixture {
            chain,
            node,
            factory,
            ..
        } = &mut fixture;
        let first = create(factory, chain, "AT-2026-001");
        let second = create(factory, chain, "AT-2026-002");

        assert_eq!(node.admit_batch(&[b"garbage".to_vec()]), Verdict::Reject);

        // A forged signature condemns the whole batch; nothing of it is admitted.
        let mut forged = second.clone();
        forged.signature = first.signature;
        assert_eq!(
            node.admit_batch(&batch(&[first.clone(), forged])),
            Verdict::Reject
        );
        assert_eq!(node.metrics().mempool_size, 0);

        // Another chain's transaction.
        let mut other = TxFactory::new(Hash::ZERO);
        let foreign = create(&mut other, chain, "AT-2026-001");
        assert_eq!(node.admit_batch(&batch(&[foreign])), Verdict::Reject);

        // A good batch is admitted and forwarded, and not gossiped again by this node.
        assert_eq!(
            node.admit_batch(&batch(&[first.clone(), second.clone()])),
            Verdict::Accept
        );
        assert_eq!(node.status(&first.id()).unwrap(), TxStatus::Pending);
        assert_eq!(node.status(&second.id()).unwrap(), TxStatus::Pending);
        assert!(node.take_outbox().is_empty());
        // Seen again: still fine.
        assert_eq!(node.admit_batch(&batch(&[first])), Verdict::Accept);
    }

    #[test]
    fn a_copy_with_other_cosigners_cannot_take_the_authors_nonce() {
        // TestChain's operators: AT-POST (issuer 0) and DE-POST (issuer 1), ...
        let mut fixture = Fixture::new();
        let Fixture {
            chain,
            node,
            factory,
            ..
        } = &mut fixture;
        let mut record = issue_record("AT-2026-001", "AT-POST", 10);
        record.co_issuers = vec![cachet_types::CoIssuer {
            operator: cachet_testkit::operator_id("DE"),
            share: 5,
        }];
        let unsigned = factory.sign(chain.issuer(0), TxBody::CreateIssue { record });
        // Someone relays a copy cosigned by the wrong key (a valid signature, another id):
        // refused before the pool, so the genuine one still gets in.
        let mut tampered = unsigned.clone();
        tampered.cosign(&cachet_testkit::key("mallory"));
        assert!(matches!(
            node.submit(&tampered.to_bytes()),
            Err(SubmitError::Rejected(Rejection::MissingCosignature(_)))
        ));
        assert_eq!(node.admit_batch(&batch(&[tampered])), Verdict::Accept);
        assert_eq!(node.metrics().mempool_size, 0);
        let mut genuine = unsigned;
        genuine.cosign(chain.issuer(1));
        assert_eq!(
            node.submit(&genuine.to_bytes()).unwrap().1,
            TxStatus::Pending
        );
    }

    #[test]
    fn a_second_signature_of_a_pending_transaction_is_the_same_transaction() {
        let mut fixture = Fixture::new();
        let Fixture {
            chain,
            node,
            factory,
            ..
        } = &mut fixture;
        let tx = create(factory, chain, "AT-2026-001");
        // A badly signed copy first: refused to its sender, not remembered against the id.
        let mut forged = tx.clone();
        forged.signature = cachet_testkit::key("mallory").sign(&tx.signing_bytes());
        assert_eq!(forged.id(), tx.id());
        assert!(matches!(
            node.submit(&forged.to_bytes()),
            Err(SubmitError::Rejected(Rejection::BadSignature))
        ));
        assert_eq!(node.status(&tx.id()).unwrap(), TxStatus::Unknown);
        let (id, status) = node.submit(&tx.to_bytes()).unwrap();
        assert_eq!((id, status), (tx.id(), TxStatus::Pending));
        // The signer signs again (another valid ZIP-215 encoding, R with a torsion
        // component): other bytes, one transaction.
        let mut resigned = tx.clone();
        resigned.signature =
            cachet_testkit::hostile::torsion_signature(chain.issuer(0), &tx.signing_bytes(), 5);
        assert_ne!(resigned.to_bytes(), tx.to_bytes());
        assert_ne!(resigned.witness_hash(), tx.witness_hash());
        assert!(resigned.clone().verify(&chain.chain_id).is_ok());
        assert_eq!(
            node.submit(&resigned.to_bytes()).unwrap(),
            (tx.id(), TxStatus::Pending)
        );
        assert_eq!(
            node.admit_batch(&batch(std::slice::from_ref(&resigned))),
            Verdict::Accept
        );
        assert_eq!(node.metrics().mempool_size, 1);
        // A proposal carrying the other encoding is checked on its own bytes, not passed
        // because its id is pending here.
        let proposal = node.build_proposal(0, false).unwrap().expect("a block");
        let mut swapped = proposal.block.clone();
        swapped.txs[0] = forged;
        assert!(node.prepare_block(swapped).is_err());
        assert!(node.prepare_block(proposal.block).is_ok());
    }

    #[test]
    fn a_re_cosigned_swap_keeps_its_id() {
        let fixture = Fixture::new();
        let alice = cachet_testkit::key("alice");
        let bob = cachet_testkit::key("bob");
        let body = TxBody::Swap {
            give: vec![cachet_types::SwapLeg {
                stamp: cachet_testkit::stamp("AT-2026-001", 1),
                last_event: Hash::ZERO,
            }],
            take: vec![cachet_types::SwapLeg {
                stamp: cachet_testkit::stamp("AT-2026-001", 2),
                last_event: Hash::ZERO,
            }],
            counterparty: bob.public_key().address(),
        };
        let mut offer = SignedTx::sign(fixture.chain.chain_id, &alice, 1, body);
        offer.cosign(&bob);
        let id = offer.id();
        let mut again = offer.clone();
        again.cosignatures[0].signature =
            cachet_testkit::hostile::torsion_signature(&bob, &offer.cosigning_bytes(), 9);
        assert_ne!(again.cosignatures, offer.cosignatures);
        assert!(again.clone().verify(&fixture.chain.chain_id).is_ok());
        assert_eq!(again.id(), id);
        assert_ne!(again.witness_hash(), offer.witness_hash());
    }

    #[test]
    fn a_pending_transaction_a_block_would_refuse_is_refused_by_the_recheck() {
        let mut fixture = Fixture::new();
        let Fixture {
            chain,
            node,
            factory,
            ..
        } = &mut fixture;
        // Passes admission (right nonce), breaks a state rule: no such stamp. An observer
        // never builds a block, so only the recheck can refuse it here.
        let transfer = factory.sign(
            &cachet_testkit::key("alice"),
            TxBody::Transfer {
                stamp: cachet_testkit::stamp("AT-2026-001", 1),
                last_event: Hash::ZERO,
                to: cachet_testkit::address("bob"),
            },
        );
        let fine = create(factory, chain, "AT-2026-001");
        node.submit(&transfer.to_bytes()).unwrap();
        node.submit(&fine.to_bytes()).unwrap();
        let mut changes = node.status_watch();
        changes.mark_unchanged();
        // The gossip task's call: both are older than an age of zero.
        let regossiped = node.lingering(Duration::ZERO, Duration::from_secs(600), 100);
        assert_eq!(
            regossiped,
            vec![fine.to_bytes()],
            "the refused one is not regossiped"
        );
        assert!(matches!(
            node.status(&transfer.id()).unwrap(),
            TxStatus::Rejected { reason, .. } if reason == "unknown_stamp"
        ));
        assert_eq!(node.status(&fine.id()).unwrap(), TxStatus::Pending);
        assert!(changes.has_changed().unwrap(), "long polls are woken");
    }

    #[test]
    fn client_submissions_are_gossiped() {
        let mut fixture = Fixture::new();
        let Fixture {
            chain,
            node,
            factory,
            ..
        } = &mut fixture;
        let tx = create(factory, chain, "AT-2026-001");
        let (_, status) = node.submit(&tx.to_bytes()).unwrap();
        assert_eq!(status, TxStatus::Pending);
        assert_eq!(node.take_outbox(), vec![tx.to_bytes()]);
    }

    #[test]
    fn a_transaction_refused_here_but_final_later_reports_final() {
        let mut fixture = Fixture::new();
        let Fixture {
            chain,
            node,
            factory,
            ..
        } = &mut fixture;
        let first = create(factory, chain, "AT-2026-001");
        let second = create(factory, chain, "AT-2026-002");
        // The second arrives first: refused here (nonce gap), and the refusal remembered.
        assert!(node.submit(&second.to_bytes()).is_err());
        assert!(matches!(
            node.status(&second.id()).unwrap(),
            TxStatus::Rejected { .. }
        ));
        // The first, then the second again by gossip; a block makes both final.
        node.submit(&first.to_bytes()).unwrap();
        assert_eq!(
            node.admit_batch(&batch(std::slice::from_ref(&second))),
            Verdict::Accept
        );
        let executed = node.build_proposal(0, false).unwrap().expect("a block");
        assert_eq!(executed.block.txs.len(), 2);
        let signers: Vec<(u16, &cachet_types::SigningKey)> =
            (0..3).map(|i| (i as u16, chain.validator(i))).collect();
        let certificate =
            cachet_types::CommitCertificate::sign(&executed.block.header, 0, &signers);
        let certified = CertifiedBlock {
            block: executed.block.clone(),
            certificate,
        };
        node.commit_final(Some(executed), certified).unwrap();
        assert!(matches!(
            node.status(&second.id()).unwrap(),
            TxStatus::Final { height: 1, .. }
        ));
        assert_eq!(node.metrics().mempool_size, 0);
    }
}
