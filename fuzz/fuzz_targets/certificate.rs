#![no_main]
//! Fuzzes the canonical decoding of a `CommitCertificate`: what decodes re-encodes to the
//! input, survives a JSON round trip, and its verification against the golden header under
//! both golden validator sets (and none) does not panic; whatever verifies has a quorum.

mod common;

use cachet_types::CommitCertificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(certificate) =
        common::decode_canonical::<CommitCertificate>(data, common::max_consensus_bytes())
    else {
        return;
    };
    common::json_round_trip(&certificate);
    common::check_certificate(&certificate, &common::GOLDEN_HEADER);
});
