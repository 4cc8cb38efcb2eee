//! State sync at the store: a snapshot of a certified height, its chunks checked against the
//! header's state root and imported into an empty store that then follows the chain, every
//! bad manifest or chunk refused by name, an interrupted import resumed, and the backfill
//! that gives the synced store the history behind full provenance.

use std::sync::Arc;

use cachet_state::StateKey;
use cachet_storage::snapshot::{Backfill, ImportError, SnapshotChunk, SnapshotError};
use cachet_storage::{Backend, Family, Ledger, MemoryBackend, Store, StoreError};
use cachet_testkit::{TestChain, TestLedger, TxFactory, address, issue_id, issue_record, stamp};
use cachet_types::{CertifiedBlock, Hash, SignedTx, TxBody};

const ISSUE: &str = "AT-2026-001";
const OWNERS: [&str; 4] = ["alice", "bob", "carol", "dave"];

/// A four-validator chain: an issue, 400 stamps minted to four owners over four blocks,
/// then `transfers` blocks that each move a few of alice's stamps to bob.
struct Source {
    chain: TestChain,
    ledger: TestLedger,
    factory: TxFactory,
}

impl Source {
    fn new(transfers: u32) -> Source {
        let chain = TestChain::new(4);
        let mut source = Source {
            ledger: TestLedger::new(&chain),
            factory: TxFactory::new(chain.chain_id),
            chain,
        };
        let op = source.chain.issuer(0).clone();
        let create = source.factory.sign(
            &op,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 1000),
            },
        );
        source.commit(&[create]);
        for (i, owner) in OWNERS.iter().enumerate() {
            let first = i as u32 * 100 + 1;
            let mint = source.factory.sign(
                &op,
                TxBody::Mint {
                    issue: issue_id(ISSUE),
                    first_serial: first,
                    last_serial: first + 99,
                    owner: address(owner),
                    variant: None,
                    claim_keys: Vec::new(),
                },
            );
            source.commit(&[mint]);
        }
        for round in 0..transfers {
            let txs: Vec<SignedTx> = (0..3).map(|k| source.transfer(round * 3 + k + 1)).collect();
            source.commit(&txs);
        }
        source
    }

    fn commit(&mut self, txs: &[SignedTx]) {
        for outcome in self.ledger.apply_block(txs) {
            outcome.unwrap();
        }
    }

    fn transfer(&mut self, serial: u32) -> SignedTx {
        let record = self.ledger.stamp(&stamp(ISSUE, serial)).unwrap();
        self.factory.sign(
            &cachet_testkit::key("alice"),
            TxBody::Transfer {
                stamp: stamp(ISSUE, serial),
                last_event: record.last_event,
                to: address("bob"),
            },
        )
    }

    fn store(&self) -> &Store {
        self.ledger.ledger().store()
    }

    fn block(&self, height: u64) -> CertifiedBlock {
        self.store().block(height).unwrap().unwrap()
    }
}

/// Imports the source's state at its tip, split at `depth`, into a new memory store.
fn import(source: &Store, depth: u8, genesis: &cachet_types::Genesis) -> Store {
    let manifest = source.snapshot_manifest_split(depth).unwrap();
    let target = Store::in_memory(genesis);
    let block = source.block(manifest.height).unwrap().unwrap();
    target.begin_import(&block, &manifest).unwrap();
    for index in manifest.non_empty() {
        target
            .import_chunk(source.snapshot_chunk(manifest.depth, index).unwrap())
            .unwrap();
    }
    target.finish_import().unwrap();
    target
}

fn holdings(store: &Store, owner: &str) -> Vec<cachet_types::StampId> {
    store.holdings(&address(owner), None, 1000).unwrap()
}

#[test]
fn a_snapshot_imports_into_an_empty_store_which_then_follows_the_chain() {
    let mut source = Source::new(6);
    let tip = source.store().tip().unwrap();
    for depth in [0u8, 3, 6] {
        let target = import(source.store(), depth, &source.chain.genesis);
        assert_eq!(target.tip().unwrap(), tip, "depth {depth}");
        assert_eq!(target.base().unwrap(), Some(tip.height));
        assert_eq!(
            target.state_entries().unwrap(),
            source.store().state_entries().unwrap()
        );
        for owner in OWNERS {
            assert_eq!(holdings(&target, owner), holdings(source.store(), owner));
        }
        for serial in [1, 18, 19, 250, 400] {
            let key = StateKey::Stamp(stamp(ISSUE, serial));
            assert_eq!(
                target.state(&key).unwrap(),
                source.store().state(&key).unwrap()
            );
        }
        assert_eq!(
            target.membership().unwrap(),
            source.store().membership().unwrap()
        );
    }

    // The imported tree is whole: the next blocks execute and commit on it to the same root.
    let target = Ledger::new(import(source.store(), 4, &source.chain.genesis));
    for round in 6..9 {
        let txs: Vec<SignedTx> = (0..3).map(|k| source.transfer(round * 3 + k + 1)).collect();
        source.commit(&txs);
        let height = source.ledger.height();
        target.commit_certified(&source.block(height)).unwrap();
        assert_eq!(
            target.store().tip().unwrap(),
            source.store().tip().unwrap(),
            "height {height}"
        );
    }
    assert_eq!(
        holdings(target.store(), "bob"),
        holdings(source.store(), "bob")
    );
}

#[test]
fn a_bad_manifest_or_chunk_is_refused_by_name() {
    let source = Source::new(4);
    let store = source.store();
    let tip = store.tip().unwrap();
    let block = store.block(tip.height).unwrap().unwrap();
    let header = &block.block.header;
    let manifest = store.snapshot_manifest_split(4).unwrap();
    manifest.verify(header).unwrap();

    let refused = |m: &cachet_storage::snapshot::SnapshotManifest| m.verify(header).unwrap_err();
    let mut other = manifest.clone();
    other.block_hash = Hash::sha256(b"another block");
    assert!(matches!(refused(&other), SnapshotError::WrongBlock { .. }));
    let mut other = manifest.clone();
    other.summaries.pop();
    assert!(matches!(refused(&other), SnapshotError::Shape { .. }));
    let mut other = manifest.clone();
    other.depth = 17;
    assert!(matches!(refused(&other), SnapshotError::Shape { .. }));
    // A split between the state tree's page boundaries (a multiple of 4), though its
    // summaries number 2^depth.
    let mut other = manifest.clone();
    other.depth = 3;
    other.summaries.truncate(8);
    assert!(matches!(refused(&other), SnapshotError::Shape { .. }));
    let mut other = manifest.clone();
    let busy = other.non_empty().next().unwrap() as usize;
    other.summaries[busy] = cachet_state::smt::Child::Node(Hash::sha256(b"forged"));
    assert_eq!(refused(&other), SnapshotError::Root);
    // A one-leaf state: the leaf's summary moved to another subtree joins to the same root
    // (a lone leaf collapses upward), so its position is checked on its own.
    let single = cachet_state::smt::Child::Leaf {
        key: Hash::sha256(b"k"),
        value: Hash::sha256(b"v"),
    };
    let own = cachet_state::smt::subtree_index(&Hash::sha256(b"k"), 4) as usize;
    let elsewhere = (own + 1) % 16;
    let mut lone = cachet_storage::snapshot::SnapshotManifest {
        height: header.height,
        block_hash: header.hash(),
        depth: 4,
        summaries: vec![cachet_state::smt::Child::Empty; 16],
    };
    lone.summaries[elsewhere] = single;
    let mut lone_header = header.clone();
    lone_header.state_root = single.hash();
    lone.block_hash = lone_header.hash();
    assert_eq!(
        lone.verify(&lone_header),
        Err(SnapshotError::Misplaced {
            index: elsewhere as u32
        })
    );

    let chunk = store.snapshot_chunk(4, busy as u32).unwrap();
    assert!(chunk.entries.len() >= 3, "a chunk with several entries");
    chunk.clone().verify(&manifest).unwrap();
    let check = |c: SnapshotChunk| c.verify(&manifest).err().expect("refused");
    let index = busy as u32;

    let mut altered = chunk.clone();
    if let cachet_state::StateValue::Stamp(s) = &mut altered.entries[0].1 {
        s.owner = Some(address("mallory"));
    } else {
        altered.entries[0].1 = cachet_state::StateValue::Membership(Default::default());
    }
    assert_eq!(check(altered), SnapshotError::Mismatch { index });
    let mut short = chunk.clone();
    short.entries.pop();
    assert_eq!(check(short), SnapshotError::Mismatch { index });
    let mut swapped = chunk.clone();
    swapped.entries.swap(0, 1);
    assert_eq!(check(swapped), SnapshotError::Order { index, position: 1 });
    let mut twice = chunk.clone();
    twice.entries.insert(1, chunk.entries[0].clone());
    assert_eq!(check(twice), SnapshotError::Order { index, position: 1 });
    let foreign_index = manifest.non_empty().find(|i| *i != index).unwrap();
    let foreign = store.snapshot_chunk(4, foreign_index).unwrap();
    let mut mixed = chunk.clone();
    mixed.entries.push(foreign.entries[0].clone());
    assert!(matches!(check(mixed), SnapshotError::Order { .. }));
    let mut relabelled = foreign.clone();
    relabelled.index = index;
    assert_eq!(
        check(relabelled),
        SnapshotError::Order { index, position: 0 }
    );
    let mut beyond = chunk.clone();
    beyond.index = 16;
    assert!(matches!(check(beyond), SnapshotError::NotInManifest { .. }));
    let mut stale = chunk.clone();
    stale.height -= 1;
    assert!(matches!(check(stale), SnapshotError::NotInManifest { .. }));

    // The store refuses the same way, and keeps nothing of a refused chunk.
    let target = Store::in_memory(&source.chain.genesis);
    target.begin_import(&block, &manifest).unwrap();
    let mut altered = chunk.clone();
    altered.entries.pop();
    assert!(matches!(
        target.import_chunk(altered),
        Err(ImportError::Refused(SnapshotError::Mismatch { .. }))
    ));
    let (_, missing) = target.import_progress().unwrap().unwrap();
    assert!(missing.contains(&index));
    assert!(matches!(
        target.begin_import(&block, &manifest),
        Err(ImportError::State(_))
    ));
    // A manifest of another block than the certified one is refused at the start.
    let other_target = Store::in_memory(&source.chain.genesis);
    let older = store.block(tip.height - 1).unwrap().unwrap();
    assert!(matches!(
        other_target.begin_import(&older, &manifest),
        Err(ImportError::Refused(SnapshotError::WrongBlock { .. }))
    ));
}

#[test]
fn an_interrupted_import_opens_only_to_go_on_and_then_finishes() {
    let source = Source::new(3);
    let store = source.store();
    let manifest = store.snapshot_manifest_split(5).unwrap();
    let block = store.block(manifest.height).unwrap().unwrap();
    let disk: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let genesis = &source.chain.genesis;
    let chunks: Vec<u32> = manifest.non_empty().collect();
    {
        let target = Store::with_backend(disk.clone(), genesis).unwrap();
        target.begin_import(&block, &manifest).unwrap();
        for index in &chunks[..chunks.len() / 2] {
            target
                .import_chunk(store.snapshot_chunk(manifest.depth, *index).unwrap())
                .unwrap();
        }
        assert!(matches!(target.finish_import(), Err(ImportError::State(_))));
    }
    // "Restart": a plain open refuses the half-imported store with what to do.
    match Store::with_backend(disk.clone(), genesis) {
        Err(StoreError::ImportUnfinished { height }) => assert_eq!(height, manifest.height),
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a half-imported store opened"),
    }
    let target = Store::with_backend_importing(disk.clone(), genesis).unwrap();
    let (record, missing) = target.import_progress().unwrap().unwrap();
    assert_eq!(record.manifest, manifest);
    assert_eq!(missing, chunks[chunks.len() / 2..].to_vec());
    for index in missing {
        target
            .import_chunk(store.snapshot_chunk(manifest.depth, index).unwrap())
            .unwrap();
    }
    target.finish_import().unwrap();
    drop(target);
    let reopened = Store::with_backend(disk, genesis).unwrap();
    assert_eq!(reopened.tip().unwrap(), store.tip().unwrap());
    assert!(reopened.import_progress().unwrap().is_none());
}

#[test]
fn the_backfill_replays_the_blocks_below_the_snapshot_and_then_provenance_verifies() {
    let source = Source::new(5);
    let genesis = &source.chain.genesis;
    let target = import(source.store(), 3, genesis);
    let base = target.base().unwrap().unwrap();
    let alices = stamp(ISSUE, 2);
    match target.provenance(&alices) {
        Err(StoreError::Backfilling { base: b }) => assert_eq!(b, base),
        other => panic!("a bundle before the backfill: {other:?}"),
    }
    assert!(target.history(&alices, None, 10).unwrap().is_empty());
    assert!(target.block(1).unwrap().is_none());

    let backfill = Backfill::new(&target, Store::in_memory(genesis)).unwrap();
    // Blocks come in order: a gap is refused.
    assert!(backfill.apply(&target, &source.block(2)).is_err());
    // A forged block is refused by its certificate and leaves nothing behind.
    let mut forged = source.block(1);
    forged.block.header.time_ms += 1;
    assert!(backfill.apply(&target, &forged).is_err());
    assert!(target.block(1).unwrap().is_none());
    loop {
        let height = backfill.next_height().unwrap();
        let progress = backfill.apply(&target, &source.block(height)).unwrap();
        if progress.done() {
            break;
        }
    }
    assert_eq!(target.base().unwrap(), None);
    for serial in [1, 2, 150, 399] {
        let id = stamp(ISSUE, serial);
        assert_eq!(
            target.history(&id, None, 100).unwrap(),
            source.store().history(&id, None, 100).unwrap()
        );
    }
    let bundle = target.provenance(&alices).unwrap().unwrap();
    assert_eq!(bundle, source.store().provenance(&alices).unwrap().unwrap());
    cachet_provenance::verify(&bundle, genesis).unwrap();
    assert!(target.supply_proof(&issue_id(ISSUE)).unwrap().is_some());
    // A backfill of a whole store is refused.
    assert!(matches!(
        Backfill::new(&target, Store::in_memory(genesis)),
        Err(ImportError::State(_))
    ));
}

#[test]
fn a_store_made_before_the_tree_key_index_is_indexed_on_open() {
    let source = Source::new(2);
    let genesis = &source.chain.genesis;
    let disk: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let ledger = Ledger::new(Store::with_backend(disk.clone(), genesis).unwrap());
    for height in 1..=source.ledger.height() {
        ledger.commit_certified(&source.block(height)).unwrap();
    }
    let entries = ledger.store().state_entries().unwrap();
    assert!(entries > 400);
    // Take the index away, as a store of an earlier version lacks it.
    let mut batch = cachet_storage::Batch::default();
    disk.scan(Family::Leaves, &[], &mut |key, _| {
        batch.delete(Family::Leaves, key);
        Ok(true)
    })
    .unwrap();
    batch.delete(Family::Meta, b"leaves-indexed");
    disk.write(batch).unwrap();
    drop(ledger);
    assert_eq!(
        Store::with_backend(disk.clone(), genesis)
            .unwrap()
            .state_entries()
            .unwrap(),
        entries
    );
    let reopened = Store::with_backend(disk, genesis).unwrap();
    assert_eq!(
        reopened.snapshot_manifest_split(3).unwrap(),
        source.store().snapshot_manifest_split(3).unwrap()
    );
}

#[test]
fn an_index_of_more_keys_than_one_run_is_written_run_by_run() {
    // The memory backend holds its lock while it scans: an index written from inside the
    // scan would wait for itself. More keys than one run, and the mark taken away.
    leaves_indexed_on_open(|_| cachet_storage::LEAF_INDEX_RUN * 2 + 7);
}

#[test]
fn an_index_of_an_exact_multiple_of_the_run_ends_with_the_mark_alone() {
    // The last run is full: the scan after it finds nothing and writes the mark alone.
    leaves_indexed_on_open(|genesis_keys| cachet_storage::LEAF_INDEX_RUN * 2 - genesis_keys);
}

/// Opens a memory store whose tree-key index is missing, with `added(genesis keys)` state
/// keys besides the genesis', and checks that every state key is indexed once, and marked.
fn leaves_indexed_on_open(added: impl Fn(usize) -> usize) {
    let chain = TestChain::new(2);
    let disk: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    drop(Store::with_backend(disk.clone(), &chain.genesis).unwrap());
    let mut genesis_keys = 0;
    disk.scan(Family::State, &[], &mut |_, _| {
        genesis_keys += 1;
        Ok(true)
    })
    .unwrap();
    let keys: Vec<StateKey> = (0..added(genesis_keys))
        .map(|n| StateKey::Account(cachet_testkit::key(&format!("holder-{n}")).public_key()))
        .collect();
    let mut batch = cachet_storage::Batch::default();
    for key in &keys {
        batch.put(Family::State, cachet_types::codec::encode(key), b"v");
    }
    batch.delete(Family::Meta, b"leaves-indexed");
    disk.write(batch).unwrap();
    let (done, opened) = std::sync::mpsc::channel();
    let (backend, genesis) = (disk.clone(), chain.genesis.clone());
    std::thread::spawn(move || done.send(Store::with_backend(backend, &genesis).map(drop)));
    opened
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the store opens within 60 s (the index is not written inside its scan)")
        .unwrap();
    let mut indexed = 0;
    disk.scan(Family::Leaves, &[], &mut |tree_key, state_key| {
        let key: StateKey = cachet_types::codec::decode(state_key, 1024).unwrap();
        assert_eq!(key.tree_key().as_bytes(), tree_key);
        indexed += 1;
        Ok(true)
    })
    .unwrap();
    assert_eq!(
        indexed,
        genesis_keys + keys.len(),
        "every state key indexed once"
    );
    assert!(disk.get(Family::Meta, b"leaves-indexed").unwrap().is_some());
}

#[test]
fn on_rocksdb_a_frozen_copy_stays_at_its_height_and_imports_survive_reopen() {
    let mut source = Source::new(2);
    let dir = tempfile::tempdir().unwrap();
    // The source on disk: its blocks replayed into RocksDB.
    let disk = Ledger::new(Store::open(&dir.path().join("db"), &source.chain.genesis).unwrap());
    for height in 1..=source.ledger.height() {
        disk.commit_certified(&source.block(height)).unwrap();
    }
    let frozen = disk.store().freeze(&dir.path().join("frozen")).unwrap();
    let frozen_tip = frozen.tip().unwrap();
    // The live store moves on; the frozen copy does not.
    let txs: Vec<SignedTx> = (0..3).map(|k| source.transfer(20 + k)).collect();
    source.commit(&txs);
    disk.commit_certified(&source.block(source.ledger.height()))
        .unwrap();
    assert_eq!(frozen.tip().unwrap(), frozen_tip);
    assert_ne!(disk.store().tip().unwrap(), frozen_tip);

    let manifest = frozen.snapshot_manifest().unwrap();
    assert_eq!(manifest.depth, 0, "a small state is one chunk");
    let target_path = dir.path().join("target");
    {
        let target = Store::open(&target_path, &source.chain.genesis).unwrap();
        let block = frozen.block(manifest.height).unwrap().unwrap();
        target.begin_import(&block, &manifest).unwrap();
        for index in manifest.non_empty() {
            target
                .import_chunk(frozen.snapshot_chunk(manifest.depth, index).unwrap())
                .unwrap();
        }
        target.finish_import().unwrap();
    }
    let target = Ledger::new(Store::open(&target_path, &source.chain.genesis).unwrap());
    assert_eq!(target.store().tip().unwrap(), frozen_tip);
    assert_eq!(target.store().base().unwrap(), Some(frozen_tip.height));
    // It follows from the snapshot.
    target
        .commit_certified(&source.block(source.ledger.height()))
        .unwrap();
    assert_eq!(target.store().tip().unwrap(), disk.store().tip().unwrap());
}

#[test]
fn an_abandoned_import_leaves_nothing_behind_and_a_newer_snapshot_imports() {
    let mut source = Source::new(2);
    let genesis = source.chain.genesis.clone();
    let old = source
        .store()
        .freeze(std::path::Path::new("unused"))
        .unwrap();
    for round in 2..5 {
        let txs: Vec<SignedTx> = (0..3).map(|k| source.transfer(round * 3 + k + 1)).collect();
        source.commit(&txs);
    }
    let target = Store::in_memory(&genesis);
    let old_manifest = old.snapshot_manifest_split(4).unwrap();
    let old_block = old.block(old_manifest.height).unwrap().unwrap();
    target.begin_import(&old_block, &old_manifest).unwrap();
    for index in old_manifest.non_empty().take(5) {
        target
            .import_chunk(old.snapshot_chunk(4, index).unwrap())
            .unwrap();
    }
    assert!(target.state_entries().unwrap() > 0);
    target.abandon_import().unwrap();
    assert_eq!(target.state_entries().unwrap(), 0);
    assert!(target.import_progress().unwrap().is_none());
    assert!(holdings(&target, "alice").is_empty());
    // Nothing to abandon now.
    assert!(matches!(
        target.abandon_import(),
        Err(ImportError::State(_))
    ));

    let manifest = source.store().snapshot_manifest_split(4).unwrap();
    let block = source.store().block(manifest.height).unwrap().unwrap();
    target.begin_import(&block, &manifest).unwrap();
    for index in manifest.non_empty() {
        target
            .import_chunk(source.store().snapshot_chunk(4, index).unwrap())
            .unwrap();
    }
    target.finish_import().unwrap();
    assert_eq!(target.tip().unwrap(), source.store().tip().unwrap());
    for owner in OWNERS {
        assert_eq!(holdings(&target, owner), holdings(source.store(), owner));
    }
}
