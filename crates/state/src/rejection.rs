//! Named reasons a transaction is refused (`specs/ledger.md` lists them all).

use cachet_types::{Hash, IssueId, OperatorId, StampId, TxCheckError};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Why a transaction was refused. Every variant has a stable code ([`Rejection::code`]) that
/// the API and CLI show.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "detail")]
pub enum Rejection {
    /// Bytes are not a canonical transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Larger than the chain allows.
    #[error("transaction of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Size.
        size: usize,
        /// Limit.
        limit: usize,
    },
    /// Signed for another chain.
    #[error("transaction is for another chain ({0})")]
    WrongChain(Hash),
    /// Signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A key that is or acts as an account is of small order: anyone could sign for it.
    #[error("weak (small-order) public key")]
    WeakKey,
    /// A key that is or acts as an account is not a curve point.
    #[error("public key is not a curve point")]
    InvalidKey,
    /// A key that is or acts as an account is not the canonical encoding of its point.
    #[error("public key is not the canonical encoding of its point")]
    NonCanonicalKey,
    /// A key that is or acts as an account has a torsion component (a key plus a point of
    /// small order): the same secret would control several accounts.
    #[error("public key has a torsion component (mixed order)")]
    MixedOrderKey,
    /// A field breaks its rules.
    #[error("invalid field: {0}")]
    InvalidField(String),
    /// Nonce already used.
    #[error("stale nonce {got}: the signer's last nonce is {last}")]
    StaleNonce {
        /// Nonce given.
        got: u64,
        /// Signer's last final nonce.
        last: u64,
    },
    /// Nonce skips ahead.
    #[error("nonce gap: got {got}, expected {expected}")]
    NonceGap {
        /// Nonce given.
        got: u64,
        /// Nonce expected.
        expected: u64,
    },
    /// Signer is not a current operator.
    #[error("signer is not a current operator")]
    NotOperator,
    /// Signer is an operator, but not the issue's.
    #[error("signer is not the issuer of {0} (operator {1})")]
    NotIssuer(IssueId, OperatorId),
    /// Issue already exists.
    #[error("issue {0} already exists")]
    IssueExists(IssueId),
    /// No such issue.
    #[error("unknown issue {0}")]
    UnknownIssue(IssueId),
    /// Issue closed.
    #[error("issue {0} is closed")]
    IssueClosed(IssueId),
    /// Serial range empty, zero, or too long.
    #[error("invalid serial range {first}..={last}: {rule}")]
    InvalidRange {
        /// First serial.
        first: u32,
        /// Last serial.
        last: u32,
        /// Rule broken.
        rule: String,
    },
    /// Mint beyond the print run.
    #[error("serial {serial} is over the print run of {print_run}")]
    OverPrintRun {
        /// First serial over.
        serial: u32,
        /// Print run.
        print_run: u32,
    },
    /// Print run above the chain's limit.
    #[error("print run {print_run} exceeds the chain limit {limit}")]
    PrintRunTooLarge {
        /// Requested.
        print_run: u32,
        /// Limit.
        limit: u32,
    },
    /// Serial already minted.
    #[error("stamp {0} was already minted")]
    DuplicateSerial(StampId),
    /// No such stamp.
    #[error("unknown stamp {0}")]
    UnknownStamp(StampId),
    /// Signer does not own the stamp.
    #[error("signer does not own {0}")]
    NotOwner(StampId),
    /// `last_event` is not the stamp's current last event.
    #[error("stamp {stamp} has moved on: its last event is {current}")]
    StaleEvent {
        /// Stamp.
        stamp: StampId,
        /// Its current last event.
        current: Hash,
    },
    /// Stamp frozen.
    #[error("stamp {0} is frozen")]
    Frozen(StampId),
    /// Stamp redeemed.
    #[error("stamp {0} is redeemed")]
    Redeemed(StampId),
    /// Stamp burned.
    #[error("stamp {0} is burned")]
    Burned(StampId),
    /// Unfreeze of a stamp that is not frozen.
    #[error("stamp {0} is not frozen")]
    NotFrozen(StampId),
    /// The signer's approval for this stamp has ended.
    #[error("the approval to transfer {0} has ended")]
    ApprovalExpired(StampId),
    /// Revoke without an approval.
    #[error("stamp {0} has no approval to revoke")]
    NotApproved(StampId),
    /// An approval that would already be over.
    #[error("the approval deadline has already passed")]
    DeadlinePassed,
    /// A named operator is not a current operator.
    #[error("operator {0} is not a current operator")]
    UnknownOperator(OperatorId),
    /// A party whose agreement the transaction needs did not cosign it.
    #[error("missing cosignature of {0}")]
    MissingCosignature(String),
    /// Mint of a variant the issue does not have.
    #[error("issue {issue} has no variant {variant:?}")]
    UnknownVariant {
        /// Issue.
        issue: IssueId,
        /// Variant named.
        variant: String,
    },
    /// Mint without a variant of an issue that has variants.
    #[error("issue {0} has variants: the mint must name one")]
    VariantRequired(IssueId),
    /// Serials outside the named variant's range.
    #[error("serials {first}..={last} are not all of variant {variant:?} ({from}..={to})")]
    NotInVariant {
        /// Variant.
        variant: String,
        /// First serial minted.
        first: u32,
        /// Last serial minted.
        last: u32,
        /// The variant's first serial.
        from: u32,
        /// The variant's last serial.
        to: u32,
    },
    /// A co-issuer (or the lead) would mint beyond its agreed share.
    #[error("operator {operator} may mint {share} stamps of this issue and has {minted}")]
    OverShare {
        /// Operator.
        operator: OperatorId,
        /// Its share.
        share: u32,
        /// Already minted by it.
        minted: u32,
    },
    /// Claim keys given, but not one per serial.
    #[error("{got} claim keys for {expected} serials")]
    ClaimKeysCount {
        /// Serials minted.
        expected: u32,
        /// Keys given.
        got: usize,
    },
    /// Claim of a stamp that is not waiting for a claim.
    #[error("stamp {0} has no claim pending (claimed already, or minted to an owner)")]
    NotClaimable(StampId),
    /// Claim signed by a key other than the stamp's claim key.
    #[error("the claim of {0} is not signed by its claim key")]
    WrongClaimKey(StampId),
    /// The receiver is a claim key that has claimed: it never owns a stamp.
    #[error("the receiver is a spent claim key and never owns a stamp")]
    SpentClaimKey,
    /// The stamp is an unclaimed physical twin: only a claim moves it.
    #[error("stamp {0} is unclaimed")]
    Unclaimed(StampId),
    /// A swap's terms break a rule.
    #[error("invalid swap: {0}")]
    InvalidSwap(String),
    /// No membership proposal with this id.
    #[error("unknown membership proposal {0}")]
    UnknownProposal(Hash),
    /// The operator approved this proposal already.
    #[error("operator {0} has approved this proposal already")]
    AlreadyApproved(OperatorId),
    /// The proposal is decided, or the operator set changed since it was made.
    #[error("membership proposal {proposal} is closed: {why}")]
    ProposalClosed {
        /// The proposal.
        proposal: Hash,
        /// Why.
        why: String,
    },
    /// Too late to decide the proposal: a change applies at least two blocks after the
    /// block that decides it.
    #[error(
        "membership proposal {proposal} expired: it activates at {activation}, so it had to be decided by height {last}"
    )]
    ProposalExpired {
        /// The proposal.
        proposal: Hash,
        /// Its activation height.
        activation: u64,
        /// The last height at which it could be decided.
        last: u64,
    },
    /// An activation height outside the allowed window.
    #[error("activation height {activation} is outside {from}..={to}")]
    InvalidActivation {
        /// Asked for.
        activation: u64,
        /// Earliest allowed.
        from: u64,
        /// Latest allowed.
        to: u64,
    },
    /// A decided change has not applied yet: one change at a time.
    #[error("membership change {0} is decided and not yet active; one change at a time")]
    MembershipPending(Hash),
    /// The change does not fit the current operator set.
    #[error("invalid membership change: {0}")]
    InvalidMembership(String),
    /// A counter would overflow.
    #[error("counter overflow")]
    Overflow,
}

impl Rejection {
    /// Stable snake_case code of the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::TooLarge { .. } => "too_large",
            Rejection::WrongChain(_) => "wrong_chain",
            Rejection::BadSignature => "bad_signature",
            Rejection::WeakKey => "weak_key",
            Rejection::InvalidKey => "invalid_key",
            Rejection::NonCanonicalKey => "non_canonical_key",
            Rejection::MixedOrderKey => "mixed_order_key",
            Rejection::InvalidField(_) => "invalid_field",
            Rejection::StaleNonce { .. } => "stale_nonce",
            Rejection::NonceGap { .. } => "nonce_gap",
            Rejection::NotOperator => "not_operator",
            Rejection::NotIssuer(..) => "not_issuer",
            Rejection::IssueExists(_) => "issue_exists",
            Rejection::UnknownIssue(_) => "unknown_issue",
            Rejection::IssueClosed(_) => "issue_closed",
            Rejection::InvalidRange { .. } => "invalid_range",
            Rejection::OverPrintRun { .. } => "over_print_run",
            Rejection::PrintRunTooLarge { .. } => "print_run_too_large",
            Rejection::DuplicateSerial(_) => "duplicate_serial",
            Rejection::UnknownStamp(_) => "unknown_stamp",
            Rejection::NotOwner(_) => "not_owner",
            Rejection::StaleEvent { .. } => "stale_event",
            Rejection::Frozen(_) => "frozen",
            Rejection::Redeemed(_) => "redeemed",
            Rejection::Burned(_) => "burned",
            Rejection::NotFrozen(_) => "not_frozen",
            Rejection::ApprovalExpired(_) => "approval_expired",
            Rejection::NotApproved(_) => "not_approved",
            Rejection::DeadlinePassed => "deadline_passed",
            Rejection::UnknownOperator(_) => "unknown_operator",
            Rejection::MissingCosignature(_) => "missing_cosignature",
            Rejection::UnknownVariant { .. } => "unknown_variant",
            Rejection::VariantRequired(_) => "variant_required",
            Rejection::NotInVariant { .. } => "not_in_variant",
            Rejection::OverShare { .. } => "over_share",
            Rejection::ClaimKeysCount { .. } => "claim_keys_count",
            Rejection::NotClaimable(_) => "not_claimable",
            Rejection::WrongClaimKey(_) => "wrong_claim_key",
            Rejection::SpentClaimKey => "spent_claim_key",
            Rejection::Unclaimed(_) => "unclaimed",
            Rejection::InvalidSwap(_) => "invalid_swap",
            Rejection::UnknownProposal(_) => "unknown_proposal",
            Rejection::AlreadyApproved(_) => "already_approved",
            Rejection::ProposalClosed { .. } => "proposal_closed",
            Rejection::ProposalExpired { .. } => "proposal_expired",
            Rejection::InvalidActivation { .. } => "invalid_activation",
            Rejection::MembershipPending(_) => "membership_pending",
            Rejection::InvalidMembership(_) => "invalid_membership",
            Rejection::Overflow => "overflow",
        }
    }
}

impl From<cachet_types::SignatureError> for Rejection {
    fn from(error: cachet_types::SignatureError) -> Rejection {
        use cachet_types::SignatureError;
        match error {
            SignatureError::BadSignature => Rejection::BadSignature,
            SignatureError::WeakKey => Rejection::WeakKey,
            SignatureError::InvalidKey => Rejection::InvalidKey,
            SignatureError::NonCanonicalKey => Rejection::NonCanonicalKey,
            SignatureError::MixedOrderKey => Rejection::MixedOrderKey,
        }
    }
}

impl From<TxCheckError> for Rejection {
    fn from(error: TxCheckError) -> Rejection {
        match error {
            TxCheckError::Malformed(e) => Rejection::Malformed(e.to_string()),
            TxCheckError::WrongChain { found, .. } => Rejection::WrongChain(found),
            TxCheckError::Signature(error) => Rejection::from(error),
            TxCheckError::InvalidField(e) => Rejection::InvalidField(e.to_string()),
        }
    }
}
