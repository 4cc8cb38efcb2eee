//! Cachet's deterministic simulator.
//!
//! `N` validators run `cachetd`'s own consensus host ([`cachet_host::Core`] around the
//! consensus driver, and [`cachet_host::Chain`]: mempool admission, block building and
//! checks, sync, commit) over the node's own ledger on the in-memory store ([`ledger`]),
//! exchanging the node's own byte forms (consensus envelopes, transaction batches, encoded
//! certified blocks) over a simulated network and clock, all driven by one seed. Time is an
//! input of the host: the simulation hands it the simulated clock. Faults: message loss,
//! duplication, reordering (random delays), symmetric and one-way partitions, crash and
//! restart (a crashed node keeps only what it synced: its blocks and its signer state; some
//! block writes fail, so the node stops with the block lost though its precommit for it was
//! stored), and optionally one Byzantine validator
//! that equivocates (two different proposals and votes for each step, to different halves
//! of the network). With [`SimConfig::read_failures`], a node's store sometimes fails its
//! reads while it checks a proposal: the node must stop (and is restarted), never vote
//! against the block. With [`SimConfig::join`] one more node, outside the genesis set, follows
//! the chain until the operators vote it in (proposal and approvals from more than two
//! thirds, sent by the simulated clients once their own work is final) and then validates
//! from the agreed height, under the same faults. With [`SimConfig::state_sync`] an honest
//! validator loses its disk mid-run (ledger and signer state) and comes back by the
//! node's own state sync (`cachet_host::statesync`): the others serve snapshots every few
//! blocks, it imports one, rejoins quietly ([`cachet_host::Core::rejoin_quietly`]: it
//! must never sign at a height it had signed before the loss), follows, and backfills the
//! older blocks; it must end with every transaction final and the same state as everyone.
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

use cachet_consensus::Timeouts;
use cachet_consensus::messages::{ConsensusMsg, Vote, sign_proposal, sign_vote};
use cachet_host::statesync::{Backfiller, Joiner as StateJoiner, ServedSnapshot, answer};
use cachet_host::wire::{
    PENDING_EXPIRY_MS, REGOSSIP_AFTER_MS, REGOSSIP_MAX, consensus_envelope, open_consensus,
    open_tx_envelope, tx_batch_limit, tx_batches, tx_envelope,
};
use cachet_host::{Chain, Committed, Core, Effect, HostError, Now, TICK_MS};
use cachet_state::membership::{ACTIVATION_LEAD, decided};
use cachet_storage::Store;
use cachet_storage::snapshot::Backfill;
use cachet_testkit::{TestChain, TxFactory, address, issue_id, issue_record, key, operator_id};
use cachet_types::{CountryCode, Hash, MembershipChange, Operator, SignedTx, SigningKey, TxBody};
use sha2::{Digest, Sha256};

pub use ledger::{SimDisk, SimSigner, View};
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
    /// An honest validator loses its disk (ledger and signer state) mid-run and comes back
    /// by state sync, rejoins quietly, then backfills.
    pub state_sync: bool,
    /// An honest validator (2) loses its signer state mid-run and is back at once on its
    /// ledger (a current backup restored): it must rejoin quietly and never sign again at a
    /// height it had signed.
    pub lose_signer: bool,
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
            state_sync: false,
            lose_signer: false,
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
    /// With state sync: the height of the snapshot the node that lost its ledger imported.
    pub state_synced_at: Option<u64>,
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

/// What travels between nodes: the node's own byte forms.
#[derive(Debug, Clone)]
enum Payload {
    /// A consensus envelope.
    Consensus(Arc<[u8]>),
    /// A transaction batch envelope.
    Txs(Arc<[u8]>),
    SyncRequest {
        from_height: u64,
        max: u32,
    },
    /// Encoded certified blocks.
    SyncResponse(Arc<Vec<Vec<u8>>>),
    /// A state-sync request (`statesync::SnapshotRequest`).
    Snapshot(Arc<[u8]>),
    /// A state-sync answer (`statesync::SnapshotAnswer`).
    SnapshotAnswer(Arc<[u8]>),
}

impl Payload {
    /// Bytes on the wire (the node's gossip and sync framing adds a few).
    fn size(&self) -> usize {
        match self {
            Payload::Consensus(bytes)
            | Payload::Txs(bytes)
            | Payload::Snapshot(bytes)
            | Payload::SnapshotAnswer(bytes) => bytes.len(),
            Payload::SyncRequest { .. } => 12,
            Payload::SyncResponse(blocks) => blocks.iter().map(Vec::len).sum(),
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
    /// A timer of the node's host is due (if the node has not restarted since).
    Wake {
        node: usize,
        epoch: u32,
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
    /// A node loses its ledger and starts over by state sync.
    LoseLedger {
        node: usize,
    },
    LoseSigner {
        node: usize,
    },
}

/// What a node keeps across a crash: synced writes only.
#[derive(Clone, Default)]
struct Disk {
    store: Arc<SimDisk>,
    signer: SimSigner,
}

struct SimNode {
    alive: bool,
    epoch: u32,
    disk: Disk,
    core: Core<usize>,
    /// Whether the store fails its reads while the next proposal is checked.
    fail_check: bool,
    /// The block whose check failed to read the store, until the node stops.
    unchecked: Option<(u64, Hash)>,
    /// Failed block writes of its disk seen so far.
    writes_failed: u64,
    /// The snapshots it serves (the newest last).
    served: Vec<Arc<ServedSnapshot>>,
    /// While it joins by state sync: its empty store and the joiner (its core is idle).
    joining: Option<Box<(Store, StateJoiner<usize>)>>,
    /// While it backfills after a state sync.
    backfill: Option<Box<Backfiller<usize>>>,
}

impl SimNode {
    fn chain(&self) -> &Chain {
        self.core.chain()
    }

    fn view(&self) -> View<'_> {
        View(self.core.chain().ledger())
    }

    /// Signatures checked by this run of the node (its driver's and its chain's).
    fn signature_checks(&self) -> u64 {
        self.core.driver().signature_checks() + self.chain().counters().signature_checks
    }
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

/// With state sync, nodes make a snapshot every this many blocks.
const SNAPSHOT_EVERY: u64 = 4;

/// How far ahead of the tip a join is proposed to apply.
const JOIN_LEAD: u64 = 8;
/// Blocks past the activation height that must be final before a join run ends.
const JOIN_TAIL: u64 = 4;

/// The operators that have work of their own (more validators share the same load, which
/// keeps the figures of different sizes comparable).
const COUNTRIES: [&str; 8] = ["AT", "DE", "CH", "FR", "IT", "NL", "BE", "SE"];

fn workload(chain: &TestChain, operators: usize) -> Workload {
    let mut factory = TxFactory::new(chain.chain_id);
    let mut txs = Vec::new();
    let mut invalid = BTreeSet::new();
    for (index, country) in COUNTRIES.iter().enumerate().take(operators) {
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
    /// Each node's load so far (signature checks: of its runs that ended).
    counts: Vec<Counts>,
    /// First submission time of each workload transaction, by id.
    submitted: BTreeMap<Hash, u64>,
    /// When each transaction was first final somewhere.
    final_at: BTreeMap<Hash, u64>,
    /// The snapshot height a node joined from, with state sync.
    state_synced_at: Option<u64>,
}

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
                    node_key: key("sim-joiner-node").public_key(),
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
                let key = Self::node_key(&chain, joiner.as_ref(), index);
                let core = Self::boot(&disk, &chain, key, timeouts)
                    .unwrap_or_else(|e| panic!("a new memory store failed: {e}"));
                SimNode {
                    alive: true,
                    epoch: 0,
                    disk,
                    core,
                    fail_check: false,
                    unchecked: None,
                    writes_failed: 0,
                    served: Vec::new(),
                    joining: None,
                    backfill: None,
                }
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
            state_synced_at: None,
        }
    }

    /// Node `index`'s validator key: a genesis validator's, or the joiner's (the last node).
    fn node_key(chain: &TestChain, joiner: Option<&Joiner>, index: usize) -> SigningKey {
        match joiner {
            Some(joiner) if index == chain.genesis.operators.len() => joiner.validator.clone(),
            _ => chain.validator(index).clone(),
        }
    }

    /// A node's host over what its disk holds, as `cachetd` starts it.
    fn boot(
        disk: &Disk,
        chain: &TestChain,
        key: SigningKey,
        timeouts: Timeouts,
    ) -> Result<Core<usize>, cachet_storage::StoreError> {
        let ledger = ledger::open_chain(&disk.store, &chain.genesis)?;
        let stored = disk.signer.load();
        let mut core = Core::new(
            ledger,
            Some(key),
            stored.clone().unwrap_or_default(),
            Box::new(disk.signer.clone()),
            timeouts,
        );
        if stored.is_none() {
            core.rejoin_quietly();
        }
        Ok(core)
    }

    /// The time as the hosts take it: the genesis time plus the simulated milliseconds.
    fn time(&self) -> Now {
        Now {
            wall_ms: self.chain.genesis.genesis_time_ms + self.now,
            mono_ms: self.now,
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
        if self.config.state_sync {
            replay += " --state-sync";
        }
        if self.config.lose_signer {
            replay += " --lose-signer";
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
            let now = self.time();
            let result = self.nodes[node].core.start(now);
            self.after(node, result)?;
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
        if self.config.state_sync {
            // Validator 1 (never the Byzantine one), once the chain has grown.
            let when = self.config.fault_ms / 2;
            self.at(when, Event::LoseLedger { node: 1 });
        }
        if self.config.lose_signer {
            let when = self.config.fault_ms / 3;
            self.at(when, Event::LoseSigner { node: 2 });
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
            .map(|i| self.nodes[i].view().tip().height)
            .collect();
        if heights.len() != 1 || !self.join_done() || !self.state_sync_done() {
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
            node.alive && valid.iter().all(|id| node.view().is_final(id))
        })
    }

    fn finish(mut self) -> Result<Report, Violation> {
        if !self.converged() {
            let heights: Vec<u64> = self
                .nodes
                .iter()
                .map(|node| node.view().tip().height)
                .collect();
            let final_txs: Vec<usize> = self
                .nodes
                .iter()
                .map(|node| node.view().final_txs())
                .collect();
            let valid = self.work.txs.len() - self.work.invalid.len() - self.work.optional.len();
            let consensus: Vec<String> = self
                .nodes
                .iter()
                .map(|n| {
                    let signer = n.core.driver().signer();
                    format!(
                        "h{} r{} pool {} signed h{} r{} step {} locked {}",
                        n.core.driver().height(),
                        n.core.driver().round(),
                        n.chain().counters().mempool_size,
                        signer.height,
                        signer.round,
                        signer.step,
                        signer.locked.is_some()
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
        let reference = self.nodes[0].view();
        let tip = reference.tip();
        for i in self.honest() {
            let other = self.nodes[i].view().tip();
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
        let replay = ledger::replay(&self.chain.genesis);
        let mut txs_final = 0;
        for height in 1..=tip.height {
            let Some(block) = reference.block(height) else {
                return Err(self.violation(format!("validity: node 0 lacks block {height}")));
            };
            if let Err(error) = ledger::replay_block(&replay, &block) {
                return Err(self.violation(format!(
                    "validity: final block {} does not replay: {error}",
                    block.block.header.height
                )));
            }
            txs_final += block.block.txs.len();
        }
        let joined_at = reference.first_change().filter(|_| self.joiner.is_some());
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
        let running: u64 = self.nodes[..validators]
            .iter()
            .map(SimNode::signature_checks)
            .sum();
        let load = Load {
            messages: sum(|c| c.messages),
            bytes: sum(|c| c.bytes),
            signature_checks: (self.counts[..validators]
                .iter()
                .map(|c| c.signature_checks)
                .sum::<u64>()
                + running)
                / per,
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
            state_synced_at: self.state_synced_at,
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

    /// Without state sync, true. With it: the node that lost its ledger has imported a
    /// snapshot and finished its backfill.
    fn state_sync_done(&self) -> bool {
        !self.config.state_sync
            || (self.state_synced_at.is_some()
                && self
                    .nodes
                    .iter()
                    .all(|n| n.joining.is_none() && n.backfill.is_none()))
    }

    /// Without a join, true. With one: the joiner's chain has the new operator in its set
    /// for `JOIN_TAIL` blocks, and the joiner has signed at a height of that set.
    fn join_done(&self) -> bool {
        if self.joiner.is_none() {
            return true;
        }
        let node = &self.nodes[self.nodes.len() - 1];
        let view = node.view();
        view.first_change().is_some_and(|activation| {
            view.tip().height >= activation + JOIN_TAIL
                && node.core.driver().signer().height >= activation
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
            .max_by_key(|i| self.nodes[*i].view().tip().height)
        else {
            return;
        };
        let ledger = self.nodes[view].view();
        let tip = ledger.tip().height;
        let chain = &self.chain;
        let n = chain.genesis.operators.len();
        // An operator approves once its own work is final (operators past the first eight
        // have none).
        let own_work_done = |issuer: usize| {
            issuer >= COUNTRIES.len()
                || ledger.nonce(&chain.issuer(issuer).public_key()) + 1 >= STATIC_TXS
        };
        let Some(joiner) = self.joiner.as_mut() else {
            return;
        };
        let sign = |key: &SigningKey, body: TxBody| {
            let nonce = ledger.nonce(&key.public_key()) + 1;
            SignedTx::sign(chain.chain_id, key, nonce, body)
        };
        let mut send = Vec::new();
        if let Some(activation) = ledger.first_change() {
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
                    if matches!(ledger.0.store().proposal(&proposal), Ok(Some(_))) =>
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

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Deliver { from, to, payload } => {
                if !self.nodes[to].alive {
                    return Ok(());
                }
                if self.nodes[to].joining.is_some()
                    && !matches!(payload, Payload::Snapshot(_) | Payload::SnapshotAnswer(_))
                {
                    // Not a node yet: nothing else is taken.
                    return Ok(());
                }
                self.deliver(from, to, payload)
            }
            Event::Wake { node, epoch } => {
                if !self.nodes[node].alive || self.nodes[node].epoch != epoch {
                    return Ok(());
                }
                let now = self.time();
                let result = self.nodes[node].core.on_time(now);
                self.after(node, result)
            }
            Event::Tick { node } => {
                self.at(TICK_MS, Event::Tick { node });
                if !self.nodes[node].alive {
                    return Ok(());
                }
                if self.nodes[node].joining.is_some() {
                    return self.join_tick(node);
                }
                self.tick(node)
            }
            Event::Submit { node, tx: index } => {
                let tx = self.work.txs[index].clone();
                if !self.nodes[node].alive || self.nodes[node].joining.is_some() {
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
                if self.nodes[node].view().nonce(&tx.signer) >= tx.nonce {
                    // Final (or its nonce is used): the client stops.
                    return Ok(());
                }
                self.record(&[b"submit", &[node as u8], tx.id().as_bytes()]);
                self.submitted.entry(tx.id()).or_insert(self.now);
                // The node's API path: admitted (or refused, e.g. out of nonce order, and
                // remembered), then gossiped from the outbox.
                let _ = self.nodes[node].chain().submit(&tx.to_bytes(), self.now);
                let fresh = self.nodes[node].chain().take_outbox();
                self.gossip_txs(node, fresh, None);
                let now = self.time();
                let result = self.nodes[node].core.on_work(now);
                self.after(node, result)?;
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
                    let target = &mut self.nodes[node];
                    target.fail_check = false;
                    target.disk.store.fail_next_write(false);
                    if !target.alive {
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
            Event::LoseLedger { node } => self.lose_ledger(node),
            Event::LoseSigner { node } => {
                self.record(&[b"lose-signer", &[node as u8]]);
                // Down (if it was not already), its signer state gone, back at once.
                self.crash(node);
                self.nodes[node].disk.signer.lose();
                self.restart(node)
            }
        }
    }

    /// `node` loses its disk, ledger and signer state, and starts over by state sync: an
    /// empty store and the host's joiner, asking every peer; once imported it rejoins
    /// quietly (no signer state), and any signature at a height it had signed before the
    /// loss is a violation.
    fn lose_ledger(&mut self, node: usize) -> Result<(), Violation> {
        self.record(&[b"lose-ledger", &[node as u8]]);
        self.nodes[node].disk.signer.lose();
        self.counts[node].signature_checks += self.nodes[node].signature_checks();
        let fresh = Arc::new(ledger::SimDisk::default());
        let backend: Arc<dyn cachet_storage::Backend> = fresh.clone();
        let store = Store::with_backend_importing(backend, &self.chain.genesis)
            .map_err(|e| self.violation(format!("a new memory store failed: {e}")))?;
        let joiner = StateJoiner::new(&store)
            .map_err(|e| self.violation(format!("a new memory store failed: {e}")))?;
        let target = &mut self.nodes[node];
        target.disk.store = fresh;
        target.alive = true;
        target.epoch += 1;
        target.unchecked = None;
        target.fail_check = false;
        target.served.clear();
        target.backfill = None;
        target.joining = Some(Box::new((store, joiner)));
        let now = self.now;
        let mut sends = Vec::new();
        for peer in (0..self.nodes.len()).filter(|p| *p != node) {
            if let Some(joining) = self.nodes[node].joining.as_mut() {
                sends.extend(joining.1.on_peer(peer, now));
            }
        }
        self.carry(node, sends);
        Ok(())
    }

    fn carry(&mut self, node: usize, sends: Vec<cachet_host::statesync::Send<usize>>) {
        for send in sends {
            self.send(node, send.peer, Payload::Snapshot(send.request.into()));
        }
    }

    /// A joining node's tick: late requests go elsewhere.
    fn join_tick(&mut self, node: usize) -> Result<(), Violation> {
        let now = self.now;
        let Some(joining) = self.nodes[node].joining.as_mut() else {
            return Ok(());
        };
        let (store, joiner) = &mut **joining;
        let sends = joiner.on_time(store, now);
        let sends = sends.map_err(|e| self.violation(format!("node {node}: {e}")))?;
        self.carry(node, sends);
        self.after_join(node)
    }

    /// Once a joining node has imported its snapshot: it boots as a node on that store,
    /// as `cachetd` does, and starts its backfill.
    fn after_join(&mut self, node: usize) -> Result<(), Violation> {
        let imported = self.nodes[node]
            .joining
            .as_ref()
            .and_then(|joining| joining.1.imported());
        let Some(tip) = imported else {
            return Ok(());
        };
        self.record(&[b"state-synced", &[node as u8], &tip.height.to_be_bytes()]);
        self.state_synced_at = Some(tip.height);
        self.nodes[node].joining = None;
        let disk = self.nodes[node].disk.clone();
        let key = Self::node_key(&self.chain, self.joiner.as_ref(), node);
        let core = Self::boot(&disk, &self.chain, key, Self::timeouts()).map_err(|e| {
            self.violation(format!("node {node} cannot open its synced store: {e}"))
        })?;
        self.nodes[node].core = core;
        let now = self.time();
        let result = self.nodes[node].core.start(now);
        self.after(node, result)?;
        let peer = self.other(node);
        self.nodes[node].core.on_peer_connected(peer, now);
        self.after(node, Ok(()))?;
        let scratch = Store::in_memory(&self.chain.genesis);
        let backfill = Backfill::new(self.nodes[node].chain().ledger().store(), scratch)
            .map_err(|e| self.violation(format!("node {node} cannot start its backfill: {e}")))?;
        let mut backfiller = Backfiller::new(backfill);
        let mut sends = Vec::new();
        for peer in (0..self.nodes.len()).filter(|p| *p != node) {
            sends.extend(
                backfiller
                    .on_peer(peer, self.now)
                    .map_err(|e| self.violation(format!("node {node}: {e}")))?,
            );
        }
        self.nodes[node].backfill = Some(Box::new(backfiller));
        self.carry(node, sends);
        Ok(())
    }

    /// A node that holds its whole history makes a snapshot each time its tip passes a
    /// multiple of [`SNAPSHOT_EVERY`], split into four chunks, and keeps the last two.
    fn make_snapshot(&mut self, node: usize) -> Result<(), Violation> {
        let store = self.nodes[node].chain().ledger().store();
        let (Ok(tip), Ok(None)) = (store.tip(), store.base()) else {
            return Ok(());
        };
        let newest = self.nodes[node].served.last().map_or(0, |s| s.height());
        if tip.height < SNAPSHOT_EVERY || tip.height / SNAPSHOT_EVERY <= newest / SNAPSHOT_EVERY {
            return Ok(());
        }
        let made = store
            .freeze(std::path::Path::new("unused by the memory backend"))
            .and_then(|frozen| ServedSnapshot::split(frozen, 2));
        match made {
            Ok(snapshot) => {
                self.record(&[b"snapshot", &[node as u8], &tip.height.to_be_bytes()]);
                let served = &mut self.nodes[node].served;
                served.push(Arc::new(snapshot));
                if served.len() > 2 {
                    served.remove(0);
                }
                Ok(())
            }
            // An injected read failure: no snapshot this time.
            Err(_) if self.nodes[node].disk.store.failed_reads() > 0 => Ok(()),
            Err(e) => Err(self.violation(format!("node {node} cannot make a snapshot: {e}"))),
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
        let choice = self.rng.below(5);
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
            3 if self.config.crashes => {
                // The node's next block write fails (power lost mid-write): the host stops
                // it, as `cachetd` exits on a failed write, and the block is lost though its
                // precommit, synced before, is not.
                let node = self.rng.below(n as u64) as usize;
                if !self.byzantine(node)
                    && self.nodes[node].alive
                    && self.nodes[node].joining.is_none()
                    && self.nodes[node].backfill.is_none()
                {
                    self.record(&[b"torn-write", &[node as u8]]);
                    self.nodes[node].disk.store.fail_next_write(true);
                }
            }
            _ => {
                self.net.cut.clear();
                self.record(&[b"links-restored"]);
            }
        }
    }

    /// Stops `node`: what it had not synced (its mempool, a block being written) is lost.
    fn crash(&mut self, node: usize) {
        // A node joining by state sync or backfilling is spared (`cachetd` resumes both
        // from disk; the simulation keeps the joiner's and the scratch ledger in memory).
        if !self.nodes[node].alive
            || self.nodes[node].joining.is_some()
            || self.nodes[node].backfill.is_some()
        {
            return;
        }
        self.record(&[b"crash", &[node as u8]]);
        self.crashes.0 += 1;
        self.counts[node].signature_checks += self.nodes[node].signature_checks();
        let target = &mut self.nodes[node];
        target.alive = false;
        target.unchecked = None;
        target.fail_check = false;
        target.disk.store.fail_next_write(false);
        target.epoch += 1;
        let down = 500 + self.rng.below(4_000);
        self.at(down, Event::Restart { node });
    }

    fn restart(&mut self, node: usize) -> Result<(), Violation> {
        if self.nodes[node].alive {
            return Ok(());
        }
        self.record(&[b"restart", &[node as u8]]);
        let disk = self.nodes[node].disk.clone();
        let key = Self::node_key(&self.chain, self.joiner.as_ref(), node);
        let core = Self::boot(&disk, &self.chain, key, Self::timeouts())
            .map_err(|e| self.violation(format!("node {node} cannot reopen its own store: {e}")))?;
        let target = &mut self.nodes[node];
        target.core = core;
        target.alive = true;
        let now = self.time();
        let result = self.nodes[node].core.start(now);
        self.after(node, result)?;
        // Its network connects to a peer, which it asks for blocks.
        let peer = self.other(node);
        self.nodes[node].core.on_peer_connected(peer, now);
        self.after(node, Ok(()))
    }

    /// A random node other than `node`.
    fn other(&mut self, node: usize) -> usize {
        let n = self.nodes.len() as u64;
        (node as u64 + 1 + self.rng.below(n - 1)) as usize % self.nodes.len()
    }

    fn tick(&mut self, node: usize) -> Result<(), Violation> {
        let now = self.time();
        let result = self.nodes[node].core.on_tick(now);
        self.after(node, result)?;
        if !self.nodes[node].alive {
            return Ok(());
        }
        // The gossip task's look at the pool: transactions pending a while are sent again
        // (their first gossip may have been lost), those a block would refuse are refused.
        let lingering = self.nodes[node].chain().lingering(
            now.mono_ms,
            now.wall_ms,
            REGOSSIP_AFTER_MS,
            PENDING_EXPIRY_MS,
            REGOSSIP_MAX,
        );
        let peer = self.other(node);
        self.gossip_txs(node, lingering, Some(peer));
        if self.config.state_sync {
            self.make_snapshot(node)?;
            if let Some(backfiller) = self.nodes[node].backfill.as_mut() {
                let sends = backfiller
                    .on_time(self.now)
                    .map_err(|e| format!("node {node}: {e}"));
                let sends = sends.map_err(|e| self.violation(e))?;
                self.carry(node, sends);
            }
        }
        Ok(())
    }

    /// Sends encoded transactions from `node` in the node's batches: to everyone, or to one
    /// peer (gossip again reaches the mesh; one peer is enough for the simulation's clients,
    /// which also resubmit).
    fn gossip_txs(&mut self, node: usize, txs: Vec<Vec<u8>>, to: Option<usize>) {
        if txs.is_empty() {
            return;
        }
        let limit = tx_batch_limit(self.chain.genesis.params.max_tx_bytes as usize);
        let wall_ms = self.time().wall_ms;
        for batch in tx_batches(txs, limit) {
            let payload = Payload::Txs(tx_envelope(wall_ms, &batch).into());
            match to {
                Some(peer) => self.send(node, peer, payload),
                None => self.broadcast(node, payload),
            }
        }
    }

    fn deliver(&mut self, from: usize, to: usize, payload: Payload) -> Result<(), Violation> {
        let now = self.time();
        match payload {
            Payload::Consensus(envelope) => {
                self.record(&[b"msg", &[from as u8, to as u8], &envelope]);
                let target = &mut self.nodes[to];
                // An injected read failure: the store fails while this node checks a
                // proposal for the height it is deciding.
                let checking = match open_consensus(&envelope, usize::MAX) {
                    Some(ConsensusMsg::Proposal { proposal, .. })
                        if target.fail_check
                            && proposal.proposal.height == target.core.driver().height() =>
                    {
                        Some((proposal.proposal.height, proposal.proposal.block_hash))
                    }
                    _ => None,
                };
                let failed_before = target.disk.store.failed_reads();
                if checking.is_some() {
                    target.fail_check = false;
                    target.disk.store.fail_reads(true);
                }
                let result = target.core.on_consensus(&envelope, from, now);
                target.disk.store.fail_reads(false);
                if target.disk.store.failed_reads() > failed_before {
                    target.unchecked = checking;
                }
                self.after(to, result.map(|_| ()))
            }
            Payload::Txs(envelope) => {
                self.record(&[b"txs", &[from as u8, to as u8], &envelope]);
                let limit = tx_batch_limit(self.chain.genesis.params.max_tx_bytes as usize);
                let Some(txs) = open_tx_envelope(&envelope, limit) else {
                    return Err(self.violation("a node sent a malformed transaction batch"));
                };
                self.nodes[to].chain().admit_batch(&txs, now.mono_ms);
                let result = self.nodes[to].core.on_work(now);
                self.after(to, result)
            }
            Payload::SyncRequest { from_height, max } => {
                self.record(&[
                    b"sync?",
                    &[from as u8, to as u8],
                    &from_height.to_be_bytes(),
                ]);
                let limit = 2 * self.nodes[to].core.max_message_bytes();
                let blocks = self.nodes[to]
                    .chain()
                    .blocks_from(from_height, max, limit)
                    .map_err(|e| self.violation(format!("node {to} cannot read blocks: {e}")))?;
                if !blocks.is_empty() {
                    self.send(to, from, Payload::SyncResponse(Arc::new(blocks)));
                }
                Ok(())
            }
            Payload::SyncResponse(blocks) => {
                self.record(&[b"sync!", &[from as u8, to as u8], &[blocks.len() as u8]]);
                let result = self.nodes[to].core.on_blocks(from, &blocks, now);
                self.after(to, result)
            }
            Payload::Snapshot(request) => {
                self.record(&[b"snapshot?", &[from as u8, to as u8], &request]);
                let target = &self.nodes[to];
                let served: Vec<&ServedSnapshot> = if target.joining.is_some() {
                    Vec::new()
                } else {
                    target.served.iter().map(|s| s.as_ref()).collect()
                };
                let live = match &target.joining {
                    Some(joining) => &joining.0,
                    None => target.chain().ledger().store(),
                };
                let bytes = answer(&served, live, &request, 32 << 20)
                    .map_err(|e| format!("node {to} cannot answer a state-sync request: {e}"));
                let bytes = bytes.map_err(|e| self.violation(e))?;
                self.send(to, from, Payload::SnapshotAnswer(bytes.into()));
                Ok(())
            }
            Payload::SnapshotAnswer(bytes) => {
                self.record(&[b"snapshot!", &[from as u8, to as u8], &[bytes.len() as u8]]);
                let now = self.now;
                if let Some(joining) = self.nodes[to].joining.as_mut() {
                    let (store, joiner) = &mut **joining;
                    let sends = joiner
                        .on_answer(store, from, &bytes, now)
                        .map_err(|e| format!("node {to}: {e}"));
                    let sends = sends.map_err(|e| self.violation(e))?;
                    self.carry(to, sends);
                    return self.after_join(to);
                }
                let target = &mut self.nodes[to];
                if let Some(backfiller) = target.backfill.as_mut() {
                    let store = target.core.chain().ledger().store();
                    let sends = backfiller
                        .on_answer(store, from, &bytes, now)
                        .map_err(|e| format!("node {to}: {e}"));
                    let done = backfiller.done();
                    let sends = sends.map_err(|e| self.violation(e))?;
                    if done {
                        self.record(&[b"backfilled", &[to as u8]]);
                        self.nodes[to].backfill = None;
                    }
                    self.carry(to, sends);
                }
                Ok(())
            }
        }
    }

    /// Carries out what `node`'s host did in its last call, in order, checking as it goes;
    /// then, if the host stopped, stops the node (a failure the simulation injected) or
    /// reports the violation.
    fn after(&mut self, node: usize, result: Result<(), HostError>) -> Result<(), Violation> {
        if let Some((height, reached)) = self.nodes[node].disk.signer.breach() {
            return Err(self.violation(format!(
                "node {node} signed at height {height} after losing a signer state that had reached height {reached}"
            )));
        }
        let effects = self.nodes[node].core.take_effects();
        for effect in effects {
            match effect {
                Effect::Publish(envelope) => {
                    let msg = open_consensus(&envelope, usize::MAX);
                    if let (Some(ConsensusMsg::Vote(vote)), Some((height, hash))) =
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
                    match msg {
                        Some(msg) if self.byzantine(node) => self.equivocate(node, msg),
                        _ => self.broadcast(node, Payload::Consensus(envelope.into())),
                    }
                }
                Effect::RequestBlocks {
                    peer,
                    from_height,
                    max,
                } => {
                    let peer = match peer {
                        Some(peer) => peer,
                        None => self.other(node),
                    };
                    self.send(node, peer, Payload::SyncRequest { from_height, max });
                }
                Effect::WakeAt(at) => {
                    let epoch = self.nodes[node].epoch;
                    self.at(at.saturating_sub(self.now), Event::Wake { node, epoch });
                }
                Effect::Committed(committed) => self.committed(node, committed)?,
                Effect::Equivocation { .. } => {
                    if !self.byzantine(node) {
                        self.equivocations += 1;
                    }
                }
            }
        }
        let Err(error) = result else {
            return Ok(());
        };
        let unchecked = self.nodes[node].unchecked;
        let writes_failed = self.nodes[node].disk.store.failed_writes();
        let write_failed = writes_failed > self.nodes[node].writes_failed;
        self.nodes[node].writes_failed = writes_failed;
        match error {
            // A failure the simulation injected: the node stops, as `cachetd` does, and its
            // operator restarts it. It cast no vote on the block it could not check.
            HostError::Check(_) | HostError::Storage { .. } if unchecked.is_some() => {
                self.record(&[b"stopped", &[node as u8]]);
                self.failed_checks.extend(unchecked);
                self.crash(node);
                Ok(())
            }
            HostError::Storage { .. } if write_failed => {
                self.record(&[b"write-failed", &[node as u8]]);
                self.crashes.1 += 1;
                self.crash(node);
                Ok(())
            }
            error => Err(self.violation(format!("node {node} stopped: {error}"))),
        }
    }

    /// A block `node` committed: checks agreement and validity.
    fn committed(&mut self, node: usize, committed: Committed) -> Result<(), Violation> {
        let Committed { tip, round, txs } = committed;
        let (height, hash) = (tip.height, tip.block_hash);
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
                for id in &txs {
                    self.final_at.entry(*id).or_insert(self.now);
                }
            }
        }
        if let Some(id) = txs.iter().find(|id| self.work.invalid.contains(id)) {
            return Err(self.violation(format!(
                "validity: invalid transaction {id} is final at height {height}"
            )));
        }
        self.max_round = self.max_round.max(round);
        self.record(&[b"final", &[node as u8], hash.as_bytes()]);
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
        let wall_ms = self.time().wall_ms;
        let msg: Arc<[u8]> = consensus_envelope(wall_ms, &msg).into();
        let twin: Arc<[u8]> = consensus_envelope(wall_ms, &twin).into();
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
