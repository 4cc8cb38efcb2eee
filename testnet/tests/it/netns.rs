//! Real links: every validator in its own network namespace, peering through the testnet
//! tool's relay (delay and jitter per host) with iptables loss and partitions, driven only
//! through the `cachet-testnet` binary (`start --netns`, `net`, `kill`, `restart`, `check`,
//! `stop`) and the nodes' APIs.
//!
//! The scenario, in phases: transactions final at every node; a partition into halves for
//! 60 s (no block becomes final anywhere, nothing forks) and finality again within seconds
//! of healing (silenced connections are found by ping and redialled); a split where a
//! quorum remains (it keeps finalizing, the cut-off node catches up after healing); a
//! validator killed with SIGKILL under load and restarted; and at the end the checker: one
//! chain everywhere, every transaction reported final in its block on every node.
//!
//! Four validators (25 ms +- 5 ms, 1 % loss per host) run by default; sixteen (50 ms +-
//! 10 ms, 1 % loss) run with `cargo test -p cachet-testnet --test it -- --ignored
//! sixteen`. Needs root, `ip` and `iptables`; `CACHET_SKIP_NETNS=1` skips these tests on a
//! machine without them, and says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cachet_api::{Client, TxStatus};
use cachet_testkit::process::cachetd_binary;
use cachet_testnet::{InitOptions, Layout, init};
use cachet_types::{ChainParams, Genesis, Hash, SignedTx, SigningKey, TxBody};

use crate::ONE_NETWORK;

/// Bound on every wait; a failure names what did not happen.
const WAIT: Duration = Duration::from_secs(120);

struct Spaced {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    layout: Layout,
    genesis: Genesis,
    cachetd: PathBuf,
    rt: tokio::runtime::Runtime,
    /// Transactions reported final: (id, height).
    finals: Vec<(Hash, u64)>,
    /// Each operator's issuer key and next nonce.
    signers: Vec<(SigningKey, u64)>,
    issues: usize,
}

fn tool() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cachet-testnet"))
}

fn skipped() -> bool {
    if std::env::var_os("CACHET_SKIP_NETNS").is_some() {
        eprintln!("CACHET_SKIP_NETNS is set: the namespace tests do not run");
        return true;
    }
    false
}

impl Spaced {
    fn start(validators: usize, api_port: u16, delay: u64, jitter: u64, loss: u32) -> Spaced {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let layout = init(
            &dir,
            &InitOptions {
                validators,
                observers: 0,
                api_port,
                p2p_port: api_port + 100,
                params: ChainParams::default(),
            },
        )
        .unwrap();
        let genesis = layout.read_genesis(&dir).unwrap();
        let passphrase = cachet_testnet::passphrase(&dir).unwrap();
        let signers = layout
            .issuer_keys
            .iter()
            .map(|file| {
                (
                    cachet_keystore::load(&dir.join(file), &passphrase).unwrap(),
                    0,
                )
            })
            .collect();
        let cachetd = cachetd_binary(Path::new(env!("CARGO_BIN_EXE_cachet-testnet")));
        let net = Spaced {
            _tmp: tmp,
            dir,
            layout,
            genesis,
            cachetd,
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            finals: Vec::new(),
            signers,
            issues: 0,
        };
        net.tool(&[
            "start",
            "--netns",
            "--delay-ms",
            &delay.to_string(),
            "--jitter-ms",
            &jitter.to_string(),
            "--loss-per-mille",
            &loss.to_string(),
        ]);
        net
    }

    /// Runs a `cachet-testnet` command on this testnet; it must succeed.
    fn tool(&self, args: &[&str]) -> String {
        let (command, rest) = args.split_first().unwrap();
        let mut run = tool();
        match *command {
            "net" => {
                run.args(["net", rest[0], "--dir"])
                    .arg(&self.dir)
                    .args(&rest[1..]);
            }
            _ => {
                run.arg(command).arg("--dir").arg(&self.dir).args(rest);
            }
        }
        if matches!(*command, "start" | "restart") {
            run.arg("--cachetd").arg(&self.cachetd);
        }
        let output = run.output().unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "cachet-testnet {args:?} failed: {}{}\n{}",
            text,
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        text
    }

    fn client(&self, node: usize) -> Client {
        Client::new(&self.layout.api_url(&self.dir, node).unwrap().unwrap()).unwrap()
    }

    fn nodes(&self) -> usize {
        self.layout.nodes.len()
    }

    fn logs(&self) -> String {
        (0..self.nodes())
            .map(|i| {
                let log =
                    std::fs::read_to_string(self.layout.data_dir(&self.dir, i).join("node.log"))
                        .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(15).collect();
                format!(
                    "--- node {i} ---\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn height(&self, node: usize) -> Option<u64> {
        self.rt
            .block_on(self.client(node).chain())
            .ok()
            .map(|info| info.height)
    }

    fn wait_until(&self, what: &str, mut done: impl FnMut(&Spaced) -> bool) -> Duration {
        let start = Instant::now();
        while !done(self) {
            assert!(
                start.elapsed() < WAIT,
                "{what}: not within {WAIT:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        start.elapsed()
    }

    /// Operator `k` signs a new issue of its own (one transaction, its next nonce).
    fn create(&mut self, k: usize) -> SignedTx {
        self.issues += 1;
        let operator = &self.genesis.operators[k];
        let id = format!("{}-2026-{:03}", operator.country.as_str(), self.issues);
        let record = cachet_testkit::issue_record(&id, operator.id.as_str(), 10);
        let (key, nonce) = &mut self.signers[k];
        *nonce += 1;
        SignedTx::sign(
            self.genesis.chain_id(),
            key,
            *nonce,
            TxBody::CreateIssue { record },
        )
    }

    fn submit(&self, node: usize, tx: &SignedTx) {
        if let Err(error) = self.rt.block_on(self.client(node).submit(tx)) {
            panic!("submit at node {node}: {error}\n{}", self.logs());
        }
    }

    fn final_at(&self, node: usize, id: &Hash) -> Option<u64> {
        match self.rt.block_on(self.client(node).tx(id)).ok()?.status {
            TxStatus::Final { height, .. } => Some(height),
            _ => None,
        }
    }

    /// Waits until every tx is final at `node`, and records where.
    fn wait_final(&mut self, node: usize, txs: &[SignedTx], what: &str) -> Duration {
        let took = self.wait_until(what, |net| {
            txs.iter().all(|tx| net.final_at(node, &tx.id()).is_some())
        });
        for tx in txs {
            let height = self.final_at(node, &tx.id()).unwrap();
            self.finals.push((tx.id(), height));
        }
        took
    }

    /// One new transaction per operator, each at node `at(k)`.
    fn round_of_work(&mut self, at: impl Fn(usize) -> usize) -> Vec<SignedTx> {
        let operators = self.genesis.operators.len();
        let txs: Vec<SignedTx> = (0..operators).map(|k| self.create(k)).collect();
        for (k, tx) in txs.iter().enumerate() {
            self.submit(at(k), tx);
        }
        txs
    }

    fn check(&self) -> String {
        let file = self.dir.join("finals.txt");
        let lines: String = self
            .finals
            .iter()
            .map(|(id, height)| format!("{id} {height}\n"))
            .collect();
        std::fs::write(&file, lines).unwrap();
        self.tool(&[
            "check",
            "--finals",
            file.to_str().unwrap(),
            "--timeout-secs",
            "120",
        ])
    }
}

impl Drop for Spaced {
    fn drop(&mut self) {
        // Kills the nodes and the relay and removes the namespaces, also after a failure.
        let _ = tool().arg("stop").arg("--dir").arg(&self.dir).output();
    }
}

/// The scenario on `validators` validators; `quorum_side` is the larger side of the split
/// that keeps a quorum.
fn scenario(mut net: Spaced, quorum_side: usize, partition: Duration) {
    let n = net.nodes();
    net.wait_until("every validator connected to every other", |net| {
        (0..n).all(|i| {
            net.rt
                .block_on(net.client(i).chain())
                .is_ok_and(|c| c.metrics.peers + 1 >= n)
        })
    });

    // Work final everywhere, submitted at different nodes.
    for round in 0..3 {
        let txs = net.round_of_work(|k| (k + round) % n);
        net.wait_final(round % n, &txs, "first transactions final");
    }

    // Halves for `partition`: no side has a quorum, so nothing becomes final anywhere.
    let half: Vec<String> = (0..n / 2).map(|i| i.to_string()).collect();
    let other: Vec<String> = (n / 2..n).map(|i| i.to_string()).collect();
    let sides = format!("{}/{}", half.join(","), other.join(","));
    net.tool(&["net", "partition", "--sides", &sides]);
    let stuck = net.round_of_work(|k| k % n);
    std::thread::sleep(Duration::from_secs(2));
    let before: Vec<Option<u64>> = (0..n).map(|i| net.height(i)).collect();
    std::thread::sleep(partition.saturating_sub(Duration::from_secs(2)));
    let after: Vec<Option<u64>> = (0..n).map(|i| net.height(i)).collect();
    assert_eq!(
        before,
        after,
        "a block became final without a quorum\n{}",
        net.logs()
    );
    for tx in &stuck {
        assert!((0..n).all(|i| net.final_at(i, &tx.id()).is_none()));
    }
    net.tool(&["net", "heal"]);
    let resumed = net.wait_final(0, &stuck, "finality after the partition healed");
    eprintln!(
        "after a {} s partition of halves, finality resumed {} ms after healing",
        partition.as_secs(),
        resumed.as_millis()
    );

    // A split that leaves a quorum: it keeps finalizing; the cut-off side catches up.
    let majority: Vec<String> = (0..quorum_side).map(|i| i.to_string()).collect();
    let minority: Vec<String> = (quorum_side..n).map(|i| i.to_string()).collect();
    let sides = format!("{}/{}", majority.join(","), minority.join(","));
    net.tool(&["net", "partition", "--sides", &sides]);
    let minority_height = net.height(n - 1);
    let txs = net.round_of_work(|k| k % quorum_side);
    net.wait_final(0, &txs, "finality on the side with a quorum");
    assert_eq!(
        net.height(n - 1),
        minority_height,
        "the side without a quorum finalized a block"
    );
    net.tool(&["net", "heal"]);
    let top = net.height(0).unwrap();
    net.wait_until("the cut-off side caught up", |net| {
        (0..n).all(|i| net.height(i).is_some_and(|h| h >= top))
    });

    // SIGKILL a validator under load; the others go on; restarted, it catches up.
    let victim = 1;
    let txs = net.round_of_work(|k| k % n);
    net.wait_final(0, &txs, "transactions before the kill");
    let more = net.round_of_work(|k| if k % n == victim { 0 } else { k % n });
    net.tool(&["kill", "--node", &victim.to_string()]);
    net.wait_final(0, &more, "finality without the killed validator");
    net.tool(&["restart", "--node", &victim.to_string()]);
    let top = net.height(0).unwrap();
    net.wait_until("the restarted validator caught up", |net| {
        net.height(victim).is_some_and(|h| h >= top)
    });
    let last = net.round_of_work(|k| k % n);
    net.wait_final(victim, &last, "finality with the restarted validator");

    let summary = net.check();
    assert!(summary.contains("one chain on"), "{summary}");
    eprintln!("{summary}");
}

#[test]
fn four_validators_in_namespaces_survive_partitions_loss_and_a_kill() {
    if skipped() {
        return;
    }
    let _turn = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let net = Spaced::start(4, 7810, 25, 5, 10);
    scenario(net, 3, Duration::from_secs(60));
}

#[test]
#[ignore = "16 validators in namespaces: a few minutes; run with --ignored sixteen"]
fn sixteen_validators_in_namespaces_survive_partitions_loss_and_kills() {
    if skipped() {
        return;
    }
    let _turn = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let net = Spaced::start(16, 7830, 50, 10, 10);
    scenario(net, 12, Duration::from_secs(60));
}

#[test]
fn a_namespaced_testnet_leaves_nothing_behind() {
    if skipped() {
        return;
    }
    let _turn = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let net = Spaced::start(2, 7870, 0, 0, 0);
    let plan = cachet_testnet::netns::NetPlan::read(&net.dir)
        .unwrap()
        .unwrap();
    let listed = || {
        String::from_utf8(
            Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    assert!(listed().contains(&plan.hub()));
    net.tool(&["stop"]);
    let left = listed();
    assert!(
        !left.contains(&format!("cn{}-", plan.tag)),
        "namespaces left: {left}"
    );
    // A partition of a testnet without namespaces is refused with a reason.
    let output = tool()
        .args(["net", "heal", "--dir"])
        .arg(&net.dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("namespaces"));
}
