import type { Queue } from 'bullmq';
import type { Kysely } from 'kysely';
import { findAnalytics, streamVotesForExport } from '../../db/analytics.js';
import { findPoll, type PollWithOptions } from '../../db/polls.js';
import type { DB } from '../../db/schema.js';
import { csvColumns, csvRecord } from '../../domain/analytics-csv.js';
import { DEVICE_CLASSES } from '../../domain/analytics.js';
import { assertCanReadPoll, isPollManager } from '../../domain/poll-access.js';
import { authRequired, forbidden, pollNotFound, rateLimited } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { RedisClient } from '../../shared/redis.js';
import type { RedisKeys } from '../../shared/redis-keys.js';
import { enqueueRollup, type AnalyticsRollupJob } from '../../shared/queues.js';
import type { Principal } from '../../shared/auth.js';
import type { ExportSlots } from './export-slots.js';
import type { PollCache } from './poll-cache.js';

// An owner reading figures older than this asks for a fresh rollup (views alone never trigger one).
const STALE_MS = 30_000;
// A refused export is told to come back after this long: most exports end within seconds.
const EXPORT_RETRY_SECONDS = 5;

type AnalyticsRow = NonNullable<Awaited<ReturnType<typeof findAnalytics>>>;

/**
 * The analytics body of the contract, plus unique_viewers, vote_changes, rejected_votes and
 * time_series_last_hour. total_votes counts every vote a voter cast (changes included),
 * unique_voters counts voters once; both over VALID votes. Before the first rollup: zeros and
 * updated_at null.
 */
export function toAnalyticsResponse(pollId: number, row: AnalyticsRow | undefined) {
  return {
    poll_id: pollId,
    total_votes: row?.total_votes ?? 0,
    unique_voters: row?.unique_voters ?? 0,
    unique_viewers: row?.unique_viewers ?? 0,
    vote_changes: row ? row.total_votes - row.unique_voters : 0,
    completion_rate: row?.completion_rate ?? 0,
    avg_response_time_seconds: row?.avg_response_time_seconds ?? null,
    median_response_time_seconds: row?.median_response_time_seconds ?? null,
    geographic_distribution: row?.geographic_distribution ?? {},
    device_breakdown: { ...Object.fromEntries(DEVICE_CLASSES.map((c) => [c, 0])), ...row?.device_breakdown },
    time_series: row?.time_series ?? [],
    time_series_last_hour: row?.time_series_last_hour ?? [],
    suspicious_votes: row?.suspicious_votes ?? 0,
    rejected_votes: row?.rejected_votes ?? 0,
    updated_at: row?.updated_at.toISOString() ?? null,
  };
}

/** Poll analytics and the vote export for a poll's creator and admins, and the view counter behind the completion rate. */
export function createAnalyticsService(deps: {
  db: Kysely<DB>;
  exportDb: Kysely<DB>;
  polls: PollCache;
  redis: RedisClient;
  keys: RedisKeys;
  rollups: Queue<AnalyticsRollupJob>;
  log: Logger;
  /** Running exports per caller; absent = unbounded. */
  exportSlots?: ExportSlots;
}) {
  const { db, exportDb, polls, redis, keys, rollups, log } = deps;

  async function loadManaged(pollId: number, caller: Principal | null, key: string | undefined): Promise<PollWithOptions> {
    if (!caller) throw authRequired();
    const found = await findPoll(db, pollId);
    if (!found) throw pollNotFound();
    if (!isPollManager(found.poll, caller)) {
      // A caller who cannot even read the poll must not learn it exists.
      assertCanReadPoll({ ...found.poll, show_results_before_close: found.poll.settings.show_results_before_close }, caller, key);
      throw forbidden('Only the poll creator or an admin may see this');
    }
    return found;
  }

  return {
    /** The stored analytics; stale or missing figures ask the queue for a rollup, the answer does not wait for it. */
    async get(pollId: number, caller: Principal | null, key: string | undefined) {
      await loadManaged(pollId, caller, key);
      const row = await findAnalytics(db, pollId);
      if (!row || Date.now() - row.updated_at.getTime() > STALE_MS) {
        enqueueRollup(rollups, pollId, 0).catch((err: Error) => log.warn({ pollId, err: err.message }, 'could not enqueue an analytics rollup'));
      }
      return toAnalyticsResponse(pollId, row);
    },

    /**
     * The export's header and records, read through a cursor as the consumer pulls them, and the
     * release of the caller's export slot (call it when the response ends, however it ends).
     * A caller already running EXPORTS_PER_CALLER exports gets 429.
     */
    async exportVotes(pollId: number, caller: Principal | null, key: string | undefined) {
      const { poll, options } = await loadManaged(pollId, caller, key);
      const release = deps.exportSlots ? await deps.exportSlots.acquire(caller!.userId) : () => {};
      if (!release) throw rateLimited(EXPORT_RETRY_SECONDS);
      const anonymous = poll.is_anonymous;
      const texts = new Map(options.map((o) => [o.option_id, o.text]));
      async function* records() {
        for await (const vote of streamVotesForExport(exportDb, pollId, anonymous)) yield csvRecord(vote, anonymous, texts);
      }
      return { filename: `poll-${pollId}-votes.csv`, columns: csvColumns(anonymous), records: records(), release };
    },

    /**
     * Counts a viewer of an open poll in the poll's HyperLogLog: one PFADD, fire and forget.
     * Views of drafts and closed polls are not chances to vote, so they do not count.
     */
    recordView(pollId: number, viewerId: string): void {
      polls
        .get(pollId)
        .then((cached) => (cached?.poll.status === 'ACTIVE' ? redis.pfadd(keys.views(pollId), viewerId) : 0))
        .catch(() => {});
    },
  };
}
export type AnalyticsService = ReturnType<typeof createAnalyticsService>;
