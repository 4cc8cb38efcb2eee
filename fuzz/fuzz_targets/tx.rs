#![no_main]
//! Fuzzes `SignedTx::from_bytes` (API submissions, gossiped and synced transactions, CLI
//! transaction files): what decodes re-encodes to the input, the node's own size limit
//! refuses exactly the longer inputs, and the stateless checks, single and batch signature
//! verification (which must agree) against the transaction's own chain do not panic.

mod common;

use cachet_types::tx::TX_WITNESS_TAG;
use cachet_types::{Hash, SignedTx, codec};
use libfuzzer_sys::fuzz_target;

/// Generous: the fuzzer's own `-max_len` bounds the input.
const LIMIT: usize = codec::MAX_DECODE_BYTES;

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = SignedTx::from_bytes(data, LIMIT) else {
        return;
    };
    assert_eq!(tx.to_bytes(), data, "a decoded transaction re-encodes to other bytes");

    // The node's limit (`max_tx_bytes`) only ever refuses by length.
    let node_limit = common::max_tx_bytes();
    assert_eq!(
        SignedTx::from_bytes(data, node_limit).is_ok(),
        data.len() <= node_limit
    );
    assert_eq!(tx.witness_hash(), Hash::tagged(TX_WITNESS_TAG, &[data]));

    let chain_id = tx.chain_id;
    common::check_tx_full(&tx, &chain_id);

    // No other chain accepts it.
    let other = Hash::tagged("cachet-fuzz/other-chain", &[chain_id.as_bytes().as_slice()]);
    assert!(tx.check_stateless(&other).is_err());
    assert!(tx.clone().verify(&other).is_err());

    #[cfg(feature = "cross-json")]
    common::json_round_trip(&tx);
});
