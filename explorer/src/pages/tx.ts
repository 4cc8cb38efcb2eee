// A transaction: its status, kind, signer, block, and the stamps it touched.

import { api, type SignedTx } from "../api";
import { addressOf } from "../address";
import { facts, h, hash, type Child } from "../dom";
import { words } from "../format";
import { account, block, issue, stamp } from "./common";
import type { Page } from "../main";

/** Most stamps of a mint's range linked one by one. */
const MINT_LINKS = 10;

export const txPage: Page = async (main, [idText]) => {
  const id = idText.toLowerCase();
  const info = await api.tx(id);
  const rows: [string, Child][] = [["Id", hash(id)]];
  switch (info.status) {
    case "final":
      rows.push(["Status", h("span", { class: "badge status-active" }, "final")]);
      rows.push(["Block", h("span", {}, block(info.height), ` position ${info.index}`)]);
      break;
    case "rejected":
      rows.push(["Status", h("span", { class: "badge status-burned" }, "rejected")]);
      rows.push(["Reason", `${words(info.reason)}: ${info.message}`]);
      break;
    case "pending":
      rows.push(["Status", h("span", { class: "badge status-unclaimed" }, "pending")]);
      break;
    case "unknown":
      rows.push(["Status", h("span", { class: "badge" }, "unknown to this node")]);
      break;
  }
  const tx = info.tx;
  main.replaceChildren(
    h("h1", {}, tx ? `Transaction: ${words(tx.body.kind)}` : "Transaction"),
    facts(rows),
    tx ? details(tx) : h("p", { class: "muted" }, "The node shows a transaction's content once it is final."),
  );
};

function details(tx: SignedTx): HTMLElement {
  const rows: [string, Child][] = [
    ["Kind", words(tx.body.kind)],
    ["Signer", account(addressOf(tx.signer))],
    ["Nonce", String(tx.nonce)],
  ];
  for (const [field, value] of Object.entries(tx.body)) {
    if (field === "kind") continue;
    rows.push([words(field), fieldValue(field, value)]);
  }
  if (tx.cosignatures.length > 0) {
    rows.push(["Cosigned by", h("span", {}, tx.cosignatures.map((c) => [account(addressOf(c.signer)), " "]))]);
  }
  rows.push(["Stamps touched", touched(tx)]);
  return h("section", {}, h("h2", {}, "Content"), facts(rows));
}

/** The stamps a transaction names: one stamp, a swap's two sides, or a mint's range. */
function touched(tx: SignedTx): Child {
  const body = tx.body as Record<string, unknown>;
  if (typeof body.stamp === "string") return stamp(body.stamp);
  if (Array.isArray(body.give) || Array.isArray(body.take)) {
    const all = [...((body.give as string[]) ?? []), ...((body.take as string[]) ?? [])];
    return h("span", {}, all.map((s) => [stamp(s), " "]));
  }
  if (body.kind === "mint") {
    const first = body.first_serial as number;
    const last = body.last_serial as number;
    const links = [];
    for (let serial = first; serial <= last && links.length < MINT_LINKS; serial++) {
      links.push(stamp(`${body.issue as string}#${serial}`), " ");
    }
    return h("span", {}, `${last - first + 1} stamps, serials ${first} to ${last} of `, issue(body.issue as string), ": ", links, last - first + 1 > MINT_LINKS ? "…" : "");
  }
  return h("span", { class: "muted" }, "none");
}

function fieldValue(field: string, value: unknown): Child {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "none");
  if (typeof value === "string") {
    if (field === "stamp") return stamp(value);
    if (field === "issue") return issue(value);
    if (value.startsWith("cachet1")) return account(value);
    if (/^[0-9a-f]{64}$/.test(value)) return hash(value);
    return value;
  }
  if (field === "record" && typeof value === "object" && "id" in value) {
    const record = value as { id: string; title: string };
    return h("span", {}, issue(record.id), ` “${record.title}”`);
  }
  if (Array.isArray(value) && value.every((v) => typeof v === "string" && /#/.test(v))) {
    return h("span", {}, (value as string[]).map((s) => [stamp(s), " "]));
  }
  return h("code", { class: "json" }, JSON.stringify(value));
}
