import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.js';

// bigint (int8) columns come back as strings by default; ids fit in a JS number (< 2^53).
pg.types.setTypeParser(20, (v) => Number(v));
// bigint[] columns hold option ids: never NULL elements, never quoted.
pg.types.setTypeParser(1016 as never, (v) => (v === '{}' ? [] : v.slice(1, -1).split(',').map(Number)));

/** A Kysely handle on PostgreSQL, with its own connection pool. */
export function createDb(databaseUrl: string, max = 10): Kysely<DB> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max, connectionTimeoutMillis: 5000 });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  // A connection dropped mid-query (failover, terminated backend) fails that query; it must not crash the process.
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
}

export type Db = Kysely<DB> | Transaction<DB>;

/** Whether PostgreSQL answers (readiness checks). */
export async function pingDatabase(db: Db): Promise<void> {
  await sql`SELECT 1`.execute(db);
}
