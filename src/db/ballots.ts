import { sql, type Kysely, type Transaction } from 'kysely';
import { counterDeltas, type BallotChange } from '../domain/counting.js';
import type { DB } from './schema.js';

export type { BallotChange, CountedBallot } from '../domain/counting.js';

/** One counter shard: a partition of a poll. */
export interface ShardKey {
  pollId: number;
  shard: number;
}

declare const locksHeld: unique symbol;
/**
 * A transaction holding the locks of some poll shards. Counters and the ballots behind them
 * change only through one of these: the `before` state read by a writer is exact only while no
 * other writer touches the same shard.
 */
export type ShardLockedTrx = Transaction<DB> & { readonly [locksHeld]: true };

// Shards per poll fit in 10 bits (partitions are at most 1024), so one bigint names a shard's lock.
const lockKey = ({ pollId, shard }: ShardKey) => pollId * 1024 + shard;

/**
 * Runs `work` in a transaction that first locks the given shards (ascending, so two writers can
 * never wait on each other in a cycle). Every writer of votes and counters goes through here:
 * vote commits, flagging, reviews, the close.
 */
export function withShardLocks<T>(db: Kysely<DB>, shards: Iterable<ShardKey>, work: (trx: ShardLockedTrx) => Promise<T>): Promise<T> {
  const keys = [...new Set([...shards].map(lockKey))].sort((a, b) => a - b);
  return db.transaction().execute(async (trx) => {
    if (keys.length) await sql`SELECT pg_advisory_xact_lock(k) FROM unnest(${keys}::bigint[]) AS k ORDER BY k`.execute(trx);
    return work(trx as ShardLockedTrx);
  });
}

/**
 * Moves every counter (option counts, ballot totals, pending review, ranked ballot groups,
 * rating histograms) by exactly the difference the changes make, each in its ballot's shard,
 * and gives each touched shard a new version. Returns the polls touched.
 */
export async function applyBallotChanges(trx: ShardLockedTrx, changes: BallotChange[]): Promise<number[]> {
  const d = counterDeltas(changes);
  if (d.tallies.length === 0) return [];
  // Each statement adds to the rows that exist and inserts the missing ones. A missing row only
  // ever gets a positive delta: a shard's ballot is taken out only where it was put in.
  await sql`
    WITH d AS (
      SELECT * FROM unnest(${d.tallies.map((t) => t.pollId)}::bigint[], ${d.tallies.map((t) => t.shard)}::smallint[],
                           ${d.tallies.map((t) => t.total)}::bigint[], ${d.tallies.map((t) => t.pending)}::bigint[]) AS t(poll_id, shard, total, pending)
    ),
    moved AS (
      UPDATE poll_tallies p SET total_votes = p.total_votes + d.total, pending_review = p.pending_review + d.pending, seq = p.seq + 1, updated_at = now()
      FROM d WHERE p.poll_id = d.poll_id AND p.shard = d.shard
      RETURNING p.poll_id, p.shard
    )
    INSERT INTO poll_tallies (poll_id, shard, total_votes, pending_review, seq)
    SELECT poll_id, shard, total, pending, 1 FROM d WHERE NOT EXISTS (SELECT 1 FROM moved m WHERE m.poll_id = d.poll_id AND m.shard = d.shard)`.execute(trx);
  if (d.options.length) {
    await sql`
      WITH d AS (
        SELECT * FROM unnest(${d.options.map((o) => o.pollId)}::bigint[], ${d.options.map((o) => o.shard)}::smallint[],
                             ${d.options.map((o) => o.optionId)}::bigint[], ${d.options.map((o) => o.delta)}::bigint[]) AS t(poll_id, shard, option_id, delta)
      ),
      moved AS (
        UPDATE vote_results r SET vote_count = r.vote_count + d.delta, last_updated = now()
        FROM d WHERE r.poll_id = d.poll_id AND r.shard = d.shard AND r.option_id = d.option_id
        RETURNING r.poll_id, r.shard, r.option_id
      )
      INSERT INTO vote_results (poll_id, shard, option_id, vote_count)
      SELECT poll_id, shard, option_id, delta FROM d
      WHERE NOT EXISTS (SELECT 1 FROM moved m WHERE m.poll_id = d.poll_id AND m.shard = d.shard AND m.option_id = d.option_id)`.execute(trx);
  }
  if (d.rankings.length) {
    await sql`
      WITH d AS (
        SELECT t.poll_id, t.shard, string_to_array(t.ranking, ',')::bigint[] AS ranking, t.delta
        FROM unnest(${d.rankings.map((r) => r.pollId)}::bigint[], ${d.rankings.map((r) => r.shard)}::smallint[],
                    ${d.rankings.map((r) => r.ranking.join(','))}::text[], ${d.rankings.map((r) => r.delta)}::bigint[]) AS t(poll_id, shard, ranking, delta)
      ),
      moved AS (
        UPDATE ranked_ballot_counts c SET ballot_count = c.ballot_count + d.delta
        FROM d WHERE c.poll_id = d.poll_id AND c.shard = d.shard AND c.ranking = d.ranking
        RETURNING c.poll_id, c.shard, c.ranking
      )
      INSERT INTO ranked_ballot_counts (poll_id, shard, ranking, ballot_count)
      SELECT poll_id, shard, ranking, delta FROM d
      WHERE NOT EXISTS (SELECT 1 FROM moved m WHERE m.poll_id = d.poll_id AND m.shard = d.shard AND m.ranking = d.ranking)`.execute(trx);
  }
  if (d.ratings.length) {
    await sql`
      WITH d AS (
        SELECT * FROM unnest(${d.ratings.map((r) => r.pollId)}::bigint[], ${d.ratings.map((r) => r.shard)}::smallint[],
                             ${d.ratings.map((r) => r.optionId)}::bigint[], ${d.ratings.map((r) => r.rating)}::int[],
                             ${d.ratings.map((r) => r.delta)}::bigint[]) AS t(poll_id, shard, option_id, rating, delta)
      ),
      moved AS (
        UPDATE rating_counts c SET rating_count = c.rating_count + d.delta
        FROM d WHERE c.poll_id = d.poll_id AND c.shard = d.shard AND c.option_id = d.option_id AND c.rating = d.rating
        RETURNING c.poll_id, c.shard, c.option_id, c.rating
      )
      INSERT INTO rating_counts (poll_id, shard, option_id, rating, rating_count)
      SELECT poll_id, shard, option_id, rating, delta FROM d
      WHERE NOT EXISTS (SELECT 1 FROM moved m WHERE m.poll_id = d.poll_id AND m.shard = d.shard AND m.option_id = d.option_id AND m.rating = d.rating)`.execute(
      trx,
    );
  }
  return [...new Set(d.tallies.map((t) => t.pollId))].sort((a, b) => a - b);
}

/** Gives a poll's results a new version without moving a count (a close, the final results). */
export async function bumpResultsVersion(trx: ShardLockedTrx, pollId: number): Promise<void> {
  await sql`UPDATE poll_tallies SET seq = seq + 1, updated_at = now() WHERE poll_id = ${pollId} AND shard = 0`.execute(trx);
}
