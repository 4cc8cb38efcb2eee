//! The ledger on real RocksDB: commit, reopen, queries, the sync path, and corruption.

use cachet_state::{BlockRefusal, StateKey, StateValue};
use cachet_storage::{Ledger, LedgerError, Store, StoreError};
use cachet_testkit::{TestChain, TxFactory, address, issue_record, key, stamp};
use cachet_types::{CertifiedBlock, CommitCertificate, Hash, SignedTx, TxBody, VerifiedTx};

const ISSUE: &str = "AT-2026-001";

fn verified(txs: Vec<SignedTx>) -> Vec<VerifiedTx> {
    txs.into_iter().map(VerifiedTx::new_unchecked).collect()
}

/// Builds, certifies (single validator) and commits one block.
fn produce(ledger: &Ledger, chain: &TestChain, txs: Vec<SignedTx>, time_ms: u64) -> CertifiedBlock {
    let proposal = ledger.build(verified(txs), time_ms, 0).unwrap();
    assert!(proposal.rejected.is_empty(), "{:?}", proposal.rejected);
    let cert = CommitCertificate::sign(&proposal.block.header, 0, &[(0, chain.validator(0))]);
    ledger.commit_proposal(proposal, cert).unwrap().1
}

fn setup_blocks(chain: &TestChain) -> Vec<Vec<SignedTx>> {
    let mut f = TxFactory::new(chain.chain_id);
    let op = chain.issuer(0);
    let mint = |first, last, to: &str| TxBody::Mint {
        issue: cachet_testkit::issue_id(ISSUE),
        first_serial: first,
        last_serial: last,
        owner: address(to),
        variant: None,
        claim_keys: Vec::new(),
    };
    let b1 = vec![
        f.sign(
            op,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 500),
            },
        ),
        f.sign(op, mint(1, 250, "alice")),
    ];
    // Block 2: alice sends #42 to bob; the first mint's event is the last event.
    let mint_tx_id = b1[1].id();
    let ev = cachet_state::event_hash(&stamp(ISSUE, 42), &Hash::ZERO, &mint_tx_id);
    let b2 = vec![f.sign(
        &key("alice"),
        TxBody::Transfer {
            stamp: stamp(ISSUE, 42),
            last_event: ev,
            to: address("bob"),
        },
    )];
    vec![b1, b2]
}

#[test]
fn blocks_commit_survive_reopen_and_answer_queries() {
    let dir = tempfile::tempdir().unwrap();
    let chain = TestChain::new(1);
    let blocks = setup_blocks(&chain);
    let root_before;
    {
        let ledger = Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap());
        for (i, txs) in blocks.iter().enumerate() {
            produce(
                &ledger,
                &chain,
                txs.clone(),
                chain.genesis.genesis_time_ms + 1000 * (i as u64 + 1),
            );
        }
        root_before = ledger.store().tip().unwrap().state_root.hash();
    }
    let store = Store::open(dir.path(), &chain.genesis).unwrap();
    let tip = store.tip().unwrap();
    assert_eq!(tip.height, 2);
    assert_eq!(tip.state_root.hash(), root_before);

    // Transaction index.
    let transfer_id = blocks[1][0].id();
    let loc = store.tx_location(&transfer_id).unwrap().unwrap();
    assert_eq!((loc.height, loc.index), (2, 0));
    assert_eq!(store.block_height(&tip.block_hash).unwrap(), Some(2));

    // History of #42: mint then transfer.
    let history = store.history(&stamp(ISSUE, 42), None, 10).unwrap();
    assert_eq!(history.len(), 2);
    assert!(matches!(
        history[0].kind,
        cachet_state::EventKind::Minted { .. }
    ));
    assert!(matches!(
        history[1].kind,
        cachet_state::EventKind::Transferred { .. }
    ));
    assert_eq!(history[1].height, 2);
    assert_eq!(
        store.history(&stamp(ISSUE, 42), Some(0), 10).unwrap().len(),
        1
    );
    assert!(
        store
            .history(&stamp(ISSUE, 43), Some(0), 10)
            .unwrap()
            .is_empty()
    );
    // A stamp id that is a prefix of another does not leak into its history.
    assert_eq!(store.history(&stamp(ISSUE, 4), None, 10).unwrap().len(), 1);

    // Holdings page through alice's 249 stamps without gaps or repeats.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .holdings(&address("alice"), after.as_ref(), 100)
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        seen.extend(page);
    }
    assert_eq!(seen.len(), 249);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 249);
    assert!(!seen.contains(&stamp(ISSUE, 42)));
    assert_eq!(
        store.holdings(&address("bob"), None, 10).unwrap(),
        vec![stamp(ISSUE, 42)]
    );

    // An issue's stamps page in serial order, without gaps or repeats, and stop at the
    // issue's last key (no other issue's or kind's keys leak in).
    let mut serials = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .issue_stamps(&cachet_testkit::issue_id(ISSUE), after, 64)
            .unwrap();
        let Some((last, _)) = page.last() else { break };
        after = Some(last.serial);
        serials.extend(page.iter().map(|(id, _)| id.serial));
    }
    assert_eq!(serials, (1..=250).collect::<Vec<u32>>());
    let page = store
        .issue_stamps(&cachet_testkit::issue_id(ISSUE), Some(41), 1)
        .unwrap();
    assert_eq!(page[0].0, stamp(ISSUE, 42));
    assert_eq!(page[0].1.owner, Some(address("bob")));
    assert!(
        store
            .issue_stamps(&cachet_testkit::issue_id(ISSUE), Some(u32::MAX), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .issue_stamps(&cachet_testkit::issue_id("XX-2026-999"), None, 10)
            .unwrap()
            .is_empty()
    );

    // The state proof of a stamp checks against the tip's root.
    let key = StateKey::Stamp(stamp(ISSUE, 42));
    let value = store.state(&key).unwrap().unwrap();
    let (tip, proof) = store.prove(&key).unwrap();
    assert!(cachet_state::smt::verify(
        &tip.state_root.hash(),
        &key.tree_key(),
        Some(&value.tree_value()),
        &proof
    ));
    assert!(matches!(value, StateValue::Stamp(s) if s.owner == Some(address("bob"))));
}

#[test]
fn a_follower_replays_certified_blocks_to_the_same_state() {
    let chain = TestChain::new(1);
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Ledger::new(Store::open(dir_a.path(), &chain.genesis).unwrap());
    let b = Ledger::new(Store::open(dir_b.path(), &chain.genesis).unwrap());
    for (i, txs) in setup_blocks(&chain).into_iter().enumerate() {
        let block = produce(
            &a,
            &chain,
            txs,
            chain.genesis.genesis_time_ms + 1 + i as u64,
        );
        // Out of order is refused; in order is applied.
        b.commit_certified(&block).unwrap();
        assert!(matches!(
            b.commit_certified(&block),
            Err(LedgerError::Refused {
                refusal: BlockRefusal::NotNext { .. },
                ..
            })
        ));
    }
    assert_eq!(a.store().tip().unwrap(), b.store().tip().unwrap());
}

#[test]
fn uncertified_or_altered_blocks_are_refused() {
    let chain = TestChain::new(1);
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Ledger::new(Store::open(dir_a.path(), &chain.genesis).unwrap());
    let b = Ledger::new(Store::open(dir_b.path(), &chain.genesis).unwrap());
    let block = produce(
        &a,
        &chain,
        setup_blocks(&chain).remove(0),
        chain.genesis.genesis_time_ms + 5,
    );

    let mut unsigned = block.clone();
    unsigned.certificate.signatures.clear();
    assert!(matches!(
        b.commit_certified(&unsigned),
        Err(LedgerError::Refused {
            refusal: BlockRefusal::Certificate(_),
            ..
        })
    ));

    let mut wrong_signer = block.clone();
    let cert = CommitCertificate::sign(&block.block.header, 0, &[(0, &key("mallory"))]);
    wrong_signer.certificate = cert;
    assert!(matches!(
        b.commit_certified(&wrong_signer),
        Err(LedgerError::Refused {
            refusal: BlockRefusal::Certificate(_),
            ..
        })
    ));

    // A transaction dropped after certification: the header no longer matches.
    let mut dropped = block.clone();
    dropped.block.txs.pop();
    assert!(matches!(
        b.commit_certified(&dropped),
        Err(LedgerError::Refused {
            refusal: BlockRefusal::TxCount,
            ..
        })
    ));
    assert_eq!(b.store().tip().unwrap().height, 0);
    b.commit_certified(&block).unwrap();
}

#[test]
fn another_chains_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let one = TestChain::new(1);
    let two = TestChain::new(2);
    drop(Store::open(dir.path(), &one.genesis).unwrap());
    assert!(matches!(
        Store::open(dir.path(), &two.genesis),
        Err(StoreError::WrongChain { .. })
    ));
}

/// Flips one byte of the stored block at `height`, `from_end` bytes before its end.
fn flip_stored_byte(dir: &std::path::Path, height: u64, from_end: usize) {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir).unwrap();
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir, &cfs).unwrap();
    let cf = db.cf_handle("blocks").unwrap();
    let mut bytes = db.get_cf(cf, height.to_be_bytes()).unwrap().unwrap();
    let at = bytes.len() - from_end;
    bytes[at] ^= 0x01;
    db.put_cf(cf, height.to_be_bytes(), bytes).unwrap();
}

#[test]
fn a_corrupt_block_is_reported_on_open() {
    let chain = TestChain::new(1);
    // Near the end: a certificate signature. Further in: transaction bytes.
    for from_end in [10, 150, 400] {
        let dir = tempfile::tempdir().unwrap();
        {
            let ledger = Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap());
            for (i, txs) in setup_blocks(&chain).into_iter().enumerate() {
                produce(
                    &ledger,
                    &chain,
                    txs,
                    chain.genesis.genesis_time_ms + 1 + i as u64,
                );
            }
        }
        flip_stored_byte(dir.path(), 1, from_end);
        match Store::open(dir.path(), &chain.genesis) {
            Err(StoreError::Corrupt(message)) => {
                assert!(message.contains("block 1"), "{message}")
            }
            Err(other) => panic!("expected corruption, got {other}"),
            Ok(_) => panic!("a store with a flipped byte {from_end} from the end opened"),
        }
    }
}
mod provenance;
mod snapshot;

fn ledger_with_blocks(dir: &std::path::Path, chain: &TestChain) {
    let ledger = Ledger::new(Store::open(dir, &chain.genesis).unwrap());
    for (i, txs) in setup_blocks(chain).into_iter().enumerate() {
        produce(
            &ledger,
            chain,
            txs,
            chain.genesis.genesis_time_ms + 1 + i as u64,
        );
    }
}

#[test]
fn the_audit_passes_an_untouched_ledger_and_names_the_height_of_a_flipped_byte() {
    let chain = TestChain::new(1);
    let dir = tempfile::tempdir().unwrap();
    ledger_with_blocks(dir.path(), &chain);
    let scratch = tempfile::tempdir().unwrap();
    let mut seen = Vec::new();
    let report = cachet_storage::audit::audit(
        dir.path(),
        &chain.genesis,
        scratch.path(),
        &mut |h, tip, _| seen.push((h, tip)),
    )
    .unwrap();
    assert_eq!((report.blocks, report.txs), (2, 3));
    assert_eq!(seen, vec![(1, 2), (2, 2)]);
    let stored = Store::open(dir.path(), &chain.genesis)
        .unwrap()
        .tip()
        .unwrap();
    assert_eq!(report.state_root, stored.state_root.hash());

    // One flipped byte anywhere in block 2 (a signature, a transaction body, the header):
    // the audit stops and names height 2.
    let len = {
        let store = Store::open(dir.path(), &chain.genesis).unwrap();
        store.block_bytes(2).unwrap().unwrap().len()
    };
    for from_end in [3, 80, 150, len / 2, len - 20] {
        let copy = tempfile::tempdir().unwrap();
        ledger_with_blocks(copy.path(), &chain);
        flip_stored_byte(copy.path(), 2, from_end);
        let scratch = tempfile::tempdir().unwrap();
        match cachet_storage::audit::audit(
            copy.path(),
            &chain.genesis,
            scratch.path(),
            &mut |_, _, _| {},
        ) {
            Err(cachet_storage::audit::AuditError::BadBlock { height, reason }) => {
                assert_eq!(height, 2, "byte {from_end} from the end: {reason}")
            }
            other => panic!("byte {from_end} from the end: expected a bad block, got {other:?}"),
        }
    }
    // Another chain's genesis is refused before anything is replayed.
    let scratch = tempfile::tempdir().unwrap();
    assert!(matches!(
        cachet_storage::audit::audit(
            dir.path(),
            &TestChain::new(2).genesis,
            scratch.path(),
            &mut |_, _, _| {}
        ),
        Err(cachet_storage::audit::AuditError::Open(
            StoreError::WrongChain { .. }
        ))
    ));
}

/// The same valid block, checked by a ledger that cannot read its store, is not refused:
/// the error names no rule (`refusal()` is `None`), so no host can take it for a verdict.
/// A block that does break a rule is refused by name on the in-memory store as on RocksDB.
#[test]
fn a_failed_store_read_is_never_a_verdict_on_the_block() {
    let chain = TestChain::new(1);
    let dir = tempfile::tempdir().unwrap();
    let maker = Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap());
    let block = produce(
        &maker,
        &chain,
        setup_blocks(&chain).remove(0),
        chain.genesis.genesis_time_ms + 5,
    );
    let disk = std::sync::Arc::new(cachet_testkit::FlakyBackend::default());
    let checker = Ledger::new(Store::with_backend(disk.clone(), &chain.genesis).unwrap());

    disk.fail_reads(true);
    let error = checker.prepare(block.block.clone()).unwrap_err();
    assert_eq!(
        error.refusal(),
        None,
        "a failed read became a verdict: {error}"
    );
    let error = checker.commit_certified(&block).unwrap_err();
    assert_eq!(
        error.refusal(),
        None,
        "a failed read became a verdict: {error}"
    );

    disk.fail_reads(false);
    let mut altered = block.block.clone();
    altered.header.state_root = Hash::ZERO;
    assert_eq!(
        checker.prepare(altered).unwrap_err().refusal(),
        Some(&BlockRefusal::StateRoot)
    );
    checker.prepare(block.block.clone()).unwrap();
    checker.commit_certified(&block).unwrap();
    assert_eq!(checker.store().tip().unwrap(), maker.store().tip().unwrap());
}

/// A ledger on a memory backend, with the backend for opening more stores on it.
/// Commits `setup_blocks` one after the other; returns the first block's time.
fn produce_setup_blocks(ledger: &Ledger, chain: &TestChain) -> u64 {
    let time_ms = chain.genesis.genesis_time_ms + 1;
    for (i, txs) in setup_blocks(chain).into_iter().enumerate() {
        produce(ledger, chain, txs, time_ms + i as u64);
    }
    time_ms
}

fn memory_ledger(chain: &TestChain) -> (std::sync::Arc<dyn cachet_storage::Backend>, Ledger) {
    let backend: std::sync::Arc<dyn cachet_storage::Backend> =
        std::sync::Arc::new(cachet_storage::MemoryBackend::new());
    let ledger = Ledger::new(Store::with_backend(backend.clone(), &chain.genesis).unwrap());
    (backend, ledger)
}

#[test]
fn the_cached_top_of_the_state_tree_answers_as_the_stored_tree_does() {
    // A store with a warm tree cache commits block after block; after each, a store opened
    // cold on the same backend must prove every key identically (the cache is written
    // through on commit and never serves a superseded node).
    let chain = TestChain::new(1);
    let (backend, warm) = memory_ledger(&chain);
    let mut f = TxFactory::new(chain.chain_id);
    let op = chain.issuer(0);
    let create = f.sign(
        op,
        TxBody::CreateIssue {
            record: issue_record(ISSUE, "AT-POST", 500),
        },
    );
    let mint = f.sign(
        op,
        TxBody::Mint {
            issue: cachet_testkit::issue_id(ISSUE),
            first_serial: 1,
            last_serial: 250,
            owner: address("alice"),
            variant: None,
            claim_keys: Vec::new(),
        },
    );
    let mint_id = mint.id();
    let mut time_ms = chain.genesis.genesis_time_ms + 1;
    produce(&warm, &chain, vec![create, mint], time_ms);
    let keys: Vec<StateKey> = (1..=250)
        .map(|serial| StateKey::Stamp(stamp(ISSUE, serial)))
        .chain([
            StateKey::Account(key("alice").public_key()),
            StateKey::Account(key("bob").public_key()),
        ])
        .collect();
    for round in 0..6u32 {
        let txs: Vec<SignedTx> = (1..=20)
            .map(|i| {
                let serial = round * 20 + i;
                f.sign(
                    &key("alice"),
                    TxBody::Transfer {
                        stamp: stamp(ISSUE, serial),
                        last_event: cachet_state::event_hash(
                            &stamp(ISSUE, serial),
                            &Hash::ZERO,
                            &mint_id,
                        ),
                        to: address("bob"),
                    },
                )
            })
            .collect();
        time_ms += 1;
        produce(&warm, &chain, txs, time_ms);
        let cold = Store::with_backend(backend.clone(), &chain.genesis).unwrap();
        for key in &keys {
            assert_eq!(
                warm.store().prove(key).unwrap(),
                cold.prove(key).unwrap(),
                "after block {}, {key:?} proves differently from the cache",
                round + 2
            );
        }
    }
}

#[test]
fn the_leaves_index_holds_every_state_key_once_though_only_new_keys_are_written() {
    // Blocks that create keys (an issue, stamps, accounts) and update existing ones (a
    // transfer moves a minted stamp, a signer's nonce): the index from tree key to state
    // key, which snapshot chunks read, must name exactly the keys of the state.
    let chain = TestChain::new(1);
    let (backend, ledger) = memory_ledger(&chain);
    produce_setup_blocks(&ledger, &chain);
    let scan = |family| {
        let mut entries = Vec::new();
        backend
            .scan(family, &[], &mut |key, value| {
                entries.push((key.to_vec(), value.to_vec()));
                Ok(true)
            })
            .unwrap();
        entries
    };
    let mut state_keys: Vec<Vec<u8>> = scan(cachet_storage::Family::State)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    let mut indexed: Vec<Vec<u8>> = scan(cachet_storage::Family::Leaves)
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    state_keys.sort();
    indexed.sort();
    assert!(state_keys.len() > 250, "{} state keys", state_keys.len());
    assert_eq!(indexed, state_keys);
}

/// Every record of one family, in key order.
fn records(
    backend: &dyn cachet_storage::Backend,
    family: cachet_storage::Family,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    backend
        .scan(family, &[], &mut |key, value| {
            out.push((key.to_vec(), value.to_vec()));
            Ok(true)
        })
        .unwrap();
    out
}

#[test]
fn a_store_made_before_tree_pages_is_rebuilt_in_pages_on_open() {
    use cachet_storage::{Batch, Family};
    let chain = TestChain::new(1);
    let (backend, ledger) = memory_ledger(&chain);
    let time_ms = produce_setup_blocks(&ledger, &chain);
    let tip = ledger.store().tip().unwrap();
    let pages = records(backend.as_ref(), Family::Tree);
    assert!(pages.len() > 1, "{} pages", pages.len());
    drop(ledger);

    // A store of the old layout: no mark, one node per record (a stale one at depth 1, and
    // the root's record not a page).
    let mut batch = Batch::default();
    batch.delete(Family::Meta, b"tree-paged");
    batch.put(Family::Tree, [1u8; 33], b"an inner node of the old layout");
    batch.put(Family::Tree, [0u8; 33], b"the old root node");
    backend.write(batch).unwrap();
    let reopened = Store::with_backend(backend.clone(), &chain.genesis).unwrap();
    assert_eq!(reopened.tip().unwrap(), tip);
    assert_eq!(
        records(backend.as_ref(), Family::Tree),
        pages,
        "exactly the pages the commits wrote"
    );
    drop(reopened);
    let ledger = Ledger::new(Store::with_backend(backend.clone(), &chain.genesis).unwrap());
    // The rebuilt tree takes the next block.
    let mut f = TxFactory::new(chain.chain_id);
    let mint = TxBody::Mint {
        issue: cachet_testkit::issue_id(ISSUE),
        first_serial: 251,
        last_serial: 260,
        owner: address("carol"),
        variant: None,
        claim_keys: Vec::new(),
    };
    // The issuer's first two nonces went to setup_blocks.
    f.sign(chain.issuer(0), mint.clone());
    f.sign(chain.issuer(0), mint.clone());
    let next = f.sign(chain.issuer(0), mint);
    produce(&ledger, &chain, vec![next], time_ms + 10);
    drop(ledger);

    // A state the tree cannot be rebuilt from (an entry gone from the tree-key index) is
    // refused by name, not opened with another root.
    let mut batch = Batch::default();
    batch.delete(Family::Meta, b"tree-paged");
    batch.delete(
        Family::Leaves,
        &records(backend.as_ref(), Family::Leaves)[0].0,
    );
    backend.write(batch).unwrap();
    let tree = records(backend.as_ref(), Family::Tree);
    match Store::with_backend(backend.clone(), &chain.genesis) {
        Err(StoreError::Corrupt(reason)) => {
            assert!(
                reason.contains("does not give the tip's state root"),
                "{reason}"
            )
        }
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("a store whose tree does not give its root opened"),
    }
    // Refused before anything was dropped: the tree it had is still there.
    assert_eq!(records(backend.as_ref(), Family::Tree), tree);
}

#[test]
fn a_corrupt_tree_node_is_refused_every_time_though_the_cache_holds_it() {
    // Nodes the store's own commits wrote are trusted without hashing; one read back from
    // the backend is checked against its parent's hash, also when it is served again from
    // the tree cache.
    let chain = TestChain::new(1);
    let (backend, ledger) = memory_ledger(&chain);
    produce_setup_blocks(&ledger, &chain);
    drop(ledger);
    let root_key = [0u8; 33];
    let mut bytes = backend
        .get(cachet_storage::Family::Tree, &root_key)
        .unwrap()
        .expect("the root page is stored");
    // One bit of the first hash in the root's page (after the format byte, two u32 position
    // maps and the u64 count of hashes): one of the root's own children.
    bytes[1 + 4 + 4 + 8 + 5] ^= 0x01;
    let mut batch = cachet_storage::Batch::default();
    batch.put(cachet_storage::Family::Tree, root_key, bytes);
    backend.write(batch).unwrap();

    let cold = Store::with_backend(backend, &chain.genesis).unwrap();
    let root = cold.tip().unwrap().state_root;
    let writes = std::collections::BTreeMap::from([(
        StateKey::Account(key("carol").public_key()),
        StateValue::Account(cachet_state::AccountState::default()),
    )]);
    for attempt in 1..=2 {
        match cachet_state::commit_tree(&cold, root, &writes) {
            Err(cachet_state::StateError::CorruptNode { depth: 0, .. }) => {}
            other => panic!("attempt {attempt}: expected the corrupt root, got {other:?}"),
        }
    }
}

#[test]
fn blocks_committed_behind_are_seen_ahead_at_once_and_by_every_reader_once_written() {
    let chain = TestChain::new(1);
    let dir_a = tempfile::tempdir().unwrap();
    let a = Ledger::new(Store::open(dir_a.path(), &chain.genesis).unwrap());
    let blocks: Vec<CertifiedBlock> = setup_blocks(&chain)
        .into_iter()
        .enumerate()
        .map(|(i, txs)| {
            produce(
                &a,
                &chain,
                txs,
                chain.genesis.genesis_time_ms + 1 + i as u64,
            )
        })
        .collect();
    let dir_b = tempfile::tempdir().unwrap();
    {
        let b = Ledger::new(Store::open(dir_b.path(), &chain.genesis).unwrap());
        b.commit_verified_behind(&blocks[0], verified(blocks[0].block.txs.clone()))
            .unwrap();
        // The next block checks and executes on the state ahead: block 1 counts at once.
        assert_eq!(b.store().ahead().tip().unwrap().height, 1);
        let executed = b.prepare(blocks[1].block.clone()).unwrap();
        b.commit_proposal_behind(executed, blocks[1].certificate.clone())
            .unwrap();
        // Committing a block twice is refused against the tip ahead too.
        assert!(matches!(
            b.commit_certified(&blocks[1]),
            Err(LedgerError::Refused {
                refusal: BlockRefusal::NotNext { .. },
                ..
            })
        ));
        // Closed with block 2 still in flight: it lands before the store goes.
    }
    let b = Ledger::new(Store::open(dir_b.path(), &chain.genesis).unwrap());
    assert_eq!(b.store().tip().unwrap(), a.store().tip().unwrap());
    assert_eq!(
        b.store().state(&StateKey::Stamp(stamp(ISSUE, 42))).unwrap(),
        a.store().state(&StateKey::Stamp(stamp(ISSUE, 42))).unwrap()
    );
}

#[test]
fn a_failed_write_behind_stops_the_store_and_loses_only_what_was_in_flight() {
    let chain = TestChain::new(1);
    let dir = tempfile::tempdir().unwrap();
    let maker = Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap());
    let blocks: Vec<CertifiedBlock> = setup_blocks(&chain)
        .into_iter()
        .enumerate()
        .map(|(i, txs)| {
            produce(
                &maker,
                &chain,
                txs,
                chain.genesis.genesis_time_ms + 1 + i as u64,
            )
        })
        .collect();
    let disk = std::sync::Arc::new(cachet_testkit::FlakyBackend::default());
    let failing = Ledger::new(Store::with_backend(disk.clone(), &chain.genesis).unwrap());
    disk.fail_next_write(true);
    failing
        .commit_verified_behind(&blocks[0], verified(blocks[0].block.txs.clone()))
        .unwrap();
    let error = failing.settle().unwrap_err();
    assert!(matches!(error, LedgerError::Store(_)), "{error}");
    assert_eq!(error.refusal(), None);
    // Sticky: the store takes nothing more, though the disk works again.
    let error = failing.commit_certified(&blocks[0]).unwrap_err();
    assert!(
        error.to_string().contains("injected write failure"),
        "{error}"
    );
    assert_eq!(disk.failed_writes(), 1);
    drop(failing);
    // A store opened again on the backend is at the last written block and goes on.
    let again = Ledger::new(Store::with_backend(disk, &chain.genesis).unwrap());
    assert_eq!(again.store().tip().unwrap().height, 0);
    for block in &blocks {
        again.commit_certified(block).unwrap();
    }
    assert_eq!(again.store().tip().unwrap(), maker.store().tip().unwrap());
}
