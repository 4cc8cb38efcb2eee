// An issue: the philatelic record, its design (fetched and checked against the recorded
// SHA-256 only when the reader asks), supply, variants, co-issuers, and its stamps paged.

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { api, type IssueInfo } from "../api";
import { facts, fill, h, hash, table } from "../dom";
import { money } from "../format";
import { account, block, pager, stamp, status } from "./common";
import type { Page } from "../main";

/** Largest design image fetched. */
export const MAX_DESIGN_BYTES = 16 << 20;
const DESIGN_TIMEOUT_MS = 15_000;

export const issuePage: Page = async (main, [id], query) => {
  const afterText = query.get("after");
  const after = afterText === null ? null : Number(afterText);
  const [info, page] = await Promise.all([api.issue(id), api.issueStamps(id, after)]);
  const r = info.record;
  const design = h("div", { class: "design" });
  const check = h("button", { type: "button" }, "Fetch the design and check its SHA-256");
  check.addEventListener("click", () => void checkDesign(info, design, check));
  fill(
    main,
    h("h1", {}, `${r.title}`),
    h("p", { class: "subtitle" }, `Issue ${r.id} · ${r.country} ${r.year}${info.closed ? " · closed" : ""}`),
    facts([
      ["Issue id", r.id],
      ["Operator", r.operator],
      ["Country", r.country],
      ["Year", String(r.year)],
      ["Face value", `${money(r.face_value.amount_minor, r.face_value.currency)} (${r.face_value.amount_minor} minor units of ${r.face_value.currency})`],
      ["WNS number", r.wns_number ?? h("span", { class: "muted" }, "none")],
      ["Print run", String(r.print_run)],
      ["Created at", block(info.created_height)],
      ["Design address", h("code", { class: "uri" }, r.design_uri)],
      ["Design SHA-256", hash(r.design_sha256)],
      ["Variants", r.variants.length > 0 ? r.variants.map((v) => v.name).join(", ") : h("span", { class: "muted" }, "none")],
      ["Co-issuers", r.co_issuers.length > 0 ? r.co_issuers.map((c) => c.operator).join(", ") : h("span", { class: "muted" }, "none")],
    ]),
    h("div", { class: "design-check" }, check, design),
    h("h2", {}, "Supply"),
    facts([
      ["Minted", `${info.minted} of ${r.print_run}`],
      ["Redeemed", String(info.redeemed)],
      ["Frozen", String(info.frozen)],
      ["Burned", String(info.burned)],
    ]),
    r.variants.length > 0
      ? table("Variants", ["Variant", "Stamps", "Minted"], r.variants.map((v, i) => [v.name, String(v.count), String(info.variant_minted[i] ?? 0)]))
      : null,
    r.co_issuers.length > 0
      ? table(
          "Co-issuers",
          ["Operator", "Share", "Minted"],
          r.co_issuers.map((c, i) => [c.operator, String(c.share), String(info.co_issuer_minted[i] ?? 0)]),
        )
      : null,
    h("h2", {}, "Stamps"),
    table(
      after === null ? "Minted stamps (first page)" : `Minted stamps after serial ${after}`,
      ["Stamp", "Owner", "Status", "Events"],
      page.stamps.map((s) => [stamp(s.stamp), account(s.owner), status(s), String(s.event_count)]),
    ),
    pager(`/issue/${encodeURIComponent(id)}`, page.next, "More stamps", after === null),
  );
};

async function checkDesign(info: IssueInfo, out: HTMLElement, button: HTMLButtonElement): Promise<void> {
  const { design_uri: uri, design_sha256: expected, title } = info.record;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    out.replaceChildren(h("p", { class: "verdict failed", role: "status" }, "The design address is not a URL: nothing fetched."));
    return;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    out.replaceChildren(h("p", { class: "verdict failed", role: "status" }, `Only http and https designs are fetched, not ${url.protocol}`));
    return;
  }
  button.disabled = true;
  out.replaceChildren(h("p", { role: "status" }, `Fetching ${url.href}…`));
  try {
    const response = await fetch(url, { credentials: "omit", referrerPolicy: "no-referrer", signal: AbortSignal.timeout(DESIGN_TIMEOUT_MS) });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const declared = Number(response.headers.get("content-length") ?? 0);
    if (declared > MAX_DESIGN_BYTES) throw new Error(`${declared} bytes, over the ${MAX_DESIGN_BYTES} bytes read`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > MAX_DESIGN_BYTES) throw new Error(`over the ${MAX_DESIGN_BYTES} bytes read`);
    const actual = bytesToHex(sha256(bytes));
    if (actual !== expected) {
      out.replaceChildren(
        h("p", { class: "verdict failed", role: "status" }, "MISMATCH: the image at this address is not the recorded design."),
        facts([["Recorded SHA-256", hash(expected)], ["Fetched SHA-256", hash(actual)]]),
      );
      return;
    }
    const blob = new Blob([bytes], { type: response.headers.get("content-type") ?? "image/png" });
    out.replaceChildren(
      h("p", { class: "verdict authentic", role: "status" }, `MATCHES: the fetched image's SHA-256 is the recorded one (${bytes.length} bytes).`),
      h("img", { src: URL.createObjectURL(blob), alt: `Design of ${title}`, class: "design-image" }),
    );
  } catch (error) {
    out.replaceChildren(
      h("p", { class: "verdict failed", role: "status" }, `Could not fetch the design (${String(error)}): the address may be unreachable from this browser or refuse cross-origin reads. Nothing was checked.`),
    );
  } finally {
    button.disabled = false;
  }
}

