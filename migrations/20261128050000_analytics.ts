import { sql, type Kysely } from 'kysely';

// Frozen once landed: later changes go in new migrations.
export async function up(db: Kysely<any>): Promise<void> {
  // Filled only where the operator trusts a CDN country header (GEO_COUNTRY_HEADER); nullable
  // without a default, so adding it rewrites no rows.
  await sql`ALTER TABLE votes ADD COLUMN country text`.execute(db);
  // unique_viewers is kept so a closed poll's completion rate survives the expiry of its view counter.
  await sql`
    ALTER TABLE poll_analytics
      ADD COLUMN unique_viewers bigint NOT NULL DEFAULT 0,
      ADD COLUMN rejected_votes bigint NOT NULL DEFAULT 0,
      ADD COLUMN time_series_last_hour jsonb NOT NULL DEFAULT '[]'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    ALTER TABLE poll_analytics
      DROP COLUMN IF EXISTS unique_viewers,
      DROP COLUMN IF EXISTS rejected_votes,
      DROP COLUMN IF EXISTS time_series_last_hour`.execute(db);
  await sql`ALTER TABLE votes DROP COLUMN IF EXISTS country`.execute(db);
}
