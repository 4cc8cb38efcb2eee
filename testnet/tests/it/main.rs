//! The operator network with real processes on loopback: four validators and an observer,
//! each a `cachetd` process, connected through links the test can cut (see
//! `cachet_testkit::proxy`).
//!
//! One scenario, in phases: transactions submitted at different nodes become final on all
//! five; a validator killed with SIGKILL under load does not stop finality, and restarted it
//! catches up; a 2|2 partition stops finality without a fork, and healing resumes it; at the
//! end all five nodes hold the same blocks, height and state root, and every transaction
//! reported final is in every ledger.
//!
//! A second scenario (`membership.rs`) adds a fifth operator by vote and watches its node
//! propose and sign blocks from the agreed height; a third (`statesync.rs`) brings the
//! observer back with an empty ledger by state sync. The scenarios take turns (one network at a
//! time on a small machine).

mod membership;
mod netns;
mod statesync;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cachet_api::{Client, TxStatus};
use cachet_testkit::process::{NodeProcess, cachetd_binary};
use cachet_testkit::proxy::{Link, Target, multiaddr_socket};
use cachet_testnet::{InitOptions, Layout, init};
use cachet_types::{
    ChainParams, CurrencyCode, FaceValue, Genesis, Hash, IssueId, IssueRecord, SignedTx,
    SigningKey, TxBody,
};

/// One network at a time: the scenarios run in one test binary.
static ONE_NETWORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

const VALIDATORS: usize = 4;
const OBSERVER: usize = 4;
/// Bound on every wait; a failure names what did not happen.
const WAIT: Duration = Duration::from_secs(90);

struct Net {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    layout: Layout,
    genesis: Genesis,
    nodes: Vec<NodeProcess>,
    /// links[(from, to)]: how node `from` reaches validator `to`.
    links: Vec<((usize, usize), Link)>,
    rt: tokio::runtime::Runtime,
}

impl Net {
    fn start() -> Net {
        Net::start_with(None)
    }

    /// Four validators and a fifth node; with `fifth_key`, the fifth node runs with that
    /// validator key (not in the genesis), otherwise it observes.
    fn start_with(fifth_key: Option<&SigningKey>) -> Net {
        Net::start_with_args(fifth_key, &[])
    }

    /// Like [`Net::start_with`], every node also given `extra` arguments.
    fn start_with_args(fifth_key: Option<&SigningKey>, extra: &[&str]) -> Net {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let layout = init(
            &dir,
            &InitOptions {
                validators: VALIDATORS,
                observers: 1,
                api_port: 0,
                p2p_port: 0,
                params: ChainParams::default(),
            },
        )
        .unwrap();
        let genesis = layout.read_genesis(&dir).unwrap();
        let count = layout.nodes.len();
        let fifth_key_file = fifth_key.map(|key| {
            let passphrase = cachet_testnet::passphrase(&dir).unwrap();
            let file = cachet_keystore::seal(key, &passphrase, cachet_keystore::KdfParams::DEFAULT)
                .unwrap();
            let path = dir.join("fifth-validator.key.json");
            cachet_keystore::write(&path, &file).unwrap();
            path
        });
        let mut links = Vec::new();
        for from in 0..count {
            for to in 0..VALIDATORS {
                if from == to {
                    continue;
                }
                let addr_file = layout.data_dir(&dir, to).join("p2p.addr");
                let target: Target = Arc::new(move || {
                    let text = std::fs::read_to_string(&addr_file).ok()?;
                    multiaddr_socket(text.lines().next()?)
                });
                links.push(((from, to), Link::start(target)));
            }
        }
        let binary = cachetd_binary(Path::new(env!("CARGO_BIN_EXE_cachet-testnet")));
        let mut nodes = Vec::new();
        for index in 0..count {
            let mut args = layout.base_args(&dir, index);
            // Links are proxies that can be cut: nodes must not learn and dial each
            // other's real addresses (peer exchange), which would bypass a cut.
            args.extend([
                "--timeout-propose-ms".into(),
                "500".into(),
                "--no-peer-exchange".into(),
            ]);
            args.extend(extra.iter().map(|a| a.to_string()));
            if let (OBSERVER, Some(path)) = (index, &fifth_key_file) {
                args.extend([
                    "--validator-key".into(),
                    path.to_string_lossy().into_owned(),
                    "--key-passphrase-file".into(),
                    dir.join(cachet_testnet::PASSPHRASE_FILE)
                        .to_string_lossy()
                        .into_owned(),
                ]);
            }
            for ((from, _), link) in &links {
                if *from == index {
                    args.extend([
                        "--peer".into(),
                        format!("/ip4/127.0.0.1/tcp/{}", link.addr().port()),
                    ]);
                }
            }
            nodes.push(NodeProcess::start_with(
                &binary,
                &layout.data_dir(&dir, index),
                args,
            ));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Net {
            _dir: tmp,
            dir,
            layout,
            genesis,
            nodes,
            links,
            rt,
        }
    }

    fn client(&self, index: usize) -> Client {
        Client::new(self.nodes[index].api()).unwrap()
    }

    fn issuer(&self, operator: usize) -> SigningKey {
        let passphrase = cachet_testnet::passphrase(&self.dir).unwrap();
        cachet_keystore::load(
            &self.dir.join(&self.layout.issuer_keys[operator]),
            &passphrase,
        )
        .unwrap()
    }

    /// The tail of every node's log; the whole logs are copied to
    /// `$TMPDIR/cachet-network-test/` for a closer look.
    fn logs(&self) -> String {
        let keep = std::env::temp_dir().join("cachet-network-test");
        let _ = std::fs::create_dir_all(&keep);
        for (i, node) in self.nodes.iter().enumerate() {
            let _ = std::fs::write(keep.join(format!("node{i}.log")), node.log());
        }
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let log = n.log();
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                format!(
                    "--- node {i} (last 40 lines) ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn height(&self, index: usize) -> Option<u64> {
        self.rt
            .block_on(self.client(index).chain())
            .ok()
            .map(|info| info.height)
    }

    /// Waits until every node is connected to every validator but itself.
    fn wait_connected(&self) {
        let count = self.nodes.len();
        self.wait_until("every node connected to the validators", |net| {
            (0..count).all(|i| {
                net.rt
                    .block_on(net.client(i).chain())
                    .is_ok_and(|c| c.metrics.peers >= if i < VALIDATORS { 3 } else { 4 })
            })
        });
    }

    /// Waits until `done` holds, or fails with `what` and the nodes' logs.
    fn wait_until(&self, what: &str, mut done: impl FnMut(&Net) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {WAIT:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn submit(&self, node: usize, tx: &SignedTx) {
        let client = self.client(node);
        let result = self.rt.block_on(client.submit(tx));
        if let Err(error) = result {
            panic!("submit at node {node}: {error}\n{}", self.logs());
        }
    }

    fn is_final_at(&self, node: usize, id: &Hash) -> Option<u64> {
        match self.rt.block_on(self.client(node).tx(id)).ok()?.status {
            TxStatus::Final { height, .. } => Some(height),
            _ => None,
        }
    }

    /// Cuts or heals every link between `side` and the other nodes.
    fn partition(&self, side: &[usize], cut: bool) {
        for ((from, to), link) in &self.links {
            if side.contains(from) != side.contains(to) {
                if cut {
                    link.cut();
                } else {
                    link.heal();
                }
            }
        }
    }
}

/// Operator `k`'s transactions, signed in nonce order.
struct Operator {
    key: SigningKey,
    issue: IssueId,
    nonce: u64,
    next_serial: u32,
}

impl Operator {
    fn new(net: &Net, k: usize) -> Operator {
        Operator {
            key: net.issuer(k),
            issue: IssueId::parse(&format!(
                "{}-2026-NET",
                net.genesis.operators[k].country.as_str()
            ))
            .unwrap(),
            nonce: 0,
            next_serial: 1,
        }
    }

    fn sign(&mut self, net: &Net, body: TxBody) -> SignedTx {
        self.nonce += 1;
        SignedTx::sign(net.genesis.chain_id(), &self.key, self.nonce, body)
    }

    fn create(&mut self, net: &Net, k: usize) -> SignedTx {
        let operator = &net.genesis.operators[k];
        let record = IssueRecord {
            id: self.issue.clone(),
            operator: operator.id.clone(),
            title: "Network test".into(),
            country: operator.country.clone(),
            year: 2026,
            wns_number: None,
            face_value: FaceValue {
                amount_minor: 100,
                currency: CurrencyCode::parse("EUR").unwrap(),
            },
            design_sha256: Hash::sha256(b"network test"),
            design_uri: "https://stamps.example/net.png".into(),
            print_run: 100_000,
            variants: Vec::new(),
            co_issuers: Vec::new(),
        };
        self.sign(net, TxBody::CreateIssue { record })
    }

    fn mint(&mut self, net: &Net, owner: &str) -> SignedTx {
        let first = self.next_serial;
        self.next_serial += 2;
        let body = TxBody::Mint {
            issue: self.issue.clone(),
            first_serial: first,
            last_serial: first + 1,
            owner: cachet_testkit::address(owner),
            variant: None,
            claim_keys: Vec::new(),
        };
        self.sign(net, body)
    }
}

/// Where operator `k` submits: its own node, except operator 3, which uses the observer
/// (so its transactions keep flowing while validator 3 is down).
fn entry(k: usize) -> usize {
    if k == 3 { OBSERVER } else { k }
}

/// Validator 3 is killed mid-load and comes back without its signer state (it rejoins
/// quietly); then a 2|2 partition freezes finality until it heals.
#[test]
fn four_validators_and_an_observer_survive_a_kill_and_a_partition() {
    let _turn = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let mut net = Net::start();
    let count = net.nodes.len();
    net.wait_connected();

    for i in 0..count {
        let role = net.rt.block_on(net.client(i).chain()).unwrap().metrics.role;
        let expected = if i < VALIDATORS {
            format!("validator {i}")
        } else {
            "observer".into()
        };
        assert_eq!(role, expected, "node {i} reports the wrong role");
    }

    // Phase 1: each operator issues and mints, submitting at a different node.
    let mut operators: Vec<Operator> = (0..VALIDATORS).map(|k| Operator::new(&net, k)).collect();
    let mut submitted: Vec<Hash> = Vec::new();
    for (k, op) in operators.iter_mut().enumerate() {
        let create = op.create(&net, k);
        let mint = op.mint(&net, "collector-a");
        net.submit(entry(k), &create);
        net.submit(entry(k), &mint);
        submitted.extend([create.id(), mint.id()]);
    }
    net.wait_until("phase 1 transactions final on all five nodes", |net| {
        (0..count).all(|i| submitted.iter().all(|id| net.is_final_at(i, id).is_some()))
    });

    // Phase 2: load from every operator; SIGKILL validator 3 in the middle of it.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let clients: Vec<Client> = (0..count).map(|i| net.client(i)).collect();
        let txs: Vec<Vec<SignedTx>> = operators
            .iter_mut()
            .map(|op| {
                (0..400)
                    .map(|i| op.mint(&net, &format!("collector-{}", i % 7)))
                    .collect()
            })
            .collect();
        net.rt.spawn(async move {
            let mut sent = Vec::new();
            for round in 0..400 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                for (k, queue) in txs.iter().enumerate() {
                    let tx = &queue[round];
                    clients[entry(k)]
                        .submit(tx)
                        .await
                        .map_err(|e| format!("{e}"))?;
                    sent.push(tx.id());
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok::<Vec<Hash>, String>(sent)
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let before_kill = net.height(0).unwrap();
    net.nodes[3].kill9();
    net.wait_until("finality continues with validator 3 killed", |net| {
        net.height(0).is_some_and(|h| h >= before_kill + 5)
    });
    // Its signer state is lost with the kill (as with a disk): it must rejoin quietly,
    // following until a height is decided with it back, then sign again.
    std::fs::remove_file(net.layout.data_dir(&net.dir, 3).join("signer.state")).unwrap();
    net.nodes[3].restart();
    net.wait_until("restarted validator 3 catches up", |net| {
        match (net.height(3), net.height(0)) {
            (Some(h3), Some(h0)) => h3 + 1 >= h0 && h3 > before_kill + 5,
            _ => false,
        }
    });
    net.wait_until("validator 3 rejoins and validates again", |net| {
        let log = net.nodes[3].log();
        let quiet = log.find("following without signing until a height is decided here");
        let rejoined = log.find("rejoined: a height was decided here");
        let validating = log.rfind("validating from this height");
        matches!((quiet, rejoined, validating), (Some(q), Some(r), Some(v)) if q < r && r < v)
    });
    stop.store(true, Ordering::SeqCst);
    let sent = net
        .rt
        .block_on(load)
        .unwrap()
        .unwrap_or_else(|e| panic!("load failed: {e}\n{}", net.logs()));
    assert!(
        sent.len() > 40,
        "the load barely ran: {} transactions",
        sent.len()
    );
    submitted.extend(sent);
    net.wait_until(
        "every transaction of the load final on all five nodes",
        |net| (0..count).all(|i| submitted.iter().all(|id| net.is_final_at(i, id).is_some())),
    );

    // The load stopped early: continue from the nonces the chain has seen.
    for op in &mut operators {
        let account = net
            .rt
            .block_on(net.client(0).account(&op.key.public_key().address()))
            .unwrap();
        op.nonce = account.next_nonce - 1;
    }

    // Phase 3: a 2|2 partition (the observer with validators 0 and 1).
    net.partition(&[0, 1, OBSERVER], true);
    // A block certified just before the cut may still reach a node of its side; after
    // that, no new height can become final anywhere (neither side has a quorum).
    std::thread::sleep(Duration::from_secs(2));
    let highest = |net: &Net| (0..count).filter_map(|i| net.height(i)).max().unwrap();
    let frozen = highest(&net);
    let stuck = operators[0].mint(&net, "collector-stuck");
    let stuck_too = operators[2].mint(&net, "collector-stuck");
    net.submit(0, &stuck);
    net.submit(2, &stuck_too);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        highest(&net),
        frozen,
        "a block became final without a quorum during the 2|2 partition\n{}",
        net.logs()
    );
    assert!(net.is_final_at(0, &stuck.id()).is_none());

    // Healing resumes finality.
    net.partition(&[0, 1, OBSERVER], false);
    submitted.extend([stuck.id(), stuck_too.id()]);
    net.wait_until("finality resumes after healing", |net| {
        (0..count).all(|i| submitted.iter().all(|id| net.is_final_at(i, id).is_some()))
    });

    // The end: one ledger everywhere, block by block.
    net.wait_until("all five at one height and state root", |net| {
        let infos: Vec<_> = (0..count)
            .map(|i| {
                net.rt
                    .block_on(net.client(i).chain())
                    .ok()
                    .map(|c| (c.height, c.state_root))
            })
            .collect();
        infos.windows(2).all(|w| w[0].is_some() && w[0] == w[1])
    });
    let height = net.height(0).unwrap();
    for h in 1..=height {
        let hashes: Vec<Hash> = (0..count)
            .map(|i| net.rt.block_on(net.client(i).block(h)).unwrap().hash)
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at height {h}: {hashes:?}"
        );
    }
    for id in &submitted {
        let heights: Vec<Option<u64>> = (0..count).map(|i| net.is_final_at(i, id)).collect();
        assert!(
            heights.windows(2).all(|w| w[0] == w[1]) && heights[0].is_some(),
            "transaction {id} is not final at one height everywhere: {heights:?}"
        );
    }
    for node in &mut net.nodes {
        let status = node.terminate(Duration::from_secs(30));
        assert!(
            status.success(),
            "node did not stop cleanly: {status}\n{}",
            node.log()
        );
    }
}

/// A testnet of 200 operators (the UPU's 192 and more): `init` writes a valid genesis with
/// 200 distinct operators and a port layout without collisions, and a validator's node
/// starts on it and serves the chain with all 200 in its operator set. (Finality among
/// 200 validators is the simulator's part: `cachet-sim --validators 192 --world`.)
#[test]
fn a_genesis_of_200_operators_starts_a_chain() {
    let _one = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let options = InitOptions {
        validators: 200,
        observers: 2,
        api_port: 7600,
        p2p_port: 7700,
        params: ChainParams::default(),
    };
    // The default peer-to-peer range starts inside the API range of 202 nodes: refused
    // with the way out.
    let error = init(&dir, &options).unwrap_err().to_string();
    assert!(
        error.contains("overlap") && error.contains("--p2p-port 7802"),
        "{error}"
    );
    let layout = init(
        &dir,
        &InitOptions {
            p2p_port: 8700,
            ..options
        },
    )
    .unwrap();
    let genesis = layout.read_genesis(&dir).unwrap();
    assert_eq!(genesis.operators.len(), 200);
    let ids: std::collections::BTreeSet<_> = genesis.operators.iter().map(|o| &o.id).collect();
    assert_eq!(ids.len(), 200, "operator ids repeat");
    let mut ports: Vec<&str> = layout
        .nodes
        .iter()
        .flat_map(|n| [n.api.as_str(), n.p2p.as_str()])
        .collect();
    let all = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), all, "two nodes share a port");
    assert!(
        init(
            &tmp.path().join("too-many"),
            &InitOptions {
                validators: cachet_types::genesis::MAX_OPERATORS + 1,
                p2p_port: 0,
                api_port: 0,
                observers: 0,
                params: ChainParams::default(),
            }
        )
        .is_err()
    );

    // Validator 0's node (on free ports: the harness chooses them).
    let binary = cachetd_binary(Path::new(env!("CARGO_BIN_EXE_cachet-testnet")));
    let node = NodeProcess::start_with(
        &binary,
        &layout.data_dir(&dir, 0),
        layout.base_args(&dir, 0),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new(node.api()).unwrap();
    let chain = rt.block_on(client.chain()).unwrap();
    assert_eq!(chain.operators.len(), 200, "{chain:?}");
    assert_eq!(chain.chain_id, genesis.chain_id());
}
