import type { Kysely } from 'kysely';
import { findPoll } from '../db/polls.js';
import type { DB } from '../db/schema.js';
import { assertCanReadPoll, assertCanSeeResults, type Caller, type PollAccessFacts } from '../domain/poll-access.js';
import { AppError } from '../shared/errors.js';

/** Who watches: the verified caller (null when anonymous) and the key given for a PRIVATE poll. */
export interface Viewer {
  caller: Caller | null;
  key: string | undefined;
}

/** A refused watch, as the WebSocket close code and reason the client sees. */
export interface Refusal {
  code: number;
  reason: string;
}

/** The contract's close codes for the access rules (4404 for what does not exist for this viewer, 4403 for the rest); null when the viewer may watch. */
export function refusalFor(facts: PollAccessFacts | null, viewer: Viewer): Refusal | null {
  if (!facts) return { code: 4404, reason: 'POLL_NOT_FOUND' };
  try {
    assertCanReadPoll(facts, viewer.caller, viewer.key);
    assertCanSeeResults(facts, viewer.caller);
    return null;
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    // A DRAFT of someone else and a PRIVATE poll without its key answer exactly as a poll that
    // does not exist: a different code would tell which ids are drafts or private polls.
    return err.code === 'POLL_NOT_FOUND' ? { code: 4404, reason: 'POLL_NOT_FOUND' } : { code: 4403, reason: err.code };
  }
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
  const entries = new Map<number, { at: number; pending: boolean; value: Promise<WatchFacts | null> }>();

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

  return {
    /** A poll's access facts (null when there is no such poll), at most `ttlMs` old. */
    get(pollId: number): Promise<WatchFacts | null> {
      const now = Date.now();
      const hit = entries.get(pollId);
      // A load in flight is shared even with a zero TTL: concurrent connects cost one lookup.
      if (hit && (hit.pending || now - hit.at < ttlMs)) return hit.value;
      const entry = { at: now, pending: true, value: load(pollId) };
      entries.set(pollId, entry);
      entry.value.then(
        () => (entry.pending = false),
        () => entries.get(pollId) === entry && entries.delete(pollId),
      );
      if (entries.size > 10_000) entries.delete(entries.keys().next().value!);
      return entry.value;
    },
    invalidate(pollId: number): void {
      entries.delete(pollId);
    },
  };
}
export type AccessFacts = ReturnType<typeof createAccessFacts>;
