//! The consensus core: four cores over the in-memory store, wired to each other by a loop
//! that carries their effects, decide blocks; a core whose store fails while it checks a
//! proposal stops without voting, and the others still decide the block.

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

struct Net {
    cores: Vec<Core<usize>>,
    disks: Vec<Arc<FlakyBackend>>,
    signers: Vec<Kept>,
    /// (from, envelope) in flight.
    wire: VecDeque<(usize, Vec<u8>)>,
    stopped: Vec<Option<HostError>>,
    now: Now,
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
            now: Now {
                wall_ms: chain.genesis.genesis_time_ms + 1_000,
                mono_ms: 1_000,
            },
        };
        for index in 0..chain.genesis.operators.len() {
            let disk = Arc::new(FlakyBackend::default());
            let backend: Arc<dyn Backend> = disk.clone();
            let store = Store::with_backend(backend, &chain.genesis).unwrap();
            let ledger = Arc::new(Chain::new(
                Ledger::new(store),
                Mempool::new(100, 100),
                Box::new(NoHooks),
            ));
            let kept = Kept::default();
            let mut core = Core::new(
                ledger,
                Some(chain.validator(index).clone()),
                SignerState::default(),
                Box::new(kept.clone()),
                timeouts,
            );
            core.start(net.now).unwrap();
            net.cores.push(core);
            net.disks.push(disk);
            net.signers.push(kept);
            net.stopped.push(None);
        }
        net.collect();
        net
    }

    fn collect(&mut self) {
        for (from, core) in self.cores.iter_mut().enumerate() {
            for effect in core.take_effects() {
                if let Effect::Publish(envelope) = effect {
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
