//! The consensus core: four cores over the in-memory store, wired to each other by a loop
//! that carries their effects, decide blocks; a core whose store fails while it checks a
//! proposal stops without voting, and the others still decide the block; a validator that
//! lost its signer state signs nothing until two heights after one decided with it back.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cachet_consensus::driver::SignerState;
use cachet_consensus::messages::proposer;
use cachet_consensus::{ConsensusMsg, Timeouts};
use cachet_host::wire::open_consensus;
use cachet_host::{Chain, Core, Effect, HostError, Mempool, NoHooks, Now, SignerStorage};
use cachet_storage::{Backend, Ledger, Store};
use cachet_testkit::{FlakyBackend, TestChain, TxFactory, issue_record};
use cachet_types::TxBody;

/// A signer state kept in memory (synced at once, as far as the test is concerned).
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<SignerState>>);

impl SignerStorage for Kept {
    fn save(&mut self, state: &SignerState) -> Result<(), String> {
        *self.0.lock().unwrap() = state.clone();
        Ok(())
    }
}

/// Validator `index`'s core over the store on `disk`, with the signer state in `kept`.
fn boot(
    chain: &TestChain,
    index: usize,
    disk: &Arc<FlakyBackend>,
    kept: &Kept,
    timeouts: Timeouts,
) -> Core<usize> {
    let backend: Arc<dyn Backend> = disk.clone();
    let store = Store::with_backend(backend, &chain.genesis).unwrap();
    let ledger = Arc::new(Chain::new(
        Ledger::new(store),
        Mempool::new(100, 100),
        Box::new(NoHooks),
    ));
    Core::new(
        ledger,
        Some(chain.validator(index).clone()),
        kept.0.lock().unwrap().clone(),
        Box::new(kept.clone()),
        timeouts,
    )
}

struct Net {
    cores: Vec<Core<usize>>,
    disks: Vec<Arc<FlakyBackend>>,
    signers: Vec<Kept>,
    /// (from, envelope) in flight.
    wire: VecDeque<(usize, Vec<u8>)>,
    stopped: Vec<Option<HostError>>,
    /// The heights of the messages each core published.
    sent: Vec<Vec<u64>>,
    now: Now,
    timeouts: Timeouts,
}

impl Net {
    fn new(chain: &TestChain) -> Net {
        let timeouts = Timeouts {
            propose_ms: 1_000,
            prevote_ms: 500,
            precommit_ms: 500,
            per_round_ms: 500,
            max_ms: 10_000,
        };
        let mut net = Net {
            cores: Vec::new(),
            disks: Vec::new(),
            signers: Vec::new(),
            wire: VecDeque::new(),
            stopped: Vec::new(),
            sent: Vec::new(),
            timeouts,
            now: Now {
                wall_ms: chain.genesis.genesis_time_ms + 1_000,
                mono_ms: 1_000,
            },
        };
        for index in 0..chain.genesis.operators.len() {
            let disk = Arc::new(FlakyBackend::default());
            let kept = Kept::default();
            let mut core = boot(chain, index, &disk, &kept, timeouts);
            core.start(net.now).unwrap();
            net.cores.push(core);
            net.disks.push(disk);
            net.signers.push(kept);
            net.stopped.push(None);
            net.sent.push(Vec::new());
        }
        net.collect();
        net
    }

    fn collect(&mut self) {
        for (from, core) in self.cores.iter_mut().enumerate() {
            for effect in core.take_effects() {
                if let Effect::Publish(envelope) = effect {
                    let msg = open_consensus(&envelope, usize::MAX).expect("an envelope");
                    self.sent[from].push(msg.height());
                    self.wire.push_back((from, envelope));
                }
            }
        }
    }

    /// Delivers everything in flight (and what it causes) to every running core but the
    /// sender; `before` runs before each delivery to a core.
    fn run(&mut self, mut before: impl FnMut(usize, &ConsensusMsg, &Net) -> bool) {
        while let Some((from, envelope)) = self.wire.pop_front() {
            let msg = open_consensus(&envelope, usize::MAX).expect("an envelope");
            for to in 0..self.cores.len() {
                if to == from || self.stopped[to].is_some() {
                    continue;
                }
                let fail_reads = before(to, &msg, self);
                self.disks[to].fail_reads(fail_reads);
                let result = self.cores[to].on_consensus(&envelope, from, self.now);
                self.disks[to].fail_reads(false);
                if let Err(error) = result {
                    self.stopped[to] = Some(error);
                }
            }
            self.collect();
        }
    }

    /// `node` restarts on its store with its signer state lost: a new core that rejoins
    /// quietly.
    fn restart_without_signer_state(&mut self, chain: &TestChain, node: usize) {
        self.signers[node] = Kept::default();
        let mut core = boot(
            chain,
            node,
            &self.disks[node],
            &self.signers[node],
            self.timeouts,
        );
        core.rejoin_quietly();
        core.start(self.now).unwrap();
        self.cores[node] = core;
        self.sent[node].clear();
        self.collect();
    }

    fn height(&self, node: usize) -> u64 {
        self.cores[node]
            .chain()
            .ledger()
            .store()
            .tip()
            .unwrap()
            .height
    }

    fn submit(&mut self, chain: &TestChain, factory: &mut TxFactory, id: &str) {
        let tx = factory.sign(
            chain.issuer(0),
            TxBody::CreateIssue {
                record: issue_record(id, "AT-POST", 10),
            },
        );
        for core in &mut self.cores {
            core.chain()
                .submit(&tx.to_bytes(), self.now.mono_ms)
                .unwrap();
            core.on_work(self.now).unwrap();
        }
        self.collect();
    }
}

#[test]
fn four_cores_decide_a_block_and_commit_it_everywhere() {
    let chain = TestChain::new(4);
    let mut factory = TxFactory::new(chain.chain_id);
    let mut net = Net::new(&chain);
    net.submit(&chain, &mut factory, "AT-2026-001");
    net.run(|_, _, _| false);
    for node in 0..4 {
        assert_eq!(net.height(node), 1, "node {node}");
        assert!(net.stopped[node].is_none());
        assert_eq!(
            net.signers[node].0.lock().unwrap().height,
            1,
            "signer state stored"
        );
    }
    let roots: Vec<_> = (0..4)
        .map(|n| {
            net.cores[n]
                .chain()
                .ledger()
                .store()
                .tip()
                .unwrap()
                .state_root
        })
        .collect();
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
    // The next height decides too, with the next proposer.
    net.submit(&chain, &mut factory, "AT-2026-002");
    net.run(|_, _, _| false);
    assert!((0..4).all(|node| net.height(node) == 2));
}

#[test]
fn a_store_that_fails_while_a_proposal_is_checked_stops_the_core_without_a_vote() {
    let chain = TestChain::new(4);
    let mut factory = TxFactory::new(chain.chain_id);
    let mut net = Net::new(&chain);
    let leader = usize::from(proposer(1, 0, 4));
    let victim = (leader + 1) % 4;
    net.submit(&chain, &mut factory, "AT-2026-001");
    let mut proposal = None;
    let mut votes = Vec::new();
    net.run(|to, msg, _| {
        if let ConsensusMsg::Vote(vote) = msg
            && vote.vote.validator == victim as u16
        {
            votes.push(vote.vote);
        }
        let fail = to == victim && matches!(msg, ConsensusMsg::Proposal { .. });
        if fail {
            proposal = Some(msg.height());
        }
        fail
    });
    assert_eq!(proposal, Some(1));
    assert!(
        matches!(net.stopped[victim], Some(HostError::Check(_))),
        "{:?}",
        net.stopped[victim]
    );
    // No vote at all: a failed read is no verdict on the block (a nil prevote would be).
    assert!(votes.is_empty(), "the core voted: {votes:?}");
    assert!(net.signers[victim].0.lock().unwrap().votes.is_empty());
    // The three others are a quorum: the valid block is decided.
    for node in (0..4).filter(|n| *n != victim) {
        assert_eq!(net.height(node), 1, "node {node}");
    }
}

#[test]
fn a_validator_that_lost_its_signer_state_signs_from_two_heights_after_one_decided_with_it() {
    let chain = TestChain::new(4);
    let mut factory = TxFactory::new(chain.chain_id);
    let mut net = Net::new(&chain);
    net.submit(&chain, &mut factory, "AT-2026-001");
    net.run(|_, _, _| false);
    assert!((0..4).all(|node| net.height(node) == 1));
    // The validator that proposes at height 4 (none of heights 2 and 3, which it only
    // follows: the loop fires no timers, so a silent proposer would stall them).
    let quiet = usize::from(proposer(4, 0, 4));
    assert!(
        [2, 3]
            .iter()
            .all(|h| usize::from(proposer(*h, 0, 4)) != quiet)
    );
    net.restart_without_signer_state(&chain, quiet);
    assert!(net.sent[quiet].is_empty(), "{:?}", net.sent[quiet]);
    // Height 2 is decided with it back (by the three others' votes), height 3 too; it
    // signs nothing at either, and nothing of its signer state is stored.
    for (height, id) in [(2, "AT-2026-002"), (3, "AT-2026-003")] {
        net.submit(&chain, &mut factory, id);
        net.run(|_, _, _| false);
        assert!(
            (0..4).all(|node| net.height(node) == height),
            "height {height} decided everywhere"
        );
        assert!(
            net.sent[quiet].is_empty(),
            "signed at {:?}",
            net.sent[quiet]
        );
        assert_eq!(
            *net.signers[quiet].0.lock().unwrap(),
            SignerState::default()
        );
    }
    // From height 4 it signs again: it proposes it, and the block is decided.
    net.submit(&chain, &mut factory, "AT-2026-004");
    net.run(|_, _, _| false);
    assert!((0..4).all(|node| net.height(node) == 4));
    assert!(net.sent[quiet].contains(&4), "{:?}", net.sent[quiet]);
    assert!(net.sent[quiet].iter().all(|h| *h == 4));
    assert_eq!(net.signers[quiet].0.lock().unwrap().height, 4);
}

#[test]
fn a_validator_that_lost_its_signer_state_at_the_first_height_waits_too() {
    let chain = TestChain::new(4);
    let mut factory = TxFactory::new(chain.chain_id);
    let mut net = Net::new(&chain);
    // Proposer of height 3, not of 1 or 2; it may have voted at height 1 before the loss.
    let quiet = usize::from(proposer(3, 0, 4));
    net.restart_without_signer_state(&chain, quiet);
    for (height, id) in [(1, "AT-2026-001"), (2, "AT-2026-002")] {
        net.submit(&chain, &mut factory, id);
        net.run(|_, _, _| false);
        assert!((0..4).all(|node| net.height(node) == height));
        assert!(net.sent[quiet].is_empty(), "{:?}", net.sent[quiet]);
    }
    net.submit(&chain, &mut factory, "AT-2026-003");
    net.run(|_, _, _| false);
    assert!((0..4).all(|node| net.height(node) == 3));
    assert!(net.sent[quiet].contains(&3), "{:?}", net.sent[quiet]);
}
