/** The device classes of the analytics' device breakdown. */
export type DeviceClass = 'desktop' | 'mobile' | 'tablet' | 'bot' | 'other';
export const DEVICE_CLASSES: readonly DeviceClass[] = ['desktop', 'mobile', 'tablet', 'bot', 'other'];

/** Country code of votes whose origin is unknown: private, loopback or unlisted addresses, CDN "unknown" markers. */
export const UNKNOWN_COUNTRY = 'ZZ';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/**
 * A trusted CDN's country header as an ISO 3166-1 alpha-2 code; null when absent or malformed
 * (the rollup then falls back to the address). Cloudflare marks unknown as XX and Tor as T1.
 */
export function countryCodeOf(raw: string | string[] | undefined): string | null {
  if (typeof raw !== 'string') return null;
  const code = raw.trim().toUpperCase();
  if (code === 'XX' || code === 'T1') return UNKNOWN_COUNTRY;
  return /^[A-Z]{2}$/.test(code) ? code : null;
}

/**
 * Unique voters over unique viewers, capped at 1: the viewer count is a HyperLogLog estimate
 * (about 1% off) and API clients may vote without ever fetching the poll.
 */
export function completionRate(voters: number, viewers: number): number {
  if (voters === 0) return 0;
  if (viewers <= voters) return 1;
  return Math.round((voters / viewers) * 10_000) / 10_000;
}

/** Milliseconds as seconds with millisecond precision; null stays null (no vote carried a view token). */
export function secondsOf(ms: number | null): number | null {
  return ms === null ? null : Math.round(ms) / 1000;
}

/** Adds up counts per key (many distinct User-Agents or addresses fall into one class or country). */
export function sumBy<T>(rows: Iterable<T>, keyOf: (row: T) => string, countOf: (row: T) => number, into: Record<string, number> = {}): Record<string, number> {
  for (const row of rows) {
    const key = keyOf(row);
    into[key] = (into[key] ?? 0) + countOf(row);
  }
  return into;
}

/** Votes per epoch hour as the contract's time series; hours without votes are left out. */
export function hourlySeries(rows: Array<{ bucket: number; votes: number }>): Array<{ hour: string; votes: number }> {
  return [...rows].sort((a, b) => a.bucket - b.bucket).map((r) => ({ hour: new Date(r.bucket * HOUR_MS).toISOString(), votes: r.votes }));
}

/** Votes per minute for the 60 minutes up to `now`, zero-filled so a live chart needs no gap logic. */
export function lastHourSeries(rows: Array<{ bucket: number; votes: number }>, now: Date): Array<{ minute: string; votes: number }> {
  const counts = new Map(rows.map((r) => [r.bucket, r.votes]));
  const last = Math.floor(now.getTime() / MINUTE_MS);
  return Array.from({ length: 60 }, (_, i) => {
    const minute = last - 59 + i;
    return { minute: new Date(minute * MINUTE_MS).toISOString(), votes: counts.get(minute) ?? 0 };
  });
}
