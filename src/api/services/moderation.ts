import type { Kysely } from 'kysely';
import { listFlaggedVotes, reviewVote } from '../../db/moderation.js';
import type { DB, VoteStatus } from '../../db/schema.js';
import { notFound, validationError } from '../../shared/errors.js';
import { publishPollUpdates } from '../../shared/poll-updates.js';
import type { RedisClient } from '../../shared/redis.js';
import type { RedisKeys } from '../../shared/redis-keys.js';

const encodeCursor = (c: { created_at: string; vote_id: string }) => Buffer.from(JSON.stringify(c)).toString('base64url');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// created_at::text as PostgreSQL writes it: `2026-12-02 10:00:00.123456+00`.
const PG_TIMESTAMPTZ = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?([+-])(\d{2})(?::?(\d{2}))?$/;

/** Whether `s` is a timestamp PostgreSQL will read back: the format it writes, with a real date and time. */
function isStoredTimestamp(s: string): boolean {
  const m = PG_TIMESTAMPTZ.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, sec, oh, om] = [m[1], m[2], m[3], m[4], m[5], m[6], m[8], m[9] ?? '0'].map(Number);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysInMonth && h <= 23 && mi <= 59 && sec <= 59 && oh <= 15 && om <= 59;
}

/** A cursor handed out by list(); anything else (tampered, truncated, made up) is 400, never a query PostgreSQL refuses. */
function decodeCursor(raw: string): { created_at: string; vote_id: string } {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (typeof c?.created_at === 'string' && isStoredTimestamp(c.created_at) && typeof c.vote_id === 'string' && UUID.test(c.vote_id)) {
      return { created_at: c.created_at, vote_id: c.vote_id };
    }
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
