import type { IncomingMessage, ServerResponse } from 'node:http';
import { isOriginAllowed, type OriginList } from '../domain/origins.js';
import { originNotAllowed, unavailable, type AppError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import { sendError } from './http.js';

// The routes of one poll: /api/v1/polls/:id and everything under it.
const POLL_PATH = /^\/api\/v1\/polls\/([1-9][0-9]{0,15})(?:[/?]|$)/;
const ALLOWED_METHODS = 'GET, POST, PATCH, OPTIONS';
const ALLOWED_HEADERS = 'Content-Type, Authorization, X-Request-Id';
const EXPOSED_HEADERS = 'Retry-After, X-Request-Id';

/**
 * The browser-origin rule of every /api route, the vote fast path and preflights included:
 * same origin as the API, CORS_ORIGINS, or (for a route of one poll) the poll's
 * `settings.embed_origins`; anything else is 403 ORIGIN_NOT_ALLOWED. Allowed origins are echoed
 * in the CORS headers, never `*` unless CORS_ORIGINS says so. Requests without an Origin header
 * (not a browser) are not its business.
 */
export function createOriginGate(deps: {
  configured: OriginList;
  /** A poll's embed origins (empty for no such poll); may reject when the poll cannot be read. */
  embedOriginsOf: (pollId: number) => Promise<readonly string[]>;
  /** The trust-proxy rule: a trusted peer's X-Forwarded-Host names the host the browser used. */
  trust: (addr: string, i: number) => boolean;
  log: Logger;
  onRefused?: () => void;
}) {
  const { configured, embedOriginsOf, trust, log } = deps;

  /** The host the browser sent the request to. */
  function hostOf(req: IncomingMessage): string | undefined {
    const forwarded = req.headers['x-forwarded-host'];
    if (typeof forwarded === 'string' && forwarded !== '' && trust(req.socket.remoteAddress ?? '', 0)) return forwarded.split(',')[0].trim();
    return req.headers.host;
  }

  function allow(req: IncomingMessage, res: ServerResponse, origin: string): boolean {
    res.setHeader('Access-Control-Allow-Origin', configured.any ? '*' : origin);
    res.setHeader('Vary', 'Origin');
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      res.writeHead(204, {
        'Access-Control-Allow-Methods': ALLOWED_METHODS,
        'Access-Control-Allow-Headers': ALLOWED_HEADERS,
        'Access-Control-Max-Age': '600',
        'Content-Length': '0',
      });
      res.end();
      return false;
    }
    res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS);
    return true;
  }

  function refuse(req: IncomingMessage, res: ServerResponse, err: AppError): false {
    req.resume();
    res.setHeader('Vary', 'Origin');
    if (err.code === 'ORIGIN_NOT_ALLOWED') deps.onRefused?.();
    sendError(res, err, log);
    return false;
  }

  /**
   * Decides a request with an Origin header: true lets it go on (CORS headers set), false means
   * it was answered here (a preflight, or the refusal). Synchronous unless the poll's embed
   * origins must be looked up.
   */
  return function gate(req: IncomingMessage, res: ServerResponse, origin: string): boolean | Promise<boolean> {
    const host = hostOf(req);
    if (isOriginAllowed(origin, host, configured)) return allow(req, res, origin);
    const m = POLL_PATH.exec(req.url ?? '');
    if (!m) return refuse(req, res, originNotAllowed());
    return embedOriginsOf(Number(m[1])).then(
      (embed) => (isOriginAllowed(origin, host, configured, embed) ? allow(req, res, origin) : refuse(req, res, originNotAllowed())),
      () => refuse(req, res, unavailable()),
    );
  };
}
