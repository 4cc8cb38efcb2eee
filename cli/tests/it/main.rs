//! End to end: a real `cachetd --dev` process driven by the real `cachet` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cachet_testkit::process::{DEV_PASSPHRASE, DevNode, cachetd_binary};
use serde_json::Value;

const ISSUE: &str = "DEV-2026-001";

struct Cli {
    api: String,
    wallets: PathBuf,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cachet"))
            .args(args)
            .env("CACHET_NODE", &self.api)
            .env("CACHET_WALLET_DIR", &self.wallets)
            .env("CACHET_PASSPHRASE", DEV_PASSPHRASE)
            .output()
            .unwrap_or_else(|e| panic!("cannot run cachet: {e}"))
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cachet {args:?} failed: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a command with --json that must succeed; returns the parsed output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("cachet {args:?}: {e}: {text}"))
    }

    /// Runs a command that must fail with the named rejection, as one clear line.
    fn refused(&self, args: &[&str], reason: &str) {
        let out = self.command(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "cachet {args:?} should have failed");
        assert!(
            stderr.contains(&format!("rejected: {reason}:")),
            "cachet {args:?}: expected {reason}, got: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "one line of error: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

impl Cli {
    /// The address of wallet `name`.
    fn address(&self, name: &str) -> String {
        self.json(&["wallet", "address", name])["address"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A dev node in a temporary directory and the CLI pointed at it, with the node's operator
/// key imported as wallet "operator" and a new wallet for each of `names`.
fn dev_cli(names: &[&str]) -> (tempfile::TempDir, DevNode, Cli) {
    let dir = tempfile::tempdir().unwrap();
    let node = DevNode::start(
        &cachetd_binary(Path::new(env!("CARGO_BIN_EXE_cachet"))),
        &dir.path().join("node"),
    );
    let cli = Cli {
        api: node.api().to_string(),
        wallets: dir.path().join("wallets"),
    };
    let operator_key = node.data_dir().join("operator.key.json");
    cli.ok(&[
        "wallet",
        "import",
        "operator",
        operator_key.to_str().unwrap(),
    ]);
    for name in names {
        cli.ok(&["wallet", "new", name]);
    }
    (dir, node, cli)
}

fn stamp(serial: u32) -> String {
    format!("{ISSUE}#{serial}")
}

fn final_height(outcome: &Value) -> u64 {
    assert_eq!(outcome["outcome"]["status"], "final", "{outcome}");
    outcome["outcome"]["height"].as_u64().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn flip_signature_byte(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut bytes = hex::decode(text.trim()).unwrap();
    // Inside the signature, before the last field (the empty cosignature list's 8-byte length).
    let last = bytes.len() - 8 - 5;
    bytes[last] ^= 0x01;
    std::fs::write(path, hex::encode(bytes)).unwrap();
}

#[test]
fn operator_and_collectors_walkthrough_with_every_rejection() {
    let (dir, node, cli) = dev_cli(&["alice", "bob", "mallory"]);
    let address = |name: &str| cli.address(name);
    let (operator, alice, bob) = (address("operator"), address("alice"), address("bob"));

    create_dev_issue(&cli, "100");
    let minted = final_height(&cli.json(&[
        "mint",
        ISSUE,
        "--serials",
        "1-100",
        "--to",
        "alice",
        "-w",
        "operator",
    ]));
    let moved = final_height(&cli.json(&["transfer", &stamp(42), "--to", "bob", "-w", "alice"]));
    final_height(&cli.json(&["redeem", &stamp(7), "-w", "operator"]));
    final_height(&cli.json(&[
        "freeze",
        &stamp(8),
        "--reason",
        "stolen",
        "--case",
        "POL-2026-118",
        "-w",
        "operator",
    ]));

    // History of #42: mint then transfer, with heights and signers.
    let history = cli.json(&["history", &stamp(42)]);
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{history}");
    assert_eq!(events[0]["kind"], "minted");
    assert_eq!(events[0]["height"].as_u64(), Some(minted));
    assert_eq!(events[0]["signer"], operator.as_str());
    assert_eq!(events[0]["owner"], alice.as_str());
    assert_eq!(events[1]["kind"], "transferred");
    assert_eq!(events[1]["height"].as_u64(), Some(moved));
    assert_eq!(events[1]["signer"], alice.as_str());
    assert_eq!(events[1]["to"], bob.as_str());
    assert_eq!(events[1]["prev_event"], events[0]["event_hash"]);
    let csv = cli.ok(&["history", &stamp(42), "--csv"]);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with("stamp,seq,event,height"));
    assert!(rows[1].starts_with("DEV-2026-001#42,0,minted,") && rows[1].contains(&alice));
    assert!(rows[2].contains(",transferred,") && rows[2].contains(&bob));
    let holdings_csv = cli.ok(&["holdings", "bob", "--csv"]);
    assert_eq!(holdings_csv.lines().count(), 2, "{holdings_csv}");
    assert!(holdings_csv.contains("DEV-2026-001#42,DEV-2026-001,42,"));
    let text = cli.ok(&["history", &stamp(42)]);
    assert!(
        text.contains("minted to") && text.contains("transferred"),
        "{text}"
    );

    // Holdings of alice page correctly: 99 stamps in pages of 40, no gaps, no repeats.
    let mut seen: Vec<String> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let mut args = vec!["holdings", "alice", "--limit", "40"];
        if let Some(after) = &after {
            args.extend(["--after", after.as_str()]);
        }
        let page = cli.json(&args);
        let stamps = page["stamps"].as_array().unwrap();
        assert!(stamps.len() <= 40);
        seen.extend(stamps.iter().map(|s| s.as_str().unwrap().to_string()));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 99);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 99);
    assert!(!seen.contains(&stamp(42)));
    let all = cli.json(&["holdings", "alice", "--limit", "7", "--all"]);
    assert_eq!(all["stamps"].as_array().unwrap().len(), 99);
    assert_eq!(
        cli.json(&["holdings", "bob"])["stamps"][0],
        stamp(42).as_str()
    );

    // Supply and status.
    let issue = cli.json(&["issue", "show", ISSUE]);
    assert_eq!(
        (
            issue["minted"].as_u64(),
            issue["redeemed"].as_u64(),
            issue["frozen"].as_u64()
        ),
        (Some(100), Some(1), Some(1))
    );
    assert_eq!(cli.json(&["stamp", "show", &stamp(8)])["status"], "frozen");
    assert_eq!(
        cli.json(&["stamp", "show", &stamp(7)])["status"],
        "redeemed"
    );

    // Every violation comes back with its named rejection.
    cli.refused(
        &["transfer", &stamp(1), "--to", "mallory", "-w", "mallory"],
        "not_owner",
    );
    cli.refused(
        &[
            "mint",
            ISSUE,
            "--serials",
            "101",
            "--to",
            "alice",
            "-w",
            "operator",
        ],
        "over_print_run",
    );
    cli.refused(
        &[
            "mint",
            ISSUE,
            "--serials",
            "5",
            "--to",
            "alice",
            "-w",
            "operator",
        ],
        "duplicate_serial",
    );
    cli.refused(
        &[
            "transfer",
            &stamp(1),
            "--to",
            "bob",
            "-w",
            "alice",
            "--nonce",
            "1",
        ],
        "stale_nonce",
    );
    let other_chain = "aa".repeat(32);
    cli.refused(
        &[
            "transfer",
            &stamp(1),
            "--to",
            "bob",
            "-w",
            "alice",
            "--chain-id",
            &other_chain,
        ],
        "wrong_chain",
    );
    let tx_file = dir.path().join("tx.hex");
    let signed = cli.ok(&[
        "transfer",
        &stamp(1),
        "--to",
        "bob",
        "-w",
        "alice",
        "--sign-only",
    ]);
    std::fs::write(&tx_file, signed.trim()).unwrap();
    flip_signature_byte(&tx_file);
    cli.refused(
        &["tx", "submit", tx_file.to_str().unwrap()],
        "bad_signature",
    );
    cli.refused(
        &["transfer", &stamp(8), "--to", "bob", "-w", "alice"],
        "frozen",
    );
    cli.refused(
        &["transfer", &stamp(7), "--to", "bob", "-w", "alice"],
        "redeemed",
    );
    cli.refused(
        &[
            "mint",
            ISSUE,
            "--serials",
            "1",
            "--to",
            "mallory",
            "-w",
            "mallory",
        ],
        "not_operator",
    );
    cli.refused(&["redeem", &stamp(3), "-w", "alice"], "not_operator");

    // Provenance: export the bundle, verify it offline against the genesis file alone.
    let bundle_file = dir.path().join("bundle-42.json");
    let genesis_file = node.data_dir().join("genesis.json");
    cli.ok(&[
        "history",
        &stamp(42),
        "--proof",
        bundle_file.to_str().unwrap(),
    ]);
    let verdict = cli.json(&[
        "verify",
        bundle_file.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert_eq!(verdict["verdict"], "AUTHENTIC", "{verdict}");
    assert_eq!(verdict["result"]["owner"], bob.as_str());
    let online = cli.ok(&[
        "stamp",
        "verify",
        &stamp(8),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert!(
        online.starts_with("AUTHENTIC DEV-2026-001#8") && online.contains("frozen"),
        "{online}"
    );
    // One altered owner in the file: FAILED, named, non-zero exit.
    let text = std::fs::read_to_string(&bundle_file).unwrap();
    assert!(text.contains(&bob));
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, text.replacen(&bob, &alice, 1)).unwrap();
    let out = cli.command(&[
        "verify",
        tampered.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("FAILED DEV-2026-001#42: signature"),
        "{stdout}"
    );
    // Against another chain's genesis: FAILED wrong_chain.
    let other_genesis = dir.path().join("other-genesis.json");
    let mut genesis: Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis_file).unwrap()).unwrap();
    genesis["chain_name"] = "another-chain".into();
    std::fs::write(&other_genesis, genesis.to_string()).unwrap();
    let out = cli.command(&[
        "verify",
        bundle_file.to_str().unwrap(),
        "--genesis",
        other_genesis.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrong_chain"));

    // The whole ledger, re-verified from genesis (a copy of the directory, node running).
    let copy = dir.path().join("ledger-copy");
    copy_dir(&node.data_dir().join("db"), &copy);
    let audit = cli.json(&[
        "audit",
        copy.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert_eq!(audit["verdict"], "PASSED", "{audit}");
    assert!(audit["blocks"].as_u64().unwrap() >= 5);
    // Not on a terminal, progress is plain lines on standard error, ending at the tip;
    // --quiet leaves standard error empty.
    let blocks = audit["blocks"].as_u64().unwrap();
    let audit_args = [
        "audit",
        copy.to_str().unwrap(),
        "--genesis",
        genesis_file.to_str().unwrap(),
    ];
    let out = cli.command(&audit_args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("audit: {blocks} of {blocks} blocks")),
        "{stderr}"
    );
    let mut quiet = audit_args.to_vec();
    quiet.push("--quiet");
    let out = cli.command(&quiet);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");

    // Supply, proven against the latest certified header and the genesis file.
    let supply = cli.json(&[
        "issue",
        "supply",
        ISSUE,
        "--genesis",
        genesis_file.to_str().unwrap(),
    ]);
    assert_eq!(supply["verdict"], "PROVEN", "{supply}");
    assert_eq!(supply["issue"]["minted"].as_u64(), Some(100));
    assert_eq!(supply["issue"]["redeemed"].as_u64(), Some(1));

    // After all the refusals, the valid path still works (nonces were not burned).
    final_height(&cli.json(&["transfer", &stamp(1), "--to", "bob", "-w", "alice"]));

    // alice approves mallory to sell #2 for her; mallory moves it to bob; history shows both.
    final_height(&cli.json(&[
        "approve",
        &stamp(2),
        "--operator",
        "mallory",
        "--until-height",
        "1000",
        "-w",
        "alice",
    ]));
    final_height(&cli.json(&["transfer", &stamp(2), "--to", "bob", "-w", "mallory"]));
    let events = cli.json(&["history", &stamp(2)])["events"].clone();
    let moved = &events.as_array().unwrap()[2];
    assert_eq!(moved["kind"], "transferred", "{events}");
    assert_eq!(moved["from"], alice.as_str());
    assert_eq!(moved["operator"], address("mallory").as_str());
    assert_eq!(moved["signer"], address("mallory").as_str());
    cli.refused(
        &["transfer", &stamp(2), "--to", "mallory", "-w", "mallory"],
        "not_owner",
    );

    // bob burns #1: it leaves his holdings, stays in history, counts in supply.
    final_height(&cli.json(&["burn", &stamp(1), "-w", "bob"]));
    let history = cli.json(&["history", &stamp(1)]);
    assert_eq!(
        history["events"].as_array().unwrap().last().unwrap()["kind"],
        "burned"
    );
    // bob now holds #42 and #2; the burned #1 is gone.
    let held = cli.json(&["holdings", "bob"])["stamps"].clone();
    assert_eq!(held, serde_json::json!([stamp(2), stamp(42)]), "{held}");
    cli.refused(
        &["transfer", &stamp(1), "--to", "alice", "-w", "bob"],
        "burned",
    );
    assert_eq!(
        cli.json(&["issue", "show", ISSUE])["burned"].as_u64(),
        Some(1)
    );
    let info = cli.json(&["chain", "info"]);
    assert!(info["height"].as_u64().unwrap() >= 6);
    assert_eq!(info["metrics"]["mempool_size"].as_u64(), Some(0));
}

#[test]
fn bad_input_gives_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        // Nothing listens here: the error must say so and how to fix it.
        api: "http://127.0.0.1:9".into(),
        wallets: dir.path().join("wallets"),
    };
    for (args, expect) in [
        (vec!["stamp", "show", "AT-2026-001#0"], "invalid"),
        (
            vec!["stamp", "show", "AT-2026-001#4"],
            "cannot reach the node",
        ),
        (vec!["holdings", "cachet1qqqq"], "not a valid address"),
        (
            vec!["transfer", "AT-2026-001#4", "--to", "bob", "-w", "nobody"],
            "no wallet named",
        ),
    ] {
        let out = cli.command(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The postal lifecycle end to end: variants, a physical twin minted and claimed, an
/// approved transfer, a two-party swap and a burn, each in `cachet history` and each stamp
/// still verifying as authentic.
#[test]
fn physical_twin_claim_approved_transfer_swap_and_burn() {
    const LIFE: &str = "DEV-2026-002";
    let s = |serial: u32| format!("{LIFE}#{serial}");
    let (dir, _node, cli) = dev_cli(&["alice", "bob", "carol"]);
    let (alice, bob, carol) = (
        cli.address("alice"),
        cli.address("bob"),
        cli.address("carol"),
    );
    let created = cli.json(&[
        "issue",
        "create",
        LIFE,
        "--title",
        "Lake Birds",
        "--year",
        "2026",
        "--face-value",
        "100",
        "--currency",
        "EUR",
        "--design-sha256",
        "5f6c7c4a8b7f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aab",
        "--design-uri",
        "https://stamps.example/birds.png",
        "--print-run",
        "10",
        "--variant",
        "red=6",
        "--variant",
        "blue=4",
        "-w",
        "operator",
    ]);
    final_height(&created);
    let mint = |serials: &str, variant: &str, to: &str| {
        final_height(&cli.json(&[
            "mint",
            LIFE,
            "--serials",
            serials,
            "--variant",
            variant,
            "--to",
            to,
            "-w",
            "operator",
        ]))
    };
    mint("1-3", "red", "alice");
    mint("7-8", "blue", "bob");
    cli.refused(
        &[
            "mint",
            LIFE,
            "--serials",
            "9",
            "--to",
            "bob",
            "-w",
            "operator",
        ],
        "variant_required",
    );

    // Physical twins: claim codes go to a private file; the stamps belong to nobody. A range
    // that cannot fit one transaction is refused before any code is written.
    let twins = dir.path().join("twins.json");
    let mint_twins = |serials: &str| {
        cli.command(&[
            "mint",
            LIFE,
            "--serials",
            serials,
            "--variant",
            "red",
            "--twins-out",
            twins.to_str().unwrap(),
            "--json",
            "-w",
            "operator",
        ])
    };
    let out = mint_twins("1-5000");
    // With --json the error is a JSON object on standard output.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.contains("do not fit in one transaction"),
        "{stdout}"
    );
    assert!(
        !twins.exists(),
        "no claim codes for a mint that cannot happen"
    );
    let out = mint_twins("4-6");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    final_height(&serde_json::from_slice(&out.stdout).unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&twins).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "claim codes must be private");
    }
    let codes: Value = serde_json::from_str(&std::fs::read_to_string(&twins).unwrap()).unwrap();
    let code = |serial: usize| {
        codes[serial - 4]["claim_code"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(codes[0]["stamp"], s(4).as_str());
    let unclaimed = cli.json(&["stamp", "show", &s(4)]);
    assert_eq!(unclaimed["status"], "unclaimed", "{unclaimed}");
    assert!(unclaimed["owner"].is_null(), "{unclaimed}");
    cli.refused(
        &["claim", &s(5), "--code", &code(6), "--to", "carol"],
        "wrong_claim_key",
    );
    final_height(&cli.json(&["claim", &s(4), "--code", &code(4), "--to", "carol"]));
    cli.refused(
        &["claim", &s(4), "--code", &code(4), "--to", "bob"],
        "not_claimable",
    );
    assert_eq!(cli.json(&["stamp", "show", &s(4)])["owner"], carol.as_str());

    // An approved transfer: alice lets bob move #1; bob gives it to carol.
    let height = cli.json(&["chain", "info"])["height"].as_u64().unwrap();
    final_height(&cli.json(&[
        "approve",
        &s(1),
        "--operator",
        "bob",
        "--until-height",
        &(height + 100).to_string(),
        "-w",
        "alice",
    ]));
    final_height(&cli.json(&["transfer", &s(1), "--to", "carol", "-w", "bob"]));

    // A two-party swap: alice's #2 for bob's #7, signed by alice, cosigned and sent by bob.
    let offer = dir.path().join("offer.hex");
    cli.ok(&[
        "swap",
        "--give",
        &s(2),
        "--take",
        &s(7),
        "--with",
        "bob",
        "-w",
        "alice",
        "--out",
        offer.to_str().unwrap(),
    ]);
    // Submitted without bob's agreement, it is refused.
    cli.refused(&["tx", "submit", offer.to_str().unwrap()], "invalid_field");
    // Only the counterparty can agree to it.
    let out = cli.command(&["tx", "cosign", offer.to_str().unwrap(), "-w", "carol"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("does not need the cosignature"),
        "{stderr}"
    );
    // bob cosigns; the --json output goes straight to `tx submit`.
    let cosigned = dir.path().join("cosigned.json");
    let text = cli.ok(&[
        "tx",
        "cosign",
        offer.to_str().unwrap(),
        "-w",
        "bob",
        "--json",
    ]);
    std::fs::write(&cosigned, text).unwrap();
    final_height(&cli.json(&["tx", "submit", cosigned.to_str().unwrap()]));

    // Holdings follow claims and swaps.
    let holds = |who: &str| -> Vec<String> {
        cli.json(&["holdings", who])["stamps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(holds("carol"), [s(1), s(4)]);
    assert_eq!(holds("alice"), [s(3), s(7)]);
    assert_eq!(holds("bob"), [s(2), s(8)]);

    // A burn by the claimed twin's owner.
    final_height(&cli.json(&["burn", &s(4), "-w", "carol"]));

    // Each is in the history.
    let kinds = |serial| -> Vec<Value> {
        cli.json(&["history", &s(serial)])["events"]
            .as_array()
            .unwrap()
            .clone()
    };
    let twin = kinds(4);
    let names: Vec<&str> = twin.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(names, ["minted_for_claim", "claimed", "burned"], "{twin:?}");
    assert_eq!(twin[1]["to"], carol.as_str());
    let approved = kinds(1);
    let last = approved.last().unwrap();
    assert_eq!(
        (&last["kind"], &last["from"], &last["to"], &last["operator"]),
        (
            &Value::from("transferred"),
            &Value::from(alice.as_str()),
            &Value::from(carol.as_str()),
            &Value::from(bob.as_str())
        ),
        "{approved:?}"
    );
    for (serial, from, to) in [(2, &alice, &bob), (7, &bob, &alice)] {
        let events = kinds(serial);
        let last = events.last().unwrap();
        assert_eq!(last["kind"], "swapped", "{events:?}");
        assert_eq!(
            (&last["from"], &last["to"]),
            (&Value::from(from.as_str()), &Value::from(to.as_str()))
        );
    }
    let text = cli.ok(&["history", &s(4)]);
    assert!(
        text.contains("physical twin") && text.contains("claimed by") && text.contains("burned"),
        "{text}"
    );

    // Supply per variant, and the provenance of the twin and the swapped stamps verifies.
    let issue = cli.json(&["issue", "show", LIFE]);
    assert_eq!(
        issue["variant_minted"],
        serde_json::json!([6, 2]),
        "{issue}"
    );
    assert_eq!(issue["burned"].as_u64(), Some(1));
    for serial in [1, 2, 4, 7] {
        let verdict = cli.json(&["stamp", "verify", &s(serial)]);
        assert_eq!(verdict["verdict"], "AUTHENTIC", "#{serial}: {verdict}");
    }
}

/// Operator membership through the CLI on a one-operator dev chain, where the proposer's own
/// approval is already more than two thirds: a key rotation is decided at once, scheduled
/// for its height and in the history; what may not follow it is refused by name.
#[test]
fn membership_rotate_key_is_decided_scheduled_and_listed() {
    let (_dir, _node, cli) = dev_cli(&["alice", "newkey"]);
    let before = cli.json(&["membership", "show"]);
    assert_eq!(before["operators"].as_array().unwrap().len(), 1, "{before}");
    assert_eq!(before["operators"][0]["id"], "DEV-POST");
    assert!(before["scheduled"].is_null(), "{before}");
    assert_eq!(before["changes"].as_array().unwrap().len(), 0);

    let new_key = cli.json(&["wallet", "address", "newkey"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    fn rotate_key<'a>(key: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "membership",
            "rotate-key",
            "DEV-POST",
            "--validator-key",
            key,
        ];
        args.extend_from_slice(more);
        args
    }
    let rotate = |more| rotate_key(&new_key, more);
    // Only a current operator may propose, and only far enough ahead.
    cli.refused(&rotate(&["-w", "alice"]), "not_operator");
    cli.refused(
        &rotate(&["--at-height", "1", "-w", "operator"]),
        "invalid_activation",
    );

    let proposed = cli.json(&rotate(&["-w", "operator"]));
    let decided_at = final_height(&proposed);
    let proposal = proposed["tx_id"].as_str().unwrap().to_string();

    let info = cli.json(&["membership", "proposal", &proposal]);
    assert_eq!(info["proposal"]["decided_height"], decided_at, "{info}");
    assert_eq!(info["proposal"]["approvals"][0], "DEV-POST");
    let activation = info["proposal"]["activation_height"].as_u64().unwrap();
    // The default leaves the other operators time to approve.
    assert!(activation >= decided_at + 90, "{info}");

    let after = cli.json(&["membership", "show"]);
    let scheduled = &after["scheduled"];
    assert_eq!(scheduled["proposal"], proposal.as_str(), "{after}");
    assert_eq!(scheduled["change"]["change"], "rotate_validator_key");
    assert_eq!(scheduled["change"]["validator_key"], new_key.as_str());
    assert_eq!(scheduled["activation_height"], activation);
    assert_eq!(scheduled["operators"][0]["validator_key"], new_key.as_str());
    assert_eq!(after["changes"].as_array().unwrap().len(), 1, "{after}");
    // The current set keeps the old key until the activation height.
    assert_eq!(after["operators"], before["operators"]);
    let text = cli.ok(&["membership", "show"]);
    assert!(
        text.contains(&format!(
            "scheduled    rotate DEV-POST's validator key to {new_key} from height {activation}"
        )),
        "{text}"
    );

    // A decided proposal takes no more approvals; no second change while one waits.
    cli.refused(
        &["membership", "approve", &proposal, "-w", "operator"],
        "proposal_closed",
    );
    cli.refused(
        &["membership", "remove", "DEV-POST", "-w", "operator"],
        "membership_pending",
    );
    cli.refused(
        &["membership", "approve", &"0".repeat(64), "-w", "operator"],
        "unknown_proposal",
    );
}

/// Runs `cachet` with `args` and `--json`; the failure must be one JSON error object on
/// standard output with its documented exit code.
fn json_error(cli: &Cli, args: &[&str], exit_code: i32, code: &str) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = cli.command(&all);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(exit_code), "{args:?}: {stdout}");
    let value: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{args:?}: not one JSON object ({e}): {stdout}"));
    assert_eq!(value["error"]["code"], code, "{args:?}: {value}");
    assert!(value["error"]["message"].as_str().is_some(), "{value}");
    value
}

#[test]
fn errors_are_json_with_exit_codes_and_file_arguments_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let offline = Cli {
        api: "http://127.0.0.1:9".into(),
        wallets: dir.path().join("wallets"),
    };
    json_error(&offline, &["chain", "info"], 3, "unreachable");
    json_error(&offline, &["stamp", "show"], 2, "usage");
    json_error(
        &offline,
        &["--node", "127.0.0.1:7600", "chain", "info"],
        2,
        "invalid_url",
    );
    let out = offline.command(&["--node", "127.0.0.1:7600", "chain", "info"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid node URL"), "{stderr}");
    // A device is not read until memory runs out: the size cap holds for any file type.
    json_error(
        &offline,
        &["wallet", "import", "x", "/dev/zero"],
        6,
        "bad_input",
    );
    json_error(&offline, &["tx", "submit", "/dev/zero"], 6, "bad_input");
    // A damaged wallet file is listed, not hidden.
    offline.ok(&["wallet", "new", "good"]);
    std::fs::write(dir.path().join("wallets").join("broken.json"), "{").unwrap();
    let list = offline.json(&["wallet", "list"]);
    let broken = list
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "broken")
        .unwrap_or_else(|| panic!("the damaged wallet is hidden: {list}"));
    assert!(broken["damaged"].as_str().is_some(), "{list}");
    assert!(offline.ok(&["wallet", "list"]).contains("DAMAGED"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("wallets"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700, "wallet directory mode {mode:o}");
}

#[test]
fn a_rejection_is_a_json_error_and_a_closed_pipe_ends_quietly() {
    let (_dir, _node, cli) = dev_cli(&["alice"]);
    create_dev_issue(&cli, "1000");
    cli.ok(&[
        "mint",
        ISSUE,
        "--serials",
        "1-300",
        "--to",
        "alice",
        "-w",
        "operator",
    ]);
    let refused = json_error(
        &cli,
        &[
            "mint",
            ISSUE,
            "--serials",
            "1",
            "--to",
            "alice",
            "-w",
            "operator",
        ],
        4,
        "duplicate_serial",
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected")
    );
    // `cachet holdings alice --all --csv | head -3`: head closes the pipe early.
    let mut child = Command::new(env!("CARGO_BIN_EXE_cachet"))
        .args(["holdings", "alice", "--all", "--csv"])
        .env("CACHET_NODE", &cli.api)
        .env("CACHET_WALLET_DIR", &cli.wallets)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.trim().is_empty(),
        "a closed pipe is not an error: {stderr}"
    );
}

/// Creates the dev issue `ISSUE` (Alpine Flowers) with `print_run` as the operator, and
/// waits until it is final.
fn create_dev_issue(cli: &Cli, print_run: &str) {
    final_height(&cli.json(&[
        "issue",
        "create",
        ISSUE,
        "--title",
        "Alpine Flowers",
        "--year",
        "2026",
        "--face-value",
        "120",
        "--currency",
        "EUR",
        "--design-sha256",
        "5f6c7c4a8b7f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aab",
        "--design-uri",
        "https://stamps.example/alpine.png",
        "--print-run",
        print_run,
        "-w",
        "operator",
    ]));
}

#[test]
fn a_file_of_presigned_transfers_is_submitted_in_bulk_one_line_each() {
    let (dir, _node, cli) = dev_cli(&["alice", "bob"]);
    create_dev_issue(&cli, "10");
    final_height(&cli.json(&[
        "mint",
        ISSUE,
        "--serials",
        "1-10",
        "--to",
        "alice",
        "-w",
        "operator",
    ]));
    // Alice signs six transfers ahead (consecutive nonces); the last one is damaged.
    let mut lines = Vec::new();
    for serial in 1..=6u32 {
        let nonce = serial.to_string();
        let signed = cli.ok(&[
            "transfer",
            &stamp(serial),
            "--to",
            "bob",
            "-w",
            "alice",
            "--nonce",
            &nonce,
            "--sign-only",
        ]);
        lines.push(signed.trim().to_string());
    }
    let damaged = dir.path().join("damaged.hex");
    std::fs::write(&damaged, &lines[5]).unwrap();
    flip_signature_byte(&damaged);
    lines[5] = std::fs::read_to_string(&damaged).unwrap();
    let file = dir.path().join("transfers.txt");
    std::fs::write(&file, lines.join("\n") + "\n\n").unwrap();

    let out = cli.command(&["tx", "submit", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "exit code: {stdout}{stderr}");
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed.len(), 6, "one line per transaction: {stdout}");
    for line in &printed[..5] {
        assert!(line.contains("final at height"), "{stdout}");
    }
    assert!(printed[5].starts_with("6\t") && printed[5].contains("rejected: bad_signature"));
    assert!(
        stderr.contains("5 final, 0 pending, 1 refused of 6"),
        "{stderr}"
    );
    let holdings = cli.json(&["holdings", "bob"]);
    assert_eq!(
        holdings["stamps"].as_array().unwrap().len(),
        5,
        "{holdings}"
    );
    // A single-transaction command refuses a file of many, naming the count.
    let out = cli.command(&["tx", "cosign", file.to_str().unwrap(), "-w", "bob"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds 6 transactions"));
}

#[test]
fn watch_prints_the_final_transactions_of_an_account_from_a_height() {
    let (_dir, _node, cli) = dev_cli(&["alice", "bob"]);
    create_dev_issue(&cli, "10");
    final_height(&cli.json(&[
        "mint",
        ISSUE,
        "--serials",
        "1-10",
        "--to",
        "alice",
        "-w",
        "operator",
    ]));
    final_height(&cli.json(&["transfer", &stamp(3), "--to", "bob", "-w", "alice"]));
    // Bob's account from the first block: the one transfer that names him.
    let out = cli.ok(&[
        "watch",
        "--account",
        "bob",
        "--from-height",
        "1",
        "--count",
        "1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("transfer by"), "{out}");
    let all = cli.ok(&["watch", "--from-height", "1", "--count", "6", "--json"]);
    let events: Vec<Value> = all
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["block", "tx", "block", "tx", "block", "tx"],
        "{all}"
    );
    assert_eq!(events[5]["data"]["kind"], "transfer");
}

#[test]
fn completions_and_man_pages_are_generated_from_the_commands() {
    let cli = Cli {
        api: "http://127.0.0.1:9".into(),
        wallets: std::env::temp_dir().join("cachet-no-wallets"),
    };
    let bash = cli.ok(&["completions", "bash"]);
    assert!(
        bash.contains("_cachet()") && bash.contains("transfer"),
        "{bash}"
    );
    let zsh = cli.ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef cachet"), "{zsh}");
    let dir = tempfile::tempdir().unwrap();
    cli.ok(&["man", dir.path().to_str().unwrap()]);
    let page = std::fs::read_to_string(dir.path().join("cachet.1")).unwrap();
    assert!(page.contains(".TH cachet"), "{page}");
    assert!(dir.path().join("cachet-transfer.1").exists());
    let out = cli.command(&["completions", "tcsh"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown shell is a usage error"
    );
}

#[test]
fn a_cli_config_file_names_the_node_wallets_and_default_wallet_below_env_and_flags() {
    let (dir, node, cli) = dev_cli(&["alice", "bob"]);
    create_dev_issue(&cli, "10");
    final_height(&cli.json(&[
        "mint",
        ISSUE,
        "--serials",
        "1-10",
        "--to",
        "alice",
        "-w",
        "operator",
    ]));
    let config = dir.path().join("cachet.toml");
    std::fs::write(
        &config,
        format!(
            "# alice's laptop\nnode = \"{}\"\nwallet_dir = \"{}\"\nwallet = \"alice\"\n",
            node.api(),
            cli.wallets.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], env_node: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cachet"));
        command
            .args(args)
            .env_remove("CACHET_NODE")
            .env_remove("CACHET_WALLET_DIR")
            .env_remove("CACHET_WALLET")
            .env("XDG_CONFIG_HOME", dir.path())
            .env("CACHET_PASSPHRASE", DEV_PASSPHRASE);
        if let Some(url) = env_node {
            command.env("CACHET_NODE", url);
        }
        command.output().unwrap()
    };
    let config_arg = config.to_str().unwrap();
    // No -w, no --node: the file's default wallet signs on the file's node.
    let out = run(
        &[
            "--config",
            config_arg,
            "transfer",
            &stamp(2),
            "--to",
            "bob",
            "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The environment beats the file (an unreachable node: exit 3), a flag beats both.
    let out = run(
        &["--config", config_arg, "chain", "info"],
        Some("http://127.0.0.1:9"),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = node.api().to_string();
    let out = run(
        &["--config", config_arg, "--node", &api, "chain", "info"],
        Some("http://127.0.0.1:9"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default place is read without --config.
    std::fs::create_dir_all(dir.path().join("cachet")).unwrap();
    std::fs::copy(&config, dir.path().join("cachet/config.toml")).unwrap();
    let out = run(&["holdings", "bob", "--json"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An unknown key is refused with its line.
    std::fs::write(&config, "node = \"x\"\nwalet = \"alice\"\n").unwrap();
    let out = run(&["--config", config_arg, "chain", "info"], None);
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: unknown key `walet`"));
}
