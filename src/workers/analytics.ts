import type { Job } from 'bullmq';
import type { Kysely } from 'kysely';
import { findAnalytics, upsertAnalytics, voteAggregates, votesPerBucket, votesPerOrigin, votesPerUserAgent } from '../db/analytics.js';
import type { DB } from '../db/schema.js';
import { completionRate, DEVICE_CLASSES, hourlySeries, lastHourSeries, secondsOf, sumBy, type DeviceClass } from '../domain/analytics.js';
import type { AnalyticsRollupJob } from '../shared/queues.js';
import type { RedisClient } from '../shared/redis.js';
import type { RedisKeys } from '../shared/redis-keys.js';

// The view counter is folded into the row once the poll has closed; it lingers a day for safety.
const VIEWS_TTL_AFTER_CLOSE_S = 86_400;
const DEVICE_CACHE_MAX = 50_000;

export interface RollupDeps {
  db: Kysely<DB>;
  redis: RedisClient;
  keys: RedisKeys;
}

/**
 * Recomputes a poll's analytics from scratch: aggregates over its votes in one repeatable-read
 * snapshot, then one UPSERT in the same transaction. Running it twice writes the same numbers;
 * a crash anywhere rolls back and leaves the previous row whole for the retry.
 */
export function createAnalyticsRollupProcessor(deps: RollupDeps) {
  // Imported when the first rollup runs, not at the top: the country database is megabytes read at import.
  const classifiers = import('./analytics-classify.js');
  // Distinct User-Agents repeat from one rollup to the next; parsing is the costly part.
  const devices = new Map<string, DeviceClass>();
  const deviceOf = (ua: string | null, classify: (ua: string | null) => DeviceClass) => {
    const key = ua ?? '';
    let found = devices.get(key);
    if (!found) {
      if (devices.size >= DEVICE_CACHE_MAX) devices.clear();
      devices.set(key, (found = classify(ua)));
    }
    return found;
  };

  return async (job: Job<AnalyticsRollupJob>): Promise<{ written: boolean }> => {
    const { deviceClassOf, countryOfIp } = await classifiers;
    const pollId = job.data.poll_id;
    const viewsKey = deps.keys.views(pollId);
    const outcome = await deps.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const agg = await voteAggregates(trx, pollId);
        if (!agg) return null;
        const stored = await findAnalytics(trx, pollId);
        // After close, the first rollup reads the view counter for good; later ones keep that figure.
        const viewersFrozen = agg.poll_status === 'CLOSED' && stored !== undefined && agg.closed_at !== null && stored.updated_at >= agg.closed_at;
        const viewers = viewersFrozen ? stored.unique_viewers : await deps.redis.pfcount(viewsKey);
        const devicesByClass = sumBy(
          await votesPerUserAgent(trx, pollId),
          (r) => deviceOf(r.user_agent, deviceClassOf),
          (r) => r.n,
          Object.fromEntries(DEVICE_CLASSES.map((c) => [c, 0])),
        );
        const countries = sumBy(
          await votesPerOrigin(trx, pollId),
          (r) => r.country ?? countryOfIp(r.ip),
          (r) => r.n,
        );
        const hours = hourlySeries(await votesPerBucket(trx, pollId, 3600));
        const lastHour =
          agg.poll_status === 'ACTIVE' ? lastHourSeries(await votesPerBucket(trx, pollId, 60, new Date(agg.now.getTime() - 3_600_000)), agg.now) : [];
        await upsertAnalytics(trx, {
          poll_id: pollId,
          total_votes: agg.total_votes,
          unique_voters: agg.unique_voters,
          unique_viewers: viewers,
          completion_rate: completionRate(agg.unique_voters, viewers),
          avg_response_time_seconds: secondsOf(agg.avg_response_ms),
          median_response_time_seconds: secondsOf(agg.median_response_ms),
          geographic_distribution: JSON.stringify(countries),
          device_breakdown: JSON.stringify(devicesByClass),
          time_series: JSON.stringify(hours),
          time_series_last_hour: JSON.stringify(lastHour),
          suspicious_votes: agg.suspicious_votes,
          rejected_votes: agg.rejected_votes,
          updated_at: agg.now,
        });
        return { foldedViews: agg.poll_status === 'CLOSED' && !viewersFrozen };
      });
    if (outcome?.foldedViews) await deps.redis.expire(viewsKey, VIEWS_TTL_AFTER_CLOSE_S);
    return { written: outcome !== null };
  };
}
