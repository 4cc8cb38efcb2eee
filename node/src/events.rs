//! The event stream, `GET /v1/events` (server-sent events): final blocks and the final
//! transactions in them, filterable by stamp, issue and account, resumable.
//!
//! Each client's stream reads the committed blocks itself, one at a time, from where it
//! stands to the tip, then waits for the next commit: a client holds at most one block's
//! events, and a slow client only falls behind. One that falls more than
//! [`MAX_CLIENT_LAG_BLOCKS`] behind the tip is sent a `dropped` event saying so, and its
//! stream ends. Event ids are `HEIGHT-N` (N: the event's place among the block's events,
//! counted before filtering), so `Last-Event-ID` (or `?after=HEIGHT-N`) resumes right after
//! the last event received, whatever the filter, with no gap and no repeat.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive};
use cachet_types::{Address, CertifiedBlock, IssueId, StampId, TxBody};
use serde::Serialize;
use tokio::sync::OwnedSemaphorePermit;

use crate::node::Node;

/// Most event streams open at once; more get 503 `busy`.
pub const MAX_EVENT_CLIENTS: usize = 256;

/// How far behind the tip a client's stream may fall before it is dropped.
pub const MAX_CLIENT_LAG_BLOCKS: u64 = 10_000;

/// Keep-alive comment interval (proxies close idle connections).
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Which events a client wants.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Transactions touching this stamp.
    pub stamp: Option<StampId>,
    /// Transactions of this issue.
    pub issue: Option<IssueId>,
    /// Transactions this account signed or that name it.
    pub account: Option<Address>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.stamp.is_none() && self.issue.is_none() && self.account.is_none()
    }

    fn admits(&self, tx: &TxEvent) -> bool {
        let stamp = self.stamp.as_ref().is_none_or(|stamp| {
            tx.stamps.contains(stamp)
                || tx.serials.is_some_and(|(first, last)| {
                    tx.issue.as_ref() == Some(&stamp.issue)
                        && (first..=last).contains(&stamp.serial)
                })
        });
        let issue = self
            .issue
            .as_ref()
            .is_none_or(|issue| tx.issue.as_ref() == Some(issue));
        let account = self
            .account
            .as_ref()
            .is_none_or(|account| tx.accounts.contains(account));
        stamp && issue && account
    }
}

/// A final block.
#[derive(Debug, Serialize)]
struct BlockEvent {
    height: u64,
    hash: cachet_types::Hash,
    time_ms: u64,
    txs: usize,
}

/// A final transaction.
#[derive(Debug, Serialize)]
pub struct TxEvent {
    tx_id: cachet_types::Hash,
    height: u64,
    index: usize,
    kind: &'static str,
    signer: Address,
    /// The issue it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    issue: Option<IssueId>,
    /// The stamps it touched (a mint: see `serials`).
    stamps: Vec<StampId>,
    /// A mint's serials, first and last.
    #[serde(skip_serializing_if = "Option::is_none")]
    serials: Option<(u32, u32)>,
    /// The accounts it names: its signer, and any owner, recipient, counterparty or
    /// approved account.
    accounts: Vec<Address>,
}

/// What a transaction touches, from its body.
fn tx_event(block: &CertifiedBlock, index: usize) -> TxEvent {
    let tx = &block.block.txs[index];
    let signer = tx.signer.address();
    let mut event = TxEvent {
        tx_id: tx.id(),
        height: block.block.header.height,
        index,
        kind: tx.body.kind(),
        signer,
        issue: None,
        stamps: Vec::new(),
        serials: None,
        accounts: vec![signer],
    };
    match &tx.body {
        TxBody::CreateIssue { record } => event.issue = Some(record.id.clone()),
        TxBody::CloseIssue { issue } => event.issue = Some(issue.clone()),
        TxBody::Mint {
            issue,
            first_serial,
            last_serial,
            owner,
            ..
        } => {
            event.issue = Some(issue.clone());
            event.serials = Some((*first_serial, *last_serial));
            event.accounts.push(*owner);
        }
        TxBody::Claim { stamp, to } => {
            event.stamps.push(stamp.clone());
            event.accounts.push(*to);
        }
        TxBody::Transfer { stamp, to, .. } => {
            event.stamps.push(stamp.clone());
            event.accounts.push(*to);
        }
        TxBody::Approve {
            stamp, operator, ..
        } => {
            event.stamps.push(stamp.clone());
            event.accounts.push(*operator);
        }
        TxBody::Swap {
            give,
            take,
            counterparty,
        } => {
            event
                .stamps
                .extend(give.iter().chain(take).map(|leg| leg.stamp.clone()));
            event.accounts.push(*counterparty);
        }
        TxBody::Redeem { stamp }
        | TxBody::Freeze { stamp, .. }
        | TxBody::Unfreeze { stamp, .. }
        | TxBody::Revoke { stamp }
        | TxBody::Burn { stamp, .. } => event.stamps.push(stamp.clone()),
        TxBody::ProposeMembership { .. } | TxBody::ApproveMembership { .. } => {}
    }
    if event.issue.is_none()
        && let Some(first) = event.stamps.first()
    {
        event.issue = Some(first.issue.clone());
    }
    event.accounts.dedup();
    event
}

/// A block's events that pass `filter`, each with its ordinal: the block (ordinal 0; only
/// without a filter), then its transactions (ordinal 1 + index).
fn block_events(block: &CertifiedBlock, filter: &Filter) -> Vec<(usize, Event)> {
    let height = block.block.header.height;
    let mut events = Vec::new();
    let event = |n: usize, kind: &str, data: String| {
        Event::default()
            .id(format!("{height}-{n}"))
            .event(kind)
            .data(data)
    };
    if filter.is_empty() {
        let data = BlockEvent {
            height,
            hash: block.block.header.hash(),
            time_ms: block.block.header.time_ms,
            txs: block.block.txs.len(),
        };
        events.push((0, event(0, "block", json(&data))));
    }
    for index in 0..block.block.txs.len() {
        let tx = tx_event(block, index);
        if filter.admits(&tx) {
            events.push((index + 1, event(index + 1, "tx", json(&tx))));
        }
    }
    events
}

fn json<T: Serialize>(value: &T) -> String {
    // Our own event types always encode.
    serde_json::to_string(value).unwrap_or_default()
}

/// Where a stream resumes: after event `n` of `height`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// Height of the last event received.
    pub height: u64,
    /// Its ordinal within the height.
    pub n: usize,
}

impl std::str::FromStr for Resume {
    type Err = String;
    fn from_str(text: &str) -> Result<Resume, String> {
        let bad = || format!("an event id is HEIGHT-N, got {text:?}");
        let (height, n) = text.split_once('-').ok_or_else(bad)?;
        Ok(Resume {
            height: height.parse().map_err(|_| bad())?,
            n: n.parse().map_err(|_| bad())?,
        })
    }
}

struct Stream {
    node: Arc<Node>,
    filter: Filter,
    next: u64,
    skip_through: Option<usize>,
    pending: VecDeque<Event>,
    tips: tokio::sync::watch::Receiver<cachet_storage::Tip>,
    ended: bool,
    _permit: OwnedSemaphorePermit,
}

/// The stream of events from height `from` (or right after `resume`), for one client.
pub fn stream(
    node: Arc<Node>,
    filter: Filter,
    from: u64,
    resume: Option<Resume>,
    permit: OwnedSemaphorePermit,
) -> impl futures::Stream<Item = Result<Event, Infallible>> {
    let (next, skip_through) = match resume {
        Some(resume) => (resume.height, Some(resume.n)),
        None => (from.max(1), None),
    };
    let state = Stream {
        tips: node.tip_watch(),
        node,
        filter,
        next,
        skip_through,
        pending: VecDeque::new(),
        ended: false,
        _permit: permit,
    };
    futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), state));
            }
            if state.ended {
                return None;
            }
            let tip = state.tips.borrow_and_update().height;
            if tip > state.next && tip - state.next > MAX_CLIENT_LAG_BLOCKS {
                state.ended = true;
                let data = format!(
                    r#"{{"reason":"more than {MAX_CLIENT_LAG_BLOCKS} blocks behind the tip","resume_from_height":{}}}"#,
                    state.next
                );
                return Some((Ok(Event::default().event("dropped").data(data)), state));
            }
            if state.next <= tip {
                let (node, height) = (state.node.clone(), state.next);
                let read =
                    tokio::task::spawn_blocking(move || node.ledger().store().block(height)).await;
                let block = match read {
                    Ok(Ok(Some(block))) => block,
                    Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
                        tracing::error!(
                            height,
                            "cannot read a committed block for an event stream"
                        );
                        return None;
                    }
                };
                let mut events = block_events(&block, &state.filter);
                if let Some(n) = state.skip_through.take() {
                    events.retain(|(ordinal, _)| *ordinal > n);
                }
                state
                    .pending
                    .extend(events.into_iter().map(|(_, event)| event));
                state.next += 1;
                continue;
            }
            if state.tips.changed().await.is_err() {
                return None;
            }
        }
    })
}

/// The keep-alive of event streams.
pub fn keep_alive() -> KeepAlive {
    KeepAlive::new().interval(KEEP_ALIVE)
}
