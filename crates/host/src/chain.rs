//! A node's ledger side: admission of transactions into the mempool, building, checking and
//! committing blocks for consensus, blocks for peers, and the status of transactions.
//! Shared by the API handlers, the network glue and the consensus core of `cachetd`, and
//! driven the same way by the simulator. No clock, socket or thread here: times are
//! arguments, and what the embedding must learn (a commit, a status change, work for the
//! proposer, transactions to gossip) goes out through [`Hooks`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};

use cachet_state::{AccountState, ExecutedBlock, Rejection, StateKey, StateValue};
use cachet_storage::{Ledger, LedgerError, StoreError, Tip};
use cachet_types::{Block, CertifiedBlock, Hash, PublicKey, SignedTx, TxBody, VerifiedTx};

use crate::mempool::{AdmitError, Mempool};

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

/// Where a transaction stands on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting in the mempool.
    Pending,
    /// In a certified block.
    Final {
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
    },
    /// Refused here, with its reason (remembered, bounded).
    Rejected(Rejection),
    /// Never seen, or forgotten.
    Unknown,
}

/// How a gossiped batch of transactions is judged, for the gossip layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Well formed and well signed: forward it.
    Accept,
    /// Malformed or badly signed: its sender relayed garbage.
    Reject,
    /// No judgement (this node could not look).
    Ignore,
}

/// A client's transaction after its stateless checks.
enum Precheck {
    /// Final or pending already: the same answer again.
    Known(Hash, Status),
    /// Decoded, not seen: its signatures are to be checked.
    Fresh(Box<SignedTx>),
}

/// What the embedding learns from the chain, as it happens. Every method has an empty
/// default: the simulator needs none of them.
pub trait Hooks: Send + Sync {
    /// A block was committed; `tip` is the new tip.
    fn committed(&self, _tip: Tip) {}
    /// Transactions became final or refused here (long polls wake).
    fn statuses_changed(&self) {}
    /// A transaction entered the mempool (the proposer may have work).
    fn work_arrived(&self) {}
    /// A client's transaction waits in the outbox, to be gossiped.
    fn outbox_filled(&self) {}
}

impl<H: Hooks> Hooks for std::sync::Arc<H> {
    fn committed(&self, tip: Tip) {
        (**self).committed(tip)
    }
    fn statuses_changed(&self) {
        (**self).statuses_changed()
    }
    fn work_arrived(&self) {
        (**self).work_arrived()
    }
    fn outbox_filled(&self) {
        (**self).outbox_filled()
    }
}

/// Hooks that do nothing.
pub struct NoHooks;

impl Hooks for NoHooks {}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Transactions waiting.
    pub mempool_size: usize,
    /// Transactions final.
    pub txs_final: u64,
    /// Transactions refused.
    pub txs_rejected: u64,
    /// Transactions admitted to the pool (clients' and gossiped).
    pub txs_admitted: u64,
    /// Encoded bytes waiting in the pool.
    pub mempool_bytes: usize,
    /// Blocks committed.
    pub blocks_committed: u64,
    /// The consensus round of the height being decided.
    pub consensus_round: u32,
    /// Transaction and certificate signatures checked (consensus messages' are the
    /// driver's count).
    pub signature_checks: u64,
}

/// What a commit made final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The new tip.
    pub tip: Tip,
    /// The round the block was decided in.
    pub round: u32,
    /// Ids of its transactions, in order.
    pub txs: Vec<Hash>,
}

/// The ledger with its mempool and counters.
pub struct Chain {
    ledger: Ledger,
    mempool: Mutex<Mempool>,
    /// Held for writing while a block is committed, for reading while a proof is built or
    /// pending transactions are executed: the state tree is stored by position, so a proof
    /// must not straddle two roots.
    commit_lock: RwLock<()>,
    hooks: Box<dyn Hooks>,
    outbox: Mutex<Vec<Vec<u8>>>,
    txs_final: AtomicU64,
    txs_admitted: AtomicU64,
    /// Refusals by reason code (every refusal: of clients' and of built blocks').
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    blocks_committed: AtomicU64,
    consensus_round: AtomicU64,
    signature_checks: AtomicU64,
    /// Monotonic ms + 1 of the last sign that peers are where this node is (0: none yet).
    in_step_ms: AtomicU64,
    /// The last message from a height ahead of ours: (height, monotonic ms + 1).
    ahead_message: Mutex<(u64, u64)>,
}

/// What consensus traffic says of this node's place in the chain, for readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerView {
    /// When (monotonic ms) peers last showed they are where this node is: a checked
    /// consensus message for the height it decides, or a peer's sync answer that left
    /// nothing newer to fetch (an idle chain sends no consensus messages).
    pub in_step_ms: Option<u64>,
    /// The height and time of the last message from a height ahead (not checked: the
    /// signers of a future height are not known yet), showing how far behind it is.
    pub ahead_message: Option<(u64, u64)>,
}

/// `items` cut into consecutive runs of `sizes` (which sum to its length).
fn split<T>(items: Vec<T>, sizes: &[usize]) -> Vec<Vec<T>> {
    let mut items = items.into_iter();
    sizes
        .iter()
        .map(|&size| items.by_ref().take(size).collect())
        .collect()
}

/// The signatures of a certified block: its certificate's and its transactions'.
fn all_signatures(certified: &CertifiedBlock) -> u64 {
    certified.certificate.signatures.len() as u64
        + certified.block.txs.iter().map(signatures).sum::<u64>()
}

/// Signatures a transaction carries (its signer's and its cosigners').
fn signatures(tx: &SignedTx) -> u64 {
    1 + tx.cosignatures.len() as u64
}

/// What a client hears of one transaction it submitted: its id and status, or the refusal.
pub type Answer = Result<(Hash, Status), SubmitError>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is a bug that already stopped a task; the data stays
    // consistent between calls, so keep serving.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Chain {
    /// A chain over an open ledger.
    pub fn new(ledger: Ledger, mempool: Mempool, hooks: Box<dyn Hooks>) -> Chain {
        Chain {
            ledger,
            mempool: Mutex::new(mempool),
            commit_lock: RwLock::new(()),
            hooks,
            outbox: Mutex::new(Vec::new()),
            txs_final: AtomicU64::new(0),
            txs_admitted: AtomicU64::new(0),
            rejected: Mutex::new(BTreeMap::new()),
            blocks_committed: AtomicU64::new(0),
            consensus_round: AtomicU64::new(0),
            signature_checks: AtomicU64::new(0),
            in_step_ms: AtomicU64::new(0),
            ahead_message: Mutex::new((0, 0)),
        }
    }

    /// The ledger, for queries.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    fn pool(&self) -> MutexGuard<'_, Mempool> {
        lock(&self.mempool)
    }

    fn checked(&self, signatures: u64) {
        self.signature_checks
            .fetch_add(signatures, Ordering::Relaxed);
    }

    /// Whether transactions wait.
    pub fn has_work(&self) -> bool {
        !self.pool().is_empty()
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

    /// Checks and admits transaction bytes from a client at `now_ms` (monotonic); returns
    /// the id and its status. Admitted transactions wait in the outbox, to be gossiped.
    pub fn submit(&self, bytes: &[u8], now_ms: u64) -> Answer {
        // The path the node's API takes, one transaction long.
        self.submit_batch(&[bytes.to_vec()], now_ms)
            .pop()
            .expect("one answer per transaction")
    }

    /// [`Chain::submit`] for many transactions from one client at `now_ms`: the signatures
    /// of the fresh ones checked in one parallel batch, then each admitted in the order
    /// given (a signer's consecutive nonces may come in one batch). One answer per
    /// transaction, in order; a bad one does not affect the others.
    pub fn submit_batch(&self, txs: &[Vec<u8>], now_ms: u64) -> Vec<Answer> {
        self.submit_batches(&[txs], now_ms)
            .pop()
            .expect("one answer list per batch")
    }

    /// [`Chain::submit_batch`] for several clients' batches at once (the requests that
    /// queued while the last were checked), one answer list each, in order: their fresh
    /// transactions' signatures are checked together, in one batch verification across
    /// cores (per signature about half the cost at a thousand as at thirty). If that fails,
    /// each batch is checked alone, so a client's bad signature costs the others one more
    /// batch verification and is answered to that client only. Transactions are admitted
    /// batch by batch, each in the order given; one repeated anywhere in the group gets the
    /// answer of its first copy.
    pub fn submit_batches(&self, batches: &[&[Vec<u8>]], now_ms: u64) -> Vec<Vec<Answer>> {
        let mut answers: Vec<Vec<Option<Answer>>> = Vec::with_capacity(batches.len());
        // Each batch's fresh transactions, with their place in it.
        let mut fresh: Vec<(Vec<usize>, Vec<SignedTx>)> = Vec::with_capacity(batches.len());
        for txs in batches {
            // Answered now, or `None` until its signature is checked.
            let mut early = Vec::with_capacity(txs.len());
            let (mut indices, mut unseen) = (Vec::new(), Vec::new());
            for (index, bytes) in txs.iter().enumerate() {
                match self.precheck(bytes) {
                    Ok(Precheck::Fresh(tx)) => {
                        indices.push(index);
                        unseen.push(*tx);
                        early.push(None);
                    }
                    Ok(Precheck::Known(id, status)) => early.push(Some(Ok((id, status)))),
                    Err(error) => early.push(Some(Err(error))),
                }
            }
            answers.push(early);
            fresh.push((indices, unseen));
        }
        self.checked(fresh.iter().flat_map(|(_, txs)| txs).map(signatures).sum());
        let chain_id = self.ledger.store().chain_id();
        let sizes: Vec<usize> = fresh.iter().map(|(_, txs)| txs.len()).collect();
        let (indices, fresh): (Vec<Vec<usize>>, Vec<Vec<SignedTx>>) = fresh.into_iter().unzip();
        let verdicts: Vec<Vec<Result<VerifiedTx, cachet_types::TxCheckError>>> =
            match cachet_types::verify_all(&chain_id, fresh.into_iter().flatten().collect()) {
                Ok(verified) => split(verified.into_iter().map(Ok).collect(), &sizes),
                // Some signature is bad. With one client in the group, each transaction is
                // checked alone; with several, each client's batch first (usually all
                // good), then one by one within a bad one, the batches spread over the
                // cores as separate requests were.
                Err(unjudged) => {
                    let batches = split(unjudged, &sizes);
                    let sigs: Vec<u64> = batches
                        .iter()
                        .map(|txs| txs.iter().map(signatures).sum())
                        .collect();
                    self.checked(sigs.iter().sum());
                    if sizes.iter().filter(|&&size| size > 0).count() == 1 {
                        batches
                            .into_iter()
                            .map(|txs| txs.into_iter().map(|tx| tx.verify(&chain_id)).collect())
                            .collect()
                    } else {
                        let verdicts = cachet_types::verify_each_batch(&chain_id, &batches);
                        // A batch with a bad one was also checked one by one.
                        self.checked(
                            verdicts
                                .iter()
                                .zip(&sigs)
                                .filter(|(verdicts, _)| verdicts.iter().any(Result::is_err))
                                .map(|(_, sigs)| sigs)
                                .sum(),
                        );
                        verdicts
                    }
                }
            };
        let mut seen = std::collections::HashSet::new();
        for (((answers, txs), indices), verdicts) in
            answers.iter_mut().zip(batches).zip(indices).zip(verdicts)
        {
            for (index, verdict) in indices.into_iter().zip(verdicts) {
                answers[index] = Some(self.admit_fresh(verdict, &txs[index], &mut seen, now_ms));
            }
        }
        answers
            .into_iter()
            .map(|answers| {
                answers
                    .into_iter()
                    .map(|answer| answer.expect("every transaction answered"))
                    .collect()
            })
            .collect()
    }

    /// A client's fresh transaction after its signature check: admitted, refused, or, if
    /// `seen` already holds its id (a copy earlier in the group), answered as that copy was.
    fn admit_fresh(
        &self,
        verdict: Result<VerifiedTx, cachet_types::TxCheckError>,
        bytes: &[u8],
        seen: &mut std::collections::HashSet<Hash>,
        now_ms: u64,
    ) -> Answer {
        match verdict {
            Ok(verified) if !seen.insert(verified.id()) => match self.status(&verified.id()) {
                Ok(status @ (Status::Final { .. } | Status::Pending)) => {
                    Ok((verified.id(), status))
                }
                Ok(_) => self.admit_checked(verified, Some(bytes), now_ms),
                Err(error) => Err(SubmitError::Store(error)),
            },
            Ok(verified) => self.admit_checked(verified, Some(bytes), now_ms),
            Err(error) => Err(self.refuse_signature(error)),
        }
    }

    /// Size, decoding and the known-status shortcut of a client's transaction.
    fn precheck(&self, bytes: &[u8]) -> Result<Precheck, SubmitError> {
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
        if matches!(status, Status::Final { .. } | Status::Pending) {
            return Ok(Precheck::Known(id, status));
        }
        Ok(Precheck::Fresh(Box::new(tx)))
    }

    /// A client's transaction whose signatures fail. Not remembered against the id: the id
    /// covers the content, not the signature or the cosignatures, so a validly signed copy
    /// may be pending elsewhere. The refusal goes to this submitter only.
    fn refuse_signature(&self, error: cachet_types::TxCheckError) -> SubmitError {
        let reason = Rejection::from(error);
        self.count_rejections(reason.code(), 1);
        SubmitError::Rejected(reason)
    }

    fn count_rejections(&self, code: &'static str, count: u64) {
        if count > 0 {
            *lock(&self.rejected).entry(code).or_insert(0) += count;
        }
    }

    /// Peers showed at `mono_ms` that they are where this node is (see [`PeerView`]).
    pub fn note_in_step(&self, mono_ms: u64) {
        self.in_step_ms.fetch_max(mono_ms + 1, Ordering::Relaxed);
    }

    /// A consensus message of `height`, ahead of this node, arrived at `mono_ms`.
    pub fn note_ahead_message(&self, height: u64, mono_ms: u64) {
        *lock(&self.ahead_message) = (height, mono_ms + 1);
    }

    /// What consensus traffic says of this node's place (see [`PeerView`]).
    pub fn peer_view(&self) -> PeerView {
        let current = self.in_step_ms.load(Ordering::Relaxed);
        let (height, at) = *lock(&self.ahead_message);
        PeerView {
            in_step_ms: current.checked_sub(1),
            ahead_message: at.checked_sub(1).map(|at| (height, at)),
        }
    }

    /// Refusals since start, by reason code.
    pub fn rejections(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.rejected).clone()
    }

    /// Checks and admits a gossiped batch of transactions at `now_ms`, and judges the batch
    /// for the gossip layer: any malformed or badly signed transaction condemns the batch
    /// (its sender relayed garbage); otherwise it is forwarded.
    pub fn admit_batch(&self, txs: &[Vec<u8>], now_ms: u64) -> BatchVerdict {
        self.admit_batches(&[txs], now_ms)[0]
    }

    /// [`Chain::admit_batch`] for several gossiped batches at once (those that queued while
    /// the last were checked), one verdict each, in order: their fresh transactions'
    /// signatures are checked together, in one batch verification across cores. Per
    /// signature that costs about half as much at a thousand as at eight, and gossiped
    /// batches hold a few milliseconds of one node's submissions. If the whole fails, each
    /// batch is checked alone, so only the batches with a bad signature are condemned.
    /// Transactions are admitted in the order given.
    pub fn admit_batches(&self, batches: &[&[Vec<u8>]], now_ms: u64) -> Vec<BatchVerdict> {
        let max_tx = self.ledger.store().genesis().params.max_tx_bytes as usize;
        let mut verdicts = vec![BatchVerdict::Accept; batches.len()];
        // Each batch's fresh transactions (known ones are neither checked nor admitted).
        let mut fresh: Vec<Vec<SignedTx>> = Vec::with_capacity(batches.len());
        for (verdict, txs) in verdicts.iter_mut().zip(batches) {
            fresh.push(match self.fresh_of(txs, max_tx) {
                Ok(fresh) => fresh,
                Err(condemned) => {
                    *verdict = condemned;
                    Vec::new()
                }
            });
        }
        // One batch verification (a quarter of the cost of one-by-one); a single bad
        // signature condemns its batch. Its random scalars do not change the verdict
        // (ZIP-215: batch and single checks agree).
        self.checked(fresh.iter().flatten().map(signatures).sum());
        let chain_id = self.ledger.store().chain_id();
        let sizes: Vec<usize> = fresh.iter().map(Vec::len).collect();
        let verified: Vec<Option<Vec<VerifiedTx>>> =
            match cachet_types::verify_all(&chain_id, fresh.into_iter().flatten().collect()) {
                Ok(verified) => split(verified, &sizes).into_iter().map(Some).collect(),
                // Some batch is bad: each is checked alone. A bad one costs the others a
                // second batch verification, and its sender the gossip layer's penalty.
                Err(unjudged) => {
                    self.checked(unjudged.iter().map(signatures).sum());
                    split(unjudged, &sizes)
                        .into_iter()
                        .map(|txs| cachet_types::verify_parallel(&chain_id, txs).ok())
                        .collect()
                }
            };
        for (verdict, verified) in verdicts.iter_mut().zip(verified) {
            match verified {
                Some(verified) if *verdict == BatchVerdict::Accept => {
                    for tx in verified {
                        // Valid but refused here (nonce order, full pool): another node may
                        // take it.
                        if let Err(SubmitError::Store(error)) = self.admit_checked(tx, None, now_ms)
                        {
                            tracing::error!(%error, "cannot admit a gossiped transaction");
                        }
                    }
                }
                Some(_) => {}
                None => *verdict = BatchVerdict::Reject,
            }
        }
        verdicts
    }

    /// The transactions of a gossiped batch that this node does not know yet, or the
    /// batch's verdict if it cannot be admitted: a malformed transaction condemns it, a
    /// store that cannot be read ignores it.
    fn fresh_of(&self, txs: &[Vec<u8>], max_tx: usize) -> Result<Vec<SignedTx>, BatchVerdict> {
        let mut fresh = Vec::with_capacity(txs.len());
        for bytes in txs {
            let tx = SignedTx::from_bytes(bytes, max_tx).map_err(|_| BatchVerdict::Reject)?;
            match self.status(&tx.id()) {
                Ok(Status::Final { .. } | Status::Pending) => {}
                Ok(_) => fresh.push(tx),
                Err(error) => {
                    tracing::error!(%error, "cannot check a gossiped transaction");
                    return Err(BatchVerdict::Ignore);
                }
            }
        }
        Ok(fresh)
    }

    /// Admits a transaction whose signature is checked; `relay` holds its bytes when it came
    /// from a client (to gossip it and remember a refusal).
    fn admit_checked(
        &self,
        verified: VerifiedTx,
        relay: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<(Hash, Status), SubmitError> {
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
                self.count_rejections(reason.code(), 1);
            }
            return Err(SubmitError::Rejected(reason));
        }
        let admitted = {
            // Read the final nonce under the pool lock: the consensus core commits a block,
            // then settles the pool under this lock, so we see both, neither, or a commit
            // without its settle, which `Mempool::next_nonce` allows for.
            let mut pool = self.pool();
            let final_nonce = self.final_nonce(&verified.tx().signer)?;
            pool.admit(verified, final_nonce, now_ms)
        };
        match admitted {
            Ok(()) => {
                self.txs_admitted.fetch_add(1, Ordering::Relaxed);
                self.hooks.work_arrived();
                if let Some(bytes) = relay {
                    lock(&self.outbox).push(bytes.to_vec());
                    self.hooks.outbox_filled();
                }
                Ok((id, Status::Pending))
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
        self.count_rejections(reason.code(), 1);
        self.pool().remember(id, reason);
        self.hooks.statuses_changed();
    }

    /// Where a transaction stands.
    pub fn status(&self, id: &Hash) -> Result<Status, StoreError> {
        if self.pool().contains(id) {
            return Ok(Status::Pending);
        }
        // Checked after the pool: a transaction leaves the pool only once it is stored. And
        // before remembered rejections: another node may have made final what this one
        // refused (e.g. out of nonce order while it was catching up).
        if let Some(location) = self.ledger.store().tx_location(id)? {
            return Ok(Status::Final {
                height: location.height,
                index: location.index,
            });
        }
        Ok(match self.pool().rejection(id) {
            Some(reason) => Status::Rejected(reason.clone()),
            None => Status::Unknown,
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

    /// Counters since start.
    pub fn counters(&self) -> Counters {
        let (mempool_size, mempool_bytes) = {
            let pool = self.pool();
            (pool.len(), pool.bytes())
        };
        Counters {
            mempool_size,
            txs_final: self.txs_final.load(Ordering::Relaxed),
            txs_rejected: lock(&self.rejected).values().sum(),
            txs_admitted: self.txs_admitted.load(Ordering::Relaxed),
            mempool_bytes,
            blocks_committed: self.blocks_committed.load(Ordering::Relaxed),
            consensus_round: self.consensus_round.load(Ordering::Relaxed) as u32,
            signature_checks: self.signature_checks.load(Ordering::Relaxed),
        }
    }

    /// Builds a block on the tip from the mempool for `proposer`, stamped `wall_ms` (or
    /// the parent's time, if this clock is behind it): `None` when nothing is waiting and
    /// `allow_empty` is false. Transactions the block refuses leave the pool (with their
    /// reason) at once. Blocking: executes transactions.
    pub fn build_proposal(
        &self,
        proposer: u16,
        allow_empty: bool,
        wall_ms: u64,
    ) -> Result<Option<ExecutedBlock>, LedgerError> {
        let max = self.ledger.store().genesis().params.max_block_txs as usize;
        let candidates = self.pool().candidates(max);
        if candidates.is_empty() && !allow_empty {
            return Ok(None);
        }
        let tip = self.ledger.store().tip()?;
        let proposal = self
            .ledger
            .build(candidates, wall_ms.max(tip.time_ms), proposer)?;
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
        // A refused transaction frees its nonce, so its signer's later ones can never apply;
        // not so for a stale one (a final transaction used the nonce; the later ones follow
        // that one).
        let doomed: Vec<(PublicKey, u64)> = rejected
            .iter()
            .filter(|(_, reason)| !matches!(reason, Rejection::StaleNonce { .. }))
            .filter_map(|(id, _)| pool.get(id).map(|tx| (tx.tx().signer, tx.tx().nonce)))
            .collect();
        pool.settle(&[], rejected);
        for (_, reason) in rejected {
            self.count_rejections(reason.code(), 1);
        }
        let mut dropped = 0;
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
        self.count_rejections(
            Rejection::NonceGap {
                got: 0,
                expected: 0,
            }
            .code(),
            dropped,
        );
        self.hooks.statuses_changed();
    }

    /// Commits a final block: `executed` if this node executed it already (its own proposal
    /// or a checked peer proposal), else checked and executed here. Then the pool settles
    /// and the hooks learn of it. Blocking: writes to disk.
    pub fn commit_final(
        &self,
        executed: Option<ExecutedBlock>,
        certified: CertifiedBlock,
    ) -> Result<Committed, LedgerError> {
        // The pool settles under the commit lock too: a reader holding it (the recheck) sees
        // the commit and its settle, or neither.
        let writing = self.commit_lock.write().unwrap_or_else(|p| p.into_inner());
        let tip = match executed {
            Some(executed) => {
                self.checked(certified.certificate.signatures.len() as u64);
                self.ledger
                    .commit_proposal(executed, certified.certificate.clone())?
                    .0
            }
            None => {
                self.checked(all_signatures(&certified));
                self.ledger.commit_certified(&certified)?
            }
        };
        let committed = self.settle_final(tip, &certified);
        drop(writing);
        self.announce(&committed);
        Ok(committed)
    }

    /// Commits a run of final blocks in height order, as [`Chain::commit_final`] does one,
    /// but pipelined: block h+1's signatures are batch-verified on a thread of their own
    /// while block h executes, and each block is written behind the execution of the next
    /// (`Ledger::commit_proposal_behind`). Stops at the first block that fails, returning
    /// what was committed before it and the failure. Everything committed is written before
    /// this returns, and only then do the hooks hear of it; the recheck of lingering
    /// transactions waits for the whole run (it holds the commit lock).
    pub fn commit_synced(
        &self,
        blocks: Vec<(Option<ExecutedBlock>, CertifiedBlock)>,
    ) -> (Vec<Committed>, Option<LedgerError>) {
        let writing = self.commit_lock.write().unwrap_or_else(|p| p.into_inner());
        let chain_id = self.ledger.store().chain_id();
        let mut committed = Vec::with_capacity(blocks.len());
        let mut failure = None;
        std::thread::scope(|scope| {
            let (send, receive) = std::sync::mpsc::sync_channel(1);
            scope.spawn(move || {
                for (executed, certified) in blocks {
                    // A block executed already needs no check; the others' transactions are
                    // verified here, ahead of their execution.
                    let verified = match &executed {
                        Some(_) => None,
                        None => Some(
                            cachet_types::verify_parallel(&chain_id, certified.block.txs.clone())
                                .map_err(|(index, error)| LedgerError::Refused {
                                    height: certified.block.header.height,
                                    refusal: cachet_state::BlockRefusal::TxCheck { index, error },
                                }),
                        ),
                    };
                    let failed = matches!(verified, Some(Err(_)));
                    if send.send((executed, certified, verified)).is_err() || failed {
                        return;
                    }
                }
            });
            for (executed, certified, verified) in receive {
                let tip = match (executed, verified) {
                    (Some(executed), _) => {
                        self.checked(certified.certificate.signatures.len() as u64);
                        self.ledger
                            .commit_proposal_behind(executed, certified.certificate.clone())
                    }
                    (None, Some(Ok(verified))) => {
                        self.checked(all_signatures(&certified));
                        self.ledger.commit_verified_behind(&certified, verified)
                    }
                    (None, Some(Err(error))) => Err(error),
                    (None, None) => unreachable!("a block to execute comes verified"),
                };
                match tip {
                    Ok(tip) => committed.push(self.settle_final(tip, &certified)),
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
        });
        if let Err(error) = self.ledger.settle() {
            // Written or not, nothing of this run can be announced: the store is failing.
            drop(writing);
            return (Vec::new(), Some(error));
        }
        drop(writing);
        for block in &committed {
            self.announce(block);
        }
        (committed, failure)
    }

    /// The pool's and the counters' part of committing `certified` (under the commit lock).
    fn settle_final(&self, tip: Tip, certified: &CertifiedBlock) -> Committed {
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
        Committed {
            tip,
            round: certified.certificate.round,
            txs: included,
        }
    }

    /// Tells the log and the hooks of a block written to the store.
    fn announce(&self, committed: &Committed) {
        let (tip, round) = (committed.tip, committed.round);
        tracing::info!(height = tip.height, txs = committed.txs.len(), round, hash = %tip.block_hash.short(), "block final");
        self.hooks.committed(tip);
        self.hooks.statuses_changed();
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
        self.checked(missing.iter().map(signatures).sum());
        let chain_id = self.ledger.store().chain_id();
        let checked =
            cachet_types::verify_parallel(&chain_id, missing).map_err(|(index, error)| {
                LedgerError::Refused {
                    height: block.header.height,
                    refusal: cachet_state::BlockRefusal::TxCheck {
                        index: positions[index],
                        error,
                    },
                }
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

    /// Transactions pending here for longer than `age_ms` at `now_ms` (monotonic; at most
    /// `max`, oldest first), to gossip again; those pending longer than `expiry_ms` are
    /// dropped first, and those a block would now refuse are refused (see
    /// [`Chain::recheck`]). `wall_ms` stamps the recheck's trial block.
    pub fn lingering(
        &self,
        now_ms: u64,
        wall_ms: u64,
        age_ms: u64,
        expiry_ms: u64,
        max: usize,
    ) -> Vec<Vec<u8>> {
        let mut pool = self.pool();
        if let Some(cutoff) = now_ms.checked_sub(expiry_ms) {
            let expired = pool.expire(cutoff);
            if expired > 0 {
                tracing::warn!(expired, "dropped transactions pending too long");
            }
        }
        let Some(cutoff) = now_ms.checked_sub(age_ms) else {
            return Vec::new();
        };
        drop(pool);
        let lingering = {
            // No commit between reading the pending transactions and executing them: a
            // transaction just made final would otherwise look stale, and its signer's
            // later ones doomed.
            let _reading = self.commit_lock.read().unwrap_or_else(|p| p.into_inner());
            let lingering = self.pool().lingering(cutoff, max);
            if let Err(error) = self.recheck(&lingering, wall_ms) {
                tracing::error!(%error, "cannot recheck pending transactions");
            }
            lingering
        };
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
    /// The caller holds the commit lock (read) from before it read `pending`.
    fn recheck(&self, pending: &[VerifiedTx], wall_ms: u64) -> Result<usize, LedgerError> {
        if pending.is_empty() {
            return Ok(0);
        }
        let proposal = {
            let tip = self.ledger.store().tip()?;
            self.ledger
                .build(pending.to_vec(), wall_ms.max(tip.time_ms), 0)?
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

    /// Transactions admitted from clients since the last call, to gossip.
    pub fn take_outbox(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *lock(&self.outbox))
    }

    /// The current consensus round, for metrics.
    pub fn set_round(&self, round: u32) {
        self.consensus_round
            .store(u64::from(round), Ordering::Relaxed);
    }
}
