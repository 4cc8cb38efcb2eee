//! The chain: admission, gossip judgement, proposals and commits.

use std::sync::Arc;

use cachet_host::{BatchVerdict, Chain, Mempool, NoHooks, Status, SubmitError};
use cachet_state::Rejection;
use cachet_storage::{Ledger, Store};
use cachet_testkit::{TestChain, TxFactory, issue_record};
use cachet_types::{CertifiedBlock, Hash, SignedTx, TxBody};

/// The ledger side of an observer over a fresh store of a four-operator chain, and a
/// signer for it.
struct Fixture {
    chain: TestChain,
    node: Arc<Chain>,
    factory: TxFactory,
}

impl Fixture {
    fn new() -> Fixture {
        let chain = TestChain::new(4);
        let store = Store::in_memory(&chain.genesis);
        let node = Arc::new(Chain::new(
            Ledger::new(store),
            Mempool::new(100, 100),
            Box::new(NoHooks),
        ));
        Fixture {
            factory: TxFactory::new(chain.chain_id),
            chain,
            node,
        }
    }
}

fn batch(txs: &[SignedTx]) -> Vec<Vec<u8>> {
    txs.iter().map(SignedTx::to_bytes).collect()
}

fn create(factory: &mut TxFactory, chain: &TestChain, id: &str) -> SignedTx {
    let body = TxBody::CreateIssue {
        record: issue_record(id, "AT-POST", 10),
    };
    factory.sign(chain.issuer(0), body)
}

#[test]
fn gossiped_batches_are_judged_for_the_gossip_layer() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let first = create(factory, chain, "AT-2026-001");
    let second = create(factory, chain, "AT-2026-002");

    assert_eq!(
        node.admit_batch(&[b"garbage".to_vec()], 0),
        BatchVerdict::Reject
    );

    // A forged signature condemns the whole batch; nothing of it is admitted.
    let mut forged = second.clone();
    forged.signature = first.signature;
    assert_eq!(
        node.admit_batch(&batch(&[first.clone(), forged]), 0),
        BatchVerdict::Reject
    );
    assert_eq!(node.counters().mempool_size, 0);

    // Another chain's transaction.
    let mut other = TxFactory::new(Hash::ZERO);
    let foreign = create(&mut other, chain, "AT-2026-001");
    assert_eq!(
        node.admit_batch(&batch(&[foreign]), 0),
        BatchVerdict::Reject
    );

    // A good batch is admitted and forwarded, and not gossiped again by this node.
    assert_eq!(
        node.admit_batch(&batch(&[first.clone(), second.clone()]), 0),
        BatchVerdict::Accept
    );
    assert_eq!(node.status(&first.id()).unwrap(), Status::Pending);
    assert_eq!(node.status(&second.id()).unwrap(), Status::Pending);
    assert!(node.take_outbox().is_empty());
    // Seen again: still fine.
    assert_eq!(node.admit_batch(&batch(&[first]), 0), BatchVerdict::Accept);
}

#[test]
fn gossiped_batches_checked_together_are_judged_one_by_one() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let txs: Vec<SignedTx> = (1..=5)
        .map(|n| create(factory, chain, &format!("AT-2026-00{n}")))
        .collect();
    // A batch with one forged signature among good batches: the whole verification fails,
    // and each batch is then checked alone; a malformed one and an empty one beside them.
    let mut forged = txs[3].clone();
    forged.signature = txs[0].signature;
    let (good, forged, garbage, later) = (
        batch(&txs[..2]),
        batch(&[txs[2].clone(), forged]),
        vec![b"garbage".to_vec()],
        batch(&txs[2..3]),
    );
    let verdicts = node.admit_batches(&[&good, &forged, &garbage, &[], &later], 0);
    assert_eq!(
        verdicts,
        [
            BatchVerdict::Accept,
            BatchVerdict::Reject,
            BatchVerdict::Reject,
            BatchVerdict::Accept,
            BatchVerdict::Accept
        ]
    );
    // The good batches' transactions are admitted in order (consecutive nonces of one
    // signer across batches); nothing of the condemned batch is, though its first
    // transaction also came in a later good batch.
    for tx in &txs[..3] {
        assert_eq!(node.status(&tx.id()).unwrap(), Status::Pending);
    }
    assert_eq!(node.counters().mempool_size, 3);
    // All good together: one verification, every batch accepted and admitted.
    let verdicts = node.admit_batches(&[&batch(&txs[3..4]), &batch(&txs[4..])], 0);
    assert_eq!(verdicts, [BatchVerdict::Accept, BatchVerdict::Accept]);
    assert_eq!(node.counters().mempool_size, 5);
}

#[test]
fn a_copy_with_other_cosigners_cannot_take_the_authors_nonce() {
    // TestChain's operators: AT-POST (issuer 0) and DE-POST (issuer 1), ...
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let mut record = issue_record("AT-2026-001", "AT-POST", 10);
    record.co_issuers = vec![cachet_types::CoIssuer {
        operator: cachet_testkit::operator_id("DE"),
        share: 5,
    }];
    let unsigned = factory.sign(chain.issuer(0), TxBody::CreateIssue { record });
    // Someone relays a copy cosigned by the wrong key (a valid signature, another id):
    // refused before the pool, so the genuine one still gets in.
    let mut tampered = unsigned.clone();
    tampered.cosign(&cachet_testkit::key("mallory"));
    assert!(matches!(
        node.submit(&tampered.to_bytes(), 0),
        Err(SubmitError::Rejected(Rejection::MissingCosignature(_)))
    ));
    assert_eq!(
        node.admit_batch(&batch(&[tampered]), 0),
        BatchVerdict::Accept
    );
    assert_eq!(node.counters().mempool_size, 0);
    let mut genuine = unsigned;
    genuine.cosign(chain.issuer(1));
    assert_eq!(
        node.submit(&genuine.to_bytes(), 0).unwrap().1,
        Status::Pending
    );
}

#[test]
fn a_second_signature_of_a_pending_transaction_is_the_same_transaction() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let tx = create(factory, chain, "AT-2026-001");
    // A badly signed copy first: refused to its sender, not remembered against the id.
    let mut forged = tx.clone();
    forged.signature = cachet_testkit::key("mallory").sign(&tx.signing_bytes());
    assert_eq!(forged.id(), tx.id());
    assert!(matches!(
        node.submit(&forged.to_bytes(), 0),
        Err(SubmitError::Rejected(Rejection::BadSignature))
    ));
    assert_eq!(node.status(&tx.id()).unwrap(), Status::Unknown);
    let (id, status) = node.submit(&tx.to_bytes(), 0).unwrap();
    assert_eq!((id, status), (tx.id(), Status::Pending));
    // The signer signs again (another valid ZIP-215 encoding, R with a torsion
    // component): other bytes, one transaction.
    let mut resigned = tx.clone();
    resigned.signature =
        cachet_testkit::hostile::torsion_signature(chain.issuer(0), &tx.signing_bytes(), 5);
    assert_ne!(resigned.to_bytes(), tx.to_bytes());
    assert_ne!(resigned.witness_hash(), tx.witness_hash());
    assert!(resigned.clone().verify(&chain.chain_id).is_ok());
    assert_eq!(
        node.submit(&resigned.to_bytes(), 0).unwrap(),
        (tx.id(), Status::Pending)
    );
    assert_eq!(
        node.admit_batch(&batch(std::slice::from_ref(&resigned)), 0),
        BatchVerdict::Accept
    );
    assert_eq!(node.counters().mempool_size, 1);
    // A proposal carrying the other encoding is checked on its own bytes, not passed
    // because its id is pending here.
    let proposal = node.build_proposal(0, false, 0).unwrap().expect("a block");
    let mut swapped = proposal.block.clone();
    swapped.txs[0] = forged;
    assert!(node.prepare_block(swapped).is_err());
    assert!(node.prepare_block(proposal.block).is_ok());
}

#[test]
fn a_re_cosigned_swap_keeps_its_id() {
    let fixture = Fixture::new();
    let alice = cachet_testkit::key("alice");
    let bob = cachet_testkit::key("bob");
    let body = TxBody::Swap {
        give: vec![cachet_types::SwapLeg {
            stamp: cachet_testkit::stamp("AT-2026-001", 1),
            last_event: Hash::ZERO,
        }],
        take: vec![cachet_types::SwapLeg {
            stamp: cachet_testkit::stamp("AT-2026-001", 2),
            last_event: Hash::ZERO,
        }],
        counterparty: bob.public_key().address(),
    };
    let mut offer = SignedTx::sign(fixture.chain.chain_id, &alice, 1, body);
    offer.cosign(&bob);
    let id = offer.id();
    let mut again = offer.clone();
    again.cosignatures[0].signature =
        cachet_testkit::hostile::torsion_signature(&bob, &offer.cosigning_bytes(), 9);
    assert_ne!(again.cosignatures, offer.cosignatures);
    assert!(again.clone().verify(&fixture.chain.chain_id).is_ok());
    assert_eq!(again.id(), id);
    assert_ne!(again.witness_hash(), offer.witness_hash());
}

#[test]
fn a_pending_transaction_a_block_would_refuse_is_refused_by_the_recheck() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    // Passes admission (right nonce), breaks a state rule: no such stamp. An observer
    // never builds a block, so only the recheck can refuse it here.
    let transfer = factory.sign(
        &cachet_testkit::key("alice"),
        TxBody::Transfer {
            stamp: cachet_testkit::stamp("AT-2026-001", 1),
            last_event: Hash::ZERO,
            to: cachet_testkit::address("bob"),
        },
    );
    let fine = create(factory, chain, "AT-2026-001");
    node.submit(&transfer.to_bytes(), 0).unwrap();
    node.submit(&fine.to_bytes(), 0).unwrap();
    // The gossip task's call, a millisecond later: both are older than an age of zero.
    let regossiped = node.lingering(1, 0, 0, 600_000, 100);
    assert_eq!(
        regossiped,
        vec![fine.to_bytes()],
        "the refused one is not regossiped"
    );
    assert!(matches!(
        node.status(&transfer.id()).unwrap(),
        Status::Rejected(reason) if reason.code() == "unknown_stamp"
    ));
    assert_eq!(node.status(&fine.id()).unwrap(), Status::Pending);
}

#[test]
fn client_submissions_are_gossiped() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let tx = create(factory, chain, "AT-2026-001");
    let (_, status) = node.submit(&tx.to_bytes(), 0).unwrap();
    assert_eq!(status, Status::Pending);
    assert_eq!(node.take_outbox(), vec![tx.to_bytes()]);
}

#[test]
fn a_clients_batch_gets_one_answer_per_transaction_in_order() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    // One signer's consecutive nonces in one batch, with a forged copy, garbage and a
    // repeat among them.
    let first = create(factory, chain, "AT-2026-001");
    let second = create(factory, chain, "AT-2026-002");
    let third = create(factory, chain, "AT-2026-003");
    let mut forged = create(factory, chain, "AT-2026-004");
    forged.signature = first.signature;
    let mut bytes = batch(&[first.clone(), second.clone(), forged, third.clone()]);
    bytes.insert(1, b"garbage".to_vec());
    bytes.push(first.to_bytes());
    let answers = node.submit_batch(&bytes, 0);
    assert_eq!(answers.len(), 6);
    assert!(matches!(answers[0], Ok((id, Status::Pending)) if id == first.id()));
    assert!(matches!(
        answers[1],
        Err(SubmitError::Rejected(Rejection::Malformed(_)))
    ));
    assert!(matches!(answers[2], Ok((id, Status::Pending)) if id == second.id()));
    assert!(
        matches!(&answers[3], Err(SubmitError::Rejected(reason)) if reason.code() == "bad_signature"),
        "{:?}",
        answers[3]
    );
    assert!(matches!(answers[4], Ok((id, Status::Pending)) if id == third.id()));
    // The repeat reads as the pending transaction it is, and is not gossiped twice.
    assert!(matches!(answers[5], Ok((id, Status::Pending)) if id == first.id()));
    assert_eq!(node.counters().mempool_size, 3);
    assert_eq!(node.take_outbox(), batch(&[first, second, third]));
    // The forged copy did not take its nonce: a good transaction with it is admitted.
    let good = SignedTx::sign(
        chain.chain_id,
        chain.issuer(0),
        4,
        TxBody::CreateIssue {
            record: issue_record("AT-2026-004", "AT-POST", 10),
        },
    );
    assert!(matches!(
        node.submit_batch(&[good.to_bytes()], 0)[0],
        Ok((_, Status::Pending))
    ));
}

#[test]
fn clients_batches_checked_together_are_answered_each_in_its_own_list() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let at = |factory: &mut TxFactory, id| create(factory, chain, id);
    let de = |factory: &mut TxFactory, id| {
        let body = TxBody::CreateIssue {
            record: issue_record(id, "DE-POST", 10),
        };
        factory.sign(chain.issuer(1), body)
    };
    // All good, across clients: one verification of every signature, each answered in
    // its own list; one signer's nonces across two clients' batches admitted in order.
    let (a1, a2, d1) = (
        at(factory, "AT-2026-001"),
        at(factory, "AT-2026-002"),
        de(factory, "DE-2026-001"),
    );
    let before = node.counters().signature_checks;
    let answers = node.submit_batches(
        &[
            &batch(std::slice::from_ref(&a1)),
            &[],
            &batch(&[a2.clone(), d1.clone(), a1.clone()]),
        ],
        0,
    );
    assert_eq!(answers.iter().map(Vec::len).collect::<Vec<_>>(), [1, 0, 3]);
    assert!(matches!(answers[0][0], Ok((id, Status::Pending)) if id == a1.id()));
    assert!(matches!(answers[2][0], Ok((id, Status::Pending)) if id == a2.id()));
    assert!(matches!(answers[2][1], Ok((id, Status::Pending)) if id == d1.id()));
    // A repeat of another client's transaction reads as pending, and is gossiped once.
    assert!(matches!(answers[2][2], Ok((id, Status::Pending)) if id == a1.id()));
    assert_eq!(node.counters().signature_checks - before, 4);
    assert_eq!(node.take_outbox(), batch(&[a1, a2, d1]));
    // One client's forged signature is answered to it alone; the others are admitted.
    let (a3, d2) = (at(factory, "AT-2026-003"), de(factory, "DE-2026-002"));
    let mut forged = de(factory, "DE-2026-003");
    forged.signature = d2.signature;
    let before = node.counters().signature_checks;
    let answers = node.submit_batches(
        &[
            &batch(std::slice::from_ref(&a3)),
            &batch(&[d2.clone(), forged]),
            &[b"garbage".to_vec()],
        ],
        0,
    );
    assert!(matches!(answers[0][0], Ok((id, Status::Pending)) if id == a3.id()));
    assert!(matches!(answers[1][0], Ok((id, Status::Pending)) if id == d2.id()));
    assert!(
        matches!(&answers[1][1], Err(SubmitError::Rejected(reason)) if reason.code() == "bad_signature"),
        "{:?}",
        answers[1][1]
    );
    assert!(matches!(
        answers[2][0],
        Err(SubmitError::Rejected(Rejection::Malformed(_)))
    ));
    // Together (3), then each batch again (3), then the bad batch's two one by one.
    assert_eq!(node.counters().signature_checks - before, 3 + 3 + 2);
    // One client alone with a bad signature: checked together, then one by one.
    // (DE's nonce 3 is free: the forged copy did not take it.)
    let d3 = SignedTx::sign(
        chain.chain_id,
        chain.issuer(1),
        3,
        TxBody::CreateIssue {
            record: issue_record("DE-2026-004", "DE-POST", 10),
        },
    );
    let a4 = at(factory, "AT-2026-004");
    let mut forged = at(factory, "AT-2026-005");
    forged.signature = a4.signature;
    let before = node.counters().signature_checks;
    let answers = node.submit_batches(&[&batch(&[a4.clone(), forged, d3.clone()]), &[]], 0);
    assert!(matches!(answers[0][0], Ok((id, Status::Pending)) if id == a4.id()));
    assert!(
        matches!(&answers[0][1], Err(SubmitError::Rejected(reason)) if reason.code() == "bad_signature")
    );
    assert!(matches!(answers[0][2], Ok((id, Status::Pending)) if id == d3.id()));
    assert_eq!(node.counters().signature_checks - before, 3 + 3);
    assert_eq!(node.take_outbox(), batch(&[a3, d2, a4, d3]));
    assert_eq!(node.counters().mempool_size, 7);
}

#[test]
fn a_transaction_refused_here_but_final_later_reports_final() {
    let mut fixture = Fixture::new();
    let Fixture {
        chain,
        node,
        factory,
        ..
    } = &mut fixture;
    let first = create(factory, chain, "AT-2026-001");
    let second = create(factory, chain, "AT-2026-002");
    // The second arrives first: refused here (nonce gap), and the refusal remembered.
    assert!(node.submit(&second.to_bytes(), 0).is_err());
    assert!(matches!(
        node.status(&second.id()).unwrap(),
        Status::Rejected(_)
    ));
    // The first, then the second again by gossip; a block makes both final.
    node.submit(&first.to_bytes(), 0).unwrap();
    assert_eq!(
        node.admit_batch(&batch(std::slice::from_ref(&second)), 0),
        BatchVerdict::Accept
    );
    let executed = node.build_proposal(0, false, 0).unwrap().expect("a block");
    assert_eq!(executed.block.txs.len(), 2);
    let signers: Vec<(u16, &cachet_types::SigningKey)> =
        (0..3).map(|i| (i as u16, chain.validator(i))).collect();
    let certificate = cachet_types::CommitCertificate::sign(&executed.block.header, 0, &signers);
    let certified = CertifiedBlock {
        block: executed.block.clone(),
        certificate,
    };
    node.commit_final(Some(executed), certified).unwrap();
    assert!(matches!(
        node.status(&second.id()).unwrap(),
        Status::Final { height: 1, .. }
    ));
    assert_eq!(node.counters().mempool_size, 0);
}

/// Three blocks of one issue creation each, made final on `fixture`'s node.
fn three_final_blocks(fixture: &mut Fixture) -> Vec<(SignedTx, CertifiedBlock)> {
    let Fixture {
        chain,
        node,
        factory,
    } = fixture;
    let signers: Vec<(u16, &cachet_types::SigningKey)> =
        (0..3).map(|i| (i as u16, chain.validator(i))).collect();
    ["AT-2026-001", "AT-2026-002", "AT-2026-003"]
        .iter()
        .map(|id| {
            let tx = create(factory, chain, id);
            node.submit(&tx.to_bytes(), 0).unwrap();
            let executed = node.build_proposal(0, false, 0).unwrap().expect("a block");
            let certificate =
                cachet_types::CommitCertificate::sign(&executed.block.header, 0, &signers);
            let certified = CertifiedBlock {
                block: executed.block.clone(),
                certificate,
            };
            node.commit_final(Some(executed), certified.clone())
                .unwrap();
            (tx, certified)
        })
        .collect()
}

#[test]
fn a_synced_run_commits_up_to_the_first_block_that_does_not_check() {
    let mut producer = Fixture::new();
    let blocks = three_final_blocks(&mut producer);
    let lagging = Fixture::new();
    // The second block's transaction waits in the lagging node's pool.
    lagging.node.submit(&blocks[0].0.to_bytes(), 0).unwrap();
    lagging
        .node
        .admit_batch(&batch(std::slice::from_ref(&blocks[1].0)), 0);
    assert_eq!(lagging.node.counters().mempool_size, 2);
    // The third arrives with a transaction's signature altered.
    let mut bad = blocks[2].1.clone();
    bad.block.txs[0].signature.0[0] ^= 1;
    let run = vec![
        (None, blocks[0].1.clone()),
        (None, blocks[1].1.clone()),
        (None, bad),
    ];
    let (committed, failure) = lagging.node.commit_synced(run);
    let heights: Vec<u64> = committed.iter().map(|c| c.tip.height).collect();
    assert_eq!(heights, [1, 2]);
    let failure = failure.expect("the altered block is refused");
    assert!(
        matches!(
            failure.refusal(),
            Some(cachet_state::BlockRefusal::TxCheck { index: 0, .. })
        ),
        "{failure}"
    );
    let store = lagging.node.ledger().store();
    assert_eq!(
        store.tip().unwrap().block_hash,
        blocks[1].1.block.header.hash()
    );
    assert!(matches!(
        lagging.node.status(&blocks[1].0.id()).unwrap(),
        Status::Final { height: 2, .. }
    ));
    assert_eq!(lagging.node.counters().mempool_size, 0);
    // The rest of the chain follows, the good third block included.
    let (committed, failure) = lagging
        .node
        .commit_synced(vec![(None, blocks[2].1.clone())]);
    assert!(failure.is_none(), "{failure:?}");
    assert_eq!(
        committed[0].tip,
        producer.node.ledger().store().tip().unwrap()
    );
}
