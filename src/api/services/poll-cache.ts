import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { findPoll, type PollWithOptions } from '../../db/polls.js';
import type { DB } from '../../db/schema.js';
import type { RedisKeys } from '../../shared/redis-keys.js';

/** What the vote path needs to know about a poll, kept in memory for a moment. */
export interface CachedPoll extends PollWithOptions {
  optionIds: ReadonlySet<number>;
}

/**
 * A per-process read-through cache of polls for the hot path. Entries live `ttlMs`; any
 * process that changes a poll broadcasts its id and every process drops it at once.
 */
export function createPollCache({ db, subscriber, keys, ttlMs }: { db: Kysely<DB>; subscriber?: Redis; keys: RedisKeys; ttlMs: number }) {
  const entries = new Map<number, { at: number; value: Promise<CachedPoll | null> }>();

  if (subscriber) {
    void subscriber.subscribe(keys.pollInvalidations).catch(() => {});
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === keys.pollInvalidations) entries.delete(Number(message));
    });
  }

  async function load(pollId: number): Promise<CachedPoll | null> {
    const found = await findPoll(db, pollId);
    return found ? { ...found, optionIds: new Set(found.options.map((o) => o.option_id)) } : null;
  }

  return {
    /** The poll, at most `ttlMs` old. */
    get(pollId: number): Promise<CachedPoll | null> {
      const now = Date.now();
      const hit = entries.get(pollId);
      if (hit && now - hit.at < ttlMs) return hit.value;
      const value = load(pollId);
      entries.set(pollId, { at: now, value });
      // A failed load must not be cached.
      value.catch(() => entries.delete(pollId));
      if (entries.size > 10_000) entries.delete(entries.keys().next().value!);
      return value;
    },
    invalidate(pollId: number) {
      entries.delete(pollId);
    },
  };
}
export type PollCache = ReturnType<typeof createPollCache>;
