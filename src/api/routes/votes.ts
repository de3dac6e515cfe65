import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { countryCodeOf } from '../../domain/analytics.js';
import { pollNotFound } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { Authenticate } from '../../shared/auth.js';
import { clientIp, parseId } from '../../shared/request.js';
import { readJsonBody, sendError, sendJson, zodToValidationError } from '../http.js';
import type { CastVote } from '../services/votes.js';

const optionId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

/** POST /api/v1/polls/:id/votes body. */
export const voteBodySchema = z.strictObject({
  options: z.array(optionId).max(1000).optional(),
  ranking: z.array(optionId).max(1000).optional(),
  ratings: z.record(z.string().regex(/^[1-9][0-9]{0,15}$/, 'keys must be option ids'), z.number().int()).optional(),
  view_token: z.string().max(256).optional(),
  fingerprint: z.string().max(128).optional(),
  captcha: z.string().max(8192).optional(),
});

export const VOTE_BODY_LIMIT = 16 * 1024;
/** The one request the bare vote route serves: POST to a URL matching VOTE_PATH (exported for the route list of the tests). */
export const VOTE_METHOD = 'POST';
export const VOTE_PATH = /^\/api\/v1\/polls\/([^/?]*)\/votes\/?(?:\?(.*))?$/;

/**
 * The vote endpoint, served on the bare HTTP server ahead of Express: it is the one route a
 * viral poll hammers, and Express's per-request overhead alone would cap it near 10k req/s.
 * Same errors and bodies as every Express route.
 */
export function createVoteRoute(deps: {
  castVote: CastVote;
  authenticate: Authenticate;
  trust: (addr: string, i: number) => boolean;
  log: Logger;
  /** Header a trusted CDN fills with the visitor's country (GEO_COUNTRY_HEADER); read only when set. */
  countryHeader?: string;
  onResult?: (status: number, code: string | null, changed: boolean, startedAt: bigint) => void;
}) {
  const { castVote, authenticate, trust, log, onResult } = deps;

  async function handle(req: IncomingMessage, res: ServerResponse, rawId: string, query: string | undefined) {
    const startedAt = process.hrtime.bigint();
    try {
      const pollId = parseId(rawId);
      if (pollId === null) {
        req.resume();
        throw pollNotFound();
      }
      const caller = await authenticate(req.headers.authorization);
      const raw = await readJsonBody(req, VOTE_BODY_LIMIT);
      const parsed = voteBodySchema.safeParse(raw);
      if (!parsed.success) throw zodToValidationError(parsed.error);
      const accessKey = query ? (new URLSearchParams(query).get('key') ?? undefined) : undefined;
      const result = await castVote({
        pollId,
        caller,
        body: parsed.data,
        ip: clientIp(req, trust),
        userAgent: req.headers['user-agent'] ?? '',
        country: deps.countryHeader ? countryCodeOf(req.headers[deps.countryHeader]) : undefined,
        accessKey,
      });
      sendJson(res, 202, { status: 'accepted', vote_id: result.vote_id, changed: result.changed, under_review: result.held });
      onResult?.(202, null, result.changed, startedAt);
    } catch (err) {
      if (!req.readableEnded) req.resume();
      sendError(res, err, log);
      onResult?.(res.statusCode, (err as { code?: string }).code ?? 'INTERNAL', false, startedAt);
    }
  }

  /** Serves the request when it is a vote; false lets the caller pass it on. */
  return function route(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== VOTE_METHOD || !req.url?.startsWith('/api/v1/polls/')) return false;
    const m = VOTE_PATH.exec(req.url);
    if (!m) return false;
    void handle(req, res, m[1], m[2]);
    return true;
  };
}
