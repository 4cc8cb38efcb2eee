/**
 * The first check a bundle failed (`Failure` in `crates/provenance/src/lib.rs`): its
 * stable code (`Failure::code`) and its explanation (the Rust Display text).
 */

import { toHex } from "./bytes";
import type { Hash } from "./types";

/** The stable snake_case code of every check (`Failure::code`). */
export type FailureCode =
  | "format"
  | "genesis"
  | "wrong_chain"
  | "missing_header"
  | "certificate"
  | "broken_link"
  | "signature"
  | "not_included"
  | "issue"
  | "event_order"
  | "chain_gap"
  | "foreign_event"
  | "rule"
  | "state_proof"
  | "record_mismatch"
  | "membership";

/**
 * A failed check, thrown by the verification steps (as `Err(Failure)` is returned by the
 * Rust ones) and turned into a verdict by `verifyBundle`.
 */
export class Failure extends Error {
  constructor(
    readonly check: FailureCode,
    message: string,
    /** The reason alone, for a `signature` failure (the issue step rewords it). */
    readonly reason: string = message,
  ) {
    super(message);
    this.name = "Failure";
  }

  /** Not a bundle of this format or version, or over the limits. */
  static format(detail: string): Failure {
    return new Failure("format", `not a supported provenance bundle: ${detail}`);
  }

  /** The genesis itself is invalid. */
  static genesis(detail: string): Failure {
    return new Failure("genesis", `invalid genesis: ${detail}`);
  }

  /** The bundle (or a header or transaction in it) is for another chain than the genesis. */
  static wrongChain(expected: Hash, found: Hash): Failure {
    return new Failure(
      "wrong_chain",
      `bundle is for chain ${toHex(found)}, the genesis is chain ${toHex(expected)}`,
    );
  }

  /** A header is missing, duplicated or out of order. */
  static missingHeader(height: bigint): Failure {
    return new Failure(
      "missing_header",
      `header at height ${height} is missing, repeated or out of order`,
    );
  }

  /** A certificate does not verify against the validators of its height. */
  static certificate(height: bigint, reason: string): Failure {
    return new Failure("certificate", `certificate of height ${height} is invalid: ${reason}`);
  }

  /** Consecutive headers do not link. */
  static brokenLink(height: bigint): Failure {
    return new Failure("broken_link", `header ${height} does not link to header ${height - 1n}`);
  }

  /** A transaction signature (or its chain id or form) does not verify. */
  static signature(what: string, reason: string): Failure {
    return new Failure(
      "signature",
      `${what}: signature or chain id does not verify (${reason})`,
      reason,
    );
  }

  /** A transaction is not in the block it claims. */
  static notIncluded(what: string): Failure {
    return new Failure("not_included", `${what} is not included in the block it claims`);
  }

  /** The issue record is not the one created on chain for this stamp. */
  static issue(detail: string): Failure {
    return new Failure("issue", `issue record is not authentic: ${detail}`);
  }

  /** Events are missing, repeated or out of order. */
  static eventOrder(seq: number, reason: string): Failure {
    return new Failure("event_order", `event ${seq}: ${reason}`);
  }

  /** The stamp's event hash chain is broken. */
  static chainGap(seq: number): Failure {
    return new Failure(
      "chain_gap",
      `event ${seq} does not follow the previous event (the event chain has a gap)`,
    );
  }

  /** An event's transaction does not concern this stamp. */
  static foreignEvent(seq: number): Failure {
    return new Failure("foreign_event", `event ${seq} belongs to another stamp`);
  }

  /** An event breaks the ledger's rules. */
  static rule(seq: number, reason: string): Failure {
    return new Failure("rule", `event ${seq} breaks a rule: ${reason}`);
  }

  /** The current-record proof does not check against the latest certified header. */
  static stateProof(height: bigint): Failure {
    return new Failure(
      "state_proof",
      `current record proof does not verify against the state root at height ${height}`,
    );
  }

  /** The proven record differs from what the history says. */
  static recordMismatch(detail: string): Failure {
    return new Failure("record_mismatch", `current record does not match the history: ${detail}`);
  }

  /** A membership change is not proven. */
  static membership(detail: string): Failure {
    return new Failure("membership", `membership: ${detail}`);
  }
}
