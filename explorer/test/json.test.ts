// Reading JSON as the Rust serde derives do (`src/verify/json.ts`).
import { describe, expect, test } from "vitest";

import { JsonError, readSignedTx, readStampState } from "../src/verify/index";
import { copy, vector } from "./helpers";

const golden = vector("golden.json");
const approve = golden.tx_approve.json;

function refused(read: () => unknown, message: RegExp): void {
  expect(read).toThrow(JsonError);
  expect(read).toThrow(message);
}

describe("JSON forms", () => {
  test("u64: safe integers and bigints; unsafe, negative or fractional numbers are refused", () => {
    const tx = copy(approve);
    tx.nonce = 2n;
    expect(readSignedTx(tx).nonce).toBe(2n);
    tx.nonce = (1n << 64n) - 1n;
    expect(readSignedTx(tx).nonce).toBe((1n << 64n) - 1n);
    tx.nonce = 1n << 64n;
    refused(() => readSignedTx(tx), /nonce: expected a u64/);
    tx.nonce = 2 ** 53;
    refused(() => readSignedTx(tx), /nonce: integer 9007199254740992 is not below 2\^53/);
    tx.nonce = -1;
    refused(() => readSignedTx(tx), /expected a u64/);
    tx.nonce = 0.5;
    refused(() => readSignedTx(tx), /expected a u64/);
  });

  test("paths name the bad value", () => {
    const tx = copy(approve);
    tx.body.until = { minutes: 5 };
    refused(() => readSignedTx(tx), /^body\.until: expected \{"height": u64\} or \{"time_ms": u64\}$/);
    const other = copy(approve);
    other.body.stamp = "AT-2026-001#0";
    refused(() => readSignedTx(other), /^body\.stamp: invalid stamp id/);
    const missing = copy(approve);
    delete missing.signature;
    refused(() => readSignedTx(missing), /missing field `signature`/);
  });

  test("strings: surrogate pairs are text, lone surrogates are refused", () => {
    const record = {
      owner: null,
      status: { status: "frozen", reason: "lost", case_ref: "case \ud83d\udce8" },
      last_event: "00".repeat(32),
      event_count: 1,
    };
    expect(readStampState(record, "record").status).toEqual(record.status);
    for (const bad of ["\udce8", "a\ud83d", "\ud83d b"]) {
      const copyOf = copy(record);
      copyOf.status.case_ref = bad;
      refused(() => readStampState(copyOf, "record"), /lone surrogate/);
    }
  });

  test("enums: unknown tags are refused, unknown fields ignored", () => {
    const tx = copy(approve);
    tx.body.kind = "approve_all";
    refused(() => readSignedTx(tx), /unknown transaction kind "approve_all"/);
    const extra = copy(approve);
    extra.body.extra = 1;
    extra.extra = 2;
    expect(readSignedTx(extra).body.kind).toBe("approve");
  });
});
