//! Committing behind execution: a block's write to the backend runs on its own thread while
//! the caller executes the next block against the state *ahead* of the store (the store plus
//! the block being written).
//!
//! At most one block is in flight: [`Store::commit_behind`] first waits for the one before.
//! Everything that reads the store the usual way sees the written state only (the block in
//! flight appears when its one atomic batch lands, as with [`Store::commit`]); only an
//! [`Ahead`] view, which the [`crate::Ledger`] executes on, sees the block in flight. A failed
//! background write is fatal and sticky: every later commit and [`Store::settle`] returns it.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cachet_state::smt::{Child, NodeKey, Page, PageSource, PageWrites};
use cachet_state::{NewLeaves, StateChanges, StateError, StateKey, StateValue, StateView};
use cachet_types::CertifiedBlock;

use crate::{Backend, NodeMap, Store, StoreError, Tip, TreeCache, block_batch, cache_tree_writes};

/// A block whose write is in flight, as reads ahead of the store see it.
pub(crate) struct Pending {
    tip: Tip,
    certified: CertifiedBlock,
    changes: StateChanges,
    tree_writes: PageWrites,
    new_leaves: NewLeaves,
    /// `tree_writes` by key.
    pages: NodeMap<Arc<Page>>,
}

/// The write in flight, if any.
#[derive(Default)]
pub(crate) struct Writing {
    pending: Option<Arc<Pending>>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    /// Why a background write failed: the store takes no more commits.
    failed: Option<String>,
}

fn write(db: &dyn Backend, cache: &Mutex<TreeCache>, pending: &Pending) -> Result<(), StoreError> {
    db.write(block_batch(
        &pending.certified,
        &pending.changes,
        &pending.tree_writes,
        &pending.new_leaves,
        &pending.tip,
    ))?;
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache_tree_writes(&mut cache, &pending.tree_writes);
    Ok(())
}

impl Store {
    fn writing(&self) -> std::sync::MutexGuard<'_, Writing> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Like [`Store::commit`], but the write runs on its own thread: this returns the new tip
    /// once the block in flight before it (if any) is written and this one's write has
    /// started. Until [`Store::settle`], only an [`Ahead`] view sees it.
    pub fn commit_behind(
        &self,
        certified: CertifiedBlock,
        changes: StateChanges,
        tree_writes: PageWrites,
        new_leaves: NewLeaves,
        new_root: Child,
    ) -> Result<Tip, StoreError> {
        self.settle()?;
        let tip = self.next_tip(&certified, new_root)?;
        let pages = tree_writes.iter().cloned().collect();
        let pending = Arc::new(Pending {
            tip,
            certified,
            changes,
            tree_writes,
            new_leaves,
            pages,
        });
        let db = Arc::clone(&self.db);
        let cache = Arc::clone(&self.tree_cache);
        let written = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("cachet-commit".into())
            .spawn(move || write(db.as_ref(), &cache, &written))
            .map_err(|e| StoreError::Db(format!("cannot start the commit thread: {e}")))?;
        let mut writing = self.writing();
        writing.pending = Some(pending);
        writing.thread = Some(thread);
        Ok(tip)
    }

    /// Waits until the block in flight (if any) is written. A failed write is returned here
    /// and by every later commit: the store cannot go on without it.
    pub fn settle(&self) -> Result<(), StoreError> {
        let mut writing = self.writing();
        if let Some(thread) = writing.thread.take() {
            let result = thread
                .join()
                .unwrap_or_else(|_| Err(StoreError::Db("the commit thread panicked".into())));
            if let Err(error) = result {
                writing.failed = Some(error.to_string());
            }
        }
        writing.pending = None;
        match &writing.failed {
            Some(reason) => Err(StoreError::Db(format!(
                "a block's write failed, the store takes no more: {reason}"
            ))),
            None => Ok(()),
        }
    }

    /// The state ahead of the store: the store plus the block in flight, if any.
    pub fn ahead(&self) -> Ahead<'_> {
        Ahead {
            store: self,
            pending: self.writing().pending.clone(),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The block in flight is final: it must land before the store goes.
        if let Err(error) = self.settle() {
            tracing::error!(%error, "the last block's write failed as the store closed");
        }
    }
}

/// The store as the next block executes on it: the written state plus the block being
/// written ([`Store::commit_behind`]). Fixed at creation: a later commit is not seen.
pub struct Ahead<'a> {
    store: &'a Store,
    pending: Option<Arc<Pending>>,
}

impl Ahead<'_> {
    /// The tip the next block extends.
    pub fn tip(&self) -> Result<Tip, StoreError> {
        match &self.pending {
            Some(pending) => Ok(pending.tip),
            None => self.store.tip(),
        }
    }

    /// The operators of the block at `height` (see [`Store::operators_at`]).
    pub fn operators_at(&self, height: u64) -> Result<Vec<cachet_types::Operator>, StoreError> {
        Ok(cachet_state::operators_at(
            self,
            self.store.genesis(),
            height,
        )?)
    }
}

impl StateView for Ahead<'_> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        if let Some(value) = self
            .pending
            .as_ref()
            .and_then(|pending| pending.changes.writes.get(key))
        {
            return Ok(Some(value.clone()));
        }
        StateView::get(self.store, key)
    }
}

impl PageSource for Ahead<'_> {
    fn page(&self, key: &NodeKey) -> Result<Option<Arc<Page>>, StateError> {
        if let Some(page) = self
            .pending
            .as_ref()
            .and_then(|pending| pending.pages.get(key))
        {
            // The block in flight's own tree writes.
            return Ok(Some(Arc::clone(page)));
        }
        self.store.page(key)
    }
}
