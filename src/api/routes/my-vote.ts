import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { findPoll } from '../../db/polls.js';
import type { DB } from '../../db/schema.js';
import { findVoterVote } from '../../db/voter-status.js';
import { assertCanReadPoll } from '../../domain/poll-access.js';
import { pollNotFound } from '../../shared/errors.js';
import { clientIp } from '../../shared/request.js';
import { voterIdentityOf } from '../../domain/voter.js';
import { accessKeyOf, callerOf, pollIdOf } from './polls.js';

/** GET /api/v1/polls/:id/my-vote */
export const myVoteSchema = z.strictObject({
  fingerprint: z.string().max(128).optional(),
  key: z.string().max(200).optional(),
});

const SHOWN = { VALID: 'COUNTED', SUSPICIOUS: 'UNDER_REVIEW', REJECTED: 'REJECTED' } as const;

/**
 * What became of the caller's own vote: counted, held for review, rejected, or not stored (yet:
 * a 202 is written within a second or two). The voter is found as the vote found them: the
 * signed-in user, or the anonymous hash of address, browser and the `fingerprint` the vote sent.
 */
export function myVoteRouter({ db }: { db: Kysely<DB> }) {
  const r = Router();
  r.get('/:id/my-vote', async (req, res) => {
    const pollId = pollIdOf(req);
    const q = myVoteSchema.parse(req.query);
    const caller = callerOf(req);
    const found = await findPoll(db, pollId);
    if (!found) throw pollNotFound();
    assertCanReadPoll({ ...found.poll, show_results_before_close: found.poll.settings.show_results_before_close }, caller, accessKeyOf(req));
    const { voterKey } = voterIdentityOf({
      pollId,
      userId: caller?.userId ?? null,
      ip: clientIp(req, req.app.get('trust proxy fn')),
      userAgent: req.headers['user-agent'] ?? '',
      fingerprint: q.fingerprint,
    });
    const vote = await findVoterVote(db, pollId, voterKey);
    res.set('Cache-Control', 'no-store').json({
      poll_id: pollId,
      status: vote ? SHOWN[vote.status] : 'NONE',
      voted_at: vote ? vote.accepted_at.toISOString() : null,
    });
  });
  return r;
}
