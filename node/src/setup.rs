//! Node set-up: command-line options, the data directory, the development chain, keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use cachet_keystore::KdfParams;
use cachet_network::Address as Multiaddr;
use cachet_types::{ChainParams, CountryCode, Genesis, Operator, OperatorId, SigningKey};
use clap::Parser;

/// Passphrase of the development chain's key files. The dev chain is for trying Cachet on
/// one machine; its keys protect nothing.
pub const DEV_PASSPHRASE: &str = "cachet-dev-passphrase";

/// Default API address: loopback only.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7600";

/// Default peer-to-peer address: loopback only.
pub const DEFAULT_P2P_ADDR: &str = "/ip4/127.0.0.1/tcp/7700";

/// cachetd: a Cachet ledger node.
///
/// With --dev it runs a single-operator development chain, created on first start in the
/// data directory, and prints where the operator's key file is so the `cachet` CLI can issue
/// and mint.
///
/// Otherwise give --genesis, and --validator-key to take part in consensus as an operator:
/// the node proposes and votes at every height whose operator set holds that key (the
/// genesis set, then as membership changes decide), and follows the chain at the others.
/// Without --validator-key the node is an observer: it follows the chain from its peers
/// (--peer) and serves every query, which is what an auditor runs.
///
/// A new operator starts with `cachetd init --dir DIR` (keys) and `cachetd keys show
/// --data-dir DIR` (what the other operators need to vote it in).
///
/// Example (a validator of a four-operator chain):
///   cachetd --data-dir ./node0 --genesis genesis.json --validator-key validator0.key.json \
///     --key-passphrase-file pass0 --p2p-listen /ip4/127.0.0.1/tcp/7700 \
///     --peer /ip4/127.0.0.1/tcp/7701 --peer /ip4/127.0.0.1/tcp/7702 --peer /ip4/127.0.0.1/tcp/7703
#[derive(Debug, Parser)]
#[command(
    name = "cachetd",
    version,
    verbatim_doc_comment,
    args_conflicts_with_subcommands = true
)]
pub struct Options {
    /// Instead of running the node: set up an operator's directory, show its keys or its
    /// configuration, back up or restore its ledger.
    #[command(subcommand)]
    pub command: Option<crate::commands::NodeCommand>,

    /// Configuration file (TOML): every flag as a key (api_addr for --api-addr); flags and
    /// environment variables override it (see cachetd.example.toml).
    #[arg(long, env = "CACHET_CONFIG")]
    pub config: Option<PathBuf>,

    /// Run the single-operator development chain (created on first start).
    #[arg(long)]
    pub dev: bool,

    /// Data directory [default: <user data dir>/cachet/dev with --dev, required otherwise].
    #[arg(long, env = "CACHET_DATA_DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the HTTP API. Loopback by default; port 0 picks a free port (written to
    /// <data-dir>/api.addr).
    #[arg(long, env = "CACHET_API_ADDR", default_value = DEFAULT_API_ADDR)]
    pub api_addr: SocketAddr,

    /// Genesis file (JSON) of the chain to run.
    #[arg(long, conflicts_with = "dev")]
    pub genesis: Option<PathBuf>,

    /// This node's validator key file (a Cachet key file); without it the node observes.
    #[arg(long, conflicts_with = "dev")]
    pub validator_key: Option<PathBuf>,

    /// Peer-to-peer listen address (libp2p multiaddr; repeat for several). Loopback by
    /// default; port 0 picks a free port (written to <data-dir>/p2p.addr).
    #[arg(long = "p2p-listen", env = "CACHET_P2P_LISTEN", default_value = DEFAULT_P2P_ADDR)]
    pub p2p_listen: Vec<Multiaddr>,

    /// A peer to connect to and stay connected to (libp2p multiaddr, e.g.
    /// /ip4/10.0.0.2/tcp/7700); repeat for each.
    #[arg(long = "peer")]
    pub peers: Vec<Multiaddr>,

    /// Base of the consensus propose timeout, in milliseconds (each round adds half of it;
    /// prevote and precommit timeouts are half of it). Every validator should use the same.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub timeout_propose_ms: u64,

    /// File holding the validator key's passphrase (else CACHET_KEY_PASSPHRASE).
    #[arg(long, conflicts_with = "dev")]
    pub key_passphrase_file: Option<PathBuf>,

    /// Most transactions waiting in the mempool.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub mempool_max_txs: u64,

    /// Most connected peers that are not an operator's bound node (observers, e.g.
    /// auditors' nodes); the operators' nodes always get a connection.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=512))]
    pub max_observer_peers: u64,

    /// Rejected transactions remembered for status queries.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rejections_remembered: u64,

    /// Longest a status query may wait for finality, in milliseconds.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(0..=300_000))]
    pub max_wait_ms: u64,

    /// Most API requests served at once (counted once their body has arrived; long polls
    /// have their own pool); more are refused with 503 `busy` at once.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub api_max_concurrent: u64,

    /// Most long polls (status queries with wait_ms > 0) at once; more get 503 `busy`.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub api_max_long_polls: u64,

    /// Most open API connections in all; a new one past it is closed at once. With the
    /// reserve for RocksDB and libp2p it must fit the process's open-file limit.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub api_max_connections: u64,

    /// Most open API connections from one client address.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub api_max_connections_per_ip: u64,

    /// Time a client has to send a request's headers, and most idle time of a kept-alive
    /// connection, in milliseconds.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub api_header_timeout_ms: u64,

    /// Time a client has to send a request's body, in milliseconds.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub api_body_timeout_ms: u64,

    /// Transactions per second one client address may submit (also its burst); more get
    /// 429 `rate_limited`.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_submit_rate: u32,

    /// Address for /metrics (Prometheus text format), /health and /ready, e.g.
    /// 127.0.0.1:9600; port 0 picks a free port (written to <data-dir>/metrics.addr).
    /// Without it they are served on the API's address.
    #[arg(long, env = "CACHET_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Blocks a node may be behind its peers and still answer /ready with 200.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub ready_max_lag_blocks: u64,

    /// Connect to the --peer addresses alone: do not ask the operators' nodes for each
    /// other's addresses (peer exchange), e.g. where only configured links are allowed.
    #[arg(long, env = "CACHET_NO_PEER_EXCHANGE")]
    pub no_peer_exchange: bool,

    /// Join by a snapshot: a node with an empty store takes the state of a recent certified
    /// block from its peers (each chunk checked against that block's state root), follows
    /// the chain from there at once, and replays the older blocks in the background for
    /// full provenance. Without a usable offer within 30 s it catches up by replay. Also
    /// needed to finish a state sync that was interrupted.
    #[arg(long, env = "CACHET_STATE_SYNC")]
    pub state_sync: bool,

    /// Let a validator without its signer state (<data-dir>/signer.state) sign at once.
    /// Without this flag it rejoins quietly: it follows until it has seen a height decided
    /// and signs from two heights later, so that it never votes twice where it voted before
    /// the file was lost. Only for when a third or more of the validators lost theirs at
    /// once and the chain cannot decide without them.
    #[arg(long, env = "CACHET_REJOIN_AT_ONCE")]
    pub rejoin_at_once: bool,

    /// Make a snapshot of the state for joining nodes every this many blocks (two are kept,
    /// as RocksDB checkpoints in <data-dir>/snapshots); 0: serve none.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub snapshot_interval: u64,

    /// Do not serve the web explorer at /explorer on the API's address (it is read-only
    /// and served by default).
    #[arg(long, env = "CACHET_NO_EXPLORER")]
    pub no_explorer: bool,

    /// Log lines as text for people, or one JSON object per line for log shippers.
    #[arg(long, env = "CACHET_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The form of the node's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text, coloured on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the node runs with, once set up.
pub struct Setup {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Genesis.
    pub genesis: Genesis,
    /// Validator key; none for an observer.
    pub validator: Option<SigningKey>,
    /// Seed of the node's peer-to-peer identity (kept encrypted beside the validator key;
    /// fresh on every start for an observer).
    pub p2p_seed: [u8; 32],
    /// The data directory's lock, held while the node runs.
    pub _lock: std::fs::File,
}

/// Name of the lock file in the data directory.
pub const LOCK_FILE: &str = "cachetd.lock";

/// Creates the data directory (mode 0700) and takes its lock before any file in it is
/// read or written: a second node on the same directory stops here, touching nothing.
pub fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private (mode 0700)", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another cachetd is running on {} (its lock {} is held); stop it first or choose another --data-dir",
            data_dir.display(),
            path.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Milliseconds of a clock that never goes back (since the first call in this process): the
/// consensus host's timers and the mempool's ages.
pub fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// The time as the consensus host takes it.
pub fn now() -> cachet_host::Now {
    cachet_host::Now {
        wall_ms: now_ms(),
        mono_ms: mono_ms(),
    }
}

fn default_dev_dir() -> Result<PathBuf> {
    let base = dirs::data_dir().context("no user data directory; pass --data-dir")?;
    Ok(base.join("cachet").join("dev"))
}

/// Reads a genesis file.
pub fn read_genesis(path: &Path) -> Result<Genesis> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read genesis {}", path.display()))?;
    let genesis: Genesis = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid genesis file", path.display()))?;
    genesis
        .validate()
        .with_context(|| format!("genesis {} is invalid", path.display()))?;
    Ok(genesis)
}

fn write_new(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Prepares the data directory and keys from the options.
pub fn prepare(options: &Options) -> Result<Setup> {
    if options.dev {
        return prepare_dev(options);
    }
    let data_dir = options
        .data_dir
        .clone()
        .context("--data-dir is required without --dev")?;
    let genesis_path = options
        .genesis
        .clone()
        .context("--genesis is required without --dev (or run with --dev)")?;
    let genesis = read_genesis(&genesis_path)?;
    let lock = lock_data_dir(&data_dir)?;
    let Some(key_path) = options.validator_key.clone() else {
        tracing::info!("no --validator-key: running as an observer");
        return Ok(Setup {
            data_dir,
            genesis,
            validator: None,
            p2p_seed: cachet_keystore::generate_key()?.seed(),
            _lock: lock,
        });
    };
    let passphrase = read_passphrase(options.key_passphrase_file.as_deref())?;
    let key = cachet_keystore::load(&key_path, &passphrase)?;
    if genesis.validator_keys().contains(&key.public_key()) {
        tracing::info!(key = %key.public_key(), "validator key found in the genesis");
    } else {
        tracing::info!(
            key = %key.public_key(),
            "the validator key is not in the genesis: the node validates once a membership change adds it"
        );
    }
    let p2p_seed = p2p_identity(&data_dir, &passphrase)?;
    Ok(Setup {
        data_dir,
        genesis,
        validator: Some(key),
        p2p_seed,
        _lock: lock,
    })
}

/// The key passphrase: the file's first line, else CACHET_KEY_PASSPHRASE.
pub fn read_passphrase(file: Option<&Path>) -> Result<String> {
    match file {
        Some(path) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string()),
        None => std::env::var("CACHET_KEY_PASSPHRASE")
            .context("give --key-passphrase-file or set CACHET_KEY_PASSPHRASE"),
    }
}

/// The node's peer-to-peer identity: `<data-dir>/p2p.key.json`, created on first start and
/// sealed with the validator key's passphrase. It is not the validator key: a stolen node
/// identity cannot sign consensus messages.
fn p2p_identity(data_dir: &Path, passphrase: &str) -> Result<[u8; 32]> {
    let path = data_dir.join("p2p.key.json");
    if !path.exists() {
        let key = cachet_keystore::generate_key()?;
        let file = cachet_keystore::seal(&key, passphrase, KdfParams::DEFAULT)?;
        cachet_keystore::write(&path, &file)?;
        return Ok(key.seed());
    }
    Ok(cachet_keystore::load(&path, passphrase)
        .with_context(|| format!("cannot open the node identity {}", path.display()))?
        .seed())
}

fn prepare_dev(options: &Options) -> Result<Setup> {
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => default_dev_dir()?,
    };
    let lock = lock_data_dir(&data_dir)?;
    let genesis_path = data_dir.join("genesis.json");
    let validator_path = data_dir.join("validator.key.json");
    let operator_path = data_dir.join("operator.key.json");
    // The node identity comes first: the genesis binds it to the operator.
    let p2p_seed = p2p_identity(&data_dir, DEV_PASSPHRASE)?;
    if !genesis_path.exists() {
        let validator = cachet_keystore::generate_key()?;
        let issuer = cachet_keystore::generate_key()?;
        let genesis = Genesis {
            chain_name: "cachet-dev".into(),
            genesis_time_ms: now_ms(),
            operators: vec![Operator {
                id: OperatorId::parse("DEV-POST")?,
                country: CountryCode::parse("ZZ")?,
                name: "Cachet Development Post".into(),
                validator_key: validator.public_key(),
                node_key: SigningKey::from_seed(p2p_seed).public_key(),
                issuer: issuer.public_key().address(),
            }],
            params: ChainParams::default(),
        };
        genesis.validate()?;
        // Keys first, genesis last: a crash in between leaves no genesis, so the next start
        // sees a fresh directory (and refuses to overwrite the stray key files).
        for (path, key) in [(&validator_path, &validator), (&operator_path, &issuer)] {
            let file = cachet_keystore::seal(key, DEV_PASSPHRASE, KdfParams::DEFAULT)?;
            cachet_keystore::write(path, &file)?;
        }
        let tmp = data_dir.join("genesis.json.tmp");
        write_new(&tmp, &(serde_json::to_string_pretty(&genesis)? + "\n"))?;
        std::fs::rename(&tmp, &genesis_path)?;
        tracing::info!(chain_id = %genesis.chain_id(), dir = %data_dir.display(), "created the development chain");
    }
    let genesis = read_genesis(&genesis_path)?;
    let key = cachet_keystore::load(&validator_path, DEV_PASSPHRASE)?;
    let issuer = cachet_keystore::read(&operator_path)?;
    eprintln!(
        "cachetd dev chain {}\n  data dir:      {}\n  operator:      DEV-POST, issuer account {}\n  operator key:  {} (passphrase: {DEV_PASSPHRASE})\n  use it with:   cachet wallet import operator {}",
        genesis.chain_id(),
        data_dir.display(),
        issuer.address,
        operator_path.display(),
        operator_path.display(),
    );
    Ok(Setup {
        data_dir,
        genesis,
        validator: Some(key),
        p2p_seed,
        _lock: lock,
    })
}
