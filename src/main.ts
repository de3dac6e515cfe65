import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDb } from './db/client.js';
import { createDatabaseIfMissing, migrateToLatest } from './db/migrate.js';
import { loadConfig } from './shared/config.js';
import { ensureBackingServices } from './shared/startup.js';
import { redisTargetOf } from './shared/redis.js';

/**
 * `npm start`: one command for a newcomer. Creates and migrates the database, then runs the
 * API, the workers and the realtime gateway as separate processes (as in production).
 */
const here = path.dirname(fileURLToPath(import.meta.url));
const config = loadConfig();
await ensureBackingServices('start', { databaseUrl: config.DATABASE_URL, redis: redisTargetOf(config) });
if (await createDatabaseIfMissing(config.DATABASE_URL)) console.log('[start] created the database');
const db = createDb(config.DATABASE_URL, 1);
const applied = await migrateToLatest(db);
await db.destroy();
console.log(applied.length ? `[start] applied migrations: ${applied.join(', ')}` : '[start] database schema is up to date');

const roles = [
  {
    name: 'api',
    file: 'api/main.js',
    url: `http://localhost:${config.PORT}  (web pages and API; /metrics, /readyz${config.ADMIN_USER && config.ADMIN_PASSWORD ? ', /admin/queues' : '; set ADMIN_USER and ADMIN_PASSWORD for /admin/queues'})`,
  },
  { name: 'workers', file: 'workers/main.js', url: `http://localhost:${config.WORKER_METRICS_PORT}/metrics  (workers)` },
  { name: 'realtime', file: 'realtime/main.js', url: `ws://localhost:${config.REALTIME_PORT}/ws?poll_id=ID  (live results)` },
].filter((r) => existsSync(path.join(here, r.file)));

const children = new Map<string, ChildProcess>();
let stopping = false;
for (const role of roles) {
  const child = fork(path.join(here, role.file), { stdio: 'inherit' });
  children.set(role.name, child);
  child.on('exit', (code, signal) => {
    children.delete(role.name);
    if (!stopping) {
      console.error(`[start] ${role.name} exited (${signal ?? code}); stopping the others`);
      stop(1);
    } else if (children.size === 0) process.exit(0);
  });
}
console.log(`[start] running:\n${roles.map((r) => `  ${r.name.padEnd(9)} ${r.url}`).join('\n')}`);

function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => process.exit(code), 30_000).unref();
  if (children.size === 0) process.exit(code);
}
process.on('SIGTERM', () => stop());
process.on('SIGINT', () => stop());
