//! Cachet's consensus host, sans I/O: the part of a node between the network and the disk.
//!
//! - [`Chain`] (`chain.rs`): the ledger with its mempool: admission of client and gossiped
//!   transactions, block building, proposal checks, commits, blocks for peers, statuses.
//! - [`Core`] (`core.rs`): the consensus driver with timers, block sync and commit, driven by
//!   inputs that carry the time and answering with [`Effect`]s.
//! - [`statesync`]: state sync: serving snapshots, joining from one, and the backfill.
//! - [`wire`]: the byte forms of consensus envelopes and transaction batches.
//!
//! No clock, socket or async runtime here, and no thread but the scoped workers that
//! batch-verify a large block's signatures across cores (their verdict is the single-thread
//! one): `cachetd` wraps it with a thread, libp2p and RocksDB; the simulator drives the same code with a seeded network and clock over the
//! in-memory store. The only entropy is the batch verifier's random scalars, which do not
//! change a verdict (ZIP-215: batch and single checks agree).

pub mod chain;
pub mod core;
pub mod mempool;
pub mod statesync;
pub mod wire;

pub use chain::{
    BatchVerdict, Chain, Committed, Counters, Hooks, NoHooks, PeerView, Status, SubmitError,
};
pub use core::{
    Core, Effect, HostError, MAX_CLOCK_DRIFT_MS, MsgVerdict, Now, SYNC_BATCH, SignerStorage,
    TICK_MS,
};
pub use mempool::{AdmitError, Mempool};
