// A block: its header, the operators who certified it, its transactions (paged).

import { api, PAGE } from "../api";
import { facts, h, hash, link, table } from "../dom";
import { time } from "../format";
import { block as blockLink, operatorLabel, operatorsAt, pager } from "./common";
import type { Page } from "../main";

export const blockPage: Page = async (main, [heightText], query) => {
  const height = Number(heightText);
  const [info, chain] = await Promise.all([api.block(height), api.chain()]);
  const operators = await operatorsAt(height);
  const header = info.header;
  const from = Math.max(0, Number(query.get("after") ?? 0) || 0);
  const ids = info.tx_ids.slice(from, from + PAGE);
  const next = from + PAGE < info.tx_ids.length ? from + PAGE : null;
  main.replaceChildren(
    h("h1", {}, `Block ${height}`),
    h(
      "nav",
      { class: "pager", "aria-label": "Neighbouring blocks" },
      height > 1 ? link(`/block/${height - 1}`, "« Previous block") : null,
      height < chain.height ? link(`/block/${height + 1}`, "Next block »") : null,
    ),
    facts([
      ["Hash", hash(info.hash)],
      ["Time", time(header.time_ms)],
      ["Previous block", height > 1 ? hash(header.prev_hash, `/block/${height - 1}`) : h("span", {}, "the genesis (", hash(header.prev_hash), ")")],
      ["Proposer", `validator #${header.proposer}: ${operatorLabel(operators[header.proposer])}`],
      ["Transactions", String(header.tx_count)],
      ["Transaction root", hash(header.tx_root)],
      ["State root", hash(header.state_root)],
      ["Decided in round", String(info.certificate.round)],
    ]),
    h("h2", {}, "Certificate"),
    h("p", {}, `${info.certificate.signatures.length} of ${operators.length} validators signed this block's hash (more than two thirds make it final).`),
    table(
      "Commit certificate signers",
      ["Validator", "Operator", "Signature"],
      info.certificate.signatures.map((s) => [`#${s.validator}`, operatorLabel(operators[s.validator]), hash(s.signature)]),
    ),
    h("h2", {}, "Transactions"),
    table(
      `Transactions ${ids.length ? `${from + 1} to ${from + ids.length}` : ""} of ${info.tx_ids.length}`,
      ["Position", "Transaction id"],
      ids.map((id, i) => [String(from + i), hash(id, `/tx/${id}`)]),
    ),
    pager(`/block/${height}`, next, "More transactions", from === 0),
    h("p", {}, "Chain: ", blockLink(chain.height), " is the latest final block."),
  );
};
