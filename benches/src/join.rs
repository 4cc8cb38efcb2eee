//! Join-time benchmark: a new node joins a chain of about 1,000,000 transactions (N mints and
//! N transfers) by state sync versus by replaying every block. Both sides run the node's own
//! code without the network: replay is `Chain::commit_final` on each certified block (the
//! sync path); state sync is the host's `Joiner` fed the answers of a `ServedSnapshot` (offer
//! with its membership proof and certificate checks, every chunk encoded, decoded, checked
//! against the certified root and imported into RocksDB). The backfill that follows a state
//! sync (a replay in the background, the node already serving) is timed too.
//!
//! Run: `cargo run --release -p cachet-benches --bin join -- [TRANSFERS] [BLOCK_TXS]`
//! (500,000 and 10,000 by default: 1,000,001 transactions).

mod workload;

use std::collections::VecDeque;
use std::time::Instant;

use cachet_host::statesync::{Backfiller, Joiner, ServedSnapshot, answer};
use cachet_host::{Chain, Mempool, NoHooks};
use cachet_storage::snapshot::Backfill;
use cachet_storage::{Ledger, Store};
use cachet_types::{CertifiedBlock, codec};
use workload::{Workload, disk_bytes, row};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let transfers = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let block_txs = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    println!(
        "cachet join benchmark: a new node joins a chain of {transfers} mints + {transfers} transfers (blocks of {block_txs}) by state sync vs by replay"
    );
    let mut workload = Workload::prepare(transfers, block_txs);
    workload.ingest();
    let source = workload.ledger.store();
    let tip = source.tip().unwrap_or_else(|e| panic!("{e}"));
    let genesis = workload.chain.genesis.clone();
    let blocks = workload.block_bytes();
    let txs: usize = blocks
        .iter()
        .map(|b| {
            codec::decode::<CertifiedBlock>(b, codec::MAX_DECODE_BYTES)
                .unwrap_or_else(|e| panic!("{e}"))
                .block
                .txs
                .len()
        })
        .sum();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));

    // Replay: every block through the sync path.
    let replayed = Chain::new(
        Ledger::new(
            Store::open(&scratch.path().join("replay"), &genesis).unwrap_or_else(|e| panic!("{e}")),
        ),
        Mempool::new(10_000, 10_000),
        Box::new(NoHooks),
    );
    let start = Instant::now();
    for bytes in &blocks {
        let certified: CertifiedBlock =
            codec::decode(bytes, codec::MAX_DECODE_BYTES).unwrap_or_else(|e| panic!("{e}"));
        replayed
            .commit_final(None, certified)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let replay_s = start.elapsed().as_secs_f64();
    assert_eq!(
        replayed.ledger().store().tip().unwrap().block_hash,
        tip.block_hash
    );
    drop(replayed);
    println!(
        "  replay:      {replay_s:8.2} s   ({} blocks, {txs} transactions, {:.0} tx/s)",
        blocks.len(),
        txs as f64 / replay_s
    );

    // The serving side, not part of the join: a checkpoint and its offer.
    let start = Instant::now();
    let frozen = source
        .freeze(&scratch.path().join("frozen"))
        .unwrap_or_else(|e| panic!("{e}"));
    let served = ServedSnapshot::new(frozen).unwrap_or_else(|e| panic!("{e}"));
    let make_s = start.elapsed().as_secs_f64();
    let entries = source.state_entries().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "  snapshot made by a serving node in {make_s:.2} s: {entries} state entries, {} chunks at depth {}",
        served.manifest().non_empty().count(),
        served.manifest().depth
    );

    // State sync: the joiner, fed the serving node's answers.
    let target_path = scratch.path().join("joined");
    let target = Store::open(&target_path, &genesis).unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let mut joiner: Joiner<String> = Joiner::new(&target).unwrap_or_else(|e| panic!("{e}"));
    let mut queue: VecDeque<_> = joiner.on_peer("peer".to_string(), 0).into();
    let mut chunk_bytes = 0u64;
    while let Some(send) = queue.pop_front() {
        let bytes =
            answer(&[&served], source, &send.request, 32 << 20).unwrap_or_else(|e| panic!("{e}"));
        chunk_bytes += bytes.len() as u64;
        queue.extend(
            joiner
                .on_answer(&target, send.peer, &bytes, 0)
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    let joined = joiner.imported().expect("the joiner finished");
    let sync_s = start.elapsed().as_secs_f64();
    assert_eq!(joined, tip);
    println!(
        "  state sync:  {sync_s:8.2} s   ({} MB fetched and checked, {:.0} entries/s); store {} MB",
        chunk_bytes / 1_000_000,
        entries as f64 / sync_s,
        disk_bytes(&target_path) / 1_000_000
    );

    // The backfill after it, in the background of a serving node.
    let start = Instant::now();
    let backfill = Backfill::new(
        &target,
        Store::open(&scratch.path().join("backfill"), &genesis).unwrap_or_else(|e| panic!("{e}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut backfiller: Backfiller<String> = Backfiller::new(backfill);
    let mut queue: VecDeque<_> = backfiller
        .on_peer("peer".to_string(), 0)
        .unwrap_or_else(|e| panic!("{e}"))
        .into();
    while let Some(send) = queue.pop_front() {
        let bytes =
            answer(&[&served], source, &send.request, 32 << 20).unwrap_or_else(|e| panic!("{e}"));
        queue.extend(
            backfiller
                .on_answer(&target, send.peer, &bytes, 0)
                .unwrap_or_else(|e| panic!("{e}")),
        );
    }
    assert!(backfiller.done(), "the backfill finished");
    let backfill_s = start.elapsed().as_secs_f64();
    println!("  backfill:    {backfill_s:8.2} s   (in the background; full provenance after it)");
    row(
        &format!("join a chain of {txs} txs: state sync vs replay"),
        &format!("{sync_s:.1} s vs {replay_s:.1} s (backfill after: {backfill_s:.0} s)"),
        "faster than replay",
        replay_s / sync_s,
    );
}
