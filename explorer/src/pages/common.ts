// Pieces several pages share: links to accounts and stamps, statuses, pagers, operators.

import { api, type Operator, type StampStatus } from "../api";
import { h, link, type Child } from "../dom";
import { words } from "../format";

/** A link to an account page, with the operator's id when it is an issuer account. */
export function account(address: string | null | undefined, label?: string): Child {
  if (!address) return h("span", { class: "muted" }, "nobody (unclaimed)");
  return link(`/account/${address}`, h("code", { class: "address", title: address }, label ?? shortAddress(address)));
}

/** An address shortened for reading. */
export function shortAddress(address: string): string {
  return address.length > 24 ? `${address.slice(0, 14)}…${address.slice(-6)}` : address;
}

/** A link to a stamp page. */
export function stamp(id: string): HTMLAnchorElement {
  return link(`/stamp/${encodeURIComponent(id)}`, id);
}

/** A link to an issue page. */
export function issue(id: string): HTMLAnchorElement {
  return link(`/issue/${encodeURIComponent(id)}`, id);
}

/** A link to a block page. */
export function block(height: number): HTMLAnchorElement {
  return link(`/block/${height}`, `#${height}`);
}

/** A stamp status as a badge, with a freeze's reason and case reference. */
export function status(record: StampStatus): HTMLElement {
  const badge = h("span", { class: `badge status-${record.status}` }, words(record.status));
  if (record.status === "frozen") {
    return h("span", {}, badge, ` reason: ${words(record.reason)}, case ${record.case_ref}`);
  }
  if (record.status === "unclaimed") {
    return h("span", {}, badge, " claim key ", h("code", { class: "hash", title: record.claim_key }, `${record.claim_key.slice(0, 12)}…`));
  }
  return badge;
}

/** A "next page" link when `next` is not null (the route gets `?after=next`). */
export function pager(route: string, next: string | number | null, label: string, first: boolean): HTMLElement {
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    first ? null : link(route, "« First page"),
    next === null ? h("span", { class: "muted" }, first ? "" : "Last page") : link(`${route}?after=${encodeURIComponent(String(next))}`, `${label} »`),
  );
}

/** The operator set in force at `height`: the genesis set, then each change from its activation height. */
export async function operatorsAt(height: number): Promise<Operator[]> {
  const [genesis, membership] = await Promise.all([api.genesis(), api.membership()]);
  let operators = (genesis as { operators: Operator[] }).operators;
  for (const change of membership.changes as { activation_height: number; operators: Operator[] }[]) {
    if (change.activation_height <= height) operators = change.operators;
  }
  return operators;
}

/** An operator's name with its country. */
export function operatorLabel(operator: Operator | undefined): string {
  return operator ? `${operator.id} (${operator.name}, ${operator.country})` : "unknown";
}
