//! The node's edge against hostile clients, through a real `cachetd --dev` process: idle and
//! slow connections, long polls, the JSON error contract, and start-up refusals.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cachet_api::TxStatus;
use cachet_testkit::process::NodeProcess;
use cachet_types::{Hash, IssueId, SignedTx, TxBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{Fixture, ISSUE, wait_final};

fn cachetd() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cachetd"))
}

/// Raises this process's open-file limit, so the test can hold thousands of connections.
fn raise_file_limit(needed: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= needed,
        "the hard open-file limit {hard} is below the {needed} this test needs"
    );
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(needed.max(limit.current.unwrap_or(0))),
            maximum: limit.maximum,
        },
    )
    .expect("raise the open-file limit");
}

/// A TCP connection to `api` from the loopback address `source` (127.0.0.0/8 is all
/// local), so hostile clients have addresses of their own.
async fn connect_from(source: [u8; 4], api: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((source, 0)))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(api))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

pub(super) fn api_addr(node: &NodeProcess) -> SocketAddr {
    node.api()
        .trim_start_matches("http://")
        .parse()
        .expect("the API address is host:port")
}

/// Reads until the peer closes; true if it closed within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

pub(super) fn mint(f: &Fixture, nonce: u64, serial: u32) -> SignedTx {
    SignedTx::sign(
        f.chain_id,
        &f.key,
        nonce,
        TxBody::Mint {
            issue: IssueId::parse(ISSUE).unwrap(),
            first_serial: serial,
            last_serial: serial,
            owner: f.key.public_key().address(),
            variant: None,
            claim_keys: Vec::new(),
        },
    )
}

#[test]
fn idle_and_slow_clients_do_not_shut_out_a_normal_client() {
    raise_file_limit(8192);
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start_with(
        cachetd(),
        &dir.path().join("node"),
        [
            "--dev",
            "--api-header-timeout-ms",
            "1000",
            "--api-body-timeout-ms",
            "2000",
        ],
    );
    let f = Fixture::with_node(dir, node);
    f.create_issue(1_000);
    let api = api_addr(&f.node);
    f.rt.block_on(async {
        // 2,000 idle connections from one address, 1,100 slow-body submissions from another,
        // and long polls from a third, all held open while the normal client works.
        // Connects are paced (at most 64 handshakes at once) so the node's accept queue never
        // overflows: a handshake the kernel dropped there looks open to the client while the
        // node never saw it.
        let handshakes = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
        let idle: Vec<_> = (0..2_000)
            .map(|_| {
                let handshakes = handshakes.clone();
                tokio::spawn(async move {
                    let _turn = handshakes.acquire().await.expect("open");
                    connect_from([127, 0, 0, 2], api).await
                })
            })
            .collect();
        let slow: Vec<_> = (0..1_100)
            .map(|_| {
                let handshakes = handshakes.clone();
                tokio::spawn(async move {
                    let turn = handshakes.acquire().await.expect("open");
                    let mut stream = connect_from([127, 0, 0, 3], api).await?;
                    drop(turn);
                    stream
                        .write_all(
                            b"POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
                        )
                        .await?;
                    // Trickle a byte now and then; the body never completes.
                    for _ in 0..20 {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        if stream.write_all(b" ").await.is_err() {
                            break;
                        }
                    }
                    Ok::<_, std::io::Error>(stream)
                })
            })
            .collect();
        let long_polls: Vec<_> = (0..64)
            .map(|i| {
                tokio::spawn(async move {
                    let mut stream = connect_from([127, 0, 0, 4], api).await?;
                    let request = format!(
                        "GET /v1/tx/{} ?wait_ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n",
                        Hash::tagged("poll", &[&[i as u8]])
                    )
                    .replace(" ?", "?");
                    stream.write_all(request.as_bytes()).await?;
                    Ok::<_, std::io::Error>(stream)
                })
            })
            .collect();

        // The normal client: submissions and queries, each answered.
        for serial in 1..=20u32 {
            let tx = mint(&f, u64::from(serial) + 1, serial);
            let info = f
                .client
                .submit(&tx)
                .await
                .unwrap_or_else(|e| panic!("submission {serial} refused under attack: {e}"));
            assert_ne!(info.status, TxStatus::Unknown);
            f.client
                .chain()
                .await
                .unwrap_or_else(|e| panic!("query refused under attack: {e}"));
            f.client
                .stamp(&cachet_types::StampId::new(IssueId::parse(ISSUE).unwrap(), 1))
                .await
                .ok();
        }
        let last = mint(&f, 21, 20).id();
        wait_final(&f.client, &last).await;

        // The node closes the idle connections it accepted (after the header timeout) and
        // refuses those over the per-address cap at once.
        let mut open_idle = Vec::new();
        for task in idle {
            if let Ok(Ok(stream)) = task.await {
                open_idle.push(stream);
            }
        }
        assert!(!open_idle.is_empty(), "no idle connection was accepted");
        let checks = open_idle.into_iter().map(|mut stream| {
            tokio::spawn(async move { closed_within(&mut stream, Duration::from_secs(10)).await })
        });
        let mut still_open = 0;
        for check in checks.collect::<Vec<_>>() {
            if !check.await.expect("check ran") {
                still_open += 1;
            }
        }
        assert_eq!(
            still_open, 0,
            "idle connections the node did not close within 10 s"
        );
        // Slow bodies end with the body timeout: 408, or closed over the cap.
        let mut slow_open = 0;
        let checks: Vec<_> = slow
            .into_iter()
            .map(|task| {
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(mut stream)) => {
                            closed_within(&mut stream, Duration::from_secs(10)).await
                        }
                        _ => true,
                    }
                })
            })
            .collect();
        for check in checks {
            if !check.await.expect("check ran") {
                slow_open += 1;
            }
        }
        assert_eq!(slow_open, 0, "slow-body connections outlived the body timeout");
        for task in long_polls {
            let _ = task.await;
        }
    });
    let log = f.node.log();
    assert!(
        log.contains("API connection limit reached"),
        "the refusals are logged:\n{log}"
    );
}

#[test]
fn a_long_poll_returns_rejected_for_a_transaction_refused_while_it_waits() {
    let f = Fixture::start();
    f.create_issue(10);
    let first = mint(&f, 2, 1);
    f.rt.block_on(async {
        f.client.submit(&first).await.unwrap();
        wait_final(&f.client, &first.id()).await;
    });
    // A transfer naming a stale last event: admitted (right nonce), refused when the block
    // is built. The long poll starts before it is submitted.
    let stamp = cachet_types::StampId::new(IssueId::parse(ISSUE).unwrap(), 1);
    let stale = SignedTx::sign(
        f.chain_id,
        &f.key,
        3,
        TxBody::Transfer {
            stamp,
            last_event: Hash::tagged("not the last event", &[]),
            to: cachet_testkit::address("bob"),
        },
    );
    let status = f.rt.block_on(async {
        let client = f.client.clone();
        let id = stale.id();
        let poll = tokio::spawn(async move { client.tx_wait(&id, 20_000).await });
        // The poll is registered once the node has answered a later request on another
        // connection; the order of arrival is all this needs.
        f.client.chain().await.unwrap();
        f.client.submit(&stale).await.unwrap();
        poll.await.unwrap().unwrap().status
    });
    assert!(
        matches!(&status, TxStatus::Rejected { reason, .. } if reason == "stale_event"),
        "the long poll answered {status:?}"
    );
}

/// Sends raw bytes on a fresh connection and returns the status and body of the answer.
async fn raw(api: SocketAddr, request: &[u8]) -> (u16, serde_json::Value) {
    let (status, body) = raw_text(api, request).await;
    let body = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("answer body is not JSON ({e}): {body:?}"));
    (status, body)
}

/// Sends `request` as it is; the answer's status and body (bounded wait).
pub(super) async fn raw_text(api: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(api).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
            if let Some(at) = find(&answer, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..at]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if answer.len() >= at + 4 + length {
                    break;
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer within 10 s to {:?}",
        String::from_utf8_lossy(request)
    );
    let text = String::from_utf8_lossy(&answer).to_string();
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let at = find(&answer, b"\r\n\r\n").unwrap();
    (
        status,
        String::from_utf8_lossy(&answer[at + 4..]).into_owned(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn every_error_answers_the_json_contract() {
    let f = Fixture::start();
    f.create_issue(10);
    let api = api_addr(&f.node);
    let post = |body: &str, content_type: Option<&str>| {
        let header = content_type
            .map(|t| format!("Content-Type: {t}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /v1/tx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{header}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let stale = SignedTx::sign(
        f.chain_id,
        &f.key,
        1,
        TxBody::CloseIssue {
            issue: IssueId::parse(ISSUE).unwrap(),
        },
    );
    let stale_body = format!("{{\"tx\":\"{}\"}}", hex::encode(stale.to_bytes()));
    let cases: Vec<(String, u16, &str)> = vec![
        (post("{not json", Some("application/json")), 400, "bad_request"),
        (post("{\"tx\": 5}", Some("application/json")), 400, "bad_request"),
        (post("{\"tx\":\"00\"}", None), 415, "unsupported_media_type"),
        (post("{\"tx\":\"zz\"}", Some("application/json")), 400, "bad_request"),
        (post(&stale_body, Some("application/json")), 422, "stale_nonce"),
        (
            "POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n{}"
                .into(),
            413,
            "too_large",
        ),
        (get("/v1/nothing/here"), 404, "not_found"),
        (
            "DELETE /v1/chain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
            405,
            "method_not_allowed",
        ),
        (get(&format!("/v1/tx/{}?wait_ms=soon", Hash::ZERO)), 400, "bad_request"),
        (get(&format!("/v1/tx/{}?wait_ms=-1", Hash::ZERO)), 400, "bad_request"),
        (get("/v1/tx/not-a-hash"), 400, "bad_request"),
        (
            get(&format!("/v1/account/{}/holdings?limit=x", cachet_testkit::address("a"))),
            400,
            "bad_request",
        ),
        (
            get(&format!("/v1/account/{}/holdings?limit=0", cachet_testkit::address("a"))),
            400,
            "bad_request",
        ),
        (get("/v1/stamp/DEV-2026-001%23999"), 404, "not_found"),
    ];
    f.rt.block_on(async {
        for (request, status, code) in cases {
            let (got, body) = raw(api, request.as_bytes()).await;
            let line = request.lines().next().unwrap_or_default().to_string();
            assert_eq!(got, status, "{line}: {body}");
            assert_eq!(body["error"]["code"], code, "{line}: {body}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{line}: {body}"
            );
        }
    });
}

/// Runs `cachetd` with `args` to its end (it must stop by itself within 30 s).
fn run_to_end(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(cachetd())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cachetd {args:?} did not stop within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.success(), stderr)
}

#[test]
fn start_up_refuses_bad_flags_a_busy_port_and_a_locked_data_dir() {
    let f = Fixture::start();
    let data_dir = f.node.data_dir().to_path_buf();
    let data = data_dir.to_str().unwrap();
    for (flag, value) in [
        ("--max-wait-ms", "18446744073709551615"),
        ("--api-max-concurrent", "0"),
        ("--api-max-connections", "0"),
        ("--mempool-max-txs", "0"),
        ("--api-submit-rate", "0"),
    ] {
        let (ok, stderr) = run_to_end(&["--dev", "--data-dir", "/nonexistent/x", flag, value]);
        assert!(!ok, "{flag} {value} was accepted");
        assert!(
            stderr.contains(flag) && !stderr.contains("panicked"),
            "{flag} {value}: {stderr}"
        );
    }
    // A second node on the running node's data directory stops before touching a file.
    let api_addr_file = data_dir.join("api.addr");
    let before = std::fs::read_to_string(&api_addr_file).unwrap();
    let (ok, stderr) = run_to_end(&["--dev", "--data-dir", data, "--api-addr", "127.0.0.1:0"]);
    assert!(!ok);
    assert!(stderr.contains("another cachetd is running"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&api_addr_file).unwrap(), before);
    // A second node on the running node's peer-to-peer port is refused.
    let p2p = f.node.p2p_addrs();
    let port_addr = p2p[0].split("/p2p/").next().unwrap().to_string();
    let other = tempfile::tempdir().unwrap();
    let other_dir = other.path().join("node");
    let (ok, stderr) = run_to_end(&[
        "--dev",
        "--data-dir",
        other_dir.to_str().unwrap(),
        "--api-addr",
        "127.0.0.1:0",
        "--p2p-listen",
        &port_addr,
    ]);
    assert!(!ok, "a second node started on {port_addr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    // Directories are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&data_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data directory mode {mode:o}");
}

#[test]
fn a_second_signature_encoding_of_a_pending_transaction_is_one_transaction() {
    let f = Fixture::start();
    f.create_issue(10);
    let tx = mint(&f, 2, 1);
    let mut again = tx.clone();
    again.signature = cachet_testkit::hostile::torsion_signature(&f.key, &tx.signing_bytes(), 3);
    assert_ne!(again.to_bytes(), tx.to_bytes());
    f.rt.block_on(async {
        let first = f.client.submit(&tx).await.unwrap();
        let second = f.client.submit(&again).await.unwrap();
        assert_eq!(first.tx_id, second.tx_id);
        let height = wait_final(&f.client, &tx.id()).await;
        let block = f.client.block(height).await.unwrap();
        assert_eq!(block.tx_ids.iter().filter(|id| **id == tx.id()).count(), 1);
        // The other encoding, sent again after finality, is the same final transaction.
        let late = f.client.submit(&again).await.unwrap();
        assert!(matches!(late.status, TxStatus::Final { .. }), "{late:?}");
    });
}

#[test]
fn a_batch_submission_answers_each_transaction_in_order_and_they_become_final() {
    let f = Fixture::start();
    f.create_issue(10);
    let (first, second) = (mint(&f, 2, 1), mint(&f, 3, 2));
    let mut forged = mint(&f, 4, 3);
    forged.signature = first.signature;
    let api = api_addr(&f.node);
    f.rt.block_on(async {
        let body = serde_json::json!({
            "txs": [hex::encode(first.to_bytes()), "not hex", hex::encode(second.to_bytes()),
                    hex::encode(forged.to_bytes()), hex::encode(b"garbage")]
        })
        .to_string();
        let request = format!(
            "POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, answer) = raw(api, request.as_bytes()).await;
        assert_eq!(status, 200, "{answer}");
        let results = answer["results"].as_array().expect("results");
        assert_eq!(results.len(), 5, "{answer}");
        assert_eq!(results[0]["status"], "pending", "{answer}");
        assert_eq!(results[0]["tx_id"], first.id().to_string());
        assert_eq!(results[1]["http_status"], 400, "{answer}");
        assert_eq!(results[1]["error"]["code"], "bad_request");
        assert_eq!(results[2]["tx_id"], second.id().to_string());
        assert_eq!(results[3]["http_status"], 422, "{answer}");
        assert_eq!(results[3]["error"]["code"], "bad_signature");
        assert_eq!(results[3]["tx_id"], forged.id().to_string());
        assert_eq!(results[4]["error"]["code"], "malformed", "{answer}");
        assert!(results[4].get("tx_id").is_none());
        wait_final(&f.client, &first.id()).await;
        wait_final(&f.client, &second.id()).await;
        // Through the client, again: final now, the same answers.
        let again = f
            .client
            .submit_batch(&[first.to_bytes(), second.to_bytes()])
            .await
            .unwrap();
        for outcome in again {
            assert!(
                matches!(&outcome, cachet_api::SubmitOutcome::Admitted(info) if matches!(info.status, TxStatus::Final { .. })),
                "{outcome:?}"
            );
        }
        // More than a batch holds is refused whole.
        let too_many = serde_json::json!({ "txs": vec!["00"; cachet_api::MAX_SUBMIT_BATCH + 1] })
            .to_string();
        let request = format!(
            "POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{too_many}",
            too_many.len()
        );
        let (status, answer) = raw(api, request.as_bytes()).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("at most"), "{answer}");
    });
}

#[test]
fn the_node_serves_the_openapi_document_kept_in_specs() {
    let f = Fixture::start();
    let api = api_addr(&f.node);
    let (status, served) = f.rt.block_on(raw(
        api,
        b"GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    assert_eq!(status, 200);
    let kept: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../specs/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(served, kept, "the served document is the one in specs/");
}

#[test]
fn submissions_are_rate_limited_per_address_and_long_polls_cannot_starve_queries() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start_with(
        cachetd(),
        &dir.path().join("node"),
        [
            "--dev",
            "--api-submit-rate",
            "2",
            "--api-max-long-polls",
            "1",
        ],
    );
    let f = Fixture::with_node(dir, node);
    let api = api_addr(&f.node);
    f.rt.block_on(async {
        // One long poll holds the whole long-poll pool.
        let hold = format!(
            "GET /v1/tx/{}?wait_ms=30000 HTTP/1.1\r\nHost: x\r\n\r\n",
            Hash::tagged("held", &[])
        );
        let mut held = TcpStream::connect(api).await.unwrap();
        held.write_all(hold.as_bytes()).await.unwrap();
        // Once the held poll is in flight a second long poll is refused at once, and plain
        // queries and submissions are not. A probe that got in first ends after its own
        // short wait; if the held poll was refused meanwhile (it answers at once), it is
        // sent again, and the next probe is refused.
        let second = format!(
            "GET /v1/tx/{}?wait_ms=2000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Hash::ZERO
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = raw(api, second.as_bytes()).await;
            if status == 503 {
                assert_eq!(body["error"]["code"], "busy", "{body}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the long-poll pool never filled: {body}"
            );
            let mut answer = [0u8; 1024];
            let refused = matches!(
                tokio::time::timeout(Duration::from_millis(1), held.read(&mut answer)).await,
                Ok(Ok(_)) | Ok(Err(_))
            );
            if refused {
                held = TcpStream::connect(api).await.unwrap();
                held.write_all(hold.as_bytes()).await.unwrap();
            }
        }
        f.client
            .chain()
            .await
            .expect("a query while the long-poll pool is full");
        // Submissions past the rate (2 per second, burst 2) from one address: 429.
        // The same transaction each time: the rate counts submissions, whatever the ledger
        // then says of them.
        let tx = SignedTx::sign(
            f.chain_id,
            &f.key,
            1,
            TxBody::CloseIssue {
                issue: IssueId::parse(ISSUE).unwrap(),
            },
        );
        // A batch larger than the burst can never pass: it says so, and costs nothing.
        let three = vec![tx.to_bytes(); 3];
        match f.client.submit_batch(&three).await {
            Err(cachet_api::ClientError::Api {
                status: 429,
                code,
                message,
            }) => {
                assert_eq!(code, "rate_limited");
                assert!(message.contains("smaller batches"), "{message}");
            }
            other => panic!("a batch over the burst was not refused: {other:?}"),
        }
        let mut answers = Vec::new();
        for _ in 0..6 {
            match f.client.submit(&tx).await {
                Err(cachet_api::ClientError::Api {
                    status: 429, code, ..
                }) => {
                    assert_eq!(code, "rate_limited");
                    return;
                }
                other => answers.push(format!("{other:?}")),
            }
        }
        panic!("six quick submissions were not rate-limited: {answers:?}");
    });
}
