/**
 * The provenance bundle verifier (`verify` in `crates/provenance/src/lib.rs`,
 * `specs/provenance.md#verification-algorithm`): everything a bundle claims is checked
 * against signatures that chain back to the genesis, and the first failed check is named.
 */

import { headerHash, verifyCertificate } from "./block";
import { equalBytes, toHex } from "./bytes";
import { encodeStampState } from "./encodings";
import { Failure } from "./failure";
import { chainId as genesisChainId, genesisError } from "./genesis";
import { ZERO_HASH } from "./hash";
import { sameStamp } from "./ids";
import { checkIncluded, type HeaderMap } from "./included";
import { formatAddress } from "./keys";
import { verifyMembership, type OperatorSets } from "./membership";
import { eventHash, stampTreeKey, stampTreeValue } from "./records";
import { verifySmt } from "./smt";
import { deadlinePassed, variantSerials } from "./tx";
import type {
  Address,
  Approval,
  BlockHeader,
  Genesis,
  Hash,
  IssueRecord,
  Operator,
  ProvenanceBundle,
  PublicKey,
  StampId,
  StampState,
  StampStatus,
} from "./types";

/** The `format` field of every bundle. */
export const BUNDLE_FORMAT = "cachet-provenance-bundle";
/** The bundle format version this code reads. */
export const BUNDLE_VERSION = 1;
/** Most events a bundle may carry (a hostile file must not make the verifier spin forever). */
export const MAX_BUNDLE_EVENTS = 1_000_000;

/** What a successful verification established (`Authentic`). */
export interface Authentic {
  stamp: StampId;
  issue: IssueRecord;
  /** Current owner; null while an unclaimed physical twin. */
  owner: Address | null;
  status: StampStatus;
  /** Number of events, mint included. */
  events: number;
  /** Height the current record is proven at. */
  as_of_height: bigint;
}

/**
 * Step 3, headers (`check_headers`): for each header in order, its chain id is the chain's
 * (`wrong_chain`); its height is above 0 and above the previous one's (`missing_header`);
 * its certificate verifies against the validators in force at its height (`certificate`);
 * if the previous header has height one less, this one's `prev_hash` is that header's hash,
 * and a header at height 1 has `prev_hash` equal to the chain id (`broken_link`).
 */
function checkHeaders(bundle: ProvenanceBundle, sets: OperatorSets, chainId: Hash): HeaderMap {
  const headers: HeaderMap = new Map();
  let previous: BlockHeader | null = null;
  for (const certified of bundle.headers) {
    const header = certified.header;
    if (!equalBytes(header.chain_id, chainId)) throw Failure.wrongChain(chainId, header.chain_id);
    if (header.height === 0n || (previous !== null && previous.height >= header.height)) {
      throw Failure.missingHeader(header.height);
    }
    const error = verifyCertificate(
      certified.certificate,
      header,
      sets.validatorsAt(header.height),
    );
    if (error !== null) throw Failure.certificate(header.height, error);
    if (previous !== null) {
      if (
        previous.height + 1n === header.height &&
        !equalBytes(header.prev_hash, headerHash(previous))
      ) {
        throw Failure.brokenLink(header.height);
      }
    } else if (header.height === 1n && !equalBytes(header.prev_hash, chainId)) {
      throw Failure.brokenLink(1n);
    }
    headers.set(header.height, header);
    previous = header;
  }
  return headers;
}

function findOperator(operators: readonly Operator[], id: string): Operator | undefined {
  return operators.find((op) => op.id === id);
}

function includesKey(keys: readonly PublicKey[], key: PublicKey): boolean {
  return keys.some((k) => equalBytes(k, key));
}

/** `(height, index)` of `a` strictly after `b`. */
function after(a: [bigint, number], b: [bigint, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/**
 * Verifies a bundle against a genesis (`verify`, `provenance.md#verification-algorithm`,
 * steps 1, 2, 2b, 3, 4, 5, 6 in order). Returns what it proves, or throws the first failed
 * check as a {@link Failure}.
 */
export function verify(bundle: ProvenanceBundle, genesis: Genesis): Authentic {
  // 1. Format.
  if (bundle.format !== BUNDLE_FORMAT || bundle.version !== BUNDLE_VERSION) {
    throw Failure.format(`${bundle.format} version ${bundle.version}`);
  }
  if (bundle.events.length > MAX_BUNDLE_EVENTS) throw Failure.format("too many events");

  // 2. Genesis and chain.
  const invalid = genesisError(genesis);
  if (invalid !== null) throw Failure.genesis(invalid);
  const chainId = genesisChainId(genesis);
  if (!equalBytes(bundle.chain_id, chainId)) throw Failure.wrongChain(chainId, bundle.chain_id);

  // 2b. Membership, 3. headers.
  const sets = verifyMembership(genesis, chainId, bundle.membership);
  const headers = checkHeaders(bundle, sets, chainId);

  // 4. The issue: created on chain by its own operator's issuer account.
  try {
    checkIncluded(bundle.issue, "issue creation", chainId, headers);
  } catch (e) {
    if (e instanceof Failure && e.check === "signature") {
      throw Failure.issue(`its creating transaction does not verify (${e.reason})`);
    }
    throw e;
  }
  const issueBody = bundle.issue.tx.body;
  if (issueBody.kind !== "create_issue" || issueBody.record.id !== bundle.stamp.issue) {
    throw Failure.issue("the issue transaction does not create this stamp's issue");
  }
  const record = issueBody.record;
  // The operators when the issue was created.
  const operators = sets.at(bundle.issue.height);
  const operator = findOperator(operators, record.operator);
  if (operator === undefined) throw Failure.issue(`${record.operator} was not an operator`);
  if (!equalBytes(operator.issuer, bundle.issue.tx.signer)) {
    throw Failure.issue(`not signed by ${record.operator}'s issuer account`);
  }
  // A joint issue: every co-issuer was an operator and cosigned the creation.
  const issuers: PublicKey[] = [operator.issuer];
  for (const co of record.co_issuers) {
    const coOperator = findOperator(operators, co.operator);
    if (coOperator === undefined) throw Failure.issue(`${co.operator} was not an operator`);
    const key = coOperator.issuer;
    if (!bundle.issue.tx.cosignatures.some((c) => equalBytes(c.signer, key))) {
      throw Failure.issue(`not cosigned by ${co.operator}`);
    }
    issuers.push(key);
  }

  // 5. The events, replayed with the ledger's rules for one stamp.
  const stamp = bundle.stamp;
  const serial = stamp.serial;
  let minted = false;
  let owner: Address | null = null;
  let status: StampStatus = { status: "active" };
  let approval: Approval | null = null;
  let head: Hash = ZERO_HASH;
  // Order first: every event strictly after the one before (and after the issue).
  let lastPosition: [bigint, number] = [bundle.issue.height, bundle.issue.proof.index];
  bundle.events.forEach((event, seq) => {
    const position: [bigint, number] = [event.height, event.proof.index];
    if (!after(position, lastPosition)) {
      throw Failure.eventOrder(seq, "not after the previous event");
    }
    lastPosition = position;
  });
  for (const [seq, event] of bundle.events.entries()) {
    const txId = checkIncluded(event, `event ${seq}`, chainId, headers);
    const block = (): BlockHeader => {
      const header = headers.get(event.height);
      if (header === undefined) throw Failure.missingHeader(event.height);
      return header;
    };
    const signer = event.tx.signer;
    const byIssuer = includesKey(issuers, signer);
    const byOwner = owner !== null && equalBytes(owner, signer);
    const active = status.status === "active";
    const body = event.tx.body;

    if (!minted) {
      // 5.2. Until the mint: the mint of this stamp.
      if (body.kind !== "mint") {
        throw Failure.eventOrder(seq, "history does not start with the mint");
      }
      if (body.issue !== stamp.issue || serial < body.first_serial || serial > body.last_serial) {
        throw Failure.foreignEvent(seq);
      }
      if (!byIssuer) throw Failure.rule(seq, "minted by an account that is not an issuer");
      if (body.last_serial > record.print_run) throw Failure.rule(seq, "minted over the print run");
      if (body.variant !== null) {
        const range = variantSerials(record, body.variant);
        if (range === null || body.first_serial < range.first || body.last_serial > range.last) {
          throw Failure.rule(seq, "minted outside its named variant");
        }
      } else if (record.variants.length > 0) {
        throw Failure.rule(seq, "minted without naming a variant");
      }
      minted = true;
      if (body.claim_keys.length === 0) {
        owner = body.owner;
      } else {
        const claimKey = body.claim_keys[serial - body.first_serial];
        if (claimKey === undefined) throw Failure.rule(seq, "fewer claim keys than serials");
        status = { status: "unclaimed", claim_key: claimKey };
      }
    } else {
      // 5.3. After the mint: an event of this exact stamp.
      switch (body.kind) {
        case "mint":
          if (body.issue === stamp.issue && serial >= body.first_serial && serial <= body.last_serial) {
            throw Failure.eventOrder(seq, "a second mint of the same stamp");
          }
          throw Failure.foreignEvent(seq);
        case "claim": {
          if (!sameStamp(body.stamp, stamp)) throw Failure.foreignEvent(seq);
          if (status.status !== "unclaimed" || !equalBytes(status.claim_key, signer)) {
            throw Failure.rule(seq, "claim of a stamp not waiting for this claim key");
          }
          owner = body.to;
          status = { status: "active" };
          break;
        }
        case "swap": {
          let leg = body.give.find((l) => sameStamp(l.stamp, stamp));
          let from: Address;
          let to: Address;
          if (leg !== undefined) {
            [from, to] = [signer, body.counterparty];
          } else {
            leg = body.take.find((l) => sameStamp(l.stamp, stamp));
            if (leg === undefined) throw Failure.foreignEvent(seq);
            [from, to] = [body.counterparty, signer];
          }
          if (!equalBytes(leg.last_event, head)) throw Failure.chainGap(seq);
          if (owner === null || !equalBytes(owner, from) || !active) {
            throw Failure.rule(seq, "swap of a stamp its side does not hold, or not active");
          }
          // (Its counterparty's cosignature was checked with the transaction in 5.1: a swap
          // is only well-formed with it.)
          owner = to;
          break;
        }
        case "transfer":
        case "redeem":
        case "freeze":
        case "unfreeze":
        case "burn":
        case "approve":
        case "revoke": {
          if (!sameStamp(body.stamp, stamp)) throw Failure.foreignEvent(seq);
          switch (body.kind) {
            case "transfer": {
              if (!equalBytes(body.last_event, head)) throw Failure.chainGap(seq);
              const header = block();
              const byApproved =
                approval !== null &&
                equalBytes(approval.operator, signer) &&
                !deadlinePassed(approval.until, header.height, header.time_ms);
              if (!byOwner && !byApproved) {
                throw Failure.rule(
                  seq,
                  "transfer not signed by the then-owner or an account it approved",
                );
              }
              if (!active) throw Failure.rule(seq, "transfer of a stamp that is not active");
              owner = body.to;
              break;
            }
            case "approve": {
              const header = block();
              if (!byOwner || !active || deadlinePassed(body.until, header.height, header.time_ms)) {
                throw Failure.rule(
                  seq,
                  "approval not by the owner, of an inactive stamp, or already over",
                );
              }
              // The only event that does not clear the approval: it sets it.
              approval = { operator: body.operator, until: body.until };
              head = eventHash(stamp, head, txId);
              continue;
            }
            case "revoke":
              if (!byOwner || approval === null) {
                throw Failure.rule(seq, "revocation not by the owner or with no approval");
              }
              break;
            case "burn":
              if (!equalBytes(body.last_event, head)) throw Failure.chainGap(seq);
              if (!byOwner || !active) {
                throw Failure.rule(seq, "burn not by the owner or of an inactive stamp");
              }
              status = { status: "burned" };
              break;
            case "redeem":
              if (!byIssuer || !active) {
                throw Failure.rule(seq, "redeem by a non-issuer or of an inactive stamp");
              }
              status = { status: "redeemed" };
              break;
            case "freeze":
              if (!byIssuer || !active) {
                throw Failure.rule(seq, "freeze by a non-issuer or of an inactive stamp");
              }
              status = { status: "frozen", reason: body.reason, case_ref: body.case_ref };
              break;
            case "unfreeze":
              if (!byIssuer || status.status !== "frozen") {
                throw Failure.rule(seq, "unfreeze by a non-issuer or of a stamp not frozen");
              }
              status = { status: "active" };
              break;
          }
          break;
        }
        default:
          // create_issue, close_issue, propose_membership, approve_membership.
          throw Failure.foreignEvent(seq);
      }
    }
    // 5.4. Every event but an approval ends any approval (as the ledger does).
    approval = null;
    head = eventHash(stamp, head, txId);
  }
  if (!minted) throw Failure.eventOrder(0, "no mint");

  // 6. The current record: proven against the latest header, and equal to the replay.
  const current = bundle.current;
  let latest: bigint | null = null;
  for (const height of headers.keys()) if (latest === null || height > latest) latest = height;
  if (latest === null) throw Failure.missingHeader(current.height);
  if (current.height !== latest) {
    // A proof at an older height says nothing about what happened since.
    throw Failure.stateProof(current.height);
  }
  const header = headers.get(current.height);
  if (header === undefined) throw Failure.missingHeader(current.height);
  const key = stampTreeKey(stamp);
  const value = stampTreeValue(current.record);
  if (!verifySmt(header.state_root, key, value, current.proof)) {
    throw Failure.stateProof(current.height);
  }
  if (bundle.events.length > 0xffff_ffff) throw Failure.format("too many events");
  const expected: StampState = {
    owner,
    status,
    last_event: head,
    event_count: bundle.events.length,
    approval,
  };
  // The canonical encoding is one-to-one, so equal encodings are equal records.
  if (!equalBytes(encodeStampState(current.record), encodeStampState(expected))) {
    throw Failure.recordMismatch(
      `proven record ${describeRecord(current.record)} but the history gives ${describeRecord(expected)}`,
    );
  }
  return {
    stamp,
    issue: record,
    owner,
    status,
    events: bundle.events.length,
    as_of_height: current.height,
  };
}

/** A record in its JSON form, for messages. */
function describeRecord(state: StampState): string {
  return JSON.stringify(stampStateJson(state));
}

/** The JSON form of a stamp status (`api.md#proofs-and-bundles`, `StampStatus`). */
export function stampStatusJson(status: StampStatus): Record<string, string> {
  switch (status.status) {
    case "unclaimed":
      return { status: "unclaimed", claim_key: toHex(status.claim_key) };
    case "frozen":
      return { status: "frozen", reason: status.reason, case_ref: status.case_ref };
    default:
      return { status: status.status };
  }
}

/** The JSON form of a stamp record (`StampState`); u64 values as decimal text. */
function stampStateJson(state: StampState): unknown {
  return {
    owner: state.owner === null ? null : formatAddress(state.owner),
    status: stampStatusJson(state.status),
    last_event: toHex(state.last_event),
    event_count: state.event_count,
    approval:
      state.approval === null
        ? null
        : {
            operator: formatAddress(state.approval.operator),
            until: { [state.approval.until.kind]: state.approval.until.value.toString() },
          },
  };
}
