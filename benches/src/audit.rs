//! Audit benchmark: whole-ledger re-verification from genesis (decode, batch signature
//! checks on every core, replay, state roots) in transactions per second, beside the
//! machine's batch-verify rate measured in the same run.
//!
//! Run: `cargo run --release -p cachet-benches --bin audit -- [TRANSFERS] [BLOCK_TXS]`

mod workload;

use workload::{Rates, Workload, row, threads, transfers_and_block_size};

fn main() {
    let (transfers, block_txs) = transfers_and_block_size();
    let cores = threads();
    println!(
        "cachet audit benchmark: {transfers} mints + {transfers} transfers, blocks of {block_txs}, {cores} cores"
    );
    let rates = Rates::measure(20_000);
    let mut workload = Workload::prepare(transfers, block_txs);
    workload.ingest();
    let scratch = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let report = cachet_storage::audit::audit(
        workload.dir.path(),
        &workload.chain.genesis,
        scratch.path(),
        &mut |_, _, _| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rate = report.txs as f64 / report.elapsed.as_secs_f64();
    let batch_bound = cores as f64 * 1e6 / rates.batch_us;
    println!("audit (decode + batch verify on {cores} cores + replay + state roots):");
    println!(
        "  {rate:8.0} tx/s   ({} blocks, {} transactions in {:.2} s)",
        report.blocks,
        report.txs,
        report.elapsed.as_secs_f64()
    );
    println!(
        "  ratio to the batch-verify bound: {:.0}% ({batch_bound:.0} sig/s on {cores} cores)",
        100.0 * rate / batch_bound
    );
    row(
        "whole-ledger audit",
        &format!(
            "{rate:.0} tx/s = {:.0}% of the batch-verify bound",
            100.0 * rate / batch_bound
        ),
        ">= 100,000 tx/s",
        rate / 100_000.0,
    );
}
