// The chain's home: where it stands, who runs it, the latest blocks, live as blocks become
// final (server-sent events from /v1/events).

import { api, PAGE, type BlockInfo } from "../api";
import { facts, h, hash, table } from "../dom";
import { ago, time } from "../format";
import { account, block, pager } from "./common";
import type { Page } from "../main";

export const homePage: Page = async (main, _params, query) => {
  const chain = await api.chain();
  const before = query.get("after");
  const top = before === null ? chain.height : Math.min(chain.height, Number(before) - 1);
  const height = h("span", { id: "chain-height" }, String(chain.height));
  const tipTime = h("span", {}, chain.height > 0 ? `${time(chain.time_ms)} (${ago(chain.time_ms)})` : "no block yet");
  const live = h("span", { class: "live", role: "status" }, "connecting to live updates…");
  const latest = h("div", {});

  const rows = async (from: number): Promise<BlockInfo[]> => {
    const heights = [];
    for (let at = from; at >= 1 && heights.length < PAGE; at--) heights.push(at);
    return Promise.all(heights.map((at) => api.block(at)));
  };
  const showBlocks = (blocks: BlockInfo[]) => {
    latest.replaceChildren(
      table(
        "Latest blocks",
        ["Height", "Time", "Transactions", "Proposer", "Hash"],
        blocks.map((b) => [block(b.header.height), time(b.header.time_ms), b.header.tx_count, `#${b.header.proposer}`, hash(b.hash, `/block/${b.header.height}`)]),
      ),
    );
    const last = blocks.at(-1);
    latest.append(pager("/", last && last.header.height > 1 ? last.header.height : null, "Older blocks", before === null));
  };
  const initial = await rows(top);
  showBlocks(initial);

  main.replaceChildren(
    h("h1", {}, chain.chain_name || "Cachet chain"),
    facts([
      ["Chain id", hash(chain.chain_id)],
      ["Height", height],
      ["Latest final block", tipTime],
      ["Operators", String(chain.operators.length)],
      ["This node", `${chain.metrics.role}, cachetd ${chain.version}, ${chain.metrics.peers} peers, ${chain.metrics.mempool_size} pending`],
      ["Live", live],
    ]),
    h("h2", {}, "Operators"),
    table(
      "The operators (member posts) running the chain",
      ["Operator", "Name", "Country", "Issuer account"],
      chain.operators.map((op) => [op.id, op.name, op.country, account(op.issuer)]),
    ),
    h("h2", {}, "Blocks"),
    latest,
  );

  // Live: a block event refreshes the height and, on the first page, the latest blocks.
  if (before !== null || typeof EventSource === "undefined") {
    live.textContent = before !== null ? "paused while reading older blocks" : "not supported by this browser";
    return;
  }
  const events = new EventSource("/v1/events");
  events.addEventListener("open", () => (live.textContent = "on: new blocks appear as they become final"));
  events.addEventListener("error", () => (live.textContent = "reconnecting…"));
  // The newest block goes on top; only it is fetched.
  let shown = initial;
  events.addEventListener("block", (event) => {
    const data = JSON.parse((event as MessageEvent<string>).data) as { height: number; time_ms: number };
    height.textContent = String(data.height);
    tipTime.textContent = `${time(data.time_ms)} (${ago(data.time_ms)})`;
    void api.block(data.height).then((fresh) => {
      shown = [fresh, ...shown.filter((b) => b.header.height !== fresh.header.height)]
        .sort((a, b) => b.header.height - a.header.height)
        .slice(0, PAGE);
      showBlocks(shown);
    });
  });
  return () => events.close();
};
