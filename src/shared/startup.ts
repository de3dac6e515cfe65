import pg from 'pg';
import { Redis } from 'ioredis';

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
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
 * what to start) instead of a stack trace when one is unreachable.
 */
export async function ensureBackingServices(
  role: string,
  { databaseUrl, redisUrl }: { databaseUrl?: string; redisUrl?: string },
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
  if (redisUrl) {
    const client = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
    let lastError: Error | null = null;
    client.on('error', (err) => (lastError = err));
    try {
      await client.connect();
      const policy = await client.config('GET', 'maxmemory-policy').catch(() => null);
      const value = Array.isArray(policy) ? policy[1] : null;
      if (value && value !== 'noeviction') {
        console.warn(
          `[${role}] WARNING: Redis maxmemory-policy is "${value}", not "noeviction": under memory pressure Redis may evict queued votes. Set maxmemory-policy noeviction.`,
        );
      }
    } catch (err) {
      problems.push(`cannot reach Redis at ${redact(redisUrl)} (${(lastError ?? (err as Error)).message}). ${startHint('Redis', redisUrl)}`);
    } finally {
      client.disconnect();
    }
  }
  if (problems.length) {
    for (const p of problems) console.error(`[${role}] ${p}`);
    process.exit(1);
  }
}
