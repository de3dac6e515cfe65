import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go in new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE polls (
      poll_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      creator_id bigint NOT NULL,
      org_id bigint,
      question text NOT NULL,
      poll_type text NOT NULL CHECK (poll_type IN ('SINGLE_CHOICE', 'MULTIPLE_CHOICE', 'RANKED', 'RATING')),
      status text NOT NULL DEFAULT 'DRAFT' CHECK (status IN ('DRAFT', 'ACTIVE', 'CLOSED')),
      is_anonymous boolean NOT NULL DEFAULT false,
      allow_change_vote boolean NOT NULL DEFAULT false,
      visibility text NOT NULL DEFAULT 'PUBLIC' CHECK (visibility IN ('PUBLIC', 'PRIVATE', 'ORGANIZATION')),
      access_key text,
      start_time timestamptz,
      end_time timestamptz,
      settings jsonb NOT NULL DEFAULT '{}',
      tiebreak_seed text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      published_at timestamptz,
      closed_at timestamptz
    )`.execute(db);
  await sql`CREATE INDEX polls_public_listing ON polls (status, poll_id DESC) WHERE visibility = 'PUBLIC'`.execute(db);
  await sql`CREATE INDEX polls_by_creator ON polls (creator_id, poll_id DESC)`.execute(db);

  await sql`
    CREATE TABLE poll_options (
      option_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      poll_id bigint NOT NULL REFERENCES polls (poll_id) ON DELETE CASCADE,
      text text NOT NULL,
      image_url text,
      display_order int NOT NULL,
      UNIQUE (poll_id, option_id)
    )`.execute(db);

  // One row per voter per poll: the unique key is the final word on "one vote per voter".
  await sql`
    CREATE TABLE votes (
      vote_id uuid PRIMARY KEY,
      poll_id bigint NOT NULL REFERENCES polls (poll_id),
      voter_key text NOT NULL,
      voter_id bigint,
      voter_fingerprint text,
      seq bigint NOT NULL,
      selected_options bigint[] NOT NULL,
      counted_options bigint[] NOT NULL,
      rank_order jsonb,
      ratings jsonb,
      ip_address inet,
      user_agent text,
      status text NOT NULL DEFAULT 'VALID' CHECK (status IN ('VALID', 'SUSPICIOUS', 'REJECTED')),
      flag_reasons text[] NOT NULL DEFAULT '{}',
      response_ms int,
      change_count int NOT NULL DEFAULT 0,
      accepted_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (poll_id, voter_key)
    )`.execute(db);
  await sql`CREATE INDEX votes_under_review ON votes (poll_id, status, created_at) WHERE status <> 'VALID'`.execute(db);

  await sql`
    CREATE TABLE vote_results (
      poll_id bigint NOT NULL REFERENCES polls (poll_id) ON DELETE CASCADE,
      option_id bigint NOT NULL,
      vote_count bigint NOT NULL DEFAULT 0 CHECK (vote_count >= 0),
      percentage numeric(5, 2) NOT NULL DEFAULT 0,
      last_updated timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (poll_id, option_id),
      FOREIGN KEY (poll_id, option_id) REFERENCES poll_options (poll_id, option_id) ON DELETE CASCADE
    )`.execute(db);

  // Ballot-level totals: a multiple-choice ballot counts once here but once per option above.
  await sql`
    CREATE TABLE poll_tallies (
      poll_id bigint PRIMARY KEY REFERENCES polls (poll_id) ON DELETE CASCADE,
      total_votes bigint NOT NULL DEFAULT 0 CHECK (total_votes >= 0),
      pending_review bigint NOT NULL DEFAULT 0 CHECK (pending_review >= 0),
      seq bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  // Counted RANKED ballots grouped by identical ranking: tabulation costs distinct ballots, not voters.
  await sql`
    CREATE TABLE ranked_ballot_counts (
      poll_id bigint NOT NULL REFERENCES polls (poll_id) ON DELETE CASCADE,
      ranking bigint[] NOT NULL,
      ballot_count bigint NOT NULL CHECK (ballot_count >= 0),
      PRIMARY KEY (poll_id, ranking)
    )`.execute(db);

  // Counted RATING ballots as a histogram per option.
  await sql`
    CREATE TABLE rating_counts (
      poll_id bigint NOT NULL REFERENCES polls (poll_id) ON DELETE CASCADE,
      option_id bigint NOT NULL,
      rating int NOT NULL,
      rating_count bigint NOT NULL CHECK (rating_count >= 0),
      PRIMARY KEY (poll_id, option_id, rating)
    )`.execute(db);

  await sql`
    CREATE TABLE poll_analytics (
      poll_id bigint PRIMARY KEY REFERENCES polls (poll_id) ON DELETE CASCADE,
      total_votes bigint NOT NULL DEFAULT 0,
      unique_voters bigint NOT NULL DEFAULT 0,
      completion_rate double precision NOT NULL DEFAULT 0,
      avg_response_time_seconds double precision,
      median_response_time_seconds double precision,
      geographic_distribution jsonb NOT NULL DEFAULT '{}',
      device_breakdown jsonb NOT NULL DEFAULT '{}',
      time_series jsonb NOT NULL DEFAULT '[]',
      suspicious_votes bigint NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const t of ['poll_analytics', 'rating_counts', 'ranked_ballot_counts', 'poll_tallies', 'vote_results', 'votes', 'poll_options', 'polls']) {
    await db.schema.dropTable(t).ifExists().execute();
  }
}
