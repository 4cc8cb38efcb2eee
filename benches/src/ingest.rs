//! Ingest benchmark: signed transfers per second through the node's path — decode, batch
//! verify on every core (gossip admission's rule; API submissions are verified one by one),
//! execute, update the state tree, certify and
//! commit to RocksDB — next to the raw single and batch verification rates measured in the
//! same run, so the ratio to the physical limit (one verification per transfer) is visible.
//!
//! Run: `cargo run --release -p cachet-benches --bin ingest -- [TRANSFERS] [BLOCK_TXS]`

mod workload;

use std::time::{Duration, Instant};

use workload::{Rates, Workload, row, threads, transfers_and_block_size};

fn main() {
    let (transfers, block_txs) = transfers_and_block_size();
    let cores = threads();
    println!(
        "cachet ingest benchmark: {transfers} transfers, blocks of {block_txs}, {cores} cores"
    );
    let rates = Rates::measure(20_000);
    let mut workload = Workload::prepare(transfers, block_txs);

    let start = Instant::now();
    let times = workload.ingest();
    let total = start.elapsed();

    let rate = transfers as f64 / total.as_secs_f64();
    let per_tx = |d: Duration| d.as_secs_f64() * 1e6 / transfers as f64;
    println!(
        "ingest (decode + batch verify on {cores} cores + execute + state tree + certify + commit):"
    );
    println!(
        "  {rate:8.0} transfers/s   ({:.1} us/transfer)",
        per_tx(total)
    );
    println!(
        "  per transfer: decode+batch verify {:.1} us, execute+tree {:.1} us, certify+commit {:.1} us",
        per_tx(times.verify),
        per_tx(times.execute),
        per_tx(times.commit)
    );
    let single_bound = cores as f64 * 1e6 / rates.single_us;
    let batch_bound = cores as f64 * 1e6 / rates.batch_us;
    println!(
        "  ratio to the verification bound: {:.0}% of single-verify ({single_bound:.0}/s), {:.0}% of batch-verify ({batch_bound:.0}/s)",
        100.0 * rate / single_bound,
        100.0 * rate / batch_bound
    );
    row(
        "single-node ingest (verify + execute + state tree + certify + commit)",
        &format!(
            "{rate:.0} transfers/s = {:.0}% of the batch-verify bound ({batch_bound:.0} sig/s)",
            100.0 * rate / batch_bound
        ),
        ">= 70% of the batch-verify bound",
        rate / batch_bound / 0.7,
    );
    let tip = workload
        .ledger
        .store()
        .tip()
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "  final height {}, state root {}",
        tip.height,
        tip.state_root.hash().short()
    );
}
