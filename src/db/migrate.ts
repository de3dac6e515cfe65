import { promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

const here = path.dirname(fileURLToPath(import.meta.url));
/** migrations/ next to src/ both in the source tree and in dist/. */
export const migrationsFolder = path.resolve(here, '../../migrations');

/** Creates the database named in the URL when it does not exist yet. */
export async function createDatabaseIfMissing(databaseUrl: string): Promise<boolean> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount) return false;
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
      if (err.code !== '42P04') throw err; // created meanwhile by a concurrent starter
    });
    return true;
  } finally {
    await client.end();
  }
}

/**
 * Kysely's FileMigrationProvider imports from inside node_modules, where the test runner
 * cannot load TypeScript; importing from here works both from dist/ and under vitest.
 */
const folderProvider: MigrationProvider = {
  async getMigrations() {
    const migrations: Record<string, Migration> = {};
    for (const file of (await fs.readdir(migrationsFolder)).sort()) {
      const m = /^(.+)\.(ts|js)$/.exec(file);
      if (!m || file.endsWith('.d.ts')) continue;
      migrations[m[1]] = await import(pathToFileURL(path.join(migrationsFolder, file)).href);
    }
    return migrations;
  },
};

/** Applies every pending migration; throws on the first failure. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: folderProvider,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
