//! Catch-up sync benchmark: a node that is far behind applies a chain of certified blocks
//! through the consensus host's sync path (`Chain::commit_synced` on each answer's decoded
//! blocks, `SYNC_BATCH` at a time, as `Core::on_blocks` does when a peer answers a sync
//! request): decode, certificate check, batch signature checks (of the next block, while
//! this one executes), execution, state tree and a synced RocksDB commit (behind the next
//! block's execution). Prints the rate
//! in transactions per second beside the target and the batch-verify rate of the same run.
//!
//! Run: `cargo run --release -p cachet-benches --bin sync -- [TRANSFERS] [BLOCK_TXS]`

mod workload;

use std::time::Instant;

use cachet_host::{Chain, Mempool, NoHooks, SYNC_BATCH};
use cachet_storage::{Ledger, Store};
use cachet_types::{CertifiedBlock, codec};
use workload::{Rates, Workload, row, threads, transfers_and_block_size};

/// The target for catch-up sync, transactions per second.
const TARGET_TX_PER_S: f64 = 100_000.0;

fn main() {
    let (transfers, block_txs) = transfers_and_block_size();
    let cores = threads();
    println!(
        "cachet sync benchmark: a lagging node catches up {transfers} mints + {transfers} transfers, blocks of {block_txs}, {cores} cores"
    );
    let rates = Rates::measure(20_000);
    let mut workload = Workload::prepare(transfers, block_txs);
    workload.ingest();
    let source = workload.ledger.store();
    let tip = source.tip().unwrap_or_else(|e| panic!("{e}"));
    // What peers send: the stored bytes of each certified block (read before the clock).
    let blocks = workload.block_bytes();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let lagging = Chain::new(
        Ledger::new(
            Store::open(dir.path(), &workload.chain.genesis).unwrap_or_else(|e| panic!("{e}")),
        ),
        Mempool::new(10_000, 10_000),
        Box::new(NoHooks),
    );
    let start = Instant::now();
    let mut txs = 0u64;
    for answer in blocks.chunks(SYNC_BATCH as usize) {
        let run = answer
            .iter()
            .map(|bytes| {
                let certified: CertifiedBlock =
                    codec::decode(bytes, codec::MAX_DECODE_BYTES).unwrap_or_else(|e| panic!("{e}"));
                (None, certified)
            })
            .collect();
        let (committed, failure) = lagging.commit_synced(run);
        if let Some(error) = failure {
            panic!("{error}");
        }
        txs += committed.iter().map(|c| c.txs.len() as u64).sum::<u64>();
    }
    let elapsed = start.elapsed();
    let caught_up = lagging
        .ledger()
        .store()
        .tip()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        caught_up.block_hash, tip.block_hash,
        "the lagging node ended elsewhere"
    );
    let rate = txs as f64 / elapsed.as_secs_f64();
    let batch_bound = cores as f64 * 1e6 / rates.batch_us;
    println!(
        "catch-up sync (decode + certificate + batch verify + execute + state tree + commit):"
    );
    println!(
        "  {rate:8.0} tx/s   ({} blocks, {txs} transactions in {:.2} s; {:.0}% of the batch-verify bound {batch_bound:.0} sig/s)",
        blocks.len(),
        elapsed.as_secs_f64(),
        100.0 * rate / batch_bound
    );
    row(
        "catch-up sync of a lagging node",
        &format!("{rate:.0} tx/s"),
        ">= 100,000 tx/s",
        rate / TARGET_TX_PER_S,
    );
}
