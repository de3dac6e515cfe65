import type { Queue } from 'bullmq';
import type { Kysely } from 'kysely';
import { bumpResultsVersion, withShardLocks } from '../db/ballots.js';
import { markResultsFinal, transitionPoll } from '../db/polls.js';
import { loadResults } from '../db/results.js';
import type { DB, PollRow, PollStatus } from '../db/schema.js';
import { publishPollUpdates } from './poll-updates.js';
import { scheduleFinalize, type LifecycleJob, type VoteBatchJob } from './queues.js';
import type { RedisClient } from './redis.js';
import { partitionTags, type RedisKeys } from './redis-keys.js';

/**
 * Closes voting in one partition (KEYS closed flag, pending set; ARGV flag ttl): admissions in it
 * refuse from now on. Returns how many of its admitted votes are still being queued.
 */
const CLOSE_PARTITION = `
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowMs)
return redis.call('ZCARD', KEYS[2])
`;
// The flag outlives any vote that could still arrive (the stored status refuses them after).
const CLOSED_FLAG_MS = 7 * 86_400_000;

export interface PollChangeDeps {
  db: Kysely<DB>;
  redis: RedisClient;
  keys: RedisKeys;
  lifecycle: Queue<LifecycleJob>;
  /** How long an admitted vote may stay unconfirmed (its pending claim's life). */
  pendingTtlMs: number;
  /** Runs after a close commits (the final analytics rollup); its failure does not undo the close. */
  onClosed?: (pollId: number) => Promise<unknown>;
}

interface CloseCommands {
  closeVotePartition(closed: string, pending: string, ttlMs: number): Promise<number>;
}

/** Tells watchers and every API process's poll cache that a poll changed. */
export async function announcePollChange({ db, redis, keys }: Pick<PollChangeDeps, 'db' | 'redis' | 'keys'>, pollId: number): Promise<void> {
  const states = await loadResults(db, [pollId]);
  await publishPollUpdates(redis, keys, states.values());
  await redis.spublish(keys.pollInvalidations, String(pollId));
}

/**
 * Closes a poll's voting where votes are admitted, in every partition at once, and resolves once
 * every vote admitted before is either queued (and answered 202) or refused: from then on, no
 * 202 can follow. How many are still being queued is re-read until none (at most a pending
 * claim's life: a claim whose API died lapses by then).
 */
export async function closeVoting(deps: Pick<PollChangeDeps, 'redis' | 'keys' | 'pendingTtlMs'>, pollId: number, partitions: number): Promise<number> {
  const { redis, keys } = deps;
  if (!('closeVotePartition' in redis)) redis.defineCommand('closeVotePartition', { numberOfKeys: 2, lua: CLOSE_PARTITION });
  const cmd = redis as unknown as CloseCommands;
  const tags = partitionTags(pollId, partitions);
  const deadline = Date.now() + deps.pendingTtlMs + 1000;
  for (;;) {
    const counts = await Promise.all(tags.map((tag) => cmd.closeVotePartition(keys.pollClosed(tag, pollId), keys.pendingClaims(tag, pollId), CLOSED_FLAG_MS)));
    const inFlight = counts.reduce((a, b) => a + b, 0);
    if (inFlight === 0 || Date.now() > deadline) return inFlight;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Closes a poll (from any of `from`): voting stops where votes are admitted, then the stored
 * status moves, and a finalize job is queued (in the same transaction: no close without its
 * final results) that publishes the final results once the last accepted votes are counted.
 * Null when the poll was not in `from`.
 */
export async function closePoll(
  deps: PollChangeDeps,
  poll: Pick<PollRow, 'poll_id' | 'partitions'>,
  from: PollStatus[] = ['DRAFT', 'ACTIVE'],
): Promise<PollRow | null> {
  const pollId = poll.poll_id;
  await closeVoting(deps, pollId, poll.partitions);
  const row = await withShardLocks(deps.db, [{ pollId, shard: 0 }], async (trx) => {
    const closed = await transitionPoll(trx, pollId, from, 'CLOSED');
    if (closed) {
      await bumpResultsVersion(trx, pollId);
      await scheduleFinalize(deps.lifecycle, pollId);
    }
    return closed;
  });
  if (row) await announcePollChange(deps, pollId).catch(() => {});
  if (row) await deps.onClosed?.(pollId).catch(() => {});
  return row;
}

/**
 * Whether every job a vote queue held up to `mark` (its job ids count up) has been dealt with:
 * none of them waits, runs, or waits for a retry.
 */
async function drainedUpTo(client: RedisClient, queue: Queue<VoteBatchJob>, mark: number): Promise<boolean> {
  const k = queue.keys;
  const lists = await Promise.all([
    client.lrange(k.wait, 0, -1),
    client.lrange(k.active, 0, -1),
    client.lrange(k.paused, 0, -1),
    client.zrange(k.delayed, 0, -1),
    client.zrange(k.prioritized, 0, -1),
  ]);
  return lists.every((ids: string[]) => ids.every((id) => !(Number(id) <= mark)));
}

/** Each vote queue's last job id now: every vote queued so far is in a job up to it. */
export async function voteQueueMarks(client: RedisClient, queues: Array<Queue<VoteBatchJob>>): Promise<Record<string, number>> {
  const marks: Record<string, number> = {};
  for (const q of queues) marks[q.name] = Number((await client.get(q.keys.id)) ?? 0);
  return marks;
}

/** Whether every vote queue has dealt with its jobs up to the marks. */
export async function voteQueuesDrained(client: RedisClient, queues: Array<Queue<VoteBatchJob>>, marks: Record<string, number>): Promise<boolean> {
  const done = await Promise.all(queues.map((q) => drainedUpTo(client, q, marks[q.name] ?? 0)));
  return done.every(Boolean);
}

/** Marks a closed poll's results final and publishes them (the last message watchers get). False when already final. */
export async function publishFinalResults(deps: Pick<PollChangeDeps, 'db' | 'redis' | 'keys'>, pollId: number): Promise<boolean> {
  const row = await withShardLocks(deps.db, [{ pollId, shard: 0 }], async (trx) => {
    const final = await markResultsFinal(trx, pollId);
    if (final) await bumpResultsVersion(trx, pollId);
    return final;
  });
  if (row) await announcePollChange(deps, pollId);
  return row !== null;
}
