import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'kysely';
import type { Worker } from 'bullmq';
import { createDb } from '../db/client.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createMetricsRegistry } from '../shared/metrics.js';
import { createOpsHandler } from '../shared/ops-server.js';
import { createRedis } from '../shared/redis.js';
import { redisKeys } from '../shared/redis-keys.js';
import { createPollLifecycleProcessor, POLL_LIFECYCLE_QUEUE, type CloseAtEndJob } from './poll-lifecycle.js';
import { createQueue, createWorker } from './queue.js';
import { createVoteIngestProcessor, VOTE_INGEST_QUEUE, type VoteBatchJob } from './vote-ingest.js';
import { createVoteFlaggingProcessor, VOTE_FLAGGING_QUEUE, type FlagPrefixJob } from './vote-flagging.js';
import { prom } from '../shared/metrics.js';
import { ANALYTICS_QUEUE, createAnalyticsRollupProcessor, enqueueRollup, rollupPolls, type AnalyticsRollupJob } from './analytics.js';
import { createWorkerMetrics } from './metrics.js';
import type { QueuedVote } from '../db/votes.js';

export interface WorkersHandle {
  url: string;
  close(): Promise<void>;
}

/** Starts every queue's workers and the metrics / health endpoint. */
export async function startWorkers(config: Config, log: Logger, port = config.WORKER_METRICS_PORT): Promise<WorkersHandle> {
  const keys = redisKeys(config.REDIS_NAMESPACE);
  const db = createDb(config.DATABASE_URL, config.WORKER_CONCURRENCY + 8);
  const connection = createRedis(config.REDIS_URL, { name: 'workers' });
  const publisher = createRedis(config.REDIS_URL, { name: 'workers-pub' });
  const ctx = { connection, prefix: keys.queuePrefix, logger: log };
  const metrics = createMetricsRegistry('workers');
  const analyticsQueue = createQueue<AnalyticsRollupJob>(ANALYTICS_QUEUE, ctx);
  // Queue depths are read on a fail-fast connection: a scrape must not wait for Redis to return.
  const countConnection = createRedis(config.REDIS_URL, { failFast: true, name: 'workers-metrics' });
  const countedQueues = [VOTE_INGEST_QUEUE, VOTE_FLAGGING_QUEUE, POLL_LIFECYCLE_QUEUE, ANALYTICS_QUEUE].map((name) =>
    createQueue(name, { ...ctx, connection: countConnection }),
  );
  const workerMetrics = createWorkerMetrics(metrics, countedQueues);
  // Analytics follow every write that moved a poll's counts: vote batches and flagging jobs.
  const rollup = rollupPolls(analyticsQueue, config.ANALYTICS_ROLLUP_DELAY_MS, log);
  const onCommitted = (votes: QueuedVote[], changed: number) => {
    workerMetrics.ingestCommitted(votes, changed);
    if (changed > 0) rollup(votes.map((v) => v.poll_id));
  };
  const onClosed = (pollId: number) => enqueueRollup(analyticsQueue, pollId, 0);

  const votesFlagged = new prom.Counter({
    name: 'votes_flagged_total',
    help: 'Votes marked SUSPICIOUS by the workers, by reason',
    labelNames: ['reason'],
    registers: [metrics],
  });
  const onFlagged = (reason: string, n: number) => votesFlagged.inc({ reason }, n);

  const workers: Worker[] = [
    createWorker<FlagPrefixJob>(
      VOTE_FLAGGING_QUEUE,
      createVoteFlaggingProcessor({ db, publisher, keys, onFlagged, onCountsChanged: rollup }),
      ctx,
      { concurrency: 2, lockDuration: config.WORKER_LOCK_MS, ...workerMetrics.hooks(VOTE_FLAGGING_QUEUE) },
    ),
    createWorker<VoteBatchJob>(
      VOTE_INGEST_QUEUE,
      workerMetrics.timed(createVoteIngestProcessor({ db, publisher, keys, onCommitted, onFlagged })),
      ctx,
      { concurrency: config.WORKER_CONCURRENCY, lockDuration: config.WORKER_LOCK_MS, ...workerMetrics.hooks(VOTE_INGEST_QUEUE) },
    ),
    createWorker<CloseAtEndJob>(POLL_LIFECYCLE_QUEUE, createPollLifecycleProcessor({ db, publisher, keys, onClosed }), ctx, {
      concurrency: 2,
      lockDuration: config.WORKER_LOCK_MS,
      ...workerMetrics.hooks(POLL_LIFECYCLE_QUEUE),
    }),
  ];

  workers.push(
    createWorker<AnalyticsRollupJob>(ANALYTICS_QUEUE, createAnalyticsRollupProcessor({ db, redis: publisher, keys }), ctx, {
      concurrency: 2,
      lockDuration: config.WORKER_LOCK_MS,
      ...workerMetrics.hooks(ANALYTICS_QUEUE),
    }),
  );

  const server = http.createServer(
    createOpsHandler(metrics, async () => {
      // The publisher queues commands while disconnected: ask it its state rather than wait on a ping.
      if (publisher.status !== 'ready') return false;
      await Promise.all([sql`SELECT 1`.execute(db), publisher.ping()]);
      return true;
    }),
  );
  await new Promise<void>((resolve) => server.listen(port, resolve));
  const url = `http://localhost:${(server.address() as AddressInfo).port}`;

  return {
    url,
    async close() {
      // Finish the batches in hand; jobs not started stay queued for the next worker.
      await Promise.allSettled(workers.map((w) => w.close()));
      await analyticsQueue.close();
      await Promise.allSettled(countedQueues.map((q) => q.close()));
      countConnection.disconnect();
      server.close();
      publisher.disconnect();
      connection.disconnect();
      await db.destroy();
    },
  };
}
