//! The node's metrics in the Prometheus text format (`prometheus-client`, OpenMetrics
//! encoding), served at `GET /metrics`. Event metrics (API requests, gossip and sync
//! traffic, consensus steps, finality) are recorded as they happen; the node's and the
//! process's levels (height, mempool, peers, RocksDB, CPU, memory, files) are read at each
//! scrape. The names are documented in `docs/metrics.md`.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::node::Node;

/// Labels of an API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/v1/stamp/{id}`), or `unrouted`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Answer status code.
    pub status: u16,
}

/// Labels of an API route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route's pattern.
    pub route: String,
}

/// A consensus step.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum StepName {
    /// Waiting for the proposal.
    Propose,
    /// Collecting prevotes.
    Prevote,
    /// Collecting precommits.
    Precommit,
}

impl StepName {
    /// Its label value.
    fn label(self) -> &'static str {
        match self {
            StepName::Propose => "propose",
            StepName::Prevote => "prevote",
            StepName::Precommit => "precommit",
        }
    }
}

/// Labels of a consensus step.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// `propose`, `prevote` or `precommit`.
    pub step: &'static str,
}

/// Labels of peer-to-peer traffic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    /// `consensus`, `txs` (gossip), `sync_served`, `sync_received`.
    pub kind: &'static str,
    /// `in` or `out`.
    pub direction: &'static str,
}

/// Labels of a refusal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The rejection code.
    pub reason: &'static str,
}

/// Labels of a peer count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    /// `operator` (an operator's bound node) or `other`.
    pub kind: &'static str,
}

/// Every metric of the node.
pub struct Metrics {
    registry: Registry,
    /// Serialises scrapes: the levels are set, then encoded, as one.
    scrape: Mutex<()>,
    api_requests: Family<RequestLabels, Counter>,
    api_seconds: Family<RouteLabels, Histogram>,
    step_seconds: Family<StepLabels, Histogram>,
    finality_seconds: Histogram,
    traffic_messages: Family<TrafficLabels, Counter>,
    traffic_bytes: Family<TrafficLabels, Counter>,
    height: Gauge,
    round: Gauge,
    mempool_txs: Gauge,
    mempool_bytes: Gauge,
    peers: Family<PeerLabels, Gauge>,
    blocks_committed: Counter,
    txs_admitted: Counter,
    txs_final: Counter,
    txs_rejected: Family<ReasonLabels, Counter>,
    signature_checks: Counter,
    store_sst_bytes: Gauge,
    store_memtable_bytes: Gauge,
    store_pending_compaction_bytes: Gauge,
    store_write_stopped: Gauge,
    store_delayed_write_rate: Gauge,
    cpu_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    resident_bytes: Gauge,
    open_fds: Gauge,
}

/// Latency buckets: 1 ms to ~65 s, doubling.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.001, 2.0, 17)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Metrics {
        let mut root = Registry::default();
        let m = Metrics {
            scrape: Mutex::new(()),
            api_requests: Family::default(),
            api_seconds: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            step_seconds: Family::new_with_constructor(|| Histogram::new(latency_buckets())),
            finality_seconds: Histogram::new(latency_buckets()),
            traffic_messages: Family::default(),
            traffic_bytes: Family::default(),
            height: Gauge::default(),
            round: Gauge::default(),
            mempool_txs: Gauge::default(),
            mempool_bytes: Gauge::default(),
            peers: Family::default(),
            blocks_committed: Counter::default(),
            txs_admitted: Counter::default(),
            txs_final: Counter::default(),
            txs_rejected: Family::default(),
            signature_checks: Counter::default(),
            store_sst_bytes: Gauge::default(),
            store_memtable_bytes: Gauge::default(),
            store_pending_compaction_bytes: Gauge::default(),
            store_write_stopped: Gauge::default(),
            store_delayed_write_rate: Gauge::default(),
            cpu_seconds: Counter::default(),
            resident_bytes: Gauge::default(),
            open_fds: Gauge::default(),
            registry: Registry::default(),
        };
        let registry = root.sub_registry_with_prefix("cachet");
        registry.register(
            "api_requests",
            "API requests answered, by route, method and status",
            m.api_requests.clone(),
        );
        registry.register_with_unit(
            "api_request",
            "Time to answer an API request, by route",
            Unit::Seconds,
            m.api_seconds.clone(),
        );
        registry.register_with_unit(
            "consensus_step",
            "Time spent in each consensus step of a round",
            Unit::Seconds,
            m.step_seconds.clone(),
        );
        registry.register_with_unit(
            "block_finality",
            "From a block's timestamp (its proposer's clock) to its commit on this node",
            Unit::Seconds,
            m.finality_seconds.clone(),
        );
        registry.register(
            "p2p_messages",
            "Peer-to-peer messages, by kind and direction",
            m.traffic_messages.clone(),
        );
        registry.register_with_unit(
            "p2p",
            "Peer-to-peer payload bytes, by kind and direction",
            Unit::Bytes,
            m.traffic_bytes.clone(),
        );
        registry.register(
            "height",
            "Height of the last committed block",
            m.height.clone(),
        );
        registry.register(
            "consensus_round",
            "Consensus round of the height being decided",
            m.round.clone(),
        );
        registry.register("mempool_txs", "Transactions waiting", m.mempool_txs.clone());
        registry.register_with_unit(
            "mempool",
            "Encoded size of the transactions waiting",
            Unit::Bytes,
            m.mempool_bytes.clone(),
        );
        registry.register("peers", "Connected peers, by kind", m.peers.clone());
        registry.register(
            "blocks_committed",
            "Blocks committed since start",
            m.blocks_committed.clone(),
        );
        registry.register(
            "txs_admitted",
            "Transactions admitted to the mempool since start (clients' and gossiped)",
            m.txs_admitted.clone(),
        );
        registry.register(
            "txs_final",
            "Transactions made final since start",
            m.txs_final.clone(),
        );
        registry.register(
            "txs_rejected",
            "Transactions refused since start, by rejection code",
            m.txs_rejected.clone(),
        );
        registry.register(
            "signature_checks",
            "Transaction and certificate signatures checked since start",
            m.signature_checks.clone(),
        );
        registry.register_with_unit(
            "store_sst",
            "RocksDB table files on disk",
            Unit::Bytes,
            m.store_sst_bytes.clone(),
        );
        registry.register_with_unit(
            "store_memtable",
            "RocksDB memtables",
            Unit::Bytes,
            m.store_memtable_bytes.clone(),
        );
        registry.register_with_unit(
            "store_pending_compaction",
            "RocksDB's estimate of what compaction has still to rewrite",
            Unit::Bytes,
            m.store_pending_compaction_bytes.clone(),
        );
        registry.register(
            "store_write_stopped",
            "1 while RocksDB stops writes (a write stall)",
            m.store_write_stopped.clone(),
        );
        registry.register(
            "store_delayed_write_rate",
            "Bytes per second RocksDB slows writes to (0: not slowed)",
            m.store_delayed_write_rate.clone(),
        );
        // The process figures under Prometheus's standard names.
        let process = root.sub_registry_with_prefix("process");
        process.register_with_unit(
            "cpu",
            "User and system CPU time of the process",
            Unit::Seconds,
            m.cpu_seconds.clone(),
        );
        process.register_with_unit(
            "resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            m.resident_bytes.clone(),
        );
        process.register("open_fds", "Open file descriptors", m.open_fds.clone());
        Metrics {
            registry: root,
            ..m
        }
    }

    /// An API request answered.
    pub fn api_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        self.api_requests
            .get_or_create(&RequestLabels {
                route: route.into(),
                method: method.into(),
                status,
            })
            .inc();
        self.api_seconds
            .get_or_create(&RouteLabels {
                route: route.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// A consensus step ended after `took`.
    pub fn step(&self, step: StepName, took: Duration) {
        self.step_seconds
            .get_or_create(&StepLabels { step: step.label() })
            .observe(took.as_secs_f64());
    }

    /// A block stamped `block_ms` was committed at `now_ms` (both wall clock).
    pub fn committed(&self, block_ms: u64, now_ms: u64) {
        self.finality_seconds
            .observe(now_ms.saturating_sub(block_ms) as f64 / 1000.0);
    }

    /// Peer-to-peer messages of `bytes` in all.
    pub fn traffic(&self, kind: &'static str, direction: &'static str, messages: u64, bytes: u64) {
        let labels = TrafficLabels { kind, direction };
        self.traffic_messages
            .get_or_create(&labels)
            .inc_by(messages);
        self.traffic_bytes.get_or_create(&labels).inc_by(bytes);
    }

    /// The text exposition of every metric, levels read now.
    pub fn render(&self, node: &Node) -> String {
        let _scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        let chain = node.chain();
        let counters = chain.counters();
        let store = node.ledger().store();
        if let Ok(tip) = store.tip() {
            self.height.set(tip.height as i64);
        }
        self.round.set(counters.consensus_round as i64);
        self.mempool_txs.set(counters.mempool_size as i64);
        self.mempool_bytes.set(counters.mempool_bytes as i64);
        let (peers, operator_peers) = node.peer_counts();
        self.peers
            .get_or_create(&PeerLabels { kind: "operator" })
            .set(operator_peers as i64);
        self.peers
            .get_or_create(&PeerLabels { kind: "other" })
            .set(peers.saturating_sub(operator_peers) as i64);
        catch_up(&self.blocks_committed, counters.blocks_committed);
        catch_up(&self.txs_admitted, counters.txs_admitted);
        catch_up(&self.txs_final, counters.txs_final);
        catch_up(&self.signature_checks, counters.signature_checks);
        for (reason, count) in chain.rejections() {
            catch_up(
                &self.txs_rejected.get_or_create(&ReasonLabels { reason }),
                count,
            );
        }
        let stats = store.stats();
        self.store_sst_bytes.set(stats.sst_bytes as i64);
        self.store_memtable_bytes.set(stats.memtable_bytes as i64);
        self.store_pending_compaction_bytes
            .set(stats.pending_compaction_bytes as i64);
        self.store_write_stopped.set(stats.write_stopped as i64);
        self.store_delayed_write_rate
            .set(stats.delayed_write_rate as i64);
        let process = crate::process::read();
        let cpu = process.cpu.as_secs_f64();
        let seen = self.cpu_seconds.get();
        if cpu > seen {
            self.cpu_seconds.inc_by(cpu - seen);
        }
        self.resident_bytes.set(process.resident_bytes as i64);
        self.open_fds.set(process.open_fds as i64);
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Moves a counter up to a total kept elsewhere (which only grows).
fn catch_up(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}
