import type { Kysely } from 'kysely';
import { countSuspicious, listFlaggedVotes, listPollReviewQueue, reviewQueuePrefixes, reviewVote, reviewVotes } from '../../db/moderation.js';
import { findPoll } from '../../db/polls.js';
import type { ResultsState } from '../../db/results.js';
import type { DB, PollRow, VoteStatus } from '../../db/schema.js';
import { assertCanReadPoll, isPollManager } from '../../domain/poll-access.js';
import { authRequired, forbidden, notFound, pollNotFound, validationError } from '../../shared/errors.js';
import type { Principal } from '../../shared/auth.js';
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

// Votes one bulk review decides at most (one transaction); `remaining` says when to ask again.
const BULK_LIMIT = 10_000;

/** The human review queue: flagged votes in, decisions (never deletions) out. */
export function createModerationService({
  db,
  publisher,
  keys,
  onReviewed,
  onCountsChanged,
}: {
  db: Kysely<DB>;
  publisher: RedisClient;
  keys: RedisKeys;
  onReviewed?: (decision: string) => void;
  /** Polls whose counts a decision moved (analytics rollups follow them). */
  onCountsChanged?: (pollIds: number[]) => void;
}) {
  /** The poll, when the caller moderates it: its creator or an admin. */
  async function loadModerated(pollId: number, caller: Principal | null, key: string | undefined): Promise<PollRow> {
    if (!caller) throw authRequired();
    const found = await findPoll(db, pollId);
    if (!found) throw pollNotFound();
    if (!isPollManager(found.poll, caller)) {
      // A caller who cannot even read the poll must not learn it exists.
      assertCanReadPoll({ ...found.poll, show_results_before_close: found.poll.settings.show_results_before_close }, caller, key);
      throw forbidden('Only the poll creator or an admin may review its votes');
    }
    return found.poll;
  }

  /** After a decision committed: analytics follow the polls whose counts moved, and watchers see them. */
  async function published(states: Map<number, ResultsState>) {
    if (!states.size) return;
    onCountsChanged?.([...states.keys()]);
    await publishPollUpdates(publisher, keys, states.values()).catch(() => {});
  }

  return {
    /**
     * One poll's review queue for its creator (or an admin): each vote's ballot, reasons, address
     * prefix and time, plus the prefixes the queue comes from. Never a full address; on anonymous
     * polls no User-Agent either and times cut to the minute, so the creator still cannot tell who voted.
     */
    async listForPoll(
      pollId: number,
      caller: Principal | null,
      key: string | undefined,
      q: { status: VoteStatus; prefix?: string; limit: number; cursor?: string },
    ) {
      const poll = await loadModerated(pollId, caller, key);
      const [rows, prefixes, pending] = await Promise.all([
        listPollReviewQueue(db, { pollId, status: q.status, prefix: q.prefix, after: q.cursor ? decodeCursor(q.cursor) : undefined, limit: q.limit + 1 }),
        reviewQueuePrefixes(db, pollId),
        countSuspicious(db, pollId),
      ]);
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      const minute = (d: Date) => new Date(Math.floor(d.getTime() / 60_000) * 60_000);
      return {
        poll_id: pollId,
        pending_review: pending,
        prefixes,
        items: page.map((v) => ({
          vote_id: v.vote_id,
          status: v.status,
          reasons: v.reasons,
          options: v.selected_options,
          ranking: v.rank_order,
          ratings: v.ratings,
          ip_prefix: v.ip_prefix,
          user_agent: poll.is_anonymous ? null : v.user_agent,
          created_at: (poll.is_anonymous ? minute(v.created_at) : v.created_at).toISOString(),
        })),
        next_cursor: rows.length > q.limit ? encodeCursor({ created_at: last.cursor_at, vote_id: last.vote_id }) : null,
      };
    },

    /** Decides votes of one poll in one go: the given ids, or every waiting vote of an address prefix. */
    async reviewForPoll(
      pollId: number,
      caller: Principal | null,
      key: string | undefined,
      body: { decision: 'VALID' | 'REJECTED'; note?: string; vote_ids?: string[]; prefix?: string },
    ) {
      await loadModerated(pollId, caller, key);
      const target = body.prefix !== undefined ? { prefix: body.prefix, limit: BULK_LIMIT } : { voteIds: body.vote_ids ?? [] };
      const { outcomes, states } = await reviewVotes(db, pollId, target, body.decision, caller!.userId, body.note ?? null);
      for (const o of outcomes) onReviewed?.(o.status);
      await published(states);
      const found = new Set(outcomes.map((o) => o.vote_id));
      return {
        poll_id: pollId,
        decision: body.decision,
        reviewed: outcomes.length,
        changed: outcomes.filter((o) => o.changed).length,
        not_found: (body.vote_ids ?? []).filter((id) => !found.has(id)),
        // A prefix bigger than one batch is finished by asking again.
        remaining: body.prefix !== undefined ? await countSuspicious(db, pollId, body.prefix) : 0,
        pending_review: states.get(pollId)?.pending_review ?? (await countSuspicious(db, pollId)),
      };
    },

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
      await published(result.states);
      return { ...result.outcome, decided_by: reviewerId, note };
    },
  };
}
export type ModerationService = ReturnType<typeof createModerationService>;
