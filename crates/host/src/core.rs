//! The consensus host: this node's [`Driver`] against its [`Chain`], with the timers, the
//! block sync and the commit around it, as a deterministic core. It is driven by inputs
//! (a consensus message, blocks from a peer, a peer connecting, work, a tick, the time) that
//! each carry the time ([`Now`]), and answers with [`Effect`]s for the embedding to carry
//! out. `cachetd` wraps it with a thread, libp2p and RocksDB (`node/src/replica.rs`); the
//! simulator drives the very same core over its simulated network and clock.
//!
//! Crash safety: before a proposal or vote leaves, the signer state is stored through
//! [`SignerStorage`] (a synced file in `cachetd`); a restarted validator resumes from it and
//! never signs twice for one step.
//!
//! Catching up: blocks come from peers on request (on connect, when a consensus message
//! shows this node is behind, and every tick), are checked (certificate, links, execution,
//! state root) and committed through the same path as decided blocks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;

use cachet_consensus::driver::{Action, App, Driver, Received, SignerState};
use cachet_consensus::{ConsensusMsg, Timeout, Timeouts};
use cachet_state::{BlockRefusal, ExecutedBlock};
use cachet_storage::{LedgerError, StoreError};
use cachet_types::{Block, CertifiedBlock, Hash, PublicKey, SigningKey, codec};

use crate::chain::{Chain, Committed};
use crate::wire::{consensus_envelope, max_consensus_bytes, open_consensus};

/// A block more than this far ahead of our clock is refused as a proposal.
pub const MAX_CLOCK_DRIFT_MS: u64 = 10_000;

/// How often the embedding calls [`Core::on_tick`]: look for missing blocks, resend this
/// round's messages when nothing was final for two ticks.
pub const TICK_MS: u64 = 1_000;

/// Blocks asked for per sync request.
pub const SYNC_BATCH: u32 = 32;

/// Fewest milliseconds between two sync requests not forced by a tick or a new peer: a
/// burst of "ahead" messages asks once.
const SYNC_SPACING_MS: u64 = 300;

/// The time, as the embedding reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Milliseconds since the Unix epoch: block times and gossip envelopes.
    pub wall_ms: u64,
    /// Milliseconds of a clock that never goes back: timers and ages.
    pub mono_ms: u64,
}

/// Where the signer state goes before a signature leaves: it must be durable when `save`
/// returns.
pub trait SignerStorage: Send {
    /// Stores `state` durably.
    fn save(&mut self, state: &SignerState) -> Result<(), String>;
}

/// What the embedding must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<P> {
    /// Gossip this consensus envelope to every peer.
    Publish(Vec<u8>),
    /// Ask `peer` (any peer if `None`) for certified blocks from `from_height`, at most `max`.
    RequestBlocks {
        /// Whom to ask.
        peer: Option<P>,
        /// The first height wanted.
        from_height: u64,
        /// How many at most.
        max: u32,
    },
    /// Call [`Core::on_time`] at this monotonic time (a timer is due then).
    WakeAt(u64),
    /// A block was committed (decided here or synced).
    Committed(Committed),
    /// A validator signed two different votes for one step.
    Equivocation {
        /// Its index.
        validator: u16,
        /// Height of the votes.
        height: u64,
        /// Round of the votes.
        round: u32,
    },
}

/// Why the core stopped: the node must stop rather than vote on, or serve, a ledger it
/// cannot read or extend.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The store failed.
    #[error("storage failed while {doing}: {error}")]
    Storage {
        /// What the core was doing.
        doing: &'static str,
        /// The failure.
        error: LedgerError,
    },
    /// The store failed while a proposal was checked: no verdict on the block.
    #[error("{0}")]
    Check(String),
    /// A decided block does not commit: a bug or a broken store. Halting beats forking.
    #[error("decided block {height} does not commit: {error}")]
    DecidedRefused {
        /// Its height.
        height: u64,
        /// Why.
        error: LedgerError,
    },
    /// The signer state could not be stored.
    #[error("cannot store the signer state: {0}")]
    Signer(String),
}

fn storage(doing: &'static str) -> impl FnOnce(StoreError) -> HostError {
    move |error| HostError::Storage {
        doing,
        error: LedgerError::Store(error),
    }
}

/// The ledger side of the driver for one call.
struct HostApp<'a> {
    chain: &'a Chain,
    prepared: &'a mut BTreeMap<Hash, ExecutedBlock>,
    signer: &'a mut dyn SignerStorage,
    now: Now,
}

impl App for HostApp<'_> {
    fn build_block(
        &mut self,
        height: u64,
        round: u32,
        proposer: u16,
        allow_empty: bool,
    ) -> Option<Block> {
        match self
            .chain
            .build_proposal(proposer, allow_empty, self.now.wall_ms)
        {
            Ok(Some(executed)) => {
                let block = executed.block.clone();
                self.prepared.insert(block.header.hash(), executed);
                Some(block)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::error!(height, round, %error, "cannot build a block");
                None
            }
        }
    }

    fn validate_block(&mut self, block: &Block) -> Result<bool, String> {
        let height = block.header.height;
        let now = self.now.wall_ms;
        if block.header.time_ms > now.saturating_add(MAX_CLOCK_DRIFT_MS) {
            let refusal = BlockRefusal::FromTheFuture {
                ahead_ms: block.header.time_ms - now,
            };
            tracing::warn!(height, %refusal, "proposed block refused");
            return Ok(false);
        }
        match self.chain.prepare_block(block.clone()) {
            Ok(executed) => {
                self.prepared.insert(block.header.hash(), executed);
                Ok(true)
            }
            Err(error) => match error.refusal() {
                Some(refusal) => {
                    tracing::warn!(height, %refusal, "proposed block refused");
                    Ok(false)
                }
                // Storage or state reads failed: no verdict on the block (a valid block must
                // not be voted nil and blacklisted); the node stops, as on any storage failure.
                None => Err(format!(
                    "cannot check the proposed block at height {height}: {error}"
                )),
            },
        }
    }

    fn has_work(&self) -> bool {
        self.chain.has_work()
    }

    fn persist_signer(&mut self, state: &SignerState) -> Result<(), String> {
        self.signer.save(state)
    }
}

/// How a consensus message from a peer was judged, for the gossip layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgVerdict {
    /// New and valid (or valid for the next height): forward it.
    Accept,
    /// A copy, stale, or from a height this node has yet to reach: do not forward it.
    Ignore,
    /// Malformed or badly signed: it counts against the sender.
    Reject,
}

/// The consensus host of one node; `P` names a peer.
pub struct Core<P> {
    chain: Arc<Chain>,
    driver: Driver,
    prepared: BTreeMap<Hash, ExecutedBlock>,
    signer: Box<dyn SignerStorage>,
    /// Due timers: (monotonic ms, sequence, timeout).
    timers: BinaryHeap<Reverse<(u64, u64, Timeout)>>,
    timer_seq: u64,
    last_final_ms: u64,
    last_sync_ms: Option<u64>,
    /// The catch-up under way: (monotonic ms and height it began at, ms of the last
    /// progress line).
    catching_up: Option<(u64, u64, u64)>,
    /// A validator without its signer state, following until a height is decided here
    /// (see [`Core::rejoin_quietly`]).
    quiet: bool,
    effects: Vec<Effect<P>>,
    now: Now,
}

/// Fewest milliseconds between two catch-up progress lines in the log.
const CATCH_UP_LOG_MS: u64 = 2_000;

impl<P: Clone> Core<P> {
    /// A core for `chain`; `validator` is our validator key (it signs at the heights whose
    /// operator set holds it), none for an observer; `signer` is the stored signer state.
    pub fn new(
        chain: Arc<Chain>,
        validator: Option<SigningKey>,
        signer: SignerState,
        storage: Box<dyn SignerStorage>,
        timeouts: Timeouts,
    ) -> Core<P> {
        let chain_id = chain.ledger().store().chain_id();
        Core {
            driver: Driver::new(chain_id, validator, signer, timeouts),
            chain,
            prepared: BTreeMap::new(),
            signer: storage,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            last_final_ms: 0,
            last_sync_ms: None,
            catching_up: None,
            quiet: false,
            effects: Vec::new(),
            now: Now::default(),
        }
    }

    /// The chain.
    pub fn chain(&self) -> &Arc<Chain> {
        &self.chain
    }

    /// The consensus driver, for status.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// The effects of the calls so far, in order (also after a [`HostError`]: what was done
    /// before the failure was done).
    pub fn take_effects(&mut self) -> Vec<Effect<P>> {
        std::mem::take(&mut self.effects)
    }

    /// When the next timer is due (monotonic ms).
    pub fn next_deadline(&self) -> Option<u64> {
        self.timers.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Largest consensus envelope of this chain.
    pub fn max_message_bytes(&self) -> usize {
        max_consensus_bytes(self.chain.ledger().store().genesis())
    }

    /// Call before [`Core::start`] when this validator's signer state was lost (a new disk,
    /// a restored backup): what it signed before is unknown, so it signs nothing until it
    /// has seen a height decided here, through consensus, after the start, and then only
    /// from two heights later. Why that is enough: the votes that decide a height here were
    /// cast after the start (validators send votes for the height they decide, and resend
    /// only those), by more than a third of honest validators still at that height; so no
    /// later height was decided before the start, and before the loss this validator was
    /// at most at the height after it. Blocks fetched by sync do not count (they may be
    /// old); a peer replaying old votes could feign a decision, which makes this a guard
    /// against a lost file, not against an attacker. A new validator is no exception (it
    /// starts with an empty signer state, which `cachetd init` writes); a validator that
    /// alone is a quorum signs at once (it would wait for itself); a third or more of the
    /// validators rejoining quietly at once halt the chain until they are let sign
    /// (`cachetd --rejoin-at-once`).
    pub fn rejoin_quietly(&mut self) {
        self.quiet = true;
    }

    /// Starts on the height after the tip (resuming the stored signer state: a block this
    /// validator had precommitted before a crash, with a quorum of precommits it holds, is
    /// committed by the time this returns).
    pub fn start(&mut self, now: Now) -> Result<(), HostError> {
        self.now = now;
        self.last_final_ms = now.mono_ms;
        let tip = self
            .chain
            .ledger()
            .store()
            .tip()
            .map_err(storage("reading the tip"))?;
        if self.quiet {
            self.begin_quietly(tip.height)?;
        }
        let actions = self.begin(tip.height + 1)?;
        self.apply(actions)
    }

    /// A gossiped consensus envelope from `from`.
    pub fn on_consensus(
        &mut self,
        data: &[u8],
        from: P,
        now: Now,
    ) -> Result<MsgVerdict, HostError> {
        self.now = now;
        let Some(msg) = open_consensus(data, self.max_message_bytes()) else {
            return Ok(MsgVerdict::Reject);
        };
        self.on_message(msg, from)
    }

    fn on_message(&mut self, msg: ConsensusMsg, from: P) -> Result<MsgVerdict, HostError> {
        match self.with_app(|driver, app| driver.on_message(msg, app)) {
            Ok((received, actions)) => {
                let verdict = match received {
                    Received::Accepted => {
                        self.chain.note_in_step(self.now.mono_ms);
                        MsgVerdict::Accept
                    }
                    Received::Buffered => MsgVerdict::Accept,
                    Received::Duplicate | Received::Stale => MsgVerdict::Ignore,
                    Received::Ahead(height) => {
                        self.chain.note_ahead_message(height, self.now.mono_ms);
                        tracing::debug!(height, "peer is ahead; syncing");
                        self.request_blocks(Some(from), false);
                        MsgVerdict::Ignore
                    }
                };
                self.apply(actions)?;
                Ok(verdict)
            }
            Err(error) => {
                tracing::debug!(%error, "consensus message refused");
                Ok(MsgVerdict::Reject)
            }
        }
    }

    /// Encoded certified blocks `from` sent in answer to a sync request.
    pub fn on_blocks(&mut self, from: P, blocks: &[Vec<u8>], now: Now) -> Result<(), HostError> {
        self.now = now;
        let limit = self.max_message_bytes();
        let store = self.chain.ledger().store();
        let mut tip = store.tip().map_err(storage("reading the tip"))?.height;
        let advanced_from = tip;
        // False once a block of the answer is not applied (malformed, a gap, refused).
        let mut complete = true;
        // The run of blocks that extends the tip, each with its execution if it was
        // proposed to us.
        let mut run = Vec::new();
        let mut next = tip + 1;
        for bytes in blocks {
            let certified: CertifiedBlock = match codec::decode(bytes, limit) {
                Ok(block) => block,
                Err(error) => {
                    tracing::warn!(%error, "peer sent a malformed block");
                    complete = false;
                    break;
                }
            };
            let height = certified.block.header.height;
            if height < next {
                continue;
            }
            if height != next {
                complete = false;
                break;
            }
            next += 1;
            let executed = self.prepared.remove(&certified.block.header.hash());
            run.push((executed, certified));
        }
        let (committed, failure) = self.chain.commit_synced(run);
        for block in committed {
            tip = block.tip.height;
            self.effects.push(Effect::Committed(block));
        }
        match failure {
            None => {}
            Some(error @ (LedgerError::Store(_) | LedgerError::State(_))) => {
                return Err(HostError::Storage {
                    doing: "applying synced blocks",
                    error,
                });
            }
            Some(error) => {
                tracing::warn!(height = tip + 1, %error, "peer sent a block that does not check");
                complete = false;
            }
        }
        // A short answer wholly applied: this node is at the peer's tip.
        if blocks.len() < SYNC_BATCH as usize && complete {
            self.chain.note_in_step(now.mono_ms);
        }
        if tip > advanced_from {
            self.last_final_ms = now.mono_ms;
            self.log_catch_up(advanced_from, tip, blocks.len() < SYNC_BATCH as usize);
            let actions = self.begin(tip + 1)?;
            self.apply(actions)?;
            if blocks.len() == SYNC_BATCH as usize {
                self.request_blocks(Some(from), true);
            }
        }
        Ok(())
    }

    /// A progress line in the log while blocks from peers are applied: height, the height
    /// the network is at (from the traffic ahead, when known), rate and time left; at most
    /// every [`CATCH_UP_LOG_MS`], and once when a short answer ends the catch-up.
    fn log_catch_up(&mut self, from: u64, tip: u64, done: bool) {
        let now = self.now.mono_ms;
        let (started_ms, started_at, last_line) = *self.catching_up.get_or_insert((now, from, 0));
        if !done && now.saturating_sub(last_line) < CATCH_UP_LOG_MS {
            return;
        }
        let seconds = now.saturating_sub(started_ms) as f64 / 1000.0;
        let rate = (tip - started_at) as f64 / seconds.max(1e-3);
        let target = self
            .chain
            .peer_view()
            .ahead_message
            .map(|(height, _)| height.saturating_sub(1))
            .filter(|height| *height > tip);
        match target {
            Some(target) => tracing::info!(
                height = tip,
                target,
                blocks_per_s = rate.round(),
                eta_s = ((target - tip) as f64 / rate.max(1e-3)).round(),
                "catching up from peers"
            ),
            None => tracing::info!(
                height = tip,
                blocks_per_s = rate.round(),
                "caught up from peer"
            ),
        }
        if done {
            self.catching_up = None;
        } else if let Some(state) = &mut self.catching_up {
            state.2 = now;
        }
    }

    /// A peer connected: ask it for blocks.
    pub fn on_peer_connected(&mut self, peer: P, now: Now) {
        self.now = now;
        self.request_blocks(Some(peer), true);
    }

    /// Transactions arrived: a proposer waiting for work may propose.
    pub fn on_work(&mut self, now: Now) -> Result<(), HostError> {
        self.now = now;
        let actions = self.with_app(|driver, app| driver.on_work(app));
        self.apply(actions)
    }

    /// Fires the timers due by `now`.
    pub fn on_time(&mut self, now: Now) -> Result<(), HostError> {
        self.now = now;
        while let Some(Reverse((at, _, timeout))) = self.timers.peek().copied() {
            if at > now.mono_ms {
                break;
            }
            self.timers.pop();
            let actions = self.with_app(|driver, app| driver.on_timeout(timeout, app));
            self.apply(actions)?;
        }
        Ok(())
    }

    /// Every [`TICK_MS`]: asks a peer whether blocks exist that this node lacks (cheap when
    /// there are none); after two ticks without a final block, sends this round's messages
    /// again (peers may have missed them: a restart, a partition); looks for work.
    pub fn on_tick(&mut self, now: Now) -> Result<(), HostError> {
        self.now = now;
        self.on_time(now)?;
        self.request_blocks(None, true);
        if now.mono_ms.saturating_sub(self.last_final_ms) >= 2 * TICK_MS {
            let again = self.driver.rebroadcast();
            self.apply(again)?;
        }
        self.on_work(now)
    }

    fn with_app<T>(&mut self, call: impl FnOnce(&mut Driver, &mut HostApp) -> T) -> T {
        let mut app = HostApp {
            chain: &self.chain,
            prepared: &mut self.prepared,
            signer: &mut *self.signer,
            now: self.now,
        };
        call(&mut self.driver, &mut app)
    }

    /// Whether to rejoin quietly on a chain at `tip` (see [`Core::rejoin_quietly`]).
    fn begin_quietly(&mut self, tip: u64) -> Result<(), HostError> {
        let Some(key) = self.driver.signer_key() else {
            self.quiet = false;
            return Ok(());
        };
        let store = self.chain.ledger().store();
        let next = store
            .operators_at(tip + 1)
            .map_err(storage("reading the operator set"))?;
        if next.len() == 1 && next[0].validator_key == key {
            self.quiet = false;
            tracing::warn!(
                tip,
                "no signer state; signing at once: this validator alone is a quorum"
            );
            return Ok(());
        }
        self.driver.sign_from(u64::MAX);
        tracing::warn!(
            tip,
            "no signer state: following without signing until a height is decided here"
        );
        Ok(())
    }

    /// Forgets what belonged to the previous height (executed proposals, timers) and starts
    /// the driver on `height` with the validator sets of it and the next (from the ledger's
    /// membership record); returns its first actions.
    fn begin(&mut self, height: u64) -> Result<Vec<Action>, HostError> {
        self.prepared.clear();
        self.timers.clear();
        // One read of the membership record for both sets.
        let store = self.chain.ledger().store();
        let membership = store
            .membership()
            .map_err(storage("reading the operator set"))?;
        let keys = |h| -> Vec<PublicKey> {
            let set = membership.at(store.genesis(), h).1;
            set.iter().map(|op| op.validator_key).collect()
        };
        let (validators, next) = (keys(height), keys(height + 1));
        let was = self.driver.index();
        let actions = self.with_app(|driver, app| driver.start(height, validators, next, app));
        let now = self.driver.index();
        if was != now && self.driver.signer_key().is_some() {
            match now {
                Some(index) => tracing::info!(height, index, "validating from this height"),
                None => tracing::info!(height, "not in the operator set at this height; following"),
            }
        }
        Ok(actions)
    }

    fn request_blocks(&mut self, peer: Option<P>, force: bool) {
        let now = self.now.mono_ms;
        if !force
            && self
                .last_sync_ms
                .is_some_and(|last| now.saturating_sub(last) < SYNC_SPACING_MS)
        {
            return;
        }
        self.last_sync_ms = Some(now);
        self.effects.push(Effect::RequestBlocks {
            peer,
            from_height: self.driver.height(),
            max: SYNC_BATCH,
        });
    }

    fn apply(&mut self, actions: Vec<Action>) -> Result<(), HostError> {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Broadcast(msg) => {
                    let envelope = consensus_envelope(self.now.wall_ms, &msg);
                    self.effects.push(Effect::Publish(envelope));
                }
                Action::Schedule { timeout, after_ms } => {
                    self.timer_seq += 1;
                    let at = self.now.mono_ms + after_ms;
                    self.timers.push(Reverse((at, self.timer_seq, timeout)));
                    self.effects.push(Effect::WakeAt(at));
                }
                Action::RoundStarted { height, round } => {
                    self.chain.set_round(round);
                    if round > 0 {
                        tracing::info!(height, round, "new round");
                    }
                }
                Action::Decided(block) => {
                    let hash = block.block.header.hash();
                    let height = block.block.header.height;
                    let executed = self.prepared.remove(&hash);
                    match self.chain.commit_final(executed, *block) {
                        Ok(committed) => self.effects.push(Effect::Committed(committed)),
                        Err(error @ (LedgerError::Store(_) | LedgerError::State(_))) => {
                            return Err(HostError::Storage {
                                doing: "committing",
                                error,
                            });
                        }
                        Err(error) => return Err(HostError::DecidedRefused { height, error }),
                    }
                    self.last_final_ms = self.now.mono_ms;
                    if self.quiet {
                        self.quiet = false;
                        self.driver.sign_from(height + 2);
                        tracing::info!(
                            decided = height,
                            sign_from = height + 2,
                            "rejoined: a height was decided here; signing from two heights on"
                        );
                    }
                    queue.extend(self.begin(height + 1)?);
                }
                Action::Equivocation {
                    validator,
                    height,
                    round,
                } => {
                    tracing::warn!(
                        validator,
                        height,
                        round,
                        "validator signed two different votes"
                    );
                    self.effects.push(Effect::Equivocation {
                        validator,
                        height,
                        round,
                    });
                }
                Action::PersistFailed(error) => return Err(HostError::Signer(error)),
                Action::AppFailed(error) => return Err(HostError::Check(error)),
            }
        }
        Ok(())
    }
}
