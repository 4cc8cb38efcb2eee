//! Tendermint's consensus algorithm for one height, as a pure state machine.
//!
//! This follows Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon,
//! Milosevic, arXiv:1807.04938); comments name its lines. Validators have equal weight;
//! with `n` of them, a quorum ("2f+1") is `floor(2n/3) + 1` and a round skip ("f+1") needs
//! `n - quorum + 1`, so it always includes one correct validator.
//!
//! The machine sees values as block hashes and learns whether a proposed block is valid from
//! its caller. It never signs: it says what to propose and vote ([`Output`]), and its caller
//! signs, sends, and feeds its own messages back like anyone else's. It has no clock: it asks
//! for timeouts and is told when they expire.
//!
//! Bounded memory: votes are kept for rounds up to [`ROUND_WINDOW`] ahead of the current
//! round; beyond that only each validator's highest round is remembered, which is enough for
//! the round skip of line 55 (skipping to a round that at least `f+1` validators have
//! reached or passed). At most [`MAX_PROPOSALS_PER_ROUND`] distinct proposals are kept per
//! round (only a faulty proposer sends more than one).

use std::collections::BTreeMap;

use cachet_types::block::quorum;
use cachet_types::{Hash, VoteKind};

use crate::messages::{SignedVote, proposer};

/// Rounds ahead of the current one whose votes are stored.
pub const ROUND_WINDOW: u32 = 32;

/// Distinct proposals kept per round.
pub const MAX_PROPOSALS_PER_ROUND: usize = 4;

/// The step within a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Waiting for the proposal.
    Propose,
    /// Prevoted, waiting for prevotes.
    Prevote,
    /// Precommitted, waiting for precommits.
    Precommit,
}

/// Which timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeoutKind {
    /// `timeoutPropose`.
    Propose,
    /// `timeoutPrevote`.
    Prevote,
    /// `timeoutPrecommit`.
    Precommit,
}

/// A timeout the caller must deliver back after the requested delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    /// Height it was set at.
    pub height: u64,
    /// Round it was set at.
    pub round: u32,
    /// Kind.
    pub kind: TimeoutKind,
}

/// Timeout durations: `base + per_round * round`, in milliseconds, so they grow each round
/// until the network's delays fit (partial synchrony); capped at `max_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Base of `timeoutPropose`.
    pub propose_ms: u64,
    /// Base of `timeoutPrevote`.
    pub prevote_ms: u64,
    /// Base of `timeoutPrecommit`.
    pub precommit_ms: u64,
    /// Added per round to each.
    pub per_round_ms: u64,
    /// Upper bound of any timeout.
    pub max_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            propose_ms: 1_000,
            prevote_ms: 500,
            precommit_ms: 500,
            per_round_ms: 500,
            max_ms: 60_000,
        }
    }
}

impl Timeouts {
    /// Delay of `kind` in `round`.
    pub fn delay_ms(&self, kind: TimeoutKind, round: u32) -> u64 {
        let base = match kind {
            TimeoutKind::Propose => self.propose_ms,
            TimeoutKind::Prevote => self.prevote_ms,
            TimeoutKind::Precommit => self.precommit_ms,
        };
        base.saturating_add(self.per_round_ms.saturating_mul(u64::from(round)))
            .min(self.max_ms)
    }
}

/// What the machine asks its caller to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Propose in `round`: the block `value` if given (a block that had a proof of lock in
    /// `pol_round`), else a new block from the mempool.
    Propose {
        /// Round.
        round: u32,
        /// Block to propose again, if any.
        value: Option<Hash>,
        /// Its proof-of-lock round.
        pol_round: Option<u32>,
    },
    /// Sign and send a vote (and feed it back).
    Vote {
        /// Prevote or precommit.
        kind: VoteKind,
        /// Round.
        round: u32,
        /// Block, or nil.
        value: Option<Hash>,
    },
    /// Deliver this timeout after `after_ms`.
    Schedule {
        /// The timeout.
        timeout: Timeout,
        /// Delay.
        after_ms: u64,
    },
    /// A new round started (for logs and metrics).
    RoundStarted {
        /// Round.
        round: u32,
    },
    /// The height is decided: `value` with these precommits (a quorum) from `round`.
    Decide {
        /// Round of the decision.
        round: u32,
        /// The decided block.
        value: Hash,
        /// Precommits for it, by validator index.
        precommits: Vec<SignedVote>,
    },
}

/// What became of an incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// New information, taken into account.
    New,
    /// Already known (a duplicate).
    Duplicate,
    /// Out of the window, or an extra proposal; dropped.
    Ignored,
    /// A second, different vote of one validator for one round and kind: evidence of a
    /// faulty validator. Both count, each for its own value (see [`MAX_VOTES_PER_VALIDATOR`]).
    Equivocation,
}

/// Votes of one kind in one round, by validator: normally one each; an equivocating
/// validator's distinct votes are all kept (up to [`MAX_VOTES_PER_VALIDATOR`]), so that a
/// quorum for a value counts every validator that signed for it. That is safe: a node that
/// sees both votes is no worse off than one that saw only the vote for the value, which
/// the algorithm already allows a faulty validator to arrange. Without it, honest nodes that
/// saw a faulty validator's votes in different orders could never agree that a polka exists.
type Votes = BTreeMap<u16, Vec<SignedVote>>;

/// Distinct votes kept per validator, kind and round.
pub const MAX_VOTES_PER_VALIDATOR: usize = 4;

#[derive(Debug, Default)]
struct RoundState {
    /// Proposals by block hash, with validity.
    proposals: Vec<(Hash, Option<u32>, bool)>,
    prevotes: Votes,
    precommits: Votes,
}

impl RoundState {
    fn votes(&self, kind: VoteKind) -> &Votes {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }

    /// Validators that voted `value`.
    fn count(&self, kind: VoteKind, value: Option<Hash>) -> usize {
        self.votes(kind)
            .values()
            .filter(|votes| votes.iter().any(|v| v.vote.block_hash == value))
            .count()
    }

    /// One vote for `value` per validator that cast one.
    fn votes_for(&self, kind: VoteKind, value: Option<Hash>) -> Vec<SignedVote> {
        self.votes(kind)
            .values()
            .filter_map(|votes| votes.iter().find(|v| v.vote.block_hash == value))
            .copied()
            .collect()
    }
}

/// Per-round "for the first time" flags of the current round.
#[derive(Debug, Default, Clone, Copy)]
struct Once {
    prevote_timeout: bool,
    precommit_timeout: bool,
    line_36: bool,
}

/// Tendermint for one validator (or an observer, which never proposes or votes) at one height.
#[derive(Debug)]
pub struct Tendermint {
    validators: usize,
    me: Option<u16>,
    timeouts: Timeouts,
    height: u64,
    round: u32,
    step: Step,
    locked: Option<(u32, Hash)>,
    valid: Option<(u32, Hash)>,
    rounds: BTreeMap<u32, RoundState>,
    far_rounds: BTreeMap<u16, u32>,
    once: Once,
    decided: Option<Hash>,
    started: bool,
}

impl Tendermint {
    /// A machine for `height` among `validators` validators; `me` is our index if we vote.
    /// `locked` restores a lock persisted before a restart at this height. Call
    /// [`Tendermint::start`] to begin round 0.
    pub fn new(
        validators: usize,
        me: Option<u16>,
        timeouts: Timeouts,
        height: u64,
        locked: Option<(u32, Hash)>,
    ) -> Tendermint {
        Tendermint {
            validators,
            me,
            timeouts,
            height,
            round: 0,
            step: Step::Propose,
            locked,
            // A lock restored after a restart is also the value to propose again.
            valid: locked,
            rounds: BTreeMap::new(),
            far_rounds: BTreeMap::new(),
            once: Once::default(),
            decided: None,
            started: false,
        }
    }

    /// Height.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Current round.
    pub fn round(&self) -> u32 {
        self.round
    }

    /// Current step.
    pub fn step(&self) -> Step {
        self.step
    }

    /// The lock (round, block), if any.
    pub fn locked(&self) -> Option<(u32, Hash)> {
        self.locked
    }

    /// The prevotes that make our `validValue` valid (a polka: 2f+1 prevotes for it in
    /// `validRound`). Relaying them lets validators that missed them accept a re-proposal
    /// with that proof of lock: Tendermint assumes every message eventually reaches every
    /// correct validator, and a lossy network needs this help to keep that promise.
    pub fn polka(&self) -> Vec<SignedVote> {
        match self.valid {
            Some((round, value)) => self.prevotes_for(round, value),
            None => Vec::new(),
        }
    }

    /// The prevotes for `value` in `round` that this machine holds.
    pub fn prevotes_for(&self, round: u32, value: Hash) -> Vec<SignedVote> {
        self.rounds
            .get(&round)
            .map(|state| state.votes_for(VoteKind::Prevote, Some(value)))
            .unwrap_or_default()
    }

    /// The decision, once made.
    pub fn decided(&self) -> Option<Hash> {
        self.decided
    }

    fn quorum(&self) -> usize {
        quorum(self.validators)
    }

    fn skip_threshold(&self) -> usize {
        self.validators - self.quorum() + 1
    }

    fn is_proposer(&self, round: u32) -> bool {
        self.me == Some(proposer(self.height, round, self.validators))
    }

    /// Starts round 0 (line 10: `StartRound(0)`), at `round` instead when resuming after a
    /// restart so that no round we may have voted in is entered again.
    pub fn start(&mut self, round: u32) -> Vec<Output> {
        let mut out = Vec::new();
        self.started = true;
        self.start_round(round, &mut out);
        self.progress(&mut out);
        out
    }

    /// Lines 11-21: `StartRound(round)`.
    fn start_round(&mut self, round: u32, out: &mut Vec<Output>) {
        self.round = round;
        self.step = Step::Propose;
        self.once = Once::default();
        self.far_rounds.retain(|_, r| *r > round);
        out.push(Output::RoundStarted { round });
        if self.is_proposer(round) {
            // Lines 14-19: propose validValue if there is one, else a new value.
            out.push(Output::Propose {
                round,
                value: self.valid.map(|(_, v)| v),
                pol_round: self.valid.map(|(r, _)| r),
            });
        }
        // Line 21 schedules the propose timeout only for non-proposers; we schedule it for
        // the proposer too, so a proposer whose block is slow to build still moves on.
        out.push(self.schedule(TimeoutKind::Propose));
    }

    fn schedule(&self, kind: TimeoutKind) -> Output {
        Output::Schedule {
            timeout: Timeout {
                height: self.height,
                round: self.round,
                kind,
            },
            after_ms: self.timeouts.delay_ms(kind, self.round),
        }
    }

    /// A proposal from the round's proposer (checked by the caller), with the caller's
    /// verdict on the block's validity.
    pub fn on_proposal(
        &mut self,
        round: u32,
        value: Hash,
        pol_round: Option<u32>,
        valid: bool,
    ) -> (Accepted, Vec<Output>) {
        if round > self.round.saturating_add(ROUND_WINDOW) {
            return (Accepted::Ignored, Vec::new());
        }
        let state = self.rounds.entry(round).or_default();
        if state.proposals.iter().any(|(hash, _, _)| *hash == value) {
            return (Accepted::Duplicate, Vec::new());
        }
        if state.proposals.len() >= MAX_PROPOSALS_PER_ROUND {
            return (Accepted::Ignored, Vec::new());
        }
        state.proposals.push((value, pol_round, valid));
        let mut out = Vec::new();
        self.progress(&mut out);
        (Accepted::New, out)
    }

    /// A vote (its signature checked by the caller).
    pub fn on_vote(&mut self, vote: SignedVote) -> (Accepted, Vec<Output>) {
        let v = vote.vote;
        if v.height != self.height || usize::from(v.validator) >= self.validators {
            return (Accepted::Ignored, Vec::new());
        }
        if v.round > self.round.saturating_add(ROUND_WINDOW) {
            let highest = self.far_rounds.entry(v.validator).or_insert(v.round);
            *highest = (*highest).max(v.round);
            let mut out = Vec::new();
            self.progress(&mut out);
            return (Accepted::New, out);
        }
        let state = self.rounds.entry(v.round).or_default();
        let votes = match v.kind {
            VoteKind::Prevote => &mut state.prevotes,
            VoteKind::Precommit => &mut state.precommits,
        };
        let mine = votes.entry(v.validator).or_default();
        if mine.iter().any(|existing| existing.vote == v) {
            return (Accepted::Duplicate, Vec::new());
        }
        let accepted = if mine.is_empty() {
            Accepted::New
        } else {
            Accepted::Equivocation
        };
        if mine.len() >= MAX_VOTES_PER_VALIDATOR {
            return (accepted, Vec::new());
        }
        mine.push(vote);
        let mut out = Vec::new();
        self.progress(&mut out);
        (accepted, out)
    }

    /// A timeout came due (lines 57-67).
    pub fn on_timeout(&mut self, timeout: Timeout) -> Vec<Output> {
        let mut out = Vec::new();
        if timeout.height != self.height || timeout.round != self.round || self.decided.is_some() {
            return out;
        }
        match timeout.kind {
            // Lines 57-60: OnTimeoutPropose.
            TimeoutKind::Propose if self.step == Step::Propose => {
                self.vote(VoteKind::Prevote, None, &mut out);
                self.step = Step::Prevote;
            }
            // Lines 61-64: OnTimeoutPrevote.
            TimeoutKind::Prevote if self.step == Step::Prevote => {
                self.vote(VoteKind::Precommit, None, &mut out);
                self.step = Step::Precommit;
            }
            // Lines 65-67: OnTimeoutPrecommit.
            TimeoutKind::Precommit => {
                let next = self.round.saturating_add(1);
                self.start_round(next, &mut out);
            }
            _ => return out,
        }
        self.progress(&mut out);
        out
    }

    fn vote(&self, kind: VoteKind, value: Option<Hash>, out: &mut Vec<Output>) {
        if self.me.is_some() {
            out.push(Output::Vote {
                kind,
                round: self.round,
                value,
            });
        }
    }

    /// Applies every rule whose condition holds, until none does.
    fn progress(&mut self, out: &mut Vec<Output>) {
        if !self.started {
            return;
        }
        while self.decided.is_none() && self.step_once(out) {}
    }

    /// Applies the first rule whose condition holds; false if none does.
    fn step_once(&mut self, out: &mut Vec<Output>) -> bool {
        let quorum = self.quorum();
        let round = self.round;
        let empty = RoundState::default();
        let current = self.rounds.get(&round).unwrap_or(&empty);

        // Lines 49-54: a valid proposal and 2f+1 precommits for it, in any round: decide.
        for (r, state) in &self.rounds {
            for (value, _, valid) in &state.proposals {
                if *valid && state.count(VoteKind::Precommit, Some(*value)) >= quorum {
                    let precommits = state.votes_for(VoteKind::Precommit, Some(*value));
                    out.push(Output::Decide {
                        round: *r,
                        value: *value,
                        precommits,
                    });
                    self.decided = Some(*value);
                    return false;
                }
            }
        }

        // Line 55: f+1 validators in a later round: skip to it.
        if let Some(later) = self.later_round() {
            self.start_round(later, out);
            return true;
        }

        if self.step == Step::Propose {
            let first = current.proposals.first().copied();
            if let Some((value, pol_round, valid)) = first {
                match pol_round {
                    // Lines 22-27: a fresh proposal.
                    None => {
                        let prevote =
                            valid && self.locked.is_none_or(|(_, locked)| locked == value);
                        self.vote(VoteKind::Prevote, prevote.then_some(value), out);
                        self.step = Step::Prevote;
                        return true;
                    }
                    // Lines 28-33: a proposal with a proof of lock from round vr < round.
                    Some(vr) if vr < round => {
                        let proven = self
                            .rounds
                            .get(&vr)
                            .is_some_and(|s| s.count(VoteKind::Prevote, Some(value)) >= quorum);
                        if proven {
                            let prevote = valid
                                && self
                                    .locked
                                    .is_none_or(|(lr, locked)| lr <= vr || locked == value);
                            self.vote(VoteKind::Prevote, prevote.then_some(value), out);
                            self.step = Step::Prevote;
                            return true;
                        }
                    }
                    Some(_) => {}
                }
            }
        }

        // Lines 34-35: 2f+1 prevotes of any kind: start the prevote timeout, once.
        if self.step == Step::Prevote
            && !self.once.prevote_timeout
            && current.prevotes.len() >= quorum
        {
            self.once.prevote_timeout = true;
            out.push(self.schedule(TimeoutKind::Prevote));
            return true;
        }

        // Lines 36-43: a valid proposal and 2f+1 prevotes for it: lock and precommit.
        if self.step >= Step::Prevote && !self.once.line_36 {
            let polka = current.proposals.iter().find(|(value, _, valid)| {
                *valid && current.count(VoteKind::Prevote, Some(*value)) >= quorum
            });
            if let Some((value, _, _)) = polka.copied() {
                self.once.line_36 = true;
                if self.step == Step::Prevote {
                    self.locked = Some((round, value));
                    self.vote(VoteKind::Precommit, Some(value), out);
                    self.step = Step::Precommit;
                }
                self.valid = Some((round, value));
                return true;
            }
        }

        // Lines 44-46: 2f+1 prevotes for nil: precommit nil.
        if self.step == Step::Prevote && current.count(VoteKind::Prevote, None) >= quorum {
            self.vote(VoteKind::Precommit, None, out);
            self.step = Step::Precommit;
            return true;
        }

        // Lines 47-48: 2f+1 precommits of any kind: start the precommit timeout, once.
        if !self.once.precommit_timeout && current.precommits.len() >= quorum {
            self.once.precommit_timeout = true;
            out.push(self.schedule(TimeoutKind::Precommit));
            return true;
        }
        false
    }

    /// The highest round above ours that `f+1` validators have sent messages in (line 55);
    /// beyond the window, a round that `f+1` validators have reached or passed.
    fn later_round(&self) -> Option<u32> {
        let threshold = self.skip_threshold();
        let in_window = self
            .rounds
            .range(self.round.saturating_add(1)..)
            .rev()
            .find(|(_, state)| {
                let mut voters: Vec<u16> = state
                    .prevotes
                    .keys()
                    .chain(state.precommits.keys())
                    .copied()
                    .collect();
                voters.sort_unstable();
                voters.dedup();
                voters.len() >= threshold
            })
            .map(|(round, _)| *round);
        let mut far: Vec<u32> = self
            .far_rounds
            .values()
            .copied()
            .filter(|r| *r > self.round)
            .collect();
        far.sort_unstable_by(|a, b| b.cmp(a));
        let beyond = far.get(threshold - 1).copied();
        in_window.max(beyond)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::{Vote, sign_vote};
    use cachet_testkit::key;

    const N: usize = 4;

    fn value(tag: &str) -> Hash {
        Hash::tagged("test/value", &[tag.as_bytes()])
    }

    fn vote(kind: VoteKind, round: u32, value: Option<Hash>, validator: u16) -> SignedVote {
        let v = Vote {
            kind,
            height: 1,
            round,
            block_hash: value,
            validator,
        };
        sign_vote(&Hash::ZERO, v, &key(&format!("v{validator}")))
    }

    /// Validator 0 at height 1 (proposer of round 0 is validator 1).
    fn machine() -> Tendermint {
        let mut m = Tendermint::new(N, Some(0), Timeouts::default(), 1, None);
        m.start(0);
        m
    }

    fn votes_of(out: &[Output]) -> Vec<(VoteKind, u32, Option<Hash>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Vote { kind, round, value } => Some((*kind, *round, *value)),
                _ => None,
            })
            .collect()
    }

    fn feed(
        m: &mut Tendermint,
        kind: VoteKind,
        round: u32,
        value: Option<Hash>,
        from: &[u16],
    ) -> Vec<Output> {
        let mut out = Vec::new();
        for v in from {
            out.extend(m.on_vote(vote(kind, round, value, *v)).1);
        }
        out
    }

    #[test]
    fn quorums() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(7), 5);
        let m = Tendermint::new(4, None, Timeouts::default(), 1, None);
        assert_eq!(m.skip_threshold(), 2);
    }

    #[test]
    fn a_valid_proposal_is_prevoted_locked_and_decided() {
        let mut m = machine();
        let v = value("a");
        let (_, out) = m.on_proposal(0, v, None, true);
        assert_eq!(votes_of(&out), vec![(VoteKind::Prevote, 0, Some(v))]);
        m.on_vote(vote(VoteKind::Prevote, 0, Some(v), 0));
        let out = feed(&mut m, VoteKind::Prevote, 0, Some(v), &[1, 2]);
        assert_eq!(votes_of(&out), vec![(VoteKind::Precommit, 0, Some(v))]);
        assert_eq!(m.locked(), Some((0, v)));
        m.on_vote(vote(VoteKind::Precommit, 0, Some(v), 0));
        let out = feed(&mut m, VoteKind::Precommit, 0, Some(v), &[2, 3]);
        let decided = out.iter().find_map(|o| match o {
            Output::Decide {
                value, precommits, ..
            } => Some((*value, precommits.len())),
            _ => None,
        });
        assert_eq!(decided, Some((v, 3)));
        assert_eq!(m.decided(), Some(v));
    }

    #[test]
    fn an_invalid_proposal_gets_a_nil_prevote() {
        let mut m = machine();
        let (_, out) = m.on_proposal(0, value("bad"), None, false);
        assert_eq!(votes_of(&out), vec![(VoteKind::Prevote, 0, None)]);
    }

    #[test]
    fn two_thirds_of_precommits_without_the_block_do_not_decide() {
        let mut m = machine();
        let v = value("a");
        let out = feed(&mut m, VoteKind::Precommit, 0, Some(v), &[1, 2, 3]);
        assert!(!out.iter().any(|o| matches!(o, Output::Decide { .. })));
        // The block arrives: now it decides.
        let (_, out) = m.on_proposal(0, v, None, true);
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::Decide { value, .. } if *value == v))
        );
    }

    #[test]
    fn a_locked_validator_refuses_another_value_without_proof() {
        let mut m = machine();
        let v = value("a");
        m.on_proposal(0, v, None, true);
        feed(&mut m, VoteKind::Prevote, 0, Some(v), &[0, 1, 2]);
        assert_eq!(m.locked(), Some((0, v)));
        // Round 0 ends without a decision.
        feed(&mut m, VoteKind::Precommit, 0, None, &[1, 2, 3]);
        let out = m.on_timeout(Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Precommit,
        });
        assert!(out.contains(&Output::RoundStarted { round: 1 }));
        // Round 1's proposer offers a different, fresh value: prevote nil.
        let w = value("b");
        let (_, out) = m.on_proposal(1, w, None, true);
        assert_eq!(votes_of(&out), vec![(VoteKind::Prevote, 1, None)]);
    }

    #[test]
    fn a_proof_of_lock_from_a_later_round_unlocks() {
        let mut m = machine();
        let v = value("a");
        let w = value("b");
        m.on_proposal(0, v, None, true);
        feed(&mut m, VoteKind::Prevote, 0, Some(v), &[0, 1, 2]);
        feed(&mut m, VoteKind::Precommit, 0, None, &[1, 2, 3]);
        m.on_timeout(Timeout {
            height: 1,
            round: 0,
            kind: TimeoutKind::Precommit,
        });
        // w gathered a polka in round 1 (we missed the proposal), then round 2 re-proposes
        // it with pol_round 1: lines 28-33 allow the prevote since 1 > our lock round 0.
        feed(&mut m, VoteKind::Prevote, 1, Some(w), &[1, 2, 3]);
        m.on_timeout(Timeout {
            height: 1,
            round: 1,
            kind: TimeoutKind::Propose,
        });
        feed(&mut m, VoteKind::Precommit, 1, None, &[1, 2, 3]);
        m.on_timeout(Timeout {
            height: 1,
            round: 1,
            kind: TimeoutKind::Precommit,
        });
        assert_eq!(m.round(), 2);
        let (_, out) = m.on_proposal(2, w, Some(1), true);
        assert_eq!(votes_of(&out), vec![(VoteKind::Prevote, 2, Some(w))]);
    }

    #[test]
    fn f_plus_one_in_a_later_round_skips_to_it() {
        let mut m = machine();
        let out = feed(&mut m, VoteKind::Prevote, 5, None, &[1]);
        assert_eq!(m.round(), 0, "one validator is not enough");
        assert!(!out.contains(&Output::RoundStarted { round: 5 }));
        let out = feed(&mut m, VoteKind::Prevote, 5, None, &[2]);
        assert!(out.contains(&Output::RoundStarted { round: 5 }));
        assert_eq!(m.round(), 5);
    }

    #[test]
    fn far_rounds_count_for_skipping_without_storing_votes() {
        let mut m = machine();
        let far = ROUND_WINDOW + 100;
        feed(&mut m, VoteKind::Prevote, far, None, &[1]);
        assert_eq!(m.round(), 0);
        feed(&mut m, VoteKind::Precommit, far + 3, None, &[2]);
        assert_eq!(m.round(), far, "skips to the round two validators reached");
        assert!(m.rounds.keys().all(|r| *r <= m.round() + ROUND_WINDOW));
    }

    #[test]
    fn double_votes_are_equivocation_and_count_for_each_value() {
        let mut m = machine();
        let (first, _) = m.on_vote(vote(VoteKind::Prevote, 0, Some(value("a")), 3));
        let (again, _) = m.on_vote(vote(VoteKind::Prevote, 0, Some(value("a")), 3));
        let (other, _) = m.on_vote(vote(VoteKind::Prevote, 0, Some(value("b")), 3));
        assert_eq!(
            (first, again, other),
            (Accepted::New, Accepted::Duplicate, Accepted::Equivocation)
        );
        assert_eq!(m.rounds[&0].count(VoteKind::Prevote, Some(value("a"))), 1);
        assert_eq!(m.rounds[&0].count(VoteKind::Prevote, Some(value("b"))), 1);
        // Still one validator towards "2f+1 prevotes of any kind".
        assert_eq!(m.rounds[&0].prevotes.len(), 1);
    }

    #[test]
    fn timeouts_grow_per_round_up_to_the_cap() {
        let t = Timeouts::default();
        assert!(t.delay_ms(TimeoutKind::Propose, 1) > t.delay_ms(TimeoutKind::Propose, 0));
        assert_eq!(t.delay_ms(TimeoutKind::Propose, u32::MAX), t.max_ms);
    }

    #[test]
    fn observers_never_vote() {
        let mut m = Tendermint::new(N, None, Timeouts::default(), 1, None);
        m.start(0);
        let v = value("a");
        let (_, out) = m.on_proposal(0, v, None, true);
        assert!(votes_of(&out).is_empty());
        feed(&mut m, VoteKind::Precommit, 0, Some(v), &[0, 1, 2]);
        assert_eq!(
            m.decided(),
            Some(v),
            "an observer still learns the decision"
        );
    }
}
