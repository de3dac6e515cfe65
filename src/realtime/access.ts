import type { Kysely } from 'kysely';
import { findPoll } from '../db/polls.js';
import type { DB } from '../db/schema.js';
import { readRefusal, resultsRefusal, type Caller, type PollAccessFacts } from '../domain/poll-access.js';
import { createTtlCache } from '../shared/ttl-cache.js';
import { CLOSE_CODE, type WatchRefusalCode } from './close-codes.js';

/** Who watches: the verified caller (null when anonymous) and the key given for a PRIVATE poll. */
export interface Viewer {
  caller: Caller | null;
  key: string | undefined;
}

/** A refused watch, as the WebSocket close code and reason the client sees. */
export interface CloseRefusal {
  code: number;
  reason: string;
}

export const refusalOf = (code: WatchRefusalCode): CloseRefusal => ({ code: CLOSE_CODE[code], reason: code });

/** The access rules' refusal of a watcher as its close code (see CLOSE_CODE); null when the viewer may watch. */
export function refusalFor(facts: PollAccessFacts | null, viewer: Viewer): CloseRefusal | null {
  if (!facts) return refusalOf('POLL_NOT_FOUND');
  const refusal = readRefusal(facts, viewer.caller, viewer.key) ?? resultsRefusal(facts, viewer.caller);
  return refusal ? refusalOf(refusal.code) : null;
}

/** What the gateway knows of a poll to admit a watcher: the access rules and the browser origins that may embed it. */
export interface WatchFacts extends PollAccessFacts {
  embed_origins: readonly string[];
}

/**
 * The access facts of polls, kept `ttlMs` so that a crowd connecting to one poll costs one
 * lookup; `invalidate` drops a poll at once when it changes.
 */
export function createAccessFacts(db: Kysely<DB>, ttlMs: number) {
  async function load(pollId: number): Promise<WatchFacts | null> {
    const found = await findPoll(db, pollId);
    if (!found) return null;
    const { poll } = found;
    return {
      status: poll.status,
      visibility: poll.visibility,
      creator_id: poll.creator_id,
      org_id: poll.org_id,
      access_key: poll.access_key,
      show_results_before_close: poll.settings.show_results_before_close,
      embed_origins: poll.settings.embed_origins ?? [],
    };
  }

  // Loads in flight are shared even with a zero TTL: concurrent connects cost one lookup.
  const cache = createTtlCache<number, WatchFacts | null>({ ttlMs, load });
  return {
    /** A poll's access facts (null when there is no such poll), at most `ttlMs` old. */
    get: (pollId: number): Promise<WatchFacts | null> => cache.get(pollId),
    invalidate: (pollId: number): void => cache.delete(pollId),
  };
}
