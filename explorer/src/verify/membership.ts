/**
 * Membership proofs: how the operator set changed since the genesis, proven by the
 * proposing and approving transactions, each included in a block certified by the set in
 * force at its height (`crates/provenance/src/membership.rs`,
 * `crates/state/src/membership.rs`; `specs/provenance.md` step 2b,
 * `specs/ledger.md#state-rules` rule 14).
 *
 * A verifier starts from the genesis set and admits one change at a time, so every
 * certificate it checks was signed by a set it already trusts. Like any light client, given
 * a proof that leaves out a later change it checks later certificates against the set
 * before it.
 */

import { equalBytes } from "./bytes";
import { verifyCertificate } from "./block";
import { encodeTxBody } from "./encodings";
import { Failure } from "./failure";
import { clashes, MAX_OPERATORS } from "./genesis";
import { checkIncluded, type HeaderMap } from "./included";
import type {
  CertifiedHeader,
  Genesis,
  Hash,
  IncludedTx,
  MembershipChange,
  MembershipProof,
  Operator,
  PublicKey,
} from "./types";

/** A change applies at least this many blocks after the block that decides it. */
export const ACTIVATION_LEAD = 2n;

/** Most membership changes a proof may carry (the chain records at most 1,000). */
export const MAX_CHANGES = 1000;

/** True once `approvals` of `operators` operators are more than two thirds. */
export function decided(approvals: number, operators: number): boolean {
  return approvals * 3 > operators * 2;
}

/**
 * The operator set after `change`, or why the change does not fit `current`
 * (`apply_change`; the Rust `Rejection::InvalidMembership` Display). An added operator
 * shares no id, validator key, node key or issuer with a member and the set stays at most
 * 256; a removed or rotated operator is a member; the last member cannot leave; a rotated
 * key is no member's key of that kind.
 */
export function applyChange(current: readonly Operator[], change: MembershipChange): Operator[] | string {
  const invalid = (why: string) => `invalid membership change: ${why}`;
  const position = (id: string) => current.findIndex((op) => op.id === id);
  const next = current.map((op) => ({ ...op }));
  switch (change.change) {
    case "add_operator": {
      const other = current.find((op) => clashes(op, change.operator));
      if (other !== undefined) {
        return invalid(
          `operator ${change.operator.id} shares an id, validator key, node key or issuer account with ${other.id}`,
        );
      }
      if (current.length >= MAX_OPERATORS) {
        return invalid(`a chain has at most ${MAX_OPERATORS} operators`);
      }
      next.push(change.operator);
      return next;
    }
    case "remove_operator": {
      const index = position(change.operator);
      if (index < 0) return invalid(`${change.operator} is not a current operator`);
      if (current.length === 1) return invalid("the last operator cannot leave");
      next.splice(index, 1);
      return next;
    }
    case "rotate_validator_key": {
      const index = position(change.operator);
      if (index < 0) return invalid(`${change.operator} is not a current operator`);
      if (current.some((op) => equalBytes(op.validator_key, change.validator_key))) {
        return invalid("the new validator key is already in use");
      }
      next[index]!.validator_key = change.validator_key;
      return next;
    }
    case "rotate_node_key": {
      const index = position(change.operator);
      if (index < 0) return invalid(`${change.operator} is not a current operator`);
      if (current.some((op) => equalBytes(op.node_key, change.node_key))) {
        return invalid("the new node key is already in use");
      }
      next[index]!.node_key = change.node_key;
      return next;
    }
  }
}

/**
 * The operator sets a membership proof establishes: the genesis set from height 0, then
 * each proven change's set from its activation height.
 */
export class OperatorSets {
  /** `(from height, set)`, by increasing height. */
  readonly epochs: Array<[bigint, Operator[]]>;

  constructor(genesisOperators: Operator[]) {
    this.epochs = [[0n, genesisOperators]];
  }

  /** The operators of height `height`: the last set in force from at most that height. */
  at(height: bigint): Operator[] {
    for (let i = this.epochs.length - 1; i >= 0; i--) {
      const [from, set] = this.epochs[i]!;
      if (from <= height) return set;
    }
    return [];
  }

  /** The validator keys of height `height`, by index. */
  validatorsAt(height: bigint): PublicKey[] {
    return this.at(height).map((op) => op.validator_key);
  }
}

function positionAfter(a: [bigint, number], b: [bigint, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/**
 * Checks a membership proof against the genesis and returns the operator sets it proves
 * (`verify_membership`, `provenance.md` step 2b). For each change in order, with `S` the
 * set in force since the previous change's activation height `A` (0 at first): the
 * proposal and every approval are included transactions in blocks at heights
 * `>= max(A, 1)` whose headers (from `proof.headers`) carry certificates by the set in
 * force at their height; the proposal is a `propose_membership` by an issuer of `S`; the
 * approvals, in strictly increasing block position, approve the proposal's id, each by a
 * different operator of `S` other than the proposer; they reach more than two thirds of
 * `S` with the last one and not before; the last block is at least two below the
 * activation height; the change fits `S`.
 */
export function verifyMembership(genesis: Genesis, chainId: Hash, proof: MembershipProof): OperatorSets {
  if (proof.changes.length > MAX_CHANGES) throw Failure.format("too many membership changes");
  const sets = new OperatorSets(genesis.operators);
  const headers = new Map<bigint, CertifiedHeader>();
  for (const certified of proof.headers) {
    if (!equalBytes(certified.header.chain_id, chainId)) {
      throw Failure.wrongChain(chainId, certified.header.chain_id);
    }
    if (headers.has(certified.header.height)) {
      throw Failure.missingHeader(certified.header.height);
    }
    headers.set(certified.header.height, certified);
  }
  const checked: HeaderMap = new Map();
  proof.changes.forEach((change, k) => {
    const since = sets.epochs[sets.epochs.length - 1]![0];
    const current = sets.at(since);
    // Each transaction: in a block certified by the current set, after the set applied.
    const check = (included: IncludedTx, what: string): Hash => {
      const height = included.height;
      const floor = since > 1n ? since : 1n;
      if (height < floor) {
        throw Failure.membership(`${what} is from before the set it counts in`);
      }
      if (!checked.has(height)) {
        const certified = headers.get(height);
        if (certified === undefined) throw Failure.missingHeader(height);
        const error = verifyCertificate(
          certified.certificate,
          certified.header,
          sets.validatorsAt(height),
        );
        if (error !== null) throw Failure.certificate(height, error);
        checked.set(height, certified.header);
      }
      return checkIncluded(included, what, chainId, checked);
    };
    const proposalId = check(change.proposal, `membership change ${k} proposal`);
    const body = change.proposal.tx.body;
    if (body.kind !== "propose_membership") {
      throw Failure.membership(`change ${k}: not a proposal`);
    }
    const member = (signer: PublicKey): string | null =>
      current.find((op) => equalBytes(op.issuer, signer))?.id ?? null;
    const proposer = member(change.proposal.tx.signer);
    if (proposer === null) {
      throw Failure.membership(`change ${k}: proposed by no current operator`);
    }
    const approvers = [proposer];
    let last: [bigint, number] = [change.proposal.height, change.proposal.proof.index];
    const expectedBody = encodeTxBody({ kind: "approve_membership", proposal: proposalId });
    change.approvals.forEach((approval, i) => {
      if (decided(approvers.length, current.length)) {
        throw Failure.membership(`change ${k}: approvals after it was decided`);
      }
      check(approval, `membership change ${k} approval ${i}`);
      const position: [bigint, number] = [approval.height, approval.proof.index];
      if (!positionAfter(position, last)) {
        throw Failure.membership(`change ${k}: approvals out of order`);
      }
      last = position;
      if (!equalBytes(encodeTxBody(approval.tx.body), expectedBody)) {
        throw Failure.membership(`change ${k}: approval ${i} is for another proposal`);
      }
      const approver = member(approval.tx.signer);
      if (approver === null) {
        throw Failure.membership(`change ${k}: approval ${i} by no current operator`);
      }
      if (approvers.includes(approver)) {
        throw Failure.membership(`change ${k}: ${approver} approved twice`);
      }
      approvers.push(approver);
    });
    if (!decided(approvers.length, current.length)) {
      throw Failure.membership(
        `change ${k}: ${approvers.length} of ${current.length} operators approved; more than two thirds must`,
      );
    }
    if (last[0] + ACTIVATION_LEAD > body.activation_height) {
      throw Failure.membership(`change ${k}: decided too late for its height`);
    }
    const next = applyChange(current, body.change);
    if (typeof next === "string") throw Failure.membership(`change ${k}: ${next}`);
    sets.epochs.push([body.activation_height, next]);
  });
  return sets;
}
