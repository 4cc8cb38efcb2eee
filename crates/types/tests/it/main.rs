//! Codec properties: every value round-trips, every byte form is canonical, and no input —
//! however hostile — panics a decoder.

use cachet_types::codec::{self, CodecError};
use cachet_types::{
    Address, Block, BlockHeader, CertifiedBlock, CommitCertificate, CountryCode, CurrencyCode,
    FaceValue, FreezeReason, Genesis, Hash, IssueId, IssueRecord, SignedTx, SigningKey, StampId,
    TxBody,
};
use proptest::prelude::*;

fn key(n: u8) -> SigningKey {
    SigningKey::from_seed([n; 32])
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn address() -> impl Strategy<Value = Address> {
    any::<u8>().prop_map(|n| key(n).public_key().address())
}

fn issue_id() -> impl Strategy<Value = IssueId> {
    "[A-Z]{2}-[0-9]{4}-[0-9]{3}".prop_map(|s| IssueId::parse(&s).unwrap())
}

fn stamp_id() -> impl Strategy<Value = StampId> {
    (issue_id(), 1u32..).prop_map(|(issue, serial)| StampId::new(issue, serial))
}

fn record() -> impl Strategy<Value = IssueRecord> {
    (
        issue_id(),
        "[A-Za-z ]{1,40}",
        1840u16..3000,
        any::<u64>(),
        hash(),
        1u32..,
    )
        .prop_map(|(id, title, year, amount, design, run)| IssueRecord {
            id,
            operator: cachet_types::OperatorId::parse("AT-POST").unwrap(),
            title,
            country: CountryCode::parse("AT").unwrap(),
            year,
            wns_number: if year % 2 == 0 {
                Some("AT001.26".into())
            } else {
                None
            },
            face_value: FaceValue {
                amount_minor: amount,
                currency: CurrencyCode::parse("EUR").unwrap(),
            },
            design_sha256: design,
            design_uri: "https://stamps.example/a.png".into(),
            print_run: run,
            variants: Vec::new(),
            co_issuers: Vec::new(),
        })
}

fn body() -> impl Strategy<Value = TxBody> {
    prop_oneof![
        record().prop_map(|record| TxBody::CreateIssue { record }),
        (issue_id(), 1u32.., 1u32.., address()).prop_map(|(issue, a, b, owner)| TxBody::Mint {
            issue,
            first_serial: a,
            last_serial: b,
            owner,
            variant: None,
            claim_keys: Vec::new(),
        }),
        (issue_id(), 1u32..100, address(), "[a-z]{1,8}").prop_map(|(issue, a, owner, name)| {
            TxBody::Mint {
                issue,
                first_serial: a,
                last_serial: a + 1,
                owner,
                variant: Some(name),
                claim_keys: vec![*owner.public_key(), *owner.public_key()],
            }
        }),
        (stamp_id(), address()).prop_map(|(stamp, to)| TxBody::Claim { stamp, to }),
        (stamp_id(), stamp_id(), hash(), address()).prop_map(|(a, b, last_event, counterparty)| {
            TxBody::Swap {
                give: vec![cachet_types::SwapLeg {
                    stamp: a,
                    last_event,
                }],
                take: vec![cachet_types::SwapLeg {
                    stamp: b,
                    last_event,
                }],
                counterparty,
            }
        }),
        issue_id().prop_map(|issue| TxBody::CloseIssue { issue }),
        (stamp_id(), hash(), address()).prop_map(|(stamp, last_event, to)| TxBody::Transfer {
            stamp,
            last_event,
            to
        }),
        stamp_id().prop_map(|stamp| TxBody::Redeem { stamp }),
        (stamp_id(), "[A-Z0-9-]{1,20}").prop_map(|(stamp, case_ref)| TxBody::Freeze {
            stamp,
            reason: FreezeReason::Stolen,
            case_ref
        }),
        (stamp_id(), "[A-Z0-9-]{1,20}")
            .prop_map(|(stamp, case_ref)| TxBody::Unfreeze { stamp, case_ref }),
        (stamp_id(), hash()).prop_map(|(stamp, last_event)| TxBody::Burn { stamp, last_event }),
    ]
}

fn signed_tx() -> impl Strategy<Value = SignedTx> {
    (hash(), any::<u8>(), any::<u64>(), body()).prop_map(|(chain, signer, nonce, body)| {
        // A swap's counterparty (one of the 256 test keys) must be another account, and
        // cosigns it.
        let counterparty = match &body {
            TxBody::Swap { counterparty, .. } => Some(*counterparty),
            _ => None,
        };
        let signer = match counterparty {
            Some(c) if c == key(signer).public_key().address() => signer.wrapping_add(1),
            _ => signer,
        };
        let mut tx = SignedTx::sign(chain, &key(signer), nonce, body);
        if let Some(counterparty) = counterparty {
            let other = (0..=u8::MAX)
                .map(key)
                .find(|k| k.public_key().address() == counterparty)
                .expect("test counterparties are test keys");
            tx.cosign(&other);
        }
        tx
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn transactions_round_trip(tx in signed_tx()) {
        let bytes = tx.to_bytes();
        let back = SignedTx::from_bytes(&bytes, 1 << 20).unwrap();
        prop_assert_eq!(&back, &tx);
        prop_assert_eq!(back.id(), tx.id());
        prop_assert!(tx.clone().verify(&tx.chain_id).is_ok());
    }

    #[test]
    fn blocks_round_trip(txs in proptest::collection::vec(signed_tx(), 0..5), height in 1u64.., time in any::<u64>()) {
        let header = BlockHeader {
            chain_id: Hash::sha256(b"c"),
            height,
            prev_hash: Hash::sha256(b"p"),
            time_ms: time,
            proposer: 0,
            tx_count: txs.len() as u32,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
        };
        let certificate = CommitCertificate::sign(&header, 0, &[(0, &key(1))]);
        let certified = CertifiedBlock { block: Block { header, txs }, certificate };
        let bytes = codec::encode(&certified);
        let back: CertifiedBlock = codec::decode(&bytes, 1 << 24).unwrap();
        prop_assert_eq!(back, certified);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedTx::from_bytes(&bytes, 4096);
        let _ = codec::decode::<CertifiedBlock>(&bytes, 4096);
        let _ = codec::decode::<Genesis>(&bytes, 4096);
        let mut versioned = vec![codec::FORMAT_VERSION];
        versioned.extend_from_slice(&bytes);
        let _ = SignedTx::from_bytes(&versioned, 4096);
        let _ = codec::decode::<CertifiedBlock>(&versioned, 4096);
        let _ = codec::decode::<Genesis>(&versioned, 4096);
    }

    #[test]
    fn mutated_transactions_never_panic_and_never_verify_as_other(tx in signed_tx(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = tx.to_bytes();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(mutated) = SignedTx::from_bytes(&bytes, 1 << 20) {
            // It never verifies. The id covers the content only: a flip in the content is
            // another id; a flip in a signature keeps the id but not the witness hash, so
            // the block's tree tells the two byte forms apart.
            if mutated.id() == tx.id() {
                prop_assert_eq!(mutated.signing_bytes(), tx.signing_bytes());
            }
            prop_assert_ne!(mutated.witness_hash(), tx.witness_hash());
            let chain = mutated.chain_id;
            prop_assert!(mutated.verify(&chain).is_err());
        }
    }

    #[test]
    fn truncated_and_extended_inputs_are_refused(tx in signed_tx(), cut in any::<prop::sample::Index>(), extra in any::<u8>()) {
        let bytes = tx.to_bytes();
        let n = cut.index(bytes.len());
        prop_assert!(SignedTx::from_bytes(&bytes[..n], 1 << 20).is_err());
        let mut longer = bytes.clone();
        longer.push(extra);
        prop_assert_eq!(SignedTx::from_bytes(&longer, 1 << 20), Err(CodecError::TrailingBytes(1)));
    }
}

#[test]
fn bool_and_option_tags_must_be_canonical() {
    let record = IssueRecord {
        id: IssueId::parse("AT-2026-001").unwrap(),
        operator: cachet_types::OperatorId::parse("AT-POST").unwrap(),
        title: "T".into(),
        country: CountryCode::parse("AT").unwrap(),
        year: 2026,
        wns_number: None,
        face_value: FaceValue {
            amount_minor: 1,
            currency: CurrencyCode::parse("EUR").unwrap(),
        },
        design_sha256: Hash::ZERO,
        design_uri: "u".into(),
        print_run: 1,
        variants: Vec::new(),
        co_issuers: Vec::new(),
    };
    let bytes = codec::encode(&record);
    // Find the Option tag of wns_number (0) and set it to 2: not a valid Option.
    // (The last two fields are the empty variant and co-issuer lists: 8-byte lengths.)
    let tag_at = bytes.len() - (8 + 8 + 3 + 32 + 8 + 1 + 4) - 1 - 16;
    assert_eq!(bytes[tag_at], 0);
    let mut bad = bytes.clone();
    bad[tag_at] = 2;
    assert!(codec::decode::<IssueRecord>(&bad, 4096).is_err());
    // Unknown enum tag for the transaction kind.
    let tx = SignedTx::sign(
        Hash::ZERO,
        &key(1),
        1,
        TxBody::CloseIssue {
            issue: record.id.clone(),
        },
    );
    let mut bytes = tx.to_bytes();
    let kind_at = 1 + 32 + 32 + 8;
    bytes[kind_at..kind_at + 4].copy_from_slice(&99u32.to_be_bytes());
    assert!(matches!(
        SignedTx::from_bytes(&bytes, 4096),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn invalid_utf8_and_invalid_ids_are_refused() {
    let tx = SignedTx::sign(
        Hash::ZERO,
        &key(1),
        1,
        TxBody::CloseIssue {
            issue: IssueId::parse("AT-2026-001").unwrap(),
        },
    );
    let bytes = tx.to_bytes();
    let id_at = 1 + 32 + 32 + 8 + 4 + 8; // after the kind tag and the string length
    let mut lower = bytes.clone();
    lower[id_at] = b'a';
    assert!(SignedTx::from_bytes(&lower, 4096).is_err());
    let mut not_utf8 = bytes.clone();
    not_utf8[id_at] = 0xff;
    assert!(SignedTx::from_bytes(&not_utf8, 4096).is_err());
}

#[test]
fn cosignatures_are_checked_alone_and_in_batches() {
    let chain = Hash::sha256(b"chain");
    let (author, other) = (key(1), key(2));
    let body = TxBody::Swap {
        give: vec![cachet_types::SwapLeg {
            stamp: StampId::new(IssueId::parse("AT-2026-001").unwrap(), 1),
            last_event: Hash::ZERO,
        }],
        take: vec![cachet_types::SwapLeg {
            stamp: StampId::new(IssueId::parse("AT-2026-001").unwrap(), 2),
            last_event: Hash::ZERO,
        }],
        counterparty: other.public_key().address(),
    };
    let mut tx = SignedTx::sign(chain, &author, 1, body);
    tx.cosign(&other);
    assert!(tx.clone().verify(&chain).is_ok());
    // A cosignature is over the cosigning bytes: one made over the signing bytes fails, and
    // the author's own signature does not pass as a cosignature either.
    let mut forged = tx.clone();
    forged.cosignatures[0].signature = other.sign(&forged.signing_bytes());
    assert!(forged.clone().verify(&chain).is_err());
    let (index, _) =
        cachet_types::verify_batch(&chain, vec![tx.clone(), forged], cachet_types::os_rng())
            .unwrap_err();
    assert_eq!(index, 1);
    let mut own = tx.clone();
    own.cosignatures = vec![cachet_types::Cosignature {
        signer: author.public_key(),
        signature: tx.signature,
    }];
    assert!(own.verify(&chain).is_err(), "the author cannot cosign");
    // The same cosigner twice is refused; cosigning again replaces, not adds.
    let mut twice = tx.clone();
    twice.cosignatures.push(twice.cosignatures[0].clone());
    assert!(twice.verify(&chain).is_err());
    let mut again = tx.clone();
    again.cosign(&other);
    assert_eq!(again.cosignatures.len(), 1);
    // Cosignatures are outside the id (a cosigner cannot give the transaction a second id),
    // inside the witness hash; without them the transaction does not verify.
    let mut bare = tx.clone();
    bare.cosignatures.clear();
    assert_eq!(bare.id(), tx.id());
    assert_ne!(bare.witness_hash(), tx.witness_hash());
    assert!(bare.verify(&chain).is_err());
}

#[test]
fn cosignatures_keep_one_canonical_order() {
    let chain = Hash::sha256(b"chain");
    let operator = |text: &str| cachet_types::OperatorId::parse(text).unwrap();
    let record = IssueRecord {
        id: IssueId::parse("AT-2026-001").unwrap(),
        operator: operator("AT-POST"),
        title: "Joint".into(),
        country: CountryCode::parse("AT").unwrap(),
        year: 2026,
        wns_number: None,
        face_value: FaceValue {
            amount_minor: 100,
            currency: CurrencyCode::parse("EUR").unwrap(),
        },
        design_sha256: Hash::ZERO,
        design_uri: "u".into(),
        print_run: 10,
        variants: Vec::new(),
        co_issuers: ["DE-POST", "CH-POST"]
            .map(|id| cachet_types::CoIssuer {
                operator: operator(id),
                share: 2,
            })
            .to_vec(),
    };
    let mut tx = SignedTx::sign(chain, &key(1), 1, TxBody::CreateIssue { record });
    // Whatever order the co-issuers sign in, the transaction comes out the same.
    let (a, b) = (key(2), key(3));
    let mut other_order = tx.clone();
    tx.cosign(&a);
    tx.cosign(&b);
    other_order.cosign(&b);
    other_order.cosign(&a);
    assert_eq!(tx, other_order);
    assert!(tx.clone().verify(&chain).is_ok());
    // Out of order, or one short, it is refused.
    let mut reversed = tx.clone();
    reversed.cosignatures.reverse();
    assert!(reversed.verify(&chain).is_err());
    let mut short = tx;
    short.cosignatures.pop();
    assert!(short.verify(&chain).is_err());
}

#[test]
fn parallel_verification_keeps_order_and_names_the_bad_transaction_anywhere() {
    let chain = Hash::sha256(b"chain");
    let signer = key(1);
    let txs: Vec<SignedTx> = (1..=700u64)
        .map(|nonce| {
            SignedTx::sign(
                chain,
                &signer,
                nonce,
                TxBody::Transfer {
                    stamp: StampId::new(IssueId::parse("AT-2026-001").unwrap(), 1),
                    last_event: Hash::ZERO,
                    to: key(2).public_key().address(),
                },
            )
        })
        .collect();
    // Several chunks (700 > MIN_PARALLEL_CHUNK): every one verified, in the given order.
    let verified = cachet_types::verify_parallel(&chain, txs.clone()).unwrap();
    assert!(verified.iter().map(|v| v.tx()).eq(txs.iter()));
    // A bad signature in the first, a middle and the last chunk is named by its position.
    for bad in [3, cachet_types::MIN_PARALLEL_CHUNK + 5, 699] {
        let mut broken = txs.clone();
        broken[bad].signature = signer.sign(b"something else");
        let (index, _) = cachet_types::verify_parallel(&chain, broken).unwrap_err();
        assert_eq!(index, bad);
    }
    // A short list stays on the calling thread and gives the same verdicts.
    let mut short = txs[..10].to_vec();
    assert_eq!(
        cachet_types::verify_parallel(&chain, short.clone())
            .unwrap()
            .len(),
        10
    );
    short[9].signature = signer.sign(b"x");
    assert_eq!(
        cachet_types::verify_parallel(&chain, short.clone())
            .unwrap_err()
            .0,
        9
    );
    // Checked all or nothing: every one verified in order, or all given back unjudged,
    // with a bad one in any chunk, or a stateless fault (another chain's transaction).
    let verified = cachet_types::verify_all(&chain, txs.clone()).unwrap();
    assert!(verified.iter().map(|v| v.tx()).eq(txs.iter()));
    for bad in [0, cachet_types::MIN_PARALLEL_CHUNK + 5, 699] {
        let mut broken = txs.clone();
        broken[bad].signature = signer.sign(b"something else");
        assert_eq!(
            cachet_types::verify_all(&chain, broken.clone()),
            Err(broken)
        );
    }
    assert_eq!(cachet_types::verify_all(&chain, short.clone()), Err(short));
    assert!(cachet_types::verify_all(&Hash::ZERO, txs[..3].to_vec()).is_err());
    // Many batches judged apart, across cores: each keeps its order and its own verdicts.
    let mut batches: Vec<Vec<_>> = txs.chunks(7).map(<[_]>::to_vec).collect();
    batches.insert(3, Vec::new());
    batches[50][2].signature = signer.sign(b"something else");
    let judged = cachet_types::verify_each_batch(&chain, &batches);
    assert_eq!(judged.len(), batches.len());
    for (number, (verdicts, batch)) in judged.iter().zip(&batches).enumerate() {
        assert_eq!(verdicts.len(), batch.len(), "batch {number}");
        for (index, (verdict, tx)) in verdicts.iter().zip(batch).enumerate() {
            match verdict {
                Ok(verified) => assert_eq!(verified.tx(), tx),
                Err(_) => assert_eq!((number, index), (50, 2)),
            }
        }
    }
    assert!(judged[50][2].is_err());
}

#[test]
fn each_transaction_of_a_clients_batch_gets_its_own_verdict() {
    let chain = Hash::sha256(b"chain");
    let signer = key(1);
    let mut txs: Vec<SignedTx> = (1..=600u64)
        .map(|nonce| {
            SignedTx::sign(
                chain,
                &signer,
                nonce,
                TxBody::Transfer {
                    stamp: StampId::new(IssueId::parse("AT-2026-001").unwrap(), 1),
                    last_event: Hash::ZERO,
                    to: key(2).public_key().address(),
                },
            )
        })
        .collect();
    let all_good = cachet_types::verify_each(&chain, txs.clone());
    assert!(all_good.iter().all(Result::is_ok));
    let bad = [0, 257, 599];
    for index in bad {
        txs[index].signature = signer.sign(b"forged");
    }
    let verdicts = cachet_types::verify_each(&chain, txs.clone());
    assert_eq!(verdicts.len(), txs.len());
    for (index, (verdict, tx)) in verdicts.iter().zip(&txs).enumerate() {
        match verdict {
            Ok(verified) => {
                assert!(!bad.contains(&index), "forged {index} passed");
                assert_eq!(verified.tx(), tx, "order kept");
            }
            Err(error) => assert!(bad.contains(&index), "good {index} refused: {error}"),
        }
    }
}
