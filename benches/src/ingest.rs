//! Ingest benchmark: signed transfers per second through the node's path — decode, verify
//! (the node's validity rule, on every core), execute, update the state tree, certify and
//! commit to RocksDB — next to the raw single and batch verification rates measured in the
//! same run, so the ratio to the physical limit (one verification per transfer) is visible.
//!
//! Run: `cargo run --release -p cachet-benches --bin ingest -- [TRANSFERS] [BLOCK_TXS]`

use std::time::{Duration, Instant};

use cachet_state::event_hash;
use cachet_storage::{Ledger, Store};
use cachet_testkit::{TestChain, TxFactory, issue_id, issue_record, key};
use cachet_types::rand_core::OsRng;
use cachet_types::{
    BatchVerifier, ChainParams, CommitCertificate, Hash, SignedTx, SigningKey, StampId, TxBody,
    VerifiedTx,
};

const ISSUE: &str = "AT-2026-001";
const OWNERS: usize = 1000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Splits `items` over every core and maps each chunk with `f`.
fn on_all_cores<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let chunk = items.len().div_ceil(threads()).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.chunks(chunk).map(|c| scope.spawn(|| f(c))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| panic!("worker panicked")))
            .collect()
    })
}

struct Rates {
    single_us: f64,
    batch_us: f64,
}

fn signature_rates(samples: usize) -> Rates {
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
        assert!(batch.verify(OsRng).is_ok());
    }
    let batch_us = start.elapsed().as_secs_f64() * 1e6 / samples as f64;
    Rates {
        single_us,
        batch_us,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let transfers: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let block_txs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let cores = threads();
    println!(
        "cachet ingest benchmark: {transfers} transfers, blocks of {block_txs}, {cores} cores"
    );

    let rates = signature_rates(20_000);
    let single_core_single = 1e6 / rates.single_us;
    let single_core_batch = 1e6 / rates.batch_us;
    println!("signature verification (ZIP-215, one core):");
    println!(
        "  single  {:6.1} us/sig  {:8.0} sig/s   ({} cores: {:8.0} sig/s)",
        rates.single_us,
        single_core_single,
        cores,
        single_core_single * cores as f64
    );
    println!(
        "  batch   {:6.1} us/sig  {:8.0} sig/s   ({} cores: {:8.0} sig/s)",
        rates.batch_us,
        single_core_batch,
        cores,
        single_core_batch * cores as f64
    );

    // Set-up (not timed): an issue, every stamp minted to one of OWNERS collectors, and one
    // pre-signed transfer per stamp, each from its owner to the next collector.
    let params = ChainParams {
        max_block_txs: block_txs as u32,
        max_mint_per_tx: 10_000,
        ..ChainParams::default()
    };
    let chain = TestChain::with_params(1, params);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ledger =
        Ledger::new(Store::open(dir.path(), &chain.genesis).unwrap_or_else(|e| panic!("{e}")));
    let owners: Vec<SigningKey> = (0..OWNERS).map(|i| key(&format!("owner-{i}"))).collect();
    let mut factory = TxFactory::new(chain.chain_id);
    let operator = chain.issuer(0).clone();
    let mut time_ms = chain.genesis.genesis_time_ms;
    let mut commit = |txs: Vec<SignedTx>| {
        time_ms += 1000;
        let verified: Vec<VerifiedTx> = txs.into_iter().map(VerifiedTx::new_unchecked).collect();
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
    let create = factory.sign(
        &operator,
        TxBody::CreateIssue {
            record: issue_record(ISSUE, "AT-POST", transfers as u32),
        },
    );
    commit(vec![create]);
    let mut mint_ids = Vec::new();
    let mut first = 1u32;
    while (first as usize) <= transfers {
        let last = (first + 9_999).min(transfers as u32);
        // One mint per owner would be slow to set up; mint ranges, then hand them out.
        let mut txs = Vec::new();
        for serial in first..=last {
            let owner = owners[serial as usize % OWNERS].public_key().address();
            txs.push(factory.sign(
                &operator,
                TxBody::Mint {
                    issue: issue_id(ISSUE),
                    first_serial: serial,
                    last_serial: serial,
                    owner,
                },
            ));
        }
        mint_ids.extend(txs.iter().map(SignedTx::id));
        for chunk in txs.chunks(block_txs) {
            commit(chunk.to_vec());
        }
        first = last + 1;
    }
    let chain_id = chain.chain_id;
    let transfers_signed: Vec<Vec<u8>> = {
        let jobs: Vec<(usize, u64)> = (0..transfers)
            .map(|i| (i, (i / OWNERS) as u64 + 1))
            .collect();
        on_all_cores(&jobs, |chunk| {
            chunk
                .iter()
                .map(|(i, nonce)| {
                    let serial = *i as u32 + 1;
                    let stamp = StampId::new(issue_id(ISSUE), serial);
                    let from = &owners[serial as usize % OWNERS];
                    let to = owners[(serial as usize + 1) % OWNERS]
                        .public_key()
                        .address();
                    let last_event = event_hash(&stamp, &Hash::ZERO, &mint_ids[*i]);
                    SignedTx::sign(
                        chain_id,
                        from,
                        *nonce,
                        TxBody::Transfer {
                            stamp,
                            last_event,
                            to,
                        },
                    )
                    .to_bytes()
                })
                .collect()
        })
    };
    // Owners sign in nonce order: order the stream by (round, owner) as a mempool would.
    let mut order: Vec<usize> = (0..transfers).collect();
    order.sort_by_key(|i| ((i / OWNERS), (i + 1) % OWNERS));

    // Timed: bytes in, blocks committed.
    let max_tx_bytes = chain.genesis.params.max_tx_bytes as usize;
    let (mut verify_time, mut execute_time, mut commit_time) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let start = Instant::now();
    for block in order.chunks(block_txs) {
        let t0 = Instant::now();
        let bytes: Vec<&Vec<u8>> = block.iter().map(|i| &transfers_signed[*i]).collect();
        let verified: Vec<VerifiedTx> = on_all_cores(&bytes, |chunk| {
            chunk
                .iter()
                .map(|b| {
                    let tx =
                        SignedTx::from_bytes(b, max_tx_bytes).unwrap_or_else(|e| panic!("{e}"));
                    tx.verify(&chain_id).unwrap_or_else(|e| panic!("{e}"))
                })
                .collect()
        });
        let t1 = Instant::now();
        time_ms += 1000;
        let proposal = ledger
            .build(verified, time_ms, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            proposal.rejected.is_empty(),
            "{:?}",
            proposal.rejected.first()
        );
        let t2 = Instant::now();
        let cert = CommitCertificate::sign(&proposal.block.header, 0, &[(0, chain.validator(0))]);
        ledger
            .commit_proposal(proposal, cert)
            .unwrap_or_else(|e| panic!("{e}"));
        let t3 = Instant::now();
        verify_time += t1 - t0;
        execute_time += t2 - t1;
        commit_time += t3 - t2;
    }
    let total = start.elapsed();
    let rate = transfers as f64 / total.as_secs_f64();
    let per_tx = |d: Duration| d.as_secs_f64() * 1e6 / transfers as f64;
    println!(
        "ingest (decode + verify on {cores} cores + execute + state tree + certify + commit):"
    );
    println!(
        "  {rate:8.0} transfers/s   ({:.1} us/transfer)",
        per_tx(total)
    );
    println!(
        "  breakdown per transfer: decode+verify {:.1} us, execute+tree {:.1} us, commit {:.1} us",
        per_tx(verify_time),
        per_tx(execute_time),
        per_tx(commit_time)
    );
    let single_bound = single_core_single * cores as f64;
    let batch_bound = single_core_batch * cores as f64;
    println!(
        "  ratio to the verification bound: {:.0}% of single-verify ({single_bound:.0}/s), {:.0}% of batch-verify ({batch_bound:.0}/s)",
        100.0 * rate / single_bound,
        100.0 * rate / batch_bound
    );
    let tip = ledger.store().tip().unwrap_or_else(|e| panic!("{e}"));
    println!(
        "  final height {}, state root {}",
        tip.height,
        tip.state_root.hash().short()
    );
}
