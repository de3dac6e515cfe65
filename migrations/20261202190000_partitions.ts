import { sql, type Kysely } from 'kysely';

/**
 * Partitions: a poll's voters are split into `partitions` groups, each committed by one writer at
 * a time into counter rows of its own (`shard`), so one hot poll's commits run in parallel and
 * never wait on one row. Results are sums over shards; existing counters become shard 0.
 * `results_final_at` marks the final results of a closed poll: set once every vote accepted before
 * the close is counted.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE polls ADD COLUMN partitions smallint NOT NULL DEFAULT 1 CHECK (partitions BETWEEN 1 AND 1024),
    ADD COLUMN results_final_at timestamptz`.execute(db);
  await sql`UPDATE polls SET results_final_at = coalesce(closed_at, updated_at) WHERE status = 'CLOSED'`.execute(db);
  // Settings of their own: existing polls keep taking votes without a view token, and embed nowhere.
  await sql`UPDATE polls SET settings = '{"require_view_token": false, "embed_origins": []}'::jsonb || settings`.execute(db);
  // view_token: how the vote's view token fared (valid, missing, expired, reused, foreign), for reviewers and analytics.
  await sql`ALTER TABLE votes ADD COLUMN shard smallint NOT NULL DEFAULT 0, ADD COLUMN view_token text`.execute(db);

  await sql`ALTER TABLE vote_results ADD COLUMN shard smallint NOT NULL DEFAULT 0, DROP COLUMN percentage`.execute(db);
  await sql`ALTER TABLE vote_results DROP CONSTRAINT vote_results_pkey, ADD PRIMARY KEY (poll_id, option_id, shard)`.execute(db);
  await sql`ALTER TABLE poll_tallies ADD COLUMN shard smallint NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE poll_tallies DROP CONSTRAINT poll_tallies_pkey, ADD PRIMARY KEY (poll_id, shard)`.execute(db);
  await sql`ALTER TABLE ranked_ballot_counts ADD COLUMN shard smallint NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE ranked_ballot_counts DROP CONSTRAINT ranked_ballot_counts_pkey, ADD PRIMARY KEY (poll_id, shard, ranking)`.execute(db);
  await sql`ALTER TABLE rating_counts ADD COLUMN shard smallint NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE rating_counts DROP CONSTRAINT rating_counts_pkey, ADD PRIMARY KEY (poll_id, shard, option_id, rating)`.execute(db);
}

/** Folds every shard into one row per key again, then restores the old keys. */
export async function down(db: Kysely<any>): Promise<void> {
  const tables = [
    ['vote_results', 'poll_id, option_id', 'sum(vote_count) AS vote_count, max(last_updated) AS last_updated'],
    ['poll_tallies', 'poll_id', 'sum(total_votes) AS total_votes, sum(pending_review) AS pending_review, sum(seq) AS seq, max(updated_at) AS updated_at'],
    ['ranked_ballot_counts', 'poll_id, ranking', 'sum(ballot_count) AS ballot_count'],
    ['rating_counts', 'poll_id, option_id, rating', 'sum(rating_count) AS rating_count'],
  ] as const;
  for (const [table, key, sums] of tables) {
    await sql.raw(`CREATE TEMP TABLE folded AS SELECT ${key}, ${sums} FROM ${table} GROUP BY ${key}`).execute(db);
    await sql.raw(`DELETE FROM ${table}`).execute(db);
    await sql.raw(`ALTER TABLE ${table} DROP CONSTRAINT ${table}_pkey, DROP COLUMN shard, ADD PRIMARY KEY (${key})`).execute(db);
    await sql.raw(`INSERT INTO ${table} SELECT * FROM folded`).execute(db);
    await sql.raw('DROP TABLE folded').execute(db);
  }
  // Percentages were stored before: recomputed from the folded counts.
  await sql`ALTER TABLE vote_results ADD COLUMN percentage numeric(5, 2) NOT NULL DEFAULT 0`.execute(db);
  await sql`UPDATE vote_results r SET percentage = round(r.vote_count * 100.0 / t.total, 2)
    FROM (SELECT poll_id, sum(vote_count) AS total FROM vote_results GROUP BY poll_id) t
    WHERE t.poll_id = r.poll_id AND t.total > 0`.execute(db);
  await sql`ALTER TABLE votes DROP COLUMN shard, DROP COLUMN view_token`.execute(db);
  await sql`ALTER TABLE polls DROP COLUMN partitions, DROP COLUMN results_final_at`.execute(db);
}
