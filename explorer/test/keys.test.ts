// Keys, signatures and addresses (`crates/types/src/keys.rs` tests): the canonical account
// key rule in its order, ZIP-215 signatures, strict bech32m addresses; and genesis checks.
import { describe, expect, test } from "vitest";
import { ed25519, ED25519_TORSION_SUBGROUP } from "@noble/curves/ed25519.js";
import { bech32, bech32m } from "@scure/base";

import {
  checkAccount,
  formatAddress,
  genesisChainId,
  parseAddress,
  validateGenesis,
  verifySignature,
} from "../src/verify/index";
import { copy, key, vector } from "./helpers";

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function le(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

describe("canonical account keys (ledger.md#canonical-account-keys)", () => {
  test("a real key passes", () => {
    expect(checkAccount(key("alice").publicKey)).toBeNull();
  });

  test("not a curve point: invalid_key", () => {
    // y = 2 is not the y of any point of edwards25519.
    expect(checkAccount(le(2n))).toBe("invalid_key");
  });

  test("the identity and other small-order points: weak_key", () => {
    expect(checkAccount(le(1n))).toBe("weak_key");
    for (const hex of ED25519_TORSION_SUBGROUP) {
      const point = ed25519.Point.fromHex(hex);
      expect(checkAccount(point.toBytes())).toBe("weak_key");
    }
    // (R = identity, s = 0) verifies under cofactored rules for any message: refused by key.
    const forged = new Uint8Array(64);
    forged[0] = 1;
    expect(verifySignature(le(1n), new Uint8Array([1, 2, 3]), forged)).toBe("weak_key");
  });

  test("y + p for a point of large order: non_canonical_key", () => {
    let found = false;
    for (let y = 2n; y < 19n; y++) {
      let point;
      try {
        point = ed25519.Point.fromBytes(le(y), true);
      } catch {
        continue;
      }
      if (point.isSmallOrder()) continue;
      expect(checkAccount(le(y + P))).toBe("non_canonical_key");
      found = true;
      break;
    }
    expect(found).toBe(true);
  });

  test("a key plus a torsion point: mixed_order_key", () => {
    const point = ed25519.Point.fromBytes(key("mixed").publicKey);
    const torsion = ed25519.Point.fromHex(ED25519_TORSION_SUBGROUP[1]!);
    const mixed = point.add(torsion).toBytes();
    expect(checkAccount(mixed)).toBe("mixed_order_key");
    const message = new Uint8Array([7]);
    expect(verifySignature(mixed, message, ed25519.sign(message, key("mixed").seed))).toBe(
      "mixed_order_key",
    );
  });
});

describe("signatures under ZIP-215", () => {
  const k = key("signer");
  const message = new TextEncoder().encode("mint");
  const signature = ed25519.sign(message, k.seed);

  test("valid, tampered message, other key", () => {
    expect(verifySignature(k.publicKey, message, signature)).toBeNull();
    expect(verifySignature(k.publicKey, new TextEncoder().encode("mint!"), signature)).toBe(
      "bad_signature",
    );
    expect(verifySignature(key("other").publicKey, message, signature)).toBe("bad_signature");
  });

  test("s at or above the group order is refused", () => {
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(signature[32 + i]!);
    const high = new Uint8Array(signature);
    high.set(le(s + L), 32);
    expect(verifySignature(k.publicKey, message, high)).toBe("bad_signature");
  });
});

describe("addresses (encoding.md#account-addresses)", () => {
  const alice = key("alice").publicKey;
  const text = formatAddress(alice);

  test("round trip", () => {
    expect(text).toMatch(/^cachet1[02-9ac-hj-np-z]{58}$/);
    expect(parseAddress(text)).toEqual(alice);
  });

  test("upper case, another prefix, a bad checksum, another length are refused", () => {
    expect(parseAddress(text.toUpperCase())).toBeNull();
    expect(parseAddress(bech32m.encode("other", bech32m.toWords(alice)))).toBeNull();
    const typo = text.slice(0, 12) + (text[12] === "q" ? "p" : "q") + text.slice(13);
    expect(parseAddress(typo)).toBeNull();
    expect(parseAddress(bech32m.encode("cachet", bech32m.toWords(alice.slice(0, 31))))).toBeNull();
    expect(parseAddress(bech32m.encode("cachet", bech32m.toWords(new Uint8Array(33))))).toBeNull();
    // A bech32 (not bech32m) checksum.
    expect(parseAddress(bech32.encode("cachet", bech32.toWords(alice)))).toBeNull();
  });

  test("as in Rust, the 4 bits after the 32nd byte must be zero: one spelling per account", () => {
    for (const bits of [0b0001, 0b0101, 0b1111]) {
      const words = bech32m.toWords(alice);
      words[51] = words[51]! | bits;
      const padded = bech32m.encode("cachet", words);
      expect(padded).not.toBe(text);
      expect(parseAddress(padded)).toBeNull();
    }
    // The same example as the Rust test `an_address_has_one_spelling`.
    expect(parseAddress("cachet1c0ukxuhwfhpqduaffnjpyxlkaxhmdrs9dey427vxjq7ccme2u9qs74uqhn")).not.toBeNull();
    expect(parseAddress("cachet1c0ukxuhwfhpqduaffnjpyxlkaxhmdrs9dey427vxjq7ccme2u9q3rrg42p")).toBeNull();
  });
});

describe("genesis (ledger.md#genesis)", () => {
  const genesis = vector("genesis-4-operators.json");
  const golden = vector("golden.json").genesis;

  test("chain ids", () => {
    expect(genesisChainId(golden.json)).toBe(golden.chain_id);
    expect(genesisChainId(genesis)).toBe(vector("bundle-AT-2026-001-42.json").chain_id);
    expect(() => genesisChainId({})).toThrow(/invalid genesis: missing field `chain_name`/);
  });

  test("each rule names its problem", () => {
    expect(() => validateGenesis(genesis)).not.toThrow();
    const cases: Array<[(g: any) => void, RegExp]> = [
      [(g) => (g.chain_name = ""), /chain name/],
      [(g) => (g.chain_name = "a\u0007b"), /control characters/],
      [(g) => (g.operators = []), /1 to 256 operators, this one has 0/],
      [(g) => (g.operators = Array.from({ length: 257 }, () => g.operators[0])), /this one has 257/],
      [(g) => (g.operators[1].id = g.operators[0].id), /AT-POST appears twice/],
      [(g) => (g.operators[2].node_key = g.operators[0].node_key), /CH-POST appears twice/],
      [(g) => (g.operators[1].validator_key = "01" + "00".repeat(31)), /DE-POST has a weak or invalid key/],
      [(g) => (g.operators[1].name = ""), /operator name/],
      [(g) => (g.operators[1].id = "de-post"), /operator id/],
      [(g) => (g.operators[1].country = "D"), /country code/],
      [(g) => (g.operators[1].issuer = "cachet1xyz"), /address/],
      [(g) => (g.params.max_tx_bytes = 255), /invalid chain parameter/],
      [(g) => (g.params.max_block_bytes = 1000), /invalid chain parameter/],
      [(g) => (g.params.max_print_run = 0), /invalid chain parameter/],
      [(g) => (g.genesis_time_ms = 2 ** 60), /not below 2\^53/],
    ];
    for (const [alter, message] of cases) {
      const bad = copy(genesis);
      alter(bad);
      expect(() => validateGenesis(bad), String(message)).toThrow(message);
    }
  });
});
