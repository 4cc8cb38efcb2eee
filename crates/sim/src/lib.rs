//! Cachet's deterministic simulator.
//!
//! `N` validators run the real consensus driver ([`cachet_consensus::Driver`]) and the
//! node's own ledger (`cachet_storage::Ledger` on the in-memory store, [`SimLedger`]) over a
//! simulated network and clock, all driven by one seed. Faults: message loss, duplication, reordering (random delays), symmetric and
//! one-way partitions, crash and restart (a crashed node keeps only what it synced: its
//! blocks and its signer state; some crashes cut a block write short, so the block is lost
//! though the node's precommit for it was stored), and optionally one Byzantine validator
//! that equivocates (two different proposals and votes for each step, to different halves
//! of the network). With [`SimConfig::read_failures`], a node's store sometimes fails its
//! reads while it checks a proposal: the node must stop (and is restarted), never vote
//! against the block. With [`SimConfig::join`] one more node, outside the genesis set, follows
//! the chain until the operators vote it in (proposal and approvals from more than two
//! thirds, sent by the simulated clients once their own work is final) and then validates
//! from the agreed height, under the same faults.
//!
//! Checkers, run as the simulation goes and at the end:
//! - agreement: never two different final blocks at one height;
//! - validity: every final block passes the ledger's checks (certificate, links, every
//!   transaction's signature and rules, state root), and no transaction the workload marks
//!   invalid is ever final;
//! - convergence: at the end every node has the same height and state root;
//! - liveness: once faults heal, every valid transaction is final on every node within a
//!   bound (with `join`: the new operator is in the set and has signed at a height of it).
//!
//! Every delivered event is hashed into a trace hash: the same seed gives the same hash.

pub mod ledger;
pub mod rng;
pub mod world;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::sync::Arc;

use cachet_consensus::driver::{Action, App, Driver, Received, SignerState};
use cachet_consensus::messages::{ConsensusMsg, Vote, sign_proposal, sign_vote};
use cachet_consensus::{Timeout, Timeouts};
use cachet_state::membership::{ACTIVATION_LEAD, decided};
use cachet_testkit::{TestChain, TxFactory, address, issue_id, issue_record, key, operator_id};
use cachet_types::{
    Block, CertifiedBlock, CountryCode, Hash, MembershipChange, Operator, SignedTx, SigningKey,
    TxBody, VerifiedTx,
};
use sha2::{Digest, Sha256};

pub use ledger::{SimDisk, SimLedger};
pub use rng::Rng;
pub use world::{Region, WorldConfig};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The seed: everything random comes from it.
    pub seed: u64,
    /// Number of validators.
    pub validators: usize,
    /// Make the last validator equivocate.
    pub byzantine: bool,
    /// Faults are injected during this many simulated milliseconds, then healed.
    pub fault_ms: u64,
    /// After healing, every valid transaction must be final within this bound.
    pub heal_bound_ms: u64,
    /// Enable crashes and restarts.
    pub crashes: bool,
    /// Enable partitions.
    pub partitions: bool,
    /// Message loss during the fault phase, per mille.
    pub loss_per_mille: u32,
    /// Message duplication during the fault phase, per mille.
    pub dup_per_mille: u32,
    /// Largest message delay during the fault phase.
    pub max_delay_ms: u64,
    /// One more node, outside the genesis set, is voted in and must validate.
    pub join: bool,
    /// Sometimes make an honest node's store fail its reads while it checks a proposal.
    pub read_failures: bool,
    /// Place the validators in the world's regions ([`world`]): delays from the
    /// inter-region table, jitter, loss and uplink bandwidth, on top of the fault model.
    pub world: Option<WorldConfig>,
}

impl SimConfig {
    /// Every fault on, four validators.
    pub fn faulty(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            validators: 4,
            byzantine: false,
            fault_ms: 20_000,
            heal_bound_ms: 60_000,
            crashes: true,
            partitions: true,
            loss_per_mille: 100,
            dup_per_mille: 50,
            max_delay_ms: 400,
            join: false,
            read_failures: false,
            world: None,
        }
    }

    /// No crashes, partitions, loss or duplication; delays up to 50 ms on top of any world
    /// model; four validators.
    pub fn calm(seed: u64) -> SimConfig {
        SimConfig {
            crashes: false,
            partitions: false,
            loss_per_mille: 0,
            dup_per_mille: 0,
            max_delay_ms: 50,
            ..SimConfig::faulty(seed)
        }
    }
}

/// A checker failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The seed that shows it.
    pub seed: u64,
    /// Simulated time.
    pub at_ms: u64,
    /// What went wrong.
    pub what: String,
    /// The `cachet-sim` arguments that replay the run.
    pub replay: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} at {} ms: {} (replay: cargo run -p cachet-sim -- {})",
            self.seed, self.at_ms, self.what, self.replay
        )
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Hash of every event delivered, in order.
    pub trace_hash: Hash,
    /// Final height (the same on every node).
    pub height: u64,
    /// Final state root (the same on every node).
    pub state_root: Hash,
    /// Transactions final.
    pub txs_final: usize,
    /// Highest round any height needed.
    pub max_round: u32,
    /// Equivocations observed by honest nodes.
    pub equivocations: u64,
    /// Crashes injected, and how many of them cut a block write short.
    pub crashes: (u64, u64),
    /// Simulated milliseconds.
    pub elapsed_ms: u64,
    /// Events processed.
    pub events: u64,
    /// With a join: the height from which the new operator validates.
    pub joined_at: Option<u64>,
    /// Proposal checks whose store reads failed (each stopped its node), and how many of
    /// those blocks were decided all the same.
    pub failed_checks: (u64, u64),
    /// Milliseconds from a transaction's first submission to its first final block: the
    /// median and the 99th percentile, over the valid transactions that could be included
    /// when sent (the signer's previous one was final by then: a signer's transactions
    /// apply in nonce order, so one sent early waits for its predecessor, not the network).
    pub finality_ms: (u64, u64),
    /// Per validator per height, on average: messages sent, bytes sent, signatures checked
    /// (consensus messages whose signature the driver checked, plus transaction and
    /// certificate signatures of blocks checked and committed).
    pub load: Load,
}

/// What one validator sends and checks per height, on average over validators and heights
/// (rounded down).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Messages sent.
    pub messages: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Signatures checked.
    pub signature_checks: u64,
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} messages, {} bytes, {} signature checks",
            self.messages, self.bytes, self.signature_checks
        )
    }
}

/// Running counts of one node's load.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    messages: u64,
    bytes: u64,
    signature_checks: u64,
}

#[derive(Debug, Clone)]
enum Payload {
    Consensus(ConsensusMsg),
    Tx(Box<SignedTx>),
    SyncRequest { from_height: u64 },
    SyncResponse(Vec<CertifiedBlock>),
}

impl Payload {
    /// Encoded size on the wire (the node's gossip envelope and sync frames add a few bytes).
    fn size(&self) -> usize {
        match self {
            Payload::Consensus(msg) => msg.to_bytes().len(),
            Payload::Tx(tx) => cachet_types::codec::encode(&**tx).len(),
            Payload::SyncRequest { .. } => 12,
            Payload::SyncResponse(blocks) => blocks
                .iter()
                .map(|block| cachet_types::codec::encode(block).len())
                .sum(),
        }
    }
}

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        from: usize,
        to: usize,
        payload: Payload,
    },
    Timer {
        node: usize,
        epoch: u32,
        timeout: Timeout,
    },
    Tick {
        node: usize,
    },
    Submit {
        node: usize,
        tx: usize,
    },
    Fault,
    Restart {
        node: usize,
    },
    Heal,
    /// The clients of a join look at the chain and send what comes next.
    JoinStep,
}

/// What a node keeps across a crash: synced writes only.
#[derive(Clone, Default)]
struct Disk {
    store: Arc<SimDisk>,
    signer: SignerState,
}

/// The ledger side of one node, lent to its driver for a call.
struct Host<'a> {
    ledger: &'a SimLedger,
    pool: &'a mut BTreeMap<(cachet_types::PublicKey, u64), VerifiedTx>,
    disk: &'a mut Disk,
    now_ms: u64,
    genesis_time_ms: u64,
    /// Make the store's reads fail while the next proposal is checked.
    fail_check: &'a mut bool,
    /// The block (height, hash) whose check failed to read the store.
    unchecked: &'a mut Option<(u64, Hash)>,
    /// Signatures checked by this node.
    signature_checks: &'a mut u64,
}

impl App for Host<'_> {
    fn build_block(
        &mut self,
        _height: u64,
        _round: u32,
        proposer: u16,
        allow_empty: bool,
    ) -> Option<Block> {
        let ledger = self.ledger;
        self.pool
            .retain(|(signer, nonce), _| *nonce > ledger.nonce(signer));
        if self.pool.is_empty() && !allow_empty {
            return None;
        }
        let candidates: Vec<VerifiedTx> = self.pool.values().cloned().collect();
        let executed = self
            .ledger
            .ledger()
            .build(candidates, self.genesis_time_ms + self.now_ms, proposer)
            .ok()?;
        let rejected: BTreeSet<Hash> = executed.rejected.iter().map(|(id, _)| *id).collect();
        self.pool.retain(|_, tx| !rejected.contains(&tx.id()));
        if executed.block.txs.is_empty() && !allow_empty {
            return None;
        }
        Some(executed.block)
    }

    fn validate_block(&mut self, block: &Block) -> Result<bool, String> {
        // Signatures one by one (the node batches them with OS randomness; the outcome is
        // the same by ZIP-215, and the simulation stays a function of its seed).
        *self.signature_checks += block.txs.len() as u64;
        let Ok(verified) = ledger::verify(block) else {
            return Ok(false);
        };
        let failing = std::mem::take(self.fail_check);
        self.disk.store.fail_reads(failing);
        let result = self
            .ledger
            .ledger()
            .prepare_verified(block.clone(), verified);
        self.disk.store.fail_reads(false);
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.refusal().is_some() => Ok(false),
            Err(error) => {
                *self.unchecked = Some((block.header.height, block.header.hash()));
                Err(format!("cannot check the proposed block: {error}"))
            }
        }
    }

    fn has_work(&self) -> bool {
        self.pool
            .keys()
            .any(|(signer, nonce)| *nonce > self.ledger.nonce(signer))
    }

    fn persist_signer(&mut self, state: &SignerState) -> Result<(), String> {
        // Written and synced at once: the crash model drops only what was never synced.
        self.disk.signer = state.clone();
        Ok(())
    }
}

struct SimNode {
    alive: bool,
    epoch: u32,
    disk: Disk,
    ledger: SimLedger,
    /// Whether the store fails its reads during the next proposal check.
    fail_check: bool,
    /// The block whose check failed to read the store, until the node stops.
    unchecked: Option<(u64, Hash)>,
    pool: BTreeMap<(cachet_types::PublicKey, u64), VerifiedTx>,
    driver: Driver,
}

/// The workload: transactions, which ones must never become final, and which ones the
/// join's clients sent (checked through the join's outcome, not one by one: a proposal or an
/// approval may expire and be sent again).
struct Workload {
    txs: Vec<SignedTx>,
    invalid: BTreeSet<Hash>,
    optional: BTreeSet<Hash>,
}

/// Transactions per operator in the workload (the last one, over the print run, is invalid):
/// an operator's next nonce after its own work is `STATIC_TXS`.
const STATIC_TXS: u64 = 10;

/// The node that asks to join, and where its admission stands.
struct Joiner {
    operator: Operator,
    validator: SigningKey,
    issuer: SigningKey,
    /// The current proposal: its id and activation height.
    proposal: Option<(Hash, u64)>,
    /// Operators whose approval of the current proposal has been sent.
    approved: BTreeSet<usize>,
    /// Filler transactions sent so far (the chain only grows with work).
    filler: u32,
    /// The last filler transaction sent: (signer, nonce).
    pending: Option<(cachet_types::PublicKey, u64)>,
}

/// How far ahead of the tip a join is proposed to apply.
const JOIN_LEAD: u64 = 8;
/// Blocks past the activation height that must be final before a join run ends.
const JOIN_TAIL: u64 = 4;

fn workload(chain: &TestChain, operators: usize) -> Workload {
    let mut factory = TxFactory::new(chain.chain_id);
    let mut txs = Vec::new();
    let mut invalid = BTreeSet::new();
    let countries = ["AT", "DE", "CH", "FR", "IT", "NL", "BE", "SE"];
    for (index, country) in countries.iter().enumerate().take(operators) {
        let issuer = chain.issuer(index);
        let id = format!("{country}-2026-001");
        txs.push(factory.sign(
            issuer,
            TxBody::CreateIssue {
                record: issue_record(&id, &format!("{country}-POST"), 40),
            },
        ));
        for batch in 0..8u32 {
            txs.push(factory.sign(
                issuer,
                TxBody::Mint {
                    issue: issue_id(&id),
                    first_serial: batch * 5 + 1,
                    last_serial: batch * 5 + 5,
                    owner: address(&format!("collector-{}", batch % 3)),
                    variant: None,
                    claim_keys: Vec::new(),
                },
            ));
        }
        // Last in the signer's sequence, so its refusal blocks nothing after it.
        let over = factory.sign(
            issuer,
            TxBody::Mint {
                issue: issue_id(&id),
                first_serial: 41,
                last_serial: 41,
                owner: address("collector-0"),
                variant: None,
                claim_keys: Vec::new(),
            },
        );
        invalid.insert(over.id());
        txs.push(over);
    }
    Workload {
        txs,
        invalid,
        optional: BTreeSet::new(),
    }
}

struct Net {
    loss: u32,
    dup: u32,
    max_delay: u64,
    /// Directed links that drop everything (from, to).
    cut: BTreeSet<(usize, usize)>,
}

/// One simulation.
pub struct Sim {
    config: SimConfig,
    chain: TestChain,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: BTreeMap<usize, Event>,
    next_event: usize,
    nodes: Vec<SimNode>,
    net: Net,
    trace: Sha256,
    decided: BTreeMap<u64, Hash>,
    work: Workload,
    healed_at: Option<u64>,
    max_round: u32,
    equivocations: u64,
    crashes: (u64, u64),
    processed: u64,
    joiner: Option<Joiner>,
    /// Blocks (height, hash) whose check failed to read the store.
    failed_checks: Vec<(u64, Hash)>,
    /// Each node's region (with a world model).
    regions: Vec<Region>,
    /// When each node's uplink is free again, in simulated µs.
    uplink_free_us: Vec<u64>,
    /// Each node's load so far.
    counts: Vec<Counts>,
    /// First submission time of each workload transaction, by id.
    submitted: BTreeMap<Hash, u64>,
    /// When each transaction was first final somewhere.
    final_at: BTreeMap<Hash, u64>,
}

const TICK_MS: u64 = 500;
/// Chance, per mille, that a block commit during the fault phase is cut short by a crash.
const TORN_WRITE_PER_MILLE: u32 = 20;
const SYNC_BATCH: usize = 16;

impl Sim {
    /// Sets up a run.
    pub fn new(config: SimConfig) -> Sim {
        let chain = TestChain::new(config.validators);
        let work = workload(&chain, config.validators);
        let timeouts = Self::timeouts();
        let joiner = config.join.then(|| {
            let (validator, issuer) = (key("sim-joiner-validator"), key("sim-joiner-issuer"));
            Joiner {
                operator: Operator {
                    id: operator_id("LU"),
                    country: CountryCode::parse("LU").unwrap_or_else(|e| panic!("{e}")),
                    name: "LU Post".into(),
                    validator_key: validator.public_key(),
                    issuer: issuer.public_key().address(),
                },
                validator,
                issuer,
                proposal: None,
                approved: BTreeSet::new(),
                filler: 0,
                pending: None,
            }
        });
        let count = config.validators + usize::from(config.join);
        let nodes = (0..count)
            .map(|index| {
                let disk = Disk::default();
                let ledger = SimLedger::open(&disk.store, &chain.genesis)
                    .unwrap_or_else(|e| panic!("a new memory store failed: {e}"));
                (index, disk, ledger)
            })
            .map(|(index, disk, ledger)| SimNode {
                alive: true,
                epoch: 0,
                disk,
                ledger,
                fail_check: false,
                unchecked: None,
                pool: BTreeMap::new(),
                driver: Driver::new(
                    chain.chain_id,
                    Some(Self::node_key(&chain, joiner.as_ref(), index)),
                    SignerState::default(),
                    timeouts,
                ),
            })
            .collect();
        Sim {
            rng: Rng::new(config.seed),
            net: Net {
                loss: config.loss_per_mille,
                dup: config.dup_per_mille,
                max_delay: config.max_delay_ms.max(1),
                cut: BTreeSet::new(),
            },
            config,
            chain,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            next_event: 0,
            nodes,
            trace: Sha256::new(),
            decided: BTreeMap::new(),
            work,
            healed_at: None,
            max_round: 0,
            equivocations: 0,
            crashes: (0, 0),
            processed: 0,
            joiner,
            failed_checks: Vec::new(),
            regions: world::regions(count),
            uplink_free_us: vec![0; count],
            counts: vec![Counts::default(); count],
            submitted: BTreeMap::new(),
            final_at: BTreeMap::new(),
        }
    }

    /// Node `index`'s validator key: a genesis validator's, or the joiner's (the last node).
    fn node_key(chain: &TestChain, joiner: Option<&Joiner>, index: usize) -> SigningKey {
        match joiner {
            Some(joiner) if index == chain.genesis.operators.len() => joiner.validator.clone(),
            _ => chain.validator(index).clone(),
        }
    }

    fn timeouts() -> Timeouts {
        Timeouts {
            propose_ms: 600,
            prevote_ms: 300,
            precommit_ms: 300,
            per_round_ms: 200,
            max_ms: 10_000,
        }
    }

    fn at(&mut self, delay: u64, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.insert(id, event);
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay, self.seq, id)));
    }

    fn violation(&self, what: impl Into<String>) -> Violation {
        let mut replay = format!("--seed {}", self.config.seed);
        if self.config.validators != 4 {
            replay += &format!(" --validators {}", self.config.validators);
        }
        if self.config.byzantine {
            replay += " --byzantine";
        }
        if self.config.read_failures {
            replay += " --read-failures";
        }
        if !self.config.crashes && !self.config.partitions && self.config.loss_per_mille == 0 {
            replay += " --no-faults";
        }
        if let Some(world) = self.config.world {
            replay += " --world";
            if world.loss_per_mille > 0 {
                replay += &format!(" --world-loss {}", world.loss_per_mille);
            }
        }
        if self.config.join {
            replay += " --join";
        }
        Violation {
            seed: self.config.seed,
            at_ms: self.now,
            what: what.into(),
            replay,
        }
    }

    fn byzantine(&self, node: usize) -> bool {
        self.config.byzantine && node + 1 == self.config.validators
    }

    /// Every node but the Byzantine one (the joiner included).
    fn honest(&self) -> impl Iterator<Item = usize> + use<> {
        let n = self.config.validators;
        let byz = self.config.byzantine;
        (0..self.nodes.len()).filter(move |i| !(byz && i + 1 == n))
    }

    fn send(&mut self, from: usize, to: usize, payload: Payload) {
        let size = payload.size();
        self.send_sized(from, to, payload, size);
    }

    /// Sends `payload` of `size` encoded bytes: it leaves when the sender's uplink is free
    /// (with a world model), crosses the link, and may be lost, duplicated or delayed by
    /// the fault model.
    fn send_sized(&mut self, from: usize, to: usize, payload: Payload, size: usize) {
        if from == to {
            return;
        }
        let counts = &mut self.counts[from];
        counts.messages += 1;
        counts.bytes += size as u64;
        let mut link_ms = 0;
        if let Some(world) = self.config.world {
            let now_us = self.now * 1000;
            let leaves_us = self.uplink_free_us[from].max(now_us)
                + world::transmit_us(size, world.uplink_kbit_s);
            self.uplink_free_us[from] = leaves_us;
            let base = world::base_delay_ms(self.regions[from], self.regions[to]);
            let jitter = self
                .rng
                .below(base * u64::from(world.jitter_per_mille) / 1000 + 1);
            link_ms = (leaves_us - now_us).div_ceil(1000) + base + jitter;
            if self.rng.chance(world.loss_per_mille) {
                return;
            }
        }
        if self.net.cut.contains(&(from, to)) || self.rng.chance(self.net.loss) {
            return;
        }
        let copies = if self.rng.chance(self.net.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let delay = link_ms + 1 + self.rng.below(self.net.max_delay);
            self.at(
                delay,
                Event::Deliver {
                    from,
                    to,
                    payload: payload.clone(),
                },
            );
        }
    }

    fn broadcast(&mut self, from: usize, payload: Payload) {
        let size = payload.size();
        for to in 0..self.nodes.len() {
            self.send_sized(from, to, payload.clone(), size);
        }
    }

    /// Runs to the end; the first checker failure stops it.
    pub fn run(mut self) -> Result<Report, Violation> {
        let n = self.nodes.len();
        for node in 0..n {
            let actions = self.start_height(node, 1);
            self.apply(node, actions)?;
            let jitter = self.rng.below(TICK_MS);
            self.at(jitter, Event::Tick { node });
        }
        // Transactions arrive at random nodes over the first part of the run.
        let spread = self.config.fault_ms.max(1);
        for tx in 0..self.work.txs.len() {
            let node = self.rng.below(n as u64) as usize;
            let when = self.rng.below(spread);
            self.at(when, Event::Submit { node, tx });
        }
        if self.config.crashes || self.config.partitions || self.config.read_failures {
            let first = 1_000 + self.rng.below(2_000);
            self.at(first, Event::Fault);
        }
        if self.joiner.is_some() {
            self.at(500, Event::JoinStep);
        }
        let fault_ms = self.config.fault_ms;
        self.at(fault_ms, Event::Heal);
        let deadline = fault_ms + self.config.heal_bound_ms;

        while let Some(Reverse((time, _, id))) = self.queue.pop() {
            if time > deadline {
                break;
            }
            self.now = time;
            let Some(event) = self.events.remove(&id) else {
                continue;
            };
            self.processed += 1;
            self.handle(event)?;
            if self.healed_at.is_some() && self.converged() {
                break;
            }
        }
        self.finish()
    }

    /// Checked after every event once healed: the cheap tests (one height, the join) first,
    /// the transactions (hashed and looked up on every node) only when those hold.
    fn converged(&self) -> bool {
        let heights: BTreeSet<u64> = self
            .honest()
            .map(|i| self.nodes[i].ledger.tip().height)
            .collect();
        if heights.len() != 1 || !self.join_done() {
            return false;
        }
        let valid: Vec<Hash> = self
            .work
            .txs
            .iter()
            .map(SignedTx::id)
            .filter(|id| !self.work.invalid.contains(id) && !self.work.optional.contains(id))
            .collect();
        self.honest().all(|i| {
            let node = &self.nodes[i];
            node.alive && valid.iter().all(|id| node.ledger.is_final(id))
        })
    }

    fn finish(mut self) -> Result<Report, Violation> {
        if !self.converged() {
            let heights: Vec<u64> = self
                .nodes
                .iter()
                .map(|node| node.ledger.tip().height)
                .collect();
            let final_txs: Vec<usize> = self
                .nodes
                .iter()
                .map(|node| node.ledger.final_txs())
                .collect();
            let valid = self.work.txs.len() - self.work.invalid.len() - self.work.optional.len();
            let consensus: Vec<String> = self
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "h{} r{} pool {} signed {:?}",
                        n.driver.height(),
                        n.driver.round(),
                        n.pool.len(),
                        n.driver.signer()
                    )
                })
                .collect();
            return Err(self.violation(format!(
                "liveness: {} ms after healing, not every valid transaction is final on every \
                 node{} (heights {heights:?}, final transactions {final_txs:?} of {valid}; \
                 consensus {consensus:?})",
                self.config.heal_bound_ms,
                if self.join_done() {
                    ""
                } else {
                    " or the join is not done"
                }
            )));
        }
        let reference = &self.nodes[0];
        let tip = reference.ledger.tip();
        for i in self.honest() {
            let other = self.nodes[i].ledger.tip();
            if other.state_root.hash() != tip.state_root.hash() || other.height != tip.height {
                return Err(self.violation(format!(
                    "convergence: node {i} is at height {} root {}, node 0 at {} root {}",
                    other.height,
                    other.state_root.hash(),
                    tip.height,
                    tip.state_root.hash()
                )));
            }
        }
        // Validity, independently: replay node 0's chain into a fresh ledger.
        let replay = SimLedger::in_memory(&self.chain.genesis);
        let mut txs_final = 0;
        for height in 1..=tip.height {
            let Some(block) = reference.ledger.block(height) else {
                return Err(self.violation(format!("validity: node 0 lacks block {height}")));
            };
            if let Err(error) = replay.commit(&block) {
                return Err(self.violation(format!(
                    "validity: final block {} does not replay: {error}",
                    block.block.header.height
                )));
            }
            txs_final += block.block.txs.len();
        }
        let joined_at = Self::join_activation(&reference.ledger).filter(|_| self.joiner.is_some());
        // A signer's transactions apply in nonce order: one cannot be final before the one
        // before it, however early it was sent.
        let by_nonce: BTreeMap<(cachet_types::PublicKey, u64), Hash> = self
            .work
            .txs
            .iter()
            .filter(|tx| self.final_at.contains_key(&tx.id()))
            .map(|tx| ((tx.signer, tx.nonce), tx.id()))
            .collect();
        let mut latencies: Vec<u64> = self
            .work
            .txs
            .iter()
            .filter(|tx| {
                let id = tx.id();
                !self.work.invalid.contains(&id) && !self.work.optional.contains(&id)
            })
            .filter_map(|tx| {
                let done = *self.final_at.get(&tx.id())?;
                let sent = *self.submitted.get(&tx.id())?;
                let previous = by_nonce
                    .get(&(tx.signer, tx.nonce.wrapping_sub(1)))
                    .and_then(|id| self.final_at.get(id))
                    .copied();
                let ready = tx.nonce == 1 || previous.is_some_and(|at| at < sent);
                ready.then(|| done - sent)
            })
            .collect();
        latencies.sort_unstable();
        let percentile = |p: usize| {
            latencies
                .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        let finality_ms = (percentile(50), percentile(99));
        let validators = self.config.validators;
        let per = validators as u64 * tip.height.max(1);
        let sum =
            |f: fn(&Counts) -> u64| self.counts[..validators].iter().map(f).sum::<u64>() / per;
        let load = Load {
            messages: sum(|c| c.messages),
            bytes: sum(|c| c.bytes),
            signature_checks: sum(|c| c.signature_checks),
        };
        let trace = std::mem::take(&mut self.trace);
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&trace.finalize());
        Ok(Report {
            trace_hash: Hash(hash),
            height: tip.height,
            state_root: tip.state_root.hash(),
            txs_final,
            max_round: self.max_round,
            equivocations: self.equivocations,
            crashes: self.crashes,
            elapsed_ms: self.now,
            events: self.processed,
            joined_at,
            finality_ms,
            load,
            failed_checks: (
                self.failed_checks.len() as u64,
                self.failed_checks
                    .iter()
                    .filter(|(height, hash)| self.decided.get(height) == Some(hash))
                    .count() as u64,
            ),
        })
    }

    /// The activation height of the join, once decided on `ledger`'s chain.
    fn join_activation(ledger: &SimLedger) -> Option<u64> {
        let record = ledger.ledger().store().membership().ok()?;
        record
            .changes
            .first()
            .map(|change| change.activation_height)
    }

    /// Without a join, true. With one: the joiner's chain has the new operator in its set
    /// for `JOIN_TAIL` blocks, and the joiner has signed at a height of that set.
    fn join_done(&self) -> bool {
        if self.joiner.is_none() {
            return true;
        }
        let node = &self.nodes[self.nodes.len() - 1];
        Self::join_activation(&node.ledger).is_some_and(|activation| {
            node.ledger.tip().height >= activation + JOIN_TAIL
                && node.driver.signer().height >= activation
        })
    }

    /// The join's clients, like operators at their terminals: once its own work is final,
    /// operator 0 proposes adding the new operator from `JOIN_LEAD` blocks ahead; once the
    /// proposal is final, operators approve it until more than two thirds have; a proposal
    /// that can no longer be decided in time is made again. Once decided, one transaction
    /// at a time keeps the chain growing past the activation height: an old operator's
    /// before it, the new operator's own from it.
    fn join_step(&mut self) {
        // What the clients see: the most advanced live honest node.
        let Some(view) = self
            .honest()
            .filter(|i| self.nodes[*i].alive)
            .max_by_key(|i| self.nodes[*i].ledger.tip().height)
        else {
            return;
        };
        let ledger = &self.nodes[view].ledger;
        let tip = ledger.tip().height;
        let chain = &self.chain;
        let n = chain.genesis.operators.len();
        let own_work_done =
            |issuer: usize| ledger.nonce(&chain.issuer(issuer).public_key()) + 1 >= STATIC_TXS;
        let Some(joiner) = self.joiner.as_mut() else {
            return;
        };
        let sign = |key: &SigningKey, body: TxBody| {
            let nonce = ledger.nonce(&key.public_key()) + 1;
            SignedTx::sign(chain.chain_id, key, nonce, body)
        };
        let mut send = Vec::new();
        if let Some(activation) = Self::join_activation(ledger) {
            let busy = joiner
                .pending
                .is_some_and(|(signer, nonce)| ledger.nonce(&signer) < nonce);
            if !busy && tip < activation + JOIN_TAIL {
                let (key, id, operator) = if tip >= activation {
                    let id = format!("LU-2026-{:03}", joiner.filler + 1);
                    (joiner.issuer.clone(), id, "LU-POST")
                } else {
                    let id = format!("AT-2026-{:03}", joiner.filler + 100);
                    (chain.issuer(0).clone(), id, "AT-POST")
                };
                let record = issue_record(&id, operator, 10);
                let tx = sign(&key, TxBody::CreateIssue { record });
                joiner.pending = Some((tx.signer, tx.nonce));
                joiner.filler += 1;
                send.push(tx);
            }
        } else {
            // The last block that may take an approval is `ACTIVATION_LEAD` before the
            // activation height.
            if joiner
                .proposal
                .is_some_and(|(_, activation)| tip + 1 + ACTIVATION_LEAD > activation)
            {
                joiner.proposal = None;
                joiner.approved.clear();
            }
            match joiner.proposal {
                None if own_work_done(0) => {
                    let activation = tip + JOIN_LEAD;
                    let tx = sign(
                        chain.issuer(0),
                        TxBody::ProposeMembership {
                            change: MembershipChange::AddOperator {
                                operator: joiner.operator.clone(),
                            },
                            activation_height: activation,
                        },
                    );
                    joiner.proposal = Some((tx.id(), activation));
                    send.push(tx);
                }
                None => {}
                // Approvals once the proposal is final: the proposer's counts, and operators
                // 1, 2, ... add theirs until they are enough.
                Some((proposal, _))
                    if matches!(ledger.ledger().store().proposal(&proposal), Ok(Some(_))) =>
                {
                    let approvers = (1..n).take_while(|a| !decided(*a, n)).count();
                    for operator in (1..=approvers).filter(|o| own_work_done(*o)) {
                        if joiner.approved.insert(operator) {
                            let body = TxBody::ApproveMembership { proposal };
                            send.push(sign(chain.issuer(operator), body));
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for tx in send {
            self.record(&[b"join", tx.id().as_bytes()]);
            self.work.optional.insert(tx.id());
            self.work.txs.push(tx);
            let node = self.rng.below(self.nodes.len() as u64) as usize;
            let index = self.work.txs.len() - 1;
            self.at(0, Event::Submit { node, tx: index });
        }
    }

    fn record(&mut self, parts: &[&[u8]]) {
        self.trace.update(self.now.to_be_bytes());
        for part in parts {
            self.trace.update((part.len() as u64).to_be_bytes());
            self.trace.update(part);
        }
    }

    fn with_host<T>(&mut self, node: usize, call: impl FnOnce(&mut Driver, &mut Host) -> T) -> T {
        let now = self.now;
        let genesis_time_ms = self.chain.genesis.genesis_time_ms;
        let n = &mut self.nodes[node];
        let mut host = Host {
            ledger: &n.ledger,
            pool: &mut n.pool,
            disk: &mut n.disk,
            now_ms: now,
            genesis_time_ms,
            fail_check: &mut n.fail_check,
            unchecked: &mut n.unchecked,
            signature_checks: &mut self.counts[node].signature_checks,
        };
        call(&mut n.driver, &mut host)
    }

    /// Starts `node`'s driver on `height` with the validator sets its ledger gives.
    fn start_height(&mut self, node: usize, height: u64) -> Vec<Action> {
        let ledger = &self.nodes[node].ledger;
        let (now, next) = (
            ledger.validators_at(height),
            ledger.validators_at(height + 1),
        );
        self.with_host(node, |d, h| d.start(height, now, next, h))
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver { from, to, payload } => {
                if !self.nodes[to].alive {
                    return Ok(());
                }
                self.deliver(from, to, payload)
            }
            Event::Timer {
                node,
                epoch,
                timeout,
            } => {
                if !self.nodes[node].alive || self.nodes[node].epoch != epoch {
                    return Ok(());
                }
                self.record(&[b"timer", &[node as u8], &timeout.round.to_be_bytes()]);
                let actions = self.with_host(node, |d, h| d.on_timeout(timeout, h));
                self.apply(node, actions)
            }
            Event::Tick { node } => {
                self.at(TICK_MS, Event::Tick { node });
                if !self.nodes[node].alive {
                    return Ok(());
                }
                self.tick(node)
            }
            Event::Submit { node, tx: index } => {
                let tx = self.work.txs[index].clone();
                if !self.nodes[node].alive {
                    // The client retries at another node.
                    let other = (node + 1) % self.nodes.len();
                    self.at(
                        100,
                        Event::Submit {
                            node: other,
                            tx: index,
                        },
                    );
                    return Ok(());
                }
                if self.nodes[node].ledger.nonce(&tx.signer) >= tx.nonce {
                    // Final (or its nonce is used): the client stops.
                    return Ok(());
                }
                self.record(&[b"submit", &[node as u8], tx.id().as_bytes()]);
                self.submitted.entry(tx.id()).or_insert(self.now);
                self.add_tx(node, tx.clone())?;
                self.broadcast(node, Payload::Tx(Box::new(tx)));
                // Like a wallet waiting for finality, the client submits again later (the
                // node may crash and lose its pool, gossip may be lost).
                let again = 2_000 + self.rng.below(2_000);
                self.at(again, Event::Submit { node, tx: index });
                Ok(())
            }
            Event::Fault => {
                self.fault();
                if self.healed_at.is_none() {
                    let next = 1_000 + self.rng.below(3_000);
                    self.at(next, Event::Fault);
                }
                Ok(())
            }
            Event::Restart { node } => self.restart(node),
            Event::Heal => {
                self.record(&[b"heal"]);
                self.healed_at = Some(self.now);
                self.net = Net {
                    loss: 0,
                    dup: 0,
                    max_delay: 50,
                    cut: BTreeSet::new(),
                };
                for node in 0..self.nodes.len() {
                    if !self.nodes[node].alive {
                        self.restart(node)?;
                    }
                }
                Ok(())
            }
            Event::JoinStep => {
                self.join_step();
                if !self.join_done() {
                    self.at(500, Event::JoinStep);
                }
                Ok(())
            }
        }
    }

    fn fault(&mut self) {
        if self.healed_at.is_some() {
            return;
        }
        let n = self.nodes.len();
        if self.config.read_failures && self.rng.chance(250) {
            let node = self.rng.below(n as u64) as usize;
            if !self.byzantine(node) {
                self.record(&[b"read-failure", &[node as u8]]);
                self.nodes[node].fail_check = true;
            }
            return;
        }
        let choice = self.rng.below(4);
        match choice {
            0 if self.config.crashes => {
                let node = self.rng.below(n as u64) as usize;
                self.crash(node);
            }
            1 if self.config.partitions => {
                // Symmetric: a random split into two sides.
                let mut side = vec![false; n];
                for s in side.iter_mut() {
                    *s = self.rng.chance(500);
                }
                self.net.cut.clear();
                for a in 0..n {
                    for b in 0..n {
                        if side[a] != side[b] {
                            self.net.cut.insert((a, b));
                        }
                    }
                }
                self.record(&[b"partition"]);
            }
            2 if self.config.partitions => {
                // One way: one node hears nobody, or nobody hears it.
                let node = self.rng.below(n as u64) as usize;
                let deaf = self.rng.chance(500);
                self.net.cut.clear();
                for other in (0..n).filter(|o| *o != node) {
                    if deaf {
                        self.net.cut.insert((other, node));
                    } else {
                        self.net.cut.insert((node, other));
                    }
                }
                self.record(&[b"one-way"]);
            }
            _ => {
                self.net.cut.clear();
                self.record(&[b"links-restored"]);
            }
        }
    }

    /// Stops `node`: what it had not synced (its mempool, a block being written) is lost.
    fn crash(&mut self, node: usize) {
        if !self.nodes[node].alive {
            return;
        }
        self.record(&[b"crash", &[node as u8]]);
        self.crashes.0 += 1;
        let target = &mut self.nodes[node];
        target.alive = false;
        target.unchecked = None;
        target.epoch += 1;
        target.pool.clear();
        let down = 500 + self.rng.below(4_000);
        self.at(down, Event::Restart { node });
    }

    fn restart(&mut self, node: usize) -> Result<(), Violation> {
        if self.nodes[node].alive {
            return Ok(());
        }
        self.record(&[b"restart", &[node as u8]]);
        let disk = self.nodes[node].disk.clone();
        let ledger = SimLedger::open(&disk.store, &self.chain.genesis)
            .map_err(|e| self.violation(format!("node {node} cannot reopen its own store: {e}")))?;
        let height = ledger.tip().height + 1;
        let target = &mut self.nodes[node];
        target.ledger = ledger;
        target.pool.clear();
        target.alive = true;
        target.driver = Driver::new(
            self.chain.chain_id,
            Some(Self::node_key(&self.chain, self.joiner.as_ref(), node)),
            disk.signer,
            Self::timeouts(),
        );
        let actions = self.start_height(node, height);
        self.apply(node, actions)?;
        self.request_sync(node);
        Ok(())
    }

    fn request_sync(&mut self, node: usize) {
        let n = self.nodes.len() as u64;
        let peer = (node as u64 + 1 + self.rng.below(n - 1)) as usize % self.nodes.len();
        let from_height = self.nodes[node].ledger.tip().height + 1;
        self.send(node, peer, Payload::SyncRequest { from_height });
    }

    fn tick(&mut self, node: usize) -> Result<(), Violation> {
        let again = self.nodes[node].driver.rebroadcast();
        self.apply(node, again)?;
        self.request_sync(node);
        // Gossip a few pending transactions again, in case the first copies were lost.
        let pending: Vec<SignedTx> = self.nodes[node]
            .pool
            .values()
            .take(8)
            .map(|tx| tx.tx().clone())
            .collect();
        for tx in pending {
            let peer = self.rng.below(self.nodes.len() as u64) as usize;
            self.send(node, peer, Payload::Tx(Box::new(tx)));
        }
        let actions = self.with_host(node, |d, h| d.on_work(h));
        self.apply(node, actions)
    }

    fn add_tx(&mut self, node: usize, tx: SignedTx) -> Result<(), Violation> {
        let Ok(verified) = tx.verify(&self.chain.chain_id) else {
            return Ok(());
        };
        let key = (verified.tx().signer, verified.tx().nonce);
        let target = &mut self.nodes[node];
        if key.1 <= target.ledger.nonce(&key.0) || target.pool.contains_key(&key) {
            return Ok(());
        }
        target.pool.insert(key, verified);
        let actions = self.with_host(node, |d, h| d.on_work(h));
        self.apply(node, actions)
    }

    fn deliver(&mut self, from: usize, to: usize, payload: Payload) -> Result<(), Violation> {
        match payload {
            Payload::Consensus(msg) => {
                self.record(&[b"msg", &[from as u8, to as u8], &msg.to_bytes()]);
                let checked = self.nodes[to].driver.signature_checks();
                let result = self.with_host(to, |d, h| d.on_message(msg, h));
                self.counts[to].signature_checks +=
                    self.nodes[to].driver.signature_checks() - checked;
                match result {
                    Ok((Received::Ahead(_), _)) => {
                        let from_height = self.nodes[to].ledger.tip().height + 1;
                        self.send(to, from, Payload::SyncRequest { from_height });
                        Ok(())
                    }
                    Ok((_, actions)) => self.apply(to, actions),
                    Err(_) => Ok(()),
                }
            }
            Payload::Tx(tx) => {
                self.record(&[b"tx", &[from as u8, to as u8], tx.id().as_bytes()]);
                self.add_tx(to, *tx)
            }
            Payload::SyncRequest { from_height } => {
                self.record(&[
                    b"sync?",
                    &[from as u8, to as u8],
                    &from_height.to_be_bytes(),
                ]);
                let ledger = &self.nodes[to].ledger;
                let blocks: Vec<CertifiedBlock> = (from_height.max(1)..)
                    .take(SYNC_BATCH)
                    .map_while(|height| ledger.block(height))
                    .collect();
                if !blocks.is_empty() {
                    self.send(to, from, Payload::SyncResponse(blocks));
                }
                Ok(())
            }
            Payload::SyncResponse(blocks) => {
                self.record(&[b"sync!", &[from as u8, to as u8], &[blocks.len() as u8]]);
                let mut advanced = false;
                for block in blocks {
                    let tip = self.nodes[to].ledger.tip().height;
                    if block.block.header.height != tip + 1 {
                        continue;
                    }
                    self.commit(to, block)?;
                    if !self.nodes[to].alive {
                        return Ok(());
                    }
                    advanced = true;
                }
                if advanced {
                    let height = self.nodes[to].ledger.tip().height + 1;
                    let actions = self.start_height(to, height);
                    self.apply(to, actions)?;
                }
                Ok(())
            }
        }
    }

    /// Commits a final block at `node`, checking agreement first.
    fn commit(&mut self, node: usize, block: CertifiedBlock) -> Result<(), Violation> {
        let header = &block.block.header;
        let hash = header.hash();
        let height = header.height;
        match self.decided.get(&height) {
            Some(existing) if *existing != hash => {
                return Err(self.violation(format!(
                    "agreement: node {node} finalized {hash} at height {height}, another node \
                     finalized {existing}"
                )));
            }
            Some(_) => {}
            None => {
                self.decided.insert(height, hash);
                for tx in &block.block.txs {
                    self.final_at.entry(tx.id()).or_insert(self.now);
                }
            }
        }
        for tx in &block.block.txs {
            if self.work.invalid.contains(&tx.id()) {
                return Err(self.violation(format!(
                    "validity: invalid transaction {} is final at height {height}",
                    tx.id()
                )));
            }
        }
        self.max_round = self.max_round.max(block.certificate.round);
        // Sometimes the node dies while the block is being written: the write never
        // reaches the disk (the node's own precommit, synced before, does).
        let torn = self.config.crashes
            && self.healed_at.is_none()
            && !self.byzantine(node)
            && self.rng.chance(TORN_WRITE_PER_MILLE);
        if torn {
            self.record(&[b"torn-write", &[node as u8]]);
            self.crashes.1 += 1;
            self.crash(node);
            return Ok(());
        }
        self.counts[node].signature_checks +=
            (block.block.txs.len() + block.certificate.signatures.len()) as u64;
        let target = &mut self.nodes[node];
        if let Err(error) = target.ledger.commit(&block) {
            return Err(self.violation(format!(
                "validity: node {node} cannot apply final block {height}: {error}"
            )));
        }
        let ledger = &target.ledger;
        target
            .pool
            .retain(|(signer, nonce), _| *nonce > ledger.nonce(signer));
        self.record(&[b"final", &[node as u8], hash.as_bytes()]);
        Ok(())
    }

    fn apply(&mut self, node: usize, actions: Vec<Action>) -> Result<(), Violation> {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            if !self.nodes[node].alive {
                // It crashed while acting: the rest never happened.
                return Ok(());
            }
            match action {
                Action::Broadcast(msg) => {
                    if let (ConsensusMsg::Vote(vote), Some((height, hash))) =
                        (&msg, self.nodes[node].unchecked)
                        && vote.vote.height == height
                        && vote.vote.block_hash != Some(hash)
                    {
                        return Err(self.violation(format!(
                            "node {node} voted {:?} at height {height} after failing to read \
                             its store while checking block {hash}",
                            vote.vote.block_hash
                        )));
                    }
                    if self.byzantine(node) {
                        self.equivocate(node, msg);
                    } else {
                        self.broadcast(node, Payload::Consensus(msg));
                    }
                }
                Action::Schedule { timeout, after_ms } => {
                    let epoch = self.nodes[node].epoch;
                    self.at(
                        after_ms,
                        Event::Timer {
                            node,
                            epoch,
                            timeout,
                        },
                    );
                }
                Action::RoundStarted { .. } => {}
                Action::Decided(block) => {
                    let height = block.block.header.height;
                    if self.nodes[node].ledger.tip().height + 1 != height {
                        continue;
                    }
                    self.commit(node, *block)?;
                    let actions = self.start_height(node, height + 1);
                    queue.extend(actions);
                }
                Action::Equivocation { .. } => {
                    if !self.byzantine(node) {
                        self.equivocations += 1;
                    }
                }
                Action::PersistFailed(error) => {
                    return Err(self.violation(format!("node {node} could not persist: {error}")));
                }
                Action::AppFailed(_) => {
                    // Only a failed store read reaches here (the simulation's own fault): the
                    // node stops, as `cachetd` does, and its operator restarts it. It cast no
                    // vote on the block.
                    self.record(&[b"stopped", &[node as u8]]);
                    self.failed_checks.extend(self.nodes[node].unchecked);
                    self.crash(node);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The Byzantine validator sends one message to half the peers and a conflicting one,
    /// properly signed, to the other half.
    fn equivocate(&mut self, node: usize, msg: ConsensusMsg) {
        let key = self.chain.validator(node).clone();
        let chain_id = self.chain.chain_id;
        let twin = match &msg {
            ConsensusMsg::Vote(vote) => {
                let other = match vote.vote.block_hash {
                    Some(_) => None,
                    None => Some(Hash::tagged("cachet/sim-bogus", &[&self.now.to_be_bytes()])),
                };
                let twin = Vote {
                    block_hash: other,
                    ..vote.vote
                };
                ConsensusMsg::Vote(sign_vote(&chain_id, twin, &key))
            }
            ConsensusMsg::Proposal { proposal, block } => {
                let mut block = (**block).clone();
                block.header.time_ms += 1;
                let p = cachet_consensus::Proposal {
                    block_hash: block.header.hash(),
                    ..proposal.proposal.clone()
                };
                ConsensusMsg::Proposal {
                    proposal: sign_proposal(&chain_id, p, &key),
                    block: Box::new(block),
                }
            }
        };
        for to in 0..self.nodes.len() {
            let payload = if to % 2 == 0 {
                msg.clone()
            } else {
                twin.clone()
            };
            self.send(node, to, Payload::Consensus(payload));
        }
    }
}

/// Runs one seed.
pub fn run(config: SimConfig) -> Result<Report, Violation> {
    Sim::new(config).run()
}
