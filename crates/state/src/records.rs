//! What the ledger state holds: issues, stamps and accounts, keyed for storage and the tree.

use bincode::{Decode, Encode};
use serde::{Deserialize, Serialize};

use cachet_types::codec;
use cachet_types::{
    Address, Deadline, FreezeReason, Genesis, Hash, IssueId, IssueRecord, MembershipChange,
    Operator, OperatorId, PublicKey, StampId,
};

const STATE_KEY_TAG: &str = "cachet/state-key";
const STATE_VALUE_TAG: &str = "cachet/state-value";
const EVENT_TAG: &str = "cachet/stamp-event";

/// A key in the state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode)]
pub enum StateKey {
    /// An issue.
    Issue(IssueId),
    /// A stamp.
    Stamp(StampId),
    /// A signer's account (nonce).
    Account(PublicKey),
    /// The operator set's decided changes (one record for the chain).
    Membership,
    /// A membership proposal, by the id of the transaction that made it.
    Proposal(Hash),
}

impl StateKey {
    /// Canonical bytes, used as the storage key.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The key's position in the state tree.
    pub fn tree_key(&self) -> Hash {
        Hash::tagged(STATE_KEY_TAG, &[&self.to_bytes()])
    }
}

/// A value in the state.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StateValue {
    /// An issue.
    Issue(IssueState),
    /// A stamp.
    Stamp(StampState),
    /// An account.
    Account(AccountState),
    /// The membership record.
    Membership(MembershipState),
    /// A membership proposal.
    Proposal(ProposalState),
}

impl StateValue {
    /// Canonical bytes, as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// The value's hash in the state tree.
    pub fn tree_value(&self) -> Hash {
        Hash::tagged(STATE_VALUE_TAG, &[&self.to_bytes()])
    }
}

/// An issue and its supply.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct IssueState {
    /// The philatelic record.
    pub record: IssueRecord,
    /// Closed issues mint nothing more.
    pub closed: bool,
    /// Height of the block that created it.
    pub created_height: u64,
    /// Stamps minted so far.
    pub minted: u32,
    /// Stamps redeemed as postage.
    pub redeemed: u32,
    /// Stamps frozen right now.
    pub frozen: u32,
    /// Stamps destroyed.
    pub burned: u32,
    /// Stamps minted per variant, in the record's order (empty without variants).
    pub variant_minted: Vec<u32>,
    /// Stamps minted by each co-issuer, in the record's order (the lead operator's are
    /// `minted` less these).
    pub co_issuer_minted: Vec<u32>,
}

impl IssueState {
    /// A new issue's state.
    pub fn new(record: IssueRecord, created_height: u64) -> IssueState {
        IssueState {
            variant_minted: vec![0; record.variants.len()],
            co_issuer_minted: vec![0; record.co_issuers.len()],
            record,
            closed: false,
            created_height,
            minted: 0,
            redeemed: 0,
            frozen: 0,
            burned: 0,
        }
    }
}

/// Every decided change of the operator set, oldest first, each with the set it makes. No
/// record (or no changes) means the genesis operators. Changes are rare and each needs more
/// than two thirds of the operators, so the list stays short; keeping it whole in the state
/// lets any node (and any proof) name the operator set of every height from the tip alone.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode, Serialize, Deserialize)]
pub struct MembershipState {
    /// Decided changes in order of decision (and so of activation).
    pub changes: Vec<MembershipEpoch>,
}

/// One decided membership change.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct MembershipEpoch {
    /// The proposal that decided it.
    pub proposal: Hash,
    /// The change.
    pub change: MembershipChange,
    /// The proposing operator.
    pub proposer: OperatorId,
    /// The operators who approved it (the proposer first), in order of approval.
    pub approvals: Vec<OperatorId>,
    /// The ids of the approving transactions after the proposal, in order (what a proof of
    /// the change carries).
    pub approval_txs: Vec<Hash>,
    /// Height of the block whose approval decided it.
    pub decided_height: u64,
    /// First height signed by the new set.
    pub activation_height: u64,
    /// The operator set from `activation_height` on, in validator-index order.
    pub operators: Vec<Operator>,
}

impl MembershipState {
    /// The epoch (changes active so far; 0 is the genesis set) and the operators of the
    /// block at `height`. Exact for every height up to two past the state's block: a change
    /// is decided at least two blocks before it applies.
    pub fn at<'a>(&'a self, genesis: &'a Genesis, height: u64) -> (u32, &'a [Operator]) {
        let active = self
            .changes
            .iter()
            .take_while(|epoch| epoch.activation_height <= height)
            .count();
        let operators = match active {
            0 => genesis.operators.as_slice(),
            n => self.changes[n - 1].operators.as_slice(),
        };
        (active as u32, operators)
    }

    /// A change decided but not yet active at `height`.
    pub fn scheduled(&self, height: u64) -> Option<&MembershipEpoch> {
        self.changes
            .last()
            .filter(|epoch| epoch.activation_height > height)
    }
}

/// A membership proposal and its approvals so far.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct ProposalState {
    /// The change proposed.
    pub change: MembershipChange,
    /// First height at which the new set would sign.
    pub activation_height: u64,
    /// The proposing operator.
    pub proposer: OperatorId,
    /// Height of the proposing block.
    pub proposed_height: u64,
    /// The operator set's epoch when proposed: approvals count only within it.
    pub epoch: u32,
    /// The operators who approved it (the proposer first), in order.
    pub approvals: Vec<OperatorId>,
    /// The ids of the approving transactions after the proposal, in order.
    pub approval_txs: Vec<Hash>,
    /// Height of the block that decided it, once decided.
    pub decided_height: Option<u64>,
}

/// What can be done with a stamp now.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum StampStatus {
    /// Can be transferred, redeemed or frozen.
    Active,
    /// A physical twin minted to nobody: whoever proves the claim key takes it.
    Unclaimed {
        /// The claim public key committed at mint.
        claim_key: PublicKey,
    },
    /// Held by a freeze; nothing moves it until unfrozen.
    Frozen {
        /// Why.
        reason: FreezeReason,
        /// Case reference.
        case_ref: String,
    },
    /// Used as postage; final.
    Redeemed,
    /// Destroyed; final.
    Burned,
}

impl StampStatus {
    /// Short name.
    pub fn name(&self) -> &'static str {
        match self {
            StampStatus::Active => "active",
            StampStatus::Unclaimed { .. } => "unclaimed",
            StampStatus::Frozen { .. } => "frozen",
            StampStatus::Redeemed => "redeemed",
            StampStatus::Burned => "burned",
        }
    }
}

/// A stamp's current record.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct StampState {
    /// Current owner; nobody while an unclaimed physical twin.
    pub owner: Option<Address>,
    /// Current status.
    pub status: StampStatus,
    /// Hash of the stamp's latest event (the head of its own hash chain).
    pub last_event: Hash,
    /// Number of events so far (the next event's sequence number).
    pub event_count: u32,
    /// Who else may transfer it, and until when.
    pub approval: Option<Approval>,
}

/// An owner's permission for another account to transfer one stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Approval {
    /// The approved account.
    pub operator: Address,
    /// When it ends.
    pub until: Deadline,
}

/// A signer's account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode, Serialize, Deserialize)]
pub struct AccountState {
    /// Nonce of the signer's last final transaction (0: none yet).
    pub nonce: u64,
    /// This key claimed a physical twin: it never receives a stamp again.
    pub spent_claim_key: bool,
}

/// What happened to a stamp in one event.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    /// Minted to an owner.
    Minted {
        /// First owner.
        owner: Address,
    },
    /// Minted to nobody, claimable by whoever proves the claim key.
    MintedForClaim {
        /// The claim public key.
        claim_key: PublicKey,
    },
    /// The claim key's holder took the stamp.
    Claimed {
        /// The claim key that signed.
        claim_key: PublicKey,
        /// The new owner.
        to: Address,
    },
    /// Moved in a swap (the transaction moves every stamp of the swap, or none).
    Swapped {
        /// Previous owner.
        from: Address,
        /// New owner.
        to: Address,
    },
    /// Moved between owners.
    Transferred {
        /// Previous owner.
        from: Address,
        /// New owner.
        to: Address,
        /// The approved account that moved it, if not the owner.
        operator: Option<Address>,
    },
    /// The owner approved another account to transfer it.
    Approved {
        /// The approved account.
        operator: Address,
        /// Until when.
        until: Deadline,
    },
    /// The owner withdrew an approval.
    Revoked {
        /// The account that was approved.
        operator: Address,
    },
    /// Used as postage.
    Redeemed,
    /// Frozen.
    Frozen {
        /// Why.
        reason: FreezeReason,
        /// Case reference.
        case_ref: String,
    },
    /// Freeze lifted.
    Unfrozen {
        /// Case reference.
        case_ref: String,
    },
    /// Destroyed by its owner.
    Burned,
}

/// One entry of a stamp's history.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct StampEvent {
    /// The stamp.
    pub stamp: StampId,
    /// Position in the stamp's history, from 0.
    pub seq: u32,
    /// This event's hash: `H(stamp-event, stamp || previous event hash || tx id)`.
    pub event_hash: Hash,
    /// The previous event's hash (zero for the mint).
    pub prev_event: Hash,
    /// Transaction that caused it.
    pub tx_id: Hash,
    /// Block height.
    pub height: u64,
    /// Block time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Position of the transaction in its block.
    pub tx_index: u32,
    /// Who signed the transaction.
    pub signer: PublicKey,
    /// What happened.
    pub kind: EventKind,
}

/// The hash that links a stamp's events into a chain.
pub fn event_hash(stamp: &StampId, prev_event: &Hash, tx_id: &Hash) -> Hash {
    Hash::tagged(
        EVENT_TAG,
        &[
            &codec::encode(stamp),
            prev_event.as_bytes(),
            tx_id.as_bytes(),
        ],
    )
}
