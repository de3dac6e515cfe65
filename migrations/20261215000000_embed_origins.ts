import { sql, type Kysely } from 'kysely';

// settings.embed_origins: every poll has the field, polls created before it with none allowed.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`UPDATE polls SET settings = settings || '{"embed_origins": []}'::jsonb WHERE NOT settings ? 'embed_origins'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`UPDATE polls SET settings = settings - 'embed_origins'`.execute(db);
}
