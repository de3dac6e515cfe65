import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createDb } from '../../src/db/client.js';
import { createDatabaseIfMissing, migrateToLatest } from '../../src/db/migrate.js';
import { trackChild, withParentDeathSignal } from './processes.js';
import { eventually, freePort } from './stack.js';

const run = promisify(execFile);

/*
 * Private backing servers for fault tests: a PostgreSQL cluster and Redis servers that the
 * test starts, stops, kills and restarts at will. Nothing here ever touches the shared
 * PostgreSQL (5432) or Redis (6379): every server is created on a free port under a name
 * unique to this run, and dropped at the end.
 */

const PG_VERSION = 15;
const CLUSTER_PREFIX = 'faults';
/** A leftover cluster older than this, whose creating process is gone, was left by a crashed run. */
const STALE_AFTER_MS = 30 * 60_000;

async function ctl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(args[0], args.slice(1), { timeout: 120_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A private PostgreSQL cluster (Debian postgresql-common) on its own port. */
export interface PgCluster {
  name: string;
  port: number;
  /** A URL for database `db` on this cluster (user postgres, trust auth). */
  url(db?: string): string;
  start(): Promise<void>;
  /** `fast` rolls back sessions and shuts down cleanly; `immediate` is a crash (recovery at the next start). */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  isUp(): Promise<boolean>;
  /** A fresh database cloned from the migrated template. */
  createDatabase(name?: string): Promise<string>;
  /** Stops and deletes the cluster, its data and its configuration. */
  drop(): Promise<void>;
}

/**
 * Drops clusters left behind by runs that were killed before their teardown: named by this
 * harness, created by a process that no longer exists, and older than any run takes.
 */
export async function dropStaleClusters(): Promise<void> {
  const out = await ctl('pg_lsclusters', '--no-header').catch(() => '');
  for (const line of out.split('\n')) {
    const [version, name] = line.trim().split(/\s+/);
    const m = new RegExp(`^${CLUSTER_PREFIX}_(\\d+)_[0-9a-f]+$`).exec(name ?? '');
    if (!m || Number(version) !== PG_VERSION || processAlive(Number(m[1]))) continue;
    let age = 0;
    try {
      age = Date.now() - statSync(`/etc/postgresql/${PG_VERSION}/${name}`).mtimeMs;
    } catch {
      continue;
    }
    if (age > STALE_AFTER_MS) await ctl('pg_dropcluster', '--stop', String(PG_VERSION), name).catch(() => {});
  }
}

/**
 * Creates, starts and migrates a PostgreSQL 15 cluster on a free port: trust authentication
 * for local sockets and loopback, a template database `polls_tpl` migrated to the latest
 * schema (each createDatabase clones it). Must run as root (pg_createcluster).
 */
export async function createPgCluster(opts: { settings?: Record<string, string> } = {}): Promise<PgCluster> {
  await dropStaleClusters();
  const name = `${CLUSTER_PREFIX}_${process.pid}_${randomBytes(3).toString('hex')}`;
  // Values as postgresql.conf spells them: strings in single quotes.
  const settings: Record<string, string> = { max_connections: '300', listen_addresses: "'127.0.0.1'", ...opts.settings };
  const port = await freePort();
  const version = String(PG_VERSION);
  await ctl('pg_createcluster', version, name, '-p', String(port), '--start-conf', 'manual', '--', '--auth=trust');
  let dropped = false;
  const cluster: PgCluster = {
    name,
    port,
    url: (db = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${db}`,
    async start() {
      await ctl('pg_ctlcluster', '--skip-systemctl-redirect', version, name, 'start');
      await eventually(() => cluster.isUp(), 60_000, `PostgreSQL cluster ${name} accepting connections`);
    },
    async stop(mode = 'fast') {
      await ctl('pg_ctlcluster', '--skip-systemctl-redirect', `--mode=${mode}`, version, name, 'stop');
    },
    async isUp() {
      const client = new pg.Client({ connectionString: cluster.url(), connectionTimeoutMillis: 2000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    },
    async createDatabase(db = `polls_${randomBytes(4).toString('hex')}`) {
      const client = new pg.Client({ connectionString: cluster.url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${db} TEMPLATE polls_tpl`);
      } finally {
        await client.end();
      }
      return cluster.url(db);
    },
    async drop() {
      if (dropped) return;
      dropped = true;
      await ctl('pg_dropcluster', '--stop', version, name);
    },
  };
  try {
    // Debian's postgresql.conf includes conf.d/.
    writeFileSync(
      `/etc/postgresql/${version}/${name}/conf.d/faults.conf`,
      Object.entries(settings)
        .map(([k, v]) => `${k} = ${v}\n`)
        .join(''),
    );
    // Spelled out rather than left to initdb's --auth: nothing but trust, and only locally.
    writeFileSync(`/etc/postgresql/${version}/${name}/pg_hba.conf`, 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n');
    await cluster.start();
    await createDatabaseIfMissing(cluster.url('polls_tpl'));
    const db = createDb(cluster.url('polls_tpl'), 1);
    try {
      await migrateToLatest(db);
    } finally {
      await db.destroy();
    }
  } catch (err) {
    await cluster.drop().catch(() => {});
    throw err;
  }
  return cluster;
}

/** A private redis-server child process on a fixed port and data directory, across restarts. */
export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  readonly running: boolean;
  /** Starts it (again) on the same port and data directory; resolves once it answers PING (AOF loaded). */
  start(): Promise<void>;
  /** SIGTERM: Redis flushes its append-only file and exits cleanly. */
  stop(): Promise<void>;
  /** SIGKILL: a crash, no chance to flush anything. */
  kill(): Promise<void>;
  /** A client on this server (the caller disconnects it). */
  client(): Redis;
  /** FLUSHALL: every key gone, as after an operator mistake or a failover to an empty replica. */
  flushAll(): Promise<void>;
  /** Stops the server if it runs and deletes its data directory. */
  destroy(): Promise<void>;
}

/**
 * Starts a redis-server as a child process: no RDB snapshots, AOF as asked (fsync every
 * second by default, like production), `noeviction`, data in a private temp directory.
 * `args` adds or overrides options (e.g. `['--cluster-enabled', 'yes']`).
 */
export async function startRedisServer(opts: { appendonly?: boolean; appendfsync?: 'always' | 'everysec' | 'no'; args?: string[] } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'faults-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    opts.appendonly === false ? 'no' : 'yes',
    '--appendfsync',
    opts.appendfsync ?? 'everysec',
    '--maxmemory-policy',
    'noeviction',
    '--dir',
    dir,
    '--daemonize',
    'no',
    ...(opts.args ?? []),
  ];
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const log = createWriteStream(path.join(dir, 'redis.log'), { flags: 'a' });

  const ping = async () => {
    const client = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000 });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  };
  const signal = async (sig: NodeJS.Signals) => {
    if (!child) return;
    const c = child;
    child = null;
    c.kill(sig);
    await exited;
  };

  const server: RedisServer = {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== null;
    },
    async start() {
      if (child) return;
      const [cmd, ...rest] = withParentDeathSignal('redis-server', args);
      const c = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
      trackChild(c);
      c.stdout!.pipe(log, { end: false });
      c.stderr!.pipe(log, { end: false });
      child = c;
      exited = new Promise((resolve) => c.once('exit', () => resolve()));
      let gone = false;
      void exited.then(() => {
        gone = true;
        if (child === c) child = null;
      });
      await eventually(
        async () => {
          if (gone) throw new Error(`redis-server on port ${port} exited at start (see ${dir}/redis.log)`);
          return ping();
        },
        60_000,
        `redis-server on port ${port}`,
      );
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    client() {
      const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      client.on('error', () => {});
      return client;
    },
    async flushAll() {
      const client = server.client();
      try {
        await client.flushall();
      } finally {
        client.disconnect();
      }
    },
    async destroy() {
      await server.kill();
      log.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
