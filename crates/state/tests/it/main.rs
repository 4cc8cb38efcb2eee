//! State machine rules, one test per rule, each through signed transactions and blocks.

use cachet_state::{EventKind, Rejection, StampStatus};
use cachet_testkit::{TestChain, TestLedger, TxFactory, address, issue_record, key, stamp};
use cachet_types::{ChainParams, FreezeReason, Hash, SignedTx, TxBody};

const ISSUE: &str = "AT-2026-001";

struct World {
    chain: TestChain,
    state: TestLedger,
    txs: TxFactory,
}

impl World {
    /// Two operators (AT-POST, DE-POST); AT-POST has issue AT-2026-001 with print run 100 and
    /// serials 1-10 minted to alice.
    fn new() -> World {
        World::with_params(ChainParams::default())
    }

    fn with_params(params: ChainParams) -> World {
        let chain = TestChain::with_params(2, params);
        let mut world = World {
            txs: TxFactory::new(chain.chain_id),
            state: TestLedger::new(&chain),
            chain,
        };
        let at = world.chain.issuer(0).clone();
        world.ok(
            &at,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 100),
            },
        );
        world.ok(&at, mint(1, 10, "alice"));
        world
    }

    fn run(&mut self, signer: &cachet_types::SigningKey, body: TxBody) -> Result<(), Rejection> {
        self.run_cosigned(signer, body, &[])
    }

    /// Signs `body` with `signer`, adds each cosigner's cosignature, and applies it.
    fn run_cosigned(
        &mut self,
        signer: &cachet_types::SigningKey,
        body: TxBody,
        cosigners: &[&cachet_types::SigningKey],
    ) -> Result<(), Rejection> {
        let mut tx = self.txs.sign(signer, body);
        for cosigner in cosigners {
            tx.cosign(cosigner);
        }
        let result = self.state.apply_one(&tx);
        if result.is_err() {
            // A refused transaction does not use up its nonce.
            self.txs.release(signer);
        }
        result
    }

    fn ok(&mut self, signer: &cachet_types::SigningKey, body: TxBody) {
        let kind = body.kind();
        if let Err(reason) = self.run(signer, body) {
            panic!("{kind} refused: {reason}");
        }
    }

    fn refused(&mut self, signer: &cachet_types::SigningKey, body: TxBody) -> Rejection {
        self.refused_cosigned(signer, body, &[])
    }

    fn refused_cosigned(
        &mut self,
        signer: &cachet_types::SigningKey,
        body: TxBody,
        cosigners: &[&cachet_types::SigningKey],
    ) -> Rejection {
        let before = self.state.root_hash();
        let reason = self
            .run_cosigned(signer, body, cosigners)
            .expect_err("must be refused");
        assert_eq!(before, self.state.root_hash(), "a refused tx changed state");
        reason
    }

    fn last_event(&self, serial: u32) -> Hash {
        self.state.stamp(&stamp(ISSUE, serial)).unwrap().last_event
    }

    fn transfer(&self, serial: u32, to: &str) -> TxBody {
        TxBody::Transfer {
            stamp: stamp(ISSUE, serial),
            last_event: self.last_event(serial),
            to: address(to),
        }
    }
}

fn mint(first: u32, last: u32, to: &str) -> TxBody {
    TxBody::Mint {
        issue: cachet_testkit::issue_id(ISSUE),
        first_serial: first,
        last_serial: last,
        owner: address(to),
        variant: None,
        claim_keys: Vec::new(),
    }
}

fn at(world: &World) -> cachet_types::SigningKey {
    world.chain.issuer(0).clone()
}

#[test]
fn mint_records_owner_supply_and_history() {
    let w = World::new();
    let s = w.state.stamp(&stamp(ISSUE, 7)).unwrap();
    assert_eq!(s.owner, Some(address("alice")));
    assert_eq!(s.status, StampStatus::Active);
    assert_eq!(s.event_count, 1);
    assert_eq!(w.state.issue(ISSUE).unwrap().minted, 10);
    let mints = w
        .state
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Minted { .. }))
        .count();
    assert_eq!(mints, 10);
}

#[test]
fn only_genesis_operators_create_issues_and_only_for_themselves() {
    let mut w = World::new();
    let mallory = key("mallory");
    let record = issue_record("AT-2026-002", "AT-POST", 10);
    assert_eq!(
        w.refused(
            &mallory,
            TxBody::CreateIssue {
                record: record.clone()
            }
        ),
        Rejection::NotOperator
    );
    let de = w.chain.issuer(1).clone();
    assert!(matches!(
        w.refused(&de, TxBody::CreateIssue { record }),
        Rejection::NotIssuer(..)
    ));
    let a = at(&w);
    assert!(matches!(
        w.refused(
            &a,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 5)
            }
        ),
        Rejection::IssueExists(_)
    ));
}

#[test]
fn print_run_limits() {
    let mut w = World::with_params(ChainParams {
        max_print_run: 1000,
        max_mint_per_tx: 50,
        ..ChainParams::default()
    });
    let a = at(&w);
    assert!(matches!(
        w.refused(
            &a,
            TxBody::CreateIssue {
                record: issue_record("AT-2026-009", "AT-POST", 1001)
            }
        ),
        Rejection::PrintRunTooLarge { .. }
    ));
    assert!(matches!(
        w.refused(&a, mint(95, 101, "bob")),
        Rejection::OverPrintRun { print_run: 100, .. }
    ));
    assert!(matches!(
        w.refused(&a, mint(11, 61, "bob")),
        Rejection::InvalidRange { .. }
    ));
    assert!(matches!(
        w.refused(&a, mint(0, 3, "bob")),
        Rejection::InvalidRange { .. }
    ));
    assert!(matches!(
        w.refused(&a, mint(5, 3, "bob")),
        Rejection::InvalidRange { .. }
    ));
    w.ok(&a, mint(91, 100, "bob"));
    assert_eq!(w.state.issue(ISSUE).unwrap().minted, 20);
}

#[test]
fn serials_are_never_minted_twice() {
    let mut w = World::new();
    let a = at(&w);
    assert_eq!(
        w.refused(&a, mint(10, 12, "bob")),
        Rejection::DuplicateSerial(stamp(ISSUE, 10))
    );
    // Nothing of the refused range was minted.
    assert!(w.state.stamp(&stamp(ISSUE, 11)).is_none());
}

#[test]
fn only_the_issuer_mints_and_closed_issues_mint_nothing() {
    let mut w = World::new();
    let de = w.chain.issuer(1).clone();
    assert!(matches!(
        w.refused(&de, mint(20, 20, "bob")),
        Rejection::NotIssuer(..)
    ));
    assert_eq!(
        w.refused(&key("bob"), mint(20, 20, "bob")),
        Rejection::NotOperator
    );
    let a = at(&w);
    w.ok(
        &a,
        TxBody::CloseIssue {
            issue: cachet_testkit::issue_id(ISSUE),
        },
    );
    assert!(w.state.issue(ISSUE).unwrap().closed);
    assert!(matches!(
        w.refused(&a, mint(20, 20, "bob")),
        Rejection::IssueClosed(_)
    ));
    assert!(matches!(
        w.refused(&a, mint(20, 20, "bob")),
        Rejection::IssueClosed(_)
    ));
}

#[test]
fn unknown_issue_and_stamp() {
    let mut w = World::new();
    let a = at(&w);
    let body = TxBody::Mint {
        issue: cachet_testkit::issue_id("AT-2099-001"),
        first_serial: 1,
        last_serial: 1,
        owner: address("bob"),
        variant: None,
        claim_keys: Vec::new(),
    };
    assert!(matches!(w.refused(&a, body), Rejection::UnknownIssue(_)));
    let body = TxBody::Transfer {
        stamp: stamp(ISSUE, 50),
        last_event: Hash::ZERO,
        to: address("bob"),
    };
    assert!(matches!(
        w.refused(&key("alice"), body),
        Rejection::UnknownStamp(_)
    ));
}

#[test]
fn owner_transfers_and_history_links() {
    let mut w = World::new();
    let body = w.transfer(4, "bob");
    w.ok(&key("alice"), body);
    let s = w.state.stamp(&stamp(ISSUE, 4)).unwrap();
    assert_eq!(s.owner, Some(address("bob")));
    assert_eq!(s.event_count, 2);
    let events: Vec<_> = w
        .state
        .events
        .iter()
        .filter(|e| e.stamp == stamp(ISSUE, 4))
        .collect();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].prev_event, Hash::ZERO);
    assert_eq!(events[1].prev_event, events[0].event_hash);
    assert_eq!(events[1].seq, 1);
    assert_eq!(
        events[1].event_hash,
        cachet_state::event_hash(&stamp(ISSUE, 4), &events[0].event_hash, &events[1].tx_id)
    );
    // Bob can pass it on; alice no longer can.
    let body = w.transfer(4, "carol");
    assert_eq!(
        w.refused(&key("alice"), body.clone()),
        Rejection::NotOwner(stamp(ISSUE, 4))
    );
    w.ok(&key("bob"), body);
}

#[test]
fn transfer_must_name_the_current_last_event() {
    let mut w = World::new();
    let stale = w.transfer(5, "bob");
    let fresh = w.transfer(5, "carol");
    w.ok(&key("alice"), fresh);
    let body = w.transfer(5, "alice");
    w.ok(&key("carol"), body);
    // Back with alice, but the old event hash is stale: no double spend by replaying intent.
    assert!(matches!(
        w.refused(&key("alice"), stale),
        Rejection::StaleEvent { .. }
    ));
}

#[test]
fn frozen_redeemed_stamps_do_not_move() {
    let mut w = World::new();
    let a = at(&w);
    w.ok(
        &a,
        TxBody::Redeem {
            stamp: stamp(ISSUE, 7),
        },
    );
    let freeze = TxBody::Freeze {
        stamp: stamp(ISSUE, 8),
        reason: FreezeReason::Stolen,
        case_ref: "POL-2026-118".into(),
    };
    w.ok(&a, freeze.clone());
    let issue = w.state.issue(ISSUE).unwrap();
    assert_eq!((issue.redeemed, issue.frozen), (1, 1));

    let body = w.transfer(7, "bob");
    assert_eq!(
        w.refused(&key("alice"), body),
        Rejection::Redeemed(stamp(ISSUE, 7))
    );
    let body = w.transfer(8, "bob");
    assert_eq!(
        w.refused(&key("alice"), body),
        Rejection::Frozen(stamp(ISSUE, 8))
    );
    assert_eq!(
        w.refused(
            &a,
            TxBody::Redeem {
                stamp: stamp(ISSUE, 7)
            }
        ),
        Rejection::Redeemed(stamp(ISSUE, 7))
    );
    assert_eq!(w.refused(&a, freeze), Rejection::Frozen(stamp(ISSUE, 8)));
    assert_eq!(
        w.refused(
            &a,
            TxBody::Unfreeze {
                stamp: stamp(ISSUE, 9),
                case_ref: "X".into()
            }
        ),
        Rejection::NotFrozen(stamp(ISSUE, 9))
    );
    w.ok(
        &a,
        TxBody::Unfreeze {
            stamp: stamp(ISSUE, 8),
            case_ref: "POL-2026-118".into(),
        },
    );
    assert_eq!(w.state.issue(ISSUE).unwrap().frozen, 0);
    let body = w.transfer(8, "bob");
    w.ok(&key("alice"), body);
}

#[test]
fn only_the_issuer_redeems_and_freezes() {
    let mut w = World::new();
    let de = w.chain.issuer(1).clone();
    assert!(matches!(
        w.refused(
            &de,
            TxBody::Redeem {
                stamp: stamp(ISSUE, 1)
            }
        ),
        Rejection::NotIssuer(..)
    ));
    assert_eq!(
        w.refused(
            &key("alice"),
            TxBody::Redeem {
                stamp: stamp(ISSUE, 1)
            }
        ),
        Rejection::NotOperator
    );
}

#[test]
fn nonces_go_up_by_exactly_one() {
    let mut w = World::new();
    let alice = key("alice");
    let chain_id = w.chain.chain_id;
    let body = w.transfer(1, "bob");
    let replay = SignedTx::sign(chain_id, &alice, 1, body.clone());
    assert_eq!(w.state.apply_one(&replay), Ok(()));
    // The very same transaction again: stale nonce.
    assert_eq!(
        w.state.apply_one(&replay),
        Err(Rejection::StaleNonce { got: 1, last: 1 })
    );
    let gap = SignedTx::sign(chain_id, &alice, 3, w.transfer(2, "bob"));
    assert_eq!(
        w.state.apply_one(&gap),
        Err(Rejection::NonceGap {
            got: 3,
            expected: 2
        })
    );
}

#[test]
fn wrong_chain_and_bad_signatures_are_refused() {
    let mut w = World::new();
    let body = w.transfer(1, "bob");
    let other_chain = SignedTx::sign(Hash::sha256(b"other"), &key("alice"), 1, body.clone());
    assert!(matches!(
        w.state.apply_one(&other_chain),
        Err(Rejection::WrongChain(_))
    ));
    // Chain id field rewritten to ours: the signature no longer matches.
    let mut relabelled = other_chain.clone();
    relabelled.chain_id = w.chain.chain_id;
    assert_eq!(w.state.apply_one(&relabelled), Err(Rejection::BadSignature));
    // Signature by someone else over alice's transaction.
    let mut forged = SignedTx::sign(w.chain.chain_id, &key("alice"), 1, body);
    forged.signature = key("mallory").sign(&forged.signing_bytes());
    assert_eq!(w.state.apply_one(&forged), Err(Rejection::BadSignature));
}

#[test]
fn weak_receiver_keys_are_refused() {
    let mut w = World::new();
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let weak = cachet_types::PublicKey(identity).address();
    let body = TxBody::Transfer {
        stamp: stamp(ISSUE, 1),
        last_event: w.last_event(1),
        to: weak,
    };
    assert_eq!(w.refused(&key("alice"), body), Rejection::WeakKey);
}

#[test]
fn receivers_of_a_key_plus_a_torsion_point_or_a_non_canonical_encoding_are_refused() {
    use cachet_testkit::hostile::{mixed_order_key, non_canonical_key};
    let mut w = World::new();
    let transfer_to = |w: &World, to: cachet_types::PublicKey| TxBody::Transfer {
        stamp: stamp(ISSUE, 1),
        last_event: w.last_event(1),
        to: to.address(),
    };
    // Bob's key plus a point of order 8: the same secret would sign for it (ZIP-215).
    let mixed = mixed_order_key(&key("bob").public_key());
    let body = transfer_to(&w, mixed);
    assert_eq!(w.refused(&key("alice"), body), Rejection::MixedOrderKey);
    let body = transfer_to(&w, non_canonical_key());
    assert_eq!(w.refused(&key("alice"), body), Rejection::NonCanonicalKey);
    let body = TxBody::Approve {
        stamp: stamp(ISSUE, 1),
        operator: mixed.address(),
        until: cachet_types::Deadline::Height(1_000),
    };
    assert_eq!(w.refused(&key("alice"), body), Rejection::MixedOrderKey);
}

#[test]
fn a_signer_of_a_mixed_order_key_is_refused_though_zip215_accepts_the_signature() {
    use cachet_testkit::hostile::{mixed_order_key, sign_as};
    let w = World::new();
    let alice = key("alice");
    let mixed = mixed_order_key(&alice.public_key());
    let body = TxBody::Revoke {
        stamp: stamp(ISSUE, 1),
    };
    let mut tx = SignedTx::sign(w.chain.chain_id, &alice, 1, body);
    tx.signer = mixed;
    tx.signature = sign_as(&alice, &mixed, &tx.signing_bytes());
    assert_eq!(
        tx.verify(&w.chain.chain_id).map(|_| ()),
        Err(cachet_types::TxCheckError::Signature(
            cachet_types::SignatureError::MixedOrderKey
        ))
    );
}

#[test]
fn a_block_applies_atomically_per_transaction_and_deterministically() {
    let chain = TestChain::new(1);
    let mut txs = TxFactory::new(chain.chain_id);
    let a = chain.issuer(0);
    let batch = vec![
        txs.sign(
            a,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 100),
            },
        ),
        txs.sign(a, mint(1, 5, "alice")),
        txs.sign(a, mint(3, 8, "bob")), // refused: duplicate serial 3
        txs.sign(
            &key("alice"),
            TxBody::Redeem {
                stamp: stamp(ISSUE, 1),
            },
        ), // refused: not operator
    ];
    let mut one = TestLedger::new(&chain);
    let outcomes = one.apply_block(&batch);
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    assert!(matches!(outcomes[2], Err(Rejection::DuplicateSerial(_))));
    assert!(matches!(outcomes[3], Err(Rejection::NotOperator)));
    assert!(one.stamp(&stamp(ISSUE, 6)).is_none());
    let mut two = TestLedger::new(&chain);
    two.apply_block(&batch);
    assert_eq!(one.root_hash(), two.root_hash());
    assert_ne!(one.root_hash(), Hash::ZERO);
}
mod golden;
mod membership;
mod specs;

#[test]
fn owners_burn_stamps_which_then_never_move() {
    let mut w = World::new();
    let burn = |w: &World, serial| TxBody::Burn {
        stamp: stamp(ISSUE, serial),
        last_event: w.last_event(serial),
    };
    let body = burn(&w, 3);
    assert_eq!(
        w.refused(&key("bob"), body.clone()),
        Rejection::NotOwner(stamp(ISSUE, 3))
    );
    let stale = TxBody::Burn {
        stamp: stamp(ISSUE, 3),
        last_event: Hash::ZERO,
    };
    assert!(matches!(
        w.refused(&key("alice"), stale),
        Rejection::StaleEvent { .. }
    ));
    w.ok(&key("alice"), body);
    let s = w.state.stamp(&stamp(ISSUE, 3)).unwrap();
    assert_eq!(
        (s.status, s.owner, s.event_count),
        (StampStatus::Burned, Some(address("alice")), 2)
    );
    assert_eq!(w.state.issue(ISSUE).unwrap().burned, 1);
    let body = burn(&w, 3);
    assert_eq!(
        w.refused(&key("alice"), body),
        Rejection::Burned(stamp(ISSUE, 3))
    );
    let body = w.transfer(3, "bob");
    assert_eq!(
        w.refused(&key("alice"), body),
        Rejection::Burned(stamp(ISSUE, 3))
    );
    let a = at(&w);
    assert_eq!(
        w.refused(
            &a,
            TxBody::Redeem {
                stamp: stamp(ISSUE, 3)
            }
        ),
        Rejection::Burned(stamp(ISSUE, 3))
    );
    // A frozen stamp cannot be burned away by its owner.
    w.ok(
        &a,
        TxBody::Freeze {
            stamp: stamp(ISSUE, 4),
            reason: FreezeReason::Stolen,
            case_ref: "P-1".into(),
        },
    );
    let body = burn(&w, 4);
    assert_eq!(
        w.refused(&key("alice"), body),
        Rejection::Frozen(stamp(ISSUE, 4))
    );
    assert!(
        w.state
            .events
            .iter()
            .any(|e| e.kind == EventKind::Burned && e.stamp == stamp(ISSUE, 3))
    );
}

#[test]
fn approvals_let_another_account_transfer_once_until_the_deadline() {
    use cachet_types::Deadline;
    let mut w = World::new();
    let approve = |serial, who: &str, until| TxBody::Approve {
        stamp: stamp(ISSUE, serial),
        operator: address(who),
        until,
    };
    // Only the owner approves; a deadline already over is refused.
    assert_eq!(
        w.refused(&key("bob"), approve(5, "bob", Deadline::Height(100))),
        Rejection::NotOwner(stamp(ISSUE, 5))
    );
    assert_eq!(
        w.refused(&key("alice"), approve(5, "bob", Deadline::Height(1))),
        Rejection::DeadlinePassed
    );
    w.ok(&key("alice"), approve(5, "bob", Deadline::Height(100)));
    assert!(w.state.stamp(&stamp(ISSUE, 5)).unwrap().approval.is_some());
    // carol is not approved; bob is, and moves it to carol; the history names both.
    let body = w.transfer(5, "carol");
    assert_eq!(
        w.refused(&key("carol"), body.clone()),
        Rejection::NotOwner(stamp(ISSUE, 5))
    );
    w.ok(&key("bob"), body);
    let s = w.state.stamp(&stamp(ISSUE, 5)).unwrap();
    assert_eq!((s.owner, s.approval), (Some(address("carol")), None));
    let last = w.state.events.last().unwrap();
    assert_eq!(
        last.kind,
        EventKind::Transferred {
            from: address("alice"),
            to: address("carol"),
            operator: Some(address("bob"))
        }
    );
    // The approval was used up by the transfer.
    let body = w.transfer(5, "bob");
    assert_eq!(
        w.refused(&key("bob"), body),
        Rejection::NotOwner(stamp(ISSUE, 5))
    );

    // Past its deadline an approval no longer works (each test block is one height).
    let height_now = w.state.events.last().unwrap().height;
    w.ok(
        &key("alice"),
        approve(6, "bob", Deadline::Height(height_now + 2)),
    );
    // Two more blocks pass (each transaction here is its own block).
    let body = w.transfer(2, "dave");
    w.ok(&key("alice"), body);
    let body = w.transfer(3, "dave");
    w.ok(&key("alice"), body);
    let body = w.transfer(6, "bob");
    assert_eq!(
        w.refused(&key("bob"), body),
        Rejection::ApprovalExpired(stamp(ISSUE, 6))
    );

    // Revocation ends it; revoking nothing is refused.
    w.ok(&key("alice"), approve(7, "bob", Deadline::TimeMs(u64::MAX)));
    w.ok(
        &key("alice"),
        TxBody::Revoke {
            stamp: stamp(ISSUE, 7),
        },
    );
    let body = w.transfer(7, "bob");
    assert_eq!(
        w.refused(&key("bob"), body),
        Rejection::NotOwner(stamp(ISSUE, 7))
    );
    assert_eq!(
        w.refused(
            &key("alice"),
            TxBody::Revoke {
                stamp: stamp(ISSUE, 7)
            }
        ),
        Rejection::NotApproved(stamp(ISSUE, 7))
    );
}

fn mint_of(issue: &str, first: u32, last: u32, to: &str, variant: Option<&str>) -> TxBody {
    TxBody::Mint {
        issue: cachet_testkit::issue_id(issue),
        first_serial: first,
        last_serial: last,
        owner: address(to),
        variant: variant.map(str::to_string),
        claim_keys: Vec::new(),
    }
}

#[test]
fn variants_split_the_print_run_and_mints_name_theirs() {
    use cachet_types::Variant;
    let mut w = World::new();
    let at = at(&w);
    let variant = |name: &str, count| Variant {
        name: name.into(),
        count,
    };
    // Counts must add up to the print run.
    let mut record = issue_record("AT-2026-002", "AT-POST", 100);
    record.variants = vec![variant("red", 60), variant("blue", 30)];
    assert_eq!(
        w.refused(
            &at,
            TxBody::CreateIssue {
                record: record.clone()
            }
        )
        .code(),
        "invalid_field"
    );
    record.variants = vec![variant("red", 60), variant("blue", 40)];
    w.ok(&at, TxBody::CreateIssue { record });
    let issue = "AT-2026-002";
    assert_eq!(
        w.refused(&at, mint_of(issue, 1, 5, "alice", None)),
        Rejection::VariantRequired(cachet_testkit::issue_id(issue))
    );
    assert_eq!(
        w.refused(&at, mint_of(issue, 1, 5, "alice", Some("green"))),
        Rejection::UnknownVariant {
            issue: cachet_testkit::issue_id(issue),
            variant: "green".into()
        }
    );
    assert_eq!(
        w.refused(&at, mint_of(issue, 55, 65, "alice", Some("red"))),
        Rejection::NotInVariant {
            variant: "red".into(),
            first: 55,
            last: 65,
            from: 1,
            to: 60
        }
    );
    w.ok(&at, mint_of(issue, 1, 10, "alice", Some("red")));
    w.ok(&at, mint_of(issue, 61, 63, "bob", Some("blue")));
    let state = w.state.issue(issue).unwrap();
    assert_eq!((state.minted, state.variant_minted), (13, vec![10, 3]));
    // An issue without variants takes no variant name.
    assert_eq!(
        w.refused(&at, mint_of(ISSUE, 20, 20, "alice", Some("red"))),
        Rejection::UnknownVariant {
            issue: cachet_testkit::issue_id(ISSUE),
            variant: "red".into()
        }
    );
}

#[test]
fn joint_issues_need_every_cosignature_and_co_issuers_mint_within_their_share() {
    use cachet_types::CoIssuer;
    let mut w = World::new();
    let (at, de) = (at(&w), w.chain.issuer(1).clone());
    let mut record = issue_record("AT-2026-050", "AT-POST", 100);
    record.co_issuers = vec![CoIssuer {
        operator: cachet_testkit::operator_id("DE"),
        share: 30,
    }];
    let create = TxBody::CreateIssue { record };
    // Missing the co-issuer's cosignature, or cosigned by someone else as well.
    // (Without any, or with too many, the form is wrong before any state is read.)
    assert_eq!(w.refused(&at, create.clone()).code(), "invalid_field");
    assert_eq!(
        w.refused_cosigned(&at, create.clone(), &[&key("alice")]),
        Rejection::MissingCosignature("DE-POST".into())
    );
    assert_eq!(
        w.refused_cosigned(&at, create.clone(), &[&de, &key("alice")])
            .code(),
        "invalid_field"
    );
    w.run_cosigned(&at, create, &[&de]).unwrap();
    let issue = "AT-2026-050";
    // The co-issuer mints within its 30; the lead within the other 70.
    w.ok(&de, mint_of(issue, 1, 20, "alice", None));
    w.ok(&at, mint_of(issue, 21, 90, "alice", None));
    assert_eq!(
        w.refused(&at, mint_of(issue, 91, 91, "alice", None)),
        Rejection::OverShare {
            operator: cachet_testkit::operator_id("AT"),
            share: 70,
            minted: 70
        }
    );
    assert_eq!(
        w.refused(&de, mint_of(issue, 91, 101, "alice", None))
            .code(),
        "over_print_run"
    );
    w.ok(&de, mint_of(issue, 91, 100, "alice", None));
    let state = w.state.issue(issue).unwrap();
    assert_eq!((state.minted, state.co_issuer_minted), (100, vec![30]));
    // Co-issuers act as issuers of the stamps (redeem); others do not.
    w.ok(
        &de,
        TxBody::Redeem {
            stamp: stamp(issue, 95),
        },
    );
    // A co-issuer beyond its share, on a fresh issue.
    let mut record = issue_record("AT-2026-051", "AT-POST", 10);
    record.co_issuers = vec![CoIssuer {
        operator: cachet_testkit::operator_id("DE"),
        share: 2,
    }];
    w.run_cosigned(&at, TxBody::CreateIssue { record }, &[&de])
        .unwrap();
    assert_eq!(
        w.refused(&de, mint_of("AT-2026-051", 1, 3, "alice", None)),
        Rejection::OverShare {
            operator: cachet_testkit::operator_id("DE"),
            share: 2,
            minted: 0
        }
    );
    // A co-issuer that is not an operator of the chain.
    let mut record = issue_record("AT-2026-052", "AT-POST", 10);
    record.co_issuers = vec![CoIssuer {
        operator: cachet_testkit::operator_id("FR"),
        share: 2,
    }];
    assert_eq!(
        w.refused_cosigned(&at, TxBody::CreateIssue { record }, &[&key("fr-post")]),
        Rejection::UnknownOperator(cachet_testkit::operator_id("FR"))
    );
    // A cosignature on a transaction that needs none.
    let body = w.transfer(1, "bob");
    assert_eq!(
        w.refused_cosigned(&key("alice"), body, &[&key("bob")])
            .code(),
        "invalid_field"
    );
}

#[test]
fn physical_twins_are_held_by_nobody_until_their_claim_key_claims_them_once() {
    let mut w = World::new();
    let at = at(&w);
    let (k11, k12) = (key("claim-11"), key("claim-12"));
    let twins = |first, last, keys: Vec<cachet_types::PublicKey>| TxBody::Mint {
        issue: cachet_testkit::issue_id(ISSUE),
        first_serial: first,
        last_serial: last,
        owner: address("alice"),
        variant: None,
        claim_keys: keys,
    };
    assert_eq!(
        w.refused(&at, twins(11, 12, vec![k11.public_key()])),
        Rejection::ClaimKeysCount {
            expected: 2,
            got: 1
        }
    );
    w.ok(&at, twins(11, 12, vec![k11.public_key(), k12.public_key()]));
    let s11 = w.state.stamp(&stamp(ISSUE, 11)).unwrap();
    assert_eq!(s11.owner, None);
    assert_eq!(
        s11.status,
        StampStatus::Unclaimed {
            claim_key: k11.public_key()
        }
    );
    // Nobody moves it but a claim: not the minting operator, not the owner field's account.
    let body = w.transfer(11, "bob");
    assert_eq!(
        w.refused(&key("alice"), body),
        Rejection::NotOwner(stamp(ISSUE, 11))
    );
    assert_eq!(
        w.refused(
            &at,
            TxBody::Redeem {
                stamp: stamp(ISSUE, 11)
            }
        ),
        Rejection::Unclaimed(stamp(ISSUE, 11))
    );
    let claim = |serial, to: &str| TxBody::Claim {
        stamp: stamp(ISSUE, serial),
        to: address(to),
    };
    // The wrong key; then the right one.
    assert_eq!(
        w.refused(&k12, claim(11, "carol")),
        Rejection::WrongClaimKey(stamp(ISSUE, 11))
    );
    w.ok(&k11, claim(11, "carol"));
    let s11 = w.state.stamp(&stamp(ISSUE, 11)).unwrap();
    assert_eq!(
        (s11.owner, s11.status),
        (Some(address("carol")), StampStatus::Active)
    );
    assert_eq!(
        w.state.events.last().unwrap().kind,
        EventKind::Claimed {
            claim_key: k11.public_key(),
            to: address("carol")
        }
    );
    // Once only; a stamp minted to an owner has no claim.
    assert_eq!(
        w.refused(&k11, claim(11, "dave")),
        Rejection::NotClaimable(stamp(ISSUE, 11))
    );
    assert_eq!(
        w.refused(&k11, claim(1, "dave")),
        Rejection::NotClaimable(stamp(ISSUE, 1))
    );
    // The spent claim key never owns anything; a claim key cannot claim for itself.
    let body = w.transfer(11, "claim-11");
    assert_eq!(w.refused(&key("carol"), body), Rejection::SpentClaimKey);
    assert_eq!(
        w.refused(&k12, claim(12, "claim-12")),
        Rejection::SpentClaimKey
    );
    w.ok(&k12, claim(12, "dave"));
    // Carol owns and moves it like any stamp.
    let body = w.transfer(11, "bob");
    w.ok(&key("carol"), body);
}

#[test]
fn swaps_move_every_stamp_or_none() {
    use cachet_types::SwapLeg;
    let mut w = World::new();
    let at = at(&w);
    w.ok(&at, mint(11, 13, "bob"));
    let (alice, bob) = (key("alice"), key("bob"));
    let leg = |w: &World, serial| SwapLeg {
        stamp: stamp(ISSUE, serial),
        last_event: w.last_event(serial),
    };
    let swap = |give: Vec<SwapLeg>, take: Vec<SwapLeg>, with: &str| TxBody::Swap {
        give,
        take,
        counterparty: address(with),
    };
    // alice's 1 and 2 for bob's 11, agreed by both.
    let body = swap(vec![leg(&w, 1), leg(&w, 2)], vec![leg(&w, 11)], "bob");
    // Without bob's cosignature, or with someone else's, the form is wrong.
    assert_eq!(w.refused(&alice, body.clone()).code(), "invalid_field");
    assert_eq!(
        w.refused_cosigned(&alice, body.clone(), &[&key("carol")])
            .code(),
        "invalid_field"
    );
    w.run_cosigned(&alice, body, &[&bob]).unwrap();
    let owner = |w: &World, serial| w.state.stamp(&stamp(ISSUE, serial)).unwrap().owner;
    assert_eq!(owner(&w, 1), Some(address("bob")));
    assert_eq!(owner(&w, 2), Some(address("bob")));
    assert_eq!(owner(&w, 11), Some(address("alice")));
    let swapped: Vec<_> = w
        .state
        .events
        .iter()
        .rev()
        .take(3)
        .map(|e| &e.kind)
        .collect();
    assert!(swapped.contains(&&EventKind::Swapped {
        from: address("bob"),
        to: address("alice")
    }));

    // One side no longer owns its stamp: nothing moves (refused() checks the state root).
    let body = swap(vec![leg(&w, 3)], vec![leg(&w, 12)], "bob");
    let moved = w.transfer(12, "carol");
    w.ok(&bob, moved);
    assert_eq!(
        w.refused_cosigned(&alice, body, &[&bob]),
        Rejection::NotOwner(stamp(ISSUE, 12))
    );
    // A stamp that moved on since the offer; a stamp named twice; a swap with oneself.
    let stale = swap(vec![leg(&w, 3)], vec![leg(&w, 13)], "bob");
    let approve = TxBody::Approve {
        stamp: stamp(ISSUE, 13),
        operator: address("dave"),
        until: cachet_types::Deadline::Height(1_000),
    };
    w.ok(&bob, approve);
    assert_eq!(
        w.refused_cosigned(&alice, stale, &[&bob]).code(),
        "stale_event"
    );
    let twice = swap(vec![leg(&w, 3)], vec![leg(&w, 3)], "bob");
    assert_eq!(
        w.refused_cosigned(&alice, twice, &[&bob]).code(),
        "invalid_swap"
    );
    let alone = swap(vec![leg(&w, 3)], vec![leg(&w, 4)], "alice");
    assert_eq!(w.refused(&alice, alone).code(), "invalid_field");
    // A frozen stamp does not move in a swap either.
    w.ok(
        &at,
        TxBody::Freeze {
            stamp: stamp(ISSUE, 13),
            reason: FreezeReason::Disputed,
            case_ref: "C-1".into(),
        },
    );
    let frozen = swap(vec![leg(&w, 3)], vec![leg(&w, 13)], "bob");
    assert_eq!(
        w.refused_cosigned(&alice, frozen, &[&bob]),
        Rejection::Frozen(stamp(ISSUE, 13))
    );
}
