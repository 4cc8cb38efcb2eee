//! Where the store's bytes live: a key-value backend of eight ordered families, written one
//! atomic batch at a time. [`RocksBackend`] keeps them on disk (what `cachetd` runs);
//! [`MemoryBackend`] keeps them in memory (what the simulator, tests and benchmarks run).
//! Everything above this trait (the column layout, the commit batch, queries, the ledger's
//! rules) is one code path for both.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, RwLock};

#[cfg(feature = "rocksdb")]
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, Options,
    WriteBatch, WriteOptions,
};

use cachet_types::codec;

use crate::StoreError;

/// The store's key families (RocksDB column families; `specs/ledger.md#storage-rocksdb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// height (u64 BE) -> certified block
    Blocks,
    /// block hash -> height
    BlockIndex,
    /// tx id -> height (u64 BE) || position (u32 BE)
    TxIndex,
    /// state key -> state value
    State,
    /// state tree page key (depth || prefix) -> page
    Tree,
    /// stamp id || seq (u32 BE) -> stamp event
    History,
    /// owner key || stamp id -> (empty)
    Holdings,
    /// `genesis` -> genesis, `tip` -> tip record
    Meta,
    /// state tree key -> state key (what a snapshot chunk of a subtree reads)
    Leaves,
}

impl Family {
    /// Every family, in a fixed order.
    pub const ALL: [Family; 9] = [
        Family::Blocks,
        Family::BlockIndex,
        Family::TxIndex,
        Family::State,
        Family::Tree,
        Family::History,
        Family::Holdings,
        Family::Meta,
        Family::Leaves,
    ];

    /// The RocksDB column family name.
    pub fn name(self) -> &'static str {
        match self {
            Family::Blocks => "blocks",
            Family::BlockIndex => "block_index",
            Family::TxIndex => "tx_index",
            Family::State => "state",
            Family::Tree => "tree",
            Family::History => "history",
            Family::Holdings => "holdings",
            Family::Meta => "meta",
            Family::Leaves => "leaves",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Writes applied together or not at all, in order.
///
/// Keys and values sit back to back in one buffer and each write names its place there: a
/// block's ~10 writes per transfer cost no allocation each, values are encoded straight
/// into the buffer ([`Batch::put_encoded`]), and sorting the batch moves small records.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    bytes: Vec<u8>,
    ops: Vec<OpAt>,
}

/// One write of a batch as read back: the family, the key, and the new value (`None`
/// deletes).
pub type Op<'a> = (Family, &'a [u8], Option<&'a [u8]>);

/// Where one write of a batch sits in its buffer.
#[derive(Debug, Clone, Copy)]
struct OpAt {
    family: Family,
    /// Start of the key, followed by the value.
    start: usize,
    key_len: usize,
    /// Length of the value; `None` deletes.
    value_len: Option<usize>,
}

impl Batch {
    /// Sets `key` to `value`.
    pub fn put(&mut self, family: Family, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let start = self.push_key(key.as_ref());
        self.bytes.extend_from_slice(value.as_ref());
        self.end_value(family, start, key.as_ref().len());
    }

    /// Sets `key` to the canonical encoding of `value` (as `codec::encode` gives it).
    pub fn put_encoded<T: bincode::Encode>(
        &mut self,
        family: Family,
        key: impl AsRef<[u8]>,
        value: &T,
    ) {
        let start = self.push_key(key.as_ref());
        self.bytes.push(codec::FORMAT_VERSION);
        codec::encode_into(value, &mut self.bytes);
        self.end_value(family, start, key.as_ref().len());
    }

    /// Removes `key`.
    pub fn delete(&mut self, family: Family, key: impl AsRef<[u8]>) {
        let start = self.push_key(key.as_ref());
        self.ops.push(OpAt {
            family,
            start,
            key_len: key.as_ref().len(),
            value_len: None,
        });
    }

    fn push_key(&mut self, key: &[u8]) -> usize {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        start
    }

    fn end_value(&mut self, family: Family, start: usize, key_len: usize) {
        self.ops.push(OpAt {
            family,
            start,
            key_len,
            value_len: Some(self.bytes.len() - start - key_len),
        });
    }

    /// The number of writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn op(&self, at: &OpAt) -> Op<'_> {
        let key_end = at.start + at.key_len;
        let value = at.value_len.map(|len| &self.bytes[key_end..key_end + len]);
        (at.family, &self.bytes[at.start..key_end], value)
    }

    /// The writes, in order: the family, the key, and the new value or `None` for a delete.
    pub fn ops(&self) -> impl Iterator<Item = Op<'_>> {
        self.ops.iter().map(|at| self.op(at))
    }

    /// An upper bound of the batch's size in RocksDB's write-batch format: a 12-byte
    /// header, then per write a tag, the family's id and the key's and value's lengths (each
    /// a varint of at most 5 bytes) around the bytes themselves.
    #[cfg(feature = "rocksdb")]
    fn rocks_bytes(&self) -> usize {
        12 + self.bytes.len() + self.ops.len() * (1 + 5 + 5 + 5)
    }

    /// The writes sorted by (family, key), each key's writes in batch order.
    #[cfg(feature = "rocksdb")]
    fn sorted_ops(&self) -> Vec<Op<'_>> {
        let mut ops: Vec<_> = self.ops().collect();
        ops.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        ops
    }
}

/// Visits one entry of a scan; returns whether to go on.
pub type Visit<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool, StoreError>;

/// An ordered key-value store of [`Family`]s. A failed read or write is a
/// [`StoreError::Db`]: the node stops rather than guess.
pub trait Backend: Send + Sync {
    /// The value of `key`.
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Visits the entries with keys at or after `start`, in key order, until `visit` says
    /// stop or the family ends.
    fn scan(&self, family: Family, start: &[u8], visit: Visit<'_>) -> Result<(), StoreError>;

    /// Applies `batch` atomically and durably (synced to disk where there is one).
    fn write(&self, batch: Batch) -> Result<(), StoreError>;

    /// Approximate size of what is stored, in bytes, for metrics.
    fn approximate_size(&self) -> u64;

    /// A frozen copy of what is stored now, for reading while this backend moves on (the
    /// state a node serves as a snapshot). RocksDB makes a checkpoint in `dir` (hard links to
    /// its table files; `dir` must not exist) and opens it read-only; the memory backend
    /// copies its maps and ignores `dir`.
    fn freeze(&self, dir: &Path) -> Result<Arc<dyn Backend>, StoreError>;

    /// The engine's figures, for metrics; a backend without an engine has its size alone.
    fn stats(&self) -> StoreStats {
        StoreStats {
            sst_bytes: self.approximate_size(),
            ..StoreStats::default()
        }
    }
}

/// What the storage engine reports of itself (RocksDB's properties, summed over families).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Bytes in table files on disk.
    pub sst_bytes: u64,
    /// Bytes in memtables.
    pub memtable_bytes: u64,
    /// Bytes compaction has still to rewrite (RocksDB's estimate).
    pub pending_compaction_bytes: u64,
    /// Whether writes are stopped (a write stall).
    pub write_stopped: bool,
    /// Bytes per second writes are slowed to, 0 when they are not.
    pub delayed_write_rate: u64,
    /// Compactions and flushes running now, plus, per family, one for a compaction and one
    /// for a flush waiting to run.
    pub background_jobs: u64,
}

/// The families in RocksDB, every write through the WAL and synced.
#[cfg(feature = "rocksdb")]
pub struct RocksBackend {
    db: DB,
}

/// RocksDB's block cache, shared by every family: decoded blocks of the tree, state,
/// history and holdings, with their index and filter blocks.
#[cfg(feature = "rocksdb")]
pub const BLOCK_CACHE_BYTES: usize = 256 << 20;
/// All families' memtables together (RocksDB flushes the largest when they reach it).
#[cfg(feature = "rocksdb")]
pub const WRITE_BUFFERS_BYTES: usize = 256 << 20;
/// One family's memtable.
#[cfg(feature = "rocksdb")]
pub const WRITE_BUFFER_BYTES: usize = 64 << 20;
/// Bloom filter bits per key: ~1% false positives, so a point read of a missing key (a new
/// stamp, a tx id never seen) almost never touches a data block.
#[cfg(feature = "rocksdb")]
pub const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// The share of the tx index's memtable given to a whole-key bloom filter (~8 bits a key at
/// ~100 bytes an entry, ~0.6 MB of a 64 MiB memtable): admission looks up every new
/// transaction's id, which no memtable holds, and the filter skips the skip list's search.
/// The tx index alone: on every family, the 10,000,000-stamp benchmark's ingest fell from
/// 11.7-12.4k to 9.4-10.3k transfers/s and its lookups' p50 rose by half (A/B, alternating).
#[cfg(feature = "rocksdb")]
pub const TX_INDEX_MEMTABLE_BLOOM_RATIO: f64 = 0.01;

/// The options of `family` (the tuning `ARCHITECTURE.md` "Storage" explains): one shared
/// block cache with the index and filter blocks in it, whole-key bloom filters in the
/// files (and the tx index's memtables), LZ4 blocks, dynamic level sizes.
#[cfg(feature = "rocksdb")]
fn family_options(cache: &Cache, family: Family) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut options = Options::default();
    options.set_block_based_table_factory(&table);
    options.set_compression_type(DBCompressionType::Lz4);
    options.set_write_buffer_size(WRITE_BUFFER_BYTES);
    if family == Family::TxIndex {
        options.set_memtable_prefix_bloom_ratio(TX_INDEX_MEMTABLE_BLOOM_RATIO);
        options.set_memtable_whole_key_filtering(true);
    }
    options.set_level_compaction_dynamic_level_bytes(true);
    options
}

#[cfg(feature = "rocksdb")]
impl RocksBackend {
    /// Opens (or creates) the database at `path` with every family.
    pub fn open(path: &Path) -> Result<RocksBackend, StoreError> {
        let mut options = Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_paranoid_checks(true);
        options.set_db_write_buffer_size(WRITE_BUFFERS_BYTES);
        options.set_max_background_jobs(2);
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let families = Family::ALL.iter().map(|family| {
            ColumnFamilyDescriptor::new(family.name(), family_options(&cache, *family))
        });
        let db = DB::open_cf_descriptors(&options, path, families)?;
        Ok(RocksBackend { db })
    }

    /// `batch` as RocksDB's write batch, its writes sorted (see [`Backend::write`]).
    fn rocks_batch(&self, batch: &Batch) -> WriteBatch {
        let handles = Family::ALL.map(|family| self.cf(family));
        // Sized once: grown by doubling, a block's batch of megabytes was reallocated and
        // copied ~20 times.
        let mut rocks = WriteBatch::with_capacity_bytes(batch.rocks_bytes());
        for (family, key, value) in batch.sorted_ops() {
            let cf = handles[family.index()];
            match value {
                Some(value) => rocks.put_cf(cf, key, value),
                None => rocks.delete_cf(cf, key),
            }
        }
        rocks
    }

    /// Opens the database at `path` for reading only (another process may hold it open for
    /// writing); it must hold every family.
    pub fn open_read_only(path: &Path) -> Result<RocksBackend, StoreError> {
        let mut options = Options::default();
        options.set_paranoid_checks(true);
        let names = Family::ALL.map(Family::name);
        let db = DB::open_cf_for_read_only(&options, path, names, false).map_err(|e| {
            StoreError::Db(format!(
                "cannot open {} read-only: {}",
                path.display(),
                e.into_string()
            ))
        })?;
        if let Some(missing) = names.iter().find(|name| db.cf_handle(name).is_none()) {
            return Err(StoreError::Corrupt(format!(
                "column family {missing} is missing"
            )));
        }
        Ok(RocksBackend { db })
    }

    fn cf(&self, family: Family) -> &ColumnFamily {
        // Every family is opened with the database, so the handle exists.
        match self.db.cf_handle(family.name()) {
            Some(cf) => cf,
            None => unreachable!(
                "column family {} is opened with the database",
                family.name()
            ),
        }
    }
}

#[cfg(feature = "rocksdb")]
impl Backend for RocksBackend {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(family), key)?)
    }

    fn scan(&self, family: Family, start: &[u8], visit: Visit<'_>) -> Result<(), StoreError> {
        let iter = self.db.iterator_cf(
            self.cf(family),
            rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward),
        );
        for item in iter {
            let (key, value) = item?;
            if !visit(&key, &value)? {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        // A memtable is a skip list that keeps the place of its last insert: keys in
        // ascending order are inserted next to it, random ones each search from the top
        // (most of a block's commit time when they came in the order execution wrote them).
        // Writes to different keys commute and the sort is stable, so every key still ends
        // with its last write of the batch.
        let mut options = WriteOptions::default();
        options.set_sync(true);
        self.db.write_opt(self.rocks_batch(&batch), &options)?;
        Ok(())
    }

    fn approximate_size(&self) -> u64 {
        self.sum_property("rocksdb.total-sst-files-size")
    }

    fn freeze(&self, dir: &Path) -> Result<Arc<dyn Backend>, StoreError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?
            .create_checkpoint(dir)
            .map_err(|e| {
                StoreError::Db(format!(
                    "cannot make a checkpoint in {}: {}",
                    dir.display(),
                    e.into_string()
                ))
            })?;
        Ok(Arc::new(RocksBackend::open_read_only(dir)?))
    }

    fn stats(&self) -> StoreStats {
        let db_wide = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        StoreStats {
            sst_bytes: self.sum_property("rocksdb.total-sst-files-size"),
            memtable_bytes: self.sum_property("rocksdb.cur-size-all-mem-tables"),
            pending_compaction_bytes: self
                .sum_property("rocksdb.estimate-pending-compaction-bytes"),
            write_stopped: db_wide("rocksdb.is-write-stopped") != 0,
            delayed_write_rate: db_wide("rocksdb.actual-delayed-write-rate"),
            background_jobs: db_wide("rocksdb.num-running-compactions")
                + db_wide("rocksdb.num-running-flushes")
                + self.sum_property("rocksdb.compaction-pending")
                + self.sum_property("rocksdb.mem-table-flush-pending"),
        }
    }
}

#[cfg(feature = "rocksdb")]
impl RocksBackend {
    /// An integer property summed over every family (0 where RocksDB has none).
    fn sum_property(&self, name: &str) -> u64 {
        Family::ALL
            .iter()
            .filter_map(|family| {
                self.db
                    .property_int_value_cf(self.cf(*family), name)
                    .ok()
                    .flatten()
            })
            .sum()
    }
}

type Families = [BTreeMap<Vec<u8>, Vec<u8>>; 9];

/// The families in ordered maps behind one lock: a batch is applied under the write lock,
/// so readers see whole batches only, as with RocksDB. Nothing here touches a disk or a
/// clock, so the simulator can run it.
#[derive(Default)]
pub struct MemoryBackend {
    families: RwLock<Families>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Families> {
        // A panic while holding the lock cannot leave a half-applied batch (the maps are
        // changed only after every op is collected), so a poisoned lock is still whole.
        self.families
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Backend for MemoryBackend {
    fn get(&self, family: Family, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read()[family.index()].get(key).cloned())
    }

    fn scan(&self, family: Family, start: &[u8], visit: Visit<'_>) -> Result<(), StoreError> {
        let families = self.read();
        let range =
            families[family.index()].range::<[u8], _>((Bound::Included(start), Bound::Unbounded));
        for (key, value) in range {
            if !visit(key, value)? {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let mut families = self
            .families
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (family, key, value) in batch.ops() {
            let map = &mut families[family.index()];
            match value {
                Some(value) => map.insert(key.to_vec(), value.to_vec()),
                None => map.remove(key),
            };
        }
        Ok(())
    }

    fn freeze(&self, _dir: &Path) -> Result<Arc<dyn Backend>, StoreError> {
        Ok(Arc::new(MemoryBackend {
            families: RwLock::new(self.read().clone()),
        }))
    }

    fn approximate_size(&self) -> u64 {
        self.read()
            .iter()
            .flat_map(|map| map.iter())
            .map(|(key, value)| (key.len() + value.len()) as u64)
            .sum()
    }
}

#[cfg(all(test, feature = "rocksdb"))]
mod tests {
    use super::*;

    /// Both backends answer the same gets and scans after the same batches.
    fn exercise(backend: &dyn Backend) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut batch = Batch::default();
        for key in [b"b".as_slice(), b"a", b"c", b"ab", b"d"] {
            batch.put(Family::History, key, [key[0]]);
        }
        batch.put(Family::Meta, b"a", b"meta");
        batch.delete(Family::History, b"d");
        // RocksDB's batch is sorted by key before it is written: each key must still end
        // with its last write, whatever came before it in the batch.
        batch.delete(Family::Tree, b"f");
        batch.put(Family::Tree, b"f", b"1");
        batch.put(Family::Tree, b"e", b"1");
        batch.put(Family::Tree, b"e", b"2");
        batch.put(Family::Tree, b"0", b"1");
        batch.delete(Family::Tree, b"0");
        backend.write(batch).unwrap();
        assert_eq!(
            backend.get(Family::Tree, b"f").unwrap(),
            Some(b"1".to_vec())
        );
        assert_eq!(
            backend.get(Family::Tree, b"e").unwrap(),
            Some(b"2".to_vec())
        );
        assert_eq!(backend.get(Family::Tree, b"0").unwrap(), None);
        assert_eq!(
            backend.get(Family::History, b"a").unwrap(),
            Some(b"a".to_vec())
        );
        assert_eq!(backend.get(Family::History, b"d").unwrap(), None);
        assert_eq!(backend.get(Family::Tree, b"a").unwrap(), None);
        let mut seen = Vec::new();
        backend
            .scan(Family::History, b"aa", &mut |key, value| {
                seen.push((key.to_vec(), value.to_vec()));
                Ok(seen.len() < 2)
            })
            .unwrap();
        seen
    }

    #[test]
    fn a_value_encoded_into_the_batch_is_its_canonical_encoding() {
        let value = (7u64, String::from("seven"));
        let mut direct = Batch::default();
        direct.put_encoded(Family::Meta, b"k", &value);
        direct.delete(Family::Meta, b"gone");
        let mut copied = Batch::default();
        copied.put(Family::Meta, b"k", codec::encode(&value));
        copied.delete(Family::Meta, b"gone");
        assert!(direct.ops().eq(copied.ops()));
        assert_eq!(direct.len(), 2);
    }

    #[test]
    fn the_rocksdb_batch_fits_the_size_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksBackend::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        // Lengths whose varints take 1, 2 and 3 bytes, deletes, and every family.
        for (n, family) in (0..300).zip(Family::ALL.iter().cycle()) {
            let key = vec![n as u8; n % 200];
            match n % 3 {
                0 => batch.put(*family, &key, vec![1u8; n * 97]),
                1 => batch.put(*family, &key, []),
                _ => batch.delete(*family, &key),
            }
        }
        let written = rocks.rocks_batch(&batch);
        assert_eq!(written.len(), batch.len());
        assert!(
            written.size_in_bytes() <= batch.rocks_bytes(),
            "{} > {}",
            written.size_in_bytes(),
            batch.rocks_bytes()
        );
    }

    #[test]
    fn memory_and_rocksdb_backends_agree() {
        let dir = tempfile::tempdir().unwrap();
        let rocks = RocksBackend::open(dir.path()).unwrap();
        let memory = MemoryBackend::new();
        let expected = vec![
            (b"ab".to_vec(), b"a".to_vec()),
            (b"b".to_vec(), b"b".to_vec()),
        ];
        assert_eq!(exercise(&rocks), expected);
        assert_eq!(exercise(&memory), expected);
        assert!(memory.approximate_size() > 0);
        // Written data sits in a memtable until flushed: RocksDB reports it; no stall.
        let stats = rocks.stats();
        assert!(stats.memtable_bytes > 0, "{stats:?}");
        assert!(!stats.write_stopped);
        assert_eq!(memory.stats().sst_bytes, memory.approximate_size());
    }
}
