//! Membership proofs: how the operator set changed since the genesis, proven by the
//! proposing and approving transactions, each included in a block certified by the set in
//! force at its height. A verifier starts from the genesis set and admits one change at a
//! time, so every certificate it checks was signed by a set it already trusts.
//!
//! Trust: like any light client, a verifier given a proof that leaves out a later change
//! checks later certificates against the set before it; forging them would take more than
//! two thirds of that old set (keys of operators who have since left), which is the
//! assumption proofs rest on.

use std::collections::BTreeMap;

use cachet_state::membership::{ACTIVATION_LEAD, apply_change, decided};
use cachet_types::{Genesis, Hash, Operator, PublicKey, TxBody};
use serde::{Deserialize, Serialize};

use crate::{CertifiedHeader, Failure, IncludedTx, check_included};

/// Most membership changes a proof may carry (the chain records at most 1,000).
pub const MAX_CHANGES: usize = cachet_state::membership::MAX_CHANGES;

/// One decided change: its proposal and the approvals after it, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeProof {
    /// The `propose_membership` transaction.
    pub proposal: IncludedTx,
    /// The `approve_membership` transactions that decided it, in order.
    pub approvals: Vec<IncludedTx>,
}

/// Every change of the operator set up to a height, with the headers their transactions
/// sit in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipProof {
    /// The changes, oldest first.
    pub changes: Vec<ChangeProof>,
    /// The headers of their transactions, ascending by height, each once.
    pub headers: Vec<CertifiedHeader>,
}

/// The operator sets a membership proof establishes: the genesis set, then each proven
/// change's set from its activation height.
#[derive(Debug, Clone)]
pub struct OperatorSets {
    epochs: Vec<(u64, Vec<Operator>)>,
}

impl OperatorSets {
    /// The operators of height `height`.
    pub fn at(&self, height: u64) -> &[Operator] {
        self.epochs
            .iter()
            .rev()
            .find(|(from, _)| *from <= height)
            .map(|(_, set)| set.as_slice())
            .unwrap_or(&[])
    }

    /// The validator keys of height `height`, by index.
    pub fn validators_at(&self, height: u64) -> Vec<PublicKey> {
        self.at(height).iter().map(|op| op.validator_key).collect()
    }
}

/// Checks a membership proof against the genesis and returns the operator sets it proves.
pub fn verify_membership(
    genesis: &Genesis,
    chain_id: &Hash,
    proof: &MembershipProof,
) -> Result<OperatorSets, Failure> {
    let fail = |what: String| Failure::Membership(what);
    if proof.changes.len() > MAX_CHANGES {
        return Err(Failure::Format("too many membership changes".into()));
    }
    let mut sets = OperatorSets {
        epochs: vec![(0, genesis.operators.clone())],
    };
    let mut headers = BTreeMap::new();
    for certified in &proof.headers {
        if certified.header.chain_id != *chain_id {
            return Err(Failure::WrongChain {
                expected: *chain_id,
                found: certified.header.chain_id,
            });
        }
        if headers
            .insert(certified.header.height, certified.clone())
            .is_some()
        {
            return Err(Failure::MissingHeader(certified.header.height));
        }
    }
    let mut checked: BTreeMap<u64, cachet_types::BlockHeader> = BTreeMap::new();
    for (k, change) in proof.changes.iter().enumerate() {
        let since = sets.epochs.last().map_or(0, |(from, _)| *from);
        let current = sets.at(since).to_vec();
        // Each transaction: in a block certified by the current set, after the set applied.
        let mut check = |included: &IncludedTx, what: String| -> Result<Hash, Failure> {
            let height = included.height;
            if height < since.max(1) {
                return Err(fail(format!("{what} is from before the set it counts in")));
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = checked.entry(height) {
                let certified = headers.get(&height).ok_or(Failure::MissingHeader(height))?;
                certified
                    .certificate
                    .verify(&certified.header, &sets.validators_at(height))
                    .map_err(|e| Failure::Certificate {
                        height,
                        reason: e.to_string(),
                    })?;
                slot.insert(certified.header.clone());
            }
            check_included(included, &what, chain_id, &checked)
        };
        let proposal_id = check(&change.proposal, format!("membership change {k} proposal"))?;
        let TxBody::ProposeMembership {
            change: body,
            activation_height,
        } = &change.proposal.tx.body
        else {
            return Err(fail(format!("change {k}: not a proposal")));
        };
        let member = |signer: &PublicKey| {
            current
                .iter()
                .find(|op| op.issuer.public_key() == signer)
                .map(|op| op.id.clone())
        };
        let proposer = member(&change.proposal.tx.signer)
            .ok_or_else(|| fail(format!("change {k}: proposed by no current operator")))?;
        let mut approvers = vec![proposer];
        let mut last = (change.proposal.height, change.proposal.proof.index);
        for (i, approval) in change.approvals.iter().enumerate() {
            if decided(approvers.len(), current.len()) {
                return Err(fail(format!("change {k}: approvals after it was decided")));
            }
            check(approval, format!("membership change {k} approval {i}"))?;
            let position = (approval.height, approval.proof.index);
            if position <= last {
                return Err(fail(format!("change {k}: approvals out of order")));
            }
            last = position;
            if approval.tx.body
                != (TxBody::ApproveMembership {
                    proposal: proposal_id,
                })
            {
                return Err(fail(format!(
                    "change {k}: approval {i} is for another proposal"
                )));
            }
            let approver = member(&approval.tx.signer)
                .ok_or_else(|| fail(format!("change {k}: approval {i} by no current operator")))?;
            if approvers.contains(&approver) {
                return Err(fail(format!("change {k}: {approver} approved twice")));
            }
            approvers.push(approver);
        }
        if !decided(approvers.len(), current.len()) {
            return Err(fail(format!(
                "change {k}: {} of {} operators approved; more than two thirds must",
                approvers.len(),
                current.len()
            )));
        }
        if last.0 + ACTIVATION_LEAD > *activation_height {
            return Err(fail(format!("change {k}: decided too late for its height")));
        }
        let next = apply_change(&current, body).map_err(|e| fail(format!("change {k}: {e}")))?;
        sets.epochs.push((*activation_height, next));
    }
    Ok(sets)
}
