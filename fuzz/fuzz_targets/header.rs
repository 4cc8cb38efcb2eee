#![no_main]
//! Fuzzes the canonical decoding of a `BlockHeader`: what decodes re-encodes to the input,
//! hashes, survives a JSON round trip (as in bundles and the API), and the golden certificate
//! verifies for the golden header only.

mod common;

use cachet_types::BlockHeader;
use libfuzzer_sys::fuzz_target;

/// A header is 151 bytes; nothing decodes a header alone with a tighter limit.
const LIMIT: usize = 1024;

fuzz_target!(|data: &[u8]| {
    let Some(header) = common::decode_canonical::<BlockHeader>(data, LIMIT) else {
        return;
    };
    let _ = header.hash();
    common::json_round_trip(&header);
    common::binary_round_trip(&header);
    if common::GOLDEN_CERTIFICATE
        .verify(&header, &common::GOLDEN_VALIDATORS)
        .is_ok()
    {
        assert_eq!(header, *common::GOLDEN_HEADER);
    }
});
