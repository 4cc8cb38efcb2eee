//! `cachetd init` and `cachetd keys show`: an operator's node directory and the public
//! parts of its keys, which the other operators need to vote it in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cachet_consensus::SignerState;
use cachet_keystore::KdfParams;
use cachet_types::PublicKey;
use clap::Subcommand;
use serde::Serialize;

/// The validator key file in a node directory.
pub const VALIDATOR_KEY_FILE: &str = "validator.key.json";
/// The node identity (libp2p) key file in a node directory, as the node reads it.
pub const NODE_KEY_FILE: &str = "p2p.key.json";
/// The operator's issuing account key in a directory `init` made (`--dev`: operator.key.json).
pub const ISSUER_KEY_FILE: &str = "issuer.key.json";
/// The dev chain's issuing key.
const DEV_ISSUER_KEY_FILE: &str = "operator.key.json";

/// What `cachetd` does besides running a node.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Create a new operator's node directory: a validator key, a node identity key and an
    /// issuing account key, each sealed with the passphrase (--key-passphrase-file or
    /// CACHET_KEY_PASSPHRASE); then print their public parts, as `keys show` does.
    ///
    /// Run the node from it with: cachetd --data-dir DIR --genesis GENESIS
    ///   --validator-key DIR/validator.key.json --key-passphrase-file FILE --peer ...
    #[command(verbatim_doc_comment)]
    Init {
        /// The directory to create (it may exist, but must hold no key file yet).
        #[arg(long)]
        dir: PathBuf,
        /// File holding the passphrase that seals the keys (else CACHET_KEY_PASSPHRASE).
        #[arg(long)]
        key_passphrase_file: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The node's keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The node's configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Copy a node's ledger while it runs (or not) into a new backup directory: the
    /// store as of one height, its genesis and a manifest. Keys are not in it: keep the
    /// key files and their passphrase apart.
    Backup {
        /// The node's data directory.
        #[arg(long, env = "CACHET_DATA_DIR")]
        data_dir: PathBuf,
        /// The backup directory to create (it must not exist).
        #[arg(long)]
        to: PathBuf,
    },
    /// Restore a backup into a node's data directory (which must hold no ledger yet),
    /// checking the copy as the node does on start. Start the node on it: it resumes from
    /// the backup's height and catches up from its peers.
    Restore {
        /// The backup directory (`cachetd backup --to`).
        #[arg(long)]
        from: PathBuf,
        /// The node's data directory.
        #[arg(long, env = "CACHET_DATA_DIR")]
        data_dir: PathBuf,
    },
}

/// The manifest of a backup directory.
#[derive(Debug, Serialize, serde::Deserialize)]
struct Manifest {
    chain_id: cachet_types::Hash,
    height: u64,
    block_hash: cachet_types::Hash,
    created_ms: u64,
    entries: u64,
    bytes: u64,
}

/// The manifest's file name in a backup directory.
const MANIFEST_FILE: &str = "backup.json";

/// `cachetd keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the public parts of a node directory's keys (no passphrase needed): the
    /// validator key, the node identity key with its peer id, the issuing account, and the
    /// `cachet membership add` command that votes the operator in.
    Show {
        /// The node's data directory.
        #[arg(long, env = "CACHET_DATA_DIR")]
        data_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `cachetd config ...`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration a node would run with, as TOML, each key with where its
    /// value comes from (flag, environment, file, default); secrets redacted.
    ///
    /// Example: cachetd config show --config node.toml -- --api-addr 0.0.0.0:7600
    #[command(verbatim_doc_comment)]
    Show {
        /// Configuration file (else CACHET_CONFIG).
        #[arg(long, env = "CACHET_CONFIG")]
        config: Option<PathBuf>,
        /// The node's flags, after `--`.
        #[arg(last = true)]
        flags: Vec<std::ffi::OsString>,
    },
}

/// The public parts of a node directory's keys.
#[derive(Debug, Serialize)]
struct PublicParts {
    validator_key: Option<PublicKey>,
    node_key: Option<PublicKey>,
    peer_id: Option<String>,
    issuer: Option<cachet_types::Address>,
}

/// Runs a command; an error ends the process with exit code 1.
pub fn run(command: NodeCommand) -> Result<()> {
    match command {
        NodeCommand::Init {
            dir,
            key_passphrase_file,
            json,
        } => {
            let passphrase = passphrase(key_passphrase_file.as_deref())?;
            init(&dir, &passphrase)?;
            show(&dir, json)
        }
        NodeCommand::Keys(KeysCommand::Show { data_dir, json }) => show(&data_dir, json),
        NodeCommand::Backup { data_dir, to } => backup(&data_dir, &to),
        NodeCommand::Config(ConfigCommand::Show { config, flags }) => {
            let mut args = vec![std::ffi::OsString::from("cachetd")];
            if let Some(path) = config {
                args.push("--config".into());
                args.push(path.into());
            }
            args.extend(flags);
            let (_, matches, sources) = crate::config::parse(args)?;
            print!("{}", crate::config::show(&matches, &sources));
            Ok(())
        }
        NodeCommand::Restore { from, data_dir } => restore(&from, &data_dir),
    }
}

/// Bytes between two progress lines of a backup.
const PROGRESS_EVERY_BYTES: u64 = 256 << 20;

fn backup(data_dir: &Path, to: &Path) -> Result<()> {
    let source = data_dir.join("db");
    if !source.is_dir() {
        bail!("{} holds no ledger (no db directory)", data_dir.display());
    }
    if to.exists() {
        bail!(
            "{} exists: a backup goes into a new directory",
            to.display()
        );
    }
    // The backup directory's lock, held while it is written: two backups cannot share it.
    let lock = crate::setup::lock_data_dir(to)?;
    let started = std::time::Instant::now();
    let mut next_line = PROGRESS_EVERY_BYTES;
    let report = cachet_storage::backup::backup(&source, &to.join("db"), &mut |family, bytes| {
        if bytes >= next_line {
            eprintln!("backup: {} MiB copied (at {})", bytes >> 20, family.name());
            next_line = bytes + PROGRESS_EVERY_BYTES;
        }
    })
    .with_context(|| format!("cannot back up {}", data_dir.display()))?;
    let genesis = serde_json::to_string_pretty(&report.genesis)? + "\n";
    std::fs::write(to.join("genesis.json"), genesis)
        .with_context(|| format!("cannot write {}", to.join("genesis.json").display()))?;
    let manifest = Manifest {
        chain_id: report.genesis.chain_id(),
        height: report.tip.height,
        block_hash: report.tip.block_hash,
        created_ms: crate::setup::now_ms(),
        entries: report.entries,
        bytes: report.bytes,
    };
    std::fs::write(
        to.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )
    .with_context(|| format!("cannot write the manifest in {}", to.display()))?;
    // A finished backup holds no lock file (restore copies its db and genesis only).
    let _ = std::fs::remove_file(to.join(crate::setup::LOCK_FILE));
    drop(lock);
    println!(
        "backed up height {} ({} entries, {} MiB) to {} in {:.1} s",
        manifest.height,
        manifest.entries,
        manifest.bytes >> 20,
        to.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn restore(from: &Path, data_dir: &Path) -> Result<()> {
    let manifest: Manifest = serde_json::from_str(
        &std::fs::read_to_string(from.join(MANIFEST_FILE))
            .with_context(|| format!("{} is not a backup (no {MANIFEST_FILE})", from.display()))?,
    )
    .with_context(|| format!("the manifest of {} is damaged", from.display()))?;
    let genesis = crate::setup::read_genesis(&from.join("genesis.json"))?;
    if genesis.chain_id() != manifest.chain_id {
        bail!("the backup's genesis is not the chain its manifest names");
    }
    // Takes the data directory's lock: not while a node runs on it.
    let _lock = crate::setup::lock_data_dir(data_dir)?;
    let target = data_dir.join("db");
    if target.exists() {
        bail!(
            "{} holds a ledger already; restore into an empty data directory (move the old one aside first)",
            data_dir.display()
        );
    }
    // Copied beside, checked, then renamed into place: a failed restore leaves no db.
    let staging = data_dir.join("db.restoring");
    let _ = std::fs::remove_dir_all(&staging);
    copy_dir(&from.join("db"), &staging)?;
    let tip = {
        let store = cachet_storage::Store::open(&staging, &genesis)
            .with_context(|| format!("the backup in {} does not check", from.display()))?;
        store.tip()?
    };
    if tip.height != manifest.height || tip.block_hash != manifest.block_hash {
        bail!(
            "the backup holds height {} but its manifest says {}",
            tip.height,
            manifest.height
        );
    }
    std::fs::rename(&staging, &target)?;
    let genesis_file = data_dir.join("genesis.json");
    if !genesis_file.exists() {
        std::fs::copy(from.join("genesis.json"), &genesis_file)?;
    }
    println!(
        "restored height {} of chain {} into {}; start the node on it: it catches up from its peers",
        tip.height,
        genesis.chain_id(),
        data_dir.display()
    );
    if data_dir.join("signer.state").exists() {
        println!(
            "the validator's signer.state was kept: it never signs twice at a height it signed"
        );
    } else {
        eprintln!(
            "no signer.state here: a validator started on it rejoins quietly (it signs again two heights after one decided with it back); put its old signer.state here first if you have it"
        );
    }
    Ok(())
}

/// Copies the files of a directory (a RocksDB directory is flat).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The passphrase from a file or CACHET_KEY_PASSPHRASE; at least 8 characters.
fn passphrase(file: Option<&Path>) -> Result<String> {
    let text = crate::setup::read_passphrase(file)?;
    if text.chars().count() < 8 {
        bail!("the passphrase must have at least 8 characters");
    }
    Ok(text)
}

/// Creates the directory (0700) and the three sealed keys, none of which may exist.
fn init(dir: &Path, passphrase: &str) -> Result<()> {
    let names = [VALIDATOR_KEY_FILE, NODE_KEY_FILE, ISSUER_KEY_FILE];
    if let Some(existing) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
        bail!(
            "{} exists: init never overwrites a key; choose a new --dir",
            existing.display()
        );
    }
    // Takes the lock: a node running on the directory stops this.
    let _lock = crate::setup::lock_data_dir(dir)?;
    for name in names {
        let key = cachet_keystore::generate_key()?;
        let file = cachet_keystore::seal(&key, passphrase, KdfParams::DEFAULT)?;
        cachet_keystore::write(&dir.join(name), &file)?;
    }
    // The new validator key has signed nothing: an empty signer state says so (a validator
    // without one rejoins quietly, as after a lost disk).
    crate::replica::SignerStore::new(dir)
        .save(&SignerState::default())
        .with_context(|| format!("cannot write the signer state in {}", dir.display()))?;
    eprintln!(
        "created {} with a validator key, a node identity key, an issuing key and an empty signer state",
        dir.display()
    );
    Ok(())
}

fn public_key(path: &Path) -> Result<Option<PublicKey>> {
    if !path.exists() {
        return Ok(None);
    }
    let file = cachet_keystore::read(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    Ok(Some(file.public_key))
}

fn show(dir: &Path, json: bool) -> Result<()> {
    let validator_key = public_key(&dir.join(VALIDATOR_KEY_FILE))?;
    let node_key = public_key(&dir.join(NODE_KEY_FILE))?;
    let issuer = match public_key(&dir.join(ISSUER_KEY_FILE))? {
        Some(key) => Some(key),
        None => public_key(&dir.join(DEV_ISSUER_KEY_FILE))?,
    }
    .map(|key| key.address());
    if validator_key.is_none() && node_key.is_none() && issuer.is_none() {
        bail!(
            "{} holds no key file ({VALIDATOR_KEY_FILE}, {NODE_KEY_FILE}, {ISSUER_KEY_FILE}); create one with `cachetd init --dir {}`",
            dir.display(),
            dir.display()
        );
    }
    let parts = PublicParts {
        validator_key,
        peer_id: node_key.and_then(|k| cachet_network::peer_id_of(&k.0).map(|p| p.to_string())),
        node_key,
        issuer,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&parts)?);
        return Ok(());
    }
    let shown = |v: Option<String>| v.unwrap_or_else(|| "(no key file)".into());
    println!(
        "validator key   {}",
        shown(parts.validator_key.map(|k| k.to_string()))
    );
    println!(
        "node key        {}",
        shown(parts.node_key.map(|k| k.to_string()))
    );
    println!("peer id         {}", shown(parts.peer_id.clone()));
    println!(
        "issuer account  {}",
        shown(parts.issuer.map(|a| a.to_string()))
    );
    if let (Some(validator), Some(node), Some(issuer)) =
        (parts.validator_key, parts.node_key, parts.issuer)
    {
        println!(
            "\nAn operator of the chain proposes this node's operator with:\n  cachet membership add --id <OPERATOR-ID> --country <CC> --name <NAME> \\\n    --validator-key {validator} --node-key {node} --issuer {issuer} --at-height <H> -w <WALLET>"
        );
    }
    Ok(())
}
