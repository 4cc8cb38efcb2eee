//! State sync between real processes: the four validators make a snapshot every four
//! blocks; the observer, stopped and brought back with an empty ledger and `--state-sync`,
//! takes the state of a certified block from them instead of replaying, follows the chain
//! from there at once, and once its backfill has replayed the older blocks serves a stamp's
//! full provenance: a bundle that verifies offline against the genesis alone.

use cachet_types::StampId;

use super::*;

/// Heights in the lines of `log` that contain `marker`, read from `height=N`.
fn heights_logged(log: &str, marker: &str) -> Vec<u64> {
    log.lines()
        .filter(|line| line.contains(marker))
        .filter_map(|line| {
            let at = line.find("height=")? + "height=".len();
            let digits: String = line[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn a_node_joins_by_state_sync_follows_and_serves_full_provenance_after_its_backfill() {
    let _turn = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::start_with_args(None, &["--snapshot-interval", "4"]);
    net.wait_connected();
    let mut op = Operator::new(&net, 0);
    let final_at = |net: &Net, tx: &SignedTx| {
        net.submit(0, tx);
        let mut height = None;
        net.wait_until(&format!("{} final", tx.body.kind()), |net| {
            height = net.is_final_at(0, &tx.id());
            height.is_some()
        });
        height.unwrap()
    };
    final_at(&net, &op.create(&net, 0));
    final_at(&net, &op.mint(&net, "alice"));
    // Stamp 1 moves alice -> bob: its provenance has two events.
    let stamp = StampId {
        issue: op.issue.clone(),
        serial: 1,
    };
    let record = net.rt.block_on(net.client(0).stamp(&stamp)).unwrap();
    let transfer = SignedTx::sign(
        net.genesis.chain_id(),
        &cachet_testkit::key("alice"),
        1,
        TxBody::Transfer {
            stamp: stamp.clone(),
            last_event: record.last_event,
            to: cachet_testkit::address("bob"),
        },
    );
    let moved_at = final_at(&net, &transfer);
    // Blocks come with transactions: mint until a validator has made a snapshot past the
    // transfer.
    net.wait_until("a snapshot made past the transfer", |net| {
        let made = heights_logged(&net.nodes[0].log(), "snapshot made for joining nodes");
        if made.iter().any(|h| *h >= moved_at) {
            return true;
        }
        let mut minter = Operator {
            key: op.key.clone(),
            issue: op.issue.clone(),
            nonce: op.nonce,
            next_serial: op.next_serial,
        };
        final_at(net, &minter.mint(net, "carol"));
        op.nonce = minter.nonce;
        op.next_serial = minter.next_serial;
        false
    });

    // The observer loses its ledger and comes back by state sync.
    let observer = OBSERVER;
    net.nodes[observer].kill9();
    let data_dir = net.layout.data_dir(&net.dir, observer);
    std::fs::remove_dir_all(data_dir.join("db")).unwrap();
    let mut args: Vec<std::ffi::OsString> = net.nodes[observer].args().to_vec();
    args.push("--state-sync".into());
    net.nodes[observer].restart_with(args);
    let imported = heights_logged(
        &net.nodes[observer].log(),
        "state sync: imported the snapshot",
    );
    let snapshot_height = *imported
        .last()
        .unwrap_or_else(|| panic!("the observer did not join by a snapshot\n{}", net.logs()));
    assert!(snapshot_height >= moved_at, "a snapshot past the transfer");
    assert!(
        !net.nodes[observer]
            .log()
            .contains("catching up by replaying"),
        "it joined by the snapshot, not by replay"
    );

    // It follows the chain from the snapshot: new transactions become final there.
    let next = op.mint(&net, "dave");
    final_at(&net, &next);
    net.wait_until("the state-synced observer follows the chain", |net| {
        net.is_final_at(observer, &next.id()).is_some()
    });
    assert_eq!(
        net.rt
            .block_on(net.client(observer).stamp(&stamp))
            .unwrap()
            .owner,
        Some(cachet_testkit::address("bob"))
    );

    // Once the backfill has replayed the older blocks, the stamp's whole provenance is
    // served, and it verifies against the genesis alone.
    net.wait_until("the backfill ends", |net| {
        net.nodes[observer]
            .log()
            .contains("backfill: every block's history is here")
    });
    let bundle = net
        .rt
        .block_on(net.client(observer).bundle(&stamp))
        .unwrap_or_else(|e| panic!("no bundle after the backfill: {e}\n{}", net.logs()));
    let verified = cachet_provenance::verify(&bundle, &net.genesis)
        .unwrap_or_else(|e| panic!("the bundle does not verify: {e}"));
    assert_eq!(bundle.events.len(), 2, "minted, then moved to bob");
    let _ = verified;
    assert!(
        !data_dir.join("backfill").exists(),
        "the scratch ledger is removed"
    );
}
