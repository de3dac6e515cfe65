import type { Queue } from 'bullmq';
import type { QueuedVote } from '../db/votes.js';
import { unavailable } from '../shared/errors.js';
import { connectionFor, type RedisClient } from '../shared/redis.js';
import type { VoteBatchJob } from '../shared/queues.js';

/** Durability asked of an accepted vote's job: on `replicas` replicas within `timeoutMs` (WAIT), or none (0). */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
  connection: RedisClient;
}

interface Pending {
  vote: QueuedVote;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Groups accepted votes into one queue job per vote queue per `maxWaitMs` or `maxBatch` votes:
 * one BullMQ add per vote would cost a core at viral rates. `submit` resolves once the job
 * holding the vote is in Redis (and, where asked, on a replica too), which is when the API
 * may answer 202.
 */
export function createVoteBatcher(queues: Array<Queue<VoteBatchJob>>, opts: { maxBatch: number; maxWaitMs: number; wait?: ReplicaWait }) {
  const pending: Pending[][] = queues.map(() => []);
  const timers: Array<NodeJS.Timeout | null> = queues.map(() => null);
  const inFlight = new Set<Promise<void>>();

  async function add(q: number, batch: Pending[]): Promise<void> {
    const queue = queues[q];
    const wait = opts.wait;
    if (!wait || wait.replicas === 0) {
      await queue.add('votes', { votes: batch.map((b) => b.vote) });
      return;
    }
    // WAIT counts the writes of one connection: the one to the master that owns the queue's slot,
    // taken before the add. If the add went elsewhere (the slot moved meanwhile: a failover), WAIT
    // on this connection proves nothing, so the owner must not have changed.
    const slotKey = `${queue.opts.prefix}:${queue.name}:id`;
    const owner = connectionFor(wait.connection, slotKey);
    const job = await queue.add('votes', { votes: batch.map((b) => b.vote) });
    const acked = await owner.wait(wait.replicas, wait.timeoutMs).catch(() => 0);
    if (acked < wait.replicas || connectionFor(wait.connection, slotKey) !== owner) {
      // Not durable enough to promise: take the job back if no worker has it yet (it would only count once anyway).
      await job.remove().catch(() => {});
      throw unavailable('The vote could not be stored safely in time; nothing was accepted');
    }
  }

  function flush(q: number): Promise<void> {
    const timer = timers[q];
    if (timer) clearTimeout(timer);
    timers[q] = null;
    const batch = pending[q];
    if (batch.length === 0) return Promise.resolve();
    pending[q] = [];
    const p = add(q, batch)
      .then(
        () => batch.forEach((b) => b.resolve()),
        (err) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
    return p;
  }

  return {
    /** Queues a vote on vote queue `q`; resolves once it is durably in the queue. */
    submit(vote: QueuedVote, q: number): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const batch = pending[q];
        batch.push({ vote, resolve, reject });
        if (batch.length >= opts.maxBatch) void flush(q);
        else if (!timers[q]) timers[q] = setTimeout(flush, opts.maxWaitMs, q);
      });
    },
    /** Sends what is buffered and waits for every add in flight (graceful shutdown). */
    async drain(): Promise<void> {
      await Promise.all(queues.map((_, q) => flush(q)));
      await Promise.allSettled([...inFlight]);
    },
  };
}
export type VoteBatcher = ReturnType<typeof createVoteBatcher>;
