import { loadConfig } from '../shared/config.js';
import { ensureBackingServices } from '../shared/startup.js';
import { createDb } from './client.js';
import { createDatabaseIfMissing, migrateToLatest } from './migrate.js';

/** `npm run migrate`: creates the database if needed and applies pending migrations. */
const config = loadConfig();
await ensureBackingServices('migrate', { databaseUrl: config.DATABASE_URL });
if (await createDatabaseIfMissing(config.DATABASE_URL)) console.log('created database');
const db = createDb(config.DATABASE_URL, 1);
try {
  const applied = await migrateToLatest(db);
  console.log(applied.length ? `applied migrations: ${applied.join(', ')}` : 'database schema is up to date');
} finally {
  await db.destroy();
}
