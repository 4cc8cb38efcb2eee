// Test helpers: the vectors, and re-signing with the Rust test kit's deterministic keys
// (`crates/testkit`: the seed of `key(name)` is `H("cachet/testkit-key", name)`), so that a
// test can change a transaction or header and still carry valid signatures.
import { readFileSync } from "node:fs";
import { ed25519 } from "@noble/curves/ed25519.js";

import {
  cosigningBytes,
  formatAddress,
  headerHash,
  precommitSigningBytes,
  readHeader,
  readSignedTx,
  signingBytes,
  toHex,
  witnessHash,
  type InclusionProof,
} from "../src/verify/index";
import { parseHex, utf8 } from "../src/verify/bytes";
import { tagged } from "../src/verify/hash";

/** Reads a JSON file of `specs/vectors/`. */
export function vector(name: string): any {
  return JSON.parse(readFileSync(new URL(`../../specs/vectors/${name}`, import.meta.url), "utf8"));
}

/** A deep copy of JSON. */
export function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

/** A test kit key: its seed and public key. */
export interface TestKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
}

/** The Rust test kit's `key(name)`. */
export function key(name: string): TestKey {
  const seed = tagged("cachet/testkit-key", utf8(name));
  return { seed, publicKey: ed25519.getPublicKey(seed) };
}

/** Hex of a test key's public key. */
export function keyHex(name: string): string {
  return toHex(key(name).publicKey);
}

/** The address `cachet1...` of a test key. */
export function address(name: string): string {
  return formatAddress(key(name).publicKey);
}

function bytes(hex: string): Uint8Array {
  return parseHex(hex, hex.length / 2)!;
}

/** Signs a transaction's JSON in place with `signer` (setting `signer` and `signature`). */
export function signTx(txJson: any, signer: string, cosigners: string[] = []): any {
  txJson.signer = keyHex(signer);
  txJson.signature = "00".repeat(64); // replaced below; signatures are not signed over
  txJson.cosignatures = [];
  const tx = readSignedTx(txJson);
  txJson.signature = toHex(ed25519.sign(signingBytes(tx), key(signer).seed));
  const cosigning = cosigningBytes(tx);
  txJson.cosignatures = cosigners
    .map((name) => ({ signer: keyHex(name), signature: toHex(ed25519.sign(cosigning, key(name).seed)) }))
    .sort((a, b) => (a.signer < b.signer ? -1 : 1));
  return txJson;
}

/** A transaction's witness hash, from its JSON. */
export function witness(txJson: any): Uint8Array {
  return witnessHash(readSignedTx(txJson));
}

/** The root an inclusion proof leads to from `leaf` (as `verify_inclusion` computes it). */
export function rootFromProof(leafWitness: Uint8Array, proof: InclusionProof): Uint8Array {
  const split = (n: number) => {
    let k = 1;
    while (k * 2 < n) k *= 2;
    return k;
  };
  let lo = 0;
  let hi = proof.count;
  const sides: boolean[] = [];
  while (hi - lo > 1) {
    const k = split(hi - lo);
    if (proof.index - lo < k) {
      sides.push(true);
      hi = lo + k;
    } else {
      sides.push(false);
      lo += k;
    }
  }
  let hash = tagged("cachet/tx-leaf", leafWitness);
  sides.reverse().forEach((left, i) => {
    const sibling = proof.siblings[i]!;
    hash = left ? tagged("cachet/tx-node", hash, sibling) : tagged("cachet/tx-node", sibling, hash);
  });
  return hash;
}

/**
 * Certifies a header's JSON: a certificate of round 0 signed by each `[validator index,
 * test key name]` of `signers` (`CommitCertificate::sign`).
 */
export function certify(headerJson: any, signers: Array<[number, string]>): any {
  const header = readHeader(headerJson);
  const hash = headerHash(header);
  const message = precommitSigningBytes(header.chain_id, header.height, 0, hash);
  return {
    height: Number(header.height),
    round: 0,
    block_hash: toHex(hash),
    signatures: signers.map(([validator, name]) => ({
      validator,
      signature: toHex(ed25519.sign(message, key(name).seed)),
    })),
  };
}

/** Validators 1..3 of the 4-operator genesis, as the Rust test chain signs its blocks. */
export const GENESIS_SIGNERS: Array<[number, string]> = [
  [1, "DE-validator"],
  [2, "CH-validator"],
  [3, "FR-validator"],
];

/**
 * After transactions of the bundle changed: sets the `tx_root` of each changed
 * transaction's header to the root its proof now leads to, re-links every header to the
 * one before it (where heights are consecutive) and re-certifies every header with
 * `signers(height)`. Only for blocks whose other transactions did not change.
 */
export function reseal(
  bundle: any,
  changed: any[],
  signers: (height: number) => Array<[number, string]> = () => GENESIS_SIGNERS,
): any {
  for (const included of changed) {
    const entry = bundle.headers.find((h: any) => h.header.height === included.height);
    const proof: InclusionProof = {
      index: included.proof.index,
      count: included.proof.count,
      siblings: included.proof.siblings.map(bytes),
    };
    entry.header.tx_root = toHex(rootFromProof(witness(included.tx), proof));
  }
  let previous: any = null;
  for (const entry of bundle.headers) {
    if (previous !== null && previous.height + 1 === entry.header.height) {
      entry.header.prev_hash = toHex(headerHash(readHeader(previous)));
    }
    entry.certificate = certify(entry.header, signers(entry.header.height));
    previous = entry.header;
  }
  return bundle;
}
