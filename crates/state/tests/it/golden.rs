//! Golden vectors: the exact bytes and hashes of the wire and disk formats, checked against
//! `specs/vectors/golden.json`. A difference is a format change: make it on purpose, bump the
//! format version, and regenerate with `CACHET_UPDATE_VECTORS=1 cargo test --workspace golden`.

use std::collections::BTreeMap;

use cachet_state::smt::{leaf_hash, node_hash};
use cachet_state::{StampState, StampStatus, StateKey, StateValue, event_hash};
use cachet_testkit::{TestChain, TxFactory, address, issue_record, key, stamp};
use cachet_types::block::{VoteKind, vote_signing_bytes};
use cachet_types::merkle::tx_root;
use cachet_types::{BlockHeader, CommitCertificate, FreezeReason, Hash, TxBody, codec};
use serde_json::{Value, json};

fn vectors() -> BTreeMap<String, Value> {
    let chain = TestChain::new(1);
    let mut out = BTreeMap::new();
    out.insert(
        "genesis".into(),
        json!({"json": chain.genesis, "encoding": hex::encode(codec::encode(&chain.genesis)), "chain_id": chain.chain_id}),
    );
    let mut factory = TxFactory::new(chain.chain_id);
    let op = chain.issuer(0);
    let s42 = stamp("AT-2026-001", 42);
    let alice = key("alice");
    let bodies: Vec<(&str, &cachet_types::SigningKey, TxBody)> = vec![
        (
            "tx_create_issue",
            op,
            TxBody::CreateIssue {
                record: issue_record("AT-2026-001", "AT-POST", 100),
            },
        ),
        (
            "tx_mint",
            op,
            TxBody::Mint {
                issue: s42.issue.clone(),
                first_serial: 1,
                last_serial: 100,
                owner: address("alice"),
                variant: None,
                claim_keys: Vec::new(),
            },
        ),
        (
            "tx_close_issue",
            op,
            TxBody::CloseIssue {
                issue: s42.issue.clone(),
            },
        ),
        (
            "tx_redeem",
            op,
            TxBody::Redeem {
                stamp: stamp("AT-2026-001", 7),
            },
        ),
        (
            "tx_freeze",
            op,
            TxBody::Freeze {
                stamp: stamp("AT-2026-001", 8),
                reason: FreezeReason::Stolen,
                case_ref: "POL-2026-118".into(),
            },
        ),
        (
            "tx_unfreeze",
            op,
            TxBody::Unfreeze {
                stamp: stamp("AT-2026-001", 8),
                case_ref: "POL-2026-118".into(),
            },
        ),
        (
            "tx_transfer",
            &alice,
            TxBody::Transfer {
                stamp: s42.clone(),
                last_event: Hash::sha256(b"last"),
                to: address("bob"),
            },
        ),
        (
            "tx_approve",
            &alice,
            TxBody::Approve {
                stamp: stamp("AT-2026-001", 9),
                operator: address("carol"),
                until: cachet_types::Deadline::TimeMs(1_800_000_000_000),
            },
        ),
        (
            "tx_revoke",
            &alice,
            TxBody::Revoke {
                stamp: stamp("AT-2026-001", 9),
            },
        ),
        (
            "tx_burn",
            &alice,
            TxBody::Burn {
                stamp: stamp("AT-2026-001", 9),
                last_event: Hash::sha256(b"nine"),
            },
        ),
    ];
    let mut joint = issue_record("AT-2026-002", "AT-POST", 100);
    joint.variants = vec![
        cachet_types::Variant {
            name: "red".into(),
            count: 60,
        },
        cachet_types::Variant {
            name: "blue".into(),
            count: 40,
        },
    ];
    joint.co_issuers = vec![cachet_types::CoIssuer {
        operator: cachet_testkit::operator_id("DE"),
        share: 30,
    }];
    let claim_key = key("claim-1");
    let (carol, de_issuer) = (key("carol"), key("de-post-issuer"));
    let later: Vec<(
        &str,
        &cachet_types::SigningKey,
        TxBody,
        Vec<&cachet_types::SigningKey>,
    )> = vec![
        (
            "tx_create_joint_issue_with_variants",
            op,
            TxBody::CreateIssue { record: joint },
            vec![&de_issuer],
        ),
        (
            "tx_mint_physical_twins",
            op,
            TxBody::Mint {
                issue: s42.issue.clone(),
                first_serial: 61,
                last_serial: 62,
                owner: address("alice"),
                variant: Some("blue".into()),
                claim_keys: vec![claim_key.public_key(), key("claim-2").public_key()],
            },
            vec![],
        ),
        (
            "tx_claim",
            &claim_key,
            TxBody::Claim {
                stamp: stamp("AT-2026-001", 61),
                to: address("carol"),
            },
            vec![],
        ),
        (
            "tx_swap",
            &alice,
            TxBody::Swap {
                give: vec![cachet_types::SwapLeg {
                    stamp: stamp("AT-2026-001", 1),
                    last_event: Hash::sha256(b"one"),
                }],
                take: vec![cachet_types::SwapLeg {
                    stamp: stamp("AT-2026-001", 61),
                    last_event: Hash::sha256(b"sixty-one"),
                }],
                counterparty: address("carol"),
            },
            vec![&carol],
        ),
        (
            "tx_propose_membership_add_operator",
            op,
            TxBody::ProposeMembership {
                change: cachet_types::MembershipChange::AddOperator {
                    operator: cachet_types::Operator {
                        id: cachet_testkit::operator_id("IT"),
                        country: cachet_types::CountryCode::parse("IT").unwrap(),
                        name: "IT Post".into(),
                        validator_key: key("it-validator").public_key(),
                        node_key: key("it-node").public_key(),
                        issuer: address("it-issuer"),
                    },
                },
                activation_height: 100,
            },
            vec![],
        ),
        (
            "tx_propose_membership_rotate_key",
            &de_issuer,
            TxBody::ProposeMembership {
                change: cachet_types::MembershipChange::RotateValidatorKey {
                    operator: cachet_testkit::operator_id("DE"),
                    validator_key: key("de-validator-2").public_key(),
                },
                activation_height: 200,
            },
            vec![],
        ),
        (
            "tx_propose_membership_rotate_node_key",
            &de_issuer,
            TxBody::ProposeMembership {
                change: cachet_types::MembershipChange::RotateNodeKey {
                    operator: cachet_testkit::operator_id("DE"),
                    node_key: key("de-node-2").public_key(),
                },
                activation_height: 300,
            },
            vec![],
        ),
        (
            "tx_approve_membership",
            &de_issuer,
            TxBody::ApproveMembership {
                proposal: Hash::sha256(b"proposal"),
            },
            vec![],
        ),
    ];
    let mut ids = Vec::new();
    let mut leaves = Vec::new();
    let all = bodies
        .into_iter()
        .map(|(name, signer, body)| (name, signer, body, Vec::new()))
        .chain(later);
    for (name, signer, body, cosigners) in all {
        let mut tx = factory.sign(signer, body);
        for cosigner in cosigners {
            tx.cosign(cosigner);
        }
        ids.push(tx.id());
        leaves.push(tx.witness_hash());
        out.insert(
            name.into(),
            json!({
                "json": tx,
                "signing_bytes": hex::encode(tx.signing_bytes()),
                "cosigning_bytes": hex::encode(tx.cosigning_bytes()),
                "encoding": hex::encode(tx.to_bytes()),
                "tx_id": tx.id(),
                "witness_hash": tx.witness_hash(),
            }),
        );
    }
    out.insert(
        "tx_root_3".into(),
        json!({"witness_hashes": &leaves[..3], "root": tx_root(&leaves[..3])}),
    );
    out.insert("tx_root_empty".into(), json!({"root": tx_root(&[])}));
    let header = BlockHeader {
        chain_id: chain.chain_id,
        height: 1,
        prev_hash: chain.chain_id,
        time_ms: chain.genesis.genesis_time_ms + 1000,
        proposer: 0,
        tx_count: 3,
        tx_root: tx_root(&leaves[..3]),
        state_root: Hash::sha256(b"state"),
    };
    let cert = CommitCertificate::sign(&header, 0, &[(0, chain.validator(0))]);
    out.insert(
        "block_header".into(),
        json!({
            "json": header, "encoding": hex::encode(codec::encode(&header)), "hash": header.hash(),
        }),
    );
    out.insert("precommit".into(), json!({
        "signing_bytes": hex::encode(vote_signing_bytes(&chain.chain_id, VoteKind::Precommit, 1, 0, &header.hash())),
        "certificate": cert, "encoding": hex::encode(codec::encode(&cert)),
    }));
    let state_key = StateKey::Stamp(s42.clone());
    let state_value = StateValue::Stamp(StampState {
        owner: Some(address("bob")),
        status: StampStatus::Frozen {
            reason: FreezeReason::Stolen,
            case_ref: "POL-1".into(),
        },
        last_event: Hash::sha256(b"e"),
        event_count: 2,
        approval: Some(cachet_state::Approval {
            operator: address("carol"),
            until: cachet_types::Deadline::Height(99),
        }),
    });
    out.insert("state_stamp".into(), json!({
        "key_encoding": hex::encode(state_key.to_bytes()),
        "tree_key": state_key.tree_key(),
        "value_encoding": hex::encode(state_value.to_bytes()),
        "tree_value": state_value.tree_value(),
        "leaf_hash": leaf_hash(&state_key.tree_key(), &state_value.tree_value()),
        "node_hash_of_leaf_and_empty": node_hash(&leaf_hash(&state_key.tree_key(), &state_value.tree_value()), &Hash::ZERO),
    }));
    out.insert(
        "event_hash".into(),
        json!({
            "stamp": s42, "prev_event": Hash::ZERO, "tx_id": ids[1],
            "event_hash": event_hash(&s42, &Hash::ZERO, &ids[1]),
        }),
    );
    out
}

#[test]
fn golden_vectors_match_specs() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/vectors/golden.json");
    let current = serde_json::to_string_pretty(&vectors()).unwrap() + "\n";
    if std::env::var_os("CACHET_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &current).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let stored: BTreeMap<String, Value> = serde_json::from_str(&stored).unwrap();
    for (name, value) in vectors() {
        assert_eq!(
            stored.get(&name),
            Some(&value),
            "golden vector {name} changed: the format changed"
        );
    }
    assert_eq!(
        stored.len(),
        vectors().len(),
        "golden.json has vectors this build does not produce"
    );
}
