// The genesis the reader trusts, pinned once: pasted, uploaded, or fetched from this node
// and accepted only if its recomputed chain id is the one the reader typed.

import { api } from "../api";
import { facts, h } from "../dom";
import { MAX_GENESIS_BYTES, pin, pinned, unpin } from "../pin";
import type { Page } from "../main";

export const genesisPage: Page = async (main) => {
  const status = h("div", { "aria-live": "polite", id: "pin-status" });
  const current = h("div", {});
  const refresh = () => {
    const trust = pinned();
    current.replaceChildren(
      trust
        ? h(
            "div",
            {},
            facts([
              ["Chain", trust.chainName || "unnamed"],
              ["Chain id", h("code", { class: "hash-full", id: "pinned-chain-id" }, trust.chainId)],
            ]),
            h("button", { type: "button", onclick: () => (unpin(), refresh(), say("Unpinned.", true)) }, "Unpin"),
          )
        : h("p", { class: "muted" }, "No genesis is pinned in this browser."),
    );
  };
  const say = (text: string, ok: boolean) =>
    status.replaceChildren(h("p", { class: `verdict ${ok ? "authentic" : "failed"}`, role: "status" }, text));
  const attempt = (text: string, expected?: string) => {
    try {
      const trust = pin(text, expected);
      say(`Pinned ${trust.chainName || "the chain"} ${trust.chainId}.`, true);
    } catch (error) {
      say(`Not pinned: ${(error as Error).message}`, false);
    }
    refresh();
  };

  const pasted = h("textarea", { id: "genesis-text", rows: 6, spellcheck: "false" });
  const file = h("input", { id: "genesis-file", type: "file", accept: "application/json,.json" });
  const chainId = h("input", { id: "genesis-chain-id", type: "text", inputmode: "latin", autocomplete: "off", spellcheck: "false", size: 66, placeholder: "64 hex digits" });
  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    if (chosen.size > MAX_GENESIS_BYTES) return say(`Not pinned: the file is over ${MAX_GENESIS_BYTES} bytes`, false);
    attempt(await chosen.text());
  });

  refresh();
  main.replaceChildren(
    h("h1", {}, "Trusted genesis"),
    h("p", {}, "Verification in this browser trusts no node: it checks a stamp's bundle against the genesis pinned here (kept in this browser only). Get the genesis, or its chain id, from a source you trust: the operators' published genesis file, or an auditor."),
    h("h2", {}, "Pinned now"),
    current,
    status,
    h("h2", {}, "Pin a genesis"),
    h(
      "form",
      { class: "pin", onsubmit: (e: Event) => (e.preventDefault(), attempt(pasted.value)) },
      h("label", { for: "genesis-text" }, "Paste the genesis JSON"),
      pasted,
      h("button", { type: "submit" }, "Pin the pasted genesis"),
    ),
    h("div", { class: "pin" }, h("label", { for: "genesis-file" }, "Or upload the genesis file"), file),
    h(
      "form",
      {
        class: "pin",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            attempt(JSON.stringify(await api.genesis()), chainId.value);
          } catch (error) {
            say(`Not pinned: ${String(error)}`, false);
          }
        },
      },
      h("label", { for: "genesis-chain-id" }, "Or fetch it from this node, checked against the chain id you type"),
      chainId,
      h("button", { type: "submit" }, "Fetch and check"),
    ),
    h("p", { class: "muted" }, "On a development node the genesis is the file genesis.json in its data directory; `cachet chain genesis` prints the one a node serves."),
  );
};
