import type { Kysely } from 'kysely';
import { assertCanReadPoll, assertCanSeeResults } from '../../domain/poll-access.js';
import { loadResults, type ResultsState } from '../../db/results.js';
import type { DB } from '../../db/schema.js';
import { pollNotFound } from '../../shared/errors.js';
import type { Principal } from '../auth.js';
import type { PollCache } from './poll-cache.js';

/** The results body of the contract. */
export function toResultsResponse(s: ResultsState) {
  return {
    poll_id: s.poll_id,
    poll_type: s.poll_type,
    status: s.status,
    total_votes: s.total_votes,
    pending_review: s.pending_review,
    options: s.options,
    updated_at: s.updated_at.toISOString(),
  };
}

/**
 * Results of a poll. Reads are micro-cached per process for `cacheMs`: a viral poll's
 * results page is requested far more often than its counts change in a way anyone sees.
 */
export function createResultsService({ db, polls, cacheMs }: { db: Kysely<DB>; polls: PollCache; cacheMs: number }) {
  const cache = new Map<number, { at: number; value: Promise<ResultsState | undefined> }>();

  function stored(pollId: number): Promise<ResultsState | undefined> {
    const hit = cache.get(pollId);
    const now = Date.now();
    if (hit && now - hit.at < cacheMs) return hit.value;
    const value = loadResults(db, [pollId]).then((m) => m.get(pollId));
    value.catch(() => cache.delete(pollId));
    cache.set(pollId, { at: now, value });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value!);
    return value;
  }

  return {
    async get(pollId: number, caller: Principal | null, key: string | undefined) {
      const cached = await polls.get(pollId);
      if (!cached) throw pollNotFound();
      const facts = { ...cached.poll, show_results_before_close: cached.poll.settings.show_results_before_close };
      assertCanReadPoll(facts, caller, key);
      const state = await stored(pollId);
      if (!state) throw pollNotFound();
      // Status from the stored row, not the cache, so a just-closed poll shows its results.
      assertCanSeeResults({ ...facts, status: state.status }, caller);
      return toResultsResponse(state);
    },
  };
}
export type ResultsService = ReturnType<typeof createResultsService>;
