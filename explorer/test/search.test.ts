// The search box's reading of what was typed.
import { describe, expect, test } from "vitest";
import { classify, routeOf } from "../src/search";

describe("classify", () => {
  test("each kind of id by its syntax", () => {
    expect(classify(" 42 ")).toEqual({ kind: "block", height: 42 });
    const id = "ab".repeat(32);
    expect(classify(id.toUpperCase())).toEqual({ kind: "tx", id });
    const address = "cachet1c0ukxuhwfhpqduaffnjpyxlkaxhmdrs9dey427vxjq7ccme2u9qs74uqhn";
    expect(classify(address)).toEqual({ kind: "account", address });
    expect(classify("at-2026-001#42")).toEqual({ kind: "stamp", id: "AT-2026-001#42" });
    expect(classify("AT-2026-001")).toEqual({ kind: "issue", id: "AT-2026-001" });
  });

  test("what is none of them says why", () => {
    for (const text of ["", "0", "AT-2026-001#0", "AT-2026-001#042", "a b", "AT--1", "-AT-1", "AT"]) {
      expect(classify(text).kind, text).toBe("none");
    }
    expect(classify("AT-2026-001#4294967296").kind).toBe("none");
  });

  test("routes escape a stamp id's #", () => {
    expect(routeOf({ kind: "stamp", id: "AT-2026-001#42" })).toBe("/stamp/AT-2026-001%2342");
    expect(routeOf({ kind: "block", height: 7 })).toBe("/block/7");
    expect(routeOf({ kind: "none", reason: "" })).toBeNull();
  });
});
