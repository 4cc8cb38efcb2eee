//! State sync through the host's joining and backfilling machines, with peers answering
//! from real frozen stores: an honest peer, and one that lies in every way it can after
//! offering the true snapshot (altered chunks, forged blocks) or before (a forged offer).
//! The joiner must end at the honest state, name the liar, and the backfilled store must
//! serve bundles that verify offline.

use std::collections::VecDeque;

use cachet_host::statesync::{
    Backfiller, Joiner, ServedSnapshot, SnapshotAnswer, answer, verify_offer,
};
use cachet_state::StateValue;
use cachet_storage::Store;
use cachet_storage::snapshot::Backfill;
use cachet_testkit::{
    TestChain, TestLedger, TxFactory, address, issue_id, issue_record, key, stamp,
};
use cachet_types::{CertifiedBlock, CommitCertificate, SignedTx, TxBody, codec};

const ISSUE: &str = "AT-2026-001";
const HONEST: &str = "honest";
const LIAR: &str = "liar";

fn source_chain() -> (TestChain, TestLedger) {
    let chain = TestChain::new(4);
    let mut ledger = TestLedger::new(&chain);
    let mut factory = TxFactory::new(chain.chain_id);
    let op = chain.issuer(0).clone();
    let create = factory.sign(
        &op,
        TxBody::CreateIssue {
            record: issue_record(ISSUE, "AT-POST", 1000),
        },
    );
    ledger.apply_block(&[create]);
    for (i, owner) in ["alice", "bob"].iter().enumerate() {
        let first = i as u32 * 300 + 1;
        let mint = factory.sign(
            &op,
            TxBody::Mint {
                issue: issue_id(ISSUE),
                first_serial: first,
                last_serial: first + 299,
                owner: address(owner),
                variant: None,
                claim_keys: Vec::new(),
            },
        );
        ledger.apply_block(&[mint]);
    }
    for serial in 1..=40u32 {
        let record = ledger.stamp(&stamp(ISSUE, serial)).unwrap();
        let tx: SignedTx = factory.sign(
            &key("alice"),
            TxBody::Transfer {
                stamp: stamp(ISSUE, serial),
                last_event: record.last_event,
                to: address("carol"),
            },
        );
        assert!(ledger.apply_block(&[tx])[0].is_ok());
    }
    (chain, ledger)
}

/// What a peer answers: the liar alters every chunk and every block it sends.
fn respond(peer: &str, request: &[u8], served: &ServedSnapshot, live: &Store) -> Vec<u8> {
    let bytes = answer(&[served], live, request, 8 << 20).unwrap();
    if peer != LIAR {
        return bytes;
    }
    match codec::decode::<SnapshotAnswer>(&bytes, 64 << 20).unwrap() {
        SnapshotAnswer::Chunk(mut chunk) => {
            if let Some((_, StateValue::Stamp(record))) = chunk.entries.first_mut() {
                record.owner = Some(address("mallory"));
            } else {
                chunk.entries.pop();
            }
            codec::encode(&SnapshotAnswer::Chunk(chunk))
        }
        SnapshotAnswer::Blocks(blocks) => {
            let forged: Vec<Vec<u8>> = blocks
                .iter()
                .map(|bytes| {
                    let mut block: CertifiedBlock = codec::decode(bytes, 64 << 20).unwrap();
                    block.block.header.time_ms += 1;
                    codec::encode(&block)
                })
                .collect();
            codec::encode(&SnapshotAnswer::Blocks(forged))
        }
        other => codec::encode(&other),
    }
}

#[test]
fn a_joiner_imports_the_certified_state_past_a_lying_peer_and_the_backfill_gives_provenance() {
    let (chain, source) = source_chain();
    let live = source.ledger().store();
    // A split with several chunks, so both peers are asked for some.
    let served =
        ServedSnapshot::split(live.freeze(std::path::Path::new("unused")).unwrap(), 4).unwrap();
    assert_eq!(served.height(), source.height());
    let chunks = served.manifest().non_empty().count();
    assert!(chunks >= 8, "{chunks} chunks");

    let target = Store::in_memory(&chain.genesis);
    let mut joiner: Joiner<String> = Joiner::new(&target).unwrap();
    let mut queue = VecDeque::new();
    let mut now = 0u64;
    // The liar connects first, so it is asked first.
    queue.extend(joiner.on_peer(LIAR.to_string(), now));
    queue.extend(joiner.on_peer(HONEST.to_string(), now));
    let mut steps = 0;
    while joiner.imported().is_none() {
        steps += 1;
        assert!(
            steps < 10_000,
            "the joiner did not finish: {:?}",
            joiner.progress()
        );
        now += 10;
        match queue.pop_front() {
            Some(send) => {
                let bytes = respond(&send.peer, &send.request, &served, live);
                queue.extend(joiner.on_answer(&target, send.peer, &bytes, now).unwrap());
            }
            None => {
                now += 1_000;
                queue.extend(joiner.on_time(&target, now).unwrap());
            }
        }
    }
    assert_eq!(target.tip().unwrap(), live.tip().unwrap());
    let (done, total) = joiner.progress();
    assert_eq!((done, total), (chunks, chunks));
    assert!(
        joiner.refused().contains(LIAR),
        "the altered chunks named their sender"
    );
    assert!(!joiner.refused().contains(HONEST));
    assert_eq!(
        target.holdings(&address("carol"), None, 100).unwrap(),
        live.holdings(&address("carol"), None, 100).unwrap()
    );

    // The backfill, with the liar asked first again.
    let scratch = Store::in_memory(&chain.genesis);
    let mut backfiller: Backfiller<String> =
        Backfiller::new(Backfill::new(&target, scratch).unwrap());
    let mut queue = VecDeque::new();
    queue.extend(backfiller.on_peer(LIAR.to_string(), now).unwrap());
    queue.extend(backfiller.on_peer(HONEST.to_string(), now).unwrap());
    let mut steps = 0;
    while !backfiller.done() {
        steps += 1;
        assert!(
            steps < 10_000,
            "the backfill did not finish: {:?}",
            backfiller.progress()
        );
        now += 10;
        match queue.pop_front() {
            Some(send) => {
                let bytes = respond(&send.peer, &send.request, &served, live);
                queue.extend(
                    backfiller
                        .on_answer(&target, send.peer, &bytes, now)
                        .unwrap(),
                );
            }
            None => {
                now += 1_000;
                queue.extend(backfiller.on_time(now).unwrap());
            }
        }
    }
    assert_eq!(target.base().unwrap(), None);
    assert!(
        backfiller.refused().contains(LIAR),
        "the forged blocks named their sender"
    );
    let bundle = target.provenance(&stamp(ISSUE, 7)).unwrap().unwrap();
    cachet_provenance::verify(&bundle, &chain.genesis).unwrap();
    assert_eq!(bundle, live.provenance(&stamp(ISSUE, 7)).unwrap().unwrap());
}

#[test]
fn an_offer_is_trusted_only_with_a_certificate_of_the_proven_operators() {
    let (chain, source) = source_chain();
    let live = source.ledger().store();
    let served = ServedSnapshot::new(live.freeze(std::path::Path::new("unused")).unwrap()).unwrap();
    let offer = answer(
        &[&served],
        live,
        &codec::encode(&cachet_host::statesync::SnapshotRequest::Offer),
        8 << 20,
    )
    .unwrap();
    let SnapshotAnswer::Offer {
        block,
        membership,
        manifest,
    } = codec::decode::<SnapshotAnswer>(&offer, 64 << 20).unwrap()
    else {
        panic!("no offer");
    };
    let operators = verify_offer(&chain.genesis, &block, &membership, &manifest).unwrap();
    assert_eq!(operators, chain.genesis.operators);

    // Signed by keys that are not the operators'.
    let outsiders: Vec<cachet_types::SigningKey> =
        (0..4).map(|i| key(&format!("outsider-{i}"))).collect();
    let mut forged = block.clone();
    forged.certificate = CommitCertificate::sign(
        &block.block.header,
        0,
        &[(0, &outsiders[0]), (1, &outsiders[1]), (2, &outsiders[2])],
    );
    let reason = verify_offer(&chain.genesis, &forged, &membership, &manifest).unwrap_err();
    assert!(reason.contains("certificate"), "{reason}");
    // A manifest of another state.
    let mut other = manifest.clone();
    other.summaries[0] = cachet_state::smt::Child::Node(cachet_types::Hash::sha256(b"forged"));
    assert!(verify_offer(&chain.genesis, &block, &membership, &other).is_err());
    // A membership proof that does not parse.
    assert!(verify_offer(&chain.genesis, &block, b"{", &manifest).is_err());
    // An altered transaction in the block.
    let mut altered = block.clone();
    altered.block.txs.pop();
    assert!(verify_offer(&chain.genesis, &altered, &membership, &manifest).is_err());

    // A joiner given only the forged offer trusts nothing and keeps asking.
    let target = Store::in_memory(&chain.genesis);
    let mut joiner: Joiner<String> = Joiner::new(&target).unwrap();
    let asks = joiner.on_peer(LIAR.to_string(), 0);
    assert_eq!(asks.len(), 1);
    let forged_offer = codec::encode(&SnapshotAnswer::Offer {
        block: forged,
        membership,
        manifest,
    });
    joiner
        .on_answer(&target, LIAR.to_string(), &forged_offer, 10)
        .unwrap();
    assert_eq!(joiner.target_height(), None);
    assert!(target.import_progress().unwrap().is_none());
    // The liar is not asked again.
    assert!(joiner.on_time(&target, 100_000).unwrap().is_empty());
}
