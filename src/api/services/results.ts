import type { Kysely } from 'kysely';
import { assertCanReadPoll, assertCanSeeResults } from '../../domain/poll-access.js';
import { loadResults, type ResultsState } from '../../db/results.js';
import type { DB } from '../../db/schema.js';
import { BAYESIAN_PRIOR_WEIGHT } from '../../domain/tally/rating.js';
import { tiebreakSeedHash } from '../../domain/tally/seed.js';
import { pollNotFound } from '../../shared/errors.js';
import { createTtlCache } from '../../shared/ttl-cache.js';
import { tabulator } from '../../shared/tabulations.js';
import type { Principal } from '../../shared/auth.js';
import type { PollCache } from './poll-cache.js';

/** The results body of the contract; RANKED and RATING polls are tabulated once per seq (the process's tabulator). */
export function toResultsResponse(s: ResultsState) {
  const ranked = tabulator.ranked(s);
  const rating = tabulator.rating(s);
  return {
    poll_id: s.poll_id,
    poll_type: s.poll_type,
    status: s.status,
    total_votes: s.total_votes,
    pending_review: s.pending_review,
    options: s.options,
    ...(s.ranked_input &&
      ranked && {
        ranked: {
          ...ranked,
          seed_hash: tiebreakSeedHash(s.ranked_input.seed),
          // Revealed only once no ballot can be cast with knowledge of how ties will fall.
          ...(s.status === 'CLOSED' && { seed: s.ranked_input.seed }),
        },
      }),
    ...(rating && { rating: { ...rating, bayesian_prior_weight: BAYESIAN_PRIOR_WEIGHT } }),
    updated_at: s.updated_at.toISOString(),
  };
}
export type ResultsResponse = ReturnType<typeof toResultsResponse>;

/**
 * Results of a poll. Reads are micro-cached per process for `cacheMs`: a viral poll's
 * results page is requested far more often than its counts change in a way anyone sees. A poll
 * whose results take long to build (a big RANKED poll: reading its ballot groups and the
 * tabulation) is re-read at most once per `costFactor` times what the last build took, so that
 * readers of one expensive poll hold at most a fraction of the process (the API's event loop is
 * also the vote path's); its answer is then up to that old. One build at a time per poll, shared
 * by every reader that arrives meanwhile, and the tabulation itself runs once per seq.
 */
export function createResultsService({ db, polls, cacheMs, costFactor = 4 }: { db: Kysely<DB>; polls: PollCache; cacheMs: number; costFactor?: number }) {
  const cache = createTtlCache<number, ResultsResponse | null>({
    ttlMs: cacheMs,
    ttlFor: (loadMs) => loadMs * costFactor,
    load: async (pollId) => {
      const state = (await loadResults(db, [pollId])).get(pollId);
      return state ? toResultsResponse(state) : null;
    },
  });

  return {
    async get(pollId: number, caller: Principal | null, key: string | undefined) {
      const cached = await polls.get(pollId);
      if (!cached) throw pollNotFound();
      const facts = { ...cached.poll, show_results_before_close: cached.poll.settings.show_results_before_close };
      assertCanReadPoll(facts, caller, key);
      const body = await cache.get(pollId);
      if (!body) throw pollNotFound();
      // Status from the stored row, not the cache, so a just-closed poll shows its results.
      assertCanSeeResults({ ...facts, status: body.status }, caller);
      return body;
    },
  };
}
export type ResultsService = ReturnType<typeof createResultsService>;
