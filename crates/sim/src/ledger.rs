//! Each simulated node runs the node's own consensus host (`cachet_host::Chain` and
//! `Core`) over the node's own ledger (`cachet_storage::Ledger`) on a simulated disk: the
//! storage crate's in-memory backend, which survives the node's crashes as a disk does,
//! and which can be made to fail reads (a node that cannot read its store stops instead of
//! voting against a valid block) or cut the next block write short.
//!
//! [`View`] is how the simulation's checkers and clients read a node's ledger; [`replay`]
//! checks a chain independently of the host, one signature at a time.

use std::sync::{Arc, Mutex};

use cachet_consensus::driver::SignerState;
use cachet_host::{Chain, Mempool, NoHooks, SignerStorage};
use cachet_state::{AccountState, BlockRefusal, StateKey, StateValue, Tip};
use cachet_storage::{Backend, Ledger, LedgerError, Store, StoreError};
use cachet_testkit::FlakyBackend;
use cachet_types::{Block, CertifiedBlock, Genesis, Hash, PublicKey, VerifiedTx};

/// A node's disk: the memory backend, whose reads and writes the simulation can make fail.
pub type SimDisk = FlakyBackend;

/// Pending transactions a simulated node holds, and refusals it remembers (`cachetd`'s
/// defaults).
const MEMPOOL_TXS: usize = 100_000;
const REMEMBERED: usize = 30_000;

/// Opens the host's chain of `genesis` on `disk` (empty, or what the node wrote before).
pub fn open_chain(disk: &Arc<SimDisk>, genesis: &Genesis) -> Result<Arc<Chain>, StoreError> {
    let backend: Arc<dyn Backend> = disk.clone();
    let ledger = Ledger::new(Store::with_backend(backend, genesis)?);
    Ok(Arc::new(Chain::new(
        ledger,
        Mempool::new(MEMPOOL_TXS, REMEMBERED),
        Box::new(NoHooks),
    )))
}

/// The signer state on the simulated disk: written and synced at once (the crash model
/// drops only what was never synced). It can be lost, as a disk is; every signature after
/// the loss is checked to be above the heights signed before it.
#[derive(Clone)]
pub struct SimSigner(Arc<Mutex<SignerFile>>);

impl Default for SimSigner {
    /// A new validator's: an empty signer state, as `cachetd init` writes it.
    fn default() -> SimSigner {
        SimSigner(Arc::new(Mutex::new(SignerFile {
            state: Some(SignerState::default()),
            lost_at: None,
            breach: None,
        })))
    }
}

struct SignerFile {
    /// What was stored last; `None`: nothing (a new node, or the file was lost).
    state: Option<SignerState>,
    /// The height of the last signature before the file was lost.
    lost_at: Option<u64>,
    /// A signature stored after the loss at or below `lost_at`: (its height, `lost_at`).
    breach: Option<(u64, u64)>,
}

impl SimSigner {
    fn file(&self) -> std::sync::MutexGuard<'_, SignerFile> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What was stored last, `None` if nothing.
    pub fn load(&self) -> Option<SignerState> {
        self.file().state.clone()
    }

    /// The file is lost (the node's disk is): from now on, signing at a height signed
    /// before is a breach.
    pub fn lose(&self) {
        let mut file = self.file();
        let signed = file.state.take().map_or(0, |state| state.height);
        file.lost_at = Some(file.lost_at.map_or(signed, |at| at.max(signed)));
    }

    /// A signature after a loss at a height the lost file had reached: (height, reached).
    pub fn breach(&self) -> Option<(u64, u64)> {
        self.file().breach
    }
}

impl SignerStorage for SimSigner {
    fn save(&mut self, state: &SignerState) -> Result<(), String> {
        let mut file = self.file();
        if let Some(lost_at) = file.lost_at
            && state.height <= lost_at
            && file.breach.is_none()
        {
            file.breach = Some((state.height, lost_at));
        }
        file.state = Some(state.clone());
        Ok(())
    }
}

fn must<T>(result: Result<T, StoreError>) -> T {
    result.unwrap_or_else(|e| panic!("the simulated store failed outside an injected fault: {e}"))
}

/// Reads of a node's ledger by the simulation. Outside an injected fault the memory store
/// cannot fail, so a failure here is a bug of the simulator and panics.
pub struct View<'a>(pub &'a Ledger);

impl View<'_> {
    /// The tip.
    pub fn tip(&self) -> Tip {
        must(self.0.store().tip())
    }

    /// A signer's last final nonce.
    pub fn nonce(&self, signer: &PublicKey) -> u64 {
        match must(self.0.store().state(&StateKey::Account(*signer))) {
            Some(StateValue::Account(AccountState { nonce, .. })) => nonce,
            _ => 0,
        }
    }

    /// The committed block at `height`.
    pub fn block(&self, height: u64) -> Option<CertifiedBlock> {
        must(self.0.store().block(height))
    }

    /// Whether the transaction is final.
    pub fn is_final(&self, id: &Hash) -> bool {
        must(self.0.store().tx_location(id)).is_some()
    }

    /// The transactions final so far.
    pub fn final_txs(&self) -> usize {
        (1..=self.tip().height)
            .filter_map(|height| self.block(height))
            .map(|block| block.block.txs.len())
            .sum()
    }

    /// The activation height of the first membership change, once decided.
    pub fn first_change(&self) -> Option<u64> {
        let record = self.0.store().membership().ok()?;
        record
            .changes
            .first()
            .map(|change| change.activation_height)
    }
}

/// Checks every transaction of `block` on its own, in order.
fn verify(block: &Block) -> Result<Vec<VerifiedTx>, LedgerError> {
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

/// A fresh ledger of `genesis` for an independent replay.
pub fn replay(genesis: &Genesis) -> Ledger {
    Ledger::new(Store::in_memory(genesis))
}

/// Checks a certified block (certificate, links, rules, every signature one at a time,
/// state root) and commits it to a replay ledger: apart from the host's batched checks.
pub fn replay_block(ledger: &Ledger, certified: &CertifiedBlock) -> Result<Tip, LedgerError> {
    let verified = verify(&certified.block)?;
    ledger.commit_verified(certified, verified)
}
