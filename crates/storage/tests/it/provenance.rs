//! Provenance bundles from a four-validator chain (certificates by three of four): the
//! untouched bundle verifies offline against the genesis alone; each tampering is caught
//! with its named failure.

use cachet_provenance::{ProvenanceBundle, verify};
use cachet_storage::{Ledger, Store};
use cachet_testkit::{TestChain, TxFactory, address, issue_id, issue_record, key, stamp};
use cachet_types::{CommitCertificate, FreezeReason, SigningKey, TxBody, VerifiedTx};

const ISSUE: &str = "AT-2026-001";

struct Chain {
    test: TestChain,
    /// Validator keys that joined the chain after the genesis (rotations).
    new_validators: Vec<SigningKey>,
    ledger: Ledger,
    factory: TxFactory,
    time_ms: u64,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn new() -> Chain {
        let test = TestChain::new(4);
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::new(Store::open(dir.path(), &test.genesis).unwrap());
        Chain {
            factory: TxFactory::new(test.chain_id),
            time_ms: test.genesis.genesis_time_ms,
            new_validators: Vec::new(),
            test,
            ledger,
            _dir: dir,
        }
    }

    /// One block with these transactions, proposed in turn, certified by validators 1..=3
    /// of its height's set.
    fn block(&mut self, txs: Vec<(SigningKey, TxBody)>) {
        let signed = txs
            .into_iter()
            .map(|(k, body)| self.factory.sign(&k, body))
            .collect();
        self.block_of(signed);
    }

    /// One block of already signed transactions.
    fn block_of(&mut self, txs: Vec<cachet_types::SignedTx>) {
        let signed: Vec<VerifiedTx> = txs.into_iter().map(VerifiedTx::new_unchecked).collect();
        self.time_ms += 1000;
        let height = self.ledger.store().tip().unwrap().height + 1;
        let proposal = self
            .ledger
            .build(signed, self.time_ms, (height % 4) as u16)
            .unwrap();
        assert!(proposal.rejected.is_empty(), "{:?}", proposal.rejected);
        let set = self.ledger.validators_at(height).unwrap();
        let known: Vec<&SigningKey> = (0..4)
            .map(|i| self.test.validator(i))
            .chain(&self.new_validators)
            .collect();
        let signers: Vec<(u16, &SigningKey)> = (1..4)
            .map(|i| {
                let key = known.iter().find(|k| k.public_key() == set[i]).unwrap();
                (i as u16, *key)
            })
            .collect();
        let cert = CommitCertificate::sign(&proposal.block.header, 0, &signers);
        self.ledger.commit_proposal(proposal, cert).unwrap();
    }

    fn last_event(&self, serial: u32) -> cachet_types::Hash {
        let record = self
            .ledger
            .store()
            .state(&cachet_state::StateKey::Stamp(stamp(ISSUE, serial)))
            .unwrap();
        let Some(cachet_state::StateValue::Stamp(s)) = record else {
            panic!("no stamp")
        };
        s.last_event
    }

    fn transfer(&self, serial: u32, to: &str) -> TxBody {
        TxBody::Transfer {
            stamp: stamp(ISSUE, serial),
            last_event: self.last_event(serial),
            to: address(to),
        }
    }

    fn bundle(&self, serial: u32) -> ProvenanceBundle {
        self.ledger
            .store()
            .provenance(&stamp(ISSUE, serial))
            .unwrap()
            .unwrap()
    }
}

/// A chain where #42 was minted to alice, went alice -> bob -> carol, was frozen and
/// unfrozen, and #7 was minted and redeemed.
fn history() -> Chain {
    let mut c = Chain::new();
    let op = c.test.issuer(0).clone();
    let mint = |first, last, to: &str| TxBody::Mint {
        issue: issue_id(ISSUE),
        first_serial: first,
        last_serial: last,
        owner: address(to),
        variant: None,
        claim_keys: Vec::new(),
    };
    c.block(vec![
        (
            op.clone(),
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 100),
            },
        ),
        (op.clone(), mint(1, 50, "alice")),
    ]);
    let t = c.transfer(42, "bob");
    c.block(vec![
        (key("alice"), t),
        (
            op.clone(),
            TxBody::Redeem {
                stamp: stamp(ISSUE, 7),
            },
        ),
    ]);
    let t = c.transfer(42, "carol");
    c.block(vec![(key("bob"), t)]);
    c.block(vec![(
        op.clone(),
        TxBody::Freeze {
            stamp: stamp(ISSUE, 42),
            reason: FreezeReason::Disputed,
            case_ref: "C-1".into(),
        },
    )]);
    c.block(vec![(
        op.clone(),
        TxBody::Unfreeze {
            stamp: stamp(ISSUE, 42),
            case_ref: "C-1".into(),
        },
    )]);
    let t = c.transfer(3, "dave");
    c.block(vec![(key("alice"), t)]);
    // carol lets dave sell #42 for her; dave moves it to erin.
    let approve = TxBody::Approve {
        stamp: stamp(ISSUE, 42),
        operator: address("dave"),
        until: cachet_types::Deadline::Height(100),
    };
    c.block(vec![(key("carol"), approve)]);
    let t = c.transfer(42, "erin");
    c.block(vec![(key("dave"), t)]);
    c
}

#[test]
fn a_burned_stamp_leaves_holdings_and_its_bundle_says_burned() {
    burned(&mut Cases::default());
}

fn burned(cases: &mut Cases) {
    let mut c = history();
    let Some(cachet_state::StateValue::Stamp(s)) = c
        .ledger
        .store()
        .state(&cachet_state::StateKey::Stamp(stamp(ISSUE, 3)))
        .unwrap()
    else {
        panic!()
    };
    c.block(vec![(
        key("dave"),
        TxBody::Burn {
            stamp: stamp(ISSUE, 3),
            last_event: s.last_event,
        },
    )]);
    assert!(
        c.ledger
            .store()
            .holdings(&address("dave"), None, 10)
            .unwrap()
            .is_empty()
    );
    let authentic = cases.authentic("a burned stamp", &c.bundle(3), &c.test.genesis);
    assert_eq!(authentic.status, cachet_state::StampStatus::Burned);
    assert_eq!(authentic.owner, Some(address("dave")));
    // A burn signed by someone else than the owner is not authentic history.
    let mut b = c.bundle(3);
    let last = b.events.len() - 1;
    let body = b.events[last].tx.body.clone();
    b.events[last].tx = cachet_types::SignedTx::sign(c.test.chain_id, &key("alice"), 9, body);
    cases.check(
        "a burn signed by another than the owner",
        &b,
        &c.test.genesis,
        "not_included",
    );
    let supply = c
        .ledger
        .store()
        .supply_proof(&issue_id(ISSUE))
        .unwrap()
        .unwrap();
    assert_eq!(
        cachet_provenance::verify_supply(&supply, &c.test.genesis)
            .unwrap()
            .burned,
        1
    );
}

fn check(bundle: &ProvenanceBundle, genesis: &cachet_types::Genesis, code: &str) {
    match verify(bundle, genesis) {
        Ok(_) => panic!("tampered bundle verified (expected {code})"),
        Err(failure) => assert_eq!(failure.code(), code, "{failure}"),
    }
}

/// The bundles these tests check with the Rust verifier's verdict on each, recorded for
/// `specs/vectors/verifier-cases.json`: the explorer's browser verifier is tested against
/// every one of them, so that both verifiers agree case by case.
#[derive(Default)]
struct Cases {
    geneses: std::collections::BTreeMap<String, serde_json::Value>,
    cases: Vec<serde_json::Value>,
}

impl Cases {
    fn record(
        &mut self,
        name: &str,
        bundle: &ProvenanceBundle,
        genesis: &cachet_types::Genesis,
        expect: serde_json::Value,
    ) {
        let genesis_name = genesis.chain_id().to_string();
        self.geneses
            .entry(genesis_name.clone())
            .or_insert_with(|| serde_json::to_value(genesis).unwrap());
        self.cases.push(serde_json::json!({
            "name": name,
            "genesis": genesis_name,
            "bundle": bundle,
            "expect": expect,
        }));
    }

    /// Checks that `bundle` fails with `code` and records it.
    fn check(
        &mut self,
        name: &str,
        bundle: &ProvenanceBundle,
        genesis: &cachet_types::Genesis,
        code: &str,
    ) {
        check(bundle, genesis, code);
        let failure = verify(bundle, genesis).unwrap_err();
        self.record(
            name,
            bundle,
            genesis,
            serde_json::json!({"verdict": "failed", "failure": failure}),
        );
    }

    /// Verifies `bundle` (it must be authentic) and records it.
    fn authentic(
        &mut self,
        name: &str,
        bundle: &ProvenanceBundle,
        genesis: &cachet_types::Genesis,
    ) -> cachet_provenance::Authentic {
        let authentic =
            verify(bundle, genesis).unwrap_or_else(|failure| panic!("{name}: {failure}"));
        self.record(
            name,
            bundle,
            genesis,
            serde_json::json!({"verdict": "authentic", "authentic": authentic}),
        );
        authentic
    }
}

#[test]
fn an_untouched_bundle_verifies_offline_and_survives_json() {
    let c = history();
    let bundle = c.bundle(42);
    // Offline: only the bundle's JSON and the genesis.
    let text = serde_json::to_string_pretty(&bundle).unwrap();
    let genesis_text = serde_json::to_string(&c.test.genesis).unwrap();
    let bundle: ProvenanceBundle = serde_json::from_str(&text).unwrap();
    let genesis = serde_json::from_str(&genesis_text).unwrap();
    let authentic = verify(&bundle, &genesis).unwrap();
    assert_eq!(authentic.owner, Some(address("erin")));
    assert_eq!(authentic.events, 7);
    assert_eq!(authentic.as_of_height, 8);
    assert_eq!(authentic.status, cachet_state::StampStatus::Active);
    let redeemed = verify(&c.bundle(7), &c.test.genesis).unwrap();
    assert_eq!(redeemed.status, cachet_state::StampStatus::Redeemed);
}

#[test]
fn every_tampering_is_caught_with_its_name() {
    tamperings(&mut Cases::default());
}

fn tamperings(cases: &mut Cases) {
    let c = history();
    let genesis = &c.test.genesis;
    let good = c.bundle(42);
    cases.authentic(
        "untouched: #42 after transfers, a freeze, an approval",
        &good,
        genesis,
    );
    cases.authentic("untouched: #7 redeemed", &c.bundle(7), genesis);

    // Alter an owner: the mint now names mallory.
    let mut b = good.clone();
    if let TxBody::Mint { owner, .. } = &mut b.events[0].tx.body {
        *owner = address("mallory");
    }
    cases.check(
        "Alter an owner: the mint now names mallory",
        &b,
        genesis,
        "signature",
    );

    // Drop a middle event: the next transfer no longer follows.
    let mut b = good.clone();
    b.events.remove(1);
    cases.check(
        "Drop a middle event: the next transfer no longer follows",
        &b,
        genesis,
        "chain_gap",
    );

    // Reorder events.
    let mut b = good.clone();
    b.events.swap(1, 2);
    cases.check("Reorder events", &b, genesis, "event_order");

    // An approved transfer with its approval dropped: the event chain has a gap.
    let mut b = good.clone();
    b.events.remove(5);
    cases.check(
        "An approved transfer with its approval dropped: the event chain has a gap",
        &b,
        genesis,
        "chain_gap",
    );

    // Swap in an event of another stamp (the transfer of #3).
    let other = c.bundle(3);
    let mut b = good.clone();
    b.events[4] = other.events[1].clone();
    for h in other.headers {
        if !b.headers.iter().any(|x| x.header.height == h.header.height) {
            b.headers.push(h);
        }
    }
    b.headers.sort_by_key(|h| h.header.height);
    cases.check(
        "Swap in an event of another stamp (the transfer of #3)",
        &b,
        genesis,
        "foreign_event",
    );

    // Replace a signature with another valid-looking one.
    let mut b = good.clone();
    b.events[1].tx.signature = key("alice").sign(b"something else");
    cases.check(
        "Replace a signature with another valid-looking one",
        &b,
        genesis,
        "signature",
    );

    // Remove certificate signatures below two thirds.
    let mut b = good.clone();
    b.headers[0].certificate.signatures.truncate(2);
    cases.check(
        "Remove certificate signatures below two thirds",
        &b,
        genesis,
        "certificate",
    );

    // Another chain's genesis.
    cases.check(
        "Another chain's genesis",
        &good,
        &TestChain::new(3).genesis,
        "wrong_chain",
    );

    // Change the issue's print run.
    let mut b = good.clone();
    if let TxBody::CreateIssue { record } = &mut b.issue.tx.body {
        record.print_run = 1_000_000;
    }
    cases.check("Change the issue's print run", &b, genesis, "issue");

    // A stale current-record proof: the record and proof as of an older height.
    let mut b = good.clone();
    b.current.record.owner = Some(address("bob"));
    cases.check(
        "A stale current-record proof: the record and proof as of an older height",
        &b,
        genesis,
        "state_proof",
    );
    let mut b = good.clone();
    b.current.height = 7;
    cases.check(
        "current.height below the latest header",
        &b,
        genesis,
        "state_proof",
    );

    // A header altered after certification.
    let mut b = good.clone();
    b.headers[1].header.time_ms += 1;
    cases.check(
        "A header altered after certification",
        &b,
        genesis,
        "certificate",
    );

    // A transaction moved to a block it is not in.
    let mut b = good.clone();
    b.events[2].proof.index ^= 1;
    cases.check(
        "A transaction moved to a block it is not in",
        &b,
        genesis,
        "not_included",
    );
}

#[test]
fn a_stale_bundle_is_refused_once_the_stamp_moved_on() {
    stale_bundles(&mut Cases::default());
}

fn stale_bundles(cases: &mut Cases) {
    let mut c = history();
    let before = c.bundle(42);
    let t = c.transfer(42, "frank");
    c.block(vec![(key("erin"), t)]);
    let after = c.bundle(42);
    // True as of its own height.
    cases.authentic(
        "an older bundle, as of its own height",
        &before,
        &c.test.genesis,
    );
    // Old record and proof grafted onto the newer bundle's headers: refused.
    let mut b = after.clone();
    b.current = before.current.clone();
    cases.check(
        "an older current record grafted onto newer headers",
        &b,
        &c.test.genesis,
        "state_proof",
    );
    let mut b = after.clone();
    b.current.proof = before.current.proof.clone();
    cases.check(
        "an older state proof grafted onto newer headers",
        &b,
        &c.test.genesis,
        "state_proof",
    );
}

#[test]
fn supply_is_proven_and_tampering_is_caught() {
    let c = history();
    let genesis = &c.test.genesis;
    let proof = c
        .ledger
        .store()
        .supply_proof(&issue_id(ISSUE))
        .unwrap()
        .unwrap();
    let issue = cachet_provenance::verify_supply(&proof, genesis).unwrap();
    assert_eq!((issue.minted, issue.redeemed, issue.frozen), (50, 1, 0));
    assert_eq!(issue.record.print_run, 100);

    let mut more = proof.clone();
    more.issue.minted = 40; // understating the supply
    assert_eq!(
        cachet_provenance::verify_supply(&more, genesis)
            .unwrap_err()
            .code(),
        "state_proof"
    );
    let mut unsigned = proof.clone();
    unsigned.header.certificate.signatures.truncate(2);
    assert_eq!(
        cachet_provenance::verify_supply(&unsigned, genesis)
            .unwrap_err()
            .code(),
        "certificate"
    );
    assert_eq!(
        cachet_provenance::verify_supply(&proof, &TestChain::new(2).genesis)
            .unwrap_err()
            .code(),
        "wrong_chain"
    );
    assert!(
        c.ledger
            .store()
            .supply_proof(&issue_id("AT-2099-001"))
            .unwrap()
            .is_none()
    );
}

/// The golden bundle in `specs/vectors/` is what this build produces for the deterministic
/// four-validator chain, and it verifies against that chain's genesis (also stored there).
/// Regenerate on purpose with `CACHET_UPDATE_VECTORS=1 cargo test --workspace golden`.
#[test]
fn golden_bundle_matches_specs_and_verifies() {
    let c = history();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs/vectors");
    let bundle_path = dir.join("bundle-AT-2026-001-42.json");
    let genesis_path = dir.join("genesis-4-operators.json");
    let bundle = serde_json::to_string_pretty(&c.bundle(42)).unwrap() + "\n";
    let genesis = serde_json::to_string_pretty(&c.test.genesis).unwrap() + "\n";
    if std::env::var_os("CACHET_UPDATE_VECTORS").is_some() {
        std::fs::write(&bundle_path, &bundle).unwrap();
        std::fs::write(&genesis_path, &genesis).unwrap();
    }
    let stored_bundle = std::fs::read_to_string(&bundle_path).unwrap();
    let stored_genesis = std::fs::read_to_string(&genesis_path).unwrap();
    assert_eq!(stored_bundle, bundle, "the bundle format changed");
    assert_eq!(stored_genesis, genesis, "the genesis format changed");
    let parsed: ProvenanceBundle = serde_json::from_str(&stored_bundle).unwrap();
    let genesis = serde_json::from_str(&stored_genesis).unwrap();
    assert_eq!(
        verify(&parsed, &genesis).unwrap().owner,
        Some(address("erin"))
    );
}

/// A physical twin claimed, then swapped: both stamps' bundles verify, and a history missing
/// the claim or a swap stripped of its cosignature is caught.
#[test]
fn twins_claims_and_swaps_verify_offline() {
    twins(&mut Cases::default());
}

fn twins(cases: &mut Cases) {
    let mut c = Chain::new();
    let op = c.test.issuer(0).clone();
    let claim_key = key("claim-60");
    let mint = |first, last, claim_keys| TxBody::Mint {
        issue: issue_id(ISSUE),
        first_serial: first,
        last_serial: last,
        owner: address("alice"),
        variant: None,
        claim_keys,
    };
    c.block(vec![
        (
            op.clone(),
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 100),
            },
        ),
        (op.clone(), mint(1, 5, Vec::new())),
        (op.clone(), mint(60, 60, vec![claim_key.public_key()])),
    ]);
    let unclaimed = cases.authentic("an unclaimed physical twin", &c.bundle(60), &c.test.genesis);
    assert_eq!(unclaimed.owner, None);
    c.block(vec![(
        claim_key.clone(),
        TxBody::Claim {
            stamp: stamp(ISSUE, 60),
            to: address("bob"),
        },
    )]);
    let leg = |c: &Chain, serial| cachet_types::SwapLeg {
        stamp: stamp(ISSUE, serial),
        last_event: c.last_event(serial),
    };
    let mut swap = c.factory.sign(
        &key("alice"),
        TxBody::Swap {
            give: vec![leg(&c, 1)],
            take: vec![leg(&c, 60)],
            counterparty: address("bob"),
        },
    );
    swap.cosign(&key("bob"));
    c.block_of(vec![swap]);

    let twin = c.bundle(60);
    let ok = cases.authentic("a twin claimed then swapped", &twin, &c.test.genesis);
    assert_eq!((ok.owner, ok.events), (Some(address("alice")), 3));
    let ok = cases.authentic("the other side of a swap", &c.bundle(1), &c.test.genesis);
    assert_eq!(ok.owner, Some(address("bob")));

    // A mint of other serials is another stamp's event.
    let mut b = twin.clone();
    b.events.insert(0, c.bundle(1).events[0].clone());
    cases.check(
        "a mint of other serials inserted",
        &b,
        &c.test.genesis,
        "foreign_event",
    );
    // Without the claim, the swap does not follow the mint.
    let mut b = twin.clone();
    b.events.remove(1);
    cases.check(
        "the claim removed before a swap",
        &b,
        &c.test.genesis,
        "chain_gap",
    );
    // A swap stripped of bob's cosignature is not a valid transaction.
    let mut b = twin;
    b.events[2].tx.cosignatures.clear();
    cases.check(
        "a swap stripped of its cosignature",
        &b,
        &c.test.genesis,
        "signature",
    );
}

#[test]
fn bundles_and_supply_proofs_verify_across_a_validator_key_rotation() {
    rotation(&mut Cases::default());
}

fn rotation(cases: &mut Cases) {
    let mut c = history();
    // DE-POST rotates its validator key: proposed by AT, approved by DE and CH.
    let rotated = key("DE-validator-2");
    c.new_validators.push(rotated.clone());
    let height = c.ledger.store().tip().unwrap().height;
    let activation = height + 4;
    let propose = c.factory.sign(
        c.test.issuer(0),
        TxBody::ProposeMembership {
            change: cachet_types::MembershipChange::RotateValidatorKey {
                operator: cachet_testkit::operator_id("DE"),
                validator_key: rotated.public_key(),
            },
            activation_height: activation,
        },
    );
    let approve = cachet_types::TxBody::ApproveMembership {
        proposal: propose.id(),
    };
    c.block_of(vec![propose]);
    let (de, ch) = (c.test.issuer(1).clone(), c.test.issuer(2).clone());
    c.block(vec![(de, approve.clone()), (ch, approve)]);
    while c.ledger.store().tip().unwrap().height < activation {
        let t = c.transfer(1, "bob");
        c.block(vec![(key("alice"), t)]);
        let t = c.transfer(1, "alice");
        c.block(vec![(key("bob"), t)]);
    }
    // Blocks from the activation height are signed with the new key.
    let t = c.transfer(42, "frank");
    let owner = match c
        .ledger
        .store()
        .state(&cachet_state::StateKey::Stamp(stamp(ISSUE, 42)))
    {
        Ok(Some(cachet_state::StateValue::Stamp(s))) => s.owner.unwrap(),
        other => panic!("{other:?}"),
    };
    let holder = ["alice", "bob", "carol", "dave", "erin"]
        .into_iter()
        .find(|name| address(name) == owner)
        .unwrap();
    c.block(vec![(key(holder), t)]);
    let tip = c.ledger.store().tip().unwrap().height;
    assert!(tip >= activation);
    assert_eq!(
        c.ledger.validators_at(tip).unwrap()[1],
        rotated.public_key()
    );

    let bundle = c.bundle(42);
    assert_eq!(bundle.membership.changes.len(), 1);
    let proven = cases.authentic("across a validator key rotation", &bundle, &c.test.genesis);
    assert_eq!(proven.owner, Some(address("frank")));
    // Without the change, the new key's certificates do not verify.
    let mut stripped = bundle.clone();
    stripped.membership = Default::default();
    cases.check(
        "the membership change left out",
        &stripped,
        &c.test.genesis,
        "certificate",
    );
    // With an approval missing, the change is not proven.
    let mut short = bundle.clone();
    short.membership.changes[0].approvals.pop();
    cases.check(
        "an approval of the change missing",
        &short,
        &c.test.genesis,
        "membership",
    );

    let supply = c
        .ledger
        .store()
        .supply_proof(&issue_id(ISSUE))
        .unwrap()
        .unwrap();
    cachet_provenance::verify_supply(&supply, &c.test.genesis).expect("supply verifies");
    let mut stripped = supply.clone();
    stripped.membership = Default::default();
    let error = cachet_provenance::verify_supply(&stripped, &c.test.genesis).unwrap_err();
    assert_eq!(error.code(), "certificate", "{error}");
}

/// `specs/vectors/verifier-cases.json` holds every bundle the tests above check, with the
/// Rust verifier's verdict; the explorer's browser verifier is tested against it
/// (`explorer/test`). Regenerate on purpose with
/// `CACHET_UPDATE_VECTORS=1 cargo test --workspace golden`.
#[test]
fn golden_verifier_cases_match_specs() {
    let mut cases = Cases::default();
    tamperings(&mut cases);
    stale_bundles(&mut cases);
    burned(&mut cases);
    twins(&mut cases);
    rotation(&mut cases);
    let document = serde_json::json!({
        "format": "cachet-verifier-cases",
        "version": 1,
        "geneses": cases.geneses,
        "cases": cases.cases,
    });
    let text = serde_json::to_string(&document).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../specs/vectors/verifier-cases.json");
    if std::env::var_os("CACHET_UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        stored == text,
        "specs/vectors/verifier-cases.json differs from the bundles the tests check: regenerate it with CACHET_UPDATE_VECTORS=1 cargo test --workspace golden"
    );
}
