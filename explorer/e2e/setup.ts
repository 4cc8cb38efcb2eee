// The browser tests' world: a real `cachetd --dev` on free loopback ports, a workload made
// with the real `cachet` CLI, and a proxy in front of the node that can tamper with
// provenance bundles (and serves the issue's design image). Everything is bounded in time
// and torn down at the end.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";

/** Longest the node may take to open its API. */
const START_TIMEOUT_MS = 60_000;
/** Longest one CLI command may take (each waits until its transaction is final). */
const COMMAND_TIMEOUT_MS = 60_000;
/** Stamps minted to alice: more than one page (20) of holdings. */
export const MINTED = 45;

export const DESIGN = Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="140"><rect width="120" height="140" fill="#f4f1ea" stroke="#0b5cad" stroke-width="6" stroke-dasharray="8 4"/><text x="60" y="78" font-size="22" text-anchor="middle" fill="#1b1f24">Alpine</text></svg>',
);

export interface World {
  node: string;
  proxy: string;
  chainId: string;
  genesisText: string;
  issue: string;
  alice: string;
  bob: string;
  movedStamp: string;
  frozenStamp: string;
  transferTx: string;
  transferHeight: number;
}

declare module "vitest" {
  export interface ProvidedContext {
    world: World;
  }
}

/** How the proxy alters bundles: none, or one tampering the verifier must name. */
export type Tamper = "none" | "mint-owner" | "drop-event" | "certificate";

function binDir(): string {
  const candidates = [
    process.env.CACHET_BIN_DIR,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug"),
    join(process.env.HOME ?? "", ".cache/cachet-target/debug"),
    resolve("../target/debug"),
  ].filter((d): d is string => !!d);
  const found = candidates.find((d) => existsSync(join(d, "cachetd")) && existsSync(join(d, "cachet")));
  if (!found) throw new Error(`cachetd and cachet not found in ${candidates.join(", ")}: build them (cargo build -p cachet-node -p cachet-cli) or set CACHET_BIN_DIR`);
  return found;
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "cachet-explorer-e2e-"));
  const dataDir = join(dir, "node");
  let node: ChildProcess | undefined;
  let proxy: http.Server | undefined;
  const teardown = async () => {
    proxy?.close();
    if (node && node.exitCode === null) {
      node.kill("SIGTERM");
      await new Promise((r) => node!.once("exit", r));
    }
    if (!process.env.CACHET_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const log = join(dir, "node.log");
    node = spawn(
      join(bin, "cachetd"),
      ["--dev", "--data-dir", dataDir, "--api-addr", "127.0.0.1:0", "--p2p-listen", "/ip4/127.0.0.1/tcp/0"],
      { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, CACHET_LOG: "info" } },
    );
    const logLines: string[] = [];
    node.stderr!.on("data", (chunk) => logLines.push(String(chunk)));
    const nodeUrl = await waitFor(`cachetd to write ${dataDir}/api.addr (log: ${log})`, START_TIMEOUT_MS, () => {
      if (node!.exitCode !== null) throw new Error(`cachetd exited (${node!.exitCode}):\n${logLines.join("")}`);
      return existsSync(join(dataDir, "api.addr")) ? readFileSync(join(dataDir, "api.addr"), "utf8").trim() : undefined;
    });

    // The tampering proxy, on its own port (so its origin has its own pinned genesis).
    let tamper: Tamper = "none";
    proxy = http.createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://proxy");
      if (url.pathname === "/__tamper" && request.method === "POST") {
        tamper = (url.searchParams.get("mode") ?? "none") as Tamper;
        response.writeHead(204).end();
        return;
      }
      if (url.pathname === "/design.svg") {
        response.writeHead(200, { "content-type": "image/svg+xml", "access-control-allow-origin": "*" }).end(DESIGN);
        return;
      }
      const upstream = http.request(`${nodeUrl}${request.url}`, { method: request.method, headers: request.headers }, (answer) => {
        const isBundle = /^\/v1\/stamp\/[^/]+\/bundle$/.test(url.pathname) && answer.statusCode === 200;
        if (!isBundle || tamper === "none") {
          response.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(response);
          return;
        }
        const chunks: Buffer[] = [];
        answer.on("data", (c) => chunks.push(c));
        answer.on("end", () => {
          const bundle = JSON.parse(Buffer.concat(chunks).toString("utf8"));
          tamperWith(bundle, tamper);
          const body = JSON.stringify(bundle);
          response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
        });
      });
      upstream.on("error", (error) => response.writeHead(502).end(String(error)));
      request.pipe(upstream);
    });
    await new Promise<void>((r) => proxy!.listen(0, "127.0.0.1", () => r()));
    const address = proxy.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no port");
    const proxyUrl = `http://127.0.0.1:${address.port}`;

    // The workload, through the real CLI.
    // No user's CLI configuration applies: an empty file of the test's own.
    writeFileSync(join(dir, "cli-config.toml"), "");
    const cli = (...args: string[]): string => {
      const run = spawnSync(join(bin, "cachet"), ["--json", ...args], {
        encoding: "utf8",
        timeout: COMMAND_TIMEOUT_MS,
        env: { ...process.env, CACHET_NODE: nodeUrl, CACHET_WALLET_DIR: join(dir, "wallets"), CACHET_PASSPHRASE: "cachet-dev-passphrase", CACHET_CONFIG: join(dir, "cli-config.toml") },
      });
      if (run.status !== 0) throw new Error(`cachet ${args.join(" ")} failed (${run.status ?? run.signal}):\n${run.stdout}\n${run.stderr}`);
      return run.stdout;
    };
    const json = (...args: string[]) => JSON.parse(cli(...args));
    cli("wallet", "import", "operator", join(dataDir, "operator.key.json"));
    const alice = json("wallet", "new", "alice").address as string;
    const bob = json("wallet", "new", "bob").address as string;
    const issue = "E2E-2026-001";
    const sha = createHash("sha256").update(DESIGN).digest("hex");
    cli("issue", "create", issue, "--title", "Alpine Flowers", "--year", "2026", "--face-value", "120", "--currency", "EUR",
      "--design-sha256", sha, "--design-uri", `${proxyUrl}/design.svg`, "--print-run", "100", "-w", "operator");
    cli("mint", issue, "--serials", `1-${MINTED}`, "--to", "alice", "-w", "operator");
    const movedStamp = `${issue}#42`;
    const transfer = json("transfer", movedStamp, "--to", "bob", "-w", "alice");
    if (transfer.outcome?.status !== "final") throw new Error(`transfer not final: ${JSON.stringify(transfer)}`);
    cli("transfer", movedStamp, "--to", "alice", "-w", "bob");
    cli("transfer", movedStamp, "--to", "bob", "-w", "alice");
    const frozenStamp = `${issue}#9`;
    cli("freeze", frozenStamp, "--reason", "stolen", "--case", "POL-2026-17", "-w", "operator");
    const genesisText = readFileSync(join(dataDir, "genesis.json"), "utf8");
    const chain = (await (await fetch(`${nodeUrl}/v1/chain`)).json()) as { chain_id: string };

    project.provide("world", {
      node: nodeUrl,
      proxy: proxyUrl,
      chainId: chain.chain_id,
      genesisText,
      issue,
      alice,
      bob,
      movedStamp,
      frozenStamp,
      transferTx: transfer.tx_id,
      transferHeight: transfer.outcome.height,
    });
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}

/** Alters a bundle as a dishonest node might. */
function tamperWith(bundle: { events: { tx: { body: Record<string, unknown> } }[]; headers: { certificate: { signatures: unknown[] } }[] }, mode: Tamper): void {
  switch (mode) {
    case "mint-owner":
      // The mint now names another owner: its signature no longer covers it.
      bundle.events[0].tx.body.owner = bundle.events[1].tx.body.to;
      break;
    case "drop-event":
      // A middle transfer left out: the next one does not follow.
      bundle.events.splice(1, 1);
      break;
    case "certificate":
      // Certificates stripped of their signatures: no quorum.
      for (const header of bundle.headers) header.certificate.signatures.length = 0;
      break;
    case "none":
      break;
  }
}
