// The operator set: who is in it now, a change scheduled, and every change decided.

import { api, PAGE, type Operator } from "../api";
import { h, hash, table } from "../dom";
import { words } from "../format";
import { account, block, pager } from "./common";
import type { Page } from "../main";

interface Epoch {
  proposal: string;
  change: { change: string; operator: string | Operator; [field: string]: unknown };
  proposer: string;
  approvals: string[];
  decided_height: number;
  activation_height: number;
  operators: Operator[];
}

export const membershipPage: Page = async (main, _params, query) => {
  const membership = await api.membership();
  const all = membership.changes as unknown as Epoch[];
  // History pages of PAGE changes, oldest first.
  const from = Math.max(0, Number(query.get("after") ?? 0) || 0);
  const changes = all.slice(from, from + PAGE);
  const next = from + PAGE < all.length ? from + PAGE : null;
  const scheduled = membership.scheduled as unknown as Epoch | null;
  const describe = (epoch: Epoch) => {
    const subject = typeof epoch.change.operator === "string" ? epoch.change.operator : epoch.change.operator.id;
    return `${words(epoch.change.change)} ${subject}`;
  };
  main.replaceChildren(
    h("h1", {}, "Operators"),
    h("p", {}, `The set in force after height ${membership.height}: ${membership.operators.length} operators, in validator order.`),
    table(
      "Current operator set",
      ["Validator", "Operator", "Name", "Country", "Issuer account", "Validator key"],
      membership.operators.map((op, i) => [`#${i}`, op.id, op.name, op.country, account(op.issuer), hash(op.validator_key)]),
    ),
    h("h2", {}, "Scheduled change"),
    scheduled
      ? h("p", {}, `${describe(scheduled)}, decided at `, block(scheduled.decided_height), `, in force from height ${scheduled.activation_height}.`)
      : h("p", { class: "muted" }, "None."),
    h("h2", {}, "History"),
    table(
      `Decided changes, oldest first (${all.length === 0 ? "none" : `${from + 1} to ${from + changes.length} of ${all.length}`})`,
      ["Change", "Proposed by", "Approved by", "Decided at", "In force from", "Proposal"],
      changes.map((epoch) => [
        describe(epoch),
        epoch.proposer,
        epoch.approvals.join(", "),
        block(epoch.decided_height),
        String(epoch.activation_height),
        hash(epoch.proposal, `/tx/${epoch.proposal}`),
      ]),
    ),
    pager("/membership", next, "Later changes", from === 0),
  );
};
