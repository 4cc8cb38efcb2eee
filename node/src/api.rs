//! The HTTP API server (axum): JSON over loopback by default. Shapes are in `cachet-api`.

use std::sync::Arc;
use std::time::Duration;

use axum::BoxError;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cachet_api::{
    AccountInfo, ApiErrorDetail, BlockInfo, ChainInfo, DEFAULT_PAGE_LIMIT, ErrorBody, HistoryEntry,
    HistoryPage, HoldingsPage, IssueInfo, IssueStampsPage, MAX_PAGE_LIMIT, MAX_SUBMIT_BATCH,
    MembershipInfo, ProposalInfo, StampInfo, SubmitOutcome, SubmitRefusal, SubmitTx, SubmitTxs,
    SubmitTxsAnswer, TxInfo, TxStatus,
};
use cachet_state::{StateKey, StateValue};
use cachet_storage::StoreError;
use cachet_types::{Address, Hash, IssueId, StampId};
use serde::Deserialize;
use tower::ServiceBuilder;

use crate::node::Node;
use cachet_host::AdmitError;
use cachet_host::SubmitError;

/// Shared state of the handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The node.
    pub node: Arc<Node>,
    /// Longest a status query may wait.
    pub max_wait_ms: u64,
    /// The server's admission limits (a batch is charged its transactions here).
    pub admission: Arc<crate::server::Admission>,
    /// Whether `/metrics`, `/health` and `/ready` are served here (else on their own
    /// address, `--metrics-addr`).
    pub ops_routes: bool,
    /// Blocks a ready node may be behind its peers.
    pub ready_max_lag: u64,
    /// Event streams open (their permits).
    pub event_clients: Arc<tokio::sync::Semaphore>,
    /// Whether the web explorer is served at `/explorer`.
    pub explorer: bool,
    /// The queue of clients' submissions, checked together.
    pub submissions: crate::submit::Submissions,
}

/// An error answer: status, code, message; always the JSON of `specs/api.md`.
pub struct ApiError(StatusCode, String, String);

impl ApiError {
    /// An error answer with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl ToString) -> ApiError {
        ApiError(status, code.into(), message.to_string())
    }
    fn bad_request(message: impl ToString) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    fn not_found(message: impl ToString) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ),
            // Wrong types are a malformed request, not a ledger refusal: 422 is for those.
            other => ApiError::bad_request(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::bad_request(rejection.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        if let StoreError::Backfilling { .. } = error {
            return ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "backfilling".into(),
                error.to_string(),
            );
        }
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

/// The router with every route; `admission` applies the server's limits to every request,
/// unknown paths and wrong methods included.
pub fn router(state: ApiState) -> Router {
    let admission = state.admission.clone();
    // No request runs longer than the longest allowed wait plus slack.
    let timeout = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(|error: BoxError| async move {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!("{error}; retry later"),
            )
        }))
        .timeout(Duration::from_millis(state.max_wait_ms + 10_000));
    Router::new()
        .route("/v1/tx", post(submit_tx))
        .route("/v1/txs", post(submit_txs))
        .route("/v1/tx/{id}", get(tx_status))
        .route("/v1/chain", get(chain_info))
        .route("/v1/genesis", get(genesis))
        .route("/v1/block/{height}", get(block))
        .route("/v1/membership", get(membership))
        .route("/v1/membership/proposal/{id}", get(proposal))
        .route("/v1/issue/{id}", get(issue))
        .route("/v1/issue/{id}/supply", get(supply))
        .route("/v1/issue/{id}/stamps", get(issue_stamps))
        .route("/v1/stamp/{id}", get(stamp))
        .route("/v1/stamp/{id}/history", get(history))
        .route("/v1/stamp/{id}/bundle", get(bundle))
        .route("/v1/account/{address}", get(account))
        .route("/v1/account/{address}/holdings", get(holdings))
        .route("/v1/openapi.json", get(openapi_document))
        .route("/v1/events", get(events))
        .merge(if state.ops_routes {
            ops_routes()
        } else {
            Router::new()
        })
        .merge(if state.explorer {
            crate::explorer::routes()
        } else {
            Router::new()
        })
        // Inside the routes: each answer is marked with its route's pattern.
        .route_layer(axum::middleware::from_fn(mark_route))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(timeout)
        .layer(axum::middleware::from_fn_with_state(
            admission,
            crate::server::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.node.clone(),
            count_request,
        ))
        .with_state(state)
}

/// `/metrics`, `/health` and `/ready`, for the API's address or their own.
fn ops_routes() -> Router<ApiState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// The router of the operations address (`--metrics-addr`): `/metrics`, `/health` and
/// `/ready` alone, under the same admission limits.
pub fn ops_router(state: ApiState) -> Router {
    let admission = state.admission.clone();
    ops_routes()
        .route_layer(axum::middleware::from_fn(mark_route))
        .fallback(unknown_path)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            admission,
            crate::server::admit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.node.clone(),
            count_request,
        ))
        .with_state(state)
}

/// The pattern of the route that answered, carried out to [`count_request`].
#[derive(Clone)]
struct RoutePattern(String);

/// Inside the routes: marks the answer with its route's pattern.
async fn mark_route(
    route: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response
            .extensions_mut()
            .insert(RoutePattern(route.as_str().to_string()));
    }
    response
}

/// Outside everything: counts every answered request and its time under its route's
/// pattern, or `unrouted` for those refused before routing (413, 408, 429, 503) and unknown
/// paths.
async fn count_request(
    State(node): State<Arc<Node>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RoutePattern>()
        .map_or("unrouted", |r| r.0.as_str());
    node.metrics_registry().api_request(
        route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

fn join_error(error: tokio::task::JoinError) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal".into(),
        error.to_string(),
    )
}

fn unanswered(_: crate::submit::Unanswered) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal".into(),
        "the submission checker failed before answering: the transactions may or may not \
         have been admitted"
            .into(),
    )
}

async fn metrics(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let node = state.node.clone();
    let text = tokio::task::spawn_blocking(move || node.metrics_registry().render(&node))
        .await
        .map_err(join_error)?;
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn health(
    State(state): State<ApiState>,
) -> Result<(StatusCode, Json<crate::health::Health>), ApiError> {
    let node = state.node.clone();
    // A synced write: off the async workers.
    let health =
        tokio::task::spawn_blocking(move || crate::health::health(&node, crate::setup::now_ms()))
            .await
            .map_err(join_error)?;
    let code = if health.error.is_none() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(health)))
}

async fn ready(
    State(state): State<ApiState>,
) -> Result<(StatusCode, Json<crate::health::Readiness>), ApiError> {
    let readiness =
        crate::health::readiness(&state.node, crate::setup::mono_ms(), state.ready_max_lag)?;
    let code = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((code, Json(readiness)))
}

/// The OpenAPI 3.1 document of this API, generated from the handlers and their types.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Cachet node API",
        description = "The HTTP API of cachetd; see specs/api.md."
    ),
    paths(
        submit_tx,
        submit_txs,
        tx_status,
        chain_info,
        genesis,
        block,
        membership,
        proposal,
        issue,
        supply,
        issue_stamps,
        stamp,
        history,
        bundle,
        account,
        holdings
    ),
    components(schemas(
        ErrorBody,
        ApiErrorDetail,
        SubmitTx,
        TxInfo,
        TxStatus,
        SubmitTxs,
        SubmitTxsAnswer,
        SubmitOutcome,
        SubmitRefusal
    ))
)]
pub struct ApiDoc;

/// The document as served at `/v1/openapi.json` and kept as `specs/openapi.json`.
pub fn openapi_json() -> String {
    use utoipa::OpenApi;
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.to_pretty_json().unwrap_or_default()
}

async fn openapi_document() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        openapi_json(),
    )
        .into_response()
}

async fn unknown_path(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no such path: {}", uri.path()))
}

async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, ApiError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| ApiError::bad_request(e))
}

#[utoipa::path(post, path = "/v1/tx", request_body = SubmitTx, responses((status = 200, description = "already final", body = TxInfo), (status = 202, description = "admitted: pending", body = TxInfo), (status = 415, description = "not JSON", body = ErrorBody), (status = 422, description = "refused by a ledger rule", body = ErrorBody), (status = 409, description = "nonce in use", body = ErrorBody), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn submit_tx(
    State(state): State<ApiState>,
    body: Result<Json<SubmitTx>, JsonRejection>,
) -> Result<(StatusCode, Json<TxInfo>), ApiError> {
    let Json(body) = body?;
    let bytes = hex::decode(&body.tx).map_err(|_| ApiError::bad_request("tx must be hex"))?;
    // Checked with the other clients' submissions that queued meanwhile.
    let mut answers = state
        .submissions
        .submit(vec![bytes])
        .await
        .map_err(unanswered)?;
    let (tx_id, status) = answers
        .pop()
        .expect("one answer per transaction")
        .map_err(submit_error)?;
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

/// The error answer of a refused submission.
fn submit_error(error: SubmitError) -> ApiError {
    match error {
        SubmitError::Rejected(reason) => ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            reason.code().into(),
            reason.to_string(),
        ),
        SubmitError::Mempool(error @ AdmitError::Full(_)) => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "mempool_full".into(),
            error.to_string(),
        ),
        SubmitError::Mempool(error) => ApiError(
            StatusCode::CONFLICT,
            "nonce_in_use".into(),
            error.to_string(),
        ),
        SubmitError::Store(error) => error.into(),
    }
}

#[utoipa::path(post, path = "/v1/txs", request_body = SubmitTxs, responses((status = 200, description = "one outcome per transaction, in order", body = SubmitTxsAnswer), (status = 415, description = "not JSON", body = ErrorBody), (status = 400, description = "bad request (more than 1000 transactions)", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 500, description = "storage failure", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn submit_txs(
    State(state): State<ApiState>,
    client: Option<axum::Extension<crate::server::ClientAddr>>,
    body: Result<Json<SubmitTxs>, JsonRejection>,
) -> ApiResult<SubmitTxsAnswer> {
    let Json(body) = body?;
    if body.txs.len() > MAX_SUBMIT_BATCH {
        return Err(ApiError::bad_request(format!(
            "{} transactions in one batch; at most {MAX_SUBMIT_BATCH}",
            body.txs.len()
        )));
    }
    state
        .admission
        .charge(client.map(|c| c.0.0.ip()), body.txs.len() as u32)?;
    // Undecodable hex is answered in its place; the rest go to the chain together.
    let decoded: Vec<Option<Vec<u8>>> = body.txs.iter().map(|h| hex::decode(h).ok()).collect();
    let bytes: Vec<Vec<u8>> = decoded.iter().flatten().cloned().collect();
    // An empty batch takes no place in the queue.
    let answers = if bytes.is_empty() {
        Vec::new()
    } else {
        state.submissions.submit(bytes).await.map_err(unanswered)?
    };
    let mut answers = answers.into_iter();
    let mut results = Vec::with_capacity(decoded.len());
    for tx in &decoded {
        let answer = tx
            .as_ref()
            .map(|_| answers.next().expect("one answer per decoded transaction"));
        let outcome = match answer {
            None => refusal(None, ApiError::bad_request("tx must be hex")),
            Some(Ok((tx_id, status))) => SubmitOutcome::Admitted(Box::new(TxInfo {
                tx_id,
                status,
                tx: None,
            })),
            Some(Err(SubmitError::Store(error))) => return Err(error.into()),
            Some(Err(error)) => {
                let tx_id = tx
                    .as_deref()
                    .and_then(|b| cachet_types::SignedTx::from_bytes(b, b.len()).ok())
                    .map(|t| t.id());
                refusal(tx_id, submit_error(error))
            }
        };
        results.push(outcome);
    }
    Ok(Json(SubmitTxsAnswer { results }))
}

fn refusal(tx_id: Option<Hash>, error: ApiError) -> SubmitOutcome {
    SubmitOutcome::Refused(SubmitRefusal {
        tx_id,
        http_status: error.0.as_u16(),
        error: ApiErrorDetail {
            code: error.1,
            message: error.2,
        },
    })
}

#[derive(Deserialize)]
struct EventsQuery {
    stamp: Option<String>,
    issue: Option<String>,
    account: Option<String>,
    from_height: Option<u64>,
    after: Option<String>,
}

/// `GET /v1/events`: server-sent events of final blocks and transactions (see `events.rs`).
async fn events(
    State(state): State<ApiState>,
    headers: axum::http::HeaderMap,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let filter = crate::events::Filter {
        stamp: query.stamp.as_deref().map(parse).transpose()?,
        issue: query.issue.as_deref().map(parse).transpose()?,
        account: query.account.as_deref().map(parse).transpose()?,
    };
    // Last-Event-ID (a reconnecting browser or client) wins over ?after=.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(query.after);
    let resume: Option<crate::events::Resume> = resume.as_deref().map(parse).transpose()?;
    let from = match query.from_height {
        Some(height) => height,
        None => state.node.ledger().store().tip()?.height + 1,
    };
    // After a state sync, the blocks below the snapshot arrive with the backfill.
    let first = resume.map_or(from.max(1), |r| r.height);
    if let Some(base) = state.node.ledger().store().base()?
        && first < base
    {
        return Err(cachet_storage::StoreError::Backfilling { base }.into());
    }
    let Ok(permit) = state.event_clients.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} event streams are open, the most this node serves; retry later",
                crate::events::MAX_EVENT_CLIENTS
            ),
        ));
    };
    let stream = crate::events::stream(state.node.clone(), filter, from, resume, permit);
    Ok(axum::response::sse::Sse::new(stream)
        .keep_alive(crate::events::keep_alive())
        .into_response())
}

#[derive(Deserialize)]
struct WaitQuery {
    wait_ms: Option<u64>,
}

#[utoipa::path(get, path = "/v1/tx/{id}", params(("id" = String, Path, description = "transaction id, 64 hex digits"), ("wait_ms" = Option<u64>, Query, description = "wait up to this long for a final or refused status")), responses((status = 200, description = "the status", body = TxInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn tx_status(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> ApiResult<TxInfo> {
    let Query(query) = query?;
    let id: Hash = parse(&id)?;
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0).min(state.max_wait_ms));
    let deadline = tokio::time::Instant::now() + wait;
    // Subscribed before the first read: a change between the read and the wait wakes it.
    let mut changes = state.node.status_watch();
    let status = loop {
        let status = state.node.status(&id)?;
        // Unknown may mean "submitted at another node, not gossiped here yet": wait too.
        if status != TxStatus::Pending && status != TxStatus::Unknown {
            break status;
        }
        // Wait for the next status change of any transaction (a block, a refusal), then
        // look again; at the deadline, answer what holds then, not what held before.
        match tokio::time::timeout_at(deadline, changes.changed()).await {
            Ok(Ok(())) => continue,
            _ => break state.node.status(&id)?,
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

#[utoipa::path(get, path = "/v1/chain", responses((status = 200, description = "the chain", body = ChainInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/v1/membership", responses((status = 200, description = "the operator set", body = MembershipInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/v1/membership/proposal/{id}", params(("id" = String, Path, description = "proposal id")), responses((status = 200, description = "the proposal", body = ProposalInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/v1/genesis", responses((status = 200, description = "the genesis", body = Object), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn genesis(State(state): State<ApiState>) -> ApiResult<cachet_types::Genesis> {
    Ok(Json(state.node.ledger().store().genesis().clone()))
}

#[utoipa::path(get, path = "/v1/block/{height}", params(("height" = u64, Path, description = "block height, from 1")), responses((status = 200, description = "the block", body = BlockInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/v1/issue/{id}", params(("id" = String, Path, description = "issue id")), responses((status = 200, description = "the issue", body = IssueInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/v1/issue/{id}/supply", params(("id" = String, Path, description = "issue id")), responses((status = 200, description = "the supply proof", body = Object), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

/// A stamp's record as the API answers it.
fn stamp_info(stamp: StampId, record: cachet_state::StampState) -> StampInfo {
    StampInfo {
        stamp,
        owner: record.owner,
        status: record.status,
        last_event: record.last_event,
        event_count: record.event_count,
    }
}

fn load_stamp(state: &ApiState, id: &StampId) -> Result<StampInfo, ApiError> {
    match state
        .node
        .ledger()
        .store()
        .state(&StateKey::Stamp(id.clone()))?
    {
        Some(StateValue::Stamp(record)) => Ok(stamp_info(id.clone(), record)),
        _ => Err(ApiError::not_found(format!("unknown stamp {id}"))),
    }
}

#[utoipa::path(get, path = "/v1/stamp/{id}", params(("id" = String, Path, description = "stamp id ISSUE#SERIAL")), responses((status = 200, description = "the stamp", body = StampInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn stamp(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<StampInfo> {
    let id: StampId = parse(&id)?;
    Ok(Json(load_stamp(&state, &id)?))
}

#[utoipa::path(get, path = "/v1/stamp/{id}/bundle", params(("id" = String, Path, description = "stamp id")), responses((status = 200, description = "the provenance bundle", body = Object), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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
        .map_err(join_error)??;
    bundle
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("unknown stamp {id}")))
}

#[derive(Deserialize)]
struct PageQuery {
    after: Option<String>,
    limit: Option<usize>,
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE_LIMIT) {
        limit @ 1..=MAX_PAGE_LIMIT => Ok(limit),
        other => Err(ApiError::bad_request(format!(
            "limit {other} is out of range: from 1 to {MAX_PAGE_LIMIT}"
        ))),
    }
}

#[utoipa::path(get, path = "/v1/stamp/{id}/history", params(("id" = String, Path, description = "stamp id"), ("after" = Option<u32>, Query, description = "cursor"), ("limit" = Option<u32>, Query, description = "page size, 1 to 1000")), responses((status = 200, description = "a page of history", body = HistoryPage), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn history(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<HistoryPage> {
    let Query(query) = query?;
    let id: StampId = parse(&id)?;
    let info = load_stamp(&state, &id)?;
    let after: Option<u32> = query.after.as_deref().map(parse).transpose()?;
    let limit = page_limit(query.limit)?;
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

#[utoipa::path(get, path = "/v1/issue/{id}/stamps", params(("id" = String, Path, description = "issue id"), ("after" = Option<u32>, Query, description = "cursor: a serial"), ("limit" = Option<u32>, Query, description = "page size, 1 to 1000")), responses((status = 200, description = "a page of the issue's minted stamps", body = IssueStampsPage), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn issue_stamps(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<IssueStampsPage> {
    let Query(query) = query?;
    let id: IssueId = parse(&id)?;
    let after: Option<u32> = query.after.as_deref().map(parse).transpose()?;
    let limit = page_limit(query.limit)?;
    let store = state.node.ledger().store();
    if store.state(&StateKey::Issue(id.clone()))?.is_none() {
        return Err(ApiError::not_found(format!("unknown issue {id}")));
    }
    // One extra tells whether another page exists.
    let mut stamps = store.issue_stamps(&id, after, limit + 1)?;
    let next = if stamps.len() > limit {
        stamps.truncate(limit);
        stamps.last().map(|(stamp, _)| stamp.serial)
    } else {
        None
    };
    Ok(Json(IssueStampsPage {
        issue: id,
        stamps: stamps
            .into_iter()
            .map(|(stamp, record)| stamp_info(stamp, record))
            .collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/v1/account/{address}", params(("address" = String, Path, description = "address cachet1...")), responses((status = 200, description = "the account", body = AccountInfo), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
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

#[utoipa::path(get, path = "/v1/account/{address}/holdings", params(("address" = String, Path, description = "address"), ("after" = Option<String>, Query, description = "cursor: a stamp id"), ("limit" = Option<u32>, Query, description = "page size, 1 to 1000")), responses((status = 200, description = "a page of holdings", body = HoldingsPage), (status = 400, description = "bad request", body = ErrorBody), (status = 404, description = "not found", body = ErrorBody), (status = 405, description = "method not allowed", body = ErrorBody), (status = 408, description = "timeout", body = ErrorBody), (status = 413, description = "body too large", body = ErrorBody), (status = 429, description = "rate limited", body = ErrorBody), (status = 503, description = "busy", body = ErrorBody)))]
async fn holdings(
    State(state): State<ApiState>,
    Path(address): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> ApiResult<HoldingsPage> {
    let Query(query) = query?;
    let owner: Address = parse(&address)?;
    let after: Option<StampId> = query.after.as_deref().map(parse).transpose()?;
    let limit = page_limit(query.limit)?;
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

#[cfg(test)]
mod tests {
    /// `specs/openapi.json` is the document the handlers generate; regenerate it with
    /// `CACHET_UPDATE_VECTORS=1 cargo test -p cachet-node openapi`.
    #[test]
    fn the_openapi_document_in_specs_matches_the_handlers() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/openapi.json");
        let generated = super::openapi_json() + "\n";
        if std::env::var_os("CACHET_UPDATE_VECTORS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let kept = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            kept == generated,
            "specs/openapi.json differs from the handlers' document: regenerate it with CACHET_UPDATE_VECTORS=1 cargo test -p cachet-node openapi"
        );
        let document: serde_json::Value = serde_json::from_str(&generated).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        assert!(document["paths"]["/v1/tx/{id}"]["get"].is_object());
    }
}
