#![no_main]
//! Fuzzes consensus message decoding: `ConsensusMsg::from_bytes` and the gossip envelope
//! `(u64, ConsensusMsg)` (sender's clock, then the message; `replica::open_envelope`). What
//! decodes re-encodes to the input; `verify` against both golden chains does not panic, and
//! what verifies is signed by a validator (for proposals: the round's proposer, naming the
//! block it carries).

mod common;

use cachet_consensus::{ConsensusMsg, proposer};
use libfuzzer_sys::fuzz_target;

/// The driver verifies only messages for its own height or the next (`Driver::receive`), so
/// a node never verifies a message whose height is near `u64::MAX`; above this we only
/// decode. (`proposer()` computes `height + round`, which overflows up there.)
const REALISTIC_HEIGHT: u64 = 1 << 62;

fn check(msg: &ConsensusMsg) {
    let (height, round, signer) = (msg.height(), msg.round(), msg.signer());
    if let ConsensusMsg::Proposal { block, .. } = msg {
        common::check_block(block, false);
    }
    assert!(
        msg.verify(&common::GOLDEN_CHAIN_ID, &[]).is_err(),
        "a message verified against an empty validator set"
    );
    if height > REALISTIC_HEIGHT {
        return;
    }
    for (chain_id, validators) in [
        (&*common::GOLDEN_CHAIN_ID, &*common::GOLDEN_VALIDATORS),
        (&*common::GENESIS_4_CHAIN_ID, &*common::GENESIS_4_VALIDATORS),
    ] {
        if msg.verify(chain_id, validators).is_ok() {
            assert!(usize::from(signer) < validators.len());
            if let ConsensusMsg::Proposal { proposal, block } = msg {
                assert_eq!(block.header.hash(), proposal.proposal.block_hash);
                assert_eq!(block.header.height, height);
                assert_eq!(signer, proposer(height, round, validators.len()));
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let limit = common::max_consensus_bytes();
    if let Ok(msg) = ConsensusMsg::from_bytes(data, limit) {
        assert_eq!(msg.to_bytes(), data, "a decoded message re-encodes to other bytes");
        check(&msg);
    }
    if let Some((_sent_ms, msg)) = common::decode_canonical::<(u64, ConsensusMsg)>(data, limit) {
        check(&msg);
    }
});
