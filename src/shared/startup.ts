import pg from 'pg';
import { Cluster, Redis } from 'ioredis';
import { serversOf, type RedisTarget } from './redis.js';

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** Whether Redis keeps an append-only file; null when it will not say (CONFIG and INFO both refused). */
async function appendOnly(client: Redis): Promise<boolean | null> {
  const config = await client.config('GET', 'appendonly').catch(() => null);
  if (Array.isArray(config) && typeof config[1] === 'string') return config[1] === 'yes';
  // Managed Redis often renames CONFIG; INFO still tells.
  const info = await client.info('persistence').catch(() => '');
  const m = /^aof_enabled:(\d)/m.exec(info);
  return m ? m[1] === '1' : null;
}

/**
 * What to do about an unreachable server. docker-compose.yml publishes neither PostgreSQL nor
 * Redis on the host, so `docker compose up -d postgres` would not help a process outside it;
 * inside compose, the services are named `postgres` and `redis`.
 */
export function startHint(kind: 'PostgreSQL' | 'Redis', url: string): string {
  const service = kind === 'PostgreSQL' ? 'postgres' : 'redis';
  const setting = kind === 'PostgreSQL' ? 'DATABASE_URL' : 'REDIS_URL';
  let host = '';
  try {
    host = new URL(url).hostname;
  } catch {
    // described by the URL itself
  }
  if (host === service) {
    return `Start ${kind}: under docker compose this is the \`${service}\` service (\`docker compose ps ${service}\`, \`docker compose logs ${service}\`).`;
  }
  return (
    `Start ${kind} there or set ${setting}` +
    (kind === 'PostgreSQL' ? ' (e.g. postgres://user:password@host:5432/polls)' : ' (e.g. redis://host:6379)') +
    `. The compose file's ${kind} is reachable only inside compose: \`docker compose up --build\` runs the whole stack with it.`
  );
}

/**
 * Checks PostgreSQL and Redis once at startup and exits with one clear line (which URL,
 * what to start) instead of a stack trace when one is unreachable; warns loudly when Redis may
 * lose queued votes (an eviction policy, or no append-only file).
 */
export async function ensureBackingServices(
  role: string,
  { databaseUrl, redisUrl, redis }: { databaseUrl?: string; redisUrl?: string; redis?: RedisTarget },
): Promise<void> {
  const problems: string[] = [];
  if (databaseUrl) {
    // Connect to the maintenance database: the app database may not exist before migrations.
    const url = new URL(databaseUrl);
    url.pathname = '/postgres';
    const client = new pg.Client({ connectionString: url.toString(), connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
    } catch (err) {
      problems.push(`cannot reach PostgreSQL at ${redact(databaseUrl)} (${(err as Error).message}). ${startHint('PostgreSQL', databaseUrl)}`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  const target = redis ?? (redisUrl ? { url: redisUrl, clusterNodes: null } : null);
  if (target) {
    const seeds = target.clusterNodes?.map((n) => `${n.host}:${n.port}`).join(',');
    const client = target.clusterNodes
      ? new Cluster(target.clusterNodes, {
          lazyConnect: true,
          clusterRetryStrategy: () => null,
          redisOptions: { connectTimeout: 3000, maxRetriesPerRequest: 0 },
        })
      : new Redis(target.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
    let lastError: Error | null = null;
    client.on('error', (err) => (lastError = err));
    try {
      await client.connect();
      // Every master of a cluster: each holds queued votes of its own.
      for (const server of serversOf(client)) {
        const where = seeds ? ` (${server.options.host}:${server.options.port})` : '';
        const policy = await server.config('GET', 'maxmemory-policy').catch(() => null);
        const value = Array.isArray(policy) ? policy[1] : null;
        if (value && value !== 'noeviction') {
          console.warn(
            `[${role}] WARNING: Redis${where} maxmemory-policy is "${value}", not "noeviction": under memory pressure Redis may evict queued votes. Set maxmemory-policy noeviction.`,
          );
        }
        if ((await appendOnly(server)) === false) {
          console.warn(
            `[${role}] WARNING: Redis${where} has no append-only file (appendonly no): if Redis stops or restarts, the votes it has queued but not yet handed to PostgreSQL are lost, though they were answered 202. Set appendonly yes with appendfsync everysec (see the README's production checklist).`,
          );
        }
      }
    } catch (err) {
      const at = seeds ? `the Redis Cluster at ${seeds}` : `Redis at ${redact(target.url)}`;
      const hint = seeds ? 'Start the cluster or set REDIS_CLUSTER_NODES to seeds that answer.' : startHint('Redis', target.url);
      problems.push(`cannot reach ${at} (${(lastError ?? (err as Error)).message}). ${hint}`);
    } finally {
      client.disconnect();
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`[${role}] ${p}`);
    process.exit(1);
  }
}
