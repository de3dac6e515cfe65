import type { Job } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { applyBallotChanges, lockPolls, type BallotChange } from '../db/ballots.js';
import { loadResults } from '../db/results.js';
import type { DB, VoteStatus } from '../db/schema.js';
import type { QueuedVote } from '../db/votes.js';
import { publishPollUpdates } from '../shared/poll-updates.js';
import type { RedisKeys } from '../shared/redis-keys.js';
import { createQueue, UNTIL_DONE, type QueueContext } from './queue.js';

export const VOTE_FLAGGING_QUEUE = 'vote-flagging';

/** The flagging queue: its jobs carry accepted verdicts, so they are retried until done. */
export function createVoteFlaggingQueue(ctx: QueueContext) {
  return createQueue<FlagPrefixJob>(VOTE_FLAGGING_QUEUE, ctx, UNTIL_DONE);
}

/** A prefix crossed its velocity limit: these votes of its window become SUSPICIOUS. */
export interface FlagPrefixJob {
  poll_id: number;
  prefix: string;
  vote_ids: string[];
  reason: string;
}

export interface FlaggingDeps {
  db: Kysely<DB>;
  publisher: Redis;
  keys: RedisKeys;
  onFlagged?: (reason: string, count: number) => void;
  /** Polls whose counts the flagging moved (analytics rollups follow them). */
  onCountsChanged?: (pollIds: number[]) => void;
}

/**
 * Marks the committed votes of a flagged window SUSPICIOUS and takes them out of the counts,
 * exactly once: only rows that still lack the reason change, under the poll's lock. Votes of
 * the window still in the queue are flagged by the ingest worker (flagQueuedVotes).
 */
export function createVoteFlaggingProcessor({ db, publisher, keys, onFlagged, onCountsChanged }: FlaggingDeps) {
  return async (job: Job<FlagPrefixJob>): Promise<{ flagged: number }> => {
    const { poll_id: pollId, vote_ids: ids, reason } = job.data;
    const { changes, flagged, states } = await db.transaction().execute(async (trx) => {
      await lockPolls(trx, [pollId]);
      const { rows } = await sql<{
        poll_id: number;
        before_status: VoteStatus;
        status: VoteStatus;
        counted_options: number[];
        rank_order: number[] | null;
        ratings: Record<string, number> | null;
      }>`
        WITH target AS (
          SELECT vote_id, status FROM votes
          WHERE poll_id = ${pollId} AND vote_id = ANY(${ids}::uuid[]) AND status <> 'REJECTED'
            AND NOT (${reason} = ANY(flag_reasons))
        )
        UPDATE votes v SET status = CASE WHEN v.status = 'VALID' THEN 'SUSPICIOUS' ELSE v.status END,
          flag_reasons = v.flag_reasons || ${reason}::text, updated_at = now()
        FROM target t WHERE v.poll_id = ${pollId} AND v.vote_id = t.vote_id
        RETURNING v.poll_id, t.status AS before_status, v.status, v.counted_options, v.rank_order, v.ratings`.execute(trx);
      const changes: BallotChange[] = rows
        .filter((r) => r.before_status !== r.status)
        .map((r) => {
          const s = { pollId: r.poll_id, counted: r.counted_options, ranking: r.rank_order, ratings: r.ratings };
          return { before: { ...s, status: r.before_status }, after: { ...s, status: r.status } };
        });
      const touched = await applyBallotChanges(trx, changes);
      return { changes, flagged: rows.length, states: await loadResults(trx, touched) };
    });
    if (changes.length) onFlagged?.(reason, changes.length);
    if (states.size) {
      onCountsChanged?.([...states.keys()]);
      await publishPollUpdates(publisher, keys, states.values()).catch(() => {});
    }
    return { flagged };
  };
}

/**
 * Flags queued votes whose prefix was flagged after they were accepted but before this
 * batch commits. Called under the batch's poll locks, so a flagging job either ran before
 * (and this sees its flag) or runs after (and sees these rows).
 */
export async function flagQueuedVotes(redis: Redis, keys: RedisKeys, votes: QueuedVote[], reason: string): Promise<number> {
  const watched = votes.filter((v) => v.status === 'VALID' && v.prefixes?.length);
  if (watched.length === 0) return 0;
  const byPoll = new Map<number, Set<string>>();
  for (const v of watched) for (const p of v.prefixes!) (byPoll.get(v.poll_id) ?? byPoll.set(v.poll_id, new Set()).get(v.poll_id)!).add(p);
  const flagStart = new Map<string, number>();
  // One MGET per poll: a poll's keys share a slot, so this stays Redis Cluster safe.
  await Promise.all(
    [...byPoll].map(async ([pollId, prefixes]) => {
      const list = [...prefixes];
      const values = await redis.mget(...list.map((p) => keys.prefixFlag(pollId, p)));
      values.forEach((v, i) => v !== null && flagStart.set(`${pollId}|${list[i]}`, Number(v)));
    }),
  );
  let count = 0;
  for (const v of watched) {
    const hit = v.prefixes!.some((p) => {
      const start = flagStart.get(`${v.poll_id}|${p}`);
      return start !== undefined && v.accepted_at >= start;
    });
    if (hit) {
      v.status = 'SUSPICIOUS';
      v.reasons = [...v.reasons, reason];
      count++;
    }
  }
  return count;
}
