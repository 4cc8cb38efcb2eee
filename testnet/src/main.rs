//! `cachet-testnet`: creates, starts, stops and loads a local Cachet network of `cachetd`
//! processes on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cachet_testnet::load::{LoadOptions, agree, load};
use cachet_testnet::netns::{self, HostLink, NetPlan};
use cachet_testnet::{InitOptions, Layout, check, init};
use cachet_types::ChainParams;
use clap::{Parser, Subcommand};

/// A local Cachet testnet: N operators' validators (and observers) on 127.0.0.1.
///
///   cachet-testnet init --dir ./net            # genesis, keys, layout (4 validators)
///   cachet-testnet start --dir ./net           # starts every cachetd in the background
///   cachet-testnet load --dir ./net            # mints, then measures transfers/s and latency
///   cachet-testnet status --dir ./net          # height, round, peers of each node
///   cachet-testnet stop --dir ./net            # SIGTERM to every node
///
/// Real links (root): `start --netns` runs each node in its own network namespace behind a
/// relay that delays each host's traffic, with loss from iptables; then
///   cachet-testnet net partition --dir ./net --sides 0,1/2,3
///   cachet-testnet net heal --dir ./net
///   cachet-testnet kill --dir ./net --node 2 && cachet-testnet restart --dir ./net --node 2
///   cachet-testnet check --dir ./net           # one chain everywhere, or what differs
#[derive(Parser)]
#[command(name = "cachet-testnet", version, verbatim_doc_comment)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a genesis with N operators, their keys and every node's layout.
    Init {
        /// Testnet directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// Operators, each running one validator (1 to the chain's limit, 256; past 8 their
        /// countries are made-up codes AA, AB, ...).
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Observers (nodes without a validator key).
        #[arg(long, default_value_t = 0)]
        observers: usize,
        /// API port of the first node; node i uses this + i.
        #[arg(long, default_value_t = 7600)]
        api_port: u16,
        /// Peer-to-peer port of the first node; node i uses this + i (the API and
        /// peer-to-peer ranges must not overlap: above 100 nodes, e.g. --p2p-port 8700).
        #[arg(long, default_value_t = 7700)]
        p2p_port: u16,
    },
    /// Start every node that is not running, in the background (logs in
    /// <dir>/<node>/node.log).
    Start {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// The cachetd binary [default: next to this binary].
        #[arg(long)]
        cachetd: Option<PathBuf>,
        /// Run every node in its own network namespace, peering through a relay (needs
        /// root, `ip` and `iptables`; `stop` removes the namespaces).
        #[arg(long)]
        netns: bool,
        /// With --netns: one-way delay each host adds to what it sends, in ms.
        #[arg(long, default_value_t = 0, requires = "netns", value_parser = clap::value_parser!(u64).range(0..=10_000))]
        delay_ms: u64,
        /// With --netns: up to this much more delay, at random (order is kept), in ms.
        #[arg(long, default_value_t = 0, requires = "netns", value_parser = clap::value_parser!(u64).range(0..=10_000))]
        jitter_ms: u64,
        /// With --netns: incoming packets each host drops, per mille.
        #[arg(long, default_value_t = 0, requires = "netns", value_parser = clap::value_parser!(u32).range(0..=500))]
        loss_per_mille: u32,
    },
    /// Change the links of a namespaced testnet: partitions, healing, loss.
    Net {
        #[command(subcommand)]
        action: NetAction,
    },
    /// SIGKILL one node (it keeps its data directory; `restart` starts it again).
    Kill {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node number (layout order: validators, then observers).
        #[arg(long)]
        node: usize,
    },
    /// Start one stopped or killed node again, as `start` did.
    Restart {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Node number.
        #[arg(long)]
        node: usize,
        /// The cachetd binary [default: next to this binary].
        #[arg(long)]
        cachetd: Option<PathBuf>,
    },
    /// Check that every node holds one chain: the same height and state root, the same
    /// block at every height, and every transaction in FINALS final in its block on every
    /// node. Exits non-zero with what differs.
    Check {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// A file of `<tx id> <height>` lines (transactions reported final).
        #[arg(long)]
        finals: Option<PathBuf>,
        /// How long the nodes may take to reach one height.
        #[arg(long, default_value_t = 60)]
        timeout_secs: u64,
    },
    /// Run the relay of a namespaced testnet (started by `start --netns`).
    #[command(hide = true)]
    Relay {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Stop every node (SIGTERM, then SIGKILL after 30 s).
    Stop {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Each node's height, round, peers and mempool.
    Status {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Drive a transfer workload and print finalized transfers/s and latency percentiles.
    Load {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// Transfers to submit.
        #[arg(long, default_value_t = 20_000)]
        transfers: usize,
        /// Collectors signing them.
        #[arg(long, default_value_t = 2_000)]
        collectors: usize,
        /// Submitters, each with a request in flight. Each owns collectors / concurrency
        /// collectors and sends a request per round to each validator they send to: with a
        /// concurrency that is a multiple of the validator count, all of a submitter's
        /// collectors send to one validator, so the default's requests hold ~31 transfers
        /// (2,000 / 64). At 256 they held ~8, four times the requests for the same
        /// transfers, and the paced 5,000/s p99 rose from ~0.5 s to ~1.6 s (README,
        /// "Benchmarks").
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Transfers per request at most: 1 posts each alone (`POST /v1/tx`); more are sent
        /// together (`POST /v1/txs`, at most 1000), checked by the node in one batch. A
        /// request goes to one validator and holds at most one transfer of each of the
        /// submitter's collectors that send to it, never two nonces of one signer.
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1000))]
        batch: u64,
        /// Target rate in transfers/s [default: as fast as the nodes accept].
        #[arg(long)]
        rate: Option<u64>,
        /// Longest wait for finality, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        /// Also print the figure as a `row:` line beside the throughput target (what
        /// `benches/run` collects into its summary table).
        #[arg(long)]
        bench_row: bool,
    },
}

/// The testnet directory of a `net` action.
#[derive(clap::Args)]
struct NetDir {
    /// Testnet directory.
    #[arg(long)]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum NetAction {
    /// Split the nodes into sides that cannot reach each other, e.g. `--sides 0,1/2,3`
    /// (every node on one side; replaces any earlier partition).
    Partition {
        #[command(flatten)]
        at: NetDir,
        /// Sides: node numbers separated by commas, sides by slashes.
        #[arg(long)]
        sides: String,
    },
    /// Cut one node off from every other.
    Isolate {
        #[command(flatten)]
        at: NetDir,
        /// Node number.
        #[arg(long)]
        node: usize,
    },
    /// Alternate a partition and healing, `cycles` times, each state `period-ms` long.
    Flap {
        #[command(flatten)]
        at: NetDir,
        /// Sides, as for `partition`.
        #[arg(long)]
        sides: String,
        /// Partition-heal cycles.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        cycles: u32,
        /// Length of each state, in ms.
        #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        period_ms: u64,
    },
    /// Remove every partition.
    Heal {
        #[command(flatten)]
        at: NetDir,
    },
    /// Set one node's incoming loss.
    Loss {
        #[command(flatten)]
        at: NetDir,
        /// Node number.
        #[arg(long)]
        node: usize,
        /// Per mille.
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=500))]
        per_mille: u32,
    },
}

fn main() {
    let args = Args::parse();
    if let Err(error) = run(args.command) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn run(command: Cmd) -> Result<()> {
    match command {
        Cmd::Init {
            dir,
            validators,
            observers,
            api_port,
            p2p_port,
        } => {
            let layout = init(
                &dir,
                &InitOptions {
                    validators,
                    observers,
                    api_port,
                    p2p_port,
                    params: ChainParams::default(),
                },
            )?;
            let genesis = layout.read_genesis(&dir)?;
            println!("testnet {} in {}", genesis.chain_id(), dir.display());
            for node in &layout.nodes {
                println!(
                    "  {:<12} api http://{}  p2p {}",
                    node.name, node.api, node.p2p
                );
            }
            Ok(())
        }
        Cmd::Start {
            dir,
            cachetd,
            netns,
            delay_ms,
            jitter_ms,
            loss_per_mille,
        } => {
            let links = netns.then_some(HostLink {
                delay_ms,
                jitter_ms,
                loss_per_mille,
            });
            start(&dir, cachetd, links)
        }
        Cmd::Stop { dir } => stop(&dir),
        Cmd::Net { action } => net(action),
        Cmd::Kill { dir, node } => kill(&dir, node),
        Cmd::Restart { dir, node, cachetd } => {
            let layout = Layout::read(&dir)?;
            if node >= layout.nodes.len() {
                bail!("no node {node} (the testnet has {})", layout.nodes.len());
            }
            let binary = match cachetd {
                Some(path) => path,
                None => default_cachetd()?,
            };
            spawn_node(&layout, &dir, node, &binary, NetPlan::read(&dir)?.as_ref())?;
            wait_started(&layout, &dir, &[node])
        }
        Cmd::Check {
            dir,
            finals,
            timeout_secs,
        } => {
            let finals = match finals {
                Some(path) => check::read_finals(&path)?,
                None => Vec::new(),
            };
            let layout = Layout::read(&dir)?;
            let clients = check::clients(&layout, &dir)?;
            let summary = runtime()?.block_on(check::one_chain(
                &clients,
                &finals,
                Duration::from_secs(timeout_secs),
            ))?;
            println!("{summary}");
            Ok(())
        }
        Cmd::Relay { dir } => netns::relay(&dir),
        Cmd::Status { dir } => runtime()?.block_on(status(&dir)),
        Cmd::Load {
            dir,
            transfers,
            collectors,
            concurrency,
            batch,
            rate,
            timeout_secs,
            bench_row,
        } => {
            let options = LoadOptions {
                transfers,
                collectors,
                concurrency,
                batch: batch as usize,
                rate,
                timeout: Duration::from_secs(timeout_secs),
            };
            let report = runtime()?.block_on(load(&dir, &options))?;
            println!("{report}");
            if bench_row {
                println!("{}", report.bench_row(rate));
            }
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn default_cachetd() -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.with_file_name("cachetd");
    if !path.exists() {
        bail!(
            "no cachetd next to {}: build it (cargo build --release -p cachet-node) or pass --cachetd",
            me.display()
        );
    }
    Ok(path)
}

fn pid_file(layout: &Layout, dir: &Path, index: usize) -> PathBuf {
    layout.data_dir(dir, index).join("cachetd.pid")
}

fn alive(pid: &str) -> bool {
    Path::new("/proc").join(pid).exists()
}

fn start(dir: &Path, cachetd: Option<PathBuf>, links: Option<HostLink>) -> Result<()> {
    let layout = Layout::read(dir)?;
    let binary = match cachetd {
        Some(path) => path,
        None => default_cachetd()?,
    };
    let existing = NetPlan::read(dir)?;
    let plan = match (links, existing) {
        (None, Some(_)) => bail!(
            "this testnet runs in namespaces: start it with --netns (or `stop` it to remove them)"
        ),
        (None, None) => None,
        (Some(_), Some(plan)) => {
            // Namespaces from an earlier start: keep them (and their links) and their relay.
            if running_pid(&dir.join("relay.pid")).is_none() {
                start_relay(dir)?;
            }
            Some(plan)
        }
        (Some(link), None) => {
            let plan = netns::up(dir, &layout, vec![link; layout.nodes.len()])?;
            if let Err(error) = start_relay(dir) {
                let _ = netns::down(dir);
                return Err(error);
            }
            println!(
                "namespaces cn{}-*: {} ms + up to {} ms delay, {} per mille loss per host",
                plan.tag, link.delay_ms, link.jitter_ms, link.loss_per_mille
            );
            Some(plan)
        }
    };
    let mut started = Vec::new();
    for index in 0..layout.nodes.len() {
        if let Some(pid) = running_pid(&pid_file(&layout, dir, index)) {
            println!(
                "{:<12} already running (pid {pid})",
                layout.nodes[index].name
            );
            continue;
        }
        spawn_node(&layout, dir, index, &binary, plan.as_ref())?;
        started.push(index);
    }
    wait_started(&layout, dir, &started)
}

fn running_pid(path: &Path) -> Option<String> {
    let pid = std::fs::read_to_string(path).ok()?.trim().to_string();
    alive(&pid).then_some(pid)
}

/// Starts the relay of a namespaced testnet in the background and waits until it listens.
fn start_relay(dir: &Path) -> Result<()> {
    let ready = dir.join("relay.ready");
    let _ = std::fs::remove_file(&ready);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("relay.log"))?;
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["relay", "--dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().context("cannot start the relay")?;
    std::fs::write(dir.join("relay.pid"), child.id().to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if !alive(&child.id().to_string()) || Instant::now() > deadline {
            bail!(
                "the relay did not start; see {}",
                dir.join("relay.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Starts node `index` in the background (in its namespace if there is a plan).
fn spawn_node(
    layout: &Layout,
    dir: &Path,
    index: usize,
    binary: &Path,
    plan: Option<&NetPlan>,
) -> Result<()> {
    let data_dir = layout.data_dir(dir, index);
    let pid_path = pid_file(layout, dir, index);
    if let Some(pid) = running_pid(&pid_path) {
        bail!(
            "{} is already running (pid {pid})",
            layout.nodes[index].name
        );
    }
    let _ = std::fs::remove_file(data_dir.join("api.addr"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("node.log"))?;
    let (mut command, args) = match plan {
        Some(plan) => (
            plan.exec_in(index, binary),
            plan.node_args(layout, dir, index),
        ),
        None => (Command::new(binary), layout.node_args(dir, index)),
    };
    command
        .args(args)
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // Its own process group: a Ctrl-C in this terminal does not reach the nodes.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    // `ip netns exec` execs the node: the pid is the node's.
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    std::fs::write(&pid_path, child.id().to_string())?;
    Ok(())
}

/// Waits (60 s at most) until each of `indexes` has opened its API.
fn wait_started(layout: &Layout, dir: &Path, indexes: &[usize]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for &index in indexes {
        let url = loop {
            if let Some(url) = layout.api_url(dir, index)? {
                break url;
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not start within 60 s; see {}",
                    layout.nodes[index].name,
                    layout.data_dir(dir, index).join("node.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        println!("{:<12} started: api {url}", layout.nodes[index].name);
    }
    Ok(())
}

fn kill(dir: &Path, node: usize) -> Result<()> {
    let layout = Layout::read(dir)?;
    if node >= layout.nodes.len() {
        bail!("no node {node} (the testnet has {})", layout.nodes.len());
    }
    let path = pid_file(&layout, dir, node);
    let Some(pid) = running_pid(&path) else {
        bail!("{} is not running", layout.nodes[node].name);
    };
    Command::new("kill").args(["-KILL", &pid]).status()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&pid) {
        if Instant::now() > deadline {
            bail!("{} (pid {pid}) did not die", layout.nodes[node].name);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(path);
    println!("{:<12} killed", layout.nodes[node].name);
    Ok(())
}

fn net(action: NetAction) -> Result<()> {
    let (NetAction::Partition { at, .. }
    | NetAction::Isolate { at, .. }
    | NetAction::Flap { at, .. }
    | NetAction::Heal { at }
    | NetAction::Loss { at, .. }) = &action;
    let dir = at.dir.clone();
    let dir = dir.as_path();
    let layout = Layout::read(dir)?;
    let plan = NetPlan::read(dir)?
        .context("this testnet does not run in namespaces (start it with --netns)")?;
    let count = layout.nodes.len();
    let node_in_range = |node: usize| {
        if node >= count {
            bail!("no node {node} (the testnet has {count})");
        }
        Ok(())
    };
    match action {
        NetAction::Partition { sides, .. } => {
            let cuts = netns::partition_cuts(count, &netns::parse_sides(&sides)?)?;
            netns::set_cuts(&plan, &cuts)?;
            println!("partitioned: {sides}");
        }
        NetAction::Isolate { node, .. } => {
            node_in_range(node)?;
            let rest: Vec<usize> = (0..count).filter(|n| *n != node).collect();
            let cuts = netns::partition_cuts(count, &[vec![node], rest])?;
            netns::set_cuts(&plan, &cuts)?;
            println!("isolated node {node}");
        }
        NetAction::Flap {
            sides,
            cycles,
            period_ms,
            ..
        } => {
            let cuts = netns::partition_cuts(count, &netns::parse_sides(&sides)?)?;
            for cycle in 1..=cycles {
                netns::set_cuts(&plan, &cuts)?;
                std::thread::sleep(Duration::from_millis(period_ms));
                netns::set_cuts(&plan, &Default::default())?;
                println!("flap {cycle}/{cycles}");
                std::thread::sleep(Duration::from_millis(period_ms));
            }
        }
        NetAction::Heal { .. } => {
            netns::set_cuts(&plan, &Default::default())?;
            println!("healed");
        }
        NetAction::Loss {
            node, per_mille, ..
        } => {
            node_in_range(node)?;
            netns::set_loss(&plan, node, per_mille)?;
            println!("node {node}: {per_mille} per mille incoming loss");
        }
    }
    Ok(())
}

fn stop(dir: &Path) -> Result<()> {
    let layout = Layout::read(dir)?;
    let mut running = Vec::new();
    for index in 0..layout.nodes.len() {
        let path = pid_file(&layout, dir, index);
        let Ok(pid) = std::fs::read_to_string(&path) else {
            continue;
        };
        let pid = pid.trim().to_string();
        if alive(&pid) {
            Command::new("kill").args(["-TERM", &pid]).status()?;
            running.push((index, pid, path));
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for (index, pid, path) in running {
        while alive(&pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(&pid) {
            Command::new("kill").args(["-KILL", &pid]).status()?;
            println!(
                "{:<12} killed (did not stop within 30 s)",
                layout.nodes[index].name
            );
        } else {
            println!("{:<12} stopped", layout.nodes[index].name);
        }
        let _ = std::fs::remove_file(path);
    }
    if NetPlan::read(dir)?.is_some() {
        if let Some(pid) = running_pid(&dir.join("relay.pid")) {
            Command::new("kill").args(["-KILL", &pid]).status()?;
        }
        let _ = std::fs::remove_file(dir.join("relay.pid"));
        netns::down(dir)?;
        println!("namespaces removed");
    }
    Ok(())
}

async fn status(dir: &Path) -> Result<()> {
    let layout = Layout::read(dir)?;
    let mut lines = Vec::new();
    let mut clients = Vec::new();
    for index in 0..layout.nodes.len() {
        let name = &layout.nodes[index].name;
        let Some(url) = layout.api_url(dir, index)? else {
            lines.push(format!("{name:<12} not running"));
            continue;
        };
        let client = cachet_api::Client::new(&url)?;
        match client.chain().await {
            Ok(info) => {
                let m = &info.metrics;
                lines.push(format!(
                    "{name:<12} {:<12} height {:>6} (deciding {} round {})  peers {}  mempool {}  txs final {}  root {}",
                    m.role,
                    info.height,
                    info.height + 1,
                    m.consensus_round,
                    m.peers,
                    m.mempool_size,
                    m.txs_final,
                    info.state_root.short()
                ));
                clients.push(client);
            }
            Err(error) => lines.push(format!("{name:<12} unreachable: {error}")),
        }
    }
    if clients.len() > 1 {
        match agree(&clients, Duration::from_secs(0)).await {
            Ok((height, _)) => lines.push(format!("all nodes agree at height {height}")),
            Err(_) => lines.push("nodes are not (yet) at one height and state root".to_string()),
        }
    }
    // Written at once; a closed pipe (`status | head`) ends it quietly.
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    match std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes()) {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(error.into()),
        _ => Ok(()),
    }
}
