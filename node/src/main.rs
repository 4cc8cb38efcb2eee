//! cachetd: the Cachet ledger node. Parses options, opens the ledger, joins the network,
//! runs consensus on its own thread and serves the API until Ctrl-C or SIGTERM.

mod api;
mod commands;
mod config;
mod events;
mod explorer;
mod group;
mod health;
mod metrics;
mod node;
mod p2p;
mod process;
mod replica;
mod server;
mod setup;
mod statesync;
mod submit;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cachet_consensus::Timeouts;
use cachet_network::NetworkConfig;
use cachet_storage::{Ledger, Store};
use tokio::sync::watch;

use crate::node::{Node, Role};
use crate::replica::{Input, Replica};
use crate::setup::Options;
use cachet_host::Mempool;

fn main() {
    let mut options = match config::parse(std::env::args_os().collect()) {
        Ok((options, _, _)) => options,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(2);
        }
    };
    if let Some(command) = options.command.take() {
        if let Err(error) = commands::run(command) {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
        return;
    }
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CACHET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match options.log_format {
        setup::LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        // One JSON object per line, for log shippers.
        setup::LogFormat::Json => logs.json().with_current_span(false).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            std::process::exit(1);
        }
    };
    if let Err(error) = runtime.block_on(run(options)) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

async fn run(options: Options) -> Result<()> {
    // Takes the data directory's lock before touching anything in it.
    let setup = setup::prepare(&options)?;
    // Before RocksDB opens its files: this raises the open-file limit.
    let server_limits = server_limits(&options, setup.genesis.params.max_tx_bytes)?;
    // Stale addresses from a killed run must not be mistaken for this one's.
    let addr_file = setup.data_dir.join("api.addr");
    let p2p_file = setup.data_dir.join("p2p.addr");
    let _ = std::fs::remove_file(&addr_file);
    let _ = std::fs::remove_file(&p2p_file);
    let _ = std::fs::remove_file(setup.data_dir.join("metrics.addr"));
    let db = setup.data_dir.join("db");
    let store = if options.state_sync {
        Store::open_importing(&db, &setup.genesis)
    } else {
        Store::open(&db, &setup.genesis)
    }
    .with_context(|| format!("cannot open the ledger in {}", setup.data_dir.display()))?;
    let tip = store.tip()?;
    tracing::info!(height = tip.height, hash = %tip.block_hash.short(), state_root = %tip.state_root.hash().short(), "ledger opened");
    let params = setup.genesis.params.clone();

    // The operators' node identities: their nodes get connections and count as
    // validators' nodes. A validator must run under the identity its operator bound.
    let operators = store.operators_at(tip.height + 1)?;
    let node_key = cachet_types::SigningKey::from_seed(setup.p2p_seed).public_key();
    if let Some(validator) = &setup.validator
        && let Some(operator) = operators
            .iter()
            .find(|op| op.validator_key == validator.public_key())
        && operator.node_key != node_key
    {
        bail!(
            "this node's identity ({}, {node_key}) is not the node key operator {} bound ({}): \
             start it with the bound identity (p2p.key.json in the data directory) or rotate \
             it by vote (cachet membership rotate-node-key)",
            peer_id(&node_key),
            operator.id,
            operator.node_key
        );
    }
    tracing::info!(node_key = %node_key, peer_id = %peer_id(&node_key), "node identity");
    let (net, net_events) = cachet_network::spawn(NetworkConfig {
        chain_id: setup.genesis.chain_id(),
        keypair: cachet_network::keypair_from_seed(setup.p2p_seed)?,
        listen: options.p2p_listen.clone(),
        bootstrap: options.peers.clone(),
        max_tx_batch_bytes: cachet_host::wire::tx_batch_limit(params.max_tx_bytes as usize),
        max_block_bytes: params.max_block_bytes as usize,
        bound: replica::bound_peers(&operators),
        max_observer_peers: options.max_observer_peers as usize,
        peer_exchange_interval: (!options.no_peer_exchange)
            .then_some(cachet_network::PEER_EXCHANGE_INTERVAL),
    })?;
    let mut listening = net.listening();
    let p2p_addrs = tokio::time::timeout(
        Duration::from_secs(10),
        listening.wait_for(|addrs| addrs.len() >= options.p2p_listen.len()),
    )
    .await
    .context("the peer-to-peer listener did not start")?
    .context("the network stopped")?
    .clone();
    write_atomically(
        &p2p_file,
        &p2p_addrs
            .iter()
            .map(|a| format!("{a}\n"))
            .collect::<String>(),
    )?;

    let (stop_sender, stop) = watch::channel(false);
    let mut net_events = net_events;
    let mut known_peers = Vec::new();
    if options.state_sync && (tip.height == 0 || store.import_progress()?.is_some()) {
        let joined =
            statesync::join(&store, &net, &mut net_events, shutdown_signal(stop.clone())).await?;
        match joined {
            statesync::Joined::Snapshot(peers) => {
                known_peers = peers;
                // The operators' nodes of the snapshot's operator set.
                let tip = store.tip()?;
                net.send(cachet_network::Command::SetBound(replica::bound_peers(
                    &store.operators_at(tip.height + 1)?,
                )));
            }
            statesync::Joined::Replay(peers) => known_peers = peers,
        }
    }

    let role = match &setup.validator {
        Some(key) => Role::Validator(key.public_key()),
        None => Role::Observer,
    };
    let mempool = Mempool::new(
        options.mempool_max_txs as usize,
        options.rejections_remembered as usize,
    );
    let node = Arc::new(Node::new(
        Ledger::new(store),
        mempool,
        role,
        net.peer_counter(),
        net.bound_peer_counter(),
    )?);

    let timeouts = Timeouts {
        propose_ms: options.timeout_propose_ms,
        prevote_ms: options.timeout_propose_ms / 2,
        precommit_ms: options.timeout_propose_ms / 2,
        per_round_ms: options.timeout_propose_ms / 2,
        max_ms: 60_000,
    };
    let replica = Replica::new(
        node.clone(),
        net.clone(),
        setup.validator,
        &setup.data_dir,
        timeouts,
        options.rejoin_at_once,
    )?;
    let (inputs, input_rx) = std::sync::mpsc::sync_channel(replica::INPUT_QUEUE);
    let fatal = stop_sender.clone();
    let (resumed, consensus_resumed) = tokio::sync::oneshot::channel();
    let consensus = std::thread::Builder::new()
        .name("consensus".into())
        .spawn(move || {
            let result = replica.run(input_rx, resumed);
            if let Err(error) = &result {
                tracing::error!(error = %format!("{error:#}"), "consensus stopped; stopping the node");
                let _ = fatal.send(true);
            }
            result
        })
        .context("cannot start the consensus thread")?;
    let snapshots = Arc::new(statesync::Snapshots::default());
    if options.snapshot_interval > 0 {
        tokio::spawn(statesync::make_snapshots(
            node.clone(),
            snapshots.clone(),
            setup.data_dir.clone(),
            options.snapshot_interval,
            stop.clone(),
        ));
    }
    let backfill = statesync::start_backfill(
        node.clone(),
        net.clone(),
        &setup.data_dir,
        &setup.genesis,
        known_peers,
        stop.clone(),
    )?;
    tokio::spawn(p2p::dispatch(
        node.clone(),
        net.clone(),
        net_events,
        inputs.clone(),
        p2p::StateSync {
            snapshots,
            backfill,
        },
    ));
    tokio::spawn(p2p::gossip_txs(node.clone(), net.clone(), stop.clone()));
    tokio::spawn(p2p::wake_consensus(
        node.clone(),
        inputs.clone(),
        stop.clone(),
    ));

    // The API opens once consensus has resumed (a block decided before a crash is then
    // committed). If the thread failed instead, its error stops the node below.
    let _ = consensus_resumed.await;

    let listener = tokio::net::TcpListener::bind(options.api_addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.api_addr))?;
    let bound = listener.local_addr()?;
    // Metrics, health and readiness on their own address, when one is given: bound and
    // written before `api.addr`, which is what says the node is up (scripts and tests wait
    // for it), so the operations address is known by then too.
    let ops_listener = match options.metrics_addr {
        Some(addr) => {
            let ops_listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (--metrics-addr)"))?;
            let ops_bound = ops_listener.local_addr()?;
            write_atomically(
                &setup.data_dir.join("metrics.addr"),
                &format!("http://{ops_bound}\n"),
            )?;
            tracing::info!(metrics = %format!("http://{ops_bound}"), "metrics, health and readiness listening");
            Some(ops_listener)
        }
        None => None,
    };
    write_atomically(&addr_file, &format!("http://{bound}\n"))?;
    tracing::info!(api = %format!("http://{bound}"), role = %node.role_name(), "API listening");

    let max_wait = Duration::from_millis(options.max_wait_ms);
    let state = api::ApiState {
        node: node.clone(),
        max_wait_ms: options.max_wait_ms,
        admission: server::Admission::new(server_limits.clone()),
        ops_routes: options.metrics_addr.is_none(),
        ready_max_lag: options.ready_max_lag_blocks,
        event_clients: Arc::new(tokio::sync::Semaphore::new(events::MAX_EVENT_CLIENTS)),
        explorer: !options.no_explorer,
        submissions: submit::Submissions::start(node.clone(), options.api_max_concurrent as usize),
    };
    if let Some(listener) = ops_listener {
        let ops = api::ops_router(api::ApiState {
            admission: server::Admission::new(server_limits.clone()),
            ..state.clone()
        });
        tokio::spawn(server::serve(
            listener,
            ops,
            server_limits.clone(),
            stop.clone(),
            Duration::from_secs(1),
        ));
    }
    let app = api::router(state);
    let server = tokio::spawn(server::serve(
        listener,
        app,
        server_limits,
        stop.clone(),
        max_wait + Duration::from_secs(1),
    ));

    let reason = shutdown_signal(stop.clone()).await;
    tracing::info!("{reason}: shutting down");
    let _ = stop_sender.send(true);
    // The consensus thread finishes the block it is writing; nothing half-written remains.
    // A thread stuck past the deadline (a disk that hangs) is left behind: every write is an
    // atomic RocksDB batch, so exiting is as safe as a crash, which the node recovers from.
    let stopping = tokio::task::spawn_blocking(move || {
        let _ = inputs.send(Input::Stop);
        consensus.join()
    });
    let consensus = match tokio::time::timeout(SHUTDOWN_DEADLINE, stopping).await {
        Ok(joined) => joined.context("consensus thread lost")?,
        Err(_) => {
            tracing::error!(
                deadline_s = SHUTDOWN_DEADLINE.as_secs(),
                "the consensus thread did not stop in time; exiting without it"
            );
            eprintln!(
                "error: the consensus thread did not stop within {} s; exiting without it (the store recovers as after a crash)",
                SHUTDOWN_DEADLINE.as_secs()
            );
            std::process::exit(1);
        }
    };
    server.await.context("API server panicked")?;
    let _ = std::fs::remove_file(&addr_file);
    let _ = std::fs::remove_file(&p2p_file);
    match consensus {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            eprintln!("error: {error:#}");
            // Storage failed: exit code 2, as documented.
            std::process::exit(2);
        }
        Err(_) => bail!("the consensus thread panicked"),
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Longest wait at shutdown for the consensus thread to finish the block it is writing.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(60);

/// File handles kept free of API connections: RocksDB's files, libp2p's sockets, logs.
const RESERVED_FILE_HANDLES: u64 = 1024;

/// Fewest API connections the node runs with.
const MIN_API_CONNECTIONS: u64 = 16;

/// The API server's limits from the options, fitted to the open-file limit (raised to its
/// hard maximum first, as servers do). Body limits follow from the chain's largest
/// transaction: hex doubles its size, and the JSON around it needs a little room.
fn server_limits(options: &setup::Options, max_tx_bytes: u32) -> Result<server::ServerLimits> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_some_and(|soft| soft < hard)
    {
        let raised = Rlimit {
            current: Some(hard),
            maximum: Some(hard),
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "cannot raise the open-file limit");
        }
    }
    let mut max_connections = options.api_max_connections;
    if let Some(files) = getrlimit(Resource::Nofile).current
        && max_connections + RESERVED_FILE_HANDLES > files
    {
        // Fewer API connections rather than RocksDB or libp2p out of file handles.
        let fitting = files.saturating_sub(RESERVED_FILE_HANDLES);
        if fitting < MIN_API_CONNECTIONS {
            bail!(
                "the open-file limit is {files}: the node keeps {RESERVED_FILE_HANDLES} file handles for RocksDB and libp2p and needs at least {MIN_API_CONNECTIONS} for API connections; raise the limit (ulimit -n)"
            );
        }
        tracing::warn!(
            requested = max_connections,
            allowed = fitting,
            open_file_limit = files,
            "--api-max-connections lowered to fit the open-file limit"
        );
        max_connections = fitting;
    }
    Ok(server::ServerLimits {
        max_connections: max_connections as usize,
        max_connections_per_ip: options.api_max_connections_per_ip as usize,
        header_timeout: Duration::from_millis(options.api_header_timeout_ms),
        body_timeout: Duration::from_millis(options.api_body_timeout_ms),
        max_body_bytes: max_tx_bytes as usize * 2 + 1024,
        max_batch_body_bytes: cachet_api::MAX_SUBMIT_BATCH * (max_tx_bytes as usize * 2 + 4) + 1024,
        max_in_flight: options.api_max_concurrent as usize,
        max_long_polls: options.api_max_long_polls as usize,
        submissions_per_ip_per_s: options.api_submit_rate,
    })
}

/// Writes a small file whole, then renames it into place, so a reader never sees half of it.
fn write_atomically(path: &std::path::Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

async fn shutdown_signal(mut stop: watch::Receiver<bool>) -> &'static str {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => "interrupted",
        _ = terminate => "terminated",
        _ = stop.wait_for(|stop| *stop) => "fatal error",
    }
}

/// The peer id of a node key, for messages.
fn peer_id(node_key: &cachet_types::PublicKey) -> String {
    cachet_network::peer_id_of(&node_key.0).map_or_else(|| "invalid".into(), |p| p.to_string())
}
