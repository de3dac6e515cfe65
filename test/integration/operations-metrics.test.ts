import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/shared/redis.js';
import { redisKeys } from '../../src/shared/redis-keys.js';
import { openQueue, QUEUES } from '../../src/shared/queues.js';
import { createLogger } from '../../src/shared/logger.js';
import { scrape, type Exposition } from '../helpers/prom.js';
import { startRealtime } from '../helpers/realtime.js';
import { call, createPoll, eventually, startStack, type Stack } from '../helpers/stack.js';
import { solveCaptcha } from '../helpers/captcha.js';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    env: { TRUST_PROXY: 'loopback', CAPTCHA_MAX_NUMBER: '2000', VOTES_PER_IP_PER_POLL_PER_HOUR: '3', VOTES_PER_IP_PER_POLL_PER_HOUR_MAX: '3' },
  });
});
afterAll(async () => {
  await stack?.close();
});

const vote = (pollId: number, body: Record<string, unknown>, ip: string, ua = 'metrics-test') =>
  call(stack, 'POST', `/api/v1/polls/${pollId}/votes`, { body, headers: { 'x-forwarded-for': ip, 'user-agent': ua } });

/** No label may identify a poll, an address or a person. */
function expectNoIdentifyingLabels(page: Exposition) {
  for (const s of page.samples) {
    for (const [name, value] of Object.entries(s.labels)) {
      expect(name).not.toMatch(/poll|ip|user|voter|addr/i);
      expect(value, `${s.name} ${name}`).not.toMatch(/^\d{1,3}(\.\d{1,3}){3}$|:.*:/);
    }
  }
}

const DEFAULT_NODE_METRICS = ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes'];

describe('API /metrics', () => {
  it('parses as Prometheus text, carries every family, and moves when votes flow', async () => {
    const before = await scrape(stack.url);
    for (const family of [
      'http_request_duration_seconds',
      'votes_accepted_total',
      'votes_rejected_total',
      'vote_dedup_hits_total',
      'vote_integrity_decisions_total',
      'vote_path_duration_seconds',
      'votes_flagged_total',
      'vote_reviews_total',
      ...DEFAULT_NODE_METRICS,
    ]) {
      expect(before.types.has(family), family).toBe(true);
    }
    expect(before.samples.find((s) => s.name === 'process_resident_memory_bytes')?.labels.role).toBe('api');

    const poll = await createPoll(stack);
    const option = poll.options[0].option_id;
    for (let i = 0; i < 3; i++) expect((await vote(poll.poll_id, { options: [option] }, '192.0.2.10', `browser-${i}`)).status).toBe(202);
    expect((await vote(poll.poll_id, { options: [option] }, '192.0.2.10', 'browser-3')).status).toBe(429);
    expect((await vote(poll.poll_id, { options: [option] }, '192.0.2.11')).status).toBe(202);
    expect((await vote(poll.poll_id, { options: [option] }, '192.0.2.11')).status).toBe(409);

    const guarded = await createPoll(stack, { settings: { captcha: 'always' } });
    const guardedOption = guarded.options[0].option_id;
    const refused = await vote(guarded.poll_id, { options: [guardedOption] }, '192.0.2.20');
    expect(refused.status).toBe(428);
    expect((await vote(guarded.poll_id, { options: [guardedOption], captcha: 'bm90IGEgc29sdXRpb24=' }, '192.0.2.21')).status).toBe(428);
    const captcha = await solveCaptcha(refused.body.error.challenge);
    expect((await vote(guarded.poll_id, { options: [guardedOption], captcha }, '192.0.2.20')).status).toBe(202);
    expect((await call(stack, 'GET', `/api/v1/polls/${poll.poll_id}/results`)).status).toBe(200);

    const after = await scrape(stack.url);
    const moved = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    expect(moved('votes_accepted_total')).toBe(5);
    expect(moved('votes_rejected_total', { code: 'RATE_LIMITED' })).toBe(1);
    expect(moved('votes_rejected_total', { code: 'ALREADY_VOTED' })).toBe(1);
    expect(moved('votes_rejected_total', { code: 'CAPTCHA_REQUIRED' })).toBe(2);
    expect(moved('vote_dedup_hits_total')).toBe(1);
    expect(moved('vote_integrity_decisions_total', { check: 'rate_limit', outcome: 'limited' })).toBe(1);
    expect(moved('vote_integrity_decisions_total', { check: 'captcha', outcome: 'required' })).toBe(2);
    expect(moved('vote_integrity_decisions_total', { check: 'captcha', outcome: 'failed' })).toBe(1);
    expect(moved('vote_integrity_decisions_total', { check: 'captcha', outcome: 'solved' })).toBe(1);
    expect(moved('vote_path_duration_seconds_count')).toBe(9);
    expect(moved('http_request_duration_seconds_count', { route: '/api/v1/polls/:id/votes', status: '202' })).toBe(5);
    expect(moved('http_request_duration_seconds_count', { route: '/api/v1/polls/:id/results', status: '200' })).toBe(1);
    expectNoIdentifyingLabels(after);
  });

  it('/healthz and /readyz answer 200; every Express answer carries a request id', async () => {
    expect((await call(stack, 'GET', '/healthz')).status).toBe(200);
    const ready = await call(stack, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await call(stack, 'GET', '/api/v1/polls/999999', { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(echoed.status).toBe(404);
    expect(echoed.headers.get('x-request-id')).toBe('trace-abc.123');
    const hostile = await call(stack, 'GET', '/healthz', { headers: { 'x-request-id': 'a"b<script>' } });
    expect(hostile.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('workers /metrics', () => {
  it('carries ingest batches, lag, job outcomes and queue depths, moving as votes are committed', async () => {
    const workersUrl = stack.workers!.url;
    const before = await scrape(workersUrl);
    for (const family of [
      'vote_ingest_batch_size',
      'vote_ingest_batch_duration_seconds',
      'votes_committed_total',
      'vote_ingest_lag_seconds',
      'queue_jobs_completed_total',
      'queue_job_retries_total',
      'queue_jobs_failed_total',
      'queue_jobs_stalled_total',
      'queue_jobs',
      'votes_flagged_total',
      ...DEFAULT_NODE_METRICS,
    ]) {
      expect(before.types.has(family), family).toBe(true);
    }
    for (const queue of ['vote-ingest', 'vote-flagging', 'poll-lifecycle', 'analytics-rollup']) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(before.has('queue_jobs', { queue, state }), `${queue} ${state}`).toBe(true);
    }

    const poll = await createPoll(stack);
    for (let i = 0; i < 20; i++) expect((await vote(poll.poll_id, { options: [poll.options[1].option_id] }, `198.18.0.${i + 1}`)).status).toBe(202);
    await eventually(
      async () => (await scrape(workersUrl)).value('votes_committed_total') - before.value('votes_committed_total') >= 20,
      15_000,
      'votes committed',
    );
    const after = await scrape(workersUrl);
    const moved = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    expect(moved('votes_committed_total')).toBe(20);
    expect(moved('vote_ingest_lag_seconds_count')).toBe(20);
    expect(moved('vote_ingest_batch_size_sum')).toBe(20);
    expect(moved('vote_ingest_batch_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    // Group commit: a commit takes every job waiting for it, so there are at most as many commits as jobs.
    expect(moved('queue_jobs_completed_total', { queue: 'vote-ingest' })).toBeGreaterThanOrEqual(moved('vote_ingest_batch_size_count'));
    expect(after.samples.find((s) => s.name === 'vote_ingest_lag_seconds_count')?.labels.role).toBe('workers');
    expectNoIdentifyingLabels(after);
  });

  it('counts a retry, a final failure and the failed depth of a job that cannot succeed', async () => {
    const workersUrl = stack.workers!.url;
    const before = await scrape(workersUrl);
    const connection = createRedis(stack.config.REDIS_URL);
    const queue = openQueue(QUEUES.flagging, { connection, keys: redisKeys(stack.config.REDIS_NAMESPACE), logger: createLogger('silent', 'test') });
    try {
      await queue.add(
        'flag-prefix',
        { poll_id: 1, prefix: 'x', vote_ids: ['not-a-uuid'], reason: 'TEST' },
        { attempts: 2, backoff: { type: 'fixed', delay: 10 } },
      );
      await eventually(
        async () =>
          (await scrape(workersUrl)).value('queue_jobs_failed_total', { queue: 'vote-flagging' }) >
          before.value('queue_jobs_failed_total', { queue: 'vote-flagging' }),
        15_000,
        'a final failure',
      );
      const after = await scrape(workersUrl);
      expect(after.value('queue_job_retries_total', { queue: 'vote-flagging' }) - before.value('queue_job_retries_total', { queue: 'vote-flagging' })).toBe(1);
      expect(after.value('queue_jobs_failed_total', { queue: 'vote-flagging' }) - before.value('queue_jobs_failed_total', { queue: 'vote-flagging' })).toBe(1);
      expect(after.value('queue_jobs', { queue: 'vote-flagging', state: 'failed' })).toBe(1);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  });

  it('/healthz and /readyz answer 200', async () => {
    expect((await fetch(`${stack.workers!.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${stack.workers!.url}/readyz`)).status).toBe(200);
  });
});

describe('realtime /metrics', () => {
  it('parses as Prometheus text with the default Node metrics', async () => {
    const gateway = await startRealtime(stack.config);
    try {
      const page = await scrape(gateway.url);
      for (const family of DEFAULT_NODE_METRICS) expect(page.types.has(family), family).toBe(true);
      expect(page.samples.find((s) => s.name === 'process_resident_memory_bytes')?.labels.role).toBe('realtime');
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      expectNoIdentifyingLabels(page);
    } finally {
      await gateway.close();
    }
  });
});
