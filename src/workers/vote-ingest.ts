import type { Job, Queue } from 'bullmq';
import type { Kysely } from 'kysely';
import type { Redis } from 'ioredis';
import { applyBallotChanges, lockPolls } from '../db/ballots.js';
import type { DB } from '../db/schema.js';
import { latestPerVoter, recordVotes, type QueuedVote } from '../db/votes.js';
import { loadResults } from '../db/results.js';
import { publishPollUpdates } from '../shared/poll-updates.js';
import type { RedisKeys } from '../shared/redis-keys.js';
import { FLAG_REASONS } from '../domain/flag-reasons.js';
import { flagQueuedVotes } from './vote-flagging.js';

export const VOTE_INGEST_QUEUE = 'vote-ingest';

/** One job carries the votes one API process accepted within a few milliseconds. */
export interface VoteBatchJob {
  votes: QueuedVote[];
}

/**
 * Groups accepted votes into one queue job per `maxWaitMs` or `maxBatch` votes: one BullMQ
 * add per vote would cost a core at viral rates. `submit` resolves once the job holding the
 * vote is in Redis, which is when the API may answer 202.
 */
export function createVoteBatcher(queue: Queue<VoteBatchJob>, { maxBatch, maxWaitMs }: { maxBatch: number; maxWaitMs: number }) {
  let pending: Array<{ vote: QueuedVote; resolve: () => void; reject: (e: unknown) => void }> = [];
  let timer: NodeJS.Timeout | null = null;
  const inFlight = new Set<Promise<void>>();

  const flush = (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending.length === 0) return Promise.resolve();
    const batch = pending;
    pending = [];
    const p = queue
      .add('votes', { votes: batch.map((b) => b.vote) })
      .then(
        () => batch.forEach((b) => b.resolve()),
        (err) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    return p;
  };

  return {
    /** Queues a vote; resolves once it is durably in the queue. */
    submit(vote: QueuedVote): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        pending.push({ vote, resolve, reject });
        if (pending.length >= maxBatch) void flush();
        else if (!timer) timer = setTimeout(flush, maxWaitMs);
      });
    },
    /** Sends what is buffered and waits for every add in flight (graceful shutdown). */
    async drain(): Promise<void> {
      await flush();
      await Promise.allSettled([...inFlight]);
    },
    get buffered() {
      return pending.length;
    },
  };
}
export type VoteBatcher = ReturnType<typeof createVoteBatcher>;

export interface VoteIngestDeps {
  db: Kysely<DB>;
  publisher: Redis;
  keys: RedisKeys;
  onCommitted?: (votes: QueuedVote[], changed: number) => void;
  onFlagged?: (reason: string, count: number) => void;
}

/**
 * Writes queued votes in one transaction: votes upserted, then every counter moved by what the
 * upsert actually changed. A replay of the same job changes nothing, so at-least-once
 * delivery counts each vote exactly once. Counts are published after commit.
 *
 * Jobs that arrive while a write is running (the worker holds several at once) go into the
 * next write together: under load one transaction carries many jobs, so its fixed cost is paid
 * once for all of them. A job resolves when the write holding it has committed; if a shared
 * write fails, each of its jobs is written on its own, so one bad job cannot fail the others.
 * Each job's result is the number of ballots the write that carried it changed.
 */
export function createVoteIngestProcessor({ db, publisher, keys, onCommitted, onFlagged }: VoteIngestDeps) {
  async function write(queued: QueuedVote[]): Promise<number> {
    const votes = latestPerVoter(queued);
    const pollIds = [...new Set(votes.map((v) => v.poll_id))];
    const { changed, lateFlags, states } = await db.transaction().execute(async (trx) => {
      await lockPolls(trx, pollIds);
      const lateFlags = await flagQueuedVotes(publisher, keys, votes, FLAG_REASONS.velocity);
      const changes = await recordVotes(trx, votes);
      const touched = await applyBallotChanges(trx, changes);
      return { changed: changes.length, lateFlags, states: await loadResults(trx, touched) };
    });
    if (lateFlags) onFlagged?.(FLAG_REASONS.velocity, lateFlags);
    onCommitted?.(queued, changed);
    if (states.size) await publishPollUpdates(publisher, keys, states.values()).catch(() => {});
    return changed;
  }

  type Waiting = { votes: QueuedVote[]; done: (changed: number) => void; fail: (err: unknown) => void };
  let waiting: Waiting[] = [];
  let writing = false;
  async function drain(): Promise<void> {
    writing = true;
    while (waiting.length) {
      const group = waiting;
      waiting = [];
      try {
        const changed = await write(group.flatMap((g) => g.votes));
        for (const g of group) g.done(changed);
      } catch (err) {
        if (group.length === 1) group[0].fail(err);
        else for (const g of group) await write(g.votes).then(g.done, g.fail);
      }
    }
    writing = false;
  }

  return (job: Job<VoteBatchJob>): Promise<{ changed: number }> =>
    new Promise((resolve, reject) => {
      waiting.push({ votes: job.data.votes, done: (changed) => resolve({ changed }), fail: reject });
      if (!writing) void drain();
    });
}
