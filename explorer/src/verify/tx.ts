/**
 * Transactions: ids, witness hashes, and the checks that need no ledger state
 * (`crates/types/src/tx.rs`; `specs/encoding.md#transaction-ids-and-witness-hashes`,
 * `specs/ledger.md#transactions`).
 */

import { compareBytes, equalBytes, toHex } from "./bytes";
import {
  cosigningBytes,
  encodeSignedTx,
  signingBytes,
} from "./encodings";
import { tagged } from "./hash";
import { checkText, idError } from "./ids";
import {
  checkAccount,
  formatAddress,
  SIGNATURE_ERROR_TEXT,
  verifySignature,
} from "./keys";
import type { Deadline, Hash, IssueRecord, Operator, SignedTx } from "./types";

/** Hash tag of transaction ids (over the signing bytes). */
export const TX_ID_TAG = "cachet/tx-id";
/** Hash tag of witness hashes (over the whole encoding, signatures included). */
export const TX_WITNESS_TAG = "cachet/tx-witness";

/** Bounds on free-text fields and lists, in bytes or items (`tx::limits`). */
export const LIMITS = {
  TITLE_MAX: 200,
  WNS_MAX: 32,
  DESIGN_URI_MAX: 512,
  CASE_REF_MAX: 64,
  OPERATOR_NAME_MAX: 128,
  VARIANT_NAME_MAX: 64,
  VARIANTS_MAX: 64,
  CO_ISSUERS_MAX: 16,
  SWAP_SIDE_MAX: 16,
} as const;

/** The transaction id: `H(cachet/tx-id, signing_bytes)`; it leaves out all signatures. */
export function txId(tx: SignedTx): Hash {
  return tagged(TX_ID_TAG, signingBytes(tx));
}

/** The witness hash: `H(cachet/tx-witness, encode(tx))`, signatures included. */
export function witnessHash(tx: SignedTx): Hash {
  return tagged(TX_WITNESS_TAG, encodeSignedTx(tx));
}

/** True if a block at `height` and `time_ms` is past the deadline (`Deadline::passed`). */
export function deadlinePassed(until: Deadline, height: bigint, timeMs: bigint): boolean {
  return until.kind === "height" ? height > until.value : timeMs > until.value;
}

function fieldError(what: string, value: number | bigint | string, rule: string): string {
  return idError(what, String(value), rule);
}

/**
 * Checks an issue record's free-text fields and bounds (`IssueRecord::check_fields`).
 * Returns the error message or null.
 */
export function checkIssueFields(r: IssueRecord): string | null {
  const text =
    checkText("title", r.title, 1, LIMITS.TITLE_MAX) ??
    (r.wns_number !== null ? checkText("WNS number", r.wns_number, 1, LIMITS.WNS_MAX) : null) ??
    checkText("design URI", r.design_uri, 1, LIMITS.DESIGN_URI_MAX);
  if (text !== null) return text;
  if (r.year < 1840 || r.year > 9999) return fieldError("year", r.year, "from 1840 to 9999");
  if (r.variants.length > LIMITS.VARIANTS_MAX) {
    return fieldError("variants", r.variants.length, "at most 64");
  }
  let total = 0;
  for (const [index, variant] of r.variants.entries()) {
    const name = checkText("variant name", variant.name, 1, LIMITS.VARIANT_NAME_MAX);
    if (name !== null) return name;
    if (r.variants.slice(0, index).some((v) => v.name === variant.name)) {
      return idError("variant name", variant.name, "unique within the issue");
    }
    if (variant.count === 0) return fieldError("variant count", 0, "at least 1");
    total += variant.count; // at most 64 u32s: exact in a double
  }
  if (r.variants.length > 0 && total !== r.print_run) {
    return fieldError("sum of variant counts", total, "equal to the print run");
  }
  if (r.co_issuers.length > LIMITS.CO_ISSUERS_MAX) {
    return fieldError("co-issuers", r.co_issuers.length, "at most 16");
  }
  let shares = 0;
  for (const [index, co] of r.co_issuers.entries()) {
    if (
      co.operator === r.operator ||
      r.co_issuers.slice(0, index).some((c) => c.operator === co.operator)
    ) {
      return idError("co-issuer", co.operator, "each named once, and not the lead operator");
    }
    if (co.share === 0) return fieldError("co-issuer share", 0, "at least 1");
    shares += co.share;
  }
  if (shares > r.print_run) {
    return fieldError("sum of co-issuer shares", shares, "at most the print run");
  }
  return null;
}

/**
 * The serials of variant `name` as an inclusive range, or null if there is no such variant
 * (`IssueRecord::variant_serials`): variants take consecutive serials in declared order, the
 * first from 1. Like the Rust code (checked u32 arithmetic), a variant of count 0 or a
 * serial past 2^32 - 1 before the named variant gives null.
 */
export function variantSerials(r: IssueRecord, name: string): { index: number; first: number; last: number } | null {
  const U32_MAX = 0xffff_ffff;
  let first = 1;
  for (const [index, variant] of r.variants.entries()) {
    if (variant.count === 0) return null;
    const last = first + variant.count - 1;
    if (last > U32_MAX) return null;
    if (variant.name === name) return { index, first, last };
    if (last + 1 > U32_MAX) return null;
    first = last + 1;
  }
  return null;
}

/**
 * Checks an operator's own fields (`Operator::check`): its name, then its validator key,
 * node key and issuer as canonical account keys. Returns null, or the error with its kind
 * (`field`: a text rule; `key`: a key rule) and message.
 */
export function checkOperator(op: Operator): { kind: "field" | "key"; message: string } | null {
  const name = checkText("operator name", op.name, 1, LIMITS.OPERATOR_NAME_MAX);
  if (name !== null) return { kind: "field", message: name };
  for (const key of [op.validator_key, op.node_key, op.issuer]) {
    const error = checkAccount(key);
    if (error !== null) return { kind: "key", message: SIGNATURE_ERROR_TEXT[error] };
  }
  return null;
}

/**
 * The stateless checks of a transaction (`SignedTx::check_stateless`), in the Rust order:
 * the chain id; the cosignatures' form (exactly one by the swap's counterparty, or one per
 * co-issuer of a `create_issue`, none otherwise; ascending by cosigner key; none by the
 * author); then the fields of its body. Returns the error message (the Rust
 * `TxCheckError` Display) or null.
 */
export function checkStateless(tx: SignedTx, chainId: Hash): string | null {
  if (!equalBytes(tx.chain_id, chainId)) {
    return `transaction is for chain ${toHex(tx.chain_id)}, this chain is ${toHex(chainId)}`;
  }
  const body = tx.body;
  if (body.kind === "swap" && equalBytes(body.counterparty, tx.signer)) {
    return idError("swap counterparty", formatAddress(body.counterparty), "another account than the author");
  }
  const expected =
    body.kind === "swap" ? 1 : body.kind === "create_issue" ? body.record.co_issuers.length : 0;
  if (tx.cosignatures.length !== expected) {
    return idError(
      "cosignatures",
      String(tx.cosignatures.length),
      "exactly one per party that must agree (swap counterparty, co-issuers)",
    );
  }
  if (body.kind === "swap" && !equalBytes(tx.cosignatures[0]!.signer, body.counterparty)) {
    return idError("cosigner", formatAddress(tx.cosignatures[0]!.signer), "the swap's counterparty");
  }
  for (const [index, co] of tx.cosignatures.entries()) {
    if (
      equalBytes(co.signer, tx.signer) ||
      (index > 0 && compareBytes(tx.cosignatures[index - 1]!.signer, co.signer) >= 0)
    ) {
      return idError(
        "cosigner",
        formatAddress(co.signer),
        "each cosigns once, in ascending key order, and not the author",
      );
    }
  }
  switch (body.kind) {
    case "create_issue":
      return checkIssueFields(body.record);
    case "mint":
      return body.variant !== null
        ? checkText("variant name", body.variant, 1, LIMITS.VARIANT_NAME_MAX)
        : null;
    case "swap":
      for (const [what, side] of [
        ["stamps given", body.give],
        ["stamps taken", body.take],
      ] as const) {
        if (side.length === 0 || side.length > LIMITS.SWAP_SIDE_MAX) {
          return fieldError(what, side.length, "from 1 to 16");
        }
      }
      return null;
    case "freeze":
    case "unfreeze":
      return checkText("case reference", body.case_ref, 1, LIMITS.CASE_REF_MAX);
    case "propose_membership": {
      const change = body.change;
      if (change.change === "add_operator") return checkOperator(change.operator)?.message ?? null;
      if (change.change === "rotate_validator_key") {
        const error = checkAccount(change.validator_key);
        return error === null ? null : SIGNATURE_ERROR_TEXT[error];
      }
      if (change.change === "rotate_node_key") {
        const error = checkAccount(change.node_key);
        return error === null ? null : SIGNATURE_ERROR_TEXT[error];
      }
      return null;
    }
    default:
      return null;
  }
}

/**
 * The full check without ledger state (`SignedTx::verify`): the stateless checks, then the
 * signer's key and signature over the signing bytes, then each cosigner's key and
 * cosignature over the cosigning bytes (ZIP-215, keys first). Returns the error message,
 * or null when the transaction verifies.
 */
export function verifyTx(tx: SignedTx, chainId: Hash): string | null {
  const stateless = checkStateless(tx, chainId);
  if (stateless !== null) return stateless;
  const signature = verifySignature(tx.signer, signingBytes(tx), tx.signature);
  if (signature !== null) return SIGNATURE_ERROR_TEXT[signature];
  if (tx.cosignatures.length > 0) {
    const message = cosigningBytes(tx);
    for (const co of tx.cosignatures) {
      const error = verifySignature(co.signer, message, co.signature);
      if (error !== null) return SIGNATURE_ERROR_TEXT[error];
    }
  }
  return null;
}
