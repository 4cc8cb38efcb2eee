//! State sync in the node, around the host's machines (`cachet_host::statesync`) on
//! libp2p's state-sync protocol: a frozen snapshot made every `--snapshot-interval` blocks
//! and served to joining nodes; joining by a snapshot at start-up (`--state-sync`); and the
//! backfill in the background that replays the blocks below the snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cachet_host::statesync::{Backfiller, Joiner, Send, ServedSnapshot, SnapshotAnswer, answer};
use cachet_network::{Command, MAX_SNAPSHOT_ANSWER_BYTES, NetEvent, NetworkHandle, Peer, Verdict};
use cachet_storage::Store;
use cachet_storage::snapshot::Backfill;
use cachet_types::{Genesis, codec};
use tokio::sync::{mpsc, watch};

use crate::node::Node;
use crate::setup::mono_ms;

/// Snapshots kept and served at once: the newest, and the one before it for nodes still
/// fetching it.
pub const KEEP_SNAPSHOTS: usize = 2;
/// Where the frozen copies live, in the data directory.
pub const SNAPSHOT_DIR: &str = "snapshots";
/// Where the backfill's scratch ledger lives, in the data directory.
pub const BACKFILL_DIR: &str = "backfill";
/// How long a joining node waits for a usable offer before it catches up by replaying
/// blocks instead (a young chain has no snapshot yet).
pub const OFFER_PATIENCE: Duration = Duration::from_secs(30);
/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// Events for the backfill waiting to be handled; more are dropped (requests time out
/// and are asked again).
const BACKFILL_QUEUE: usize = 1024;

/// The snapshots this node serves.
#[derive(Default)]
pub struct Snapshots {
    served: RwLock<Vec<(Arc<ServedSnapshot>, PathBuf)>>,
}

impl Snapshots {
    fn newest_height(&self) -> Option<u64> {
        self.read().last().map(|(s, _)| s.height())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(Arc<ServedSnapshot>, PathBuf)>> {
        self.served.read().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, snapshot: ServedSnapshot, dir: PathBuf) {
        let mut served = self.served.write().unwrap_or_else(|e| e.into_inner());
        served.push((Arc::new(snapshot), dir));
        while served.len() > KEEP_SNAPSHOTS {
            let (_, old) = served.remove(0);
            // Readers still holding it keep their open files (Linux keeps unlinked files).
            if let Err(error) = std::fs::remove_dir_all(&old) {
                tracing::warn!(%error, dir = %old.display(), "cannot remove an old snapshot");
            }
        }
    }

    /// Answers a peer's state-sync request (on a blocking thread: it reads the store).
    pub fn answer(&self, node: &Node, request: &[u8]) -> Vec<u8> {
        let served: Vec<Arc<ServedSnapshot>> = self.read().iter().map(|(s, _)| s.clone()).collect();
        let refs: Vec<&ServedSnapshot> = served.iter().map(|s| s.as_ref()).collect();
        answer(
            &refs,
            node.ledger().store(),
            request,
            MAX_SNAPSHOT_ANSWER_BYTES,
        )
        .unwrap_or_else(|error| {
            tracing::error!(%error, "cannot read the store for a state-sync request");
            codec::encode(&SnapshotAnswer::Unavailable)
        })
    }
}

/// Makes a snapshot each time the tip passes a multiple of `interval`, until `stop`. A
/// node still backfilling makes none (its offer's membership proof needs every block).
pub async fn make_snapshots(
    node: Arc<Node>,
    snapshots: Arc<Snapshots>,
    data_dir: PathBuf,
    interval: u64,
    mut stop: watch::Receiver<bool>,
) {
    let dir = data_dir.join(SNAPSHOT_DIR);
    // Copies of an earlier run are not served again: start afresh.
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        tracing::error!(%error, dir = %dir.display(), "cannot create the snapshot directory; serving no snapshots");
        return;
    }
    let mut tip = node.tip_watch();
    loop {
        let height = tip.borrow_and_update().height;
        let due = height / interval > snapshots.newest_height().unwrap_or(0) / interval;
        if height >= interval && due {
            let (node, snapshots, dir) = (node.clone(), snapshots.clone(), dir.clone());
            let made = tokio::task::spawn_blocking(move || make_one(&node, &snapshots, &dir)).await;
            match made {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot make a snapshot")
                }
                Err(error) => tracing::warn!(%error, "snapshot task failed"),
            }
        }
        tokio::select! {
            changed = tip.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

fn make_one(node: &Node, snapshots: &Snapshots, dir: &Path) -> Result<()> {
    let store = node.ledger().store();
    if store.base()?.is_some() {
        return Ok(());
    }
    let started = Instant::now();
    let path = dir.join(format!("at-{}", store.tip()?.height));
    if path.exists() {
        std::fs::remove_dir_all(&path)
            .with_context(|| format!("cannot clear {}", path.display()))?;
    }
    let frozen = store.freeze(&path)?;
    let snapshot = ServedSnapshot::new(frozen)?;
    tracing::info!(
        height = snapshot.height(),
        chunks = snapshot.manifest().non_empty().count(),
        ms = started.elapsed().as_millis() as u64,
        "snapshot made for joining nodes"
    );
    snapshots.add(snapshot, path);
    Ok(())
}

fn carry(net: &NetworkHandle, sends: Vec<Send<Peer>>) {
    for send in sends {
        net.send(Command::RequestSnapshot {
            peer: Some(send.peer),
            request: send.request,
        });
    }
}

/// Answers what comes in while the node is not a node yet: nothing to serve.
fn decline(net: &NetworkHandle, event: NetEvent) {
    match event {
        NetEvent::Gossip { id, from, .. } => {
            net.send(Command::Validated {
                id,
                from,
                verdict: Verdict::Ignore,
            });
        }
        NetEvent::SyncRequest { token, .. } => {
            net.send(Command::Respond {
                token,
                blocks: Vec::new(),
            });
        }
        NetEvent::SnapshotRequest { token, .. } => {
            net.send(Command::RespondSnapshot {
                token,
                response: codec::encode(&SnapshotAnswer::Unavailable),
            });
        }
        _ => {}
    }
}

/// How a join ended.
pub enum Joined {
    /// The store is at the snapshot's block; the peers seen so far.
    Snapshot(Vec<Peer>),
    /// No peer offered a usable snapshot in time: catch up by replay (the store is as it was).
    Replay(Vec<Peer>),
}

/// Joins by a snapshot: runs the host's joiner over the network until the store is at a
/// certified snapshot's block. Before the node exists, so every other request is declined.
pub async fn join(
    store: &Store,
    net: &NetworkHandle,
    events: &mut mpsc::Receiver<NetEvent>,
    shutdown: impl std::future::Future<Output = &'static str>,
) -> Result<Joined> {
    tokio::pin!(shutdown);
    let mut joiner: Joiner<Peer> = Joiner::new(store)?;
    let resumed = joiner.target_height().is_some();
    let mut peers = Vec::new();
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(resumed, "state sync: asking peers for a snapshot");
    loop {
        let sends = tokio::select! {
            event = events.recv() => match event {
                Some(NetEvent::PeerConnected(peer)) => {
                    peers.push(peer);
                    joiner.on_peer(peer, mono_ms())
                }
                Some(NetEvent::SnapshotResponse { from, response }) => tokio::task::block_in_place(|| {
                    joiner.on_answer(store, from, &response, mono_ms())
                })?,
                Some(NetEvent::SnapshotFailed { from }) => joiner.on_failed(store, &from, mono_ms())?,
                Some(other) => {
                    decline(net, other);
                    Vec::new()
                }
                None => bail!("the network stopped during state sync"),
            },
            _ = tick.tick() => {
                if joiner.target_height().is_none() && !resumed && started.elapsed() > OFFER_PATIENCE {
                    tracing::info!(
                        waited_s = OFFER_PATIENCE.as_secs(),
                        "state sync: no peer offers a snapshot; catching up by replaying blocks instead"
                    );
                    return Ok(Joined::Replay(peers));
                }
                if last_log.elapsed() >= PROGRESS_EVERY {
                    last_log = Instant::now();
                    let (done, total) = joiner.progress();
                    match joiner.target_height() {
                        Some(height) => tracing::info!(height, done, total, "state sync: chunks imported"),
                        None => tracing::info!(peers = peers.len(), "state sync: waiting for a usable offer"),
                    }
                }
                joiner.on_time(store, mono_ms())?
            }
            reason = &mut shutdown => bail!("state sync {reason} (it resumes on the next start with --state-sync)"),
        };
        carry(net, sends);
        if let Some(tip) = joiner.imported() {
            tracing::info!(
                height = tip.height,
                chunks = joiner.progress().1,
                seconds = started.elapsed().as_secs_f64(),
                "state sync: imported the snapshot of block {}",
                tip.height
            );
            return Ok(Joined::Snapshot(peers));
        }
    }
}

/// What the network glue hands the backfill.
pub type BackfillEvents = mpsc::Sender<NetEvent>;

/// Starts the backfill of a state-synced store in the background, if it has a base: its
/// scratch ledger in `<data-dir>/backfill` (resumed after a restart, removed at the end).
/// Returns where to send the state-sync answers and connected peers.
pub fn start_backfill(
    node: Arc<Node>,
    net: NetworkHandle,
    data_dir: &Path,
    genesis: &Genesis,
    peers: Vec<Peer>,
    stop: watch::Receiver<bool>,
) -> Result<Option<BackfillEvents>> {
    let store = node.ledger().store();
    let dir = data_dir.join(BACKFILL_DIR);
    if store.base()?.is_none() {
        // A backfill that stored its last block but was stopped before it cleaned up.
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove {}", dir.display()))?;
        }
        return Ok(None);
    }
    let scratch = Store::open(&dir, genesis)
        .with_context(|| format!("cannot open the backfill ledger in {}", dir.display()))?;
    let backfill = Backfill::new(store, scratch)?;
    tracing::info!(
        base = backfill.base(),
        from = backfill.next_height()?,
        "backfill: replaying the blocks below the snapshot in the background"
    );
    let (sender, events) = mpsc::channel(BACKFILL_QUEUE);
    tokio::spawn(run_backfill(
        node,
        net,
        Backfiller::new(backfill),
        dir,
        peers,
        events,
        stop,
    ));
    Ok(Some(sender))
}

async fn run_backfill(
    node: Arc<Node>,
    net: NetworkHandle,
    mut backfiller: Backfiller<Peer>,
    dir: PathBuf,
    peers: Vec<Peer>,
    mut events: mpsc::Receiver<NetEvent>,
    mut stop: watch::Receiver<bool>,
) {
    let result: Result<()> = async {
        let store = node.ledger().store();
        for peer in peers {
            carry(&net, backfiller.on_peer(peer, mono_ms())?);
        }
        let started = Instant::now();
        let mut last_log = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !backfiller.done() {
            let sends = tokio::select! {
                event = events.recv() => match event {
                    Some(NetEvent::PeerConnected(peer)) => backfiller.on_peer(peer, mono_ms())?,
                    Some(NetEvent::SnapshotResponse { from, response }) => tokio::task::block_in_place(|| {
                        backfiller.on_answer(store, from, &response, mono_ms())
                    })?,
                    Some(NetEvent::SnapshotFailed { from }) => backfiller.on_failed(&from, mono_ms())?,
                    Some(_) => Vec::new(),
                    None => return Ok(()),
                },
                _ = tick.tick() => {
                    if last_log.elapsed() >= PROGRESS_EVERY {
                        last_log = Instant::now();
                        if let Some(progress) = backfiller.progress() {
                            let rate = progress.height as f64 / started.elapsed().as_secs_f64().max(0.001);
                            tracing::info!(height = progress.height, base = progress.base, blocks_per_s = rate as u64, "backfill: replaying");
                        }
                    }
                    backfiller.on_time(mono_ms())?
                }
                _ = stop.wait_for(|stop| *stop) => return Ok(()),
            };
            carry(&net, sends);
        }
        tracing::info!(
            base = backfiller.base(),
            seconds = started.elapsed().as_secs_f64(),
            "backfill: every block's history is here; provenance is served"
        );
        Ok(())
    }
    .await;
    match result {
        Ok(()) if backfiller.done() => {
            if let Err(error) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(%error, dir = %dir.display(), "cannot remove the backfill ledger");
            }
        }
        Ok(()) => {}
        Err(error) => {
            // A node that cannot read or write its store stops (exit code 2), as the
            // consensus thread does; every write is one atomic batch, so nothing is half done.
            tracing::error!(error = %format!("{error:#}"), "backfill: storage failed; stopping the node");
            std::process::exit(2);
        }
    }
}
