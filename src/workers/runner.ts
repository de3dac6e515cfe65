import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from 'bullmq';
import { createDb, pingDatabase } from '../db/client.js';
import type { QueuedVote } from '../db/votes.js';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/logger.js';
import { createMetricsRegistry, prom } from '../shared/metrics.js';
import { createOpsHandler } from '../shared/ops-server.js';
import { enqueueRollup, openQueue, openVoteQueues, QUEUES, rollupPolls } from '../shared/queues.js';
import { createRedis, pingEveryMaster, redisTargetOf } from '../shared/redis.js';
import { redisKeys } from '../shared/redis-keys.js';
import { createAnalyticsRollupProcessor } from './analytics.js';
import { createWorkerMetrics } from './metrics.js';
import { createPollLifecycleProcessor } from './poll-lifecycle.js';
import { createWorker } from './queue.js';
import { startVoteCommitters } from './vote-committers.js';
import { createVoteFlaggingProcessor } from './vote-flagging.js';
import { createVoteCommitter } from './vote-ingest.js';

export interface WorkersHandle {
  url: string;
  /** The vote queues this process commits now (tests, metrics). */
  committing(): string[];
  close(): Promise<void>;
}

/** Starts every queue's workers, the vote queues' committers and the metrics / health endpoint. */
export async function startWorkers(config: Config, log: Logger, port = config.WORKER_METRICS_PORT): Promise<WorkersHandle> {
  const keys = redisKeys(config.REDIS_NAMESPACE);
  const target = redisTargetOf(config);
  const db = createDb(config.DATABASE_URL, 16);
  const connection = createRedis(target, { name: 'workers' });
  const publisher = createRedis(target, { name: 'workers-pub', enableAutoPipelining: true });
  const ctx = { connection, keys, logger: log };
  const metrics = createMetricsRegistry('workers');
  const analyticsQueue = openQueue(QUEUES.analytics, ctx);
  const lifecycleQueue = openQueue(QUEUES.lifecycle, ctx);
  const voteQueues = openVoteQueues(ctx, config.VOTE_QUEUES);
  // Queue depths are read on a fail-fast connection: a scrape must not wait for Redis to return.
  const countCtx = { ...ctx, connection: createRedis(target, { failFast: true, name: 'workers-metrics' }) };
  const countedQueues = [
    ...openVoteQueues(countCtx, config.VOTE_QUEUES),
    ...[QUEUES.flagging, QUEUES.lifecycle, QUEUES.analytics].map((d) => openQueue(d, countCtx)),
  ];
  const workerMetrics = createWorkerMetrics(metrics, countedQueues);
  // Analytics follow every write that moved a poll's counts: vote batches and flagging jobs.
  const rollup = rollupPolls(analyticsQueue, config.ANALYTICS_ROLLUP_DELAY_MS, log);
  const onCommitted = (votes: QueuedVote[], changed: number, seconds: number) => {
    workerMetrics.ingestCommitted(votes, changed, seconds);
    if (changed > 0) rollup(votes.map((v) => v.poll_id));
  };
  const changeDeps = {
    db,
    redis: publisher,
    keys,
    lifecycle: lifecycleQueue,
    pendingTtlMs: config.VOTE_PENDING_TTL_MS,
    onClosed: (pollId: number) => enqueueRollup(analyticsQueue, pollId, 0),
  };

  const votesFlagged = new prom.Counter({
    name: 'votes_flagged_total',
    help: 'Votes marked SUSPICIOUS by the workers, by reason',
    labelNames: ['reason'],
    registers: [metrics],
  });
  const onFlagged = (reason: string, n: number) => votesFlagged.inc({ reason }, n);

  const workers: Worker[] = [
    createWorker(QUEUES.flagging, createVoteFlaggingProcessor({ db, publisher, keys, onFlagged, onCountsChanged: rollup }), ctx, {
      lockDuration: config.WORKER_LOCK_MS,
      ...workerMetrics.hooks(QUEUES.flagging.name),
    }),
    createWorker(QUEUES.lifecycle, createPollLifecycleProcessor({ ...changeDeps, voteQueues }), ctx, {
      lockDuration: config.WORKER_LOCK_MS,
      ...workerMetrics.hooks(QUEUES.lifecycle.name),
    }),
    createWorker(QUEUES.analytics, createAnalyticsRollupProcessor({ db, redis: publisher, keys }), ctx, {
      lockDuration: config.WORKER_LOCK_MS,
      ...workerMetrics.hooks(QUEUES.analytics.name),
    }),
  ];
  // One committer per vote queue across all worker processes, each writing its queue's jobs in groups.
  const committers = startVoteCommitters({
    redis: connection,
    live: keys.liveCommitters,
    leaseMs: config.COMMIT_LEASE_MS,
    log,
    queues: voteQueues.map((q) => ({
      name: q.name,
      lease: keys.committerLease(q.opts.prefix!, q.name),
      startWorker: () =>
        createWorker(QUEUES.votes, createVoteCommitter({ db, publisher, keys, maxVotesPerCommit: config.COMMIT_MAX_VOTES, onCommitted, onFlagged }), ctx, {
          name: q.name,
          prefix: q.opts.prefix,
          lockDuration: config.VOTE_LOCK_MS,
          ...workerMetrics.hooks(QUEUES.votes.name),
        }),
    })),
  });

  const server = http.createServer(
    createOpsHandler(metrics, async () => {
      // The publisher queues commands while disconnected: pingEveryMaster asks its state first rather than wait.
      const [, redisReady] = await Promise.all([pingDatabase(db), pingEveryMaster(publisher)]);
      return redisReady;
    }),
  );
  await new Promise<void>((resolve) => server.listen(port, resolve));
  const url = `http://localhost:${(server.address() as AddressInfo).port}`;

  return {
    url,
    committing: () => committers.held(),
    async close() {
      // Finish the batches in hand; jobs not started stay queued for the next worker.
      await committers.close();
      await Promise.allSettled(workers.map((w) => w.close()));
      await Promise.allSettled([analyticsQueue, lifecycleQueue, ...voteQueues, ...countedQueues].map((q) => q.close()));
      countCtx.connection.disconnect();
      server.close();
      publisher.disconnect();
      connection.disconnect();
      await db.destroy();
    },
  };
}
