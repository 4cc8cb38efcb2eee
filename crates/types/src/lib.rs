//! Cachet's core types: identifiers, keys and signatures, hashes, the canonical encoding,
//! transactions, blocks and the genesis.
//!
//! Pure: no I/O, no clock, no threads. Everything that is signed, hashed or stored has
//! exactly one byte form (`codec`), and every signature is checked under one rule (`keys`).

pub mod block;
pub mod codec;
pub mod genesis;
pub mod hash;
pub mod ids;
pub mod keys;
pub mod merkle;
pub mod tx;

pub use block::{
    Block, BlockHeader, CertificateError, CertifiedBlock, CommitCertificate, CommitSignature,
    VoteKind,
};
pub use codec::CodecError;
pub use genesis::{ChainParams, Genesis, GenesisError, Operator};
pub use hash::Hash;
pub use ids::{CountryCode, CurrencyCode, IdError, IssueId, OperatorId, StampId};
pub use keys::{Address, BatchVerifier, PublicKey, Signature, SignatureError, SigningKey, os_rng};
pub use tx::{
    CoIssuer, Cosignature, Deadline, FaceValue, FreezeReason, IssueRecord, MIN_PARALLEL_CHUNK,
    MembershipChange, SignedTx, SwapLeg, TxBody, TxCheckError, Variant, VerifiedTx, verify_all,
    verify_batch, verify_each, verify_each_batch, verify_parallel,
};

/// Re-exported so callers of the batch verifier can pass an OS random source.
pub use rand_core;
