#![no_main]
//! Fuzzes the block sync protocol's decoding exactly as libp2p's cbor codec does it
//! (`cbor4ii::serde::from_slice` on at most the codec's size bound): a `SyncRequest`, and a
//! sync response, whose blocks are then decoded as `CertifiedBlock`s as
//! `Replica::apply_blocks` does (stopping at the first that does not decode).
//!
//! cachet-network's `SyncResponse` is private; `SyncResponse` below mirrors it field for
//! field (`blocks: Vec<ByteBuf>`), so serde sees the same shape.

mod common;

use cachet_network::{MAX_SYNC_BLOCKS, SyncRequest};
use cachet_types::CertifiedBlock;
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Mirror of `cachet_network::SyncResponse`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct SyncResponse {
    blocks: Vec<ByteBuf>,
}

fuzz_target!(|data: &[u8]| {
    // The codec reads at most its bound (`io.take(max).read_to_end`) and decodes that.
    let request_bytes = &data[..data.len().min(common::SYNC_REQUEST_MAX)];
    if let Ok(request) = cbor4ii::serde::from_slice::<SyncRequest>(request_bytes) {
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &request).expect("a request encodes");
        let back: SyncRequest =
            cbor4ii::serde::from_slice(&bytes).expect("a request's own encoding decodes");
        assert_eq!(back, request);
        // The node serves at most this many (`Task::command` caps outgoing requests alike).
        let _served = request.max.min(MAX_SYNC_BLOCKS);
    }

    let response_bytes = &data[..data.len().min(common::sync_response_max())];
    if let Ok(response) = cbor4ii::serde::from_slice::<SyncResponse>(response_bytes) {
        let bytes = cbor4ii::serde::to_vec(Vec::new(), &response).expect("a response encodes");
        let back: SyncResponse =
            cbor4ii::serde::from_slice(&bytes).expect("a response's own encoding decodes");
        assert_eq!(back, response);
        let limit = common::max_consensus_bytes();
        for block in &response.blocks {
            let Some(certified) = common::decode_canonical::<CertifiedBlock>(block, limit) else {
                break;
            };
            common::check_certified(&certified, false);
        }
    }
});
