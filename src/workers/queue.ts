import { UnrecoverableError, Worker, type Job, type Processor } from 'bullmq';
import { MAX_BACKOFF_MS, type QueueContext, type QueueDefinition } from '../shared/queues.js';

export interface WorkerHooks {
  onCompleted?: (job: Job) => void;
  onFailed?: (job: Job | undefined, err: Error, final: boolean) => void;
  onStalled?: (jobId: string) => void;
}

/**
 * A worker of one queue with the project's defaults: the queue definition's concurrency, the
 * 'capped' backoff of jobs retried until done, a stall check twice per lock, logs of the final
 * failure of a job, and the metrics hooks.
 */
export function createWorker<T>(
  def: QueueDefinition<T>,
  processor: Processor<T>,
  ctx: QueueContext,
  opts: { name?: string; prefix?: string; lockDuration: number } & WorkerHooks,
): Worker<T> {
  const { onCompleted, onFailed, onStalled, lockDuration } = opts;
  const name = opts.name ?? def.name;
  const worker = new Worker<T>(name, processor, {
    connection: ctx.connection,
    prefix: opts.prefix ?? ctx.keys.queuePrefix(def.name),
    concurrency: def.concurrency,
    lockDuration,
    // BullMQ renews a lock at half its duration; a dead worker's jobs are handed on within about 1.5 locks.
    stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
    maxStalledCount: 10,
    settings: { backoffStrategy: (attemptsMade: number) => Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.max(0, attemptsMade - 1)) },
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
