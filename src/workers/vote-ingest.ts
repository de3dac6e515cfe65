import { UnrecoverableError, type Job } from 'bullmq';
import type { Kysely } from 'kysely';
import { applyBallotChanges, withShardLocks } from '../db/ballots.js';
import { loadResults } from '../db/results.js';
import type { DB } from '../db/schema.js';
import { latestPerVoter, recordVotes, type QueuedVote } from '../db/votes.js';
import { FLAG_REASONS } from '../domain/flag-reasons.js';
import { publishPollUpdates } from '../shared/poll-updates.js';
import type { VoteBatchJob } from '../shared/queues.js';
import type { RedisClient } from '../shared/redis.js';
import type { RedisKeys } from '../shared/redis-keys.js';
import { flagQueuedVotes } from './vote-flagging.js';

export interface VoteIngestDeps {
  db: Kysely<DB>;
  publisher: RedisClient;
  keys: RedisKeys;
  /** The most votes one transaction takes: jobs waiting beyond it wait for the next one. */
  maxVotesPerCommit: number;
  onCommitted?: (votes: QueuedVote[], changed: number, seconds: number) => void;
  onFlagged?: (reason: string, count: number) => void;
}

/** PostgreSQL refused the rows themselves (class 22 data exception, 23 integrity): the same rows can never go in. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * The vote committer of one vote queue: the BullMQ processor of its jobs. Jobs that arrive while
 * a transaction runs wait for the next, which takes them all (up to `maxVotesPerCommit` votes):
 * group commit, so the number of transactions follows the committer's pace, not the number of
 * API processes sending jobs. Each transaction upserts the votes under their shards' locks and
 * moves each counter by what the upsert actually changed; a replayed job changes nothing, so
 * at-least-once delivery counts each vote exactly once. Counts are published after commit.
 */
export function createVoteCommitter(deps: VoteIngestDeps) {
  const { db, publisher, keys } = deps;

  async function commit(votes: QueuedVote[]): Promise<number> {
    const started = process.hrtime.bigint();
    const latest = latestPerVoter(votes);
    const shards = latest.map((v) => ({ pollId: v.poll_id, shard: v.shard ?? 0 }));
    const { changed, lateFlags, touched } = await withShardLocks(db, shards, async (trx) => {
      const lateFlags = await flagQueuedVotes(publisher, keys, latest, FLAG_REASONS.velocity);
      const changes = await recordVotes(trx, latest);
      return { changed: changes.length, lateFlags, touched: await applyBallotChanges(trx, changes) };
    });
    if (lateFlags) deps.onFlagged?.(FLAG_REASONS.velocity, lateFlags);
    deps.onCommitted?.(votes, changed, Number(process.hrtime.bigint() - started) / 1e9);
    if (touched.length) {
      // Read after commit, outside the locks: the sums over every shard, a version no older than this commit.
      const states = await loadResults(db, touched).catch(() => null);
      if (states?.size) await publishPollUpdates(publisher, keys, states.values()).catch(() => {});
    }
    return changed;
  }

  /** A batch PostgreSQL refuses as data is halved until the refused vote stands alone: the others count, that one fails for good. */
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

  interface Waiting {
    job: Job<VoteBatchJob>;
    resolve: (r: { changed: number }) => void;
    reject: (e: unknown) => void;
  }
  let waiting: Waiting[] = [];
  let running = false;

  async function run(): Promise<void> {
    running = true;
    while (waiting.length) {
      let votes = 0;
      let n = 0;
      while (n < waiting.length && (n === 0 || votes + waiting[n].job.data.votes.length <= deps.maxVotesPerCommit)) votes += waiting[n++].job.data.votes.length;
      const group = waiting.slice(0, n);
      waiting = waiting.slice(n);
      try {
        const changed = await commit(group.flatMap((w) => w.job.data.votes));
        // The group's changes are not split per job: each job reports the group's.
        for (const w of group) w.resolve({ changed });
      } catch (err) {
        if (!isDataError(err)) {
          for (const w of group) w.reject(err);
          continue;
        }
        // One job's data is refused: each job on its own, so the others still count.
        for (const w of group) await commitOrSplit(w.job.data.votes).then((changed) => w.resolve({ changed }), w.reject);
      }
    }
    running = false;
  }

  /** The processor: resolves once the job's votes are committed (with the other jobs of its group). */
  return function processVoteJob(job: Job<VoteBatchJob>): Promise<{ changed: number }> {
    return new Promise((resolve, reject) => {
      waiting.push({ job, resolve, reject });
      if (!running) void run();
    });
  };
}
