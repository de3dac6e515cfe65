import { Redis, type RedisOptions } from 'ioredis';

/**
 * An ioredis client. `failFast` clients (the API's) reject commands at once while
 * disconnected, so a vote gets 503 instead of waiting in an offline queue.
 */
export function createRedis(url: string, opts: { failFast?: boolean; name?: string } & RedisOptions = {}): Redis {
  const { failFast, ...rest } = opts;
  const client = new Redis(url, {
    connectionName: opts.name,
    maxRetriesPerRequest: failFast ? 1 : null,
    enableOfflineQueue: !failFast,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    lazyConnect: false,
    ...rest,
  });
  // Errors surface on the commands and in /readyz; an unhandled 'error' event must not crash the process.
  client.on('error', () => {});
  return client;
}

/** Waits for a client to connect, failing after a timeout. */
export async function waitForRedis(client: Redis, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out connecting to Redis')), timeoutMs);
    client.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Deletes every key of a namespace (its keys and its queues): test and bench runs clean up with it. */
export async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  for (const pattern of [`${namespace}:*`, `{${namespace}:polls}*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
}
