import { sql, type Kysely } from 'kysely';
import type { Db } from './client.js';
import { applyBallotChanges, withShardLocks, type BallotChange, type ShardKey, type ShardLockedTrx } from './ballots.js';
import { loadResults, type ResultsState } from './results.js';
import type { DB, VoteStatus } from './schema.js';

export interface FlaggedVote {
  vote_id: string;
  poll_id: number;
  status: VoteStatus;
  reasons: string[];
  ip_address: string | null;
  user_agent: string | null;
  created_at: Date;
  /** created_at at full precision, for the page cursor. */
  cursor_at: string;
}

/** A page of votes under review (or decided), oldest first, after the (created_at, vote_id) cursor. */
export async function listFlaggedVotes(
  db: Db,
  f: { pollId?: number; status: VoteStatus; after?: { created_at: string; vote_id: string }; limit: number },
): Promise<FlaggedVote[]> {
  const { rows } = await sql<FlaggedVote>`
    SELECT vote_id, poll_id, status, flag_reasons AS reasons, host(ip_address) AS ip_address, user_agent, created_at, created_at::text AS cursor_at
    FROM votes
    WHERE status = ${f.status}
      ${f.pollId !== undefined ? sql`AND poll_id = ${f.pollId}` : sql``}
      ${f.after ? sql`AND (created_at, vote_id) > (${f.after.created_at}::timestamptz, ${f.after.vote_id}::uuid)` : sql``}
    ORDER BY created_at, vote_id
    LIMIT ${f.limit}`.execute(db);
  return rows;
}

// The prefix a vote's address is grouped in for review: the velocity rule's IPv4 /24, or an IPv6 /48
// (which holds the /64s a rotating client walks through).
const PREFIX_OF = sql`network(set_masklen(ip_address, CASE WHEN family(ip_address) = 4 THEN 24 ELSE 48 END))::text`;

/** A vote under review with its ballot, as a poll's moderators see it. */
export interface QueuedReview {
  vote_id: string;
  status: VoteStatus;
  reasons: string[];
  selected_options: number[];
  rank_order: number[] | null;
  ratings: Record<string, number> | null;
  ip_prefix: string | null;
  user_agent: string | null;
  created_at: Date;
  cursor_at: string;
}

/** A page of one poll's votes in a review state, with their ballots and address prefixes, oldest first. */
export async function listPollReviewQueue(
  db: Db,
  f: { pollId: number; status: VoteStatus; prefix?: string; after?: { created_at: string; vote_id: string }; limit: number },
): Promise<QueuedReview[]> {
  const { rows } = await sql<QueuedReview>`
    SELECT vote_id, status, flag_reasons AS reasons, selected_options, rank_order, ratings, ${PREFIX_OF} AS ip_prefix,
           user_agent, created_at, created_at::text AS cursor_at
    FROM votes
    WHERE poll_id = ${f.pollId} AND status = ${f.status}
      ${f.prefix ? sql`AND ip_address <<= ${f.prefix}::cidr` : sql``}
      ${f.after ? sql`AND (created_at, vote_id) > (${f.after.created_at}::timestamptz, ${f.after.vote_id}::uuid)` : sql``}
    ORDER BY created_at, vote_id
    LIMIT ${f.limit}`.execute(db);
  return rows;
}

/** How many of a poll's SUSPICIOUS votes come from each address prefix, biggest first (what a bulk review acts on). */
export async function reviewQueuePrefixes(db: Db, pollId: number, limit = 50): Promise<Array<{ prefix: string | null; count: number }>> {
  const { rows } = await sql<{ prefix: string | null; count: number }>`
    SELECT ${PREFIX_OF} AS prefix, count(*)::int AS count
    FROM votes WHERE poll_id = ${pollId} AND status = 'SUSPICIOUS'
    GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${limit}`.execute(db);
  return rows;
}

/** How many of a poll's votes wait for review. */
export async function countSuspicious(db: Db, pollId: number, prefix?: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM votes WHERE poll_id = ${pollId} AND status = 'SUSPICIOUS'
      ${prefix ? sql`AND ip_address <<= ${prefix}::cidr` : sql``}`.execute(db);
  return rows[0].n;
}

export interface ReviewOutcome {
  vote_id: string;
  poll_id: number;
  previous_status: VoteStatus;
  status: VoteStatus;
  changed: boolean;
}

/** Which votes of one poll a review decides: these ids, or every SUSPICIOUS vote from an address prefix. */
export type ReviewTarget = { voteIds: string[] } | { prefix: string; limit: number };

/**
 * Records a reviewer's decision and moves the counts by exactly the status change, under the
 * vote's shard lock: two reviewers clicking VALID at once add the ballot once. Null: no such vote.
 */
export async function reviewVote(
  db: Kysely<DB>,
  voteId: string,
  decision: 'VALID' | 'REJECTED',
  reviewerId: number,
  note: string | null,
): Promise<{ outcome: ReviewOutcome; states: Map<number, ResultsState> } | null> {
  const found = await db.selectFrom('votes').select(['poll_id']).where('vote_id', '=', voteId).executeTakeFirst();
  if (!found) return null;
  const { outcomes, states } = await reviewVotes(db, found.poll_id, { voteIds: [voteId] }, decision, reviewerId, note);
  return outcomes.length ? { outcome: outcomes[0], states } : null;
}

/**
 * Decides many votes of one poll in one transaction under their shards' locks: each gets its
 * review row, and the counts move once, by exactly the ballots whose status changed (a vote
 * already in the decided state, or decided by a concurrent reviewer first, moves nothing).
 * A vote's shard never changes, so the shards are found before locking; only votes of the
 * locked shards are decided (a prefix vote flagged in another shard meanwhile waits for the
 * next call). Votes named but not found in the poll are left out of the outcomes.
 */
export async function reviewVotes(
  db: Kysely<DB>,
  pollId: number,
  target: ReviewTarget,
  decision: 'VALID' | 'REJECTED',
  reviewerId: number,
  note: string | null,
): Promise<{ outcomes: ReviewOutcome[]; states: Map<number, ResultsState> }> {
  const none = { outcomes: [], states: new Map<number, ResultsState>() };
  if ('voteIds' in target && target.voteIds.length === 0) return none;
  const shards = 'voteIds' in target ? await shardsOfVotes(db, pollId, target.voteIds) : await shardsOfHeldVotes(db, pollId, target.prefix);
  if (shards.length === 0) return none;
  return withShardLocks(db, shards, async (trx) => {
    let q = trx
      .selectFrom('votes')
      .select(['vote_id', 'shard', 'status', 'counted_options', 'rank_order', 'ratings'])
      .where('poll_id', '=', pollId)
      .where(
        'shard',
        'in',
        shards.map((s) => s.shard),
      );
    q =
      'voteIds' in target
        ? q.where('vote_id', 'in', target.voteIds)
        : q
            .where('status', '=', 'SUSPICIOUS')
            .where(sql<boolean>`ip_address <<= ${target.prefix}::cidr`)
            .orderBy('created_at')
            .orderBy('vote_id')
            .limit(target.limit);
    const votes = await q.execute();
    if (votes.length === 0) return none;
    await trx
      .insertInto('vote_reviews')
      .values(votes.map((v) => ({ vote_id: v.vote_id, poll_id: pollId, previous_status: v.status, decision, reviewer_id: reviewerId, note })))
      .execute();
    const outcomes = votes.map((v) => ({ vote_id: v.vote_id, poll_id: pollId, previous_status: v.status, status: decision, changed: v.status !== decision }));
    const moved = votes.filter((v) => v.status !== decision);
    if (moved.length === 0) return { outcomes, states: new Map() };
    await trx
      .updateTable('votes')
      .set({ status: decision, updated_at: sql`now()` })
      .where('poll_id', '=', pollId)
      .where(
        'vote_id',
        'in',
        moved.map((v) => v.vote_id),
      )
      .execute();
    const changes: BallotChange[] = moved.map((vote) => {
      const s = { pollId, shard: vote.shard, counted: vote.counted_options, ranking: vote.rank_order, ratings: vote.ratings };
      return { before: { ...s, status: vote.status }, after: { ...s, status: decision } };
    });
    const touched = await applyBallotChanges(trx, changes);
    return { outcomes, states: await loadResults(trx, touched) };
  });
}

/** The counter shards holding a poll's SUSPICIOUS votes from an address prefix. */
async function shardsOfHeldVotes(db: Db, pollId: number, prefix: string): Promise<ShardKey[]> {
  const rows = await db
    .selectFrom('votes')
    .select('shard')
    .distinct()
    .where('poll_id', '=', pollId)
    .where('status', '=', 'SUSPICIOUS')
    .where(sql<boolean>`ip_address <<= ${prefix}::cidr`)
    .execute();
  return rows.map((r) => ({ pollId, shard: r.shard }));
}

/** The counter shards of some votes of a poll (a vote's shard never changes): the locks a writer of them takes. */
export async function shardsOfVotes(db: Db, pollId: number, voteIds: string[]): Promise<ShardKey[]> {
  const rows = await db.selectFrom('votes').select('shard').distinct().where('poll_id', '=', pollId).where('vote_id', 'in', voteIds).execute();
  return rows.map((r) => ({ pollId, shard: r.shard }));
}

/**
 * Adds a flag reason to stored votes of a poll, once: only rows that still lack it change, and
 * VALID ones become SUSPICIOUS. Returns each changed row with its status before.
 */
export async function flagVotes(trx: ShardLockedTrx, pollId: number, voteIds: string[], reason: string) {
  const { rows } = await sql<{
    poll_id: number;
    shard: number;
    before_status: VoteStatus;
    status: VoteStatus;
    counted_options: number[];
    rank_order: number[] | null;
    ratings: Record<string, number> | null;
  }>`
    WITH target AS (
      SELECT vote_id, status FROM votes
      WHERE poll_id = ${pollId} AND vote_id = ANY(${voteIds}::uuid[]) AND status <> 'REJECTED'
        AND NOT (${reason} = ANY(flag_reasons))
    )
    UPDATE votes v SET status = CASE WHEN v.status = 'VALID' THEN 'SUSPICIOUS' ELSE v.status END,
      flag_reasons = v.flag_reasons || ${reason}::text, updated_at = now()
    FROM target t WHERE v.poll_id = ${pollId} AND v.vote_id = t.vote_id
    RETURNING v.poll_id, v.shard, t.status AS before_status, v.status, v.counted_options, v.rank_order, v.ratings`.execute(trx);
  return rows;
}
