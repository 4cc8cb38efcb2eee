/**
 * The state hashes a provenance proof needs (`crates/state/src/records.rs`): the tree key
 * of a stamp, the tree value of its record, and the hash chain of its events
 * (`specs/ledger.md#state`, `specs/encoding.md#hashes`).
 */

import { encodeStampId, encodeStampKey, encodeStampValue } from "./encodings";
import { tagged } from "./hash";
import type { Hash, StampId, StampState } from "./types";

const STATE_KEY_TAG = "cachet/state-key";
const STATE_VALUE_TAG = "cachet/state-value";
const EVENT_TAG = "cachet/stamp-event";

/** The position of `StateKey::Stamp(stamp)` in the state tree: `H(cachet/state-key, encode(key))`. */
export function stampTreeKey(stamp: StampId): Hash {
  return tagged(STATE_KEY_TAG, encodeStampKey(stamp));
}

/** The leaf value of `StateValue::Stamp(state)`: `H(cachet/state-value, encode(value))`. */
export function stampTreeValue(state: StampState): Hash {
  return tagged(STATE_VALUE_TAG, encodeStampValue(state));
}

/**
 * The hash that links a stamp's events into a chain:
 * `H(cachet/stamp-event, encode(stamp) || previous event hash || tx id)`, with the stamp's
 * encoding including its version byte and the previous hash 32 zero bytes for the mint.
 */
export function eventHash(stamp: StampId, prevEvent: Hash, txId: Hash): Hash {
  return tagged(EVENT_TAG, encodeStampId(stamp), prevEvent, txId);
}
