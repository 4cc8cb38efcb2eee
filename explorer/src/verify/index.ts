/**
 * The explorer's provenance verifier: a port of `crates/provenance` (the Rust verifier) that
 * runs in the browser on the bundle's JSON and a genesis the user trusts
 * (`specs/provenance.md`). Nothing in the bundle is trusted: every hash is recomputed from
 * the canonical encoding of the decoded values, every signature checked under ZIP-215.
 *
 * JSON integers: the explorer parses answers with `JSON.parse`, which cannot hold integers
 * above 2^53 exactly. A `u64` field (heights, nonces, times, amounts) holding a number that
 * is not a safe integer is refused (`format`, or `genesis` in the genesis) instead of being
 * used rounded; heights and times in practice are far below 2^53. A caller that parses
 * losslessly may pass such values as `bigint`.
 */

import { toHex } from "./bytes";
import { Failure, type FailureCode } from "./failure";
import { chainIdHex, genesisError } from "./genesis";
import { formatStampId } from "./ids";
import { readBundle, readGenesis } from "./json";
import { formatAddress } from "./keys";
import type { Genesis, ProvenanceBundle } from "./types";
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  MAX_BUNDLE_EVENTS,
  stampStatusJson,
  verify,
} from "./verify";

export type { FailureCode } from "./failure";

/** The verdict on a bundle: what it proves, or the first check it failed. */
export type Verdict =
  | {
      verdict: "authentic";
      /** The stamp, `ISSUE#SERIAL`. */
      stamp: string;
      /** Its current owner (`cachet1...`); null while an unclaimed physical twin. */
      owner: string | null;
      /** The StampStatus JSON, as in the bundle's `current.record.status`. */
      status: unknown;
      /** Number of events, mint included. */
      events: number;
      /** Height the current record is proven at. */
      asOfHeight: number;
    }
  | {
      verdict: "failed";
      /** The Rust `Failure::code()`, e.g. `"chain_gap"`. */
      check: FailureCode;
      /** A human explanation, like the Rust Display. */
      message: string;
    };

function failed(failure: Failure): Verdict {
  return { verdict: "failed", check: failure.check, message: failure.message };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads and validates a genesis; throws an Error naming the problem. */
function checkedGenesis(genesis: unknown): Genesis {
  const parsed = readGenesis(genesis);
  const error = genesisError(parsed);
  if (error !== null) throw new Error(`invalid genesis: ${error}`);
  return parsed;
}

/**
 * Verifies a provenance bundle (its parsed JSON, `api.md#proofs-and-bundles`) against a
 * genesis (its parsed JSON) from a source the caller trusts, running
 * `specs/provenance.md#verification-algorithm` steps 1, 2, 2b, 3, 4, 5 and 6 in order. The
 * first failing step gives `failed` with the code the Rust verifier gives.
 *
 * Never throws: a bundle that is not of the bundle's JSON form fails `format`, a genesis
 * that is not of the genesis's JSON form fails `genesis`, and any unexpected error fails
 * `format`.
 */
export function verifyBundle(bundle: unknown, genesis: unknown): Verdict {
  try {
    let parsedBundle: ProvenanceBundle;
    try {
      parsedBundle = readBundle(bundle, MAX_BUNDLE_EVENTS);
    } catch (error) {
      return failed(Failure.format(describeError(error)));
    }
    let parsedGenesis: Genesis;
    try {
      parsedGenesis = readGenesis(genesis);
    } catch (error) {
      // Step 1 comes first: a bundle of another format or version fails `format` even
      // with a genesis that does not parse.
      if (parsedBundle.format !== BUNDLE_FORMAT || parsedBundle.version !== BUNDLE_VERSION) {
        return failed(Failure.format(`${parsedBundle.format} version ${parsedBundle.version}`));
      }
      return failed(Failure.genesis(describeError(error)));
    }
    const authentic = verify(parsedBundle, parsedGenesis);
    return {
      verdict: "authentic",
      stamp: formatStampId(authentic.stamp),
      owner: authentic.owner === null ? null : formatAddress(authentic.owner),
      status: stampStatusJson(authentic.status),
      events: authentic.events,
      asOfHeight: Number(authentic.as_of_height),
    };
  } catch (error) {
    if (error instanceof Failure) return failed(error);
    return failed(Failure.format(`unexpected error: ${describeError(error)}`));
  }
}

/**
 * The chain id of a genesis (its parsed JSON), in hex: the tagged hash of its canonical
 * encoding (`encoding.md#hashes`). Throws an Error naming the problem if the genesis is not
 * of the genesis's JSON form. Like the Rust `Genesis::chain_id`, it does not run the
 * genesis validation: call {@link validateGenesis} for that.
 */
export function genesisChainId(genesis: unknown): string {
  let parsed: Genesis;
  try {
    parsed = readGenesis(genesis);
  } catch (error) {
    throw new Error(`invalid genesis: ${describeError(error)}`);
  }
  return chainIdHex(parsed);
}

/**
 * Checks a genesis (its parsed JSON) as `ledger.md#genesis` says, keys included: 1 to 256
 * operators with no shared id, validator key, node key or issuer, every key a canonical
 * account key, names within bounds, and the chain parameters' limits. Throws an Error
 * naming the problem; returns nothing if the genesis is valid.
 */
export function validateGenesis(genesis: unknown): void {
  try {
    checkedGenesis(genesis);
  } catch (error) {
    const message = describeError(error);
    throw new Error(message.startsWith("invalid genesis: ") ? message : `invalid genesis: ${message}`);
  }
}

// Lower-level pieces, for tests and for pages that show encodings and hashes.
export { toHex };
export {
  cosigningBytes,
  encodeCertificate,
  encodeGenesis,
  encodeHeader,
  encodeSignedTx,
  encodeStampKey,
  encodeStampValue,
  precommitSigningBytes,
  signingBytes,
} from "./encodings";
export { chainId } from "./genesis";
export { headerHash, verifyCertificate } from "./block";
export { inclusionProof, txRoot, verifyInclusion } from "./merkle";
export { leafHash, nodeHash, verifySmt } from "./smt";
export { eventHash, stampTreeKey, stampTreeValue } from "./records";
export { txId, verifyTx, witnessHash } from "./tx";
export { checkAccount, formatAddress, parseAddress, verifySignature } from "./keys";
export {
  JsonError,
  readCertificate,
  readGenesis,
  readHeader,
  readSignedTx,
  readStampState,
} from "./json";
export { parseStampId, formatStampId } from "./ids";
export type * from "./types";
