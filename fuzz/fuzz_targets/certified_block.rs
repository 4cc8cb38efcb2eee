#![no_main]
//! Fuzzes the canonical decoding of a `CertifiedBlock`, the item of a sync response
//! (`Replica::apply_blocks`) and of the store: what decodes re-encodes to the input, its
//! transactions pass the block checks, and its certificate's verification does not panic.

mod common;

use cachet_types::CertifiedBlock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(certified) =
        common::decode_canonical::<CertifiedBlock>(data, common::max_consensus_bytes())
    else {
        return;
    };
    common::check_certified(&certified, true);

    #[cfg(feature = "cross-json")]
    common::json_round_trip(&certified);
});
