#![no_main]
//! Fuzzes both forms of a `Genesis`: the canonical encoding (`codec::decode`, as the store
//! reads it) and the JSON file (`serde_json::from_str` on UTF-8 text, as `cachetd` and the
//! CLI read it). Each form converts to the other and back unchanged, `validate()` and the
//! helpers do not panic, a valid genesis has unique, well-formed operators, and verifying the
//! golden bundle against it does not panic.

mod common;

use cachet_types::genesis::MAX_OPERATORS;
use cachet_types::{Genesis, codec};
use libfuzzer_sys::fuzz_target;

fn check(genesis: &Genesis) {
    let chain_id = genesis.chain_id();
    assert_eq!(genesis.validator_keys().len(), genesis.operators.len());
    // The offline verifier trusts nothing but the genesis it is given (and validates it).
    if let Ok(authentic) = cachet_provenance::verify(&common::GOLDEN_BUNDLE, genesis) {
        assert!(genesis.validate().is_ok());
        assert_eq!(chain_id, common::GOLDEN_BUNDLE.chain_id);
        assert_eq!(authentic.stamp, common::GOLDEN_BUNDLE.stamp);
    }
    if genesis.validate().is_err() {
        return;
    }
    assert!((1..=MAX_OPERATORS).contains(&genesis.operators.len()));
    for op in &genesis.operators {
        assert!(op.check().is_ok(), "a valid genesis holds an invalid operator");
        assert_eq!(genesis.operator(&op.id), Some(op), "operator ids are not unique");
    }
    let p = &genesis.params;
    assert!(p.max_tx_bytes >= 256 && p.max_block_bytes >= p.max_tx_bytes);
}

fuzz_target!(|data: &[u8]| {
    if let Some(genesis) = common::decode_canonical::<Genesis>(data, codec::MAX_DECODE_BYTES) {
        common::json_round_trip(&genesis);
        check(&genesis);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(genesis) = serde_json::from_str::<Genesis>(text)
    {
        common::json_round_trip(&genesis);
        common::binary_round_trip(&genesis);
        check(&genesis);
    }
});
