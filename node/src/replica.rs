//! The consensus thread: runs this node's [`Driver`] against the real ledger, network and
//! clock. One thread owns the driver; the network task and the API feed it [`Input`]s
//! through a bounded queue, and it keeps its own timers.
//!
//! Crash safety: before a proposal or vote leaves, the signer state (height, round, step,
//! lock, own votes) is written to `<data-dir>/signer.state` and synced ([`SignerStore`]); a
//! restarted validator resumes from it and never signs twice for one step.
//!
//! Catching up: blocks come from peers by request-response (on connect, when a consensus
//! message shows this node is behind, and every tick), are checked (certificate, links,
//! execution, state root) and committed through the same path as decided blocks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cachet_consensus::driver::{Action, App, Driver, LockProof, Received, SignerState};
use cachet_consensus::{ConsensusMsg, Timeout, Timeouts};
use cachet_network::{Command, MessageId, NetworkHandle, Peer, SyncRequest, Topic, Verdict};
use cachet_state::{BlockRefusal, ExecutedBlock};
use cachet_storage::LedgerError;
use cachet_types::{Block, CertifiedBlock, Hash, SigningKey, codec};

use crate::node::Node;
use crate::setup::now_ms;

/// Inputs queued for the consensus thread.
pub const INPUT_QUEUE: usize = 8192;

/// A block more than this far ahead of our clock is refused as a proposal.
pub const MAX_CLOCK_DRIFT_MS: u64 = 10_000;

/// How often the thread looks for missing blocks and resends its own messages.
const TICK: Duration = Duration::from_millis(1_000);

/// Blocks asked for per sync request.
const SYNC_BATCH: u32 = 32;

/// What the consensus thread is told.
#[derive(Debug)]
pub enum Input {
    /// A gossiped consensus message (envelope bytes).
    Consensus {
        /// Envelope bytes.
        data: Vec<u8>,
        /// Gossip id, for the verdict.
        id: MessageId,
        /// Propagation source.
        from: Peer,
    },
    /// Blocks a peer sent in answer to a sync request.
    Blocks {
        /// The peer.
        from: Peer,
        /// Encoded certified blocks.
        blocks: Vec<Vec<u8>>,
    },
    /// A peer connected: ask it for blocks.
    PeerConnected(Peer),
    /// Transactions arrived.
    Work,
    /// Stop after the current step.
    Stop,
}

/// Consensus gossip carries the sender's clock in front of the message: resending the same
/// message later then makes a new gossip message (gossipsub drops exact repeats for a while),
/// and receivers deduplicate by content.
fn envelope(msg: &ConsensusMsg) -> Vec<u8> {
    codec::encode(&(now_ms(), msg))
}

fn open_envelope(data: &[u8], limit: usize) -> Option<ConsensusMsg> {
    codec::decode::<(u64, ConsensusMsg)>(data, limit)
        .ok()
        .map(|(_, msg)| msg)
}

/// Largest consensus envelope: a block plus the message's own fields.
pub fn max_consensus_bytes(node: &Node) -> usize {
    node.ledger().store().genesis().params.max_block_bytes as usize + 64 * 1024
}

/// The signer state on disk, in two files of the data directory: `signer.state` (position,
/// lock and own votes; small, rewritten and synced before every signature) and
/// `signer.lock` (the locked block and its polka; rewritten only when the lock changes, since
/// a block may be megabytes). The lock file is written first, so after a crash between the
/// two writes the state names an older lock than the file holds and the file is ignored:
/// that loses only the ability to re-propose the old locked block, never a signature's
/// record.
pub struct SignerStore {
    state_path: PathBuf,
    lock_path: PathBuf,
    /// Block hash of the lock proof on disk.
    lock_written: Option<Hash>,
}

/// Largest `signer.state` (a position, a lock and at most two votes).
const MAX_SIGNER_STATE_BYTES: usize = 64 * 1024;

impl SignerStore {
    /// The store in `data_dir`.
    pub fn new(data_dir: &Path) -> SignerStore {
        SignerStore {
            state_path: data_dir.join("signer.state"),
            lock_path: data_dir.join("signer.lock"),
            lock_written: None,
        }
    }

    /// Reads the signer state; none yet is the default. A state file that does not decode
    /// stops the node: signing without knowing what was signed could equivocate. A lock
    /// file that does not match is ignored with a warning.
    pub fn load(&mut self, max_lock_bytes: usize) -> Result<SignerState> {
        let path = &self.state_path;
        let mut state = match std::fs::read(path) {
            Ok(bytes) => {
                codec::decode::<SignerState>(&bytes, MAX_SIGNER_STATE_BYTES).map_err(|e| {
                    anyhow::anyhow!(
                        "{} is damaged ({e}); restore it or, if this validator has certainly \
                         signed nothing at the current height, remove it",
                        path.display()
                    )
                })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SignerState::default());
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        if let Some((_, hash)) = state.locked {
            let proof = std::fs::read(&self.lock_path)
                .ok()
                .and_then(|bytes| codec::decode::<LockProof>(&bytes, max_lock_bytes).ok());
            match proof {
                Some(proof) if proof.block.header.hash() == hash => {
                    self.lock_written = Some(hash);
                    state.lock_proof = Some(proof);
                }
                _ => tracing::warn!(
                    "{} does not hold the locked block; this validator cannot propose it again",
                    self.lock_path.display()
                ),
            }
        }
        Ok(state)
    }

    /// Stores `state` durably.
    pub fn save(&mut self, state: &SignerState) -> std::io::Result<()> {
        if let Some(proof) = &state.lock_proof {
            let hash = proof.block.header.hash();
            if self.lock_written != Some(hash) {
                write_synced(&self.lock_path, &codec::encode(proof))?;
                self.lock_written = Some(hash);
            }
        }
        let small = SignerState {
            lock_proof: None,
            ..state.clone()
        };
        write_synced(&self.state_path, &codec::encode(&small))
    }
}

/// Writes a file durably: temporary file, sync, rename, sync the directory.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The ledger side of the driver, over the real node.
struct NodeApp<'a> {
    node: &'a Node,
    prepared: &'a mut BTreeMap<Hash, ExecutedBlock>,
    signer: &'a mut SignerStore,
}

impl App for NodeApp<'_> {
    fn build_block(
        &mut self,
        height: u64,
        round: u32,
        proposer: u16,
        allow_empty: bool,
    ) -> Option<Block> {
        match self.node.build_proposal(proposer, allow_empty) {
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
        let now = now_ms();
        if block.header.time_ms > now.saturating_add(MAX_CLOCK_DRIFT_MS) {
            let refusal = BlockRefusal::FromTheFuture {
                ahead_ms: block.header.time_ms - now,
            };
            tracing::warn!(height, %refusal, "proposed block refused");
            return Ok(false);
        }
        match self.node.prepare_block(block.clone()) {
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
        self.node.has_work()
    }

    fn persist_signer(&mut self, state: &SignerState) -> Result<(), String> {
        self.signer.save(state).map_err(|e| e.to_string())
    }
}

/// The consensus thread's state.
pub struct Replica {
    node: Arc<Node>,
    net: NetworkHandle,
    driver: Driver,
    prepared: BTreeMap<Hash, ExecutedBlock>,
    signer: SignerStore,
    timers: BinaryHeap<Reverse<(Instant, u64, Timeout)>>,
    timer_seq: u64,
    last_final: Instant,
    last_sync: Instant,
}

impl Replica {
    /// A replica for `node`; `validator` is our validator key (it signs at the heights whose
    /// operator set holds it), none for an observer.
    pub fn new(
        node: Arc<Node>,
        net: NetworkHandle,
        validator: Option<SigningKey>,
        data_dir: &Path,
        timeouts: Timeouts,
    ) -> Result<Replica> {
        let mut store = SignerStore::new(data_dir);
        let signer = store.load(2 * max_consensus_bytes(&node))?;
        let chain_id = node.ledger().store().chain_id();
        let driver = Driver::new(chain_id, validator, signer, timeouts);
        let now = Instant::now();
        Ok(Replica {
            node,
            net,
            driver,
            prepared: BTreeMap::new(),
            signer: store,
            timers: BinaryHeap::new(),
            timer_seq: 0,
            last_final: now,
            // The first request may go at once.
            last_sync: now.checked_sub(TICK).unwrap_or(now),
        })
    }

    /// Runs until [`Input::Stop`] or until every sender is gone. An error is fatal: storage
    /// failed, and the node must stop rather than serve a ledger it cannot extend.
    ///
    /// `resumed` is told once the signer state has been resumed: a block this validator
    /// had precommitted before a crash, with a quorum of precommits it holds (a single
    /// validator's own), is committed by then, so the API, which opens after it, never shows
    /// the ledger from before that block.
    pub fn run(
        mut self,
        inputs: Receiver<Input>,
        resumed: tokio::sync::oneshot::Sender<()>,
    ) -> Result<()> {
        let tip = self.node.ledger().store().tip()?;
        self.start(tip.height + 1)?;
        let _ = resumed.send(());
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let next_timer = self.timers.peek().map(|Reverse((at, _, _))| *at);
            let wake = next_timer.map_or(next_tick, |t| t.min(next_tick));
            match inputs.recv_timeout(wake.saturating_duration_since(now)) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(input) => self.input(input)?,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            while let Some(Reverse((at, _, timeout))) = self.timers.peek().copied() {
                if at > now {
                    break;
                }
                self.timers.pop();
                let actions = self.with_app(|driver, app| driver.on_timeout(timeout, app));
                self.apply(actions)?;
            }
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick()?;
            }
        }
    }

    fn with_app<T>(&mut self, call: impl FnOnce(&mut Driver, &mut NodeApp) -> T) -> T {
        let mut app = NodeApp {
            node: &self.node,
            prepared: &mut self.prepared,
            signer: &mut self.signer,
        };
        call(&mut self.driver, &mut app)
    }

    fn start(&mut self, height: u64) -> Result<()> {
        let actions = self.begin(height)?;
        self.apply(actions)
    }

    /// Forgets what belonged to the previous height (executed proposals, timers) and starts
    /// the driver on `height` with the validator sets of it and the next (from the ledger's
    /// membership record); returns its first actions.
    fn begin(&mut self, height: u64) -> Result<Vec<Action>> {
        self.prepared.clear();
        self.timers.clear();
        // One read of the membership record for both sets.
        let store = self.node.ledger().store();
        let membership = store.membership()?;
        let keys = |h| -> Vec<_> {
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

    fn input(&mut self, input: Input) -> Result<()> {
        match input {
            Input::Consensus { data, id, from } => {
                let limit = max_consensus_bytes(&self.node);
                let Some(msg) = open_envelope(&data, limit) else {
                    self.verdict(id, from, Verdict::Reject);
                    return Ok(());
                };
                let result = self.with_app(|driver, app| driver.on_message(msg, app));
                match result {
                    Ok((received, actions)) => {
                        let verdict = match received {
                            Received::Accepted | Received::Buffered => Verdict::Accept,
                            Received::Duplicate | Received::Stale => Verdict::Ignore,
                            Received::Ahead(height) => {
                                tracing::debug!(height, peer = %from, "peer is ahead; syncing");
                                self.request_blocks(Some(from), false);
                                Verdict::Ignore
                            }
                        };
                        self.verdict(id, from, verdict);
                        self.apply(actions)?;
                    }
                    Err(error) => {
                        tracing::debug!(peer = %from, %error, "consensus message refused");
                        self.verdict(id, from, Verdict::Reject);
                    }
                }
            }
            Input::Blocks { from, blocks } => self.apply_blocks(from, blocks)?,
            Input::PeerConnected(peer) => self.request_blocks(Some(peer), true),
            Input::Work => {
                let actions = self.with_app(|driver, app| driver.on_work(app));
                self.apply(actions)?;
            }
            Input::Stop => {}
        }
        Ok(())
    }

    fn verdict(&self, id: MessageId, from: Peer, verdict: Verdict) {
        self.net.send(Command::Validated { id, from, verdict });
    }

    fn request_blocks(&mut self, peer: Option<Peer>, force: bool) {
        // At most a few requests a second: a burst of "ahead" messages asks once.
        if !force && self.last_sync.elapsed() < Duration::from_millis(300) {
            return;
        }
        self.last_sync = Instant::now();
        let from_height = self.driver.height();
        self.net.send(Command::RequestBlocks {
            peer,
            request: SyncRequest {
                from_height,
                max: SYNC_BATCH,
            },
        });
    }

    fn apply_blocks(&mut self, from: Peer, blocks: Vec<Vec<u8>>) -> Result<()> {
        let limit = max_consensus_bytes(&self.node);
        let count = blocks.len();
        let mut tip = self.node.ledger().store().tip()?.height;
        let advanced_from = tip;
        for bytes in blocks {
            let certified: CertifiedBlock = match codec::decode(&bytes, limit) {
                Ok(block) => block,
                Err(error) => {
                    tracing::warn!(peer = %from, %error, "peer sent a malformed block");
                    break;
                }
            };
            let height = certified.block.header.height;
            if height <= tip {
                continue;
            }
            if height != tip + 1 {
                break;
            }
            // Executed already if it was proposed to us.
            let executed = self.prepared.remove(&certified.block.header.hash());
            match self.node.commit_final(executed, certified) {
                Ok(new_tip) => tip = new_tip.height,
                Err(error @ (LedgerError::Store(_) | LedgerError::State(_))) => {
                    return Err(error).context("storage failed while applying synced blocks");
                }
                Err(error) => {
                    tracing::warn!(peer = %from, height, %error, "peer sent a block that does not check");
                    break;
                }
            }
        }
        if tip > advanced_from {
            self.last_final = Instant::now();
            tracing::info!(height = tip, peer = %from, "caught up from peer");
            self.start(tip + 1)?;
            if count == SYNC_BATCH as usize {
                self.request_blocks(Some(from), true);
            }
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        // Ask someone whether blocks exist that we lack (cheap when there are none).
        self.request_blocks(None, true);
        if self.last_final.elapsed() >= 2 * TICK {
            // No progress for a while: peers may have missed our messages (a restart, a
            // partition); send this round's again.
            let again = self.driver.rebroadcast();
            self.apply(again)?;
        }
        let actions = self.with_app(|driver, app| driver.on_work(app));
        self.apply(actions)
    }

    fn apply(&mut self, actions: Vec<Action>) -> Result<()> {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Broadcast(msg) => {
                    self.net
                        .send(Command::Publish(Topic::Consensus, envelope(&msg)));
                }
                Action::Schedule { timeout, after_ms } => {
                    self.timer_seq += 1;
                    let at = Instant::now() + Duration::from_millis(after_ms);
                    self.timers.push(Reverse((at, self.timer_seq, timeout)));
                }
                Action::RoundStarted { height, round } => {
                    self.node.set_round(round);
                    if round > 0 {
                        tracing::info!(height, round, peers = self.net.peers(), "new round");
                    }
                }
                Action::Decided(block) => {
                    let hash = block.block.header.hash();
                    let height = block.block.header.height;
                    let executed = self.prepared.remove(&hash);
                    match self.node.commit_final(executed, *block) {
                        Ok(_) => {}
                        Err(error @ (LedgerError::Store(_) | LedgerError::State(_))) => {
                            return Err(error).context("storage failed while committing");
                        }
                        Err(error) => {
                            // A decided block that does not commit means a bug or a broken
                            // store: halting beats forking.
                            bail!("decided block {height} does not commit: {error}");
                        }
                    }
                    self.last_final = Instant::now();
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
                }
                Action::PersistFailed(error) => {
                    bail!("cannot store the signer state: {error}");
                }
                Action::AppFailed(error) => {
                    bail!("{error}");
                }
            }
        }
        Ok(())
    }
}

/// Hands an input to the consensus thread without blocking; false if its queue is full.
pub fn offer(inputs: &SyncSender<Input>, input: Input) -> bool {
    match inputs.try_send(input) {
        Ok(()) => true,
        Err(TrySendError::Full(_)) => false,
        Err(TrySendError::Disconnected(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_consensus::{SignedVote, Vote};
    use cachet_testkit::TestChain;
    use cachet_types::{BlockHeader, VoteKind};

    fn block(chain: &TestChain, time_ms: u64) -> Block {
        Block {
            header: BlockHeader {
                chain_id: chain.chain_id,
                height: 3,
                prev_hash: chain.chain_id,
                time_ms,
                proposer: 0,
                tx_count: 0,
                tx_root: Hash::ZERO,
                state_root: Hash::ZERO,
            },
            txs: Vec::new(),
        }
    }

    fn locked_state(chain: &TestChain, block: &Block, round: u32) -> SignerState {
        let hash = block.header.hash();
        let vote = |validator: u16| {
            cachet_consensus::messages::sign_vote(
                &chain.chain_id,
                Vote {
                    kind: VoteKind::Prevote,
                    height: 3,
                    round: 0,
                    block_hash: Some(hash),
                    validator,
                },
                chain.validator(usize::from(validator)),
            )
        };
        let prevotes: Vec<SignedVote> = (0..3).map(vote).collect();
        SignerState {
            height: 3,
            round,
            step: 3,
            locked: Some((0, hash)),
            votes: vec![prevotes[0]],
            lock_proof: Some(LockProof {
                block: block.clone(),
                prevotes,
            }),
        }
    }

    #[test]
    fn the_signer_state_survives_a_restart_with_its_lock() {
        let chain = TestChain::new(4);
        let dir = tempfile::tempdir().unwrap();
        let mut store = SignerStore::new(dir.path());
        assert_eq!(store.load(1 << 20).unwrap(), SignerState::default());
        let state = locked_state(&chain, &block(&chain, 1), 0);
        store.save(&state).unwrap();
        let mut reopened = SignerStore::new(dir.path());
        assert_eq!(reopened.load(1 << 20).unwrap(), state);
    }

    #[test]
    fn the_locked_block_is_written_once_per_lock() {
        let chain = TestChain::new(4);
        let dir = tempfile::tempdir().unwrap();
        let mut store = SignerStore::new(dir.path());
        let first = block(&chain, 1);
        store.save(&locked_state(&chain, &first, 0)).unwrap();
        std::fs::remove_file(dir.path().join("signer.lock")).unwrap();
        // Later signatures under the same lock do not rewrite the block...
        store.save(&locked_state(&chain, &first, 1)).unwrap();
        assert!(!dir.path().join("signer.lock").exists());
        // ...a new lock does.
        store
            .save(&locked_state(&chain, &block(&chain, 2), 2))
            .unwrap();
        assert!(dir.path().join("signer.lock").exists());
    }

    #[test]
    fn a_damaged_state_stops_the_node_and_a_stale_lock_file_is_ignored() {
        let chain = TestChain::new(4);
        let dir = tempfile::tempdir().unwrap();
        let mut store = SignerStore::new(dir.path());
        let state = locked_state(&chain, &block(&chain, 1), 0);
        store.save(&state).unwrap();
        // The lock file holds another block (a crash between the two writes).
        let other = LockProof {
            block: block(&chain, 9),
            prevotes: Vec::new(),
        };
        std::fs::write(dir.path().join("signer.lock"), codec::encode(&other)).unwrap();
        let loaded = SignerStore::new(dir.path()).load(1 << 20).unwrap();
        assert_eq!(loaded.locked, state.locked);
        assert_eq!(loaded.lock_proof, None);

        std::fs::write(dir.path().join("signer.state"), b"not a signer state").unwrap();
        let error = SignerStore::new(dir.path()).load(1 << 20).unwrap_err();
        assert!(error.to_string().contains("is damaged"), "{error}");
    }
}
