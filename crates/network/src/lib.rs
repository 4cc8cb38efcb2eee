//! Cachet's peer-to-peer network on libp2p: TCP with noise and yamux, gossipsub for
//! transactions and consensus messages, request-response for block sync and for state sync
//! (snapshots: opaque requests and answers the node encodes), identify.
//!
//! The network moves bytes and knows nothing of their meaning: the node decodes and checks
//! every gossiped message and reports a [`Verdict`], and gossipsub forwards only what was
//! accepted. Rejected messages count against the peer that sent them (gossipsub's peer
//! score, P4), so a peer sending garbage is soon ignored. Everything is bounded: message sizes
//! per topic come from the chain's own limits, sync requests and responses have fixed
//! maxima, and the command and event queues between the node and the network task are
//! bounded channels.
//!
//! Peers come from configuration and from each other: the node dials its bootstrap
//! addresses at start and redials them while they are unreachable, and asks its operators'
//! peers for the addresses of the other operators' nodes (peer exchange). The node tells the
//! network which peer identities are bound to the current operators ([`Command::SetBound`]):
//! those always get a connection (up to the total limit), any other peer is an observer,
//! admitted up to [`NetworkConfig::max_observer_peers`], and peer exchange only spreads
//! bound identities. Consensus messages are still signed by the validator keys of their
//! height and checked by the node: a bound identity decides who is connected, not who votes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cachet_types::Hash;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity};
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, connection_limits, identify, identity, noise, ping,
    tcp, yamux,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use thiserror::Error;
use tokio::sync::{mpsc, watch};

pub use libp2p::gossipsub::MessageId;
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr as Address, PeerId as Peer};

/// Most blocks one sync response carries.
pub const MAX_SYNC_BLOCKS: u32 = 32;

/// Room for a consensus message's own fields around the block it carries.
const CONSENSUS_OVERHEAD: usize = 64 * 1024;

/// Capacity of the queue of events to the node and of commands to the network.
const QUEUE: usize = 4096;

/// Messages queued for sending to one peer.
const PEER_QUEUE: usize = 1024;

/// How often unreachable bootstrap peers are dialled again.
const REDIAL: Duration = Duration::from_secs(2);

/// Data a peer leaves unacknowledged this long aborts its TCP connection (TCP_USER_TIMEOUT).
/// Closing a connection politely flushes what is queued for the peer first, and across a
/// partition that waits for the link to come back: the connection then looks alive and the
/// peer is not redialled (after a 60 s partition of 8|8, finality took 50 s to return). The
/// kernel's abort ends such a connection within this bound; pings every 5 s mean a dead link
/// always has unacknowledged data.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a connection is pinged.
const PING_INTERVAL: Duration = Duration::from_secs(5);

/// A ping unanswered this long closes its connection (and the peer is redialled).
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Most established connections in each direction (the operators' nodes, 256 at most, and
/// observers up to their own limit).
pub const MAX_CONNECTIONS: u32 = 640;

/// Most connections to one peer (a simultaneous dial in both directions makes two).
const MAX_CONNECTIONS_PER_PEER: u32 = 2;

/// Most incoming connections still in their handshake.
const MAX_PENDING_INCOMING: u32 = 128;

/// How often the node asks an operator's peer for the other operators' addresses.
pub const PEER_EXCHANGE_INTERVAL: Duration = Duration::from_secs(30);

/// Most peers one peer-exchange answer names, addresses per peer, and bytes per address.
pub const MAX_EXCHANGED_PEERS: usize = 256;
const MAX_EXCHANGED_ADDRS: usize = 4;
const MAX_ADDR_BYTES: usize = 256;

/// Most dials one peer-exchange answer starts.
const MAX_EXCHANGE_DIALS: usize = 32;

/// Sync requests one peer may make per second (and in a burst): a catching-up node asks
/// for 32 blocks at a time, once per answer; more is a peer making this node read its disk
/// for nothing. Requests over the limit are dropped (the peer's request times out).
const SYNC_REQUESTS_PER_SECOND: u32 = 20;
const SYNC_REQUEST_BURST: u32 = 40;

/// State-sync requests one peer may make per second (and in a burst): a syncing node keeps a
/// few chunk requests in flight, each answer up to [`MAX_SNAPSHOT_ANSWER_BYTES`].
const SNAPSHOT_REQUESTS_PER_SECOND: u32 = 20;
const SNAPSHOT_REQUEST_BURST: u32 = 40;

/// Largest state-sync request (the node's requests are a few dozen bytes).
pub const MAX_SNAPSHOT_REQUEST_BYTES: usize = 1024;
/// Largest state-sync answer: a chunk, or an offer with its manifest and membership proof.
pub const MAX_SNAPSHOT_ANSWER_BYTES: usize = 32 << 20;

/// Peer-exchange requests one peer may make per minute (and in a burst).
const EXCHANGE_REQUESTS_PER_MINUTE: u32 = 12;
const EXCHANGE_REQUEST_BURST: u32 = 4;

/// Gossipsub mesh of the consensus topic: each node keeps 8 peers (6 to 12) in the mesh and
/// gossips message ids to 8 more. With ~200 operators a message reaches every node in about
/// three hops; a wider mesh would multiply the copies of each proposal.
const CONSENSUS_MESH: (usize, usize, usize) = (8, 6, 12);
const GOSSIP_LAZY: usize = 8;
/// Network settings.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// The chain: topics and protocols are per chain, so two chains never mix.
    pub chain_id: Hash,
    /// This node's transport identity (not its validator key).
    pub keypair: identity::Keypair,
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/7700`.
    pub listen: Vec<Multiaddr>,
    /// Peers to connect to and keep connected to.
    pub bootstrap: Vec<Multiaddr>,
    /// Largest transaction batch gossiped (bytes).
    pub max_tx_batch_bytes: usize,
    /// Largest block (bytes): consensus messages and sync responses are sized from it.
    pub max_block_bytes: usize,
    /// The peer identities bound to the operators when the network starts.
    pub bound: Vec<PeerId>,
    /// Most connected peers that are not bound to an operator (observers).
    pub max_observer_peers: usize,
    /// How often to ask a bound peer for the other bound peers' addresses
    /// ([`PEER_EXCHANGE_INTERVAL`]; tests ask more often); `None`: never, and answers are
    /// not used (the node connects to its configured peers alone).
    pub peer_exchange_interval: Option<Duration>,
}

/// Which gossip topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Batches of signed transactions.
    Txs,
    /// Proposals and votes.
    Consensus,
}

/// The node's judgement of a gossiped message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new: deliver it and forward it.
    Accept,
    /// Harmless but useless (duplicate, stale): neither forward nor penalize.
    Ignore,
    /// Invalid (malformed, bad signature, wrong chain): drop it and penalize the sender.
    Reject,
}

/// A block sync request: blocks from `from_height` on, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// First height wanted.
    pub from_height: u64,
    /// Most blocks wanted (capped at [`MAX_SYNC_BLOCKS`]).
    pub max: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SyncResponse {
    blocks: Vec<ByteBuf>,
}

/// A state-sync request or answer: bytes the node encodes and checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotMessage {
    bytes: ByteBuf,
}

/// Peer exchange: "which operators' nodes do you know?"
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExchangeRequest {}

/// The operators' nodes a peer is connected to, with the addresses they listen on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ExchangeResponse {
    peers: Vec<(ByteBuf, Vec<ByteBuf>)>,
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossiped message to check; answer with [`Command::Validated`].
    Gossip {
        /// Topic.
        topic: Topic,
        /// The payload.
        data: Vec<u8>,
        /// Gossipsub's id for it.
        id: MessageId,
        /// The peer that forwarded it.
        from: PeerId,
    },
    /// A peer asks for blocks; answer with [`Command::Respond`].
    SyncRequest {
        /// The request.
        request: SyncRequest,
        /// Token to answer with.
        token: u64,
        /// The peer.
        from: PeerId,
    },
    /// Blocks (encoded certified blocks, in height order) a peer sent us.
    SyncResponse {
        /// The peer.
        from: PeerId,
        /// The blocks.
        blocks: Vec<Vec<u8>>,
    },
    /// A peer asks for state-sync data; answer with [`Command::RespondSnapshot`].
    SnapshotRequest {
        /// The request's bytes.
        request: Vec<u8>,
        /// Token to answer with.
        token: u64,
        /// The peer.
        from: PeerId,
    },
    /// A peer's answer to our state-sync request.
    SnapshotResponse {
        /// The peer.
        from: PeerId,
        /// The answer's bytes.
        response: Vec<u8>,
    },
    /// A state-sync request of ours got no answer (timeout, refused, peer gone).
    SnapshotFailed {
        /// The peer.
        from: PeerId,
    },
    /// A peer connected.
    PeerConnected(PeerId),
}

/// What the node tells the network.
#[derive(Debug)]
pub enum Command {
    /// Publish on a topic.
    Publish(Topic, Vec<u8>),
    /// The verdict on a gossiped message.
    Validated {
        /// Its id.
        id: MessageId,
        /// Its propagation source.
        from: PeerId,
        /// The verdict.
        verdict: Verdict,
    },
    /// Ask `peer` (or a random connected peer) for blocks.
    RequestBlocks {
        /// The peer, if a particular one.
        peer: Option<PeerId>,
        /// The request.
        request: SyncRequest,
    },
    /// Answer a sync request.
    Respond {
        /// The request's token.
        token: u64,
        /// Encoded certified blocks.
        blocks: Vec<Vec<u8>>,
    },
    /// The peer identities bound to the operators from now on (the node sends them when the
    /// operator set changes).
    SetBound(Vec<PeerId>),
    /// Send a state-sync request to `peer` (a [`NetEvent::SnapshotFailed`] if it is not
    /// connected), or with `None` to the next connected peer.
    RequestSnapshot {
        /// The peer, if a particular one.
        peer: Option<PeerId>,
        /// The request's bytes (at most [`MAX_SNAPSHOT_REQUEST_BYTES`]).
        request: Vec<u8>,
    },
    /// Answer a state-sync request (at most [`MAX_SNAPSHOT_ANSWER_BYTES`]).
    RespondSnapshot {
        /// The request's token.
        token: u64,
        /// The answer's bytes.
        response: Vec<u8>,
    },
}

/// Why the network could not start.
#[derive(Debug, Error)]
pub enum NetworkError {
    /// A libp2p component refused its configuration.
    #[error("network set-up failed: {0}")]
    Setup(String),
    /// Could not listen.
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// Address.
        addr: Multiaddr,
        /// Error.
        error: String,
    },
}

/// The node's side of the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    peers: Arc<AtomicUsize>,
    bound_peers: Arc<AtomicUsize>,
    local_peer_id: PeerId,
    listening: watch::Receiver<Vec<Multiaddr>>,
}

impl NetworkHandle {
    /// Sends a command; false if the queue is full (the command is dropped) or the network
    /// stopped. Dropping is safe for every command: gossip and sync are retried by design.
    pub fn send(&self, command: Command) -> bool {
        match self.commands.try_send(command) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(command)) => {
                tracing::warn!(kind = command.kind(), "network command queue full; dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Connected peers.
    pub fn peers(&self) -> usize {
        self.peers.load(Ordering::Relaxed)
    }

    /// The live count of connected peers.
    pub fn peer_counter(&self) -> Arc<AtomicUsize> {
        self.peers.clone()
    }

    /// The live count of connected peers bound to an operator (validators' nodes).
    pub fn bound_peer_counter(&self) -> Arc<AtomicUsize> {
        self.bound_peers.clone()
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Addresses the node listens on (with its peer id), once bound.
    pub fn listening(&self) -> watch::Receiver<Vec<Multiaddr>> {
        self.listening.clone()
    }
}

impl Command {
    fn kind(&self) -> &'static str {
        match self {
            Command::Publish(Topic::Txs, _) => "publish-txs",
            Command::Publish(Topic::Consensus, _) => "publish-consensus",
            Command::Validated { .. } => "validated",
            Command::RequestBlocks { .. } => "request-blocks",
            Command::Respond { .. } => "respond",
            Command::SetBound(_) => "set-bound",
            Command::RequestSnapshot { .. } => "request-snapshot",
            Command::RespondSnapshot { .. } => "respond-snapshot",
        }
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    exchange: request_response::cbor::Behaviour<ExchangeRequest, ExchangeResponse>,
    snapshot: request_response::cbor::Behaviour<SnapshotMessage, SnapshotMessage>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

/// The libp2p peer id of an operator's node key (the ed25519 public key of its identity).
pub fn peer_id_of(node_key: &[u8; 32]) -> Option<PeerId> {
    let key = identity::ed25519::PublicKey::try_from_bytes(node_key).ok()?;
    Some(identity::PublicKey::from(key).to_peer_id())
}

fn topic_name(chain_id: &Hash, topic: &str) -> String {
    format!("/cachet/{}/{topic}/1", chain_id.to_hex())
}

fn build_swarm(config: &NetworkConfig) -> Result<Swarm<Behaviour>, NetworkError> {
    let setup = |e: &dyn std::fmt::Display| NetworkError::Setup(e.to_string());
    let txs = IdentTopic::new(topic_name(&config.chain_id, "txs"));
    let consensus = IdentTopic::new(topic_name(&config.chain_id, "consensus"));
    let consensus_max = config.max_block_bytes + CONSENSUS_OVERHEAD;
    let gossip_config = gossipsub::ConfigBuilder::default()
        // Our payloads carry our own signatures; the gossip layer adds none.
        .validation_mode(gossipsub::ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| {
            MessageId::from(
                Hash::tagged("cachet/gossip-id", &[&message.data])
                    .0
                    .to_vec(),
            )
        })
        .max_transmit_size(consensus_max + 1024)
        .max_transmit_size_for_topic(config.max_tx_batch_bytes + 1024, txs.hash())
        .max_transmit_size_for_topic(consensus_max, consensus.hash())
        .heartbeat_interval(Duration::from_millis(700))
        .mesh_n_for_topic(CONSENSUS_MESH.0, consensus.hash())
        .mesh_n_low_for_topic(CONSENSUS_MESH.1, consensus.hash())
        .mesh_n_high_for_topic(CONSENSUS_MESH.2, consensus.hash())
        .gossip_lazy(GOSSIP_LAZY)
        // A proposal carries its block (up to 8 MiB): published to the mesh, not flooded to
        // every peer, so the proposer sends 8 copies rather than one per operator.
        .flood_publish(false)
        // Per-peer send queue: bounded, so a slow or stalled peer costs bounded memory (its
        // messages are dropped when full, and gossipsub scores it down as slow).
        .connection_handler_queue_len(PEER_QUEUE)
        .build()
        .map_err(|e| setup(&e))?;
    let mut gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gossip_config)
        .map_err(|e| setup(&e))?;
    // Score only what the node judges: invalid messages (P4). Delivery-rate penalties
    // would punish honest peers of an idle chain.
    let topic_params = gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        first_message_deliveries_weight: 0.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -20.0,
        invalid_message_deliveries_decay: 0.5,
        ..Default::default()
    };
    let mut score = gossipsub::PeerScoreParams::default();
    score.topics.insert(txs.hash(), topic_params.clone());
    score.topics.insert(consensus.hash(), topic_params);
    // A local testnet runs every node on one address.
    score
        .ip_colocation_factor_whitelist
        .insert(IpAddr::V4(Ipv4Addr::LOCALHOST));
    gossipsub
        .with_peer_score(score, gossipsub::PeerScoreThresholds::default())
        .map_err(|e| setup(&e))?;
    gossipsub.subscribe(&txs).map_err(|e| setup(&e))?;
    gossipsub.subscribe(&consensus).map_err(|e| setup(&e))?;

    let response_max = (config.max_block_bytes + CONSENSUS_OVERHEAD) as u64 * 4;
    let codec = request_response::cbor::codec::Codec::default()
        .set_request_size_maximum(1024)
        .set_response_size_maximum(response_max);
    let protocol = StreamProtocol::try_from_owned(topic_name(&config.chain_id, "sync"))
        .map_err(|e| setup(&e))?;
    let sync = request_response::Behaviour::with_codec(
        codec,
        [(protocol, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(20)),
    );
    let exchange_protocol = StreamProtocol::try_from_owned(topic_name(&config.chain_id, "peers"))
        .map_err(|e| setup(&e))?;
    let exchange_bytes = (MAX_EXCHANGED_PEERS * (64 + MAX_EXCHANGED_ADDRS * MAX_ADDR_BYTES)) as u64;
    let exchange = request_response::Behaviour::with_codec(
        request_response::cbor::codec::Codec::default()
            .set_request_size_maximum(64)
            .set_response_size_maximum(exchange_bytes),
        [(exchange_protocol, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(10)),
    );
    let snapshot_protocol =
        StreamProtocol::try_from_owned(topic_name(&config.chain_id, "snapshot"))
            .map_err(|e| setup(&e))?;
    let snapshot = request_response::Behaviour::with_codec(
        request_response::cbor::codec::Codec::default()
            // The CBOR byte string's own header on top of the bytes.
            .set_request_size_maximum(MAX_SNAPSHOT_REQUEST_BYTES as u64 + 64)
            .set_response_size_maximum(MAX_SNAPSHOT_ANSWER_BYTES as u64 + 64),
        [(snapshot_protocol, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
    );
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established_incoming(Some(MAX_CONNECTIONS))
            .with_max_established_outgoing(Some(MAX_CONNECTIONS))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING)),
    );
    let identify = identify::Behaviour::new(identify::Config::new(
        format!("/cachet/{}", config.chain_id.to_hex()),
        config.keypair.public(),
    ));
    let swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                use libp2p::Transport;
                let noise = noise::Config::new(key)?;
                Ok(tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .map(|stream: tcp::tokio::TcpStream, _| {
                    let timeout = TCP_USER_TIMEOUT.as_millis() as u32;
                    if let Err(error) =
                        rustix::net::sockopt::set_tcp_user_timeout(&stream.0, timeout)
                    {
                        tracing::warn!(%error, "cannot bound unacknowledged data on a connection");
                    }
                    stream
                })
                .upgrade(libp2p::core::upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(yamux::Config::default()))
            },
        )
        .map_err(|e| setup(&e))?
        .with_behaviour(|_| Behaviour {
            limits,
            gossipsub,
            sync,
            exchange,
            snapshot,
            identify,
            // A connection a partition silenced looks alive to TCP until its retransmission
            // timer gives up (minutes, growing with the partition): pings find it in
            // seconds, the connection is closed, and the peer is redialled.
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
        })
        .map_err(|e| setup(&e))?
        // Operators' nodes stay connected; an idle chain must not drop its peers.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    Ok(swarm)
}

/// Refuses a TCP listen address whose port another process already listens on. libp2p
/// listens with SO_REUSEPORT, so without this a second node on the port would start and the
/// kernel would split incoming peers between the two. A plain bind (no SO_REUSEPORT) fails
/// while any socket holds the port.
fn check_port_free(addr: &Multiaddr) -> Result<(), NetworkError> {
    use libp2p::multiaddr::Protocol;
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(std::net::IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(std::net::IpAddr::V6(v6)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    let (Some(ip), Some(port)) = (ip, port) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind((ip, port))
        .map(drop)
        .map_err(|error| NetworkError::Listen {
            addr: addr.clone(),
            error: if error.kind() == std::io::ErrorKind::AddrInUse {
                "the address is already in use (is another node running on it?)".into()
            } else {
                error.to_string()
            },
        })
}

/// Starts the network task; returns its handle and the events it will deliver.
pub fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetworkError> {
    let mut swarm = build_swarm(&config)?;
    for addr in &config.listen {
        check_port_free(addr)?;
    }
    for addr in &config.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetworkError::Listen {
                addr: addr.clone(),
                error: e.to_string(),
            })?;
    }
    let (commands, command_rx) = mpsc::channel(QUEUE);
    let (event_tx, events) = mpsc::channel(QUEUE);
    let (listening_tx, listening) = watch::channel(Vec::new());
    let peers = Arc::new(AtomicUsize::new(0));
    let bound_peers = Arc::new(AtomicUsize::new(0));
    let local_peer_id = *swarm.local_peer_id();
    let task = Task {
        txs: IdentTopic::new(topic_name(&config.chain_id, "txs")).hash(),
        consensus: IdentTopic::new(topic_name(&config.chain_id, "consensus")).hash(),
        bootstrap: config.bootstrap.iter().map(|a| (a.clone(), None)).collect(),
        swarm,
        events: event_tx,
        peers: peers.clone(),
        listening: listening_tx,
        pending_responses: BTreeMap::new(),
        pending_snapshot: BTreeMap::new(),
        next_token: 0,
        connected: HashSet::new(),
        rotation: 0,
        bound: config.bound.iter().copied().collect(),
        bound_peers: bound_peers.clone(),
        max_observers: config.max_observer_peers,
        listen_addrs: HashMap::new(),
        exchange_interval: config
            .peer_exchange_interval
            .map(|interval| interval.max(Duration::from_millis(100))),
        sync_limit: governor::RateLimiter::keyed(
            governor::Quota::per_second(nonzero(SYNC_REQUESTS_PER_SECOND))
                .allow_burst(nonzero(SYNC_REQUEST_BURST)),
        ),
        exchange_limit: governor::RateLimiter::keyed(
            governor::Quota::per_minute(nonzero(EXCHANGE_REQUESTS_PER_MINUTE))
                .allow_burst(nonzero(EXCHANGE_REQUEST_BURST)),
        ),
        snapshot_limit: governor::RateLimiter::keyed(
            governor::Quota::per_second(nonzero(SNAPSHOT_REQUESTS_PER_SECOND))
                .allow_burst(nonzero(SNAPSHOT_REQUEST_BURST)),
        ),
    };
    tokio::spawn(task.run(command_rx));
    Ok((
        NetworkHandle {
            commands,
            peers,
            bound_peers,
            local_peer_id,
            listening,
        },
        events,
    ))
}

struct Task {
    swarm: Swarm<Behaviour>,
    txs: gossipsub::TopicHash,
    consensus: gossipsub::TopicHash,
    /// Bootstrap addresses and the peer last reached there.
    bootstrap: Vec<(Multiaddr, Option<PeerId>)>,
    events: mpsc::Sender<NetEvent>,
    peers: Arc<AtomicUsize>,
    listening: watch::Sender<Vec<Multiaddr>>,
    pending_responses: BTreeMap<u64, ResponseChannel<SyncResponse>>,
    pending_snapshot: BTreeMap<u64, ResponseChannel<SnapshotMessage>>,
    next_token: u64,
    connected: HashSet<PeerId>,
    rotation: usize,
    /// Identities bound to the current operators.
    bound: HashSet<PeerId>,
    bound_peers: Arc<AtomicUsize>,
    max_observers: usize,
    /// What each connected peer says it listens on (identify), bounded.
    listen_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    exchange_interval: Option<Duration>,
    /// Per-peer budgets of sync and peer-exchange requests.
    sync_limit: governor::DefaultKeyedRateLimiter<PeerId>,
    exchange_limit: governor::DefaultKeyedRateLimiter<PeerId>,
    snapshot_limit: governor::DefaultKeyedRateLimiter<PeerId>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut redial = tokio::time::interval(REDIAL);
        redial.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Without peer exchange the tick still fires, rarely, and asks nothing.
        let mut exchange =
            tokio::time::interval(self.exchange_interval.unwrap_or(Duration::from_secs(3600)));
        exchange.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command),
                    // The node is gone: stop.
                    None => return,
                },
                event = self.swarm.select_next_some() => self.swarm_event(event),
                _ = redial.tick() => self.redial(),
                _ = exchange.tick() => self.ask_for_peers(None),
            }
        }
    }

    fn count_bound(&self) {
        let bound = self
            .connected
            .iter()
            .filter(|p| self.bound.contains(p))
            .count();
        self.bound_peers.store(bound, Ordering::Relaxed);
    }

    /// Asks `peer` (or the next connected operator's node) which operators' nodes it knows.
    fn ask_for_peers(&mut self, peer: Option<PeerId>) {
        if self.exchange_interval.is_none() {
            return;
        }
        let peer = peer.or_else(|| {
            let mut bound: Vec<PeerId> = self
                .connected
                .iter()
                .filter(|p| self.bound.contains(p))
                .copied()
                .collect();
            bound.sort();
            self.rotation = self.rotation.wrapping_add(1);
            bound.get(self.rotation % bound.len().max(1)).copied()
        });
        if let Some(peer) = peer {
            self.swarm
                .behaviour_mut()
                .exchange
                .send_request(&peer, ExchangeRequest {});
        }
    }

    /// The operators' nodes this node is connected to, but `asker`, with their addresses.
    fn exchange_answer(&self, asker: &PeerId) -> ExchangeResponse {
        let peers = self
            .connected
            .iter()
            .filter(|p| self.bound.contains(p) && *p != asker)
            .filter_map(|p| {
                let addrs = self.listen_addrs.get(p)?;
                let addrs = addrs.iter().map(|a| ByteBuf::from(a.to_vec())).collect();
                Some((ByteBuf::from(p.to_bytes()), addrs))
            })
            .take(MAX_EXCHANGED_PEERS)
            .collect();
        ExchangeResponse { peers }
    }

    /// Dials the operators' nodes an answer names that this node is not connected to. Only
    /// bound identities are dialled: an answer cannot point this node anywhere else.
    fn use_exchange_answer(&mut self, from: PeerId, answer: ExchangeResponse) {
        if self.exchange_interval.is_none() {
            return;
        }
        let local = *self.swarm.local_peer_id();
        let mut dials = 0;
        for (id, addrs) in answer.peers.into_iter().take(MAX_EXCHANGED_PEERS) {
            let Ok(peer) = PeerId::from_bytes(&id) else {
                tracing::debug!(%from, "peer exchange named a malformed peer id");
                continue;
            };
            if peer == local || !self.bound.contains(&peer) || self.connected.contains(&peer) {
                continue;
            }
            let addrs: Vec<Multiaddr> = addrs
                .into_iter()
                .take(MAX_EXCHANGED_ADDRS)
                .filter(|a| a.len() <= MAX_ADDR_BYTES)
                .filter_map(|a| Multiaddr::try_from(a.into_vec()).ok())
                .collect();
            if addrs.is_empty() || dials >= MAX_EXCHANGE_DIALS {
                continue;
            }
            dials += 1;
            tracing::debug!(%peer, %from, "dialling an operator's node learned by peer exchange");
            let dial = DialOpts::peer_id(peer).addresses(addrs).build();
            if let Err(error) = self.swarm.dial(dial) {
                tracing::debug!(%peer, %error, "dial failed");
            }
        }
    }

    fn redial(&mut self) {
        for (addr, peer) in &self.bootstrap {
            if peer.is_some_and(|p| self.connected.contains(&p)) {
                continue;
            }
            if let Err(error) = self.swarm.dial(addr.clone()) {
                tracing::debug!(%addr, %error, "dial failed");
            }
        }
    }

    fn deliver(&mut self, event: NetEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
            // The node is overloaded: drop gossip (peers and retries resend), but answer a
            // validation at once so gossipsub does not wait for it.
            if let NetEvent::Gossip { id, from, .. } = event {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, MessageAcceptance::Ignore);
            }
            tracing::warn!("node event queue full; dropped a network event");
        }
    }

    fn command(&mut self, command: Command) {
        let behaviour = self.swarm.behaviour_mut();
        match command {
            Command::Publish(topic, data) => {
                let hash = match topic {
                    Topic::Txs => self.txs.clone(),
                    Topic::Consensus => self.consensus.clone(),
                };
                match behaviour.gossipsub.publish(hash, data) {
                    Ok(_) => {}
                    // Normal with no peers yet (a single node, or at start-up).
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {}
                    Err(error) => tracing::debug!(%error, "publish failed"),
                }
            }
            Command::Validated { id, from, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                behaviour
                    .gossipsub
                    .report_message_validation_result(&id, &from, acceptance);
            }
            Command::RequestBlocks { peer, request } => {
                let peer = peer
                    .filter(|p| self.connected.contains(p))
                    .or_else(|| self.next_peer());
                if let Some(peer) = peer {
                    let request = SyncRequest {
                        from_height: request.from_height,
                        max: request.max.min(MAX_SYNC_BLOCKS),
                    };
                    self.swarm.behaviour_mut().sync.send_request(&peer, request);
                }
            }
            Command::Respond { token, blocks } => {
                if let Some(channel) = self.pending_responses.remove(&token) {
                    let response = SyncResponse {
                        blocks: blocks.into_iter().map(ByteBuf::from).collect(),
                    };
                    // Fails only if the peer went away meanwhile.
                    let _ = behaviour.sync.send_response(channel, response);
                }
            }
            Command::SetBound(peers) => {
                self.bound = peers.into_iter().collect();
                self.count_bound();
            }
            Command::RequestSnapshot { peer, request } => {
                if request.len() > MAX_SNAPSHOT_REQUEST_BYTES {
                    tracing::warn!(
                        bytes = request.len(),
                        "state-sync request too large; dropped"
                    );
                    return;
                }
                // A request for a particular peer (a chunk of its snapshot) goes to it or
                // fails at once; another peer may not serve that snapshot.
                let peer = match peer {
                    Some(peer) if self.connected.contains(&peer) => Some(peer),
                    Some(peer) => {
                        self.deliver(NetEvent::SnapshotFailed { from: peer });
                        None
                    }
                    None => self.next_peer(),
                };
                if let Some(peer) = peer {
                    let message = SnapshotMessage {
                        bytes: ByteBuf::from(request),
                    };
                    self.swarm
                        .behaviour_mut()
                        .snapshot
                        .send_request(&peer, message);
                }
            }
            Command::RespondSnapshot { token, response } => {
                if let Some(channel) = self.pending_snapshot.remove(&token) {
                    if response.len() > MAX_SNAPSHOT_ANSWER_BYTES {
                        tracing::warn!(
                            bytes = response.len(),
                            "state-sync answer too large; dropped"
                        );
                        return;
                    }
                    let message = SnapshotMessage {
                        bytes: ByteBuf::from(response),
                    };
                    // Fails only if the peer went away meanwhile.
                    let _ = behaviour.snapshot.send_response(channel, message);
                }
            }
        }
    }

    /// The next connected peer in rotation, so one slow peer does not stall a fetch.
    fn next_peer(&mut self) -> Option<PeerId> {
        let mut peers: Vec<PeerId> = self.connected.iter().copied().collect();
        peers.sort();
        self.rotation = self.rotation.wrapping_add(1);
        peers.get(self.rotation % peers.len().max(1)).copied()
    }

    fn swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = address
                    .with_p2p(*self.swarm.local_peer_id())
                    .unwrap_or_else(|a| a);
                tracing::info!(address = %full, "p2p listening");
                self.listening.send_modify(|list| list.push(full));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                if let ConnectedPoint::Dialer { address, .. } = &endpoint {
                    for (addr, peer) in &mut self.bootstrap {
                        if addr == address || strip_p2p(address) == *addr {
                            *peer = Some(peer_id);
                        }
                    }
                }
                let bound = self.bound.contains(&peer_id);
                if !bound && !self.connected.contains(&peer_id) {
                    let observers = self
                        .connected
                        .iter()
                        .filter(|p| !self.bound.contains(p))
                        .count();
                    if observers >= self.max_observers {
                        tracing::debug!(peer = %peer_id, observers, "observer slots full; closing");
                        let _ = self.swarm.disconnect_peer_id(peer_id);
                        return;
                    }
                }
                if self.connected.insert(peer_id) {
                    self.peers.store(self.connected.len(), Ordering::Relaxed);
                    self.count_bound();
                    tracing::info!(peer = %peer_id, peers = self.connected.len(), bound, "peer connected");
                    self.deliver(NetEvent::PeerConnected(peer_id));
                    if bound {
                        self.ask_for_peers(Some(peer_id));
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } if self.connected.remove(&peer_id) => {
                self.listen_addrs.remove(&peer_id);
                // The budgets of peers gone a while are forgotten (bounded memory).
                self.sync_limit.retain_recent();
                self.exchange_limit.retain_recent();
                self.snapshot_limit.retain_recent();
                self.peers.store(self.connected.len(), Ordering::Relaxed);
                self.count_bound();
                tracing::info!(peer = %peer_id, peers = self.connected.len(), "peer disconnected");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) => {
                tracing::info!(%peer, %error, "peer does not answer pings; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let topic = if message.topic == self.txs {
                    Topic::Txs
                } else if message.topic == self.consensus {
                    Topic::Consensus
                } else {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Reject,
                        );
                    return;
                };
                self.deliver(NetEvent::Gossip {
                    topic,
                    data: message.data,
                    id: message_id,
                    from: propagation_source,
                });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // Bounded: requests beyond the queue or the peer's budget are dropped
                    // (the peer times out).
                    if self.pending_responses.len() >= QUEUE {
                        return;
                    }
                    if self.sync_limit.check_key(&peer).is_err() {
                        tracing::debug!(%peer, "sync requests over the peer's budget; dropped");
                        return;
                    }
                    let token = self.next_token;
                    self.next_token += 1;
                    self.pending_responses.insert(token, channel);
                    self.deliver(NetEvent::SyncRequest {
                        request,
                        token,
                        from: peer,
                    });
                }
                request_response::Message::Response { response, .. } => {
                    self.deliver(NetEvent::SyncResponse {
                        from: peer,
                        blocks: response.blocks.into_iter().map(ByteBuf::into_vec).collect(),
                    });
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::OutboundFailure { peer, error, .. },
            )) => {
                tracing::debug!(%peer, %error, "sync request failed");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                request_response::Event::InboundFailure { .. },
            )) => {
                // A response we dropped or the peer abandoned: forget its channel.
                self.pending_responses
                    .retain(|_, channel| channel.is_open());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                tracing::debug!(peer = %peer_id, agent = %info.agent_version, "identified");
                if self.connected.contains(&peer_id) {
                    let addrs: Vec<Multiaddr> = info
                        .listen_addrs
                        .into_iter()
                        .filter(|a| a.len() <= MAX_ADDR_BYTES)
                        .take(MAX_EXCHANGED_ADDRS)
                        .collect();
                    self.listen_addrs.insert(peer_id, addrs);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Exchange(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request { channel, .. } => {
                    if self.exchange_limit.check_key(&peer).is_err() {
                        tracing::debug!(%peer, "peer-exchange requests over budget; dropped");
                        return;
                    }
                    let answer = self.exchange_answer(&peer);
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .exchange
                        .send_response(channel, answer);
                }
                request_response::Message::Response { response, .. } => {
                    self.use_exchange_answer(peer, response);
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(request_response::Event::Message {
                peer,
                message,
                ..
            })) => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    // Bounded like block sync: over the queue or the peer's budget, dropped.
                    if self.pending_snapshot.len() >= QUEUE {
                        return;
                    }
                    if self.snapshot_limit.check_key(&peer).is_err() {
                        tracing::debug!(%peer, "state-sync requests over the peer's budget; dropped");
                        return;
                    }
                    let token = self.next_token;
                    self.next_token += 1;
                    self.pending_snapshot.insert(token, channel);
                    self.deliver(NetEvent::SnapshotRequest {
                        request: request.bytes.into_vec(),
                        token,
                        from: peer,
                    });
                }
                request_response::Message::Response { response, .. } => {
                    self.deliver(NetEvent::SnapshotResponse {
                        from: peer,
                        response: response.bytes.into_vec(),
                    });
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(
                request_response::Event::OutboundFailure { peer, error, .. },
            )) => {
                tracing::debug!(%peer, %error, "state-sync request failed");
                self.deliver(NetEvent::SnapshotFailed { from: peer });
            }
            SwarmEvent::Behaviour(BehaviourEvent::Snapshot(
                request_response::Event::InboundFailure { .. },
            )) => {
                self.pending_snapshot.retain(|_, channel| channel.is_open());
            }
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                tracing::debug!(%error, "connection attempt failed");
            }
            _ => {}
        }
    }
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN)
}

fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

/// A transport identity from a 32-byte ed25519 seed (kept in an encrypted key file).
pub fn keypair_from_seed(seed: [u8; 32]) -> Result<Keypair, NetworkError> {
    let mut seed = seed;
    identity::Keypair::ed25519_from_bytes(&mut seed).map_err(|e| NetworkError::Setup(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_key_names_the_peer_id_of_the_identity_made_from_its_seed() {
        let seed = Hash::tagged("test/node-seed", &[]).0;
        let identity = keypair_from_seed(seed).unwrap();
        let node_key = cachet_types::SigningKey::from_seed(seed).public_key();
        assert_eq!(
            peer_id_of(&node_key.0),
            Some(identity.public().to_peer_id())
        );
    }
}
