import { LRUCache } from 'lru-cache';

/**
 * A read-through cache of values that may be `ttlMs` old, loaded once per key however many
 * callers ask at once. With `staleOnErrorMs`, a failed reload serves the last value while it is
 * at most that much older than its TTL (the vote path riding out a PostgreSQL outage).
 */
export function createTtlCache<K extends {}, V>(opts: {
  ttlMs: number;
  load: (key: K) => Promise<V>;
  max?: number;
  staleOnErrorMs?: number;
  /** A value's lifetime from how long it took to load (at least `ttlMs`): costly values are kept longer. */
  ttlFor?: (loadMs: number) => number;
}) {
  const staleMs = opts.staleOnErrorMs ?? 0;
  const ttl = Math.max(1, opts.ttlMs);
  const cache = new LRUCache<K, { value: V; at: number; ttl: number }>({
    max: opts.max ?? 10_000,
    ttl,
    allowStaleOnFetchRejection: staleMs > 0,
    noDeleteOnFetchRejection: staleMs > 0,
    fetchMethod: async (key, _stale, { options }) => {
      const started = Date.now();
      const value = await opts.load(key);
      const at = Date.now();
      const own = opts.ttlFor ? Math.max(ttl, Math.ceil(opts.ttlFor(at - started))) : ttl;
      options.ttl = own;
      return { value, at, ttl: own };
    },
  });
  return {
    /** The value of `key`, at most `ttlMs` old (or, while reloads fail, at most `staleOnErrorMs` older). */
    async get(key: K): Promise<V> {
      const entry = await cache.fetch(key);
      if (!entry || Date.now() - entry.at > entry.ttl + staleMs) throw new Error('could not load a cached value, and no recent one is kept');
      return entry.value;
    },
    /** Drops a key at once (its source changed). */
    delete(key: K): void {
      cache.delete(key);
    },
    /** Drops every key (the change feed was interrupted). */
    clear(): void {
      cache.clear();
    },
  };
}
