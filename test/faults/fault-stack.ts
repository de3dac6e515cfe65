import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { createDb } from '../../src/db/client.js';
import type { DB } from '../../src/db/schema.js';
import { createPgCluster, startRedisServer, type PgCluster, type RedisServer } from '../helpers/fault-servers.js';
import { defineRole, type RoleKind, type RoleProcess } from '../helpers/processes.js';
import { call, freePort, JWT_SECRET, tokenFor } from '../helpers/stack.js';

/**
 * The whole service on private servers: its own PostgreSQL cluster and Redis server, and
 * every role as an OS process. Nothing is shared with other test runs or colleagues.
 */
export interface FaultStack {
  pg: PgCluster;
  redis: RedisServer;
  /** A direct connection to the service's database, for the verifier. */
  db: Kysely<DB>;
  databaseUrl: string;
  /**
   * The environment every role starts with (read at each start): add to it, e.g.
   * `REDIS_CLUSTER_NODES`, and restart the roles to move them.
   */
  env: Record<string, string>;
  api: RoleProcess;
  workers: RoleProcess;
  realtime: RoleProcess;
  roles: RoleProcess[];
  /** Where the roles' logs are. */
  logDir: string;
  /** Restarts whatever a failed scenario left stopped: PostgreSQL, Redis, any role. */
  ensureRunning(): Promise<void>;
  /** Kills every role and server and deletes the cluster and the temp files (the logs too, unless `keepLogs`). */
  close(opts?: { keepLogs?: boolean }): Promise<void>;
}

/** The settings that let a load test's many voters through while keeping the product's defaults elsewhere. */
export const LOAD_ENV: Record<string, string> = {
  TRUST_PROXY: 'loopback',
  FRAUD_DEFENCES: 'off',
  VOTES_PER_IP_PER_POLL_PER_HOUR: '1000000',
  PREFIX_VOTES_LIMIT: '1000000',
  WS_MAX_CONNECTIONS_PER_IP: '10000',
};

/** Starts the servers and the three roles; `env` adds to or overrides the roles' environment. */
export async function startFaultStack(opts: { env?: Record<string, string>; redis?: Parameters<typeof startRedisServer>[0] } = {}): Promise<FaultStack> {
  const pg = await createPgCluster();
  const logDir = mkdtempSync(path.join(tmpdir(), 'faults-logs-'));
  let redis: RedisServer | null = null;
  let db: Kysely<DB> | null = null;
  try {
    redis = await startRedisServer(opts.redis);
    const databaseUrl = await pg.createDatabase();
    db = createDb(databaseUrl, 4);
    const env: Record<string, string> = {
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      REDIS_NAMESPACE: `f${randomBytes(3).toString('hex')}`,
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      ...LOAD_ENV,
      ...opts.env,
    };
    const role = async (kind: RoleKind) => defineRole({ name: kind, kind, port: await freePort(), env: () => env, logFile: path.join(logDir, `${kind}.log`) });
    const [api, workers, realtime] = [await role('api'), await role('workers'), await role('realtime')];
    const roles = [api, workers, realtime];
    const stack: FaultStack = {
      pg,
      redis,
      db,
      databaseUrl,
      env,
      api,
      workers,
      realtime,
      roles,
      logDir,
      async ensureRunning() {
        if (!(await pg.isUp())) await pg.start();
        if (!stack.redis.running) await stack.redis.start();
        await Promise.all(roles.map((r) => r.start()));
      },
      async close({ keepLogs = false } = {}) {
        await Promise.allSettled(roles.map((r) => r.kill()));
        await db?.destroy().catch(() => {});
        await stack.redis.destroy().catch(() => {});
        await pg.drop().catch((err) => console.error(`could not drop cluster ${pg.name}: ${(err as Error).message}`));
        if (keepLogs) console.error(`fault suite: role logs kept in ${logDir}`);
        else rmSync(logDir, { recursive: true, force: true });
      },
    };
    await Promise.all(roles.map((r) => r.start()));
    return stack;
  } catch (err) {
    await db?.destroy().catch(() => {});
    await redis?.destroy().catch(() => {});
    await pg.drop().catch(() => {});
    rmSync(logDir, { recursive: true, force: true });
    throw err;
  }
}

export interface LoadPoll {
  poll_id: number;
  poll_type: 'SINGLE_CHOICE' | 'MULTIPLE_CHOICE' | 'RANKED' | 'RATING';
  allow_change_vote: boolean;
  options: number[];
  max_choices: number;
}

/**
 * One poll of each type, plus a SINGLE_CHOICE poll whose voters may change their vote:
 * the mix a fault scenario runs its load against.
 */
export async function createLoadPolls(stack: FaultStack): Promise<LoadPoll[]> {
  const token = await tokenFor(1);
  const specs = [
    { poll_type: 'SINGLE_CHOICE', options: 3 },
    { poll_type: 'MULTIPLE_CHOICE', options: 4, settings: { max_choices: 3 } },
    { poll_type: 'RANKED', options: 4 },
    { poll_type: 'RATING', options: 3, settings: { rating_min: 1, rating_max: 5 } },
    { poll_type: 'SINGLE_CHOICE', options: 3, allow_change_vote: true },
  ] as const;
  const polls: LoadPoll[] = [];
  for (const spec of specs) {
    const res = await call({ url: stack.api.url }, 'POST', '/api/v1/polls', {
      token,
      body: {
        question: `Fault suite ${spec.poll_type}${'allow_change_vote' in spec ? ' (changes)' : ''}`,
        poll_type: spec.poll_type,
        options: Array.from({ length: spec.options }, (_, i) => ({ text: `option ${i + 1}` })),
        allow_change_vote: 'allow_change_vote' in spec,
        status: 'ACTIVE',
        settings: { captcha: 'off', ...('settings' in spec ? spec.settings : {}) },
      },
    });
    if (res.status !== 201) throw new Error(`creating a ${spec.poll_type} poll: ${res.status} ${JSON.stringify(res.body)}`);
    polls.push({
      poll_id: res.body.poll_id,
      poll_type: spec.poll_type,
      allow_change_vote: res.body.allow_change_vote,
      options: res.body.options.map((o: { option_id: number }) => o.option_id),
      max_choices: res.body.settings.max_choices,
    });
  }
  return polls;
}
