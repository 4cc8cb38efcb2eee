//! What an operator's monitoring sees: `/metrics` in the Prometheus text format on its own
//! address, `/health`, and `/ready` of an observer that is cut off and behind, then caught
//! up.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachet_testkit::process::NodeProcess;
use cachet_testkit::proxy::{Link, Target, multiaddr_socket};

use super::edge::{api_addr, mint, raw_text};
use super::{Fixture, wait_final};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

/// The address a node wrote to `<data-dir>/<file>`.
fn written_addr(data_dir: &Path, file: &str) -> SocketAddr {
    let text =
        std::fs::read_to_string(data_dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    text.trim()
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{file}: {e}: {text}"))
}

/// One sample's value by name and labels.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

async fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (status, text) = raw_text(addr, &get("/metrics")).await;
    assert_eq!(status, 200, "{text}");
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn metrics_on_their_own_address_move_under_load_and_health_writes_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_cachetd")),
        &dir.path().join("node"),
        ["--dev", "--metrics-addr", "127.0.0.1:0"],
    );
    let f = Fixture::with_node(dir, node);
    let ops = written_addr(f.node.data_dir(), "metrics.addr");
    let api = api_addr(&f.node);
    let before = f.rt.block_on(scrape(ops));
    let final_before =
        sample(&before, "cachet_txs_final_total", &[]).expect("cachet_txs_final_total");
    f.create_issue(100);
    f.rt.block_on(async {
        let txs: Vec<_> = (0..20).map(|i| mint(&f, 2 + i, 1 + i as u32)).collect();
        for tx in &txs {
            f.client.submit(tx).await.unwrap();
        }
        wait_final(&f.client, &txs[19].id()).await;
        // A refusal, counted by its reason.
        assert!(f.client.submit(&mint(&f, 50, 99)).await.is_err());
        let after = scrape(ops).await;
        let value = |name: &str, labels: &[(&str, &str)]| {
            sample(&after, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}"))
        };
        assert!(value("cachet_txs_final_total", &[]) >= final_before + 21.0);
        assert!(value("cachet_txs_admitted_total", &[]) >= 21.0);
        assert!(value("cachet_txs_rejected_total", &[("reason", "nonce_gap")]) >= 1.0);
        assert!(value("cachet_height", &[]) >= 2.0);
        assert!(value("cachet_blocks_committed_total", &[]) >= 2.0);
        assert!(value("cachet_block_finality_seconds_count", &[]) >= 2.0);
        assert!(
            value(
                "cachet_consensus_step_seconds_count",
                &[("step", "propose")]
            ) >= 1.0
        );
        assert!(
            value(
                "cachet_api_requests_total",
                &[("route", "/v1/tx"), ("method", "POST"), ("status", "202")]
            ) >= 21.0
        );
        assert!(value("cachet_api_request_seconds_count", &[("route", "/v1/tx")]) >= 21.0);
        // A body over the limit is refused before routing, and counted as such.
        let oversize = format!(
            "POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            64 << 20
        );
        let (status, _) = raw_text(api, oversize.as_bytes()).await;
        assert_eq!(status, 413);
        let refused = scrape(ops).await;
        assert!(
            sample(
                &refused,
                "cachet_api_requests_total",
                &[("route", "unrouted"), ("method", "POST"), ("status", "413")]
            )
            .is_some_and(|n| n >= 1.0),
            "the 413 is not counted"
        );
        assert!(
            value("cachet_store_memtable_bytes", &[]) + value("cachet_store_sst_bytes", &[]) > 0.0
        );
        assert_eq!(value("cachet_store_write_stopped", &[]), 0.0);
        assert!(value("process_resident_memory_bytes", &[]) > 1e6);
        assert!(value("process_open_fds", &[]) > 10.0);
        assert!(value("process_cpu_seconds_total", &[]) > 0.0);

        // Health writes the store; the dev validator is a quorum alone, so it is ready.
        let (status, health) = raw_text(ops, &get("/health")).await;
        assert_eq!(status, 200, "{health}");
        assert!(health.contains(r#""status":"ok""#), "{health}");
        let (status, ready) = raw_text(ops, &get("/ready")).await;
        assert_eq!(status, 200, "{ready}");
        // Moved off the API's address.
        let (status, _) = raw_text(api, &get("/metrics")).await;
        assert_eq!(status, 404);
    });
}

#[test]
fn an_observer_is_not_ready_while_cut_off_and_behind_and_is_once_caught_up() {
    let f = Fixture::start();
    f.create_issue(100);
    let dev_dir = f.node.data_dir().to_path_buf();
    let p2p = f.node.p2p_addrs();
    let first = p2p.first().expect("the dev node's p2p address").clone();
    let peer_id = first
        .split("/p2p/")
        .nth(1)
        .expect("the address names its peer id")
        .to_string();
    let target_file = dev_dir.join("p2p.addr");
    let target: Target = Arc::new(move || {
        let text = std::fs::read_to_string(&target_file).ok()?;
        multiaddr_socket(text.lines().next()?)
    });
    let link = Link::start(target);
    link.cut();
    let observer_dir = tempfile::tempdir().unwrap();
    let genesis = dev_dir.join("genesis.json");
    let peer = format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer_id}", link.addr().port());
    let observer = NodeProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_cachetd")),
        &observer_dir.path().join("observer"),
        ["--genesis", genesis.to_str().unwrap(), "--peer", &peer],
    );
    let observer_api = api_addr(&observer);
    f.rt.block_on(async {
        // Cut off: behind the dev chain (height >= 1), no validator reachable.
        let (status, ready) = raw_text(observer_api, &get("/ready")).await;
        assert_eq!(status, 503, "{ready}");
        let body: serde_json::Value = serde_json::from_str(&ready).unwrap();
        assert_eq!(body["ready"], false);
        assert_eq!(body["height"], 0, "{body}");
        assert_eq!(body["validators_reachable"], 0, "{body}");
        assert!(
            body["reasons"][0]
                .as_str()
                .unwrap()
                .contains("0 of 1 validators reachable"),
            "{body}"
        );
        // Healed: it connects, catches up and is ready at the dev node's height.
        link.heal();
        let deadline = Instant::now() + Duration::from_secs(60);
        let body = loop {
            let (status, ready) = raw_text(observer_api, &get("/ready")).await;
            let body: serde_json::Value = serde_json::from_str(&ready).unwrap();
            if status == 200 {
                break body;
            }
            assert!(
                Instant::now() < deadline,
                "the observer was not ready within 60 s: {body}\n{}",
                observer.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let dev_height = f.client.chain().await.unwrap().height;
        assert!(body["height"].as_u64().unwrap() >= 1, "{body}");
        assert!(
            body["height"].as_u64().unwrap() + 2 >= dev_height,
            "ready within the allowed lag: {body}, dev at {dev_height}"
        );
        assert_eq!(body["reasons"], serde_json::json!([]));
    });
}

/// Runs `cachetd` with `args` (and the key passphrase in the environment) to its end.
fn cachetd_command(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cachetd"))
        .args(args)
        .env("CACHET_KEY_PASSPHRASE", "an operator passphrase")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn init_creates_an_operators_keys_and_keys_show_prints_what_the_vote_needs() {
    let dir = tempfile::tempdir().unwrap();
    let node_dir = dir.path().join("it-post");
    let dir_arg = node_dir.to_str().unwrap();
    let out = cachetd_command(&["init", "--dir", dir_arg, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The printed keys are those sealed in the files, which the passphrase opens.
    for (file, field) in [
        ("validator.key.json", "validator_key"),
        ("p2p.key.json", "node_key"),
    ] {
        let key = cachet_keystore::load(&node_dir.join(file), "an operator passphrase").unwrap();
        assert_eq!(shown[field], key.public_key().to_string(), "{shown}");
    }
    let issuer =
        cachet_keystore::load(&node_dir.join("issuer.key.json"), "an operator passphrase").unwrap();
    assert_eq!(shown["issuer"], issuer.public_key().address().to_string());
    // The new validator has signed nothing, and its directory says so: it signs at once
    // (without a signer state it would rejoin quietly).
    let signer = std::fs::read(node_dir.join("signer.state")).expect("an empty signer state");
    let state: cachet_consensus::SignerState = cachet_types::codec::decode(&signer, 1024).unwrap();
    assert_eq!(state, cachet_consensus::SignerState::default());
    assert!(
        shown["peer_id"].as_str().unwrap().starts_with("12D3KooW"),
        "{shown}"
    );
    // Never over existing keys.
    let again = cachetd_command(&["init", "--dir", dir_arg]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
    // The text form ends with the membership command, keys filled in.
    let text = cachetd_command(&["keys", "show", "--data-dir", dir_arg]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(&format!(
            "--validator-key {}",
            shown["validator_key"].as_str().unwrap()
        )),
        "{text}"
    );
    // The dev node's directory: its keys are the genesis operator's.
    let f = super::Fixture::start();
    let out = cachetd_command(&[
        "keys",
        "show",
        "--json",
        "--data-dir",
        f.node.data_dir().to_str().unwrap(),
    ]);
    let dev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let genesis = f.rt.block_on(f.client.genesis()).unwrap();
    let operator = &genesis.operators[0];
    assert_eq!(dev["validator_key"], operator.validator_key.to_string());
    assert_eq!(dev["node_key"], operator.node_key.to_string());
    assert_eq!(dev["issuer"], operator.issuer.to_string());
    // A directory without keys says how to make them.
    let empty = cachetd_command(&["keys", "show", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("cachetd init"));
}

#[test]
fn a_backup_taken_under_load_restores_passes_the_audit_and_the_node_resumes_from_it() {
    let mut f = super::Fixture::start();
    f.create_issue(10_000);
    let dev_dir = f.node.data_dir().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let backup_dir = work.path().join("backup");
    let restored = work.path().join("restored");
    // Mints keep coming while the backup copies the store.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (client, stop) = (f.client.clone(), stop.clone());
        let txs: Vec<_> = (0..2_000u64)
            .map(|i| mint(&f, 2 + i, 1 + i as u32))
            .collect();
        f.rt.spawn(async move {
            let mut sent = 0usize;
            for tx in &txs {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                client.submit(tx).await.unwrap();
                sent += 1;
            }
            sent
        })
    };
    // Wait until some of the load is final, so the backup is taken mid-stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while f.rt.block_on(f.client.chain()).unwrap().height < 4 {
        assert!(Instant::now() < deadline, "the load made no blocks");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = cachetd_command(&[
        "backup",
        "--data-dir",
        dev_dir.to_str().unwrap(),
        "--to",
        backup_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent = f.rt.block_on(load).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup_dir.join("backup.json")).unwrap())
            .unwrap();
    let height = manifest["height"].as_u64().unwrap();
    assert!(height >= 4, "{manifest}");
    // Restore, then audit the restored copy against the genesis alone.
    let out = cachetd_command(&[
        "restore",
        "--from",
        backup_dir.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cachet =
        cachet_testkit::process::binary_beside(Path::new(env!("CARGO_BIN_EXE_cachetd")), "cachet");
    let audit = std::process::Command::new(cachet)
        .args(["audit", restored.to_str().unwrap(), "--genesis"])
        .arg(dev_dir.join("genesis.json"))
        .output()
        .unwrap();
    let audit_text = String::from_utf8_lossy(&audit.stdout).to_string()
        + &String::from_utf8_lossy(&audit.stderr);
    assert!(
        audit.status.success(),
        "audit of the restored copy: {audit_text}"
    );
    assert!(audit_text.contains(&format!("{height}")), "{audit_text}");
    // A restore never goes over a ledger.
    let again = cachetd_command(&[
        "restore",
        "--from",
        backup_dir.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    // The disk is lost: the node starts from the restored copy (with its keys, kept apart)
    // at the backup's height and goes on committing.
    f.node.terminate(Duration::from_secs(30));
    for key in ["validator.key.json", "operator.key.json", "p2p.key.json"] {
        std::fs::copy(dev_dir.join(key), restored.join(key)).unwrap();
    }
    f.node = NodeProcess::start(Path::new(env!("CARGO_BIN_EXE_cachetd")), &restored);
    f.reconnect();
    let info = f.rt.block_on(f.client.chain()).unwrap();
    assert_eq!(info.height, height, "resumed at the backup's height");
    let account =
        f.rt.block_on(f.client.account(&f.key.public_key().address()))
            .unwrap();
    assert!(
        account.next_nonce <= 2 + sent as u64,
        "the mints after the backup are gone"
    );
    let next = mint(&f, account.next_nonce, 9_999);
    f.rt.block_on(async {
        f.client.submit(&next).await.unwrap();
        let final_at = wait_final(&f.client, &next.id()).await;
        assert!(final_at > height);
    });
}

#[test]
fn a_config_file_sits_between_the_environment_and_the_defaults_and_runs_a_node() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("node.toml");
    std::fs::write(
        &file,
        "# an operator's node\nmax_wait_ms = 5000\napi_submit_rate = 77\nmempool_max_txs = 900\n\
         peer = [\"/ip4/10.0.0.2/tcp/7700\"]\ndev = true\nmetrics_addr = \"127.0.0.1:0\"\nlog_format = \"json\"\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    // The environment beats the file, a flag beats both; the rest is the default.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cachetd"))
        .args([
            "config",
            "show",
            "--config",
            file_arg,
            "--",
            "--max-wait-ms",
            "100",
        ])
        .env("CACHET_API_ADDR", "127.0.0.1:7999")
        .env("CACHET_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    for line in [
        "max_wait_ms = 100  # flag",
        "api_addr = \"127.0.0.1:7999\"  # environment",
        "log_format = \"text\"  # environment",
        "api_submit_rate = 77  # file",
        "peer = [\"/ip4/10.0.0.2/tcp/7700\"]  # file",
        "dev = true  # file",
        "api_body_timeout_ms = 10000  # default",
    ] {
        assert!(shown.contains(line), "no `{line}` in:\n{shown}");
    }
    // The example file holds every key, and is accepted as it is.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cachetd.example.toml");
    let example_text = std::fs::read_to_string(&example).unwrap();
    for key in shown.lines().filter_map(|l| {
        let l = l.trim_start_matches("# ");
        l.split_once(" = ")
            .or_else(|| l.split_once(" is not set"))
            .map(|(k, _)| k)
    }) {
        assert!(
            example_text.contains(&format!("{key} = ")),
            "cachetd.example.toml lacks {key}"
        );
    }
    let out = cachetd_command(&["config", "show", "--config", example.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown key and a bad value are refused with their line.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "max_wait_ms = 5\nmax_wiat_ms = 6\n").unwrap();
    let out = cachetd_command(&["config", "show", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        error.contains("line 2: unknown key `max_wiat_ms`"),
        "{error}"
    );
    std::fs::write(&bad, "api_addr = \"here\"\n").unwrap();
    let out = cachetd_command(&["--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("line 1: `api_addr`"), "{error}");
    // A node runs with it: a dev chain, metrics on their own address, JSON logs.
    let node = NodeProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_cachetd")),
        &dir.path().join("node"),
        ["--config", file_arg],
    );
    let ops = written_addr(node.data_dir(), "metrics.addr");
    let rt = super::runtime();
    let (status, _) = rt.block_on(raw_text(ops, &get("/health")));
    assert_eq!(status, 200);
    let log = node.log();
    let first = log
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON log line");
    let line: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(
        line["fields"].is_object() && line["level"].is_string(),
        "{line}"
    );
}

/// Server-sent events read from a stream: (id, event, data) each.
struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    async fn open(url: &str, last_event_id: Option<&str>) -> EventReader {
        let client = reqwest::Client::new();
        let mut request = client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        EventReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), waiting at most 30 s.
    async fn next(&mut self) -> (String, String, serde_json::Value) {
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.into();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        kind = v.into();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = v.into();
                    }
                }
                if kind.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{e}: {data}"));
                return (id, kind, data);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.response.chunk())
                .await
                .expect("an event within 30 s")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[test]
fn an_event_stream_carries_every_final_transaction_once_and_resumes_without_gaps() {
    let f = super::Fixture::start();
    let (create, _) = f.create_issue(100);
    let mints: Vec<_> = (0..40u64).map(|i| mint(&f, 2 + i, 1 + i as u32)).collect();
    let api = f.node.api().to_string();
    f.rt.block_on(async {
        for tx in &mints {
            f.client.submit(tx).await.unwrap();
        }
        wait_final(&f.client, &mints[39].id()).await;
        let mut expected: Vec<String> = std::iter::once(create)
            .chain(mints.iter().map(|m| m.id()))
            .map(|id| id.to_string())
            .collect();
        expected.sort();
        // From the first block: read part of it, drop the connection, resume.
        let url = format!("{api}/v1/events?from_height=1");
        let mut reader = EventReader::open(&url, None).await;
        let mut seen = Vec::new();
        let mut last_id = String::new();
        let mut blocks = 0;
        while seen.len() < 15 {
            let (id, kind, data) = reader.next().await;
            if kind == "block" {
                blocks += 1;
            } else {
                assert_eq!(kind, "tx");
                seen.push(data["tx_id"].as_str().unwrap().to_string());
            }
            last_id = id;
        }
        assert!(blocks >= 1);
        drop(reader);
        let mut reader = EventReader::open(&url, Some(&last_id)).await;
        while seen.len() < expected.len() {
            let (_, kind, data) = reader.next().await;
            if kind == "tx" {
                seen.push(data["tx_id"].as_str().unwrap().to_string());
            }
        }
        seen.sort();
        assert_eq!(seen, expected, "every final transaction exactly once");
        // New blocks arrive live on an open stream, filtered by stamp.
        let stamp = "DEV-2026-001%2350";
        let mut live = EventReader::open(&format!("{api}/v1/events?stamp={stamp}"), None).await;
        // One that does not touch #50 first: the filter leaves it out.
        f.client.submit(&mint(&f, 42, 45)).await.unwrap();
        let late = mint(&f, 43, 50);
        f.client.submit(&late).await.unwrap();
        let (_, kind, data) = live.next().await;
        assert_eq!(kind, "tx");
        assert_eq!(data["tx_id"], late.id().to_string(), "{data}");
        assert_eq!(data["serials"], serde_json::json!([50, 50]));
        // A bad filter is a 400 with the JSON error.
        let bad = reqwest::get(format!("{api}/v1/events?stamp=nonsense"))
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
    });
}

/// A node that joined by state sync and cannot backfill (no peer to ask): it serves the
/// current state, and answers `backfilling` (503) for what needs the older blocks: a
/// bundle, a supply proof, an event stream from below its snapshot; it shows the older
/// blocks' absence, not a wrong answer.
#[test]
fn a_state_synced_node_without_its_history_answers_backfilling_for_it() {
    use cachet_testkit::{TestChain, TestLedger, TxFactory, address, issue_id, key, stamp};
    use cachet_types::TxBody;
    let chain = TestChain::new(4);
    let mut source = TestLedger::new(&chain);
    let mut factory = TxFactory::new(chain.chain_id);
    let issuer = chain.issuer(0).clone();
    let create = TxBody::CreateIssue {
        record: cachet_testkit::issue_record("AT-2026-001", "AT-POST", 10),
    };
    let mint = TxBody::Mint {
        issue: issue_id("AT-2026-001"),
        first_serial: 1,
        last_serial: 10,
        owner: address("alice"),
        variant: None,
        claim_keys: Vec::new(),
    };
    for body in [create, mint] {
        let tx = factory.sign(&issuer, body);
        assert!(source.apply_block(&[tx])[0].is_ok());
    }
    let one = stamp("AT-2026-001", 1);
    let record = source.stamp(&one).unwrap();
    let transfer = factory.sign(
        &key("alice"),
        TxBody::Transfer {
            stamp: one.clone(),
            last_event: record.last_event,
            to: address("bob"),
        },
    );
    assert!(source.apply_block(&[transfer])[0].is_ok());

    // Its data directory: the tip's state imported into RocksDB, as a state sync leaves it.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("node");
    std::fs::create_dir_all(&data_dir).unwrap();
    {
        let from = source.ledger().store();
        let manifest = from.snapshot_manifest_split(2).unwrap();
        let block = from.block(manifest.height).unwrap().unwrap();
        let store =
            cachet_storage::Store::open_importing(&data_dir.join("db"), &chain.genesis).unwrap();
        store.begin_import(&block, &manifest).unwrap();
        for index in manifest.non_empty() {
            store
                .import_chunk(from.snapshot_chunk(manifest.depth, index).unwrap())
                .unwrap();
        }
        store.finish_import().unwrap();
    }
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string(&chain.genesis).unwrap()).unwrap();
    let node = NodeProcess::start_with(
        Path::new(env!("CARGO_BIN_EXE_cachetd")),
        &data_dir,
        ["--genesis", genesis.to_str().unwrap()],
    );
    let api = api_addr(&node);
    let rt = super::runtime();
    rt.block_on(async {
        let client = cachet_api::Client::new(node.api()).unwrap();
        // The current state is here.
        let record = client.stamp(&one).await.unwrap();
        assert_eq!(record.owner, Some(address("bob")));
        assert_eq!(client.chain().await.unwrap().height, 3);
        // The history is not, yet.
        let backfilling = |what: &str, (status, body): (u16, String)| {
            assert_eq!(status, 503, "{what}: {body}");
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"]["code"], "backfilling", "{what}: {body}");
        };
        let bundle = format!("/v1/stamp/{}/bundle", one.to_string().replace('#', "%23"));
        backfilling("bundle", raw_text(api, &get(&bundle)).await);
        backfilling(
            "supply",
            raw_text(api, &get("/v1/issue/AT-2026-001/supply")).await,
        );
        backfilling(
            "events from height 1",
            raw_text(api, &get("/v1/events?from_height=1")).await,
        );
    });
    assert!(node.log().contains("backfill"), "{}", node.log());
}
