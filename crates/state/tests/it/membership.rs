//! Operator membership: proposals, approvals by more than two thirds, activation heights.

use cachet_state::{MembershipState, ProposalState, Rejection, StateKey, StateValue, StateView};
use cachet_testkit::{TestChain, TestLedger, TxFactory, issue_record, key, operator_id};
use cachet_types::{
    CountryCode, Hash, MembershipChange, Operator, OperatorId, PublicKey, SignedTx, SigningKey,
    TxBody,
};

/// Four operators (AT, DE, CH, FR) on a memory state.
struct Members {
    chain: TestChain,
    state: TestLedger,
    txs: TxFactory,
}

impl Members {
    fn new() -> Members {
        let chain = TestChain::new(4);
        Members {
            txs: TxFactory::new(chain.chain_id),
            state: TestLedger::new(&chain),
            chain,
        }
    }

    fn op(&self, index: usize) -> SigningKey {
        self.chain.issuer(index).clone()
    }

    /// Signs and applies `body` as one block; the transaction (for its id) and the outcome.
    fn run(&mut self, signer: &SigningKey, body: TxBody) -> (SignedTx, Result<(), Rejection>) {
        let tx = self.txs.sign(signer, body);
        let before = self.state.root_hash();
        let result = self.state.apply_one(&tx);
        if result.is_err() {
            self.txs.release(signer);
            assert_eq!(before, self.state.root_hash(), "a refused tx changed state");
        }
        (tx, result)
    }

    fn ok(&mut self, signer: &SigningKey, body: TxBody) -> Hash {
        let (tx, result) = self.run(signer, body);
        result.unwrap_or_else(|reason| panic!("refused: {reason}"));
        tx.id()
    }

    fn refused(&mut self, signer: &SigningKey, body: TxBody) -> Rejection {
        self.run(signer, body).1.expect_err("must be refused")
    }

    /// Applies empty blocks until the state's last block is `height`.
    fn advance_to(&mut self, height: u64) {
        while self.state.height() < height {
            self.state.apply_block(&[]);
        }
    }

    /// The next block's height.
    fn next(&self) -> u64 {
        self.state.height() + 1
    }

    fn operators_at(&self, height: u64) -> Vec<OperatorId> {
        cachet_state::operators_at(&self.state, &self.chain.genesis, height)
            .unwrap()
            .into_iter()
            .map(|op| op.id)
            .collect()
    }

    fn membership(&self) -> MembershipState {
        cachet_state::membership(&self.state).unwrap()
    }

    fn proposal(&self, id: Hash) -> ProposalState {
        match self.state.get(&StateKey::Proposal(id)).unwrap() {
            Some(StateValue::Proposal(proposal)) => proposal,
            other => panic!("no proposal {id}: {other:?}"),
        }
    }
}

fn newcomer() -> (Operator, SigningKey, SigningKey) {
    let validator = key("IT-validator");
    let issuer = key("IT-issuer");
    let operator = Operator {
        id: operator_id("IT"),
        country: CountryCode::parse("IT").unwrap(),
        name: "IT Post".into(),
        validator_key: validator.public_key(),
        node_key: key("IT-node").public_key(),
        issuer: issuer.public_key().address(),
    };
    (operator, validator, issuer)
}

fn propose(change: MembershipChange, activation_height: u64) -> TxBody {
    TxBody::ProposeMembership {
        change,
        activation_height,
    }
}

fn approve(proposal: Hash) -> TxBody {
    TxBody::ApproveMembership { proposal }
}

fn ids(list: &[&str]) -> Vec<OperatorId> {
    list.iter().map(|country| operator_id(country)).collect()
}

#[test]
fn an_operator_joins_once_more_than_two_thirds_approve_and_from_the_agreed_height() {
    let mut m = Members::new();
    let (italy, _, italy_issuer) = newcomer();
    let activation = m.next() + 10;
    let add = MembershipChange::AddOperator { operator: italy };
    let id = m.ok(&m.op(0), propose(add.clone(), activation));
    assert_eq!(m.proposal(id).approvals, ids(&["AT"]));
    m.ok(&m.op(1), approve(id));
    // Two of four is not more than two thirds: nothing is decided yet.
    assert!(m.membership().changes.is_empty());
    assert_eq!(m.proposal(id).decided_height, None);
    m.ok(&m.op(2), approve(id));
    let decided_at = m.state.height();
    let record = m.membership();
    assert_eq!(record.changes.len(), 1);
    let change = &record.changes[0];
    assert_eq!(
        (
            change.proposal,
            change.decided_height,
            change.activation_height
        ),
        (id, decided_at, activation)
    );
    assert_eq!(change.approvals, ids(&["AT", "DE", "CH"]));
    assert_eq!(change.change, add);
    assert_eq!(m.proposal(id).decided_height, Some(decided_at));

    // Late approvals of a decided proposal are refused.
    let late = m.refused(&m.op(3), approve(id));
    assert_eq!(late.code(), "proposal_closed", "{late}");

    // The set changes exactly at the activation height.
    let before = ids(&["AT", "DE", "CH", "FR"]);
    let after = ids(&["AT", "DE", "CH", "FR", "IT"]);
    assert_eq!(m.operators_at(activation - 1), before);
    assert_eq!(m.operators_at(activation), after);

    // Until then the newcomer is no operator; from then on it issues.
    let create = TxBody::CreateIssue {
        record: issue_record("IT-2026-001", "IT-POST", 100),
    };
    m.advance_to(activation - 2);
    assert_eq!(
        m.refused(&italy_issuer, create.clone()),
        Rejection::NotOperator
    );
    m.advance_to(activation - 1);
    m.ok(&italy_issuer, create);
    assert_eq!(m.operators_at(m.next()), after);
}

#[test]
fn a_membership_change_with_too_few_approvals_never_applies() {
    let mut m = Members::new();
    let (italy, _, _) = newcomer();
    let activation = m.next() + 6;
    let id = m.ok(
        &m.op(0),
        propose(
            MembershipChange::AddOperator { operator: italy },
            activation,
        ),
    );
    m.ok(&m.op(1), approve(id));
    // The last block that could decide it is activation - 2; past it, approvals are refused.
    m.advance_to(activation - 2);
    let expired = m.refused(&m.op(2), approve(id));
    assert_eq!(
        expired,
        Rejection::ProposalExpired {
            proposal: id,
            activation,
            last: activation - 2,
        }
    );
    m.advance_to(activation + 1);
    assert!(m.membership().changes.is_empty());
    assert_eq!(m.operators_at(activation), ids(&["AT", "DE", "CH", "FR"]));
}

#[test]
fn operators_leave_and_rotate_validator_keys_by_the_same_vote() {
    let mut m = Members::new();
    // CH leaves.
    let activation = m.next() + 5;
    let remove = MembershipChange::RemoveOperator {
        operator: operator_id("CH"),
    };
    let id = m.ok(&m.op(0), propose(remove, activation));
    m.ok(&m.op(1), approve(id));
    m.ok(&m.op(3), approve(id));
    m.advance_to(activation - 1);
    assert_eq!(m.operators_at(activation), ids(&["AT", "DE", "FR"]));
    let create = TxBody::CreateIssue {
        record: issue_record("CH-2026-001", "CH-POST", 100),
    };
    assert_eq!(m.refused(&m.op(2), create), Rejection::NotOperator);
    // Its approval no longer counts either.
    let new_key = key("DE-validator-2").public_key();
    let rotate = MembershipChange::RotateValidatorKey {
        operator: operator_id("DE"),
        validator_key: new_key,
    };
    let activation = m.next() + 5;
    let id = m.ok(&m.op(1), propose(rotate, activation));
    assert_eq!(m.refused(&m.op(2), approve(id)), Rejection::NotOperator);
    // Of three operators, two is not more than two thirds; three is.
    m.ok(&m.op(0), approve(id));
    assert_eq!(m.membership().changes.len(), 1);
    m.ok(&m.op(3), approve(id));
    assert_eq!(m.membership().changes.len(), 2);
    let keys = |height| -> Vec<PublicKey> {
        cachet_state::operators_at(&m.state, &m.chain.genesis, height)
            .unwrap()
            .iter()
            .map(|op| op.validator_key)
            .collect()
    };
    assert_eq!(keys(activation - 1)[1], m.chain.validator(1).public_key());
    assert_eq!(keys(activation)[1], new_key);
}

#[test]
fn an_operator_rotates_its_node_key_by_vote() {
    let mut m = Members::new();
    let new_key = key("DE-node-2").public_key();
    let rotate = MembershipChange::RotateNodeKey {
        operator: operator_id("DE"),
        node_key: new_key,
    };
    let activation = m.next() + 5;
    let id = m.ok(&m.op(1), propose(rotate, activation));
    m.ok(&m.op(0), approve(id));
    m.ok(&m.op(2), approve(id));
    let node_keys = |m: &Members, height| -> Vec<PublicKey> {
        cachet_state::operators_at(&m.state, &m.chain.genesis, height)
            .unwrap()
            .iter()
            .map(|op| op.node_key)
            .collect()
    };
    let before = node_keys(&m, activation - 1);
    assert_eq!(before[1], m.chain.genesis.operators[1].node_key);
    let after = node_keys(&m, activation);
    assert_eq!(after[1], new_key);
    // Only DE's node key changed; its validator key did not.
    assert_eq!(after[0], before[0]);
    let validators = cachet_state::operators_at(&m.state, &m.chain.genesis, activation).unwrap();
    assert_eq!(
        validators[1].validator_key,
        m.chain.validator(1).public_key()
    );
}

#[test]
fn membership_rejections() {
    let mut m = Members::new();
    let (italy, _, italy_issuer) = newcomer();
    let add = |operator: Operator| MembershipChange::AddOperator { operator };
    let soon = m.next() + 1;

    // Only current operators propose and approve.
    let outsider = propose(add(italy.clone()), soon + 10);
    assert_eq!(m.refused(&italy_issuer, outsider), Rejection::NotOperator);
    // The activation height lies at least two blocks ahead, at most a million.
    let too_soon = m.refused(&m.op(0), propose(add(italy.clone()), soon));
    assert_eq!(too_soon.code(), "invalid_activation", "{too_soon}");
    let too_far = m.refused(&m.op(0), propose(add(italy.clone()), soon + 2_000_000));
    assert_eq!(too_far.code(), "invalid_activation", "{too_far}");
    // The change must fit the set.
    let clash = Operator {
        issuer: m.op(1).public_key().address(),
        ..italy.clone()
    };
    let error = m.refused(&m.op(0), propose(add(clash), soon + 10));
    assert_eq!(error.code(), "invalid_membership", "{error}");
    // A node identity another operator has bound cannot be bound again, on joining or
    // rotating.
    let same_node = Operator {
        node_key: m.chain.genesis.operators[1].node_key,
        ..italy.clone()
    };
    let error = m.refused(&m.op(0), propose(add(same_node), soon + 10));
    assert_eq!(error.code(), "invalid_membership", "{error}");
    assert!(error.to_string().contains("node key"), "{error}");
    let taken_node = MembershipChange::RotateNodeKey {
        operator: operator_id("AT"),
        node_key: m.chain.genesis.operators[2].node_key,
    };
    let error = m.refused(&m.op(0), propose(taken_node, soon + 10));
    assert_eq!(error.code(), "invalid_membership", "{error}");
    // A node key must be a canonical key of prime order, like every key.
    let weak = MembershipChange::RotateNodeKey {
        operator: operator_id("AT"),
        node_key: cachet_types::PublicKey([0; 32]),
    };
    let error = m.refused(&m.op(0), propose(weak, soon + 10));
    assert_ne!(error.code(), "invalid_membership", "{error}");
    let unknown = MembershipChange::RemoveOperator {
        operator: operator_id("SE"),
    };
    let error = m.refused(&m.op(0), propose(unknown, soon + 10));
    assert_eq!(error.code(), "invalid_membership", "{error}");
    let taken = MembershipChange::RotateValidatorKey {
        operator: operator_id("AT"),
        validator_key: m.chain.validator(2).public_key(),
    };
    let error = m.refused(&m.op(0), propose(taken, soon + 10));
    assert_eq!(error.code(), "invalid_membership", "{error}");

    // Approvals: of a known proposal, once per operator.
    assert_eq!(
        m.refused(&m.op(1), approve(Hash::ZERO)),
        Rejection::UnknownProposal(Hash::ZERO)
    );
    let activation = m.next() + 20;
    let first = m.ok(&m.op(0), propose(add(italy.clone()), activation));
    assert_eq!(
        m.refused(&m.op(0), approve(first)),
        Rejection::AlreadyApproved(operator_id("AT"))
    );
    assert_eq!(
        m.refused(&italy_issuer, approve(first)),
        Rejection::NotOperator
    );

    // Two proposals at once; once one is decided, the other cannot be until it applies,
    // and then its approvals are void (the set it was proposed to has changed).
    let leave = MembershipChange::RemoveOperator {
        operator: operator_id("FR"),
    };
    let second = m.ok(&m.op(1), propose(leave.clone(), activation + 5));
    m.ok(&m.op(2), approve(second));
    m.ok(&m.op(1), approve(first));
    m.ok(&m.op(2), approve(first));
    assert_eq!(
        m.refused(&m.op(0), approve(second)),
        Rejection::MembershipPending(first)
    );
    assert_eq!(
        m.refused(&m.op(3), propose(leave, activation + 5)),
        Rejection::MembershipPending(first)
    );
    m.advance_to(activation);
    let stale = m.refused(&m.op(0), approve(second));
    assert_eq!(stale.code(), "proposal_closed", "{stale}");
}
