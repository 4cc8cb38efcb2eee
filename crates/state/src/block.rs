//! Blocks as state transitions: building one on a tip from candidate transactions, and
//! checking and executing one received from elsewhere. The ledger (on RocksDB or in memory)
//! goes through these two functions, so every node applies the same rules whatever holds
//! its state. A block that breaks a rule is refused with a [`BlockRefusal`], the verdict
//! every honest node reaches on the same block; failing to read the state is a
//! [`StateError`], which says nothing about the block.

use bincode::{Decode, Encode};
use cachet_types::merkle::tx_root;
use cachet_types::{Block, BlockHeader, CertificateError, Genesis, Hash, TxCheckError, VerifiedTx};

use crate::execute::{ApplyError, BlockEnv, BlockExecution, StateChanges};
use crate::rejection::Rejection;
use crate::smt::{Child, PageSource, PageWrites};
use crate::{NewLeaves, StateError, StateView, commit_tree};

/// The last committed block of a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Tip {
    /// Height (0: only the genesis).
    pub height: u64,
    /// Hash of the tip header (the chain id at height 0).
    pub block_hash: Hash,
    /// Root of the state tree after the tip.
    pub state_root: Child,
    /// Time of the tip block (genesis time at height 0).
    pub time_ms: u64,
}

impl Tip {
    /// The tip of a ledger holding only its genesis.
    pub fn genesis(genesis: &Genesis) -> Tip {
        Tip {
            height: 0,
            block_hash: genesis.chain_id(),
            state_root: Child::Empty,
            time_ms: genesis.genesis_time_ms,
        }
    }

    /// The tip after `header`, whose state tree root is `state_root`.
    pub fn after(header: &BlockHeader, state_root: Child) -> Tip {
        Tip {
            height: header.height,
            block_hash: header.hash(),
            state_root,
            time_ms: header.time_ms,
        }
    }
}

/// A block executed on a tip: everything needed to commit it.
#[derive(Debug)]
pub struct ExecutedBlock {
    /// The block (its header carries the resulting state root).
    pub block: Block,
    /// Its transactions, verified, in order.
    pub included: Vec<VerifiedTx>,
    /// Candidates left out while building, with their reasons (empty for checked blocks).
    pub rejected: Vec<(Hash, Rejection)>,
    /// State writes and stamp events.
    pub changes: StateChanges,
    /// State tree node writes.
    pub tree_writes: PageWrites,
    /// State keys new to the tree, with their tree keys.
    pub new_leaves: NewLeaves,
    /// New state tree root.
    pub root: Child,
    /// Hash of the tip it was executed on.
    pub parent: Hash,
}

/// Which rule a block breaks: shared by the ledger, the audit and the consensus host, so a
/// refusal is never confused with a failure to read one's own store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockRefusal {
    /// The header names another chain.
    #[error("block is for another chain")]
    WrongChain,
    /// Height or parent hash do not follow the tip.
    #[error("does not extend the tip at height {tip}")]
    NotNext {
        /// The tip's height.
        tip: u64,
    },
    /// Earlier than its parent.
    #[error("time goes backwards")]
    TimeBackwards,
    /// Dated further ahead of the checking node's clock than the drift it allows.
    #[error("dated {ahead_ms} ms ahead of this node's clock")]
    FromTheFuture {
        /// How far ahead.
        ahead_ms: u64,
    },
    /// The proposer index is not in the height's operator set.
    #[error("unknown proposer {0}")]
    UnknownProposer(u16),
    /// The header's count does not match, or the block holds more than the limit.
    #[error("transaction count mismatch or over the limit")]
    TxCount,
    /// Over the chain's block byte limit.
    #[error("block is over the byte limit")]
    TooLarge,
    /// The transactions do not hash to the header's root.
    #[error("transaction root mismatch")]
    TxRoot,
    /// A transaction's own checks (chain, fields, signature) fail.
    #[error("transaction {index}: {error}")]
    TxCheck {
        /// Position in the block.
        index: usize,
        /// What is wrong.
        error: TxCheckError,
    },
    /// A transaction breaks a state rule.
    #[error("transaction {index}: {rejection}")]
    TxRefused {
        /// Position in the block.
        index: usize,
        /// The rule.
        rejection: Rejection,
    },
    /// The executed state does not hash to the header's root.
    #[error("state root mismatch")]
    StateRoot,
    /// The commit certificate does not finalize the block.
    #[error("invalid certificate: {0}")]
    Certificate(CertificateError),
    /// The block was executed on a tip that has since moved.
    #[error("the tip moved since the block was executed")]
    Stale,
}

/// Why a block could not be checked or was refused.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// The state could not be read (not the block's fault).
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

/// Builds the block after `tip` from `candidates`, in order, stopping at the chain's block
/// limits. Candidates that break a rule are left out and returned in `rejected`.
pub fn build_block<S: StateView + PageSource>(
    state: &S,
    genesis: &Genesis,
    tip: &Tip,
    candidates: Vec<VerifiedTx>,
    time_ms: u64,
    proposer: u16,
) -> Result<ExecutedBlock, StateError> {
    let params = &genesis.params;
    let height = tip.height + 1;
    let time_ms = time_ms.max(tip.time_ms);
    let operators = crate::operators_at(state, genesis, height)?;
    let env = BlockEnv {
        genesis,
        operators: &operators,
        height,
        time_ms,
    };
    let mut execution = BlockExecution::new(state, env);
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
            Err(ApplyError::State(error)) => return Err(error),
        }
    }
    let changes = execution.finish();
    let (root, tree_writes, new_leaves) = commit_tree(state, tip.state_root, &changes.writes)?;
    let leaves: Vec<Hash> = included.iter().map(VerifiedTx::witness_hash).collect();
    let header = BlockHeader {
        chain_id: genesis.chain_id(),
        height,
        prev_hash: tip.block_hash,
        time_ms,
        proposer,
        tx_count: included.len() as u32,
        tx_root: tx_root(&leaves),
        state_root: root.hash(),
    };
    let block = Block {
        header,
        txs: included.iter().map(|tx| tx.tx().clone()).collect(),
    };
    Ok(ExecutedBlock {
        block,
        included,
        rejected,
        changes,
        tree_writes,
        new_leaves,
        root,
        parent: tip.block_hash,
    })
}

/// Checks that `block` extends `tip` under the chain's rules and executes it. `verified` must
/// be the block's transactions, in order, with their signatures checked by the caller (who
/// may batch them across cores).
pub fn execute_block<S: StateView + PageSource>(
    state: &S,
    genesis: &Genesis,
    tip: &Tip,
    block: Block,
    verified: Vec<VerifiedTx>,
) -> Result<ExecutedBlock, BlockError> {
    let header = &block.header;
    let invalid = |refusal: BlockRefusal| BlockError::Refused {
        height: header.height,
        refusal,
    };
    let params = &genesis.params;
    if header.chain_id != genesis.chain_id() {
        return Err(invalid(BlockRefusal::WrongChain));
    }
    if header.height != tip.height + 1 || header.prev_hash != tip.block_hash {
        return Err(invalid(BlockRefusal::NotNext { tip: tip.height }));
    }
    if header.time_ms < tip.time_ms {
        return Err(invalid(BlockRefusal::TimeBackwards));
    }
    let operators = crate::operators_at(state, genesis, header.height)?;
    if usize::from(header.proposer) >= operators.len() {
        return Err(invalid(BlockRefusal::UnknownProposer(header.proposer)));
    }
    let txs = &block.txs;
    if txs.len() != header.tx_count as usize
        || txs.len() > params.max_block_txs as usize
        || verified.len() != txs.len()
        || verified.iter().zip(txs).any(|(v, tx)| v.tx() != tx)
    {
        return Err(invalid(BlockRefusal::TxCount));
    }
    let bytes: usize = verified.iter().map(VerifiedTx::size).sum();
    if bytes > params.max_block_bytes as usize {
        return Err(invalid(BlockRefusal::TooLarge));
    }
    let leaves: Vec<Hash> = verified.iter().map(VerifiedTx::witness_hash).collect();
    if tx_root(&leaves) != header.tx_root {
        return Err(invalid(BlockRefusal::TxRoot));
    }
    let env = BlockEnv {
        genesis,
        operators: &operators,
        height: header.height,
        time_ms: header.time_ms,
    };
    let mut execution = BlockExecution::new(state, env);
    for (index, tx) in verified.iter().enumerate() {
        match execution.apply(tx) {
            Ok(()) => {}
            Err(ApplyError::Rejected(rejection)) => {
                return Err(invalid(BlockRefusal::TxRefused { index, rejection }));
            }
            Err(ApplyError::State(error)) => return Err(error.into()),
        }
    }
    let changes = execution.finish();
    let (root, tree_writes, new_leaves) = commit_tree(state, tip.state_root, &changes.writes)?;
    if root.hash() != header.state_root {
        return Err(invalid(BlockRefusal::StateRoot));
    }
    Ok(ExecutedBlock {
        parent: tip.block_hash,
        block,
        included: verified,
        rejected: Vec::new(),
        changes,
        tree_writes,
        new_leaves,
        root,
    })
}
