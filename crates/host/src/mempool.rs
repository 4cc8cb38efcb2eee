//! The mempool: verified transactions waiting for a block, bounded, in arrival order.
//!
//! Admission is strict about nonces: a signer's pending transactions always run contiguously
//! from its last final nonce + 1, so a block can take them in arrival order. Outcomes of
//! rejected transactions are remembered (bounded) so clients can learn why. Time is an
//! argument (milliseconds of the embedding's monotonic clock), never read here.

use std::collections::{BTreeMap, HashMap, VecDeque};

use cachet_state::Rejection;
use cachet_types::{Hash, PublicKey, VerifiedTx};

/// Why the mempool refused a transaction without it being the transaction's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The transaction breaks a rule.
    #[error("{0}")]
    Rejected(Rejection),
    /// Another pending transaction already uses this nonce.
    #[error("nonce {0} is already used by a pending transaction of this signer")]
    NonceInUse(u64),
    /// No room.
    #[error("mempool is full ({0} transactions); retry later")]
    Full(usize),
}

/// Entries of the arrival order beyond the pending transactions (removed ones not yet
/// swept) that make the pool sweep them all at once.
const ARRIVAL_SLACK: usize = 1024;

/// The pending pool.
pub struct Mempool {
    max_txs: usize,
    max_remembered: usize,
    /// Pending transactions with the time they arrived (monotonic ms) and their place in
    /// the arrival order.
    txs: HashMap<Hash, (VerifiedTx, u64, u64)>,
    /// The arrival order: (id, place). An entry whose transaction left the pool (or left
    /// and came back later, under a new place) is skipped and swept lazily: a block's
    /// transactions leave from anywhere in it (other nodes' blocks follow their own
    /// arrival order), and finding each one in it was quadratic in the pool's size.
    arrival: VecDeque<(Hash, u64)>,
    /// The place the next admission takes.
    next_place: u64,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, Hash>>,
    outcomes: HashMap<Hash, Rejection>,
    outcome_order: VecDeque<Hash>,
    /// Encoded bytes of the pending transactions.
    bytes: usize,
    /// The arrival time of the last admission: arrival times never go back along the
    /// arrival order, so "pending since before t" is a prefix of it (what a transaction
    /// depends on arrived before it).
    last_arrival_ms: u64,
}

impl Mempool {
    /// A pool holding at most `max_txs`, remembering the last `max_remembered` rejections.
    pub fn new(max_txs: usize, max_remembered: usize) -> Mempool {
        Mempool {
            max_txs,
            max_remembered,
            txs: HashMap::new(),
            arrival: VecDeque::new(),
            next_place: 0,
            by_signer: BTreeMap::new(),
            outcomes: HashMap::new(),
            outcome_order: VecDeque::new(),
            bytes: 0,
            last_arrival_ms: 0,
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Encoded bytes of the pending transactions.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True if nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// True if `id` is pending.
    pub fn contains(&self, id: &Hash) -> bool {
        self.txs.contains_key(id)
    }

    /// The remembered rejection of `id`.
    pub fn rejection(&self, id: &Hash) -> Option<&Rejection> {
        self.outcomes.get(id)
    }

    /// A pending transaction.
    pub fn get(&self, id: &Hash) -> Option<&VerifiedTx> {
        self.txs.get(id).map(|(tx, _, _)| tx)
    }

    /// The nonce `signer` should use next, given its last final nonce.
    ///
    /// Pending nonces are contiguous, so this is one past the larger of the final nonce and
    /// the last pending one; it stays right while a committed block is not yet settled here.
    pub fn next_nonce(&self, signer: &PublicKey, final_nonce: u64) -> u64 {
        let last_pending = self
            .by_signer
            .get(signer)
            .and_then(|m| m.keys().next_back().copied())
            .unwrap_or(0);
        final_nonce.max(last_pending) + 1
    }

    /// Admits a verified transaction whose signer's last final nonce is `final_nonce`, at
    /// `now_ms`.
    pub fn admit(
        &mut self,
        tx: VerifiedTx,
        final_nonce: u64,
        now_ms: u64,
    ) -> Result<(), AdmitError> {
        let signer = tx.tx().signer;
        let nonce = tx.tx().nonce;
        if nonce <= final_nonce {
            return Err(AdmitError::Rejected(Rejection::StaleNonce {
                got: nonce,
                last: final_nonce,
            }));
        }
        let expected = self.next_nonce(&signer, final_nonce);
        if nonce < expected {
            return Err(AdmitError::NonceInUse(nonce));
        }
        if nonce > expected {
            return Err(AdmitError::Rejected(Rejection::NonceGap {
                got: nonce,
                expected,
            }));
        }
        if self.txs.len() >= self.max_txs {
            return Err(AdmitError::Full(self.max_txs));
        }
        let id = tx.id();
        self.by_signer.entry(signer).or_default().insert(nonce, id);
        let place = self.next_place;
        self.next_place += 1;
        self.arrival.push_back((id, place));
        self.bytes += tx.size();
        self.last_arrival_ms = self.last_arrival_ms.max(now_ms);
        self.txs.insert(id, (tx, self.last_arrival_ms, place));
        Ok(())
    }

    /// Up to `max` pending transactions in arrival order (cloned; they stay pending until
    /// [`Mempool::settle`]).
    pub fn candidates(&self, max: usize) -> Vec<VerifiedTx> {
        self.in_arrival_order()
            .take(max)
            .map(|(_, tx, _)| tx.clone())
            .collect()
    }

    /// The pending transactions in arrival order: (id, transaction, arrival time).
    fn in_arrival_order(&self) -> impl Iterator<Item = (Hash, &VerifiedTx, u64)> {
        self.arrival.iter().filter_map(|(id, place)| {
            match self.txs.get(id) {
                Some((tx, since, at)) if at == place => Some((*id, tx, *since)),
                // Removed (or removed and admitted again, at its newer place).
                _ => None,
            }
        })
    }

    /// Removes transactions that became final, and those a block refused (remembering why).
    pub fn settle(&mut self, finalized: &[Hash], rejected: &[(Hash, Rejection)]) {
        for id in finalized {
            self.remove(id);
        }
        for (id, reason) in rejected {
            self.remove(id);
            self.remember(*id, reason.clone());
        }
    }

    /// Remembers a rejection (admission or block building), forgetting the oldest if full.
    pub fn remember(&mut self, id: Hash, reason: Rejection) {
        if self.outcomes.insert(id, reason).is_none() {
            self.outcome_order.push_back(id);
        }
        while self.outcome_order.len() > self.max_remembered {
            if let Some(old) = self.outcome_order.pop_front() {
                self.outcomes.remove(&old);
            }
        }
    }

    /// Up to `max` transactions pending since before `before_ms`, oldest first: gossip may
    /// have lost them (or a peer refused them out of nonce order), so they are sent again.
    pub fn lingering(&self, before_ms: u64, max: usize) -> Vec<VerifiedTx> {
        self.older_than(before_ms)
            .take(max)
            .map(|(_, tx)| tx.clone())
            .collect()
    }

    /// Drops transactions pending since before `before_ms` (nothing made them final or
    /// refused them here, e.g. on an observer whose peers refused them); returns how many.
    pub fn expire(&mut self, before_ms: u64) -> usize {
        let old: Vec<Hash> = self.older_than(before_ms).map(|(id, _)| id).collect();
        for id in &old {
            self.remove(id);
        }
        old.len()
    }

    /// Pending transactions that arrived before `before_ms`, oldest first.
    fn older_than(&self, before_ms: u64) -> impl Iterator<Item = (Hash, &VerifiedTx)> {
        self.in_arrival_order()
            .take_while(move |(_, _, since)| *since < before_ms)
            .map(|(id, tx, _)| (id, tx))
    }

    fn remove(&mut self, id: &Hash) {
        if let Some((tx, _, _)) = self.txs.remove(id) {
            self.bytes -= tx.size();
            let signer = tx.tx().signer;
            if let Some(nonces) = self.by_signer.get_mut(&signer) {
                nonces.remove(&tx.tx().nonce);
                if nonces.is_empty() {
                    self.by_signer.remove(&signer);
                }
            }
            self.sweep();
        }
    }

    /// Drops entries of the arrival order whose transaction left: those at the front at
    /// once, all of them once they outnumber the pending ones by [`ARRIVAL_SLACK`] (so the
    /// order stays within twice the pool's bound, and a sweep is paid for by as many
    /// removals).
    fn sweep(&mut self) {
        let live = |txs: &HashMap<Hash, (VerifiedTx, u64, u64)>, (id, place): &(Hash, u64)| {
            txs.get(id).is_some_and(|(_, _, at)| at == place)
        };
        while let Some(front) = self.arrival.front() {
            if live(&self.txs, front) {
                break;
            }
            self.arrival.pop_front();
        }
        if self.arrival.len() > self.txs.len().saturating_mul(2) + ARRIVAL_SLACK {
            let txs = &self.txs;
            self.arrival.retain(|entry| live(txs, entry));
        }
    }

    /// Drops every pending transaction of `signer` with a nonce at or below `nonce`: a final
    /// transaction (from another node) used that nonce, so they can never apply.
    pub fn drop_through(&mut self, signer: &PublicKey, nonce: u64) -> Vec<(Hash, u64)> {
        let doomed: Vec<(Hash, u64)> = self
            .by_signer
            .get(signer)
            .map(|m| m.range(..=nonce).map(|(n, id)| (*id, *n)).collect())
            .unwrap_or_default();
        for (id, _) in &doomed {
            self.remove(id);
        }
        doomed
    }

    /// Drops every pending transaction of `signer` with a nonce above `nonce`: once a
    /// transaction is refused, later ones of the same signer can never apply.
    pub fn drop_after(&mut self, signer: &PublicKey, nonce: u64) -> Vec<(Hash, u64)> {
        let doomed: Vec<(Hash, u64)> = self
            .by_signer
            .get(signer)
            .map(|m| m.range(nonce + 1..).map(|(n, id)| (*id, *n)).collect())
            .unwrap_or_default();
        for (id, _) in &doomed {
            self.remove(id);
        }
        doomed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cachet_testkit::{TxFactory, key, stamp};
    use cachet_types::{Hash, TxBody};

    fn tx(factory: &mut TxFactory, name: &str) -> VerifiedTx {
        let body = TxBody::Redeem {
            stamp: stamp("AT-2026-001", 1),
        };
        VerifiedTx::new_unchecked(factory.sign(&key(name), body))
    }

    #[test]
    fn nonces_must_be_contiguous() {
        let mut pool = Mempool::new(10, 10);
        let mut factory = TxFactory::new(Hash::ZERO);
        let first = tx(&mut factory, "a");
        let second = tx(&mut factory, "a");
        let third = tx(&mut factory, "a");
        assert!(matches!(
            pool.admit(second.clone(), 0, 0),
            Err(AdmitError::Rejected(Rejection::NonceGap {
                got: 2,
                expected: 1
            }))
        ));
        pool.admit(first.clone(), 0, 0).unwrap();
        assert_eq!(
            pool.admit(first.clone(), 0, 0),
            Err(AdmitError::NonceInUse(1))
        );
        pool.admit(second, 0, 0).unwrap();
        assert!(matches!(
            pool.admit(first, 5, 0),
            Err(AdmitError::Rejected(Rejection::StaleNonce {
                got: 1,
                last: 5
            }))
        ));
        assert_eq!(pool.next_nonce(&key("a").public_key(), 0), 3);
        let dropped = pool.drop_after(&key("a").public_key(), 1);
        assert_eq!(dropped.len(), 1);
        assert_eq!(pool.len(), 1);
        pool.admit(third, 0, 0).unwrap_err();
    }

    #[test]
    fn bounded_pool_and_memory() {
        let mut pool = Mempool::new(2, 1);
        let mut factory = TxFactory::new(Hash::ZERO);
        pool.admit(tx(&mut factory, "a"), 0, 0).unwrap();
        pool.admit(tx(&mut factory, "b"), 0, 0).unwrap();
        assert_eq!(
            pool.admit(tx(&mut factory, "c"), 0, 0),
            Err(AdmitError::Full(2))
        );
        let ids: Vec<Hash> = pool.candidates(10).iter().map(VerifiedTx::id).collect();
        assert_eq!(ids.len(), 2);
        pool.settle(&ids[..1], &[(ids[1], Rejection::BadSignature)]);
        assert_eq!(pool.len(), 0);
        assert_eq!(pool.rejection(&ids[1]), Some(&Rejection::BadSignature));
        pool.remember(Hash::ZERO, Rejection::WeakKey);
        assert_eq!(pool.rejection(&ids[1]), None, "oldest outcome forgotten");
    }

    #[test]
    fn a_nonce_used_by_a_final_transaction_drops_the_pending_ones() {
        let mut pool = Mempool::new(10, 10);
        let mut factory = TxFactory::new(Hash::ZERO);
        let txs: Vec<VerifiedTx> = (0..3).map(|_| tx(&mut factory, "a")).collect();
        for t in &txs {
            pool.admit(t.clone(), 0, 0).unwrap();
        }
        let dropped = pool.drop_through(&key("a").public_key(), 2);
        assert_eq!(dropped, vec![(txs[0].id(), 1), (txs[1].id(), 2)]);
        assert!(pool.contains(&txs[2].id()));
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn lingering_transactions_are_found_oldest_first_and_expire() {
        let mut pool = Mempool::new(10, 10);
        let mut factory = TxFactory::new(Hash::ZERO);
        let old: Vec<VerifiedTx> = (0..2).map(|_| tx(&mut factory, "a")).collect();
        for t in &old {
            pool.admit(t.clone(), 0, 10).unwrap();
        }
        let cutoff = 11;
        let young = tx(&mut factory, "a");
        pool.admit(young.clone(), 0, cutoff).unwrap();

        let ids = |txs: Vec<VerifiedTx>| txs.iter().map(VerifiedTx::id).collect::<Vec<_>>();
        assert_eq!(
            ids(pool.lingering(cutoff, 10)),
            vec![old[0].id(), old[1].id()]
        );
        assert_eq!(ids(pool.lingering(cutoff, 1)), vec![old[0].id()]);
        assert_eq!(pool.expire(cutoff), 2);
        assert_eq!(ids(pool.candidates(10)), vec![young.id()]);
        assert!(pool.lingering(cutoff, 10).is_empty());
    }

    #[test]
    fn transactions_leaving_from_anywhere_keep_the_order_and_its_size_bounded() {
        let mut pool = Mempool::new(10_000, 10);
        let mut factory = TxFactory::new(Hash::ZERO);
        let names: Vec<String> = (0..6000).map(|i| format!("c{i}")).collect();
        let txs: Vec<VerifiedTx> = names.iter().map(|n| tx(&mut factory, n)).collect();
        for t in &txs {
            pool.admit(t.clone(), 0, 0).unwrap();
        }
        // Every other one leaves, from the back: none at the front.
        let leaving: Vec<Hash> = txs.iter().rev().step_by(2).map(VerifiedTx::id).collect();
        pool.settle(&leaving, &[]);
        assert_eq!(pool.len(), 3000);
        assert!(pool.arrival.len() <= 2 * pool.len() + ARRIVAL_SLACK);
        let left: Vec<Hash> = txs.iter().step_by(2).map(VerifiedTx::id).collect();
        let order: Vec<Hash> = pool.candidates(10_000).iter().map(VerifiedTx::id).collect();
        assert_eq!(order, left, "arrival order kept");
        // One leaves and comes back: it is pending once, at its new place (last).
        let back = txs[2].clone();
        pool.settle(&[back.id()], &[]);
        pool.admit(back.clone(), 0, 1).unwrap();
        let order: Vec<Hash> = pool.candidates(10_000).iter().map(VerifiedTx::id).collect();
        assert_eq!(order.len(), 3000);
        assert_eq!(order.last(), Some(&back.id()));
        assert_eq!(order.iter().filter(|id| **id == back.id()).count(), 1);
        assert_eq!(pool.lingering(2, 10_000).len(), 3000);
        assert_eq!(pool.lingering(1, 10_000).len(), 2999);
        // All but the first leave, from behind it: the order is swept down to its bound.
        pool.settle(&order[1..], &[]);
        assert_eq!(pool.len(), 1);
        assert!(
            pool.arrival.len() <= 2 + ARRIVAL_SLACK,
            "{}",
            pool.arrival.len()
        );
        assert_eq!(pool.candidates(10).len(), 1);
    }

    #[test]
    fn arrival_times_never_go_back_so_lingering_ones_are_a_prefix() {
        // Two threads admit with clocks read just before the pool's lock: the later
        // admission may carry the earlier time.
        let mut pool = Mempool::new(10, 10);
        let mut factory = TxFactory::new(Hash::ZERO);
        let first = tx(&mut factory, "a");
        let second = tx(&mut factory, "a");
        pool.admit(first.clone(), 0, 10).unwrap();
        pool.admit(second, 0, 5).unwrap();
        let ids: Vec<Hash> = pool.lingering(11, 10).iter().map(VerifiedTx::id).collect();
        assert_eq!(ids.len(), 2);
        // Pending since before 10: neither (not the second without the first).
        assert!(pool.lingering(10, 10).is_empty());
        assert_eq!(pool.expire(10), 0);
        assert!(pool.contains(&first.id()));
    }
}
