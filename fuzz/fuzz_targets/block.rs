#![no_main]
//! Fuzzes the canonical decoding of a `Block` (`codec::decode::<Block>`, as inside proposals,
//! lock proofs and certified blocks): what decodes re-encodes to the input, each transaction
//! re-decodes alone, and the stateless checks and the batch verification of its
//! transactions (as the ledger runs it) do not panic and agree with single verification.

mod common;

use cachet_types::Block;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = common::decode_canonical::<Block>(data, common::max_consensus_bytes())
    else {
        return;
    };
    common::check_block(&block, true);

    #[cfg(feature = "cross-json")]
    common::json_round_trip(&block);
});
