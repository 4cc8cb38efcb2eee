//! Cachet's HTTP API: the JSON shapes of requests and responses, and a typed client.
//!
//! Routes (all under `/v1`, documented in `specs/api.md`):
//! `POST /tx`, `POST /txs`, `GET /tx/{id}`, `GET /chain`, `GET /genesis`, `GET /block/{height}`,
//! `GET /issue/{id}`, `GET /stamp/{id}`, `GET /stamp/{id}/history?after=&limit=`,
//! `GET /stamp/{id}/bundle`, `GET /issue/{id}/supply`,
//! `GET /account/{address}`, `GET /account/{address}/holdings?after=&limit=`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use cachet_state::{EventKind, IssueState, MembershipEpoch, ProposalState, StampStatus};
use cachet_types::{
    Address, BlockHeader, ChainParams, CommitCertificate, Genesis, Hash, IssueId, Operator,
    PublicKey, SignedTx, StampId,
};

/// Most items one page may hold; larger `limit`s are clamped.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// Page size when none is given.
pub const DEFAULT_PAGE_LIMIT: usize = 100;

/// Body of `POST /v1/tx`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitTx {
    /// Canonical transaction bytes, hex.
    pub tx: String,
}

/// Most transactions in one batch submission (`POST /v1/txs`).
pub const MAX_SUBMIT_BATCH: usize = 1000;

/// Body of `POST /v1/txs`: up to [`MAX_SUBMIT_BATCH`] transactions, admitted in this order
/// (a signer's consecutive nonces may travel together).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitTxs {
    /// Canonical transaction bytes, hex, each.
    pub txs: Vec<String>,
}

/// Answer to `POST /v1/txs`: one outcome per transaction, in the order sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitTxsAnswer {
    /// The outcomes.
    pub results: Vec<SubmitOutcome>,
}

/// One transaction's outcome in a batch: admitted (or already known), or refused with the
/// error `POST /v1/tx` would have answered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SubmitOutcome {
    /// Pending, or final already.
    Admitted(Box<TxInfo>),
    /// Refused.
    Refused(SubmitRefusal),
}

/// A refused transaction of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitRefusal {
    /// Its id, when its bytes decoded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub tx_id: Option<Hash>,
    /// The HTTP status `POST /v1/tx` would have answered (422 a ledger rule, 409 nonce in
    /// use, 503 mempool full: retry later, 400 not hex).
    pub http_status: u16,
    /// Why.
    pub error: ApiErrorDetail,
}

/// Where a transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum TxStatus {
    /// Waiting in the mempool.
    Pending,
    /// In a certified block.
    Final {
        /// Block height.
        height: u64,
        /// Position in the block.
        index: u32,
    },
    /// Refused, with its reason.
    Rejected {
        /// Stable reason code (`not_owner`, `over_print_run`, ...).
        reason: String,
        /// Human explanation.
        message: String,
    },
    /// Never seen, or forgotten.
    Unknown,
}

/// Answer to `POST /v1/tx` and `GET /v1/tx/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TxInfo {
    /// Transaction id.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub tx_id: Hash,
    /// Status.
    #[serde(flatten)]
    pub status: TxStatus,
    /// The transaction, when final.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Object>)]
    pub tx: Option<SignedTx>,
}

/// Error body of every failing request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiErrorDetail,
}

/// A failure's code and message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiErrorDetail {
    /// Stable code: a rejection reason, or `not_found`, `bad_request`, `busy`, `internal`.
    pub code: String,
    /// Explanation.
    pub message: String,
}

/// Node counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct NodeMetrics {
    /// Transactions waiting.
    pub mempool_size: usize,
    /// Transactions finalized since start.
    pub txs_final: u64,
    /// Transactions rejected since start.
    pub txs_rejected: u64,
    /// Blocks committed since start.
    pub blocks_committed: u64,
    /// Connected peers.
    pub peers: usize,
    /// Connected peers that are operators' nodes (their identity bound in the operator set);
    /// the others are observers.
    #[serde(default)]
    pub operator_peers: usize,
    /// Consensus round of the height being decided (the chain's height + 1).
    #[serde(default)]
    pub consensus_round: u32,
    /// `validator N` or `observer`.
    #[serde(default)]
    pub role: String,
}

/// Answer to `GET /v1/chain`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChainInfo {
    /// Chain id (genesis hash).
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub chain_id: Hash,
    /// Chain name.
    pub chain_name: String,
    /// Height of the last final block.
    pub height: u64,
    /// Hash of that block.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub tip_hash: Hash,
    /// State commitment after it.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub state_root: Hash,
    /// Its time.
    pub time_ms: u64,
    /// Operators.
    #[schema(value_type = Vec<Object>)]
    pub operators: Vec<Operator>,
    /// Chain limits.
    #[schema(value_type = Object)]
    pub params: ChainParams,
    /// Counters.
    pub metrics: NodeMetrics,
    /// Node software version.
    pub version: String,
}

/// Answer to `GET /v1/membership`: the operator set and every decided change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MembershipInfo {
    /// Height of the last final block.
    pub height: u64,
    /// The operators of the next block, in validator-index order.
    #[schema(value_type = Vec<Object>)]
    pub operators: Vec<Operator>,
    /// A decided change that applies at a later height, if any.
    #[schema(value_type = Option<Object>)]
    pub scheduled: Option<MembershipEpoch>,
    /// Every decided change, oldest first, each with the set it made.
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<MembershipEpoch>,
}

/// Answer to `GET /v1/membership/proposal/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalInfo {
    /// The proposal's id (its transaction's id).
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub id: Hash,
    /// The proposal and its approvals.
    #[schema(value_type = Object)]
    pub proposal: ProposalState,
}

/// Answer to `GET /v1/account/{address}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AccountInfo {
    /// Address.
    #[schema(value_type = String, pattern = "^cachet1[02-9ac-hj-np-z]+$")]
    pub address: Address,
    /// Public key.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub public_key: PublicKey,
    /// Nonce of the last final transaction.
    pub nonce: u64,
    /// Nonce to use for the next transaction (counts pending ones).
    pub next_nonce: u64,
    /// The current operator this account issues for, if any.
    pub operator: Option<String>,
}

/// Answer to `GET /v1/issue/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssueInfo {
    /// The issue.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub issue: IssueState,
}

/// Answer to `GET /v1/stamp/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StampInfo {
    /// Stamp id.
    #[schema(value_type = String, example = "AT-2026-001#42")]
    pub stamp: StampId,
    /// Owner; null while an unclaimed physical twin.
    #[schema(value_type = Option<String>)]
    pub owner: Option<Address>,
    /// Status.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub status: StampStatus,
    /// Head of the stamp's event chain.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub last_event: Hash,
    /// Number of events.
    pub event_count: u32,
}

/// One entry of a history page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// Sequence number, from 0.
    pub seq: u32,
    /// What happened.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub kind: EventKind,
    /// Event hash.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub event_hash: Hash,
    /// Previous event hash.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub prev_event: Hash,
    /// Transaction id.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub tx_id: Hash,
    /// Signer's address.
    #[schema(value_type = String, pattern = "^cachet1[02-9ac-hj-np-z]+$")]
    pub signer: Address,
    /// Block height.
    pub height: u64,
    /// Block time.
    pub time_ms: u64,
}

/// Answer to `GET /v1/stamp/{id}/history`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryPage {
    /// Stamp.
    #[schema(value_type = String, example = "AT-2026-001#42")]
    pub stamp: StampId,
    /// Events, oldest first.
    pub events: Vec<HistoryEntry>,
    /// Cursor for the next page (`after=`), if there may be more.
    pub next: Option<u32>,
}

/// Answer to `GET /v1/account/{address}/holdings`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HoldingsPage {
    /// Owner.
    #[schema(value_type = String, pattern = "^cachet1[02-9ac-hj-np-z]+$")]
    pub owner: Address,
    /// Stamps held, in stable order.
    #[schema(value_type = Vec<String>)]
    pub stamps: Vec<StampId>,
    /// Cursor for the next page (`after=`), if there may be more.
    #[schema(value_type = Option<String>)]
    pub next: Option<StampId>,
}

/// Answer to `GET /v1/issue/{id}/stamps`: a page of an issue's minted stamps.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssueStampsPage {
    /// The issue.
    #[schema(value_type = String)]
    pub issue: IssueId,
    /// Minted stamps with their current record, ascending by serial.
    pub stamps: Vec<StampInfo>,
    /// Cursor for the next page (`after=`, a serial), if there is more.
    pub next: Option<u32>,
}

/// Answer to `GET /v1/block/{height}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlockInfo {
    /// Header hash.
    #[schema(value_type = String, pattern = "^[0-9a-f]{64}$")]
    pub hash: Hash,
    /// Header.
    #[schema(value_type = Object)]
    pub header: BlockHeader,
    /// Transaction ids, in order.
    #[schema(value_type = Vec<String>)]
    pub tx_ids: Vec<Hash>,
    /// Commit certificate.
    #[schema(value_type = Object)]
    pub certificate: CommitCertificate,
}

/// What went wrong talking to a node.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The node could not be reached.
    #[error(
        "cannot reach the node at {url}: {reason} (is cachetd running? set --node or CACHET_NODE)"
    )]
    Unreachable {
        /// URL tried.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{message} [{code}]")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Message.
        message: String,
    },
    /// The answer was not what the API promises.
    #[error("unexpected answer from the node: {0}")]
    Decode(String),
    /// The node address is not an http(s) URL.
    #[error("invalid node URL {url:?}: {reason} (e.g. http://127.0.0.1:7600)")]
    InvalidUrl {
        /// The text given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What kind of refusal an API error is, from its status (`specs/api.md`, errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    /// 422: a ledger rule refused the transaction; the code is the rejection's.
    Rejected,
    /// 400, 405, 413, 415: the request itself is wrong.
    BadRequest,
    /// 404: no such object or path.
    NotFound,
    /// 409 `nonce_in_use`: another pending transaction holds the nonce.
    Conflict,
    /// 408, 429, 503: try again later (`timeout`, `rate_limited`, `busy`, `mempool_full`).
    RetryLater,
    /// 500 or any other status: the node failed.
    Internal,
}

impl ApiErrorKind {
    /// The kind of an error answer with this HTTP status.
    pub fn of_status(status: u16) -> ApiErrorKind {
        match status {
            422 => ApiErrorKind::Rejected,
            400 | 405 | 413 | 415 => ApiErrorKind::BadRequest,
            404 => ApiErrorKind::NotFound,
            409 => ApiErrorKind::Conflict,
            408 | 429 | 503 => ApiErrorKind::RetryLater,
            _ => ApiErrorKind::Internal,
        }
    }
}

impl ClientError {
    /// True if the node said the thing does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ClientError::Api { status: 404, .. })
    }

    /// The kind of refusal, for an error the node answered.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            ClientError::Api { status, .. } => Some(ApiErrorKind::of_status(*status)),
            _ => None,
        }
    }
}

/// A typed client for one node.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

/// Largest event of `GET /v1/events` a client buffers.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// How long an event stream may stay silent (the node sends a keep-alive every 15 s).
pub const EVENT_READ_TIMEOUT: Duration = Duration::from_secs(45);

/// One server-sent event of `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEvent {
    /// `HEIGHT-N`: where to resume after it.
    pub id: String,
    /// `block`, `tx` or `dropped`.
    pub event: String,
    /// Its JSON.
    pub data: String,
}

/// An open event stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// The next event; `None` when the node ended the stream.
    pub async fn next(&mut self) -> Result<Option<StreamEvent>, ClientError> {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let mut event = StreamEvent {
                    id: String::new(),
                    event: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim_start().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                    }
                }
                // Keep-alive comments carry no event.
                if event.event.is_empty() && event.data.is_empty() {
                    continue;
                }
                return Ok(Some(event));
            }
            if self.buffer.len() > MAX_EVENT_BYTES {
                return Err(ClientError::Decode(format!(
                    "an event over {MAX_EVENT_BYTES} bytes"
                )));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(None) => return Ok(None),
                Err(error) => return Err(ClientError::Decode(error.to_string())),
            }
        }
    }
}

/// Percent-encodes a path segment (stamp ids carry `#`).
pub fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7600`).
    pub fn new(base: &str) -> Result<Client, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidUrl {
            url: base.to_string(),
            reason: reason.to_string(),
        };
        let url = reqwest::Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(invalid("it names no host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("it must not carry a query or fragment"));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Unreachable {
                url: base.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        response: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<T, ClientError> {
        let response = response.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Decode(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
        } else {
            let body: ErrorBody = serde_json::from_slice(&bytes).map_err(|_| {
                ClientError::Decode(format!(
                    "HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ))
            })?;
            Err(ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            })
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.http.get(&url).send().await;
        self.answer(&url, response).await
    }

    /// Opens `GET /v1/events` with `query` (`stamp`, `issue`, `account`, `from_height`),
    /// resuming after `last_event_id` if given.
    pub async fn events(
        &self,
        query: &[(&str, String)],
        last_event_id: Option<&str>,
    ) -> Result<EventStream, ClientError> {
        let url = format!("{}/v1/events", self.base);
        let unreachable = |e: reqwest::Error| ClientError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        // No overall timeout: a stream lasts; silence past the keep-alives ends it.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(EVENT_READ_TIMEOUT)
            .build()
            .map_err(unreachable)?;
        let mut request = http.get(&url).query(query);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            // The error answer, as every other route gives it.
            return Err(self
                .answer::<serde_json::Value>(&url, Ok(response))
                .await
                .err()
                .unwrap_or_else(|| ClientError::Decode("an error without a body".into())));
        }
        Ok(EventStream {
            response,
            buffer: String::new(),
        })
    }

    /// Submits a signed transaction.
    pub async fn submit(&self, tx: &SignedTx) -> Result<TxInfo, ClientError> {
        self.submit_bytes(&tx.to_bytes()).await
    }

    /// Submits raw transaction bytes (the node checks them).
    pub async fn submit_bytes(&self, bytes: &[u8]) -> Result<TxInfo, ClientError> {
        let url = format!("{}/v1/tx", self.base);
        let body = SubmitTx {
            tx: hex::encode(bytes),
        };
        let response = self.http.post(&url).json(&body).send().await;
        self.answer(&url, response).await
    }

    /// Submits many raw transactions, [`MAX_SUBMIT_BATCH`] per request, in order; one
    /// outcome per transaction. A transport or whole-request error stops at that request
    /// (the outcomes of earlier requests are lost to the caller, not to the node: the same
    /// bytes again get the same answers).
    pub async fn submit_batch(&self, txs: &[Vec<u8>]) -> Result<Vec<SubmitOutcome>, ClientError> {
        let url = format!("{}/v1/txs", self.base);
        let mut outcomes = Vec::with_capacity(txs.len());
        for chunk in txs.chunks(MAX_SUBMIT_BATCH) {
            let body = SubmitTxs {
                txs: chunk.iter().map(hex::encode).collect(),
            };
            let response = self.http.post(&url).json(&body).send().await;
            let answer: SubmitTxsAnswer = self.answer(&url, response).await?;
            if answer.results.len() != chunk.len() {
                return Err(ClientError::Decode(format!(
                    "{} outcomes for {} transactions",
                    answer.results.len(),
                    chunk.len()
                )));
            }
            outcomes.extend(answer.results);
        }
        Ok(outcomes)
    }

    /// A transaction's status.
    pub async fn tx(&self, id: &Hash) -> Result<TxInfo, ClientError> {
        self.get(&format!("/v1/tx/{id}")).await
    }

    /// A transaction's status, letting the node hold the request up to `wait_ms` while the
    /// transaction is pending.
    pub async fn tx_wait(&self, id: &Hash, wait_ms: u64) -> Result<TxInfo, ClientError> {
        self.get(&format!("/v1/tx/{id}?wait_ms={wait_ms}")).await
    }

    /// Chain summary.
    pub async fn chain(&self) -> Result<ChainInfo, ClientError> {
        self.get("/v1/chain").await
    }

    /// The genesis.
    pub async fn genesis(&self) -> Result<Genesis, ClientError> {
        self.get("/v1/genesis").await
    }

    /// The operator set and its history.
    pub async fn membership(&self) -> Result<MembershipInfo, ClientError> {
        self.get("/v1/membership").await
    }

    /// A membership proposal.
    pub async fn proposal(&self, id: &Hash) -> Result<ProposalInfo, ClientError> {
        self.get(&format!("/v1/membership/proposal/{id}")).await
    }

    /// A block.
    pub async fn block(&self, height: u64) -> Result<BlockInfo, ClientError> {
        self.get(&format!("/v1/block/{height}")).await
    }

    /// An issue.
    pub async fn issue(&self, id: &IssueId) -> Result<IssueInfo, ClientError> {
        self.get(&format!("/v1/issue/{}", path_segment(id.as_str())))
            .await
    }

    /// A stamp.
    pub async fn stamp(&self, id: &StampId) -> Result<StampInfo, ClientError> {
        self.get(&format!("/v1/stamp/{}", path_segment(&id.to_string())))
            .await
    }

    /// The supply of an issue with its proof.
    pub async fn supply(
        &self,
        id: &IssueId,
    ) -> Result<cachet_provenance::SupplyProof, ClientError> {
        self.get(&format!("/v1/issue/{}/supply", path_segment(id.as_str())))
            .await
    }

    /// The provenance bundle of a stamp.
    pub async fn bundle(
        &self,
        id: &StampId,
    ) -> Result<cachet_provenance::ProvenanceBundle, ClientError> {
        self.get(&format!(
            "/v1/stamp/{}/bundle",
            path_segment(&id.to_string())
        ))
        .await
    }

    /// A page of a stamp's history.
    pub async fn history(
        &self,
        id: &StampId,
        after: Option<u32>,
        limit: usize,
    ) -> Result<HistoryPage, ClientError> {
        let mut path = format!(
            "/v1/stamp/{}/history?limit={limit}",
            path_segment(&id.to_string())
        );
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        self.get(&path).await
    }

    /// An account.
    pub async fn account(&self, address: &Address) -> Result<AccountInfo, ClientError> {
        self.get(&format!("/v1/account/{address}")).await
    }

    /// A page of an account's holdings.
    /// `GET /v1/issue/{id}/stamps`: a page of an issue's minted stamps, after a serial.
    pub async fn issue_stamps(
        &self,
        issue: &IssueId,
        after: Option<u32>,
        limit: usize,
    ) -> Result<IssueStampsPage, ClientError> {
        let mut path = format!(
            "/v1/issue/{}/stamps?limit={limit}",
            path_segment(issue.as_str())
        );
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        self.get(&path).await
    }

    pub async fn holdings(
        &self,
        address: &Address,
        after: Option<&StampId>,
        limit: usize,
    ) -> Result<HoldingsPage, ClientError> {
        let mut path = format!("/v1/account/{address}/holdings?limit={limit}");
        if let Some(after) = after {
            path.push_str(&format!("&after={}", path_segment(&after.to_string())));
        }
        self.get(&path).await
    }
}
