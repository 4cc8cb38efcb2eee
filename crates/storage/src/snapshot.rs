//! State sync: the state at a certified height, served in chunks that each verify against
//! that height's state root, imported into an empty store; then the backfill, which replays
//! the blocks below the snapshot in a scratch ledger so that the store gains their history
//! (and so serves full provenance) while it already follows the chain
//! (`specs/ledger.md#state-sync`).
//!
//! A snapshot of height H is a manifest and its chunks. The manifest lists the summaries
//! ([`Child`]) of the 2^d subtrees at depth d of the state tree; joined upward they must give
//! the root in block H's header. Chunk i is every state entry whose tree key starts with i's
//! d bits; built into a subtree it must give summary i. So every chunk is checked on arrival
//! against a root the certificate chain vouches for, and a bad one names its sender.

use bincode::{Decode, Encode};
use cachet_state::smt::{self, Child};
use cachet_state::{StampEvent, StampState, StateKey, StateValue, Tip};
use cachet_types::{BlockHeader, CertifiedBlock, Hash, codec};
use thiserror::Error;

use crate::backend::Batch;
use crate::ledger::{Ledger, LedgerError};
use crate::{
    CF_BLOCK_INDEX, CF_BLOCKS, CF_HISTORY, CF_HOLDINGS, CF_LEAVES, CF_META, CF_STATE, CF_TREE,
    CF_TX_INDEX, META_BASE, META_IMPORT, META_TIP, Store, StoreError, corrupt, history_key,
    holding_key, put_pages,
};

/// Deepest split a manifest may use: at most 65,536 subtrees (a ~4 MiB manifest).
pub const MAX_SNAPSHOT_DEPTH: u8 = 16;
/// Entries a chunk should hold on average: the manifest's depth is the smallest that
/// brings the average at or below this.
pub const CHUNK_TARGET_ENTRIES: u64 = 4096;
/// Most entries a chunk may hold (a chunk is refused above it).
pub const MAX_CHUNK_ENTRIES: usize = 1 << 16;
/// Largest encoded chunk: what a peer may be asked to send in one answer.
pub const MAX_CHUNK_BYTES: usize = 16 << 20;
/// Largest encoded manifest (65,536 summaries of at most 65 bytes, and a header).
pub const MAX_MANIFEST_BYTES: usize = (1 << MAX_SNAPSHOT_DEPTH) * 66 + 1024;
/// Deletes per batch when an import is abandoned.
const ABANDON_BATCH: usize = 10_000;
/// Prefix of the meta keys that mark an imported chunk (followed by its index, u32 BE).
const META_IMPORTED: &[u8] = b"import-chunk-";

/// The subtrees of the state of one height.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SnapshotManifest {
    /// The height whose state this is.
    pub height: u64,
    /// Hash of that height's block header.
    pub block_hash: Hash,
    /// Depth of the split: chunk i is the subtree whose key prefix is i in `depth` bits.
    pub depth: u8,
    /// The summary of each subtree, 2^depth of them in prefix order.
    pub summaries: Vec<Child>,
}

/// The state entries of one subtree of a snapshot, in tree-key order.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SnapshotChunk {
    /// The snapshot's height.
    pub height: u64,
    /// Which subtree.
    pub index: u32,
    /// Its entries, ordered by tree key.
    pub entries: Vec<(StateKey, StateValue)>,
}

/// Why a manifest or a chunk is refused: a verdict on what a peer sent.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum SnapshotError {
    /// The manifest is of another block than the one trusted.
    #[error("the manifest is of block {found} at height {height}, not the certified {expected}")]
    WrongBlock {
        /// Its height.
        height: u64,
        /// The certified block's hash.
        expected: Hash,
        /// The manifest's.
        found: Hash,
    },
    /// The split is deeper than allowed or not at a page boundary of the state tree, or the
    /// summaries do not number 2^depth.
    #[error(
        "the manifest splits at depth {depth} into {count} subtrees (a multiple of 4 up to depth {MAX_SNAPSHOT_DEPTH}, 2^depth subtrees)"
    )]
    Shape {
        /// Its depth.
        depth: u8,
        /// Its number of summaries.
        count: usize,
    },
    /// A single-leaf summary sits under another prefix than its key's.
    #[error("subtree {index} of the manifest names a leaf of another subtree")]
    Misplaced {
        /// The subtree.
        index: u32,
    },
    /// The summaries do not join to the certified state root.
    #[error("the manifest's subtrees do not give the certified state root")]
    Root,
    /// A chunk of another snapshot, or of a subtree the manifest does not have.
    #[error("chunk {index} of height {height} is not one of this snapshot's chunks")]
    NotInManifest {
        /// Its height.
        height: u64,
        /// Its index.
        index: u32,
    },
    /// A chunk with more entries than allowed.
    #[error("chunk {index} holds {count} entries, more than {MAX_CHUNK_ENTRIES}")]
    TooLarge {
        /// Its index.
        index: u32,
        /// Its entries.
        count: usize,
    },
    /// An entry outside the chunk's subtree, or out of tree-key order, or twice.
    #[error("chunk {index}: entry {position} is out of order or outside the subtree")]
    Order {
        /// The chunk.
        index: u32,
        /// The entry.
        position: usize,
    },
    /// The entries do not build the subtree the manifest summarises.
    #[error("chunk {index} does not give its subtree's summary in the manifest")]
    Mismatch {
        /// The chunk.
        index: u32,
    },
}

impl SnapshotManifest {
    /// Number of subtrees (chunks, the empty ones included).
    pub fn chunk_count(&self) -> u32 {
        self.summaries.len() as u32
    }

    /// The chunks that hold entries: those a syncing node fetches.
    pub fn non_empty(&self) -> impl Iterator<Item = u32> + '_ {
        self.summaries
            .iter()
            .enumerate()
            .filter(|(_, child)| **child != Child::Empty)
            .map(|(index, _)| index as u32)
    }

    /// Checks the manifest against the header of the block it claims: same block, a valid
    /// split, every single-leaf summary in its own subtree, and the summaries joining to the
    /// header's state root.
    pub fn verify(&self, header: &BlockHeader) -> Result<(), SnapshotError> {
        if self.height != header.height || self.block_hash != header.hash() {
            return Err(SnapshotError::WrongBlock {
                height: self.height,
                expected: header.hash(),
                found: self.block_hash,
            });
        }
        if self.depth > MAX_SNAPSHOT_DEPTH
            || !self.depth.is_multiple_of(smt::PAGE_LEVELS)
            || self.summaries.len() != 1usize << self.depth
        {
            return Err(SnapshotError::Shape {
                depth: self.depth,
                count: self.summaries.len(),
            });
        }
        for (index, summary) in self.summaries.iter().enumerate() {
            if let Child::Leaf { key, .. } = summary
                && smt::subtree_index(key, self.depth) != index as u32
            {
                return Err(SnapshotError::Misplaced {
                    index: index as u32,
                });
            }
        }
        let (root, _) = smt::assemble(self.depth, &self.summaries);
        if root.hash() != header.state_root {
            return Err(SnapshotError::Root);
        }
        Ok(())
    }
}

/// A chunk checked against its manifest: its tree leaves and the tree nodes it stores.
pub struct VerifiedChunk {
    chunk: SnapshotChunk,
    tree_writes: smt::PageWrites,
}

impl SnapshotChunk {
    /// Checks the chunk against a verified manifest: one of its subtrees, its entries in
    /// tree-key order and all under the subtree's prefix, building the summary it lists.
    pub fn verify(self, manifest: &SnapshotManifest) -> Result<VerifiedChunk, SnapshotError> {
        let index = self.index;
        if self.height != manifest.height || index >= manifest.chunk_count() {
            return Err(SnapshotError::NotInManifest {
                height: self.height,
                index,
            });
        }
        if self.entries.len() > MAX_CHUNK_ENTRIES {
            return Err(SnapshotError::TooLarge {
                index,
                count: self.entries.len(),
            });
        }
        let mut leaves: Vec<(Hash, Hash)> = Vec::with_capacity(self.entries.len());
        for (position, (key, value)) in self.entries.iter().enumerate() {
            let tree_key = key.tree_key();
            let in_order = leaves.last().is_none_or(|(last, _)| *last < tree_key);
            if !in_order || smt::subtree_index(&tree_key, manifest.depth) != index {
                return Err(SnapshotError::Order { index, position });
            }
            leaves.push((tree_key, value.tree_value()));
        }
        let at = smt::subtree_key(manifest.depth, index);
        let (child, tree_writes) =
            smt::subtree(at, &leaves).map_err(|_| SnapshotError::Mismatch { index })?;
        if child != manifest.summaries[index as usize] {
            return Err(SnapshotError::Mismatch { index });
        }
        Ok(VerifiedChunk {
            chunk: self,
            tree_writes,
        })
    }
}

/// The depth a manifest of `leaves` state entries splits at: the smallest page boundary of
/// the state tree (a multiple of 4) that brings the average chunk to at most
/// [`CHUNK_TARGET_ENTRIES`], so that each chunk's pages are its own.
pub fn depth_for(leaves: u64) -> u8 {
    let mut depth = 0u8;
    while depth < MAX_SNAPSHOT_DEPTH && leaves > CHUNK_TARGET_ENTRIES << depth {
        depth += smt::PAGE_LEVELS;
    }
    depth
}

/// An unfinished import, as recorded in the store.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct ImportRecord {
    /// The block whose state is being imported.
    pub block: CertifiedBlock,
    /// Its manifest.
    pub manifest: SnapshotManifest,
}

/// Why an import step failed: the chunk is bad (a verdict on its sender), the import is
/// not in a state for the step, or the store failed.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The manifest or chunk is refused.
    #[error("{0}")]
    Refused(#[from] SnapshotError),
    /// The step does not fit the store (not empty, no import begun, chunks missing).
    #[error("{0}")]
    State(String),
    /// Storage failed (fatal).
    #[error("{0}")]
    Store(#[from] StoreError),
}

fn imported_key(index: u32) -> Vec<u8> {
    let mut key = META_IMPORTED.to_vec();
    key.extend_from_slice(&index.to_be_bytes());
    key
}

impl Store {
    /// Number of entries in the state (one scan of the tree-key index).
    pub fn state_entries(&self) -> Result<u64, StoreError> {
        let mut count = 0u64;
        self.db.scan(CF_LEAVES, &[], &mut |_, _| {
            count += 1;
            Ok(true)
        })?;
        Ok(count)
    }

    /// The manifest of the state at the tip. Call it on a frozen copy
    /// ([`Store::freeze`]) to serve chunks that stay consistent while the node commits.
    pub fn snapshot_manifest(&self) -> Result<SnapshotManifest, StoreError> {
        self.snapshot_manifest_split(depth_for(self.state_entries()?))
    }

    /// The manifest of the state at the tip, split at `depth` rounded up to a page boundary
    /// of the state tree (a multiple of 4), at most [`MAX_SNAPSHOT_DEPTH`].
    pub fn snapshot_manifest_split(&self, depth: u8) -> Result<SnapshotManifest, StoreError> {
        let depth = depth
            .min(MAX_SNAPSHOT_DEPTH)
            .next_multiple_of(smt::PAGE_LEVELS);
        let tip = self.tip()?;
        let summaries = smt::summaries(self, tip.state_root, depth)?;
        Ok(SnapshotManifest {
            height: tip.height,
            block_hash: tip.block_hash,
            depth,
            summaries,
        })
    }

    /// Chunk `index` of the tip's state split at `depth`.
    pub fn snapshot_chunk(&self, depth: u8, index: u32) -> Result<SnapshotChunk, StoreError> {
        let tip = self.tip()?;
        if depth > MAX_SNAPSHOT_DEPTH || u64::from(index) >= 1u64 << depth {
            return Err(StoreError::Corrupt(format!(
                "no chunk {index} at depth {depth}"
            )));
        }
        let start = smt::subtree_key(depth, index).prefix;
        let mut keys = Vec::new();
        self.db
            .scan(CF_LEAVES, start.as_bytes(), &mut |tree_key, state_key| {
                let tree_key: [u8; 32] = tree_key
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("tree-key index entry".into()))?;
                if smt::subtree_index(&Hash(tree_key), depth) != index {
                    return Ok(false);
                }
                keys.push(state_key.to_vec());
                Ok(keys.len() <= MAX_CHUNK_ENTRIES)
            })?;
        if keys.len() > MAX_CHUNK_ENTRIES {
            return Err(StoreError::Corrupt(format!(
                "subtree {index} at depth {depth} holds more than {MAX_CHUNK_ENTRIES} entries"
            )));
        }
        let mut entries = Vec::with_capacity(keys.len());
        for bytes in keys {
            let key: StateKey = codec::decode(&bytes, 1024).map_err(|e| corrupt("state key", e))?;
            let value = self.state(&key)?.ok_or_else(|| {
                StoreError::Corrupt(format!("indexed state key {key:?} holds no value"))
            })?;
            entries.push((key, value));
        }
        Ok(SnapshotChunk {
            height: tip.height,
            index,
            entries,
        })
    }

    /// The unfinished import and the chunks it still needs, if one was begun.
    pub fn import_progress(&self) -> Result<Option<(ImportRecord, Vec<u32>)>, StoreError> {
        let Some(record) = self.import_record()? else {
            return Ok(None);
        };
        let mut missing = Vec::new();
        for index in record.manifest.non_empty() {
            if self.db.get(CF_META, &imported_key(index))?.is_none() {
                missing.push(index);
            }
        }
        Ok(Some((record, missing)))
    }

    pub(crate) fn import_record(&self) -> Result<Option<ImportRecord>, StoreError> {
        match self.db.get(CF_META, META_IMPORT)? {
            Some(bytes) => codec::decode(&bytes, MAX_MANIFEST_BYTES + codec::MAX_DECODE_BYTES)
                .map(Some)
                .map_err(|e| corrupt("import record", e)),
            None => Ok(None),
        }
    }

    /// Begins importing the state of `block` (whose certificate the caller has checked
    /// against operator sets proven from the genesis) into this empty store: checks the
    /// manifest against the block and records both, with the tree above the split. Until
    /// [`Store::finish_import`], the store opens only to go on with the import.
    pub fn begin_import(
        &self,
        block: &CertifiedBlock,
        manifest: &SnapshotManifest,
    ) -> Result<(), ImportError> {
        if self.tip()?.height != 0 || self.import_record()?.is_some() {
            return Err(ImportError::State(
                "a snapshot is imported only into an empty store".into(),
            ));
        }
        manifest.verify(&block.block.header)?;
        let mut batch = Batch::default();
        let (_, top) = smt::assemble(manifest.depth, &manifest.summaries);
        put_pages(&mut batch, &top);
        let record = ImportRecord {
            block: block.clone(),
            manifest: manifest.clone(),
        };
        batch.put(CF_META, META_IMPORT, codec::encode(&record));
        self.db.write(batch)?;
        Ok(())
    }

    /// Gives up an unfinished import (its snapshot is no longer served, say): removes what
    /// it wrote (the store was empty before it) so that another can begin.
    pub fn abandon_import(&self) -> Result<(), ImportError> {
        if self.import_record()?.is_none() || self.tip()?.height != 0 {
            return Err(ImportError::State("no unfinished import to abandon".into()));
        }
        for family in [CF_STATE, CF_LEAVES, CF_TREE, CF_HOLDINGS, CF_META] {
            loop {
                let mut batch = Batch::default();
                self.db.scan(family, &[], &mut |key, _| {
                    let ours =
                        family != CF_META || key == META_IMPORT || key.starts_with(META_IMPORTED);
                    if ours {
                        batch.delete(family, key);
                    }
                    Ok(batch.len() < ABANDON_BATCH)
                })?;
                if batch.is_empty() {
                    break;
                }
                let full = batch.len() >= ABANDON_BATCH;
                self.db.write(batch)?;
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Checks one chunk against the import's manifest and writes its state entries, their
    /// tree nodes, tree-key index and holdings, in one batch. A chunk imported before is
    /// checked and written again (the same bytes).
    pub fn import_chunk(&self, chunk: SnapshotChunk) -> Result<(), ImportError> {
        let record = self
            .import_record()?
            .ok_or_else(|| ImportError::State("no import has begun".into()))?;
        let verified = chunk.verify(&record.manifest)?;
        let mut batch = Batch::default();
        for (key, value) in &verified.chunk.entries {
            let key_bytes = key.to_bytes();
            batch.put(CF_LEAVES, key.tree_key().as_bytes(), &key_bytes);
            batch.put(CF_STATE, &key_bytes, value.to_bytes());
            if let (
                StateKey::Stamp(stamp),
                StateValue::Stamp(StampState {
                    owner: Some(owner), ..
                }),
            ) = (key, value)
            {
                batch.put(CF_HOLDINGS, holding_key(owner, stamp), []);
            }
        }
        put_pages(&mut batch, &verified.tree_writes);
        batch.put(CF_META, imported_key(verified.chunk.index), []);
        self.db.write(batch)?;
        Ok(())
    }

    /// Ends the import once every chunk is in: stores the snapshot's block and makes it the
    /// tip, with the base mark saying that the history up to it is not here yet (the
    /// backfill's job). Checks what it made as an open does (the block's certificate
    /// against the operators the imported state names, the state root against the tip).
    pub fn finish_import(&self) -> Result<Tip, ImportError> {
        let (record, missing) = self
            .import_progress()?
            .ok_or_else(|| ImportError::State("no import has begun".into()))?;
        if let Some(first) = missing.first() {
            return Err(ImportError::State(format!(
                "{} chunks are still missing (the first: {first})",
                missing.len()
            )));
        }
        let header = &record.block.block.header;
        let (root, _) = smt::assemble(record.manifest.depth, &record.manifest.summaries);
        let tip = Tip {
            height: header.height,
            block_hash: header.hash(),
            state_root: root,
            time_ms: header.time_ms,
        };
        let mut batch = Batch::default();
        put_block(&mut batch, &record.block);
        batch.put(CF_META, META_TIP, codec::encode(&tip));
        batch.put(CF_META, META_BASE, header.height.to_be_bytes());
        batch.delete(CF_META, META_IMPORT);
        for index in record.manifest.non_empty() {
            batch.delete(CF_META, imported_key(index));
        }
        self.db.write(batch)?;
        self.check_tip()?;
        Ok(tip)
    }

    /// The height up to which the store lacks the history, after a state sync and until
    /// its backfill ends; `None` for a store that holds every block.
    pub fn base(&self) -> Result<Option<u64>, StoreError> {
        crate::stored_u64(self.db.get(CF_META, META_BASE)?, "base record")
    }

    /// Writes what a replayed block below the base adds to this store: the block, its
    /// indexes and its stamps' events (the state and holdings are the snapshot's, newer).
    /// The block at the base ends the backfill.
    fn store_backfilled(
        &self,
        certified: &CertifiedBlock,
        events: &[StampEvent],
        ends: bool,
    ) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        put_block(&mut batch, certified);
        for event in events {
            batch.put(
                CF_HISTORY,
                history_key(&event.stamp, event.seq),
                codec::encode(event),
            );
        }
        if ends {
            batch.delete(CF_META, META_BASE);
        }
        self.db.write(batch)
    }
}

/// A block with its hash index and transaction index entries.
pub(crate) fn put_block(batch: &mut Batch, certified: &CertifiedBlock) {
    let header = &certified.block.header;
    batch.put_encoded(CF_BLOCKS, header.height.to_be_bytes(), certified);
    batch.put(
        CF_BLOCK_INDEX,
        header.hash().as_bytes(),
        header.height.to_be_bytes(),
    );
    for (index, tx) in certified.block.txs.iter().enumerate() {
        let mut location = [0u8; 12];
        location[..8].copy_from_slice(&header.height.to_be_bytes());
        location[8..].copy_from_slice(&(index as u32).to_be_bytes());
        batch.put(CF_TX_INDEX, tx.id().as_bytes(), location);
    }
}

/// How far a backfill has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillProgress {
    /// The last block replayed.
    pub height: u64,
    /// The base it replays up to.
    pub base: u64,
}

impl BackfillProgress {
    /// Whether the store now holds every block's history.
    pub fn done(&self) -> bool {
        self.height >= self.base
    }
}

/// Replays the blocks up to a state-synced store's base in a scratch ledger (from the
/// genesis, every block checked as sync checks it: certificate, signatures, execution, state
/// root), and gives the synced store each block with its stamp events. The scratch ledger's
/// tip is the progress, so a backfill resumes where it stopped.
pub struct Backfill {
    scratch: Ledger,
    base: u64,
    base_hash: Hash,
}

impl Backfill {
    /// A backfill of `main` (which must have a base) through `scratch`, a store of the same
    /// genesis that is empty or holds an earlier backfill's replay.
    pub fn new(main: &Store, scratch: Store) -> Result<Backfill, ImportError> {
        let base = main
            .base()?
            .ok_or_else(|| ImportError::State("the store holds every block already".into()))?;
        if scratch.chain_id() != main.chain_id() {
            return Err(ImportError::State(
                "the scratch store is of another chain".into(),
            ));
        }
        if scratch.tip()?.height >= base {
            return Err(ImportError::State(
                "the scratch store is past the base".into(),
            ));
        }
        let base_hash = main
            .block(base)?
            .ok_or_else(|| StoreError::Corrupt(format!("the base block {base} is missing")))?
            .block
            .header
            .hash();
        Ok(Backfill {
            scratch: Ledger::new(scratch),
            base,
            base_hash,
        })
    }

    /// The next height to replay.
    pub fn next_height(&self) -> Result<u64, StoreError> {
        Ok(self.scratch.store().tip()?.height + 1)
    }

    /// The base it replays up to.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Replays the next block and hands its history to `main`. The block at the base must
    /// be the one `main` holds there (the same hash and so the same state root).
    pub fn apply(
        &self,
        main: &Store,
        certified: &CertifiedBlock,
    ) -> Result<BackfillProgress, LedgerError> {
        let height = certified.block.header.height;
        let next = self.next_height()?;
        if height != next || height > self.base {
            return Err(LedgerError::Store(StoreError::NotNext {
                height,
                tip: next - 1,
            }));
        }
        let ends = height == self.base;
        if ends && certified.block.header.hash() != self.base_hash {
            // Both chains are certified from the genesis: two blocks at one height would be
            // a fork. Halting beats forking: an error the node stops on, not a verdict.
            return Err(LedgerError::Store(StoreError::Corrupt(format!(
                "the backfill reached another block at the base height {height} than the snapshot's: a fork of the certified chain"
            ))));
        }
        let events = self.scratch.commit_certified_events(certified)?;
        main.store_backfilled(certified, &events, ends)?;
        Ok(BackfillProgress {
            height,
            base: self.base,
        })
    }
}
