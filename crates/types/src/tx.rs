//! Transactions: what an operator or collector signs, and how it is checked before use.
//!
//! A transaction is signed over `(domain tag, chain id, signer, nonce, body)`; its id is the
//! tagged hash of its whole encoding, signature included (`specs/transactions.md`).

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec::{self, CodecError};
use crate::hash::Hash;
use crate::ids::{CountryCode, CurrencyCode, IdError, IssueId, OperatorId, StampId, check_text};
use crate::keys::{Address, BatchVerifier, PublicKey, Signature, SignatureError, SigningKey};

/// Domain tag in every transaction signature (16 bytes, zero-padded).
pub const TX_SIGNING_DOMAIN: [u8; 16] = *b"CACHET-TX-V1\0\0\0\0";

/// Hash tag of transaction ids.
pub const TX_ID_TAG: &str = "cachet/tx-id";

/// Bounds on free-text fields, in bytes.
pub mod limits {
    /// Issue title.
    pub const TITLE_MAX: usize = 200;
    /// WNS number.
    pub const WNS_MAX: usize = 32;
    /// Design URI.
    pub const DESIGN_URI_MAX: usize = 512;
    /// Case reference of a freeze.
    pub const CASE_REF_MAX: usize = 64;
    /// Operator name.
    pub const OPERATOR_NAME_MAX: usize = 128;
}

/// Face value of a stamp: an amount in the currency's minor units.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct FaceValue {
    /// Amount in minor units (cents for EUR).
    pub amount_minor: u64,
    /// ISO 4217 currency.
    pub currency: CurrencyCode,
}

/// The philatelic record of a stamp issue, fixed when the issue is created.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct IssueRecord {
    /// Issue id, unique on the chain.
    pub id: IssueId,
    /// The issuing operator (must be the signer's operator).
    pub operator: OperatorId,
    /// Title, e.g. "Alpine Flowers".
    pub title: String,
    /// Issuing country.
    pub country: CountryCode,
    /// Year of issue.
    pub year: u16,
    /// Optional WNS (UPU numbering system) number, e.g. "AT001.26".
    pub wns_number: Option<String>,
    /// Face value.
    pub face_value: FaceValue,
    /// SHA-256 of the artwork.
    pub design_sha256: Hash,
    /// Where the artwork can be fetched.
    pub design_uri: String,
    /// Number of stamps in the print run (serials 1..=print_run).
    pub print_run: u32,
}

impl IssueRecord {
    /// Checks the free-text fields and bounds that ids alone do not guarantee.
    pub fn check_fields(&self) -> Result<(), IdError> {
        check_text("title", &self.title, 1, limits::TITLE_MAX)?;
        if let Some(wns) = &self.wns_number {
            check_text("WNS number", wns, 1, limits::WNS_MAX)?;
        }
        check_text("design URI", &self.design_uri, 1, limits::DESIGN_URI_MAX)?;
        if !(1840..=9999).contains(&self.year) {
            return Err(IdError {
                what: "year",
                text: self.year.to_string(),
                rule: "from 1840 to 9999",
            });
        }
        Ok(())
    }
}

/// Why a stamp was frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeReason {
    /// Reported stolen.
    Stolen,
    /// Reported lost.
    Lost,
    /// Ownership disputed.
    Disputed,
    /// Suspected counterfeit or fraud.
    Fraud,
    /// Frozen by legal order.
    LegalOrder,
}

/// When an approval ends: after a block height, or after a block time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    /// Valid in blocks up to and including this height.
    Height(u64),
    /// Valid in blocks whose time is at most this, in milliseconds since the Unix epoch.
    TimeMs(u64),
}

impl Deadline {
    /// True if a block at `height` and `time_ms` is past the deadline.
    pub fn passed(&self, height: u64, time_ms: u64) -> bool {
        match self {
            Deadline::Height(until) => height > *until,
            Deadline::TimeMs(until) => time_ms > *until,
        }
    }
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TxBody {
    /// An operator registers a new stamp issue.
    CreateIssue {
        /// The issue's record.
        record: IssueRecord,
    },
    /// The issuing operator mints serials `first..=last` to `owner`.
    Mint {
        /// The issue.
        issue: IssueId,
        /// First serial (from 1).
        first_serial: u32,
        /// Last serial, inclusive.
        last_serial: u32,
        /// Receiving account.
        owner: Address,
    },
    /// The issuing operator closes the issue: nothing more is ever minted under it.
    CloseIssue {
        /// The issue.
        issue: IssueId,
    },
    /// The owner gives a stamp to another account.
    Transfer {
        /// The stamp.
        stamp: StampId,
        /// The stamp's current last event hash (guards against acting on stale state).
        last_event: Hash,
        /// Receiving account.
        to: Address,
    },
    /// The issuing operator marks a stamp used as postage.
    Redeem {
        /// The stamp.
        stamp: StampId,
    },
    /// The issuing operator freezes a stamp.
    Freeze {
        /// The stamp.
        stamp: StampId,
        /// Why.
        reason: FreezeReason,
        /// Case reference (police report, court file).
        case_ref: String,
    },
    /// The issuing operator lifts a freeze.
    Unfreeze {
        /// The stamp.
        stamp: StampId,
        /// Case reference of the decision.
        case_ref: String,
    },
    /// The owner lets `operator` transfer the stamp once, until `until`. A transfer (by
    /// anyone allowed), a revocation or the deadline ends it.
    Approve {
        /// The stamp.
        stamp: StampId,
        /// The account allowed to transfer it.
        operator: Address,
        /// When the approval ends.
        until: Deadline,
    },
    /// The owner withdraws an approval.
    Revoke {
        /// The stamp.
        stamp: StampId,
    },
    /// The owner destroys a stamp: it stays in history and counts in supply, but never moves
    /// again.
    Burn {
        /// The stamp.
        stamp: StampId,
        /// The stamp's current last event hash.
        last_event: Hash,
    },
}

impl TxBody {
    /// Short name of the kind, as used in the API and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::CreateIssue { .. } => "create_issue",
            TxBody::Mint { .. } => "mint",
            TxBody::CloseIssue { .. } => "close_issue",
            TxBody::Transfer { .. } => "transfer",
            TxBody::Redeem { .. } => "redeem",
            TxBody::Freeze { .. } => "freeze",
            TxBody::Unfreeze { .. } => "unfreeze",
            TxBody::Burn { .. } => "burn",
            TxBody::Approve { .. } => "approve",
            TxBody::Revoke { .. } => "revoke",
        }
    }
}

/// A signed transaction as it travels and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct SignedTx {
    /// The chain the signer meant (also covered by the signature).
    pub chain_id: Hash,
    /// Author's public key.
    pub signer: PublicKey,
    /// Author's nonce: exactly one more than their last final transaction.
    pub nonce: u64,
    /// What it does.
    pub body: TxBody,
    /// Ed25519 signature over [`SignedTx::signing_bytes`].
    pub signature: Signature,
}

/// Why a transaction failed the checks that need no ledger state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxCheckError {
    /// The bytes are not a canonical transaction.
    #[error("malformed transaction: {0}")]
    Malformed(#[from] CodecError),
    /// Signed for another chain.
    #[error("transaction is for chain {found}, this chain is {expected}")]
    WrongChain {
        /// This chain.
        expected: Hash,
        /// The transaction's chain.
        found: Hash,
    },
    /// Signature or key refused.
    #[error("{0}")]
    Signature(#[from] SignatureError),
    /// A field breaks its rules.
    #[error("{0}")]
    InvalidField(#[from] IdError),
}

impl SignedTx {
    /// Builds and signs a transaction.
    pub fn sign(chain_id: Hash, key: &SigningKey, nonce: u64, body: TxBody) -> SignedTx {
        let signer = key.public_key();
        let message = signing_bytes(&chain_id, &signer, nonce, &body);
        SignedTx {
            chain_id,
            signer,
            nonce,
            body,
            signature: key.sign(&message),
        }
    }

    /// The exact bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(&self.chain_id, &self.signer, self.nonce, &self.body)
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a canonical transaction of at most `limit` bytes.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<SignedTx, CodecError> {
        codec::decode(bytes, limit)
    }

    /// The transaction id: tagged hash of the canonical encoding.
    pub fn id(&self) -> Hash {
        Hash::tagged(TX_ID_TAG, &[&self.to_bytes()])
    }

    /// Checks the chain id and the fields, but not the signature.
    pub fn check_stateless(&self, chain_id: &Hash) -> Result<(), TxCheckError> {
        if self.chain_id != *chain_id {
            return Err(TxCheckError::WrongChain {
                expected: *chain_id,
                found: self.chain_id,
            });
        }
        match &self.body {
            TxBody::CreateIssue { record } => record.check_fields()?,
            TxBody::Freeze { case_ref, .. } | TxBody::Unfreeze { case_ref, .. } => {
                check_text("case reference", case_ref, 1, limits::CASE_REF_MAX)?
            }
            _ => {}
        }
        Ok(())
    }

    /// Full check without ledger state: chain, fields, and the signature.
    pub fn verify(self, chain_id: &Hash) -> Result<VerifiedTx, TxCheckError> {
        self.check_stateless(chain_id)?;
        self.signer.verify(&self.signing_bytes(), &self.signature)?;
        Ok(VerifiedTx::new_unchecked(self))
    }
}

fn signing_bytes(chain_id: &Hash, signer: &PublicKey, nonce: u64, body: &TxBody) -> Vec<u8> {
    codec::encode(&(TX_SIGNING_DOMAIN, chain_id, signer, nonce, body))
}

/// A transaction whose chain id, fields and signature have been checked, with its id and
/// encoded size computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    tx: SignedTx,
    id: Hash,
    size: usize,
}

impl VerifiedTx {
    /// Wraps a transaction already known to be valid (a block read back from our own store,
    /// whose transactions were verified before it was committed).
    pub fn new_unchecked(tx: SignedTx) -> VerifiedTx {
        let bytes = tx.to_bytes();
        let id = Hash::tagged(TX_ID_TAG, &[&bytes]);
        VerifiedTx {
            tx,
            id,
            size: bytes.len(),
        }
    }

    /// The transaction.
    pub fn tx(&self) -> &SignedTx {
        &self.tx
    }

    /// Its id.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// Its encoded size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Unwraps the transaction.
    pub fn into_tx(self) -> SignedTx {
        self.tx
    }
}

/// Verifies many transactions with one batch; on failure, finds the first bad one.
///
/// Returns the verified transactions in order, or the index and reason of the first failure.
pub fn verify_batch<R: rand_core::CryptoRng>(
    chain_id: &Hash,
    txs: Vec<SignedTx>,
    rng: R,
) -> Result<Vec<VerifiedTx>, (usize, TxCheckError)> {
    let mut batch = BatchVerifier::new();
    let mut messages = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        tx.check_stateless(chain_id).map_err(|e| (index, e))?;
        messages.push(tx.signing_bytes());
    }
    for (tx, message) in txs.iter().zip(&messages) {
        batch.queue(&tx.signer, message, &tx.signature);
    }
    if batch.verify(rng).is_ok() {
        return Ok(txs.into_iter().map(VerifiedTx::new_unchecked).collect());
    }
    // The batch failed: find the culprit one by one (same rule, so one must fail).
    for (index, (tx, message)) in txs.iter().zip(&messages).enumerate() {
        if let Err(error) = tx.signer.verify(message, &tx.signature) {
            return Err((index, TxCheckError::Signature(error)));
        }
    }
    Err((0, TxCheckError::Signature(SignatureError::BadSignature)))
}
