//! Provenance bundles: everything needed to prove, offline and against the genesis alone,
//! where a stamp came from, that it is authentic, and who holds it now (`specs/provenance.md`).
//!
//! A bundle carries the issue's creating transaction, every transaction that touched the
//! stamp, each with a Merkle inclusion proof against its block header, those headers with
//! their commit certificates, and a sparse-Merkle proof of the stamp's current record
//! against the latest certified header. [`verify`] checks all of it and names the first check
//! that fails. Pure: no I/O.

mod membership;

use std::collections::BTreeMap;

pub use membership::{ChangeProof, MembershipProof, OperatorSets, verify_membership};

use cachet_state::smt::{self, SmtProof};
use cachet_state::{Approval, StampState, StampStatus, StateKey, StateValue, event_hash};
use cachet_types::merkle::{InclusionProof, verify_inclusion};
use cachet_types::{
    Address, BlockHeader, CommitCertificate, Genesis, Hash, IssueRecord, Operator, SignedTx,
    StampId, TxBody,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The `format` field of every bundle.
pub const BUNDLE_FORMAT: &str = "cachet-provenance-bundle";
/// The bundle format version this code reads and writes.
pub const BUNDLE_VERSION: u32 = 1;
/// Most events a bundle may carry (a hostile file must not make the verifier spin forever).
pub const MAX_BUNDLE_EVENTS: usize = 1_000_000;

/// A header and the certificate that finalized it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Its certificate.
    pub certificate: CommitCertificate,
}

/// A transaction with the proof that it sits in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncludedTx {
    /// The signed transaction.
    pub tx: SignedTx,
    /// Height of its block.
    pub height: u64,
    /// Inclusion proof against that block's transaction root (its index is the position).
    pub proof: InclusionProof,
}

/// The stamp's record at the latest certified height, with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentRecord {
    /// Height of the header whose state root the proof is against.
    pub height: u64,
    /// The stamp's record.
    pub record: StampState,
    /// Sparse Merkle proof of the record.
    pub proof: SmtProof,
}

/// A self-contained provenance bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenanceBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The chain (hash of the genesis).
    pub chain_id: Hash,
    /// The stamp.
    pub stamp: StampId,
    /// The transaction that created the stamp's issue.
    pub issue: IncludedTx,
    /// Every transaction that touched the stamp, oldest first.
    pub events: Vec<IncludedTx>,
    /// Every header referred to above, ascending by height, each once.
    pub headers: Vec<CertifiedHeader>,
    /// The current record.
    pub current: CurrentRecord,
    /// The operator set's changes up to the latest header (none while it is the genesis
    /// set).
    #[serde(default)]
    pub membership: MembershipProof,
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentic {
    /// The stamp.
    pub stamp: StampId,
    /// Its issue.
    pub issue: IssueRecord,
    /// Current owner; none while an unclaimed physical twin.
    pub owner: Option<Address>,
    /// Current status.
    pub status: StampStatus,
    /// Number of events, mint included.
    pub events: usize,
    /// Height the current record is proven at.
    pub as_of_height: u64,
}

/// The first check a bundle failed. Every variant has a stable [`Failure::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "check", content = "detail")]
pub enum Failure {
    /// Not a bundle of this format or version, or over the limits.
    #[error("not a supported provenance bundle: {0}")]
    Format(String),
    /// The genesis itself is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(String),
    /// The bundle is for another chain than the genesis.
    #[error("bundle is for chain {found}, the genesis is chain {expected}")]
    WrongChain {
        /// Chain of the genesis.
        expected: Hash,
        /// Chain named by the bundle (or a header or transaction in it).
        found: Hash,
    },
    /// A header is missing, duplicated or out of order.
    #[error("header at height {0} is missing, repeated or out of order")]
    MissingHeader(u64),
    /// A certificate does not carry more than two thirds of the genesis validators.
    #[error("certificate of height {height} is invalid: {reason}")]
    Certificate {
        /// Height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// Consecutive headers do not link.
    #[error("header {0} does not link to header {prev}", prev = .0 - 1)]
    BrokenLink(u64),
    /// A transaction signature does not verify.
    #[error("{what}: signature or chain id does not verify ({reason})")]
    Signature {
        /// Which transaction.
        what: String,
        /// Why.
        reason: String,
    },
    /// A transaction is not in the block it claims.
    #[error("{0} is not included in the block it claims")]
    NotIncluded(String),
    /// The issue record is not the one created on chain for this stamp.
    #[error("issue record is not authentic: {0}")]
    Issue(String),
    /// Events are missing, repeated or out of order.
    #[error("event {seq}: {reason}")]
    EventOrder {
        /// Event number.
        seq: usize,
        /// Why.
        reason: String,
    },
    /// The stamp's event hash chain is broken: an event is missing or out of place.
    #[error("event {0} does not follow the previous event (the event chain has a gap)")]
    ChainGap(usize),
    /// An event's transaction does not concern this stamp.
    #[error("event {0} belongs to another stamp")]
    ForeignEvent(usize),
    /// An event breaks the ledger's rules.
    #[error("event {seq} breaks a rule: {reason}")]
    Rule {
        /// Event number.
        seq: usize,
        /// Which rule.
        reason: String,
    },
    /// The current-record proof does not check against the latest certified header.
    #[error("current record proof does not verify against the state root at height {0}")]
    StateProof(u64),
    /// The proven record differs from what the history says.
    #[error("current record does not match the history: {0}")]
    RecordMismatch(String),
    /// A membership change is not proven.
    #[error("membership: {0}")]
    Membership(String),
}

impl Failure {
    /// Stable snake_case code of the failed check.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Format(_) => "format",
            Failure::Genesis(_) => "genesis",
            Failure::WrongChain { .. } => "wrong_chain",
            Failure::MissingHeader(_) => "missing_header",
            Failure::Certificate { .. } => "certificate",
            Failure::BrokenLink(_) => "broken_link",
            Failure::Signature { .. } => "signature",
            Failure::NotIncluded(_) => "not_included",
            Failure::Issue(_) => "issue",
            Failure::EventOrder { .. } => "event_order",
            Failure::ChainGap(_) => "chain_gap",
            Failure::ForeignEvent(_) => "foreign_event",
            Failure::Rule { .. } => "rule",
            Failure::StateProof(_) => "state_proof",
            Failure::RecordMismatch(_) => "record_mismatch",
            Failure::Membership(_) => "membership",
        }
    }
}

/// Checks headers: strictly ascending, same chain, certified by the validators of their
/// height, and linked wherever two consecutive heights are both present.
fn check_headers(
    bundle: &ProvenanceBundle,
    sets: &OperatorSets,
    chain_id: &Hash,
) -> Result<BTreeMap<u64, BlockHeader>, Failure> {
    let mut headers = BTreeMap::new();
    let mut previous: Option<&BlockHeader> = None;
    for certified in &bundle.headers {
        let header = &certified.header;
        if header.chain_id != *chain_id {
            return Err(Failure::WrongChain {
                expected: *chain_id,
                found: header.chain_id,
            });
        }
        if header.height == 0 || previous.is_some_and(|p| p.height >= header.height) {
            return Err(Failure::MissingHeader(header.height));
        }
        certified
            .certificate
            .verify(header, &sets.validators_at(header.height))
            .map_err(|e| Failure::Certificate {
                height: header.height,
                reason: e.to_string(),
            })?;
        match previous {
            Some(p) if p.height + 1 == header.height && header.prev_hash != p.hash() => {
                return Err(Failure::BrokenLink(header.height));
            }
            None if header.height == 1 && header.prev_hash != *chain_id => {
                return Err(Failure::BrokenLink(1));
            }
            _ => {}
        }
        headers.insert(header.height, header.clone());
        previous = Some(header);
    }
    Ok(headers)
}

/// Checks one included transaction: signature and chain, and inclusion in its header.
fn check_included(
    included: &IncludedTx,
    what: &str,
    chain_id: &Hash,
    headers: &BTreeMap<u64, BlockHeader>,
) -> Result<Hash, Failure> {
    let verified = included
        .tx
        .clone()
        .verify(chain_id)
        .map_err(|e| Failure::Signature {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    let header = headers
        .get(&included.height)
        .ok_or(Failure::MissingHeader(included.height))?;
    let id = verified.id();
    if included.proof.count != header.tx_count
        || !verify_inclusion(&header.tx_root, &verified.witness_hash(), &included.proof)
    {
        return Err(Failure::NotIncluded(what.to_string()));
    }
    Ok(id)
}

fn find_operator<'s>(
    operators: &'s [Operator],
    id: &cachet_types::OperatorId,
) -> Option<&'s Operator> {
    operators.iter().find(|op| op.id == *id)
}

/// Verifies a bundle against a genesis. Returns what it proves, or the first failed check.
pub fn verify(bundle: &ProvenanceBundle, genesis: &Genesis) -> Result<Authentic, Failure> {
    if bundle.format != BUNDLE_FORMAT || bundle.version != BUNDLE_VERSION {
        return Err(Failure::Format(format!(
            "{} version {}",
            bundle.format, bundle.version
        )));
    }
    if bundle.events.len() > MAX_BUNDLE_EVENTS {
        return Err(Failure::Format("too many events".into()));
    }
    genesis
        .validate()
        .map_err(|e| Failure::Genesis(e.to_string()))?;
    let chain_id = genesis.chain_id();
    if bundle.chain_id != chain_id {
        return Err(Failure::WrongChain {
            expected: chain_id,
            found: bundle.chain_id,
        });
    }
    let sets = verify_membership(genesis, &chain_id, &bundle.membership)?;
    let headers = check_headers(bundle, &sets, &chain_id)?;

    // The issue: created on chain by its own operator's issuer account.
    check_included(&bundle.issue, "issue creation", &chain_id, &headers).map_err(|e| match e {
        Failure::Signature { reason, .. } => Failure::Issue(format!(
            "its creating transaction does not verify ({reason})"
        )),
        other => other,
    })?;
    let record = match &bundle.issue.tx.body {
        TxBody::CreateIssue { record } if record.id == bundle.stamp.issue => record.clone(),
        _ => {
            return Err(Failure::Issue(
                "the issue transaction does not create this stamp's issue".into(),
            ));
        }
    };
    // The operators when the issue was created.
    let operators = sets.at(bundle.issue.height);
    let operator = find_operator(operators, &record.operator)
        .ok_or_else(|| Failure::Issue(format!("{} was not an operator", record.operator)))?;
    if operator.issuer.public_key() != &bundle.issue.tx.signer {
        return Err(Failure::Issue(format!(
            "not signed by {}'s issuer account",
            record.operator
        )));
    }
    // A joint issue: every co-issuer was an operator and cosigned the creation.
    let mut issuers = vec![*operator.issuer.public_key()];
    for co in &record.co_issuers {
        let key = find_operator(operators, &co.operator)
            .map(|op| *op.issuer.public_key())
            .ok_or_else(|| Failure::Issue(format!("{} was not an operator", co.operator)))?;
        if !bundle.issue.tx.cosignatures.iter().any(|c| c.signer == key) {
            return Err(Failure::Issue(format!("not cosigned by {}", co.operator)));
        }
        issuers.push(key);
    }

    // The events, replayed with the ledger's rules for one stamp.
    let serial = bundle.stamp.serial;
    let mut minted = false;
    let mut owner: Option<Address> = None;
    let mut status = StampStatus::Active;
    let mut approval: Option<Approval> = None;
    let mut head = Hash::ZERO;
    // Order first: every event strictly after the one before (and after the issue).
    let mut last_position = (bundle.issue.height, bundle.issue.proof.index);
    for (seq, event) in bundle.events.iter().enumerate() {
        let position = (event.height, event.proof.index);
        if position <= last_position {
            return Err(Failure::EventOrder {
                seq,
                reason: "not after the previous event".into(),
            });
        }
        last_position = position;
    }
    for (seq, event) in bundle.events.iter().enumerate() {
        let what = format!("event {seq}");
        let tx_id = check_included(event, &what, &chain_id, &headers)?;
        let rule = |reason: &str| Failure::Rule {
            seq,
            reason: reason.to_string(),
        };
        let signer = &event.tx.signer;
        let by_issuer = issuers.contains(signer);
        let by_owner = owner.is_some_and(|o| o.public_key() == signer);
        let active = matches!(status, StampStatus::Active);
        match &event.tx.body {
            TxBody::Mint {
                issue,
                first_serial,
                last_serial,
                owner: to,
                variant,
                claim_keys,
            } if *issue == bundle.stamp.issue
                && (*first_serial..=*last_serial).contains(&serial) =>
            {
                if minted {
                    return Err(Failure::EventOrder {
                        seq,
                        reason: "a second mint of the same stamp".into(),
                    });
                }
                if !by_issuer {
                    return Err(rule("minted by an account that is not an issuer"));
                }
                if *last_serial > record.print_run {
                    return Err(rule("minted over the print run"));
                }
                if let Some(name) = variant {
                    match record.variant_serials(name) {
                        Some((_, from, to)) if *first_serial >= from && *last_serial <= to => {}
                        _ => return Err(rule("minted outside its named variant")),
                    }
                } else if !record.variants.is_empty() {
                    return Err(rule("minted without naming a variant"));
                }
                minted = true;
                if claim_keys.is_empty() {
                    owner = Some(*to);
                } else {
                    let claim_key = claim_keys
                        .get((serial - first_serial) as usize)
                        .ok_or_else(|| rule("fewer claim keys than serials"))?;
                    status = StampStatus::Unclaimed {
                        claim_key: *claim_key,
                    };
                }
            }
            TxBody::Mint { .. } if !minted => return Err(Failure::ForeignEvent(seq)),
            _ if !minted => {
                return Err(Failure::EventOrder {
                    seq,
                    reason: "history does not start with the mint".into(),
                });
            }
            TxBody::Claim { stamp, to } if *stamp == bundle.stamp => {
                match status {
                    StampStatus::Unclaimed { claim_key } if claim_key == *signer => {}
                    _ => return Err(rule("claim of a stamp not waiting for this claim key")),
                }
                owner = Some(*to);
                status = StampStatus::Active;
            }
            TxBody::Swap {
                give,
                take,
                counterparty,
            } => {
                let me = signer.address();
                let (leg, from, to) =
                    if let Some(leg) = give.iter().find(|l| l.stamp == bundle.stamp) {
                        (leg, me, *counterparty)
                    } else if let Some(leg) = take.iter().find(|l| l.stamp == bundle.stamp) {
                        (leg, *counterparty, me)
                    } else {
                        return Err(Failure::ForeignEvent(seq));
                    };
                if leg.last_event != head {
                    return Err(Failure::ChainGap(seq));
                }
                if owner != Some(from) || !active {
                    return Err(rule(
                        "swap of a stamp its side does not hold, or not active",
                    ));
                }
                // (Its counterparty's cosignature was checked with the transaction in step 1:
                // a swap is only well-formed with it.)
                owner = Some(to);
            }
            body => {
                let stamp = match body {
                    TxBody::Transfer { stamp, .. }
                    | TxBody::Redeem { stamp }
                    | TxBody::Freeze { stamp, .. }
                    | TxBody::Unfreeze { stamp, .. }
                    | TxBody::Burn { stamp, .. }
                    | TxBody::Approve { stamp, .. }
                    | TxBody::Revoke { stamp } => stamp,
                    _ => return Err(Failure::ForeignEvent(seq)),
                };
                if *stamp != bundle.stamp {
                    return Err(Failure::ForeignEvent(seq));
                }
                match body {
                    TxBody::Transfer { last_event, to, .. } => {
                        if *last_event != head {
                            return Err(Failure::ChainGap(seq));
                        }
                        let block = headers
                            .get(&event.height)
                            .ok_or(Failure::MissingHeader(event.height))?;
                        let by_approved = approval.is_some_and(|a| {
                            a.operator.public_key() == signer
                                && !a.until.passed(block.height, block.time_ms)
                        });
                        if !by_owner && !by_approved {
                            return Err(rule(
                                "transfer not signed by the then-owner or an account it approved",
                            ));
                        }
                        if !active {
                            return Err(rule("transfer of a stamp that is not active"));
                        }
                        owner = Some(*to);
                    }
                    TxBody::Approve {
                        operator, until, ..
                    } => {
                        let block = headers
                            .get(&event.height)
                            .ok_or(Failure::MissingHeader(event.height))?;
                        if !by_owner || !active || until.passed(block.height, block.time_ms) {
                            return Err(rule(
                                "approval not by the owner, of an inactive stamp, or already over",
                            ));
                        }
                        approval = Some(Approval {
                            operator: *operator,
                            until: *until,
                        });
                        head = event_hash(&bundle.stamp, &head, &tx_id);
                        continue;
                    }
                    TxBody::Revoke { .. } => {
                        if !by_owner || approval.is_none() {
                            return Err(rule("revocation not by the owner or with no approval"));
                        }
                    }
                    TxBody::Burn { last_event, .. } => {
                        if *last_event != head {
                            return Err(Failure::ChainGap(seq));
                        }
                        if !by_owner || !active {
                            return Err(rule("burn not by the owner or of an inactive stamp"));
                        }
                        status = StampStatus::Burned;
                    }
                    TxBody::Redeem { .. } => {
                        if !by_issuer || !active {
                            return Err(rule("redeem by a non-issuer or of an inactive stamp"));
                        }
                        status = StampStatus::Redeemed;
                    }
                    TxBody::Freeze {
                        reason, case_ref, ..
                    } => {
                        if !by_issuer || !active {
                            return Err(rule("freeze by a non-issuer or of an inactive stamp"));
                        }
                        status = StampStatus::Frozen {
                            reason: *reason,
                            case_ref: case_ref.clone(),
                        };
                    }
                    TxBody::Unfreeze { .. } => {
                        if !by_issuer || !matches!(status, StampStatus::Frozen { .. }) {
                            return Err(rule("unfreeze by a non-issuer or of a stamp not frozen"));
                        }
                        status = StampStatus::Active;
                    }
                    _ => return Err(Failure::ForeignEvent(seq)),
                }
            }
        }
        // Every event but an approval ends any approval (as the ledger does).
        approval = None;
        head = event_hash(&bundle.stamp, &head, &tx_id);
    }
    if !minted {
        return Err(Failure::EventOrder {
            seq: 0,
            reason: "no mint".into(),
        });
    }

    // The current record: proven against the latest header, and equal to the replay.
    let current = &bundle.current;
    let latest = headers
        .last_key_value()
        .map(|(height, _)| *height)
        .ok_or(Failure::MissingHeader(current.height))?;
    if current.height != latest {
        // A proof at an older height says nothing about what happened since.
        return Err(Failure::StateProof(current.height));
    }
    let header = headers
        .get(&current.height)
        .ok_or(Failure::MissingHeader(current.height))?;
    let key = StateKey::Stamp(bundle.stamp.clone()).tree_key();
    let value = StateValue::Stamp(current.record.clone()).tree_value();
    if !smt::verify(&header.state_root, &key, Some(&value), &current.proof) {
        return Err(Failure::StateProof(current.height));
    }
    let expected = StampState {
        owner,
        status: status.clone(),
        last_event: head,
        event_count: u32::try_from(bundle.events.len())
            .map_err(|_| Failure::Format("too many events".into()))?,
        approval,
    };
    if current.record != expected {
        return Err(Failure::RecordMismatch(format!(
            "proven record {:?} but the history gives {:?}",
            current.record, expected
        )));
    }
    Ok(Authentic {
        stamp: bundle.stamp.clone(),
        issue: record,
        owner,
        status,
        events: bundle.events.len(),
        as_of_height: current.height,
    })
}

/// The `format` field of supply proofs.
pub const SUPPLY_FORMAT: &str = "cachet-supply-proof";

/// An issue's supply (minted, redeemed, frozen, burned against the print run), proven against
/// a certified header's state root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupplyProof {
    /// Always [`SUPPLY_FORMAT`].
    pub format: String,
    /// Format version.
    pub version: u32,
    /// The chain.
    pub chain_id: Hash,
    /// The issue's state: record and counters.
    pub issue: cachet_state::IssueState,
    /// The header the proof is against, with its certificate.
    pub header: CertifiedHeader,
    /// Sparse Merkle proof of the issue's state.
    pub proof: SmtProof,
    /// The operator set's changes up to the header (none while it is the genesis set).
    #[serde(default)]
    pub membership: MembershipProof,
}

/// Verifies a supply proof against a genesis: the certificate, the state proof, and that the
/// counters respect the print run.
pub fn verify_supply(
    supply: &SupplyProof,
    genesis: &Genesis,
) -> Result<cachet_state::IssueState, Failure> {
    if supply.format != SUPPLY_FORMAT || supply.version != BUNDLE_VERSION {
        return Err(Failure::Format(format!(
            "{} version {}",
            supply.format, supply.version
        )));
    }
    genesis
        .validate()
        .map_err(|e| Failure::Genesis(e.to_string()))?;
    let chain_id = genesis.chain_id();
    if supply.chain_id != chain_id || supply.header.header.chain_id != chain_id {
        return Err(Failure::WrongChain {
            expected: chain_id,
            found: supply.chain_id,
        });
    }
    let header = &supply.header.header;
    let sets = verify_membership(genesis, &chain_id, &supply.membership)?;
    supply
        .header
        .certificate
        .verify(header, &sets.validators_at(header.height))
        .map_err(|e| Failure::Certificate {
            height: header.height,
            reason: e.to_string(),
        })?;
    let issue = &supply.issue;
    let key = StateKey::Issue(issue.record.id.clone()).tree_key();
    let value = StateValue::Issue(issue.clone()).tree_value();
    if !smt::verify(&header.state_root, &key, Some(&value), &supply.proof) {
        return Err(Failure::StateProof(header.height));
    }
    let retired = u64::from(issue.redeemed) + u64::from(issue.burned);
    if issue.minted > issue.record.print_run
        || retired > u64::from(issue.minted)
        || u64::from(issue.frozen) + retired > u64::from(issue.minted)
    {
        return Err(Failure::Rule {
            seq: 0,
            reason: "supply counters break the print run".into(),
        });
    }
    Ok(issue.clone())
}
