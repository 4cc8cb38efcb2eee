// The search box: what a typed text names, by its syntax (`specs/ledger.md#identifiers`).

export type Target =
  | { kind: "block"; height: number }
  | { kind: "tx"; id: string }
  | { kind: "account"; address: string }
  | { kind: "stamp"; id: string }
  | { kind: "issue"; id: string }
  | { kind: "none"; reason: string };

const ISSUE = /^[A-Z0-9](?:-?[A-Z0-9])*$/;

/** What `text` names: a height, a transaction id, an address, a stamp id or an issue id. */
export function classify(text: string): Target {
  const value = text.trim();
  if (value === "") return { kind: "none", reason: "type a stamp, issue, address, transaction id or height" };
  if (/^\d{1,16}$/.test(value)) {
    const height = Number(value);
    if (height >= 1 && Number.isSafeInteger(height)) return { kind: "block", height };
    return { kind: "none", reason: "block heights start at 1" };
  }
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: "tx", id: value.toLowerCase() };
  if (/^cachet1[02-9ac-hj-np-z]{20,100}$/i.test(value)) {
    return { kind: "account", address: value.toLowerCase() };
  }
  const stamp = /^([A-Za-z0-9-]{3,32})#([1-9]\d{0,9})$/.exec(value);
  if (stamp) {
    const issue = stamp[1].toUpperCase();
    const serial = Number(stamp[2]);
    if (ISSUE.test(issue) && serial <= 0xffffffff) return { kind: "stamp", id: `${issue}#${serial}` };
  }
  const upper = value.toUpperCase();
  if (upper.length >= 3 && upper.length <= 32 && ISSUE.test(upper)) return { kind: "issue", id: upper };
  return {
    kind: "none",
    reason: `"${value}" is no stamp id (ISSUE#SERIAL), issue id, address (cachet1...), transaction id (64 hex digits) or height`,
  };
}

/** The explorer route of a target (the part after `#`), or null. */
export function routeOf(target: Target): string | null {
  switch (target.kind) {
    case "block":
      return `/block/${target.height}`;
    case "tx":
      return `/tx/${target.id}`;
    case "account":
      return `/account/${target.address}`;
    case "stamp":
      return `/stamp/${encodeURIComponent(target.id)}`;
    case "issue":
      return `/issue/${encodeURIComponent(target.id)}`;
    case "none":
      return null;
  }
}
