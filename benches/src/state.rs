//! State-size benchmark: a ledger with millions of stamps (10,000,000 by default, one account
//! holding 1,000,000 of them), generated outside the timed part through the ledger's own
//! path and left to finish its compaction (a node that grew to that size over months carries
//! no such debt), then: stamp lookups, holdings pages of the big account, transfer ingest at
//! that size against the same ingest on a ledger of 100,000 stamps (long enough for the
//! compaction the transfers' own writes cause to run inside the timed part), peak memory,
//! and disk bytes per stamp and per transfer.
//!
//! Run: `cargo run --release -p cachet-benches --bin state -- [STAMPS] [HOLDER_STAMPS] [TRANSFERS]`

mod workload;

use std::time::{Duration, Instant};

use cachet_state::{StateKey, event_hash};
use cachet_testkit::{TxFactory, issue_id, issue_record, key};
use cachet_types::{ChainParams, Hash, SignedTx, SigningKey, StampId, TxBody, VerifiedTx};
use workload::{Workload, disk_bytes, on_all_cores, peak_rss_bytes, row};

const ISSUE: &str = "AT-2026-001";
/// Collectors the stamps outside the big account are spread over.
const OWNERS: usize = 1000;
/// Stamps per mint outside the big account (the big account gets the chain's maximum).
const MINT: usize = 100;
/// Stamps minted per block while generating.
const STAMPS_PER_BLOCK: usize = 100_000;
/// Targets of the issue.
const LOOKUP_P99_TARGET_MS: f64 = 0.5;
const HOLDINGS_TARGET_MS: f64 = 2.0;
const INGEST_RATIO_TARGET: f64 = 0.8;
const RSS_TARGET_BYTES: f64 = 2.0 * 1024.0 * 1024.0 * 1024.0;
/// Longest wait for the generated store's compaction to finish.
const SETTLE_LIMIT: Duration = Duration::from_secs(1200);
/// How often the store's compaction figures are read while waiting.
const SETTLE_POLL: Duration = Duration::from_millis(200);

/// A generated ledger and what its transfers need.
struct State {
    workload: Workload,
    owners: Vec<SigningKey>,
    holder: SigningKey,
    /// Mint transaction ids outside the big account, by mint number.
    mint_ids: Vec<Hash>,
    stamps: usize,
    holder_stamps: usize,
    generated_in: Duration,
}

fn generate(stamps: usize, holder_stamps: usize) -> State {
    let params = ChainParams {
        max_block_txs: 10_000,
        max_mint_per_tx: 10_000,
        max_print_run: stamps as u32,
        ..ChainParams::default()
    };
    let mut workload = Workload::empty(params, 10_000);
    let owners: Vec<SigningKey> = (0..OWNERS).map(|i| key(&format!("owner-{i}"))).collect();
    let holder = key("big-holder");
    let operator = workload.chain.issuer(0).clone();
    let mut factory = TxFactory::new(workload.chain.chain_id);
    let start = Instant::now();
    let create = factory.sign(
        &operator,
        TxBody::CreateIssue {
            record: issue_record(ISSUE, "AT-POST", stamps as u32),
        },
    );
    workload.commit(vec![VerifiedTx::new_unchecked(create)]);
    let mint = |factory: &mut TxFactory, first: usize, last: usize, owner: &SigningKey| {
        factory.sign(
            &operator,
            TxBody::Mint {
                issue: issue_id(ISSUE),
                first_serial: first as u32,
                last_serial: last as u32,
                owner: owner.public_key().address(),
                variant: None,
                claim_keys: Vec::new(),
            },
        )
    };
    // (first serial, last serial, owner index or None for the big account)
    let mut ranges: Vec<(usize, usize, Option<usize>)> = (0..holder_stamps.div_ceil(10_000))
        .map(|i| (i * 10_000 + 1, ((i + 1) * 10_000).min(holder_stamps), None))
        .collect();
    let rest = stamps - holder_stamps;
    ranges.extend((0..rest.div_ceil(MINT)).map(|m| {
        let first = holder_stamps + m * MINT + 1;
        (first, (first + MINT - 1).min(stamps), Some(m % OWNERS))
    }));
    let mut mint_ids = Vec::new();
    let mut block = Vec::new();
    let mut in_block = 0;
    let mut done = 0;
    let mut reported = 0;
    for (first, last, owner) in ranges {
        let tx = mint(
            &mut factory,
            first,
            last,
            owner.map_or(&holder, |o| &owners[o]),
        );
        if owner.is_some() {
            mint_ids.push(tx.id());
        }
        block.push(VerifiedTx::new_unchecked(tx));
        in_block += last - first + 1;
        if in_block >= STAMPS_PER_BLOCK {
            workload.commit(std::mem::take(&mut block));
            done += in_block;
            in_block = 0;
            if done - reported >= 1_000_000 {
                reported = done;
                eprintln!(
                    "  generating: {done} of {stamps} stamps ({:.0} stamps/s, {} MiB on disk)",
                    done as f64 / start.elapsed().as_secs_f64(),
                    disk_bytes(workload.dir.path()) >> 20
                );
            }
        }
    }
    if !block.is_empty() {
        workload.commit(block);
    }
    State {
        workload,
        owners,
        holder,
        mint_ids,
        stamps,
        holder_stamps,
        generated_in: start.elapsed(),
    }
}

impl State {
    /// `n` signed transfers of stamps outside the big account, in nonce order per owner.
    fn transfers(&self, n: usize) -> Vec<Vec<u8>> {
        let mints_per_owner = self.mint_ids.len() / OWNERS;
        assert!(mints_per_owner > 0, "too few stamps for {OWNERS} owners");
        let chain_id = self.workload.chain.chain_id;
        let jobs: Vec<usize> = (0..n).collect();
        on_all_cores(&jobs, |chunk| {
            chunk
                .iter()
                .map(|i| {
                    let (round, o) = (i / OWNERS, i % OWNERS);
                    let (j, s) = (round % mints_per_owner, round / mints_per_owner);
                    assert!(s < MINT, "too many transfers for this state");
                    let m = o + OWNERS * j;
                    let serial = self.holder_stamps + m * MINT + 1 + s;
                    let stamp = StampId::new(issue_id(ISSUE), serial as u32);
                    let body = TxBody::Transfer {
                        last_event: event_hash(&stamp, &Hash::ZERO, &self.mint_ids[m]),
                        stamp,
                        to: self.owners[(o + 1) % OWNERS].public_key().address(),
                    };
                    SignedTx::sign(chain_id, &self.owners[o], round as u64 + 1, body).to_bytes()
                })
                .collect()
        })
    }

    /// Ingests `n` transfers; returns transfers per second.
    fn ingest(&mut self, n: usize) -> f64 {
        self.workload.transfers = self.transfers(n);
        let start = Instant::now();
        self.workload.ingest();
        n as f64 / start.elapsed().as_secs_f64()
    }

    /// Waits, outside the timed parts, until RocksDB has no compaction pending or running;
    /// returns how long that took. A store generated in minutes carries gigabytes of
    /// compaction that a node which grew to its size over months has long done.
    fn settle(&self) -> Duration {
        let store = self.workload.ledger.store();
        let start = Instant::now();
        loop {
            let stats = store.stats();
            if stats.pending_compaction_bytes == 0 && stats.background_jobs == 0 {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < SETTLE_LIMIT,
                "RocksDB still has {} MiB to compact after {SETTLE_LIMIT:?}",
                stats.pending_compaction_bytes >> 20
            );
            std::thread::sleep(SETTLE_POLL);
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let stamps = arg(1, 10_000_000);
    let holder_stamps = arg(2, 1_000_000).min(stamps / 2);
    let transfers = arg(3, 100_000);
    println!(
        "cachet state benchmark: {stamps} stamps ({holder_stamps} in one account), {transfers} transfers"
    );

    // The reference: the same transfers on a ledger of 100,000 stamps.
    let mut small = generate(100_000, 0);
    small.settle();
    let small_rate = small.ingest(transfers);
    println!("  ingest at 100000 stamps: {small_rate:.0} transfers/s");
    drop(small);

    let mut big = generate(stamps, holder_stamps);
    let generated_bytes = disk_bytes(big.workload.dir.path());
    println!(
        "  generated {} stamps in {:.0} s (not timed below): {} MiB on disk, {:.0} bytes per stamp",
        big.stamps,
        big.generated_in.as_secs_f64(),
        generated_bytes >> 20,
        generated_bytes as f64 / big.stamps as f64
    );
    // Timed on a settled store, as a node that grew to this size would be; the compaction
    // the timed transfers' own writes cause runs during them.
    let settled_in = big.settle();
    println!(
        "  compaction of the generation settled after {:.0} s more (not timed)",
        settled_in.as_secs_f64()
    );
    let store = big.workload.ledger.store();

    // Stamp lookups: serials spread over the whole issue (a fixed LCG).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lookups: Vec<Duration> = (0..10_000)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let serial = (x >> 33) as usize % stamps + 1;
            let key = StateKey::Stamp(StampId::new(issue_id(ISSUE), serial as u32));
            let t = Instant::now();
            let found = store.state(&key).unwrap_or_else(|e| panic!("{e}"));
            let elapsed = t.elapsed();
            assert!(found.is_some(), "stamp {serial} missing");
            elapsed
        })
        .collect();
    lookups.sort();
    let (lookup_p50, lookup_p99) = (percentile(&lookups, 0.5), percentile(&lookups, 0.99));
    println!(
        "  stamp lookup among {stamps} stamps: p50 {lookup_p50:.3} ms, p99 {lookup_p99:.3} ms (10000 random stamps)"
    );

    // Holdings pages of the big account: the first page, and pages after cursors spread over it.
    let holder = big.holder.public_key().address();
    let mut pages: Vec<Duration> = (0..1000)
        .map(|i| {
            let after = (i > 0).then(|| {
                StampId::new(
                    issue_id(ISSUE),
                    ((i * 997) % holder_stamps.max(1) + 1) as u32,
                )
            });
            let t = Instant::now();
            let page = store
                .holdings(&holder, after.as_ref(), 100)
                .unwrap_or_else(|e| panic!("{e}"));
            let elapsed = t.elapsed();
            assert!(!page.is_empty(), "holdings page {i} empty");
            elapsed
        })
        .collect();
    pages.sort();
    let (page_p50, page_p99) = (percentile(&pages, 0.5), percentile(&pages, 0.99));
    println!(
        "  holdings page (100 of {holder_stamps} stamps): p50 {page_p50:.3} ms, p99 {page_p99:.3} ms (1000 pages)"
    );

    let before = disk_bytes(big.workload.dir.path());
    let big_rate = big.ingest(transfers);
    // Compaction may run meanwhile and shrink the directory: then no per-transfer figure.
    let after = disk_bytes(big.workload.dir.path());
    let per_transfer = if after >= before {
        format!(
            "{:.0} B/transfer",
            (after - before) as f64 / transfers as f64
        )
    } else {
        format!(
            "per transfer not measurable (compaction shrank the store by {} MiB meanwhile)",
            (before - after) >> 20
        )
    };
    let ratio = big_rate / small_rate;
    println!(
        "  ingest at {stamps} stamps: {big_rate:.0} transfers/s = {:.0}% of the rate at 100000",
        100.0 * ratio
    );
    let rss = peak_rss_bytes();
    println!(
        "  peak memory (VmHWM) of this process: {} MiB; disk: {:.0} bytes per stamp, {per_transfer}",
        rss >> 20,
        generated_bytes as f64 / stamps as f64,
    );
    row(
        &format!("holdings page of an account with {holder_stamps} stamps"),
        &format!("p50 {page_p50:.3} ms, p99 {page_p99:.3} ms"),
        "<= 2 ms",
        HOLDINGS_TARGET_MS / page_p99,
    );
    row(
        &format!("stamp lookup with {stamps} stamps in state"),
        &format!("p50 {lookup_p50:.3} ms, p99 {lookup_p99:.3} ms"),
        "p99 <= 0.5 ms",
        LOOKUP_P99_TARGET_MS / lookup_p99,
    );
    row(
        &format!("ingest with {stamps} stamps in state"),
        &format!(
            "{big_rate:.0}/s = {:.0}% of {small_rate:.0}/s at 100,000 ({transfers} transfers each)",
            100.0 * ratio
        ),
        ">= 80% of the rate at 100,000",
        ratio / INGEST_RATIO_TARGET,
    );
    row(
        "peak memory of the ledger process",
        &format!("{} MiB", rss >> 20),
        "<= 2 GiB",
        RSS_TARGET_BYTES / rss.max(1) as f64,
    );
    row(
        "disk bytes per stamp and per transfer",
        &format!(
            "{:.0} B/stamp, {per_transfer}",
            generated_bytes as f64 / stamps as f64,
        ),
        "printed",
        1.0,
    );
}
