import type { Kysely } from 'kysely';
import { listFlaggedVotes, reviewVote } from '../../db/moderation.js';
import type { DB, VoteStatus } from '../../db/schema.js';
import { notFound, validationError } from '../../shared/errors.js';
import { publishPollUpdates } from '../../shared/poll-updates.js';
import type { RedisClient } from '../../shared/redis.js';
import type { RedisKeys } from '../../shared/redis-keys.js';

const encodeCursor = (c: { created_at: string; vote_id: string }) => Buffer.from(JSON.stringify(c)).toString('base64url');

function decodeCursor(raw: string): { created_at: string; vote_id: string } {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (typeof c.created_at === 'string' && !Number.isNaN(Date.parse(c.created_at)) && /^[0-9a-f-]{36}$/i.test(c.vote_id)) return c;
  } catch {
    /* fall through */
  }
  throw validationError('cursor: not a cursor from this API', { field: 'cursor' });
}

/** The human review queue: flagged votes in, decisions (never deletions) out. */
export function createModerationService({ db, publisher, keys, onReviewed, onCountsChanged }: {
  db: Kysely<DB>;
  publisher: RedisClient;
  keys: RedisKeys;
  onReviewed?: (decision: string) => void;
  /** Polls whose counts a decision moved (analytics rollups follow them). */
  onCountsChanged?: (pollIds: number[]) => void;
}) {
  return {
    async list(q: { poll_id?: number; status: VoteStatus; limit: number; cursor?: string }) {
      const rows = await listFlaggedVotes(db, {
        pollId: q.poll_id,
        status: q.status,
        after: q.cursor ? decodeCursor(q.cursor) : undefined,
        limit: q.limit + 1,
      });
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      return {
        items: page.map(({ cursor_at: _, ...v }) => ({ ...v, created_at: v.created_at.toISOString() })),
        next_cursor: rows.length > q.limit ? encodeCursor({ created_at: last.cursor_at, vote_id: last.vote_id }) : null,
      };
    },

    async review(voteId: string, decision: 'VALID' | 'REJECTED', reviewerId: number, note: string | null) {
      const result = await reviewVote(db, voteId, decision, reviewerId, note);
      if (!result) throw notFound('No such vote');
      onReviewed?.(decision);
      if (result.states.size) {
        onCountsChanged?.([...result.states.keys()]);
        await publishPollUpdates(publisher, keys, result.states.values()).catch(() => {});
      }
      return { ...result.outcome, decided_by: reviewerId, note };
    },
  };
}
export type ModerationService = ReturnType<typeof createModerationService>;
