import type { ResultsState } from '../db/results.js';
import type { RankedInput } from '../domain/tally/instant-runoff.js';
import { tabulateRanked } from '../domain/tally/ranked.js';
import { summarizeRatings, type RatingInput } from '../domain/tally/rating.js';
import type { RedisClient } from './redis.js';
import type { RedisKeys } from './redis-keys.js';

/** The live-results message of the contract, as published on a poll's update channel. */
export interface PollUpdate {
  type: 'results';
  poll_id: number;
  status: string;
  total_votes: number;
  pending_review: number;
  counts: Record<string, number>;
  seq: number;
  final: boolean;
  updated_at: string;
  /** RANKED: the current outcome only; the full rounds are in GET /results (live messages stay small). */
  ranked?: { winner: number | null; condorcet_winner: number | null; rounds: number; final_round_tallies: Record<string, number> };
  /** RATING: the current order, best first. */
  rating?: { ranking: Array<{ option_id: number; bayesian_average: number; mean: number | null; count: number }> };
}

/** Turns stored results into the live-results message; tabulates RANKED and RATING polls, so call it once per state. */
export function toPollUpdate(s: ResultsState): PollUpdate {
  const counts: Record<string, number> = {};
  for (const o of s.options) counts[String(o.option_id)] = o.vote_count;
  return {
    type: 'results',
    poll_id: s.poll_id,
    status: s.status,
    total_votes: s.total_votes,
    pending_review: s.pending_review,
    counts,
    seq: s.seq,
    final: s.final,
    updated_at: s.updated_at.toISOString(),
    ...(s.ranked_input && { ranked: liveRanked(s.ranked_input) }),
    ...(s.rating_input && { rating: liveRating(s.rating_input) }),
  };
}

function liveRanked(input: RankedInput): NonNullable<PollUpdate['ranked']> {
  const r = tabulateRanked(input);
  return {
    winner: r.winner,
    condorcet_winner: r.condorcet_winner,
    rounds: r.rounds.length,
    final_round_tallies: r.rounds.at(-1)?.tallies ?? {},
  };
}

function liveRating(input: RatingInput): NonNullable<PollUpdate['rating']> {
  const ranking = summarizeRatings(input).options.map((o) => ({
    option_id: o.option_id,
    bayesian_average: o.bayesian_average,
    mean: o.mean,
    count: o.count,
  }));
  return { ranking };
}

/** Publishes one message per poll (sharded pub/sub: each poll's channel lives on one node), after the transaction that changed it has committed. */
export async function publishPollUpdates(redis: RedisClient, keys: RedisKeys, states: Iterable<ResultsState>): Promise<void> {
  await Promise.all([...states].map((s) => redis.spublish(keys.pollUpdates(s.poll_id), JSON.stringify(toPollUpdate(s)))));
}
