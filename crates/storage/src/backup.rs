//! Online backup: a consistent copy of a node's store while the node runs and commits.
//!
//! The copy opens the live database read-only (RocksDB allows it beside the writer; the
//! writer's lock is not needed) and copies every family into a new database. A read-only
//! instance sees the store as of its opening, and every block is one atomic write batch,
//! so the copy holds a whole number of blocks: a ledger at one height, which the open-time
//! integrity check and the whole-ledger audit accept.

use std::path::Path;

use cachet_state::Tip;
use cachet_types::{Genesis, codec};

use crate::backend::{Backend, Batch, Family, RocksBackend};
use crate::{CF_META, META_GENESIS, META_TIP, StoreError};

/// Bytes of keys and values per write batch of the copy.
pub const BACKUP_BATCH_BYTES: usize = 16 << 20;

/// What a backup copied.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The chain's genesis, as the store records it.
    pub genesis: Genesis,
    /// The tip of the copy.
    pub tip: Tip,
    /// Entries copied.
    pub entries: u64,
    /// Bytes of keys and values copied.
    pub bytes: u64,
}

/// Copies the store at `source` (a node's `db` directory, possibly in use) into a new
/// database at `target`, which must not exist. `progress` is told the family being copied
/// and the bytes copied so far, after each batch.
pub fn backup(
    source: &Path,
    target: &Path,
    progress: &mut dyn FnMut(Family, u64),
) -> Result<BackupReport, StoreError> {
    if target.exists() {
        return Err(StoreError::Db(format!(
            "{} exists: a backup goes into a new directory",
            target.display()
        )));
    }
    let from = RocksBackend::open_read_only(source)?;
    let genesis: Genesis = match from.get(CF_META, META_GENESIS)? {
        Some(bytes) => codec::decode(&bytes, codec::MAX_DECODE_BYTES)
            .map_err(|e| StoreError::Corrupt(format!("genesis record: {e}")))?,
        None => return Err(StoreError::Corrupt("no genesis recorded".into())),
    };
    let tip: Tip = match from.get(CF_META, META_TIP)? {
        Some(bytes) => codec::decode(&bytes, 1024)
            .map_err(|e| StoreError::Corrupt(format!("tip record: {e}")))?,
        None => return Err(StoreError::Corrupt("no tip recorded".into())),
    };
    let to = RocksBackend::open(target)?;
    let (mut entries, mut bytes) = (0u64, 0u64);
    for family in Family::ALL {
        let mut batch = Batch::default();
        let mut batch_bytes = 0usize;
        let mut failed = None;
        from.scan(family, &[], &mut |key, value| {
            batch.put(family, key, value);
            batch_bytes += key.len() + value.len();
            entries += 1;
            if batch_bytes >= BACKUP_BATCH_BYTES {
                if let Err(error) = to.write(std::mem::take(&mut batch)) {
                    failed = Some(error);
                    return Ok(false);
                }
                bytes += batch_bytes as u64;
                batch_bytes = 0;
                progress(family, bytes);
            }
            Ok(true)
        })?;
        if let Some(error) = failed {
            return Err(error);
        }
        to.write(batch)?;
        bytes += batch_bytes as u64;
        progress(family, bytes);
    }
    Ok(BackupReport {
        genesis,
        tip,
        entries,
        bytes,
    })
}
