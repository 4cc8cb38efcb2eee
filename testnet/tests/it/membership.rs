//! A fifth operator joins by vote: its node runs from the start with a validator key that is
//! not in the genesis, follows the chain, and proposes and signs blocks from the agreed
//! activation height on, while the four genesis validators accept its votes.

use cachet_testkit::process::binary_beside;
use cachet_types::{CountryCode, MembershipChange, OperatorId};

use super::*;

/// Submits `tx` at node 0 and waits until it is final there; returns its height.
fn final_height(net: &Net, tx: &SignedTx) -> u64 {
    net.submit(0, tx);
    let mut height = None;
    net.wait_until(&format!("{} {} final", tx.body.kind(), tx.id()), |net| {
        height = net.is_final_at(0, &tx.id());
        height.is_some()
    });
    height.unwrap()
}

#[test]
fn a_fifth_operator_joins_by_vote_and_validates_from_the_agreed_height() {
    let _turn = ONE_NETWORK.lock().unwrap_or_else(|e| e.into_inner());
    let fifth_validator = cachet_keystore::generate_key().unwrap();
    let fifth_issuer = cachet_keystore::generate_key().unwrap();
    let net = Net::start_with(Some(&fifth_validator));
    let count = net.nodes.len();
    net.wait_connected();
    let role = |net: &Net| net.rt.block_on(net.client(4).chain()).unwrap().metrics.role;
    assert_eq!(role(&net), "validator (not in the operator set)");
    // Its node identity is bound to no operator yet: the validators count it as an observer.
    let operator_peers = |net: &Net, i: usize| {
        net.rt
            .block_on(net.client(i).chain())
            .unwrap()
            .metrics
            .operator_peers
    };
    assert_eq!(
        operator_peers(&net, 0),
        3,
        "only the genesis operators' nodes"
    );
    // The identity cachetd created for it on first start is what the operators bind.
    let fifth_node_key =
        cachet_keystore::read(&net.layout.data_dir(&net.dir, 4).join("p2p.key.json"))
            .unwrap()
            .public_key;

    // Operator 0 proposes; operators 1 and 2 approve (3 of 4 is more than two thirds).
    let mut operators: Vec<Operator> = (0..VALIDATORS).map(|k| Operator::new(&net, k)).collect();
    let joining = cachet_types::Operator {
        id: OperatorId::parse("IT-POST").unwrap(),
        country: CountryCode::parse("IT").unwrap(),
        name: "Poste Italiane".into(),
        validator_key: fifth_validator.public_key(),
        node_key: fifth_node_key,
        issuer: fifth_issuer.public_key().address(),
    };
    let activation = net.height(0).unwrap() + 12;
    let propose = operators[0].sign(
        &net,
        TxBody::ProposeMembership {
            change: MembershipChange::AddOperator { operator: joining },
            activation_height: activation,
        },
    );
    final_height(&net, &propose);
    let approve = TxBody::ApproveMembership {
        proposal: propose.id(),
    };
    let first = operators[1].sign(&net, approve.clone());
    final_height(&net, &first);
    let info = net.rt.block_on(net.client(0).membership()).unwrap();
    assert!(info.changes.is_empty(), "decided with 2 of 4 approvals");
    let second = operators[2].sign(&net, approve);
    let decided = final_height(&net, &second);
    assert!(decided + 2 <= activation, "decided too late for the test");
    // Every node, the joining one too, knows the change and when it applies.
    net.wait_until("every node knows the decided change", |net| {
        (0..count).all(|i| {
            net.rt.block_on(net.client(i).membership()).is_ok_and(|m| {
                m.scheduled
                    .is_some_and(|s| s.activation_height == activation)
            })
        })
    });

    // Blocks come only with work: mint until the chain is past the activation height and
    // the new validator has proposed a block and signed certificates.
    let minter = &mut operators[0];
    let create = minter.create(&net, 0);
    final_height(&net, &create);
    let mut proposed_by_fifth = None;
    let mut signed_by_fifth = 0;
    let mut checked = 0;
    let deadline = Instant::now() + WAIT;
    while proposed_by_fifth.is_none() || signed_by_fifth < 3 {
        assert!(
            Instant::now() < deadline,
            "the fifth validator did not propose and sign after height {activation}: \
             proposed {proposed_by_fifth:?}, signed {signed_by_fifth}\n{}",
            net.logs()
        );
        let tx = minter.mint(&net, "collector-m");
        let height = final_height(&net, &tx);
        while checked < height {
            checked += 1;
            let block = net.rt.block_on(net.client(0).block(checked)).unwrap();
            let signers: Vec<u16> = block
                .certificate
                .signatures
                .iter()
                .map(|s| s.validator)
                .collect();
            if checked < activation {
                assert!(
                    signers.iter().all(|v| *v < 4) && block.header.proposer < 4,
                    "block {checked} before the activation height names a fifth validator"
                );
                continue;
            }
            if block.header.proposer == 4 {
                proposed_by_fifth = Some(checked);
            }
            if signers.contains(&4) {
                signed_by_fifth += 1;
            }
        }
    }
    assert_eq!(role(&net), "validator 4");
    // Its identity is bound now: every genesis validator counts it as an operator's node.
    net.wait_until(
        "the new operator's node counted as an operator's node",
        |net| (0..VALIDATORS).all(|i| operator_peers(net, i) == 4),
    );
    let info = net.rt.block_on(net.client(3).membership()).unwrap();
    assert_eq!(info.operators.len(), 5);
    assert_eq!(info.changes.len(), 1);
    assert_eq!(
        info.changes[0]
            .approvals
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>(),
        ["AT-POST", "DE-POST", "CH-POST"]
    );

    // Every node's queries follow the new set.
    let fifth = net
        .rt
        .block_on(net.client(2).account(&fifth_issuer.public_key().address()))
        .unwrap();
    assert_eq!(fifth.operator.as_deref(), Some("IT-POST"));
    let chain = net.rt.block_on(net.client(1).chain()).unwrap();
    assert_eq!(chain.operators, info.operators);

    // The new operator issues under its own id with the `cachet` CLI, which finds it among
    // the current operators.
    let cli = tempfile::tempdir().unwrap();
    let passphrase = "fifth-operator-passphrase";
    let key_file = cli.path().join("fifth.key.json");
    let sealed = cachet_keystore::seal(
        &fifth_issuer,
        passphrase,
        cachet_keystore::KdfParams::DEFAULT,
    )
    .unwrap();
    cachet_keystore::write(&key_file, &sealed).unwrap();
    let cachet = |args: &[&str]| {
        let out = std::process::Command::new(binary_beside(
            Path::new(env!("CARGO_BIN_EXE_cachet-testnet")),
            "cachet",
        ))
        .args(args)
        .env("CACHET_NODE", net.nodes[0].api())
        .env("CACHET_WALLET_DIR", cli.path().join("wallets"))
        .env("CACHET_PASSPHRASE", passphrase)
        .output()
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cachet {args:?} failed: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cachet(&["wallet", "import", "fifth", key_file.to_str().unwrap()]);
    let created: serde_json::Value = serde_json::from_str(&cachet(&[
        "issue",
        "create",
        "IT-2026-NET",
        "--title",
        "Dolomites",
        "--year",
        "2026",
        "--face-value",
        "120",
        "--currency",
        "EUR",
        "--design-sha256",
        "5f6c7c4a8b7f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aab",
        "--design-uri",
        "https://stamps.example/dolomites.png",
        "--print-run",
        "10",
        "-w",
        "fifth",
        "--json",
    ]))
    .unwrap();
    assert_eq!(created["outcome"]["status"], "final", "{created}");
    // Final at node 0, which the CLI talks to; node 3 may commit the block a moment later.
    let created_at = created["outcome"]["height"].as_u64().unwrap();
    net.wait_until("node 3 has the issue's block", |net| {
        net.height(3).is_some_and(|h| h >= created_at)
    });
    let issue = net
        .rt
        .block_on(net.client(3).issue(&IssueId::parse("IT-2026-NET").unwrap()))
        .unwrap();
    assert_eq!(issue.issue.record.operator.to_string(), "IT-POST");

    // All five agree on the chain.
    let tip = net.height(0).unwrap();
    net.wait_until("all five nodes at the same tip", |net| {
        (0..count).all(|i| net.height(i) == Some(tip))
    });
    let roots: Vec<Hash> = (0..count)
        .map(|i| net.rt.block_on(net.client(i).chain()).unwrap().state_root)
        .collect();
    assert!(
        roots.iter().all(|r| *r == roots[0]),
        "state roots differ: {roots:?}"
    );
}

#[test]
fn a_validator_under_an_identity_its_operator_did_not_bind_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let layout = cachet_testnet::init(
        &dir,
        &cachet_testnet::InitOptions {
            validators: 4,
            observers: 0,
            api_port: 0,
            p2p_port: 0,
            params: cachet_types::ChainParams::default(),
        },
    )
    .unwrap();
    // The operator's node identity is lost; cachetd would make a new one, bound to nobody.
    let data_dir = layout.data_dir(&dir, 0);
    std::fs::remove_file(data_dir.join("p2p.key.json")).unwrap();
    let binary = cachet_testkit::process::cachetd_binary(std::path::Path::new(env!(
        "CARGO_BIN_EXE_cachet-testnet"
    )));
    let mut child = std::process::Command::new(binary)
        .args(layout.node_args(&dir, 0))
        .arg("--data-dir")
        .arg(&data_dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cachetd under an unbound identity did not stop within {WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "it started: {stderr}");
    assert!(
        stderr.contains("is not the node key operator AT-POST bound"),
        "{stderr}"
    );
}
