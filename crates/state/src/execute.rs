//! Applying transactions to a state view: the rules of the ledger (`specs/ledger.md#state-rules`).
//!
//! Deterministic and pure: the same view, environment and transactions give the same writes,
//! events and rejections on every node. Each transaction applies atomically: a rejected one
//! leaves no trace.

use std::collections::BTreeMap;

use cachet_types::{
    Address, Genesis, Hash, IssueId, Operator, PublicKey, SignedTx, StampId, SwapLeg, TxBody,
    VerifiedTx,
};

use crate::membership;
use crate::records::{
    AccountState, Approval, EventKind, IssueState, MembershipEpoch, MembershipState, ProposalState,
    StampEvent, StampState, StampStatus, StateKey, StateValue, event_hash,
};
use crate::rejection::Rejection;
use crate::{StateError, StateView};

/// Facts about the block being built or checked.
#[derive(Debug, Clone, Copy)]
pub struct BlockEnv<'g> {
    /// The genesis (limits, and the first operator set).
    pub genesis: &'g Genesis,
    /// The operators of this height ([`crate::operators_at`]).
    pub operators: &'g [Operator],
    /// Height of the block.
    pub height: u64,
    /// Time of the block, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Why applying a transaction stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The transaction breaks a rule.
    #[error("{0}")]
    Rejected(#[from] Rejection),
    /// The state could not be read.
    #[error("{0}")]
    State(#[from] StateError),
}

/// The result of executing a block's transactions.
#[derive(Debug, Default)]
pub struct StateChanges {
    /// Final value of every key written, sorted by key.
    pub writes: BTreeMap<StateKey, StateValue>,
    /// Stamp events, in order.
    pub events: Vec<StampEvent>,
}

/// Executes transactions in order over a view, collecting their effects.
pub struct BlockExecution<'a, V: StateView + ?Sized> {
    view: &'a V,
    env: BlockEnv<'a>,
    changes: StateChanges,
    applied: u32,
}

/// Writes of one transaction, staged until it succeeds.
struct Scratch<'s, 'a, V: StateView + ?Sized> {
    exec: &'s BlockExecution<'a, V>,
    writes: BTreeMap<StateKey, StateValue>,
    events: Vec<StampEvent>,
}

/// Reads see this transaction's writes, then the block's, then the state before the block.
impl<V: StateView + ?Sized> StateView for Scratch<'_, '_, V> {
    fn get(&self, key: &StateKey) -> Result<Option<StateValue>, StateError> {
        if let Some(value) = self.writes.get(key) {
            return Ok(Some(value.clone()));
        }
        if let Some(value) = self.exec.changes.writes.get(key) {
            return Ok(Some(value.clone()));
        }
        self.exec.view.get(key)
    }
}

impl<'s, 'a, V: StateView + ?Sized> Scratch<'s, 'a, V> {
    fn issue(&self, id: &IssueId) -> Result<IssueState, ApplyError> {
        match self.get(&StateKey::Issue(id.clone()))? {
            Some(StateValue::Issue(issue)) => Ok(issue),
            Some(_) => Err(StateError::WrongKind.into()),
            None => Err(Rejection::UnknownIssue(id.clone()).into()),
        }
    }

    fn stamp(&self, id: &StampId) -> Result<StampState, ApplyError> {
        match self.get(&StateKey::Stamp(id.clone()))? {
            Some(StateValue::Stamp(stamp)) => Ok(stamp),
            Some(_) => Err(StateError::WrongKind.into()),
            None => Err(Rejection::UnknownStamp(id.clone()).into()),
        }
    }

    fn account(&self, key: &PublicKey) -> Result<AccountState, ApplyError> {
        match self.get(&StateKey::Account(*key))? {
            Some(StateValue::Account(account)) => Ok(account),
            Some(_) => Err(StateError::WrongKind.into()),
            None => Ok(AccountState::default()),
        }
    }

    /// Checks that `to` may receive a stamp: a canonical account key that is not a spent
    /// claim key.
    fn receiver(&self, to: &Address) -> Result<(), ApplyError> {
        account_key(to.public_key())?;
        if self.account(to.public_key())?.spent_claim_key {
            return Err(Rejection::SpentClaimKey.into());
        }
        Ok(())
    }

    fn membership(&self) -> Result<MembershipState, ApplyError> {
        Ok(crate::membership(self)?)
    }

    fn proposal(&self, id: &Hash) -> Result<ProposalState, ApplyError> {
        match self.get(&StateKey::Proposal(*id))? {
            Some(StateValue::Proposal(proposal)) => Ok(proposal),
            Some(_) => Err(StateError::WrongKind.into()),
            None => Err(Rejection::UnknownProposal(*id).into()),
        }
    }

    /// Stores a proposal; once it has enough approvals, decides it: its change joins the
    /// membership record and applies from its activation height.
    fn put_proposal(
        &mut self,
        ctx: &TxContext<'_>,
        env: BlockEnv<'_>,
        id: Hash,
        mut proposal: ProposalState,
    ) -> Result<(), ApplyError> {
        if membership::decided(proposal.approvals.len(), env.operators.len()) {
            let mut record = self.membership()?;
            if let Some(pending) = record.scheduled(ctx.height) {
                return Err(Rejection::MembershipPending(pending.proposal).into());
            }
            if record.changes.len() >= membership::MAX_CHANGES {
                return Err(Rejection::InvalidMembership(format!(
                    "the chain has recorded the most membership changes it may ({})",
                    membership::MAX_CHANGES
                ))
                .into());
            }
            let operators = membership::apply_change(env.operators, &proposal.change)?;
            proposal.decided_height = Some(ctx.height);
            record.changes.push(MembershipEpoch {
                proposal: id,
                change: proposal.change.clone(),
                proposer: proposal.proposer.clone(),
                approvals: proposal.approvals.clone(),
                approval_txs: proposal.approval_txs.clone(),
                decided_height: ctx.height,
                activation_height: proposal.activation_height,
                operators,
            });
            self.writes
                .insert(StateKey::Membership, StateValue::Membership(record));
        }
        self.writes
            .insert(StateKey::Proposal(id), StateValue::Proposal(proposal));
        Ok(())
    }

    fn put_issue(&mut self, issue: IssueState) {
        self.writes.insert(
            StateKey::Issue(issue.record.id.clone()),
            StateValue::Issue(issue),
        );
    }

    /// Records an event for a stamp and writes its new record (owner, status, approval).
    // Each argument is one field of the event or the new record; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn event(
        &mut self,
        ctx: &TxContext<'_>,
        id: &StampId,
        previous: Option<StampState>,
        owner: Option<Address>,
        status: StampStatus,
        approval: Option<Approval>,
        kind: EventKind,
    ) -> Result<(), ApplyError> {
        let (prev_event, seq) = match &previous {
            Some(stamp) => (stamp.last_event, stamp.event_count),
            None => (Hash::ZERO, 0),
        };
        let hash = event_hash(id, &prev_event, &ctx.tx_id);
        self.events.push(StampEvent {
            stamp: id.clone(),
            seq,
            event_hash: hash,
            prev_event,
            tx_id: ctx.tx_id,
            height: ctx.height,
            time_ms: ctx.time_ms,
            tx_index: ctx.tx_index,
            signer: ctx.signer,
            kind,
        });
        let event_count = seq.checked_add(1).ok_or(Rejection::Overflow)?;
        self.writes.insert(
            StateKey::Stamp(id.clone()),
            StateValue::Stamp(StampState {
                owner,
                status,
                last_event: hash,
                event_count,
                approval,
            }),
        );
        Ok(())
    }
}

struct TxContext<'t> {
    tx_id: Hash,
    signer: PublicKey,
    height: u64,
    time_ms: u64,
    tx_index: u32,
    operator: Option<&'t Operator>,
}

impl<'a, V: StateView + ?Sized> BlockExecution<'a, V> {
    /// Starts executing a block over `view`.
    pub fn new(view: &'a V, env: BlockEnv<'a>) -> Self {
        BlockExecution {
            view,
            env,
            changes: StateChanges::default(),
            applied: 0,
        }
    }

    /// Number of transactions applied so far.
    pub fn applied(&self) -> u32 {
        self.applied
    }

    /// Applies one verified transaction, or refuses it and changes nothing.
    pub fn apply(&mut self, tx: &VerifiedTx) -> Result<(), ApplyError> {
        let signed = tx.tx();
        let ctx = TxContext {
            tx_id: tx.id(),
            signer: signed.signer,
            height: self.env.height,
            time_ms: self.env.time_ms,
            tx_index: self.applied,
            operator: self
                .env
                .operators
                .iter()
                .find(|op| op.issuer.public_key() == &signed.signer),
        };
        let mut scratch = Scratch {
            exec: self,
            writes: BTreeMap::new(),
            events: Vec::new(),
        };

        // Nonce: exactly one more than the signer's last.
        let account = scratch.account(&signed.signer)?;
        let expected = account.nonce.checked_add(1).ok_or(Rejection::Overflow)?;
        if signed.nonce <= account.nonce {
            return Err(Rejection::StaleNonce {
                got: signed.nonce,
                last: account.nonce,
            }
            .into());
        }
        if signed.nonce != expected {
            return Err(Rejection::NonceGap {
                got: signed.nonce,
                expected,
            }
            .into());
        }
        scratch.writes.insert(
            StateKey::Account(signed.signer),
            StateValue::Account(AccountState {
                nonce: signed.nonce,
                ..account
            }),
        );

        check_cosigners(self.env.operators, signed)?;
        apply_body(&mut scratch, &ctx, self.env, &signed.body)?;

        let Scratch { writes, events, .. } = scratch;
        self.changes.writes.extend(writes);
        self.changes.events.extend(events);
        self.applied = self.applied.checked_add(1).ok_or(Rejection::Overflow)?;
        Ok(())
    }

    /// Ends execution and returns the block's effects.
    pub fn finish(self) -> StateChanges {
        self.changes
    }
}

/// Who must cosign a transaction: every co-issuer of a joint issue being created, the
/// counterparty of a swap, nobody else. The cosignatures (already verified) must include
/// each of theirs. Needs only the current `operators`, so nodes also check it before
/// admitting a transaction.
pub fn check_cosigners(operators: &[Operator], tx: &SignedTx) -> Result<(), Rejection> {
    let mut required: Vec<(PublicKey, String)> = Vec::new();
    match &tx.body {
        TxBody::CreateIssue { record } => {
            for co in &record.co_issuers {
                let operator = operators
                    .iter()
                    .find(|op| op.id == co.operator)
                    .ok_or_else(|| Rejection::UnknownOperator(co.operator.clone()))?;
                required.push((*operator.issuer.public_key(), co.operator.to_string()));
            }
        }
        TxBody::Swap { counterparty, .. } => {
            required.push((*counterparty.public_key(), counterparty.to_string()));
        }
        _ => {}
    }
    for (key, who) in &required {
        if !tx.cosignatures.iter().any(|c| c.signer == *key) {
            return Err(Rejection::MissingCosignature(who.clone()));
        }
    }
    // No other can be present: the transaction's form allows exactly as many distinct
    // cosigners as the kind needs, and every operator set gives each its own issuer key.
    Ok(())
}

/// Requires the signer to be the lead operator of `issue`; returns the issue.
fn issuer_only<V: StateView + ?Sized>(
    scratch: &Scratch<'_, '_, V>,
    ctx: &TxContext<'_>,
    issue: &IssueId,
) -> Result<IssueState, ApplyError> {
    let state = scratch.issue(issue)?;
    match ctx.operator {
        Some(op) if op.id == state.record.operator => Ok(state),
        Some(_) => Err(Rejection::NotIssuer(issue.clone(), state.record.operator.clone()).into()),
        None => Err(Rejection::NotOperator.into()),
    }
}

/// Requires the signer to be the lead operator or a co-issuer of `issue`; returns the issue
/// and, for a co-issuer, its position among the co-issuers.
fn any_issuer<V: StateView + ?Sized>(
    scratch: &Scratch<'_, '_, V>,
    ctx: &TxContext<'_>,
    issue: &IssueId,
) -> Result<(IssueState, Option<usize>), ApplyError> {
    let state = scratch.issue(issue)?;
    let Some(op) = ctx.operator else {
        return Err(Rejection::NotOperator.into());
    };
    if op.id == state.record.operator {
        return Ok((state, None));
    }
    match state
        .record
        .co_issuers
        .iter()
        .position(|c| c.operator == op.id)
    {
        Some(index) => Ok((state, Some(index))),
        None => Err(Rejection::NotIssuer(issue.clone(), state.record.operator.clone()).into()),
    }
}

/// Checks that the signer owns the swap leg's stamp, active and unchanged, and returns it.
fn swap_leg<V: StateView + ?Sized>(
    scratch: &Scratch<'_, '_, V>,
    leg: &SwapLeg,
    owner: &Address,
) -> Result<StampState, ApplyError> {
    let current = scratch.stamp(&leg.stamp)?;
    if current.owner.as_ref() != Some(owner) {
        return Err(Rejection::NotOwner(leg.stamp.clone()).into());
    }
    require_active(&leg.stamp, &current.status)?;
    if current.last_event != leg.last_event {
        return Err(Rejection::StaleEvent {
            stamp: leg.stamp.clone(),
            current: current.last_event,
        }
        .into());
    }
    Ok(current)
}

fn bump(counter: u32, by: i64) -> Result<u32, Rejection> {
    u32::try_from(i64::from(counter) + by).map_err(|_| Rejection::Overflow)
}

fn apply_body<V: StateView + ?Sized>(
    scratch: &mut Scratch<'_, '_, V>,
    ctx: &TxContext<'_>,
    env: BlockEnv<'_>,
    body: &TxBody,
) -> Result<(), ApplyError> {
    let params = &env.genesis.params;
    match body {
        TxBody::CreateIssue { record } => {
            let operator = ctx.operator.ok_or(Rejection::NotOperator)?;
            if operator.id != record.operator {
                return Err(
                    Rejection::NotIssuer(record.id.clone(), record.operator.clone()).into(),
                );
            }
            if record.print_run == 0 || record.print_run > params.max_print_run {
                return Err(Rejection::PrintRunTooLarge {
                    print_run: record.print_run,
                    limit: params.max_print_run,
                }
                .into());
            }
            if scratch.get(&StateKey::Issue(record.id.clone()))?.is_some() {
                return Err(Rejection::IssueExists(record.id.clone()).into());
            }
            scratch.put_issue(IssueState::new(record.clone(), ctx.height));
        }
        TxBody::Mint {
            issue,
            first_serial,
            last_serial,
            owner,
            variant,
            claim_keys,
        } => {
            let (mut state, co_issuer) = any_issuer(scratch, ctx, issue)?;
            if state.closed {
                return Err(Rejection::IssueClosed(issue.clone()).into());
            }
            let (first, last) = (*first_serial, *last_serial);
            let range_error = |rule: &str| Rejection::InvalidRange {
                first,
                last,
                rule: rule.to_string(),
            };
            if first == 0 || last < first {
                return Err(range_error("serials start at 1 and first <= last").into());
            }
            let count = last - first + 1;
            if count > params.max_mint_per_tx {
                return Err(range_error("more serials than one mint may create").into());
            }
            if last > state.record.print_run {
                return Err(Rejection::OverPrintRun {
                    serial: first.max(state.record.print_run.saturating_add(1)),
                    print_run: state.record.print_run,
                }
                .into());
            }
            // The variant: named exactly when the issue has variants, serials inside it.
            match (variant, state.record.variants.is_empty()) {
                (None, true) => {}
                (None, false) => return Err(Rejection::VariantRequired(issue.clone()).into()),
                (Some(name), _) => {
                    let Some((index, from, to)) = state.record.variant_serials(name) else {
                        return Err(Rejection::UnknownVariant {
                            issue: issue.clone(),
                            variant: name.clone(),
                        }
                        .into());
                    };
                    if first < from || last > to {
                        return Err(Rejection::NotInVariant {
                            variant: name.clone(),
                            first,
                            last,
                            from,
                            to,
                        }
                        .into());
                    }
                    state.variant_minted[index] = state.variant_minted[index]
                        .checked_add(count)
                        .ok_or(Rejection::Overflow)?;
                }
            }
            // In a joint issue, each issuer within its share (the lead's is the print run
            // less the others').
            let (share, already) = match co_issuer {
                Some(index) => (
                    state.record.co_issuers[index].share,
                    state.co_issuer_minted[index],
                ),
                None => {
                    let others: u32 = state.co_issuer_minted.iter().sum();
                    (
                        state.record.lead_share(),
                        state.minted.saturating_sub(others),
                    )
                }
            };
            let joint = !state.record.co_issuers.is_empty();
            if joint && u64::from(already) + u64::from(count) > u64::from(share) {
                let operator = ctx.operator.map(|op| op.id.clone());
                return Err(Rejection::OverShare {
                    operator: operator.unwrap_or_else(|| state.record.operator.clone()),
                    share,
                    minted: already,
                }
                .into());
            }
            if let Some(index) = co_issuer {
                state.co_issuer_minted[index] += count;
            }
            // Physical twins: one claim key per serial, and the stamps go to nobody.
            if !claim_keys.is_empty() && claim_keys.len() != count as usize {
                return Err(Rejection::ClaimKeysCount {
                    expected: count,
                    got: claim_keys.len(),
                }
                .into());
            }
            if claim_keys.is_empty() {
                scratch.receiver(owner)?;
            } else {
                claim_keys.iter().try_for_each(account_key)?;
            }
            for serial in first..=last {
                let id = StampId::new(issue.clone(), serial);
                if scratch.get(&StateKey::Stamp(id.clone()))?.is_some() {
                    return Err(Rejection::DuplicateSerial(id).into());
                }
                let (holder, status, kind) = match claim_keys.get((serial - first) as usize) {
                    Some(claim_key) => (
                        None,
                        StampStatus::Unclaimed {
                            claim_key: *claim_key,
                        },
                        EventKind::MintedForClaim {
                            claim_key: *claim_key,
                        },
                    ),
                    None => (
                        Some(*owner),
                        StampStatus::Active,
                        EventKind::Minted { owner: *owner },
                    ),
                };
                scratch.event(ctx, &id, None, holder, status, None, kind)?;
            }
            state.minted = state.minted.checked_add(count).ok_or(Rejection::Overflow)?;
            scratch.put_issue(state);
        }
        TxBody::Claim { stamp, to } => {
            let current = scratch.stamp(stamp)?;
            let StampStatus::Unclaimed { claim_key } = current.status else {
                return Err(Rejection::NotClaimable(stamp.clone()).into());
            };
            if claim_key != ctx.signer {
                return Err(Rejection::WrongClaimKey(stamp.clone()).into());
            }
            // The claim key is spent first, so the receiver check below also refuses the
            // claim key itself: it never owns a stamp.
            let account = scratch.account(&ctx.signer)?;
            scratch.writes.insert(
                StateKey::Account(ctx.signer),
                StateValue::Account(AccountState {
                    spent_claim_key: true,
                    ..account
                }),
            );
            scratch.receiver(to)?;
            scratch.event(
                ctx,
                stamp,
                Some(current),
                Some(*to),
                StampStatus::Active,
                None,
                EventKind::Claimed { claim_key, to: *to },
            )?;
        }
        TxBody::Swap {
            give,
            take,
            counterparty,
        } => {
            let me = ctx.signer.address();
            let mut seen: Vec<&StampId> = Vec::with_capacity(give.len() + take.len());
            for leg in give.iter().chain(take) {
                if seen.contains(&&leg.stamp) {
                    return Err(Rejection::InvalidSwap(format!(
                        "stamp {} is named twice",
                        leg.stamp
                    ))
                    .into());
                }
                seen.push(&leg.stamp);
            }
            scratch.receiver(counterparty)?;
            scratch.receiver(&me)?;
            // Check every leg before moving any: all move or none.
            let mut moves = Vec::with_capacity(seen.len());
            for (side, from, to) in [(give, me, *counterparty), (take, *counterparty, me)] {
                for leg in side {
                    moves.push((leg, swap_leg(scratch, leg, &from)?, from, to));
                }
            }
            for (leg, current, from, to) in moves {
                scratch.event(
                    ctx,
                    &leg.stamp,
                    Some(current),
                    Some(to),
                    StampStatus::Active,
                    None,
                    EventKind::Swapped { from, to },
                )?;
            }
        }
        TxBody::CloseIssue { issue } => {
            let mut state = issuer_only(scratch, ctx, issue)?;
            if state.closed {
                return Err(Rejection::IssueClosed(issue.clone()).into());
            }
            state.closed = true;
            scratch.put_issue(state);
        }
        TxBody::Transfer {
            stamp,
            last_event,
            to,
        } => {
            let current = scratch.stamp(stamp)?;
            // The owner, or the approved account before its deadline.
            let operator = if owned_by(&current, &ctx.signer) {
                None
            } else {
                match current.approval {
                    Some(approval) if approval.operator.public_key() == &ctx.signer => {
                        if approval.until.passed(ctx.height, ctx.time_ms) {
                            return Err(Rejection::ApprovalExpired(stamp.clone()).into());
                        }
                        Some(approval.operator)
                    }
                    _ => return Err(Rejection::NotOwner(stamp.clone()).into()),
                }
            };
            require_active(stamp, &current.status)?;
            if current.last_event != *last_event {
                return Err(Rejection::StaleEvent {
                    stamp: stamp.clone(),
                    current: current.last_event,
                }
                .into());
            }
            scratch.receiver(to)?;
            let Some(from) = current.owner else {
                return Err(Rejection::NotOwner(stamp.clone()).into());
            };
            scratch.event(
                ctx,
                stamp,
                Some(current),
                Some(*to),
                StampStatus::Active,
                None,
                EventKind::Transferred {
                    from,
                    to: *to,
                    operator,
                },
            )?;
        }
        TxBody::Approve {
            stamp,
            operator,
            until,
        } => {
            let current = scratch.stamp(stamp)?;
            if !owned_by(&current, &ctx.signer) {
                return Err(Rejection::NotOwner(stamp.clone()).into());
            }
            require_active(stamp, &current.status)?;
            account_key(operator.public_key())?;
            if until.passed(ctx.height, ctx.time_ms) {
                return Err(Rejection::DeadlinePassed.into());
            }
            let owner = current.owner;
            let approval = Approval {
                operator: *operator,
                until: *until,
            };
            scratch.event(
                ctx,
                stamp,
                Some(current),
                owner,
                StampStatus::Active,
                Some(approval),
                EventKind::Approved {
                    operator: *operator,
                    until: *until,
                },
            )?;
        }
        TxBody::Revoke { stamp } => {
            let current = scratch.stamp(stamp)?;
            if !owned_by(&current, &ctx.signer) {
                return Err(Rejection::NotOwner(stamp.clone()).into());
            }
            let Some(approval) = current.approval else {
                return Err(Rejection::NotApproved(stamp.clone()).into());
            };
            let (owner, status) = (current.owner, current.status.clone());
            scratch.event(
                ctx,
                stamp,
                Some(current),
                owner,
                status,
                None,
                EventKind::Revoked {
                    operator: approval.operator,
                },
            )?;
        }
        TxBody::Redeem { stamp } => {
            let mut issue = any_issuer(scratch, ctx, &stamp.issue)?.0;
            let current = scratch.stamp(stamp)?;
            require_active(stamp, &current.status)?;
            let owner = current.owner;
            scratch.event(
                ctx,
                stamp,
                Some(current),
                owner,
                StampStatus::Redeemed,
                None,
                EventKind::Redeemed,
            )?;
            issue.redeemed = bump(issue.redeemed, 1)?;
            scratch.put_issue(issue);
        }
        TxBody::Freeze {
            stamp,
            reason,
            case_ref,
        } => {
            let mut issue = any_issuer(scratch, ctx, &stamp.issue)?.0;
            let current = scratch.stamp(stamp)?;
            require_active(stamp, &current.status)?;
            let owner = current.owner;
            scratch.event(
                ctx,
                stamp,
                Some(current),
                owner,
                StampStatus::Frozen {
                    reason: *reason,
                    case_ref: case_ref.clone(),
                },
                None,
                EventKind::Frozen {
                    reason: *reason,
                    case_ref: case_ref.clone(),
                },
            )?;
            issue.frozen = bump(issue.frozen, 1)?;
            scratch.put_issue(issue);
        }
        TxBody::Burn { stamp, last_event } => {
            let current = scratch.stamp(stamp)?;
            if !owned_by(&current, &ctx.signer) {
                return Err(Rejection::NotOwner(stamp.clone()).into());
            }
            require_active(stamp, &current.status)?;
            if current.last_event != *last_event {
                return Err(Rejection::StaleEvent {
                    stamp: stamp.clone(),
                    current: current.last_event,
                }
                .into());
            }
            let mut issue = scratch.issue(&stamp.issue)?;
            let owner = current.owner;
            scratch.event(
                ctx,
                stamp,
                Some(current),
                owner,
                StampStatus::Burned,
                None,
                EventKind::Burned,
            )?;
            issue.burned = bump(issue.burned, 1)?;
            scratch.put_issue(issue);
        }
        TxBody::ProposeMembership {
            change,
            activation_height,
        } => {
            let operator = ctx.operator.ok_or(Rejection::NotOperator)?;
            let record = scratch.membership()?;
            if let Some(pending) = record.scheduled(ctx.height) {
                return Err(Rejection::MembershipPending(pending.proposal).into());
            }
            let from = ctx.height + membership::ACTIVATION_LEAD;
            let to = ctx.height + membership::MAX_ACTIVATION_DELAY;
            if !(from..=to).contains(activation_height) {
                return Err(Rejection::InvalidActivation {
                    activation: *activation_height,
                    from,
                    to,
                }
                .into());
            }
            membership::apply_change(env.operators, change)?;
            let proposal = ProposalState {
                change: change.clone(),
                activation_height: *activation_height,
                proposer: operator.id.clone(),
                proposed_height: ctx.height,
                epoch: record.at(env.genesis, ctx.height).0,
                approvals: vec![operator.id.clone()],
                approval_txs: Vec::new(),
                decided_height: None,
            };
            scratch.put_proposal(ctx, env, ctx.tx_id, proposal)?;
        }
        TxBody::ApproveMembership { proposal: id } => {
            let operator = ctx.operator.ok_or(Rejection::NotOperator)?;
            let mut proposal = scratch.proposal(id)?;
            let closed = |why: &str| Rejection::ProposalClosed {
                proposal: *id,
                why: why.to_string(),
            };
            if proposal.decided_height.is_some() {
                return Err(closed("it is decided").into());
            }
            if proposal.epoch != scratch.membership()?.at(env.genesis, ctx.height).0 {
                return Err(closed("the operator set changed since it was proposed").into());
            }
            let last = proposal
                .activation_height
                .saturating_sub(membership::ACTIVATION_LEAD);
            if ctx.height > last {
                return Err(Rejection::ProposalExpired {
                    proposal: *id,
                    activation: proposal.activation_height,
                    last,
                }
                .into());
            }
            if proposal.approvals.contains(&operator.id) {
                return Err(Rejection::AlreadyApproved(operator.id.clone()).into());
            }
            proposal.approvals.push(operator.id.clone());
            proposal.approval_txs.push(ctx.tx_id);
            scratch.put_proposal(ctx, env, *id, proposal)?;
        }
        TxBody::Unfreeze { stamp, case_ref } => {
            let mut issue = any_issuer(scratch, ctx, &stamp.issue)?.0;
            let current = scratch.stamp(stamp)?;
            if !matches!(current.status, StampStatus::Frozen { .. }) {
                return Err(Rejection::NotFrozen(stamp.clone()).into());
            }
            let owner = current.owner;
            scratch.event(
                ctx,
                stamp,
                Some(current),
                owner,
                StampStatus::Active,
                None,
                EventKind::Unfrozen {
                    case_ref: case_ref.clone(),
                },
            )?;
            issue.frozen = bump(issue.frozen, -1)?;
            scratch.put_issue(issue);
        }
    }
    Ok(())
}

/// Refuses a key that would become an account unless it is the canonical encoding of a
/// prime-order point (`specs/ledger.md`: canonical account keys).
fn account_key(key: &PublicKey) -> Result<(), ApplyError> {
    key.check_account()
        .map_err(|error| ApplyError::Rejected(Rejection::from(error)))
}

fn owned_by(stamp: &StampState, signer: &PublicKey) -> bool {
    stamp
        .owner
        .is_some_and(|owner| owner.public_key() == signer)
}

fn require_active(stamp: &StampId, status: &StampStatus) -> Result<(), Rejection> {
    match status {
        StampStatus::Active => Ok(()),
        StampStatus::Unclaimed { .. } => Err(Rejection::Unclaimed(stamp.clone())),
        StampStatus::Frozen { .. } => Err(Rejection::Frozen(stamp.clone())),
        StampStatus::Redeemed => Err(Rejection::Redeemed(stamp.clone())),
        StampStatus::Burned => Err(Rejection::Burned(stamp.clone())),
    }
}
