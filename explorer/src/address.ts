// Account addresses (`specs/encoding.md#account-addresses`): bech32m of the 32 key bytes
// with the human-readable part `cachet`.

import { bech32m, hex } from "@scure/base";

/** The address of a public key given in hex. */
export function addressOf(publicKeyHex: string): string {
  return bech32m.encode("cachet", bech32m.toWords(hex.decode(publicKeyHex)), 120);
}
