import { createDb } from '../../src/db/client.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { adminClient, TEMPLATE_DB, testDatabaseUrl } from './db.js';

/** Builds a migrated template database once; each test file clones it. */
export default async function setup() {
  const admin = await adminClient();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DB}`);
  } finally {
    await admin.end();
  }
  const db = createDb(testDatabaseUrl(TEMPLATE_DB), 1);
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}
