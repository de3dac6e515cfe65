import type { Job } from 'bullmq';
import type { Kysely } from 'kysely';
import { applyBallotChanges, withShardLocks, type BallotChange } from '../db/ballots.js';
import { flagVotes, shardsOfVotes } from '../db/moderation.js';
import { loadResults } from '../db/results.js';
import type { DB } from '../db/schema.js';
import type { QueuedVote } from '../db/votes.js';
import { publishPollUpdates } from '../shared/poll-updates.js';
import type { FlagPrefixJob } from '../shared/queues.js';
import type { RedisClient } from '../shared/redis.js';
import type { RedisKeys } from '../shared/redis-keys.js';

export interface FlaggingDeps {
  db: Kysely<DB>;
  publisher: RedisClient;
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
    // A window holds anonymous votes of the prefix's partition and signed-in votes of their users' partitions.
    const shards = await shardsOfVotes(db, pollId, ids);
    const { changes, flagged, states } = await withShardLocks(db, shards, async (trx) => {
      const rows = await flagVotes(trx, pollId, ids, reason);
      const changes: BallotChange[] = rows
        .filter((r) => r.before_status !== r.status)
        .map((r) => {
          const s = { pollId: r.poll_id, shard: r.shard, counted: r.counted_options, ranking: r.rank_order, ratings: r.ratings };
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
 * batch commits. Called under the votes' shard locks, which a flagging job takes too, so it
 * either ran before (and this sees its flag) or runs after (and sees these rows).
 */
export async function flagQueuedVotes(redis: RedisClient, keys: RedisKeys, votes: QueuedVote[], reason: string): Promise<number> {
  const watched = votes.filter((v) => v.status === 'VALID' && v.prefixes?.length);
  if (watched.length === 0) return 0;
  // One MGET per (poll, partition tag): the flags of one tag share a slot (Redis Cluster safe).
  const groups = new Map<string, { pollId: number; tag: string; prefixes: Set<string> }>();
  for (const v of watched) {
    const tag = v.prefix_tag ?? '';
    const k = `${v.poll_id}|${tag}`;
    const g = groups.get(k) ?? groups.set(k, { pollId: v.poll_id, tag, prefixes: new Set() }).get(k)!;
    for (const p of v.prefixes!) g.prefixes.add(p);
  }
  const flagStart = new Map<string, number>();
  await Promise.all(
    [...groups.values()].map(async ({ pollId, tag, prefixes }) => {
      const list = [...prefixes];
      const values = await redis.mget(...list.map((p) => keys.prefixFlag(tag, pollId, p)));
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
