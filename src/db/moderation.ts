import { sql } from 'kysely';
import type { Db } from './client.js';
import { applyBallotChanges, lockPolls, type BallotChange } from './ballots.js';
import { loadResults, type ResultsState } from './results.js';
import type { VoteStatus } from './schema.js';

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
 * poll's lock: two reviewers clicking VALID at once add the ballot once. Null: no such vote.
 */
export async function reviewVote(
  db: Db,
  voteId: string,
  decision: 'VALID' | 'REJECTED',
  reviewerId: number,
  note: string | null,
): Promise<{ outcome: ReviewOutcome; states: Map<number, ResultsState> } | null> {
  const found = await db.selectFrom('votes').select(['poll_id']).where('vote_id', '=', voteId).executeTakeFirst();
  if (!found) return null;
  const pollId = found.poll_id;
  return db.transaction().execute(async (trx) => {
    await lockPolls(trx, [pollId]);
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
    const s = { pollId, counted: vote.counted_options, ranking: vote.rank_order, ratings: vote.ratings };
    const change: BallotChange = { before: { ...s, status: vote.status }, after: { ...s, status: decision } };
    const touched = await applyBallotChanges(trx, [change]);
    return { outcome, states: await loadResults(trx, touched) };
  });
}
