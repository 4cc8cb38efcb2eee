//! The real node process: crash safety under load, clean shutdown, and its edge against
//! hostile clients (`edge`), and what operators run it with: metrics, health, readiness
//! (`ops`).

mod edge;
mod ops;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachet_api::{Client, TxStatus};
use cachet_testkit::issue_record;
use cachet_testkit::process::{DEV_PASSPHRASE, DevNode};
use cachet_types::{Hash, IssueId, SignedTx, SigningKey, TxBody};

const ISSUE: &str = "DEV-2026-001";

fn operator_key(node: &DevNode) -> SigningKey {
    cachet_keystore::load(&node.data_dir().join("operator.key.json"), DEV_PASSPHRASE)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (bounded) until `id` is final; returns its height.
async fn wait_final(client: &Client, id: &Hash) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match client.tx_wait(id, 5_000).await.unwrap().status {
            TxStatus::Final { height, .. } => return height,
            TxStatus::Pending => {}
            other => panic!("tx {id} not final: {other:?}"),
        }
        assert!(Instant::now() < deadline, "tx {id} not final within 60 s");
    }
}

/// Walks the chain through the API: every block links to the one before, block 1 to the
/// genesis, and each hash is the hash of its header.
async fn check_hash_chain(client: &Client) -> u64 {
    let info = client.chain().await.unwrap();
    let mut previous = info.chain_id;
    for height in 1..=info.height {
        let block = client.block(height).await.unwrap();
        assert_eq!(
            block.header.prev_hash, previous,
            "block {height} does not link"
        );
        assert_eq!(block.header.hash(), block.hash, "block {height} hash");
        assert_eq!(block.certificate.block_hash, block.hash);
        previous = block.hash;
    }
    assert_eq!(previous, info.tip_hash);
    info.height
}

/// A dev node in a temporary directory, its operator key, and a runtime for the client.
struct Fixture {
    _dir: tempfile::TempDir,
    node: DevNode,
    key: SigningKey,
    rt: tokio::runtime::Runtime,
    client: Client,
    chain_id: Hash,
}

impl Fixture {
    fn start() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let node = DevNode::start(
            Path::new(env!("CARGO_BIN_EXE_cachetd")),
            &dir.path().join("node"),
        );
        Fixture::with_node(dir, node)
    }

    /// A fixture around a dev node already started in `dir`.
    fn with_node(dir: tempfile::TempDir, node: DevNode) -> Fixture {
        let key = operator_key(&node);
        let rt = runtime();
        let client = Client::new(node.api()).unwrap();
        let chain_id = rt.block_on(client.chain()).unwrap().chain_id;
        Fixture {
            _dir: dir,
            node,
            key,
            rt,
            client,
            chain_id,
        }
    }

    /// Creates the test issue (the operator's first transaction) and waits until final.
    fn create_issue(&self, print_run: u32) -> (Hash, u64) {
        let mut record = issue_record(ISSUE, "AT-POST", print_run);
        record.operator = cachet_types::OperatorId::parse("DEV-POST").unwrap();
        let tx = SignedTx::sign(self.chain_id, &self.key, 1, TxBody::CreateIssue { record });
        let height = self.rt.block_on(async {
            self.client.submit(&tx).await.unwrap();
            wait_final(&self.client, &tx.id()).await
        });
        (tx.id(), height)
    }

    fn reconnect(&mut self) {
        self.client = Client::new(self.node.api()).unwrap();
    }
}

#[test]
fn sigkill_under_load_loses_no_final_transaction() {
    let mut f = Fixture::start();
    f.create_issue(1_000_000);
    let (chain_id, key, client, rt) = (f.chain_id, f.key.clone(), f.client.clone(), &f.rt);

    // Stream single-serial mints; a poller records every transaction reported final.
    let reported: Arc<Mutex<BTreeMap<Hash, u64>>> = Arc::default();
    let submitted: Arc<Mutex<Vec<Hash>>> = Arc::default();
    let stream_error: Arc<Mutex<Option<String>>> = Arc::default();
    let streamer = {
        let (client, submitted, key) = (client.clone(), submitted.clone(), key.clone());
        let stream_error = stream_error.clone();
        rt.spawn(async move {
            for serial in 1u32..=100_000 {
                let tx = SignedTx::sign(
                    chain_id,
                    &key,
                    u64::from(serial) + 1,
                    TxBody::Mint {
                        issue: IssueId::parse(ISSUE).unwrap(),
                        first_serial: serial,
                        last_serial: serial,
                        owner: key.public_key().address(),
                        variant: None,
                        claim_keys: Vec::new(),
                    },
                );
                if let Err(error) = client.submit(&tx).await {
                    // Expected once the node is killed; before that it fails the test.
                    *stream_error.lock().unwrap() = Some(error.to_string());
                    return;
                }
                submitted.lock().unwrap().push(tx.id());
            }
        })
    };
    let poller = {
        let (client, submitted, reported) = (client.clone(), submitted.clone(), reported.clone());
        let stream_error = stream_error.clone();
        rt.spawn(async move {
            let mut next = 0;
            loop {
                let id = { submitted.lock().unwrap().get(next).copied() };
                let Some(id) = id else {
                    tokio::task::yield_now().await;
                    continue;
                };
                match client.tx_wait(&id, 2_000).await {
                    Ok(info) => match info.status {
                        TxStatus::Final { height, .. } => {
                            reported.lock().unwrap().insert(id, height);
                            next += 1;
                        }
                        TxStatus::Pending => {}
                        other => {
                            *stream_error.lock().unwrap() = Some(format!("tx {id}: {other:?}"));
                            return;
                        }
                    },
                    Err(_) => return, // the node is gone
                }
            }
        })
    };
    // Kill once a good number are final and more are still streaming in.
    let deadline = Instant::now() + Duration::from_secs(120);
    while reported.lock().unwrap().len() < 500 {
        if let Some(error) = stream_error.lock().unwrap().clone() {
            panic!("stream failed before the kill: {error}");
        }
        assert!(
            Instant::now() < deadline,
            "fewer than 500 txs final within 120 s:\n{}",
            f.node.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    f.node.kill9();
    rt.block_on(async {
        let _ = streamer.await;
        let _ = poller.await;
    });
    let reported = reported.lock().unwrap().clone();
    let in_flight = submitted.lock().unwrap().len() - reported.len();
    assert!(
        in_flight > 0,
        "the kill should land while transactions are in flight"
    );

    f.node.restart();
    f.reconnect();
    let (client, rt) = (&f.client, &f.rt);
    rt.block_on(async {
        for (id, height) in &reported {
            match client.tx(id).await.unwrap().status {
                TxStatus::Final { height: found, .. } => {
                    assert_eq!(found, *height, "tx {id} moved")
                }
                other => panic!("tx {id} was reported final at {height}, now {other:?}"),
            }
        }
        let tip = check_hash_chain(client).await;
        assert!(tip >= *reported.values().max().unwrap());
        // The node goes on: the next nonce continues after the last final one.
        let account = client.account(&key.public_key().address()).await.unwrap();
        let tx = SignedTx::sign(
            chain_id,
            &key,
            account.next_nonce,
            TxBody::CloseIssue {
                issue: IssueId::parse(ISSUE).unwrap(),
            },
        );
        client.submit(&tx).await.unwrap();
        wait_final(client, &tx.id()).await;
    });
}

#[test]
fn sigterm_stops_cleanly_and_restart_resumes() {
    let mut f = Fixture::start();
    let (tx_id, height) = f.create_issue(10);
    let before = f.rt.block_on(f.client.chain()).unwrap();
    let status = f.node.terminate(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}:\n{}", f.node.log());
    assert!(f.node.log().contains("stopped cleanly"));
    f.node.restart();
    f.reconnect();
    let after = f.rt.block_on(f.client.chain()).unwrap();
    assert_eq!(after.height, before.height);
    assert_eq!(after.state_root, before.state_root);
    assert_eq!(
        after.chain_id, f.chain_id,
        "restart must reuse the dev chain, not make a new one"
    );
    let status = f.rt.block_on(f.client.tx(&tx_id)).unwrap().status;
    assert!(
        matches!(status, TxStatus::Final { height: h, .. } if h == height),
        "{status:?}"
    );
}

/// An issue's stamps page through `GET /v1/issue/{id}/stamps`; the explorer is served from
/// the binary at `/explorer/` with its security headers, and not at all with
/// `--no-explorer`.
#[test]
fn the_explorer_and_an_issues_stamps_are_served() {
    let f = Fixture::start();
    f.create_issue(100);
    let mint = SignedTx::sign(
        f.chain_id,
        &f.key,
        2,
        TxBody::Mint {
            issue: IssueId::parse(ISSUE).unwrap(),
            first_serial: 1,
            last_serial: 30,
            owner: f.key.public_key().address(),
            variant: None,
            claim_keys: Vec::new(),
        },
    );
    let api = f.node.api().to_string();
    f.rt.block_on(async {
        f.client.submit(&mint).await.unwrap();
        wait_final(&f.client, &mint.id()).await;
        let issue = IssueId::parse(ISSUE).unwrap();
        let first = f.client.issue_stamps(&issue, None, 20).await.unwrap();
        let serials: Vec<u32> = first.stamps.iter().map(|s| s.stamp.serial).collect();
        assert_eq!(serials, (1..=20).collect::<Vec<_>>());
        assert_eq!(first.next, Some(20));
        let rest = f.client.issue_stamps(&issue, first.next, 20).await.unwrap();
        assert_eq!(rest.stamps.len(), 10);
        assert_eq!(rest.stamps[0].stamp.serial, 21);
        assert_eq!(rest.next, None);
        assert_eq!(rest.stamps[0].owner, Some(f.key.public_key().address()));
        let status = |path: String| async move { reqwest::get(path).await.unwrap().status() };
        assert_eq!(
            status(format!("{api}/v1/issue/XX-2026-999/stamps")).await,
            404
        );
        assert_eq!(
            status(format!("{api}/v1/issue/{ISSUE}/stamps?after=x")).await,
            400
        );
        assert_eq!(
            status(format!("{api}/v1/issue/{ISSUE}/stamps?limit=0")).await,
            400
        );

        // The explorer: the page, its assets, its headers.
        let redirect = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{api}/explorer"))
            .send()
            .await
            .unwrap();
        assert_eq!(redirect.status(), 308);
        assert_eq!(redirect.headers()["location"], "/explorer/");
        let page = reqwest::get(format!("{api}/explorer/")).await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let policy = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(policy.contains("script-src 'self'"), "{policy}");
        let html = page.text().await.unwrap();
        let script = html
            .split("src=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("index.html names its script")
            .to_string();
        let asset = reqwest::get(format!("{api}{script}")).await.unwrap();
        assert_eq!(asset.status(), 200, "{script}");
        assert!(
            asset.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        assert!(
            asset.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        assert_eq!(status(format!("{api}/explorer/no-such-file.js")).await, 404);
    });

    // Turned off: no explorer, the API as before.
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start_with(
        Path::new(env!("CARGO_BIN_EXE_cachetd")),
        &dir.path().join("node"),
        ["--dev", "--no-explorer"],
    );
    let api = node.api().to_string();
    f.rt.block_on(async {
        assert_eq!(
            reqwest::get(format!("{api}/explorer/"))
                .await
                .unwrap()
                .status(),
            404
        );
        assert_eq!(
            reqwest::get(format!("{api}/v1/chain"))
                .await
                .unwrap()
                .status(),
            200
        );
    });
}
