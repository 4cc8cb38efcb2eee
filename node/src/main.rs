//! cachetd: the Cachet ledger node. Parses options, opens the ledger, serves the API and
//! produces blocks until Ctrl-C or SIGTERM.

mod api;
mod mempool;
mod node;
mod setup;

use std::sync::Arc;

use anyhow::{Context, Result};
use cachet_storage::{Ledger, Store};
use clap::Parser;
use tokio::sync::watch;

use crate::mempool::Mempool;
use crate::node::Node;
use crate::setup::Options;

fn main() {
    let options = Options::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CACHET_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
    let setup = setup::prepare(&options)?;
    // A stale address from a killed run must not be mistaken for this one.
    let _ = std::fs::remove_file(setup.data_dir.join("api.addr"));
    let store = Store::open(&setup.data_dir.join("db"), &setup.genesis)
        .with_context(|| format!("cannot open the ledger in {}", setup.data_dir.display()))?;
    let tip = store.tip()?;
    tracing::info!(height = tip.height, hash = %tip.block_hash.short(), state_root = %tip.state_root.hash().short(), "ledger opened");
    let mempool = Mempool::new(options.mempool_max_txs, options.rejections_remembered);
    let node = Arc::new(Node::new(Ledger::new(store), mempool, setup.validator)?);

    let listener = tokio::net::TcpListener::bind(options.api_addr)
        .await
        .with_context(|| format!("cannot listen on {}", options.api_addr))?;
    let bound = listener.local_addr()?;
    let addr_file = setup.data_dir.join("api.addr");
    // Written whole then renamed, so a reader never sees half an address.
    let tmp = setup.data_dir.join("api.addr.tmp");
    std::fs::write(&tmp, format!("http://{bound}\n"))
        .and_then(|()| std::fs::rename(&tmp, &addr_file))
        .with_context(|| format!("cannot write {}", addr_file.display()))?;
    tracing::info!(api = %format!("http://{bound}"), "API listening");

    let (stop_sender, stop) = watch::channel(false);
    let producer = tokio::spawn(produce(node.clone(), stop.clone()));
    let app = api::router(api::ApiState {
        node: node.clone(),
        max_wait_ms: options.max_wait_ms,
        max_concurrent: options.api_max_concurrent,
    });
    let mut server_stop = stop.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .await
    });

    let reason = shutdown_signal(stop.clone()).await;
    tracing::info!("{reason}: shutting down");
    let _ = stop_sender.send(true);
    // The producer finishes the block it is writing; nothing half-written remains.
    let produced = producer.await.context("block producer panicked")?;
    server.await.context("API server panicked")??;
    let _ = std::fs::remove_file(&addr_file);
    produced?;
    tracing::info!("stopped cleanly");
    Ok(())
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

/// Produces blocks whenever transactions wait, until told to stop. A storage failure is
/// fatal: it stops the node rather than risk a ledger that differs from what was reported.
async fn produce(node: Arc<Node>, mut stop: watch::Receiver<bool>) -> Result<()> {
    loop {
        tokio::select! {
            _ = node.work_arrived() => {}
            _ = stop.wait_for(|stop| *stop) => return Ok(()),
        }
        loop {
            let worker = node.clone();
            let produced = tokio::task::spawn_blocking(move || worker.produce_block())
                .await
                .context("block production panicked")?;
            match produced {
                Ok(Some(_)) if !*stop.borrow() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::error!(%error, "block production failed; stopping the node");
                    std::process::exit(2);
                }
            }
        }
    }
}
