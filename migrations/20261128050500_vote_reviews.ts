import { sql, type Kysely } from 'kysely';

// Every moderation decision, kept forever: who decided what, when, and why.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE vote_reviews (
      review_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      vote_id uuid NOT NULL REFERENCES votes (vote_id),
      poll_id bigint NOT NULL,
      previous_status text NOT NULL,
      decision text NOT NULL CHECK (decision IN ('VALID', 'REJECTED')),
      reviewer_id bigint NOT NULL,
      note text,
      decided_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`CREATE INDEX vote_reviews_by_vote ON vote_reviews (vote_id, decided_at)`.execute(db);
  await sql`CREATE INDEX vote_reviews_by_poll ON vote_reviews (poll_id, decided_at)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('vote_reviews').ifExists().execute();
}
