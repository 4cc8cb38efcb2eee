//! State sync, sans I/O: a node that joins late takes a recent certified state from its
//! peers instead of replaying every block, then replays the older blocks in the background
//! so that it still serves full provenance (`specs/ledger.md#state-sync`).
//!
//! - The answering side: [`ServedSnapshot`] is a frozen copy of a node's store at one
//!   height with its offer (the block, the membership proof of its operator set, the
//!   manifest); [`answer`] answers a peer's request from it and from the live store.
//! - The joining side: [`Joiner`] asks peers for offers, trusts one only once its block's
//!   certificate verifies against operator sets proven from the genesis, imports its chunks
//!   (each checked against the certified state root, refused ones named and fetched from
//!   another peer) and ends with the store at that block. [`Backfiller`] then fetches the
//!   blocks below it and replays them ([`Backfill`]).
//!
//! Both are driven by plain calls that carry the time (monotonic ms) and answer with the
//! requests to send: `cachetd` carries them on libp2p's state-sync protocol.

use std::collections::{BTreeMap, BTreeSet};

use bincode::{Decode, Encode};
use cachet_provenance::{MembershipProof, verify_membership};
use cachet_state::Tip;
use cachet_storage::snapshot::{
    Backfill, BackfillProgress, ImportError, MAX_CHUNK_BYTES, MAX_MANIFEST_BYTES, SnapshotChunk,
    SnapshotManifest,
};
use cachet_storage::{LedgerError, Store, StoreError};
use cachet_types::{CertifiedBlock, Genesis, Hash, Operator, SignedTx, codec};

/// A request without an answer after this long is asked of another peer.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Chunk requests in flight at once.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// Peers asked for an offer at once.
pub const MAX_OFFER_ASKS: usize = 16;
/// How often peers are asked again while no usable offer has come.
pub const OFFER_RETRY_MS: u64 = 2_000;
/// Largest membership proof in an offer.
pub const MAX_MEMBERSHIP_PROOF_BYTES: usize = 16 << 20;
/// Blocks one backfill request asks for.
pub const BACKFILL_BLOCKS: u32 = 32;
/// Largest answer of any kind (a chunk, an offer, a batch of blocks).
pub const MAX_ANSWER_BYTES: usize = 32 << 20;

/// What a peer asks of the state-sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum SnapshotRequest {
    /// "Which snapshot do you serve?"
    Offer,
    /// One chunk of the snapshot of `height`.
    Chunk {
        /// The snapshot's height.
        height: u64,
        /// The chunk.
        index: u32,
    },
    /// Certified blocks from `from_height` on (for a backfill), at most `max`.
    Blocks {
        /// First height.
        from_height: u64,
        /// Most blocks.
        max: u32,
    },
}

/// The answer to a [`SnapshotRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum SnapshotAnswer {
    /// The snapshot this peer serves.
    Offer {
        /// Its block, certified.
        block: Box<CertifiedBlock>,
        /// The membership proof of the operator set of its height (JSON, as in bundles).
        membership: Vec<u8>,
        /// Its manifest.
        manifest: SnapshotManifest,
    },
    /// One chunk.
    Chunk(SnapshotChunk),
    /// Encoded certified blocks, in height order (empty: none from there).
    Blocks(Vec<Vec<u8>>),
    /// Nothing to serve for this request (no snapshot, or not that one any more).
    Unavailable,
}

/// A frozen copy of a node's store at one height, served to joining nodes.
pub struct ServedSnapshot {
    store: Store,
    manifest: SnapshotManifest,
    offer: Vec<u8>,
}

impl ServedSnapshot {
    /// Makes the offer of `frozen` (a frozen copy: [`Store::freeze`]), which must hold its
    /// whole history (the membership proof reads the blocks of every change).
    pub fn new(frozen: Store) -> Result<ServedSnapshot, StoreError> {
        let depth = cachet_storage::snapshot::depth_for(frozen.state_entries()?);
        ServedSnapshot::split(frozen, depth)
    }

    /// Like [`ServedSnapshot::new`], split at `depth` rather than by the state's size.
    pub fn split(frozen: Store, depth: u8) -> Result<ServedSnapshot, StoreError> {
        let manifest = frozen.snapshot_manifest_split(depth)?;
        let block = frozen
            .block(manifest.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("block {} missing", manifest.height)))?;
        let proof = frozen.membership_proof(manifest.height)?;
        let membership = serde_json::to_vec(&proof)
            .map_err(|e| StoreError::Corrupt(format!("membership proof: {e}")))?;
        let offer = codec::encode(&SnapshotAnswer::Offer {
            block: Box::new(block),
            membership,
            manifest: manifest.clone(),
        });
        Ok(ServedSnapshot {
            store: frozen,
            manifest,
            offer,
        })
    }

    /// The snapshot's height.
    pub fn height(&self) -> u64 {
        self.manifest.height
    }

    /// Its manifest.
    pub fn manifest(&self) -> &SnapshotManifest {
        &self.manifest
    }
}

/// Answers a peer's state-sync request: offers and chunks from the newest of `served`
/// that fits, blocks from `live`. A request that does not decode is answered `Unavailable`.
pub fn answer(
    served: &[&ServedSnapshot],
    live: &Store,
    request: &[u8],
    max_answer_bytes: usize,
) -> Result<Vec<u8>, StoreError> {
    let unavailable = || Ok(codec::encode(&SnapshotAnswer::Unavailable));
    let Ok(request) = codec::decode::<SnapshotRequest>(request, 1024) else {
        return unavailable();
    };
    match request {
        SnapshotRequest::Offer => match served.iter().max_by_key(|s| s.height()) {
            Some(newest) => Ok(newest.offer.clone()),
            None => unavailable(),
        },
        SnapshotRequest::Chunk { height, index } => {
            let Some(snapshot) = served.iter().find(|s| s.height() == height) else {
                return unavailable();
            };
            if index >= snapshot.manifest.chunk_count() {
                return unavailable();
            }
            let chunk = snapshot
                .store
                .snapshot_chunk(snapshot.manifest.depth, index)?;
            Ok(codec::encode(&SnapshotAnswer::Chunk(chunk)))
        }
        SnapshotRequest::Blocks { from_height, max } => {
            let mut blocks = Vec::new();
            let mut bytes = 0usize;
            for height in from_height..from_height.saturating_add(max.min(BACKFILL_BLOCKS).into()) {
                let Some(block) = live.block_bytes(height)? else {
                    break;
                };
                if bytes + block.len() > max_answer_bytes && !blocks.is_empty() {
                    break;
                }
                bytes += block.len();
                blocks.push(block);
            }
            Ok(codec::encode(&SnapshotAnswer::Blocks(blocks)))
        }
    }
}

/// A request for the embedding to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Send<P> {
    /// To whom.
    pub peer: P,
    /// The encoded [`SnapshotRequest`].
    pub request: Vec<u8>,
}

fn send<P>(peer: P, request: &SnapshotRequest) -> Send<P> {
    Send {
        peer,
        request: codec::encode(request),
    }
}

/// Why a joiner stopped: the store failed, or what it imported contradicts the proof it
/// trusted (the node stops rather than run on it).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Storage failed.
    #[error("storage failed during state sync: {0}")]
    Store(#[from] StoreError),
    /// The imported state names another operator set than the offer's membership proof.
    #[error(
        "the imported state's operators at height {height} differ from those its membership proof established"
    )]
    OperatorsDiffer {
        /// The snapshot's height.
        height: u64,
    },
}

/// What the joiner trusts: the offer's block and manifest, and the operators it proved.
struct Target {
    height: u64,
    block_hash: Hash,
    manifest: SnapshotManifest,
    /// The operators of the snapshot's height by the membership proof (None when the
    /// import resumed after a restart: the stored record was checked before).
    operators: Option<Vec<Operator>>,
}

/// Checks an offer against the genesis: the membership proof, the block's certificate by
/// the operators it proves at the block's height, its transactions against its header, and
/// the manifest against the header. Returns the operators of that height.
pub fn verify_offer(
    genesis: &Genesis,
    block: &CertifiedBlock,
    membership: &[u8],
    manifest: &SnapshotManifest,
) -> Result<Vec<Operator>, String> {
    let chain_id = genesis.chain_id();
    let header = &block.block.header;
    if header.chain_id != chain_id {
        return Err("the block is of another chain".into());
    }
    if membership.len() > MAX_MEMBERSHIP_PROOF_BYTES {
        return Err("the membership proof is too large".into());
    }
    let proof: MembershipProof = serde_json::from_slice(membership)
        .map_err(|e| format!("the membership proof does not parse: {e}"))?;
    let sets = verify_membership(genesis, &chain_id, &proof)
        .map_err(|e| format!("the membership proof fails: {e}"))?;
    block
        .certificate
        .verify(header, &sets.validators_at(header.height))
        .map_err(|e| format!("the block's certificate fails: {e}"))?;
    let leaves: Vec<Hash> = block.block.txs.iter().map(SignedTx::witness_hash).collect();
    if cachet_types::merkle::tx_root(&leaves) != header.tx_root {
        return Err("the block's transactions do not match its header".into());
    }
    manifest
        .verify(header)
        .map_err(|e| format!("the manifest fails: {e}"))?;
    Ok(sets.at(header.height).to_vec())
}

/// The joining side of state sync: from an empty store (or one whose import was cut short)
/// to a store at a snapshot's block.
pub struct Joiner<P> {
    genesis: Genesis,
    target: Option<Target>,
    /// Peers that offered the target snapshot.
    sources: BTreeSet<P>,
    /// Peers that sent something false: never asked again.
    refused: BTreeSet<P>,
    /// Connected peers.
    peers: BTreeSet<P>,
    /// Offer requests in flight, with their deadlines.
    asked: BTreeMap<P, u64>,
    /// When peers were last asked for offers.
    last_ask_ms: Option<u64>,
    /// Chunks not yet imported and not in flight.
    missing: BTreeSet<u32>,
    /// Chunk requests in flight: who, and until when.
    in_flight: BTreeMap<u32, (P, u64)>,
    total: usize,
    imported: Option<Tip>,
}

impl<P: Ord + Clone + std::fmt::Display> Joiner<P> {
    /// A joiner for `store`: empty, or holding an unfinished import (resumed: only the same
    /// snapshot is accepted).
    pub fn new(store: &Store) -> Result<Joiner<P>, StoreError> {
        let mut joiner = Joiner {
            genesis: store.genesis().clone(),
            target: None,
            sources: BTreeSet::new(),
            refused: BTreeSet::new(),
            peers: BTreeSet::new(),
            asked: BTreeMap::new(),
            last_ask_ms: None,
            missing: BTreeSet::new(),
            in_flight: BTreeMap::new(),
            total: 0,
            imported: None,
        };
        if let Some((record, missing)) = store.import_progress()? {
            joiner.total = record.manifest.non_empty().count();
            joiner.missing = missing.into_iter().collect();
            joiner.target = Some(Target {
                height: record.block.block.header.height,
                block_hash: record.block.block.header.hash(),
                manifest: record.manifest,
                operators: None,
            });
        }
        Ok(joiner)
    }

    /// The snapshot height chosen, once an offer was trusted.
    pub fn target_height(&self) -> Option<u64> {
        self.target.as_ref().map(|t| t.height)
    }

    /// Chunks imported and chunks in all (0 of 0 before an offer was trusted).
    pub fn progress(&self) -> (usize, usize) {
        let left = self.missing.len() + self.in_flight.len();
        (self.total - left.min(self.total), self.total)
    }

    /// Peers that sent something false (never asked again).
    pub fn refused(&self) -> &BTreeSet<P> {
        &self.refused
    }

    /// The tip the import ended at, once it has.
    pub fn imported(&self) -> Option<Tip> {
        self.imported
    }

    /// A peer connected: ask it for its offer when an offer is still wanted.
    pub fn on_peer(&mut self, peer: P, now_ms: u64) -> Vec<Send<P>> {
        self.peers.insert(peer);
        self.ask_offers(now_ms, false)
    }

    /// A peer went away or did not answer: its requests go elsewhere.
    pub fn on_failed(
        &mut self,
        store: &Store,
        peer: &P,
        now_ms: u64,
    ) -> Result<Vec<Send<P>>, JoinError> {
        self.asked.remove(peer);
        self.sources.remove(peer);
        self.requeue_from(peer);
        self.next(store, now_ms)
    }

    /// Time passed: requests past their deadline go elsewhere, and peers are asked again
    /// for offers while none was usable.
    pub fn on_time(&mut self, store: &Store, now_ms: u64) -> Result<Vec<Send<P>>, JoinError> {
        self.asked.retain(|_, deadline| *deadline > now_ms);
        let late: Vec<(u32, P)> = self
            .in_flight
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now_ms)
            .map(|(index, (peer, _))| (*index, peer.clone()))
            .collect();
        for (index, peer) in late {
            tracing::debug!(%peer, index, "state-sync chunk request timed out");
            self.in_flight.remove(&index);
            self.missing.insert(index);
            self.sources.remove(&peer);
        }
        self.next(store, now_ms)
    }

    /// A peer's answer.
    pub fn on_answer(
        &mut self,
        store: &Store,
        from: P,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Send<P>>, JoinError> {
        let Ok(answer) = codec::decode::<SnapshotAnswer>(bytes, MAX_ANSWER_BYTES) else {
            self.refuse(&from, "an answer that does not decode");
            return self.next(store, now_ms);
        };
        match answer {
            SnapshotAnswer::Offer {
                block,
                membership,
                manifest,
            } => {
                self.asked.remove(&from);
                self.on_offer(store, from, *block, &membership, manifest)?;
            }
            SnapshotAnswer::Chunk(chunk) => self.on_chunk(store, from, chunk)?,
            SnapshotAnswer::Unavailable | SnapshotAnswer::Blocks(_) => {
                // It serves no snapshot, or no longer this one.
                self.asked.remove(&from);
                self.sources.remove(&from);
                self.requeue_from(&from);
            }
        }
        self.next(store, now_ms)
    }

    fn on_offer(
        &mut self,
        store: &Store,
        from: P,
        block: CertifiedBlock,
        membership: &[u8],
        manifest: SnapshotManifest,
    ) -> Result<(), JoinError> {
        let mut abandon = false;
        if let Some(target) = &self.target {
            // Another peer with the same snapshot (same height, block and split) is a
            // source too; a different one is not false, just not ours, unless nobody serves
            // ours any more and this one is newer: then the import starts over from it.
            if block.block.header.hash() == target.block_hash && manifest == target.manifest {
                self.sources.insert(from);
                return Ok(());
            }
            if !self.sources.is_empty() || block.block.header.height <= target.height {
                return Ok(());
            }
            abandon = true;
        }
        if block.block.header.height == 0 {
            return Ok(());
        }
        match verify_offer(&self.genesis, &block, membership, &manifest) {
            Ok(operators) => {
                if abandon {
                    tracing::info!(
                        from = self.target.as_ref().map_or(0, |t| t.height),
                        to = block.block.header.height,
                        "state sync: no peer serves the snapshot being imported any more; starting over from a newer one"
                    );
                    match store.abandon_import() {
                        Ok(()) => {}
                        Err(ImportError::Store(error)) => return Err(error.into()),
                        Err(error) => {
                            return Err(StoreError::Corrupt(format!(
                                "abandoning the import: {error}"
                            ))
                            .into());
                        }
                    }
                    self.target = None;
                    self.missing.clear();
                    self.in_flight.clear();
                    self.total = 0;
                }
                match store.begin_import(&block, &manifest) {
                    Ok(()) => {}
                    Err(ImportError::Store(error)) => return Err(error.into()),
                    Err(error) => {
                        self.refuse(&from, &error.to_string());
                        return Ok(());
                    }
                }
                tracing::info!(
                    height = block.block.header.height,
                    chunks = manifest.non_empty().count(),
                    depth = manifest.depth,
                    peer = %from,
                    "state sync: trusting the snapshot of a certified block"
                );
                self.missing = manifest.non_empty().collect();
                self.total = self.missing.len();
                self.target = Some(Target {
                    height: block.block.header.height,
                    block_hash: block.block.header.hash(),
                    manifest,
                    operators: Some(operators),
                });
                self.sources.insert(from);
            }
            Err(reason) => self.refuse(&from, &reason),
        }
        Ok(())
    }

    fn on_chunk(&mut self, store: &Store, from: P, chunk: SnapshotChunk) -> Result<(), JoinError> {
        let index = chunk.index;
        match self.in_flight.get(&index) {
            Some((peer, _)) if *peer == from => {}
            // Unasked, or asked of another peer (which may still answer): not ours to judge.
            _ => return Ok(()),
        }
        self.in_flight.remove(&index);
        match store.import_chunk(chunk) {
            Ok(()) => {}
            Err(ImportError::Store(error)) => return Err(error.into()),
            Err(error) => {
                self.missing.insert(index);
                self.refuse(&from, &error.to_string());
            }
        }
        Ok(())
    }

    fn refuse(&mut self, peer: &P, reason: &str) {
        tracing::warn!(%peer, reason, "state sync: refused what a peer sent; not asking it again");
        self.refused.insert(peer.clone());
        self.sources.remove(peer);
        self.asked.remove(peer);
        self.requeue_from(peer);
    }

    fn requeue_from(&mut self, peer: &P) {
        let lost: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, (p, _))| p == peer)
            .map(|(index, _)| *index)
            .collect();
        for index in lost {
            self.in_flight.remove(&index);
            self.missing.insert(index);
        }
    }

    /// Asks for offers from connected peers not yet asked (all of them again when `again`).
    fn ask_offers(&mut self, now_ms: u64, again: bool) -> Vec<Send<P>> {
        if self.imported.is_some() || (self.target.is_some() && !self.sources.is_empty()) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let candidates: Vec<P> = self
            .peers
            .iter()
            .filter(|p| !self.refused.contains(p) && !self.asked.contains_key(p))
            .filter(|p| again || !self.sources.contains(p))
            .cloned()
            .collect();
        for peer in candidates {
            if self.asked.len() >= MAX_OFFER_ASKS {
                break;
            }
            self.asked.insert(peer.clone(), now_ms + REQUEST_TIMEOUT_MS);
            out.push(send(peer, &SnapshotRequest::Offer));
        }
        if !out.is_empty() {
            self.last_ask_ms = Some(now_ms);
        }
        out
    }

    fn ask_offers_if(&mut self, due: bool, now_ms: u64) -> Vec<Send<P>> {
        if due {
            self.ask_offers(now_ms, true)
        } else {
            Vec::new()
        }
    }

    /// Sends what is due: chunk requests to sources, offers while there are none, and the
    /// end of the import once every chunk is in.
    fn next(&mut self, store: &Store, now_ms: u64) -> Result<Vec<Send<P>>, JoinError> {
        if self.imported.is_some() {
            return Ok(Vec::new());
        }
        // Offers are asked again while none was usable, or nobody serves the one trusted.
        let ask_due = self
            .last_ask_ms
            .is_none_or(|last| now_ms >= last + OFFER_RETRY_MS);
        let Some(target) = &self.target else {
            return Ok(self.ask_offers_if(ask_due, now_ms));
        };
        if self.missing.is_empty() && self.in_flight.is_empty() {
            let height = target.height;
            let expected = target.operators.clone();
            let tip = match store.finish_import() {
                Ok(tip) => tip,
                Err(ImportError::Store(error)) => return Err(error.into()),
                Err(error) => {
                    return Err(
                        StoreError::Corrupt(format!("finishing the import: {error}")).into(),
                    );
                }
            };
            if let Some(expected) = expected
                && store.operators_at(height)? != expected
            {
                return Err(JoinError::OperatorsDiffer { height });
            }
            tracing::info!(
                height,
                "state sync: imported the snapshot; following the chain from it"
            );
            self.imported = Some(tip);
            return Ok(Vec::new());
        }
        if self.sources.is_empty() {
            return Ok(self.ask_offers_if(ask_due, now_ms));
        }
        let mut out = Vec::new();
        let height = target.height;
        while self.in_flight.len() < CHUNKS_IN_FLIGHT {
            let Some(index) = self.missing.pop_first() else {
                break;
            };
            // The source with the fewest requests in flight.
            let peer = self
                .sources
                .iter()
                .min_by_key(|s| self.in_flight.values().filter(|(p, _)| p == *s).count())
                .cloned()
                .expect("sources is not empty");
            self.in_flight
                .insert(index, (peer.clone(), now_ms + REQUEST_TIMEOUT_MS));
            out.push(send(peer, &SnapshotRequest::Chunk { height, index }));
        }
        Ok(out)
    }
}

/// The backfill's fetching side: asks peers for the blocks below the snapshot, in order,
/// and replays each ([`Backfill::apply`]).
pub struct Backfiller<P> {
    backfill: Backfill,
    peers: BTreeSet<P>,
    refused: BTreeSet<P>,
    /// The request in flight: to whom, from which height, until when.
    in_flight: Option<(P, u64, u64)>,
    /// Rotation over peers.
    turn: usize,
    /// After an answer with no blocks, nothing is asked before this time.
    retry_at: u64,
    progress: Option<BackfillProgress>,
}

impl<P: Ord + Clone + std::fmt::Display> Backfiller<P> {
    /// A backfiller around `backfill`.
    pub fn new(backfill: Backfill) -> Backfiller<P> {
        Backfiller {
            backfill,
            peers: BTreeSet::new(),
            refused: BTreeSet::new(),
            in_flight: None,
            turn: 0,
            retry_at: 0,
            progress: None,
        }
    }

    /// How far it has come, once a block was replayed.
    pub fn progress(&self) -> Option<BackfillProgress> {
        self.progress
    }

    /// Peers that sent something false (never asked again).
    pub fn refused(&self) -> &BTreeSet<P> {
        &self.refused
    }

    /// Whether every block's history is in the store.
    pub fn done(&self) -> bool {
        self.progress.is_some_and(|p| p.done())
    }

    /// The base it replays up to.
    pub fn base(&self) -> u64 {
        self.backfill.base()
    }

    /// A peer connected.
    pub fn on_peer(&mut self, peer: P, now_ms: u64) -> Result<Vec<Send<P>>, StoreError> {
        self.peers.insert(peer);
        self.next(now_ms)
    }

    /// A peer went away or did not answer.
    pub fn on_failed(&mut self, peer: &P, now_ms: u64) -> Result<Vec<Send<P>>, StoreError> {
        if self.in_flight.as_ref().is_some_and(|(p, _, _)| p == peer) {
            self.in_flight = None;
        }
        self.next(now_ms)
    }

    /// Time passed: a late request goes to the next peer.
    pub fn on_time(&mut self, now_ms: u64) -> Result<Vec<Send<P>>, StoreError> {
        if self
            .in_flight
            .as_ref()
            .is_some_and(|(_, _, deadline)| *deadline <= now_ms)
        {
            self.in_flight = None;
        }
        self.next(now_ms)
    }

    /// A peer's answer: the blocks are replayed in order into the scratch ledger and handed
    /// to `main`; a block that fails its checks marks its sender.
    pub fn on_answer(
        &mut self,
        main: &Store,
        from: P,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<Vec<Send<P>>, StoreError> {
        let Some((asked, from_height, _)) = self.in_flight.clone() else {
            return self.next(now_ms);
        };
        if asked != from {
            return self.next(now_ms);
        }
        self.in_flight = None;
        let blocks = match codec::decode::<SnapshotAnswer>(bytes, MAX_ANSWER_BYTES) {
            Ok(SnapshotAnswer::Blocks(blocks)) => blocks,
            Ok(_) => Vec::new(),
            Err(_) => {
                self.refuse(&from, "an answer that does not decode");
                return self.next(now_ms);
            }
        };
        if blocks.is_empty() {
            // It has none from there (e.g. synced by snapshot itself): ask the next peer,
            // after a pause.
            self.turn = self.turn.wrapping_add(1);
            self.retry_at = now_ms + OFFER_RETRY_MS;
        }
        let mut expected = from_height;
        for bytes in blocks {
            if expected > self.backfill.base() {
                break;
            }
            let block: CertifiedBlock = match codec::decode(&bytes, MAX_ANSWER_BYTES) {
                Ok(block) => block,
                Err(_) => {
                    self.refuse(&from, "a block that does not decode");
                    break;
                }
            };
            if block.block.header.height != expected {
                self.refuse(&from, "blocks out of order");
                break;
            }
            match self.backfill.apply(main, &block) {
                Ok(progress) => {
                    self.progress = Some(progress);
                    expected += 1;
                }
                Err(LedgerError::Store(error)) => return Err(error),
                Err(LedgerError::State(error)) => return Err(error.into()),
                Err(error) => {
                    self.refuse(&from, &error.to_string());
                    break;
                }
            }
        }
        self.next(now_ms)
    }

    fn refuse(&mut self, peer: &P, reason: &str) {
        tracing::warn!(%peer, reason, "backfill: refused what a peer sent; not asking it again");
        self.refused.insert(peer.clone());
    }

    fn next(&mut self, now_ms: u64) -> Result<Vec<Send<P>>, StoreError> {
        if self.done() || self.in_flight.is_some() || now_ms < self.retry_at {
            return Ok(Vec::new());
        }
        let usable: Vec<&P> = self
            .peers
            .iter()
            .filter(|p| !self.refused.contains(*p))
            .collect();
        if usable.is_empty() {
            return Ok(Vec::new());
        }
        let peer = usable[self.turn % usable.len()].clone();
        let from_height = self.backfill.next_height()?;
        self.in_flight = Some((peer.clone(), from_height, now_ms + REQUEST_TIMEOUT_MS));
        Ok(vec![send(
            peer,
            &SnapshotRequest::Blocks {
                from_height,
                max: BACKFILL_BLOCKS,
            },
        )])
    }
}

/// Bytes of an answer that must fit [`MAX_ANSWER_BYTES`]: a chunk at its largest, or an
/// offer with a full manifest and membership proof.
const _: () = assert!(MAX_CHUNK_BYTES + 1024 <= MAX_ANSWER_BYTES);
const _: () = assert!(MAX_MANIFEST_BYTES + MAX_MEMBERSHIP_PROOF_BYTES <= MAX_ANSWER_BYTES);
