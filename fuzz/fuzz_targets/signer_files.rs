#![no_main]
//! Fuzzes the validator's signer files as `SignerStore::load` decodes them: `signer.state`
//! (`SignerState`, at most 64 KiB) and `signer.lock` (`LockProof`, at most a consensus
//! message's size). A damaged file must be refused, never crash the node: what decodes
//! re-encodes to the input, and the blocks and votes inside pass the cheap checks.

mod common;

use cachet_consensus::{LockProof, SignedVote, SignerState};
use libfuzzer_sys::fuzz_target;

fn check_votes(votes: &[SignedVote]) {
    for vote in votes {
        let _ = vote.vote.signing_bytes(&common::GOLDEN_CHAIN_ID);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(state) =
        common::decode_canonical::<SignerState>(data, common::MAX_SIGNER_STATE_BYTES)
    {
        check_votes(&state.votes);
        if let Some(proof) = &state.lock_proof {
            common::check_block(&proof.block, false);
            check_votes(&proof.prevotes);
        }
    }
    if let Some(proof) = common::decode_canonical::<LockProof>(data, common::max_consensus_bytes())
    {
        common::check_block(&proof.block, false);
        check_votes(&proof.prevotes);
    }
});
