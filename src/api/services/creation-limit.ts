import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { rateLimited } from '../../shared/errors.js';
import type { RedisClient } from '../../shared/redis.js';

/** Consumes one poll creation of a user; 429 RATE_LIMITED with Retry-After past `perHour` (0: no limit). */
export type CreationLimit = (userId: number) => Promise<void>;

export function createCreationLimit(redis: RedisClient, keyPrefix: string, perHour: number): CreationLimit {
  if (perHour === 0) return async () => {};
  // One key per user (`prefix:user`) and a one-key script: valid on a Redis Cluster, spread over its masters.
  const limiter = new RateLimiterRedis({ storeClient: redis, keyPrefix, points: perHour, duration: 3600 });
  return async (userId) => {
    try {
      await limiter.consume(String(userId));
    } catch (err) {
      if (err instanceof RateLimiterRes) throw rateLimited(err.msBeforeNext / 1000);
      throw err;
    }
  };
}
