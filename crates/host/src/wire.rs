//! The byte forms a node sends its peers besides blocks: consensus envelopes and
//! transaction batches, their limits, and how often pending transactions are gossiped
//! again. `cachetd` puts them on libp2p; the simulator on its simulated links.

use cachet_consensus::ConsensusMsg;
use cachet_types::{Genesis, codec};

/// Consensus gossip carries the sender's clock in front of the message: resending the same
/// message later then makes a new gossip message (gossipsub drops exact repeats for a while),
/// and receivers deduplicate by content.
pub fn consensus_envelope(wall_ms: u64, msg: &ConsensusMsg) -> Vec<u8> {
    codec::encode(&(wall_ms, msg))
}

/// The message of a consensus envelope; `None` if it is not a canonical envelope within
/// `limit` bytes.
pub fn open_consensus(data: &[u8], limit: usize) -> Option<ConsensusMsg> {
    codec::decode::<(u64, ConsensusMsg)>(data, limit)
        .ok()
        .map(|(_, msg)| msg)
}

/// Largest consensus envelope: a block plus the message's own fields.
pub fn max_consensus_bytes(genesis: &Genesis) -> usize {
    genesis.params.max_block_bytes as usize + 64 * 1024
}

/// Largest gossiped transaction batch for transactions of at most `max_tx_bytes`.
pub fn tx_batch_limit(max_tx_bytes: usize) -> usize {
    (256 * 1024).max(4 * max_tx_bytes)
}

/// A transaction batch for gossip: the sender's clock first, so that sending the same
/// transactions again later is a new gossip message (gossipsub drops exact repeats).
pub fn tx_envelope(wall_ms: u64, batch: &Vec<Vec<u8>>) -> Vec<u8> {
    codec::encode(&(wall_ms, batch))
}

/// The transactions of a gossiped batch; `None` if it is not a canonical envelope within
/// `limit` bytes.
pub fn open_tx_envelope(data: &[u8], limit: usize) -> Option<Vec<Vec<u8>>> {
    codec::decode::<(u64, Vec<Vec<u8>>)>(data, limit)
        .ok()
        .map(|(_sent_ms, txs)| txs)
}

/// Splits encoded transactions into batches of at most `limit` envelope bytes.
pub fn tx_batches(txs: Vec<Vec<u8>>, limit: usize) -> Vec<Vec<Vec<u8>>> {
    let mut batches = Vec::new();
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut size = 0;
    for tx in txs {
        if size + tx.len() + 16 > limit && !batch.is_empty() {
            batches.push(std::mem::take(&mut batch));
            size = 0;
        }
        size += tx.len() + 16;
        batch.push(tx);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// A transaction pending this long is gossiped again.
pub const REGOSSIP_AFTER_MS: u64 = 3_000;

/// A transaction pending this long is dropped.
pub const PENDING_EXPIRY_MS: u64 = 600_000;

/// Most transactions gossiped again per look.
pub const REGOSSIP_MAX: usize = 2048;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_envelopes_round_trip_within_their_limit() {
        let batch = vec![b"one".to_vec(), b"two".to_vec()];
        let data = tx_envelope(7, &batch);
        assert_eq!(open_tx_envelope(&data, 1024), Some(batch));
        assert_eq!(open_tx_envelope(&data, data.len() - 1), None);
        assert_eq!(open_tx_envelope(b"garbage", 1024), None);
        let mut trailing = data.clone();
        trailing.push(0);
        assert_eq!(open_tx_envelope(&trailing, 1024), None);
    }

    #[test]
    fn batches_stay_within_their_limit_and_keep_order() {
        let txs: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 40]).collect();
        let batches = tx_batches(txs.clone(), 120);
        assert!(batches.iter().all(|b| b.len() == 2), "{batches:?}");
        assert_eq!(batches.concat(), txs);
        // One larger than the limit still goes, alone.
        assert_eq!(tx_batches(vec![vec![0; 500]], 120).len(), 1);
    }
}
