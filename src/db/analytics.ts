import { Kysely, PostgresDialect, sql, type Insertable } from 'kysely';
import pg from 'pg';
import Cursor from 'pg-cursor';
import type { ExportedVote } from '../domain/analytics-csv.js';
import type { Db } from './client.js';
import type { DB, PollAnalyticsTable, PollStatus } from './schema.js';

/**
 * A small pool of its own whose queries can stream through a server-side cursor: a long export
 * holds its connection for minutes, and must not starve the API's main pool. A cursor's query is
 * one statement from its first row to its last, so `statementTimeoutMs` bounds a whole export.
 */
export function createExportDb(databaseUrl: string, max = 4, statementTimeoutMs = 0): Kysely<DB> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: 5000,
    ...(statementTimeoutMs > 0 && { statement_timeout: statementTimeoutMs, idle_in_transaction_session_timeout: statementTimeoutMs }),
  });
  pool.on('error', () => {});
  // A connection lost mid-export fails that export's query; unheard, node-postgres would also throw it at the process.
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool, cursor: Cursor }) });
}

export interface VoteAggregates {
  poll_status: PollStatus;
  closed_at: Date | null;
  /** The transaction's clock: what the rollup is "as of". */
  now: Date;
  unique_voters: number;
  total_votes: number;
  suspicious_votes: number;
  rejected_votes: number;
  avg_response_ms: number | null;
  median_response_ms: number | null;
}

/**
 * One poll's vote counts per status and view-to-vote times over VALID votes; null when the poll
 * does not exist. A changed vote is one row (one voter) whose change_count adds to total_votes.
 */
export async function voteAggregates(db: Db, pollId: number): Promise<VoteAggregates | null> {
  const { rows } = await sql<VoteAggregates>`
    SELECT p.status AS poll_status, p.closed_at, now() AS now,
           count(v.vote_id) FILTER (WHERE v.status = 'VALID')::int AS unique_voters,
           coalesce(sum(1 + v.change_count) FILTER (WHERE v.status = 'VALID'), 0)::int AS total_votes,
           count(v.vote_id) FILTER (WHERE v.status = 'SUSPICIOUS')::int AS suspicious_votes,
           count(v.vote_id) FILTER (WHERE v.status = 'REJECTED')::int AS rejected_votes,
           (avg(v.response_ms) FILTER (WHERE v.status = 'VALID'))::float8 AS avg_response_ms,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY v.response_ms) FILTER (WHERE v.status = 'VALID') AS median_response_ms
    FROM polls p LEFT JOIN votes v ON v.poll_id = p.poll_id
    WHERE p.poll_id = ${pollId}
    GROUP BY p.poll_id`.execute(db);
  return rows[0] ?? null;
}

/** VALID votes per distinct User-Agent: a viral poll has millions of votes but few distinct agents to classify. */
export function votesPerUserAgent(db: Db, pollId: number): Promise<Array<{ user_agent: string | null; n: number }>> {
  return db
    .selectFrom('votes')
    .select(['user_agent', sql<number>`count(*)::int`.as('n')])
    .where('poll_id', '=', pollId)
    .where('status', '=', 'VALID')
    .groupBy('user_agent')
    .execute();
}

/** VALID votes per CDN-given country, or per address where no country was captured at vote time. */
export async function votesPerOrigin(db: Db, pollId: number): Promise<Array<{ country: string | null; ip: string | null; n: number }>> {
  const { rows } = await sql<{ country: string | null; ip: string | null; n: number }>`
    SELECT country, CASE WHEN country IS NULL THEN host(ip_address) END AS ip, count(*)::int AS n
    FROM votes WHERE poll_id = ${pollId} AND status = 'VALID'
    GROUP BY 1, 2`.execute(db);
  return rows;
}

/**
 * VALID votes per time bucket of `seconds` (epoch-based, so independent of the session time
 * zone) by the time the counted ballot was accepted, from `since` on.
 */
export async function votesPerBucket(db: Db, pollId: number, seconds: number, since?: Date): Promise<Array<{ bucket: number; votes: number }>> {
  const { rows } = await sql<{ bucket: number; votes: number }>`
    SELECT floor(extract(epoch FROM accepted_at) / ${seconds})::int AS bucket, count(*)::int AS votes
    FROM votes
    WHERE poll_id = ${pollId} AND status = 'VALID' ${since ? sql`AND accepted_at >= ${since}` : sql``}
    GROUP BY 1`.execute(db);
  return rows;
}

/** The stored analytics of a poll, if a rollup ever ran. */
export function findAnalytics(db: Db, pollId: number) {
  return db.selectFrom('poll_analytics').selectAll().where('poll_id', '=', pollId).executeTakeFirst();
}

/** Writes a poll's analytics in one statement: a crash leaves the previous row whole. */
export async function upsertAnalytics(db: Db, row: Insertable<PollAnalyticsTable>): Promise<void> {
  await db
    .insertInto('poll_analytics')
    .values(row)
    .onConflict((oc) =>
      oc.column('poll_id').doUpdateSet((eb) => ({
        total_votes: eb.ref('excluded.total_votes'),
        unique_voters: eb.ref('excluded.unique_voters'),
        unique_viewers: eb.ref('excluded.unique_viewers'),
        completion_rate: eb.ref('excluded.completion_rate'),
        avg_response_time_seconds: eb.ref('excluded.avg_response_time_seconds'),
        median_response_time_seconds: eb.ref('excluded.median_response_time_seconds'),
        geographic_distribution: eb.ref('excluded.geographic_distribution'),
        device_breakdown: eb.ref('excluded.device_breakdown'),
        time_series: eb.ref('excluded.time_series'),
        time_series_last_hour: eb.ref('excluded.time_series_last_hour'),
        suspicious_votes: eb.ref('excluded.suspicious_votes'),
        rejected_votes: eb.ref('excluded.rejected_votes'),
        updated_at: eb.ref('excluded.updated_at'),
      })),
    )
    .execute();
}

/**
 * Every vote of a poll through a server-side cursor, `chunk` rows at a time (needs a Kysely
 * from createExportDb). Oldest first; on anonymous polls without identity columns and in an
 * order unrelated to time (a hash of the id: vote ids are UUIDv7, ordered by time), so the row
 * order does not tell who voted when.
 */
export function streamVotesForExport(db: Kysely<DB>, pollId: number, isAnonymous: boolean, chunk = 1000): AsyncIterable<ExportedVote> {
  const ballot = db
    .selectFrom('votes')
    .select(['vote_id', 'status', 'flag_reasons', 'selected_options', 'rank_order', 'ratings', 'response_ms', 'change_count', 'created_at', 'accepted_at'])
    .where('poll_id', '=', pollId);
  if (isAnonymous) return ballot.orderBy(sql`md5(vote_id::text)`).stream(chunk);
  return ballot.select(['voter_id', 'voter_fingerprint', 'ip_address', 'user_agent', 'country']).orderBy('created_at').orderBy('vote_id').stream(chunk);
}
