// The genesis the user trusts, pinned once in this browser (localStorage). Verification
// in the browser checks bundles against it alone, never against what a node says now.

import { genesisChainId, validateGenesis } from "./verify/index";

const KEY = "cachet.pinned-genesis";
/** Largest genesis accepted (the node's own bound on a genesis file is far below). */
export const MAX_GENESIS_BYTES = 1 << 20;

export interface Pinned {
  genesis: unknown;
  chainId: string;
  chainName: string;
}

/** The pinned genesis, or null when none is (or the stored one no longer validates). */
export function pinned(): Pinned | null {
  const text = localStorage.getItem(KEY);
  if (text === null) return null;
  try {
    return describe(JSON.parse(text));
  } catch {
    return null;
  }
}

/** Checks a genesis (its validation, keys included) and names its chain. */
export function describe(genesis: unknown): Pinned {
  validateGenesis(genesis);
  const chainId = genesisChainId(genesis);
  const name = (genesis as { chain_name?: unknown }).chain_name;
  return { genesis, chainId, chainName: typeof name === "string" ? name : "" };
}

/**
 * Pins the genesis in `text` (its JSON form, pasted or uploaded). With `expectedChainId`,
 * only if its chain id, recomputed here, is that one.
 */
export function pin(text: string, expectedChainId?: string): Pinned {
  if (text.length > MAX_GENESIS_BYTES) throw new Error(`a genesis is at most ${MAX_GENESIS_BYTES} bytes`);
  let genesis: unknown;
  try {
    genesis = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${String(error)}`);
  }
  const described = describe(genesis);
  if (expectedChainId !== undefined) {
    const expected = expectedChainId.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(expected)) throw new Error("a chain id is 64 hex digits");
    if (described.chainId !== expected) {
      throw new Error(
        `this genesis is chain ${described.chainId}, not the chain ${expected} you typed: not pinned`,
      );
    }
  }
  localStorage.setItem(KEY, JSON.stringify(genesis));
  return described;
}

/** Forgets the pinned genesis. */
export function unpin(): void {
  localStorage.removeItem(KEY);
}
