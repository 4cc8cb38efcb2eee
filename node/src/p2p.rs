//! Glue between the network task and the node: checks gossiped transactions, serves block
//! sync, batches our own transactions for gossip, and hands consensus traffic to the
//! consensus thread.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use cachet_host::BatchVerdict;
use cachet_host::wire::{
    PENDING_EXPIRY_MS, REGOSSIP_AFTER_MS, REGOSSIP_MAX, open_tx_envelope, tx_batch_limit,
    tx_batches, tx_envelope,
};
use cachet_network::{Command, MessageId, NetEvent, NetworkHandle, Peer, Topic, Verdict};
use tokio::sync::{mpsc, watch};

use crate::node::Node;
use crate::replica::{Input, max_consensus_bytes, offer};
use crate::setup::{mono_ms, now_ms};
use crate::statesync::{BackfillEvents, Snapshots};

/// Largest gossiped transaction batch.
pub fn max_tx_batch_bytes(node: &Node) -> usize {
    tx_batch_limit(node.ledger().store().genesis().params.max_tx_bytes as usize)
}

/// Gossiped transaction batches waiting to be checked; more are dropped unjudged.
const TX_BATCH_QUEUE: usize = 256;

/// Most bytes of gossiped batches checked together: those that queued while the last were
/// checked, up to this (at least one batch).
const TX_BATCHES_CHECKED_TOGETHER_BYTES: usize = 2 << 20;

/// Checks gossiped transaction batches in the order they came (so a signer's consecutive
/// nonces are not refused out of order), apart from the dispatcher so that consensus
/// messages never wait behind signature checks. The batches that queued while the last
/// were checked are checked together (`Chain::admit_batches`): under load, one batch
/// verification of hundreds of signatures instead of many of a few.
async fn check_tx_batches(
    node: Arc<Node>,
    net: NetworkHandle,
    mut batches: mpsc::Receiver<(Vec<u8>, MessageId, Peer)>,
) {
    while let Some(group) = crate::group::next_group(
        &mut batches,
        TX_BATCHES_CHECKED_TOGETHER_BYTES,
        |(data, _, _)| data.len(),
    )
    .await
    {
        let (data, senders): (Vec<Vec<u8>>, Vec<(MessageId, Peer)>) = group
            .into_iter()
            .map(|(data, id, from)| (data, (id, from)))
            .unzip();
        let worker = node.clone();
        let verdicts = tokio::task::spawn_blocking(move || {
            let limit = max_tx_batch_bytes(&worker);
            let opened: Vec<Option<Vec<Vec<u8>>>> = data
                .iter()
                .map(|data| open_tx_envelope(data, limit))
                .collect();
            let well_formed: Vec<&[Vec<u8>]> = opened.iter().flatten().map(Vec::as_slice).collect();
            let judged = worker.chain().admit_batches(&well_formed, mono_ms());
            verdicts(&opened, judged)
        })
        .await
        .unwrap_or_else(|_| vec![Verdict::Ignore; senders.len()]);
        for ((id, from), verdict) in senders.into_iter().zip(verdicts) {
            net.send(Command::Validated { id, from, verdict });
        }
    }
}

/// The gossip layer's verdict on each message of a group: `Reject` for one whose envelope
/// did not open, else the host's verdict on its batch (`judged` holds one per opened
/// envelope, in order).
fn verdicts<T>(opened: &[Option<T>], judged: Vec<BatchVerdict>) -> Vec<Verdict> {
    let mut judged = judged.into_iter();
    opened
        .iter()
        .map(|txs| match txs.as_ref().map(|_| judged.next()) {
            Some(Some(BatchVerdict::Accept)) => Verdict::Accept,
            Some(Some(BatchVerdict::Ignore)) => Verdict::Ignore,
            Some(Some(BatchVerdict::Reject)) | Some(None) | None => Verdict::Reject,
        })
        .collect()
}

/// What state sync needs of the network glue: the snapshots to serve, and where the
/// backfill (while one runs) takes its answers and new peers.
pub struct StateSync {
    /// Snapshots served to joining nodes.
    pub snapshots: Arc<Snapshots>,
    /// The running backfill's events.
    pub backfill: Option<BackfillEvents>,
}

/// Routes network events until the network stops.
pub async fn dispatch(
    node: Arc<Node>,
    net: NetworkHandle,
    mut events: mpsc::Receiver<NetEvent>,
    inputs: SyncSender<Input>,
    state_sync: StateSync,
) {
    let StateSync {
        snapshots,
        mut backfill,
    } = state_sync;
    // Drops the backfill's queue once it has ended (its receiver is gone).
    let mut to_backfill = move |event: NetEvent| {
        if let Some(sender) = &backfill
            && let Err(mpsc::error::TrySendError::Closed(_)) = sender.try_send(event)
        {
            backfill = None;
        }
    };
    let (batches, batch_rx) = mpsc::channel(TX_BATCH_QUEUE);
    tokio::spawn(check_tx_batches(node.clone(), net.clone(), batch_rx));
    while let Some(event) = events.recv().await {
        match event {
            NetEvent::Gossip {
                topic: Topic::Consensus,
                data,
                id,
                from,
            } => {
                node.metrics_registry()
                    .traffic("consensus", "in", 1, data.len() as u64);
                let verdict_id = id.clone();
                if !offer(&inputs, Input::Consensus { data, id, from }) {
                    // Overloaded: drop it unjudged (it will be resent if it matters).
                    net.send(Command::Validated {
                        id: verdict_id,
                        from,
                        verdict: Verdict::Ignore,
                    });
                }
            }
            NetEvent::Gossip {
                topic: Topic::Txs,
                data,
                id,
                from,
            } => {
                node.metrics_registry()
                    .traffic("txs", "in", 1, data.len() as u64);
                if let Err(mpsc::error::TrySendError::Full((_, id, from))) =
                    batches.try_send((data, id, from))
                {
                    // Overloaded: drop it unjudged (lingering transactions are resent).
                    net.send(Command::Validated {
                        id,
                        from,
                        verdict: Verdict::Ignore,
                    });
                }
            }
            NetEvent::SyncRequest {
                request,
                token,
                from,
            } => {
                let (node, net) = (node.clone(), net.clone());
                tokio::task::spawn_blocking(move || {
                    // After a state sync the blocks below the snapshot are not here yet: no
                    // answer (the peer asks another), since an empty one would say "nothing
                    // newer" to a peer that is behind.
                    match node.ledger().store().base() {
                        Ok(Some(base)) if request.from_height < base => return,
                        Ok(_) => {}
                        Err(error) => {
                            tracing::error!(%error, "cannot read the store for a sync request");
                            return;
                        }
                    }
                    let limit = max_consensus_bytes(&node) * 2;
                    let blocks = node
                        .chain()
                        .blocks_from(request.from_height, request.max, limit)
                        .unwrap_or_else(|error| {
                            tracing::error!(%error, peer = %from, "cannot read blocks for a peer");
                            Vec::new()
                        });
                    let bytes = blocks.iter().map(|b| b.len() as u64).sum();
                    node.metrics_registry()
                        .traffic("sync", "out", blocks.len() as u64, bytes);
                    net.send(Command::Respond { token, blocks });
                });
            }
            NetEvent::SyncResponse { from, blocks } => {
                let bytes = blocks.iter().map(|b| b.len() as u64).sum();
                node.metrics_registry()
                    .traffic("sync", "in", blocks.len() as u64, bytes);
                // Empty too: an empty answer tells the core it is at the peer's tip.
                offer(&inputs, Input::Blocks { from, blocks });
            }
            NetEvent::PeerConnected(peer) => {
                offer(&inputs, Input::PeerConnected(peer));
                to_backfill(NetEvent::PeerConnected(peer));
            }
            NetEvent::SnapshotRequest { request, token, .. } => {
                let (node, net, snapshots) = (node.clone(), net.clone(), snapshots.clone());
                tokio::task::spawn_blocking(move || {
                    let response = snapshots.answer(&node, &request);
                    node.metrics_registry()
                        .traffic("snapshot", "out", 1, response.len() as u64);
                    net.send(Command::RespondSnapshot { token, response });
                });
            }
            event @ (NetEvent::SnapshotResponse { .. } | NetEvent::SnapshotFailed { .. }) => {
                if let NetEvent::SnapshotResponse { response, .. } = &event {
                    node.metrics_registry()
                        .traffic("snapshot", "in", 1, response.len() as u64);
                }
                to_backfill(event);
            }
        }
    }
}

/// Gossips transactions admitted through the API, in batches, and every second those still
/// pending after a while (their first gossip may have been lost or refused out of nonce
/// order), until told to stop.
pub async fn gossip_txs(node: Arc<Node>, net: NetworkHandle, mut stop: watch::Receiver<bool>) {
    let limit = max_tx_batch_bytes(&node);
    let mut regossip = tokio::time::interval(Duration::from_secs(1));
    regossip.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let fresh = tokio::select! {
            _ = node.outbox_filled() => true,
            _ = regossip.tick() => false,
            _ = stop.changed() => return,
        };
        let txs = if fresh {
            // Let a burst gather into one message.
            tokio::time::sleep(Duration::from_millis(5)).await;
            node.chain().take_outbox()
        } else {
            let worker = node.clone();
            tokio::task::spawn_blocking(move || {
                worker.chain().lingering(
                    mono_ms(),
                    now_ms(),
                    REGOSSIP_AFTER_MS,
                    PENDING_EXPIRY_MS,
                    REGOSSIP_MAX,
                )
            })
            .await
            .unwrap_or_default()
        };
        publish_batches(&node, &net, txs, limit);
    }
}

fn publish_batches(node: &Node, net: &NetworkHandle, txs: Vec<Vec<u8>>, limit: usize) {
    for batch in tx_batches(txs, limit) {
        let envelope = tx_envelope(now_ms(), &batch);
        node.metrics_registry()
            .traffic("txs", "out", 1, envelope.len() as u64);
        net.send(Command::Publish(Topic::Txs, envelope));
    }
}

/// Tells the consensus thread when transactions arrive, until told to stop.
pub async fn wake_consensus(
    node: Arc<Node>,
    inputs: SyncSender<Input>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = node.work_arrived() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        // A full queue already holds work for the thread to look at.
        offer(&inputs, Input::Work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_message_gets_its_own_batchs_verdict() {
        // A message whose envelope did not open is rejected and takes no verdict of the
        // host's: the next message still gets its own (an honest peer's batch after a bad
        // envelope was once rejected in its place).
        let opened = [Some(()), None, Some(()), Some(()), None];
        let judged = vec![
            BatchVerdict::Accept,
            BatchVerdict::Ignore,
            BatchVerdict::Reject,
        ];
        assert_eq!(
            verdicts(&opened, judged),
            [
                Verdict::Accept,
                Verdict::Reject,
                Verdict::Ignore,
                Verdict::Reject,
                Verdict::Reject
            ]
        );
        let opened = [None, Some(())];
        assert_eq!(
            verdicts(&opened, vec![BatchVerdict::Accept]),
            [Verdict::Reject, Verdict::Accept]
        );
    }
}
