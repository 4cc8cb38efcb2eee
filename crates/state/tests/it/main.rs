//! State machine rules, one test per rule, each through signed transactions and blocks.

use cachet_state::{EventKind, Rejection, StampStatus};
use cachet_testkit::{MemoryState, TestChain, TxFactory, address, issue_record, key, stamp};
use cachet_types::{ChainParams, FreezeReason, Hash, SignedTx, TxBody};

const ISSUE: &str = "AT-2026-001";

struct World {
    chain: TestChain,
    state: MemoryState,
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
            state: MemoryState::new(),
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
        let tx = self.txs.sign(signer, body);
        let result = self.state.apply_one(&self.chain.genesis, &tx);
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
        let before = self.state.root_hash();
        let reason = self.run(signer, body).expect_err("must be refused");
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
    }
}

fn at(world: &World) -> cachet_types::SigningKey {
    world.chain.issuer(0).clone()
}

#[test]
fn mint_records_owner_supply_and_history() {
    let w = World::new();
    let s = w.state.stamp(&stamp(ISSUE, 7)).unwrap();
    assert_eq!(s.owner, address("alice"));
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
    assert_eq!(s.owner, address("bob"));
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
    let genesis = w.chain.genesis.clone();
    let replay = SignedTx::sign(chain_id, &alice, 1, body.clone());
    assert_eq!(w.state.apply_one(&genesis, &replay), Ok(()));
    // The very same transaction again: stale nonce.
    assert_eq!(
        w.state.apply_one(&genesis, &replay),
        Err(Rejection::StaleNonce { got: 1, last: 1 })
    );
    let gap = SignedTx::sign(chain_id, &alice, 3, w.transfer(2, "bob"));
    assert_eq!(
        w.state.apply_one(&genesis, &gap),
        Err(Rejection::NonceGap {
            got: 3,
            expected: 2
        })
    );
}

#[test]
fn wrong_chain_and_bad_signatures_are_refused() {
    let mut w = World::new();
    let genesis = w.chain.genesis.clone();
    let body = w.transfer(1, "bob");
    let other_chain = SignedTx::sign(Hash::sha256(b"other"), &key("alice"), 1, body.clone());
    assert!(matches!(
        w.state.apply_one(&genesis, &other_chain),
        Err(Rejection::WrongChain(_))
    ));
    // Chain id field rewritten to ours: the signature no longer matches.
    let mut relabelled = other_chain.clone();
    relabelled.chain_id = w.chain.chain_id;
    assert_eq!(
        w.state.apply_one(&genesis, &relabelled),
        Err(Rejection::BadSignature)
    );
    // Signature by someone else over alice's transaction.
    let mut forged = SignedTx::sign(w.chain.chain_id, &key("alice"), 1, body);
    forged.signature = key("mallory").sign(&forged.signing_bytes());
    assert_eq!(
        w.state.apply_one(&genesis, &forged),
        Err(Rejection::BadSignature)
    );
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
    let mut one = MemoryState::new();
    let outcomes = one.apply_block(&chain.genesis, &batch);
    assert!(outcomes[0].is_ok() && outcomes[1].is_ok());
    assert!(matches!(outcomes[2], Err(Rejection::DuplicateSerial(_))));
    assert!(matches!(outcomes[3], Err(Rejection::NotOperator)));
    assert!(one.stamp(&stamp(ISSUE, 6)).is_none());
    let mut two = MemoryState::new();
    two.apply_block(&chain.genesis, &batch);
    assert_eq!(one.root_hash(), two.root_hash());
    assert_ne!(one.root_hash(), Hash::ZERO);
}
mod golden;

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
        (StampStatus::Burned, address("alice"), 2)
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
    assert_eq!((s.owner, s.approval), (address("carol"), None));
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
