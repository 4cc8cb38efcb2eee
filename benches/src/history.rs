//! History benchmark: a stamp with many events (10,000 by default), and the time to read the
//! first page of its history (100 events) from RocksDB, as the API does.
//!
//! Run: `cargo run --release -p cachet-benches --bin history -- [EVENTS]`

mod workload;

use std::time::Instant;

use cachet_state::{StateKey, StateValue};
use cachet_storage::{Ledger, Store};
use cachet_testkit::{TestChain, TxFactory, address, issue_id, issue_record, key, stamp};
use cachet_types::{CommitCertificate, TxBody, VerifiedTx};

const ISSUE: &str = "AT-2026-001";

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
    println!("cachet history benchmark: one stamp with {events} events");
    let chain = TestChain::new(1);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ledger =
        Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap_or_else(|e| panic!("{e}")));
    let mut factory = TxFactory::new(chain.chain_id);
    let operator = chain.issuer(0).clone();
    let mut time_ms = chain.genesis.genesis_time_ms;
    let mut commit = |txs: Vec<cachet_types::SignedTx>| {
        time_ms += 1000;
        let verified = txs.into_iter().map(VerifiedTx::new_unchecked).collect();
        let proposal = ledger
            .build(verified, time_ms, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            proposal.rejected.is_empty(),
            "{:?}",
            proposal.rejected.first()
        );
        let cert = CommitCertificate::sign(&proposal.block.header, 0, &[(0, chain.validator(0))]);
        ledger
            .commit_proposal(proposal, cert)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    commit(vec![
        factory.sign(
            &operator,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", 10),
            },
        ),
        factory.sign(
            &operator,
            TxBody::Mint {
                issue: issue_id(ISSUE),
                first_serial: 1,
                last_serial: 10,
                owner: address("alice"),
                variant: None,
                claim_keys: Vec::new(),
            },
        ),
    ]);
    // The stamp goes back and forth between alice and bob, a thousand moves per block.
    let owners = [key("alice"), key("bob")];
    let target = stamp(ISSUE, 1);
    let mut moves = 1;
    while moves < events {
        let Ok(Some(StateValue::Stamp(mut current))) =
            ledger.store().state(&StateKey::Stamp(target.clone()))
        else {
            panic!("stamp missing")
        };
        let mut block = Vec::new();
        while moves < events && block.len() < 1000 {
            let from = &owners[(moves + 1) % 2];
            let to = owners[moves % 2].public_key().address();
            let tx = factory.sign(
                from,
                TxBody::Transfer {
                    stamp: target.clone(),
                    last_event: current.last_event,
                    to,
                },
            );
            current.last_event = cachet_state::event_hash(&target, &current.last_event, &tx.id());
            block.push(tx);
            moves += 1;
        }
        commit(block);
    }
    let store = ledger.store();
    let runs = 1000;
    let start = Instant::now();
    let mut total = 0;
    for _ in 0..runs {
        total += store
            .history(&target, None, 100)
            .unwrap_or_else(|e| panic!("{e}"))
            .len();
    }
    let first_page_us = start.elapsed().as_secs_f64() * 1e6 / runs as f64;
    assert_eq!(total, 100 * runs.min(events));
    let start = Instant::now();
    let last = store
        .history(&target, Some(events as u32 - 101), 100)
        .unwrap_or_else(|e| panic!("{e}"));
    let last_page_us = start.elapsed().as_secs_f64() * 1e6;
    assert_eq!(last.len(), 100);
    println!("  first page (100 of {events} events): {first_page_us:.0} us (mean of {runs})");
    println!(
        "  last page (cursor after event {}): {last_page_us:.0} us",
        events - 101
    );
    workload::row(
        &format!("first history page of a {events}-event stamp"),
        &format!("{first_page_us:.0} us"),
        "<= 1 ms",
        1000.0 / first_page_us,
    );
}
