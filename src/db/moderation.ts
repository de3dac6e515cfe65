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

export interface ReviewOutcome {
  vote_id: string;
  poll_id: number;
  previous_status: VoteStatus;
  status: VoteStatus;
  changed: boolean;
}

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
  const found = await db.selectFrom('votes').select(['poll_id', 'shard']).where('vote_id', '=', voteId).executeTakeFirst();
  if (!found) return null;
  const pollId = found.poll_id;
  return withShardLocks(db, [{ pollId, shard: found.shard }], async (trx) => {
    const vote = await trx
      .selectFrom('votes')
      .select(['status', 'counted_options', 'rank_order', 'ratings'])
      .where('poll_id', '=', pollId)
      .where('vote_id', '=', voteId)
      .executeTakeFirstOrThrow();
    await trx
      .insertInto('vote_reviews')
      .values({ vote_id: voteId, poll_id: pollId, previous_status: vote.status, decision, reviewer_id: reviewerId, note })
      .execute();
    const outcome = { vote_id: voteId, poll_id: pollId, previous_status: vote.status, status: decision, changed: vote.status !== decision };
    if (!outcome.changed) return { outcome, states: new Map() };
    await trx.updateTable('votes').set({ status: decision, updated_at: sql`now()` }).where('poll_id', '=', pollId).where('vote_id', '=', voteId).execute();
    const s = { pollId, shard: found.shard, counted: vote.counted_options, ranking: vote.rank_order, ratings: vote.ratings };
    const change: BallotChange = { before: { ...s, status: vote.status }, after: { ...s, status: decision } };
    const touched = await applyBallotChanges(trx, [change]);
    return { outcome, states: await loadResults(trx, touched) };
  });
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
