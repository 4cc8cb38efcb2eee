//! `cachet-testnet`: creates, starts, stops and loads a local Cachet network of `cachetd`
//! processes on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cachet_testnet::load::{LoadOptions, agree, load};
use cachet_testnet::{InitOptions, Layout, init};
use cachet_types::ChainParams;
use clap::{Parser, Subcommand};

/// A local Cachet testnet: N operators' validators (and observers) on 127.0.0.1.
///
///   cachet-testnet init --dir ./net            # genesis, keys, layout (4 validators)
///   cachet-testnet start --dir ./net           # starts every cachetd in the background
///   cachet-testnet load --dir ./net            # mints, then measures transfers/s and latency
///   cachet-testnet status --dir ./net          # height, round, peers of each node
///   cachet-testnet stop --dir ./net            # SIGTERM to every node
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
    /// Start every node in the background (logs in <dir>/<node>/node.log).
    Start {
        /// Testnet directory.
        #[arg(long)]
        dir: PathBuf,
        /// The cachetd binary [default: next to this binary].
        #[arg(long)]
        cachetd: Option<PathBuf>,
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
        /// Submissions in flight.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Target rate in transfers/s [default: as fast as the nodes accept].
        #[arg(long)]
        rate: Option<u64>,
        /// Longest wait for finality, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
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
        Cmd::Start { dir, cachetd } => start(&dir, cachetd),
        Cmd::Stop { dir } => stop(&dir),
        Cmd::Status { dir } => runtime()?.block_on(status(&dir)),
        Cmd::Load {
            dir,
            transfers,
            collectors,
            concurrency,
            rate,
            timeout_secs,
        } => {
            let options = LoadOptions {
                transfers,
                collectors,
                concurrency,
                rate,
                timeout: Duration::from_secs(timeout_secs),
            };
            let report = runtime()?.block_on(load(&dir, &options))?;
            println!("{report}");
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

fn start(dir: &Path, cachetd: Option<PathBuf>) -> Result<()> {
    let layout = Layout::read(dir)?;
    let binary = match cachetd {
        Some(path) => path,
        None => default_cachetd()?,
    };
    let mut started = Vec::new();
    for index in 0..layout.nodes.len() {
        let data_dir = layout.data_dir(dir, index);
        let pid_path = pid_file(&layout, dir, index);
        if let Ok(pid) = std::fs::read_to_string(&pid_path)
            && alive(pid.trim())
        {
            bail!(
                "{} is already running (pid {})",
                layout.nodes[index].name,
                pid.trim()
            );
        }
        let _ = std::fs::remove_file(data_dir.join("api.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("node.log"))?;
        let mut command = Command::new(&binary);
        command
            .args(layout.node_args(dir, index))
            .arg("--data-dir")
            .arg(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // Its own process group: a Ctrl-C in this terminal does not reach the nodes.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        std::fs::write(&pid_path, child.id().to_string())?;
        started.push(index);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for index in 0..layout.nodes.len() {
        let addr = layout.data_dir(dir, index).join("api.addr");
        if !started.contains(&index) {
            continue;
        }
        while !addr.exists() {
            if Instant::now() > deadline {
                bail!(
                    "{} did not start within 60 s; see {}",
                    layout.nodes[index].name,
                    layout.data_dir(dir, index).join("node.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "{:<12} started: api {}",
            layout.nodes[index].name,
            std::fs::read_to_string(&addr)?.trim()
        );
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
    Ok(())
}

async fn status(dir: &Path) -> Result<()> {
    let layout = Layout::read(dir)?;
    let mut clients = Vec::new();
    for index in 0..layout.nodes.len() {
        let name = &layout.nodes[index].name;
        let Ok(addr) = std::fs::read_to_string(layout.data_dir(dir, index).join("api.addr")) else {
            println!("{name:<12} not running");
            continue;
        };
        let client = cachet_api::Client::new(addr.trim())?;
        match client.chain().await {
            Ok(info) => {
                let m = &info.metrics;
                println!(
                    "{name:<12} {:<12} height {:>6} (deciding {} round {})  peers {}  mempool {}  txs final {}  root {}",
                    m.role,
                    info.height,
                    info.height + 1,
                    m.consensus_round,
                    m.peers,
                    m.mempool_size,
                    m.txs_final,
                    info.state_root.short()
                );
                clients.push(client);
            }
            Err(error) => println!("{name:<12} unreachable: {error}"),
        }
    }
    if clients.len() > 1 {
        match agree(&clients, Duration::from_secs(0)).await {
            Ok((height, _)) => println!("all nodes agree at height {height}"),
            Err(_) => println!("nodes are not (yet) at one height and state root"),
        }
    }
    Ok(())
}
