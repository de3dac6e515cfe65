import type { Redis } from 'ioredis';
import type { ResultsState } from '../db/results.js';
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
}

/** Turns stored results into the live-results message. */
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
    final: s.status === 'CLOSED',
    updated_at: s.updated_at.toISOString(),
  };
}

/** Publishes one message per poll, after the transaction that changed it has committed. */
export async function publishPollUpdates(redis: Redis, keys: RedisKeys, states: Iterable<ResultsState>): Promise<void> {
  const pipeline = redis.pipeline();
  for (const s of states) pipeline.publish(keys.pollUpdates(s.poll_id), JSON.stringify(toPollUpdate(s)));
  await pipeline.exec();
}
