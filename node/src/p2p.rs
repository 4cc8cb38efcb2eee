//! Glue between the network task and the node: checks gossiped transactions, serves block
//! sync, batches our own transactions for gossip, and hands consensus traffic to the
//! consensus thread.

use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use cachet_network::{Command, MessageId, NetEvent, NetworkHandle, Peer, Topic, Verdict};
use cachet_types::codec;
use tokio::sync::{mpsc, watch};

use crate::node::Node;
use crate::replica::{Input, max_consensus_bytes, offer};

/// Largest gossiped transaction batch.
pub fn max_tx_batch_bytes(node: &Node) -> usize {
    tx_batch_limit(node.ledger().store().genesis().params.max_tx_bytes as usize)
}

/// Largest transaction batch for transactions of at most `max_tx_bytes`.
pub fn tx_batch_limit(max_tx_bytes: usize) -> usize {
    (256 * 1024).max(4 * max_tx_bytes)
}

/// Gossiped transaction batches waiting to be checked; more are dropped unjudged.
const TX_BATCH_QUEUE: usize = 256;

/// Checks gossiped transaction batches one at a time, in the order they came (so a signer's
/// consecutive nonces are not refused out of order), apart from the dispatcher so that
/// consensus messages never wait behind signature checks.
async fn check_tx_batches(
    node: Arc<Node>,
    net: NetworkHandle,
    mut batches: mpsc::Receiver<(Vec<u8>, MessageId, Peer)>,
) {
    while let Some((data, id, from)) = batches.recv().await {
        let worker = node.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            match open_tx_envelope(&data, max_tx_batch_bytes(&worker)) {
                Some(txs) => worker.admit_batch(&txs),
                None => Verdict::Reject,
            }
        })
        .await
        .unwrap_or(Verdict::Ignore);
        net.send(Command::Validated { id, from, verdict });
    }
}

/// Routes network events until the network stops.
pub async fn dispatch(
    node: Arc<Node>,
    net: NetworkHandle,
    mut events: mpsc::Receiver<NetEvent>,
    inputs: SyncSender<Input>,
) {
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
                    let limit = max_consensus_bytes(&node) * 2;
                    let blocks = node
                        .blocks_from(request.from_height, request.max, limit)
                        .unwrap_or_else(|error| {
                            tracing::error!(%error, peer = %from, "cannot read blocks for a peer");
                            Vec::new()
                        });
                    net.send(Command::Respond { token, blocks });
                });
            }
            NetEvent::SyncResponse { from, blocks } => {
                if !blocks.is_empty() {
                    offer(&inputs, Input::Blocks { from, blocks });
                }
            }
            NetEvent::PeerConnected(peer) => {
                offer(&inputs, Input::PeerConnected(peer));
            }
        }
    }
}

/// A transaction pending this long is gossiped again.
const REGOSSIP_AFTER: Duration = Duration::from_secs(3);

/// A transaction pending this long is dropped.
const PENDING_EXPIRY: Duration = Duration::from_secs(600);

/// Most transactions gossiped again per second.
const REGOSSIP_MAX: usize = 2048;

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
            node.take_outbox()
        } else {
            let worker = node.clone();
            tokio::task::spawn_blocking(move || {
                worker.lingering(REGOSSIP_AFTER, PENDING_EXPIRY, REGOSSIP_MAX)
            })
            .await
            .unwrap_or_default()
        };
        publish_batches(&net, txs, limit);
    }
}

fn publish_batches(net: &NetworkHandle, txs: Vec<Vec<u8>>, limit: usize) {
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    for tx in txs {
        if size + tx.len() + 16 > limit && !batch.is_empty() {
            net.send(Command::Publish(Topic::Txs, tx_envelope(&batch)));
            batch.clear();
            size = 0;
        }
        size += tx.len() + 16;
        batch.push(tx);
    }
    if !batch.is_empty() {
        net.send(Command::Publish(Topic::Txs, tx_envelope(&batch)));
    }
}

/// A transaction batch for gossip: the sender's clock first, so that sending the same
/// transactions again later is a new gossip message (gossipsub drops exact repeats).
fn tx_envelope(batch: &Vec<Vec<u8>>) -> Vec<u8> {
    codec::encode(&(crate::setup::now_ms(), batch))
}

/// The transactions of a gossiped batch; `None` if it is not a canonical envelope within
/// `limit` bytes.
fn open_tx_envelope(data: &[u8], limit: usize) -> Option<Vec<Vec<u8>>> {
    codec::decode::<(u64, Vec<Vec<u8>>)>(data, limit)
        .ok()
        .map(|(_sent_ms, txs)| txs)
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
    fn transaction_envelopes_round_trip_within_their_limit() {
        let batch = vec![b"one".to_vec(), b"two".to_vec()];
        let data = tx_envelope(&batch);
        assert_eq!(open_tx_envelope(&data, 1024), Some(batch));
        assert_eq!(open_tx_envelope(&data, data.len() - 1), None);
        assert_eq!(open_tx_envelope(b"garbage", 1024), None);
        let mut trailing = data.clone();
        trailing.push(0);
        assert_eq!(open_tx_envelope(&trailing, 1024), None);
    }
}
