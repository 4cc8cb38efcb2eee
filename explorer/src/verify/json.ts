/**
 * Reading the JSON forms of `specs/api.md#json-objects` into the values of `types.ts`, as
 * the serde derives of the Rust types do.
 *
 * What serde refuses is refused here with a {@link JsonError} naming the path: a missing
 * field (except `Option` fields, read as null, and fields with a default: `variants`,
 * `co_issuers`, `variant`, `claim_keys`, `cosignatures`, `membership`), a value of the
 * wrong JSON type, an integer out of its range, a hash, key or signature that is not
 * lower-case hex of its length, an address that is not a valid `cachet1...` bech32m, an
 * identifier that breaks its syntax, an unknown enum tag, a string with a lone surrogate
 * (serde_json refuses those). Unknown fields are ignored, as serde does.
 *
 * Integers: a JSON number must be a non-negative integer within its width. A `u64` (heights,
 * nonces, times, amounts) may exceed 2^53, which `JSON.parse` cannot represent exactly:
 * such a number is refused here (it is not a safe integer) rather than silently rounded.
 * A caller that parses JSON losslessly may pass any `u64` as a `bigint` instead. Heights and
 * times in practice are far below 2^53.
 */

import { type Bytes, parseHex } from "./bytes";
import {
  checkCountryCode,
  checkCurrencyCode,
  checkIssueId,
  checkOperatorId,
  parseStampId,
} from "./ids";
import { parseAddress } from "./keys";
import {
  type Approval,
  type BlockHeader,
  type CertifiedHeader,
  type ChainParams,
  type ChangeProof,
  type CommitCertificate,
  type CurrentRecord,
  type Deadline,
  FREEZE_REASONS,
  type FreezeReason,
  type Genesis,
  type IncludedTx,
  type InclusionProof,
  type IssueRecord,
  MEMBERSHIP_CHANGES,
  type MembershipChange,
  type MembershipProof,
  type Operator,
  type ProvenanceBundle,
  type SignedTx,
  type SmtProof,
  STAMP_STATUSES,
  type StampId,
  type StampState,
  type StampStatus,
  type SwapLeg,
  TX_KINDS,
  type TxBody,
} from "./types";

/** A JSON value that is not the form of the type expected, with the path to it. */
export class JsonError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(path === "" ? problem : `${path}: ${problem}`);
    this.name = "JsonError";
  }
}

type Obj = Record<string, unknown>;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return `a ${typeof value}`;
}

/** Text in a message: quoted, and cut at 80 characters like the Rust id errors. */
function shown(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}...` : text);
}

function fail(path: string, problem: string): never {
  throw new JsonError(path, problem);
}

function object(value: unknown, path: string): Obj {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(path, `expected an object, got ${describe(value)}`);
  }
  return value as Obj;
}

function array(value: unknown, path: string): unknown[] {
  if (!Array.isArray(value)) fail(path, `expected an array, got ${describe(value)}`);
  return value;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

/** A required field (serde: `missing field`). */
function required(o: Obj, key: string, path: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(o, key) || o[key] === undefined) {
    fail(path, `missing field \`${key}\``);
  }
  return o[key];
}

/** Whether a field is present (an `Option` or a field with a default may be left out). */
function present(o: Obj, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, key) && o[key] !== undefined;
}

/** An `Option<T>` field: left out or null is none. */
function optional<T>(o: Obj, key: string, path: string, read: (v: unknown, p: string) => T): T | null {
  if (!present(o, key) || o[key] === null) return null;
  return read(o[key], join(path, key));
}

/** A `#[serde(default)]` list field: left out is empty (null is refused, as serde does). */
function defaultList<T>(o: Obj, key: string, path: string, read: (v: unknown, p: string) => T): T[] {
  if (!present(o, key)) return [];
  return list(o[key], join(path, key), read);
}

function field<T>(o: Obj, key: string, path: string, read: (v: unknown, p: string) => T): T {
  return read(required(o, key, path), join(path, key));
}

function list<T>(value: unknown, path: string, read: (v: unknown, p: string) => T): T[] {
  return array(value, path).map((item, i) => read(item, `${path}[${i}]`));
}

/** True if the string holds a lone UTF-16 surrogate (no UTF-8 form; serde_json refuses it). */
function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1); // NaN past the end
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++; // a valid pair
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return true;
    }
  }
  return false;
}

/** A JSON string. */
export function readString(value: unknown, path: string): string {
  if (typeof value !== "string") fail(path, `expected a string, got ${describe(value)}`);
  if (hasLoneSurrogate(value)) fail(path, "string holds a lone surrogate");
  return value;
}

function unsigned(value: unknown, path: string, max: number, what: string): number {
  if (typeof value === "bigint") {
    if (value < 0n || value > BigInt(max)) fail(path, `expected a ${what}, got ${value}`);
    return Number(value);
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    fail(path, `expected a ${what}, got ${typeof value === "number" ? value : describe(value)}`);
  }
  return value;
}

/** A `u16`. */
export function readU16(value: unknown, path: string): number {
  return unsigned(value, path, 0xffff, "u16");
}

/** A `u32`. */
export function readU32(value: unknown, path: string): number {
  return unsigned(value, path, 0xffff_ffff, "u32");
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * A `u64`, as a bigint: a JSON number that is a safe integer (a larger one was rounded by
 * `JSON.parse` and cannot be trusted), or a bigint from a lossless parser.
 */
export function readU64(value: unknown, path: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value > U64_MAX) fail(path, `expected a u64, got ${value}`);
    return value;
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    fail(path, `expected a u64, got ${typeof value === "number" ? value : describe(value)}`);
  }
  if (!Number.isSafeInteger(value)) {
    fail(
      path,
      `integer ${value} is not below 2^53, so JSON.parse may have rounded it; parse the JSON losslessly and pass it as a bigint`,
    );
  }
  return BigInt(value);
}

function hexBytes(value: unknown, path: string, length: number, what: string): Bytes {
  const text = readString(value, path);
  const bytes = parseHex(text, length);
  if (bytes === null) {
    fail(path, `expected ${what} (${2 * length} lower-case hex digits), got ${shown(text)}`);
  }
  return bytes;
}

/** A hash: 64 lower-case hex digits. */
export function readHash(value: unknown, path: string): Bytes {
  return hexBytes(value, path, 32, "a hash");
}

/** A public key: 64 lower-case hex digits. */
export function readKey(value: unknown, path: string): Bytes {
  return hexBytes(value, path, 32, "a public key");
}

/** A signature: 128 lower-case hex digits. */
export function readSignature(value: unknown, path: string): Bytes {
  return hexBytes(value, path, 64, "a signature");
}

/** An account address: `cachet1...` bech32m. */
export function readAddress(value: unknown, path: string): Bytes {
  const text = readString(value, path);
  const address = parseAddress(text);
  if (address === null) {
    fail(path, `invalid address (cachet1..., bech32m with checksum): ${shown(text)}`);
  }
  return address;
}

function checked(check: (text: string) => string | null) {
  return (value: unknown, path: string): string => {
    const text = readString(value, path);
    const error = check(text);
    if (error !== null) fail(path, error);
    return text;
  };
}

/** An operator id. */
export const readOperatorId = checked(checkOperatorId);
/** An issue id. */
export const readIssueId = checked(checkIssueId);
/** A country code. */
export const readCountry = checked(checkCountryCode);
/** A currency code. */
export const readCurrency = checked(checkCurrencyCode);

/** A stamp id `ISSUE#SERIAL`. */
export function readStampId(value: unknown, path: string): StampId {
  const parsed = parseStampId(readString(value, path));
  if (typeof parsed === "string") fail(path, parsed);
  return parsed;
}

/** A unit enum written as a snake_case string. */
function unitEnum<T extends string>(value: unknown, path: string, names: readonly T[], what: string): T {
  const text = readString(value, path);
  if (!(names as readonly string[]).includes(text)) {
    fail(path, `unknown ${what} ${shown(text)}, expected one of ${names.join(", ")}`);
  }
  return text as T;
}

/** The tag of an internally tagged enum (`#[serde(tag = ...)]`). */
function tag<T extends string>(o: Obj, key: string, path: string, names: readonly T[], what: string): T {
  return unitEnum(required(o, key, path), join(path, key), names, what);
}

/** A `FreezeReason`. */
export function readFreezeReason(value: unknown, path: string): FreezeReason {
  return unitEnum(value, path, FREEZE_REASONS, "freeze reason");
}

/** A `Deadline`, externally tagged: `{"height": h}` or `{"time_ms": t}`, one key. */
export function readDeadline(value: unknown, path: string): Deadline {
  const o = object(value, path);
  const keys = Object.keys(o).filter((k) => o[k] !== undefined);
  if (keys.length !== 1 || (keys[0] !== "height" && keys[0] !== "time_ms")) {
    fail(path, 'expected {"height": u64} or {"time_ms": u64}');
  }
  const kind = keys[0];
  return { kind, value: readU64(o[kind], join(path, kind)) };
}

/** A genesis `Operator` (also the operator of an `add_operator` change). */
export function readOperator(value: unknown, path: string): Operator {
  const o = object(value, path);
  return {
    id: field(o, "id", path, readOperatorId),
    country: field(o, "country", path, readCountry),
    name: field(o, "name", path, readString),
    validator_key: field(o, "validator_key", path, readKey),
    node_key: field(o, "node_key", path, readKey),
    issuer: field(o, "issuer", path, readAddress),
  };
}

function readParams(value: unknown, path: string): ChainParams {
  const o = object(value, path);
  return {
    max_block_txs: field(o, "max_block_txs", path, readU32),
    max_block_bytes: field(o, "max_block_bytes", path, readU32),
    max_tx_bytes: field(o, "max_tx_bytes", path, readU32),
    max_mint_per_tx: field(o, "max_mint_per_tx", path, readU32),
    max_print_run: field(o, "max_print_run", path, readU32),
  };
}

/** A `Genesis` (`api.md#chain-genesis-and-membership`). */
export function readGenesis(value: unknown, path = ""): Genesis {
  const o = object(value, path);
  return {
    chain_name: field(o, "chain_name", path, readString),
    genesis_time_ms: field(o, "genesis_time_ms", path, readU64),
    operators: field(o, "operators", path, (v, p) => list(v, p, readOperator)),
    params: field(o, "params", path, readParams),
  };
}

/** An `IssueRecord`. */
export function readIssueRecord(value: unknown, path: string): IssueRecord {
  const o = object(value, path);
  return {
    id: field(o, "id", path, readIssueId),
    operator: field(o, "operator", path, readOperatorId),
    title: field(o, "title", path, readString),
    country: field(o, "country", path, readCountry),
    year: field(o, "year", path, readU16),
    wns_number: optional(o, "wns_number", path, readString),
    face_value: field(o, "face_value", path, (v, p) => {
      const f = object(v, p);
      return {
        amount_minor: field(f, "amount_minor", p, readU64),
        currency: field(f, "currency", p, readCurrency),
      };
    }),
    design_sha256: field(o, "design_sha256", path, readHash),
    design_uri: field(o, "design_uri", path, readString),
    print_run: field(o, "print_run", path, readU32),
    variants: defaultList(o, "variants", path, (v, p) => {
      const x = object(v, p);
      return { name: field(x, "name", p, readString), count: field(x, "count", p, readU32) };
    }),
    co_issuers: defaultList(o, "co_issuers", path, (v, p) => {
      const x = object(v, p);
      return {
        operator: field(x, "operator", p, readOperatorId),
        share: field(x, "share", p, readU32),
      };
    }),
  };
}

function readSwapLeg(value: unknown, path: string): SwapLeg {
  const o = object(value, path);
  return {
    stamp: field(o, "stamp", path, readStampId),
    last_event: field(o, "last_event", path, readHash),
  };
}

/** A `MembershipChange`, internally tagged by `change`. */
export function readMembershipChange(value: unknown, path: string): MembershipChange {
  const o = object(value, path);
  const change = tag(o, "change", path, MEMBERSHIP_CHANGES, "membership change");
  switch (change) {
    case "add_operator":
      return { change, operator: field(o, "operator", path, readOperator) };
    case "remove_operator":
      return { change, operator: field(o, "operator", path, readOperatorId) };
    case "rotate_validator_key":
      return {
        change,
        operator: field(o, "operator", path, readOperatorId),
        validator_key: field(o, "validator_key", path, readKey),
      };
    case "rotate_node_key":
      return {
        change,
        operator: field(o, "operator", path, readOperatorId),
        node_key: field(o, "node_key", path, readKey),
      };
  }
}

/** A `TxBody`, internally tagged by `kind`. */
export function readTxBody(value: unknown, path: string): TxBody {
  const o = object(value, path);
  const kind = tag(o, "kind", path, TX_KINDS, "transaction kind");
  const stamp = (): StampId => field(o, "stamp", path, readStampId);
  switch (kind) {
    case "create_issue":
      return { kind, record: field(o, "record", path, readIssueRecord) };
    case "mint":
      return {
        kind,
        issue: field(o, "issue", path, readIssueId),
        first_serial: field(o, "first_serial", path, readU32),
        last_serial: field(o, "last_serial", path, readU32),
        owner: field(o, "owner", path, readAddress),
        variant: optional(o, "variant", path, readString),
        claim_keys: defaultList(o, "claim_keys", path, readKey),
      };
    case "claim":
      return { kind, stamp: stamp(), to: field(o, "to", path, readAddress) };
    case "swap":
      return {
        kind,
        give: field(o, "give", path, (v, p) => list(v, p, readSwapLeg)),
        take: field(o, "take", path, (v, p) => list(v, p, readSwapLeg)),
        counterparty: field(o, "counterparty", path, readAddress),
      };
    case "close_issue":
      return { kind, issue: field(o, "issue", path, readIssueId) };
    case "transfer":
      return {
        kind,
        stamp: stamp(),
        last_event: field(o, "last_event", path, readHash),
        to: field(o, "to", path, readAddress),
      };
    case "redeem":
      return { kind, stamp: stamp() };
    case "freeze":
      return {
        kind,
        stamp: stamp(),
        reason: field(o, "reason", path, readFreezeReason),
        case_ref: field(o, "case_ref", path, readString),
      };
    case "unfreeze":
      return { kind, stamp: stamp(), case_ref: field(o, "case_ref", path, readString) };
    case "approve":
      return {
        kind,
        stamp: stamp(),
        operator: field(o, "operator", path, readAddress),
        until: field(o, "until", path, readDeadline),
      };
    case "revoke":
      return { kind, stamp: stamp() };
    case "burn":
      return { kind, stamp: stamp(), last_event: field(o, "last_event", path, readHash) };
    case "propose_membership":
      return {
        kind,
        change: field(o, "change", path, readMembershipChange),
        activation_height: field(o, "activation_height", path, readU64),
      };
    case "approve_membership":
      return { kind, proposal: field(o, "proposal", path, readHash) };
  }
}

/** A `SignedTx` (`api.md#transactions`). */
export function readSignedTx(value: unknown, path = ""): SignedTx {
  const o = object(value, path);
  return {
    chain_id: field(o, "chain_id", path, readHash),
    signer: field(o, "signer", path, readKey),
    nonce: field(o, "nonce", path, readU64),
    body: field(o, "body", path, readTxBody),
    signature: field(o, "signature", path, readSignature),
    cosignatures: defaultList(o, "cosignatures", path, (v, p) => {
      const c = object(v, p);
      return { signer: field(c, "signer", p, readKey), signature: field(c, "signature", p, readSignature) };
    }),
  };
}

/** A `BlockHeader` (`api.md#blocks`). */
export function readHeader(value: unknown, path = ""): BlockHeader {
  const o = object(value, path);
  return {
    chain_id: field(o, "chain_id", path, readHash),
    height: field(o, "height", path, readU64),
    prev_hash: field(o, "prev_hash", path, readHash),
    time_ms: field(o, "time_ms", path, readU64),
    proposer: field(o, "proposer", path, readU16),
    tx_count: field(o, "tx_count", path, readU32),
    tx_root: field(o, "tx_root", path, readHash),
    state_root: field(o, "state_root", path, readHash),
  };
}

/** A `CommitCertificate`. */
export function readCertificate(value: unknown, path = ""): CommitCertificate {
  const o = object(value, path);
  return {
    height: field(o, "height", path, readU64),
    round: field(o, "round", path, readU32),
    block_hash: field(o, "block_hash", path, readHash),
    signatures: field(o, "signatures", path, (v, p) =>
      list(v, p, (s, q) => {
        const x = object(s, q);
        return {
          validator: field(x, "validator", q, readU16),
          signature: field(x, "signature", q, readSignature),
        };
      }),
    ),
  };
}

/** A `CertifiedHeader`: `{header, certificate}`. */
export function readCertifiedHeader(value: unknown, path: string): CertifiedHeader {
  const o = object(value, path);
  return {
    header: field(o, "header", path, readHeader),
    certificate: field(o, "certificate", path, readCertificate),
  };
}

function readInclusionProof(value: unknown, path: string): InclusionProof {
  const o = object(value, path);
  return {
    index: field(o, "index", path, readU32),
    count: field(o, "count", path, readU32),
    siblings: field(o, "siblings", path, (v, p) => list(v, p, readHash)),
  };
}

/** An `IncludedTx`: `{tx, height, proof}`. */
export function readIncludedTx(value: unknown, path: string): IncludedTx {
  const o = object(value, path);
  return {
    tx: field(o, "tx", path, readSignedTx),
    height: field(o, "height", path, readU64),
    proof: field(o, "proof", path, readInclusionProof),
  };
}

/** A `StampStatus`, internally tagged by `status`. */
export function readStampStatus(value: unknown, path: string): StampStatus {
  const o = object(value, path);
  const status = tag(o, "status", path, STAMP_STATUSES, "stamp status");
  switch (status) {
    case "unclaimed":
      return { status, claim_key: field(o, "claim_key", path, readKey) };
    case "frozen":
      return {
        status,
        reason: field(o, "reason", path, readFreezeReason),
        case_ref: field(o, "case_ref", path, readString),
      };
    default:
      return { status };
  }
}

function readApproval(value: unknown, path: string): Approval {
  const o = object(value, path);
  return {
    operator: field(o, "operator", path, readAddress),
    until: field(o, "until", path, readDeadline),
  };
}

/** A `StampState`: `{owner, status, last_event, event_count, approval}`. */
export function readStampState(value: unknown, path: string): StampState {
  const o = object(value, path);
  return {
    owner: optional(o, "owner", path, readAddress),
    status: field(o, "status", path, readStampStatus),
    last_event: field(o, "last_event", path, readHash),
    event_count: field(o, "event_count", path, readU32),
    approval: optional(o, "approval", path, readApproval),
  };
}

/** An `SmtProof`: `{siblings, leaf: [key, value hash] | null}`. */
export function readSmtProof(value: unknown, path: string): SmtProof {
  const o = object(value, path);
  return {
    siblings: field(o, "siblings", path, (v, p) => list(v, p, readHash)),
    leaf: optional(o, "leaf", path, (v, p) => {
      const pair = array(v, p);
      if (pair.length !== 2) fail(p, `expected [tree key, value hash], got ${pair.length} items`);
      return [readHash(pair[0], `${p}[0]`), readHash(pair[1], `${p}[1]`)] as [Bytes, Bytes];
    }),
  };
}

function readCurrent(value: unknown, path: string): CurrentRecord {
  const o = object(value, path);
  return {
    height: field(o, "height", path, readU64),
    record: field(o, "record", path, readStampState),
    proof: field(o, "proof", path, readSmtProof),
  };
}

/** A `MembershipProof`: `{changes: [{proposal, approvals}], headers}`. */
export function readMembershipProof(value: unknown, path: string): MembershipProof {
  const o = object(value, path);
  return {
    changes: field(o, "changes", path, (v, p) =>
      list(v, p, (c, q): ChangeProof => {
        const x = object(c, q);
        return {
          proposal: field(x, "proposal", q, readIncludedTx),
          approvals: field(x, "approvals", q, (a, r) => list(a, r, readIncludedTx)),
        };
      }),
    ),
    headers: field(o, "headers", path, (v, p) => list(v, p, readCertifiedHeader)),
  };
}

/**
 * A `ProvenanceBundle`. `maxEvents` bounds the events read: a longer list is refused before
 * its items are read (the verifier refuses it anyway, `provenance.md` step 1).
 */
export function readBundle(value: unknown, maxEvents: number): ProvenanceBundle {
  const path = "";
  const o = object(value, path);
  const events = array(required(o, "events", path), "events");
  if (events.length > maxEvents) fail("events", "too many events");
  return {
    format: field(o, "format", path, readString),
    version: field(o, "version", path, readU32),
    chain_id: field(o, "chain_id", path, readHash),
    stamp: field(o, "stamp", path, readStampId),
    issue: field(o, "issue", path, readIncludedTx),
    events: list(events, "events", readIncludedTx),
    headers: field(o, "headers", path, (v, p) => list(v, p, readCertifiedHeader)),
    current: field(o, "current", path, readCurrent),
    membership: present(o, "membership")
      ? readMembershipProof(o.membership, "membership")
      : { changes: [], headers: [] },
  };
}
