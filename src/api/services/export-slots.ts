import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../../shared/redis.js';

// One sorted set per caller (one key: fine on Redis Cluster): running exports by the time their
// slot lapses. Lapsed slots (a process that died mid-export) are dropped before counting.
const ACQUIRE = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nowMs)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], nowMs + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1`;

/**
 * How many CSV exports one caller may run at once, over every API process: a few slow readers
 * must not hold every export connection while others wait. A slot lasts at most `ttlMs` (the
 * longest an export may run), so one lost with its process frees itself.
 */
export function createExportSlots({ redis, key, limit, ttlMs }: { redis: RedisClient; key: (userId: number) => string; limit: number; ttlMs: number }) {
  return {
    /** Takes a slot for the caller: the release function, or null when the caller already runs `limit` exports. */
    async acquire(userId: number): Promise<(() => void) | null> {
      const id = randomUUID();
      const taken = await redis.eval(ACQUIRE, 1, key(userId), limit, ttlMs, id);
      if (taken !== 1) return null;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        redis.zrem(key(userId), id).catch(() => {});
      };
    },
  };
}
export type ExportSlots = ReturnType<typeof createExportSlots>;
