#![no_main]
//! Fuzzes supply proofs as the CLI and the API client read them (`serde_json` into
//! `SupplyProof`), then `cachet_provenance::verify_supply` against the four-operator golden
//! genesis (and the one-operator one), which must not panic. A proof survives a JSON round
//! trip, its parts have binary forms that decode back, and what verifies respects the print
//! run.

mod common;

use cachet_provenance::{SupplyProof, verify_supply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(supply) = serde_json::from_str::<SupplyProof>(text) else {
        return;
    };
    common::json_round_trip(&supply);
    common::binary_round_trip(&supply.issue);
    common::binary_round_trip(&supply.header.header);
    common::binary_round_trip(&supply.header.certificate);
    common::binary_round_trip(&supply.proof);
    for change in &supply.membership.changes {
        common::binary_round_trip(&change.proposal.tx);
        for approval in &change.approvals {
            common::binary_round_trip(&approval.tx);
        }
    }

    for genesis in [&*common::GENESIS_4, &*common::GOLDEN_GENESIS] {
        match verify_supply(&supply, genesis) {
            Ok(issue) => {
                assert_eq!(issue, supply.issue);
                assert_eq!(supply.chain_id, genesis.chain_id());
                let retired = u64::from(issue.redeemed) + u64::from(issue.burned);
                assert!(issue.minted <= issue.record.print_run);
                assert!(retired + u64::from(issue.frozen) <= u64::from(issue.minted));
            }
            Err(failure) => {
                let _ = failure.code();
                let _ = failure.to_string();
                common::json_round_trip(&failure);
            }
        }
    }
});
