//! Transactions: what an operator or collector signs, and how it is checked before use.
//!
//! A transaction is signed over `(domain tag, chain id, signer, nonce, body)`, and its id is
//! the tagged hash of exactly those signing bytes: the content alone fixes it, so neither a
//! relay, nor the signer signing again, nor a cosigner can give one transaction a second id.
//! The block's transaction tree commits to the exact bytes carried through each
//! transaction's witness hash, which covers the signature and cosignatures too
//! (`specs/encoding.md`).

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec::{self, CodecError};
use crate::genesis::Operator;
use crate::hash::Hash;
use crate::ids::{CountryCode, CurrencyCode, IdError, IssueId, OperatorId, StampId, check_text};
use crate::keys::{Address, BatchVerifier, PublicKey, Signature, SignatureError, SigningKey};

/// Domain tag in every transaction signature (16 bytes, zero-padded).
pub const TX_SIGNING_DOMAIN: [u8; 16] = *b"CACHET-TX-V1\0\0\0\0";

/// Domain tag of cosignatures: a cosignature never passes as a transaction signature.
pub const TX_COSIGNING_DOMAIN: [u8; 16] = *b"CACHET-COSIGN-V1";

/// Hash tag of transaction ids (over the signing bytes).
pub const TX_ID_TAG: &str = "cachet/tx-id";

/// Hash tag of witness hashes (over the whole encoding, signatures included).
pub const TX_WITNESS_TAG: &str = "cachet/tx-witness";

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
    /// Variant name.
    pub const VARIANT_NAME_MAX: usize = 64;
    /// Variants of one issue.
    pub const VARIANTS_MAX: usize = 64;
    /// Co-issuers of one issue (besides the lead operator).
    pub const CO_ISSUERS_MAX: usize = 16;
    /// Stamps on each side of a swap.
    pub const SWAP_SIDE_MAX: usize = 16;
}

/// A variant of an issue (a colour, a perforation) and how many of the print run it takes.
/// Variants split the serials in the order declared: the first takes `1..=count`, the next
/// the serials after it, and so on; their counts add up to the print run.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Variant {
    /// Name, unique within the issue, e.g. "red".
    pub name: String,
    /// Stamps of this variant.
    pub count: u32,
}

/// Another operator issuing jointly with the lead operator, and how many stamps it may mint.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct CoIssuer {
    /// The co-issuing operator.
    pub operator: OperatorId,
    /// Stamps it may mint. The lead operator may mint the print run less all shares.
    pub share: u32,
}

/// One stamp moving in a swap, with its current last event (guards against stale state).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct SwapLeg {
    /// The stamp.
    pub stamp: StampId,
    /// Its current last event hash.
    pub last_event: Hash,
}

/// A second signer's agreement to a transaction: its signature over the transaction's
/// cosigning bytes (the signing bytes under [`TX_COSIGNING_DOMAIN`]).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Cosignature {
    /// The cosigner.
    pub signer: PublicKey,
    /// Its signature.
    pub signature: Signature,
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
    /// Variants, splitting the serials in order; empty for an issue without variants.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Operators issuing jointly with `operator`; each must cosign the creation.
    #[serde(default)]
    pub co_issuers: Vec<CoIssuer>,
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
        if self.variants.len() > limits::VARIANTS_MAX {
            return Err(field_error("variants", self.variants.len(), "at most 64"));
        }
        let mut total: u64 = 0;
        for (index, variant) in self.variants.iter().enumerate() {
            check_text("variant name", &variant.name, 1, limits::VARIANT_NAME_MAX)?;
            if self.variants[..index]
                .iter()
                .any(|v| v.name == variant.name)
            {
                return Err(IdError {
                    what: "variant name",
                    text: variant.name.clone(),
                    rule: "unique within the issue",
                });
            }
            if variant.count == 0 {
                return Err(field_error("variant count", 0, "at least 1"));
            }
            total += u64::from(variant.count);
        }
        if !self.variants.is_empty() && total != u64::from(self.print_run) {
            return Err(field_error(
                "sum of variant counts",
                total,
                "equal to the print run",
            ));
        }
        if self.co_issuers.len() > limits::CO_ISSUERS_MAX {
            return Err(field_error(
                "co-issuers",
                self.co_issuers.len(),
                "at most 16",
            ));
        }
        let mut shares: u64 = 0;
        for (index, co) in self.co_issuers.iter().enumerate() {
            if co.operator == self.operator
                || self.co_issuers[..index]
                    .iter()
                    .any(|c| c.operator == co.operator)
            {
                return Err(IdError {
                    what: "co-issuer",
                    text: co.operator.to_string(),
                    rule: "each named once, and not the lead operator",
                });
            }
            if co.share == 0 {
                return Err(field_error("co-issuer share", 0, "at least 1"));
            }
            shares += u64::from(co.share);
        }
        if shares > u64::from(self.print_run) {
            return Err(field_error(
                "sum of co-issuer shares",
                shares,
                "at most the print run",
            ));
        }
        Ok(())
    }

    /// The serials of variant `name`, as an inclusive range; none if there is no such variant.
    pub fn variant_serials(&self, name: &str) -> Option<(usize, u32, u32)> {
        let mut first: u32 = 1;
        for (index, variant) in self.variants.iter().enumerate() {
            let last = first.checked_add(variant.count.checked_sub(1)?)?;
            if variant.name == name {
                return Some((index, first, last));
            }
            first = last.checked_add(1)?;
        }
        None
    }

    /// How many stamps the lead operator may mint: the print run less the co-issuers' shares.
    pub fn lead_share(&self) -> u32 {
        let shares: u64 = self.co_issuers.iter().map(|c| u64::from(c.share)).sum();
        u32::try_from(u64::from(self.print_run).saturating_sub(shares)).unwrap_or(0)
    }
}

fn field_error(what: &'static str, value: impl ToString, rule: &'static str) -> IdError {
    IdError {
        what,
        text: value.to_string(),
        rule,
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
    /// An issuing operator mints serials `first..=last` to `owner`, or, with claim keys,
    /// to nobody until each stamp is claimed.
    Mint {
        /// The issue.
        issue: IssueId,
        /// First serial (from 1).
        first_serial: u32,
        /// Last serial, inclusive.
        last_serial: u32,
        /// Receiving account (unused when claim keys are given).
        owner: Address,
        /// The variant minted: required if the issue has variants, absent otherwise.
        #[serde(default)]
        variant: Option<String>,
        /// Physical twins: one claim public key per serial, in order (the key printed under
        /// the stamp's scratch field). Empty: the stamps go to `owner`.
        #[serde(default)]
        claim_keys: Vec<PublicKey>,
    },
    /// The holder of a physical twin's claim key takes the stamp: signed by the claim key,
    /// which never owns anything afterwards.
    Claim {
        /// The stamp.
        stamp: StampId,
        /// The account that receives it.
        to: Address,
    },
    /// Two collectors exchange stamps in one step: the signer's `give` go to `counterparty`,
    /// the counterparty's `take` come to the signer. Needs the counterparty's cosignature.
    /// Either every stamp moves or none does.
    Swap {
        /// Stamps the signer gives.
        give: Vec<SwapLeg>,
        /// Stamps the signer takes from the counterparty.
        take: Vec<SwapLeg>,
        /// The other party.
        counterparty: Address,
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
    /// A current operator proposes a change to the operator set, to apply from
    /// `activation_height`. The proposal counts as the proposer's approval; the change is
    /// decided once more than two thirds of the current operators approve it, at least two
    /// blocks before that height. The proposal's id is this transaction's id.
    ProposeMembership {
        /// The change.
        change: MembershipChange,
        /// First height at which the new set signs blocks.
        activation_height: u64,
    },
    /// A current operator approves a pending membership proposal.
    ApproveMembership {
        /// The proposal (the id of its `propose_membership` transaction).
        proposal: Hash,
    },
}

/// A change to the set of member operators (and so to the validator set).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "change")]
pub enum MembershipChange {
    /// A new member post joins; its validator signs blocks from the activation height.
    AddOperator {
        /// The new operator.
        operator: Operator,
    },
    /// A member post leaves: it no longer validates or issues.
    RemoveOperator {
        /// The leaving operator.
        operator: OperatorId,
    },
    /// An operator's node signs consensus votes with a new key from the activation height.
    RotateValidatorKey {
        /// The operator.
        operator: OperatorId,
        /// Its new validator key.
        validator_key: PublicKey,
    },
    /// An operator's node runs under a new peer-to-peer identity from the activation height.
    RotateNodeKey {
        /// The operator.
        operator: OperatorId,
        /// Its node's new identity key.
        node_key: PublicKey,
    },
}

impl MembershipChange {
    /// Short name, as used in the API.
    pub fn name(&self) -> &'static str {
        match self {
            MembershipChange::AddOperator { .. } => "add_operator",
            MembershipChange::RemoveOperator { .. } => "remove_operator",
            MembershipChange::RotateValidatorKey { .. } => "rotate_validator_key",
            MembershipChange::RotateNodeKey { .. } => "rotate_node_key",
        }
    }

    /// The operator the change is about.
    pub fn operator(&self) -> &OperatorId {
        match self {
            MembershipChange::AddOperator { operator } => &operator.id,
            MembershipChange::RemoveOperator { operator }
            | MembershipChange::RotateValidatorKey { operator, .. }
            | MembershipChange::RotateNodeKey { operator, .. } => operator,
        }
    }
}

impl TxBody {
    /// Short name of the kind, as used in the API and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::CreateIssue { .. } => "create_issue",
            TxBody::Mint { .. } => "mint",
            TxBody::Claim { .. } => "claim",
            TxBody::Swap { .. } => "swap",
            TxBody::CloseIssue { .. } => "close_issue",
            TxBody::Transfer { .. } => "transfer",
            TxBody::Redeem { .. } => "redeem",
            TxBody::Freeze { .. } => "freeze",
            TxBody::Unfreeze { .. } => "unfreeze",
            TxBody::Burn { .. } => "burn",
            TxBody::Approve { .. } => "approve",
            TxBody::Revoke { .. } => "revoke",
            TxBody::ProposeMembership { .. } => "propose_membership",
            TxBody::ApproveMembership { .. } => "approve_membership",
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
    /// Other parties' agreement (co-issuers of a joint issue, a swap's counterparty), each
    /// over [`SignedTx::cosigning_bytes`]. Covered by the witness hash, not by the id or by
    /// `signature`.
    #[serde(default)]
    pub cosignatures: Vec<Cosignature>,
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
            cosignatures: Vec::new(),
        }
    }

    /// Adds `key`'s cosignature (replacing an earlier one by the same key), keeping the
    /// cosignatures in their canonical order (ascending by cosigner key).
    pub fn cosign(&mut self, key: &SigningKey) {
        let signer = key.public_key();
        let signature = key.sign(&self.cosigning_bytes());
        self.cosignatures.retain(|c| c.signer != signer);
        let at = self.cosignatures.partition_point(|c| c.signer < signer);
        self.cosignatures
            .insert(at, Cosignature { signer, signature });
    }

    /// The exact bytes the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        signing_bytes(&self.chain_id, &self.signer, self.nonce, &self.body)
    }

    /// The exact bytes every cosignature covers: the same fields under the cosigning domain,
    /// so a cosignature binds the chain, the author, its nonce (hence one use) and the body.
    pub fn cosigning_bytes(&self) -> Vec<u8> {
        codec::encode(&(
            TX_COSIGNING_DOMAIN,
            &self.chain_id,
            &self.signer,
            self.nonce,
            &self.body,
        ))
    }

    /// Canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a canonical transaction of at most `limit` bytes.
    pub fn from_bytes(bytes: &[u8], limit: usize) -> Result<SignedTx, CodecError> {
        codec::decode(bytes, limit)
    }

    /// The transaction id: tagged hash of the signing bytes (chain, signer, nonce, body).
    pub fn id(&self) -> Hash {
        Hash::tagged(TX_ID_TAG, &[&self.signing_bytes()])
    }

    /// The witness hash: tagged hash of the whole canonical encoding, signature and
    /// cosignatures included. The leaves of a block's transaction tree.
    pub fn witness_hash(&self) -> Hash {
        Hash::tagged(TX_WITNESS_TAG, &[&self.to_bytes()])
    }

    /// Checks the chain id and the fields, but not the signature.
    pub fn check_stateless(&self, chain_id: &Hash) -> Result<(), TxCheckError> {
        if self.chain_id != *chain_id {
            return Err(TxCheckError::WrongChain {
                expected: *chain_id,
                found: self.chain_id,
            });
        }
        // Cosignatures are not covered by the author's signature, so their form must leave
        // no freedom: exactly as many as the kind needs (the swap's counterparty; one per
        // co-issuer), in ascending order of cosigner key, none by the author. Otherwise
        // anyone could relay a variant of a transaction (another id, same nonce) that
        // crowds out the original.
        if let TxBody::Swap { counterparty, .. } = &self.body
            && counterparty.public_key() == &self.signer
        {
            return Err(IdError {
                what: "swap counterparty",
                text: counterparty.to_string(),
                rule: "another account than the author",
            }
            .into());
        }
        let expected = match &self.body {
            TxBody::Swap { .. } => 1,
            TxBody::CreateIssue { record } => record.co_issuers.len(),
            _ => 0,
        };
        if self.cosignatures.len() != expected {
            return Err(IdError {
                what: "cosignatures",
                text: self.cosignatures.len().to_string(),
                rule: "exactly one per party that must agree (swap counterparty, co-issuers)",
            }
            .into());
        }
        if let TxBody::Swap { counterparty, .. } = &self.body
            && self.cosignatures[0].signer != *counterparty.public_key()
        {
            return Err(IdError {
                what: "cosigner",
                text: self.cosignatures[0].signer.address().to_string(),
                rule: "the swap's counterparty",
            }
            .into());
        }
        for (index, co) in self.cosignatures.iter().enumerate() {
            if co.signer == self.signer
                || (index > 0 && self.cosignatures[index - 1].signer >= co.signer)
            {
                return Err(IdError {
                    what: "cosigner",
                    text: co.signer.address().to_string(),
                    rule: "each cosigns once, in ascending key order, and not the author",
                }
                .into());
            }
        }

        match &self.body {
            TxBody::CreateIssue { record } => record.check_fields()?,
            TxBody::Mint {
                variant: Some(name),
                ..
            } => check_text("variant name", name, 1, limits::VARIANT_NAME_MAX)?,
            TxBody::Swap { give, take, .. } => {
                for (what, side) in [("stamps given", give), ("stamps taken", take)] {
                    if side.is_empty() || side.len() > limits::SWAP_SIDE_MAX {
                        return Err(field_error(what, side.len(), "from 1 to 16").into());
                    }
                }
            }
            TxBody::Freeze { case_ref, .. } | TxBody::Unfreeze { case_ref, .. } => {
                check_text("case reference", case_ref, 1, limits::CASE_REF_MAX)?
            }
            TxBody::ProposeMembership {
                change: MembershipChange::AddOperator { operator },
                ..
            } => operator.check()?,
            TxBody::ProposeMembership {
                change: MembershipChange::RotateValidatorKey { validator_key, .. },
                ..
            } => validator_key.check_account()?,
            TxBody::ProposeMembership {
                change: MembershipChange::RotateNodeKey { node_key, .. },
                ..
            } => node_key.check_account()?,
            _ => {}
        }
        Ok(())
    }

    /// Full check without ledger state: chain, fields, and the signature.
    pub fn verify(self, chain_id: &Hash) -> Result<VerifiedTx, TxCheckError> {
        self.check_stateless(chain_id)?;
        self.signer.verify(&self.signing_bytes(), &self.signature)?;
        if !self.cosignatures.is_empty() {
            let message = self.cosigning_bytes();
            for co in &self.cosignatures {
                co.signer.verify(&message, &co.signature)?;
            }
        }
        Ok(VerifiedTx::new_unchecked(self))
    }
}

fn signing_bytes(chain_id: &Hash, signer: &PublicKey, nonce: u64, body: &TxBody) -> Vec<u8> {
    codec::encode(&(TX_SIGNING_DOMAIN, chain_id, signer, nonce, body))
}

/// A transaction whose chain id, fields and signature have been checked, with its id,
/// witness hash and encoded size computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTx {
    tx: SignedTx,
    id: Hash,
    witness: Hash,
    size: usize,
}

impl VerifiedTx {
    /// Wraps a transaction already known to be valid (a block read back from our own store,
    /// whose transactions were verified before it was committed).
    pub fn new_unchecked(tx: SignedTx) -> VerifiedTx {
        let bytes = tx.to_bytes();
        let witness = Hash::tagged(TX_WITNESS_TAG, &[&bytes]);
        VerifiedTx {
            id: tx.id(),
            tx,
            witness,
            size: bytes.len(),
        }
    }

    /// Its witness hash (of the exact bytes, signatures included).
    pub fn witness_hash(&self) -> Hash {
        self.witness
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
    first_bad(chain_id, &txs, rng)?;
    Ok(txs.into_iter().map(VerifiedTx::new_unchecked).collect())
}

/// The first bad transaction of `txs`, by index: the stateless checks, then one batch
/// verification, and only if that fails a search one by one (same rule, so one must fail).
fn first_bad<R: rand_core::CryptoRng>(
    chain_id: &Hash,
    txs: &[SignedTx],
    rng: R,
) -> Result<(), (usize, TxCheckError)> {
    if batch_holds(chain_id, txs, rng)? {
        return Ok(());
    }
    for (index, tx) in txs.iter().enumerate() {
        if let Err(error) = tx.clone().verify(chain_id) {
            return Err((index, error));
        }
    }
    Err((0, TxCheckError::Signature(SignatureError::BadSignature)))
}

/// The stateless checks of every transaction (the first failure, by index), then whether
/// all their signatures hold, in one batch verification.
fn batch_holds<R: rand_core::CryptoRng>(
    chain_id: &Hash,
    txs: &[SignedTx],
    rng: R,
) -> Result<bool, (usize, TxCheckError)> {
    let mut batch = BatchVerifier::new();
    let mut messages = Vec::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        tx.check_stateless(chain_id).map_err(|e| (index, e))?;
        let cosigning = (!tx.cosignatures.is_empty()).then(|| tx.cosigning_bytes());
        messages.push((tx.signing_bytes(), cosigning));
    }
    for (tx, (message, cosigning)) in txs.iter().zip(&messages) {
        batch.queue(&tx.signer, message, &tx.signature);
        if let Some(cosigning) = cosigning {
            for co in &tx.cosignatures {
                batch.queue(&co.signer, cosigning, &co.signature);
            }
        }
    }
    Ok(batch.verify(rng).is_ok())
}

/// Fewest transactions worth a thread of their own in [`verify_parallel`].
pub const MIN_PARALLEL_CHUNK: usize = 256;

/// `check` run on `items` split into one chunk per core (at least `min_chunk` each), each
/// on a thread of its own (a single chunk on the calling thread); each chunk's result with
/// the chunk's first index, in order.
fn in_chunks<I: Sync, T: Send>(
    items: &[I],
    min_chunk: usize,
    check: impl Fn(&[I]) -> T + Sync,
) -> Vec<(usize, T)> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(min_chunk);
    if items.len() <= chunk {
        return vec![(0, check(items))];
    }
    let check = &check;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || check(part)))
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(number, handle)| match handle.join() {
                Ok(result) => (number * chunk, result),
                // Verification does not panic on any input; a panic is a bug: pass it on.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

/// [`verify_batch`] on every core: one batch per thread, fresh random scalars in each (the
/// verdict does not depend on them). Up to `MIN_PARALLEL_CHUNK` transactions it runs on the
/// calling thread.
/// A failure names the transaction's position among `txs`.
pub fn verify_parallel(
    chain_id: &Hash,
    txs: Vec<SignedTx>,
) -> Result<Vec<VerifiedTx>, (usize, TxCheckError)> {
    let chunks = in_chunks(&txs, MIN_PARALLEL_CHUNK, |part| {
        first_bad(chain_id, part, crate::os_rng())
    });
    for (offset, checked) in chunks {
        checked.map_err(|(index, error)| (offset + index, error))?;
    }
    Ok(txs.into_iter().map(VerifiedTx::new_unchecked).collect())
}

/// Checks `txs` as [`verify_parallel`] does, but when any fails does not look for which:
/// `Err` gives them back unjudged. For a caller that then judges them in groups or one by
/// one (the search of a large batch one by one would cost far more than that).
pub fn verify_all(chain_id: &Hash, txs: Vec<SignedTx>) -> Result<Vec<VerifiedTx>, Vec<SignedTx>> {
    let held = in_chunks(&txs, MIN_PARALLEL_CHUNK, |part| {
        matches!(batch_holds(chain_id, part, crate::os_rng()), Ok(true))
    });
    if held.iter().all(|(_, holds)| *holds) {
        Ok(txs.into_iter().map(VerifiedTx::new_unchecked).collect())
    } else {
        Err(txs)
    }
}

/// Every transaction's own verdict, for a client's batch in which some may be bad: one
/// [`verify_all`] when all are good (the usual case), otherwise each checked on its own
/// (linear: a batch of bad signatures costs its singles, never a search).
pub fn verify_each(chain_id: &Hash, txs: Vec<SignedTx>) -> Vec<Result<VerifiedTx, TxCheckError>> {
    match verify_all(chain_id, txs) {
        Ok(verified) => verified.into_iter().map(Ok).collect(),
        Err(txs) => txs.into_iter().map(|tx| tx.verify(chain_id)).collect(),
    }
}

/// [`verify_each`] of every batch, the batches spread over the cores: each batch's own
/// verdicts, in order. For batches that failed one verification together (several clients'
/// requests), each judged as if it had come alone.
pub fn verify_each_batch(
    chain_id: &Hash,
    batches: &[Vec<SignedTx>],
) -> Vec<Vec<Result<VerifiedTx, TxCheckError>>> {
    in_chunks(batches, 1, |run| {
        run.iter()
            .map(|txs| verify_each(chain_id, txs.clone()))
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flat_map(|(_, verdicts)| verdicts)
    .collect()
}
