import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { createDb } from '../../src/db/client.js';
import { migrateToLatest } from '../../src/db/migrate.js';
import { ensureRedisCluster } from '../../bench/redis-cluster.js';
import { adminClient, testDatabaseUrl } from './db.js';

declare module 'vitest' {
  export interface ProvidedContext {
    templateDb: string;
    /** Seeds of the shared test Redis Cluster (REDIS_CLUSTER_TEST_NODES, or one started on 7000-7005). */
    clusterSeeds: string;
  }
}

/**
 * Builds a migrated template database once per run; each test file clones it. The name is
 * unique per run so two runs on one server never drop each other's template.
 */
export default async function setup(project: TestProject) {
  const name = `polls_tpl_${randomBytes(4).toString('hex')}`;
  const admin = await adminClient();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const db = createDb(testDatabaseUrl(name), 1);
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
  project.provide('templateDb', name);
  // CI starts it before the tests; a newcomer's `npm test` starts it here (it keeps running for later runs).
  project.provide('clusterSeeds', process.env.REDIS_CLUSTER_TEST_NODES ?? (await ensureRedisCluster(7000)));
  return async () => {
    const c = await adminClient();
    try {
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } finally {
      await c.end();
    }
  };
}
