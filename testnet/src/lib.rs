//! A local Cachet testnet: a genesis with N operators, their keys and node layouts
//! ([`init`]), the `cachetd` command line of each node ([`Layout::node_args`]), and a
//! workload that measures finalized transfers per second and submit-to-final latency
//! ([`load`]).

pub mod check;
pub mod load;
pub mod netns;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cachet_keystore::KdfParams;
use cachet_types::{ChainParams, CountryCode, Genesis, Operator, OperatorId};
use serde::{Deserialize, Serialize};

/// Passphrase file of every key in a local testnet (keys protect nothing here).
pub const PASSPHRASE_FILE: &str = "passphrase";

/// Key-derivation cost of testnet key files: light, since a local testnet's keys protect
/// nothing and every node start opens one.
pub const TESTNET_KDF: KdfParams = KdfParams {
    memory_kib: 8 * 1024,
    iterations: 1,
    parallelism: 1,
};

/// One node of the testnet.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeLayout {
    /// Name, also its directory under the testnet directory.
    pub name: String,
    /// API address.
    pub api: String,
    /// Peer-to-peer listen address.
    pub p2p: String,
    /// Validator key file (relative to the testnet directory); none for an observer.
    pub validator_key: Option<String>,
}

/// The whole testnet, as `init` wrote it to `testnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    /// Genesis file (relative).
    pub genesis: String,
    /// Issuer key file of each operator (relative), in genesis order.
    pub issuer_keys: Vec<String>,
    /// Nodes: validators first, then observers.
    pub nodes: Vec<NodeLayout>,
}

impl Layout {
    /// Reads `<dir>/testnet.json`.
    pub fn read(dir: &Path) -> Result<Layout> {
        let path = dir.join("testnet.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (run `cachet-testnet init` first)",
                path.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("{} is damaged", path.display()))
    }

    /// The `cachetd` arguments of node `index` on the testnet's fixed ports, peering with
    /// every validator (the data directory is added by the caller).
    pub fn node_args(&self, dir: &Path, index: usize) -> Vec<String> {
        let node = &self.nodes[index];
        let mut args = self.base_args(dir, index);
        args.extend([
            "--api-addr".into(),
            node.api.clone(),
            "--p2p-listen".into(),
            node.p2p.clone(),
        ]);
        for (i, other) in self.nodes.iter().enumerate() {
            if i != index && other.validator_key.is_some() {
                args.extend(["--peer".into(), other.p2p.clone()]);
            }
        }
        args
    }

    /// The arguments of node `index` without addresses or peers: genesis and, for a
    /// validator, its key and passphrase file.
    pub fn base_args(&self, dir: &Path, index: usize) -> Vec<String> {
        let mut args = vec!["--genesis".into(), path_str(&dir.join(&self.genesis))];
        // Every client of a local testnet (the load's submitters, the watcher, the
        // checker) comes from one address: the per-address connection cap is raised.
        args.extend(["--api-max-connections-per-ip".into(), "512".into()]);
        if let Some(key) = &self.nodes[index].validator_key {
            args.extend([
                "--validator-key".into(),
                path_str(&dir.join(key)),
                "--key-passphrase-file".into(),
                path_str(&dir.join(PASSPHRASE_FILE)),
            ]);
        }
        args
    }

    /// The API address of node `index` as the controller reaches it: in namespaces, the
    /// relay's listener on the node's testnet address; otherwise what the node wrote to
    /// `api.addr` once listening. `None` while the node has not opened its API.
    pub fn api_url(&self, dir: &Path, index: usize) -> Result<Option<String>> {
        let written = self.data_dir(dir, index).join("api.addr");
        let Ok(text) = std::fs::read_to_string(&written) else {
            return Ok(None);
        };
        if netns::NetPlan::read(dir)?.is_some() {
            return Ok(Some(format!("http://{}", self.nodes[index].api)));
        }
        Ok(Some(text.trim().to_string()))
    }

    /// The data directory of node `index`.
    pub fn data_dir(&self, dir: &Path, index: usize) -> PathBuf {
        dir.join(&self.nodes[index].name)
    }

    /// The genesis.
    pub fn read_genesis(&self, dir: &Path) -> Result<Genesis> {
        let text = std::fs::read_to_string(dir.join(&self.genesis))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn path_str(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// What [`init`] creates.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Validators (operators).
    pub validators: usize,
    /// Observers.
    pub observers: usize,
    /// First API port (node i uses port + i); 0 gives every node a free port at start.
    pub api_port: u16,
    /// First peer-to-peer port (node i uses port + i).
    pub p2p_port: u16,
    /// Chain limits.
    pub params: ChainParams,
}

/// Creates a testnet in `dir` (which must not hold one): operator keys, a genesis, and the
/// layout of every node.
pub fn init(dir: &Path, options: &InitOptions) -> Result<Layout> {
    let max = cachet_types::genesis::MAX_OPERATORS;
    if options.validators == 0 || options.validators > max {
        bail!("validators must be between 1 and {max} (the chain's limit of operators)");
    }
    check_ports(options)?;
    if dir.join("testnet.json").exists() {
        bail!(
            "{} already holds a testnet; stop it and remove the directory first",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let passphrase = hex::encode(cachet_keystore::generate_key()?.seed());
    std::fs::write(dir.join(PASSPHRASE_FILE), &passphrase)?;
    let mut operators = Vec::new();
    let mut issuer_keys = Vec::new();
    let mut nodes = Vec::new();
    for i in 0..options.validators {
        let country = cachet_testkit::country_code(i);
        let country = country.as_str();
        let validator = cachet_keystore::generate_key()?;
        let issuer = cachet_keystore::generate_key()?;
        let name = format!("validator-{i}");
        std::fs::create_dir_all(dir.join(&name))?;
        let validator_file = format!("{name}/validator.key.json");
        let issuer_file = format!("operator-{i}.key.json");
        // The node's peer-to-peer identity, where cachetd looks for it: the genesis binds it.
        let node = cachet_keystore::generate_key()?;
        let node_file = format!("{name}/p2p.key.json");
        for (file, key) in [
            (&validator_file, &validator),
            (&issuer_file, &issuer),
            (&node_file, &node),
        ] {
            let sealed = cachet_keystore::seal(key, &passphrase, TESTNET_KDF)?;
            cachet_keystore::write(&dir.join(file), &sealed)?;
        }
        // A new validator has signed nothing, as `cachetd init` records it: without this
        // file a validator rejoins quietly, and four at once would never decide.
        std::fs::write(
            dir.join(&name).join("signer.state"),
            cachet_types::codec::encode(&cachet_consensus::SignerState::default()),
        )?;
        operators.push(Operator {
            id: OperatorId::parse(&format!("{country}-POST"))?,
            country: CountryCode::parse(country)?,
            name: format!("{country} Post (testnet)"),
            validator_key: validator.public_key(),
            node_key: node.public_key(),
            issuer: issuer.public_key().address(),
        });
        issuer_keys.push(issuer_file);
        nodes.push(node_layout(name, options, i, Some(validator_file)));
    }
    for j in 0..options.observers {
        let name = format!("observer-{j}");
        std::fs::create_dir_all(dir.join(&name))?;
        nodes.push(node_layout(name, options, options.validators + j, None));
    }
    let genesis = Genesis {
        chain_name: "cachet-testnet".into(),
        genesis_time_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        operators,
        params: options.params.clone(),
    };
    genesis.validate()?;
    std::fs::write(
        dir.join("genesis.json"),
        serde_json::to_string_pretty(&genesis)? + "\n",
    )?;
    let layout = Layout {
        genesis: "genesis.json".into(),
        issuer_keys,
        nodes,
    };
    std::fs::write(
        dir.join("testnet.json"),
        serde_json::to_string_pretty(&layout)? + "\n",
    )?;
    Ok(layout)
}

/// Node `i` uses `api_port + i` and `p2p_port + i`: both ranges must fit below 65536 and
/// not overlap (port 0 gives every node a free port and needs no range).
fn check_ports(options: &InitOptions) -> Result<()> {
    let nodes = options.validators + options.observers;
    let range = |name: &str, base: u16| -> Result<Option<(u32, u32)>> {
        if base == 0 {
            return Ok(None);
        }
        let last = u32::from(base) + nodes as u32 - 1;
        if last > u32::from(u16::MAX) {
            bail!("{nodes} nodes from {name} port {base} run past port 65535; choose a lower port");
        }
        Ok(Some((u32::from(base), last)))
    };
    if let (Some((a0, a1)), Some((p0, p1))) = (
        range("API", options.api_port)?,
        range("peer-to-peer", options.p2p_port)?,
    ) && a0 <= p1
        && p0 <= a1
    {
        bail!(
            "API ports {a0}-{a1} and peer-to-peer ports {p0}-{p1} overlap for {nodes} nodes; \
             choose --p2p-port {} or more",
            a1 + 1
        );
    }
    Ok(())
}

fn node_layout(
    name: String,
    options: &InitOptions,
    index: usize,
    validator_key: Option<String>,
) -> NodeLayout {
    let port = |base: u16| {
        if base == 0 { 0 } else { base + index as u16 }
    };
    NodeLayout {
        name,
        api: format!("127.0.0.1:{}", port(options.api_port)),
        p2p: format!("/ip4/127.0.0.1/tcp/{}", port(options.p2p_port)),
        validator_key,
    }
}

/// Reads the testnet's passphrase.
pub fn passphrase(dir: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(dir.join(PASSPHRASE_FILE))?
        .trim()
        .to_string())
}
