//! Shared by the fuzz targets: the golden vectors, the node's decode limits, and the checks
//! every decoded value must pass. Each target includes it with `mod common;`.

#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::LazyLock;

use bincode::{Decode, Encode};
use cachet_provenance::ProvenanceBundle;
use cachet_types::tx::TX_WITNESS_TAG;
use cachet_types::{
    Block, BlockHeader, CertifiedBlock, ChainParams, CommitCertificate, Genesis, Hash, PublicKey,
    SignedTx, TxBody, TxCheckError, codec, os_rng, verify_batch,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

const GOLDEN_JSON: &str = include_str!("../../../specs/vectors/golden.json");
const GENESIS_4_JSON: &str = include_str!("../../../specs/vectors/genesis-4-operators.json");
const BUNDLE_JSON: &str = include_str!("../../../specs/vectors/bundle-AT-2026-001-42.json");

// ---------------------------------------------------------------------------------------
// Limits: what the node passes to the decoders (for a chain with the default parameters,
// which both golden chains have).

/// The chain parameters of the golden chains.
pub fn params() -> ChainParams {
    ChainParams::default()
}

/// `Node::admit` / `Node::admit_batch`: one transaction.
pub fn max_tx_bytes() -> usize {
    params().max_tx_bytes as usize
}

/// `replica::max_consensus_bytes`: a consensus envelope (a block and the message's own
/// fields); also the limit of each synced `CertifiedBlock` (`Replica::apply_blocks`).
pub fn max_consensus_bytes() -> usize {
    params().max_block_bytes as usize + 64 * 1024
}

/// `p2p::tx_batch_limit`: a gossiped transaction batch.
pub fn tx_batch_limit() -> usize {
    (256 * 1024).max(4 * max_tx_bytes())
}

/// `replica::MAX_SIGNER_STATE_BYTES` (private there).
pub const MAX_SIGNER_STATE_BYTES: usize = 64 * 1024;

/// The sync codec's request bound (`set_request_size_maximum(1024)` in cachet-network).
pub const SYNC_REQUEST_MAX: usize = 1024;

/// The sync codec's response bound: `(max_block_bytes + CONSENSUS_OVERHEAD) * 4`.
pub fn sync_response_max() -> usize {
    max_consensus_bytes() * 4
}

// ---------------------------------------------------------------------------------------
// Golden vectors (specs/vectors/), parsed once.

/// `golden.json`.
pub static GOLDEN: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::from_str(GOLDEN_JSON).expect("golden.json parses"));

fn golden_hex(name: &str, field: &str) -> Vec<u8> {
    let golden: &serde_json::Value = &GOLDEN;
    let text = golden[name][field]
        .as_str()
        .unwrap_or_else(|| panic!("golden.json has no string {name}.{field}"));
    hex::decode(text).expect("golden encodings are hex")
}

/// The one-operator chain of `golden.json`.
pub static GOLDEN_GENESIS: LazyLock<Genesis> = LazyLock::new(|| {
    codec::decode(&golden_hex("genesis", "encoding"), codec::MAX_DECODE_BYTES)
        .expect("the golden genesis decodes")
});

/// Its chain id.
pub static GOLDEN_CHAIN_ID: LazyLock<Hash> = LazyLock::new(|| GOLDEN_GENESIS.chain_id());

/// Its validator keys.
pub static GOLDEN_VALIDATORS: LazyLock<Vec<PublicKey>> =
    LazyLock::new(|| GOLDEN_GENESIS.validator_keys());

/// Its block 1 header.
pub static GOLDEN_HEADER: LazyLock<BlockHeader> = LazyLock::new(|| {
    codec::decode(&golden_hex("block_header", "encoding"), 1024)
        .expect("the golden header decodes")
});

/// The certificate of that header.
pub static GOLDEN_CERTIFICATE: LazyLock<CommitCertificate> = LazyLock::new(|| {
    codec::decode(&golden_hex("precommit", "encoding"), 64 * 1024)
        .expect("the golden certificate decodes")
});

/// The four-operator chain of `genesis-4-operators.json` (the golden bundle's chain).
pub static GENESIS_4: LazyLock<Genesis> = LazyLock::new(|| {
    serde_json::from_str(GENESIS_4_JSON).expect("genesis-4-operators.json parses")
});

/// Its chain id.
pub static GENESIS_4_CHAIN_ID: LazyLock<Hash> = LazyLock::new(|| GENESIS_4.chain_id());

/// Its validator keys.
pub static GENESIS_4_VALIDATORS: LazyLock<Vec<PublicKey>> =
    LazyLock::new(|| GENESIS_4.validator_keys());

/// The golden provenance bundle (of `GENESIS_4`'s chain).
pub static GOLDEN_BUNDLE: LazyLock<ProvenanceBundle> = LazyLock::new(|| {
    serde_json::from_str(BUNDLE_JSON).expect("bundle-AT-2026-001-42.json parses")
});

// ---------------------------------------------------------------------------------------
// Codec checks.

/// Decodes `data` as the node does (`codec::decode` with `limit`); whatever decodes must
/// re-encode to exactly the input (the codec promises one encoding per value).
pub fn decode_canonical<T: Decode<()> + Encode>(data: &[u8], limit: usize) -> Option<T> {
    let value = codec::decode::<T>(data, limit).ok()?;
    assert!(
        codec::encode(&value) == data,
        "a decoded value re-encodes to other bytes"
    );
    Some(value)
}

/// A value's canonical encoding decodes back to the same value (for values built from JSON).
pub fn binary_round_trip<T: Decode<()> + Encode + PartialEq + Debug>(value: &T) {
    let bytes = codec::encode(value);
    match codec::decode::<T>(&bytes, codec::MAX_DECODE_BYTES) {
        Ok(back) => assert_eq!(&back, value, "binary round trip changed the value"),
        Err(error) => panic!("the canonical encoding of {value:?} does not decode: {error}"),
    }
}

// ---------------------------------------------------------------------------------------
// JSON checks.

fn shorten(text: &str) -> String {
    text.chars().take(600).collect()
}

/// A value's JSON (every value of these types serializes).
pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a parsed value serializes to JSON")
}

/// A value's own JSON parses back to an equal value.
pub fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let text = to_json(value);
    match serde_json::from_str::<T>(&text) {
        Ok(back) => assert_eq!(&back, value, "JSON round trip changed the value"),
        Err(error) => panic!(
            "a value's own JSON does not parse back ({error}): {}",
            shorten(&text)
        ),
    }
}

/// For types without `PartialEq`: a value's own JSON parses back and serializes to the same
/// text. Returns that text.
pub fn json_stable<T: Serialize + DeserializeOwned>(value: &T) -> String {
    let text = to_json(value);
    let back: T = serde_json::from_str(&text).unwrap_or_else(|error| {
        panic!(
            "a value's own JSON does not parse back ({error}): {}",
            shorten(&text)
        )
    });
    let again = to_json(&back);
    assert!(
        again == text,
        "JSON round trip is not stable:\n first: {}\nsecond: {}",
        shorten(&text),
        shorten(&again)
    );
    text
}

// ---------------------------------------------------------------------------------------
// Transactions, blocks, certificates.

/// Cheap checks of a decoded transaction (no signature): it re-decodes alone, its witness
/// hash covers exactly its bytes, and the stateless checks and field helpers do not panic.
/// Returns the stateless verdict against `chain_id`.
pub fn check_tx_cheap(tx: &SignedTx, chain_id: &Hash) -> Result<(), TxCheckError> {
    let bytes = tx.to_bytes();
    match SignedTx::from_bytes(&bytes, codec::MAX_DECODE_BYTES) {
        Ok(back) => assert_eq!(&back, tx, "a transaction re-decodes to another"),
        Err(error) => panic!("a decoded transaction's own encoding does not decode: {error}"),
    }
    assert_eq!(
        tx.witness_hash(),
        Hash::tagged(TX_WITNESS_TAG, &[bytes.as_slice()]),
        "the witness hash does not cover exactly the encoding"
    );
    let _ = tx.id();
    let _ = tx.body.kind();
    let _ = tx.cosigning_bytes();
    match &tx.body {
        TxBody::CreateIssue { record } => {
            let _ = record.check_fields();
            let _ = record.lead_share();
            for variant in &record.variants {
                let _ = record.variant_serials(&variant.name);
            }
        }
        TxBody::ProposeMembership { change, .. } => {
            let _ = change.name();
            let _ = change.operator();
        }
        _ => {}
    }
    tx.check_stateless(chain_id)
}

/// The full check of one transaction: as [`check_tx_cheap`], then the signature, alone and
/// through the batch verifier, which must agree.
pub fn check_tx_full(tx: &SignedTx, chain_id: &Hash) {
    let stateless = check_tx_cheap(tx, chain_id);
    let verified = tx.clone().verify(chain_id);
    if let Ok(v) = &verified {
        assert!(stateless.is_ok(), "verifies but fails the stateless checks");
        assert_eq!(v.tx(), tx);
        assert_eq!(v.id(), tx.id());
        assert_eq!(v.witness_hash(), tx.witness_hash());
        assert_eq!(v.size(), tx.to_bytes().len());
    }
    let batch = verify_batch(chain_id, vec![tx.clone()], os_rng());
    assert_eq!(
        batch.is_ok(),
        verified.is_ok(),
        "batch and single verification disagree: {:?} vs {:?}",
        batch.as_ref().err(),
        verified.as_ref().err()
    );
}

/// Batch verification of many transactions (as the ledger and `Node::admit_batch` do): on
/// success every one is returned in order; on failure the one it blames fails alone too.
pub fn check_batch(txs: &[SignedTx], chain_id: &Hash) {
    match verify_batch(chain_id, txs.to_vec(), os_rng()) {
        Ok(verified) => {
            assert_eq!(verified.len(), txs.len());
            for (v, tx) in verified.iter().zip(txs) {
                assert_eq!(v.tx(), tx);
            }
        }
        Err((index, error)) => {
            let Some(tx) = txs.get(index) else {
                panic!(
                    "batch verification blamed transaction {index} of {}: {error}",
                    txs.len()
                );
            };
            assert!(
                tx.clone().verify(chain_id).is_err(),
                "batch verification blamed transaction {index} ({error}), which verifies alone"
            );
        }
    }
}

/// A decoded block: its hash, every transaction's cheap checks, and (with `verify`) the
/// batch verification of its transactions against its own chain.
pub fn check_block(block: &Block, verify: bool) {
    let _ = block.header.hash();
    let chain_id = block.header.chain_id;
    for tx in &block.txs {
        let _ = check_tx_cheap(tx, &chain_id);
    }
    if verify {
        check_batch(&block.txs, &chain_id);
    }
}

/// A certificate against a header, under both golden validator sets and under none: whatever
/// verifies names the header and has a quorum.
pub fn check_certificate(certificate: &CommitCertificate, header: &BlockHeader) {
    for validators in [&*GOLDEN_VALIDATORS, &*GENESIS_4_VALIDATORS] {
        if certificate.verify(header, validators).is_ok() {
            assert_eq!(certificate.block_hash, header.hash());
            assert_eq!(certificate.height, header.height);
            assert!(
                certificate.signatures.len() >= cachet_types::block::quorum(validators.len())
            );
        }
    }
    assert!(
        certificate.verify(header, &[]).is_err(),
        "a certificate verified against an empty validator set"
    );
}

/// A decoded certified block (what sync delivers and the store holds).
pub fn check_certified(certified: &CertifiedBlock, verify: bool) {
    check_block(&certified.block, verify);
    check_certificate(&certified.certificate, &certified.block.header);
}
