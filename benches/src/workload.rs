//! Shared benchmark workload: a chain where every stamp was minted to one of many
//! collectors, and one pre-signed transfer per stamp; plus the signature-rate probe.

// Shared by several benchmark binaries; each uses a part.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use cachet_state::event_hash;
use cachet_storage::{Ledger, Store};
use cachet_testkit::{TestChain, TxFactory, issue_id, issue_record, key};
use cachet_types::os_rng;
use cachet_types::{
    BatchVerifier, ChainParams, CommitCertificate, Hash, SignedTx, SigningKey, StampId, TxBody,
    VerifiedTx,
};

const ISSUE: &str = "AT-2026-001";
const OWNERS: usize = 1000;

/// Prints one figure as a row of the summary table that `benches/run` collects: what was
/// measured, the bound or target, and `achieved` = the fraction of the target reached (1.0
/// or more: met; for a "lower is better" figure, target / measured).
pub fn row(figure: &str, measured: &str, target: &str, achieved: f64) {
    let verdict = if achieved >= 1.0 { "met" } else { "missed" };
    println!(
        "row: | {figure} | {measured} | {target} | {:.0}% | {verdict} |",
        100.0 * achieved
    );
}

/// Peak resident memory of this process (VmHWM), in bytes.
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kb| kb * 1024)
}

/// Bytes of every file under `path`.
pub fn disk_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The command line of the ledger benchmarks: `[TRANSFERS] [BLOCK_TXS]` (100,000 and 10,000
/// by default).
pub fn transfers_and_block_size() -> (usize, usize) {
    let args: Vec<String> = std::env::args().collect();
    let transfers = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let block_txs = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    (transfers, block_txs)
}

/// Cores available.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Splits `items` over every core and maps each chunk with `f`.
pub fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(threads()).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| scope.spawn(|| f(c))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| panic!("worker panicked")))
            .collect()
    })
}

/// Verification cost of the node's signature rule on one core, in microseconds.
pub struct Rates {
    /// One signature at a time.
    pub single_us: f64,
    /// In batches of 1024.
    pub batch_us: f64,
}

impl Rates {
    /// Measures both over `samples` signatures and prints them.
    pub fn measure(samples: usize) -> Rates {
        let keys: Vec<SigningKey> = (0..64).map(|i| key(&format!("sig-{i}"))).collect();
        let items: Vec<(usize, Vec<u8>, cachet_types::Signature)> = (0..samples)
            .map(|i| {
                let message = format!("message {i}").into_bytes();
                let signature = keys[i % keys.len()].sign(&message);
                (i % keys.len(), message, signature)
            })
            .collect();
        let publics: Vec<_> = keys.iter().map(SigningKey::public_key).collect();
        let start = Instant::now();
        for (k, message, signature) in &items {
            assert!(publics[*k].verify(message, signature).is_ok());
        }
        let single_us = start.elapsed().as_secs_f64() * 1e6 / samples as f64;
        let start = Instant::now();
        for chunk in items.chunks(1024) {
            let mut batch = BatchVerifier::new();
            for (k, message, signature) in chunk {
                batch.queue(&publics[*k], message, signature);
            }
            assert!(batch.verify(os_rng()).is_ok());
        }
        let batch_us = start.elapsed().as_secs_f64() * 1e6 / samples as f64;
        let rates = Rates {
            single_us,
            batch_us,
        };
        let cores = threads() as f64;
        println!("signature verification (ZIP-215, one core):");
        println!(
            "  single  {:6.1} us/sig  {:8.0} sig/s   ({cores} cores: {:8.0} sig/s)",
            rates.single_us,
            1e6 / rates.single_us,
            cores * 1e6 / rates.single_us
        );
        println!(
            "  batch   {:6.1} us/sig  {:8.0} sig/s   ({cores} cores: {:8.0} sig/s)",
            rates.batch_us,
            1e6 / rates.batch_us,
            cores * 1e6 / rates.batch_us
        );
        rates
    }
}

/// A ledger on disk with stamps minted and transfers signed, ready to ingest.
pub struct Workload {
    /// The chain.
    pub chain: TestChain,
    /// The ledger (in `dir`).
    pub ledger: Ledger,
    /// Where the ledger lives.
    pub dir: tempfile::TempDir,
    /// Signed transfers, canonical bytes, in the order a mempool would hand them out.
    pub transfers: Vec<Vec<u8>>,
    /// Transactions per block.
    pub block_txs: usize,
    time_ms: u64,
}

/// Time spent per phase of ingest.
#[derive(Default)]
pub struct IngestTimes {
    /// Decode and batch-verify (all cores, on their own threads, ahead of execution).
    pub verify: Duration,
    /// Execute and update the state tree.
    pub execute: Duration,
    /// Certify, wait for the previous block's write and start this one's (the last one's
    /// wait included).
    pub commit: Duration,
}

impl Workload {
    /// Sets up `transfers` stamps and their transfers (not timed).
    pub fn prepare(transfers: usize, block_txs: usize) -> Workload {
        let params = ChainParams {
            max_block_txs: block_txs as u32,
            max_mint_per_tx: 10_000,
            ..ChainParams::default()
        };
        let mut workload = Workload::empty(params, block_txs);
        let owners: Vec<SigningKey> = (0..OWNERS).map(|i| key(&format!("owner-{i}"))).collect();
        let mut factory = TxFactory::new(workload.chain.chain_id);
        let operator = workload.chain.issuer(0).clone();
        let create = factory.sign(
            &operator,
            TxBody::CreateIssue {
                record: issue_record(ISSUE, "AT-POST", transfers as u32),
            },
        );
        workload.commit(vec![VerifiedTx::new_unchecked(create)]);
        let mints: Vec<SignedTx> = (1..=transfers as u32)
            .map(|serial| {
                factory.sign(
                    &operator,
                    TxBody::Mint {
                        issue: issue_id(ISSUE),
                        first_serial: serial,
                        last_serial: serial,
                        owner: owners[serial as usize % OWNERS].public_key().address(),
                        variant: None,
                        claim_keys: Vec::new(),
                    },
                )
            })
            .collect();
        let mint_ids: Vec<Hash> = mints.iter().map(SignedTx::id).collect();
        for chunk in mints.chunks(block_txs) {
            workload.commit(
                chunk
                    .iter()
                    .cloned()
                    .map(VerifiedTx::new_unchecked)
                    .collect(),
            );
        }
        let chain_id = workload.chain.chain_id;
        // Each owner signs its transfers in nonce order; a mempool hands them out by round.
        let mut order: Vec<usize> = (0..transfers).collect();
        order.sort_by_key(|i| (i / OWNERS, (i + 1) % OWNERS));
        let jobs: Vec<usize> = order;
        workload.transfers = on_all_cores(&jobs, |chunk| {
            chunk
                .iter()
                .map(|i| {
                    let serial = *i as u32 + 1;
                    let stamp = StampId::new(issue_id(ISSUE), serial);
                    let from = &owners[serial as usize % OWNERS];
                    let to = owners[(serial as usize + 1) % OWNERS]
                        .public_key()
                        .address();
                    let last_event = event_hash(&stamp, &Hash::ZERO, &mint_ids[*i]);
                    let nonce = (i / OWNERS) as u64 + 1;
                    let body = TxBody::Transfer {
                        stamp,
                        last_event,
                        to,
                    };
                    SignedTx::sign(chain_id, from, nonce, body).to_bytes()
                })
                .collect()
        });
        workload
    }

    /// A ledger on disk for `params` (one operator), holding the genesis only.
    pub fn empty(params: ChainParams, block_txs: usize) -> Workload {
        let chain = TestChain::with_params(1, params);
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let ledger =
            Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap_or_else(|e| panic!("{e}")));
        Workload {
            time_ms: chain.genesis.genesis_time_ms,
            chain,
            ledger,
            dir,
            transfers: Vec::new(),
            block_txs,
        }
    }

    /// Builds, certifies and commits one block of `txs` (all must apply); returns the time
    /// spent building (execute + tree) and certifying + committing.
    /// Like [`Workload::commit`], written behind: the block's write runs while the caller
    /// goes on (the next block executes on the state ahead of the store).
    pub fn commit_behind(&mut self, txs: Vec<VerifiedTx>) -> (Duration, Duration) {
        self.time_ms += 1000;
        let t0 = Instant::now();
        let proposal = self
            .ledger
            .build(txs, self.time_ms, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            proposal.rejected.is_empty(),
            "{:?}",
            proposal.rejected.first()
        );
        let t1 = Instant::now();
        let cert =
            CommitCertificate::sign(&proposal.block.header, 0, &[(0, self.chain.validator(0))]);
        self.ledger
            .commit_proposal_behind(proposal, cert)
            .unwrap_or_else(|e| panic!("{e}"));
        (t1 - t0, t1.elapsed())
    }

    pub fn commit(&mut self, txs: Vec<VerifiedTx>) -> (Duration, Duration) {
        self.time_ms += 1000;
        let t0 = Instant::now();
        let proposal = self
            .ledger
            .build(txs, self.time_ms, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            proposal.rejected.is_empty(),
            "{:?}",
            proposal.rejected.first()
        );
        let t1 = Instant::now();
        let cert =
            CommitCertificate::sign(&proposal.block.header, 0, &[(0, self.chain.validator(0))]);
        self.ledger
            .commit_proposal(proposal, cert)
            .unwrap_or_else(|e| panic!("{e}"));
        (t1 - t0, t1.elapsed())
    }

    /// The stored bytes of every certified block, in height order: what peers send a
    /// node that syncs.
    pub fn block_bytes(&self) -> Vec<Vec<u8>> {
        let store = self.ledger.store();
        let tip = store.tip().unwrap_or_else(|e| panic!("{e}"));
        (1..=tip.height)
            .map(|h| {
                store
                    .block_bytes(h)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|| panic!("block {h} missing"))
            })
            .collect()
    }

    /// Ingests every transfer: decode and batch-verify on all cores, then build and commit
    /// blocks.
    pub fn ingest(&mut self) -> IngestTimes {
        let max_tx_bytes = self.chain.genesis.params.max_tx_bytes as usize;
        let chain_id = self.chain.chain_id;
        let mut times = IngestTimes::default();
        let transfers = std::mem::take(&mut self.transfers);
        let block_txs = self.block_txs;
        // Pipelined as the node runs: admission decodes and batch-verifies on every core, on
        // its own threads, ahead of the block being executed; each block is written behind
        // the execution of the next (`Ledger::commit_proposal_behind`).
        std::thread::scope(|scope| {
            let (send, receive) = std::sync::mpsc::sync_channel(1);
            let transfers = &transfers;
            let verifier = scope.spawn(move || {
                let mut verify = Duration::ZERO;
                for block in transfers.chunks(block_txs) {
                    let t0 = Instant::now();
                    let decoded: Vec<SignedTx> = on_all_cores(block, |chunk| {
                        chunk
                            .iter()
                            .map(|bytes| {
                                SignedTx::from_bytes(bytes, max_tx_bytes)
                                    .unwrap_or_else(|e| panic!("{e}"))
                            })
                            .collect()
                    });
                    let verified = cachet_types::verify_parallel(&chain_id, decoded)
                        .unwrap_or_else(|(index, e)| panic!("transaction {index}: {e}"));
                    verify += t0.elapsed();
                    if send.send(verified).is_err() {
                        break;
                    }
                }
                verify
            });
            for verified in receive {
                let (execute, commit) = self.commit_behind(verified);
                times.execute += execute;
                times.commit += commit;
            }
            times.verify = verifier
                .join()
                .unwrap_or_else(|_| panic!("verifier failed"));
        });
        let t0 = Instant::now();
        self.ledger.settle().unwrap_or_else(|e| panic!("{e}"));
        times.commit += t0.elapsed();
        self.transfers = transfers;
        times
    }
}
