//! Whole-ledger audit: re-verifies a ledger directory from the genesis without trusting it.
//!
//! Every stored block is decoded canonically and replayed into a fresh scratch ledger through
//! [`Ledger::commit_certified`]: certificate against the genesis validators, hash link,
//! time, limits, every transaction signature, re-execution, and the header's state root.
//! The first failure stops the audit and names its height. Signatures are checked in
//! batches across all cores before each block is replayed.

use std::path::Path;
use std::time::{Duration, Instant};

use cachet_state::BlockRefusal;
use cachet_types::{CertifiedBlock, Genesis, Hash, VerifiedTx, codec, verify_parallel};
use thiserror::Error;

use crate::{
    Backend, CF_BLOCKS, CF_META, Ledger, LedgerError, META_GENESIS, META_TIP, RocksBackend, Store,
    StoreError, Tip, corrupt,
};

/// Why an audit could not finish or found the ledger bad.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The directory cannot be read as a ledger of this genesis.
    #[error("{0}")]
    Open(#[from] StoreError),
    /// The ledger is bad at this height.
    #[error("ledger fails at height {height}: {reason}")]
    BadBlock {
        /// First bad height.
        height: u64,
        /// What is wrong.
        reason: Finding,
    },
}

/// What is wrong with a stored ledger at a height.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Finding {
    /// No block is stored at the height.
    #[error("block is missing")]
    Missing,
    /// The stored bytes are not a canonical certified block.
    #[error("stored block does not decode: {0}")]
    Undecodable(String),
    /// The block stored under the height says another height.
    #[error("stored under the wrong height")]
    WrongHeight,
    /// The block breaks a rule (the same refusal a node gives a peer's block).
    #[error("{0}")]
    Refused(BlockRefusal),
    /// The replayed chain ends elsewhere than the stored tip record says.
    #[error("the stored tip record does not match the replayed chain")]
    TipMismatch,
}

/// What an audit established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditReport {
    /// Blocks verified.
    pub blocks: u64,
    /// Transactions verified.
    pub txs: u64,
    /// Tip hash after replay (equal to the stored tip).
    pub tip_hash: Hash,
    /// State root after replay (equal to the stored tip's).
    pub state_root: Hash,
    /// Time taken.
    pub elapsed: Duration,
}

/// Progress of a running audit: (height done, stored tip height, transactions so far).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64, u64);

fn bad(height: u64, reason: Finding) -> AuditError {
    AuditError::BadBlock { height, reason }
}

/// Blocks decoded and signature-checked ahead of the replay.
pub const AUDIT_READ_AHEAD: usize = 2;

/// Reads the stored block at `height`, decodes it and checks its transactions' signatures.
fn read_and_verify(
    db: &RocksBackend,
    chain_id: &Hash,
    height: u64,
) -> Result<(CertifiedBlock, Vec<VerifiedTx>), AuditError> {
    let bytes = db
        .get(CF_BLOCKS, &height.to_be_bytes())?
        .ok_or_else(|| bad(height, Finding::Missing))?;
    let block: CertifiedBlock = codec::decode(&bytes, codec::MAX_DECODE_BYTES)
        .map_err(|e| bad(height, Finding::Undecodable(e.to_string())))?;
    if block.block.header.height != height {
        return Err(bad(height, Finding::WrongHeight));
    }
    let verified =
        verify_parallel(chain_id, block.block.txs.clone()).map_err(|(index, error)| {
            bad(
                height,
                Finding::Refused(BlockRefusal::TxCheck { index, error }),
            )
        })?;
    Ok((block, verified))
}

/// Audits the ledger at `path` (a node's `db` directory, opened read-only) against `genesis`,
/// replaying into a scratch ledger at `scratch`.
pub fn audit(
    path: &Path,
    genesis: &Genesis,
    scratch: &Path,
    progress: Progress<'_>,
) -> Result<AuditReport, AuditError> {
    let start = Instant::now();
    let db = RocksBackend::open_read_only(path)?;
    let chain_id = genesis.chain_id();
    let stored_genesis: Genesis = match db.get(CF_META, META_GENESIS)? {
        Some(bytes) => {
            codec::decode(&bytes, codec::MAX_DECODE_BYTES).map_err(|e| corrupt("genesis", e))?
        }
        None => return Err(StoreError::Corrupt("no genesis recorded".into()).into()),
    };
    if stored_genesis.chain_id() != chain_id {
        return Err(StoreError::WrongChain {
            expected: chain_id,
            found: stored_genesis.chain_id(),
        }
        .into());
    }
    let stored_tip: Tip = match db.get(CF_META, META_TIP)? {
        Some(bytes) => codec::decode(&bytes, 1024).map_err(|e| corrupt("tip record", e))?,
        None => return Err(StoreError::Corrupt("no tip recorded".into()).into()),
    };
    if let Some(bytes) = db.get(CF_META, crate::META_BASE)? {
        let base = bytes
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        return Err(StoreError::Backfilling { base }.into());
    }
    let replay = Ledger::new(Store::open(scratch, genesis)?);
    let mut txs_total = 0u64;
    // Pipelined: a reader thread decodes and signature-checks block h+1 (on every core)
    // while this thread replays block h (at most AUDIT_READ_AHEAD blocks wait between them)
    // and block h-1 is written behind it.
    std::thread::scope(|scope| -> Result<(), AuditError> {
        let (send, receive) = std::sync::mpsc::sync_channel(AUDIT_READ_AHEAD);
        let db = &db;
        scope.spawn(move || {
            for height in 1..=stored_tip.height {
                let checked = read_and_verify(db, &chain_id, height);
                let failed = checked.is_err();
                // The replay stopped (it failed): nothing more to do.
                if send.send(checked).is_err() || failed {
                    return;
                }
            }
        });
        for checked in receive {
            let (block, verified) = checked?;
            let height = block.block.header.height;
            txs_total += block.block.txs.len() as u64;
            replay
                .commit_verified_behind(&block, verified)
                .map_err(|e| match e {
                    LedgerError::Store(e) => AuditError::Open(e),
                    LedgerError::State(e) => AuditError::Open(e.into()),
                    LedgerError::Refused { refusal, .. } => bad(height, Finding::Refused(refusal)),
                })?;
            progress(height, stored_tip.height, txs_total);
        }
        Ok(())
    })?;
    replay.store().settle()?;
    let tip = replay.store().tip()?;
    if tip.block_hash != stored_tip.block_hash
        || tip.state_root.hash() != stored_tip.state_root.hash()
    {
        return Err(bad(stored_tip.height, Finding::TipMismatch));
    }
    Ok(AuditReport {
        blocks: stored_tip.height,
        txs: txs_total,
        tip_hash: tip.block_hash,
        state_root: tip.state_root.hash(),
        elapsed: start.elapsed(),
    })
}
