//! The ledger's store: blocks, transactions, state, the state tree and query indexes, written
//! one atomic batch per block to a [`Backend`]: RocksDB for a node, memory for the simulator,
//! tests and benchmarks (one code path above the backend).
//!
//! Column families (`specs/ledger.md#storage-rocksdb`):
//! - `blocks`: height (u64 BE) -> certified block
//! - `block_index`: block hash -> height
//! - `tx_index`: tx id -> height (u64 BE) || position (u32 BE)
//! - `state`: state key -> state value
//! - `tree`: state tree node key (depth || prefix) -> node
//! - `history`: stamp id || seq (u32 BE) -> stamp event
//! - `holdings`: owner key || stamp id -> (empty)
//! - `meta`: `genesis` -> genesis, `tip` -> tip record, `base` -> height (after a state
//!   sync, until its backfill ends), `import` -> an unfinished snapshot import
//! - `leaves`: state tree key -> state key (the state in tree order, for snapshot chunks)
//!
//! Each block's batch carries every family's updates and the new tip, written with the WAL
//! and synced: after a crash the store holds whole blocks only. One writer; readers may run
//! concurrently and see some committed tip.

use std::collections::HashMap;
#[cfg(feature = "rocksdb")]
use std::path::Path;
use std::sync::{Arc, Mutex};

use thiserror::Error;

#[cfg(feature = "rocksdb")]
pub mod audit;
pub mod backend;
#[cfg(feature = "rocksdb")]
pub mod backup;
mod behind;
pub mod ledger;
mod provenance;
pub mod snapshot;

#[cfg(feature = "rocksdb")]
pub use backend::RocksBackend;
pub use backend::{Backend, Batch, Family, MemoryBackend, StoreStats};
pub use behind::Ahead;
pub use ledger::{Ledger, LedgerError, Proposal};

use cachet_state::smt::{self, Child, NodeKey, Page, PageSource};
use cachet_state::{
    EventKind, MembershipState, ProposalState, StampEvent, StampState, StateChanges, StateError,
    StateKey, StateValue, StateView,
};
use cachet_types::codec::{self, CodecError};
use cachet_types::{
    Address, CertifiedBlock, Genesis, Hash, IssueId, Operator, PublicKey, SignedTx, StampId,
};

const CF_BLOCKS: Family = Family::Blocks;
const CF_BLOCK_INDEX: Family = Family::BlockIndex;
const CF_TX_INDEX: Family = Family::TxIndex;
const CF_STATE: Family = Family::State;
const CF_TREE: Family = Family::Tree;
const CF_HISTORY: Family = Family::History;
const CF_HOLDINGS: Family = Family::Holdings;
const CF_META: Family = Family::Meta;
const CF_LEAVES: Family = Family::Leaves;
const META_GENESIS: &[u8] = b"genesis";
const META_TIP: &[u8] = b"tip";
/// After a state sync: the snapshot's height, up to which history is still being backfilled.
const META_BASE: &[u8] = b"base";
/// An unfinished snapshot import (`snapshot::ImportRecord`).
const META_IMPORT: &[u8] = b"import";
/// Present once `leaves` indexes every state key (stores made before it are indexed on open).
const META_LEAVES_INDEXED: &[u8] = b"leaves-indexed";

/// State keys indexed per write when a store made before the tree-key index is indexed.
pub const LEAF_INDEX_RUN: usize = 10_000;
/// Written by health checks: proves the store takes a synced write. Not ledger data.
const META_HEALTH: &[u8] = b"health";
/// Present once the `tree` family holds pages ([`Page`]); a store made before holds one node
/// per record and its tree is rebuilt from the state on open.
const META_TREE_PAGED: &[u8] = b"tree-paged";
/// Depth at which a store made before pages is rebuilt, one subtree at a time (4,096 of
/// them: ~2,500 leaves each at 10 million stamps; a snapshot chunk's limit of 65,536 is
/// reached only past ~200 million).
const REPAGE_SPLIT: u8 = 12;
/// Writes per batch while the tree is rebuilt.
const REPAGE_BATCH: usize = 10_000;

/// Largest stored value we decode (a block at most; the chain caps blocks well below).
const MAX_VALUE_BYTES: usize = codec::MAX_DECODE_BYTES;

/// How many blocks at the tip are re-checked on open (certificate, transaction root, links).
pub const OPEN_CHECK_DEPTH: u64 = 16;

/// Storage failures. Reads and writes that fail are operating errors: the node stops.
#[derive(Debug, Error)]
pub enum StoreError {
    /// RocksDB failed.
    #[error("database error: {0}")]
    Db(String),
    /// Stored bytes do not decode, or links do not hold.
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    /// The directory holds another chain.
    #[error("data directory holds chain {found}, not {expected}; use another --data-dir")]
    WrongChain {
        /// Chain asked for.
        expected: Hash,
        /// Chain on disk.
        found: Hash,
    },
    /// The store holds an unfinished snapshot import: it opens only to go on with it.
    #[error(
        "the store holds an unfinished state sync to height {height}: run the node with state sync to finish it, or remove the data directory"
    )]
    ImportUnfinished {
        /// The snapshot's height.
        height: u64,
    },
    /// What was asked needs history the store is still backfilling after a state sync.
    #[error(
        "the history up to block {base} is still being fetched after a state sync; try again once the backfill ends"
    )]
    Backfilling {
        /// The height up to which history is missing.
        base: u64,
    },
    /// A block does not extend the tip.
    #[error("block {height} does not extend the tip at {tip}")]
    NotNext {
        /// Block height.
        height: u64,
        /// Tip height.
        tip: u64,
    },
}

impl From<StateError> for StoreError {
    fn from(error: StateError) -> Self {
        match error {
            StateError::Store(message) => StoreError::Db(message),
            other => StoreError::Corrupt(other.to_string()),
        }
    }
}

#[cfg(feature = "rocksdb")]
impl From<rocksdb::Error> for StoreError {
    fn from(error: rocksdb::Error) -> Self {
        StoreError::Db(error.into_string())
    }
}

/// A stored u64 (big-endian, 8 bytes), if present.
pub(crate) fn stored_u64(bytes: Option<Vec<u8>>, what: &str) -> Result<Option<u64>, StoreError> {
    bytes
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt(what.into()))
        })
        .transpose()
}

pub(crate) fn corrupt(what: &str, error: CodecError) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

/// The last committed block, as recorded in `meta`.
pub use cachet_state::Tip;

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
}

/// State-tree levels kept in memory: every stored page above this depth (pages at depths 0,
/// 4, 8, 12 and 16: at most 69,905 of them, ~1.5 KB at most each (14 node hashes and 16
/// leaves): ~105 MB at the very most; ~70 MB when every depth-16 page is full of inner
/// nodes, near 10 million stamps). At
/// 10 million stamps a leaf sits ~24 levels down, so an update reads ~1-2 pages from RocksDB
/// instead of 6; at 100,000 stamps, about none.
pub const CACHED_TREE_DEPTH: u8 = 20;

/// The ledger store.
///
/// One `Store` per backend at a time: it caches the upper levels of the state tree, written
/// through on every commit (the only writer of the tree).
pub struct Store {
    db: Arc<dyn Backend>,
    genesis: Genesis,
    chain_id: Hash,
    tree_cache: Arc<Mutex<TreeCache>>,
    /// The block being written behind execution, if any ([`Store::commit_behind`]).
    writing: Mutex<behind::Writing>,
}

/// The cached upper tree levels, and how many commits changed them: a page read from the
/// backend is cached only if no commit ran between the read and the insert (else it may be
/// a superseded version).
///
/// A page a commit wrote carries what its update checked (see [`Page`]); one read from the
/// backend has nothing checked, so the update that reads it hashes each node it walks.
#[derive(Default)]
struct TreeCache {
    pages: NodeMap<Arc<Page>>,
    commits: u64,
}

/// A map keyed by tree position. The keys are SHA-256 prefixes (no peer chooses them), so
/// a fast seeded hash (foldhash, hashbrown's default) replaces SipHash, which was ~8% of the
/// block writer's profile (caching a block's upper tree pages).
pub(crate) type NodeMap<V> = HashMap<NodeKey, V, foldhash::fast::RandomState>;

fn stamp_key(stamp: &StampId) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    codec::encode_into(stamp, &mut out);
    out
}

fn history_key(stamp: &StampId, seq: u32) -> Vec<u8> {
    let mut key = stamp_key(stamp);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn holding_key(owner: &Address, stamp: &StampId) -> Vec<u8> {
    let mut key = owner.public_key().0.to_vec();
    codec::encode_into(stamp, &mut key);
    key
}

impl Store {
    /// Opens (or creates) the store for `genesis` in RocksDB at `path`, and checks the chain
    /// at its tip.
    #[cfg(feature = "rocksdb")]
    pub fn open(path: &Path, genesis: &Genesis) -> Result<Store, StoreError> {
        Store::with_backend(Arc::new(RocksBackend::open(path)?), genesis)
    }

    /// Like [`Store::open`], also for a store whose snapshot import is unfinished (to go on
    /// with it: [`Store::import_progress`]).
    #[cfg(feature = "rocksdb")]
    pub fn open_importing(path: &Path, genesis: &Genesis) -> Result<Store, StoreError> {
        Store::with_backend_importing(Arc::new(RocksBackend::open(path)?), genesis)
    }

    /// A new store for `genesis` held in memory.
    pub fn in_memory(genesis: &Genesis) -> Store {
        match Store::with_backend(Arc::new(MemoryBackend::new()), genesis) {
            Ok(store) => store,
            // An empty memory backend cannot fail to take the genesis.
            Err(error) => unreachable!("a new memory store failed: {error}"),
        }
    }

    /// Opens the store for `genesis` on `db` (empty, or holding this chain), and checks the
    /// chain at its tip. Reopening the same backend is how a simulated node restarts. A
    /// store with an unfinished snapshot import is refused ([`Store::with_backend_importing`]
    /// opens it to go on).
    pub fn with_backend(db: Arc<dyn Backend>, genesis: &Genesis) -> Result<Store, StoreError> {
        let store = Store::with_backend_importing(db, genesis)?;
        if let Some(record) = store.import_record()? {
            return Err(StoreError::ImportUnfinished {
                height: record.block.block.header.height,
            });
        }
        Ok(store)
    }

    /// Like [`Store::with_backend`], also for a store whose snapshot import is unfinished
    /// (see [`Store::import_progress`]).
    pub fn with_backend_importing(
        db: Arc<dyn Backend>,
        genesis: &Genesis,
    ) -> Result<Store, StoreError> {
        let chain_id = genesis.chain_id();
        let store = Store {
            db,
            genesis: genesis.clone(),
            chain_id,
            tree_cache: Arc::default(),
            writing: Mutex::default(),
        };
        match store.db.get(CF_META, META_GENESIS)? {
            Some(bytes) => {
                let stored: Genesis =
                    codec::decode(&bytes, MAX_VALUE_BYTES).map_err(|e| corrupt("genesis", e))?;
                if stored.chain_id() != chain_id {
                    return Err(StoreError::WrongChain {
                        expected: chain_id,
                        found: stored.chain_id(),
                    });
                }
                store.index_leaves()?;
                store.page_tree()?;
                store.check_tip()?;
            }
            None => {
                let mut batch = Batch::default();
                batch.put(CF_META, META_GENESIS, codec::encode(genesis));
                let tip = Tip::genesis(genesis);
                batch.put(CF_META, META_TIP, codec::encode(&tip));
                batch.put(CF_META, META_LEAVES_INDEXED, []);
                batch.put(CF_META, META_TREE_PAGED, []);
                store.db.write(batch)?;
            }
        }
        Ok(store)
    }

    /// Fills the tree-key index of a store made before it existed: the state scanned in
    /// runs of [`LEAF_INDEX_RUN`] keys, each written after its scan ended (a backend may
    /// hold a lock while it scans), the next scan resuming after the last key written. The
    /// mark goes with the last run; interrupted, it starts over on the next open.
    fn index_leaves(&self) -> Result<(), StoreError> {
        if self.db.get(CF_META, META_LEAVES_INDEXED)?.is_some() {
            return Ok(());
        }
        let mut after: Option<Vec<u8>> = None;
        loop {
            let mut batch = Batch::default();
            let mut last = None;
            self.db
                .scan(CF_STATE, after.as_deref().unwrap_or(&[]), &mut |key, _| {
                    if after.as_deref() == Some(key) {
                        return Ok(true);
                    }
                    let state_key: StateKey =
                        codec::decode(key, 1024).map_err(|e| corrupt("state key", e))?;
                    batch.put(CF_LEAVES, state_key.tree_key().as_bytes(), key);
                    if batch.len() < LEAF_INDEX_RUN {
                        return Ok(true);
                    }
                    last = Some(key.to_vec());
                    Ok(false)
                })?;
            if last.is_none() {
                batch.put(CF_META, META_LEAVES_INDEXED, []);
                return self.db.write(batch);
            }
            self.db.write(batch)?;
            after = last;
        }
    }

    /// Rebuilds the state tree of a store made before it was stored in pages: builds the
    /// tree from the state (in tree-key order, one depth-8 subtree at a time) and checks that
    /// it gives the tip's state root, writing nothing; then drops every old tree record and
    /// writes the pages, the mark last. Interrupted, it starts over on the next open; a state
    /// that does not give the tip's root leaves the store as it was, refused by name.
    fn page_tree(&self) -> Result<(), StoreError> {
        if self.db.get(CF_META, META_TREE_PAGED)?.is_some() {
            return Ok(());
        }
        if self.import_record()?.is_some() {
            return Err(StoreError::Corrupt(
                "the store holds a state sync begun before the state tree was stored in pages: remove the data directory and sync again".into(),
            ));
        }
        tracing::info!("storing the state tree in pages (once, for a store made before)");
        let tip = self.tip()?;
        let (root, leaves, _) = self.build_pages(false)?;
        if root != tip.state_root {
            return Err(StoreError::Corrupt(format!(
                "the state tree rebuilt from the stored state ({leaves} entries) does not give the tip's state root at height {}",
                tip.height
            )));
        }
        self.clear_tree()?;
        let (_, _, mut last) = self.build_pages(true)?;
        last.put(CF_META, META_TREE_PAGED, []);
        self.db.write(last)?;
        tracing::info!(leaves, "the state tree is stored in pages");
        Ok(())
    }

    /// The state tree built from the state: its root, its number of leaves and, with
    /// `write`, the last batch of its pages (the others written on the way).
    fn build_pages(&self, write: bool) -> Result<(Child, u64, Batch), StoreError> {
        let mut summaries = vec![Child::Empty; 1 << REPAGE_SPLIT];
        let mut pending = Batch::default();
        let mut count = 0u64;
        for index in 0..1u32 << REPAGE_SPLIT {
            // A subtree's entries as a snapshot chunk serves them (the `leaves` index, then
            // each state value).
            let chunk = self.snapshot_chunk(REPAGE_SPLIT, index)?;
            let leaves: Vec<(Hash, Hash)> = chunk
                .entries
                .iter()
                .map(|(key, value)| (key.tree_key(), value.tree_value()))
                .collect();
            count += leaves.len() as u64;
            let at = smt::subtree_key(REPAGE_SPLIT, index);
            let (child, pages) = smt::subtree(at, &leaves)?;
            summaries[index as usize] = child;
            if write {
                put_pages(&mut pending, &pages);
                if pending.len() >= REPAGE_BATCH {
                    self.db.write(std::mem::take(&mut pending))?;
                }
            }
            if (index + 1) % 512 == 0 {
                tracing::info!(
                    subtrees = index + 1,
                    of = 1u32 << REPAGE_SPLIT,
                    leaves = count,
                    write,
                    "state tree pages"
                );
            }
        }
        let (root, top) = smt::assemble(REPAGE_SPLIT, &summaries);
        if write {
            put_pages(&mut pending, &top);
        }
        Ok((root, count, pending))
    }

    /// Deletes every record of the `tree` family, a bounded batch at a time, each scan
    /// going on after the last key deleted.
    fn clear_tree(&self) -> Result<(), StoreError> {
        let mut start = Vec::new();
        loop {
            let mut batch = Batch::default();
            let mut last = None;
            self.db.scan(CF_TREE, &start, &mut |key, _| {
                batch.delete(CF_TREE, key);
                last = Some(key.to_vec());
                Ok(batch.len() < REPAGE_BATCH)
            })?;
            let full = batch.len() >= REPAGE_BATCH;
            if !batch.is_empty() {
                self.db.write(batch)?;
            }
            match last {
                Some(mut key) if full => {
                    // The smallest key after it.
                    key.push(0);
                    start = key;
                }
                _ => return Ok(()),
            }
        }
    }

    /// The genesis this store holds.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain id.
    pub fn chain_id(&self) -> Hash {
        self.chain_id
    }

    /// The last committed block.
    pub fn tip(&self) -> Result<Tip, StoreError> {
        let bytes = self
            .db
            .get(CF_META, META_TIP)?
            .ok_or_else(|| StoreError::Corrupt("tip record missing".into()))?;
        codec::decode(&bytes, 1024).map_err(|e| corrupt("tip record", e))
    }

    /// Checks the blocks at the tip: stored, decodable, certified by the genesis validators,
    /// their transactions matching the header, hash-linked, and the tip's state root matching
    /// the stored state. The full audit from genesis is a separate, longer job.
    fn check_tip(&self) -> Result<(), StoreError> {
        let tip = self.tip()?;
        if tip.height == 0 {
            return Ok(());
        }
        let top = self
            .block(tip.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("tip block {} is missing", tip.height)))?;
        if top.block.header.hash() != tip.block_hash {
            return Err(StoreError::Corrupt(format!(
                "block {} does not hash to the recorded tip",
                tip.height
            )));
        }
        if top.block.header.state_root != tip.state_root.hash() {
            return Err(StoreError::Corrupt(format!(
                "state root of block {} does not match the stored state",
                tip.height
            )));
        }
        // After a state sync the blocks below the base are not here until the backfill.
        let base = self.base()?;
        let lowest = tip
            .height
            .saturating_sub(OPEN_CHECK_DEPTH - 1)
            .max(base.unwrap_or(1))
            .max(1);
        self.check_block_contents(&top)?;
        let mut child = top;
        for height in (lowest..tip.height).rev() {
            let block = self
                .block(height)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {height} is missing")))?;
            self.check_block_contents(&block)?;
            if child.block.header.prev_hash != block.block.header.hash() {
                return Err(StoreError::Corrupt(format!(
                    "block {} does not link to block {height}",
                    height + 1
                )));
            }
            child = block;
        }
        if lowest == 1 && base.is_none() && child.block.header.prev_hash != self.chain_id {
            return Err(StoreError::Corrupt(
                "block 1 does not link to the genesis".into(),
            ));
        }
        Ok(())
    }

    /// Checks one stored block on its own: certificate and transaction root.
    fn check_block_contents(&self, certified: &CertifiedBlock) -> Result<(), StoreError> {
        let header = &certified.block.header;
        let validators: Vec<PublicKey> = self
            .operators_at(header.height)?
            .iter()
            .map(|op| op.validator_key)
            .collect();
        certified
            .certificate
            .verify(header, &validators)
            .map_err(|e| StoreError::Corrupt(format!("block {}: {e}", header.height)))?;
        let leaves: Vec<Hash> = certified
            .block
            .txs
            .iter()
            .map(SignedTx::witness_hash)
            .collect();
        if cachet_types::merkle::tx_root(&leaves) != header.tx_root {
            return Err(StoreError::Corrupt(format!(
                "block {}: transactions do not match the header",
                header.height
            )));
        }
        Ok(())
    }

    /// The membership record at the tip: every decided change of the operator set.
    pub fn membership(&self) -> Result<MembershipState, StoreError> {
        Ok(cachet_state::membership(self)?)
    }

    /// The operators of the block at `height`, in validator-index order: known for every
    /// height up to two past the tip (a change is decided at least two blocks before it
    /// applies).
    pub fn operators_at(&self, height: u64) -> Result<Vec<Operator>, StoreError> {
        Ok(cachet_state::operators_at(self, &self.genesis, height)?)
    }

    /// A membership proposal.
    pub fn proposal(&self, id: &Hash) -> Result<Option<ProposalState>, StoreError> {
        match self.state(&StateKey::Proposal(*id))? {
            Some(StateValue::Proposal(proposal)) => Ok(Some(proposal)),
            Some(_) => Err(StoreError::Corrupt(
                "a proposal key holds another kind".into(),
            )),
            None => Ok(None),
        }
    }

    /// The certified block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<CertifiedBlock>, StoreError> {
        match self.db.get(CF_BLOCKS, &height.to_be_bytes())? {
            Some(bytes) => codec::decode(&bytes, MAX_VALUE_BYTES)
                .map(Some)
                .map_err(|e| corrupt(&format!("block {height}"), e)),
            None => Ok(None),
        }
    }

    /// The raw stored bytes of the block at `height` (for audits and sync).
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(CF_BLOCKS, &height.to_be_bytes())
    }

    /// The height of the block with this hash.
    pub fn block_height(&self, hash: &Hash) -> Result<Option<u64>, StoreError> {
        stored_u64(
            self.db.get(CF_BLOCK_INDEX, hash.as_bytes())?,
            "block index entry",
        )
    }

    /// Where a final transaction is.
    pub fn tx_location(&self, id: &Hash) -> Result<Option<TxLocation>, StoreError> {
        match self.db.get(CF_TX_INDEX, id.as_bytes())? {
            Some(bytes) if bytes.len() == 12 => {
                let mut height = [0u8; 8];
                let mut index = [0u8; 4];
                height.copy_from_slice(&bytes[..8]);
                index.copy_from_slice(&bytes[8..]);
                Ok(Some(TxLocation {
                    height: u64::from_be_bytes(height),
                    index: u32::from_be_bytes(index),
                }))
            }
            Some(_) => Err(StoreError::Corrupt("tx index entry".into())),
            None => Ok(None),
        }
    }

    /// A state value.
    pub fn state(&self, key: &StateKey) -> Result<Option<StateValue>, StoreError> {
        match self.db.get(CF_STATE, &key.to_bytes())? {
            Some(bytes) => codec::decode(&bytes, MAX_VALUE_BYTES)
                .map(Some)
                .map_err(|e| corrupt("state value", e)),
            None => Ok(None),
        }
    }

    /// A page of a stamp's history: events with seq > `after` (or from the start), at most
    /// `limit`.
    pub fn history(
        &self,
        stamp: &StampId,
        after: Option<u32>,
        limit: usize,
    ) -> Result<Vec<StampEvent>, StoreError> {
        let start_seq = match after {
            Some(seq) => match seq.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => 0,
        };
        let prefix = stamp_key(stamp);
        let start = history_key(stamp, start_seq);
        let mut events = Vec::new();
        if limit == 0 {
            return Ok(events);
        }
        self.db.scan(CF_HISTORY, &start, &mut |key, value| {
            if !key.starts_with(&prefix) || key.len() != prefix.len() + 4 {
                return Ok(false);
            }
            let event: StampEvent =
                codec::decode(value, MAX_VALUE_BYTES).map_err(|e| corrupt("history", e))?;
            events.push(event);
            Ok(events.len() < limit)
        })?;
        Ok(events)
    }

    /// A page of an issue's minted stamps in serial order: serials above `after` (or from
    /// the first), at most `limit`. State keys of one issue's stamps share the encoding of
    /// `StateKey::Stamp` up to the serial, which is big-endian, so they are adjacent and
    /// ordered by serial in the state family.
    pub fn issue_stamps(
        &self,
        issue: &IssueId,
        after: Option<u32>,
        limit: usize,
    ) -> Result<Vec<(StampId, StampState)>, StoreError> {
        let first = match after {
            Some(serial) => match serial.checked_add(1) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => 1,
        };
        let key_of = |serial: u32| {
            StateKey::Stamp(StampId {
                issue: issue.clone(),
                serial,
            })
            .to_bytes()
        };
        let start = key_of(first);
        let prefix_len = start.len() - 4;
        let prefix = start[..prefix_len].to_vec();
        let mut stamps = Vec::new();
        if limit == 0 {
            return Ok(stamps);
        }
        self.db.scan(CF_STATE, &start, &mut |key, value| {
            if key.len() != prefix_len + 4 || !key.starts_with(&prefix) {
                return Ok(false);
            }
            let serial = u32::from_be_bytes(key[prefix_len..].try_into().expect("4 bytes"));
            let stamp = StampId {
                issue: issue.clone(),
                serial,
            };
            debug_assert_eq!(key, key_of(serial).as_slice());
            match codec::decode(value, MAX_VALUE_BYTES).map_err(|e| corrupt("state value", e))? {
                StateValue::Stamp(state) => stamps.push((stamp, state)),
                other => panic!("state key of stamp {stamp} holds {other:?}"),
            }
            Ok(stamps.len() < limit)
        })?;
        Ok(stamps)
    }

    /// A page of the stamps `owner` holds, ordered by stamp key, after `after`.
    pub fn holdings(
        &self,
        owner: &Address,
        after: Option<&StampId>,
        limit: usize,
    ) -> Result<Vec<StampId>, StoreError> {
        let prefix = owner.public_key().0;
        let start = match after {
            Some(stamp) => {
                let mut key = holding_key(owner, stamp);
                key.push(0); // strictly after
                key
            }
            None => prefix.to_vec(),
        };
        let mut stamps = Vec::new();
        if limit == 0 {
            return Ok(stamps);
        }
        self.db.scan(CF_HOLDINGS, &start, &mut |key, _| {
            if !key.starts_with(&prefix) {
                return Ok(false);
            }
            let mut bytes = vec![codec::FORMAT_VERSION];
            bytes.extend_from_slice(&key[32..]);
            let stamp: StampId = codec::decode(&bytes, 256).map_err(|e| corrupt("holding", e))?;
            stamps.push(stamp);
            Ok(stamps.len() < limit)
        })?;
        Ok(stamps)
    }

    /// Writes a certified block and its effects in one synced batch.
    ///
    /// The caller has checked the certificate, executed the transactions against this store's
    /// state at the tip, and computed the tree update; `new_root` must equal the header's
    /// state root.
    pub fn commit(
        &self,
        certified: &CertifiedBlock,
        changes: &StateChanges,
        tree_writes: &[(NodeKey, Arc<Page>)],
        new_leaves: &[(Hash, StateKey)],
        new_root: Child,
    ) -> Result<Tip, StoreError> {
        self.settle()?;
        let new_tip = self.next_tip(certified, new_root)?;
        self.db.write(block_batch(
            certified,
            changes,
            tree_writes,
            new_leaves,
            &new_tip,
        ))?;
        cache_tree_writes(&mut self.tree_cache(), tree_writes);
        Ok(new_tip)
    }

    /// The tip `certified` makes, if it extends the (settled) tip and its header carries
    /// `new_root`.
    fn next_tip(&self, certified: &CertifiedBlock, new_root: Child) -> Result<Tip, StoreError> {
        let tip = self.tip()?;
        let header = &certified.block.header;
        if header.height != tip.height + 1 || header.prev_hash != tip.block_hash {
            return Err(StoreError::NotNext {
                height: header.height,
                tip: tip.height,
            });
        }
        // Halting beats forking: a root mismatch here is a bug upstream.
        assert_eq!(
            new_root.hash(),
            header.state_root,
            "state root mismatch at commit"
        );
        Ok(Tip {
            height: header.height,
            block_hash: header.hash(),
            state_root: new_root,
            time_ms: header.time_ms,
        })
    }

    /// A frozen copy of the store as it is now, for serving a snapshot while this store
    /// commits on (see [`Backend::freeze`]; RocksDB puts a checkpoint in `dir`).
    pub fn freeze(&self, dir: &std::path::Path) -> Result<Store, StoreError> {
        Store::with_backend(self.db.freeze(dir)?, &self.genesis)
    }

    /// Proof of one state key's current value against the tip's state root.
    pub fn prove(&self, key: &StateKey) -> Result<(Tip, smt::SmtProof), StoreError> {
        let tip = self.tip()?;
        let proof = smt::prove(self, tip.state_root, &key.tree_key())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((tip, proof))
    }

    /// Approximate stored size in bytes, for metrics.
    pub fn approximate_size(&self) -> u64 {
        self.db.approximate_size()
    }

    /// Writes (synced) and reads back a probe value outside the ledger's data, for a health
    /// check: an error means the store cannot take writes (full disk, failed device).
    pub fn probe_write(&self, value: u64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(CF_META, META_HEALTH, value.to_be_bytes());
        self.db.write(batch)?;
        match self.db.get(CF_META, META_HEALTH)? {
            Some(read) if read == value.to_be_bytes() => Ok(()),
            _ => Err(StoreError::Db("the health probe did not read back".into())),
        }
    }

    /// The storage engine's figures, for metrics.
    pub fn stats(&self) -> StoreStats {
        self.db.stats()
    }
}

/// A store failure as the state machine sees it (the inverse of `From<StateError>`).
fn state_error(error: StoreError) -> StateError {
    match error {
        StoreError::Db(message) => StateError::Store(message),
        StoreError::Corrupt(message) => StateError::Corrupt(message),
        other => StateError::Store(other.to_string()),
    }
}

impl StateView for Store {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        self.state(key).map_err(state_error)
    }
}

/// The writes that commit `certified` with its state changes and tree writes, moving the tip
/// to `new_tip`: one atomic batch.
fn block_batch(
    certified: &CertifiedBlock,
    changes: &StateChanges,
    tree_writes: &[(NodeKey, Arc<Page>)],
    new_leaves: &[(Hash, StateKey)],
    new_tip: &Tip,
) -> Batch {
    let mut batch = Batch::default();
    snapshot::put_block(&mut batch, certified);
    for (key, value) in &changes.writes {
        batch.put_encoded(CF_STATE, key.to_bytes(), value);
    }
    // A tree key's state key never changes and state keys are never removed, so only keys
    // new to the tree join the index (two of a transfer's ~14 writes were rewrites).
    for (tree_key, key) in new_leaves {
        batch.put(CF_LEAVES, tree_key.as_bytes(), key.to_bytes());
    }
    put_pages(&mut batch, tree_writes);
    for event in &changes.events {
        batch.put_encoded(CF_HISTORY, history_key(&event.stamp, event.seq), event);
        match &event.kind {
            EventKind::Minted { owner } => {
                batch.put(CF_HOLDINGS, holding_key(owner, &event.stamp), [])
            }
            EventKind::Transferred { from, to, .. } | EventKind::Swapped { from, to } => {
                batch.delete(CF_HOLDINGS, holding_key(from, &event.stamp));
                batch.put(CF_HOLDINGS, holding_key(to, &event.stamp), []);
            }
            // An unclaimed physical twin is held by nobody until claimed.
            EventKind::Claimed { to, .. } => {
                batch.put(CF_HOLDINGS, holding_key(to, &event.stamp), [])
            }
            // A destroyed stamp is no longer held (its history remains).
            EventKind::Burned => {
                if let Some(StateValue::Stamp(StampState {
                    owner: Some(owner), ..
                })) = changes.writes.get(&StateKey::Stamp(event.stamp.clone()))
                {
                    batch.delete(CF_HOLDINGS, holding_key(owner, &event.stamp));
                }
            }
            _ => {}
        }
    }
    batch.put_encoded(CF_META, META_TIP, new_tip);
    batch
}

/// Writes a committed block's upper tree levels through to the cache.
fn cache_tree_writes(cache: &mut TreeCache, tree_writes: &[(NodeKey, Arc<Page>)]) {
    cache.commits += 1;
    for (key, page) in tree_writes
        .iter()
        .filter(|(key, _)| key.depth < CACHED_TREE_DEPTH)
    {
        cache.pages.insert(*key, Arc::clone(page));
    }
}

/// Adds the state tree's page writes to `batch`.
pub(crate) fn put_pages(batch: &mut Batch, pages: &[(NodeKey, Arc<Page>)]) {
    for (key, page) in pages {
        batch.put_encoded(CF_TREE, key.to_bytes(), page.as_ref());
    }
}

impl Store {
    fn tree_cache(&self) -> std::sync::MutexGuard<'_, TreeCache> {
        // The map is consistent between calls; a panic elsewhere does not spoil it.
        self.tree_cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl PageSource for Store {
    fn page(&self, key: &NodeKey) -> Result<Option<Arc<Page>>, StateError> {
        let cached = key.depth < CACHED_TREE_DEPTH;
        let commits = if cached {
            let cache = self.tree_cache();
            if let Some(page) = cache.pages.get(key) {
                return Ok(Some(Arc::clone(page)));
            }
            cache.commits
        } else {
            0
        };
        let page: Option<Arc<Page>> = match self.db.get(CF_TREE, &key.to_bytes()) {
            Ok(Some(bytes)) => Some(Arc::new(
                codec::decode(&bytes, smt::MAX_PAGE_BYTES)
                    .map_err(|e| StateError::Corrupt(e.to_string()))?,
            )),
            Ok(None) => None,
            Err(e) => return Err(state_error(e)),
        };
        if cached && let Some(page) = &page {
            let mut cache = self.tree_cache();
            if cache.commits == commits {
                cache.pages.insert(*key, Arc::clone(page));
            }
        }
        Ok(page)
    }
}
