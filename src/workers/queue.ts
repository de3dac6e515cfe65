import { Queue, UnrecoverableError, Worker, type Job, type JobsOptions, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../shared/logger.js';

/** What every queue and worker of the project shares. */
export interface QueueContext {
  connection: Redis;
  prefix: string;
  logger: Logger;
}

const DEFAULT_JOB_OPTIONS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  removeOnComplete: { count: 1000 },
  // Failed jobs stay for inspection in Bull Board; nothing is dropped silently.
  removeOnFail: false,
};

/**
 * For jobs that carry accepted work (votes, flags, a poll's close): retried until they succeed,
 * backing off to at most MAX_BACKOFF_MS, so an outage of any length loses nothing. A job that
 * can never succeed throws UnrecoverableError and waits in the failed set for a human.
 */
export const UNTIL_DONE: JobsOptions = { attempts: Number.MAX_SAFE_INTEGER, backoff: { type: 'capped', delay: 500 } };
const MAX_BACKOFF_MS = 30_000;

/** A queue with the project's defaults: retries with backoff, bounded completed history. */
export function createQueue<T>(name: string, ctx: QueueContext, defaults: JobsOptions = {}): Queue<T> {
  const queue = new Queue<T>(name, {
    connection: ctx.connection,
    prefix: ctx.prefix,
    defaultJobOptions: { ...DEFAULT_JOB_OPTIONS, ...defaults },
  }) as Queue<T>;
  // Without a listener BullMQ prints connection errors with console.error: not JSON, and a stack per retry.
  queue.on('error', (err) => ctx.logger.warn({ queue: name, err: err.message }, 'queue connection error'));
  return queue;
}

export interface WorkerHooks {
  onCompleted?: (job: Job) => void;
  onFailed?: (job: Job | undefined, err: Error, final: boolean) => void;
  onStalled?: (jobId: string) => void;
}

/** A worker with the project's defaults: logs the final failure of a job, reports stalls. */
export function createWorker<T>(
  name: string,
  processor: Processor<T>,
  ctx: QueueContext,
  opts: { concurrency?: number; lockDuration?: number } & WorkerHooks = {},
): Worker<T> {
  const { onCompleted, onFailed, onStalled, ...workerOpts } = opts;
  const worker = new Worker<T>(name, processor, {
    connection: ctx.connection,
    prefix: ctx.prefix,
    stalledInterval: Math.max(1000, Math.floor((workerOpts.lockDuration ?? 30_000) / 2)),
    maxStalledCount: 10,
    // The 'capped' backoff of UNTIL_DONE: exponential, never longer than MAX_BACKOFF_MS.
    settings: { backoffStrategy: (attemptsMade: number) => Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.max(0, attemptsMade - 1)) },
    ...workerOpts,
  });
  worker.on('completed', (job) => onCompleted?.(job));
  worker.on('failed', (job, err) => {
    const final = !job || err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (final) ctx.logger.error({ queue: name, jobId: job?.id, err: err.message }, 'job failed for good');
    else ctx.logger.warn({ queue: name, jobId: job?.id, err: err.message }, 'job failed, will retry');
    onFailed?.(job, err, final);
  });
  worker.on('stalled', (jobId) => {
    ctx.logger.warn({ queue: name, jobId }, 'job stalled, handed to another worker');
    onStalled?.(jobId);
  });
  worker.on('error', (err) => ctx.logger.error({ queue: name, err: err.message }, 'worker error'));
  return worker;
}
