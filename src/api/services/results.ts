import type { Kysely } from 'kysely';
import { assertCanReadPoll, assertCanSeeResults } from '../../domain/poll-access.js';
import { loadResults, type ResultsState } from '../../db/results.js';
import type { DB } from '../../db/schema.js';
import { tabulateRanked } from '../../domain/tally/ranked.js';
import { BAYESIAN_PRIOR_WEIGHT, summarizeRatings } from '../../domain/tally/rating.js';
import { tiebreakSeedHash } from '../../domain/tally/seed.js';
import { pollNotFound } from '../../shared/errors.js';
import type { Principal } from '../auth.js';
import type { PollCache } from './poll-cache.js';

/** The results body of the contract; RANKED and RATING polls are tabulated here, so call it once per state. */
export function toResultsResponse(s: ResultsState) {
  return {
    poll_id: s.poll_id,
    poll_type: s.poll_type,
    status: s.status,
    total_votes: s.total_votes,
    pending_review: s.pending_review,
    options: s.options,
    ...(s.ranked_input && {
      ranked: {
        ...tabulateRanked(s.ranked_input),
        seed_hash: tiebreakSeedHash(s.ranked_input.seed),
        // Revealed only once no ballot can be cast with knowledge of how ties will fall.
        ...(s.status === 'CLOSED' && { seed: s.ranked_input.seed }),
      },
    }),
    ...(s.rating_input && { rating: { ...summarizeRatings(s.rating_input), bayesian_prior_weight: BAYESIAN_PRIOR_WEIGHT } }),
    updated_at: s.updated_at.toISOString(),
  };
}
export type ResultsResponse = ReturnType<typeof toResultsResponse>;

/**
 * Results of a poll. Reads are micro-cached per process for `cacheMs`: a viral poll's
 * results page is requested far more often than its counts change in a way anyone sees.
 */
export function createResultsService({ db, polls, cacheMs }: { db: Kysely<DB>; polls: PollCache; cacheMs: number }) {
  // Caches the finished body, not the stored state: a ranked tabulation then runs once per cache period.
  const cache = new Map<number, { at: number; value: Promise<ResultsResponse | undefined> }>();

  function stored(pollId: number): Promise<ResultsResponse | undefined> {
    const hit = cache.get(pollId);
    const now = Date.now();
    if (hit && now - hit.at < cacheMs) return hit.value;
    const value = loadResults(db, [pollId]).then((m) => {
      const state = m.get(pollId);
      return state && toResultsResponse(state);
    });
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
      const body = await stored(pollId);
      if (!body) throw pollNotFound();
      // Status from the stored row, not the cache, so a just-closed poll shows its results.
      assertCanSeeResults({ ...facts, status: body.status }, caller);
      return body;
    },
  };
}
export type ResultsService = ReturnType<typeof createResultsService>;
