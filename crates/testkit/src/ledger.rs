//! A ledger for tests of the state rules: the node's own [`Ledger`] on the in-memory store,
//! each block built from the test's transactions and certified by the test chain's
//! validators. There is no second ledger to keep in step with the real one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cachet_state::smt::{Child, NodeKey, Page, PageSource};
use cachet_state::{
    IssueState, Rejection, StampEvent, StampState, StateError, StateKey, StateValue, StateView,
};
use cachet_storage::backend::Visit;
use cachet_storage::{Backend, Batch, Family, Ledger, MemoryBackend, Store, StoreError};
use cachet_types::{CommitCertificate, Genesis, Hash, PublicKey, SignedTx, SigningKey, StampId};

use crate::{TestChain, issue_id};

/// The real ledger in memory, with the keys that certify its blocks.
pub struct TestLedger {
    ledger: Ledger,
    genesis: Genesis,
    validators: BTreeMap<PublicKey, SigningKey>,
    /// Every stamp event so far, in order.
    pub events: Vec<StampEvent>,
}

impl TestLedger {
    /// An empty ledger of `chain`, whose blocks its genesis validators certify.
    pub fn new(chain: &TestChain) -> TestLedger {
        TestLedger {
            ledger: Ledger::new(Store::in_memory(&chain.genesis)),
            genesis: chain.genesis.clone(),
            validators: chain
                .operator_keys
                .iter()
                .map(|(validator, _)| (validator.public_key(), validator.clone()))
                .collect(),
            events: Vec::new(),
        }
    }

    /// The ledger, for what the helpers here do not cover.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Commits the transactions as one block, as a proposer would build it: signatures
    /// checked first, then each transaction applied in order or refused (and left out).
    /// Returns each transaction's outcome.
    ///
    /// Panics if a transaction does not fit the block's limits or the known validator keys
    /// are not a quorum of the height's set: both are mistakes of the test.
    pub fn apply_block(&mut self, txs: &[SignedTx]) -> Vec<Result<(), Rejection>> {
        let chain_id = self.genesis.chain_id();
        let mut outcomes: Vec<Option<Result<(), Rejection>>> = vec![None; txs.len()];
        let mut candidates = Vec::new();
        for (index, tx) in txs.iter().enumerate() {
            match tx.clone().verify(&chain_id) {
                Ok(verified) => candidates.push((index, verified)),
                Err(error) => outcomes[index] = Some(Err(Rejection::from(error))),
            }
        }
        let height = self.height() + 1;
        let time_ms = self.genesis.genesis_time_ms + height * 1000;
        let proposal = self
            .ledger
            .build(
                candidates.iter().map(|(_, tx)| tx.clone()).collect(),
                time_ms,
                0,
            )
            .unwrap_or_else(|e| panic!("memory ledger failed: {e}"));
        // The builder keeps the candidates' order: each is next in `included` or next in
        // `rejected`.
        let mut included = proposal.included.iter().peekable();
        let mut rejected = proposal.rejected.iter().peekable();
        for (index, tx) in &candidates {
            let id = tx.id();
            outcomes[*index] = if included.next_if(|t| t.id() == id).is_some() {
                Some(Ok(()))
            } else if let Some((_, reason)) = rejected.next_if(|(r, _)| *r == id) {
                Some(Err(reason.clone()))
            } else {
                panic!("transaction {index} does not fit the block's limits");
            };
        }
        let validators = self
            .ledger
            .validators_at(height)
            .unwrap_or_else(|e| panic!("memory ledger failed: {e}"));
        let signers: Vec<(u16, &SigningKey)> = validators
            .iter()
            .enumerate()
            .filter_map(|(index, key)| {
                Some((u16::try_from(index).ok()?, self.validators.get(key)?))
            })
            .collect();
        let certificate = CommitCertificate::sign(&proposal.block.header, 0, &signers);
        let events = proposal.changes.events.clone();
        self.ledger
            .commit_proposal(proposal, certificate)
            .unwrap_or_else(|e| panic!("block {height} does not commit: {e}"));
        self.events.extend(events);
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| unreachable!("every outcome is set")))
            .collect()
    }

    /// Commits one transaction as its own block.
    pub fn apply_one(&mut self, tx: &SignedTx) -> Result<(), Rejection> {
        self.apply_block(std::slice::from_ref(tx))
            .pop()
            .unwrap_or(Ok(()))
    }

    /// Height of the last block.
    pub fn height(&self) -> u64 {
        self.tip().height
    }

    fn tip(&self) -> cachet_state::Tip {
        self.ledger
            .store()
            .tip()
            .unwrap_or_else(|e| panic!("memory ledger failed: {e}"))
    }

    /// The state root.
    pub fn root_hash(&self) -> Hash {
        self.root().hash()
    }

    /// The state tree's root.
    pub fn root(&self) -> Child {
        self.tip().state_root
    }

    fn value(&self, key: StateKey) -> Option<StateValue> {
        self.ledger
            .store()
            .state(&key)
            .unwrap_or_else(|e| panic!("memory ledger failed: {e}"))
    }

    /// A stamp's record.
    pub fn stamp(&self, id: &StampId) -> Option<StampState> {
        match self.value(StateKey::Stamp(id.clone())) {
            Some(StateValue::Stamp(stamp)) => Some(stamp),
            _ => None,
        }
    }

    /// An issue's state.
    pub fn issue(&self, id: &str) -> Option<IssueState> {
        match self.value(StateKey::Issue(issue_id(id))) {
            Some(StateValue::Issue(issue)) => Some(issue),
            _ => None,
        }
    }
}

impl StateView for TestLedger {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        self.ledger.store().get(key)
    }
}

impl PageSource for TestLedger {
    fn page(&self, key: &NodeKey) -> Result<Option<std::sync::Arc<Page>>, StateError> {
        self.ledger.store().page(key)
    }
}

/// The memory backend with switches that make reads fail and the next write batch fail:
/// how tests and the simulator show that a node which cannot read its store stops instead
/// of judging a block, and that a block write cut short loses only that block.
#[derive(Default)]
pub struct FlakyBackend {
    inner: MemoryBackend,
    failing: AtomicBool,
    failed_reads: AtomicU64,
    fail_next_write: AtomicBool,
    failed_writes: AtomicU64,
}

impl FlakyBackend {
    /// Makes every read fail (`true`) or work again.
    pub fn fail_reads(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Reads failed so far.
    pub fn failed_reads(&self) -> u64 {
        self.failed_reads.load(Ordering::SeqCst)
    }

    /// Makes the next write batch fail, leaving the store as it was (`true`), or not.
    pub fn fail_next_write(&self, failing: bool) {
        self.fail_next_write.store(failing, Ordering::SeqCst);
    }

    /// Write batches failed so far.
    pub fn failed_writes(&self) -> u64 {
        self.failed_writes.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_reads.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Db("injected read failure".into()));
        }
        Ok(())
    }
}

impl Backend for FlakyBackend {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check()?;
        self.inner.get(family, key)
    }

    fn scan(&self, family: Family, start: &[u8], visit: Visit<'_>) -> Result<(), StoreError> {
        self.check()?;
        self.inner.scan(family, start, visit)
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        if self.fail_next_write.swap(false, Ordering::SeqCst) {
            self.failed_writes.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Db("injected write failure".into()));
        }
        self.inner.write(batch)
    }

    fn freeze(&self, dir: &std::path::Path) -> Result<std::sync::Arc<dyn Backend>, StoreError> {
        self.check()?;
        self.inner.freeze(dir)
    }

    fn approximate_size(&self) -> u64 {
        self.inner.approximate_size()
    }
}
