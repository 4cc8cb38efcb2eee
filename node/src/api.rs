//! The HTTP API server (axum): JSON over loopback by default. Shapes are in `cachet-api`.

use std::sync::Arc;
use std::time::Duration;

use axum::BoxError;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cachet_api::{
    AccountInfo, ApiErrorDetail, BlockInfo, ChainInfo, DEFAULT_PAGE_LIMIT, ErrorBody, HistoryEntry,
    HistoryPage, HoldingsPage, IssueInfo, MAX_PAGE_LIMIT, MembershipInfo, ProposalInfo, StampInfo,
    SubmitTx, TxInfo, TxStatus,
};
use cachet_state::{StateKey, StateValue};
use cachet_storage::StoreError;
use cachet_types::{Address, Hash, IssueId, StampId};
use serde::Deserialize;
use tower::ServiceBuilder;

use crate::mempool::AdmitError;
use crate::node::{Node, SubmitError};

/// Shared state of the handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The node.
    pub node: Arc<Node>,
    /// Longest a status query may wait.
    pub max_wait_ms: u64,
    /// Most requests in flight.
    pub max_concurrent: usize,
}

/// An error answer: status, code, message.
pub struct ApiError(StatusCode, String, String);

impl ApiError {
    fn bad_request(message: impl ToString) -> ApiError {
        ApiError(
            StatusCode::BAD_REQUEST,
            "bad_request".into(),
            message.to_string(),
        )
    }
    fn not_found(message: impl ToString) -> ApiError {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found".into(),
            message.to_string(),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        tracing::error!(%error, "storage error while serving a request");
        ApiError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal".into(),
            error.to_string(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ApiErrorDetail {
                code: self.1,
                message: self.2,
            },
        };
        (self.0, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The router with every route.
pub fn router(state: ApiState) -> Router {
    let max_tx_bytes = state.node.ledger().store().genesis().params.max_tx_bytes as usize;
    // Bounded work: past the concurrency limit, requests are shed at once (503 busy) rather
    // than queued without end; none runs longer than the longest allowed wait plus slack.
    let limits = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|error: BoxError| async move {
            let (status, code) = if error.is::<tower::timeout::error::Elapsed>() {
                (StatusCode::REQUEST_TIMEOUT, "timeout")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "busy")
            };
            ApiError(status, code.into(), format!("{error}; retry later"))
        }))
        .load_shed()
        .concurrency_limit(state.max_concurrent)
        .timeout(Duration::from_millis(state.max_wait_ms + 10_000));
    Router::new()
        .route("/v1/tx", post(submit_tx))
        .route("/v1/tx/{id}", get(tx_status))
        .route("/v1/chain", get(chain_info))
        .route("/v1/genesis", get(genesis))
        .route("/v1/block/{height}", get(block))
        .route("/v1/membership", get(membership))
        .route("/v1/membership/proposal/{id}", get(proposal))
        .route("/v1/issue/{id}", get(issue))
        .route("/v1/issue/{id}/supply", get(supply))
        .route("/v1/stamp/{id}", get(stamp))
        .route("/v1/stamp/{id}/history", get(history))
        .route("/v1/stamp/{id}/bundle", get(bundle))
        .route("/v1/account/{address}", get(account))
        .route("/v1/account/{address}/holdings", get(holdings))
        // Hex doubles the size; leave room for the JSON around it.
        .layer(DefaultBodyLimit::max(max_tx_bytes * 2 + 1024))
        .layer(limits)
        .with_state(state)
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| ApiError::bad_request(e))
}

async fn submit_tx(
    State(state): State<ApiState>,
    Json(body): Json<SubmitTx>,
) -> Result<(StatusCode, Json<TxInfo>), ApiError> {
    let bytes = hex::decode(&body.tx).map_err(|_| ApiError::bad_request("tx must be hex"))?;
    let node = state.node.clone();
    // Signature checks and a store read: keep them off the async workers.
    let result = tokio::task::spawn_blocking(move || node.submit(&bytes))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal".into(),
                e.to_string(),
            )
        })?;
    match result {
        Ok((tx_id, status)) => {
            let code = if status == TxStatus::Pending {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok((
                code,
                Json(TxInfo {
                    tx_id,
                    status,
                    tx: None,
                }),
            ))
        }
        Err(SubmitError::Rejected(reason)) => Err(ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            reason.code().into(),
            reason.to_string(),
        )),
        Err(SubmitError::Mempool(error @ AdmitError::Full(_))) => Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "mempool_full".into(),
            error.to_string(),
        )),
        Err(SubmitError::Mempool(error)) => Err(ApiError(
            StatusCode::CONFLICT,
            "nonce_in_use".into(),
            error.to_string(),
        )),
        Err(SubmitError::Store(error)) => Err(error.into()),
    }
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
}

async fn tx_status(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<WaitQuery>,
) -> ApiResult<TxInfo> {
    let id: Hash = parse(&id)?;
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(state.max_wait_ms));
    let deadline = tokio::time::Instant::now() + wait;
    let mut tips = state.node.tip_watch();
    let status = loop {
        let status = state.node.status(&id)?;
        // Unknown may mean "submitted at another node, not gossiped here yet": wait too.
        if status != TxStatus::Pending && status != TxStatus::Unknown {
            break status;
        }
        // Pending: wait for the next block (or the deadline), then look again.
        match tokio::time::timeout_at(deadline, tips.changed()).await {
            Ok(Ok(())) => continue,
            _ => break status,
        }
    };
    let tx = match &status {
        TxStatus::Final { height, index } => state
            .node
            .ledger()
            .store()
            .block(*height)?
            .and_then(|b| b.block.txs.get(*index as usize).cloned()),
        _ => None,
    };
    Ok(Json(TxInfo {
        tx_id: id,
        status,
        tx,
    }))
}

async fn chain_info(State(state): State<ApiState>) -> ApiResult<ChainInfo> {
    let store = state.node.ledger().store();
    let tip = store.tip()?;
    let genesis = store.genesis();
    let operators = store.operators_at(tip.height + 1)?;
    Ok(Json(ChainInfo {
        chain_id: store.chain_id(),
        chain_name: genesis.chain_name.clone(),
        height: tip.height,
        tip_hash: tip.block_hash,
        state_root: tip.state_root.hash(),
        time_ms: tip.time_ms,
        operators,
        params: genesis.params.clone(),
        metrics: state.node.metrics(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

async fn membership(State(state): State<ApiState>) -> ApiResult<MembershipInfo> {
    let store = state.node.ledger().store();
    let tip = store.tip()?;
    let record = store.membership()?;
    let next = tip.height + 1;
    Ok(Json(MembershipInfo {
        height: tip.height,
        operators: record.at(store.genesis(), next).1.to_vec(),
        scheduled: record.scheduled(next).cloned(),
        changes: record.changes,
    }))
}

async fn proposal(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<ProposalInfo> {
    let id: Hash = parse(&id)?;
    let proposal = state.node.ledger().store().proposal(&id)?;
    proposal
        .map(|proposal| Json(ProposalInfo { id, proposal }))
        .ok_or_else(|| ApiError::not_found(format!("unknown membership proposal {id}")))
}

async fn genesis(State(state): State<ApiState>) -> ApiResult<cachet_types::Genesis> {
    Ok(Json(state.node.ledger().store().genesis().clone()))
}

async fn block(State(state): State<ApiState>, Path(height): Path<String>) -> ApiResult<BlockInfo> {
    let height: u64 = parse(&height)?;
    let certified = state
        .node
        .ledger()
        .store()
        .block(height)?
        .ok_or_else(|| ApiError::not_found(format!("no block at height {height}")))?;
    Ok(Json(BlockInfo {
        hash: certified.block.header.hash(),
        tx_ids: certified.block.txs.iter().map(|tx| tx.id()).collect(),
        header: certified.block.header,
        certificate: certified.certificate,
    }))
}

async fn issue(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<IssueInfo> {
    let id: IssueId = parse(&id)?;
    match state
        .node
        .ledger()
        .store()
        .state(&StateKey::Issue(id.clone()))?
    {
        Some(StateValue::Issue(issue)) => Ok(Json(IssueInfo { issue })),
        _ => Err(ApiError::not_found(format!("unknown issue {id}"))),
    }
}

async fn supply(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<cachet_provenance::SupplyProof> {
    let id: IssueId = parse(&id)?;
    let proof = state.node.supply_proof(&id)?;
    proof
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown issue {id}")))
}

fn load_stamp(state: &ApiState, id: &StampId) -> Result<StampInfo, ApiError> {
    match state
        .node
        .ledger()
        .store()
        .state(&StateKey::Stamp(id.clone()))?
    {
        Some(StateValue::Stamp(stamp)) => Ok(StampInfo {
            stamp: id.clone(),
            owner: stamp.owner,
            status: stamp.status,
            last_event: stamp.last_event,
            event_count: stamp.event_count,
        }),
        _ => Err(ApiError::not_found(format!("unknown stamp {id}"))),
    }
}

async fn stamp(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<StampInfo> {
    let id: StampId = parse(&id)?;
    Ok(Json(load_stamp(&state, &id)?))
}

async fn bundle(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<cachet_provenance::ProvenanceBundle> {
    let id: StampId = parse(&id)?;
    let node = state.node.clone();
    let stamp = id.clone();
    // Reads every block the stamp appears in: off the async workers.
    let bundle = tokio::task::spawn_blocking(move || node.provenance(&stamp))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal".into(),
                e.to_string(),
            )
        })??;
    bundle
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown stamp {id}")))
}

#[derive(Deserialize)]
struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

fn page_limit(limit: Option<usize>) -> usize {
    limit.unwrap_or(DEFAULT_PAGE_LIMIT).clamp(1, MAX_PAGE_LIMIT)
}

async fn history(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<HistoryPage> {
    let id: StampId = parse(&id)?;
    let info = load_stamp(&state, &id)?;
    let after: Option<u32> = query.after.as_deref().map(parse).transpose()?;
    let limit = page_limit(query.limit);
    let events = state.node.ledger().store().history(&id, after, limit)?;
    let next = match events.last() {
        Some(last) if last.seq + 1 < info.event_count => Some(last.seq),
        _ => None,
    };
    Ok(Json(HistoryPage {
        stamp: id,
        events: events
            .into_iter()
            .map(|e| HistoryEntry {
                seq: e.seq,
                kind: e.kind,
                event_hash: e.event_hash,
                prev_event: e.prev_event,
                tx_id: e.tx_id,
                signer: e.signer.address(),
                height: e.height,
                time_ms: e.time_ms,
            })
            .collect(),
        next,
    }))
}

async fn account(
    State(state): State<ApiState>,
    Path(address): Path<String>,
) -> ApiResult<AccountInfo> {
    let address: Address = parse(&address)?;
    let key = *address.public_key();
    let nonce = state.node.final_nonce(&key)?;
    let next_nonce = state.node.next_nonce(&key)?;
    let store = state.node.ledger().store();
    let operator = store
        .operators_at(store.tip()?.height + 1)?
        .into_iter()
        .find(|op| op.issuer == address)
        .map(|op| op.id.to_string());
    Ok(Json(AccountInfo {
        address,
        public_key: key,
        nonce,
        next_nonce,
        operator,
    }))
}

async fn holdings(
    State(state): State<ApiState>,
    Path(address): Path<String>,
    Query(query): Query<PageQuery>,
) -> ApiResult<HoldingsPage> {
    let owner: Address = parse(&address)?;
    let after: Option<StampId> = query.after.as_deref().map(parse).transpose()?;
    let limit = page_limit(query.limit);
    // One extra tells whether another page exists.
    let mut stamps = state
        .node
        .ledger()
        .store()
        .holdings(&owner, after.as_ref(), limit + 1)?;
    let next = if stamps.len() > limit {
        stamps.truncate(limit);
        stamps.last().cloned()
    } else {
        None
    };
    Ok(Json(HoldingsPage {
        owner,
        stamps,
        next,
    }))
}
