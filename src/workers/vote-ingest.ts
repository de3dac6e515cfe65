import { UnrecoverableError, type Job, type Queue } from 'bullmq';
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

/** PostgreSQL refused the rows themselves (class 22 data exception, 23 integrity): the same rows can never go in. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * Writes one batch in one transaction: votes upserted, then every counter moved by what the
 * upsert actually changed. A replay of the same job changes nothing, so at-least-once
 * delivery counts each vote exactly once. Counts are published after commit. A batch that
 * PostgreSQL refuses as data is halved until the vote it refuses stands alone: the others
 * are counted, and that one fails the job for good, kept in the failed set for a human.
 */
export function createVoteIngestProcessor({ db, publisher, keys, onCommitted, onFlagged }: VoteIngestDeps) {
  async function commit(votes: QueuedVote[]): Promise<number> {
    const pollIds = [...new Set(votes.map((v) => v.poll_id))];
    const { changed, lateFlags, states } = await db.transaction().execute(async (trx) => {
      await lockPolls(trx, pollIds);
      const lateFlags = await flagQueuedVotes(publisher, keys, votes, FLAG_REASONS.velocity);
      const changes = await recordVotes(trx, votes);
      const touched = await applyBallotChanges(trx, changes);
      return { changed: changes.length, lateFlags, states: await loadResults(trx, touched) };
    });
    if (lateFlags) onFlagged?.(FLAG_REASONS.velocity, lateFlags);
    onCommitted?.(votes, changed);
    if (states.size) await publishPollUpdates(publisher, keys, states.values()).catch(() => {});
    return changed;
  }

  async function commitOrSplit(votes: QueuedVote[]): Promise<number> {
    try {
      return await commit(votes);
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (votes.length === 1) throw new UnrecoverableError(`vote ${votes[0].vote_id} cannot be stored: ${(err as Error).message}`);
      const mid = votes.length >> 1;
      let changed = 0;
      let refused: unknown = null;
      for (const half of [votes.slice(0, mid), votes.slice(mid)]) {
        try {
          changed += await commitOrSplit(half);
        } catch (e) {
          if (!(e instanceof UnrecoverableError)) throw e;
          refused ??= e;
        }
      }
      if (refused) throw refused;
      return changed;
    }
  }

  return async (job: Job<VoteBatchJob>): Promise<{ changed: number }> => ({ changed: await commitOrSplit(latestPerVoter(job.data.votes)) });
}
