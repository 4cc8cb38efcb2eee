// How values read to people: times, money, statuses.

/** A block time (ms since the epoch) in the reader's locale, with its UTC form as title. */
export function time(ms: number): string {
  return new Date(ms).toLocaleString(undefined, {
    dateStyle: "medium",
    timeStyle: "medium",
  });
}

/** How long ago `ms` was, roughly. */
export function ago(ms: number, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.round(hours / 24)} days ago`;
}

/** A face value in minor units of an ISO 4217 currency, e.g. 120 EUR -> "€1.20". */
export function money(amountMinor: number, currency: string): string {
  let digits = 2;
  try {
    digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits ?? 2;
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(
      amountMinor / 10 ** digits,
    );
  } catch {
    return `${(amountMinor / 10 ** digits).toFixed(digits)} ${currency}`;
  }
}

/** The words of a snake_case code: "not_owner" -> "not owner". */
export function words(code: string): string {
  return code.replaceAll("_", " ");
}
