// Every bundle the Rust provenance tests check, with the Rust verifier's verdict
// (`specs/vectors/verifier-cases.json`, written by `golden_verifier_cases_match_specs` in
// `crates/storage/tests/it/provenance.rs`): the browser verifier must agree case by case.
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";

import { verifyBundle } from "../src/verify/index";

const FILE = new URL("../../specs/vectors/verifier-cases.json", import.meta.url);

interface Case {
  name: string;
  genesis: string;
  bundle: unknown;
  expect:
    | {
        verdict: "authentic";
        authentic: {
          stamp: string;
          issue: unknown;
          owner: string | null;
          status: unknown;
          events: number;
          as_of_height: number;
        };
      }
    | { verdict: "failed"; failure: { check: string; detail?: unknown } };
}

interface Cases {
  format: string;
  version: number;
  geneses: Record<string, unknown>;
  cases: Case[];
}

if (!existsSync(FILE)) {
  test("specs/vectors/verifier-cases.json exists", () => {
    throw new Error(
      `${fileURLToPath(FILE)} is missing: generate it with ` +
        "`CACHET_UPDATE_VECTORS=1 cargo test --workspace golden` (the Rust test " +
        "golden_verifier_cases_match_specs); the browser verifier is checked against every case in it",
    );
  });
} else {
  const document: Cases = JSON.parse(readFileSync(FILE, "utf8"));

  describe("verifier cases of the Rust tests", () => {
    test("the document is a verifier-cases file of version 1 with cases", () => {
      expect(document.format).toBe("cachet-verifier-cases");
      expect(document.version).toBe(1);
      expect(document.cases.length).toBeGreaterThan(0);
      // Both verdicts are represented, so the file checks both directions.
      const verdicts = new Set(document.cases.map((c) => c.expect.verdict));
      expect([...verdicts].sort()).toEqual(["authentic", "failed"]);
    });

    test.each(document.cases.map((c, i) => [`${i}: ${c.name}`, c] as const))("%s", (_, c) => {
      const genesis = document.geneses[c.genesis];
      expect(genesis, `genesis ${c.genesis} of case ${c.name}`).toBeDefined();
      const verdict = verifyBundle(c.bundle, genesis);
      if (c.expect.verdict === "authentic") {
        const want = c.expect.authentic;
        expect(verdict).toEqual({
          verdict: "authentic",
          stamp: want.stamp,
          owner: want.owner,
          status: want.status,
          events: want.events,
          asOfHeight: want.as_of_height,
        });
      } else {
        expect(verdict.verdict, JSON.stringify(verdict)).toBe("failed");
        if (verdict.verdict === "failed") {
          expect(verdict.check, `${verdict.message} (Rust: ${JSON.stringify(c.expect.failure)})`).toBe(
            c.expect.failure.check,
          );
        }
      }
    });
  });
}
