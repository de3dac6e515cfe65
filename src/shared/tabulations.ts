import type { ResultsState } from '../db/results.js';
import { tabulateRanked, type RankedResult } from '../domain/tally/ranked.js';
import { summarizeRatings, type RatingSummary } from '../domain/tally/rating.js';

/** A tabulation that ran: which poll, at which counts version, and how long it took. */
export interface TabulationEvent {
  kind: 'ranked' | 'rating';
  pollId: number;
  seq: number;
  ms: number;
}

/**
 * Tabulations of RANKED and RATING polls, once per counts version: the stored `seq` moves with
 * every change of the counted ballots (a batch, a review, a close), so one instant-runoff or
 * rating summary per seq serves every results read, every live message and every new watcher
 * in this process. A 50-option RANKED poll with 50,000 ballots costs about half a second to
 * tabulate: recomputing it per read, per batch and per watcher kept whole cores busy.
 *
 * The two latest seqs of each poll are kept: a read that lost a race (a live message of seq n
 * handled after a snapshot of n + 1) still finds its own. Older ones are tabulated without
 * evicting the newer.
 */
export function createTabulator({ maxPolls = 1000 }: { maxPolls?: number } = {}) {
  type Entry = { key: string; seq: number; value: RankedResult | RatingSummary };
  // Per poll, newest first; the map in least-recently-tabulated order.
  const recent = new Map<number, Entry[]>();
  const observers = new Set<(e: TabulationEvent) => void>();

  function memo<T extends RankedResult | RatingSummary>(kind: TabulationEvent['kind'], s: ResultsState, key: string, run: () => T): T {
    const kept = recent.get(s.poll_id) ?? [];
    const hit = kept.find((e) => e.key === key);
    if (hit) return hit.value as T;
    const started = performance.now();
    const value = run();
    const e = { kind, pollId: s.poll_id, seq: s.seq, ms: performance.now() - started };
    if (kept.length < 2 || kept[kept.length - 1].seq <= s.seq) {
      const next = [...kept, { key, seq: s.seq, value }].sort((a, b) => b.seq - a.seq).slice(0, 2);
      recent.delete(s.poll_id);
      recent.set(s.poll_id, next);
      if (recent.size > maxPolls) recent.delete(recent.keys().next().value!);
    }
    for (const o of observers) o(e);
    return value;
  }

  return {
    /** The full ranked results of a RANKED poll's state (null for other types). */
    ranked(s: ResultsState): RankedResult | null {
      const input = s.ranked_input;
      if (!input) return null;
      // The options are part of the key: a draft's options change without the seq moving.
      return memo('ranked', s, `ranked:${s.seq}:${input.optionIds.join(',')}`, () => tabulateRanked(input));
    },

    /** The rating summary of a RATING poll's state (null for other types). */
    rating(s: ResultsState): RatingSummary | null {
      const input = s.rating_input;
      if (!input) return null;
      return memo('rating', s, `rating:${s.seq}:${input.ratingMin}:${input.ratingMax}:${input.optionIds.join(',')}`, () => summarizeRatings(input));
    },

    /** Calls `fn` after every tabulation that ran (not for the ones served from memory); returns the unsubscribe. */
    observe(fn: (e: TabulationEvent) => void): () => void {
      observers.add(fn);
      return () => observers.delete(fn);
    },
  };
}

/** The process's tabulator: the results service, the live messages and the gateway's feeds share it. */
export const tabulator = createTabulator();
