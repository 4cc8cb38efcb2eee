/**
 * The genesis: its chain id and its validation (`crates/types/src/genesis.rs`,
 * `specs/ledger.md#genesis`).
 */

import { equalBytes, toHex } from "./bytes";
import { encodeGenesis } from "./encodings";
import { tagged } from "./hash";
import { checkText } from "./ids";
import { checkOperator } from "./tx";
import type { Genesis, Hash, Operator } from "./types";

/** Hash tag of the genesis (the chain id). */
export const GENESIS_TAG = "cachet/genesis";

/** Most operators a chain may have. */
export const MAX_OPERATORS = 256;

/** The chain id: `H(cachet/genesis, encode(genesis))`. */
export function chainId(genesis: Genesis): Hash {
  return tagged(GENESIS_TAG, encodeGenesis(genesis));
}

/** The chain id in hex. */
export function chainIdHex(genesis: Genesis): string {
  return toHex(chainId(genesis));
}

/**
 * True if two operators share an id, validator key, node key or issuer account
 * (`Operator::clashes`): two members of one set never may.
 */
export function clashes(a: Operator, b: Operator): boolean {
  return (
    a.id === b.id ||
    equalBytes(a.validator_key, b.validator_key) ||
    equalBytes(a.node_key, b.node_key) ||
    equalBytes(a.issuer, b.issuer)
  );
}

/**
 * Checks that a genesis is well formed (`Genesis::validate`, `ledger.md#genesis`), in the
 * Rust order: the chain name (1-64 bytes, no control characters); 1 to 256 operators; each
 * operator's name and keys (validator key, node key and issuer canonical account keys),
 * then that it clashes with no earlier operator; the parameters. Returns the error message
 * (the Rust `GenesisError` Display) or null.
 */
export function genesisError(g: Genesis): string | null {
  const name = checkText("chain name", g.chain_name, 1, 64);
  if (name !== null) return name;
  const count = g.operators.length;
  if (count === 0 || count > MAX_OPERATORS) {
    return `a genesis needs 1 to ${MAX_OPERATORS} operators, this one has ${count}`;
  }
  for (const [i, op] of g.operators.entries()) {
    const error = checkOperator(op);
    if (error !== null) {
      return error.kind === "field" ? error.message : `operator ${op.id} has a weak or invalid key`;
    }
    if (g.operators.slice(0, i).some((other) => clashes(other, op))) {
      return `operator ${op.id} appears twice (same id, validator key or issuer account)`;
    }
  }
  const p = g.params;
  if (
    p.max_block_txs === 0 ||
    p.max_tx_bytes < 256 ||
    p.max_block_bytes < p.max_tx_bytes ||
    p.max_mint_per_tx === 0 ||
    p.max_print_run === 0
  ) {
    return "invalid chain parameter: limits must be positive, max_tx_bytes >= 256 and max_block_bytes >= max_tx_bytes";
  }
  return null;
}
