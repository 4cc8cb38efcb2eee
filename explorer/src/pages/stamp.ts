// A stamp: owner, status (a freeze's reason and case), its timeline of every event, and
// "verify": its provenance bundle checked here, in the browser, against the pinned genesis.

import { api, type HistoryEntry } from "../api";
import { facts, h, hash, link, table, type Child } from "../dom";
import { time, words } from "../format";
import { pinned } from "../pin";
import { verifyBundle, type Verdict } from "../verify/index";
import { account, block, issue, pager, status } from "./common";
import type { Page } from "../main";

export const stampPage: Page = async (main, [id], query) => {
  const afterText = query.get("after");
  const after = afterText === null ? null : Number(afterText);
  const [info, page] = await Promise.all([api.stamp(id), api.history(id, after)]);
  const [issueId, serial] = [id.slice(0, id.lastIndexOf("#")), id.slice(id.lastIndexOf("#") + 1)];
  const result = h("div", { class: "verify-result", "aria-live": "polite" });
  const button = h("button", { type: "button", id: "verify" }, "Verify provenance in this browser");
  button.addEventListener("click", () => void verify(info.stamp, result, button));
  const trust = pinned();
  main.replaceChildren(
    h("h1", {}, `Stamp ${info.stamp}`),
    facts([
      ["Issue", issue(issueId)],
      ["Serial", serial],
      ["Owner", account(info.owner)],
      ["Status", status(info)],
      ["Events", String(info.event_count)],
      ["Latest event", hash(info.last_event)],
    ]),
    h(
      "section",
      { class: "verify", "aria-labelledby": "verify-heading" },
      h("h2", { id: "verify-heading" }, "Verify"),
      h(
        "p",
        {},
        "Fetches the stamp's provenance bundle and checks every signature, certificate, inclusion proof and state proof here, against the genesis you trust; this node is not trusted. ",
        trust
          ? h("span", {}, "Pinned genesis: ", h("strong", {}, trust.chainName || "unnamed chain"), " ", hash(trust.chainId), " (", link("/genesis", "change"), ").")
          : h("span", {}, "No genesis is pinned yet: ", link("/genesis", "pin the genesis you trust"), " first."),
      ),
      button,
      result,
    ),
    h("h2", {}, "Timeline"),
    table(
      after === null ? "Every event of the stamp, oldest first" : `Events after number ${after}`,
      ["#", "Event", "Details", "Signed by", "Block", "Time", "Transaction"],
      page.events.map((e) => [String(e.seq), words(e.kind), details(e), account(e.signer), block(e.height), time(e.time_ms), hash(e.tx_id, `/tx/${e.tx_id}`)]),
    ),
    pager(`/stamp/${encodeURIComponent(id)}`, page.next, "Later events", after === null),
  );
};

/** What an event did, from its kind's fields (`specs/api.md`, HistoryEntry). */
function details(event: HistoryEntry): Child {
  const parts: Child[] = [];
  for (const [field, value] of Object.entries(event)) {
    if (["seq", "kind", "event_hash", "prev_event", "tx_id", "signer", "height", "time_ms"].includes(field)) continue;
    if (value === null || value === undefined) continue;
    const shown = typeof value === "string" && value.startsWith("cachet1") ? account(value) : typeof value === "string" ? words(value) : JSON.stringify(value);
    parts.push(h("span", { class: "field" }, `${words(field)} `, shown), " ");
  }
  return parts.length ? parts : h("span", { class: "muted" }, "—");
}

async function verify(stamp: string, out: HTMLElement, button: HTMLButtonElement): Promise<void> {
  const trust = pinned();
  if (!trust) {
    out.replaceChildren(h("p", { class: "verdict failed", role: "status" }, "No genesis is pinned: ", link("/genesis", "pin one"), " first."));
    return;
  }
  button.disabled = true;
  out.replaceChildren(h("p", { role: "status" }, "Fetching the bundle and verifying…"));
  try {
    const bundle = await api.bundle(stamp);
    show(out, await verifyOffThread(bundle, trust.genesis));
  } catch (error) {
    out.replaceChildren(h("p", { class: "verdict failed", role: "status" }, `Could not verify: ${String(error)}`));
  } finally {
    button.disabled = false;
  }
}

/** The verdict on `bundle`, computed in a worker (inline where workers are unavailable). */
function verifyOffThread(bundle: unknown, genesis: unknown): Promise<Verdict> {
  if (typeof Worker === "undefined") return Promise.resolve(verifyBundle(bundle, genesis));
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL("../verify-worker.ts", import.meta.url), { type: "module" });
    worker.addEventListener("message", (event: MessageEvent<Verdict>) => {
      worker.terminate();
      resolve(event.data);
    });
    worker.addEventListener("error", (event) => {
      worker.terminate();
      reject(new Error(`the verifier stopped: ${event.message}`));
    });
    worker.postMessage({ bundle, genesis });
  });
}

function show(out: HTMLElement, verdict: Verdict): void {
  if (verdict.verdict === "authentic") {
    out.replaceChildren(
      h("p", { class: "verdict authentic", role: "status", "data-verdict": "AUTHENTIC" }, `AUTHENTIC: ${verdict.stamp}`),
      facts([
        ["Owner", account(verdict.owner)],
        ["Status", words((verdict.status as { status: string }).status)],
        ["Events", String(verdict.events)],
        ["Proven at height", String(verdict.asOfHeight)],
      ]),
    );
  } else {
    out.replaceChildren(
      h("p", { class: "verdict failed", role: "status", "data-verdict": "FAILED", "data-check": verdict.check }, `FAILED: ${verdict.check}`),
      h("p", {}, verdict.message),
    );
  }
}
