import ipaddr from 'ipaddr.js';
import { Router } from 'express';
import { z } from 'zod';
import type { ModerationService } from '../services/moderation.js';
import { accessKeyOf, callerOf, pollIdOf } from './polls.js';

const cidr = z
  .string()
  .max(64)
  .refine((p) => {
    try {
      ipaddr.parseCIDR(p);
      return true;
    } catch {
      return false;
    }
  }, 'must be an address prefix such as 203.0.113.0/24');

const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** GET /api/v1/polls/:id/flagged-votes */
export const pollFlaggedVotesSchema = z.strictObject({
  status: z.enum(['SUSPICIOUS', 'REJECTED', 'VALID']).default('SUSPICIOUS'),
  prefix: cidr.optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
  key: z.string().max(200).optional(),
});

/** POST /api/v1/polls/:id/flagged-votes/review: the given votes, or every waiting vote of one prefix. */
export const bulkReviewSchema = z
  .strictObject({
    decision: z.enum(['VALID', 'REJECTED']),
    note: z.string().max(2000).optional(),
    vote_ids: z.array(z.string().regex(UUID, 'must be a vote id (UUID)')).min(1).max(500).optional(),
    prefix: cidr.optional(),
  })
  .refine((b) => (b.vote_ids === undefined) !== (b.prefix === undefined), { message: 'give either vote_ids or prefix', path: ['vote_ids'] });

/** A poll's own review queue, for its creator and admins (the admin-wide queue is /api/v1/admin). */
export function pollModerationRouter({ moderation }: { moderation: ModerationService }) {
  const r = Router();

  r.get('/:id/flagged-votes', async (req, res) => {
    const { key: _key, ...q } = pollFlaggedVotesSchema.parse(req.query);
    res.set('Cache-Control', 'no-store').json(await moderation.listForPoll(pollIdOf(req), callerOf(req), accessKeyOf(req), q));
  });

  r.post('/:id/flagged-votes/review', async (req, res) => {
    const body = bulkReviewSchema.parse(req.body ?? {});
    res.json(await moderation.reviewForPoll(pollIdOf(req), callerOf(req), accessKeyOf(req), body));
  });

  return r;
}
