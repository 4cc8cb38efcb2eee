// The browser verifier on the golden bundle (`specs/vectors/bundle-AT-2026-001-42.json`
// against `genesis-4-operators.json`): it verifies AUTHENTIC, and every tampering is
// caught with the name the Rust verifier gives (`crates/storage/tests/it/provenance.rs`,
// `every_tampering_is_caught_with_its_name`).
import { describe, expect, test } from "vitest";
import { ed25519 } from "@noble/curves/ed25519.js";

import {
  eventHash,
  genesisChainId,
  headerHash,
  inclusionProof,
  parseStampId,
  readHeader,
  readSignedTx,
  toHex,
  txId,
  txRoot,
  validateGenesis,
  verifyBundle,
  witnessHash,
  type StampId,
  type Verdict,
} from "../src/verify/index";
import { tagged } from "../src/verify/hash";
import {
  GENESIS_SIGNERS,
  address,
  certify,
  copy,
  key,
  keyHex,
  reseal,
  signTx,
  vector,
} from "./helpers";

const golden = vector("bundle-AT-2026-001-42.json");
const genesis = vector("genesis-4-operators.json");

function expectFailed(verdict: Verdict, check: string): void {
  expect(verdict.verdict, JSON.stringify(verdict)).toBe("failed");
  if (verdict.verdict === "failed") {
    expect(verdict.check, verdict.message).toBe(check);
    expect(verdict.message.length).toBeGreaterThan(0);
  }
}

/** A tampered copy of the golden bundle. */
function tampered(alter: (bundle: any) => void): any {
  const bundle = copy(golden);
  alter(bundle);
  return bundle;
}

describe("the golden bundle", () => {
  test("verifies AUTHENTIC with what its current record says", () => {
    const verdict = verifyBundle(golden, genesis);
    const record = golden.current.record;
    expect(verdict).toEqual({
      verdict: "authentic",
      stamp: "AT-2026-001#42",
      owner: record.owner,
      status: record.status,
      events: record.event_count,
      asOfHeight: golden.current.height,
    });
    // The Rust test's expectations: erin holds it, seven events, proven at height 8.
    expect(verdict.verdict === "authentic" && verdict.owner).toBe(address("erin"));
    expect(golden.events.length).toBe(7);
    expect(golden.current.height).toBe(8);
  });

  test("the genesis is valid and names the bundle's chain", () => {
    expect(() => validateGenesis(genesis)).not.toThrow();
    expect(genesisChainId(genesis)).toBe(golden.chain_id);
  });

  test("the event chain head is the proven last event", () => {
    // Replay only the hash chain: H(stamp-event, encode(stamp) || head || tx id).
    let head: Uint8Array = new Uint8Array(32);
    for (const event of golden.events) {
      const tx = readSignedTx(event.tx);
      head = eventHashOf("AT-2026-001#42", head, txId(tx));
    }
    expect(toHex(head)).toBe(golden.current.record.last_event);
  });
});

function eventHashOf(stamp: string, head: Uint8Array, id: Uint8Array): Uint8Array {
  return eventHash(parseStampId(stamp) as StampId, head, id);
}

describe("tamperings of the golden bundle (Rust every_tampering_is_caught_with_its_name)", () => {
  test("the mint names another owner: signature", () => {
    const b = tampered((b) => (b.events[0].tx.body.owner = address("mallory")));
    expectFailed(verifyBundle(b, genesis), "signature");
  });

  test("a middle event removed: chain_gap", () => {
    expectFailed(verifyBundle(tampered((b) => b.events.splice(1, 1)), genesis), "chain_gap");
  });

  test("events reordered: event_order", () => {
    const b = tampered((b) => ([b.events[1], b.events[2]] = [b.events[2], b.events[1]]));
    expectFailed(verifyBundle(b, genesis), "event_order");
  });

  test("an approved transfer with its approval removed: chain_gap", () => {
    expect(golden.events[5].tx.body.kind).toBe("approve");
    expectFailed(verifyBundle(tampered((b) => b.events.splice(5, 1)), genesis), "chain_gap");
  });

  test("an event's signature replaced by another valid-looking one: signature", () => {
    const other = toHex(ed25519.sign(new TextEncoder().encode("something else"), key("alice").seed));
    const b = tampered((b) => (b.events[1].tx.signature = other));
    expectFailed(verifyBundle(b, genesis), "signature");
  });

  test("certificate signatures truncated below two thirds: certificate", () => {
    const b = tampered((b) => b.headers[0].certificate.signatures.splice(2));
    expectFailed(verifyBundle(b, genesis), "certificate");
  });

  test("another chain's genesis: wrong_chain", () => {
    const other = copy(genesis);
    other.chain_name = "cachet-other";
    expectFailed(verifyBundle(golden, other), "wrong_chain");
  });

  test("the bundle names another chain: wrong_chain", () => {
    const b = tampered((b) => (b.chain_id = "00".repeat(32)));
    expectFailed(verifyBundle(b, genesis), "wrong_chain");
  });

  test("the issue's print run changed: issue", () => {
    const b = tampered((b) => (b.issue.tx.body.record.print_run = 1_000_000));
    expectFailed(verifyBundle(b, genesis), "issue");
  });

  test("the current record's owner changed: state_proof", () => {
    const b = tampered((b) => (b.current.record.owner = address("bob")));
    expectFailed(verifyBundle(b, genesis), "state_proof");
  });

  test("the current height lowered: state_proof", () => {
    expectFailed(verifyBundle(tampered((b) => (b.current.height = 7)), genesis), "state_proof");
  });

  test("a header's time changed after certification: certificate", () => {
    const b = tampered((b) => (b.headers[1].header.time_ms += 1));
    expectFailed(verifyBundle(b, genesis), "certificate");
  });

  test("an event's proof index flipped: not_included", () => {
    const b = tampered((b) => (b.events[2].proof.index ^= 1));
    expectFailed(verifyBundle(b, genesis), "not_included");
  });

  test("format or version wrong: format", () => {
    expectFailed(verifyBundle(tampered((b) => (b.format = "cachet-supply-proof")), genesis), "format");
    expectFailed(verifyBundle(tampered((b) => (b.version = 2)), genesis), "format");
    // Step 1 comes before the genesis: a wrong version fails format even with a bad genesis.
    expectFailed(verifyBundle(tampered((b) => (b.version = 2)), { bad: true }), "format");
  });
});

describe("more tamperings", () => {
  test("not JSON of a bundle at all: format, never an exception", () => {
    for (const value of [null, 42, "bundle", [], {}, { format: "cachet-provenance-bundle" }]) {
      expectFailed(verifyBundle(value, genesis), "format");
    }
  });

  test("a field of the wrong type or syntax: format", () => {
    const cases: Array<(b: any) => void> = [
      (b) => (b.version = "1"),
      (b) => delete b.current,
      (b) => (b.events = {}),
      (b) => (b.chain_id = b.chain_id.toUpperCase()),
      (b) => (b.stamp = "AT-2026-001#042"),
      (b) => (b.stamp = "AT-2026-001#0"),
      (b) => (b.events[0].tx.body.owner = b.events[0].tx.body.owner.toUpperCase()),
      (b) => (b.events[0].tx.body.owner = b.events[0].tx.body.owner.replace(/.$/, "q")),
      (b) => (b.events[0].tx.body.kind = "mint_more"),
      (b) => (b.events[0].tx.nonce = -1),
      (b) => (b.events[0].tx.nonce = 1.5),
      (b) => (b.events[0].height = 2 ** 53 + 2), // not exact after JSON.parse
      (b) => (b.headers[0].header.proposer = 65536),
      (b) => (b.events[0].proof.index = 2 ** 32),
      (b) => (b.current.record.status = { status: "lost" }),
      (b) => (b.events[5].tx.body.until = { height: 100, time_ms: 5 }),
      (b) => (b.events[3].tx.body.case_ref = "\ud800"),
      (b) => (b.membership = null),
      (b) => (b.membership = { changes: [] }),
    ];
    cases.forEach((alter, i) => {
      const verdict = verifyBundle(tampered(alter), genesis);
      expect(verdict.verdict, `case ${i}`).toBe("failed");
      if (verdict.verdict === "failed") expect(verdict.check, `case ${i}: ${verdict.message}`).toBe("format");
    });
  });

  test("a u64 passed as a bigint (from a lossless parser) is accepted", () => {
    const b = tampered(() => {});
    b.current.height = 8n;
    b.events[0].tx.nonce = BigInt(b.events[0].tx.nonce);
    expect(verifyBundle(b, genesis).verdict).toBe("authentic");
  });

  test("left-out optional and default fields read as their defaults", () => {
    const b = tampered((b) => {
      delete b.membership;
      delete b.current.record.approval;
      delete b.events[0].tx.cosignatures;
      delete b.events[0].tx.body.variant;
      delete b.events[0].tx.body.claim_keys;
      b.unknown_field = "ignored";
    });
    // The mint's own fields are unchanged (defaults equal what was left out).
    expect(verifyBundle(b, genesis).verdict).toBe("authentic");
  });

  test("too many events: format", () => {
    const b = tampered((b) => (b.events = new Array(1_000_001).fill(0)));
    expectFailed(verifyBundle(b, genesis), "format");
  });

  test("an invalid genesis: genesis", () => {
    const duplicate = copy(genesis);
    duplicate.operators[3].issuer = duplicate.operators[0].issuer;
    expectFailed(verifyBundle(golden, duplicate), "genesis");
    const weak = copy(genesis);
    weak.operators[2].node_key = "01" + "00".repeat(31); // the identity point
    expectFailed(verifyBundle(golden, weak), "genesis");
    expectFailed(verifyBundle(golden, { chain_name: "x" }), "genesis");
    expectFailed(verifyBundle(golden, null), "genesis");
  });

  test("a header left out: missing_header", () => {
    const b = tampered((b) => b.headers.splice(2, 1)); // height 3, the block of event 2
    expectFailed(verifyBundle(b, genesis), "missing_header");
    const swapped = tampered((b) => ([b.headers[1], b.headers[2]] = [b.headers[2], b.headers[1]]));
    expectFailed(verifyBundle(swapped, genesis), "missing_header");
  });

  test("an issue or event said to be in another block: not_included", () => {
    expectFailed(verifyBundle(tampered((b) => (b.issue.height = 2)), genesis), "not_included");
    expectFailed(verifyBundle(tampered((b) => (b.events[3].height = 3)), genesis), "event_order");
    expectFailed(verifyBundle(tampered((b) => (b.events[3].proof.count = 2)), genesis), "not_included");
  });

  test("the latest event left out: record_mismatch", () => {
    // Every remaining event verifies, the record is proven at height 8, but the replay
    // says carol holds it with six events.
    const b = tampered((b) => b.events.pop());
    expectFailed(verifyBundle(b, genesis), "record_mismatch");
  });

  test("certificates by other keys or out-of-order signers: certificate", () => {
    const b = tampered((b) => {
      const sigs = b.headers[3].certificate.signatures;
      [sigs[0], sigs[1]] = [sigs[1], sigs[0]];
    });
    expectFailed(verifyBundle(b, genesis), "certificate");
    const forged = tampered((b) => {
      b.headers[4].certificate = certify(b.headers[4].header, [
        [1, "DE-validator"],
        [2, "CH-validator"],
        [3, "mallory"],
      ]);
    });
    expectFailed(verifyBundle(forged, genesis), "certificate");
  });
});

describe("re-signed tamperings (the test kit's keys sign what the tampering changed)", () => {
  test("resealing an untouched bundle reproduces the Rust certificates exactly", () => {
    // Ed25519 signatures are deterministic: the same keys sign the same bytes the same way.
    const b = reseal(copy(golden), []);
    expect(b).toEqual(golden);
  });

  test("a header that does not link to its parent: broken_link", () => {
    const b = copy(golden);
    b.headers[3].header.prev_hash = "11".repeat(32);
    b.headers[3].certificate = certify(b.headers[3].header, GENESIS_SIGNERS);
    expectFailed(verifyBundle(b, genesis), "broken_link");
    const first = copy(golden);
    first.headers[0].header.prev_hash = "22".repeat(32);
    first.headers[0].certificate = certify(first.headers[0].header, GENESIS_SIGNERS);
    expectFailed(verifyBundle(first, genesis), "broken_link");
  });

  test("a header of height 0 or of another chain: missing_header, wrong_chain", () => {
    const zero = copy(golden);
    zero.headers[0].header.height = 0;
    zero.headers[0].certificate = certify(zero.headers[0].header, GENESIS_SIGNERS);
    expectFailed(verifyBundle(zero, genesis), "missing_header");
    const other = copy(golden);
    other.headers[2].header.chain_id = "33".repeat(32);
    expectFailed(verifyBundle(other, genesis), "wrong_chain");
  });

  test("a freeze signed by a collector: rule", () => {
    const b = copy(golden);
    signTx(b.events[3].tx, "alice");
    reseal(b, [b.events[3]]);
    expectFailed(verifyBundle(b, genesis), "rule");
  });

  test("a transfer signed by another than the owner: rule", () => {
    const b = copy(golden);
    signTx(b.events[2].tx, "alice"); // bob holds it then
    reseal(b, [b.events[2]]);
    expectFailed(verifyBundle(b, genesis), "rule");
  });

  test("a transfer naming a stale last event: chain_gap", () => {
    const b = copy(golden);
    b.events[2].tx.body.last_event = "44".repeat(32);
    signTx(b.events[2].tx, "bob");
    reseal(b, [b.events[2]]);
    expectFailed(verifyBundle(b, genesis), "chain_gap");
  });

  test("a transfer by the approved account after the deadline: rule", () => {
    const b = copy(golden);
    b.events[5].tx.body.until = { height: 7 }; // dave's transfer is at height 8
    signTx(b.events[5].tx, "carol");
    reseal(b, [b.events[5]]);
    b.events[6].tx.body.last_event = toHex(
      eventHashOf("AT-2026-001#42", lastEventBefore(b, 5), txId(readSignedTx(b.events[5].tx))),
    );
    signTx(b.events[6].tx, "dave");
    reseal(b, [b.events[6]]);
    expectFailed(verifyBundle(b, genesis), "rule");
  });

  test("the unfreeze replaced by a redeem of the frozen stamp: rule", () => {
    const b = copy(golden);
    b.events[4].tx.body = { kind: "redeem", stamp: "AT-2026-001#42" };
    signTx(b.events[4].tx, "AT-issuer");
    reseal(b, [b.events[4]]);
    expectFailed(verifyBundle(b, genesis), "rule");
  });

  test("an event of another stamp: foreign_event", () => {
    const b = copy(golden);
    b.events[3].tx.body.stamp = "AT-2026-001#43";
    signTx(b.events[3].tx, "AT-issuer");
    reseal(b, [b.events[3]]);
    expectFailed(verifyBundle(b, genesis), "foreign_event");
    const other = copy(golden);
    other.events[3].tx.body = { kind: "close_issue", issue: "AT-2026-001" };
    signTx(other.events[3].tx, "AT-issuer");
    reseal(other, [other.events[3]]);
    expectFailed(verifyBundle(other, genesis), "foreign_event");
  });

  test("a second mint of the stamp: event_order", () => {
    const b = copy(golden);
    b.events[3].tx.body = copy(golden.events[0].tx.body);
    signTx(b.events[3].tx, "AT-issuer");
    reseal(b, [b.events[3]]);
    expectFailed(verifyBundle(b, genesis), "event_order");
  });

  test("a swap stripped of its cosignature, or cosigned by a stranger: signature", () => {
    // A swap for the transfer at height 3: bob gives #42 to carol, cosigned by carol.
    const b = copy(golden);
    const transfer = b.events[2].tx.body;
    b.events[2].tx.body = {
      kind: "swap",
      give: [{ stamp: "AT-2026-001#42", last_event: transfer.last_event }],
      take: [{ stamp: "AT-2026-001#3", last_event: "55".repeat(32) }],
      counterparty: address("carol"),
    };
    signTx(b.events[2].tx, "bob", ["carol"]);
    reseal(b, [b.events[2]]);
    // The swap verifies and gives #42 to carol, but it is another event than the transfer:
    // the last transfer names the old chain head.
    expectFailed(verifyBundle(b, genesis), "chain_gap");
    // Named anew, the history is consistent; the proven record's last event is not its head.
    const renamed = copy(b);
    renamed.events[6].tx.body.last_event = toHex(lastEventBefore(renamed, 6));
    signTx(renamed.events[6].tx, "dave");
    reseal(renamed, [renamed.events[6]]);
    expectFailed(verifyBundle(renamed, genesis), "record_mismatch");
    const stripped = copy(b);
    stripped.events[2].tx.cosignatures = [];
    expectFailed(verifyBundle(stripped, genesis), "signature");
    const stranger = copy(b);
    signTx(stranger.events[2].tx, "bob", ["mallory"]);
    expectFailed(verifyBundle(stranger, genesis), "signature");
  });

  test("the issue signed by another operator's issuer: issue", () => {
    // The issue and the mint share block 1: re-sign the issue and re-prove both.
    const b = copy(golden);
    signTx(b.issue.tx, "DE-issuer");
    const issueWitness = witnessHash(readSignedTx(b.issue.tx));
    const mintWitness = witnessHash(readSignedTx(b.events[0].tx));
    b.headers[0].header.tx_root = toHex(txRoot([issueWitness, mintWitness]));
    b.events[0].proof.siblings = [toHex(leafOf(issueWitness))];
    reseal(b, []);
    expectFailed(verifyBundle(b, genesis), "issue");
  });
});

function leafOf(witness: Uint8Array): Uint8Array {
  return tagged("cachet/tx-leaf", witness);
}

function lastEventBefore(bundle: any, seq: number): Uint8Array {
  let head: Uint8Array = new Uint8Array(32);
  for (const event of bundle.events.slice(0, seq)) {
    head = eventHashOf("AT-2026-001#42", head, txId(readSignedTx(event.tx)));
  }
  return head;
}

describe("membership (step 2b): a validator key rotation proven in a block of its own", () => {
  // DE-POST's validator key rotates to DE-validator-2 from height 8: proposed by AT,
  // approved by DE and CH in one block at height 6 (a height the bundle has no header of),
  // certified by the genesis validators. Header 8 is then certified by the new set.
  const rotated = "DE-validator-2";
  const newSigners: Array<[number, string]> = [
    [1, rotated],
    [2, "CH-validator"],
    [3, "FR-validator"],
  ];

  function membershipBundle(
    options: { activation?: number; approvers?: string[]; otherProposal?: boolean } = {},
  ): any {
    const activation = options.activation ?? 8;
    const approvers = options.approvers ?? ["DE-issuer", "CH-issuer"];
    const chain = golden.chain_id;
    const proposal = signTx(
      {
        chain_id: chain,
        nonce: 100,
        body: {
          kind: "propose_membership",
          change: { change: "rotate_validator_key", operator: "DE-POST", validator_key: keyHex(rotated) },
          activation_height: activation,
        },
      },
      "AT-issuer",
    );
    const proposalId = toHex(txId(readSignedTx(proposal)));
    const approvals = approvers.map((name, i) => {
      const proposal = options.otherProposal && i === 1 ? "66".repeat(32) : proposalId;
      return signTx({ chain_id: chain, nonce: 100, body: { kind: "approve_membership", proposal } }, name);
    });
    const txs = [proposal, ...approvals];
    const witnesses = txs.map((tx) => witnessHash(readSignedTx(tx)));
    const header = {
      chain_id: chain,
      height: 6,
      prev_hash: "00".repeat(32),
      time_ms: 1767225606000,
      proposer: 2,
      tx_count: txs.length,
      tx_root: toHex(txRoot(witnesses)),
      state_root: "00".repeat(32),
    };
    const included = txs.map((tx, index) => ({
      tx,
      height: 6,
      proof: proofJson(witnesses, index),
    }));
    const b = copy(golden);
    b.membership = {
      changes: [{ proposal: included[0], approvals: included.slice(1) }],
      headers: [{ header, certificate: certify(header, GENESIS_SIGNERS) }],
    };
    reseal(b, [], (height) => (height >= activation ? newSigners : GENESIS_SIGNERS));
    return b;
  }

  test("with the change, certificates by the new key verify: authentic", () => {
    const verdict = verifyBundle(membershipBundle(), genesis);
    expect(verdict.verdict, JSON.stringify(verdict)).toBe("authentic");
  });

  test("without the change, the new key's certificate fails: certificate", () => {
    const b = membershipBundle();
    b.membership = { changes: [], headers: [] };
    expectFailed(verifyBundle(b, genesis), "certificate");
  });

  test("an approval missing, repeated, by a stranger or the proposer, superfluous, late, out of order or for another proposal: membership", () => {
    expectFailed(verifyBundle(membershipBundle({ approvers: ["DE-issuer"] }), genesis), "membership");
    expectFailed(
      verifyBundle(membershipBundle({ approvers: ["DE-issuer", "DE-issuer"] }), genesis),
      "membership",
    );
    expectFailed(
      verifyBundle(membershipBundle({ approvers: ["DE-issuer", "CH-issuer", "FR-issuer"] }), genesis),
      "membership",
    );
    expectFailed(verifyBundle(membershipBundle({ approvers: ["DE-issuer", "mallory"] }), genesis), "membership");
    expectFailed(verifyBundle(membershipBundle({ otherProposal: true }), genesis), "membership");
    expectFailed(
      verifyBundle(membershipBundle({ approvers: ["DE-issuer", "AT-issuer"] }), genesis),
      "membership",
    );
    // Decided at height 6, so the change may apply from height 8 at the earliest.
    expectFailed(verifyBundle(membershipBundle({ activation: 7 }), genesis), "membership");
    const b = membershipBundle();
    b.membership.changes[0].approvals.reverse();
    expectFailed(verifyBundle(b, genesis), "membership");
  });

  test("its header missing or not certified: missing_header, certificate", () => {
    const missing = membershipBundle();
    missing.membership.headers = [];
    expectFailed(verifyBundle(missing, genesis), "missing_header");
    const uncertified = membershipBundle();
    uncertified.membership.headers[0].certificate.signatures.splice(1);
    expectFailed(verifyBundle(uncertified, genesis), "certificate");
    const repeated = membershipBundle();
    repeated.membership.headers.push(copy(repeated.membership.headers[0]));
    expectFailed(verifyBundle(repeated, genesis), "missing_header");
  });

  test("the header hash helper agrees with the certificate", () => {
    const b = membershipBundle();
    const header = readHeader(b.membership.headers[0].header);
    expect(toHex(headerHash(header))).toBe(b.membership.headers[0].certificate.block_hash);
  });
});

function proofJson(witnesses: Uint8Array[], index: number): any {
  const proof = inclusionProof(witnesses, index)!;
  return { index: proof.index, count: proof.count, siblings: proof.siblings.map(toHex) };
}
