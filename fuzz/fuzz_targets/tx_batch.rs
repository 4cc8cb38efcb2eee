#![no_main]
//! Fuzzes the transaction gossip payload: the envelope `(u64, Vec<Vec<u8>>)` (sender's
//! clock, then encoded transactions; `p2p::open_tx_envelope`), then each item as a
//! `SignedTx` within the node's transaction limit, as `Node::admit_batch` does (one
//! malformed item condemns the batch), then the batch verification against the node's chain.

mod common;

use cachet_types::SignedTx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((_sent_ms, items)) =
        common::decode_canonical::<(u64, Vec<Vec<u8>>)>(data, common::tx_batch_limit())
    else {
        return;
    };
    let chain_id = &*common::GOLDEN_CHAIN_ID;
    let mut txs = Vec::with_capacity(items.len());
    for bytes in &items {
        let Ok(tx) = SignedTx::from_bytes(bytes, common::max_tx_bytes()) else {
            return;
        };
        assert_eq!(&tx.to_bytes(), bytes, "a decoded transaction re-encodes to other bytes");
        let _ = common::check_tx_cheap(&tx, chain_id);
        txs.push(tx);
    }
    common::check_batch(&txs, chain_id);

    #[cfg(feature = "cross-json")]
    for tx in &txs {
        common::json_round_trip(tx);
    }
});
