//! The node as the API and the network glue see it: the consensus host's [`Chain`] (the
//! ledger with its mempool, shared with the consensus thread) plus what only an async
//! server needs: watches for long polls and notifications for the gossip and consensus
//! tasks, fed by the chain's [`Hooks`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use cachet_api::{NodeMetrics, TxStatus};
use cachet_host::{Chain, Hooks, Mempool, Status, SubmitError};
use cachet_storage::{Ledger, StoreError, Tip};
use cachet_types::{Hash, PublicKey};
use tokio::sync::{Notify, watch};

use crate::metrics::Metrics;
use crate::setup::mono_ms;

/// What the chain tells the async side.
struct Signals {
    tip: watch::Sender<Tip>,
    /// Counts changes of transactions to a final or refused status, for long polls.
    statuses: watch::Sender<u64>,
    work: Notify,
    outbox: Notify,
    metrics: Arc<Metrics>,
}

impl Hooks for Signals {
    fn committed(&self, tip: Tip) {
        self.metrics.committed(tip.time_ms, crate::setup::now_ms());
        self.tip.send_replace(tip);
    }

    fn statuses_changed(&self) {
        self.statuses.send_modify(|changes| *changes += 1);
    }

    fn work_arrived(&self) {
        self.work.notify_one();
    }

    fn outbox_filled(&self) {
        self.outbox.notify_one();
    }
}

/// Everything the API, the network glue and the consensus thread share.
pub struct Node {
    chain: Arc<Chain>,
    signals: Arc<Signals>,
    role: Role,
    peers: Arc<AtomicUsize>,
    operator_peers: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
}

/// What this node does in consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Proposes and votes with this validator key whenever it is in the operator set.
    Validator(PublicKey),
    /// Follows the chain and serves queries.
    Observer,
}

/// The API's form of a status.
pub fn api_status(status: Status) -> TxStatus {
    match status {
        Status::Pending => TxStatus::Pending,
        Status::Final { height, index } => TxStatus::Final { height, index },
        Status::Rejected(reason) => TxStatus::Rejected {
            reason: reason.code().to_string(),
            message: reason.to_string(),
        },
        Status::Unknown => TxStatus::Unknown,
    }
}

impl Node {
    /// A node over an open ledger; `peers` and `operator_peers` are the network's counts of
    /// connected peers and of those bound to an operator.
    pub fn new(
        ledger: Ledger,
        mempool: Mempool,
        role: Role,
        peers: Arc<AtomicUsize>,
        operator_peers: Arc<AtomicUsize>,
    ) -> Result<Node, StoreError> {
        let tip = ledger.store().tip()?;
        let signals = Arc::new(Signals {
            tip: watch::channel(tip).0,
            statuses: watch::channel(0).0,
            work: Notify::new(),
            outbox: Notify::new(),
            metrics: Arc::new(Metrics::new()),
        });
        let chain = Arc::new(Chain::new(ledger, mempool, Box::new(signals.clone())));
        Ok(Node {
            chain,
            metrics: signals.metrics.clone(),
            signals,
            role,
            peers,
            operator_peers,
        })
    }

    /// Watches the tip: it changes at every commit.
    pub fn tip_watch(&self) -> watch::Receiver<Tip> {
        self.signals.tip.subscribe()
    }

    /// The node's metrics.
    pub fn metrics_registry(&self) -> &Metrics {
        &self.metrics
    }

    /// Connected peers, and those of them that are operators' bound nodes.
    pub fn peer_counts(&self) -> (usize, usize) {
        (
            self.peers.load(Ordering::Relaxed),
            self.operator_peers.load(Ordering::Relaxed),
        )
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The chain, shared with the consensus thread.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// The ledger, for queries.
    pub fn ledger(&self) -> &Ledger {
        self.chain.ledger()
    }

    /// Watches status changes: it changes whenever a transaction becomes final or refused
    /// here (a block committed, a refusal while a block is built, a refusal remembered).
    pub fn status_watch(&self) -> watch::Receiver<u64> {
        self.signals.statuses.subscribe()
    }

    /// Waits until there may be work for the block proposer.
    pub async fn work_arrived(&self) {
        self.signals.work.notified().await
    }

    /// Waits until admitted transactions wait in the outbox.
    pub async fn outbox_filled(&self) {
        self.signals.outbox.notified().await
    }

    /// A signer's last final nonce.
    pub fn final_nonce(&self, signer: &PublicKey) -> Result<u64, StoreError> {
        self.chain.final_nonce(signer)
    }

    /// The nonce a signer should use next (counting pending transactions).
    pub fn next_nonce(&self, signer: &PublicKey) -> Result<u64, StoreError> {
        self.chain.next_nonce(signer)
    }

    /// Checks and admits several clients' batches of transaction bytes together (see
    /// `Chain::submit_batches`): one answer list per batch, one answer (the id and its status)
    /// per transaction. Admitted transactions are gossiped to the other nodes.
    pub fn submit_batches(
        &self,
        batches: &[&[Vec<u8>]],
    ) -> Vec<Vec<Result<(Hash, TxStatus), SubmitError>>> {
        self.chain
            .submit_batches(batches, mono_ms())
            .into_iter()
            .map(|answers| {
                answers
                    .into_iter()
                    .map(|answer| answer.map(|(id, status)| (id, api_status(status))))
                    .collect()
            })
            .collect()
    }

    /// Where a transaction stands.
    pub fn status(&self, id: &Hash) -> Result<TxStatus, StoreError> {
        self.chain.status(id).map(api_status)
    }

    /// The provenance bundle of a stamp, built with no commit in between.
    pub fn provenance(
        &self,
        stamp: &cachet_types::StampId,
    ) -> Result<Option<cachet_provenance::ProvenanceBundle>, StoreError> {
        self.chain.provenance(stamp)
    }

    /// The supply proof of an issue, built with no commit in between.
    pub fn supply_proof(
        &self,
        issue: &cachet_types::IssueId,
    ) -> Result<Option<cachet_provenance::SupplyProof>, StoreError> {
        self.chain.supply_proof(issue)
    }

    /// "validator N" (N its index at the next height), "validator (not in the operator
    /// set)", or "observer".
    pub fn role_name(&self) -> String {
        let Role::Validator(key) = self.role else {
            return "observer".into();
        };
        let store = self.ledger().store();
        let index = store.tip().and_then(|tip| {
            let operators = store.operators_at(tip.height + 1)?;
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
        let counters = self.chain.counters();
        NodeMetrics {
            mempool_size: counters.mempool_size,
            txs_final: counters.txs_final,
            txs_rejected: counters.txs_rejected,
            blocks_committed: counters.blocks_committed,
            peers: self.peers.load(Ordering::Relaxed),
            operator_peers: self.operator_peers.load(Ordering::Relaxed),
            consensus_round: counters.consensus_round,
            role: self.role_name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_storage::Store;
    use cachet_testkit::{TestChain, TxFactory, issue_record};
    use cachet_types::TxBody;

    #[test]
    fn the_chains_hooks_reach_the_async_side() {
        let chain = TestChain::new(4);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), &chain.genesis).unwrap();
        let node = Node::new(
            Ledger::new(store),
            Mempool::new(100, 100),
            Role::Observer,
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
        )
        .unwrap();
        let mut factory = TxFactory::new(chain.chain_id);
        let body = |id: &str| TxBody::CreateIssue {
            record: issue_record(id, "AT-POST", 10),
        };
        let first = factory.sign(chain.issuer(0), body("AT-2026-001"));
        let submit = |tx: &cachet_types::SignedTx| {
            node.submit_batches(&[&[tx.to_bytes()]])
                .pop()
                .and_then(|mut answers| answers.pop())
                .unwrap()
        };
        let mut changes = node.status_watch();
        changes.mark_unchanged();
        assert_eq!(submit(&first).unwrap().1, TxStatus::Pending);
        assert!(!changes.has_changed().unwrap());
        assert_eq!(node.chain().take_outbox(), vec![first.to_bytes()]);
        // A refusal remembered for the client wakes long polls and reads as the API's form.
        // Nonce 2 is signed but never sent: nonce 3 leaves a gap.
        factory.sign(chain.issuer(0), body("AT-2026-002"));
        let later = factory.sign(chain.issuer(0), body("AT-2026-003"));
        assert!(submit(&later).is_err());
        assert!(changes.has_changed().unwrap(), "long polls are woken");
        assert!(matches!(
            node.status(&later.id()).unwrap(),
            TxStatus::Rejected { reason, .. } if reason == "nonce_gap"
        ));
        assert_eq!(node.metrics().mempool_size, 1);
        assert_eq!(node.metrics().role, "observer");
    }
}
