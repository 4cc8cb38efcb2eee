#![no_main]
//! Fuzzes provenance bundles as `cachet verify` reads them (UTF-8 text, `serde_json::from_str`
//! into `ProvenanceBundle`), then `cachet_provenance::verify` against the four-operator golden
//! genesis (and the one-operator one), which must not panic. A bundle survives a JSON round
//! trip, every transaction, header and certificate in it has a binary form that decodes back,
//! and what verifies states what the bundle proves.

mod common;

use cachet_provenance::{IncludedTx, ProvenanceBundle, verify};
use cachet_types::TxBody;
use libfuzzer_sys::fuzz_target;

fn included_txs(bundle: &ProvenanceBundle) -> impl Iterator<Item = &IncludedTx> {
    std::iter::once(&bundle.issue).chain(&bundle.events).chain(
        bundle
            .membership
            .changes
            .iter()
            .flat_map(|change| std::iter::once(&change.proposal).chain(&change.approvals)),
    )
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(bundle) = serde_json::from_str::<ProvenanceBundle>(text) else {
        return;
    };
    common::json_round_trip(&bundle);
    for included in included_txs(&bundle) {
        common::binary_round_trip(&included.tx);
        common::binary_round_trip(&included.proof);
    }
    for certified in bundle.headers.iter().chain(&bundle.membership.headers) {
        common::binary_round_trip(&certified.header);
        common::binary_round_trip(&certified.certificate);
    }
    common::binary_round_trip(&bundle.current.record);
    common::binary_round_trip(&bundle.current.proof);

    for genesis in [&*common::GENESIS_4, &*common::GOLDEN_GENESIS] {
        match verify(&bundle, genesis) {
            Ok(authentic) => {
                assert_eq!(bundle.chain_id, genesis.chain_id());
                assert_eq!(authentic.stamp, bundle.stamp);
                assert_eq!(authentic.events, bundle.events.len());
                assert_eq!(authentic.as_of_height, bundle.current.height);
                assert_eq!(authentic.owner, bundle.current.record.owner);
                assert_eq!(authentic.status, bundle.current.record.status);
                assert!(matches!(
                    &bundle.issue.tx.body,
                    TxBody::CreateIssue { record } if *record == authentic.issue
                ));
                common::json_round_trip(&authentic);
            }
            Err(failure) => {
                let _ = failure.code();
                let _ = failure.to_string();
                common::json_round_trip(&failure);
            }
        }
    }
});
