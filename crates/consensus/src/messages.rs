//! Consensus messages, their signing bytes and their checks.
//!
//! A proposal names a block by hash and travels with the block; votes name a block hash or
//! nil. Every message is signed by a genesis validator over a domain tag and the chain id, so
//! a message of one chain, or of another kind, never verifies as another.

use bincode::{Decode, Encode};
use cachet_types::block::vote_signing_bytes;
use cachet_types::{Block, Hash, PublicKey, Signature, SigningKey, VoteKind, codec};
use thiserror::Error;

/// Domain tag of proposals (16 bytes, zero-padded).
pub const PROPOSAL_SIGNING_DOMAIN: [u8; 16] = *b"CACHET-PROPOSE1\0";

/// Signed votes stand for nil with this hash (no block hashes to all zeros).
pub const NIL_HASH: Hash = Hash::ZERO;

/// The validator that proposes at `height` and `round` among `validators`: round robin,
/// shifted by one each height so that a silent validator costs every height at most a round.
pub fn proposer(height: u64, round: u32, validators: usize) -> u16 {
    let n = validators.max(1) as u64;
    ((height + u64::from(round)) % n) as u16
}

/// A proposal: `block_hash` at `height` and `round`, with the round of its proof of lock.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Proposal {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Hash of the proposed block's header.
    pub block_hash: Hash,
    /// Round in which more than two thirds prevoted this block (Tendermint's `validRound`).
    pub pol_round: Option<u32>,
    /// Proposer's index in the genesis validator list.
    pub proposer: u16,
}

impl Proposal {
    /// The bytes the proposer signs.
    pub fn signing_bytes(&self, chain_id: &Hash) -> Vec<u8> {
        codec::encode(&(PROPOSAL_SIGNING_DOMAIN, chain_id, self))
    }
}

/// A prevote or precommit for a block hash, or for nil.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// The block voted for; `None` is nil.
    pub block_hash: Option<Hash>,
    /// Voter's index in the genesis validator list.
    pub validator: u16,
}

impl Vote {
    /// The bytes the voter signs: the same as a commit certificate's, so precommits for a
    /// block become its certificate unchanged (nil is signed as [`NIL_HASH`]).
    pub fn signing_bytes(&self, chain_id: &Hash) -> Vec<u8> {
        vote_signing_bytes(
            chain_id,
            self.kind,
            self.height,
            self.round,
            &self.block_hash.unwrap_or(NIL_HASH),
        )
    }
}

/// A proposal with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// Proposer's signature.
    pub signature: Signature,
}

/// A vote with its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// Voter's signature.
    pub signature: Signature,
}

/// What validators send each other.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ConsensusMsg {
    /// A proposal and the block it names.
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The block (boxed: a vote is small, a block may be megabytes).
        block: Box<Block>,
    },
    /// A vote.
    Vote(SignedVote),
}

/// Why a consensus message is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MsgError {
    /// The signer is not a validator.
    #[error("signer index {0} is not a validator")]
    UnknownValidator(u16),
    /// The signature does not verify.
    #[error("signature of validator {0} does not verify")]
    BadSignature(u16),
    /// The proposal's signer is not the proposer of its height and round.
    #[error("validator {found} is not the proposer of height {height} round {round}")]
    NotProposer {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Claimed proposer.
        found: u16,
    },
    /// The block does not match the proposal.
    #[error("proposed block does not match the proposal")]
    BlockMismatch,
    /// A proof-of-lock round that is not before the proposal's round.
    #[error("proof-of-lock round is not before the proposal round")]
    BadPolRound,
    /// The bytes do not decode.
    #[error("malformed consensus message: {0}")]
    Malformed(String),
}

impl ConsensusMsg {
    /// Height the message is for.
    pub fn height(&self) -> u64 {
        match self {
            ConsensusMsg::Proposal { proposal, .. } => proposal.proposal.height,
            ConsensusMsg::Vote(vote) => vote.vote.height,
        }
    }

    /// Round the message is for.
    pub fn round(&self) -> u32 {
        match self {
            ConsensusMsg::Proposal { proposal, .. } => proposal.proposal.round,
            ConsensusMsg::Vote(vote) => vote.vote.round,
        }
    }

    /// Index of the signer.
    pub fn signer(&self) -> u16 {
        match self {
            ConsensusMsg::Proposal { proposal, .. } => proposal.proposal.proposer,
            ConsensusMsg::Vote(vote) => vote.vote.validator,
        }
    }

    /// Checks everything that needs no ledger state: the signer is a validator (and the
    /// proposer of the round, for proposals), the signature verifies under `chain_id`, and a
    /// proposal's block is the one it names. Whether the block is valid is the ledger's call.
    pub fn verify(&self, chain_id: &Hash, validators: &[PublicKey]) -> Result<(), MsgError> {
        let signer = self.signer();
        let key = validators
            .get(usize::from(signer))
            .ok_or(MsgError::UnknownValidator(signer))?;
        match self {
            ConsensusMsg::Proposal { proposal, block } => {
                let p = &proposal.proposal;
                if p.proposer != proposer(p.height, p.round, validators.len()) {
                    return Err(MsgError::NotProposer {
                        height: p.height,
                        round: p.round,
                        found: p.proposer,
                    });
                }
                if p.pol_round.is_some_and(|vr| vr >= p.round) {
                    return Err(MsgError::BadPolRound);
                }
                if block.header.height != p.height || block.header.hash() != p.block_hash {
                    return Err(MsgError::BlockMismatch);
                }
                key.verify(&p.signing_bytes(chain_id), &proposal.signature)
                    .map_err(|_| MsgError::BadSignature(signer))
            }
            ConsensusMsg::Vote(vote) => key
                .verify(&vote.vote.signing_bytes(chain_id), &vote.signature)
                .map_err(|_| MsgError::BadSignature(signer)),
        }
    }

    /// Encodes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes from the wire, refusing anything over `limit` bytes or not canonical.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<ConsensusMsg, MsgError> {
        codec::decode(bytes, limit).map_err(|e| MsgError::Malformed(e.to_string()))
    }
}

/// Signs a proposal.
pub fn sign_proposal(chain_id: &Hash, proposal: Proposal, key: &SigningKey) -> SignedProposal {
    let signature = key.sign(&proposal.signing_bytes(chain_id));
    SignedProposal {
        proposal,
        signature,
    }
}

/// Signs a vote.
pub fn sign_vote(chain_id: &Hash, vote: Vote, key: &SigningKey) -> SignedVote {
    let signature = key.sign(&vote.signing_bytes(chain_id));
    SignedVote { vote, signature }
}
