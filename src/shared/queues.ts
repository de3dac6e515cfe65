import { Queue, type JobsOptions } from 'bullmq';
import type { QueuedVote } from '../db/votes.js';
import type { Logger } from './logger.js';
import type { RedisClient } from './redis.js';
import type { RedisKeys } from './redis-keys.js';

/** What every queue and worker of the project shares. */
export interface QueueContext {
  connection: RedisClient;
  keys: RedisKeys;
  logger: Logger;
}

/** One job carries the votes of one vote partition that one API process accepted within a few milliseconds. */
export interface VoteBatchJob {
  votes: QueuedVote[];
}

/** A prefix crossed its velocity limit: these votes of its window become SUSPICIOUS. */
export interface FlagPrefixJob {
  poll_id: number;
  prefix: string;
  vote_ids: string[];
  reason: string;
}

/** `close-at-end`: close a poll at its end time. `finalize`: publish a closed poll's final results once its last votes are counted. */
export interface LifecycleJob {
  poll_id: number;
  end_time?: string;
  /** finalize: the vote queues' last job ids when the close's admitted votes were all queued. */
  marks?: Record<string, number>;
}

/** A request to recompute one poll's analytics from its votes. */
export interface AnalyticsRollupJob {
  poll_id: number;
}

/** The longest a retried job waits between attempts. */
export const MAX_BACKOFF_MS = 30_000;

/**
 * For jobs that carry accepted work (votes, flags, a poll's close): retried until they succeed,
 * backing off to at most MAX_BACKOFF_MS (the workers' 'capped' strategy), so an outage of any
 * length loses nothing. A job that can never succeed throws UnrecoverableError and waits in the
 * failed set for a human.
 */
const UNTIL_DONE: JobsOptions = { attempts: Number.MAX_SAFE_INTEGER, backoff: { type: 'capped', delay: 500 } };

const KEPT: JobsOptions = {
  removeOnComplete: { count: 1000 },
  // Failed jobs stay for inspection in Bull Board; nothing is dropped silently.
  removeOnFail: false,
};

/** A queue of the project: its name, what its jobs carry and how they are retried, how its workers run. */
export interface QueueDefinition<T> {
  name: string;
  jobOptions: JobsOptions;
  /** Jobs one worker process runs at once. */
  concurrency: number;
  /** Phantom: the payload type. */
  payload?: T;
}

/** Every queue, for producers and workers alike. */
export const QUEUES = {
  /** Partitioned: `vote-ingest-<q>`, one per vote queue, each committed by one worker process at a time. */
  votes: { name: 'vote-ingest', jobOptions: { ...KEPT, ...UNTIL_DONE }, concurrency: 64 } as QueueDefinition<VoteBatchJob>,
  flagging: { name: 'vote-flagging', jobOptions: { ...KEPT, ...UNTIL_DONE }, concurrency: 2 } as QueueDefinition<FlagPrefixJob>,
  lifecycle: { name: 'poll-lifecycle', jobOptions: { ...KEPT, ...UNTIL_DONE }, concurrency: 2 } as QueueDefinition<LifecycleJob>,
  analytics: {
    name: 'analytics-rollup',
    jobOptions: { ...KEPT, attempts: 8, backoff: { type: 'exponential', delay: 500 } },
    concurrency: 2,
  } as QueueDefinition<AnalyticsRollupJob>,
};

function open<T>(name: string, prefix: string, def: QueueDefinition<T>, ctx: QueueContext): Queue<T> {
  const queue = new Queue<T>(name, { connection: ctx.connection, prefix, defaultJobOptions: def.jobOptions }) as Queue<T>;
  // Without a listener BullMQ prints connection errors with console.error: not JSON, and a stack per retry.
  queue.on('error', (err) => ctx.logger.warn({ queue: name, err: err.message }, 'queue connection error'));
  return queue;
}

/** A producer's handle on one of the (unpartitioned) queues. */
export function openQueue<T>(def: QueueDefinition<T>, ctx: QueueContext): Queue<T> {
  return open(def.name, ctx.keys.queuePrefix(def.name), def, ctx);
}

/** The vote queues, `count` of them, each with a hash tag of its own. */
export function openVoteQueues(ctx: QueueContext, count: number): Array<Queue<VoteBatchJob>> {
  return Array.from({ length: count }, (_, q) => {
    const { name, prefix } = ctx.keys.voteQueue(q, count);
    return open(name, prefix, QUEUES.votes, ctx);
  });
}

/** Schedules the automatic close of a poll at its end time (a delayed job, one per end time). */
export async function scheduleAutoClose(queue: Queue<LifecycleJob>, pollId: number, endTime: Date): Promise<void> {
  await queue.add(
    'close-at-end',
    { poll_id: pollId, end_time: endTime.toISOString() },
    { jobId: `close-${pollId}-${endTime.getTime()}`, delay: Math.max(0, endTime.getTime() - Date.now()) },
  );
}

/** Asks for a closed poll's final results (one finalize job per poll). */
export async function scheduleFinalize(queue: Queue<LifecycleJob>, pollId: number): Promise<void> {
  await queue.add('finalize', { poll_id: pollId }, { jobId: `finalize-${pollId}`, backoff: { type: 'fixed', delay: 200 } });
}

/**
 * Asks for a rollup of a poll `delayMs` from now. At most one rollup per poll waits
 * (later requests fold into it) and at most one runs; a request that arrives while one runs
 * queues exactly one more, so the last votes are never left out and a burst costs one rollup.
 */
export function enqueueRollup(queue: Queue<AnalyticsRollupJob>, pollId: number, delayMs: number) {
  return queue.add('rollup', { poll_id: pollId }, { delay: delayMs, deduplication: { id: `poll-${pollId}`, keepLastIfActive: true } });
}

/** Schedules a coalesced rollup for each poll given; a failed enqueue is logged (the owner's next read asks again). */
export function rollupPolls(queue: Queue<AnalyticsRollupJob>, delayMs: number, log: Logger) {
  return (pollIds: Iterable<number>): void => {
    for (const pollId of new Set(pollIds)) {
      enqueueRollup(queue, pollId, delayMs).catch((err: Error) => log.warn({ pollId, err: err.message }, 'could not enqueue an analytics rollup'));
    }
  };
}
