//! Each simulated node keeps the node's own ledger (`cachet_storage::Ledger`) on a
//! simulated disk: the storage crate's in-memory backend, which survives the node's crashes
//! as a disk does (every block write is whole: a torn write never reaches it), and which
//! can be made to fail reads to show that a node that cannot read its store stops instead
//! of voting against a valid block.

use std::sync::Arc;

use cachet_state::{AccountState, BlockRefusal, StateKey, StateValue, Tip};
use cachet_storage::{Backend, Ledger, LedgerError, Store, StoreError};
use cachet_testkit::FlakyBackend;
use cachet_types::{Block, CertifiedBlock, Genesis, Hash, PublicKey, VerifiedTx};

/// A node's disk: the memory backend, whose reads the simulation can make fail.
pub type SimDisk = FlakyBackend;

/// The node's ledger with the reads the simulation makes of it. Outside a block check
/// (where the simulation turns failures on) the memory store cannot fail, so a failure
/// there is a bug of the simulator and panics.
pub struct SimLedger {
    ledger: Ledger,
}

/// Checks every transaction of `block` on its own, in order (see [`SimLedger::commit`]).
pub fn verify(block: &Block) -> Result<Vec<VerifiedTx>, LedgerError> {
    let chain_id = block.header.chain_id;
    block
        .txs
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            tx.clone()
                .verify(&chain_id)
                .map_err(|error| LedgerError::Refused {
                    height: block.header.height,
                    refusal: BlockRefusal::TxCheck { index, error },
                })
        })
        .collect()
}

fn must<T>(result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("the simulated store failed outside a block check: {e}"))
}

impl SimLedger {
    /// Opens the ledger of `genesis` on `disk` (empty, or what the node wrote before).
    pub fn open(disk: &Arc<SimDisk>, genesis: &Genesis) -> Result<SimLedger, StoreError> {
        let backend: Arc<dyn Backend> = disk.clone();
        Ok(SimLedger {
            ledger: Ledger::new(Store::with_backend(backend, genesis)?),
        })
    }

    /// A fresh ledger of `genesis` on a disk of its own.
    pub fn in_memory(genesis: &Genesis) -> SimLedger {
        must(SimLedger::open(&Arc::new(SimDisk::default()), genesis))
    }

    /// Checks a certified block from anywhere and commits it (certificate, links, rules,
    /// state root), as a node does with a decided or synced block. Signatures are checked
    /// one by one: the node batches them with OS randomness, which would make the
    /// simulation depend on more than its seed (ZIP-215 gives both the same verdicts).
    pub fn commit(&self, certified: &CertifiedBlock) -> Result<Tip, LedgerError> {
        let verified = verify(&certified.block)?;
        self.ledger.commit_verified(certified, verified)
    }

    /// The ledger itself.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The tip.
    pub fn tip(&self) -> Tip {
        must(self.ledger.store().tip())
    }

    /// A signer's last final nonce.
    pub fn nonce(&self, signer: &PublicKey) -> u64 {
        match must(self.ledger.store().state(&StateKey::Account(*signer))) {
            Some(StateValue::Account(AccountState { nonce, .. })) => nonce,
            _ => 0,
        }
    }

    /// The validator keys of the block at `height` (up to two past the tip).
    pub fn validators_at(&self, height: u64) -> Vec<PublicKey> {
        self.ledger
            .validators_at(height)
            .unwrap_or_else(|e| panic!("the simulated store failed outside a block check: {e}"))
    }

    /// The committed block at `height`.
    pub fn block(&self, height: u64) -> Option<CertifiedBlock> {
        must(self.ledger.store().block(height))
    }

    /// Whether the transaction is final.
    pub fn is_final(&self, id: &Hash) -> bool {
        must(self.ledger.store().tx_location(id)).is_some()
    }

    /// The transactions final so far.
    pub fn final_txs(&self) -> usize {
        (1..=self.tip().height)
            .filter_map(|height| self.block(height))
            .map(|block| block.block.txs.len())
            .sum()
    }
}
