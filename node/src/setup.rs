//! Node set-up: command-line options, the data directory, the development chain, keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use cachet_keystore::KdfParams;
use cachet_types::{ChainParams, CountryCode, Genesis, Operator, OperatorId, SigningKey};
use clap::Parser;

/// Passphrase of the development chain's key files. The dev chain is for trying Cachet on
/// one machine; its keys protect nothing.
pub const DEV_PASSPHRASE: &str = "cachet-dev-passphrase";

/// Default API address: loopback only.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:7600";

/// cachetd: a Cachet ledger node.
///
/// With --dev it runs a single-operator development chain, created on first start in the
/// data directory, and prints where the operator's key file is so the `cachet` CLI can issue
/// and mint. Otherwise give --genesis and --validator-key.
#[derive(Debug, Parser)]
#[command(name = "cachetd", version, about, long_about = None)]
pub struct Options {
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

    /// This node's validator key file (a Cachet key file).
    #[arg(long, conflicts_with = "dev")]
    pub validator_key: Option<PathBuf>,

    /// File holding the validator key's passphrase (else CACHET_KEY_PASSPHRASE).
    #[arg(long, conflicts_with = "dev")]
    pub key_passphrase_file: Option<PathBuf>,

    /// Most transactions waiting in the mempool.
    #[arg(long, default_value_t = 100_000)]
    pub mempool_max_txs: usize,

    /// Rejected transactions remembered for status queries.
    #[arg(long, default_value_t = 100_000)]
    pub rejections_remembered: usize,

    /// Longest a status query may wait for finality, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    pub max_wait_ms: u64,

    /// Most API requests served at once; more are refused with 503 `busy` at once.
    #[arg(long, default_value_t = 1024)]
    pub api_max_concurrent: usize,
}

/// What the node runs with, once set up.
pub struct Setup {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Genesis.
    pub genesis: Genesis,
    /// Validator key and its index in the genesis.
    pub validator: (u16, SigningKey),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    let key_path = options
        .validator_key
        .clone()
        .context("--validator-key is required without --dev")?;
    let genesis = read_genesis(&genesis_path)?;
    let passphrase = match &options.key_passphrase_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        None => std::env::var("CACHET_KEY_PASSPHRASE")
            .context("give --key-passphrase-file or set CACHET_KEY_PASSPHRASE")?,
    };
    let key = cachet_keystore::load(&key_path, &passphrase)?;
    let validator = validator_index(&genesis, &key)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    Ok(Setup {
        data_dir,
        genesis,
        validator: (validator, key),
    })
}

fn validator_index(genesis: &Genesis, key: &SigningKey) -> Result<u16> {
    let index = genesis
        .operators
        .iter()
        .position(|op| op.validator_key == key.public_key())
        .context("the validator key is not a validator of this genesis")?;
    if genesis.operators.len() != 1 {
        bail!(
            "this genesis has {} validators; this build finalizes blocks on single-operator \
             chains only",
            genesis.operators.len()
        );
    }
    Ok(index as u16)
}

fn prepare_dev(options: &Options) -> Result<Setup> {
    let data_dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => default_dev_dir()?,
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let genesis_path = data_dir.join("genesis.json");
    let validator_path = data_dir.join("validator.key.json");
    let operator_path = data_dir.join("operator.key.json");
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
    let validator = validator_index(&genesis, &key)?;
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
        validator: (validator, key),
    })
}
