import type { Queue } from 'bullmq';
import type { Registry } from 'prom-client';
import type { QueuedVote } from '../db/votes.js';
import { prom } from '../shared/metrics.js';
import type { WorkerHooks } from './queue.js';
import { within } from '../shared/deadline.js';

const COUNTED_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;
// A scrape must answer while Redis is away; the depths are then simply missing.
const COUNT_TIMEOUT_MS = 1000;

/**
 * The workers' metrics: ingest batches and lag, job outcomes per queue, and queue depths read
 * from Redis at scrape time. Labels carry queue names only, never polls, IPs or users.
 */
export function createWorkerMetrics(registry: Registry, queues: Queue[]) {
  const registers = [registry];
  const batchSize = new prom.Histogram({
    name: 'vote_ingest_batch_size',
    help: 'Votes per vote commit (one transaction, often several jobs)',
    buckets: [1, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers,
  });
  const batchSeconds = new prom.Histogram({
    name: 'vote_ingest_batch_duration_seconds',
    help: 'Time one vote commit takes (its transaction)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const committed = new prom.Counter({
    name: 'votes_committed_total',
    help: 'Ballots written or changed by committed ingest jobs (a replayed job adds nothing)',
    registers,
  });
  const lag = new prom.Histogram({
    name: 'vote_ingest_lag_seconds',
    help: 'Time from a vote being accepted (202) to its batch being committed',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    registers,
  });
  const completed = new prom.Counter({ name: 'queue_jobs_completed_total', help: 'Jobs completed, by queue', labelNames: ['queue'], registers });
  const retries = new prom.Counter({
    name: 'queue_job_retries_total',
    help: 'Job attempts that failed and will be retried, by queue',
    labelNames: ['queue'],
    registers,
  });
  const failed = new prom.Counter({
    name: 'queue_jobs_failed_total',
    help: 'Jobs that failed for good (attempts exhausted), by queue',
    labelNames: ['queue'],
    registers,
  });
  const stalled = new prom.Counter({
    name: 'queue_jobs_stalled_total',
    help: 'Jobs whose worker lost its lock and that were handed to another worker, by queue',
    labelNames: ['queue'],
    registers,
  });
  new prom.Gauge({
    name: 'queue_jobs',
    help: 'Jobs per queue and state (waiting, active, delayed, failed), read from Redis at scrape time',
    labelNames: ['queue', 'state'],
    registers,
    async collect() {
      try {
        const counts = await within(Promise.all(queues.map((q) => q.getJobCounts(...COUNTED_STATES))), COUNT_TIMEOUT_MS, null);
        if (!counts) throw new Error('timed out');
        // The vote queues (vote-ingest-<q>) are one queue to an operator: their depths add up.
        const sums = new Map<string, number>();
        queues.forEach((q, i) => {
          const queue = q.name.replace(/^(vote-ingest)-[0-9]+$/, '$1');
          for (const state of COUNTED_STATES) sums.set(`${queue}|${state}`, (sums.get(`${queue}|${state}`) ?? 0) + (counts[i][state] ?? 0));
        });
        for (const [k, n] of sums) {
          const [queue, state] = k.split('|');
          this.set({ queue, state }, n);
        }
      } catch {
        // Stale depths would look healthy; no value says "unknown" (and /readyz says why).
        this.reset();
      }
    },
  });

  return {
    /** Hooks for createWorker: completed, retried, failed-for-good and stalled jobs of `queue`. */
    hooks(queue: string): WorkerHooks {
      return {
        onCompleted: () => completed.inc({ queue }),
        onFailed: (_job, _err, final) => (final ? failed : retries).inc({ queue }),
        onStalled: () => stalled.inc({ queue }),
      };
    },
    /** For the vote committer's onCommitted: commit size and duration, ballots changed and each vote's lag. */
    ingestCommitted(votes: QueuedVote[], changed: number, seconds: number): void {
      const now = Date.now();
      batchSize.observe(votes.length);
      batchSeconds.observe(seconds);
      committed.inc(changed);
      for (const v of votes) lag.observe(Math.max(0, now - v.accepted_at) / 1000);
    },
  };
}
