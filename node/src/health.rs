//! Health and readiness, for load balancers and orchestrators.
//!
//! `/health`: the process answers and its store takes a synced write. `/ready`: the node can
//! serve current answers: a quorum of the validators is reachable (its own key counts when
//! it is one of them), and within [`READY_WINDOW_MS`] its peers showed it is where they are
//! (a checked consensus message for its next height, or a sync answer, asked every second,
//! that left nothing newer to fetch), and no consensus message of the window came from more
//! than the allowed lag ahead. A validator that is a quorum alone (the development chain)
//! needs no peer. These are operational signals, not safety: a peer could feign them, and
//! nothing a ready node serves depends on them.

use cachet_storage::StoreError;
use serde::Serialize;

use crate::node::{Node, Role};

/// How recent the consensus traffic readiness relies on must be.
pub const READY_WINDOW_MS: u64 = 10_000;

/// The answer of `/health`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// `ok` or `failing`.
    pub status: &'static str,
    /// Height of the last committed block.
    pub height: u64,
    /// Why not, when failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The answer of `/ready`.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// Whether the node is ready.
    pub ready: bool,
    /// Height of the last committed block.
    pub height: u64,
    /// Validators of the next height.
    pub validators: usize,
    /// Of them reachable: connected operators' nodes, and this node if it is one.
    pub validators_reachable: usize,
    /// Validators needed for a quorum.
    pub quorum: usize,
    /// Milliseconds since peers last showed this node is where they are.
    pub last_in_step_ms_ago: Option<u64>,
    /// The highest height of the window's consensus traffic, when ahead of this node.
    pub peers_height: Option<u64>,
    /// Why not, one sentence each; empty when ready.
    pub reasons: Vec<String>,
}

/// Health now: a synced write and read-back of the store's probe.
pub fn health(node: &Node, now_ms: u64) -> Health {
    let store = node.ledger().store();
    let result = store.probe_write(now_ms).and_then(|()| store.tip());
    match result {
        Ok(tip) => Health {
            status: "ok",
            height: tip.height,
            error: None,
        },
        Err(error) => Health {
            status: "failing",
            height: 0,
            error: Some(format!("the store cannot take writes: {error}")),
        },
    }
}

/// Readiness at `now_mono_ms`, allowing `max_lag` blocks behind the peers.
pub fn readiness(node: &Node, now_mono_ms: u64, max_lag: u64) -> Result<Readiness, StoreError> {
    let store = node.ledger().store();
    let tip = store.tip()?;
    let operators = store.operators_at(tip.height + 1)?;
    let validators = operators.len();
    let quorum = cachet_types::block::quorum(validators);
    let own = match node.role() {
        Role::Validator(key) => operators.iter().any(|op| op.validator_key == key),
        Role::Observer => false,
    };
    let (_, operator_peers) = node.peer_counts();
    let reachable = (operator_peers + own as usize).min(validators);
    let view = node.chain().peer_view();
    let ago = view.in_step_ms.map(|at| now_mono_ms.saturating_sub(at));
    let peers_height = view
        .ahead_message
        .filter(|(_, at)| now_mono_ms.saturating_sub(*at) <= READY_WINDOW_MS)
        .map(|(height, _)| height.saturating_sub(1))
        .filter(|height| *height > tip.height);
    let mut reasons = Vec::new();
    if reachable < quorum {
        reasons.push(format!(
            "{reachable} of {validators} validators reachable; a quorum is {quorum}"
        ));
    }
    let alone_a_quorum = own && quorum == 1;
    if !alone_a_quorum {
        if ago.is_none_or(|ago| ago > READY_WINDOW_MS) {
            reasons.push(format!(
                "no sign in the last {} s that peers are at height {} (a consensus message for height {} or a sync answer with nothing newer)",
                READY_WINDOW_MS / 1000,
                tip.height,
                tip.height + 1
            ));
        }
        if let Some(height) = peers_height
            && height > tip.height + max_lag
        {
            reasons.push(format!(
                "peers are at height {height}, this node at {}: {} blocks behind (at most {max_lag} allowed)",
                tip.height,
                height - tip.height
            ));
        }
    }
    Ok(Readiness {
        ready: reasons.is_empty(),
        height: tip.height,
        validators,
        validators_reachable: reachable,
        quorum,
        last_in_step_ms_ago: ago,
        peers_height,
        reasons,
    })
}
