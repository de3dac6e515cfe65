import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type RedisOptions } from 'ioredis';

/** One seed of a cluster. */
export interface ClusterSeed {
  host: string;
  port: number;
}

/** A client of one Redis server or of a Redis Cluster: every process talks to Redis through one of these. */
export type RedisClient = Redis | Cluster;

/** Where Redis is: one server, or the seeds of a cluster (REDIS_CLUSTER_NODES wins over REDIS_URL). */
export interface RedisTarget {
  url: string;
  clusterNodes: ClusterSeed[] | null;
}

/** Parses `host:port,host:port` seeds; null for an empty setting. */
export function parseClusterNodes(raw: string | undefined): ClusterSeed[] | null {
  const seeds = (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (seeds.length === 0) return null;
  return seeds.map((seed) => {
    const m = /^\[?([^\]]+?)\]?:([0-9]{1,5})$/.exec(seed);
    if (!m) throw new Error(`REDIS_CLUSTER_NODES: "${seed}" is not host:port`);
    return { host: m[1], port: Number(m[2]) };
  });
}

/** The Redis target of a configuration. */
export function redisTargetOf(config: { REDIS_URL: string; REDIS_CLUSTER_NODES?: string }): RedisTarget {
  return { url: config.REDIS_URL, clusterNodes: parseClusterNodes(config.REDIS_CLUSTER_NODES) };
}

export interface RedisClientOptions {
  /** Reject commands at once while disconnected (the API's), so a vote gets 503 instead of waiting in a buffer. */
  failFast?: boolean;
  name?: string;
  enableAutoPipelining?: boolean;
  /** Cluster only: one subscriber connection per master for sharded pub/sub (SSUBSCRIBE). */
  shardedSubscriber?: boolean;
  /** Extra options of each server connection (tests). */
  redisOptions?: RedisOptions;
}

const retryStrategy = (times: number) => Math.min(times * 200, 2000);

/** A client of the target; its 'error' events are swallowed (they surface on commands and in /readyz). */
export function createRedis(target: RedisTarget | string, opts: RedisClientOptions = {}): RedisClient {
  const t = typeof target === 'string' ? { url: target, clusterNodes: null } : target;
  const serverOptions: RedisOptions = {
    connectionName: opts.name,
    maxRetriesPerRequest: opts.failFast ? 1 : null,
    enableOfflineQueue: !opts.failFast,
    retryStrategy,
    ...opts.redisOptions,
  };
  let client: RedisClient;
  if (t.clusterNodes) {
    client = new Cluster(t.clusterNodes, {
      redisOptions: serverOptions,
      enableOfflineQueue: !opts.failFast,
      enableAutoPipelining: opts.enableAutoPipelining ?? false,
      scaleReads: 'master',
      shardedSubscribers: opts.shardedSubscriber ?? false,
      // A failover moves slots within a few seconds: ask again soon, and keep asking.
      clusterRetryStrategy: retryStrategy,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 300,
      retryDelayOnTryAgain: 100,
      retryDelayOnMoved: 0,
      maxRedirections: 16,
      slotsRefreshTimeout: 2000,
      slotsRefreshInterval: 2000,
    });
  } else {
    client = new Redis(t.url, { ...serverOptions, enableAutoPipelining: opts.enableAutoPipelining ?? false });
  }
  client.on('error', () => {});
  return client;
}

/** Resolves once the client is ready, or after `timeoutMs` (the readiness check then tells why). */
export function whenReady(client: RedisClient, timeoutMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    client.once('ready', done);
  });
}

/** The clients of each master (the client itself on a single server): for SCAN, INFO and CONFIG, which act per server. */
export function serversOf(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** Whether every master answers (readiness: on a cluster a vote may land on any of them). */
export async function pingEveryMaster(client: RedisClient): Promise<boolean> {
  if (client.status !== 'ready') return false;
  const servers = serversOf(client);
  if (servers.length === 0) return false;
  await Promise.all(servers.map((s) => s.ping()));
  return true;
}

/** The connection that owns `key`'s slot: commands such as WAIT must run on the connection that wrote. */
export function connectionFor(client: RedisClient, key: string): Redis {
  if (!(client instanceof Cluster)) return client;
  const owner = client.slots[calculateSlot(key)]?.[0];
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  if (!node) throw new Error(`no connection to the master of ${key}`);
  return node;
}

/** Deletes every key of a namespace (its keys and its queues) on every master: test and bench runs clean up with it. */
export async function deleteNamespace(redis: RedisClient, namespace: string): Promise<void> {
  for (const server of serversOf(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
      // One key per command: keys of one scan page live in many slots.
      await Promise.all(keys.map((k) => server.unlink(k)));
      cursor = next;
    } while (cursor !== '0');
  }
}
