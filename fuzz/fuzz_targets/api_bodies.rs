#![no_main]
//! Fuzzes the JSON bodies of the HTTP API as both sides parse them (`serde_json::from_slice`):
//! the server's `SubmitTx` (then its hex as a transaction within the node's limit, as
//! `POST /v1/tx` does), and every answer type the client decodes. Whatever parses survives a
//! JSON round trip: an equal value where the type has `PartialEq`, otherwise the same text.

mod common;

use std::fmt::Debug;

use cachet_api::{
    AccountInfo, ApiErrorDetail, BlockInfo, ChainInfo, ErrorBody, HistoryEntry, HistoryPage,
    HoldingsPage, IssueInfo, MembershipInfo, NodeMetrics, ProposalInfo, StampInfo, SubmitTx,
    TxInfo, TxStatus,
};
use cachet_provenance::{ProvenanceBundle, SupplyProof};
use cachet_types::{Genesis, SignedTx};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A type without `PartialEq`: its JSON is stable.
fn stable<T: Serialize + DeserializeOwned>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        common::json_stable(&value);
    }
}

/// A type with `PartialEq`: it round-trips to an equal value.
fn equal<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        common::json_round_trip(&value);
    }
}

fuzz_target!(|data: &[u8]| {
    // POST /v1/tx (node/src/api.rs): hex, then a canonical transaction.
    if let Ok(body) = serde_json::from_slice::<SubmitTx>(data) {
        common::json_stable(&body);
        if let Ok(bytes) = hex::decode(&body.tx)
            && let Ok(tx) = SignedTx::from_bytes(&bytes, common::max_tx_bytes())
        {
            assert_eq!(tx.to_bytes(), bytes, "a decoded transaction re-encodes to other bytes");
        }
    }

    // What `cachet_api::Client` decodes.
    equal::<TxStatus>(data);
    stable::<TxInfo>(data);
    stable::<ErrorBody>(data);
    stable::<ApiErrorDetail>(data);
    stable::<NodeMetrics>(data);
    stable::<ChainInfo>(data);
    stable::<MembershipInfo>(data);
    stable::<ProposalInfo>(data);
    stable::<AccountInfo>(data);
    stable::<IssueInfo>(data);
    stable::<StampInfo>(data);
    stable::<HistoryEntry>(data);
    stable::<HistoryPage>(data);
    stable::<HoldingsPage>(data);
    stable::<BlockInfo>(data);
    equal::<Genesis>(data);
    equal::<SupplyProof>(data);
    equal::<ProvenanceBundle>(data);
});
