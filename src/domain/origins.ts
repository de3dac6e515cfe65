/**
 * Which browser origins may call the API or watch live results. A browser names the page that
 * makes a request in its `Origin` header; a page of another site must not be able to make its
 * visitors vote (each one a real, distinct voter the per-address rules cannot tell apart).
 */

const DEFAULT_PORTS: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

/**
 * An origin in its one written form, `scheme://host[:port]` in lower case without the scheme's
 * default port, or null when `raw` is not an http(s) origin (a path, a query, user info, `null`).
 */
export function normalizeOrigin(raw: string): string | null {
  if (!/^https?:\/\/[^/?#@\s\\]+$/i.test(raw)) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  // new URL() already lower-cases the scheme and host and drops a default port.
  return url.hostname === '' ? null : `${url.protocol}//${url.host}`;
}

/** The origins of a comma-separated setting (CORS_ORIGINS): `*` allows any origin. */
export interface OriginList {
  any: boolean;
  origins: ReadonlySet<string>;
}

/** Parses a comma-separated list of origins; the entries that are not origins are returned as `invalid`. */
export function parseOriginList(raw: string): OriginList & { invalid: string[] } {
  const origins = new Set<string>();
  const invalid: string[] = [];
  let any = false;
  for (const entry of raw
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)) {
    if (entry === '*') any = true;
    else {
      const o = normalizeOrigin(entry);
      if (o) origins.add(o);
      else invalid.push(entry);
    }
  }
  return { any, origins, invalid };
}

/**
 * Whether a request's Origin is the service's own: the origin's host (name and port) is the
 * Host the request was sent to. The scheme is not compared, so a TLS-terminating proxy in
 * front does not matter. `anyPort` compares host names only (the gateway: the pages it serves
 * live on the API's port, the gateway on its own).
 */
export function isOwnOrigin(origin: string, host: string | undefined, anyPort = false): boolean {
  if (!host) return false;
  const sep = origin.indexOf('://');
  if (sep < 0) return false;
  const scheme = origin.slice(0, sep + 1).toLowerCase();
  const originHost = origin.slice(sep + 3).toLowerCase();
  const requestHost = host.toLowerCase();
  if (anyPort) return hostnameOf(originHost) === hostnameOf(requestHost);
  const port = DEFAULT_PORTS[scheme];
  return originHost === requestHost || (port !== undefined && `${originHost}:${port}` === requestHost);
}

/** `example.org:8080` → `example.org`, `[::1]:3000` → `[::1]`. */
function hostnameOf(host: string): string {
  const colon = host.lastIndexOf(':');
  return colon > host.lastIndexOf(']') ? host.slice(0, colon) : host;
}

/**
 * The decision for one browser request: allowed from the service's own pages, from the
 * configured origins, and (for a request about one poll) from that poll's embed origins.
 */
export function isOriginAllowed(
  origin: string,
  host: string | undefined,
  configured: OriginList,
  embedOrigins: readonly string[] = [],
  opts: { anyPort?: boolean } = {},
): boolean {
  if (configured.any || isOwnOrigin(origin, host, opts.anyPort)) return true;
  // Browsers write origins in lower case without default ports, as we store them; normalise
  // only what does not match at once.
  if (configured.origins.has(origin) || embedOrigins.includes(origin)) return true;
  const normal = normalizeOrigin(origin);
  return normal !== null && normal !== origin && (configured.origins.has(normal) || embedOrigins.includes(normal));
}
