import type { Job, Queue } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { lockPolls } from '../db/ballots.js';
import { findPoll, transitionPoll } from '../db/polls.js';
import { loadResults } from '../db/results.js';
import type { DB, PollRow, PollStatus } from '../db/schema.js';
import { publishPollUpdates } from '../shared/poll-updates.js';
import type { RedisKeys } from '../shared/redis-keys.js';

export const POLL_LIFECYCLE_QUEUE = 'poll-lifecycle';

export interface CloseAtEndJob {
  poll_id: number;
  end_time: string;
}

/** Schedules the automatic close of a poll at its end time (a delayed job, one per end time). */
export async function scheduleAutoClose(queue: Queue<CloseAtEndJob>, pollId: number, endTime: Date): Promise<void> {
  await queue.add(
    'close-at-end',
    { poll_id: pollId, end_time: endTime.toISOString() },
    { jobId: `close-${pollId}-${endTime.getTime()}`, delay: Math.max(0, endTime.getTime() - Date.now()) },
  );
}

export interface PollChangeDeps {
  db: Kysely<DB>;
  publisher: Redis;
  keys: RedisKeys;
  /** Runs after a close commits (the final analytics rollup); its failure does not undo the close. */
  onClosed?: (pollId: number) => Promise<unknown>;
}

/** Tells watchers and every API process's poll cache that a poll changed. */
export async function announcePollChange({ db, publisher, keys }: PollChangeDeps, pollId: number): Promise<void> {
  const states = await loadResults(db, [pollId]);
  await publishPollUpdates(publisher, keys, states.values());
  await publisher.publish(keys.pollInvalidations, String(pollId));
}

/**
 * Closes a poll (from any of `from`) and pushes its final results. The tally seq moves so
 * the final message supersedes every earlier one. Null when the poll was not in `from`.
 */
export async function closePoll(deps: PollChangeDeps, pollId: number, from: PollStatus[] = ['DRAFT', 'ACTIVE']): Promise<PollRow | null> {
  const row = await deps.db.transaction().execute(async (trx) => {
    await lockPolls(trx, [pollId]);
    const closed = await transitionPoll(trx, pollId, from, 'CLOSED');
    if (closed) await sql`UPDATE poll_tallies SET seq = seq + 1, updated_at = now() WHERE poll_id = ${pollId}`.execute(trx);
    return closed;
  });
  if (row) await announcePollChange(deps, pollId).catch(() => {});
  if (row) await deps.onClosed?.(pollId).catch(() => {});
  return row;
}

// The close is scheduled inside the transaction that activates the poll, so a job due at once can
// run before that commit: for this long after scheduling, a poll not (yet) active is retried.
const UNCOMMITTED_GRACE_MS = 30_000;

/** Closes a poll whose end time has come; a moved end time has its own job, so this one does nothing. */
export function createPollLifecycleProcessor(deps: PollChangeDeps) {
  return async (job: Job<CloseAtEndJob>): Promise<{ closed: boolean }> => {
    const found = await findPoll(deps.db, job.data.poll_id);
    if ((!found || found.poll.status === 'DRAFT') && Date.now() - job.timestamp < UNCOMMITTED_GRACE_MS) {
      throw new Error(`poll ${job.data.poll_id} is not active yet; its transaction may still be committing`);
    }
    if (!found || found.poll.status !== 'ACTIVE' || !found.poll.end_time) return { closed: false };
    if (found.poll.end_time.getTime() > Date.now()) return { closed: false };
    return { closed: (await closePoll(deps, job.data.poll_id, ['ACTIVE'])) !== null };
  };
}
