//! Commit certificate benchmark: the compact form's size and its verification cost as the
//! operator set grows, at the sizes the network is meant for (192 UPU members, 256 the
//! chain's limit). A certificate is the block's height, round and hash plus one
//! (validator index, ed25519 signature) pair per signer, for a quorum of more than two
//! thirds; `CommitCertificate::verify` checks each signature on its own.
//!
//! Run: `cargo run --release -p cachet-types --example certificate -- [ROUNDS]`
//!
//! It lives beside the types it measures (not in `benches/`, whose binaries link RocksDB),
//! so it builds in seconds.

use std::time::Instant;

use cachet_types::block::quorum;
use cachet_types::{
    BatchVerifier, BlockHeader, CommitCertificate, Hash, SigningKey, codec, os_rng,
};

/// The block time the certificate's cost is compared with.
const BLOCK_TIME_MS: f64 = 1_000.0;

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    println!("cachet certificate benchmark: {rounds} verifications per size, one core");
    println!(
        "{:>10} {:>7} {:>10} {:>14} {:>16} {:>12}",
        "validators", "quorum", "bytes", "verify ms", "one batch ms", "of 1 s block"
    );
    for validators in [4usize, 16, 64, 128, 192, 256] {
        let validator_keys: Vec<SigningKey> = (0..validators)
            .map(|i| {
                SigningKey::from_seed(
                    Hash::tagged("cachet/bench-validator", &[&(i as u64).to_be_bytes()]).0,
                )
            })
            .collect();
        let header = BlockHeader {
            chain_id: Hash::tagged("cachet/bench-chain", &[]),
            height: 7,
            prev_hash: Hash::tagged("cachet/bench-parent", &[]),
            time_ms: 1_800_000_000_000,
            proposer: 0,
            tx_count: 0,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
        };
        let need = quorum(validators);
        let signers: Vec<(u16, &SigningKey)> =
            (0..need).map(|i| (i as u16, &validator_keys[i])).collect();
        let certificate = CommitCertificate::sign(&header, 0, &signers);
        let bytes = codec::encode(&certificate).len();
        let keys: Vec<_> = validator_keys.iter().map(SigningKey::public_key).collect();

        let start = Instant::now();
        for _ in 0..rounds {
            certificate
                .verify(&header, &keys)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let verify_ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);

        // The same signatures in one batch (not what the node does today: the figure for
        // the decision in ARCHITECTURE.md).
        let message = cachet_types::block::vote_signing_bytes(
            &header.chain_id,
            cachet_types::VoteKind::Precommit,
            header.height,
            0,
            &header.hash(),
        );
        let start = Instant::now();
        for _ in 0..rounds {
            let mut batch = BatchVerifier::new();
            for entry in &certificate.signatures {
                batch.queue(
                    &keys[usize::from(entry.validator)],
                    &message,
                    &entry.signature,
                );
            }
            batch.verify(os_rng()).unwrap_or_else(|e| panic!("{e}"));
        }
        let batch_ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(rounds);
        println!(
            "{validators:>10} {need:>7} {bytes:>10} {verify_ms:>14.2} {batch_ms:>16.2} {:>11.1}%",
            100.0 * verify_ms / BLOCK_TIME_MS
        );
    }
    println!(
        "bound: a certificate is checked by every node once per block (and per block when \
         syncing); at 192 validators it should stay well under a tenth of a 1 s block"
    );
}
