//! The consensus thread: runs this node's consensus host ([`Core`], the same code the
//! simulator drives) against the real ledger, network and clock. One thread owns the core;
//! the network task and the API feed it [`Input`]s through a bounded queue; it reads the
//! clocks, fires the core's timers and ticks, and carries out its effects on libp2p.
//!
//! Crash safety: before a proposal or vote leaves, the signer state (height, round, step,
//! lock, own votes) is written to `<data-dir>/signer.state` and synced ([`SignerStore`]); a
//! restarted validator resumes from it and never signs twice for one step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use anyhow::{Context, Result};
use cachet_consensus::Timeouts;
use cachet_consensus::driver::{LockProof, SignerState};
use cachet_host::{Core, Effect, MsgVerdict, SignerStorage, TICK_MS};
use cachet_network::{Command, MessageId, NetworkHandle, Peer, SyncRequest, Topic, Verdict};
use cachet_types::{Hash, SigningKey, codec};

use crate::metrics::StepName;
use crate::node::Node;
use crate::setup::{mono_ms, now};

/// Inputs queued for the consensus thread.
pub const INPUT_QUEUE: usize = 8192;

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

/// The peer ids of the operators' node keys.
pub fn bound_peers(operators: &[cachet_types::Operator]) -> Vec<Peer> {
    operators
        .iter()
        .filter_map(|op| cachet_network::peer_id_of(&op.node_key.0))
        .collect()
}

/// Largest consensus envelope.
pub fn max_consensus_bytes(node: &Node) -> usize {
    cachet_host::wire::max_consensus_bytes(node.ledger().store().genesis())
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

/// Largest `signer.state` (a position, a lock and at most four votes: two rounds' two).
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

    /// Reads the signer state; `None` when there is no file (nothing signed from this data
    /// directory, or the file was lost). A state file that does not decode
    /// stops the node: signing without knowing what was signed could equivocate. A lock
    /// file that does not match is ignored with a warning.
    pub fn load(&mut self, max_lock_bytes: usize) -> Result<Option<SignerState>> {
        let path = &self.state_path;
        let mut state = match std::fs::read(path) {
            Ok(bytes) => {
                codec::decode::<SignerState>(&bytes, MAX_SIGNER_STATE_BYTES).map_err(|e| {
                    anyhow::anyhow!(
                        "{} is damaged ({e}); restore it, or remove it and the validator \
                         rejoins quietly (it signs again once it has seen a height decided)",
                        path.display()
                    )
                })?
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
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
        Ok(Some(state))
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

impl SignerStorage for SignerStore {
    fn save(&mut self, state: &SignerState) -> Result<(), String> {
        SignerStore::save(self, state).map_err(|e| e.to_string())
    }
}

/// The consensus thread's state.
pub struct Replica {
    core: Core<Peer>,
    net: NetworkHandle,
    /// The operators' node keys the network was last told of.
    bound: Vec<cachet_types::PublicKey>,
    node: Arc<Node>,
    /// The consensus position last seen (height, round, step) and since when (mono ms).
    position: ((u64, u32, cachet_consensus::Step), u64),
}

impl Replica {
    /// A replica for `node`; `validator` is our validator key (it signs at the heights whose
    /// operator set holds it), none for an observer. A validator without a signer state
    /// rejoins quietly ([`Core::rejoin_quietly`]) unless `rejoin_at_once`.
    pub fn new(
        node: Arc<Node>,
        net: NetworkHandle,
        validator: Option<SigningKey>,
        data_dir: &Path,
        timeouts: Timeouts,
        rejoin_at_once: bool,
    ) -> Result<Replica> {
        let mut store = SignerStore::new(data_dir);
        let loaded = store.load(2 * max_consensus_bytes(&node))?;
        let quiet = loaded.is_none() && validator.is_some() && !rejoin_at_once;
        let mut core = Core::new(
            node.chain().clone(),
            validator,
            loaded.unwrap_or_default(),
            Box::new(store),
            timeouts,
        );
        if quiet {
            core.rejoin_quietly();
        }
        let bound = node
            .ledger()
            .store()
            .operators_at(node.ledger().store().tip()?.height + 1)?
            .iter()
            .map(|op| op.node_key)
            .collect();
        let position = (
            (
                core.driver().height(),
                core.driver().round(),
                core.driver().step(),
            ),
            mono_ms(),
        );
        Ok(Replica {
            core,
            net,
            bound,
            node,
            position,
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
        let started = self.core.start(now());
        self.carry_out()?;
        started?;
        let _ = resumed.send(());
        let mut next_tick = mono_ms() + TICK_MS;
        loop {
            let wake = self
                .core
                .next_deadline()
                .map_or(next_tick, |at| at.min(next_tick));
            let wait = Duration::from_millis(wake.saturating_sub(mono_ms()));
            let result = match inputs.recv_timeout(wait) {
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Ok(input) => self.input(input),
                Err(RecvTimeoutError::Timeout) => Ok(()),
            };
            let result = result.and_then(|()| {
                let now = now();
                if now.mono_ms >= next_tick {
                    next_tick = now.mono_ms + TICK_MS;
                    self.core.on_tick(now)
                } else {
                    self.core.on_time(now)
                }
            });
            // What the core did before a failure was done: carry it out, then stop.
            self.carry_out()?;
            result?;
        }
    }

    fn input(&mut self, input: Input) -> Result<(), cachet_host::HostError> {
        match input {
            Input::Consensus { data, id, from } => {
                let verdict = match self.core.on_consensus(&data, from, now())? {
                    MsgVerdict::Accept => Verdict::Accept,
                    MsgVerdict::Ignore => Verdict::Ignore,
                    MsgVerdict::Reject => Verdict::Reject,
                };
                self.net.send(Command::Validated { id, from, verdict });
                Ok(())
            }
            Input::Blocks { from, blocks } => self.core.on_blocks(from, &blocks, now()),
            Input::PeerConnected(peer) => {
                self.core.on_peer_connected(peer, now());
                Ok(())
            }
            Input::Work => self.core.on_work(now()),
            Input::Stop => Ok(()),
        }
    }

    /// Times the consensus step that just ended, if one did.
    fn time_step(&mut self) {
        let driver = self.core.driver();
        let now = (driver.height(), driver.round(), driver.step());
        let (before, since) = self.position;
        if now != before {
            let at = mono_ms();
            let step = match before.2 {
                cachet_consensus::Step::Propose => StepName::Propose,
                cachet_consensus::Step::Prevote => StepName::Prevote,
                cachet_consensus::Step::Precommit => StepName::Precommit,
            };
            self.node
                .metrics_registry()
                .step(step, Duration::from_millis(at.saturating_sub(since)));
            self.position = (now, at);
        }
    }

    /// Carries out the core's effects on the network.
    fn carry_out(&mut self) -> Result<()> {
        self.time_step();
        for effect in self.core.take_effects() {
            match effect {
                Effect::Publish(envelope) => {
                    self.node.metrics_registry().traffic(
                        "consensus",
                        "out",
                        1,
                        envelope.len() as u64,
                    );
                    self.net.send(Command::Publish(Topic::Consensus, envelope));
                }
                Effect::RequestBlocks {
                    peer,
                    from_height,
                    max,
                } => {
                    self.net.send(Command::RequestBlocks {
                        peer,
                        request: SyncRequest { from_height, max },
                    });
                }
                Effect::Committed(_) => self.rebind()?,
                // The loop waits for the core's next deadline; the core logged the
                // equivocation.
                Effect::WakeAt(_) | Effect::Equivocation { .. } => {}
            }
        }
        Ok(())
    }

    /// After a commit: if the operators' node keys of the next height changed (a member
    /// joined, left or rotated its node key), tells the network.
    fn rebind(&mut self) -> Result<()> {
        let store = self.core.chain().ledger().store();
        let operators = store.operators_at(store.tip()?.height + 1)?;
        let keys: Vec<cachet_types::PublicKey> = operators.iter().map(|op| op.node_key).collect();
        if keys != self.bound {
            tracing::info!(operators = keys.len(), "operators' node identities changed");
            self.net.send(Command::SetBound(bound_peers(&operators)));
            self.bound = keys;
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
    use cachet_types::{Block, BlockHeader, VoteKind};

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
        assert_eq!(store.load(1 << 20).unwrap(), None);
        let state = locked_state(&chain, &block(&chain, 1), 0);
        store.save(&state).unwrap();
        let mut reopened = SignerStore::new(dir.path());
        assert_eq!(reopened.load(1 << 20).unwrap(), Some(state));
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
        let loaded = SignerStore::new(dir.path()).load(1 << 20).unwrap().unwrap();
        assert_eq!(loaded.locked, state.locked);
        assert_eq!(loaded.lock_proof, None);

        std::fs::write(dir.path().join("signer.state"), b"not a signer state").unwrap();
        let error = SignerStore::new(dir.path()).load(1 << 20).unwrap_err();
        assert!(error.to_string().contains("is damaged"), "{error}");
    }
}
