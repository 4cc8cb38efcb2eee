// Account addresses (`specs/encoding.md#account-addresses`), by the verifier's encoder.

import { hex } from "@scure/base";
import { formatAddress } from "./verify/index";

/** The address of a public key given in hex. */
export function addressOf(publicKeyHex: string): string {
  return formatAddress(hex.decode(publicKeyHex));
}
