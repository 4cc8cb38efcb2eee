//! The HTTP server around the API router: what one client may hold of the node.
//!
//! `axum::serve` enforces no timeout and no connection cap, so the node runs its own accept
//! loop on hyper's HTTP/1 connection builder:
//! - open connections are capped in total and per client address (past the cap a new
//!   connection is closed at once), leaving file handles for RocksDB and libp2p;
//! - a request's headers must arrive within the header timeout, which hyper also applies
//!   while a kept-alive connection waits for its next request (the idle timeout);
//! - a request's body must arrive whole within the body timeout, and a declared length over
//!   the limit is answered 413 at once;
//! - only then does the request count against the node-wide limit of requests in flight;
//!   long polls count against a pool of their own, so they never starve submissions or
//!   queries; past either limit the answer is 503 `busy` at once;
//! - submissions are rate-limited per client address (`governor`, GCRA), a batch counting
//!   each of its transactions;
//! - accept errors (out of file handles) are logged, and the loop backs off briefly.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::api::ApiError;

/// Longest pause of the accept loop after an accept error (e.g. out of file handles).
const ACCEPT_BACKOFF_MS: u64 = 100;

/// Most client addresses whose submission rate is tracked; past it, idle entries are
/// dropped.
pub const RATE_LIMITED_ADDRESSES_MAX: usize = 100_000;

/// The limits of the server, from the node's options.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one client address.
    pub max_connections_per_ip: usize,
    /// Time to send a request's headers, and most idle time between requests.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest body of a batch submission (`POST /v1/txs`).
    pub max_batch_body_bytes: usize,
    /// Requests in flight (bodies received), long polls aside.
    pub max_in_flight: usize,
    /// Long polls (status queries with `wait_ms > 0`) in flight.
    pub max_long_polls: usize,
    /// Submissions per second from one client address (also the burst).
    pub submissions_per_ip_per_s: u32,
}

/// The client address of a request, set by the server on every request.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// What the admission middleware shares.
pub struct Admission {
    limits: ServerLimits,
    in_flight: Arc<Semaphore>,
    long_polls: Arc<Semaphore>,
    submissions: DefaultKeyedRateLimiter<IpAddr>,
}

impl Admission {
    /// The admission state for these limits.
    pub fn new(limits: ServerLimits) -> Arc<Admission> {
        let rate = NonZeroU32::new(limits.submissions_per_ip_per_s).unwrap_or(NonZeroU32::MIN);
        Arc::new(Admission {
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            long_polls: Arc::new(Semaphore::new(limits.max_long_polls)),
            submissions: RateLimiter::keyed(Quota::per_second(rate)),
            limits,
        })
    }
}

impl Admission {
    /// Charges `count` submissions to a client address against its rate: 429 past it (or
    /// when `count` is over the burst itself, with the most it may send at once).
    pub fn charge(&self, client: Option<IpAddr>, count: u32) -> Result<(), ApiError> {
        let (Some(ip), Some(count)) = (client, NonZeroU32::new(count)) else {
            return Ok(());
        };
        if self.submissions.len() > RATE_LIMITED_ADDRESSES_MAX {
            self.submissions.retain_recent();
        }
        let rate = self.limits.submissions_per_ip_per_s;
        match self.submissions.check_key_n(&ip, count) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("more than {rate} submissions per second from {ip}; retry later"),
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "{count} submissions at once is more than this node allows ({rate} per second from one address); send smaller batches"
                ),
            )),
        }
    }
}

fn is_long_poll(request: &Request) -> bool {
    request.method() == Method::GET
        && request.uri().path().starts_with("/v1/tx/")
        && request.uri().query().is_some_and(|query| {
            query.split('&').any(|pair| {
                pair.strip_prefix("wait_ms=")
                    .is_some_and(|value| value.parse::<u64>().map_or(true, |ms| ms > 0))
            })
        })
}

/// Admission of one request: declared size, whole body within the timeout, submission rate,
/// then a permit of the in-flight limit (or of the long-poll pool) held while it is served.
pub async fn admit(
    State(admission): State<Arc<Admission>>,
    request: Request,
    next: Next,
) -> Response {
    let limits = &admission.limits;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let max_body = if request.uri().path() == "/v1/txs" {
        limits.max_batch_body_bytes
    } else {
        limits.max_body_bytes
    };
    if declared.is_some_and(|len| len > max_body as u64) {
        return too_large(max_body).into_response();
    }
    let client = request.extensions().get::<ClientAddr>().map(|c| c.0.ip());
    let (parts, body) = request.into_parts();
    let collected =
        tokio::time::timeout(limits.body_timeout, Limited::new(body, max_body).collect()).await;
    let bytes = match collected {
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    limits.body_timeout.as_millis()
                ),
            )
            .into_response();
        }
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(max_body).into_response();
        }
        Ok(Err(error)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("cannot read the request body: {error}"),
            )
            .into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    // A batch is charged by its handler, which knows how many transactions it holds.
    if request.method() == Method::POST
        && request.uri().path() == "/v1/tx"
        && let Err(error) = admission.charge(client, 1)
    {
        return error.into_response();
    }
    let (pool, what) = if is_long_poll(&request) {
        (&admission.long_polls, "long polls")
    } else {
        (&admission.in_flight, "requests")
    };
    let Ok(_permit) = pool.clone().try_acquire_owned() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("too many {what} in flight; retry later"),
        )
        .into_response();
    };
    next.run(request).await
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is over the limit of {limit} bytes"),
    )
}

/// Open connections, in all and per client address.
#[derive(Default)]
struct Connections {
    per_ip: HashMap<IpAddr, usize>,
}

/// One open connection's place in the count; released on drop.
struct ConnectionSlot {
    ip: IpAddr,
    connections: Arc<Mutex<Connections>>,
    total: watch::Sender<usize>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = connections.per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                connections.per_ip.remove(&self.ip);
            }
        }
        self.total.send_modify(|total| *total -= 1);
    }
}

/// Serves `app` on `listener` until `stop` turns true, then lets open connections finish
/// (at most `drain` long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) {
    let connections = Arc::new(Mutex::new(Connections::default()));
    let (total, mut total_watch) = watch::channel(0usize);
    let mut refused_logged = false;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept an API connection; backing off");
                tokio::time::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)).await;
                continue;
            }
        };
        let slot = {
            let mut open = connections.lock().unwrap_or_else(|p| p.into_inner());
            let from_ip = open.per_ip.get(&peer.ip()).copied().unwrap_or(0);
            if *total.borrow() >= limits.max_connections || from_ip >= limits.max_connections_per_ip
            {
                None
            } else {
                *open.per_ip.entry(peer.ip()).or_default() += 1;
                total.send_modify(|total| *total += 1);
                Some(ConnectionSlot {
                    ip: peer.ip(),
                    connections: connections.clone(),
                    total: total.clone(),
                })
            }
        };
        let Some(slot) = slot else {
            if !refused_logged {
                tracing::warn!(client = %peer, max = limits.max_connections, per_address = limits.max_connections_per_ip, "API connection limit reached; closing new connections");
                refused_logged = true;
            }
            drop(stream);
            continue;
        };
        refused_logged = false;
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let header_timeout = limits.header_timeout;
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = tower::util::MapRequest::new(app, move |mut request: Request<_>| {
                request.extensions_mut().insert(ClientAddr(peer));
                request
            });
            let service = TowerToHyperService::new(service);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(client = %peer, %error, "API connection ended");
                    }
                }
                _ = async { stop.wait_for(|stop| *stop).await.map(|_| ()) } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(total);
    let _ = tokio::time::timeout(drain, total_watch.wait_for(|open| *open == 0)).await;
}
