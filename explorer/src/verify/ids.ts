/**
 * Identifiers and bounded text (`specs/ledger.md#identifiers-and-bounded-text`,
 * `crates/types/src/ids.rs`).
 *
 * The syntax checks return an error message (the Rust `IdError` Display) or null. In Rust
 * an identifier that breaks its syntax never exists, so these run when JSON is read
 * (`json.ts`); `checkText` runs with the stateless transaction checks (`tx.ts`).
 */

import { utf8 } from "./bytes";
import type { StampId } from "./types";

/** Longest issue id, in bytes. */
export const ISSUE_ID_MAX_LEN = 32;

/** The Rust `IdError` Display: `invalid {what} {text:?}: {rule}`, text cut at 80 chars. */
export function idError(what: string, text: string, rule: string): string {
  const shown = Array.from(text).slice(0, 80).join("");
  return `invalid ${what} ${JSON.stringify(shown)}: ${rule}`;
}

/** `[A-Z0-9][A-Z0-9-]*` of `min..=max` bytes, no `--`, no leading or trailing `-`. */
function checkCode(what: string, text: string, min: number, max: number, rule: string): string | null {
  const okLength = text.length >= min && text.length <= max;
  const okChars = /^[A-Z0-9-]*$/.test(text);
  const okShape =
    text.length > 0 && !text.startsWith("-") && !text.endsWith("-") && !text.includes("--");
  // Non-ASCII text fails okChars, so counting UTF-16 units here is counting bytes.
  return okLength && okChars && okShape ? null : idError(what, text, rule);
}

/** An operator id, e.g. `AT-POST`: 2-16 of `A-Z 0-9 -`. */
export function checkOperatorId(text: string): string | null {
  return checkCode("operator id", text, 2, 16, "2-16 of A-Z, 0-9 and single inner '-'");
}

/** An issue id, e.g. `AT-2026-001`: 3-32 of `A-Z 0-9 -`. */
export function checkIssueId(text: string): string | null {
  return checkCode(
    "issue id",
    text,
    3,
    ISSUE_ID_MAX_LEN,
    "3-32 of A-Z, 0-9 and single inner '-'",
  );
}

/** An ISO 3166-1 alpha-2 country code: two upper-case letters. */
export function checkCountryCode(text: string): string | null {
  return /^[A-Z]{2}$/.test(text)
    ? null
    : idError("country code", text, "two upper-case letters (ISO 3166-1 alpha-2)");
}

/** An ISO 4217 currency code: three upper-case letters. */
export function checkCurrencyCode(text: string): string | null {
  return /^[A-Z]{3}$/.test(text)
    ? null
    : idError("currency code", text, "three upper-case letters (ISO 4217)");
}

/**
 * Parses a stamp id `ISSUE#SERIAL` (`StampId::from_str`): split at the first `#`, a valid
 * issue id, and a serial from 1 to 2^32 - 1 in decimal without leading zeros or sign.
 * Returns the stamp id, or the error message.
 */
export function parseStampId(text: string): StampId | string {
  const rule = "ISSUE#SERIAL with a serial from 1, e.g. AT-2026-001#42";
  const at = text.indexOf("#");
  if (at < 0) return idError("stamp id", text, rule);
  const issue = text.slice(0, at);
  const serialText = text.slice(at + 1);
  const issueError = checkIssueId(issue);
  if (issueError !== null) return issueError;
  if (!/^[1-9][0-9]{0,9}$/.test(serialText)) return idError("stamp id", text, rule);
  const serial = Number(serialText);
  if (serial > 0xffff_ffff) return idError("stamp id", text, rule);
  return { issue, serial };
}

/** The text form of a stamp id. */
export function formatStampId(stamp: StampId): string {
  return `${stamp.issue}#${stamp.serial}`;
}

/** True if both stamp ids are the same stamp. */
export function sameStamp(a: StampId, b: StampId): boolean {
  return a.issue === b.issue && a.serial === b.serial;
}

// Unicode general category Cc, which is what Rust's `char::is_control` tests.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks free text (`check_text`): UTF-8 length within `min..=max` bytes and no control
 * characters. Returns the error message or null.
 */
export function checkText(what: string, text: string, min: number, max: number): string | null {
  const length = utf8(text).length;
  if (length < min || length > max) return idError(what, text, "length out of bounds");
  if (CONTROL.test(text)) return idError(what, text, "control characters are not allowed");
  return null;
}
