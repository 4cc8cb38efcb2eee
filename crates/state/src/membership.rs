//! Operator membership: what a change does to the operator set, and when it is decided.
//!
//! A current operator proposes a change with an activation height; it is decided when more
//! than two thirds of the current operators (the proposer included) have approved it, in a
//! block at least [`ACTIVATION_LEAD`] blocks before the activation height. From that height
//! the new set signs blocks and its operators issue. The state-reading side is in
//! `execute.rs`; this module is the arithmetic.

use cachet_types::genesis::MAX_OPERATORS;
use cachet_types::{MembershipChange, Operator, OperatorId};

use crate::rejection::Rejection;

/// A change applies at least this many blocks after the block that decides it, so every
/// node knows the validator set of the next two heights from its tip.
pub const ACTIVATION_LEAD: u64 = 2;

/// A proposal may name an activation height at most this far ahead.
pub const MAX_ACTIVATION_DELAY: u64 = 1_000_000;

/// Most decided changes a chain records (the membership record keeps each with its whole
/// set, so this bounds the record at a few megabytes: a change a week for nineteen years).
pub const MAX_CHANGES: usize = 1000;

/// True once `approvals` of `operators` operators are more than two thirds.
pub fn decided(approvals: usize, operators: usize) -> bool {
    approvals * 3 > operators * 2
}

/// The operator set after `change`, or why the change does not fit `current`.
pub fn apply_change(
    current: &[Operator],
    change: &MembershipChange,
) -> Result<Vec<Operator>, Rejection> {
    let invalid = |why: String| Rejection::InvalidMembership(why);
    let position = |id: &OperatorId| current.iter().position(|op| op.id == *id);
    let mut next = current.to_vec();
    match change {
        MembershipChange::AddOperator { operator } => {
            if let Some(other) = current.iter().find(|op| op.clashes(operator)) {
                return Err(invalid(format!(
                    "operator {} shares an id, validator key, node key or issuer account with {}",
                    operator.id, other.id
                )));
            }
            if current.len() >= MAX_OPERATORS {
                return Err(invalid(format!(
                    "a chain has at most {MAX_OPERATORS} operators"
                )));
            }
            next.push(operator.clone());
        }
        MembershipChange::RemoveOperator { operator } => {
            let index = position(operator)
                .ok_or_else(|| invalid(format!("{operator} is not a current operator")))?;
            if current.len() == 1 {
                return Err(invalid("the last operator cannot leave".into()));
            }
            next.remove(index);
        }
        MembershipChange::RotateValidatorKey {
            operator,
            validator_key,
        } => {
            let index = position(operator)
                .ok_or_else(|| invalid(format!("{operator} is not a current operator")))?;
            if current.iter().any(|op| op.validator_key == *validator_key) {
                return Err(invalid("the new validator key is already in use".into()));
            }
            next[index].validator_key = *validator_key;
        }
        MembershipChange::RotateNodeKey { operator, node_key } => {
            let index = position(operator)
                .ok_or_else(|| invalid(format!("{operator} is not a current operator")))?;
            if current.iter().any(|op| op.node_key == *node_key) {
                return Err(invalid("the new node key is already in use".into()));
            }
            next[index].node_key = *node_key;
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_two_thirds_decide() {
        assert!(decided(1, 1));
        assert!(!decided(2, 3));
        assert!(decided(3, 3));
        assert!(!decided(2, 4));
        assert!(decided(3, 4));
        assert!(!decided(3, 5));
        assert!(decided(4, 5));
        assert!(!decided(4, 6));
        assert!(decided(5, 6));
    }
}
