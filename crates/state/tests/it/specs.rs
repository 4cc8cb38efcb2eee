//! The specifications stay in step with the workspace: every citation of a spec file (and of
//! a section of it) names one that exists, and the transaction kind table of
//! `specs/ledger.md` gives every kind the variant index it is encoded with.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use cachet_testkit::{address, issue_id, issue_record, operator_id, stamp};
use cachet_types::{Deadline, FreezeReason, Hash, MembershipChange, SwapLeg, TxBody, codec};

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Directories never searched: build output, version control, packages, fuzzing inputs.
fn skipped(dir: &Path) -> bool {
    let name = dir.file_name().and_then(|name| name.to_str()).unwrap_or("");
    if matches!(name, "target" | ".git" | "node_modules") {
        return true;
    }
    let parent = dir
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str());
    parent == Some("fuzz") && matches!(name, "corpus" | "artifacts")
}

/// Every `*.rs` and `*.md` file under `dir`, in a stable order (symbolic links not followed).
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let listing =
        fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut entries: Vec<(PathBuf, fs::FileType)> = listing
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
            let kind = entry
                .file_type()
                .unwrap_or_else(|e| panic!("cannot stat {}: {e}", entry.path().display()));
            (entry.path(), kind)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind) in entries {
        if kind.is_dir() {
            if !skipped(&path) {
                source_files(&path, out);
            }
        } else if kind.is_file()
            && path
                .extension()
                .is_some_and(|extension| extension == "rs" || extension == "md")
        {
            out.push(path);
        }
    }
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_' || byte == b'-'
}

fn is_anchor_byte(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
}

/// The citations in one line: `specs/NAME.md`, optionally followed by `#anchor`, as
/// `(NAME, anchor)`.
fn citations(line: &str) -> Vec<(String, Option<String>)> {
    const PREFIX: &str = "specs/";
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    for (at, _) in line.match_indices(PREFIX) {
        // The start of a path segment, not the tail of a longer name (`myspecs/`).
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let rest = &line[at + PREFIX.len()..];
        let name_len = rest.bytes().take_while(|b| is_name_byte(*b)).count();
        let Some(after) = rest[name_len..].strip_prefix(".md") else {
            continue;
        };
        if name_len == 0
            || after
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            continue;
        }
        let anchor = after.strip_prefix('#').and_then(|tail| {
            let len = tail.bytes().take_while(|b| is_anchor_byte(*b)).count();
            (len > 0).then(|| tail[..len].to_string())
        });
        found.push((rest[..name_len].to_string(), anchor));
    }
    found
}

/// GitHub's anchor for a heading: lower case; alphanumerics, `-` and `_` kept; spaces
/// become `-`; everything else dropped.
fn slug(title: &str) -> String {
    title
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of every heading (`#` to `######`) of a markdown text, outside code fences.
fn heading_anchors(text: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let level = line.bytes().take_while(|b| *b == b'#').count();
        let rest = &line[level..];
        if (1..=6).contains(&level) && (rest.is_empty() || rest.starts_with([' ', '\t'])) {
            anchors.insert(slug(rest.trim().trim_end_matches('#')));
        }
    }
    anchors
}

/// The parser and the slugs on known cases (built so that the walk below does not see them
/// as citations).
fn check_the_parser() {
    let line = concat!(
        "see `specs/ledger.md#state-rules`, `specs/api.md` and spec",
        "s/a_b-1.md."
    );
    assert_eq!(
        citations(line),
        vec![
            ("ledger".to_string(), Some("state-rules".to_string())),
            ("api".to_string(), None),
            ("a_b-1".to_string(), None),
        ]
    );
    let not_citations = concat!(
        "spec",
        "s/vectors/golden.json, myspec",
        "s/x.md, spec",
        "s/x.mdx"
    );
    assert!(citations(not_citations).is_empty());
    assert_eq!(
        slug("Sparse Merkle tree (state commitment)"),
        "sparse-merkle-tree-state-commitment"
    );
    assert_eq!(
        heading_anchors("# Top\n```\n# not a heading\n```\n### `TxBody` kinds ##\n#tag\n"),
        BTreeSet::from(["top".to_string(), "txbody-kinds".to_string()])
    );
}

#[test]
fn every_cited_spec_file_and_section_exists() {
    check_the_parser();
    let root = root();
    let specs = root.join("specs");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    // Per cited spec file: its heading anchors, or None if it does not exist.
    let mut spec_files: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let mut cited = 0usize;
    let mut bad = Vec::new();
    for path in &files {
        let bytes =
            fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.lines().enumerate() {
            for (name, anchor) in citations(line) {
                cited += 1;
                let anchors = spec_files.entry(name.clone()).or_insert_with(|| {
                    fs::read_to_string(specs.join(format!("{name}.md")))
                        .ok()
                        .map(|spec| heading_anchors(&spec))
                });
                let exists = match (anchors, &anchor) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(anchors), Some(anchor)) => anchors.contains(anchor),
                };
                if !exists {
                    let shown = path.strip_prefix(&root).unwrap_or(path);
                    let citation = match &anchor {
                        Some(anchor) => format!("specs/{name}.md#{anchor}"),
                        None => format!("specs/{name}.md"),
                    };
                    bad.push(format!("{}:{}: {citation}", shown.display(), number + 1));
                }
            }
        }
    }
    assert!(
        cited > 0,
        "no spec citations found under {}: is the workspace root right?",
        root.display()
    );
    assert!(
        bad.is_empty(),
        "citations of spec files or sections that do not exist:\n{}",
        bad.join("\n")
    );
}

/// The header of the kind table: `| # | kind | ...`.
fn is_kind_table_header(line: &str) -> bool {
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    line.starts_with('|')
        && cells.len() > 3
        && cells[1] == "#"
        && cells[2].trim_matches('`') == "kind"
}

/// The `(number, kind)` rows of the transaction kind table in `specs/ledger.md`.
fn kind_table() -> Vec<(u32, String)> {
    let path = root().join("specs/ledger.md");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines().skip_while(|line| !is_kind_table_header(line));
    assert!(
        lines.next().is_some(),
        "specs/ledger.md has no table whose header row starts with `| # | kind`"
    );
    let separator = lines.next().expect("the kind table has a separator row");
    assert!(
        separator.replace(['|', '-', ':', ' '], "").is_empty(),
        "the kind table's second row is not a separator: {separator}"
    );
    lines
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let number: u32 = cells
                .get(1)
                .and_then(|cell| cell.parse().ok())
                .unwrap_or_else(|| panic!("kind table row without a number: {line}"));
            let kind = cells
                .get(2)
                .map(|cell| cell.trim_matches('`'))
                .filter(|kind| !kind.is_empty())
                .unwrap_or_else(|| panic!("kind table row without a kind: {line}"));
            (number, kind.to_string())
        })
        .collect()
}

/// How many variants `TxBody` has.
const VARIANTS: usize = 14;

/// A slot per `TxBody` variant, every variant named and no wildcard: a new variant does not
/// compile until it gets a slot here, and the test then fails until [`VARIANTS`] counts it,
/// [`sample_bodies`] has a body of it and the table of `specs/ledger.md` a row for it.
fn slot(body: &TxBody) -> usize {
    match body {
        TxBody::CreateIssue { .. } => 0,
        TxBody::Mint { .. } => 1,
        TxBody::Claim { .. } => 2,
        TxBody::Swap { .. } => 3,
        TxBody::CloseIssue { .. } => 4,
        TxBody::Transfer { .. } => 5,
        TxBody::Redeem { .. } => 6,
        TxBody::Freeze { .. } => 7,
        TxBody::Unfreeze { .. } => 8,
        TxBody::Approve { .. } => 9,
        TxBody::Revoke { .. } => 10,
        TxBody::Burn { .. } => 11,
        TxBody::ProposeMembership { .. } => 12,
        TxBody::ApproveMembership { .. } => 13,
    }
}

/// One body of every kind.
fn sample_bodies() -> Vec<TxBody> {
    let issue = issue_id("AT-2026-001");
    let seven = stamp("AT-2026-001", 7);
    vec![
        TxBody::CreateIssue {
            record: issue_record("AT-2026-001", "AT-POST", 100),
        },
        TxBody::Mint {
            issue: issue.clone(),
            first_serial: 1,
            last_serial: 10,
            owner: address("alice"),
            variant: None,
            claim_keys: Vec::new(),
        },
        TxBody::Claim {
            stamp: seven.clone(),
            to: address("bob"),
        },
        TxBody::Swap {
            give: vec![SwapLeg {
                stamp: seven.clone(),
                last_event: Hash::sha256(b"seven"),
            }],
            take: vec![SwapLeg {
                stamp: stamp("AT-2026-001", 8),
                last_event: Hash::sha256(b"eight"),
            }],
            counterparty: address("bob"),
        },
        TxBody::CloseIssue { issue },
        TxBody::Transfer {
            stamp: seven.clone(),
            last_event: Hash::sha256(b"seven"),
            to: address("bob"),
        },
        TxBody::Redeem {
            stamp: seven.clone(),
        },
        TxBody::Freeze {
            stamp: seven.clone(),
            reason: FreezeReason::Stolen,
            case_ref: "POL-2026-118".into(),
        },
        TxBody::Unfreeze {
            stamp: seven.clone(),
            case_ref: "POL-2026-118".into(),
        },
        TxBody::Approve {
            stamp: seven.clone(),
            operator: address("carol"),
            until: Deadline::Height(1_000),
        },
        TxBody::Revoke {
            stamp: seven.clone(),
        },
        TxBody::Burn {
            stamp: seven,
            last_event: Hash::sha256(b"seven"),
        },
        TxBody::ProposeMembership {
            change: MembershipChange::RemoveOperator {
                operator: operator_id("DE"),
            },
            activation_height: 100,
        },
        TxBody::ApproveMembership {
            proposal: Hash::sha256(b"proposal"),
        },
    ]
}

#[test]
fn kind_table_matches_the_transaction_enum() {
    let mut seen = [false; VARIANTS];
    let mut encoded = BTreeSet::new();
    for body in sample_bodies() {
        let at = slot(&body);
        let cell = seen
            .get_mut(at)
            .unwrap_or_else(|| panic!("slot {at} of {} is not below VARIANTS", body.kind()));
        assert!(!*cell, "two sample bodies of kind {}", body.kind());
        *cell = true;
        // The version byte, then the variant index as a big-endian u32.
        let bytes = codec::encode(&body);
        let index: [u8; 4] = bytes
            .get(1..5)
            .and_then(|index| index.try_into().ok())
            .expect("a body's encoding holds its variant index after the version byte");
        encoded.insert((u32::from_be_bytes(index), body.kind().to_string()));
    }
    let missing: Vec<usize> = (0..VARIANTS).filter(|at| !seen[*at]).collect();
    assert!(
        missing.is_empty(),
        "sample_bodies() has no body for the variants of slots {missing:?}"
    );
    let table = kind_table();
    let rows: BTreeSet<(u32, String)> = table.iter().cloned().collect();
    assert_eq!(
        rows.len(),
        table.len(),
        "the kind table of specs/ledger.md repeats a row: {table:?}"
    );
    assert_eq!(
        rows, encoded,
        "the kind table of specs/ledger.md (left) is not the encoding of TxBody (right)"
    );
}

/// The worked example of `specs/encoding.md` (one field a line, hex first) is the
/// encoding of the vector it names in `specs/vectors/golden.json`, byte for byte.
#[test]
fn the_worked_encoding_example_is_the_golden_bytes() {
    let text = fs::read_to_string(root().join("specs/encoding.md")).unwrap();
    let start = text
        .find("Worked example, `")
        .expect("specs/encoding.md has its worked example");
    let name = text[start..]
        .split('`')
        .nth(1)
        .expect("the example names its vector");
    let block = text[start..]
        .split("```")
        .nth(1)
        .expect("the example is a fenced block");
    let hex: String = block
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    let golden: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(root().join("specs/vectors/golden.json")).unwrap(),
    )
    .unwrap();
    let expected = golden[name]["encoding"]
        .as_str()
        .unwrap_or_else(|| panic!("golden.json has no encoding of {name}"));
    assert_eq!(
        hex, expected,
        "the worked example of specs/encoding.md is not the encoding of {name} in golden.json"
    );
}
