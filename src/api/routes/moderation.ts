import { Router } from 'express';
import { z } from 'zod';
import { authRequired, forbidden, notFound } from '../../shared/errors.js';
import type { ModerationService } from '../services/moderation.js';
import { callerOf } from './polls.js';
import { NO_NUL, NO_NUL_MESSAGE } from './polls.schema.js';

/** GET /api/v1/admin/flagged-votes */
export const flaggedVotesSchema = z.strictObject({
  poll_id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  status: z.enum(['SUSPICIOUS', 'REJECTED', 'VALID']).default('SUSPICIOUS'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});

/** POST /api/v1/admin/votes/:vote_id/review */
export const reviewSchema = z.strictObject({
  decision: z.enum(['VALID', 'REJECTED']),
  note: z.string().max(2000).regex(NO_NUL, NO_NUL_MESSAGE).optional(),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function moderationRouter({ moderation }: { moderation: ModerationService }) {
  const r = Router();
  r.use((req, _res, next) => {
    const caller = callerOf(req);
    if (!caller) return next(authRequired());
    if (!caller.isAdmin) return next(forbidden('Moderation is for admins'));
    next();
  });

  r.get('/flagged-votes', async (req, res) => {
    res.json(await moderation.list(flaggedVotesSchema.parse(req.query)));
  });

  r.post('/votes/:vote_id/review', async (req, res) => {
    const voteId = req.params.vote_id as string;
    if (!UUID.test(voteId)) throw notFound('No such vote');
    const body = reviewSchema.parse(req.body ?? {});
    res.json(await moderation.review(voteId, body.decision, callerOf(req)!.userId, body.note ?? null));
  });

  r.use((_req, _res, next) => next(notFound('No such moderation endpoint')));
  return r;
}
