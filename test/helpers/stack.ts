import { createServer, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { sql, type Kysely } from 'kysely';
import { startApi, type ApiHandle } from '../../src/api/server.js';
import { createDb } from '../../src/db/client.js';
import type { DB } from '../../src/db/schema.js';
import { loadConfig, type Config } from '../../src/shared/config.js';
import { createLogger } from '../../src/shared/logger.js';
import { openVoteQueues } from '../../src/shared/queues.js';
import { createRedis, deleteNamespace } from '../../src/shared/redis.js';
import { redisKeys } from '../../src/shared/redis-keys.js';
import { startWorkers, type WorkersHandle } from '../../src/workers/runner.js';
import { createTestDatabase } from './db.js';

export const JWT_SECRET = 'test-secret-test-secret-test-secret';

export interface Stack {
  config: Config;
  api: ApiHandle;
  workers: WorkersHandle | null;
  db: Kysely<DB>;
  url: string;
  /** Starts the workers (when started without them, or after stopWorkers). */
  startWorkers(): Promise<void>;
  stopWorkers(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A real API (and workers) on a fresh database and a private Redis namespace: test files
 * never see each other's polls, keys or queues.
 */
export async function startStack(opts: { workers?: boolean; env?: Record<string, string> } = {}): Promise<Stack> {
  const database = await createTestDatabase();
  const namespace = `t${randomBytes(4).toString('hex')}`;
  const config = loadConfig({
    DATABASE_URL: database.url,
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    REDIS_NAMESPACE: namespace,
    JWT_SECRET,
    LOG_LEVEL: 'silent',
    POLL_CACHE_MS: '0',
    WORKER_LOCK_MS: '5000',
    ...opts.env,
  });
  const log = createLogger(config.LOG_LEVEL, 'test');
  const api = await startApi(config, log, 0);
  const db = createDb(config.DATABASE_URL, 4);
  const stack: Stack = {
    config,
    api,
    workers: null,
    db,
    url: api.url,
    async startWorkers() {
      if (!stack.workers) stack.workers = await startWorkers(config, log, 0);
    },
    async stopWorkers() {
      await stack.workers?.close();
      stack.workers = null;
    },
    async close() {
      await stack.stopWorkers();
      await api.close();
      await db.destroy();
      await dropNamespace(config.REDIS_URL, namespace);
      await database.drop();
    },
  };
  if (opts.workers !== false) await stack.startWorkers();
  return stack;
}

async function dropNamespace(redisUrl: string, namespace: string) {
  const redis = createRedis(redisUrl);
  try {
    await deleteNamespace(redis, namespace);
  } finally {
    redis.disconnect();
  }
}

/** A signed HS256 token for a test user. */
export function tokenFor(sub: number | string, claims: Record<string, unknown> = {}, secret = JWT_SECRET): Promise<string> {
  return new SignJWT({ ...claims })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(String(sub))
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** Calls the API with a JSON body; `token` signs the request in. */
export async function call<T = any>(
  stack: { url: string },
  method: string,
  path: string,
  opts: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.raw !== undefined) body = opts.raw;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const res = await fetch(stack.url + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Creates a poll through the API (ACTIVE, SINGLE_CHOICE, three options unless told otherwise). */
export async function createPoll(stack: Stack, overrides: Record<string, unknown> = {}, token?: string) {
  const t = token ?? (await tokenFor(1));
  const res = await call(stack, 'POST', '/api/v1/polls', {
    token: t,
    body: {
      question: 'Best editor?',
      poll_type: 'SINGLE_CHOICE',
      options: [{ text: 'vim' }, { text: 'emacs' }, { text: 'nano' }],
      status: 'ACTIVE',
      ...overrides,
    },
  });
  if (res.status !== 201) throw new Error(`createPoll failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { poll_id: number; options: Array<{ option_id: number }>; access_key?: string } & Record<string, any>;
}

/** Waits until `check` returns true (polls every 50 ms). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** No vote job waiting or running in the stack's namespace: nothing more can land in the votes table. */
export async function voteQueuesIdle(stack: { config: Config }): Promise<boolean> {
  const connection = createRedis(stack.config.REDIS_URL);
  const queues = openVoteQueues(
    { connection, keys: redisKeys(stack.config.REDIS_NAMESPACE), logger: createLogger('silent', 'test') },
    stack.config.VOTE_PARTITIONS,
  );
  try {
    const counts = await Promise.all(queues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children')));
    return counts.every((c) => Object.values(c).every((n) => n === 0));
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    connection.disconnect();
  }
}

/** Every counter of a poll next to a recount from the raw votes. */
export async function countersAndRecount(root: Kysely<DB>, pollId: number) {
  // One snapshot: a batch committing between the reads must not look like a miscount.
  return root
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (db) => {
      // Counters are sharded by partition: a poll's count is the sum over its shards.
      const { rows: counters } = await sql<{ option_id: number; n: number }>`
      SELECT o.option_id, coalesce(sum(r.vote_count), 0)::int AS n
      FROM poll_options o LEFT JOIN vote_results r ON r.poll_id = o.poll_id AND r.option_id = o.option_id
      WHERE o.poll_id = ${pollId} GROUP BY o.option_id ORDER BY o.option_id`.execute(db);
      const { rows: recount } = await sql<{ option_id: number; n: number }>`
      SELECT o.option_id, count(v.vote_id)::int AS n
      FROM poll_options o
      LEFT JOIN votes v ON v.poll_id = o.poll_id AND v.status = 'VALID' AND o.option_id = ANY(v.counted_options)
      WHERE o.poll_id = ${pollId} GROUP BY o.option_id ORDER BY o.option_id`.execute(db);
      const { rows: tallies } = await sql<{ total_votes: number; pending_review: number }>`
      SELECT coalesce(sum(total_votes), 0)::int AS total_votes, coalesce(sum(pending_review), 0)::int AS pending_review
      FROM poll_tallies WHERE poll_id = ${pollId}`.execute(db);
      const tally = tallies[0];
      const { rows: totals } = await sql<{ valid: number; suspicious: number }>`
      SELECT count(*) FILTER (WHERE status = 'VALID')::int AS valid, count(*) FILTER (WHERE status = 'SUSPICIOUS')::int AS suspicious
      FROM votes WHERE poll_id = ${pollId}`.execute(db);
      return {
        counters: Object.fromEntries(counters.map((c) => [c.option_id, c.n])),
        recount: Object.fromEntries(recount.map((r) => [r.option_id, r.n])),
        total: tally.total_votes,
        pending: tally.pending_review,
        validVotes: totals[0].valid,
        suspiciousVotes: totals[0].suspicious,
      };
    });
}

/** A local port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
