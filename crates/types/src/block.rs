//! Blocks, their headers and commit certificates.
//!
//! A block is final once it carries a certificate: signatures of more than two thirds of the
//! validators of its height over a precommit for the header hash (`specs/ledger.md`).

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec;
use crate::hash::Hash;
use crate::keys::{PublicKey, Signature, SigningKey};
use crate::tx::SignedTx;

/// Domain tag of consensus votes (16 bytes, zero-padded).
pub const VOTE_SIGNING_DOMAIN: [u8; 16] = *b"CACHET-VOTE-V1\0\0";

/// Hash tag of block headers.
pub const BLOCK_HASH_TAG: &str = "cachet/block";

/// The part of a block that is hashed and signed.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain_id: Hash,
    /// Height, from 1 (the genesis itself is height 0 and has no block).
    pub height: u64,
    /// Hash of the previous header (the chain id for height 1).
    pub prev_hash: Hash,
    /// Proposer's clock, in milliseconds since the Unix epoch; never below the parent's.
    pub time_ms: u64,
    /// Index of the proposer in the genesis validator list.
    pub proposer: u16,
    /// Number of transactions.
    pub tx_count: u32,
    /// Merkle root of the transaction ids.
    pub tx_root: Hash,
    /// State commitment after applying this block.
    pub state_root: Hash,
}

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> Hash {
        Hash::tagged(BLOCK_HASH_TAG, &[&codec::encode(self)])
    }
}

/// A block: header and transactions.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Block {
    /// Header.
    pub header: BlockHeader,
    /// Transactions, in execution order.
    pub txs: Vec<SignedTx>,
}

/// Kinds of consensus vote; only precommits go into certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// Tendermint prevote.
    Prevote,
    /// Tendermint precommit.
    Precommit,
}

/// The bytes a validator signs for a vote.
pub fn vote_signing_bytes(
    chain_id: &Hash,
    kind: VoteKind,
    height: u64,
    round: u32,
    block_hash: &Hash,
) -> Vec<u8> {
    codec::encode(&(
        VOTE_SIGNING_DOMAIN,
        chain_id,
        kind,
        height,
        round,
        block_hash,
    ))
}

/// One validator's precommit signature in a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct CommitSignature {
    /// Index in the genesis validator list.
    pub validator: u16,
    /// Signature over the precommit.
    pub signature: Signature,
}

/// Proof that a block is final: precommits of more than two thirds of the validators.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// Height of the block.
    pub height: u64,
    /// Consensus round in which it was decided.
    pub round: u32,
    /// Hash of the block header.
    pub block_hash: Hash,
    /// Signatures, by strictly increasing validator index.
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    /// It certifies another block or height.
    #[error("certificate is for block {found_hash} at height {found_height}")]
    WrongBlock {
        /// Certified height.
        found_height: u64,
        /// Certified hash.
        found_hash: Hash,
    },
    /// Indices not strictly increasing, or out of range.
    #[error("certificate signer list is malformed")]
    BadSigners,
    /// A signature does not verify.
    #[error("certificate signature of validator {0} does not verify")]
    BadSignature(u16),
    /// Not more than two thirds.
    #[error(
        "certificate has {have} of {total} validator signatures; more than two thirds are needed"
    )]
    NoQuorum {
        /// Signatures present.
        have: usize,
        /// Validators in the set.
        total: usize,
    },
}

/// Smallest number of validators that is more than two thirds of `total`.
pub fn quorum(total: usize) -> usize {
    total * 2 / 3 + 1
}

impl CommitCertificate {
    /// Certifies `header` with the signatures of `signers` (index, key), for tests and for
    /// the single-validator development chain.
    pub fn sign(header: &BlockHeader, round: u32, signers: &[(u16, &SigningKey)]) -> Self {
        let hash = header.hash();
        let message = vote_signing_bytes(
            &header.chain_id,
            VoteKind::Precommit,
            header.height,
            round,
            &hash,
        );
        CommitCertificate {
            height: header.height,
            round,
            block_hash: hash,
            signatures: signers
                .iter()
                .map(|(validator, key)| CommitSignature {
                    validator: *validator,
                    signature: key.sign(&message),
                })
                .collect(),
        }
    }

    /// Checks that this certificate finalizes `header` under `validators`.
    pub fn verify(
        &self,
        header: &BlockHeader,
        validators: &[PublicKey],
    ) -> Result<(), CertificateError> {
        let hash = header.hash();
        if self.height != header.height || self.block_hash != hash {
            return Err(CertificateError::WrongBlock {
                found_height: self.height,
                found_hash: self.block_hash,
            });
        }
        let increasing = self
            .signatures
            .windows(2)
            .all(|pair| pair[0].validator < pair[1].validator);
        let in_range = self
            .signatures
            .iter()
            .all(|s| usize::from(s.validator) < validators.len());
        if !increasing || !in_range {
            return Err(CertificateError::BadSigners);
        }
        if self.signatures.len() < quorum(validators.len()) {
            return Err(CertificateError::NoQuorum {
                have: self.signatures.len(),
                total: validators.len(),
            });
        }
        let message = vote_signing_bytes(
            &header.chain_id,
            VoteKind::Precommit,
            header.height,
            self.round,
            &hash,
        );
        for entry in &self.signatures {
            let key = validators
                .get(usize::from(entry.validator))
                .ok_or(CertificateError::BadSigners)?;
            key.verify(&message, &entry.signature)
                .map_err(|_| CertificateError::BadSignature(entry.validator))?;
        }
        Ok(())
    }
}

/// A block with its certificate: what is stored and synced.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Block,
    /// Its certificate.
    pub certificate: CommitCertificate,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            chain_id: Hash::sha256(b"chain"),
            height: 3,
            prev_hash: Hash::sha256(b"prev"),
            time_ms: 1_700_000_000_000,
            proposer: 0,
            tx_count: 0,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
        }
    }

    #[test]
    fn quorum_is_more_than_two_thirds() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(3), 3);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(7), 5);
    }

    #[test]
    fn certificate_checks() {
        let keys: Vec<SigningKey> = (0..4).map(|i| SigningKey::from_seed([i; 32])).collect();
        let validators: Vec<PublicKey> = keys.iter().map(|k| k.public_key()).collect();
        let h = header();
        let three: Vec<(u16, &SigningKey)> = (0..3).map(|i| (i as u16, &keys[i])).collect();
        let cert = CommitCertificate::sign(&h, 0, &three);
        assert_eq!(cert.verify(&h, &validators), Ok(()));

        let two = CommitCertificate::sign(&h, 0, &three[..2]);
        assert_eq!(
            two.verify(&h, &validators),
            Err(CertificateError::NoQuorum { have: 2, total: 4 })
        );

        let mut dup = cert.clone();
        dup.signatures[1] = dup.signatures[0].clone();
        assert_eq!(
            dup.verify(&h, &validators),
            Err(CertificateError::BadSigners)
        );

        let mut other = h.clone();
        other.time_ms += 1;
        assert!(matches!(
            cert.verify(&other, &validators),
            Err(CertificateError::WrongBlock { .. })
        ));

        let mut forged = cert.clone();
        forged.signatures[2].signature = keys[3].sign(b"x");
        assert_eq!(
            forged.verify(&h, &validators),
            Err(CertificateError::BadSignature(2))
        );
    }
}
