//! Runs [`Tendermint`] for a node: checks messages, signs (never twice for one step),
//! builds and validates blocks through the ledger ([`App`]), and assembles commit
//! certificates. Pure like the machine: the caller owns the network, the clock and the disk,
//! and the simulator drives this same code.
//!
//! Safety across crashes: before a signature leaves, [`App::persist_signer`] must have
//! stored the [`SignerState`] durably; the driver refuses to sign a step at or below the
//! stored one, and a restarted validator resumes at its stored round with its stored lock.
//!
//! No empty blocks while idle: in round 0 the proposer waits for work and the others arm
//! their propose timeout only once they have work (or see that someone does), so an idle
//! chain sits still instead of spinning rounds. From round 1 on, blocks may be empty.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bincode::{Decode, Encode};
use cachet_types::{
    Block, CertifiedBlock, CommitCertificate, CommitSignature, Hash, PublicKey, SigningKey,
    VoteKind, codec,
};

use crate::messages::{
    ConsensusMsg, MsgError, Proposal, SignedVote, Vote, sign_proposal, sign_vote,
};
use crate::tendermint::{
    Accepted, Output, ROUND_WINDOW, Step, Tendermint, Timeout, TimeoutKind, Timeouts,
};

/// Messages for the next height kept per validator until we get there.
pub const MAX_FUTURE_PER_VALIDATOR: usize = 8;

/// Votes of the current height remembered by their exact bytes, so that a copy (relayed,
/// rebroadcast, gossiped twice) is recognised before its signature is checked again.
/// Past the bound, copies are simply verified again.
pub const MAX_SEEN_VOTES: usize = 32 * 1024;

/// What a validator has signed last; stored durably before each signature is sent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode)]
pub struct SignerState {
    /// Height of the last signature.
    pub height: u64,
    /// Round of the last signature.
    pub round: u32,
    /// 0: nothing yet; 1: proposal; 2: prevote; 3: precommit.
    pub step: u8,
    /// The lock held at that height (round, block).
    pub locked: Option<(u32, Hash)>,
    /// The votes signed at that height in that round and the one before, so that a
    /// restarted validator counts and resends them (it may not sign them again; a peer
    /// still in the previous round may need them to leave it).
    pub votes: Vec<SignedVote>,
    /// The locked block and the prevotes that justified the lock: a restarted validator
    /// needs them to propose its locked block again with its proof of lock. Without them a
    /// lock could outlive every way of ever getting unlocked.
    pub lock_proof: Option<LockProof>,
}

/// A locked block with its polka (more than two thirds of prevotes in the lock's round).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct LockProof {
    /// The block.
    pub block: Block,
    /// The prevotes for it in the lock round.
    pub prevotes: Vec<SignedVote>,
}

impl SignerState {
    fn position(&self) -> (u64, u32, u8) {
        (self.height, self.round, self.step)
    }
}

/// The ledger side of consensus.
pub trait App {
    /// A block for `height` on the current tip, proposed by validator `proposer`, or `None`
    /// when there is nothing to propose and `allow_empty` is false.
    fn build_block(
        &mut self,
        height: u64,
        round: u32,
        proposer: u16,
        allow_empty: bool,
    ) -> Option<Block>;
    /// Whether `block` validly extends the current tip (signatures, rules, state root):
    /// `Ok(false)` for a block that breaks a rule, `Err` when the app could not judge it
    /// (its storage failed). An `Err` is never taken as a verdict on the block: the driver
    /// reports it ([`Action::AppFailed`]) and neither votes on nor blacklists the block.
    fn validate_block(&mut self, block: &Block) -> Result<bool, String>;
    /// Whether transactions are waiting.
    fn has_work(&self) -> bool;
    /// Stores `state` durably (synced) before returning.
    fn persist_signer(&mut self, state: &SignerState) -> Result<(), String>;
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send to every peer.
    Broadcast(ConsensusMsg),
    /// Call [`Driver::on_timeout`] with `timeout` after `after_ms`.
    Schedule {
        /// The timeout.
        timeout: Timeout,
        /// Delay.
        after_ms: u64,
    },
    /// A new round began.
    RoundStarted {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// The height is final: commit this block, then call [`Driver::start`] for the next.
    Decided(Box<CertifiedBlock>),
    /// A validator signed two different votes for one step: it is faulty.
    Equivocation {
        /// The validator.
        validator: u16,
        /// Height.
        height: u64,
        /// Round.
        round: u32,
    },
    /// Signing failed because the signer state could not be stored; nothing was sent.
    PersistFailed(String),
    /// The app could not check a proposed block (storage failed): fatal for the node.
    AppFailed(String),
}

/// What happened to an incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// New information, used.
    Accepted,
    /// Already known, or of no use in the current round window.
    Duplicate,
    /// For the next height; kept until then.
    Buffered,
    /// For a height already decided here; of no use.
    Stale,
    /// For a height beyond the next: this node is behind and should sync blocks.
    Ahead(u64),
}

/// One node's consensus.
pub struct Driver {
    chain_id: Hash,
    validators: Vec<PublicKey>,
    next_validators: Vec<PublicKey>,
    key: Option<SigningKey>,
    index: Option<u16>,
    timeouts: Timeouts,
    machine: Tendermint,
    blocks: BTreeMap<Hash, Block>,
    invalid: BTreeSet<Hash>,
    signer: SignerState,
    pending_propose: Option<u32>,
    deferred_timeout: Option<(Timeout, u64)>,
    future: BTreeMap<u16, Vec<ConsensusMsg>>,
    own: Vec<ConsensusMsg>,
    /// Hashes of the exact bytes of votes verified at this height.
    seen_votes: BTreeSet<Hash>,
    /// Signatures of consensus messages checked so far.
    signature_checks: u64,
    /// Heights below this are only followed, whatever the validator set (see
    /// [`Driver::sign_from`]).
    sign_from: u64,
}

impl Driver {
    /// A driver; `key` is our validator key (none for an observer; a key outside a height's
    /// validator set only follows that height), `signer` the stored signer state (default if
    /// none). Call [`Driver::start`] to begin.
    pub fn new(
        chain_id: Hash,
        key: Option<SigningKey>,
        signer: SignerState,
        timeouts: Timeouts,
    ) -> Driver {
        Driver {
            chain_id,
            validators: Vec::new(),
            next_validators: Vec::new(),
            key,
            index: None,
            timeouts,
            machine: Tendermint::new(1, None, timeouts, 0, None),
            blocks: BTreeMap::new(),
            invalid: BTreeSet::new(),
            signer,
            pending_propose: None,
            deferred_timeout: None,
            future: BTreeMap::new(),
            own: Vec::new(),
            seen_votes: BTreeSet::new(),
            signature_checks: 0,
            sign_from: 0,
        }
    }

    /// Signs nothing at heights below `height`, only follows them (as an observer does),
    /// from the next [`Driver::start`] on: a validator that lost its signer state must not
    /// sign where it may have signed before.
    pub fn sign_from(&mut self, height: u64) {
        self.sign_from = height;
    }

    /// How many consensus message signatures this driver has checked (for load figures).
    pub fn signature_checks(&self) -> u64 {
        self.signature_checks
    }

    /// Height being decided.
    pub fn height(&self) -> u64 {
        self.machine.height()
    }

    /// Current round.
    pub fn round(&self) -> u32 {
        self.machine.round()
    }

    /// Current step of the round.
    pub fn step(&self) -> crate::Step {
        self.machine.step()
    }

    /// The signer state (what is stored).
    pub fn signer(&self) -> &SignerState {
        &self.signer
    }

    /// The validator keys of the height being decided.
    pub fn validators(&self) -> &[PublicKey] {
        &self.validators
    }

    /// Our validator key, if we have one.
    pub fn signer_key(&self) -> Option<PublicKey> {
        self.key.as_ref().map(SigningKey::public_key)
    }

    /// Our validator index at the height being decided (none: we only follow it).
    pub fn index(&self) -> Option<u16> {
        self.index
    }

    /// Begins deciding `height` (the ledger tip + 1) with its validator set and the next
    /// height's (for messages that arrive early); both come from the ledger, which knows
    /// them from its tip. Neither may be empty.
    pub fn start(
        &mut self,
        height: u64,
        validators: Vec<PublicKey>,
        next_validators: Vec<PublicKey>,
        app: &mut dyn App,
    ) -> Vec<Action> {
        let resume = self.signer.height == height;
        let locked = if resume { self.signer.locked } else { None };
        let round = if resume { self.signer.round } else { 0 };
        self.validators = validators;
        self.next_validators = next_validators;
        let signs = height >= self.sign_from;
        self.index = self.key.as_ref().filter(|_| signs).and_then(|key| {
            let public = key.public_key();
            let position = self.validators.iter().position(|v| *v == public)?;
            u16::try_from(position).ok()
        });
        self.machine = Tendermint::new(
            self.validators.len(),
            self.index,
            self.timeouts,
            height,
            locked,
        );
        self.blocks.clear();
        self.invalid.clear();
        self.seen_votes.clear();
        // The block we locked on, with the polka that justified the lock.
        let lock = match (locked, &self.signer.lock_proof) {
            (Some((lock_round, hash)), Some(proof))
                if resume && proof.block.header.hash() == hash =>
            {
                self.blocks.insert(hash, proof.block.clone());
                Some((lock_round, hash, proof.prevotes.clone()))
            }
            _ => None,
        };
        self.pending_propose = None;
        self.deferred_timeout = None;
        self.own.clear();
        let mut actions = Vec::new();
        let outputs = self.machine.start(round);
        self.run(outputs, app, &mut actions);
        if !resume {
            return self.replay_future(height, app, actions);
        }
        // Fed after the start, so that a lock from a late round is within the machine's
        // round window.
        if let Some((lock_round, hash, prevotes)) = lock {
            for vote in prevotes {
                if vote.vote.round == lock_round && vote.vote.height == height {
                    let (_, outputs) = self.machine.on_vote(vote);
                    self.run(outputs, app, &mut actions);
                }
            }
            // We locked on a valid proposal for this block in the lock round (Tendermint
            // locks on nothing else), so it counts again: with that round's precommits (our
            // own, replayed below, is enough for a single validator) the block is decided at
            // once rather than after a round of timeouts and a new proposal.
            let (_, outputs) = self.machine.on_proposal(lock_round, hash, None, true);
            self.run(outputs, app, &mut actions);
        }
        // Our votes from before the restart count again and will be resent.
        for vote in self.signer.votes.clone() {
            self.own.push(ConsensusMsg::Vote(vote));
            let (_, outputs) = self.machine.on_vote(vote);
            self.run(outputs, app, &mut actions);
        }
        self.replay_future(height, app, actions)
    }

    /// Feeds the messages buffered for `height` while we were below it.
    fn replay_future(
        &mut self,
        height: u64,
        app: &mut dyn App,
        mut actions: Vec<Action>,
    ) -> Vec<Action> {
        let buffered = std::mem::take(&mut self.future);
        for msg in buffered.into_values().flatten() {
            if msg.height() == height {
                let _ = self.feed(msg, app, &mut actions);
            }
        }
        actions
    }

    /// A message from a peer.
    pub fn on_message(
        &mut self,
        msg: ConsensusMsg,
        app: &mut dyn App,
    ) -> Result<(Received, Vec<Action>), MsgError> {
        let height = self.machine.height();
        let mut actions = Vec::new();
        if msg.height() < height {
            return Ok((Received::Stale, actions));
        }
        if msg.height() > height + 1 {
            return Ok((Received::Ahead(msg.height()), actions));
        }
        if msg.height() == height + 1 {
            // An exact copy of a buffered message was verified when it was buffered.
            if self
                .future
                .get(&msg.signer())
                .is_some_and(|queue| queue.contains(&msg))
            {
                return Ok((Received::Buffered, actions));
            }
            self.signature_checks += 1;
            msg.verify(&self.chain_id, &self.next_validators)?;
            let queue = self.future.entry(msg.signer()).or_default();
            if queue.len() < MAX_FUTURE_PER_VALIDATOR {
                queue.push(msg);
            }
            return Ok((Received::Buffered, actions));
        }
        // A vote whose exact bytes were verified at this height is a copy: same signature,
        // same content, already counted. Anything else (another signature encoding, a
        // forgery, an equivocation) differs in its bytes and is verified.
        let seen = match &msg {
            ConsensusMsg::Vote(vote) => {
                let key = Hash::tagged("cachet/seen-vote", &[&codec::encode(vote)]);
                if self.seen_votes.contains(&key) {
                    return Ok((Received::Duplicate, actions));
                }
                // Only votes the machine stores: one for a round beyond its window is
                // noted as a sign to skip ahead, and must count when that round comes.
                let stored = vote.vote.round <= self.machine.round().saturating_add(ROUND_WINDOW);
                stored.then_some(key)
            }
            ConsensusMsg::Proposal { .. } => None,
        };
        self.signature_checks += 1;
        msg.verify(&self.chain_id, &self.validators)?;
        let accepted = self.feed(msg, app, &mut actions);
        // Remembered only once the machine holds it: a vote it ignored may count when a
        // later copy arrives.
        if let Some(key) = seen
            && accepted != Accepted::Ignored
            && self.seen_votes.len() < MAX_SEEN_VOTES
        {
            self.seen_votes.insert(key);
        }
        let received = match accepted {
            Accepted::New | Accepted::Equivocation => Received::Accepted,
            Accepted::Duplicate | Accepted::Ignored => Received::Duplicate,
        };
        Ok((received, actions))
    }

    /// A scheduled timeout came due.
    pub fn on_timeout(&mut self, timeout: Timeout, app: &mut dyn App) -> Vec<Action> {
        let mut actions = Vec::new();
        let outputs = self.machine.on_timeout(timeout);
        self.run(outputs, app, &mut actions);
        actions
    }

    /// Transactions arrived: propose if we were waiting to, arm a deferred timeout.
    pub fn on_work(&mut self, app: &mut dyn App) -> Vec<Action> {
        let mut actions = Vec::new();
        self.wake(app, &mut actions);
        actions
    }

    /// Our own messages of the current height, this round's and the round before's, to
    /// send again when the network may have lost them (the caller decides when, e.g. after a
    /// while without progress). The round before matters when we moved on alone: peers
    /// still in it may lack our precommit to reach the quorum that lets them move on too,
    /// and with a validator gone for good there is no other copy (found by the simulator:
    /// one validator lost, another a round ahead, the two others waiting for ever). With
    /// them go the prevotes behind our valid value (see [`Tendermint::polka`]).
    pub fn rebroadcast(&self) -> Vec<Action> {
        let round = self.machine.round();
        let mut actions: Vec<Action> = self
            .own
            .iter()
            .filter(|msg| msg.round() == round || msg.round().saturating_add(1) == round)
            .cloned()
            .map(Action::Broadcast)
            .collect();
        actions.extend(
            self.machine
                .polka()
                .into_iter()
                .map(|vote| Action::Broadcast(ConsensusMsg::Vote(vote))),
        );
        actions
    }

    fn wake(&mut self, app: &mut dyn App, actions: &mut Vec<Action>) {
        let (height, round) = (self.machine.height(), self.machine.round());
        if let Some(pending) = self.pending_propose
            && pending == round
            && self.machine.step() == Step::Propose
        {
            let mut queue = VecDeque::new();
            self.propose(round, None, None, app, &mut queue, actions);
            self.drain(queue, app, actions);
        }
        if let Some((timeout, after_ms)) = self.deferred_timeout
            && timeout.height == height
            && timeout.round == round
            && app.has_work()
        {
            self.deferred_timeout = None;
            actions.push(Action::Schedule { timeout, after_ms });
        }
    }

    fn feed(
        &mut self,
        msg: ConsensusMsg,
        app: &mut dyn App,
        actions: &mut Vec<Action>,
    ) -> Accepted {
        let (accepted, outputs) = match msg {
            ConsensusMsg::Proposal { proposal, block } => {
                let p = proposal.proposal;
                let hash = p.block_hash;
                let valid = if self.blocks.contains_key(&hash) {
                    true
                } else if self.invalid.contains(&hash) {
                    false
                } else {
                    match app.validate_block(&block) {
                        Ok(true) => {
                            self.blocks.insert(hash, *block);
                            true
                        }
                        Ok(false) => {
                            self.invalid.insert(hash);
                            false
                        }
                        Err(error) => {
                            actions.push(Action::AppFailed(error));
                            return Accepted::Ignored;
                        }
                    }
                };
                self.machine.on_proposal(p.round, hash, p.pol_round, valid)
            }
            ConsensusMsg::Vote(vote) => {
                let result = self.machine.on_vote(vote);
                if result.0 == Accepted::Equivocation {
                    actions.push(Action::Equivocation {
                        validator: vote.vote.validator,
                        height: vote.vote.height,
                        round: vote.vote.round,
                    });
                }
                result
            }
        };
        if accepted == Accepted::New && self.machine.round() == 0 {
            // Someone is working on this height: our round-0 timeout must run.
            self.wake_timeout(actions);
        }
        self.run(outputs, app, actions);
        accepted
    }

    fn wake_timeout(&mut self, actions: &mut Vec<Action>) {
        if let Some((timeout, after_ms)) = self.deferred_timeout.take() {
            actions.push(Action::Schedule { timeout, after_ms });
        }
    }

    fn run(&mut self, outputs: Vec<Output>, app: &mut dyn App, actions: &mut Vec<Action>) {
        self.drain(outputs.into(), app, actions);
    }

    fn drain(&mut self, mut queue: VecDeque<Output>, app: &mut dyn App, actions: &mut Vec<Action>) {
        while let Some(output) = queue.pop_front() {
            match output {
                Output::RoundStarted { round } => {
                    self.pending_propose = None;
                    actions.push(Action::RoundStarted {
                        height: self.machine.height(),
                        round,
                    });
                }
                Output::Propose {
                    round,
                    value,
                    pol_round,
                } => self.propose(round, value, pol_round, app, &mut queue, actions),
                Output::Vote { kind, round, value } => {
                    let step = match kind {
                        VoteKind::Prevote => 2,
                        VoteKind::Precommit => 3,
                    };
                    let Some(index) = self.index else {
                        continue;
                    };
                    let vote = Vote {
                        kind,
                        height: self.machine.height(),
                        round,
                        block_hash: value,
                        validator: index,
                    };
                    let Some(signed) = self.sign(
                        step,
                        round,
                        app,
                        actions,
                        |chain, key| sign_vote(chain, vote, key),
                        |signed| Some(*signed),
                    ) else {
                        continue;
                    };
                    let msg = ConsensusMsg::Vote(signed);
                    self.own.push(msg.clone());
                    actions.push(Action::Broadcast(msg));
                    let (_, more) = self.machine.on_vote(signed);
                    queue.extend(more);
                }
                Output::Schedule { timeout, after_ms } => {
                    let idle = timeout.kind == TimeoutKind::Propose
                        && timeout.round == 0
                        && !app.has_work();
                    if idle {
                        self.deferred_timeout = Some((timeout, after_ms));
                    } else {
                        actions.push(Action::Schedule { timeout, after_ms });
                    }
                }
                Output::Decide {
                    round,
                    value,
                    precommits,
                } => {
                    let Some(block) = self.blocks.get(&value).cloned() else {
                        // The machine decides only on proposals we hold; nothing to do.
                        continue;
                    };
                    let signatures = precommits
                        .iter()
                        .map(|v| CommitSignature {
                            validator: v.vote.validator,
                            signature: v.signature,
                        })
                        .collect();
                    let certificate = CommitCertificate {
                        height: block.header.height,
                        round,
                        block_hash: value,
                        signatures,
                    };
                    actions.push(Action::Decided(Box::new(CertifiedBlock {
                        block,
                        certificate,
                    })));
                }
            }
        }
    }

    fn propose(
        &mut self,
        round: u32,
        value: Option<Hash>,
        pol_round: Option<u32>,
        app: &mut dyn App,
        queue: &mut VecDeque<Output>,
        actions: &mut Vec<Action>,
    ) {
        let Some(index) = self.index else {
            return;
        };
        let height = self.machine.height();
        let (block, pol_round) = match value.and_then(|hash| self.blocks.get(&hash)) {
            Some(block) => (block.clone(), pol_round),
            None => match app.build_block(height, round, index, round > 0) {
                Some(block) => (block, None),
                None => {
                    self.pending_propose = Some(round);
                    return;
                }
            },
        };
        self.pending_propose = None;
        let hash = block.header.hash();
        let proposal = Proposal {
            height,
            round,
            block_hash: hash,
            pol_round,
            proposer: index,
        };
        let Some(signed) = self.sign(
            1,
            round,
            app,
            actions,
            |chain, key| sign_proposal(chain, proposal, key),
            |_| None,
        ) else {
            return;
        };
        self.blocks.insert(hash, block.clone());
        let msg = ConsensusMsg::Proposal {
            proposal: signed,
            block: Box::new(block),
        };
        self.own.push(msg.clone());
        actions.push(Action::Broadcast(msg));
        let (_, more) = self.machine.on_proposal(round, hash, pol_round, true);
        queue.extend(more);
        self.wake_timeout(actions);
    }

    /// Signs at (height, round, step) if that is past everything signed before, and stores
    /// the new signer state (with the vote, if it is one) before handing the signature out.
    fn sign<T>(
        &mut self,
        step: u8,
        round: u32,
        app: &mut dyn App,
        actions: &mut Vec<Action>,
        make: impl FnOnce(&Hash, &SigningKey) -> T,
        as_vote: impl FnOnce(&T) -> Option<SignedVote>,
    ) -> Option<T> {
        self.index?;
        let key = self.key.as_ref()?;
        let height = self.machine.height();
        let position = (height, round, step);
        if position <= self.signer.position() {
            return None;
        }
        let signed = make(&self.chain_id, key);
        // Its votes of this round and the one before: what a restarted validator resends,
        // as [`Driver::rebroadcast`] does (peers a round behind may lack them, and wait).
        let mut votes: Vec<SignedVote> = if self.signer.height == height {
            let recent = |v: &&SignedVote| v.vote.round.saturating_add(1) >= round;
            self.signer.votes.iter().filter(recent).cloned().collect()
        } else {
            Vec::new()
        };
        votes.extend(as_vote(&signed));
        let locked = self.machine.locked();
        let lock_proof = match locked {
            None => None,
            Some((lock_round, hash)) => match &self.signer.lock_proof {
                Some(proof)
                    if self.signer.height == height
                        && self.signer.locked == locked
                        && proof.block.header.hash() == hash =>
                {
                    Some(proof.clone())
                }
                _ => self.blocks.get(&hash).map(|block| LockProof {
                    block: block.clone(),
                    prevotes: self.machine.prevotes_for(lock_round, hash),
                }),
            },
        };
        let next = SignerState {
            height,
            round,
            step,
            locked,
            votes,
            lock_proof,
        };
        if let Err(error) = app.persist_signer(&next) {
            actions.push(Action::PersistFailed(error));
            return None;
        }
        self.signer = next;
        Some(signed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_testkit::TestChain;
    use cachet_types::BlockHeader;

    /// A ledger that proposes a block stamped with a counter (so two builds differ) and
    /// accepts everything; the signer state lives in `stored`.
    struct FakeApp {
        chain_id: Hash,
        builds: u64,
        stored: Option<SignerState>,
        fail_persist: bool,
        /// `validate_block` fails (as on a storage error) instead of judging.
        fail_validate: bool,
    }

    impl App for FakeApp {
        fn build_block(
            &mut self,
            height: u64,
            _round: u32,
            proposer: u16,
            _allow_empty: bool,
        ) -> Option<Block> {
            self.builds += 1;
            Some(Block {
                header: BlockHeader {
                    chain_id: self.chain_id,
                    height,
                    prev_hash: self.chain_id,
                    time_ms: self.builds,
                    proposer,
                    tx_count: 0,
                    tx_root: Hash::ZERO,
                    state_root: Hash::ZERO,
                },
                txs: Vec::new(),
            })
        }
        fn validate_block(&mut self, _block: &Block) -> Result<bool, String> {
            if self.fail_validate {
                return Err("cannot read the state".into());
            }
            Ok(true)
        }
        fn has_work(&self) -> bool {
            true
        }
        fn persist_signer(&mut self, state: &SignerState) -> Result<(), String> {
            if self.fail_persist {
                return Err("disk full".into());
            }
            self.stored = Some(state.clone());
            Ok(())
        }
    }

    impl FakeApp {
        fn new(chain: &TestChain, fail_persist: bool) -> FakeApp {
            FakeApp {
                chain_id: chain.chain_id,
                builds: 0,
                stored: None,
                fail_persist,
                fail_validate: false,
            }
        }
    }

    fn proposals(actions: &[Action]) -> usize {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Broadcast(ConsensusMsg::Proposal { .. })))
            .count()
    }

    fn driver(chain: &TestChain, signer: SignerState) -> Driver {
        // Validator 1 proposes at height 1, round 0.
        Driver::new(
            chain.chain_id,
            Some(chain.validator(1).clone()),
            signer,
            Timeouts::default(),
        )
    }

    /// Validator 1's proposal for height 1, round 0.
    fn first_proposal(chain: &TestChain) -> ConsensusMsg {
        let mut app = FakeApp::new(chain, false);
        let mut proposer = driver(chain, SignerState::default());
        start(&mut proposer, chain, 1, &mut app)
            .into_iter()
            .find_map(|a| match a {
                Action::Broadcast(msg @ ConsensusMsg::Proposal { .. }) => Some(msg),
                _ => None,
            })
            .expect("validator 1 proposes at height 1")
    }

    /// Starts `height` with the genesis validators for it and the next.
    fn start(d: &mut Driver, chain: &TestChain, height: u64, app: &mut FakeApp) -> Vec<Action> {
        let keys = chain.genesis.validator_keys();
        d.start(height, keys.clone(), keys, app)
    }

    #[test]
    fn a_restarted_proposer_never_proposes_twice_in_a_round() {
        let chain = TestChain::new(4);
        let mut app = FakeApp::new(&chain, false);
        let mut first = driver(&chain, SignerState::default());
        let actions = start(&mut first, &chain, 1, &mut app);
        assert_eq!(proposals(&actions), 1);
        let stored = app
            .stored
            .clone()
            .expect("signer state stored before the proposal left");
        assert_eq!((stored.height, stored.round, stored.step), (1, 0, 2));

        // Crash and restart with what was stored: the rebuilt block would differ, so the
        // driver must not sign a proposal (or prevote) for round 0 again.
        let mut second = driver(&chain, stored);
        let actions = start(&mut second, &chain, 1, &mut app);
        assert_eq!(proposals(&actions), 0, "proposed twice at height 1 round 0");
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Broadcast(_))),
            "signed again after restart: {actions:?}"
        );
    }

    #[test]
    fn a_restarted_single_validator_decides_its_precommitted_block_at_once() {
        let chain = TestChain::new(1);
        let mut app = FakeApp::new(&chain, false);
        let only = |signer| {
            Driver::new(
                chain.chain_id,
                Some(chain.validator(0).clone()),
                signer,
                Timeouts::default(),
            )
        };
        let decided = |actions: &[Action]| {
            actions.iter().find_map(|a| match a {
                Action::Decided(block) => Some(block.block.header.hash()),
                _ => None,
            })
        };
        let mut first = only(SignerState::default());
        let actions = start(&mut first, &chain, 1, &mut app);
        let block = decided(&actions).expect("a single validator decides at once");

        // Crash after the precommit was stored, before the block was committed: the
        // restarted validator decides the same block before any timeout, without signing.
        let stored = app.stored.clone().expect("signer state stored");
        assert_eq!((stored.height, stored.round, stored.step), (1, 0, 3));
        let mut second = only(stored);
        let actions = start(&mut second, &chain, 1, &mut app);
        assert_eq!(
            decided(&actions),
            Some(block),
            "not decided at restart: {actions:?}"
        );
        assert_eq!(proposals(&actions), 0);
        assert_eq!(app.builds, 1, "built a new block at restart");
    }

    #[test]
    fn below_its_sign_from_height_a_validator_only_follows() {
        let chain = TestChain::new(4);
        let proposal = first_proposal(&chain);
        // The same key, told to sign from height 2: no proposal, no vote, nothing stored.
        let mut app = FakeApp::new(&chain, false);
        let mut quiet = driver(&chain, SignerState::default());
        quiet.sign_from(2);
        let actions = start(&mut quiet, &chain, 1, &mut app);
        assert_eq!(proposals(&actions), 0, "{actions:?}");
        assert_eq!(quiet.index(), None);
        let (_, actions) = quiet.on_message(proposal, &mut app).unwrap();
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Broadcast(_))),
            "{actions:?}"
        );
        assert!(app.stored.is_none(), "nothing signed, nothing stored");
        // From height 2 on it is validator 1 again.
        start(&mut quiet, &chain, 2, &mut app);
        assert_eq!(quiet.index(), Some(1));
    }

    #[test]
    fn a_block_the_app_could_not_check_is_neither_voted_nil_nor_blacklisted() {
        let chain = TestChain::new(4);
        let proposal = first_proposal(&chain);
        let mut app = FakeApp::new(&chain, false);
        let mut other = Driver::new(
            chain.chain_id,
            Some(chain.validator(2).clone()),
            SignerState::default(),
            Timeouts::default(),
        );
        start(&mut other, &chain, 1, &mut app);
        app.fail_validate = true;
        let (_, actions) = other.on_message(proposal.clone(), &mut app).unwrap();
        assert!(
            actions.iter().any(|a| matches!(a, Action::AppFailed(_))),
            "{actions:?}"
        );
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Broadcast(_))),
            "no vote on a block nobody judged: {actions:?}"
        );
        // Once the app can judge again, the same proposal is checked and voted for.
        app.fail_validate = false;
        let (_, actions) = other.on_message(proposal, &mut app).unwrap();
        assert!(
            actions.iter().any(|a| matches!(
                a,
                Action::Broadcast(ConsensusMsg::Vote(v)) if v.vote.block_hash.is_some()
            )),
            "{actions:?}"
        );
    }

    #[test]
    fn nothing_is_sent_when_the_signer_state_cannot_be_stored() {
        let chain = TestChain::new(4);
        let mut app = FakeApp::new(&chain, true);
        let mut d = driver(&chain, SignerState::default());
        let actions = start(&mut d, &chain, 1, &mut app);
        assert!(!actions.iter().any(|a| matches!(a, Action::Broadcast(_))));
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, Action::PersistFailed(_)))
        );
    }

    #[test]
    fn messages_are_checked_before_use() {
        let chain = TestChain::new(4);
        let mut app = FakeApp::new(&chain, false);
        let mut d = driver(&chain, SignerState::default());
        start(&mut d, &chain, 1, &mut app);
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 0,
            block_hash: None,
            validator: 2,
        };
        // Signed by the wrong key.
        let forged = sign_vote(&chain.chain_id, vote, chain.validator(3));
        assert_eq!(
            d.on_message(ConsensusMsg::Vote(forged), &mut app)
                .unwrap_err(),
            MsgError::BadSignature(2)
        );
        // Signed for another chain.
        let other = sign_vote(&Hash::ZERO, vote, chain.validator(2));
        assert!(d.on_message(ConsensusMsg::Vote(other), &mut app).is_err());
        let good = sign_vote(&chain.chain_id, vote, chain.validator(2));
        let (received, _) = d.on_message(ConsensusMsg::Vote(good), &mut app).unwrap();
        assert_eq!(received, Received::Accepted);
        let (received, _) = d.on_message(ConsensusMsg::Vote(good), &mut app).unwrap();
        assert_eq!(received, Received::Duplicate);
        // Far ahead: a sign to sync, unchecked and unused.
        let ahead = sign_vote(
            &chain.chain_id,
            Vote { height: 9, ..vote },
            chain.validator(2),
        );
        let (received, _) = d.on_message(ConsensusMsg::Vote(ahead), &mut app).unwrap();
        assert_eq!(received, Received::Ahead(9));
    }

    #[test]
    fn an_exact_copy_of_a_held_vote_is_not_verified_again_and_a_forgery_still_is() {
        let chain = TestChain::new(4);
        let mut app = FakeApp::new(&chain, false);
        let mut d = driver(&chain, SignerState::default());
        start(&mut d, &chain, 1, &mut app);
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: 1,
            round: 0,
            block_hash: None,
            validator: 2,
        };
        let good = sign_vote(&chain.chain_id, vote, chain.validator(2));
        let before = d.signature_checks();
        let (received, _) = d.on_message(ConsensusMsg::Vote(good), &mut app).unwrap();
        assert_eq!(received, Received::Accepted);
        assert_eq!(d.signature_checks(), before + 1);
        // The same bytes again (a relay, a rebroadcast): known without a signature check.
        let (received, _) = d.on_message(ConsensusMsg::Vote(good), &mut app).unwrap();
        assert_eq!(received, Received::Duplicate);
        assert_eq!(d.signature_checks(), before + 1);
        // Same content under another key's signature: other bytes, checked and refused.
        let mut forged = good;
        forged.signature = chain.validator(3).sign(b"something else");
        assert_eq!(
            d.on_message(ConsensusMsg::Vote(forged), &mut app)
                .unwrap_err(),
            MsgError::BadSignature(2)
        );
        assert_eq!(d.signature_checks(), before + 2);
        // A vote beyond the round window is only noted (a sign to skip ahead), not stored:
        // it is not remembered, so a copy that arrives once its round has come counts.
        let far = sign_vote(
            &chain.chain_id,
            Vote {
                round: 1_000,
                ..vote
            },
            chain.validator(2),
        );
        for _ in 0..2 {
            d.on_message(ConsensusMsg::Vote(far), &mut app).unwrap();
        }
        assert_eq!(d.signature_checks(), before + 4);
    }

    #[test]
    fn a_validator_signs_only_at_heights_whose_set_holds_its_key() {
        let chain = TestChain::new(4);
        let mut app = FakeApp::new(&chain, false);
        let keys = chain.genesis.validator_keys();
        // Height 1: validator 1 is not in the set (a rotation or a join still to come);
        // from height 2 it is.
        let without: Vec<PublicKey> = keys.iter().copied().filter(|k| *k != keys[1]).collect();
        let mut d = driver(&chain, SignerState::default());
        let actions = d.start(1, without.clone(), keys.clone(), &mut app);
        assert_eq!(d.index(), None);
        assert!(
            !actions.iter().any(|a| matches!(a, Action::Broadcast(_))),
            "signed at a height it does not validate: {actions:?}"
        );
        // A vote for height 2 by validator 1 is checked against height 2's set, in which
        // index 1 is validator 1 (at height 1, index 1 is another key).
        let early = Vote {
            kind: VoteKind::Prevote,
            height: 2,
            round: 0,
            block_hash: None,
            validator: 1,
        };
        let signed = sign_vote(&chain.chain_id, early, chain.validator(1));
        let (received, _) = d.on_message(ConsensusMsg::Vote(signed), &mut app).unwrap();
        assert_eq!(received, Received::Buffered);
        let forged = sign_vote(&chain.chain_id, early, chain.validator(2));
        assert!(d.on_message(ConsensusMsg::Vote(forged), &mut app).is_err());

        d.start(2, keys.clone(), keys, &mut app);
        assert_eq!(d.index(), Some(1));
        // Not height 2's first proposer: when the propose timeout fires it prevotes (nil).
        let timeout = Timeout {
            height: 2,
            round: 0,
            kind: TimeoutKind::Propose,
        };
        let actions = d.on_timeout(timeout, &mut app);
        assert!(
            actions.iter().any(|a| matches!(a,
                Action::Broadcast(ConsensusMsg::Vote(v)) if v.vote.validator == 1 && v.vote.height == 2)),
            "a member of height 2's set must take part: {actions:?}"
        );
    }
}
