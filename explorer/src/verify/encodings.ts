/**
 * The canonical encodings of Cachet's values (`specs/encoding.md`), field by field in the
 * declaration order of the Rust types (`crates/types/src/{genesis,tx,block}.rs`,
 * `crates/state/src/records.rs`). Each `putX` writes a value without the version byte;
 * `encodeX` gives a top-level encoding (version byte first).
 */

import { asciiPadded } from "./bytes";
import { encode, type Writer } from "./codec";
import {
  type BlockHeader,
  type CommitCertificate,
  type Deadline,
  FREEZE_REASONS,
  type FreezeReason,
  type Genesis,
  type Hash,
  type IssueRecord,
  MEMBERSHIP_CHANGES,
  type MembershipChange,
  type Operator,
  type PublicKey,
  type SignedTx,
  STAMP_STATUSES,
  type StampId,
  type StampState,
  type StampStatus,
  TX_KINDS,
  type TxBody,
} from "./types";

/** Domain of transaction signatures: `CACHET-TX-V1` and four zero bytes. */
export const TX_SIGNING_DOMAIN = asciiPadded("CACHET-TX-V1", 16);
/** Domain of cosignatures: `CACHET-COSIGN-V1`. */
export const TX_COSIGNING_DOMAIN = asciiPadded("CACHET-COSIGN-V1", 16);
/** Domain of consensus votes: `CACHET-VOTE-V1` and two zero bytes. */
export const VOTE_SIGNING_DOMAIN = asciiPadded("CACHET-VOTE-V1", 16);

/** Vote kinds (`VoteKind`): 0 prevote, 1 precommit. Certificates hold precommits. */
export const VOTE_PRECOMMIT = 1;

function putHash(w: Writer, hash: Hash): void {
  w.fixed(hash, 32);
}

function putKey(w: Writer, key: PublicKey): void {
  w.fixed(key, 32);
}

/** A stamp id: the issue (a string), then the serial (u32). */
export function putStampId(w: Writer, stamp: StampId): void {
  w.string(stamp.issue).u32(stamp.serial);
}

/** A genesis operator: id, country, name, validator key, node key, issuer. */
export function putOperator(w: Writer, op: Operator): void {
  w.string(op.id).string(op.country).string(op.name);
  putKey(w, op.validator_key);
  putKey(w, op.node_key);
  putKey(w, op.issuer);
}

/** The genesis: chain name, genesis time, operators, then the five parameters. */
export function putGenesis(w: Writer, g: Genesis): void {
  w.string(g.chain_name).u64(g.genesis_time_ms).vec(g.operators, putOperator);
  const p = g.params;
  w.u32(p.max_block_txs)
    .u32(p.max_block_bytes)
    .u32(p.max_tx_bytes)
    .u32(p.max_mint_per_tx)
    .u32(p.max_print_run);
}

/** Encoding of the genesis, whose tagged hash is the chain id. */
export function encodeGenesis(g: Genesis): Uint8Array {
  return encode((w) => putGenesis(w, g));
}

function putFreezeReason(w: Writer, reason: FreezeReason): void {
  w.variant(FREEZE_REASONS.indexOf(reason));
}

/** A deadline: variant 0 `height` or 1 `time_ms`, then the u64. */
export function putDeadline(w: Writer, until: Deadline): void {
  w.variant(until.kind === "height" ? 0 : 1).u64(until.value);
}

/** An issue record, its fields in declaration order. */
export function putIssueRecord(w: Writer, r: IssueRecord): void {
  w.string(r.id).string(r.operator).string(r.title).string(r.country).u16(r.year);
  w.option(r.wns_number, (x, v) => x.string(v));
  w.u64(r.face_value.amount_minor).string(r.face_value.currency);
  putHash(w, r.design_sha256);
  w.string(r.design_uri).u32(r.print_run);
  w.vec(r.variants, (x, v) => x.string(v.name).u32(v.count));
  w.vec(r.co_issuers, (x, c) => x.string(c.operator).u32(c.share));
}

/** A membership change: its variant index, then its fields. */
export function putMembershipChange(w: Writer, change: MembershipChange): void {
  w.variant(MEMBERSHIP_CHANGES.indexOf(change.change));
  switch (change.change) {
    case "add_operator":
      putOperator(w, change.operator);
      break;
    case "remove_operator":
      w.string(change.operator);
      break;
    case "rotate_validator_key":
      w.string(change.operator);
      putKey(w, change.validator_key);
      break;
    case "rotate_node_key":
      w.string(change.operator);
      putKey(w, change.node_key);
      break;
  }
}

/** A transaction body: its variant index (`ledger.md#transactions`), then its fields. */
export function putTxBody(w: Writer, body: TxBody): void {
  w.variant(TX_KINDS.indexOf(body.kind));
  switch (body.kind) {
    case "create_issue":
      putIssueRecord(w, body.record);
      break;
    case "mint":
      w.string(body.issue).u32(body.first_serial).u32(body.last_serial);
      putKey(w, body.owner);
      w.option(body.variant, (x, v) => x.string(v));
      w.vec(body.claim_keys, putKey);
      break;
    case "claim":
      putStampId(w, body.stamp);
      putKey(w, body.to);
      break;
    case "swap": {
      const leg = (x: Writer, l: { stamp: StampId; last_event: Hash }) => {
        putStampId(x, l.stamp);
        putHash(x, l.last_event);
      };
      w.vec(body.give, leg).vec(body.take, leg);
      putKey(w, body.counterparty);
      break;
    }
    case "close_issue":
      w.string(body.issue);
      break;
    case "transfer":
      putStampId(w, body.stamp);
      putHash(w, body.last_event);
      putKey(w, body.to);
      break;
    case "redeem":
    case "revoke":
      putStampId(w, body.stamp);
      break;
    case "freeze":
      putStampId(w, body.stamp);
      putFreezeReason(w, body.reason);
      w.string(body.case_ref);
      break;
    case "unfreeze":
      putStampId(w, body.stamp);
      w.string(body.case_ref);
      break;
    case "approve":
      putStampId(w, body.stamp);
      putKey(w, body.operator);
      putDeadline(w, body.until);
      break;
    case "burn":
      putStampId(w, body.stamp);
      putHash(w, body.last_event);
      break;
    case "propose_membership":
      putMembershipChange(w, body.change);
      w.u64(body.activation_height);
      break;
    case "approve_membership":
      putHash(w, body.proposal);
      break;
  }
}

/** Encoding of a transaction body alone (to compare two bodies). */
export function encodeTxBody(body: TxBody): Uint8Array {
  return encode((w) => putTxBody(w, body));
}

/** A signed transaction: chain id, signer, nonce, body, signature, cosignatures. */
export function putSignedTx(w: Writer, tx: SignedTx): void {
  putHash(w, tx.chain_id);
  putKey(w, tx.signer);
  w.u64(tx.nonce);
  putTxBody(w, tx.body);
  w.fixed(tx.signature, 64);
  w.vec(tx.cosignatures, (x, c) => {
    putKey(x, c.signer);
    x.fixed(c.signature, 64);
  });
}

/** Encoding of a whole signed transaction (what its witness hash covers). */
export function encodeSignedTx(tx: SignedTx): Uint8Array {
  return encode((w) => putSignedTx(w, tx));
}

function signedFields(domain: Uint8Array, tx: SignedTx): Uint8Array {
  return encode((w) => {
    w.fixed(domain, 16);
    putHash(w, tx.chain_id);
    putKey(w, tx.signer);
    w.u64(tx.nonce);
    putTxBody(w, tx.body);
  });
}

/** The bytes a transaction's signature covers: `encode((TX_SIGNING_DOMAIN, chain_id, signer, nonce, body))`. */
export function signingBytes(tx: SignedTx): Uint8Array {
  return signedFields(TX_SIGNING_DOMAIN, tx);
}

/** The bytes every cosignature covers: the same tuple under `TX_COSIGNING_DOMAIN`. */
export function cosigningBytes(tx: SignedTx): Uint8Array {
  return signedFields(TX_COSIGNING_DOMAIN, tx);
}

/** A block header, its fields in order. */
export function putHeader(w: Writer, h: BlockHeader): void {
  putHash(w, h.chain_id);
  w.u64(h.height);
  putHash(w, h.prev_hash);
  w.u64(h.time_ms).u16(h.proposer).u32(h.tx_count);
  putHash(w, h.tx_root);
  putHash(w, h.state_root);
}

/** Encoding of a block header (what the block hash covers). */
export function encodeHeader(h: BlockHeader): Uint8Array {
  return encode((w) => putHeader(w, h));
}

/** Encoding of a commit certificate: height, round, block hash, signatures. */
export function encodeCertificate(c: CommitCertificate): Uint8Array {
  return encode((w) => {
    w.u64(c.height).u32(c.round);
    putHash(w, c.block_hash);
    w.vec(c.signatures, (x, s) => x.u16(s.validator).fixed(s.signature, 64));
  });
}

/** The bytes a validator signs for a precommit: `encode((domain, chain_id, kind, height, round, block_hash))`. */
export function precommitSigningBytes(
  chainId: Hash,
  height: bigint,
  round: number,
  blockHash: Hash,
): Uint8Array {
  return encode((w) => {
    w.fixed(VOTE_SIGNING_DOMAIN, 16);
    putHash(w, chainId);
    w.variant(VOTE_PRECOMMIT).u64(height).u32(round);
    putHash(w, blockHash);
  });
}

/** Encoding of the stamp id alone (its event hashes start with it). */
export function encodeStampId(stamp: StampId): Uint8Array {
  return encode((w) => putStampId(w, stamp));
}

/** State keys (`StateKey`), variant indices in declaration order. */
const STATE_KEY_STAMP = 1;
/** State values (`StateValue`), variant indices in declaration order. */
const STATE_VALUE_STAMP = 1;

/** Encoding of `StateKey::Stamp(stamp)`. */
export function encodeStampKey(stamp: StampId): Uint8Array {
  return encode((w) => {
    w.variant(STATE_KEY_STAMP);
    putStampId(w, stamp);
  });
}

function putStampStatus(w: Writer, status: StampStatus): void {
  w.variant(STAMP_STATUSES.indexOf(status.status));
  if (status.status === "unclaimed") putKey(w, status.claim_key);
  if (status.status === "frozen") {
    putFreezeReason(w, status.reason);
    w.string(status.case_ref);
  }
}

/** A stamp record: owner, status, last event, event count, approval. */
export function putStampState(w: Writer, s: StampState): void {
  w.option(s.owner, putKey);
  putStampStatus(w, s.status);
  putHash(w, s.last_event);
  w.u32(s.event_count);
  w.option(s.approval, (x, a) => {
    putKey(x, a.operator);
    putDeadline(x, a.until);
  });
}

/** Encoding of `StateValue::Stamp(state)`. */
export function encodeStampValue(state: StampState): Uint8Array {
  return encode((w) => {
    w.variant(STATE_VALUE_STAMP);
    putStampState(w, state);
  });
}

/** Encoding of a stamp record alone (to compare two records). */
export function encodeStampState(state: StampState): Uint8Array {
  return encode((w) => putStampState(w, state));
}
