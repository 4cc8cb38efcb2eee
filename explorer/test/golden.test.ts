// The canonical encodings and hashes of `specs/vectors/golden.json`, recomputed by the
// browser verifier from each vector's JSON, byte for byte.
import { readFileSync } from "node:fs";
import { describe, expect, test } from "vitest";

import {
  checkAccount,
  chainId,
  cosigningBytes,
  encodeCertificate,
  encodeGenesis,
  encodeHeader,
  encodeSignedTx,
  encodeStampKey,
  encodeStampValue,
  eventHash,
  formatAddress,
  headerHash,
  inclusionProof,
  leafHash,
  nodeHash,
  parseAddress,
  parseStampId,
  precommitSigningBytes,
  readCertificate,
  readGenesis,
  readHeader,
  readSignedTx,
  signingBytes,
  stampTreeKey,
  stampTreeValue,
  toHex,
  txId,
  txRoot,
  verifyCertificate,
  verifyInclusion,
  verifyTx,
  witnessHash,
  type StampId,
  type StampState,
} from "../src/verify/index";
import { parseHex } from "../src/verify/bytes";
import { plainSha256, ZERO_HASH } from "../src/verify/hash";

type Vectors = Record<string, Record<string, unknown>>;
const golden: Vectors = JSON.parse(
  readFileSync(new URL("../../specs/vectors/golden.json", import.meta.url), "utf8"),
);

function bytes(hex: unknown): Uint8Array {
  const out = parseHex(String(hex), String(hex).length / 2);
  if (out === null) throw new Error(`bad hex in vectors: ${String(hex)}`);
  return out;
}

function stamp(text: string): StampId {
  const parsed = parseStampId(text);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

/** Every kind this file checks; the last test makes sure none in golden.json is left out. */
const covered = new Set<string>();

const genesisVector = golden.genesis!;
const genesis = readGenesis(genesisVector.json);
const chain = chainId(genesis);

describe("golden vectors", () => {
  test("genesis: encoding and chain id", () => {
    covered.add("genesis");
    expect(toHex(encodeGenesis(genesis))).toBe(genesisVector.encoding);
    expect(toHex(chain)).toBe(genesisVector.chain_id);
  });

  const txKinds = Object.keys(golden).filter((name) => name.startsWith("tx_") && "encoding" in golden[name]!);
  test.each(txKinds)("%s: encoding, signing bytes, id, witness hash, signatures", (name) => {
    covered.add(name);
    const v = golden[name]!;
    const tx = readSignedTx(v.json);
    expect(toHex(encodeSignedTx(tx))).toBe(v.encoding);
    expect(toHex(signingBytes(tx))).toBe(v.signing_bytes);
    expect(toHex(cosigningBytes(tx))).toBe(v.cosigning_bytes);
    expect(toHex(txId(tx))).toBe(v.tx_id);
    expect(toHex(witnessHash(tx))).toBe(v.witness_hash);
    // Each vector is a validly signed transaction of the golden chain.
    expect(verifyTx(tx, chain)).toBeNull();
    // ... and not of another chain.
    expect(verifyTx(tx, plainSha256(new Uint8Array([1])))).toMatch(/is for chain/);
  });

  test("tx_root_3 and tx_root_empty: transaction tree roots and inclusion proofs", () => {
    covered.add("tx_root_3");
    covered.add("tx_root_empty");
    const v = golden.tx_root_3!;
    const leaves = (v.witness_hashes as string[]).map(bytes);
    // The three leaves are the witness hashes of the first three transactions.
    expect(leaves.map(toHex)).toEqual(
      ["tx_create_issue", "tx_mint", "tx_close_issue"].map((n) => golden[n]!.witness_hash),
    );
    expect(toHex(txRoot(leaves))).toBe(v.root);
    expect(toHex(txRoot([]))).toBe(golden.tx_root_empty!.root);
    const root = bytes(v.root);
    leaves.forEach((leaf, i) => {
      const proof = inclusionProof(leaves, i)!;
      expect(verifyInclusion(root, leaf, proof)).toBe(true);
      expect(verifyInclusion(root, leaf, { ...proof, index: (i + 1) % 3 })).toBe(false);
      expect(verifyInclusion(root, ZERO_HASH, proof)).toBe(false);
    });
  });

  test("block_header: encoding and hash", () => {
    covered.add("block_header");
    const v = golden.block_header!;
    const header = readHeader(v.json);
    expect(toHex(encodeHeader(header))).toBe(v.encoding);
    expect(toHex(headerHash(header))).toBe(v.hash);
    expect(toHex(header.tx_root)).toBe(golden.tx_root_3!.root);
  });

  test("precommit: vote signing bytes, certificate encoding, certificate verifies", () => {
    covered.add("precommit");
    const v = golden.precommit!;
    const header = readHeader(golden.block_header!.json);
    const cert = readCertificate(v.certificate);
    expect(toHex(encodeCertificate(cert))).toBe(v.encoding);
    expect(toHex(precommitSigningBytes(chain, 1n, 0, headerHash(header)))).toBe(v.signing_bytes);
    const validators = genesis.operators.map((op) => op.validator_key);
    expect(verifyCertificate(cert, header, validators)).toBeNull();
    expect(verifyCertificate(cert, { ...header, time_ms: header.time_ms + 1n }, validators)).toMatch(
      /certificate is for block/,
    );
    expect(verifyCertificate({ ...cert, round: 1 }, header, validators)).toMatch(/does not verify/);
  });

  test("state_stamp: state key and value encodings, tree key and value, leaf and node hashes", () => {
    covered.add("state_stamp");
    const v = golden.state_stamp!;
    // The record of the Rust vector: owned by bob (the receiver of tx_transfer), frozen as
    // stolen, approved to carol (the account of tx_approve) until height 99.
    const bob = parseAddress((golden.tx_transfer!.json as { body: { to: string } }).body.to)!;
    const carol = parseAddress((golden.tx_approve!.json as { body: { operator: string } }).body.operator)!;
    const record: StampState = {
      owner: bob,
      status: { status: "frozen", reason: "stolen", case_ref: "POL-1" },
      last_event: plainSha256(new TextEncoder().encode("e")),
      event_count: 2,
      approval: { operator: carol, until: { kind: "height", value: 99n } },
    };
    const s42 = stamp("AT-2026-001#42");
    expect(toHex(encodeStampKey(s42))).toBe(v.key_encoding);
    expect(toHex(stampTreeKey(s42))).toBe(v.tree_key);
    expect(toHex(encodeStampValue(record))).toBe(v.value_encoding);
    expect(toHex(stampTreeValue(record))).toBe(v.tree_value);
    const leaf = leafHash(stampTreeKey(s42), stampTreeValue(record));
    expect(toHex(leaf)).toBe(v.leaf_hash);
    expect(toHex(nodeHash(leaf, ZERO_HASH))).toBe(v.node_hash_of_leaf_and_empty);
  });

  test("event_hash: the first event of a stamp", () => {
    covered.add("event_hash");
    const v = golden.event_hash!;
    expect(v.tx_id).toBe(golden.tx_mint!.tx_id);
    expect(toHex(eventHash(stamp(String(v.stamp)), bytes(v.prev_event), bytes(v.tx_id)))).toBe(
      v.event_hash,
    );
  });

  test("addresses in the vectors round-trip, and their keys are canonical account keys", () => {
    const texts = new Set<string>();
    const collect = (value: unknown): void => {
      if (typeof value === "string" && value.startsWith("cachet1")) texts.add(value);
      else if (Array.isArray(value)) value.forEach(collect);
      else if (typeof value === "object" && value !== null) Object.values(value).forEach(collect);
    };
    collect(golden);
    expect(texts.size).toBeGreaterThan(4);
    for (const text of texts) {
      const key = parseAddress(text);
      expect(key, text).not.toBeNull();
      expect(formatAddress(key!)).toBe(text);
      expect(checkAccount(key!)).toBeNull();
    }
  });

  test("every kind in golden.json is covered", () => {
    expect(Object.keys(golden).filter((name) => !covered.has(name))).toEqual([]);
  });
});
