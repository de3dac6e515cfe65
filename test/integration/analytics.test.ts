import { randomUUID } from 'node:crypto';
import type { Job } from 'bullmq';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findAnalytics } from '../../src/db/analytics.js';
import { clientTagOf, createViewTokens } from '../../src/domain/view-token.js';
import { createLogger } from '../../src/shared/logger.js';
import { createRedis, type RedisClient } from '../../src/shared/redis.js';
import { redisKeys, type RedisKeys } from '../../src/shared/redis-keys.js';
import { enqueueRollup, openQueue, QUEUES, type AnalyticsRollupJob } from '../../src/shared/queues.js';
import { createAnalyticsRollupProcessor } from '../../src/workers/analytics.js';
import { call, createPoll, eventually, JWT_SECRET, startStack, tokenFor, type Stack } from '../helpers/stack.js';

const UA = {
  desktop: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  iphone: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  ipad: 'Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1',
  android: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
  bot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  other: 'Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 Chrome/76.0.3809.146 TV Safari/537.36',
};
// Fraud rules and CAPTCHAs are someone else's concern here: these votes must all be VALID.
const LENIENT = { VOTES_PER_IP_PER_POLL_PER_HOUR: '100000', PREFIX_VOTES_LIMIT: '100000', MIN_RESPONSE_MS: '0' };
const viewTokens = createViewTokens(JWT_SECRET, 3_600_000);

/** Stored votes with only what analytics reads set by the test. */
async function insertVotes(
  stack: Stack,
  pollId: number,
  optionId: number,
  votes: Array<{
    status?: 'VALID' | 'SUSPICIOUS' | 'REJECTED';
    ua?: string;
    ip?: string;
    country?: string;
    response_ms?: number | null;
    change_count?: number;
    at?: string;
  }>,
) {
  await stack.db
    .insertInto('votes')
    .values(
      votes.map((v) => ({
        vote_id: randomUUID(),
        poll_id: pollId,
        voter_key: `f:${randomUUID()}`,
        voter_id: null,
        voter_fingerprint: null,
        seq: 1,
        selected_options: [optionId],
        counted_options: [optionId],
        rank_order: null,
        ratings: null,
        ip_address: v.ip ?? '10.0.0.1',
        user_agent: v.ua ?? UA.desktop,
        status: v.status ?? 'VALID',
        response_ms: v.response_ms ?? null,
        change_count: v.change_count ?? 0,
        country: v.country ?? null,
        accepted_at: v.at ?? new Date().toISOString(),
      })),
    )
    .execute();
}

const analyticsOf = async (stack: Stack, pollId: number, token: string) => (await call(stack, 'GET', `/api/v1/polls/${pollId}/analytics`, { token })).body;

const withoutClock = <T extends { updated_at: unknown; time_series_last_hour: unknown }>(row: T) => ({ ...row, updated_at: null, time_series_last_hour: null });

describe('analytics', () => {
  let stack: Stack;
  let redis: RedisClient;
  let keys: RedisKeys;
  beforeAll(async () => {
    stack = await startStack({ env: { TRUST_PROXY: 'loopback', ANALYTICS_ROLLUP_DELAY_MS: '100', ...LENIENT } });
    redis = createRedis(stack.config.REDIS_URL);
    keys = redisKeys(stack.config.REDIS_NAMESPACE);
  });
  afterAll(async () => {
    redis?.disconnect();
    await stack?.close();
  });

  it('after a scripted mix of views, votes, changed votes, devices and countries: the figures computed by hand', async () => {
    const creator = await tokenFor(1);
    const poll = await createPoll(stack, { allow_change_vote: true, settings: { captcha: 'off' } }, creator);
    const id = poll.poll_id;
    const [a, b] = poll.options.map((o) => o.option_id);
    const user = { 11: await tokenFor(11), 12: await tokenFor(12), 13: await tokenFor(13) };
    const from = (ip: string | null, ua: string) => ({ ...(ip ? { 'x-forwarded-for': ip } : {}), 'user-agent': ua });

    // A flagged and a rejected ballot, stored before the run: shown apart, never in the breakdowns.
    await insertVotes(stack, id, a, [
      { status: 'SUSPICIOUS', ip: '8.8.8.8', ua: UA.desktop, response_ms: 5 },
      { status: 'REJECTED', ip: '8.8.8.8', ua: UA.desktop },
    ]);

    // 9 distinct viewers: 3 signed in (user 11 twice), 6 anonymous (two of whom never vote).
    const view = (headers: Record<string, string>, token?: string) => call(stack, 'GET', `/api/v1/polls/${id}`, { headers, token });
    for (const [headers, token] of [
      [from('8.8.8.8', UA.desktop), user[11]],
      [from('8.8.8.8', UA.desktop), user[11]],
      [from('81.2.69.142', UA.iphone), user[12]],
      [from('10.0.0.1', UA.other), user[13]],
      [from('8.8.8.8', UA.desktop)],
      [from('2a00:1450:4001:80e::200e', UA.ipad)],
      [from('10.0.0.7', UA.bot)],
      [from(null, UA.android)],
      [from('1.1.1.1', UA.desktop)],
      [from('9.9.9.9', UA.desktop)],
    ] as Array<[Record<string, string>, string?]>) {
      expect((await view(headers, token)).status).toBe(200);
    }

    const vote = async (body: object, headers: Record<string, string>, token?: string) => {
      const res = await call(stack, 'POST', `/api/v1/polls/${id}/votes`, { body, headers, token });
      expect(res.status).toBe(202);
      return res.body;
    };
    const seenAgo = (ms: number, ip: string, ua: string) => viewTokens.issue(id, clientTagOf(ip, ua), Date.now() - ms);
    await vote({ options: [a], view_token: seenAgo(10_000, '8.8.8.8', UA.desktop) }, from('8.8.8.8', UA.desktop), user[11]);
    await vote({ options: [a], view_token: seenAgo(4_000, '81.2.69.142', UA.iphone) }, from('81.2.69.142', UA.iphone), user[12]);
    await vote({ options: [b] }, from('10.0.0.1', UA.other), user[13]);
    await vote({ options: [a], view_token: seenAgo(6_000, '8.8.8.8', UA.desktop) }, from('8.8.8.8', UA.desktop));
    await vote({ options: [b], view_token: seenAgo(8_000, '2a00:1450:4001:80e::200e', UA.ipad) }, from('2a00:1450:4001:80e::200e', UA.ipad));
    await vote({ options: [a] }, from('10.0.0.7', UA.bot));
    await vote({ options: [a] }, from(null, UA.android));
    // Two voters change their minds: 9 votes cast, 7 voters.
    expect(await vote({ options: [b] }, from('8.8.8.8', UA.desktop), user[11])).toMatchObject({ changed: true });
    expect(await vote({ options: [b] }, from('8.8.8.8', UA.desktop))).toMatchObject({ changed: true });

    let body: any;
    await eventually(
      async () => {
        body = await analyticsOf(stack, id, creator);
        return body.total_votes === 9;
      },
      15_000,
      'the rollup after the last vote',
    );

    // View-to-vote times of the four VALID votes that carried a token, as stored.
    const rows = await stack.db.selectFrom('votes').select(['response_ms', 'accepted_at']).where('poll_id', '=', id).where('status', '=', 'VALID').execute();
    const times = rows
      .map((r) => r.response_ms)
      .filter((ms) => ms !== null)
      .sort((x, y) => x - y);
    expect(times).toHaveLength(4);
    const hours = new Map<string, number>();
    for (const r of rows) {
      const hour = new Date(Math.floor(r.accepted_at.getTime() / 3_600_000) * 3_600_000).toISOString();
      hours.set(hour, (hours.get(hour) ?? 0) + 1);
    }

    expect(body).toMatchObject({
      poll_id: id,
      total_votes: 9,
      unique_voters: 7,
      vote_changes: 2,
      unique_viewers: 9,
      completion_rate: 0.7778,
      geographic_distribution: { US: 2, GB: 1, DE: 1, ZZ: 3 },
      device_breakdown: { desktop: 2, mobile: 2, tablet: 1, bot: 1, other: 1 },
      suspicious_votes: 1,
      rejected_votes: 1,
      avg_response_time_seconds: Math.round(times.reduce((s, t) => s + t, 0) / 4) / 1000,
      median_response_time_seconds: Math.round((times[1] + times[2]) / 2) / 1000,
      time_series: [...hours].sort().map(([hour, votes]) => ({ hour, votes })),
    });
    expect(Object.keys(body.geographic_distribution)).toHaveLength(4);
    expect(body.avg_response_time_seconds).toBeGreaterThanOrEqual(7);
    expect(body.avg_response_time_seconds).toBeLessThan(9);
    expect(body.time_series_last_hour).toHaveLength(60);
    expect(body.time_series_last_hour.reduce((s: number, m: { votes: number }) => s + m.votes, 0)).toBe(7);
    expect(typeof body.updated_at).toBe('string');

    // The close runs one more rollup: figures stay, the live per-minute series goes, the view counter is folded in and left to expire.
    expect((await call(stack, 'POST', `/api/v1/polls/${id}/close`, { token: creator })).status).toBe(200);
    await eventually(async () => (await analyticsOf(stack, id, creator)).time_series_last_hour.length === 0, 10_000, 'the rollup at close');
    expect(await analyticsOf(stack, id, creator)).toMatchObject({ total_votes: 9, unique_voters: 7, unique_viewers: 9, completion_rate: 0.7778 });
    expect(await redis.ttl(keys.views(id))).toBeGreaterThan(0);
  });

  it('is for the creator and admins only', async () => {
    const creator = await tokenFor(1);
    const poll = await createPoll(stack, {}, creator);
    for (const path of ['analytics', 'votes.csv']) {
      const url = `/api/v1/polls/${poll.poll_id}/${path}`;
      expect((await call(stack, 'GET', url)).body.error.code).toBe('AUTH_REQUIRED');
      const other = await call(stack, 'GET', url, { token: await tokenFor(99) });
      expect([other.status, other.body.error.code]).toEqual([403, 'FORBIDDEN']);
      expect((await call(stack, 'GET', url, { token: await tokenFor(98, { role: 'admin' }) })).status).toBe(200);
      expect((await call(stack, 'GET', url, { token: creator })).status).toBe(200);
      const missing = await call(stack, 'GET', `/api/v1/polls/987654/${path}`, { token: creator });
      expect([missing.status, missing.body.error.code]).toEqual([404, 'POLL_NOT_FOUND']);
    }
    // Before the first rollup: zeros, not an error.
    expect(await analyticsOf(stack, poll.poll_id, creator)).toMatchObject({
      total_votes: 0,
      completion_rate: 0,
      device_breakdown: { desktop: 0, mobile: 0, tablet: 0, bot: 0, other: 0 },
    });
  });

  it('exact figures from stored votes; a second rollup changes nothing', async () => {
    const poll = await createPoll(stack);
    const id = poll.poll_id;
    await insertVotes(stack, id, poll.options[0].option_id, [
      { at: '2025-06-01T08:10:00Z', response_ms: 1000, ua: UA.desktop, ip: '8.8.8.8' },
      { at: '2025-06-01T08:50:00Z', response_ms: 2000, ua: UA.iphone, ip: '81.2.69.142', change_count: 2 },
      { at: '2025-06-01T09:05:00Z', response_ms: 9000, ua: UA.ipad, ip: '10.1.1.1' },
      // A country the CDN gave at vote time wins over the address.
      { at: '2025-06-01T11:59:59Z', response_ms: null, ua: UA.bot, ip: '8.8.4.4', country: 'FR' },
      { at: '2025-06-01T11:00:00Z', status: 'SUSPICIOUS', response_ms: 10 },
    ]);
    const rollup = createAnalyticsRollupProcessor({ db: stack.db, redis, keys });
    const job = { data: { poll_id: id } } as Job<AnalyticsRollupJob>;
    expect(await rollup(job)).toEqual({ written: true });
    const first = (await findAnalytics(stack.db, id))!;
    expect(await rollup(job)).toEqual({ written: true });
    const second = (await findAnalytics(stack.db, id))!;
    expect(withoutClock(second)).toEqual(withoutClock(first));

    expect(await analyticsOf(stack, id, await tokenFor(1))).toMatchObject({
      total_votes: 6,
      unique_voters: 4,
      vote_changes: 2,
      // No views recorded (votes straight to the API): capped at 1, not a division by zero.
      completion_rate: 1,
      avg_response_time_seconds: 4,
      median_response_time_seconds: 2,
      geographic_distribution: { US: 1, GB: 1, ZZ: 1, FR: 1 },
      device_breakdown: { desktop: 1, mobile: 1, tablet: 1, bot: 1, other: 0 },
      time_series: [
        { hour: '2025-06-01T08:00:00.000Z', votes: 2 },
        { hour: '2025-06-01T09:00:00.000Z', votes: 1 },
        { hour: '2025-06-01T11:00:00.000Z', votes: 1 },
      ],
      suspicious_votes: 1,
      rejected_votes: 0,
      updated_at: second.updated_at.toISOString(),
    });
    expect(await rollup({ data: { poll_id: 987654 } } as Job<AnalyticsRollupJob>)).toEqual({ written: false });
  });

  it('follows flagging and review without anyone reading the analytics', async () => {
    const poll = await createPoll(stack);
    const id = poll.poll_id;
    const vote = await call(stack, 'POST', `/api/v1/polls/${id}/votes`, {
      body: { options: [poll.options[0].option_id] },
      headers: { 'x-forwarded-for': '198.51.100.7' },
    });
    expect(vote.status).toBe(202);
    const figures = async () => {
      const row = await findAnalytics(stack.db, id);
      return row && { valid: row.total_votes, suspicious: row.suspicious_votes };
    };
    await eventually(async () => (await figures())?.valid === 1, 10_000, 'rolled up after the vote');

    const flagQueue = openQueue(QUEUES.flagging, { connection: redis, keys, logger: createLogger('silent', 'test') });
    await flagQueue.add('flag-prefix', { poll_id: id, prefix: '198.51.100.0/24', vote_ids: [vote.body.vote_id], reason: 'IP_PREFIX_VELOCITY' });
    await flagQueue.close();
    await eventually(async () => (await figures())?.suspicious === 1, 10_000, 'rolled up after the flagging');
    expect(await figures()).toEqual({ valid: 0, suspicious: 1 });

    const review = await call(stack, 'POST', `/api/v1/admin/votes/${vote.body.vote_id}/review`, {
      token: await tokenFor(5, { role: 'admin' }),
      body: { decision: 'VALID' },
    });
    expect(review.status).toBe(200);
    await eventually(async () => (await figures())?.suspicious === 0, 10_000, 'rolled up after the review');
    expect(await figures()).toEqual({ valid: 1, suspicious: 0 });
  });

  it('a rollup killed in the middle of its write leaves the old row whole, and its retry writes the right numbers', async () => {
    const poll = await createPoll(stack);
    const id = poll.poll_id;
    const optionId = poll.options[0].option_id;
    await insertVotes(stack, id, optionId, [{}, {}, {}]);
    await createAnalyticsRollupProcessor({ db: stack.db, redis, keys })({ data: { poll_id: id } } as Job<AnalyticsRollupJob>);
    expect((await findAnalytics(stack.db, id))!.unique_voters).toBe(3);
    await insertVotes(stack, id, optionId, [{ ua: UA.iphone }, { ua: UA.iphone }]);

    const queue = openQueue(QUEUES.analytics, { connection: redis, keys, logger: createLogger('silent', 'test') });
    let killed = 0;
    // Hold the row so the queued rollup stalls inside its UPSERT, then abort the statement there: its
    // transaction rolls back and the job fails, as when a worker dies mid-write. (pg_terminate_backend
    // would do too, but node-postgres then throws an uncaught error out of the worker's pool.)
    await stack.db.transaction().execute(async (trx) => {
      await sql`SELECT 1 FROM poll_analytics WHERE poll_id = ${id} FOR UPDATE`.execute(trx);
      await enqueueRollup(queue, id, 0);
      await eventually(
        async () => {
          const { rows } = await sql<{ killed: boolean }>`
          SELECT pg_cancel_backend(pid) AS killed FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%insert into "poll_analytics"%'`.execute(stack.db);
          killed += rows.filter((r) => r.killed).length;
          return killed > 0;
        },
        10_000,
        'a rollup waiting inside its write',
      );
      const mid = (await findAnalytics(stack.db, id))!;
      expect([mid.unique_voters, mid.device_breakdown]).toEqual([3, { desktop: 3, mobile: 0, tablet: 0, bot: 0, other: 0 }]);
    });
    await eventually(async () => (await findAnalytics(stack.db, id))?.unique_voters === 5, 15_000, 'the retried rollup');
    expect((await findAnalytics(stack.db, id))!.device_breakdown).toEqual({ desktop: 3, mobile: 2, tablet: 0, bot: 0, other: 0 });
    await queue.close();
  });
});

describe('analytics with a trusted CDN country header', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ env: { TRUST_PROXY: 'loopback', GEO_COUNTRY_HEADER: 'CF-IPCountry', ANALYTICS_ROLLUP_DELAY_MS: '100', ...LENIENT } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('takes the country from the header at vote time, and the address where the header is missing', async () => {
    const creator = await tokenFor(1);
    const poll = await createPoll(stack, { settings: { captcha: 'off' } }, creator);
    const optionId = poll.options[0].option_id;
    const cast = async (ip: string, country?: string) => {
      const headers: Record<string, string> = { 'x-forwarded-for': ip, ...(country ? { 'cf-ipcountry': country } : {}) };
      expect((await call(stack, 'POST', `/api/v1/polls/${poll.poll_id}/votes`, { body: { options: [optionId] }, headers })).status).toBe(202);
    };
    await cast('10.9.0.1', 'de');
    await cast('10.9.0.2', 'XX');
    await cast('8.8.8.8');
    await eventually(async () => (await analyticsOf(stack, poll.poll_id, creator)).unique_voters === 3, 15_000, 'the rollup');
    expect((await analyticsOf(stack, poll.poll_id, creator)).geographic_distribution).toEqual({ DE: 1, ZZ: 1, US: 1 });
    const stored = await stack.db.selectFrom('votes').select('country').where('poll_id', '=', poll.poll_id).orderBy('ip_address').execute();
    expect(stored.map((v) => v.country)).toEqual([null, 'DE', 'ZZ']);
  });
});
