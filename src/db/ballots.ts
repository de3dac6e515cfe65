import { sql } from 'kysely';
import type { Db } from './client.js';
import type { VoteStatus } from './schema.js';

/** The part of a stored ballot that the counters depend on. */
export interface CountedState {
  pollId: number;
  status: VoteStatus;
  counted: number[];
  ranking: number[] | null;
  ratings: Record<string, number> | null;
}

/** One ballot that moved: `before` null for a new ballot. */
export interface BallotChange {
  before: CountedState | null;
  after: CountedState;
}

/**
 * Serialises every writer of one poll's votes and counters (vote batches, flagging,
 * reviews) for the rest of the transaction. Locks are taken in ascending poll order so
 * two transactions can never wait on each other in a cycle.
 */
export async function lockPolls(trx: Db, pollIds: number[]): Promise<void> {
  const ids = [...new Set(pollIds)].sort((a, b) => a - b);
  for (const id of ids) await sql`SELECT pg_advisory_xact_lock(${id}::bigint)`.execute(trx);
}

/**
 * Moves every materialised aggregate (option counts, ballot totals, pending review, ranked
 * ballot groups, rating histograms) by exactly the difference between the before and after
 * states, then recomputes percentages. Must run under lockPolls for the same polls.
 */
export async function applyBallotChanges(trx: Db, changes: BallotChange[]): Promise<number[]> {
  const options = new Map<string, number>(); // "poll:option" -> delta
  const totals = new Map<number, { total: number; pending: number }>();
  const ranked = new Map<string, number>(); // "poll|1,2,3" -> delta
  const ratings = new Map<string, number>(); // "poll:option:rating" -> delta
  const touched = new Set<number>();

  const add = <K>(m: Map<K, number>, k: K, d: number) => m.set(k, (m.get(k) ?? 0) + d);
  const account = (s: CountedState, sign: 1 | -1) => {
    touched.add(s.pollId);
    const t = totals.get(s.pollId) ?? { total: 0, pending: 0 };
    totals.set(s.pollId, t);
    if (s.status === 'SUSPICIOUS') t.pending += sign;
    if (s.status !== 'VALID') return;
    t.total += sign;
    for (const o of s.counted) add(options, `${s.pollId}:${o}`, sign);
    if (s.ranking) add(ranked, `${s.pollId}|${s.ranking.join(',')}`, sign);
    if (s.ratings) for (const [o, r] of Object.entries(s.ratings)) add(ratings, `${s.pollId}:${o}:${r}`, sign);
  };
  for (const c of changes) {
    if (c.before) account(c.before, -1);
    account(c.after, 1);
  }
  if (touched.size === 0) return [];

  // One statement moves option counts, ballot totals and percentages: fewer round trips per batch.
  const optionRows = [...options].filter(([, d]) => d !== 0).map(([k, d]) => [...k.split(':').map(Number), d]);
  const pollIds = [...touched].sort((a, b) => a - b);
  await sql`
    WITH d AS (
      SELECT * FROM unnest(${optionRows.map((r) => r[0])}::bigint[], ${optionRows.map((r) => r[1])}::bigint[],
                           ${optionRows.map((r) => r[2])}::bigint[]) AS t(poll_id, option_id, delta)
    ),
    cur AS (
      SELECT r.poll_id, r.option_id, r.vote_count + coalesce(d.delta, 0) AS n, d.delta IS NOT NULL AS moved
      FROM vote_results r LEFT JOIN d ON d.poll_id = r.poll_id AND d.option_id = r.option_id
      WHERE r.poll_id = ANY(${pollIds}::bigint[])
    ),
    sums AS (SELECT poll_id, sum(n) AS total FROM cur GROUP BY poll_id),
    tallies AS (
      UPDATE poll_tallies p SET total_votes = p.total_votes + t.total, pending_review = p.pending_review + t.pending,
        seq = p.seq + 1, updated_at = now()
      FROM unnest(${pollIds}::bigint[], ${pollIds.map((p) => totals.get(p)!.total)}::bigint[],
                  ${pollIds.map((p) => totals.get(p)!.pending)}::bigint[]) AS t(poll_id, total, pending)
      WHERE p.poll_id = t.poll_id
      RETURNING p.poll_id
    )
    UPDATE vote_results r
    SET vote_count = cur.n,
        percentage = CASE WHEN sums.total > 0 THEN round(cur.n * 100.0 / sums.total, 2) ELSE 0 END,
        last_updated = CASE WHEN cur.moved THEN now() ELSE r.last_updated END
    FROM cur JOIN sums ON sums.poll_id = cur.poll_id
    WHERE r.poll_id = cur.poll_id AND r.option_id = cur.option_id`.execute(trx);

  // PostgreSQL checks `>= 0` on the proposed row before ON CONFLICT turns it into an update, so a
  // negative delta (a changed or rejected ballot) cannot go through the upsert: it only ever
  // applies to a group that exists, and is a plain update.
  const rankedShrink = [...ranked].filter(([, d]) => d < 0);
  if (rankedShrink.length) {
    await sql`
      UPDATE ranked_ballot_counts c SET ballot_count = c.ballot_count + t.delta
      FROM unnest(${rankedShrink.map(([k]) => Number(k.split('|')[0]))}::bigint[], ${rankedShrink.map(([k]) => k.split('|')[1])}::text[],
                  ${rankedShrink.map(([, d]) => d)}::bigint[]) AS t(poll_id, ranking, delta)
      WHERE c.poll_id = t.poll_id AND c.ranking = string_to_array(t.ranking, ',')::bigint[]`.execute(trx);
  }
  const rankedRows = [...ranked].filter(([, d]) => d > 0);
  if (rankedRows.length) {
    await sql`
      INSERT INTO ranked_ballot_counts AS c (poll_id, ranking, ballot_count)
      SELECT t.poll_id, string_to_array(t.ranking, ',')::bigint[], t.delta
      FROM unnest(${rankedRows.map(([k]) => Number(k.split('|')[0]))}::bigint[], ${rankedRows.map(([k]) => k.split('|')[1])}::text[],
                  ${rankedRows.map(([, d]) => d)}::bigint[]) AS t(poll_id, ranking, delta)
      ORDER BY 1, 2
      ON CONFLICT (poll_id, ranking) DO UPDATE SET ballot_count = c.ballot_count + excluded.ballot_count`.execute(trx);
  }
  const ratingShrink = [...ratings].filter(([, d]) => d < 0).map(([k, d]) => [...k.split(':').map(Number), d]);
  if (ratingShrink.length) {
    await sql`
      UPDATE rating_counts c SET rating_count = c.rating_count + t.delta
      FROM unnest(${ratingShrink.map((r) => r[0])}::bigint[], ${ratingShrink.map((r) => r[1])}::bigint[],
                  ${ratingShrink.map((r) => r[2])}::int[], ${ratingShrink.map((r) => r[3])}::bigint[]) AS t(poll_id, option_id, rating, delta)
      WHERE c.poll_id = t.poll_id AND c.option_id = t.option_id AND c.rating = t.rating`.execute(trx);
  }
  const ratingRows = [...ratings].filter(([, d]) => d > 0).map(([k, d]) => [...k.split(':').map(Number), d]);
  if (ratingRows.length) {
    await sql`
      INSERT INTO rating_counts AS c (poll_id, option_id, rating, rating_count)
      SELECT * FROM unnest(${ratingRows.map((r) => r[0])}::bigint[], ${ratingRows.map((r) => r[1])}::bigint[],
                           ${ratingRows.map((r) => r[2])}::int[], ${ratingRows.map((r) => r[3])}::bigint[])
      ORDER BY 1, 2, 3
      ON CONFLICT (poll_id, option_id, rating) DO UPDATE SET rating_count = c.rating_count + excluded.rating_count`.execute(trx);
  }
  return pollIds;
}
