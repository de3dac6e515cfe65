import type { Kysely } from 'kysely';
import { findPoll, type PollWithOptions } from '../../db/polls.js';
import type { DB } from '../../db/schema.js';
import type { RedisClient } from '../../shared/redis.js';
import { partitionTags, type RedisKeys } from '../../shared/redis-keys.js';
import { createTtlCache } from '../../shared/ttl-cache.js';

/** What the vote path needs to know about a poll, kept in memory for a moment. */
export interface CachedPoll extends PollWithOptions {
  optionIds: ReadonlySet<number>;
  /** The hash tags of the poll's partitions. */
  tags: string[];
}

/**
 * A per-process read-through cache of polls for the hot path. Entries live `ttlMs`; any
 * process that changes a poll broadcasts its id and every process drops it at once. While
 * PostgreSQL is unreachable the last known poll keeps serving votes for up to `staleMs` (they
 * queue in Redis and are committed once it is back): a close is still honoured, through the
 * flag the close sets where votes are admitted, and so is the end time.
 */
export function createPollCache({
  db,
  subscriber,
  keys,
  ttlMs,
  staleMs = 0,
}: {
  db: Kysely<DB>;
  subscriber?: RedisClient;
  keys: RedisKeys;
  ttlMs: number;
  staleMs?: number;
}) {
  const cache = createTtlCache<number, CachedPoll | null>({
    ttlMs,
    staleOnErrorMs: staleMs,
    load: async (pollId) => {
      const found = await findPoll(db, pollId);
      return found && { ...found, optionIds: new Set(found.options.map((o) => o.option_id)), tags: partitionTags(pollId, found.poll.partitions) };
    },
  });

  if (subscriber) {
    void subscriber.ssubscribe(keys.pollInvalidations).catch(() => {});
    subscriber.on('smessage', (channel: string, message: string) => {
      if (channel === keys.pollInvalidations) cache.delete(Number(message));
    });
  }

  return {
    /** The poll (null when there is no such poll), at most `ttlMs` old; rejects when it cannot be known. */
    get: (pollId: number): Promise<CachedPoll | null> => cache.get(pollId),
  };
}
export type PollCache = ReturnType<typeof createPollCache>;
