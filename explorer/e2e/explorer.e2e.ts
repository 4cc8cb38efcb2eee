// The explorer in Debian's Chromium (playwright-core) against a real cachetd --dev with a
// workload (setup.ts): home, search, timeline, transaction, block, holdings paged, the
// issue with its design checked, a frozen stamp, pinning a genesis, verification in the
// browser (AUTHENTIC), tampered bundles (FAILED, with the check named), keyboard and phone.

import { existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, test } from "vitest";
import { MINTED } from "./setup";

const world = inject("world");
const CHROMIUM = process.env.CACHET_CHROMIUM ?? "/usr/bin/chromium";
/** Where screenshots of the main pages go, when asked (README images). */
const SHOTS = process.env.CACHET_SCREENSHOTS;
/** Longest a page element may take to appear. */
const UI_TIMEOUT_MS = 15_000;

let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (explorer/e2e/run does)`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", `--disk-cache-dir=${mkdtempSync(join(tmpdir(), "cachet-chromium-cache-"))}`],
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
});

/** A fresh browser context (its own storage) with a page at `origin`'s explorer. */
async function open(origin: string, route = "/", viewport = { width: 1280, height: 900 }): Promise<{ page: Page; requests: string[] }> {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const requests: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (error) => requests.push(`pageerror: ${error.message}`));
  await page.goto(`${origin}/explorer/#${route}`);
  return { page, requests };
}

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Pins by fetching the node's genesis checked against `chainId`; the answer shown. */
async function pinByChainId(page: Page, origin: string, chainId: string, expected: string): Promise<string> {
  await page.goto(`${origin}/explorer/#/genesis`);
  await page.reload();
  await page.getByLabel("Or fetch it from this node, checked against the chain id you type").fill(chainId);
  await page.getByRole("button", { name: "Fetch and check" }).click();
  await expect.poll(() => page.locator("#pin-status").innerText()).toContain(expected);
  return (await page.locator("#pin-status").innerText()).trim();
}

describe("the explorer on a dev node", () => {
  test("home shows the chain, its operators and the latest blocks, live", async () => {
    const { page, requests } = await open(world.node);
    await expect.poll(() => page.locator("h1").innerText()).toBe("cachet-dev");
    const operators = page.locator("table", { has: page.locator("caption", { hasText: "operators" }) });
    await expect.poll(() => operators.innerText()).toContain("DEV-POST");
    const blocks = page.locator("table", { has: page.locator("caption", { hasText: "Latest blocks" }) });
    expect(await blocks.locator("tbody tr").count()).toBeGreaterThan(3);
    await expect.poll(() => page.locator(".live").innerText()).toContain("on: new blocks");
    await shot(page, "home");
    // Everything the page loaded came from the node itself.
    const foreign = requests.filter((url) => !url.startsWith(world.node));
    expect(foreign).toEqual([]);
  });

  test("search finds a stamp; its timeline lists every event with its signer", async () => {
    const { page } = await open(world.node);
    await page.getByLabel("Search").fill(world.movedStamp);
    await page.getByLabel("Search").press("Enter");
    await expect.poll(() => page.locator("h1").innerText()).toBe(`Stamp ${world.movedStamp}`);
    const timeline = page.locator("table", { has: page.locator("caption", { hasText: "Every event" }) });
    const rows = timeline.locator("tbody tr");
    expect(await rows.count()).toBe(4);
    expect(await rows.nth(0).innerText()).toContain("minted");
    expect(await rows.nth(1).innerText()).toContain("transferred");
    expect(await page.locator("dl.facts").first().innerText()).toContain(world.bob.slice(0, 14));
  });

  test("a transaction links to its block, whose certificate names its signer", async () => {
    const { page } = await open(world.node, `/stamp/${encodeURIComponent(world.movedStamp)}`);
    const timeline = page.locator("table", { has: page.locator("caption", { hasText: "Every event" }) });
    await timeline.locator("tbody tr").nth(1).locator("a[href^='#/tx/']").click();
    await expect.poll(() => page.locator("h1").innerText()).toBe("Transaction: transfer");
    const facts = await page.locator("main").innerText();
    expect(facts).toContain(world.transferTx.slice(0, 10));
    expect(facts).toContain("final");
    expect(facts).toContain(world.movedStamp);
    await page.locator(`a[href='#/block/${world.transferHeight}']`).first().click();
    await expect.poll(() => page.locator("h1").innerText()).toBe(`Block ${world.transferHeight}`);
    const certificate = page.locator("table", { has: page.locator("caption", { hasText: "certificate" }) });
    expect(await certificate.innerText()).toContain("DEV-POST");
    expect(await page.locator("main").innerText()).toContain(world.transferTx.slice(0, 10));
  });

  test("an account's holdings page through without gaps or repeats", async () => {
    const { page } = await open(world.node);
    await page.getByLabel("Search").fill(world.alice);
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => page.locator("h1").innerText()).toBe("Account");
    const seen: string[] = [];
    for (let pages = 0; pages < 10; pages++) {
      const table = page.locator("table", { has: page.locator("caption", { hasText: "Stamps held" }) });
      await table.waitFor();
      const cells = await table.locator("tbody td a").allInnerTexts();
      expect(cells.length).toBeLessThanOrEqual(20);
      seen.push(...cells);
      const more = page.getByRole("link", { name: "More stamps »" });
      if ((await more.count()) === 0) break;
      const before = await table.innerText();
      await more.click();
      await expect.poll(() => page.locator("table").last().innerText()).not.toBe(before);
    }
    // Alice holds every minted stamp but #42 (bob's).
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(MINTED - 1);
    expect(seen).not.toContain(world.movedStamp);
  });

  test("an issue shows its record, checks its design image, and pages its stamps", async () => {
    const { page } = await open(world.node, `/issue/${world.issue}`);
    await expect.poll(() => page.locator("h1").innerText()).toBe("Alpine Flowers");
    const record = await page.locator("main").innerText();
    expect(record).toContain("€1.20");
    expect(record).toContain(`${MINTED} of 100`);
    await page.getByRole("button", { name: "Fetch the design and check its SHA-256" }).click();
    await expect.poll(() => page.locator(".design .verdict").innerText()).toContain("MATCHES");
    expect(await page.locator(".design img").getAttribute("alt")).toBe("Design of Alpine Flowers");
    const stamps = page.locator("table", { has: page.locator("caption", { hasText: "Minted stamps" }) });
    expect(await stamps.locator("tbody tr").count()).toBe(20);
    expect(await stamps.locator("tbody tr").nth(8).innerText()).toContain("frozen");
    await shot(page, "issue");
    await page.getByRole("link", { name: "More stamps »" }).click();
    await expect.poll(() => page.locator("caption", { hasText: "Minted stamps" }).innerText()).toContain("after serial 20");
  });

  test("a frozen stamp shows its reason and case", async () => {
    const { page } = await open(world.node, `/stamp/${encodeURIComponent(world.frozenStamp)}`);
    await expect.poll(() => page.locator("main").innerText()).toContain("reason: stolen, case POL-2026-17");
  });

  test("the membership page lists the set and its history", async () => {
    const { page } = await open(world.node, "/membership");
    await expect.poll(() => page.locator("h1").innerText()).toBe("Operators");
    expect(await page.locator("main").innerText()).toContain("DEV-POST");
  });

  test("a genesis is pinned only with the chain id typed; then the stamp verifies AUTHENTIC", async () => {
    const { page } = await open(world.node);
    const wrong = "ab".repeat(32);
    expect(await pinByChainId(page, world.node, wrong, "Not pinned")).toContain(`not the chain ${wrong} you typed`);
    expect(await pinByChainId(page, world.node, world.chainId, "Pinned")).toContain(`Pinned cachet-dev ${world.chainId}`);
    await page.goto(`${world.node}/explorer/#/stamp/${encodeURIComponent(world.movedStamp)}`);
    await page.getByRole("button", { name: "Verify provenance in this browser" }).click();
    const verdict = page.locator(".verify-result .verdict");
    await expect.poll(() => verdict.innerText()).toContain("AUTHENTIC");
    expect(await verdict.getAttribute("data-verdict")).toBe("AUTHENTIC");
    expect(await page.locator(".verify-result").innerText()).toContain(world.bob.slice(0, 14));
    await shot(page, "verify-authentic");
  });

  for (const [mode, check] of [
    ["mint-owner", "signature"],
    ["drop-event", "chain_gap"],
    ["certificate", "certificate"],
  ] as const) {
    test(`a bundle tampered on the way (${mode}) is FAILED: ${check}`, async () => {
      const { page } = await open(world.proxy, "/genesis");
      // This origin pins by pasting the genesis file.
      await page.getByLabel("Paste the genesis JSON").fill(world.genesisText);
      await page.getByRole("button", { name: "Pin the pasted genesis" }).click();
      await expect.poll(() => page.locator("#pin-status").innerText()).toContain("Pinned");
      await fetch(`${world.proxy}/__tamper?mode=${mode}`, { method: "POST" });
      try {
        await page.goto(`${world.proxy}/explorer/#/stamp/${encodeURIComponent(world.movedStamp)}`);
        await page.getByRole("button", { name: "Verify provenance in this browser" }).click();
        const verdict = page.locator(".verify-result .verdict");
        await expect.poll(() => verdict.innerText()).toContain("FAILED");
        expect(await verdict.getAttribute("data-check")).toBe(check);
        if (mode === "mint-owner") await shot(page, "verify-failed");
      } finally {
        await fetch(`${world.proxy}/__tamper?mode=none`, { method: "POST" });
      }
    });
  }

  test("an uploaded genesis file is pinned", async () => {
    const { page } = await open(world.node, "/genesis");
    await page.locator("#genesis-file").setInputFiles({ name: "genesis.json", mimeType: "application/json", buffer: Buffer.from(world.genesisText) });
    await expect.poll(() => page.locator("#pin-status").innerText()).toContain(`Pinned cachet-dev ${world.chainId}`);
    await page.locator("#genesis-file").setInputFiles({ name: "genesis.json", mimeType: "application/json", buffer: Buffer.from("{}") });
    await expect.poll(() => page.locator("#pin-status").innerText()).toContain("Not pinned");
  });

  test("in Chromium, the explorer's verifier gives the Rust verdict on every case of verifier-cases.json", async () => {
    const vectors = JSON.parse(readFileSync(new URL("../../specs/vectors/verifier-cases.json", import.meta.url), "utf8")) as {
      geneses: Record<string, unknown>;
      cases: { name: string; genesis: string; bundle: { stamp: string }; expect: { verdict: string; failure?: { check: string } } }[];
    };
    expect(vectors.cases.length).toBeGreaterThan(20);
    const { page } = await open(world.node);
    await page.locator("h1").waitFor();
    // The node knows none of these stamps: their page and bundle are served here, as a
    // node might serve them; the verdict must come from the checks alone.
    let bundle: unknown;
    await page.route(/\/v1\/stamp\//, async (route) => {
      const url = new URL(route.request().url());
      const stamp = decodeURIComponent(url.pathname.split("/")[3]);
      if (url.pathname.endsWith("/bundle")) return route.fulfill({ json: bundle });
      if (url.pathname.endsWith("/history")) return route.fulfill({ json: { stamp, events: [], next: null } });
      return route.fulfill({ json: { stamp, owner: null, status: "active", last_event: "00".repeat(32), event_count: 0 } });
    });
    for (const c of vectors.cases) {
      bundle = c.bundle;
      await page.evaluate((g) => localStorage.setItem("cachet.pinned-genesis", g), JSON.stringify(vectors.geneses[c.genesis]));
      await page.goto(`${world.node}/explorer/#/stamp/${encodeURIComponent(c.bundle.stamp)}`);
      await page.reload();
      await page.getByRole("button", { name: "Verify provenance in this browser" }).click();
      const verdict = page.locator(".verify-result .verdict[data-verdict]");
      await verdict.waitFor();
      const expected = c.expect.verdict === "authentic" ? "AUTHENTIC" : "FAILED";
      expect(await verdict.getAttribute("data-verdict"), c.name).toBe(expected);
      if (c.expect.failure) expect(await verdict.getAttribute("data-check"), c.name).toBe(c.expect.failure.check);
    }
  });

  test("the keyboard reaches search, and every field has a label", async () => {
    const { page } = await open(world.node);
    await page.locator("h1").waitFor();
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
    let reached = false;
    for (let i = 0; i < 10 && !reached; i++) {
      await page.keyboard.press("Tab");
      reached = await page.evaluate(() => document.activeElement?.id === "search-input");
    }
    expect(reached).toBe(true);
    await page.keyboard.type(world.issue);
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("h1").innerText()).toBe("Alpine Flowers");
    await page.goto(`${world.node}/explorer/#/genesis`);
    await page.locator("h1").waitFor();
    const unlabeled = await page.evaluate(() =>
      [...document.querySelectorAll("input, textarea, select")]
        .filter((field) => !field.id || !document.querySelector(`label[for="${field.id}"]`))
        .map((field) => field.outerHTML),
    );
    expect(unlabeled).toEqual([]);
  });

  test("axe finds no accessibility violation on the main pages (contrast, labels, names, landmarks)", async () => {
    // axe-core, run in the page by the test driver (not loaded by the explorer itself).
    const axe = readFileSync(new URL("../node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
    const routes = ["/", `/stamp/${encodeURIComponent(world.frozenStamp)}`, `/issue/${world.issue}`, `/account/${world.alice}`, `/block/${world.transferHeight}`, `/tx/${world.transferTx}`, "/membership", "/genesis"];
    for (const route of routes) {
      const { page } = await open(world.node, route);
      await page.locator("h1").waitFor();
      await page.evaluate(axe);
      const violations = await page.evaluate(async () => {
        const result = await (window as unknown as { axe: { run: (context: Document, options: object) => Promise<{ violations: { id: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe.run(document, {
          runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] },
        });
        return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")})`);
      });
      expect(violations, `on ${route}`).toEqual([]);
    }
  });

  test("on a phone's width nothing overflows the page", async () => {
    for (const route of ["/", `/stamp/${encodeURIComponent(world.movedStamp)}`, `/issue/${world.issue}`, `/account/${world.alice}`]) {
      const { page } = await open(world.node, route, { width: 375, height: 740 });
      await page.locator("h1").waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `horizontal overflow on ${route}`).toBeLessThanOrEqual(0);
      if (route.startsWith("/stamp")) await shot(page, "stamp-phone");
    }
  });
});
